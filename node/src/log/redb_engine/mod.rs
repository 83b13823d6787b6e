//! The default engine: one redb file per log. A [`WriteSet`] is one write transaction,
//! committed with redb's immediate durability (fsync) and quick repair; snapshots are redb read
//! transactions, which never wait for the writer.

mod schema;

use std::cell::OnceCell;
use std::ops::Range;
use std::path::Path;

use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table,
};

use super::engine::{
    Engine, IndexRows, KindRow, Opened, PRUNED_PER_WRITE, Snapshot, StateView, WriteSet,
};
use super::state::{Row, StateOp};
use super::{Contents, LogError};
use schema::{
    BLOBS, CHECKPOINT, CHECKPOINT_LAST, ENTRIES, HASHES, HISTORY_END, INDEX_ROWS, META, META_SIZE,
    META_STATE_SIZE, REQUESTS, REQUESTS_BY_TIME, STATE, begin_write, history_key, read_size,
    read_state_size,
};
use tongban_core::suite::Suite;

/// A log kept in a redb file.
pub struct RedbEngine {
    db: Database,
    /// Whether commits wait for fsync: always for a log; not for a scratch state that is
    /// rebuilt from scratch after a crash anyway.
    durable: bool,
}

impl RedbEngine {
    /// Opens the log in the redb file at `path`, creating it (keeping `wanted`) if it does not
    /// exist, its tree in `suite`'s hash (a file of the other suite is refused). `cache_bytes`
    /// bounds the pages redb keeps in memory.
    pub fn open(
        path: &Path,
        cache_bytes: usize,
        wanted: Contents,
        suite: Suite,
    ) -> Result<(RedbEngine, Opened), LogError> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)?;
        let opened = schema::init(&db, wanted, suite)?;
        Ok((RedbEngine { db, durable: true }, opened))
    }

    /// A new file that holds a state only and commits without fsync: nothing in it needs to
    /// survive a crash (`check` starts over).
    pub fn scratch(path: &Path) -> Result<RedbEngine, LogError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(STATE)?;
        txn.open_table(META)?.insert(META_STATE_SIZE, 0)?;
        txn.commit()?;
        Ok(RedbEngine { db, durable: false })
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction, LogError> {
        let mut txn = begin_write(&self.db)?;
        if !self.durable {
            txn.set_durability(Durability::None)?;
        }
        Ok(txn)
    }
}

