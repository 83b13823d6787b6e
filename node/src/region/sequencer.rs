//! The sequencer: the one lock under which every act is checked against the state (durable
//! plus in flight), signed, applied and submitted to the log, and the wait for its durability.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard, TryLockError};

use tongban_core::ids::{Identifier, RegionCode};
use tongban_core::keys::{KeyId, PublicKey, SecretKey};
use tongban_core::log::entry::{Act, LogEntry};
use tongban_core::log::overlay::{Layered, Overlay};
use tongban_core::log::state::{
    ApplyError, CertRecord, Delta, Head, Rules, SealRecord, StateRead, own_signature,
};
use tongban_core::values::Time;

use crate::log::{Blob, Log, LogError, Pending, StateRows, StateSnapshot};
use crate::refusal::{Kind, Refusal};

use super::read_ahead::{Durable, ReadsAhead, Rest, RowsAhead};
use super::{Region, Seals, Signer, lock_failed, now, state};

/// How many times [`Region::sequencer_now`] tries the lock before it gives up.
const LOCK_TRIES: usize = 16;

/// What the log's writes need, kept under one lock so acts enter the log in the order they were
/// checked.
pub(super) struct Sequencer {
    pub(super) region: RegionCode,
    pub(super) root: PublicKey,
    /// The log as the sequencer has it: every entry submitted, durable or not.
    pub(super) head: Head,
    /// Every seal registered (a bounded set: one per agency's stamp), with what is in flight.
    pub(super) seals: HashMap<KeyId, SealRecord>,
    /// What entries submitted and not durable yet changed.
    pub(super) overlay: Overlay,
    pub(super) seal_keys: HashMap<KeyId, Arc<SecretKey>>,
    /// The log's epoch this state was built in: its submissions are refused once a batch
    /// failed since (`Log::submit_in`).
    pub(super) epoch: u64,
    /// Rows read for acts before they take this lock (read_ahead.rs): the overlay keeps every
    /// entry after the oldest of them.
    pub(super) ahead: Arc<ReadsAhead>,
}

/// An entry checked and applied by the sequencer, not yet submitted to the log.
pub(super) struct Staged {
    pub(super) bytes: Vec<u8>,
    pub(super) delta: Delta,
}

impl Sequencer {
    /// A snapshot of the durable state, and the overlay trimmed to what it does not hold (and
    /// no read ahead needs). The snapshot is opened under the sequencer lock, after every
    /// commit the overlay was trimmed for: whatever the overlay no longer holds, the snapshot
    /// does.
    fn snapshot(&mut self, log: &Log) -> Result<StateSnapshot, Refusal> {
        let snapshot = log.sequencer_state()?;
        self.overlay.settle(self.ahead.settle(snapshot.size()));
        Ok(snapshot)
    }

    fn layered<'a, R: StateRows>(
        &'a self,
        rows: &'a state::Rows<'a, R>,
    ) -> Layered<'a, state::Rows<'a, R>> {
        Layered {
            seals: &self.seals,
            overlay: &self.overlay,
            store: rows,
        }
    }

    /// Reads the state as the sequencer has it (in flight, else durable).
    pub(super) fn read<T>(
        &mut self,
        log: &Log,
        f: impl FnOnce(&Layered<'_, state::Rows<'_, StateSnapshot>>) -> Result<T, LogError>,
    ) -> Result<T, Refusal> {
        let snapshot = self.snapshot(log)?;
        let rows = state::Rows(&snapshot);
        Ok(f(&self.layered(&rows))?)
    }

    pub(super) fn cert(
        &mut self,
        log: &Log,
        id: &Identifier,
    ) -> Result<Option<CertRecord>, Refusal> {
        self.read(log, |state| state.cert(id))
    }

    /// Checks an entry its caller has just signed with `signer` against the rules and applies
    /// it: every later act is checked against it.
    pub(super) fn apply_own(
        &mut self,
        log: &Log,
        bytes: Vec<u8>,
        signer: &PublicKey,
    ) -> Result<Staged, Refusal> {
        self.apply_own_ahead(log, bytes, signer, None)
    }

    /// [`Sequencer::apply_own`] reading the durable rows `ahead` holds from there.
    pub(super) fn apply_own_ahead(
        &mut self,
        log: &Log,
        bytes: Vec<u8>,
        signer: &PublicKey,
        ahead: Option<&RowsAhead<'_>>,
    ) -> Result<Staged, Refusal> {
        let snapshot = self.snapshot(log)?;
        let durable = Durable {
            ahead: self.ahead.usable(ahead),
            rest: Rest::Read(&snapshot),
            under_lock: &self.ahead.counts.under_lock,
        };
        let delta = self.check_over(&durable, &bytes, signer)?;
        Ok(self.take(bytes, delta))
    }

    /// [`Sequencer::apply_own_ahead`] reading nothing but the rows `ahead` holds, for a caller
    /// that must not wait on storage (an async worker): `Ok(None)`, with nothing applied, when
    /// those rows are too old to use or the rules needed one they lack; the caller then applies
    /// the entry where it may wait.
    pub(super) fn apply_own_read_ahead(
        &mut self,
        log: &Log,
        bytes: Vec<u8>,
        signer: &PublicKey,
        ahead: &RowsAhead<'_>,
    ) -> Result<Option<Staged>, Refusal> {
        // Trims the overlay as an apply does; opening it reads nothing yet.
        self.snapshot(log)?;
        let Some(rows) = self.ahead.usable(Some(ahead)) else {
            return Ok(None);
        };
        let missed = AtomicBool::new(false);
        let durable = Durable {
            ahead: Some(rows),
            rest: Rest::Refused { missed: &missed },
            under_lock: &self.ahead.counts.under_lock,
        };
        let checked = self.check_over(&durable, &bytes, signer);
        // A judgement that met a refused read is no judgement, whatever it says.
        if missed.load(Ordering::Relaxed) {
            return Ok(None);
        }
        Ok(Some(self.take(bytes, checked?)))
    }

    /// What the rules make of `bytes` against the durable state (`durable`) plus what is in
    /// flight; nothing applied yet.
    fn check_over(
        &self,
        durable: &Durable<'_>,
        bytes: &[u8],
        signer: &PublicKey,
    ) -> Result<Delta, Refusal> {
        let rows = state::Rows(durable);
        let rules = Rules {
            region: &self.region,
            root: &self.root,
        };
        let checked = rules.check(self.head, &self.layered(&rows), bytes, |_, key| {
            own_signature(key, signer)
        });
        let (_, (), delta) = checked.map_err(|e| match e {
            ApplyError::Rejected(rejection) => Refusal::from(rejection),
            ApplyError::Store(e) => Refusal::from(e),
        })?;
        Ok(delta)
    }

    /// Applies an entry the rules accepted to the state in flight.
    fn take(&mut self, bytes: Vec<u8>, delta: Delta) -> Staged {
        self.overlay.take(self.head.size, &delta, &mut self.seals);
        self.head = delta.head;
        Staged { bytes, delta }
    }
}

