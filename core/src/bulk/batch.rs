//! The fast path over one batch of certificates: the single path's stages, with step 8 done by
//! the batch equation ([`equation`](crate::bulk::equation)) instead of `verify_strict` per certificate.

use crate::bulk::Outcome;
use crate::bulk::cache::DigestCache;
use crate::bulk::equation::{Equation, Term};
use crate::bulk::screen::batchable_signature;
use crate::bulk::seals::{PreparedSeal, SealTable};
use crate::bulk::status::CompactStatus;
use crate::cert::{find_seal, verify_signed};
use crate::codes::Failure;
use crate::envelope::{Envelope, Kind, signature_invalid};
use crate::sm2_tables::{Started, finish_all};
use crate::suite::Suite;
use crate::trust::TrustStore;
use crate::values::Time;

/// Below this many signatures a failed batch is checked one by one: splitting further costs more
/// than the strict checks it saves.
const STRICT_BELOW: usize = 4;

/// Everything prepared once per run: the seal table, the status index, the time, and the context
/// digest that keys the verified-digest cache.
pub struct FastVerifier {
    seals: SealTable,
    status: CompactStatus,
    now: Time,
    context: [u8; 32],
    /// Step 8 by `verify_strict` for every signature (specs/bulk.md §4.4): the one difference
    /// from the single path that no cheap screen catches is closed, at the single path's cost
    /// per signature.
    exact: bool,
    /// Keys the batch coefficients (specs/bulk.md §4.4); public (the context) unless the caller
    /// gives a secret one.
    coefficient_key: [u8; 32],
}

/// Counts of what the signature stage did, for the summary and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignatureStats {
    /// Signatures accepted by a passing batch.
    pub batched: u64,
    /// Batch equation checks, including those on halves of failed batches.
    pub batch_calls: u64,
    /// Batch calls that failed.
    pub batch_failures: u64,
    /// Signatures checked each on its own: with `verify_strict`, or (SM2) by their own equation
    /// with the affine conversion shared.
    pub strict: u64,
    /// Certificates answered from the verified-digest cache.
    pub cached: u64,
}

impl SignatureStats {
    pub fn add(&mut self, other: &SignatureStats) {
        self.batched += other.batched;
        self.batch_calls += other.batch_calls;
        self.batch_failures += other.batch_failures;
        self.strict += other.strict;
        self.cached += other.cached;
    }
}

/// Buffers one worker reuses from batch to batch.
#[derive(Default)]
pub struct Scratch {
    equation: Equation,
    /// Running estimate of the share of batchable signatures that turn out bad.
    bad_rate: f64,
    pub stats: SignatureStats,
}

/// The smallest first try at a batch when bad signatures are common.
const MIN_CHUNK: usize = 8;

impl Scratch {
    /// How many signatures to try as one batch first. A batch with one bad signature in it is
    /// wasted work, so when bad signatures are common (a sweep through tampered data) smaller
    /// batches pay: the expected cost per signature is lowest when a first try holds about a
    /// quarter of a bad signature (p · m ≈ 1/4). With none seen, the whole batch.
    fn chunk(&self, len: usize) -> usize {
        if self.bad_rate * len as f64 <= 0.25 {
            return len.max(1);
        }
        ((0.25 / self.bad_rate) as usize).clamp(MIN_CHUNK, len.max(MIN_CHUNK))
    }

    fn observe(&mut self, bad: usize, checked: usize) {
        if checked > 0 {
            let rate = bad as f64 / checked as f64;
            self.bad_rate = 0.8 * self.bad_rate + 0.2 * rate;
        }
    }
}

/// A certificate that passed steps 1–7 and waits for its signature check.
struct Pending<'a> {
    at: usize,
    envelope: Envelope<'a>,
    seal: &'a PreparedSeal,
    /// Step 8's answer, once decided.
    signature: Option<Result<(), Failure>>,
}

impl FastVerifier {
    /// Prepares a run at time `now` (step 0 is checked here, once: an expired bundle fails the
    /// whole run with `TRUST_BUNDLE_EXPIRED`).
    pub fn new(
        trust: &TrustStore,
        status: CompactStatus,
        now: Time,
    ) -> Result<FastVerifier, Failure> {
        trust.check_fresh(now)?;
        let seals = SealTable::prepare(trust)?;
        let context = context(trust, &seals, &status, now);
        Ok(FastVerifier {
            seals,
            status,
            now,
            context,
            exact: false,
            coefficient_key: context,
        })
    }

    /// Checks every signature with `verify_strict` instead of in batches (specs/bulk.md §4.4).
    /// Keys the derivation of the batch coefficients with a secret (say 32 random bytes per run),
    /// so that no signer can predict them (specs/bulk.md §4.4).
    pub fn coefficient_key(mut self, key: [u8; 32]) -> FastVerifier {
        self.coefficient_key = key;
        self
    }

