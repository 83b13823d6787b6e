//! Property tests: no single-byte change to a valid certificate or disclosure is accepted, and no
//! input makes any decoder panic.

use proptest::prelude::*;
use tongban_core::cert::{self, Disclosure, Verification};
use tongban_core::envelope::{Envelope, Kind};
use tongban_core::suite::Suite;
use tongban_core::testkit::vectors::generate;
use tongban_core::testkit::{NOW, SeededSalts, TestFederation};
use tongban_core::trust::{StatusSnapshot, StatusTable, TrustStore};
use tongban_core::values::Time;
use tongban_core::{Code, cbor};

struct Fixture {
    trust: TrustStore,
    valid: Vec<u8>,
}

fn fixture() -> Fixture {
    let set = generate().unwrap_or_else(|e| panic!("vectors: {e}"));
    let now = Time::new(NOW).unwrap_or_else(|| panic!("now"));
    let trust = TrustStore::load(&set.bundle, now, None).unwrap_or_else(|e| panic!("{e}"));
    let valid = set
        .certificates
        .iter()
        .find(|c| c.name == "valid-full-disclosure")
        .map(|c| c.bytes.clone())
        .unwrap_or_else(|| panic!("case missing"));
    Fixture { trust, valid }
}

fn check(f: &Fixture, bytes: &[u8]) -> Verification {
    let now = Time::new(NOW).unwrap_or_else(|| panic!("now"));
    cert::verify(bytes, &f.trust, &StatusTable::default(), now)
}

#[test]
fn every_bit_flip_of_a_valid_certificate_is_rejected() {
    let f = fixture();
    assert_eq!(check(&f, &f.valid).code, Code::Ok);
    for position in 0..f.valid.len() {
        for bit in 0..8 {
            let mut mutated = f.valid.clone();
            mutated[position] ^= 1 << bit;
            let result = check(&f, &mutated);
            assert!(
                !result.is_valid(),
                "flip of bit {bit} at byte {position} accepted"
            );
        }
    }
}

#[test]
fn every_byte_change_inside_a_disclosure_breaks_its_digest() {
    let f = fixture();
    let envelope = Envelope::open(&f.valid, Kind::Certificate).unwrap_or_else(|e| panic!("{e}"));
    let claims = cert::Claims::decode(envelope.payload).unwrap_or_else(|e| panic!("{e}"));
    for original in &envelope.disclosures {
        for position in 0..original.len() {
            for value in [0x00u8, 0x01, 0x7f, 0x80, 0xff] {
                let mut mutated = original.to_vec();
                if mutated[position] == value {
                    continue;
                }
                mutated[position] = value;
                if let Ok(d) = Disclosure::open(Suite::Ed25519, &mutated) {
                    assert!(claims.digests.binary_search(&d.digest).is_err());
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_single_byte_replacement_is_rejected(position in any::<prop::sample::Index>(), value in any::<u8>()) {
        let f = FIXTURE.with(|f| f.valid.clone());
        let at = position.index(f.len());
        prop_assume!(f[at] != value);
        let mut mutated = f;
        mutated[at] = value;
        let valid = FIXTURE.with(|fx| check(fx, &mutated).is_valid());
        prop_assert!(!valid);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        FIXTURE.with(|f| {
            let _ = cbor::check(&bytes, 65_536, true);
            let _ = Envelope::open(&bytes, Kind::Certificate);
            let _ = cert::inspect(&bytes);
            let _ = check(f, &bytes);
            let _ = Disclosure::open(Suite::Ed25519, &bytes);
            let _ = StatusSnapshot::load(&bytes, &f.trust);
            let _ = TrustStore::load(&bytes, Time::new(NOW).unwrap_or_else(|| panic!("now")), None);
        });
    }

    #[test]
    fn mangled_certificates_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        FIXTURE.with(|f| {
            let mut bytes = f.valid.clone();
            for (index, value, op) in edits {
                let at = index.index(bytes.len().max(1));
                match op {
                    0 if at < bytes.len() => bytes[at] = value,
                    1 => bytes.insert(at.min(bytes.len()), value),
                    _ if at < bytes.len() => { bytes.remove(at); }
                    _ => {}
                }
            }
            let _ = cert::inspect(&bytes);
            let _ = check(f, &bytes);
        });
    }
}

thread_local! {
    static FIXTURE: Fixture = fixture();
}

#[test]
fn presenting_fewer_fields_keeps_the_signature() {
    let f = fixture();
    let one =
        cert::present(&f.valid, |n| n.as_str() == "holder.name").unwrap_or_else(|e| panic!("{e}"));
    let result = check(&f, &one);
    assert_eq!(result.code, Code::Ok);
    assert_eq!(result.disclosed.len(), 1);
    assert_eq!(result.undisclosed, 5);
    // The certificate digest names the issued certificate whatever is disclosed.
    assert_eq!(result.digest, check(&f, &f.valid).digest);
}

#[test]
fn issuing_with_fresh_salts_gives_fresh_digests() {
    let federation = TestFederation::standard().unwrap_or_else(|e| panic!("{e}"));
    let seal = federation.amr();
    let draft = federation
        .draft(seal, "2026009999")
        .unwrap_or_else(|e| panic!("{e}"));
    let a = cert::issue(&draft, &seal.info, &seal.key, &mut SeededSalts::new("a"))
        .unwrap_or_else(|e| panic!("{e}"));
    let b = cert::issue(&draft, &seal.info, &seal.key, &mut SeededSalts::new("b"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(a.claims.digests, b.claims.digests);
    assert_ne!(a.digest, b.digest);
}
