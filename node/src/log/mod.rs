//! The region's transparency log: an append-only sequence of opaque entries with an RFC 6962
//! Merkle tree over them, and the state they establish, kept by a storage [`Engine`] (redb by
//! default: [`RedbEngine`], one file).
//!
//! Writes go through a single writer thread that groups every request queued while it is busy
//! into one write transaction (entries, their stored hashes, index rows, state and the new size),
//! and answers the callers only once that transaction is durable. Reads are engine snapshots that
//! never wait for the writer. Everything a log decides (the tree, tiles, proofs, the checkpoint
//! rule, what a file keeps) lives here, above the engine, so every engine behaves alike.
//!
//! The stored hashes follow Go's `golang.org/x/mod/sumdb/tlog` layout (core's `log::tree`, in the
//! suite's hash), so tree hashes, proofs and C2SP tlog-tiles hash tiles are all plain reads of
//! that table.

mod engine;
mod error;
mod hashes;
mod pg_engine;
mod read;
mod redb_engine;
mod state;
mod tiles;
mod writer;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;

use tongban_core::suite::Suite;

pub use engine::{
    Engine, IndexRows, KindRow, Opened, RowsAt, RowsAtLater, Snapshot, StateView, WriteSet,
};
pub use error::LogError;
pub use pg_engine::{PgDatabase, PgEngine, PgSession};
pub use redb_engine::RedbEngine;
pub use state::{Differences, Scratch, StateOp, StateRows, StateSnapshot, StateTarget};
pub use tiles::{TILE_WIDTH, encode_entry_bundle};

pub use writer::{Blob, RequestRow};
use writer::{Command, Writer};

/// The largest entry an entry bundle can carry: C2SP tlog-tiles prefixes each entry with a
/// big-endian uint16 length.
pub const MAX_ENTRY_LIMIT: usize = u16::MAX as usize;

/// Tuning of a log; [`LogConfig::default`] suits a region node.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// At most this many entries (checkpoints count one each) go into one write transaction. A
    /// single `append_many` larger than this still commits whole, in a transaction of its own.
    pub max_batch: usize,
    /// Largest entry accepted, in bytes; at most [`MAX_ENTRY_LIMIT`].
    pub max_entry: usize,
    /// Memory redb may use to cache pages of this file, in bytes: what bounds the log's memory,
    /// whatever the number of entries (redb's own default is 1 GiB per file).
    pub cache_bytes: usize,
    /// What a new file keeps. A file keeps what it was created with ([`Log::contents`]).
    pub contents: Contents,
    /// Whose tree hash the log's tree is in (SHA-256 or SM3): the region's suite. Fixed when the
    /// file is created; a file of the other suite is refused ([`LogError::SuiteMismatch`]).
    pub suite: Suite,
}

/// What a log file keeps of its entries, fixed when the file is created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Contents {
    /// The entries, their index rows and blobs, the tree's stored hashes and the state: a
    /// region's own log, or a replica kept whole to serve catch-up.
    #[default]
    Entries,
    /// The tree's stored hashes, the checkpoints and the state, not the entries: a replica that
    /// judges every entry against the state and keeps only what the rules and the checkpoints
    /// need of it (specs/federation.md §5). Reading an entry is refused with
    /// [`LogError::EntriesNotHeld`].
    Tree,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_batch: 4096,
            max_entry: MAX_ENTRY_LIMIT,
            cache_bytes: 32 << 20,
            contents: Contents::Entries,
            suite: Suite::Ed25519,
        }
    }
}

/// Derives the lookup rows of an entry. Index rows are derived data: they are written in the same
/// transaction as their entry and can be rebuilt from the entries at any time.
pub trait Indexer: Send + Sync + 'static {
    /// Index rows for an entry: (index name, key bytes). Written in the same transaction as the
    /// entry.
    fn index_keys(&self, entry: &[u8]) -> Vec<(&'static str, Vec<u8>)>;
}

/// An indexer that indexes nothing, for logs that only need the tree.
pub struct NoIndex;

impl Indexer for NoIndex {
    fn index_keys(&self, _entry: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        Vec::new()
    }
}

