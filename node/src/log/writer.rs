//! The single writer thread and its group commit: every request queued while a commit is running
//! goes into the next write transaction, so one fsync acknowledges many callers.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Instant;

use tongban_core::log::tree::{Hash, stored_hash_index, stored_hashes};
use tongban_core::suite::Suite;

use super::engine::{Engine, WriteSet};
use super::hashes::{BatchHashes, Edge};
use super::state::StateOp;
use super::{Contents, Indexer, LogError};

/// Where the writer answers a command: a blocking caller and an async one wait on it alike
/// ([`super::Pending`]).
pub(crate) type Reply<T> = futures::channel::oneshot::Sender<Result<T, LogError>>;

/// A row of the request table (idempotency keys and the answers given under them), written
/// with a submission or alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRow {
    pub key: Vec<u8>,
    /// Seconds since the Unix epoch: when the row was made, for pruning.
    pub created: u64,
    pub record: Vec<u8>,
}

/// Bytes stored beside the entries, under the index of the entry that names them (given as its
/// offset in its submission) and the digest it names them by.
#[derive(Clone, Debug)]
pub struct Blob {
    pub entry: usize,
    pub digest: [u8; 32],
    pub bytes: Vec<u8>,
}

pub(crate) enum Command {
    Append {
        entries: Vec<Vec<u8>>,
        blobs: Vec<Blob>,
        /// What the entries change in the state, written with them.
        state: Vec<StateOp>,
        /// The epoch the entries were built in, when they were built on the log's earlier
        /// submissions: refused if a batch has failed (or a fence passed) since.
        epoch: Option<u64>,
        /// Request rows written in the same transaction as the entries.
        requests: Vec<RequestRow>,
        reply: Reply<Range<u64>>,
    },
    /// A request row alone, and the pruning of rows made before `prune_before`.
    Record {
        row: RequestRow,
        prune_before: u64,
        reply: Reply<()>,
    },
    /// Starts a new epoch once every command queued before it is answered.
    Fence {
        reply: Reply<u64>,
    },
    /// State changes of entries already in the log, up to `to` (after an upgrade).
    CatchUp {
        to: u64,
        ops: Vec<StateOp>,
        reply: Reply<()>,
    },
    Checkpoint {
        size: u64,
        checkpoint: Vec<u8>,
        reply: Reply<()>,
    },
    RebuildIndexes {
        reply: Reply<()>,
    },
}

impl Command {
    /// How much of a batch's `max_batch` budget this command uses.
    fn weight(&self) -> usize {
        match self {
            Command::Append { entries, .. } => entries.len().max(1),
            Command::Checkpoint { .. }
            | Command::Record { .. }
            | Command::RebuildIndexes { .. }
            | Command::CatchUp { .. }
            | Command::Fence { .. } => 1,
        }
    }

    fn answer(self, outcome: Outcome) {
        // A caller that gave up waiting has dropped its receiver; nothing to tell it.
        match (self, outcome) {
            (Command::Append { reply, .. }, Outcome::Appended(range)) => {
                let _ = reply.send(Ok(range));
            }
            (Command::Checkpoint { reply, .. }, Outcome::Checkpoint(result)) => {
                let _ = reply.send(result);
            }
            (Command::Record { reply, .. }, Outcome::Recorded) => {
                let _ = reply.send(Ok(()));
            }
            // write_batch gives each command an outcome of its own kind, in order.
            (command, _) => command.fail(&Arc::new(LogError::Corrupt(
                "internal: a batch outcome does not match its request".into(),
            ))),
        }
    }

    fn fail(self, e: &Arc<LogError>) {
        match self {
            Command::Append { reply, .. } => {
                let _ = reply.send(Err(LogError::BatchFailed(e.clone())));
            }
            Command::Checkpoint { reply, .. }
            | Command::Record { reply, .. }
            | Command::RebuildIndexes { reply }
            | Command::CatchUp { reply, .. } => {
                let _ = reply.send(Err(LogError::BatchFailed(e.clone())));
            }
            Command::Fence { reply } => {
                let _ = reply.send(Err(LogError::BatchFailed(e.clone())));
            }
        }
    }

