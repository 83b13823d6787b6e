//! Selective disclosure (specs/certificate.md §3–4): each field travels as
//! `[salt, name, value]`, bound to the signed payload by its digest.

use std::fmt;

use ciborium::Value;

use crate::cbor::{self, Reader, Strict};
use crate::codes::{Code, Failure};
use crate::envelope::{BuildError, encode};
use crate::ids::{ResidentId, Uscc};
use crate::suite::Suite;
use crate::values::is_short_text;

/// BLAKE3 context of disclosure digests; changing it breaks every issued certificate.
const DISCLOSURE_CONTEXT: &str = "tongban v1 disclosure";
/// Longest text value of a field, in bytes.
pub const MAX_VALUE_TEXT: usize = 4096;
/// Longest field name, in bytes.
pub const MAX_NAME: usize = 64;
/// A disclosure is small; this bounds the strict CBOR check of one.
const DISCLOSURE_LIMIT: u64 = 8192;

pub const HOLDER_NAME: &str = "holder.name";
pub const HOLDER_ID_TYPE: &str = "holder.id_type";
pub const HOLDER_ID_NUMBER: &str = "holder.id_number";
pub const LICENCE_PREFIX: &str = "licence.";

/// A field name: a holder field or `licence.` followed by `[a-z0-9_.]`, at most 64 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldName(String);

impl FieldName {
    pub fn parse(name: &str) -> Option<FieldName> {
        FieldName::is_valid(name).then(|| FieldName(name.to_owned()))
    }

    /// Whether `name` is a valid field name (certificate.md §3).
    pub fn is_valid(name: &str) -> bool {
        // The holder names are valid as they stand (a test checks); only a licence field's
        // own part needs the character check. Every disclosure a verifier reads asks this.
        if matches!(name, HOLDER_NAME | HOLDER_ID_TYPE | HOLDER_ID_NUMBER) {
            return true;
        }
        name.len() <= MAX_NAME
            && name
                .strip_prefix(LICENCE_PREFIX)
                .is_some_and(|own| !own.is_empty() && own.bytes().all(is_name_byte))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `[a-z0-9_.]`: the characters of a field name.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A field's value as it lies in a received disclosure's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValueRef<'a> {
    Text(&'a str),
    Int(i64),
    Bool(bool),
}

impl FieldValueRef<'_> {
    pub fn to_owned(self) -> FieldValue {
        match self {
            FieldValueRef::Text(t) => FieldValue::Text(t.to_owned()),
            FieldValueRef::Int(i) => FieldValue::Int(i),
            FieldValueRef::Bool(b) => FieldValue::Bool(b),
        }
    }
}

/// A field's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FieldValue {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl FieldValue {
    fn valid(&self) -> bool {
        match self {
            FieldValue::Text(t) => t.len() <= MAX_VALUE_TEXT,
            _ => true,
        }
    }

    fn to_cbor(&self) -> Value {
        match self {
            FieldValue::Text(t) => Value::Text(t.clone()),
            FieldValue::Int(i) => Value::Integer((*i).into()),
            FieldValue::Bool(b) => Value::Bool(*b),
        }
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Text(t) => f.write_str(t),
            FieldValue::Int(i) => write!(f, "{i}"),
            FieldValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// The holder's identity document type (`holder.id_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HolderIdType {
    Uscc,
    ResidentId,
    Passport,
    Other,
}

impl HolderIdType {
    pub fn as_str(self) -> &'static str {
        match self {
            HolderIdType::Uscc => "USCC",
            HolderIdType::ResidentId => "RESIDENT_ID",
            HolderIdType::Passport => "PASSPORT",
            HolderIdType::Other => "OTHER",
        }
    }

    pub fn parse(text: &str) -> Option<HolderIdType> {
        match text {
            "USCC" => Some(HolderIdType::Uscc),
            "RESIDENT_ID" => Some(HolderIdType::ResidentId),
            "PASSPORT" => Some(HolderIdType::Passport),
            "OTHER" => Some(HolderIdType::Other),
            _ => None,
        }
    }

    /// Whether `number` is a valid document number of this type.
    pub fn accepts(self, number: &str) -> bool {
        match self {
            HolderIdType::Uscc => Uscc::parse(number).is_ok(),
            HolderIdType::ResidentId => ResidentId::parse(number).is_ok(),
            HolderIdType::Passport | HolderIdType::Other => is_short_text(number),
        }
    }
}

/// One disclosed field: its exact bytes, digest, and decoded contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disclosure {
    pub name: FieldName,
    pub value: FieldValue,
    pub digest: [u8; 32],
    pub bytes: Vec<u8>,
}

