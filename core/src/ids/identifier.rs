//! E-licence identifier (电子证照标识), GB/T 36904.
//!
//! Dotted form: `1.2.156.3005.2.<type>.<issuer>.<serial>.<version>.<check>`.

use std::fmt;
use std::str::FromStr;

use arrayvec::ArrayString;

use super::region::RegionCode;
use super::uscc::Uscc;
use super::{IdError, inline};

/// OID arc assigned to e-licence identifiers; anything else is a different
/// scheme, not a variant of this one.
pub const PREFIX: &str = "1.2.156.3005.2.";

/// The longest well-formed identifier is 94 bytes; the bound is checked
/// before any other work so hostile input costs nothing to reject.
pub const MAX_LEN: usize = 128;

const TYPE_LEN: usize = 21;
const USCC_LEN: usize = 18;
const SERIAL_MAX: usize = 32;
const VERSION_LEN: usize = 3;

const MOD36_ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn mod36_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'A'..=b'Z' => Some(u32::from(b - b'A') + 10),
        _ => None,
    }
}

/// ISO/IEC 7064 MOD 37,36 (hybrid system) check character over `data`.
///
/// Returns `None` if `data` holds anything outside `[0-9A-Z]`. The hybrid
/// system is used because it catches every single substitution and nearly
/// every adjacent transposition while keeping the check within the same
/// 36-character alphabet as the data.
pub fn mod37_36_check(data: &str) -> Option<char> {
    check_over([data])
}

/// The recurrence's next `p` from `p` (1..=36) and a character's value `v` (0..36):
/// `2·s mod 37`, where `s = (p + v) mod 36` counted as 36 when 0. Tabled once at compile time,
/// because the two divisions per character were most of parsing an identifier (a bulk verifier
/// parses one per certificate).
const STEP: [[u8; 36]; 37] = {
    let mut table = [[0u8; 36]; 37];
    let mut p = 1;
    while p <= 36 {
        let mut v = 0;
        while v < 36 {
            let s = match (p + v) % 36 {
                0 => 36,
                s => s,
            };
            // p stays in 1..=36 because 37 is prime and 2·s is never a multiple of it.
            table[p][v] = ((2 * s) % 37) as u8;
            v += 1;
        }
        p += 1;
    }
    table
};

/// [`mod37_36_check`] over the concatenation of `parts`, without building it.
fn check_over<const N: usize>(parts: [&str; N]) -> Option<char> {
    let mut p = 36usize;
    for part in parts {
        for b in part.bytes() {
            let v = usize::try_from(mod36_value(b)?).ok()?;
            p = usize::from(*STEP.get(p)?.get(v)?);
        }
    }
    MOD36_ALPHABET.get((37 - p) % 36).map(|&b| char::from(b))
}

fn is_upper_alnum(b: u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_uppercase()
}

const SERIAL_RULE: &str = "serial must be 1..=32 characters of [0-9A-Z]";
const VERSION_RULE: &str = "version must be exactly 3 digits";

fn validate_serial(serial: &str) -> Result<(), IdError> {
    let ok = (1..=SERIAL_MAX).contains(&serial.len()) && serial.bytes().all(is_upper_alnum);
    if ok {
        Ok(())
    } else {
        Err(IdError::Identifier(SERIAL_RULE))
    }
}

fn validate_version(version: &str) -> Result<(), IdError> {
    if version.len() == VERSION_LEN && version.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(IdError::Identifier(VERSION_RULE))
    }
}

/// Licence type code: the USCC of the authority that defined the licence
/// type, followed by a three-digit number it assigned.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TypeCode {
    /// Held inline, as the USCC is.
    code: ArrayString<TYPE_LEN>,
    authority: Uscc,
}

