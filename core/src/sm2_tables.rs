//! SM2 verification with precomputed tables (specs/encoding.md §2.4, issue 15's speed): the
//! equation `(e + x1) mod n = r` with `(x1, y1) = [s]G + [t]P_A` evaluated as sums of table
//! entries, on RustCrypto's group operations only (no field arithmetic of our own).
//!
//! A table holds `j · 16^i · B` for the 64 four-bit windows `i` of a scalar and `j` in 1..16, as
//! affine points (64 × 15 of them, about 70 KB), so `[k]B` is at most 64 mixed additions and no
//! doubling. The generator's table is built once per process; a key's, the first time the key
//! verifies (a few seals sign most certificates, so each table serves many signatures). The
//! result is compared, in the tests, with the crate's own verification on random inputs.

use std::sync::OnceLock;

use sm2::elliptic_curve::group::Group;
use sm2::elliptic_curve::ops::Reduce;
use sm2::elliptic_curve::point::AffineCoordinates;
use sm2::elliptic_curve::{BatchNormalize, PrimeField};
use sm2::{AffinePoint, FieldBytes, ProjectivePoint, Scalar, U256};
use sm3::{Digest, Sm3};

/// Four-bit windows of a 256-bit scalar.
const WINDOWS: usize = 64;

/// `j · 16^i · B` at `[i][j - 1]`.
pub(crate) struct Table(Vec<[AffinePoint; 15]>);

impl Table {
    pub(crate) fn of(base: ProjectivePoint) -> Table {
        let mut windows = Vec::with_capacity(WINDOWS);
        let mut window_base = base;
        for _ in 0..WINDOWS {
            let mut multiples = [ProjectivePoint::IDENTITY; 15];
            let mut multiple = window_base;
            for slot in &mut multiples {
                *slot = multiple;
                multiple += window_base;
            }
            // `multiple` is now 16 · window_base: the next window's base.
            window_base = multiple;
            // One inversion per window, not per point.
            windows.push(
                <ProjectivePoint as BatchNormalize<[ProjectivePoint; 15]>>::batch_normalize(
                    &multiples,
                ),
            );
        }
        Table(windows)
    }

    /// `[k]B`, for a public scalar `k` (its digits choose entries: verification only, never
    /// with a secret).
    fn mul(&self, k: &Scalar) -> ProjectivePoint {
        let bytes = k.to_repr();
        let mut sum = ProjectivePoint::IDENTITY;
        for (i, window) in self.0.iter().enumerate() {
            let byte = bytes[31 - i / 2];
            let digit = usize::from(if i % 2 == 0 { byte & 0x0f } else { byte >> 4 });
            if digit != 0 {
                sum += &window[digit - 1];
            }
        }
        sum
    }
}

fn generator_table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table::of(ProjectivePoint::generator()))
}

/// The curve's a, b and G (GB/T 32918.5), as Z_A hashes them.
const CURVE: [u8; 128] = {
    let hex = b"FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC\
28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93\
32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7\
BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0";
    let mut out = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        out[i] = (nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]);
        i += 1;
    }
    out
};

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'A' + 10,
    }
}

/// `Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A)` for the key `0x04 ‖ x_A ‖ y_A`.
pub(crate) fn z_a(id: &str, key: &[u8; 65]) -> [u8; 32] {
    let bits = (id.len() * 8) as u16;
    let mut hasher = Sm3::new();
    hasher.update(bits.to_be_bytes());
    hasher.update(id.as_bytes());
    hasher.update(CURVE);
    hasher.update(&key[1..]);
    hasher.finalize().into()
}

/// A key prepared for verification: its Z_A, its point, and its table once built.
pub(crate) struct Prepared {
    za: [u8; 32],
    point: AffinePoint,
    table: OnceLock<Table>,
}

impl Prepared {
    pub(crate) fn new(id: &str, encoded: &[u8; 65], point: AffinePoint) -> Prepared {
        Prepared {
            za: z_a(id, encoded),
            point,
            table: OnceLock::new(),
        }
    }