/// The digest of a disclosure's exact bytes in `suite` (specs/encoding.md §4): for Ed25519,
/// `blake3::derive_key(DISCLOSURE_CONTEXT, bytes)`, with the context hashed once per process
/// instead of once per disclosure (a verifier computes several digests per certificate); for SM2,
/// SM3 of the context and the bytes.
pub fn digest(suite: Suite, bytes: &[u8]) -> [u8; 32] {
    match suite {
        Suite::Ed25519 => {
            use blake3::hazmat::{ContextKey, HasherExt, hash_derive_key_context};
            static CONTEXT_KEY: std::sync::OnceLock<ContextKey> = std::sync::OnceLock::new();
            let key = CONTEXT_KEY.get_or_init(|| hash_derive_key_context(DISCLOSURE_CONTEXT));
            let mut hasher = blake3::Hasher::new_from_context_key(key);
            hasher.update(bytes);
            *hasher.finalize().as_bytes()
        }
        Suite::Sm2 => suite.hash(DISCLOSURE_CONTEXT, &[bytes]),
    }
}

impl Disclosure {
    /// Encodes `[salt, name, value]`, digested in `suite`.
    pub fn new(
        suite: Suite,
        salt: [u8; 16],
        name: FieldName,
        value: FieldValue,
    ) -> Result<Disclosure, BuildError> {
        if !value.valid() {
            return Err(BuildError::Invalid(format!("value of {name} too long")));
        }
        let bytes = encode(&Value::Array(vec![
            Value::Bytes(salt.to_vec()),
            Value::Text(name.as_str().to_owned()),
            value.to_cbor(),
        ]))?;
        Ok(Disclosure {
            digest: digest(suite, &bytes),
            name,
            value,
            bytes,
        })
    }

    /// Reads a received disclosure (the shape part of step 10): `DISCLOSURE_MALFORMED` unless its
    /// bytes are strict CBOR of `[bstr .size 16, field name, value]`; digested in `suite`, the
    /// certificate's.
    pub fn open(suite: Suite, bytes: &[u8]) -> Result<Disclosure, Failure> {
        let (name, value) = Disclosure::read(bytes)?;
        Ok(Disclosure {
            name,
            value,
            digest: digest(suite, bytes),
            bytes: bytes.to_vec(),
        })
    }

    /// The name and value of a received disclosure, checked as [`Disclosure::open`] does.
    pub fn read(bytes: &[u8]) -> Result<(FieldName, FieldValue), Failure> {
        let (name, value) = Disclosure::read_borrowed(bytes)?;
        Ok((FieldName(name.to_owned()), value.to_owned()))
    }

    /// [`Disclosure::read`] without copying anything out of `bytes`: what a verifier that reports
    /// no fields (the bulk verifier) needs to check step 10.
    pub fn read_borrowed(bytes: &[u8]) -> Result<(&str, FieldValueRef<'_>), Failure> {
        // Nearly every disclosure a verifier meets is well formed, and one strict pass reads it;
        // whatever that pass does not take is read again the long way, which names the rule
        // broken.
        match Disclosure::read_strict(bytes) {
            Some(read) => Ok(read),
            None => Disclosure::read_checked(bytes),
        }
    }

    /// [`Disclosure::read_borrowed`] in one pass: `None` for anything it would refuse (and
    /// perhaps for more: the caller then reads it the long way).
    fn read_strict(bytes: &[u8]) -> Option<(&str, FieldValueRef<'_>)> {
        // Within the limit, no length or count that fits can exceed it (see `Strict`).
        if bytes.len() as u64 > DISCLOSURE_LIMIT {
            return None;
        }
        let mut s = Strict::new(bytes);
        if s.array()? != 3 || s.bytes()?.len() != 16 {
            return None;
        }
        let name = s.text().filter(|n| FieldName::is_valid(n))?;
        let value = if let Some(text) = s.text() {
            (text.len() <= MAX_VALUE_TEXT).then_some(FieldValueRef::Text(text))?
        } else if let Some(i) = s.int() {
            FieldValueRef::Int(i)
        } else {
            FieldValueRef::Bool(s.bool()?)
        };
        s.at_end().then_some((name, value))
    }