    /// Whether this is an append built in an epoch before `current`.
    fn is_stale(&self, current: u64) -> bool {
        matches!(self, Command::Append { epoch: Some(e), .. } if *e != current)
    }
}

pub(crate) struct Writer {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) indexer: Arc<dyn Indexer>,
    pub(crate) max_batch: usize,
    /// The committed size. Only this thread writes, so it is the truth between commits.
    pub(crate) size: u64,
    /// How many entries the committed state reflects: `size`, but for an upgraded log not
    /// caught up yet.
    pub(crate) state_size: u64,
    /// What the file keeps: with [`Contents::Tree`] an appended entry adds its hashes and its
    /// state, not its bytes or index rows.
    pub(crate) contents: Contents,
    /// Whose tree hash the tree is in.
    pub(crate) suite: Suite,
    /// The tree size of the latest stored checkpoint, which a new one may not go below.
    pub(crate) checkpoint: Option<u64>,
    /// Batches failed and fences passed so far ([`super::Log::epoch`]).
    pub(crate) epoch: Arc<AtomicU64>,
    /// The tree's right edge at `size`, once read: kept from batch to batch, read again after a
    /// failure.
    pub(crate) edge: Option<Edge>,
}

/// What a committed batch gives: each command's outcome, the new size, the latest checkpoint's
/// size, the tree's edge at the new size.
type Written = (Vec<Outcome>, u64, Option<u64>, Edge);

/// What one command of a committed batch answers.
enum Outcome {
    Appended(Range<u64>),
    Checkpoint(Result<(), LogError>),
    Recorded,
}

