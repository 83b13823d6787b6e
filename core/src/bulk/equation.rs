//! The batch equation (specs/bulk.md §4): ed25519's cofactorless batch verification, with the
//! terms of signatures by one key gathered into one.
//!
//! `ed25519_dalek::verify_batch` checks `[−Σ zᵢSᵢ]B + Σ [zᵢ]Rᵢ + Σ [zᵢkᵢ]Aᵢ = 0` with one
//! point per key *occurrence*. A bulk run has a few seals and many certificates, so most `Aᵢ`
//! repeat: `Σ_{i: Aᵢ = A} [zᵢkᵢ]A = [Σ zᵢkᵢ]A` is the same sum with one point per distinct key.
//! A batch of `n` signatures by `m` seals is then a multiscalar multiplication over `n + m + 1`
//! points instead of `2n + 1` — the same equation, cheaper.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

use ed25519_dalek::VerifyingKey;

use crate::bulk::seals::PreparedSeal;
use crate::envelope::SigStructure;
use crate::keys::Message;

/// One signature of a batch, by the key in `slot` (a small number naming the key within the
/// caller's set: terms of one slot are gathered into one point).
pub struct Term<'a> {
    pub message: SigStructure<'a>,
    pub signature: &'a [u8; 64],
    pub key: &'a VerifyingKey,
    pub slot: usize,
}

impl<'a> Term<'a> {
    /// A term signed by a seal of the bulk verifier's table; none for a seal that is not
    /// batchable.
    pub fn of_seal(
        message: SigStructure<'a>,
        signature: &'a [u8; 64],
        seal: &'a PreparedSeal,
    ) -> Option<Self> {
        Some(Term {
            message,
            signature,
            key: seal.batch_key.as_ref()?,
            slot: seal.slot,
        })
    }
}

/// Buffers reused from batch to batch.
#[derive(Default)]
pub struct Equation {
    hrams: Vec<[u8; 64]>,
    s: Vec<Scalar>,
    scalars: Vec<Scalar>,
    points: Vec<EdwardsPoint>,
    /// Per seal slot: where its gathered scalar is in `gathered`, or `u32::MAX`.
    slot_at: Vec<u32>,
    gathered: Vec<(usize, Scalar, EdwardsPoint)>,
}

impl Equation {
    /// Whether the batch equation holds for `terms`. `coefficient_key` keys the derivation of the
    /// coefficients `zᵢ` from the batch (specs/bulk.md §4.4): with a secret key, no signer can
    /// predict them. A term whose `S` is not canonical or whose `R` does not decode makes the
    /// equation fail; the caller's screen keeps such terms out.
    pub fn holds(&mut self, coefficient_key: &[u8; 32], terms: &[Term<'_>]) -> bool {
        for &(slot, _, _) in &self.gathered {
            if let Some(at) = self.slot_at.get_mut(slot) {
                *at = u32::MAX;
            }
        }
        self.gathered.clear();
        self.hrams.clear();
        self.s.clear();
        self.scalars.clear();
        self.points.clear();
        self.scalars.push(Scalar::ZERO);
        self.points.push(ED25519_BASEPOINT_POINT);
        for term in terms {
            let mut r = [0u8; 32];
            let mut s = [0u8; 32];
            r.copy_from_slice(&term.signature[..32]);
            s.copy_from_slice(&term.signature[32..]);
            let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
                return false;
            };
            let Some(point) = CompressedEdwardsY(r).decompress() else {
                return false;
            };
            let mut hasher = Sha512::new();
            hasher.update(r);
            hasher.update(term.key.as_bytes());
            term.message.feed(|piece| hasher.update(piece));
            self.hrams.push(hasher.finalize().into());
            self.s.push(s);
            self.points.push(point);
        }
        // The coefficients cover every input (kᵢ covers R, A and the message; then S), so a
        // signature cannot be chosen after them.
        let mut transcript = blake3::Hasher::new_keyed(coefficient_key);
        transcript.update(b"tongban v1 bulk batch coefficients");
        for (hram, s) in self.hrams.iter().zip(&self.s) {
            transcript.update(hram);
            transcript.update(s.as_bytes());
        }
        let mut stream = transcript.finalize_xof();
        let mut basepoint = Scalar::ZERO;
        // Taken out while `gather` borrows `self`; put back for the next batch.
        let hrams = std::mem::take(&mut self.hrams);
        let signature_s = std::mem::take(&mut self.s);
        let mut gathered = true;
        for ((term, hram), s) in terms.iter().zip(&hrams).zip(&signature_s) {
            let mut z = [0u8; 16];
            stream.fill(&mut z);
            let z = Scalar::from(u128::from_le_bytes(z));
            basepoint += z * s;
            self.scalars.push(z);
            let k = Scalar::from_bytes_mod_order_wide(hram);
            gathered &= self.gather(term.slot, term.key, z * k);
        }
        self.hrams = hrams;
        self.s = signature_s;
        if !gathered {
            return false;
        }
        if let Some(first) = self.scalars.first_mut() {
            *first = -basepoint;
        }
        for &(_, scalar, point) in &self.gathered {
            self.scalars.push(scalar);
            self.points.push(point);
        }
        EdwardsPoint::vartime_multiscalar_mul(&self.scalars, &self.points).is_identity()
    }