impl TypeCode {
    /// Parses a 21-character type code. A bad checksum in the embedded USCC
    /// is reported as [`IdError::Uscc`].
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() != TYPE_LEN || !s.is_ascii() {
            return Err(IdError::Identifier("type code must be 21 ASCII characters"));
        }
        // Byte split is on a char boundary because the input is ASCII.
        let (authority, number) = s.split_at(USCC_LEN);
        let authority = Uscc::parse(authority)?;
        if !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::Identifier("type code must end in 3 digits"));
        }
        let code = inline(
            s,
            IdError::Identifier("type code must be 21 ASCII characters"),
        )?;
        Ok(Self { code, authority })
    }

    pub fn as_str(&self) -> &str {
        self.code.as_str()
    }

    /// The USCC of the authority that defined this licence type.
    pub fn authority(&self) -> Uscc {
        self.authority.clone()
    }

    /// The authority's three-digit number for this licence type.
    pub fn number(&self) -> &str {
        self.code.get(USCC_LEN..).unwrap_or_default()
    }
}

/// Who issued a licence: an organisation (by USCC) or, for licences issued
/// on behalf of a whole jurisdiction, a division code.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum IssuerCode {
    Uscc(Uscc),
    Region(RegionCode),
}

impl IssuerCode {
    /// Chooses the variant by length, since the two forms never share one.
    /// Errors from the inner type are passed through unchanged.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s.len() {
            USCC_LEN => Uscc::parse(s).map(Self::Uscc),
            6 => RegionCode::parse(s).map(Self::Region),
            _ => Err(IdError::Identifier(
                "issuer must be an 18-character USCC or a 6-digit region code",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Uscc(u) => u.as_str(),
            Self::Region(r) => r.as_str(),
        }
    }
}

/// A complete e-licence identifier whose check character is correct.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Identifier {
    // `text` comes first so the derived ordering is plain string ordering.
    text: String,
    type_code: TypeCode,
    issuer: IssuerCode,
    /// Held inline, as the codes are: the text is the identifier's one allocation.
    serial: ArrayString<SERIAL_MAX>,
    version: ArrayString<VERSION_LEN>,
    check: char,
}

// Every other field follows from `text`: hashing it alone agrees with the derived equality, and
// with `str`'s hash, so maps keyed by identifiers can be asked with a `&str` (`Borrow`).
impl std::hash::Hash for Identifier {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl std::borrow::Borrow<str> for Identifier {
    fn borrow(&self) -> &str {
        &self.text
    }
}

fn compute_check(
    type_code: &TypeCode,
    issuer: &IssuerCode,
    serial: &str,
    version: &str,
) -> Result<char, IdError> {
    // The check covers the fields without their dots, so a check computed
    // over the dotted text would not interoperate.
    check_over([type_code.as_str(), issuer.as_str(), serial, version]).ok_or(IdError::Identifier(
        "character outside [0-9A-Z] in checked data",
    ))
}

impl Identifier {
    /// Assembles an identifier and computes its check character.
    pub fn new(
        type_code: TypeCode,
        issuer: IssuerCode,
        serial: &str,
        version: &str,
    ) -> Result<Self, IdError> {
        validate_serial(serial)?;
        validate_version(version)?;
        let check = compute_check(&type_code, &issuer, serial, version)?;
        let text = format!(
            "{PREFIX}{}.{}.{serial}.{version}.{check}",
            type_code.as_str(),
            issuer.as_str()
        );
        Ok(Self {
            text,
            type_code,
            issuer,
            serial: inline(serial, IdError::Identifier(SERIAL_RULE))?,
            version: inline(version, IdError::Identifier(VERSION_RULE))?,
            check,
        })
    }

