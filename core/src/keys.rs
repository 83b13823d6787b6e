//! Ed25519 keys and key ids (specs/encoding.md §2.2, §3).

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// BLAKE3 context for key ids; never change it: every kid in every bundle depends on it.
const KID_CONTEXT: &str = "tongban v1 key id";
/// Algorithm byte hashed before the key, as C2SP signed-note does, so kids of other algorithms differ.
const ALG_ED25519: u8 = 0x01;

/// A 16-byte key id: the first 16 bytes of BLAKE3-derive_key("tongban v1 key id", 0x01 ‖ key).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    pub fn of(public_key: &[u8; 32]) -> KeyId {
        let mut hasher = blake3::Hasher::new_derive_key(KID_CONTEXT);
        hasher.update(&[ALG_ED25519]);
        hasher.update(public_key);
        let mut kid = [0u8; 16];
        hasher.finalize_xof().fill(&mut kid);
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

/// Why a public key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("public key is not 32 bytes encoding a curve point")]
    Invalid,
    #[error("public key has small order (weak key)")]
    Weak,
}

/// An Ed25519 public key that is a valid point and not of small order: weak keys cannot be
/// represented, so no batch or strict check ever meets one.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    kid: KeyId,
}

impl PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, KeyError> {
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
            key,
            kid: KeyId::of(bytes),
        })
    }

    pub fn kid(&self) -> KeyId {
        self.kid
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The decompressed key, for batch verification.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Strict verification (specs/encoding.md §2.2).
    pub fn verify_strict(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = Signature::from_bytes(signature);
        self.key.verify_strict(message, &signature).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(kid {})", self.kid)
    }
}

/// An Ed25519 signing key. Its bytes never appear in `Debug` output.
pub struct SecretKey {
    key: SigningKey,
    public: PublicKey,
}

impl SecretKey {
    /// The key whose RFC 8032 private key is `seed`. Fails only for the (negligibly rare) seeds whose
    /// public key would be weak, which no signer may use.
    pub fn from_seed(seed: &[u8; 32]) -> Result<SecretKey, KeyError> {
        let key = SigningKey::from_bytes(seed);
        let public = PublicKey::from_bytes(key.verifying_key().as_bytes())?;
        Ok(SecretKey { key, public })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn seed(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(kid {})", self.public.kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_read_back_from_hex() {
        let kid = KeyId::of(&[9; 32]);
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
        assert_eq!(KeyId::of(&key).0, full[..16]);
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
