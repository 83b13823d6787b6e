//! The signed envelope: Tongban's COSE_Sign1 profile (specs/encoding.md §2).

use coset::{CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};

use crate::cbor::{self, Key, Reader, Strict, TAG_COSE_SIGN1};
use crate::codes::{Code, Failure};
use crate::keys::{KeyId, Message, PublicKey, SecretKey};
use crate::suite::Suite;

/// COSE header label of the algorithm, key id and object type (RFC 9052, RFC 9596).
const LABEL_ALG: i64 = 1;
const LABEL_KID: i64 = 4;
const LABEL_TYP: i64 = 16;
/// Private-use unprotected header label that carries an e-certificate's disclosures.
pub const LABEL_DISCLOSURES: i64 = -65537;
/// At most this many disclosures travel with one certificate.
pub const MAX_DISCLOSURES: usize = 256;

/// The kinds of signed object; each has its own `typ` and size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Region,
    Seal,
    SealRevocation,
    TrustBundle,
    StatusSnapshot,
    /// A region's status list (specs/status.md §5): a Token Status List in its CWT form.
    StatusList,
    Certificate,
    LogEntry,
    /// A region's signed answer to another region's verification request (specs/sharing.md §3).
    VerificationProof,
    /// An agency's request for chosen fields of another region's certificate (sharing.md §4.1).
    ShareRequest,
    /// An agency's request to resolve a holder's presentation code (亮证码, presentation.md §2).
    PresentationRequest,
    /// A purpose-bound copy (加注件, sharing.md §4.3).
    Copy,
    Membership,
}

impl Kind {
    pub const fn typ(self) -> &'static str {
        match self {
            Kind::Region => "application/tongban-region+cbor",
            Kind::Seal => "application/tongban-seal+cbor",
            Kind::SealRevocation => "application/tongban-seal-revocation+cbor",
            Kind::TrustBundle => "application/tongban-trust+cbor",
            Kind::StatusSnapshot => "application/tongban-status+cbor",
            // The draft's own media type: a Status List Token in CWT form.
            Kind::StatusList => "application/statuslist+cwt",
            Kind::Certificate => "application/tongban-ecert+cwt",
            Kind::LogEntry => "application/tongban-log-entry+cbor",
            Kind::VerificationProof => "application/tongban-verification-proof+cbor",
            Kind::ShareRequest => "application/tongban-share-request+cbor",
            Kind::PresentationRequest => "application/tongban-presentation-request+cbor",
            Kind::Copy => "application/tongban-copy+cbor",
            Kind::Membership => "application/tongban-membership+cbor",
        }
    }

    pub const fn size_limit(self) -> u64 {
        match self {
            Kind::TrustBundle => 16 << 20,
            Kind::StatusSnapshot => 256 << 20,
            // Compressed: a few hundred bytes per changed certificate at worst.
            Kind::StatusList => 64 << 20,
            // A tlog-tiles entry bundle prefixes each entry with a uint16 length.
            Kind::LogEntry => 65_535,
            // A receipt and two tlog-proofs, each of which carries a whole log entry in base64.
            Kind::VerificationProof => 512 << 10,
            // A share request and a certificate, each up to 64 KiB.
            Kind::Copy => 256 << 10,
            Kind::Membership => 1 << 20,
            _ => 65_536,
        }
    }
}

/// A structurally valid envelope (verification steps 1–6), borrowed from the received bytes.
/// Its signature is not checked yet: see [`Envelope::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub kind: Kind,
    /// The protected header exactly as received: what the signature covers.
    pub protected: &'a [u8],
    pub kid: KeyId,
    /// The suite its `alg` names.
    pub suite: Suite,
    /// The payload exactly as received.
    pub payload: &'a [u8],
    pub signature: [u8; 64],
    /// Disclosure byte strings from the unprotected header (certificates only), in received order.
    pub disclosures: Vec<&'a [u8]>,
}

