//! The storage seam: what a log needs of the engine that keeps it, and nothing more.
//!
//! Everything that makes a log a log (group commit, the Merkle tree's stored hashes, tiles,
//! proofs, the checkpoint rule, what a [`Contents`] keeps) is decided above this seam, once;
//! an engine only stores what it is handed, all of one [`WriteSet`] in one durable transaction,
//! and answers reads from consistent snapshots. redb is the default engine
//! (`super::redb_engine`); another one (a database server) implements these two traits and
//! changes nothing above them.

use std::ops::Range;

use super::LogError;
use super::state::{Row, StateOp};

/// What an engine holds about a log when it opens it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Durable entries (committed size).
    pub size: u64,
    /// How many of them the state reflects (below `size` only after an upgrade).
    pub state_size: u64,
    /// What the log keeps, fixed when it was created.
    pub contents: super::Contents,
    /// Whose tree hash its stored hashes are in, fixed when it was created.
    pub suite: tongban_core::suite::Suite,
}

/// A storage engine for one log.
pub trait Engine: Send + Sync + 'static {
    /// Writes all of `set` in one transaction and returns once it is durable; on an error none of
    /// it is written. Only the log's single writer calls this, so sets never race.
    fn write(&self, set: &WriteSet<'_>) -> Result<(), LogError>;

    /// A consistent snapshot of everything committed, for reading the log.
    fn read(&self) -> Result<Box<dyn Snapshot + '_>, LogError>;

    /// A consistent snapshot of the state alone: cheap, taken for every verification.
    fn state(&self) -> Result<Box<dyn StateView>, LogError>;

    /// The state for the log's own sequencer, which knows every change in flight: its size is
    /// what was committed when it was taken, and each read gives the row as committed at the
    /// time of the read, which is that size's row unless an entry committed since changed it
    /// (an entry the sequencer still holds in flight, and reads first). An engine whose
    /// snapshots cost a round trip skips it here; by default, a snapshot.
    fn sequencer_state(&self) -> Result<Box<dyn StateView>, LogError> {
        self.state()
    }

    /// Whether a read waits on another machine (a database server) rather than local storage:
    /// async callers then read on a blocking thread, so that a round trip does not hold one of
    /// the few threads every request shares. By default, no.
    fn reads_wait_on_network(&self) -> bool {
        false
    }

    /// The rows at `keys` ((kind, key) pairs), in that order, as committed at one moment, and
    /// how many entries of the log the state reflected then: what a sequencer reads before it
    /// takes its lock. By default, from a snapshot; an engine whose reads cost a round trip
    /// answers in one.
    fn rows_at(&self, keys: &[(u8, Vec<u8>)]) -> Result<RowsAt, LogError> {
        let state = self.state()?;
        let rows = keys
            .iter()
            .map(|(kind, key)| state.get(*kind, key))
            .collect::<Result<_, _>>()?;
        Ok((state.size(), rows))
    }

    /// [`Engine::rows_at`] for an async caller, which must not wait on a database server
    /// itself: an engine that reads over the network answers in the future it returns; by
    /// default (local storage, cheaper read than hand-off), read at once.
    fn rows_at_later(&self, keys: Vec<(u8, Vec<u8>)>) -> RowsAtLater {
        let rows = self.rows_at(&keys);
        Box::pin(std::future::ready(rows))
    }

    /// The request row under `key` as committed now: one row, read for every keyed write. By
    /// default, from a snapshot; an engine whose snapshots cost round trips reads it alone.
    fn request_row(&self, key: &[u8]) -> Result<Option<(u64, Vec<u8>)>, LogError> {
        self.read()?.request(key)
    }

    /// Confirms this process is still the log's writer: its hold on the log (a database
    /// session's lock) is alive, taken again if the session was lost and nobody else took it;
    /// [`LogError::Superseded`] once another process holds or wrote the log. An embedded engine
    /// whose file this process holds open has nothing to check.
    fn check_writer(&self) -> Result<(), LogError> {
        Ok(())
    }

    /// Replaces every index row with those `derive` gives for the stored entries, in one
    /// transaction (index rows are derived data).
    fn rebuild_index_rows(&self, derive: &mut IndexRows<'_>) -> Result<(), LogError>;
}

/// What [`Engine::rows_at`] answers: the state's size, and each row asked for (`None`: absent).
pub type RowsAt = (u64, Vec<Option<Vec<u8>>>);

/// What [`Engine::rows_at_later`] answers.
pub type RowsAtLater =
    std::pin::Pin<Box<dyn Future<Output = Result<RowsAt, LogError>> + Send + 'static>>;

/// Derives an entry's index rows: (index name, key) pairs.
pub type IndexRows<'a> =
    dyn FnMut(u64, &[u8]) -> Result<Vec<(&'static str, Vec<u8>)>, LogError> + 'a;

/// Everything one commit writes. Entries, hashes and index rows only ever add rows; the state
/// ops are applied in order; sizes are set when given.
#[derive(Debug, Default)]
pub struct WriteSet<'a> {
    /// Entries at consecutive indexes from `entries_from`.
    pub entries_from: u64,
    pub entries: Vec<&'a [u8]>,
    /// (index name, key, entry index) rows of those entries.
    pub index_rows: Vec<(&'static str, Vec<u8>, u64)>,
    /// Stored hashes (tlog's stored-hash order) at consecutive positions from `hashes_from`.
    pub hashes_from: u64,
    pub hashes: Vec<[u8; 32]>,
    /// (entry index, digest, bytes) kept beside the entries.
    pub blobs: Vec<(u64, [u8; 32], &'a [u8])>,
    /// State changes, applied in this order.
    pub state: Vec<&'a StateOp>,
    /// (tree size, signed checkpoint) in ascending size: each joins the history, the last is
    /// the latest.
    pub checkpoints: Vec<(u64, &'a [u8])>,
    /// The log's new size, when it changes.
    pub size: Option<u64>,
    /// The state's new size, when it changes.
    pub state_size: Option<u64>,
    /// (key, created, record) rows of the request table (idempotency keys and the answers
    /// given to them): not derived from the entries, kept beside them, replaced when written
    /// again.
    pub requests: Vec<(&'a [u8], u64, &'a [u8])>,
    /// Removes at most [`PRUNED_PER_WRITE`] request rows created before this time.
    pub prune_requests_before: Option<u64>,
}

/// How many expired request rows one write removes at most: pruning keeps pace with writing
/// without ever making one commit large.
pub const PRUNED_PER_WRITE: usize = 64;

/// A consistent read of a log. Calls never see a commit made after the snapshot was taken.
pub trait Snapshot {
    /// The committed size.
    fn size(&self) -> u64;

    /// The entry at `index`, if stored.
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, LogError>;

    /// The entries in `range`; [`LogError::Corrupt`] if one of them is not stored.
    fn entries(&self, range: Range<u64>) -> Result<Vec<Vec<u8>>, LogError>;

    /// The stored hashes at `positions` (tlog's stored-hash order), `None` where absent.
    fn hashes(&self, positions: &[u64]) -> Result<Vec<Option<[u8; 32]>>, LogError>;

    /// The bytes kept with the entry at `index` under `digest`.
    fn blob(&self, index: u64, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, LogError>;

    /// Indexes of the entries whose index row `name` has `key`, ascending.
    fn lookup(&self, name: &str, key: &[u8]) -> Result<Vec<u64>, LogError>;

    /// The latest checkpoint and its tree size.
    fn last_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, LogError>;

    /// At most `limit` checkpoints of sizes from `from` up, by size ascending.
    fn checkpoints_from(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, LogError>;

    /// The request row under `key`: when it was created, and its record.
    fn request(&self, key: &[u8]) -> Result<Option<(u64, Vec<u8>)>, LogError>;
}

/// A row of the state as the whole table orders it: (kind, key, value).
pub type KindRow = (u8, Vec<u8>, Vec<u8>);

/// A consistent read of the state (kind, key) → value, ordered by kind then key bytes.
pub trait StateView: Send + Sync {
    /// How many entries of the log this state reflects.
    fn size(&self) -> u64;

    fn get(&self, kind: u8, key: &[u8]) -> Result<Option<Vec<u8>>, LogError>;

    /// Rows of `kind` from key `from` on, in key order, while `each` returns true.
    fn scan(
        &self,
        kind: u8,
        from: &[u8],
        each: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), LogError>;

    /// The last row of `kind` in key order.
    fn last(&self, kind: u8) -> Result<Option<Row>, LogError>;

    /// Every row, in (kind, key) order.
    fn rows(&self) -> Result<Box<dyn Iterator<Item = Result<KindRow, LogError>> + '_>, LogError>;
}