impl Engine for RedbEngine {
    fn write(&self, set: &WriteSet<'_>) -> Result<(), LogError> {
        let txn = self.begin_write()?;
        {
            if !set.entries.is_empty() {
                let mut table = txn.open_table(ENTRIES)?;
                for (index, entry) in (set.entries_from..).zip(&set.entries) {
                    table.insert(index, *entry)?;
                }
            }
            if !set.index_rows.is_empty() {
                let mut table = txn.open_table(INDEX_ROWS)?;
                for (name, key, index) in &set.index_rows {
                    table.insert((*name, key.as_slice(), *index), ())?;
                }
            }
            if !set.hashes.is_empty() {
                // Ascending keys: redb appends to the right edge of the B-tree.
                let mut table = txn.open_table(HASHES)?;
                for (position, hash) in (set.hashes_from..).zip(&set.hashes) {
                    table.insert(position, *hash)?;
                }
            }
            if !set.blobs.is_empty() {
                let mut table = txn.open_table(BLOBS)?;
                for (index, digest, bytes) in &set.blobs {
                    table.insert((*index, *digest), *bytes)?;
                }
            }
            if !set.state.is_empty() {
                write_ops(&mut txn.open_table(STATE)?, &set.state)?;
            }
            if let Some((size, bytes)) = set.checkpoints.last() {
                let mut table = txn.open_table(CHECKPOINT)?;
                for (size, bytes) in &set.checkpoints {
                    table.insert(history_key(*size).as_str(), (*size, *bytes))?;
                }
                table.insert(CHECKPOINT_LAST, (*size, *bytes))?;
            }
            if !set.requests.is_empty() || set.prune_requests_before.is_some() {
                write_requests(&txn, set)?;
            }
            if set.size.is_some() || set.state_size.is_some() {
                let mut meta = txn.open_table(META)?;
                if let Some(size) = set.size {
                    meta.insert(META_SIZE, size)?;
                }
                if let Some(size) = set.state_size {
                    meta.insert(META_STATE_SIZE, size)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn read(&self) -> Result<Box<dyn Snapshot + '_>, LogError> {
        let txn = self.db.begin_read()?;
        let size = read_size(&txn.open_table(META)?)?;
        Ok(Box::new(RedbSnapshot {
            txn,
            size,
            hashes: OnceCell::new(),
        }))
    }

    fn state(&self) -> Result<Box<dyn StateView>, LogError> {
        let txn = self.db.begin_read()?;
        Ok(Box::new(RedbState {
            table: txn.open_table(STATE)?,
            size: read_state_size(&txn.open_table(META)?)?,
        }))
    }

    fn rebuild_index_rows(&self, derive: &mut IndexRows<'_>) -> Result<(), LogError> {
        let txn = self.begin_write()?;
        txn.delete_table(INDEX_ROWS)?;
        {
            let entries = txn.open_table(ENTRIES)?;
            let mut rows = txn.open_table(INDEX_ROWS)?;
            for item in entries.range(0..)? {
                let (index, entry) = item?;
                let index = index.value();
                for (name, key) in derive(index, entry.value())? {
                    rows.insert((name, key.as_slice(), index), ())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// Upserts the set's request rows (and their age index) and prunes expired ones.
fn write_requests(txn: &redb::WriteTransaction, set: &WriteSet<'_>) -> Result<(), LogError> {
    let mut rows = txn.open_table(REQUESTS)?;
    let mut by_time = txn.open_table(REQUESTS_BY_TIME)?;
    for (key, created, record) in &set.requests {
        if let Some(old) = rows.insert(*key, (*created, *record))? {
            let (old_created, _) = old.value();
            by_time.remove((old_created, *key))?;
        }
        by_time.insert((*created, *key), ())?;
    }
    if let Some(before) = set.prune_requests_before {
        let expired: Vec<(u64, Vec<u8>)> = by_time
            .range((0, &[][..])..(before, &[][..]))?
            .take(PRUNED_PER_WRITE)
            .map(|row| {
                let (key, _) = row?;
                let (created, key) = key.value();
                Ok((created, key.to_vec()))
            })
            .collect::<Result<_, redb::StorageError>>()?;
        for (created, key) in expired {
            by_time.remove((created, key.as_slice()))?;
            rows.remove(key.as_slice())?;
        }
    }
    Ok(())
}

fn write_ops(
    table: &mut Table<(u8, &'static [u8]), &'static [u8]>,
    ops: &[&StateOp],
) -> Result<(), LogError> {
    for op in ops {
        match op {
            StateOp::Put { kind, key, value } => {
                table.insert((*kind, key.as_slice()), value.as_slice())?;
            }
            StateOp::Delete { kind, key } => {
                table.remove((*kind, key.as_slice()))?;
            }
            StateOp::Patch { kind, key, .. } => {
                let held = table
                    .get((*kind, key.as_slice()))?
                    .map(|v| v.value().to_vec());
                let row = op.patched(held)?;
                table.insert((*kind, key.as_slice()), row.as_slice())?;
            }
        }
    }
    Ok(())
}

/// A read transaction and the size it sees. The stored hashes' table is opened once and kept:
/// proofs and commits read many hashes from one snapshot.
struct RedbSnapshot {
    txn: ReadTransaction,
    size: u64,
    hashes: OnceCell<ReadOnlyTable<u64, [u8; 32]>>,
}

impl Snapshot for RedbSnapshot {
    fn size(&self) -> u64 {
        self.size
    }

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, LogError> {
        let entries = self.txn.open_table(ENTRIES)?;
        Ok(entries.get(index)?.map(|g| g.value().to_vec()))
    }

    fn entries(&self, range: Range<u64>) -> Result<Vec<Vec<u8>>, LogError> {
        let table = self.txn.open_table(ENTRIES)?;
        let mut out = Vec::with_capacity(usize::try_from(range.end - range.start).unwrap_or(0));
        for (item, want) in table.range(range.clone())?.zip(range.clone()) {
            let (index, entry) = item?;
            if index.value() != want {
                return Err(LogError::Corrupt(format!("entry {want} is missing")));
            }
            out.push(entry.value().to_vec());
        }
        if out.len() as u64 != range.end - range.start {
            return Err(LogError::Corrupt(format!(
                "entries {}..{} are incomplete",
                range.start, range.end
            )));
        }
        Ok(out)
    }

    fn hashes(&self, positions: &[u64]) -> Result<Vec<Option<[u8; 32]>>, LogError> {
        let table = match self.hashes.get() {
            Some(table) => table,
            None => {
                let opened = self.txn.open_table(HASHES)?;
                self.hashes.get_or_init(|| opened)
            }
        };
        positions
            .iter()
            .map(|&p| Ok(table.get(p)?.map(|g| g.value())))
            .collect()
    }

    fn blob(&self, index: u64, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, LogError> {
        let table = self.txn.open_table(BLOBS)?;
        Ok(table.get((index, *digest))?.map(|g| g.value().to_vec()))
    }

    fn lookup(&self, name: &str, key: &[u8]) -> Result<Vec<u64>, LogError> {
        let rows = self.txn.open_table(INDEX_ROWS)?;
        let mut found = Vec::new();
        for row in rows.range((name, key, 0)..=(name, key, u64::MAX))? {
            let (k, _) = row?;
            found.push(k.value().2);
        }
        Ok(found)
    }

    fn last_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, LogError> {
        let table = self.txn.open_table(CHECKPOINT)?;
        Ok(table.get(CHECKPOINT_LAST)?.map(|g| {
            let (size, bytes) = g.value();
            (size, bytes.to_vec())
        }))
    }

    fn request(&self, key: &[u8]) -> Result<Option<(u64, Vec<u8>)>, LogError> {
        let table = match self.txn.open_table(REQUESTS) {
            Ok(table) => table,
            // Made on the first request recorded.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(table.get(key)?.map(|g| {
            let (created, record) = g.value();
            (created, record.to_vec())
        }))
    }

    fn checkpoints_from(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let table = self.txn.open_table(CHECKPOINT)?;
        let first = history_key(from);
        let mut out = Vec::new();
        for item in table.range(first.as_str()..HISTORY_END)?.take(limit) {
            let (_, value) = item?;
            let (size, bytes) = value.value();
            out.push((size, bytes.to_vec()));
        }
        Ok(out)
    }
}

/// The state table as one read transaction sees it.
struct RedbState {
    table: ReadOnlyTable<(u8, &'static [u8]), &'static [u8]>,
    size: u64,
}

impl StateView for RedbState {
    fn size(&self) -> u64 {
        self.size
    }

    fn get(&self, kind: u8, key: &[u8]) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self.table.get((kind, key))?.map(|v| v.value().to_vec()))
    }

    fn scan(
        &self,
        kind: u8,
        from: &[u8],
        each: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), LogError> {
        for row in self.table.range((kind, from)..)? {
            let (key, value) = row?;
            let (k, key) = key.value();
            if k != kind || !each(key, value.value()) {
                break;
            }
        }
        Ok(())
    }

    fn last(&self, kind: u8) -> Result<Option<Row>, LogError> {
        let mut rows = match kind.checked_add(1) {
            Some(next) => self.table.range((kind, &[][..])..(next, &[][..]))?,
            None => self.table.range((kind, &[][..])..)?,
        };
        match rows.next_back() {
            None => Ok(None),
            Some(row) => {
                let (key, value) = row?;
                Ok(Some((key.value().1.to_vec(), value.value().to_vec())))
            }
        }
    }

    fn rows(&self) -> Result<Box<dyn Iterator<Item = Result<KindRow, LogError>> + '_>, LogError> {
        Ok(Box::new(self.table.iter()?.map(|row| {
            let (key, value) = row?;
            let (kind, key) = key.value();
            Ok((kind, key.to_vec(), value.value().to_vec()))
        })))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use super::schema::{META, META_FORMAT};

    #[test]
    fn a_log_of_another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        drop(
            crate::log::Log::open(
                &path,
                crate::log::LogConfig::default(),
                Arc::new(crate::log::NoIndex),
            )
            .unwrap(),
        );
        {
            // As a build of format 1 (certificate bytes keyed by digest) left it.
            let db = redb::Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(META_FORMAT, 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let refused = crate::log::Log::open(
            &path,
            crate::log::LogConfig::default(),
            Arc::new(crate::log::NoIndex),
        )
        .err()
        .expect("format 1 is refused");
        assert!(refused.to_string().contains("log format 1"), "{refused}");
    }
}
