//! The single writer thread and its group commit: every request queued while a commit is running
//! goes into the next write transaction, so one fsync acknowledges many callers.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Instant;

use redb::{Database, ReadableDatabase, ReadableTable, Table, WriteTransaction};
use tlog_tiles::{Hash, stored_hash_index, stored_hashes};

use super::hashes::{BatchHashes, TableHashes};
use super::schema::{
    BLOBS, CHECKPOINT, CHECKPOINT_LAST, ENTRIES, HASHES, INDEX_ROWS, META, META_SIZE,
    META_STATE_SIZE, STATE, begin_write, history_key, read_size, read_state_size,
};
use super::state::{StateOp, write_ops};
use super::{Contents, Indexer, LogError};

pub(crate) type Reply<T> = SyncSender<Result<T, LogError>>;

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
        reply: Reply<Range<u64>>,
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
            | Command::RebuildIndexes { .. }
            | Command::CatchUp { .. } => 1,
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
            | Command::RebuildIndexes { reply }
            | Command::CatchUp { reply, .. } => {
                let _ = reply.send(Err(LogError::BatchFailed(e.clone())));
            }
        }
    }
}

pub(crate) struct Writer {
    pub(crate) db: Arc<Database>,
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
}

/// What one command of a committed batch answers.
enum Outcome {
    Appended(Range<u64>),
    Checkpoint(Result<(), LogError>),
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
                other => other,
            };
            let mut weight = first.weight();
            let mut batch = vec![first];
            while weight < self.max_batch {
                match rx.try_recv() {
                    Ok(c @ (Command::RebuildIndexes { .. } | Command::CatchUp { .. })) => {
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
        let started = Instant::now();
        match self.write_batch(&batch) {
            Ok((outcomes, new_size)) => {
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
                for (command, outcome) in batch.into_iter().zip(outcomes) {
                    command.answer(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = batch.len(), "log batch failed; rolled back");
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
        let stored = self
            .db
            .begin_read()
            .map_err(LogError::from)
            .and_then(|txn| {
                let meta = txn.open_table(META)?;
                Ok((read_size(&meta)?, read_state_size(&meta)?))
            });
        match stored {
            Ok((size, state_size)) if size != self.size || state_size != self.state_size => {
                self.state_size = state_size;
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

    /// Writes a whole batch in one transaction and commits it (fsync). On any error the
    /// transaction is dropped, which rolls it back.
    fn write_batch(&self, batch: &[Command]) -> Result<(Vec<Outcome>, u64), LogError> {
        let txn = begin_write(&self.db)?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let size = {
            let mut tables = Tables::open(&txn)?;
            let base = stored_hash_index(0, self.size);
            let mut pending: Vec<Hash> = Vec::new();
            let mut size = self.size;
            for command in batch {
                match command {
                    Command::Append {
                        entries,
                        blobs,
                        state,
                        ..
                    } => {
                        if self.state_size != self.size && !state.is_empty() {
                            return Err(LogError::StateBehind {
                                state: self.state_size,
                                size: self.size,
                            });
                        }
                        write_ops(&mut tables.state, state)?;
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
                            tables
                                .blobs
                                .insert((index, blob.digest), blob.bytes.as_slice())?;
                        }
                        for entry in entries {
                            let new = {
                                let table = TableHashes::new(&tables.hashes);
                                let reader = BatchHashes {
                                    base,
                                    pending: &pending,
                                    table: &table,
                                };
                                table.finish(stored_hashes(size, entry, &reader))?
                            };
                            pending.extend(new);
                            if self.contents == Contents::Entries {
                                tables.entries.insert(size, entry.as_slice())?;
                                self.write_index_rows(&mut tables.index_rows, size, entry)?;
                            }
                            size += 1;
                        }
                        outcomes.push(Outcome::Appended(start..size));
                    }
                    Command::Checkpoint {
                        size: requested,
                        checkpoint,
                        ..
                    } => {
                        let result =
                            store_checkpoint(&mut tables.checkpoint, *requested, size, checkpoint);
                        outcomes.push(Outcome::Checkpoint(result?));
                    }
                    Command::RebuildIndexes { .. } | Command::CatchUp { .. } => {
                        return Err(LogError::Corrupt(
                            "internal: a command that runs alone was queued inside a batch".into(),
                        ));
                    }
                }
            }
            // Ascending keys: redb appends to the right edge of the B-tree.
            for (offset, hash) in (base..).zip(&pending) {
                tables.hashes.insert(offset, hash.0)?;
            }
            if size != self.size {
                tables.meta.insert(META_SIZE, size)?;
                // A state in step stays in step; one behind (an upgrade) is caught up apart.
                if self.state_size == self.size {
                    tables.meta.insert(META_STATE_SIZE, size)?;
                }
            }
            size
        };
        txn.commit()?;
        Ok((outcomes, size))
    }

    fn write_index_rows(
        &self,
        rows: &mut Table<(&'static str, &'static [u8], u64), ()>,
        index: u64,
        entry: &[u8],
    ) -> Result<(), LogError> {
        // A panicking indexer must fail this batch, not kill the only writer.
        let keys = catch_unwind(AssertUnwindSafe(|| self.indexer.index_keys(entry)))
            .map_err(|_| LogError::IndexerPanicked(index))?;
        for (name, key) in keys {
            rows.insert((name, key.as_slice(), index), ())?;
        }
        Ok(())
    }

    /// Writes the state changes of the entries from the state's size up to `to`.
    fn catch_up(&mut self, to: u64, ops: &[StateOp]) -> Result<(), LogError> {
        if to <= self.state_size || to > self.size {
            return Err(LogError::InvalidArgument(format!(
                "the state reflects {} of {} entries: cannot bring it to {to}",
                self.state_size, self.size
            )));
        }
        let txn = begin_write(&self.db)?;
        write_ops(&mut txn.open_table(STATE)?, ops)?;
        txn.open_table(META)?.insert(META_STATE_SIZE, to)?;
        txn.commit()?;
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
        let txn = begin_write(&self.db)?;
        txn.delete_table(INDEX_ROWS)?;
        {
            let entries = txn.open_table(ENTRIES)?;
            let mut rows = txn.open_table(INDEX_ROWS)?;
            for item in entries.range(0..)? {
                let (index, entry) = item?;
                self.write_index_rows(&mut rows, index.value(), entry.value())?;
            }
        }
        txn.commit()?;
        tracing::info!(
            entries = self.size,
            millis = started.elapsed().as_millis() as u64,
            "log indexes rebuilt"
        );
        Ok(())
    }
}

/// The tables a batch writes, opened once per transaction.
struct Tables<'t> {
    entries: Table<'t, u64, &'static [u8]>,
    hashes: Table<'t, u64, [u8; 32]>,
    index_rows: Table<'t, (&'static str, &'static [u8], u64), ()>,
    meta: Table<'t, &'static str, u64>,
    checkpoint: Table<'t, &'static str, (u64, &'static [u8])>,
    blobs: Table<'t, (u64, [u8; 32]), &'static [u8]>,
    state: Table<'t, (u8, &'static [u8]), &'static [u8]>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, LogError> {
        Ok(Tables {
            entries: txn.open_table(ENTRIES)?,
            hashes: txn.open_table(HASHES)?,
            index_rows: txn.open_table(INDEX_ROWS)?,
            meta: txn.open_table(META)?,
            checkpoint: txn.open_table(CHECKPOINT)?,
            blobs: txn.open_table(BLOBS)?,
            state: txn.open_table(STATE)?,
        })
    }
}

/// Stores a checkpoint unless it would move the stored one backwards or claim more entries than
/// the log holds at this point of the batch. The outer `Result` is a storage failure (fails the
/// batch); the inner one is this caller's refusal (fails only this caller).
fn store_checkpoint(
    table: &mut Table<&'static str, (u64, &'static [u8])>,
    requested: u64,
    size: u64,
    checkpoint: &[u8],
) -> Result<Result<(), LogError>, LogError> {
    if requested > size {
        return Ok(Err(LogError::CheckpointRefused {
            requested,
            reason: format!("the log has only {size} entries"),
        }));
    }
    let stored = table.get(CHECKPOINT_LAST)?.map(|g| g.value().0);
    if let Some(stored) = stored
        && requested < stored
    {
        return Ok(Err(LogError::CheckpointRefused {
            requested,
            reason: format!("a checkpoint for the larger size {stored} is already stored"),
        }));
    }
    table.insert(CHECKPOINT_LAST, (requested, checkpoint))?;
    table.insert(history_key(requested).as_str(), (requested, checkpoint))?;
    Ok(Ok(()))
}
