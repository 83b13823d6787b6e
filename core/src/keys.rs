//! Public and secret keys of either suite, and key ids (specs/encoding.md §2.2, §3).

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::suite::Suite;

/// Bytes a signature covers, as a hash takes them: in pieces, in order.
pub trait Message {
    /// Gives the bytes to `take`.
    fn feed(&self, take: impl FnMut(&[u8]));
}

impl Message for [u8] {
    fn feed(&self, mut take: impl FnMut(&[u8])) {
        take(self);
    }
}

/// Hash context for key ids; never change it: every kid in every bundle depends on it.
const KID_CONTEXT: &str = "tongban v1 key id";

/// The SM2 signer identity hashed into Z_A: GB/T 35276's default, which OpenSSL and the other
/// national-cryptography libraries use when none is configured (`distid:1234567812345678`).
pub const SM2_SIGNER_ID: &str = "1234567812345678";

/// An SM2 key's encoding: SEC1 uncompressed, `0x04 ‖ x ‖ y`.
const SM2_KEY_LEN: usize = 65;

/// The SM2 group order n minus one: GB/T 32918.1 takes private keys from [1, n − 2].
const SM2_N_MINUS_ONE: [u8; 32] = [
    0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x72, 0x03, 0xdf, 0x6b, 0x21, 0xc6, 0x05, 0x2b, 0x53, 0xbb, 0xf4, 0x09, 0x39, 0xd5, 0x41, 0x22,
];

/// A 16-byte key id: the first 16 bytes of the key's suite hash under "tongban v1 key id" of its
/// algorithm byte and its encoding (BLAKE3 derive_key for Ed25519, SM3 for SM2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    pub fn of(suite: Suite, public_key: &[u8]) -> KeyId {
        let full = suite.hash(KID_CONTEXT, &[&[suite.key_id_byte()], public_key]);
        let mut kid = [0u8; 16];
        kid.copy_from_slice(&full[..16]);
        KeyId(kid)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<KeyId> {
        bytes.try_into().ok().map(KeyId)
    }

    /// A key id written as 32 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<KeyId> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut kid = [0u8; 16];
        for (byte, pair) in kid.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(KeyId(kid))
    }

    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Why a key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "public key is neither 32 bytes encoding an Ed25519 point nor 65 bytes encoding an SM2 point (0x04 ‖ x ‖ y)"
    )]
    Invalid,
    #[error("public key has small order (weak key)")]
    Weak,
    #[error("SM2 private key is not in [1, n − 2]")]
    Sm2Scalar,
}

/// A public key of either suite that every check can use: an Ed25519 key is a canonical
/// encoding of a point not of small order (weak keys cannot be represented, so no batch or
/// strict check ever meets one); an SM2 key is an uncompressed point on the curve (the identity
/// has no such encoding).
#[derive(Clone)]
pub struct PublicKey {
    key: Key,
    kid: KeyId,
}

#[derive(Clone)]
enum Key {
    Ed25519(VerifyingKey),
    // Shared: the SM2 key holds its Z_A and, once it has verified, its table (about 100 KB), which
    // every clone of the key (a trust store's, a bulk table's) uses.
    Sm2(std::sync::Arc<Sm2Key>),
}

struct Sm2Key {
    prepared: crate::sm2_tables::Prepared,
    encoded: [u8; SM2_KEY_LEN],
}

