//! SM2 verification with precomputed tables (specs/encoding.md §2.4, issue 15's speed): the
//! equation `(e + x1) mod n = r` with `(x1, y1) = [s]G + [t]P_A` evaluated as sums of table
//! entries, on RustCrypto's group operations only (no field arithmetic of our own).
//!
//! A table of width `W` holds `j · 2^(W·i) · B` for every window `i` of a scalar's signed
//! base-2^W digits and `j` in 1..=2^(W−1), as affine points; a negative digit subtracts its
//! entry. `[k]B` is then one mixed addition per window and no doubling. The generator's table
//! (`W` = 8: 33 additions, about 300 KB) is built once per process; a key's (`W` = 6: 44
//! additions, about 100 KB) the first time the key verifies: a few seals sign most certificates,
//! so each table serves many signatures, and a node holding many keys pays a third of the
//! generator's memory for each.
//!
//! The crate's `ProjectivePoint::is_identity` and `==` go through two inversions each; nothing here
//! uses them: a sum is brought to affine form once (or, in a batch, with one inversion shared by
//! up to [`NORMALIZE_CHUNK`] sums) and its identity read there. The result is compared, in the
//! tests, with the crate's own verification on random inputs.

use std::sync::OnceLock;

use sm2::elliptic_curve::group::Group;
use sm2::elliptic_curve::ops::Reduce;
use sm2::elliptic_curve::point::AffineCoordinates;
use sm2::elliptic_curve::{BatchNormalize, PrimeField};
use sm2::{AffinePoint, FieldBytes, ProjectivePoint, Scalar, U256};
use sm3::{Digest, Sm3};

use crate::keys::Message;

/// The generator's window width.
const GENERATOR_WIDTH: usize = 8;
/// A key's window width.
const KEY_WIDTH: usize = 6;
/// The most windows any width here needs (width 5: 52 + 1).
const MAX_WINDOWS: usize = 53;
/// How many points share one inversion when brought to affine form.
pub(crate) const NORMALIZE_CHUNK: usize = 64;

/// `j · 2^(W·i) · B` at `[i · 2^(W−1) + j − 1]`.
pub(crate) struct Table<const W: usize>(Vec<AffinePoint>);

impl<const W: usize> Table<W> {
    /// Entries per window: the magnitudes of signed digits, 1..=2^(W−1).
    const HALF: usize = 1 << (W - 1);
    /// Windows of a 256-bit scalar, plus one for the last carry of the signed recoding.
    const WINDOWS: usize = 256_usize.div_ceil(W) + 1;

    pub(crate) fn of(base: ProjectivePoint) -> Table<W> {
        let mut points = Vec::with_capacity(Self::WINDOWS * Self::HALF);
        let mut window_base = base;
        for _ in 0..Self::WINDOWS {
            let mut multiple = window_base;
            points.push(multiple);
            for _ in 1..Self::HALF {
                multiple += window_base;
                points.push(multiple);
            }
            // `multiple` is now 2^(W−1) · window_base: the next window's base is its double.
            window_base = multiple.double();
        }
        Table(normalize(&points))
    }

    /// `[k]B`, for a public scalar `k` (its digits choose entries: verification only, never
    /// with a secret).
    fn mul(&self, k: &Scalar) -> ProjectivePoint {
        let mut digits = [0i32; MAX_WINDOWS];
        let digits = &mut digits[..Self::WINDOWS];
        signed_digits(k, W, digits);
        let mut sum = ProjectivePoint::IDENTITY;
        for (window, &digit) in self.0.chunks_exact(Self::HALF).zip(digits.iter()) {
            let magnitude = digit.unsigned_abs() as usize;
            if magnitude == 0 {
                continue;
            }
            let entry = &window[magnitude - 1];
            if digit > 0 {
                sum += entry;
            } else {
                sum -= entry;
            }
        }
        sum
    }
}

