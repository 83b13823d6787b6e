//! Which keys and signatures may go into a batch (specs/bulk.md §4).
//!
//! The batch [`equation`](crate::bulk::equation) checks one random linear combination of the
//! cofactorless equations. Strict verification (specs/encoding.md §2.2) also refuses things that equation lets
//! through: a small-order key, `S ≥ L`, a non-canonical or small-order `R`, and a key with a
//! torsion component (where the random coefficient can cancel the torsion). Everything the screen
//! can decide cheaply is decided here, so that what enters a batch is what strict verification
//! would judge the same way; whatever the screen refuses is checked one by one with
//! `verify_strict`, so the screen never decides a verdict on its own.

use std::sync::OnceLock;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::VerifyingKey;

/// How a seal key may be used by the bulk verifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyClass {
    /// Small order: refused outright; it never enters the seal table.
    Weak,
    /// A valid key with a torsion component: its signatures are checked one by one.
    StrictOnly,
    /// In the prime-order subgroup: its signatures may be batched.
    Batchable,
}

/// Classifies a key once, when the seal table is prepared (a torsion check costs a scalar
/// multiplication, far too much per certificate but nothing per seal).
pub fn classify_key(key: &VerifyingKey) -> KeyClass {
    if key.is_weak() {
        KeyClass::Weak
    } else if key.to_edwards().is_torsion_free() {
        KeyClass::Batchable
    } else {
        KeyClass::StrictOnly
    }
}

/// The encodings of the eight small-order points, each with either sign bit: an `R` with one of
/// these bytes fails strict verification, and the cofactorless batch equation cannot see that.
fn small_order_encodings() -> &'static [[u8; 32]; 16] {
    static ENCODINGS: OnceLock<[[u8; 32]; 16]> = OnceLock::new();
    ENCODINGS.get_or_init(|| {
        let mut out = [[0u8; 32]; 16];
        for (i, point) in EIGHT_TORSION.iter().enumerate() {
            let bytes = point.compress().to_bytes();
            out[2 * i] = bytes;
            out[2 * i + 1] = bytes;
            out[2 * i + 1][31] ^= 0x80;
        }
        out
    })
}

/// Whether the 32 bytes of `R` are a canonical field encoding (y < p = 2^255 − 19). A
/// non-canonical `R` never passes strict verification, which compares encodings, but the batch
/// equation works on the decoded point and would accept it.
fn canonical_y(r: &[u8; 32]) -> bool {
    // y ≥ p exactly when bytes 1..31 are 0xff, the top byte (sign bit cleared) is 0x7f and the
    // lowest byte is at least 0xed.
    let top = r[31] & 0x7f;
    !(top == 0x7f && r[1..31].iter().all(|&b| b == 0xff) && r[0] >= 0xed)
}

/// Whether a signature may enter a batch: `S < L`, and `R` canonical and not of small order.
/// Costs a few dozen nanoseconds: no point is decompressed.
pub fn batchable_signature(signature: &[u8; 64]) -> bool {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    s.copy_from_slice(&signature[32..]);
    let s_canonical = bool::from(Scalar::from_canonical_bytes(s).is_some());
    s_canonical && canonical_y(&r) && !is_small_order_encoding(&r)
}

fn is_small_order_encoding(r: &[u8; 32]) -> bool {
    // Compare eight bytes first: an honest R matches none of the sixteen.
    let head = |bytes: &[u8; 32]| {
        u64::from_le_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
        ])
    };
    let r_head = head(r);
    small_order_encodings()
        .iter()
        .any(|e| head(e) == r_head && e == r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    fn valid_signature() -> ([u8; 64], SecretKey) {
        let key = SecretKey::from_seed(&[9u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        (key.sign(b"message"), key)
    }

    #[test]
    fn honest_signatures_are_batchable() {
        let (signature, _) = valid_signature();
        assert!(batchable_signature(&signature));
    }

    #[test]
    fn non_canonical_s_is_not_batchable() {
        let (mut signature, key) = valid_signature();
        // S + L: the same scalar mod L, refused by strict verification.
        // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let mut l = [0u8; 32];
        l[..16].copy_from_slice(&0x14de_f9de_a2f7_9cd6_5812_631a_5cf5_d3edu128.to_le_bytes());
        l[31] = 0x10;
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(signature[32 + i]) + u16::from(l[i]) + carry;
            signature[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert!(!batchable_signature(&signature));
        assert!(!key.public().verify_strict(b"message", &signature));
    }

    #[test]
    fn small_order_and_non_canonical_r_are_not_batchable() {
        let (signature, _) = valid_signature();
        for encoding in small_order_encodings() {
            let mut forged = signature;
            forged[..32].copy_from_slice(encoding);
            assert!(!batchable_signature(&forged));
        }
        // y = p: the non-canonical encoding of y = 0.
        let mut forged = signature;
        forged[0] = 0xed;
        forged[1..31].fill(0xff);
        forged[31] = 0x7f;
        assert!(!batchable_signature(&forged));
        // y = p − 3 is canonical.
        let mut fine = [0xffu8; 32];
        fine[0] = 0xea;
        fine[31] = 0x7f;
        assert!(canonical_y(&fine));
    }

    #[test]
    fn weak_keys_are_classified_weak() {
        for point in EIGHT_TORSION.iter() {
            let bytes = point.compress().to_bytes();
            let key = VerifyingKey::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(classify_key(&key), KeyClass::Weak);
        }
    }

    #[test]
    fn torsion_keys_are_strict_only() {
        let (_, key) = valid_signature();
        let ed = key
            .public()
            .ed25519_key()
            .unwrap_or_else(|| panic!("an Ed25519 key"));
        let point = ed.to_edwards();
        assert_eq!(classify_key(ed), KeyClass::Batchable);
        let mixed = point + EIGHT_TORSION[1];
        let mixed =
            VerifyingKey::from_bytes(mixed.compress().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(classify_key(&mixed), KeyClass::StrictOnly);
    }
}