impl Writer {
    pub(crate) fn run(mut self, rx: Receiver<Command>) {
        let mut carried: Option<Command> = None;
        loop {
            let first = match carried.take() {
                Some(c) => c,
                None => match rx.recv() {
                    Ok(c) => c,
                    // Every `Log` handle is gone: nothing more can arrive.
                    Err(_) => return,
                },
            };
            let first = match first {
                Command::RebuildIndexes { reply } => {
                    let result = self.rebuild_indexes();
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "rebuilding the log's indexes failed");
                    }
                    let _ = reply.send(result);
                    continue;
                }
                Command::CatchUp { to, ops, reply } => {
                    let result = self.catch_up(to, &ops);
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "bringing the state up to date failed");
                        self.resync_size();
                    }
                    let _ = reply.send(result);
                    continue;
                }
                Command::Fence { reply } => {
                    // Everything queued before was committed or refused: the channel is FIFO.
                    let _ = reply.send(Ok(self.epoch.fetch_add(1, Ordering::AcqRel) + 1));
                    continue;
                }
                other => other,
            };
            let mut weight = first.weight();
            let mut batch = vec![first];
            while weight < self.max_batch {
                match rx.try_recv() {
                    Ok(
                        c @ (Command::RebuildIndexes { .. }
                        | Command::CatchUp { .. }
                        | Command::Fence { .. }),
                    ) => {
                        carried = Some(c);
                        break;
                    }
                    Ok(c) if weight + c.weight() > self.max_batch => {
                        carried = Some(c);
                        break;
                    }
                    Ok(c) => {
                        weight += c.weight();
                        batch.push(c);
                    }
                    // Empty: commit what we have. Disconnected: the next recv sees it.
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
    }

    fn commit(&mut self, batch: Vec<Command>) {
        let current = self.epoch.load(Ordering::Acquire);
        let (stale, batch): (Vec<Command>, Vec<Command>) =
            batch.into_iter().partition(|c| c.is_stale(current));
        for command in stale {
            if let Command::Append { epoch, reply, .. } = command {
                let _ = reply.send(Err(LogError::Stale {
                    built: epoch.unwrap_or(current),
                    current,
                }));
            }
        }
        if batch.is_empty() {
            return;
        }
        let started = Instant::now();
        let edge = self.edge.take();
        match self.write_batch(&batch, edge) {
            Ok((outcomes, new_size, checkpoint, edge)) => {
                self.edge = Some(edge);
                tracing::debug!(
                    requests = batch.len(),
                    entries = new_size - self.size,
                    size = new_size,
                    micros = started.elapsed().as_micros() as u64,
                    "log batch committed"
                );
                if self.state_size == self.size {
                    self.state_size = new_size;
                }
                self.size = new_size;
                self.checkpoint = checkpoint;
                for (command, outcome) in batch.into_iter().zip(outcomes) {
                    command.answer(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = batch.len(), "log batch failed; rolled back");
                // Before anyone hears of it: what was built on this batch is refused from now on.
                self.epoch.fetch_add(1, Ordering::AcqRel);
                let e = Arc::new(e);
                for command in batch {
                    command.fail(&e);
                }
                self.resync_size();
            }
        }
    }

    /// After a failed commit, takes the size from storage again rather than trusting memory: if
    /// the failure came after the commit point, the entries are there and the next batch must
    /// not reuse their indexes. (redb refuses further writes after an I/O error in a commit, so
    /// this matters only for errors it recovers from.)
    fn resync_size(&mut self) {
        let stored = self.engine.read().and_then(|snapshot| {
            let checkpoint = snapshot.last_checkpoint()?.map(|(size, _)| size);
            Ok((snapshot.size(), self.engine.state()?.size(), checkpoint))
        });
        match stored {
            Ok((size, state_size, checkpoint))
                if size != self.size
                    || state_size != self.state_size
                    || checkpoint != self.checkpoint =>
            {
                self.state_size = state_size;
                self.checkpoint = checkpoint;
                tracing::warn!(
                    memory = self.size,
                    stored = size,
                    "a failed batch was committed after all; continuing from the stored size"
                );
                self.size = size;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot read the log's size after a failed batch")
            }
        }
    }

    /// Writes a whole batch in one transaction and commits it (fsync); returns each command's
    /// outcome, the new size and the latest checkpoint's size. On any error nothing is written.
    fn write_batch(&self, batch: &[Command], edge: Option<Edge>) -> Result<Written, LogError> {
        let edge = match edge {
            Some(edge) if edge.size() == self.size => edge,
            _ => Edge::read(&*self.engine.read()?, self.size)?,
        };
        let base = stored_hash_index(0, self.size);
        let mut pending: Vec<Hash> = Vec::new();
        let mut set = WriteSet {
            entries_from: self.size,
            hashes_from: base,
            ..WriteSet::default()
        };
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut size = self.size;
        let mut checkpoint = self.checkpoint;
        for command in batch {
            match command {
                Command::Append {
                    entries,
                    blobs,
                    state,
                    requests,
                    ..
                } => {
                    for row in requests {
                        set.requests
                            .push((row.key.as_slice(), row.created, row.record.as_slice()));
                    }
                    if self.state_size != self.size && !state.is_empty() {
                        return Err(LogError::StateBehind {
                            state: self.state_size,
                            size: self.size,
                        });
                    }
                    set.state.extend(state);
                    let start = size;
                    for blob in blobs {
                        if self.contents == Contents::Tree {
                            return Err(LogError::EntriesNotHeld);
                        }
                        if blob.entry >= entries.len() {
                            return Err(LogError::InvalidArgument(format!(
                                "a blob names entry {} of a submission of {}",
                                blob.entry,
                                entries.len()
                            )));
                        }
                        let index = start + blob.entry as u64;
                        set.blobs.push((index, blob.digest, blob.bytes.as_slice()));
                    }
                    for entry in entries {
                        let new = {
                            let reader = BatchHashes {
                                base,
                                pending: &pending,
                                edge: &edge,
                            };
                            stored_hashes(self.suite, size, entry, &reader)?
                        };
                        pending.extend(new);
                        if self.contents == Contents::Entries {
                            set.entries.push(entry.as_slice());
                            for (name, key) in self.index_keys(size, entry)? {
                                set.index_rows.push((name, key, size));
                            }
                        }
                        size += 1;
                    }
                    outcomes.push(Outcome::Appended(start..size));
                }
                Command::Checkpoint {
                    size: requested,
                    checkpoint: bytes,
                    ..
                } => {
                    let result = checkpoint_allowed(*requested, size, checkpoint);
                    if result.is_ok() {
                        set.checkpoints.push((*requested, bytes.as_slice()));
                        checkpoint = Some(*requested);
                    }
                    outcomes.push(Outcome::Checkpoint(result));
                }
                Command::Record {
                    row, prune_before, ..
                } => {
                    set.requests
                        .push((row.key.as_slice(), row.created, row.record.as_slice()));
                    set.prune_requests_before = Some(*prune_before);
                    outcomes.push(Outcome::Recorded);
                }
                Command::RebuildIndexes { .. }
                | Command::CatchUp { .. }
                | Command::Fence { .. } => {
                    return Err(LogError::Corrupt(
                        "internal: a command that runs alone was queued inside a batch".into(),
                    ));
                }
            }
        }
        let edge = edge.after(base, &pending, size)?;
        set.hashes = pending;
        if size != self.size {
            set.size = Some(size);
            // A state in step stays in step; one behind (an upgrade) is caught up apart.
            if self.state_size == self.size {
                set.state_size = Some(size);
            }
        }
        self.engine.write(&set)?;
        Ok((outcomes, size, checkpoint, edge))
    }

    /// The index rows of the entry at `index`.
    fn index_keys(
        &self,
        index: u64,
        entry: &[u8],
    ) -> Result<Vec<(&'static str, Vec<u8>)>, LogError> {
        // A panicking indexer must fail this batch, not kill the only writer.
        catch_unwind(AssertUnwindSafe(|| self.indexer.index_keys(entry)))
            .map_err(|_| LogError::IndexerPanicked(index))
    }

    /// Writes the state changes of the entries from the state's size up to `to`.
    fn catch_up(&mut self, to: u64, ops: &[StateOp]) -> Result<(), LogError> {
        if to <= self.state_size || to > self.size {
            return Err(LogError::InvalidArgument(format!(
                "the state reflects {} of {} entries: cannot bring it to {to}",
                self.state_size, self.size
            )));
        }
        self.engine.write(&WriteSet {
            state: ops.iter().collect(),
            state_size: Some(to),
            ..WriteSet::default()
        })?;
        self.state_size = to;
        Ok(())
    }

    /// Derived data: drop every index row and recompute them from the entries, in one
    /// transaction so readers see either the old rows or the new ones.
    fn rebuild_indexes(&self) -> Result<(), LogError> {
        if self.contents == Contents::Tree {
            return Ok(());
        }
        let started = Instant::now();
        self.engine
            .rebuild_index_rows(&mut |index, entry| self.index_keys(index, entry))?;
        tracing::info!(
            entries = self.size,
            millis = started.elapsed().as_millis() as u64,
            "log indexes rebuilt"
        );
        Ok(())
    }
}

/// Whether a checkpoint for `requested` may be stored when the log holds `size` entries at this
/// point of the batch and the latest stored one is for `stored`: never backwards, never past
/// the log. A refusal fails only its caller, not the batch.
fn checkpoint_allowed(requested: u64, size: u64, stored: Option<u64>) -> Result<(), LogError> {
    if requested > size {
        return Err(LogError::CheckpointRefused {
            requested,
            reason: format!("the log has only {size} entries"),
        });
    }
    if let Some(stored) = stored
        && requested < stored
    {
        return Err(LogError::CheckpointRefused {
            requested,
            reason: format!("a checkpoint for the larger size {stored} is already stored"),
        });
    }
    Ok(())
}
