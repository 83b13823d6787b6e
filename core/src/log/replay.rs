//! Replaying a log with its signatures checked on several threads. Strict signature checks are
//! most of a replay's time (a node's start, an audit), and unlike the rules they do not depend on
//! one another: the rules are applied in order on the caller's thread while the signatures of
//! each window of entries are checked in parallel. The outcome is the one [`RegionState::apply`]
//! on each entry in turn gives: the same state, or the same first rejection at the same index.

use std::num::NonZeroUsize;

use crate::log::state::{Applied, PendingSignature, RegionState, Rejection};

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

/// Applies `entries` to `state` in order, with [`RegionState::apply`]'s rules, calling `each`
/// after every entry with the state as it then stands, and verifying the signatures on up to
/// `threads` threads. Returns the state after the last entry, or where a replay one entry at a
/// time would have stopped. The state is not returned then: entries after one whose signature
/// failed may have been applied to it, so it is no state of the log.
///
/// `each` sees an entry before its signature is checked (up to a window of entries ahead): what
/// it does with one must hold for any bytes (no panic on a hostile value) and be dropped if the
/// replay fails.
pub fn replay<B: AsRef<[u8]>>(
    state: RegionState,
    entries: &[B],
    threads: NonZeroUsize,
    each: impl FnMut(&RegionState, Applied),
) -> Result<RegionState, Stopped> {
    replay_tuned(state, entries, threads, TUNING, each)
}

fn replay_tuned<B: AsRef<[u8]>>(
    mut state: RegionState,
    entries: &[B],
    threads: NonZeroUsize,
    tuning: Tuning,
    mut each: impl FnMut(&RegionState, Applied),
) -> Result<RegionState, Stopped> {
    let window = tuning.window.max(1);
    for (w, chunk) in entries.chunks(window).enumerate() {
        let base = w * window;
        state = replay_window(state, chunk, threads, tuning, &mut each).map_err(|s| Stopped {
            offset: base + s.offset,
            rejection: s.rejection,
        })?;
    }
    Ok(state)
}

fn replay_window<B: AsRef<[u8]>>(
    mut state: RegionState,
    entries: &[B],
    threads: NonZeroUsize,
    tuning: Tuning,
    each: &mut impl FnMut(&RegionState, Applied),
) -> Result<RegionState, Stopped> {
    let mut next = 0;
    while next < entries.len() {
        let mut pending = Vec::with_capacity(entries.len() - next);
        let mut refused_at = None;
        for (offset, bytes) in entries.iter().enumerate().skip(next) {
            match state.apply_deferred(bytes.as_ref()) {
                Ok((applied, signature)) => {
                    pending.push(signature);
                    each(&state, applied);
                }
                Err(_) => {
                    refused_at = Some(offset);
                    break;
                }
            }
        }
        if let Some((i, rejection)) = first_bad_signature(&pending, threads, tuning.min_share) {
            return Err(Stopped {
                offset: next + i,
                rejection,
            });
        }
        let Some(offset) = refused_at else {
            return Ok(state);
        };
        // Every earlier entry is now known good and a refusal leaves the state unchanged, so
        // this is the state a replay one entry at a time reaches here, and its strict `apply`
        // decides the entry as that replay would (a bad signature before a later rule, say).
        let applied = state
            .apply(entries[offset].as_ref())
            .map_err(|rejection| Stopped { offset, rejection })?;
        each(&state, applied);
        next = offset + 1;
    }
    Ok(state)
}