    /// Parses the dotted form and verifies every part and the check
    /// character. Errors from embedded USCC or region codes are passed
    /// through unchanged.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() > MAX_LEN {
            return Err(IdError::Identifier("longer than 128 bytes"));
        }
        if !s.is_ascii() {
            return Err(IdError::Identifier("non-ASCII character"));
        }
        let rest = s
            .strip_prefix(PREFIX)
            .ok_or(IdError::Identifier("missing prefix 1.2.156.3005.2."))?;
        let mut fields = rest.split('.');
        let (Some(t), Some(i), Some(serial), Some(version), Some(check), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(IdError::Identifier(
                "expected 5 dot-separated fields after the prefix",
            ));
        };
        let type_code = TypeCode::parse(t)?;
        let issuer = IssuerCode::parse(i)?;
        validate_serial(serial)?;
        validate_version(version)?;
        let check = match check.as_bytes() {
            [b] if is_upper_alnum(*b) => char::from(*b),
            _ => {
                return Err(IdError::Identifier(
                    "check must be one character of [0-9A-Z]",
                ));
            }
        };
        if compute_check(&type_code, &issuer, serial, version)? != check {
            return Err(IdError::Identifier("check character mismatch"));
        }
        Ok(Self {
            text: s.to_owned(),
            type_code,
            issuer,
            serial: inline(serial, IdError::Identifier(SERIAL_RULE))?,
            version: inline(version, IdError::Identifier(VERSION_RULE))?,
            check,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn type_code(&self) -> &TypeCode {
        &self.type_code
    }

    pub fn issuer(&self) -> &IssuerCode {
        &self.issuer
    }

    pub fn serial(&self) -> &str {
        self.serial.as_str()
    }

    pub fn version(&self) -> &str {
        self.version.as_str()
    }

    pub fn check(&self) -> char {
        self.check
    }
}

macro_rules! str_traits {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $t {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    )*};
}

str_traits!(TypeCode, IssuerCode, Identifier);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A real identifier from a 2023 licence.
    const SAMPLE: &str =
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U";
    const SAMPLE_DATA: &str = "11100000000013338W01111430000006122244L20230000403001";
    const UPPER_ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    fn sample_parts() -> (TypeCode, IssuerCode) {
        (
            TypeCode::parse("11100000000013338W011").unwrap(),
            IssuerCode::parse("11430000006122244L").unwrap(),
        )
    }

    #[test]
    fn real_sample_parses() {
        let id = Identifier::parse(SAMPLE).unwrap();
        assert_eq!(id.as_str(), SAMPLE);
        assert_eq!(id.to_string(), SAMPLE);
        assert_eq!(SAMPLE.parse::<Identifier>().unwrap(), id);
        assert_eq!(id.type_code().as_str(), "11100000000013338W011");
        assert_eq!(id.type_code().authority().as_str(), "11100000000013338W");
        assert_eq!(id.type_code().number(), "011");
        assert!(matches!(id.issuer(), IssuerCode::Uscc(u) if u.as_str() == "11430000006122244L"));
        assert_eq!(id.serial(), "20230000403");
        assert_eq!(id.version(), "001");
        assert_eq!(id.check(), 'U');
    }

    #[test]
    fn mod37_36_on_sample_and_bad_chars() {
        assert_eq!(mod37_36_check(SAMPLE_DATA), Some('U'));
        assert_eq!(mod37_36_check("abc"), None);
        assert_eq!(mod37_36_check("1.2"), None);
        assert_eq!(mod37_36_check("É"), None);
    }

    #[test]
    fn mod37_36_check_satisfies_defining_equation() {
        // Re-run the hybrid recurrence over data‖check: a correct check
        // character leaves the running sum at exactly 1.
        for data in ["", "0", "Z", "ABC123", SAMPLE_DATA] {
            let c = mod37_36_check(data).unwrap();
            let mut p = 36u32;
            for b in data.bytes() {
                let s = match (p + mod36_value(b).unwrap()) % 36 {
                    0 => 36,
                    s => s,
                };
                p = (2 * s) % 37;
            }
            assert_eq!((p + mod36_value(c as u8).unwrap()) % 36, 1, "{data:?}");
        }
    }

    #[test]
    fn every_single_substitution_changes_the_check() {
        let original = SAMPLE_DATA.as_bytes();
        for pos in 0..original.len() {
            for &b in UPPER_ALNUM.iter().filter(|&&b| b != original[pos]) {
                let mut mutated = original.to_vec();
                mutated[pos] = b;
                let s = String::from_utf8(mutated).unwrap();
                assert_ne!(mod37_36_check(&s), Some('U'), "{s}");
            }
        }
    }

