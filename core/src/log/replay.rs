//! Replaying a log with its signatures checked on several threads, over a state kept wherever
//! its [`AuditStore`] keeps it. Strict signature checks are most of a replay's time, and unlike
//! the rules they do not depend on one another: the rules are applied in order on the caller's
//! thread, over the store and an overlay of the window's own changes, while the signatures of
//! each window of entries are checked in parallel; the store takes a window's changes once all of
//! them held. The outcome is the one [`RegionState::apply`](crate::log::state::RegionState::apply)
//! on each entry in turn gives: the same state, or the same first rejection at the same index.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use crate::bulk::equation::{Equation, Term};
use crate::bulk::screen::{KeyClass, batchable_signature, classify_key};
use crate::ids::RegionCode;
use crate::keys::{KeyId, PublicKey};
use crate::log::overlay::{Layered, Overlay};
use crate::log::state::{
    Applied, ApplyError, AuditStore, Delta, Head, PendingSignature, Rejection, Rules, SealRecord,
    Write,
};

/// How a replay divides its work.
#[derive(Clone, Copy, Debug)]
struct Tuning {
    /// Entries applied before their signatures are checked: enough to share out among threads,
    /// few enough that the pending checks take little memory (a few hundred bytes each).
    window: usize,
    /// Fewer checks than this are not worth a thread (starting one costs about one check).
    min_share: usize,
}

const TUNING: Tuning = Tuning {
    window: 4096,
    min_share: 32,
};

/// Where a replay stopped: the entry (an index into the entries given) that a replay one entry
/// at a time would have refused first, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("entry {offset}: {rejection}")]
pub struct Stopped {
    pub offset: usize,
    pub rejection: Rejection,
}

/// Why a replay did not take every entry given.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError<E: std::error::Error + 'static> {
    /// The log's fault: an entry its rules refuse. The store holds the state before it.
    #[error(transparent)]
    Refused(Stopped),
    /// The store's own failure (a full disk, say): no fault of the log.
    #[error("the replay's state store failed: {0}")]
    Store(#[source] E),
}

/// A replay of one region's log: the rules, where the log stands, its seals (one per agency's
/// stamp: a bounded set, held here), and the store that holds the rest.
pub struct Replay<S> {
    region: RegionCode,
    root: PublicKey,
    head: Head,
    seals: HashMap<KeyId, SealRecord>,
    store: S,
    threads: NonZeroUsize,
    tuning: Tuning,
    /// Checks signatures in batches (specs/bulk.md §4) with this coefficient key; `None`: one
    /// by one, strictly.
    batch: Option<[u8; 32]>,
}

impl<S: AuditStore> Replay<S> {
    /// The replay of `region`'s log (whose root key is `root`) from its first entry, into
    /// `store` (empty).
    pub fn new(region: RegionCode, root: PublicKey, store: S, threads: NonZeroUsize) -> Replay<S> {
        Replay {
            region,
            root,
            head: Head::default(),
            seals: HashMap::new(),
            store,
            threads,
            tuning: TUNING,
            batch: None,
        }
    }

    /// Checks the signatures in batches with the bulk verifier's equation and screen, each batch
    /// that fails checked again one by one (specs/bulk.md §4), the coefficients derived with
    /// `coefficient_key`, which the caller draws at random so that no signer can predict them.
    /// The verdicts are strict verification's but for what §4.4 says a batch may accept (a
    /// signer's own crafted torsion in `R`).
    pub fn batched(mut self, coefficient_key: [u8; 32]) -> Replay<S> {
        self.batch = Some(coefficient_key);
        self
    }

    pub fn region(&self) -> &RegionCode {
        &self.region
    }

    /// Entries taken so far.
    pub fn size(&self) -> u64 {
        self.head.size
    }