/// `k`'s digits in base 2^w, each in [−2^(w−1), 2^(w−1)], least significant first:
/// `k = Σ digits[i] · 2^(w·i)`. `digits` has room for every window and the last carry.
fn signed_digits(k: &Scalar, w: usize, digits: &mut [i32]) {
    let bytes = k.to_repr();
    let bits = |at: usize| -> i32 {
        // Up to three little-endian bytes from bit `at` (w ≤ 16); bits past 255 are zero.
        let mut value = 0u32;
        for b in 0..3 {
            let index = at / 8 + b;
            if index < 32 {
                value |= u32::from(bytes[31 - index]) << (8 * b);
            }
        }
        ((value >> (at % 8)) & ((1 << w) - 1)) as i32
    };
    let half = 1 << (w - 1);
    let mut carry = 0;
    let last = digits.len() - 1;
    for (i, digit) in digits[..last].iter_mut().enumerate() {
        let raw = bits(i * w) + carry;
        (*digit, carry) = if raw >= half {
            (raw - (1 << w), 1)
        } else {
            (raw, 0)
        };
    }
    digits[last] = carry;
}

/// Affine forms of `points` (the identity's is the affine identity), with one inversion per
/// [`NORMALIZE_CHUNK`] points.
fn normalize(points: &[ProjectivePoint]) -> Vec<AffinePoint> {
    let mut out = Vec::with_capacity(points.len());
    for chunk in points.chunks(NORMALIZE_CHUNK) {
        // A short last chunk is padded with the identity, which normalizes to itself at no
        // inversion's cost.
        let mut batch = [ProjectivePoint::IDENTITY; NORMALIZE_CHUNK];
        batch[..chunk.len()].copy_from_slice(chunk);
        let affine =
            <ProjectivePoint as BatchNormalize<[ProjectivePoint; NORMALIZE_CHUNK]>>::batch_normalize(
                &batch,
            );
        out.extend_from_slice(&affine[..chunk.len()]);
    }
    out
}

fn generator_table() -> &'static Table<GENERATOR_WIDTH> {
    static TABLE: OnceLock<Table<GENERATOR_WIDTH>> = OnceLock::new();
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
    table: OnceLock<Table<KEY_WIDTH>>,
}

/// A signature taken through steps 1–5 up to the point `[s]G + [t]P_A`, whose affine `x1`
/// decides it.
pub(crate) struct Started {
    sum: ProjectivePoint,
    e: Scalar,
    r: Scalar,
}

impl Started {
    /// Step 5's last check, given the sum in affine form.
    fn holds(&self, sum: &AffinePoint) -> bool {
        if bool::from(sum.is_identity()) {
            return false;
        }
        let x1 = <Scalar as Reduce<U256>>::reduce_bytes(&sum.x());
        self.e + x1 == self.r
    }
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
        self.start(message, signature)
            .is_some_and(|started| started.holds(&started.sum.to_affine()))
    }

    /// Steps 1–5 up to the sum; `None`: refused before it (r or s out of range, t = 0).
    pub(crate) fn start(
        &self,
        message: &(impl Message + ?Sized),
        signature: &[u8; 64],
    ) -> Option<Started> {
        let scalar = |bytes: &[u8]| {
            let repr = FieldBytes::clone_from_slice(bytes);
            Option::<Scalar>::from(Scalar::from_repr(repr)).filter(|k| !bool::from(k.is_zero()))
        };
        // 1: r and s in [1, n − 1] (from_repr refuses n and above).
        let r = scalar(&signature[..32])?;
        let s = scalar(&signature[32..])?;
        // 2, 3: e = SM3(Z_A ‖ M).
        let mut hasher = Sm3::new();
        hasher.update(self.za);
        message.feed(|piece| hasher.update(piece));
        let digest: [u8; 32] = hasher.finalize().into();
        let e = <Scalar as Reduce<U256>>::reduce_bytes(&digest.into());
        // 4: t = r + s ≠ 0.
        let t = r + s;
        if bool::from(t.is_zero()) {
            return None;
        }
        // 5: (x1, y1) = [s]G + [t]P_A.
        let table = self
            .table
            .get_or_init(|| Table::of(ProjectivePoint::from(self.point)));
        let sum = generator_table().mul(&s) + table.mul(&t);
        Some(Started { sum, e, r })
    }
}