    #[test]
    fn every_single_substitution_in_dotted_form_is_rejected() {
        let original = SAMPLE.as_bytes();
        let mut tried = 0;
        for pos in PREFIX.len()..original.len() {
            if original[pos] == b'.' {
                continue;
            }
            for &b in UPPER_ALNUM.iter().filter(|&&b| b != original[pos]) {
                let mut mutated = original.to_vec();
                mutated[pos] = b;
                let s = String::from_utf8(mutated).unwrap();
                assert!(Identifier::parse(&s).is_err(), "accepted {s}");
                tried += 1;
            }
        }
        // 54 covered characters (53 data + check), 35 alternatives each.
        assert_eq!(tried, 54 * 35);
    }

    #[test]
    fn adjacent_transpositions_change_the_check() {
        let original = SAMPLE_DATA.as_bytes();
        let mut tried = 0;
        for pos in 0..original.len() - 1 {
            if original[pos] == original[pos + 1] {
                continue;
            }
            let mut swapped = original.to_vec();
            swapped.swap(pos, pos + 1);
            let s = String::from_utf8(swapped).unwrap();
            assert_ne!(mod37_36_check(&s), Some('U'), "{s}");
            tried += 1;
        }
        assert!(tried > 10);
    }

    #[test]
    fn adjacent_transpositions_in_dotted_form_are_rejected() {
        let original = SAMPLE.as_bytes();
        for pos in PREFIX.len()..original.len() - 1 {
            let (a, b) = (original[pos], original[pos + 1]);
            if a == b || a == b'.' || b == b'.' {
                continue;
            }
            let mut swapped = original.to_vec();
            swapped.swap(pos, pos + 1);
            let s = String::from_utf8(swapped).unwrap();
            assert!(Identifier::parse(&s).is_err(), "accepted {s}");
        }
    }

    #[test]
    fn wrong_prefix_is_rejected() {
        let tail = &SAMPLE[PREFIX.len()..];
        for prefix in [
            "1.2.156.3005.1.",
            "1.2.156.3006.2.",
            "2.2.156.3005.2.",
            " 1.2.156.3005.2.",
            "1.2.156.3005.2..",
            "",
        ] {
            let s = format!("{prefix}{tail}");
            assert!(Identifier::parse(&s).is_err(), "{s}");
        }
        assert_eq!(
            Identifier::parse(&format!("1.2.156.3005.1.{tail}")),
            Err(IdError::Identifier("missing prefix 1.2.156.3005.2."))
        );
    }

    #[test]
    fn wrong_version_is_rejected() {
        let (t, i) = sample_parts();
        for bad in ["", "01", "0001", "0A1", "00 "] {
            let s = format!("{PREFIX}{t}.{i}.20230000403.{bad}.U");
            assert_eq!(
                Identifier::parse(&s),
                Err(IdError::Identifier("version must be exactly 3 digits")),
                "{s}"
            );
            assert_eq!(
                Identifier::new(t.clone(), i.clone(), "20230000403", bad),
                Err(IdError::Identifier("version must be exactly 3 digits"))
            );
        }
    }

    #[test]
    fn bad_serials_are_rejected() {
        let (t, i) = sample_parts();
        let serial_err = Err(IdError::Identifier(
            "serial must be 1..=32 characters of [0-9A-Z]",
        ));
        let too_long = "1".repeat(SERIAL_MAX + 1);
        for bad in ["20230000403a", "a", "", "2023-0403", too_long.as_str()] {
            assert_eq!(
                Identifier::new(t.clone(), i.clone(), bad, "001"),
                serial_err,
                "{bad:?}"
            );
            let s = format!("{PREFIX}{t}.{i}.{bad}.001.U");
            assert!(Identifier::parse(&s).is_err(), "{s}");
        }
        // Lowercase must not be upper-cased into a valid identifier.
        let lower = SAMPLE.replace("20230000403", "2023000040a");
        assert_eq!(Identifier::parse(&lower), serial_err);
        let longest = "Z".repeat(SERIAL_MAX);
        assert!(Identifier::new(t, i, &longest, "001").is_ok());
    }