    /// [`Disclosure::read_borrowed`] as the rules' order puts it: the strict CBOR check, then the
    /// shape.
    fn read_checked(bytes: &[u8]) -> Result<(&str, FieldValueRef<'_>), Failure> {
        let malformed = |what: &str| Failure::new(Code::DisclosureMalformed, what.to_owned());
        cbor::check(bytes, DISCLOSURE_LIMIT, false)
            .map_err(|f| malformed(&format!("not accepted CBOR: {f}")))?;
        let mut reader = Reader::new(bytes);
        if reader.array() != Some(3) {
            return Err(malformed("not an array of three"));
        }
        if reader.bytes().map(<[u8]>::len) != Some(16) {
            return Err(malformed("salt is not 16 bytes"));
        }
        let name = reader
            .text()
            .filter(|n| FieldName::is_valid(n))
            .ok_or_else(|| malformed("field name invalid"))?;
        // A read of another type leaves the reader where it was.
        let value = if let Some(text) = reader.text() {
            if text.len() > MAX_VALUE_TEXT {
                return Err(malformed("text value longer than 4096 bytes"));
            }
            FieldValueRef::Text(text)
        } else if let Some(i) = reader.int() {
            FieldValueRef::Int(i)
        } else if let Some(b) = reader.bool() {
            FieldValueRef::Bool(b)
        } else {
            return Err(malformed("value is not text, integer or boolean"));
        };
        Ok((name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names() {
        for ok in [
            "holder.name",
            "holder.id_number",
            "licence.registered_capital",
            "licence.a.b",
        ] {
            assert!(FieldName::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "licence.",
            "holder.age",
            "Licence.x",
            "licence.x y",
            "name",
        ] {
            assert!(FieldName::parse(bad).is_none(), "{bad}");
        }
        assert!(FieldName::parse(&format!("licence.{}", "x".repeat(57))).is_none());
        assert!(FieldName::parse(&format!("licence.{}", "x".repeat(56))).is_some());
        // `is_valid` takes the holder names without the character check: they must pass it.
        for holder in [HOLDER_NAME, HOLDER_ID_TYPE, HOLDER_ID_NUMBER] {
            assert!(holder.len() <= MAX_NAME && holder.bytes().all(is_name_byte));
        }
    }

    #[test]
    fn round_trip_and_digest() -> Result<(), Box<dyn std::error::Error>> {
        let name = FieldName::parse("holder.name").ok_or("name")?;
        let made = Disclosure::new(
            Suite::Ed25519,
            [9; 16],
            name.clone(),
            FieldValue::Text("张三".into()),
        )?;
        let opened = Disclosure::open(Suite::Ed25519, &made.bytes)?;
        assert_eq!(opened, made);
        assert_eq!(
            made.digest,
            blake3::derive_key("tongban v1 disclosure", &made.bytes)
        );
        assert_eq!(
            digest(Suite::Ed25519, b""),
            blake3::derive_key("tongban v1 disclosure", b"")
        );
        // The national suite: SM3 of the context and the bytes; the same bytes, another digest.
        use sm3::Digest;
        let sm2 = Disclosure::new(Suite::Sm2, [9; 16], name, FieldValue::Text("张三".into()))?;
        assert_eq!(sm2.bytes, made.bytes);
        let expected: [u8; 32] =
            sm3::Sm3::digest([&b"tongban v1 disclosure"[..], &made.bytes].concat()).into();
        assert_eq!(sm2.digest, expected);
        assert_eq!(Disclosure::open(Suite::Sm2, &made.bytes)?, sm2);
        Ok(())
    }

    /// The one-pass read answers only where the long way accepts, and then the same; and it
    /// reads every disclosure an issuer writes.
    mod strict_read {
        use super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = FieldValue> {
            prop_oneof![
                "\\PC{0,40}".prop_map(FieldValue::Text),
                any::<i64>().prop_map(FieldValue::Int),
                any::<bool>().prop_map(FieldValue::Bool),
            ]
        }

        fn written() -> impl Strategy<Value = Vec<u8>> {
            (any::<[u8; 16]>(), "licence\\.[a-z0-9_.]{1,20}", value()).prop_filter_map(
                "a field the issuer would write",
                |(salt, name, value)| {
                    let name = FieldName::parse(&name)?;
                    Disclosure::new(Suite::Ed25519, salt, name, value)
                        .ok()
                        .map(|d| d.bytes)
                },
            )
        }

        /// A written disclosure with one byte changed, inserted or removed, or cut short.
        fn mutated() -> impl Strategy<Value = Vec<u8>> {
            (written(), any::<usize>(), any::<u8>(), 0..4u8)
                .prop_map(|(b, at, byte, how)| crate::testkit::mutate(b, at, byte, how))
        }

        proptest! {
            #[test]
            fn reads_what_the_issuer_wrote(bytes in written()) {
                let strict = Disclosure::read_strict(&bytes);
                prop_assert!(strict.is_some());
                prop_assert_eq!(strict.ok_or("read"), Disclosure::read_checked(&bytes).map_err(|_| "read"));
            }

            #[test]
            fn never_accepts_what_the_long_way_refuses(bytes in mutated()) {
                if let Some(strict) = Disclosure::read_strict(&bytes) {
                    prop_assert_eq!(Ok(strict), Disclosure::read_checked(&bytes));
                }
            }
        }
    }

    #[test]
    fn shapes_refused() {
        for hex in [
            "82500000000000000000000000000000000001",
            "834f0000000000000000000000000000006b686f6c6465722e6e616d6501",
            "8350000000000000000000000000000000006b686f6c6465722e6e616d65f6",
            "8350000000000000000000000000000000006b686f6c6465722e6e616d65",
        ] {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                .collect();
            let code = Disclosure::open(Suite::Ed25519, &bytes)
                .err()
                .map(|f| f.code);
            assert_eq!(code, Some(Code::DisclosureMalformed), "{hex}");
        }
    }
}