    /// Outcomes of the two modes can differ (that is the point), so they have distinct cache
    /// contexts.
    pub fn exact(mut self, exact: bool) -> FastVerifier {
        if exact != self.exact {
            let mut hasher = blake3::Hasher::new_derive_key("tongban v1 bulk cache exact mode");
            hasher.update(&self.context);
            self.context = *hasher.finalize().as_bytes();
            self.exact = exact;
        }
        self
    }

    /// The digest of everything an outcome depends on besides the certificate's bytes.
    pub fn context(&self) -> &[u8; 32] {
        &self.context
    }

    pub fn seals(&self) -> &SealTable {
        &self.seals
    }

    pub fn status(&self) -> &CompactStatus {
        &self.status
    }

    /// Verifies `certificates`, appending one outcome per certificate, in order, to `out`.
    pub fn verify_batch(
        &self,
        certificates: &[&[u8]],
        cache: Option<&DigestCache>,
        scratch: &mut Scratch,
        out: &mut Vec<Outcome>,
    ) {
        let base = out.len();
        let mut keys: Vec<Option<[u8; 32]>> = Vec::new();
        let mut pending: Vec<Pending<'_>> = Vec::with_capacity(certificates.len());
        for (at, bytes) in certificates.iter().enumerate() {
            if let Some(cache) = cache {
                let key = DigestCache::key(bytes);
                if let Some(hit) = cache.get(&self.context, &key) {
                    scratch.stats.cached += 1;
                    out.push(hit);
                    keys.push(None);
                    continue;
                }
                keys.push(Some(key));
            }
            // Steps 1–7; step 0 was checked when the verifier was made.
            let opened = Envelope::open(bytes, Kind::Certificate).and_then(|envelope| {
                find_seal(&envelope.kid, |kid| self.seals.get(kid)).map(|seal| (envelope, seal))
            });
            match opened {
                Err(failure) => out.push(Outcome::failed(&failure)),
                Ok((envelope, seal)) => {
                    // A placeholder, replaced once the signature is decided.
                    out.push(Outcome::placeholder());
                    pending.push(Pending {
                        at,
                        envelope,
                        seal,
                        signature: None,
                    });
                }
            }
        }
        // Step 8.
        if self.exact {
            for item in pending.iter_mut() {
                item.signature = Some(strict(item, scratch));
            }
        } else {
            check_signatures(&mut pending, &self.coefficient_key, scratch);
        }
        // Steps 9–16, exactly as the single path.
        for item in pending {
            let outcome = match item.signature {
                Some(Ok(())) => Outcome::of(verify_signed(
                    &item.envelope,
                    &item.seal.entry,
                    &self.status,
                    self.now,
                )),
                Some(Err(failure)) => Outcome::failed(&failure),
                // Every pending signature is decided by check_signatures; should one not be, the
                // single path's strict check decides it here.
                None => match item.envelope.verify(&item.seal.entry.info.key) {
                    Ok(()) => Outcome::of(verify_signed(
                        &item.envelope,
                        &item.seal.entry,
                        &self.status,
                        self.now,
                    )),
                    Err(failure) => Outcome::failed(&failure),
                },
            };
            out[base + item.at] = outcome;
        }
        if let Some(cache) = cache {
            for (at, key) in keys.into_iter().enumerate() {
                if let (Some(key), Some(outcome)) = (key, out.get(base + at)) {
                    cache.insert(&self.context, key, outcome.clone());
                }
            }
        }
    }
}