    /// Adds `scalar` to the term of the key in `slot`.
    fn gather(&mut self, slot: usize, key: &VerifyingKey, scalar: Scalar) -> bool {
        if self.slot_at.len() <= slot {
            self.slot_at.resize(slot + 1, u32::MAX);
        }
        let Some(at) = self.slot_at.get_mut(slot) else {
            return false;
        };
        match self.gathered.get_mut(*at as usize) {
            Some(entry) => entry.1 += scalar,
            None => {
                *at = self.gathered.len() as u32;
                self.gathered.push((slot, scalar, key.to_edwards()));
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::seals::SealTable;
    use crate::keys::SecretKey;
    use crate::testkit::bulk::BulkFederation;
    use crate::trust::TrustStore;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// What a payload's signature covers (an empty protected header).
    fn covered(payload: &[u8]) -> SigStructure<'_> {
        SigStructure {
            protected: b"",
            payload,
        }
    }

    /// Seals of two regions, with their secret keys, and `count` signed payloads cycling over
    /// the seals (each signature over the payload's Sig_structure, as an envelope's).
    struct Fixture {
        table: SealTable,
        signed: Vec<(Vec<u8>, [u8; 64], crate::keys::KeyId)>,
    }

    fn fixture(count: usize) -> Result<Fixture, Box<dyn std::error::Error>> {
        let federation = BulkFederation::new(crate::suite::Suite::Ed25519, 2)?;
        let trust = TrustStore::load_any_time(&federation.bundle()?, None)?;
        let table = SealTable::prepare(&trust)?;
        let keys: Vec<&SecretKey> = federation
            .regions
            .iter()
            .flat_map(|r| r.seals.iter().map(|s| &s.key))
            .collect();
        let signed = (0..count)
            .map(|i| {
                let key = keys[i % keys.len()];
                let payload = format!("message {i}").into_bytes();
                let signature = key.sign(&covered(&payload).to_vec());
                (payload, signature, key.public().kid())
            })
            .collect();
        Ok(Fixture { table, signed })
    }

    impl Fixture {
        fn terms(&self) -> Result<Vec<Term<'_>>, String> {
            self.signed
                .iter()
                .map(|(payload, signature, kid)| {
                    Term::of_seal(
                        covered(payload),
                        signature,
                        self.table.get(kid).ok_or("seal")?,
                    )
                    .ok_or_else(|| "not batchable".to_owned())
                })
                .collect()
        }

        /// What `ed25519_dalek::verify_batch` says of the same signatures.
        fn dalek(&self) -> Result<bool, String> {
            let messages: Vec<Vec<u8>> =
                self.signed.iter().map(|s| covered(&s.0).to_vec()).collect();
            let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let signatures: Vec<ed25519_dalek::Signature> = self
                .signed
                .iter()
                .map(|s| ed25519_dalek::Signature::from_bytes(&s.1))
                .collect();
            let keys = self
                .signed
                .iter()
                .map(|s| {
                    self.table
                        .get(&s.2)
                        .and_then(|p| p.batch_key)
                        .ok_or_else(|| "seal".to_owned())
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok())
        }
    }

    #[test]
    fn holds_for_good_signatures_across_reused_buffers() -> TestResult {
        let many = fixture(100)?;
        let mut equation = Equation::default();
        assert!(equation.holds(&[1; 32], &many.terms()?));
        assert!(many.dalek()?);
        // Reused buffers: a second batch, of another length, still holds.
        let few = fixture(5)?;
        assert!(equation.holds(&[2; 32], &few.terms()?));
        assert!(equation.holds(&[2; 32], &[]));
        Ok(())
    }

    #[test]
    fn fails_on_any_single_change_as_verify_batch_does() -> TestResult {
        let mut equation = Equation::default();
        for at in [0, 17, 63] {
            // A flipped bit in the message, in R, in S (kept canonical), and a swapped key.
            for change in 0..4 {
                let mut fixture = fixture(64)?;
                let other = fixture.signed[if at == 63 { 62 } else { at + 1 }].2;
                let item = &mut fixture.signed[at];
                match change {
                    0 => item.0[0] ^= 1,
                    1 => item.1[3] ^= 1,
                    2 => item.1[40] ^= 1,
                    _ => item.2 = other,
                }
                let ours = equation.holds(&[7; 32], &fixture.terms()?);
                assert!(!ours, "change {change} at {at}");
                assert_eq!(ours, fixture.dalek()?, "change {change} at {at}");
            }
        }
        Ok(())
    }

    #[test]
    fn refuses_non_canonical_s_and_undecodable_r() -> TestResult {
        let mut equation = Equation::default();
        let mut fixture = fixture(8)?;
        fixture.signed[2].1[63] = 0xff;
        assert!(!equation.holds(&[0; 32], &fixture.terms()?));
        let mut fixture = super::tests::fixture(8)?;
        // The first small y that is not the y of any point on the curve.
        let r = (2u8..=255)
            .map(|y| {
                let mut r = [0u8; 32];
                r[0] = y;
                r
            })
            .find(|r| CompressedEdwardsY(*r).decompress().is_none())
            .ok_or("an undecodable y")?;
        fixture.signed[2].1[..32].copy_from_slice(&r);
        assert!(!equation.holds(&[0; 32], &fixture.terms()?));
        Ok(())
    }
}