/// A handle to an open log. Cloning is cheap and every clone shares the same writer; the writer
/// stops and the file closes when the last clone is dropped.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<dyn Engine>,
    config: LogConfig,
    /// What the file keeps (its own, which may differ from `config.contents`).
    contents: Contents,
    /// Whose tree hash the tree is in.
    suite: Suite,
    sender: Option<Sender<Command>>,
    writer: Option<JoinHandle<()>>,
    /// Failed batches and fences so far, as the writer counts them.
    epoch: Arc<AtomicU64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and return.
        self.sender.take();
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!("the log writer thread panicked");
        }
    }
}

impl Log {
    /// Opens the log stored in the redb file at `path`, creating it if it does not exist.
    pub fn open(
        path: &Path,
        config: LogConfig,
        indexer: Arc<dyn Indexer>,
    ) -> Result<Log, LogError> {
        check_config(&config)?;
        let (engine, opened) =
            RedbEngine::open(path, config.cache_bytes, config.contents, config.suite)?;
        tracing::info!(path = %path.display(), ?opened, "log opened");
        Log::over(Arc::new(engine), opened, config, indexer)
    }

    /// A log over `engine`, which holds what `opened` says (the engine's own open gives it).
    pub fn over(
        engine: Arc<dyn Engine>,
        opened: Opened,
        config: LogConfig,
        indexer: Arc<dyn Indexer>,
    ) -> Result<Log, LogError> {
        check_config(&config)?;
        if opened.suite != config.suite {
            return Err(LogError::SuiteMismatch {
                file: opened.suite,
                wanted: config.suite,
            });
        }
        let checkpoint = engine.read()?.last_checkpoint()?.map(|(size, _)| size);
        let (sender, receiver) = mpsc::channel();
        let epoch = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            epoch: epoch.clone(),
            engine: engine.clone(),
            indexer,
            max_batch: config.max_batch,
            size: opened.size,
            state_size: opened.state_size,
            contents: opened.contents,
            suite: opened.suite,
            checkpoint,
            edge: None,
        };
        let handle = std::thread::Builder::new()
            .name("tongban-log-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(LogError::Spawn)?;
        Ok(Log {
            inner: Arc::new(Inner {
                engine,
                config,
                contents: opened.contents,
                suite: opened.suite,
                sender: Some(sender),
                writer: Some(handle),
                epoch,
            }),
        })
    }

    /// What this file keeps of its entries.
    pub fn contents(&self) -> Contents {
        self.inner.contents
    }

    /// Whose tree hash the log's tree is in.
    pub fn suite(&self) -> Suite {
        self.inner.suite
    }

    /// Appends and returns the entry's index only once the entry is durable (fsynced). Many
    /// concurrent callers share one write transaction + fsync (group commit).
    pub fn append(&self, entry: Vec<u8>) -> Result<u64, LogError> {
        Ok(self.append_many(vec![entry])?.start)
    }

    /// Appends the entries as consecutive indexes, all in the same transaction, and returns their
    /// indexes once they are durable.
    pub fn append_many(&self, entries: Vec<Vec<u8>>) -> Result<Range<u64>, LogError> {
        if entries.is_empty() {
            let size = self.size()?;
            return Ok(size..size);
        }
        self.submit(entries, Vec::new(), Vec::new())?.wait()
    }

    /// Queues entries, with blobs they name by digest (stored under the naming entry's index
    /// and the digest: [`Log::blob`]) and the state changes they make (written in the same
    /// transaction: [`Log::state`]), for the next group commit and returns at once;
    /// [`Pending::wait`] answers once they are durable. Entries submitted one after another
    /// get increasing indexes in submission order, which lets a caller that holds a lock while it
    /// submits keep its own state in log order without holding the lock across the fsync.
    pub fn submit(
        &self,
        entries: Vec<Vec<u8>>,
        blobs: Vec<Blob>,
        state: Vec<StateOp>,
    ) -> Result<Pending<Range<u64>>, LogError> {
        self.submit_with(None, entries, blobs, state, Vec::new())
    }

    /// [`Log::submit`] for entries built on the submissions of `epoch` (a sequencer's, which
    /// applies entries to its state before they are durable): refused with
    /// [`LogError::Stale`] once a batch has failed or a fence passed since, so nothing built on
    /// a failed batch ever enters the log.
    /// `requests` are written in the same transaction as the entries.
    pub fn submit_in(
        &self,
        epoch: u64,
        entries: Vec<Vec<u8>>,
        blobs: Vec<Blob>,
        state: Vec<StateOp>,
        requests: Vec<RequestRow>,
    ) -> Result<Pending<Range<u64>>, LogError> {
        self.submit_with(Some(epoch), entries, blobs, state, requests)
    }