/// The first signature (by index) that fails its strict check, checked on up to `threads`
/// threads, each taking a contiguous share.
fn first_bad_signature(
    pending: &[PendingSignature<'_>],
    threads: NonZeroUsize,
    min_share: usize,
) -> Option<(usize, Rejection)> {
    let first_in = |share: &[PendingSignature<'_>], base: usize| {
        share
            .iter()
            .enumerate()
            .find_map(|(i, p)| p.check().err().map(|r| (base + i, r)))
    };
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
    use crate::testkit::log::sample;
    use crate::testkit::region_code;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// The state's fingerprint or where the replay stopped, and what `each` saw.
    type Replayed = (Result<String, Stopped>, Vec<String>);

    fn fresh() -> Result<RegionState, Box<dyn std::error::Error>> {
        let root = crate::testkit::key("region 341200 root")?.public().clone();
        Ok(RegionState::new(region_code("341200")?, root))
    }

    /// Everything the state holds, in a comparable form.
    fn fingerprint(state: &RegionState) -> String {
        let certs: BTreeMap<_, _> = state.certs().collect();
        let mut seals: Vec<String> = state.seals().map(|s| format!("{s:?}")).collect();
        seals.sort();
        format!(
            "{} {:?} {certs:?} {seals:?} {:?} {:?}",
            state.size(),
            state.last_at(),
            state.transfers_in(),
            state.transfers_out()
        )
    }

    /// What `each` saw: the entry applied and the state's size just after it.
    fn seen(state: &RegionState, applied: &Applied) -> String {
        format!("{} {:?} {:?}", state.size(), applied.signer, applied.entry)
    }

    /// The reference: [`RegionState::apply`] on one entry after another.
    fn one_at_a_time(entries: &[Vec<u8>]) -> Result<Replayed, Box<dyn std::error::Error>> {
        let mut state = fresh()?;
        let mut log = Vec::new();
        for (offset, bytes) in entries.iter().enumerate() {
            match state.apply(bytes) {
                Ok(applied) => log.push(seen(&state, &applied)),
                Err(rejection) => return Ok((Err(Stopped { offset, rejection }), log)),
            }
        }
        Ok((Ok(fingerprint(&state)), log))
    }

    /// Divisions that reach every path: one entry per window, windows that split the log, one
    /// window; no threads, two, more threads than checks.
    fn tunings() -> Vec<(NonZeroUsize, Tuning)> {
        let mut all = Vec::new();
        for threads in [1, 2, 3, 64] {
            for window in [1, 2, 5, 4096] {
                for min_share in [1, 32] {
                    if let Some(threads) = NonZeroUsize::new(threads) {
                        all.push((threads, Tuning { window, min_share }));
                    }
                }
            }
        }
        all
    }

    fn in_parallel(
        entries: &[Vec<u8>],
        threads: NonZeroUsize,
        tuning: Tuning,
    ) -> Result<Replayed, Box<dyn std::error::Error>> {
        let mut log = Vec::new();
        let outcome = replay_tuned(fresh()?, entries, threads, tuning, |state, applied| {
            log.push(seen(state, &applied))
        });
        Ok((outcome.map(|state| fingerprint(&state)), log))
    }

    #[test]
    fn a_good_log_replays_as_one_entry_at_a_time() -> TestResult {
        let entries = sample()?.entries;
        let expected = one_at_a_time(&entries)?;
        assert!(expected.0.is_ok(), "the sample log replays");
        for (threads, tuning) in tunings() {
            assert_eq!(
                in_parallel(&entries, threads, tuning)?,
                expected,
                "{threads} threads, {tuning:?}"
            );
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
                let (expected, _) = one_at_a_time(&log)?;
                stopped += usize::from(expected.is_err());
                for (threads, tuning) in tunings() {
                    let (outcome, _) = in_parallel(&log, threads, tuning)?;
                    assert_eq!(
                        outcome, expected,
                        "entry {at} tampered by {how}, {threads} threads, {tuning:?}"
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
        let (outcome, seen) = in_parallel(&log, threads, tuning)?;
        let stopped = outcome.err().ok_or("the log is refused")?;
        assert_eq!(stopped.offset, bad);
        assert_eq!(
            stopped.rejection.code,
            crate::log::audit::FindingCode::EntrySignature
        );
        // The later entries were applied before the signatures were checked, which is why the
        // state is not handed back.
        assert!(seen.len() > bad);
        Ok(())
    }
}
