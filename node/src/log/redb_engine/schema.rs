//! The redb tables of a log and the checks made when one is opened.

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use tongban_core::log::tree::stored_hash_count;
use tongban_core::suite::Suite;

use super::super::engine::Opened;
use super::super::{Contents, LogError};

/// Entry index → entry bytes.
pub(crate) const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// tlog stored-hash index (Go's `StoredHashIndex` order) → hash. Keeping Go's layout means the
/// tlog functions read exactly the hashes they were written for, and hash tiles are plain reads.
pub(crate) const HASHES: TableDefinition<u64, [u8; 32]> = TableDefinition::new("stored_hashes");
/// (index name, key, entry index) → nothing. The entry index is part of the key so one key can
/// name many entries and a prefix scan returns them in ascending order.
pub(crate) const INDEX_ROWS: TableDefinition<(&str, &[u8], u64), ()> =
    TableDefinition::new("index_rows");
/// (index of the entry that names it, certificate digest) → the certificate bytes that entry
/// commits to by that digest. Not derived and not published: the entries hold digests only, the
/// personal data lives here, written in the same transaction as the entry that names it. Keyed by
/// the entry's index first so that new certificates append at the B-tree's right edge: keyed by
/// digest alone, each one dirtied a random page and its parents in every commit.
pub(crate) const BLOBS: TableDefinition<(u64, [u8; 32]), &[u8]> =
    TableDefinition::new("blobs_by_entry");
/// (kind, key) → value: the state the entries establish (what the region layer keeps beside its
/// log: node/src/region/state.rs), written in the same transaction as the entries that change it.
/// The log stores it without interpreting it.
pub(crate) const STATE: TableDefinition<(u8, &[u8]), &[u8]> = TableDefinition::new("state");
/// Small named counters: `format`, `size`, `state_size`, `contents` and `suite`.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `last` → (tree size, checkpoint bytes) of the latest checkpoint, and [`history_key`]`(size)` →
/// the same for every size ever checkpointed (auditors need every checkpoint the log signed).
pub(crate) const CHECKPOINT: TableDefinition<&str, (u64, &[u8])> =
    TableDefinition::new("checkpoint");

/// Request key → (created, record): idempotency keys and the answers given under them
/// (`WriteSet::requests`). Made on first use: files without it simply hold no requests.
pub(crate) const REQUESTS: TableDefinition<&[u8], (u64, &[u8])> = TableDefinition::new("requests");
/// (created, request key) → nothing: the request rows by age, for pruning.
pub(crate) const REQUESTS_BY_TIME: TableDefinition<(u64, &[u8]), ()> =
    TableDefinition::new("requests_by_time");

pub(crate) const META_FORMAT: &str = "format";
pub(crate) const META_SIZE: &str = "size";
/// How many entries the state table reflects: the size, except while a log of format 2 (no
/// state) is being brought up to date after an upgrade.
pub(crate) const META_STATE_SIZE: &str = "state_size";
/// What the file keeps ([`Contents`]): 0 the entries, 1 the tree and state only. Absent in files
/// written before replicas could drop their entries, which all kept them.
const META_CONTENTS: &str = "contents";
/// Whose tree hash the file's stored hashes are in: 0 `ed25519` (SHA-256), 1 `sm2` (SM3). Absent
/// in files written before the `sm2` suite, which were all `ed25519`.
const META_SUITE: &str = "suite";
pub(crate) const CHECKPOINT_LAST: &str = "last";
/// History keys sort by size: `h` and the size in 20 digits, all below this one.
pub(crate) const HISTORY_END: &str = "i";

pub(crate) fn history_key(size: u64) -> String {
    format!("h{size:020}")
}

/// Bumped on any change to the tables' layout, so an old binary never misreads a newer file.
/// 2: certificate bytes keyed by (entry index, digest). 3: the state table and its size.
/// 4: the state's rows of listed certificates. 5: entries of format 2 (status list indexes) and
/// the state's status slots. Files of formats 2–4 hold entries of format 1, which this build
/// does not read: they are refused. (A later change of the state's layout alone upgrades a file
/// by dropping its state, which the start rebuilds from the entries: the state is derived data.)
const FORMAT: u64 = 5;