    /// Writes one request row, durably, and removes a few rows made before `prune_before`.
    pub fn record_request(&self, row: RequestRow, prune_before: u64) -> Result<(), LogError> {
        self.request(|reply| Command::Record {
            row,
            prune_before,
            reply,
        })
    }

    /// The current epoch: how many batches have failed and fences passed.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// Confirms this process is still the log's writer ([`Engine::check_writer`]).
    pub fn check_writer(&self) -> Result<(), LogError> {
        self.inner.engine.check_writer()
    }

    /// Starts a new epoch once every command queued before is answered (committed or
    /// refused), and returns it: after it, the log holds everything it will ever hold of what
    /// was submitted before, and refuses what was built in an earlier epoch.
    pub fn fence(&self) -> Result<u64, LogError> {
        self.request(|reply| Command::Fence { reply })
    }

    fn submit_with(
        &self,
        epoch: Option<u64>,
        entries: Vec<Vec<u8>>,
        blobs: Vec<Blob>,
        state: Vec<StateOp>,
        requests: Vec<RequestRow>,
    ) -> Result<Pending<Range<u64>>, LogError> {
        let max = self.inner.config.max_entry;
        if let Some(big) = entries.iter().find(|e| e.len() > max) {
            return Err(LogError::EntryTooLarge {
                len: big.len(),
                max,
            });
        }
        if entries.is_empty() {
            return Err(LogError::InvalidArgument("nothing to append".into()));
        }
        self.send(|reply| Command::Append {
            entries,
            blobs,
            state,
            epoch,
            requests,
            reply,
        })
    }

    /// Rebuild every index from the entries (indexes are derived data).
    pub fn rebuild_indexes(&self) -> Result<(), LogError> {
        self.request(|reply| Command::RebuildIndexes { reply })
    }

    /// Persist a signed checkpoint (opaque bytes) for tree size `size`; refuses a size smaller than
    /// the stored one or larger than the log. The last stored one survives crashes.
    pub fn store_checkpoint(&self, size: u64, checkpoint: Vec<u8>) -> Result<(), LogError> {
        self.request(|reply| Command::Checkpoint {
            size,
            checkpoint,
            reply,
        })
    }

    /// Sends one command to the writer and waits for its answer.
    fn request<T>(&self, command: impl FnOnce(writer::Reply<T>) -> Command) -> Result<T, LogError> {
        self.send(command)?.wait()
    }

    fn send<T>(
        &self,
        command: impl FnOnce(writer::Reply<T>) -> Command,
    ) -> Result<Pending<T>, LogError> {
        let sender = self.inner.sender.as_ref().ok_or(LogError::WriterClosed)?;
        let (reply, answer) = futures::channel::oneshot::channel();
        sender
            .send(command(reply))
            .map_err(|_| LogError::WriterClosed)?;
        Ok(Pending(answer))
    }
}

/// The writer's answer to come for a submitted command.
pub struct Pending<T>(futures::channel::oneshot::Receiver<Result<T, LogError>>);

impl<T> Pending<T> {
    /// Blocks until the command is committed (durable) or has failed.
    pub fn wait(self) -> Result<T, LogError> {
        futures::executor::block_on(self.answer())
    }

    /// Waits, without holding a thread, until the command is committed (durable) or has
    /// failed.
    pub async fn answer(self) -> Result<T, LogError> {
        // A dropped reply sender means the writer died before answering.
        self.0.await.map_err(|_| LogError::WriterClosed)?
    }
}

/// Refuses a configuration no log can work with.
fn check_config(config: &LogConfig) -> Result<(), LogError> {
    if config.max_batch == 0 {
        return Err(LogError::Config("max_batch must be at least 1".into()));
    }
    if config.max_entry == 0 || config.max_entry > MAX_ENTRY_LIMIT {
        return Err(LogError::Config(format!(
            "max_entry must be between 1 and {MAX_ENTRY_LIMIT} (an entry bundle's uint16 length), not {}",
            config.max_entry
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