impl<'a> Envelope<'a> {
    /// Steps 1–6 of specs/verification.md §2 for an object of `kind`.
    pub fn open(input: &'a [u8], kind: Kind) -> Result<Envelope<'a>, Failure> {
        let limit = kind.size_limit();
        if input.len() as u64 > limit {
            return Err(Failure::new(
                Code::TooLarge,
                format!("{} bytes; the limit is {limit}", input.len()),
            ));
        }
        // Nearly every envelope a verifier meets is as an issuer writes it, and one strict pass
        // reads it; anything else is read again the long way, which names the rule broken.
        match Envelope::read_strict(input, kind) {
            Some(envelope) => Ok(envelope),
            None => Envelope::read_checked(input, kind),
        }
    }

    /// Steps 1–6 in one pass for the envelope an issuer writes: tag 18, `[protected, unprotected,
    /// payload, signature]`, protected `{1: alg, 4: kid, 16: typ}` in that order, and the
    /// unprotected header empty or (certificates) `{-65537: [disclosures]}`. `None` for anything
    /// else, whether [`Envelope::read_checked`] would refuse it or not; where this answers, that
    /// answers the same.
    fn read_strict(input: &'a [u8], kind: Kind) -> Option<Envelope<'a>> {
        // Tag 18 in its shortest head; `Strict` reads no tags. The caller checked the size, so
        // no length or count that fits can exceed the limit (see `Strict`).
        let mut s = Strict::new(input.strip_prefix(&[0xd2])?);
        if s.array()? != 4 {
            return None;
        }
        let protected = s.bytes()?;
        let disclosures = match s.map()? {
            0 => Vec::new(),
            1 if kind == Kind::Certificate && s.int()? == LABEL_DISCLOSURES => {
                let count = usize::try_from(s.array()?).ok()?;
                if !(1..=MAX_DISCLOSURES).contains(&count) {
                    return None;
                }
                (0..count).map(|_| s.bytes()).collect::<Option<Vec<_>>>()?
            }
            _ => return None,
        };
        let payload = s.bytes()?;
        let signature = <[u8; 64]>::try_from(s.bytes()?).ok()?;
        if !s.at_end() {
            return None;
        }
        let (suite, kid) = read_protected_strict(protected, kind)?;
        Some(Envelope {
            kind,
            protected,
            kid,
            suite,
            payload,
            signature,
            disclosures,
        })
    }

    /// Steps 1–6 as the rules' order puts them: the strict CBOR check of the whole, then each
    /// part's shape, each refusal with its own code.
    fn read_checked(input: &'a [u8], kind: Kind) -> Result<Envelope<'a>, Failure> {
        let limit = kind.size_limit();
        cbor::check(input, limit, true)?;
        let mut reader = Reader::new(input);
        if reader.tag() != Some(TAG_COSE_SIGN1) {
            return Err(Failure::new(
                Code::CoseWrongTag,
                "not tagged 18 (COSE_Sign1)",
            ));
        }
        let malformed = |what: &str| Failure::new(Code::CoseMalformed, what.to_owned());
        if reader.array() != Some(4) {
            return Err(malformed("not an array of four items"));
        }
        let protected = reader
            .bytes()
            .ok_or_else(|| malformed("protected header not a byte string"))?;
        if !reader.next_is_map() {
            return Err(malformed("unprotected header not a map"));
        }
        let unprotected = reader
            .skip()
            .ok_or_else(|| malformed("unprotected header"))?;
        let payload = reader
            .bytes()
            .ok_or_else(|| malformed("payload not a byte string"))?;
        let signature = reader
            .bytes()
            .and_then(|s| <[u8; 64]>::try_from(s).ok())
            .ok_or_else(|| malformed("signature not a 64-byte string"))?;
        cbor::check(protected, limit, false)?;
        let (suite, kid) = read_protected(protected, kind)?;
        let disclosures = read_unprotected(unprotected, kind)?;
        Ok(Envelope {
            kind,
            protected,
            kid,
            suite,
            payload,
            signature,
            disclosures,
        })
    }

    /// Step 8: the suite's strict verification over the Sig_structure of the exact received
    /// bytes, by a key of the suite the envelope names.
    pub fn verify(&self, key: &PublicKey) -> Result<(), Failure> {
        if key.suite() != self.suite {
            return Err(Failure::new(
                Code::AlgUnsupported,
                format!(
                    "the object is signed with {} but key {} is an {} key",
                    self.suite,
                    key.kid(),
                    key.suite()
                ),
            ));
        }
        if key.verify_strict(&self.signed_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(signature_invalid(key))
        }
    }

    /// The message the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        self.sig_structure().to_vec()
    }

    /// The message the signature covers, in pieces.
    pub fn sig_structure(&self) -> SigStructure<'a> {
        SigStructure {
            protected: self.protected,
            payload: self.payload,
        }
    }

    /// The suite's hash (BLAKE3 or SM3) of the bare envelope (empty unprotected header): the
    /// certificate digest of specs/encoding.md §4, the same whatever disclosures travel with it.
    pub fn digest(&self) -> [u8; 32] {
        let mut bare = Vec::with_capacity(self.protected.len() + self.payload.len() + 80);
        bare.extend_from_slice(&[0xd2, 0x84]);
        cbor::write_bytes(&mut bare, self.protected);
        bare.push(0xa0);
        cbor::write_bytes(&mut bare, self.payload);
        cbor::write_bytes(&mut bare, &self.signature);
        self.suite.digest(&bare)
    }
}

/// `["Signature1", protected, h'', payload]`, encoded with shortest heads (RFC 9052 §4.4).
pub fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    SigStructure { protected, payload }.to_vec()
}