impl PublicKey {
    /// A key from its encoding; the length says the suite (32 bytes: Ed25519, 65: SM2).
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        match bytes.len() {
            32 => Self::ed25519(bytes),
            SM2_KEY_LEN => Self::sm2(bytes),
            _ => Err(KeyError::Invalid),
        }
    }

    fn ed25519(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let bytes: &[u8; 32] = bytes.try_into().map_err(|_| KeyError::Invalid)?;
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::Invalid)?;
        // Decompression accepts y ≥ p; the spec does not, so the same point has one encoding (and one kid).
        if key.to_edwards().compress().as_bytes() != bytes {
            return Err(KeyError::Invalid);
        }
        if key.is_weak() {
            return Err(KeyError::Weak);
        }
        Ok(PublicKey {
            key: Key::Ed25519(key),
            kid: KeyId::of(Suite::Ed25519, bytes),
        })
    }

    fn sm2(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let encoded: [u8; SM2_KEY_LEN] = bytes.try_into().map_err(|_| KeyError::Invalid)?;
        // Only the uncompressed form: one point, one encoding, one kid.
        if encoded[0] != 0x04 {
            return Err(KeyError::Invalid);
        }
        // The crate refuses coordinates ≥ p, points off the curve and the identity. Only the
        // point: Z_A is computed once, by the prepared key.
        let point = sm2::PublicKey::from_sec1_bytes(&encoded).map_err(|_| KeyError::Invalid)?;
        let prepared =
            crate::sm2_tables::Prepared::new(SM2_SIGNER_ID, &encoded, *point.as_affine());
        Ok(PublicKey {
            key: Key::Sm2(std::sync::Arc::new(Sm2Key { prepared, encoded })),
            kid: KeyId::of(Suite::Sm2, &encoded),
        })
    }

    pub fn suite(&self) -> Suite {
        match self.key {
            Key::Ed25519(_) => Suite::Ed25519,
            Key::Sm2(_) => Suite::Sm2,
        }
    }

    pub fn kid(&self) -> KeyId {
        self.kid
    }

    /// The key's encoding: 32 bytes (Ed25519) or 65 (SM2).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.key {
            Key::Ed25519(key) => key.as_bytes(),
            Key::Sm2(key) => &key.encoded,
        }
    }

    /// The decompressed Ed25519 key, for batch verification; `None` for an SM2 key.
    pub fn ed25519_key(&self) -> Option<&VerifyingKey> {
        match &self.key {
            Key::Ed25519(key) => Some(key),
            Key::Sm2(_) => None,
        }
    }

    /// The prepared SM2 key, for verification that shares its affine conversion across many
    /// signatures (bulk); `None` for an Ed25519 key.
    pub(crate) fn sm2_prepared(&self) -> Option<&crate::sm2_tables::Prepared> {
        match &self.key {
            Key::Ed25519(_) => None,
            Key::Sm2(key) => Some(&key.prepared),
        }
    }

    /// Verification by the key's suite (specs/encoding.md §2.2): strict Ed25519 (canonical S and
    /// R, no small-order R), or SM2 with SM3 over Z_A ‖ message (r and s in [1, n − 1]).
    pub fn verify_strict(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        match &self.key {
            Key::Ed25519(key) => key
                .verify_strict(message, &Signature::from_bytes(signature))
                .is_ok(),
            Key::Sm2(key) => key.prepared.verify(message, signature),
        }
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &PublicKey) -> bool {
        self.suite() == other.suite() && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} kid {})", self.suite(), self.kid)
    }
}

/// A signing key of either suite. Its bytes never appear in `Debug` output.
pub struct SecretKey {
    key: Signing,
    public: PublicKey,
}

enum Signing {
    Ed25519(SigningKey),
    Sm2 {
        key: Box<sm2::dsa::SigningKey>,
        scalar: [u8; 32],
    },
}

impl SecretKey {
    /// The Ed25519 key whose RFC 8032 private key is `seed`. Fails only for the (negligibly rare)
    /// seeds whose public key would be weak, which no signer may use.
    pub fn from_seed(seed: &[u8; 32]) -> Result<SecretKey, KeyError> {
        let key = SigningKey::from_bytes(seed);
        let public = PublicKey::from_bytes(key.verifying_key().as_bytes())?;
        Ok(SecretKey {
            key: Signing::Ed25519(key),
            public,
        })
    }

    /// The key of `suite` made from 32 secret bytes: Ed25519's seed, or SM2's private scalar
    /// (big-endian), which must lie in [1, n − 2] (a random 32 bytes does but for a chance of
    /// about 2^-32; a generator draws again).
    pub fn from_suite_seed(suite: Suite, seed: &[u8; 32]) -> Result<SecretKey, KeyError> {
        match suite {
            Suite::Ed25519 => Self::from_seed(seed),
            Suite::Sm2 => {
                if *seed == SM2_N_MINUS_ONE {
                    return Err(KeyError::Sm2Scalar);
                }
                let secret =
                    sm2::SecretKey::from_bytes(&(*seed).into()).map_err(|_| KeyError::Sm2Scalar)?;
                let key = sm2::dsa::SigningKey::new(SM2_SIGNER_ID, &secret)
                    .map_err(|_| KeyError::Sm2Scalar)?;
                let point = key.verifying_key().to_sec1_bytes();
                let public = PublicKey::from_bytes(&point)?;
                Ok(SecretKey {
                    key: Signing::Sm2 {
                        key: Box::new(key),
                        scalar: *seed,
                    },
                    public,
                })
            }
        }
    }

