use std::sync::Arc;

/// Everything that can go wrong in the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("entry of {len} bytes exceeds the limit of {max} bytes")]
    EntryTooLarge { len: usize, max: usize },

    #[error("invalid log configuration: {0}")]
    Config(String),

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The file keeps the tree and the state, not the entries ([`super::Contents::Tree`]).
    #[error("this log keeps its tree and state, not its entries")]
    EntriesNotHeld,

    #[error("tree size {requested} is beyond the log's size {size}")]
    BeyondSize { requested: u64, size: u64 },

    #[error("checkpoint for tree size {requested} refused: {reason}")]
    CheckpointRefused { requested: u64, reason: String },

    /// The writer thread is gone (the log is shutting down, or the thread died). Nothing the caller
    /// sent was acknowledged, so nothing acknowledged is lost.
    #[error("the log writer has stopped")]
    WriterClosed,

    /// The write transaction holding this request failed and was rolled back: none of the batch's
    /// entries were stored. Shared by every caller in the batch, hence the `Arc`.
    #[error("the batch holding this request failed and was rolled back: {0}")]
    BatchFailed(#[source] Arc<LogError>),

    /// The state reflects fewer entries than the log holds (an upgrade not caught up yet):
    /// appending would write state changes out of order.
    #[error("the state reflects {state} entries of {size}: bring it up to date first")]
    StateBehind { state: u64, size: u64 },

    #[error("the indexer panicked on entry {0}")]
    IndexerPanicked(u64),

    #[error("the log's storage is inconsistent: {0}")]
    Corrupt(String),

    #[error("tree computation: {0}")]
    Tree(#[from] tongban_core::log::tree::TreeError),

    /// The file's tree is in another suite's hash than the one asked for: opening it for the
    /// other suite would mix two trees.
    #[error("the log file is of the {file} suite, not {wanted}")]
    SuiteMismatch {
        file: tongban_core::suite::Suite,
        wanted: tongban_core::suite::Suite,
    },

    /// The engine failed (an I/O error, a full disk, a lost database connection); its error is
    /// kept as the source so an operator sees the underlying cause.
    #[error("storage: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// The entries were built on submissions of an earlier epoch: a batch failed (or a fence
    /// passed) since, so what they were built on may not be in the log. Nothing was written.
    #[error("the log's epoch is {current}; these entries were built in epoch {built}")]
    Stale { built: u64, current: u64 },

    /// Another process writes this log (it holds the log's writer lock, or wrote the log while
    /// this one had lost its database connection): this process must not write it.
    #[error("superseded: {0}")]
    Superseded(String),

    /// This process opened the log to read it: another process of the node writes it.
    #[error("this process reads the log and does not write it: another process is its writer")]
    ReadOnly,

    #[error("starting the writer thread: {0}")]
    Spawn(#[source] std::io::Error),
}

// redb has one error type per operation; all of them fold into `redb::Error`.
macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for LogError {
            fn from(e: $t) -> Self {
                LogError::Storage(Box::new(redb::Error::from(e)))
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