    pub fn seals(&self) -> impl Iterator<Item = &SealRecord> {
        self.seals.values()
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Where the log stands after the entries taken.
    pub fn head(&self) -> Head {
        self.head
    }

    pub fn into_store(self) -> S {
        self.store
    }

    /// Takes the next `entries`, in windows: `each` sees every entry once it and every entry
    /// before it passed every rule and its signature. On a refusal, the store holds the state
    /// before the refused entry.
    pub fn entries<B: AsRef<[u8]>>(
        &mut self,
        entries: &[B],
        mut each: impl FnMut(&Applied, &Delta),
    ) -> Result<(), ReplayError<S::Error>> {
        let window = self.tuning.window.max(1);
        for (w, chunk) in entries.chunks(window).enumerate() {
            self.window(chunk, &mut each).map_err(|e| match e {
                ReplayError::Refused(s) => ReplayError::Refused(Stopped {
                    offset: w * window + s.offset,
                    rejection: s.rejection,
                }),
                store => store,
            })?;
        }
        Ok(())
    }

    fn window<B: AsRef<[u8]>>(
        &mut self,
        entries: &[B],
        each: &mut impl FnMut(&Applied, &Delta),
    ) -> Result<(), ReplayError<S::Error>> {
        let seals_before = self.seals.clone();
        let (judged, stop) = self.judge(entries);
        let stop = match stop {
            Some(Stop::Store(e)) => {
                // Nothing of the window taken: the seals as before it.
                self.seals = seals_before;
                return Err(ReplayError::Store(e));
            }
            Some(Stop::Refused(stopped)) => {
                // The seals as the good entries left them, not as the refused window did.
                self.seals = seals_before.clone();
                for (_, delta) in &judged {
                    for write in &delta.writes {
                        if let Write::Seal(record) = write {
                            self.seals.insert(record.info.key.kid(), record.clone());
                        }
                    }
                }
                Some(stopped)
            }
            None => None,
        };
        let (applied, deltas): (Vec<Applied>, Vec<Delta>) = judged.into_iter().unzip();
        if let Err(e) = self.store.take(&deltas) {
            self.seals = seals_before;
            return Err(ReplayError::Store(e));
        }
        if let Some(last) = deltas.last() {
            self.head = last.head;
        }
        for (applied, delta) in applied.iter().zip(&deltas) {
            each(applied, delta);
        }
        match stop {
            Some(stopped) => Err(ReplayError::Refused(stopped)),
            None => Ok(()),
        }
    }

    /// Every rule of each entry in order over the store and the window's own changes, the
    /// signatures put off; then the signatures on every thread. Returns what passed everything,
    /// and where and why the window stopped, if it did.
    fn judge<B: AsRef<[u8]>>(&mut self, entries: &[B]) -> Judged<S::Error> {
        let rules = Rules {
            region: &self.region,
            root: &self.root,
        };
        let mut overlay = Overlay::default();
        let mut head = self.head;
        let mut judged: Vec<(Applied, Delta)> = Vec::with_capacity(entries.len());
        let mut pending: Vec<PendingSignature<'_>> = Vec::with_capacity(entries.len());
        let mut refused = None;
        for (offset, bytes) in entries.iter().enumerate() {
            let store = Layered {
                seals: &self.seals,
                overlay: &overlay,
                store: &self.store,
            };
            let checked = rules.check(head, &store, bytes.as_ref(), |envelope, key| {
                Ok(PendingSignature::new(envelope, key))
            });
            match checked {
                Ok((applied, signature, delta)) => {
                    pending.push(signature);
                    overlay.take(head.size, &delta, &mut self.seals);
                    head = delta.head;
                    judged.push((applied, delta));
                }
                Err(ApplyError::Store(e)) => {
                    judged.clear();
                    return (judged, Some(Stop::Store(e)));
                }
                Err(ApplyError::Rejected(_)) => {
                    // Decided below: an earlier bad signature comes first; else the strict check
                    // of this entry (its signature before any later rule) says why.
                    let strict = rules.check(head, &store, bytes.as_ref(), |envelope, key| {
                        PendingSignature::new(envelope, key).check()
                    });
                    refused = Some(match strict {
                        Ok(_) => Err(offset),
                        Err(ApplyError::Rejected(rejection)) => Ok((offset, rejection)),
                        Err(ApplyError::Store(e)) => {
                            judged.clear();
                            return (judged, Some(Stop::Store(e)));
                        }
                    });
                    break;
                }
            }
        }
        if let Some((offset, rejection)) = first_bad_signature(
            &pending,
            self.threads,
            self.tuning.min_share,
            self.batch.as_ref(),
        ) {
            judged.truncate(offset);
            return (judged, Some(Stop::Refused(Stopped { offset, rejection })));
        }
        match refused {
            None => (judged, None),
            Some(Ok((offset, rejection))) => {
                (judged, Some(Stop::Refused(Stopped { offset, rejection })))
            }
            // The rules are a function of the entry and the state: a second look cannot accept
            // what the first refused. Were it to, the entry is still not taken.
            Some(Err(offset)) => {
                let rejection = Rejection {
                    code: crate::log::audit::FindingCode::EntryMalformed,
                    detail: "refused, then accepted, by the same rules".into(),
                };
                (judged, Some(Stop::Refused(Stopped { offset, rejection })))
            }
        }
    }
}

/// What a window's judgement passed, and where and why it stopped, if it did.
type Judged<E> = (Vec<(Applied, Delta)>, Option<Stop<E>>);

/// Why a window stopped.
enum Stop<E> {
    Refused(Stopped),
    Store(E),
}

/// Signatures per batch equation: a failed batch costs its signatures checked again one by one.
const BATCH: usize = 64;

/// The first signature of `share` (by index, offset by `base`) that fails: strictly one by one,
/// or with `batch`, in batches whose failures are checked one by one.
fn first_in<'s>(
    share: &'s [PendingSignature<'_>],
    base: usize,
    batch: Option<&[u8; 32]>,
) -> Option<(usize, Rejection)> {
    let strictly = |part: &[PendingSignature<'_>], base: usize| {
        #[cfg(test)]
        tests::STRICT.with(|n| n.set(n.get() + part.len()));
        part.iter()
            .enumerate()
            .find_map(|(i, p)| p.check().err().map(|r| (base + i, r)))
    };
    let Some(coefficient_key) = batch else {
        return strictly(share, base);
    };
    // The keys of the share (a log has few: its root and its seals), each screened once.
    let mut keys: Vec<(&'s PublicKey, bool)> = Vec::new();
    let mut slot_of = |key: &'s PublicKey| -> (usize, bool) {
        match keys.iter().position(|(k, _)| *k == key) {
            Some(slot) => (slot, keys[slot].1),
            None => {
                // Only Ed25519 keys enter the batch equation; others are checked one by one.
                let batchable = key
                    .ed25519_key()
                    .is_some_and(|k| classify_key(k) == KeyClass::Batchable);
                keys.push((key, batchable));
                (keys.len() - 1, batchable)
            }
        }
    };
    let mut equation = Equation::default();
    for (k, part) in share.chunks(BATCH).enumerate() {
        let at = base + k * BATCH;
        let mut terms = Vec::with_capacity(part.len());
        let mut screened = true;
        for p in part {
            let (slot, batchable) = slot_of(p.key());
            screened &= batchable && batchable_signature(&p.envelope().signature);
            let Some(key) = p.key().ed25519_key().filter(|_| screened) else {
                continue;
            };
            terms.push(Term {
                message: p.envelope().sig_structure(),
                signature: &p.envelope().signature,
                key,
                slot,
            });
        }
        if !(screened && equation.holds(coefficient_key, &terms))
            && let Some(found) = strictly(part, at)
        {
            return Some(found);
        }
    }
    None
}