    #[test]
    fn new_reproduces_sample() {
        let (t, i) = sample_parts();
        let id = Identifier::new(t, i, "20230000403", "001").unwrap();
        assert_eq!(id.as_str(), SAMPLE);
        assert_eq!(id, Identifier::parse(SAMPLE).unwrap());
    }

    #[test]
    fn round_trip_new_then_parse() {
        let issuers = [
            IssuerCode::parse("341200").unwrap(),
            IssuerCode::parse("91350100M000100Y43").unwrap(),
        ];
        for issuer in issuers {
            for serial in ["1", "ABC123", "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"] {
                let t = TypeCode::parse("91350100M000100Y43999").unwrap();
                let built = Identifier::new(t, issuer.clone(), serial, "123").unwrap();
                let parsed = Identifier::parse(built.as_str()).unwrap();
                assert_eq!(parsed, built);
                assert_eq!(parsed.to_string(), built.to_string());
                assert!(parsed.as_str().len() <= MAX_LEN);
            }
        }
        let region = IssuerCode::parse("341200").unwrap();
        assert!(matches!(region, IssuerCode::Region(ref r) if r.as_str() == "341200"));
    }

    #[test]
    fn length_bound_is_checked_first() {
        // Would fail several other ways, but length must win.
        let huge = "é".repeat(100);
        assert_eq!(
            Identifier::parse(&huge),
            Err(IdError::Identifier("longer than 128 bytes"))
        );
        let long = format!("{SAMPLE}{}", "0".repeat(MAX_LEN + 1 - SAMPLE.len()));
        assert_eq!(long.len(), MAX_LEN + 1);
        assert_eq!(
            Identifier::parse(&long),
            Err(IdError::Identifier("longer than 128 bytes"))
        );
    }

    #[test]
    fn non_ascii_is_rejected() {
        let s = SAMPLE.replace('W', "Ｗ");
        assert_eq!(
            Identifier::parse(&s),
            Err(IdError::Identifier("non-ASCII character"))
        );
    }

    #[test]
    fn wrong_field_count_is_rejected() {
        let fields_err = Err(IdError::Identifier(
            "expected 5 dot-separated fields after the prefix",
        ));
        assert_eq!(Identifier::parse(&format!("{SAMPLE}.0")), fields_err);
        assert_eq!(Identifier::parse(SAMPLE.trim_end_matches(".U")), fields_err);
        assert!(Identifier::parse(&SAMPLE.replace(".U", ".UU")).is_err());
        assert!(Identifier::parse(&SAMPLE.replace(".U", ".")).is_err());
        assert!(Identifier::parse(&SAMPLE.replace(".U", ".u")).is_err());
    }

    #[test]
    fn type_code_validation() {
        let t = TypeCode::parse("11100000000013338W011").unwrap();
        assert_eq!(t.to_string(), "11100000000013338W011");
        assert_eq!("11100000000013338W011".parse::<TypeCode>().unwrap(), t);
        // Bad USCC checksum surfaces as a USCC error.
        assert_eq!(
            TypeCode::parse("11100000000013338X011"),
            Err(IdError::Uscc("check character mismatch"))
        );
        assert_eq!(
            TypeCode::parse("11100000000013338W01A"),
            Err(IdError::Identifier("type code must end in 3 digits"))
        );
        for bad in [
            "11100000000013338W01",
            "11100000000013338W0111",
            "1110000000001333éW01",
        ] {
            assert!(TypeCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn issuer_code_validation() {
        assert!(matches!(
            IssuerCode::parse("11430000006122244L").unwrap(),
            IssuerCode::Uscc(_)
        ));
        assert_eq!(IssuerCode::parse("340700").unwrap().to_string(), "340700");
        assert_eq!(
            IssuerCode::parse("11430000006122244M"),
            Err(IdError::Uscc("check character mismatch"))
        );
        assert!(IssuerCode::parse("990000").is_err());
        for bad in ["", "34070", "3407000", "1143000000612224L"] {
            assert_eq!(
                IssuerCode::parse(bad),
                Err(IdError::Identifier(
                    "issuer must be an 18-character USCC or a 6-digit region code"
                )),
                "{bad}"
            );
        }
    }
}
