//! Reads: each call runs in one redb read transaction, a snapshot that never waits for the writer.
//! Sizes are checked against that snapshot before any tlog function sees them, because those
//! functions assert (panic) on inconsistent arguments.

use std::ops::Range;

use redb::{ReadTransaction, ReadableDatabase};
use tlog_tiles::{Tile, prove_record, prove_tree, tree_hash};

use super::hashes::TableHashes;
use super::schema::{
    BLOBS, CHECKPOINT, CHECKPOINT_LAST, ENTRIES, HASHES, HISTORY_END, HISTORY_FIRST, INDEX_ROWS,
    META, history_key, read_size,
};
use super::tiles::{TILE_HEIGHT, check_tile, encode_entry_bundle};
use super::{Contents, Log, LogError};

impl Log {
    fn snapshot(&self) -> Result<(ReadTransaction, u64), LogError> {
        let txn = self.inner.db.begin_read()?;
        let size = read_size(&txn.open_table(META)?)?;
        Ok((txn, size))
    }

    /// The number of durable entries.
    pub fn size(&self) -> Result<u64, LogError> {
        Ok(self.snapshot()?.1)
    }

    /// Refuses a read of entries from a file that does not keep them.
    fn entries_held(&self) -> Result<(), LogError> {
        match self.inner.contents {
            Contents::Entries => Ok(()),
            Contents::Tree => Err(LogError::EntriesNotHeld),
        }
    }

    /// The entry at `index`, or `None` past the end of the log.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, LogError> {
        self.entries_held()?;
        let txn = self.inner.db.begin_read()?;
        let entries = txn.open_table(ENTRIES)?;
        Ok(entries.get(index)?.map(|g| g.value().to_vec()))
    }

    /// The entries in `range`, which must lie within the log.
    pub fn entries(&self, range: Range<u64>) -> Result<Vec<Vec<u8>>, LogError> {
        self.entries_held()?;
        let (txn, size) = self.snapshot()?;
        if range.start > range.end {
            return Err(LogError::InvalidArgument(format!(
                "entry range {}..{} is reversed",
                range.start, range.end
            )));
        }
        if range.end > size {
            return Err(LogError::BeyondSize {
                requested: range.end,
                size,
            });
        }
        read_entries(&txn, range)
    }

    /// The leaf hashes (RFC 6962 record hashes) of the entries in `range`, which must lie within
    /// the log: what tells whether entries offered again are the ones applied, in either
    /// [`Contents`].
    pub fn leaf_hashes(&self, range: Range<u64>) -> Result<Vec<[u8; 32]>, LogError> {
        let (txn, size) = self.snapshot()?;
        if range.start > range.end {
            return Err(LogError::InvalidArgument(format!(
                "entry range {}..{} is reversed",
                range.start, range.end
            )));
        }
        check_size(range.end, size)?;
        let table = txn.open_table(HASHES)?;
        range
            .map(|i| {
                let index = tlog_tiles::stored_hash_index(0, i);
                table
                    .get(index)?
                    .map(|g| g.value())
                    .ok_or_else(|| LogError::Corrupt(format!("stored hash {index} is missing")))
            })
            .collect()
    }

    /// The tree hash (root) of the log's first `size` entries; `size` at most the current size.
    pub fn root(&self, size: u64) -> Result<[u8; 32], LogError> {
        let (txn, current) = self.snapshot()?;
        check_size(size, current)?;
        let table = txn.open_table(HASHES)?;
        let reader = TableHashes::new(&table);
        Ok(reader.finish(tree_hash(size, &reader))?.0)
    }

    /// RFC 6962 inclusion proof (audit path) of entry `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<[u8; 32]>, LogError> {
        let (txn, current) = self.snapshot()?;
        check_size(size, current)?;
        if index >= size {
            return Err(LogError::InvalidArgument(format!(
                "entry {index} is not in a tree of size {size}"
            )));
        }
        let table = txn.open_table(HASHES)?;
        let reader = TableHashes::new(&table);
        let proof = reader.finish(prove_record(size, index, &reader))?;
        Ok(proof.into_iter().map(|h| h.0).collect())
    }

    /// RFC 6962 consistency proof from the tree of `old` entries to the tree of `new` entries,
    /// `1 <= old <= new <= size` (a proof from the empty tree is not defined).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, LogError> {
        let (txn, current) = self.snapshot()?;
        check_size(new, current)?;
        if old == 0 || old > new {
            return Err(LogError::InvalidArgument(format!(
                "no consistency proof from size {old} to size {new}: needs 1 <= old <= new"
            )));
        }
        let table = txn.open_table(HASHES)?;
        let reader = TableHashes::new(&table);
        let proof = reader.finish(prove_tree(new, old, &reader))?;
        Ok(proof.into_iter().map(|h| h.0).collect())
    }

    /// C2SP tlog-tiles hash tile: level `level`, tile index `n`, `width` hashes (1..=256). Stored
    /// hashes never change, so a tile is the same in every tree that contains it; it must lie within
    /// the current tree.
    pub fn hash_tile(&self, level: u8, n: u64, width: u32) -> Result<Vec<u8>, LogError> {
        let (txn, size) = self.snapshot()?;
        check_tile(level, n, width, size)?;
        let table = txn.open_table(HASHES)?;
        let reader = TableHashes::new(&table);
        let tile = Tile::new(TILE_HEIGHT, level, n, width, false);
        reader.finish(tile.read_data(&reader))
    }

    /// C2SP tlog-tiles entry bundle: entries `n*256 .. n*256+width`, each as a big-endian uint16
    /// length and the bytes.
    pub fn entry_bundle(&self, n: u64, width: u32) -> Result<Vec<u8>, LogError> {
        self.entries_held()?;
        let (txn, size) = self.snapshot()?;
        let range = check_tile(0, n, width, size)?;
        encode_entry_bundle(&read_entries(&txn, range)?)
    }

    /// The bytes stored under `digest` with the entry at `index`, if any.
    pub fn blob(&self, index: u64, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, LogError> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(BLOBS)?;
        Ok(table.get((index, *digest))?.map(|g| g.value().to_vec()))
    }

    /// Indexes of the entries whose index row `name` has key `key`, ascending.
    pub fn lookup(&self, name: &'static str, key: &[u8]) -> Result<Vec<u64>, LogError> {
        let txn = self.inner.db.begin_read()?;
        let rows = txn.open_table(INDEX_ROWS)?;
        let mut found = Vec::new();
        for row in rows.range((name, key, 0)..=(name, key, u64::MAX))? {
            let (k, _) = row?;
            found.push(k.value().2);
        }
        Ok(found)
    }

    /// The last stored checkpoint and the tree size it is for.
    pub fn last_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, LogError> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(CHECKPOINT)?;
        Ok(table.get(CHECKPOINT_LAST)?.map(|g| {
            let (size, bytes) = g.value();
            (size, bytes.to_vec())
        }))
    }

    /// Every checkpoint ever stored, by size ascending (a size stored twice keeps the later one).
    pub fn checkpoints(&self) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        self.checkpoints_after(None, usize::MAX)
    }

    /// At most `limit` checkpoints of sizes above `after` (all sizes when `None`), oldest first:
    /// one page of the history, which grows with every checkpoint the log signs.
    pub fn checkpoints_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let txn = self.inner.db.begin_read()?;
        let table = txn.open_table(CHECKPOINT)?;
        let first = match after.map(|size| size.checked_add(1)) {
            None => HISTORY_FIRST.to_owned(),
            Some(Some(next)) => history_key(next),
            // Nothing is above the largest size.
            Some(None) => return Ok(Vec::new()),
        };
        let mut out = Vec::new();
        for item in table.range(first.as_str()..HISTORY_END)?.take(limit) {
            let (_, value) = item?;
            let (size, bytes) = value.value();
            out.push((size, bytes.to_vec()));
        }
        Ok(out)
    }
}