/// The first signature (by index) that fails its check, checked on up to `threads` threads, each
/// taking a contiguous share.
fn first_bad_signature(
    pending: &[PendingSignature<'_>],
    threads: NonZeroUsize,
    min_share: usize,
    batch: Option<&[u8; 32]>,
) -> Option<(usize, Rejection)> {
    let first_in = |share: &[PendingSignature<'_>], base: usize| first_in(share, base, batch);
    let share = pending.len().div_ceil(threads.get()).max(min_share.max(1));
    if share >= pending.len() {
        return first_in(pending, 0);
    }
    std::thread::scope(|scope| {
        let mut shares = pending.chunks(share).enumerate();
        let (_, own) = shares.next()?;
        // A share whose thread cannot start (a process limit, say) is checked here instead.
        let others: Vec<_> = shares
            .map(|(k, chunk)| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || first_in(chunk, k * share))
                    .map_err(|_| (k, chunk))
            })
            .collect();
        let mine = first_in(own, 0);
        // Shares are in index order: the first failure found, in that order, is the first.
        std::iter::once(mine)
            .chain(others.into_iter().map(|other| {
                match other {
                    // A check that panicked on another thread panics here, as if it had run here.
                    Ok(thread) => thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    Err((k, chunk)) => first_in(chunk, k * share),
                }
            }))
            .find_map(|found| found)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::log::state::{MemoryStore, RegionState};
    use crate::testkit::log::sample;
    use crate::testkit::region_code;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    thread_local! {
        /// Signatures checked one by one on this thread.
        pub(super) static STRICT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn batches_check_good_signatures_without_a_strict_check_and_find_a_bad_one() -> TestResult {
        let entries = sample()?.entries;
        let one = NonZeroUsize::MIN;
        let tuning = Tuning {
            window: 4096,
            min_share: 1,
        };
        STRICT.with(|n| n.set(0));
        let (outcome, _, _) = in_parallel(&entries, (one, tuning, Some([9; 32])))?;
        assert!(outcome.is_ok());
        assert_eq!(STRICT.with(|n| n.get()), 0, "a good batch fell back");
        // One bad signature: its batch is checked again one by one, and it is found.
        let mut bad = entries.clone();
        let last = bad[4].len() - 1;
        bad[4][last] ^= 1;
        let (outcome, _, _) = in_parallel(&bad, (one, tuning, Some([9; 32])))?;
        assert_eq!(outcome.err().map(|s| s.offset), Some(4));
        assert!(STRICT.with(|n| n.get()) > 0);
        Ok(())
    }

    /// Where the replay stopped (if it did), the state it left, and what `each` saw.
    type Replayed = (Result<(), Stopped>, String, Vec<String>);

    fn fresh() -> Result<RegionState, Box<dyn std::error::Error>> {
        let root = crate::testkit::key("region 341200 root")?.public().clone();
        Ok(RegionState::new(region_code("341200")?, root))
    }

    /// Everything a state holds, in a comparable form.
    fn fingerprint(
        head: Head,
        certs: BTreeMap<String, String>,
        mut seals: Vec<String>,
        transfers_in: Vec<String>,
        transfers_out: Vec<String>,
    ) -> String {
        seals.sort();
        format!(
            "{} {:?} {certs:?} {seals:?} {transfers_in:?} {transfers_out:?}",
            head.size, head.last_at
        )
    }

    fn of_state(state: &RegionState) -> String {
        fingerprint(
            state.head(),
            state
                .certs()
                .map(|(id, c)| (id.as_str().to_owned(), format!("{c:?}")))
                .collect(),
            state.seals().map(|s| format!("{s:?}")).collect(),
            state
                .transfers_in()
                .iter()
                .map(|t| format!("{t:?}"))
                .collect(),
            state
                .transfers_out()
                .iter()
                .map(|t| format!("{t:?}"))
                .collect(),
        )
    }

    fn of_replay(replay: &Replay<MemoryStore>) -> Result<String, Box<dyn std::error::Error>> {
        let mut certs = BTreeMap::new();
        let (mut transfers_in, mut transfers_out) = (Vec::new(), Vec::new());
        let store = replay.store();
        store.each_cert(&mut |id, c| {
            certs.insert(id.as_str().to_owned(), format!("{c:?}"));
            true
        })?;
        store.each_transfer_in(&mut |i, id, p| {
            transfers_in.push(format!("{:?}", (i, id.clone(), p.clone())));
        })?;
        store.each_transfer_out(&mut |id, to| {
            transfers_out.push(format!("{:?}", (id.clone(), to.clone())));
        })?;
        Ok(fingerprint(
            replay.head(),
            certs,
            replay.seals().map(|s| format!("{s:?}")).collect(),
            transfers_in,
            transfers_out,
        ))
    }

    /// What `each` saw: the entry applied and the log's size just after it.
    fn seen(size: u64, applied: &Applied) -> String {
        format!("{size} {:?} {:?}", applied.signer, applied.entry)
    }

    /// The reference: [`RegionState::apply`] on one entry after another.
    fn one_at_a_time(entries: &[Vec<u8>]) -> Result<Replayed, Box<dyn std::error::Error>> {
        let mut state = fresh()?;
        let mut log = Vec::new();
        for (offset, bytes) in entries.iter().enumerate() {
            match state.apply(bytes) {
                Ok(applied) => log.push(seen(state.size(), &applied)),
                Err(rejection) => {
                    return Ok((Err(Stopped { offset, rejection }), of_state(&state), log));
                }
            }
        }
        Ok((Ok(()), of_state(&state), log))
    }

    /// Divisions that reach every path: one entry per window, windows that split the log, one
    /// window; no threads, two, more threads than checks; strict checks and batches.
    fn tunings() -> Vec<(NonZeroUsize, Tuning, Option<[u8; 32]>)> {
        let mut all = Vec::new();
        for threads in [1, 2, 3, 64] {
            for window in [1, 2, 5, 4096] {
                for min_share in [1, 32] {
                    for batch in [None, Some([0x5a; 32])] {
                        if let Some(threads) = NonZeroUsize::new(threads) {
                            all.push((threads, Tuning { window, min_share }, batch));
                        }
                    }
                }
            }
        }
        all
    }

    fn in_parallel(
        entries: &[Vec<u8>],
        (threads, tuning, batch): (NonZeroUsize, Tuning, Option<[u8; 32]>),
    ) -> Result<Replayed, Box<dyn std::error::Error>> {
        let state = fresh()?;
        let mut replay = Replay::new(
            state.region().clone(),
            state.root().clone(),
            MemoryStore::default(),
            threads,
        );
        replay.tuning = tuning;
        replay.batch = batch;
        let mut log = Vec::new();
        let outcome = replay.entries(entries, |applied, delta| {
            log.push(seen(delta.head.size, applied))
        });
        let outcome = match outcome {
            Ok(()) => Ok(()),
            Err(ReplayError::Refused(stopped)) => Err(stopped),
            Err(ReplayError::Store(never)) => match never {},
        };
        Ok((outcome, of_replay(&replay)?, log))
    }

    #[test]
    fn a_good_log_replays_as_one_entry_at_a_time() -> TestResult {
        let entries = sample()?.entries;
        let expected = one_at_a_time(&entries)?;
        assert!(expected.0.is_ok(), "the sample log replays");
        assert!(expected.2.len() == entries.len());
        for tuning in tunings() {
            assert_eq!(in_parallel(&entries, tuning)?, expected, "{tuning:?}");
        }
        Ok(())
    }

    /// The log with its entry `at` changed by `how`.
    fn tampered(entries: &[Vec<u8>], at: usize, how: usize) -> Option<Vec<Vec<u8>>> {
        let mut log = entries.to_vec();
        let flip_last = |e: &mut Vec<u8>| {
            if let Some(b) = e.last_mut() {
                *b ^= 1;
            }
        };
        match how {
            // A bad signature (its last byte).
            0 => flip_last(log.get_mut(at)?),
            // A byte of the payload: malformed, or signed bytes that no longer verify.
            1 => {
                let entry = log.get_mut(at)?;
                let middle = entry.len() / 2;
                *entry.get_mut(middle)? ^= 0x20;
            }
            // The entry before, again: refused by a rule checked after the signature.
            2 => log[at] = log.get(at.checked_sub(1)?)?.clone(),
            // The same with a bad signature: the signature is decided first.
            3 => {
                log[at] = log.get(at.checked_sub(1)?)?.clone();
                flip_last(&mut log[at]);
            }
            // Missing: the next entry may not follow.
            4 => {
                log.remove(at);
            }
            _ => return None,
        }
        Some(log)
    }

    #[test]
    fn a_bad_log_stops_where_one_entry_at_a_time_stops() -> TestResult {
        let entries = sample()?.entries;
        let mut stopped = 0;
        for at in 0..entries.len() {
            for how in 0..5 {
                let Some(log) = tampered(&entries, at, how) else {
                    continue;
                };
                let expected = one_at_a_time(&log)?;
                stopped += usize::from(expected.0.is_err());
                for tuning in tunings() {
                    // The same stop, the same state before it, the same entries seen.
                    assert_eq!(
                        in_parallel(&log, tuning)?,
                        expected,
                        "entry {at} tampered by {how}, {tuning:?}"
                    );
                }
            }
        }
        assert!(stopped > 3 * entries.len(), "most tamperings are refused");
        Ok(())
    }

    #[test]
    fn a_bad_signature_is_reported_before_a_later_refusal() -> TestResult {
        let entries = sample()?.entries;
        let (bad, late) = (2, entries.len() - 1);
        let mut log = tampered(&entries, bad, 0).ok_or("sample too short")?;
        log[late] = log[late - 1].clone();
        let threads = NonZeroUsize::new(2).ok_or("two")?;
        let tuning = Tuning {
            window: 4096,
            min_share: 1,
        };
        let (outcome, _, seen) = in_parallel(&log, (threads, tuning, Some([7; 32])))?;
        let stopped = outcome.err().ok_or("the log is refused")?;
        assert_eq!(stopped.offset, bad);
        assert_eq!(
            stopped.rejection.code,
            crate::log::audit::FindingCode::EntrySignature
        );
        // The later entries were judged by the rules before the signatures were checked, but
        // only the entries before the bad one were seen (and taken).
        assert_eq!(seen.len(), bad);
        Ok(())
    }
}
