//! Signature suites (specs/encoding.md §2.2): which signature algorithm and which hash a
//! federation uses for everything it signs and digests. A federation has one, fixed in its
//! genesis; every signed object names its algorithm, so a verifier can refuse an object of the
//! other suite before it tries a key.

use std::fmt;

use sm3::{Digest, Sm3};

/// COSE's EdDSA (RFC 9053).
pub const ALG_EDDSA: i64 = -8;
/// SM2 signatures with SM3 (GB/T 32918, GB/T 32905). COSE has no registered value for it, so this
/// is from the private-use range (below -65536): -65536 - 45, as the C509 drafts give SM2 with
/// SM3 the value 45, so the number is recognisable. Replaced when IANA registers one.
pub const ALG_SM2_SM3: i64 = -65581;
// In COSE's private-use range, as the spec says.
const _: () = assert!(ALG_SM2_SM3 < -65536);

/// The suites. `Ed25519`: Ed25519 signatures, BLAKE3 digests and key ids, a SHA-256 Merkle tree
/// (what C2SP tools speak). `Sm2`: SM2 signatures with SM3, SM3 for every digest (national
/// cryptography, GB/T 39786).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suite {
    Ed25519,
    Sm2,
}

impl Suite {
    pub const ALL: [Suite; 2] = [Suite::Ed25519, Suite::Sm2];

    /// The name used in configuration and on command lines.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Ed25519 => "ed25519",
            Suite::Sm2 => "sm2",
        }
    }

    pub fn parse(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The COSE `alg` value of the suite's signatures.
    pub const fn cose_alg(self) -> i64 {
        match self {
            Suite::Ed25519 => ALG_EDDSA,
            Suite::Sm2 => ALG_SM2_SM3,
        }
    }

    pub fn from_cose_alg(alg: i64) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.cose_alg() == alg)
    }

    /// The algorithm byte hashed before a key into its key id, as C2SP signed-note does, so
    /// keys of the two suites never share an id.
    pub(crate) const fn key_id_byte(self) -> u8 {
        match self {
            Suite::Ed25519 => 0x01,
            Suite::Sm2 => 0x02,
        }
    }

    /// The suite's 256-bit hash of `parts`, one after the other, under `context`: BLAKE3's
    /// derive_key (context as its context string) or SM3 of the context's UTF-8 bytes followed by
    /// the parts. Contexts are fixed strings, so the SM3 input splits one way only.
    pub fn hash(self, context: &str, parts: &[&[u8]]) -> [u8; 32] {
        match self {
            Suite::Ed25519 => {
                let mut hasher = blake3::Hasher::new_derive_key(context);
                for part in parts {
                    hasher.update(part);
                }
                *hasher.finalize().as_bytes()
            }
            Suite::Sm2 => {
                let mut hasher = Sm3::new();
                hasher.update(context.as_bytes());
                for part in parts {
                    hasher.update(part);
                }
                hasher.finalize().into()
            }
        }
    }

    /// The suite's plain 256-bit hash of `bytes` (BLAKE3 or SM3), for digests of whole objects.
    pub fn digest(self, bytes: &[u8]) -> [u8; 32] {
        match self {
            Suite::Ed25519 => *blake3::hash(bytes).as_bytes(),
            Suite::Sm2 => Sm3::digest(bytes).into(),
        }
    }
}

/// A suite named on a command line or in configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no suite {0:?}: ed25519 or sm2")]
pub struct UnknownSuite(pub String);

impl std::str::FromStr for Suite {
    type Err = UnknownSuite;

    fn from_str(name: &str) -> Result<Suite, UnknownSuite> {
        Suite::parse(name).ok_or_else(|| UnknownSuite(name.to_owned()))
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_algorithms_read_back() {
        for suite in Suite::ALL {
            assert_eq!(Suite::parse(suite.name()), Some(suite));
            assert_eq!(Suite::from_cose_alg(suite.cose_alg()), Some(suite));
        }
        assert_eq!(Suite::parse("SM2"), None);
        assert_eq!(Suite::from_cose_alg(-7), None);
    }

    #[test]
    fn sm3_is_the_standard_hash() {
        // GB/T 32905-2016 Appendix A, example 1: SM3("abc").
        let expected = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";
        let got: String = Suite::Sm2
            .digest(b"abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(Suite::Sm2.hash("ab", &[b"c"]), Suite::Sm2.digest(b"abc"));
    }

    #[test]
    fn the_ed25519_suite_hashes_with_blake3() {
        assert_eq!(
            Suite::Ed25519.hash("tongban v1 key id", &[&[1], &[7; 32]]),
            blake3::derive_key("tongban v1 key id", &[&[1u8][..], &[7; 32]].concat())
        );
        assert_eq!(Suite::Ed25519.digest(b"x"), *blake3::hash(b"x").as_bytes());
    }
}