fn check_size(requested: u64, size: u64) -> Result<(), LogError> {
    if requested > size {
        return Err(LogError::BeyondSize { requested, size });
    }
    Ok(())
}

fn read_entries(txn: &ReadTransaction, range: Range<u64>) -> Result<Vec<Vec<u8>>, LogError> {
    let table = txn.open_table(ENTRIES)?;
    let mut out = Vec::with_capacity(usize::try_from(range.end - range.start).unwrap_or(0));
    let expected = range.clone();
    for (item, want) in table.range(range)?.zip(expected.clone()) {
        let (index, entry) = item?;
        if index.value() != want {
            return Err(LogError::Corrupt(format!("entry {want} is missing")));
        }
        out.push(entry.value().to_vec());
    }
    if out.len() as u64 != expected.end - expected.start {
        return Err(LogError::Corrupt(format!(
            "entries {}..{} are incomplete",
            expected.start, expected.end
        )));
    }
    Ok(out)
}

impl Log {
    /// The right edge of the tree of the first `size` entries (`size` at most the log's):
    /// read from the stored subtree hashes, without reading any entry.
    pub fn frontier(&self, size: u64) -> Result<tongban_core::log::frontier::Frontier, LogError> {
        let (txn, current) = self.snapshot()?;
        check_size(size, current)?;
        let table = txn.open_table(HASHES)?;
        let mut peaks = Vec::new();
        for (height, first) in tongban_core::log::frontier::Frontier::peak_positions(size) {
            let level = u8::try_from(height)
                .map_err(|_| LogError::Corrupt("a subtree height beyond 255".into()))?;
            let index = tlog_tiles::stored_hash_index(level, first >> height);
            let hash = table
                .get(index)?
                .map(|g| g.value())
                .ok_or_else(|| LogError::Corrupt(format!("stored hash {index} is missing")))?;
            peaks.push((height, hash));
        }
        tongban_core::log::frontier::Frontier::from_peaks(size, peaks)
            .ok_or_else(|| LogError::Corrupt("the stored subtree hashes do not fit".into()))
    }
}