impl Region {
    pub(super) fn sequencer(&self) -> Result<MutexGuard<'_, Sequencer>, Refusal> {
        // Every act goes through here: a reader refuses them all.
        if self.role == super::Role::Reader {
            return Err(Refusal::not_sequencer());
        }
        let mut seq = self.seq.lock().map_err(|_| lock_failed())?;
        if self.must_recover(&seq) {
            self.recover(&mut seq).map_err(|e| {
                Refusal::new(
                    Kind::Unavailable,
                    "STORAGE_UNAVAILABLE",
                    format!("a write failed and the log cannot be read again yet: {e}"),
                )
            })?;
        }
        Ok(seq)
    }

    /// Whether the state must be taken again from the log before the next act: a write failed
    /// (the waiter that saw it poisoned the state), or the log's epoch moved past the state's
    /// in any other way, which would make every submission built on it stale.
    fn must_recover(&self, seq: &Sequencer) -> bool {
        self.poisoned.load(Ordering::Acquire) || seq.epoch != self.log.epoch()
    }

    /// Holds the sequencer lock until the guard is dropped: for tests of what finds it busy.
    #[doc(hidden)]
    pub fn hold_sequencer(&self) -> Result<impl Sized + '_, Refusal> {
        self.sequencer()
    }

    /// The sequencer lock for a caller on an async worker, which must not wait on storage:
    /// `None` when taking it might (another holder kept it past a few tries: it may be waiting
    /// on storage; or the state must be read again after a failed write), for the caller to
    /// take it on a blocking thread instead.
    pub(super) fn sequencer_now(&self) -> Result<Option<MutexGuard<'_, Sequencer>>, Refusal> {
        if self.role == super::Role::Reader {
            return Err(Refusal::not_sequencer());
        }
        for _ in 0..LOCK_TRIES {
            match self.seq.try_lock() {
                // Recovery reads the log again: a blocking thread's work.
                Ok(seq) if self.must_recover(&seq) => return Ok(None),
                Ok(seq) => return Ok(Some(seq)),
                // A holder works for microseconds: let it finish rather than hand off.
                Err(TryLockError::WouldBlock) => std::thread::yield_now(),
                Err(TryLockError::Poisoned(_)) => return Err(lock_failed()),
            }
        }
        Ok(None)
    }

    /// After a write failed: waits until the log has answered everything submitted (a fence,
    /// after which it refuses what was built before), then takes the state again from what the
    /// log durably holds. What the failed writes had applied in memory is gone; what committed
    /// despite an error is kept. Retried by the next write while storage is unreachable.
    fn recover(&self, seq: &mut Sequencer) -> Result<(), LogError> {
        let epoch = self.log.fence()?;
        let snapshot = self.log.state()?;
        seq.head = state::Rows(&snapshot).head(snapshot.size())?;
        seq.seals = state::all_seals(&snapshot)?
            .into_iter()
            .map(|s| (s.info.key.kid(), s))
            .collect();
        seq.overlay = Overlay::default();
        seq.ahead.restart(snapshot.size());
        seq.epoch = epoch;
        // Seals queued for a trust bundle at sizes never made durable are dropped with them.
        self.published.clear();
        self.poisoned.store(false, Ordering::Release);
        tracing::warn!(
            size = seq.head.size,
            epoch,
            "writes resumed from the log's durable state"
        );
        Ok(())
    }

    fn poison(&self, why: &str) {
        tracing::error!(why, "refusing further writes until restart");
        self.poisoned.store(true, Ordering::Release);
    }

    /// Applies a signed entry to the state, submits it to the log and updates the view, all under
    /// the sequencer lock; the caller waits for durability after releasing it.
    pub(super) fn submit(
        &self,
        seq: &mut Sequencer,
        entry: Vec<u8>,
        signer: &SecretKey,
        blobs: Vec<Blob>,
    ) -> Result<(u64, Pending<std::ops::Range<u64>>), Refusal> {
        let staged = seq.apply_own(&self.log, entry, signer.public())?;
        self.log_applied(seq, vec![staged], blobs)
    }

    /// Submits entries already applied to the state, in one log submission (so they commit in
    /// one transaction: all durable or none), and updates the view; returns the first's index.
    pub(super) fn log_applied(
        &self,
        seq: &mut Sequencer,
        entries: Vec<Staged>,
        blobs: Vec<Blob>,
    ) -> Result<(u64, Pending<std::ops::Range<u64>>), Refusal> {
        let first = seq.head.size - entries.len() as u64;
        let seals_changed = entries.iter().any(|e| {
            e.delta
                .writes
                .iter()
                .any(|w| matches!(w, tongban_core::log::state::Write::Seal(_)))
        });
        let ops = entries
            .iter()
            .flat_map(|e| state::ops_of(&e.delta))
            .collect();
        let bytes = entries.into_iter().map(|e| e.bytes).collect();
        let marker = super::request_marker::take();
        let pending = match self.log.submit_in(seq.epoch, bytes, blobs, ops, marker) {
            Ok(pending) => pending,
            Err(e) => {
                self.poison("the log refused an applied entry");
                return Err(e.into());
            }
        };
        if seals_changed {
            // The trust bundle is signed over these seals once the entries are durable.
            self.published
                .push(seq.head.size - 1, Arc::new(Seals::of(seq.seals.values())))?;
        }
        Ok((first, pending))
    }

    pub(super) fn signer(&self) -> Signer<'_> {
        Signer {
            federation: &self.federation,
            region_cert: &self.region_cert,
            root: &self.root,
        }
    }

    /// Waits until a submitted entry is durable.
    pub(super) fn durable(
        &self,
        index: u64,
        pending: Pending<std::ops::Range<u64>>,
    ) -> Result<u64, Refusal> {
        self.settle_durable(index, pending.wait())
    }

    /// [`Region::durable`] awaited, on an async worker.
    pub(super) async fn durable_later(
        &self,
        index: u64,
        pending: Pending<std::ops::Range<u64>>,
    ) -> Result<u64, Refusal> {
        self.settle_durable(index, pending.answer().await)
    }

    /// What the log answered for the entries submitted at `index`: their index once durable,
    /// the view moved past them.
    fn settle_durable(
        &self,
        index: u64,
        answer: Result<std::ops::Range<u64>, LogError>,
    ) -> Result<u64, Refusal> {
        match answer {
            Ok(range) if range.start == index => {
                // Everything below range.end is durable now: the view may show it.
                self.published
                    .publish(range.end, &self.view, &self.signer())?;
                self.appended.notify_one();
                Ok(index)
            }
            Ok(range) => {
                self.poison("the log gave an entry another index than the state");
                Err(Refusal::internal(format!(
                    "entry logged at {} but applied as {index}",
                    range.start
                )))
            }
            // Refused unwritten, built before a failure whose own callers poison the state
            // (or before a recovery that already took the state again): nothing to undo here.
            Err(e @ LogError::Stale { .. }) => Err(e.into()),
            Err(e) => {
                self.poison("a commit failed after its entry was applied");
                Err(e.into())
            }
        }
    }

    /// Signs `act` with `key`, then submits and waits.
    pub(super) fn act(
        &self,
        seq: MutexGuard<'_, Sequencer>,
        act: Act,
        key: &SecretKey,
    ) -> Result<u64, Refusal> {
        self.act_at(seq, act, key, now()?)
    }

    /// [`Region::act`] with the time the act was decided at, so that what was checked against
    /// the clock (a code's expiry) is what the log's rules check again.
    pub(super) fn act_at(
        &self,
        mut seq: MutexGuard<'_, Sequencer>,
        act: Act,
        key: &SecretKey,
        at: Time,
    ) -> Result<u64, Refusal> {
        let entry = LogEntry {
            region: self.code.clone(),
            at,
            act,
        }
        .sign(key)
        .map_err(|e| Refusal::internal(e.to_string()))?;
        let (index, pending) = self.submit(&mut seq, entry, key, Vec::new())?;
        drop(seq);
        self.durable(index, pending)
    }
}