/// The Sig_structure `["Signature1", protected, h'', payload]` with shortest heads (RFC 9052
/// §4.4), held as its two variable parts: a hash takes it in pieces, so the bulk verifier never
/// copies a batch's messages (about a certificate's size each) into a buffer of their own.
#[derive(Clone, Copy, Debug)]
pub struct SigStructure<'a> {
    pub protected: &'a [u8],
    pub payload: &'a [u8],
}

impl SigStructure<'_> {
    /// The encoding in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.protected.len() + self.payload.len() + 24);
        self.feed(|piece| out.extend_from_slice(piece));
        out
    }
}

impl Message for SigStructure<'_> {
    fn feed(&self, mut take: impl FnMut(&[u8])) {
        take(b"\x84\x6aSignature1");
        take(&cbor::bytes_head(self.protected.len()));
        take(self.protected);
        take(&[0x40]);
        take(&cbor::bytes_head(self.payload.len()));
        take(self.payload);
    }
}

/// The protected header as [`seal`] writes it, `{1: alg, 4: kid, 16: typ}` in that order, read in
/// one pass; `None` for anything else.
fn read_protected_strict(protected: &[u8], kind: Kind) -> Option<(Suite, KeyId)> {
    let mut s = Strict::new(protected);
    if s.map()? != 3 || !s.key(Key::Int(LABEL_ALG)) {
        return None;
    }
    let suite = Suite::from_cose_alg(s.int()?)?;
    if !s.key(Key::Int(LABEL_KID)) {
        return None;
    }
    let kid = KeyId::from_slice(s.bytes()?)?;
    if !s.key(Key::Int(LABEL_TYP)) || s.text()? != kind.typ() || !s.at_end() {
        return None;
    }
    Some((suite, kid))
}

fn read_protected(protected: &[u8], kind: Kind) -> Result<(Suite, KeyId), Failure> {
    let invalid = |what: &str| Failure::new(Code::HeaderInvalid, what.to_owned());
    let mut reader = Reader::new(protected);
    let count = reader
        .map()
        .ok_or_else(|| invalid("protected header not a map"))?;
    let (mut suite, mut alg_seen, mut kid, mut typ, mut extra) = (None, false, None, None, false);
    for _ in 0..count {
        let key = reader
            .key()
            .ok_or_else(|| invalid("protected header key"))?;
        let mut value = reader.clone();
        reader
            .skip()
            .ok_or_else(|| invalid("protected header value"))?;
        match key {
            Key::Int(LABEL_ALG) => {
                alg_seen = true;
                suite = value.int().and_then(Suite::from_cose_alg);
            }
            Key::Int(LABEL_KID) => kid = Some(value.bytes().and_then(KeyId::from_slice)),
            Key::Int(LABEL_TYP) => typ = Some(value.text()),
            _ => extra = true,
        }
    }
    if alg_seen && suite.is_none() {
        return Err(Failure::new(
            Code::AlgUnsupported,
            "algorithm is neither EdDSA (-8) nor SM2 with SM3 (-65581)",
        ));
    }
    let (Some(Some(kid)), Some(Some(typ)), Some(suite), false) = (kid, typ, suite, extra) else {
        return Err(invalid(
            "protected header must be exactly {1: alg, 4: kid(16 bytes), 16: typ}",
        ));
    };
    if typ != kind.typ() {
        return Err(Failure::new(
            Code::WrongType,
            format!("typ is {typ:?}, expected {:?}", kind.typ()),
        ));
    }
    Ok((suite, kid))
}