    pub fn suite(&self) -> Suite {
        self.public.suite()
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The 32 secret bytes the key was made from (see [`SecretKey::from_suite_seed`]).
    pub fn seed(&self) -> &[u8; 32] {
        match &self.key {
            Signing::Ed25519(key) => key.as_bytes(),
            Signing::Sm2 { scalar, .. } => scalar,
        }
    }

    /// A signature by the key's suite: Ed25519 (deterministic, RFC 8032), or SM2 with SM3 over
    /// Z_A ‖ message as r ‖ s, 32 bytes each, big-endian.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        match &self.key {
            Signing::Ed25519(key) => key.sign(message).to_bytes(),
            Signing::Sm2 { key, .. } => {
                let signature: sm2::dsa::Signature =
                    sm2::dsa::signature::Signer::sign(&**key, message);
                signature.to_bytes()
            }
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({} kid {})", self.suite(), self.public.kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_read_back_from_hex() {
        let kid = KeyId::of(Suite::Ed25519, &[9; 32]);
        assert_eq!(KeyId::from_hex(&kid.to_hex()), Some(kid));
        assert_eq!(KeyId::from_hex(&kid.to_hex().to_uppercase()), Some(kid));
        for bad in [
            "",
            "00",
            &"0".repeat(33),
            &format!("+f{}", "0".repeat(30)),
            &"g".repeat(32),
        ] {
            assert_eq!(KeyId::from_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn kid_is_blake3_derive_key_of_alg_and_key() {
        let key = [7u8; 32];
        let mut material = vec![0x01];
        material.extend_from_slice(&key);
        let full = blake3::derive_key("tongban v1 key id", &material);
        assert_eq!(KeyId::of(Suite::Ed25519, &key).0, full[..16]);
    }

    #[test]
    fn an_sm2_kid_is_sm3_of_context_alg_and_key() -> Result<(), KeyError> {
        use sm3::Digest;
        let secret = SecretKey::from_suite_seed(Suite::Sm2, &[5u8; 32])?;
        let key = secret.public().as_bytes();
        let mut material = b"tongban v1 key id".to_vec();
        material.push(0x02);
        material.extend_from_slice(key);
        let full: [u8; 32] = sm3::Sm3::digest(&material).into();
        assert_eq!(secret.public().kid().0, full[..16]);
        assert_eq!(key.len(), 65);
        assert_eq!(key[0], 0x04);
        Ok(())
    }

    #[test]
    fn sm2_sign_then_verify_and_refuse() -> Result<(), KeyError> {
        let secret = SecretKey::from_suite_seed(Suite::Sm2, &[42u8; 32])?;
        assert_eq!(secret.suite(), Suite::Sm2);
        let signature = secret.sign(b"message");
        let public = secret.public();
        assert!(public.verify_strict(b"message", &signature));
        assert!(!public.verify_strict(b"messagf", &signature));
        for at in [0, 31, 32, 63] {
            let mut bad = signature;
            bad[at] ^= 0x10;
            assert!(!public.verify_strict(b"message", &bad), "byte {at}");
        }
        // r or s zero, or at least n: refused before any arithmetic.
        let mut zero_r = signature;
        zero_r[..32].fill(0);
        assert!(!public.verify_strict(b"message", &zero_r));
        let mut huge_s = signature;
        huge_s[32..].fill(0xff);
        assert!(!public.verify_strict(b"message", &huge_s));
        // Another suite's key never verifies it.
        let ed = SecretKey::from_seed(&[42u8; 32])?;
        assert!(!ed.public().verify_strict(b"message", &signature));
        // The key reads back from its encoding, and the seed is the scalar.
        assert_eq!(&PublicKey::from_bytes(public.as_bytes())?, public);
        assert_eq!(secret.seed(), &[42u8; 32]);
        Ok(())
    }

    #[test]
    fn sm2_keys_off_the_curve_compressed_or_out_of_range_are_refused() -> Result<(), KeyError> {
        let secret = SecretKey::from_suite_seed(Suite::Sm2, &[9u8; 32])?;
        let good = secret.public().as_bytes().to_vec();
        let mut off_curve = good.clone();
        off_curve[64] ^= 1;
        assert_eq!(PublicKey::from_bytes(&off_curve), Err(KeyError::Invalid));
        let mut compressed = vec![0x02 | (good[64] & 1)];
        compressed.extend_from_slice(&good[1..33]);
        assert_eq!(PublicKey::from_bytes(&compressed), Err(KeyError::Invalid));
        let mut hybrid = good.clone();
        hybrid[0] = 0x06 | (good[64] & 1);
        assert_eq!(PublicKey::from_bytes(&hybrid), Err(KeyError::Invalid));
        // x = p (the field prime): not a canonical coordinate.
        let p: [u8; 32] = [
            0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff,
        ];
        let mut x_is_p = good.clone();
        x_is_p[1..33].copy_from_slice(&p);
        assert_eq!(PublicKey::from_bytes(&x_is_p), Err(KeyError::Invalid));
        // The identity's SEC1 encoding is one zero byte: no key of either length.
        assert_eq!(PublicKey::from_bytes(&[0]), Err(KeyError::Invalid));
        let mut zeros = vec![0x04];
        zeros.extend_from_slice(&[0; 64]);
        assert_eq!(PublicKey::from_bytes(&zeros), Err(KeyError::Invalid));
        // Private scalars outside [1, n − 2].
        assert_eq!(
            SecretKey::from_suite_seed(Suite::Sm2, &[0; 32]).err(),
            Some(KeyError::Sm2Scalar)
        );
        assert_eq!(
            SecretKey::from_suite_seed(Suite::Sm2, &SM2_N_MINUS_ONE).err(),
            Some(KeyError::Sm2Scalar)
        );
        assert_eq!(
            SecretKey::from_suite_seed(Suite::Sm2, &[0xff; 32]).err(),
            Some(KeyError::Sm2Scalar)
        );
        Ok(())
    }

    #[test]
    fn sm2_signatures_agree_with_the_crate_on_random_keys_and_messages() -> Result<(), KeyError> {
        use sm2::dsa::signature::Verifier;
        for i in 1u8..=16 {
            let seed = crate::suite::Suite::Sm2.digest(&[i]);
            let secret = SecretKey::from_suite_seed(Suite::Sm2, &seed)?;
            let message = Suite::Ed25519.digest(&[i, i]).repeat(usize::from(i));
            let signature = secret.sign(&message);
            let theirs =
                sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_SIGNER_ID, secret.public().as_bytes())
                    .map_err(|_| KeyError::Invalid)?;
            let parsed =
                sm2::dsa::Signature::from_bytes(&signature).map_err(|_| KeyError::Invalid)?;
            assert!(theirs.verify(&message, &parsed).is_ok());
            assert!(secret.public().verify_strict(&message, &signature));
        }
        Ok(())
    }

    #[test]
    fn weak_and_invalid_keys_are_refused() {
        // The identity point (small order) and a point of order 2.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::Weak));
        let mut order_two = [0u8; 32];
        order_two[0] = 0xec;
        order_two[1..31].fill(0xff);
        order_two[31] = 0x7f;
        assert_eq!(PublicKey::from_bytes(&order_two), Err(KeyError::Weak));
        assert_eq!(PublicKey::from_bytes(&[1u8; 31]), Err(KeyError::Invalid));
        // y = p + 1 decompresses to the identity (y = 1): refused as non-canonical, before the
        // weak-key check would refuse the point itself.
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert_eq!(
            PublicKey::from_bytes(&non_canonical),
            Err(KeyError::Invalid)
        );
    }

    #[test]
    fn sign_then_verify_strict() -> Result<(), KeyError> {
        let secret = SecretKey::from_seed(&[42u8; 32])?;
        let signature = secret.sign(b"message");
        assert!(secret.public().verify_strict(b"message", &signature));
        assert!(!secret.public().verify_strict(b"messagf", &signature));
        let mut bad = signature;
        bad[63] ^= 0x10;
        assert!(!secret.public().verify_strict(b"message", &bad));
        Ok(())
    }
}
