//! Reading an act's rows before the sequencer lock.
//!
//! The sequencer judges each act against the durable state plus its overlay (the changes of
//! entries in flight), under one lock. A durable row read under that lock puts a storage round
//! trip on the path every act queues behind: with PostgreSQL, on another host in a real data
//! centre, that bounds a region's issuance by its network's latency. So the rows an act will
//! read are fetched before the lock, in one round trip made beside other acts' ([`Log::rows_at`],
//! which also says what size of the state they are as of). Under the lock the overlay answers
//! for every entry after that size and the rows read ahead for what is older.
//!
//! That needs the overlay to still hold every entry after the oldest read that still waits for
//! the lock: [`ReadsAhead`] counts those reads, and the sequencer trims its overlay only below
//! the oldest ([`ReadsAhead::settle`]). The rows to read are a hint (`state::reads_of`): a row
//! the rules read that the hint left out is read under the lock, as before, so a stale hint costs
//! time and never correctness.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::log::{Log, LogError, StateRows, StateSnapshot};

/// The reads ahead waiting for the sequencer, how far its overlay reaches back, and how many
/// rows were read where.
#[derive(Debug)]
pub(super) struct ReadsAhead {
    waiting: Mutex<Waiting>,
    /// Rows read ahead, and rows the rules read under the lock because nothing read ahead held
    /// them (both since start).
    pub(super) counts: RowCounts,
}

#[derive(Debug, Default)]
pub(super) struct RowCounts {
    pub(super) ahead: AtomicU64,
    pub(super) under_lock: AtomicU64,
}

#[derive(Debug)]
struct Waiting {
    /// The overlay holds every entry from here on.
    floor: u64,
    /// Reads not used or dropped yet, by the floor when they began: (floor, how many).
    open: BTreeMap<u64, usize>,
}

/// Rows read ahead for one act (or a chunk of acts), as of the state's `size`.
#[derive(Debug)]
pub(super) struct RowsAhead<'a> {
    reads: &'a ReadsAhead,
    /// The floor this read was counted under.
    from: u64,
    size: u64,
    rows: Rows,
}

impl Drop for RowsAhead<'_> {
    fn drop(&mut self) {
        let mut waiting = self.reads.lock();
        if let Some(count) = waiting.open.get_mut(&self.from) {
            *count -= 1;
            if *count == 0 {
                waiting.open.remove(&self.from);
            }
        }
    }
}

impl ReadsAhead {
    /// For a sequencer whose overlay starts empty over a state of `size` entries.
    pub(super) fn new(size: u64) -> ReadsAhead {
        ReadsAhead {
            waiting: Mutex::new(Waiting {
                floor: size,
                open: BTreeMap::new(),
            }),
            counts: RowCounts::default(),
        }
    }