fn read_unprotected(unprotected: &[u8], kind: Kind) -> Result<Vec<&[u8]>, Failure> {
    let invalid = |what: &str| Failure::new(Code::HeaderInvalid, what.to_owned());
    let mut reader = Reader::new(unprotected);
    match reader.map() {
        Some(0) => return Ok(Vec::new()),
        Some(1) if kind == Kind::Certificate => {}
        _ => return Err(invalid("unprotected header must be empty")),
    }
    if reader.key() != Some(Key::Int(LABEL_DISCLOSURES)) {
        return Err(invalid(
            "unprotected header may only hold disclosures (-65537)",
        ));
    }
    let count = reader.array().unwrap_or(0) as usize;
    if !(1..=MAX_DISCLOSURES).contains(&count) {
        return Err(invalid(
            "disclosures must be an array of 1 to 256 byte strings",
        ));
    }
    (0..count)
        .map(|_| {
            reader
                .bytes()
                .ok_or_else(|| invalid("a disclosure is not a byte string"))
        })
        .collect()
}

/// Why an object could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("COSE encoding failed: {0}")]
    Cose(String),
    #[error("invalid input: {0}")]
    Invalid(String),
}

/// Signs `payload` (an encoded CBOR map) as an object of `kind`; `disclosures` go in the unprotected
/// header and must be empty for every kind but certificates.
pub fn seal(
    kind: Kind,
    signer: &SecretKey,
    payload: Vec<u8>,
    disclosures: &[Vec<u8>],
) -> Result<Vec<u8>, BuildError> {
    if kind != Kind::Certificate && !disclosures.is_empty() {
        return Err(BuildError::Invalid(
            "only certificates carry disclosures".into(),
        ));
    }
    if disclosures.len() > MAX_DISCLOSURES {
        return Err(BuildError::Invalid("more than 256 disclosures".into()));
    }
    let alg = match signer.suite() {
        Suite::Ed25519 => coset::Algorithm::Assigned(iana::Algorithm::EdDSA),
        // COSE's private-use range (specs/encoding.md §2): no IANA value exists for SM2.
        Suite::Sm2 => coset::Algorithm::PrivateUse(crate::suite::ALG_SM2_SM3),
    };
    let mut protected = HeaderBuilder::new()
        .key_id(signer.public().kid().0.to_vec())
        .value(LABEL_TYP, ciborium::Value::Text(kind.typ().to_owned()))
        .build();
    protected.alg = Some(alg);
    let mut unprotected = HeaderBuilder::new();
    if !disclosures.is_empty() {
        let items = disclosures
            .iter()
            .cloned()
            .map(ciborium::Value::Bytes)
            .collect();
        unprotected = unprotected.value(LABEL_DISCLOSURES, ciborium::Value::Array(items));
    }
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected.build())
        .payload(payload)
        .create_signature(b"", |tbs| signer.sign(tbs).to_vec())
        .build();
    let bytes = sign1
        .to_tagged_vec()
        .map_err(|e| BuildError::Cose(e.to_string()))?;
    // Our own parser is the referee: never hand out bytes a verifier would refuse.
    Envelope::open(&bytes, kind).map_err(|f| BuildError::Cose(f.to_string()))?;
    Ok(bytes)
}

/// Encodes a ciborium value (shortest heads, definite lengths; map order as given).
pub fn encode(value: &ciborium::Value) -> Result<Vec<u8>, BuildError> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|e| BuildError::Cose(e.to_string()))?;
    Ok(out)
}