/// Decides every started signature as [`Prepared::verify`] would, sharing one inversion among
/// up to [`NORMALIZE_CHUNK`] of them: `None` (refused before the sum) is false.
pub(crate) fn finish_all(started: &[Option<Started>]) -> Vec<bool> {
    let sums: Vec<ProjectivePoint> = started
        .iter()
        .map(|s| s.as_ref().map_or(ProjectivePoint::IDENTITY, |s| s.sum))
        .collect();
    let affine = normalize(&sums);
    started
        .iter()
        .zip(&affine)
        .map(|(s, point)| s.as_ref().is_some_and(|s| s.holds(point)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm2::dsa::signature::{Signer, Verifier};

    fn scalar_of(seed: u64) -> Scalar {
        let digest: [u8; 32] = Sm3::digest(seed.to_be_bytes()).into();
        <Scalar as Reduce<U256>>::reduce_bytes(&digest.into())
    }

    /// Scalars whose signed digits carry through many windows, or none.
    fn edge_scalars() -> Vec<Scalar> {
        let ones = <Scalar as Reduce<U256>>::reduce_bytes(&[0xff; 32].into());
        let alternating = <Scalar as Reduce<U256>>::reduce_bytes(&[0x80; 32].into());
        let mut top = [0xff; 32];
        top[0] = 0x7f;
        let top = <Scalar as Reduce<U256>>::reduce_bytes(&top.into());
        vec![
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(127u64),
            Scalar::from(128u64),
            Scalar::from(255u64),
            ones,
            alternating,
            top,
        ]
    }

    fn multiplies_as_the_crate_does<const W: usize>() {
        let base = ProjectivePoint::generator() * scalar_of(7);
        let table = Table::<W>::of(base);
        let randoms = (0..32).map(scalar_of);
        for (i, k) in edge_scalars().into_iter().chain(randoms).enumerate() {
            // Compared in affine form: the crate's projective == inverts twice, but is exact.
            assert_eq!(
                table.mul(&k).to_affine(),
                (base * k).to_affine(),
                "W {W}, case {i}"
            );
        }
    }

    #[test]
    fn tables_of_every_width_used_multiply_as_the_crate_does() {
        multiplies_as_the_crate_does::<GENERATOR_WIDTH>();
        multiplies_as_the_crate_does::<KEY_WIDTH>();
        multiplies_as_the_crate_does::<5>();
        assert_eq!(
            generator_table().mul(&Scalar::ONE),
            ProjectivePoint::generator()
        );
    }

    #[test]
    fn signed_digits_sum_back_to_the_scalar() {
        for w in [5, 6, 8] {
            for (i, k) in edge_scalars()
                .into_iter()
                .chain((0..64).map(scalar_of))
                .enumerate()
            {
                let mut digits = [0i32; MAX_WINDOWS];
                let windows = 256_usize.div_ceil(w) + 1;
                signed_digits(&k, w, &mut digits[..windows]);
                let radix = Scalar::from(1u64 << w);
                let mut sum = Scalar::ZERO;
                for &d in digits[..windows].iter().rev() {
                    assert!(
                        d.unsigned_abs() <= 1 << (w - 1),
                        "w {w}, case {i}: digit {d}"
                    );
                    let magnitude = Scalar::from(u64::from(d.unsigned_abs()));
                    sum = sum * radix + if d < 0 { -magnitude } else { magnitude };
                }
                assert_eq!(sum, k, "w {w}, case {i}");
            }
        }
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
        let (mut started, mut expected) = (Vec::new(), Vec::new());
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
                started.push(ours.start(message.as_slice(), signature));
                expected.push(we_say);
            }
            assert!(!ours.verify(&[&message[..], b"x"].concat(), &good));
        }
        // Every unaltered signature verified, and (with overwhelming probability) nothing else.
        assert_eq!(valid, 48);
        // Decided together (keys mixed, several chunks sharing an inversion, a short last one,
        // signatures refused before the sum among them), each as alone.
        assert!(expected.len() > 4 * NORMALIZE_CHUNK && expected.len() % NORMALIZE_CHUNK != 0);
        assert!(started.iter().any(Option::is_none));
        assert_eq!(finish_all(&started), expected);
        Ok(())
    }
}