    /// The counts stay whole whatever panicked while holding the lock (each change is one
    /// insert or removal), so a poisoned lock is taken as it is.
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the rows at `keys` now, counted as waiting until the result is dropped.
    pub(super) fn read(
        &self,
        log: &Log,
        keys: Vec<(u8, Vec<u8>)>,
    ) -> Result<RowsAhead<'_>, LogError> {
        let ahead = self.counted();
        let read = log.rows_at(&keys);
        self.fill(ahead, keys, read)
    }

    /// [`ReadsAhead::read`] for an async caller: the read is awaited, not waited for on the
    /// caller's thread.
    pub(super) async fn read_later(
        &self,
        log: &Log,
        keys: Vec<(u8, Vec<u8>)>,
    ) -> Result<RowsAhead<'_>, LogError> {
        let ahead = self.counted();
        let read = log.rows_at_later(keys.clone()).await;
        self.fill(ahead, keys, read)
    }

    /// A read counted as waiting, before it is made, under the floor of the moment: the state
    /// it reads is at least that size (what is committed only grows), and the overlay keeps
    /// everything from the oldest floor counted.
    fn counted(&self) -> RowsAhead<'_> {
        let from = {
            let mut waiting = self.lock();
            let from = waiting.floor;
            *waiting.open.entry(from).or_default() += 1;
            from
        };
        RowsAhead {
            reads: self,
            from,
            size: 0,
            rows: HashMap::new(),
        }
    }

    /// `ahead` holding what was read at `keys`.
    fn fill<'a>(
        &self,
        mut ahead: RowsAhead<'a>,
        keys: Vec<(u8, Vec<u8>)>,
        read: Result<crate::log::RowsAt, LogError>,
    ) -> Result<RowsAhead<'a>, LogError> {
        let (size, rows) = read?;
        self.counts
            .ahead
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
        ahead.size = size;
        ahead.rows = keys.into_iter().zip(rows).collect();
        Ok(ahead)
    }

    /// How far the sequencer may trim its overlay, the durable state being at `durable`: not
    /// beyond the oldest read still waiting. Never goes back.
    pub(super) fn settle(&self, durable: u64) -> u64 {
        let mut waiting = self.lock();
        let oldest = waiting.open.keys().next().copied().unwrap_or(durable);
        waiting.floor = waiting.floor.max(durable.min(oldest));
        waiting.floor
    }

    /// The sequencer took its state again from the durable log at `durable`, with an empty
    /// overlay: rows read before are no use to it.
    pub(super) fn restart(&self, durable: u64) {
        let mut waiting = self.lock();
        waiting.floor = waiting.floor.max(durable);
    }

    /// The rows of `ahead` if the overlay reaches back to their size, so that together they
    /// are the state; `None` if they are older (the sequencer restarted since).
    pub(super) fn usable<'r>(&self, ahead: Option<&'r RowsAhead<'_>>) -> Option<&'r Rows> {
        let floor = self.lock().floor;
        ahead.filter(|a| a.size >= floor).map(|a| &a.rows)
    }
}

/// Rows read ahead: (kind, key) → the row, `None` where absent.
pub(super) type Rows = HashMap<(u8, Vec<u8>), Option<Vec<u8>>>;

/// The durable state as the sequencer reads it under its lock: the rows read ahead where they
/// were, then the state itself.
pub(super) struct Durable<'a> {
    pub(super) ahead: Option<&'a Rows>,
    pub(super) rest: Rest<'a>,
    /// Counts the rows read from `rest`.
    pub(super) under_lock: &'a AtomicU64,
}