/// Step 8's refusal, wherever the signature was checked (alone, or in a bulk run).
pub(crate) fn signature_invalid(key: &PublicKey) -> Failure {
    Failure::new(
        Code::SignatureInvalid,
        format!("signature does not verify under key {}", key.kid()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value;

    fn key() -> SecretKey {
        SecretKey::from_seed(&[3u8; 32]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn sig_structure_in_pieces_is_the_rfc_9052_encoding() {
        // Lengths on both sides of every head width a protected header or payload can take.
        let lengths = [0, 1, 23, 24, 255, 256, 65_535, 65_536];
        for protected in lengths {
            for payload in lengths {
                let protected = vec![0xa5; protected];
                let payload = vec![0x5a; payload];
                let expected = encode(&Value::Array(vec![
                    Value::Text("Signature1".into()),
                    Value::Bytes(protected.clone()),
                    Value::Bytes(Vec::new()),
                    Value::Bytes(payload.clone()),
                ]))
                .unwrap_or_else(|e| panic!("{e}"));
                let pieces = SigStructure {
                    protected: &protected,
                    payload: &payload,
                };
                assert_eq!(pieces.to_vec(), expected);
                let mut fed = Vec::new();
                pieces.feed(|piece| fed.extend_from_slice(piece));
                assert_eq!(fed, expected);
                assert_eq!(sig_structure(&protected, &payload), expected);
            }
        }
    }

    fn payload() -> Vec<u8> {
        encode(&Value::Map(vec![(
            Value::Text("v".into()),
            Value::Integer(1.into()),
        )]))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn seal_then_open_and_verify() -> Result<(), Box<dyn std::error::Error>> {
        let signer = key();
        let bytes = seal(Kind::Seal, &signer, payload(), &[])?;
        let envelope = Envelope::open(&bytes, Kind::Seal)?;
        assert_eq!(envelope.kid, signer.public().kid());
        assert_eq!(envelope.payload, payload().as_slice());
        envelope.verify(signer.public())?;
        // Protected header is emitted as {1: -8, 4: kid, 16: typ}, in that order.
        assert_eq!(&envelope.protected[..4], &[0xa3, 0x01, 0x27, 0x04]);
        Ok(())
    }

    #[test]
    fn kind_confusion_is_wrong_type() -> Result<(), Box<dyn std::error::Error>> {
        let bytes = seal(Kind::Seal, &key(), payload(), &[])?;
        let failure = Envelope::open(&bytes, Kind::Certificate).err();
        assert_eq!(failure.map(|f| f.code), Some(Code::WrongType));
        Ok(())
    }

    #[test]
    fn signature_over_other_bytes_fails() -> Result<(), Box<dyn std::error::Error>> {
        let signer = key();
        let mut bytes = seal(Kind::Region, &signer, payload(), &[])?;
        let at = bytes.len() - 70; // inside the payload
        bytes[at] ^= 1;
        let outcome = Envelope::open(&bytes, Kind::Region).and_then(|e| e.verify(signer.public()));
        assert!(outcome.is_err());
        Ok(())
    }

    #[test]
    fn an_sm2_envelope_names_its_algorithm_and_verifies_only_under_an_sm2_key()
    -> Result<(), Box<dyn std::error::Error>> {
        let signer = SecretKey::from_suite_seed(Suite::Sm2, &[3u8; 32])?;
        let bytes = seal(Kind::Seal, &signer, payload(), &[])?;
        let envelope = Envelope::open(&bytes, Kind::Seal)?;
        assert_eq!(envelope.suite, Suite::Sm2);
        assert_eq!(envelope.kid, signer.public().kid());
        // {1: -65581, 4: kid, 16: typ}: -65581 is 0x3a 0x00 0x01 0x00 0x2c.
        assert_eq!(
            &envelope.protected[..7],
            &[0xa3, 0x01, 0x3a, 0x00, 0x01, 0x00, 0x2c]
        );
        envelope.verify(signer.public())?;
        // The same seed as an Ed25519 key: refused for its suite, before any arithmetic.
        let failure = envelope.verify(key().public()).err();
        assert_eq!(failure.map(|f| f.code), Some(Code::AlgUnsupported));
        // And an Ed25519 envelope under an SM2 key.
        let ed_bytes = seal(Kind::Seal, &key(), payload(), &[])?;
        let ed = Envelope::open(&ed_bytes, Kind::Seal)?;
        let failure = ed.verify(signer.public()).err();
        assert_eq!(failure.map(|f| f.code), Some(Code::AlgUnsupported));
        // The digest is SM3 of the bare envelope.
        use sm3::Digest;
        let sm3: [u8; 32] = sm3::Sm3::digest(&bytes).into();
        assert_eq!(envelope.digest(), sm3);
        Ok(())
    }

    #[test]
    fn an_unknown_algorithm_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let bytes = seal(Kind::Seal, &key(), payload(), &[])?;
        // Protected header {1: -8, ...} → {1: -7 (ES256), ...}: 0x27 → 0x26.
        let at = bytes
            .windows(4)
            .position(|w| w == [0xa3, 0x01, 0x27, 0x04])
            .ok_or("no protected header")?;
        let mut other = bytes.clone();
        other[at + 2] = 0x26;
        let failure = Envelope::open(&other, Kind::Seal).err();
        assert_eq!(failure.map(|f| f.code), Some(Code::AlgUnsupported));
        Ok(())
    }

    /// The one-pass read answers only where the long way accepts, and then the same; and it
    /// reads every envelope `seal` writes.
    mod strict_read {
        use super::*;
        use proptest::prelude::*;

        const KINDS: [Kind; 3] = [Kind::Certificate, Kind::Seal, Kind::StatusList];

        fn sealed() -> impl Strategy<Value = (Vec<u8>, Kind)> {
            (
                any::<bool>(),
                0..KINDS.len(),
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..30), 0..4),
            )
                .prop_map(|(sm2, kind, text, disclosures)| {
                    let kind = KINDS[kind];
                    let suite = if sm2 { Suite::Sm2 } else { Suite::Ed25519 };
                    let signer = SecretKey::from_suite_seed(suite, &[5u8; 32])
                        .unwrap_or_else(|e| panic!("{e}"));
                    let payload = encode(&Value::Map(vec![(
                        Value::Text("b".into()),
                        Value::Bytes(text),
                    )]))
                    .unwrap_or_else(|e| panic!("{e}"));
                    let disclosures = if kind == Kind::Certificate {
                        disclosures
                    } else {
                        Vec::new()
                    };
                    let bytes = seal(kind, &signer, payload, &disclosures)
                        .unwrap_or_else(|e| panic!("{e}"));
                    (bytes, kind)
                })
        }

        proptest! {
            #[test]
            fn reads_what_seal_wrote((bytes, kind) in sealed()) {
                let strict = Envelope::read_strict(&bytes, kind);
                prop_assert!(strict.is_some());
                prop_assert_eq!(strict, Envelope::read_checked(&bytes, kind).ok());
            }

            #[test]
            fn never_accepts_what_the_long_way_refuses(
                (bytes, kind) in sealed(),
                at in any::<usize>(),
                byte in any::<u8>(),
                how in 0..4u8,
                other in 0..KINDS.len(),
            ) {
                let bytes = crate::testkit::mutate(bytes, at, byte, how);
                // Read as its own kind and as another.
                for kind in [kind, KINDS[other]] {
                    if let Some(strict) = Envelope::read_strict(&bytes, kind) {
                        prop_assert_eq!(Ok(strict), Envelope::read_checked(&bytes, kind));
                    }
                }
            }
        }
    }

    /// Shapes one byte away from what `seal` writes that mutations rarely reach: the fast path
    /// leaves them to the long way, which refuses them with its own codes.
    #[test]
    fn near_misses_go_the_long_way() -> Result<(), Box<dyn std::error::Error>> {
        let bytes = seal(Kind::Seal, &key(), payload(), &[])?;
        // The empty unprotected header (the byte after the protected header's bytes).
        let unprotected = 2 + 2 + usize::from(bytes[3]);
        assert_eq!(bytes[unprotected], 0xa0);
        // A seal carrying disclosures {-65537: [h'']}: only certificates may.
        let mut disclosing = bytes.clone();
        disclosing.splice(
            unprotected..=unprotected,
            [0xa1, 0x3a, 0x00, 0x01, 0x00, 0x00, 0x81, 0x40],
        );
        // A protected header with a byte after its map.
        let mut trailing = bytes.clone();
        trailing.insert(unprotected, 0x00);
        trailing[3] += 1;
        for (bytes, code) in [
            (disclosing, Code::HeaderInvalid),
            (trailing, Code::CborTrailingBytes),
        ] {
            assert_eq!(Envelope::read_strict(&bytes, Kind::Seal), None);
            let failure = Envelope::open(&bytes, Kind::Seal).err();
            assert_eq!(failure.map(|f| f.code), Some(code));
        }
        Ok(())
    }

    #[test]
    fn disclosures_only_on_certificates() {
        let refused = seal(Kind::Seal, &key(), payload(), &[vec![0x80]]);
        assert!(matches!(refused, Err(BuildError::Invalid(_))));
    }
}