/// Decides step 8 for every pending certificate: screened signatures of batchable seals go
/// through the batch equation, halving failed batches; SM2 signatures are each decided by their
/// own equation, sharing the inversion that brings their points to affine form; everything else,
/// and every signature of a failed batch of fewer than [`STRICT_BELOW`], is checked with
/// `verify_strict`.
fn check_signatures(pending: &mut [Pending<'_>], key: &[u8; 32], scratch: &mut Scratch) {
    let mut batch: Vec<usize> = Vec::with_capacity(pending.len());
    let mut sm2: Vec<usize> = Vec::new();
    for (i, item) in pending.iter_mut().enumerate() {
        if item.seal.batchable() && batchable_signature(&item.envelope.signature) {
            batch.push(i);
        } else if item.envelope.suite == Suite::Sm2
            && item.seal.entry.info.key.sm2_prepared().is_some()
        {
            sm2.push(i);
        } else {
            item.signature = Some(strict(item, scratch));
        }
    }
    check_sm2(pending, &sm2, scratch);
    let chunk = scratch.chunk(batch.len());
    for part in batch.chunks(chunk) {
        bisect(pending, part, false, key, scratch);
    }
    let bad = batch
        .iter()
        .filter(|&&i| matches!(pending[i].signature, Some(Err(_))))
        .count();
    scratch.observe(bad, batch.len());
}

/// Step 8 for SM2 signatures (`indices`, of SM2 seals): each exactly as `verify_strict` decides
/// it, with one field inversion per [`NORMALIZE_CHUNK`](crate::sm2_tables::NORMALIZE_CHUNK)
/// signatures instead of one each.
fn check_sm2(pending: &mut [Pending<'_>], indices: &[usize], scratch: &mut Scratch) {
    let started: Vec<Option<Started>> = indices
        .iter()
        .map(|&i| {
            let item = &pending[i];
            item.seal
                .entry
                .info
                .key
                .sm2_prepared()?
                .start(&item.envelope.sig_structure(), &item.envelope.signature)
        })
        .collect();
    for (&i, holds) in indices.iter().zip(finish_all(&started)) {
        let item = &mut pending[i];
        item.signature = Some(if holds {
            Ok(())
        } else {
            Err(signature_invalid(&item.seal.entry.info.key))
        });
    }
    scratch.stats.strict += indices.len() as u64;
}

/// The single path's step 8 for one certificate.
fn strict(item: &Pending<'_>, scratch: &mut Scratch) -> Result<(), Failure> {
    scratch.stats.strict += 1;
    item.envelope.verify(&item.seal.entry.info.key)
}

/// Checks the signatures `indices` of `pending`. `known_bad`: the caller already saw them fail
/// together, so go straight to the halves.
fn bisect(
    pending: &mut [Pending<'_>],
    indices: &[usize],
    known_bad: bool,
    key: &[u8; 32],
    scratch: &mut Scratch,
) {
    if indices.is_empty() {
        return;
    }
    if indices.len() < STRICT_BELOW {
        for &i in indices {
            pending[i].signature = Some(strict(&pending[i], scratch));
        }
        return;
    }
    if !known_bad && batch_passes(pending, indices, key, scratch) {
        for &i in indices {
            pending[i].signature = Some(Ok(()));
        }
        scratch.stats.batched += indices.len() as u64;
        return;
    }
    let (left, right) = indices.split_at(indices.len() / 2);
    let left_passed = left.len() >= STRICT_BELOW && batch_passes(pending, left, key, scratch);
    if left_passed {
        for &i in left {
            pending[i].signature = Some(Ok(()));
        }
        scratch.stats.batched += left.len() as u64;
        // The whole failed and the left half passed: the right half holds a bad signature.
        bisect(pending, right, true, key, scratch);
    } else {
        bisect(pending, left, left.len() >= STRICT_BELOW, key, scratch);
        bisect(pending, right, false, key, scratch);
    }
}

fn batch_passes(
    pending: &[Pending<'_>],
    indices: &[usize],
    key: &[u8; 32],
    scratch: &mut Scratch,
) -> bool {
    // Only batchable seals' signatures reach a batch; should one not be, the batch fails and
    // bisection checks each signature on its own.
    let terms: Option<Vec<Term<'_>>> = indices
        .iter()
        .map(|&i| {
            let item = &pending[i];
            Term::of_seal(
                item.envelope.sig_structure(),
                &item.envelope.signature,
                item.seal,
            )
        })
        .collect();
    let Some(terms) = terms else {
        return false;
    };
    scratch.stats.batch_calls += 1;
    let passed = scratch.equation.holds(key, &terms);
    if !passed {
        scratch.stats.batch_failures += 1;
    }
    passed
}

/// BLAKE3 over the trust bundle's seals (with their revocations), its expiry, the status index
/// and `now`: the verified-digest cache's context.
fn context(trust: &TrustStore, seals: &SealTable, status: &CompactStatus, now: Time) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("tongban v1 bulk cache context");
    hasher.update(trust.federation.key.as_bytes());
    hasher.update(&trust.version.to_be_bytes());
    hasher.update(&trust.expires.seconds().to_be_bytes());
    let mut kids: Vec<_> = seals.iter().map(|s| s.entry.info.key.kid()).collect();
    kids.sort();
    for kid in kids {
        if let Some(seal) = seals.get(&kid) {
            let info = &seal.entry.info;
            hasher.update(&kid.0);
            for text in [
                info.id.as_str(),
                info.region.as_str(),
                info.agency.as_str(),
                info.agency_name.as_str(),
            ] {
                hasher.update(&(text.len() as u64).to_be_bytes());
                hasher.update(text.as_bytes());
            }
            hasher.update(&info.valid_from.seconds().to_be_bytes());
            hasher.update(&info.valid_until.seconds().to_be_bytes());
            let revoked = seal
                .entry
                .revocation
                .as_ref()
                .map(|r| r.revoked_from.seconds());
            hasher.update(&revoked.unwrap_or(u64::MAX).to_be_bytes());
        }
    }
    hasher.update(&status.fingerprint());
    hasher.update(&now.seconds().to_be_bytes());
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_tries_shrink_when_bad_signatures_are_common_and_grow_back() {
        let mut scratch = Scratch::default();
        assert_eq!(scratch.chunk(256), 256);
        for _ in 0..20 {
            scratch.observe(5, 256);
        }
        let small = scratch.chunk(256);
        assert!((MIN_CHUNK..=16).contains(&small), "{small}");
        for _ in 0..40 {
            scratch.observe(0, 256);
        }
        assert_eq!(scratch.chunk(256), 256);
        assert_eq!(scratch.chunk(3), 3);
    }
}