/// Creates the tables on first use (keeping `wanted` in a new file), refuses files of other
/// formats and files of another suite than `suite`, and checks that the size, the entries and
/// the stored hashes agree. Returns the log's size, its state's size and what the file keeps.
pub(crate) fn init(db: &Database, wanted: Contents, suite: Suite) -> Result<Opened, LogError> {
    let txn = begin_write(db)?;
    let sizes = {
        let mut meta = txn.open_table(META)?;
        let format = meta.get(META_FORMAT)?.map(|g| g.value());
        match format {
            None => {
                meta.insert(META_FORMAT, FORMAT)?;
                meta.insert(META_SIZE, 0)?;
                meta.insert(META_STATE_SIZE, 0)?;
                meta.insert(META_CONTENTS, contents_code(wanted))?;
                meta.insert(META_SUITE, suite_code(suite))?;
            }
            Some(old @ 2..=4) => {
                return Err(LogError::Corrupt(format!(
                    "log format {old} holds entries written before status lists (entry format 1), \
                     which this build does not read: keep running the build that wrote it, or \
                     start the region anew"
                )));
            }
            Some(FORMAT) => {}
            Some(other) => {
                return Err(LogError::Corrupt(format!(
                    "log format {other} is not supported (this build reads format {FORMAT})"
                )));
            }
        }
        let size = meta.get(META_SIZE)?.map(|g| g.value()).ok_or_else(|| {
            LogError::Corrupt("the log's size is missing from its metadata".into())
        })?;

        let contents = match meta.get(META_CONTENTS)?.map(|g| g.value()) {
            None | Some(0) => Contents::Entries,
            Some(1) => Contents::Tree,
            Some(other) => {
                return Err(LogError::Corrupt(format!(
                    "unknown contents code {other} in the log's metadata"
                )));
            }
        };
        let stored_suite = match meta.get(META_SUITE)?.map(|g| g.value()) {
            None | Some(0) => Suite::Ed25519,
            Some(1) => Suite::Sm2,
            Some(other) => {
                return Err(LogError::Corrupt(format!(
                    "unknown suite code {other} in the log's metadata"
                )));
            }
        };
        if stored_suite != suite {
            return Err(LogError::SuiteMismatch {
                file: stored_suite,
                wanted: suite,
            });
        }
        let entries = txn.open_table(ENTRIES)?;
        let entry_count = entries.len()?;
        let last_entry = entries.last()?.map(|(k, _)| k.value());
        let held = match contents {
            Contents::Entries => size,
            Contents::Tree => 0,
        };
        if entry_count != held || last_entry.map_or(0, |k| k + 1) != held {
            return Err(LogError::Corrupt(format!(
                "size {size} ({contents:?}) but {entry_count} entries (last index {last_entry:?})"
            )));
        }
        let hashes = txn.open_table(HASHES)?;
        let hash_count = hashes.len()?;
        if hash_count != stored_hash_count(size) {
            return Err(LogError::Corrupt(format!(
                "size {size} needs {} stored hashes but {hash_count} are stored",
                stored_hash_count(size)
            )));
        }
        txn.open_table(INDEX_ROWS)?;
        txn.open_table(BLOBS)?;
        txn.open_table(STATE)?;
        let state_size = read_state_size(&meta)?;
        if state_size > size {
            return Err(LogError::Corrupt(format!(
                "the state reflects {state_size} entries but the log has {size}"
            )));
        }
        let checkpoints = txn.open_table(CHECKPOINT)?;
        if let Some(stored) = checkpoints.get(CHECKPOINT_LAST)?.map(|g| g.value().0)
            && stored > size
        {
            return Err(LogError::Corrupt(format!(
                "the last checkpoint is for size {stored} but the log has {size} entries"
            )));
        }
        Opened {
            size,
            state_size,
            contents,
            suite,
        }
    };
    txn.commit()?;
    Ok(sizes)
}

fn suite_code(suite: Suite) -> u64 {
    match suite {
        Suite::Ed25519 => 0,
        Suite::Sm2 => 1,
    }
}

fn contents_code(contents: Contents) -> u64 {
    match contents {
        Contents::Entries => 0,
        Contents::Tree => 1,
    }
}

/// Every write transaction of the log, with redb's default immediate durability (commit returns
/// after fsync) and quick repair: the allocator state is saved with each commit and commits are
/// two-phase, so reopening after a crash takes milliseconds instead of a scan of the whole file
/// (about 1.3 s per GB measured here), and a torn commit is never chosen by checksum alone. The
/// extra fsync per commit is spread over a batch by group commit.
pub(crate) fn begin_write(db: &Database) -> Result<WriteTransaction, LogError> {
    let mut txn = db.begin_write()?;
    txn.set_quick_repair(true);
    Ok(txn)
}

/// How many entries the state reflects, as seen by one transaction.
pub(crate) fn read_state_size(
    meta: &impl ReadableTable<&'static str, u64>,
) -> Result<u64, LogError> {
    meta.get(META_STATE_SIZE)?
        .map(|g| g.value())
        .ok_or_else(|| LogError::Corrupt("the state's size is missing from the metadata".into()))
}

/// The log's size as seen by one transaction.
pub(crate) fn read_size(meta: &impl ReadableTable<&'static str, u64>) -> Result<u64, LogError> {
    meta.get(META_SIZE)?
        .map(|g| g.value())
        .ok_or_else(|| LogError::Corrupt("the log's size is missing from its metadata".into()))
}