    /// encoding.md §2.4, steps 1–5.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let scalar = |bytes: &[u8]| {
            let repr = FieldBytes::clone_from_slice(bytes);
            Option::<Scalar>::from(Scalar::from_repr(repr)).filter(|k| !bool::from(k.is_zero()))
        };
        // 1: r and s in [1, n − 1] (from_repr refuses n and above).
        let (Some(r), Some(s)) = (scalar(&signature[..32]), scalar(&signature[32..])) else {
            return false;
        };
        // 2, 3: e = SM3(Z_A ‖ M).
        let digest: [u8; 32] = Sm3::new()
            .chain_update(self.za)
            .chain_update(message)
            .finalize()
            .into();
        let e = <Scalar as Reduce<U256>>::reduce_bytes(&digest.into());
        // 4: t = r + s ≠ 0.
        let t = r + s;
        if bool::from(t.is_zero()) {
            return false;
        }
        // 5: (x1, y1) = [s]G + [t]P_A; (e + x1) mod n = r.
        let table = self
            .table
            .get_or_init(|| Table::of(ProjectivePoint::from(self.point)));
        let sum = generator_table().mul(&s) + table.mul(&t);
        if bool::from(sum.is_identity()) {
            return false;
        }
        let x1 = <Scalar as Reduce<U256>>::reduce_bytes(&sum.to_affine().x());
        e + x1 == r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm2::dsa::signature::{Signer, Verifier};

    fn scalar_of(seed: u64) -> Scalar {
        let digest: [u8; 32] = Sm3::digest(seed.to_be_bytes()).into();
        <Scalar as Reduce<U256>>::reduce_bytes(&digest.into())
    }

    #[test]
    fn a_table_multiplies_as_the_crate_does() {
        let base = ProjectivePoint::generator() * scalar_of(7);
        let table = Table::of(base);
        for seed in 0..32 {
            let k = scalar_of(seed);
            assert_eq!(table.mul(&k), base * k, "seed {seed}");
        }
        assert_eq!(table.mul(&Scalar::ZERO), ProjectivePoint::IDENTITY);
        assert_eq!(table.mul(&-Scalar::ONE), -base);
        assert_eq!(
            generator_table().mul(&Scalar::ONE),
            ProjectivePoint::generator()
        );
    }

    #[test]
    fn z_a_is_the_crates() -> Result<(), Box<dyn std::error::Error>> {
        // The crate signs over SM3(Z_A ‖ M): a signature it makes verifies here only if both
        // computed the same Z_A, for the default identity and another.
        for id in [crate::keys::SM2_SIGNER_ID, "alice@example.org"] {
            let secret = sm2::SecretKey::from_bytes(&scalar_of(3).to_repr())?;
            let signer = sm2::dsa::SigningKey::new(id, &secret)?;
            let encoded: [u8; 65] = signer.verifying_key().to_sec1_bytes()[..].try_into()?;
            let prepared = Prepared::new(id, &encoded, *signer.verifying_key().as_affine());
            let signature: sm2::dsa::Signature = signer.sign(b"message");
            assert!(prepared.verify(b"message", &signature.to_bytes()));
        }
        Ok(())
    }

    /// Random keys, messages and signatures, valid and altered: the tables decide as the crate's
    /// own verification does, every time.
    #[test]
    fn verification_agrees_with_the_crate_on_random_inputs()
    -> Result<(), Box<dyn std::error::Error>> {
        let id = crate::keys::SM2_SIGNER_ID;
        let mut valid = 0;
        for seed in 0..48u64 {
            let secret = sm2::SecretKey::from_bytes(&scalar_of(1000 + seed).to_repr())?;
            let signer = sm2::dsa::SigningKey::new(id, &secret)?;
            let theirs = signer.verifying_key();
            let encoded: [u8; 65] = theirs.to_sec1_bytes()[..].try_into()?;
            let ours = Prepared::new(id, &encoded, *theirs.as_affine());
            let message = scalar_of(seed).to_repr().repeat(1 + seed as usize % 5);
            let good: sm2::dsa::Signature = signer.sign(&message);
            let good = good.to_bytes();
            let mut cases: Vec<[u8; 64]> = vec![good];
            let mut flipped = good;
            flipped[(seed as usize * 7) % 64] ^= 1 << (seed % 8);
            cases.push(flipped);
            let mut random = [0u8; 64];
            random[..32].copy_from_slice(&scalar_of(seed + 5000).to_repr());
            random[32..].copy_from_slice(&scalar_of(seed + 6000).to_repr());
            cases.push(random);
            let mut swapped = good;
            swapped[..32].copy_from_slice(&good[32..]);
            swapped[32..].copy_from_slice(&good[..32]);
            cases.push(swapped);
            let mut zero_s = good;
            zero_s[32..].fill(0);
            cases.push(zero_s);
            let mut n_minus_s = good;
            let s = Scalar::from_repr(FieldBytes::clone_from_slice(&good[32..]));
            let s = Option::<Scalar>::from(s).ok_or("s")?;
            n_minus_s[32..].copy_from_slice(&(-s).to_repr());
            cases.push(n_minus_s);
            for (k, signature) in cases.iter().enumerate() {
                let crate_says = sm2::dsa::Signature::from_bytes(signature)
                    .is_ok_and(|sig| theirs.verify(&message, &sig).is_ok());
                let we_say = ours.verify(&message, signature);
                assert_eq!(we_say, crate_says, "seed {seed}, case {k}");
                valid += usize::from(we_say);
            }
            assert!(!ours.verify(&[&message[..], b"x"].concat(), &good));
        }
        // Every unaltered signature verified, and (with overwhelming probability) nothing else.
        assert_eq!(valid, 48);
        Ok(())
    }
}