/// Where [`Durable`] reads a row that was not read ahead.
pub(super) enum Rest<'a> {
    /// From the state itself.
    Read(&'a StateSnapshot),
    /// Nowhere: the caller runs on an async worker, which must not wait on storage. The read
    /// fails and `missed` says so, for the caller to try again where it may wait.
    Refused { missed: &'a AtomicBool },
}

impl StateRows for Durable<'_> {
    fn get(&self, kind: u8, key: &[u8]) -> Result<Option<Vec<u8>>, LogError> {
        if let Some(row) = self.ahead.and_then(|rows| rows.get(&(kind, key.to_vec()))) {
            return Ok(row.clone());
        }
        match self.rest {
            Rest::Read(state) => {
                self.under_lock.fetch_add(1, Ordering::Relaxed);
                state.get(kind, key)
            }
            Rest::Refused { missed } => {
                missed.store(true, Ordering::Relaxed);
                Err(LogError::InvalidArgument(format!(
                    "state row {kind}/{key:?} was not read ahead"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;
    use crate::log::{LogConfig, NoIndex, StateOp};
    use crate::storage::{LogName, Storage};

    /// A log on the tests' storage, and what keeps it.
    fn log() -> (tempfile::TempDir, Storage, Log) {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::storage::test_storage(dir.path());
        let log = storage
            .open_log(&LogName::Region, LogConfig::default(), Arc::new(NoIndex))
            .unwrap();
        (dir, storage, log)
    }

    /// Commits `n` entries, each setting row (1, "k") to the log's new size.
    fn commit(log: &Log, n: u64) {
        for _ in 0..n {
            let size = log.size().unwrap() + 1;
            let op = StateOp::Put {
                kind: 1,
                key: b"k".to_vec(),
                value: size.to_be_bytes().to_vec(),
            };
            log.submit(vec![b"e".to_vec()], Vec::new(), vec![op])
                .unwrap()
                .wait()
                .unwrap();
        }
    }

    fn k() -> Vec<(u8, Vec<u8>)> {
        vec![(1, b"k".to_vec())]
    }

    #[test]
    fn the_overlay_is_kept_back_to_the_oldest_read_still_waiting() {
        let (_dir, _storage, log) = log();
        let reads = ReadsAhead::new(0);
        commit(&log, 3);
        assert_eq!(reads.settle(3), 3);
        let first = reads.read(&log, k()).unwrap();
        assert_eq!(first.size, 3);
        commit(&log, 2);
        let second = reads.read(&log, k()).unwrap();
        assert_eq!(second.size, 5);
        // Both began while the overlay reached back to 3: it must keep entries 3 and 4.
        assert_eq!(reads.settle(5), 3);
        drop(first);
        assert_eq!(reads.settle(5), 3);
        drop(second);
        assert_eq!(reads.settle(5), 5);
        // Never back.
        assert_eq!(reads.settle(4), 5);
        assert_eq!(reads.counts.ahead.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn rows_read_before_the_sequencer_restarted_are_not_used() {
        let (_dir, _storage, log) = log();
        let reads = ReadsAhead::new(0);
        let early = reads.read(&log, k()).unwrap();
        let rows = reads.usable(Some(&early)).unwrap();
        assert_eq!(rows.get(&(1, b"k".to_vec())), Some(&None));
        commit(&log, 2);
        reads.restart(2);
        assert!(reads.usable(Some(&early)).is_none());
        let late = reads.read(&log, k()).unwrap();
        let rows = reads.usable(Some(&late)).unwrap();
        assert_eq!(
            rows.get(&(1, b"k".to_vec())),
            Some(&Some(2u64.to_be_bytes().to_vec()))
        );
        assert!(reads.usable(None).is_none());
    }

    #[test]
    fn rows_not_read_ahead_are_refused_to_a_caller_that_may_not_wait() {
        let (_dir, _storage, log) = log();
        commit(&log, 1);
        let ahead: Rows = [((1, b"j".to_vec()), None)].into();
        let (under_lock, missed) = (AtomicU64::new(0), AtomicBool::new(false));
        let durable = Durable {
            ahead: Some(&ahead),
            rest: Rest::Refused { missed: &missed },
            under_lock: &under_lock,
        };
        assert_eq!(durable.get(1, b"j").unwrap(), None);
        assert!(!missed.load(Ordering::Relaxed));
        // Stored, but not read ahead: refused, not read.
        assert!(durable.get(1, b"k").is_err());
        assert!(missed.load(Ordering::Relaxed));
        assert_eq!(under_lock.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn rows_not_read_ahead_are_read_from_the_state_and_counted() {
        let (_dir, _storage, log) = log();
        commit(&log, 1);
        let ahead: Rows = [((1, b"k".to_vec()), Some(b"ahead".to_vec()))].into();
        let snapshot = log.sequencer_state().unwrap();
        let under_lock = AtomicU64::new(0);
        let durable = Durable {
            ahead: Some(&ahead),
            rest: Rest::Read(&snapshot),
            under_lock: &under_lock,
        };
        assert_eq!(durable.get(1, b"k").unwrap(), Some(b"ahead".to_vec()));
        assert_eq!(under_lock.load(Ordering::Relaxed), 0);
        assert_eq!(durable.get(1, b"j").unwrap(), None);
        assert_eq!(under_lock.load(Ordering::Relaxed), 1);
        let none = Durable {
            ahead: None,
            rest: Rest::Read(&snapshot),
            under_lock: &under_lock,
        };
        assert_eq!(
            none.get(1, b"k").unwrap(),
            Some(1u64.to_be_bytes().to_vec())
        );
        assert_eq!(under_lock.load(Ordering::Relaxed), 2);
    }
}
