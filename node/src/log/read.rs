//! Reads: each call reads one engine snapshot, which never waits for the writer. Sizes are
//! checked against that snapshot before any tlog function sees them, because those functions
//! assert (panic) on inconsistent arguments.

use std::ops::Range;

use tongban_core::log::tree::{self, HashReader, prove_record, prove_tree, tree_hash};

use super::engine::Snapshot;
use super::hashes::StoredHashes;
use super::tiles::{TILE_HEIGHT, check_tile, encode_entry_bundle};
use super::{Contents, Log, LogError};

impl Log {
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>, LogError> {
        self.inner.engine.read()
    }

    /// The number of durable entries.
    pub fn size(&self) -> Result<u64, LogError> {
        Ok(self.snapshot()?.size())
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
        self.snapshot()?.entry(index)
    }

    /// The entries in `range`, which must lie within the log.
    pub fn entries(&self, range: Range<u64>) -> Result<Vec<Vec<u8>>, LogError> {
        self.entries_held()?;
        let snapshot = self.snapshot()?;
        let size = snapshot.size();
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
        snapshot.entries(range)
    }

    /// The leaf hashes (RFC 6962 record hashes) of the entries in `range`, which must lie within
    /// the log: what tells whether entries offered again are the ones applied, in either
    /// [`Contents`].
    pub fn leaf_hashes(&self, range: Range<u64>) -> Result<Vec<[u8; 32]>, LogError> {
        let snapshot = self.snapshot()?;
        if range.start > range.end {
            return Err(LogError::InvalidArgument(format!(
                "entry range {}..{} is reversed",
                range.start, range.end
            )));
        }
        check_size(range.end, snapshot.size())?;
        let positions: Vec<u64> = range.map(|i| tree::stored_hash_index(0, i)).collect();
        let reader = StoredHashes::new(&*snapshot);
        reader.finish(reader.read_hashes(&positions))
    }

    /// The tree hash (root) of the log's first `size` entries; `size` at most the current size.
    pub fn root(&self, size: u64) -> Result<[u8; 32], LogError> {
        let snapshot = self.snapshot()?;
        check_size(size, snapshot.size())?;
        let reader = StoredHashes::new(&*snapshot);
        reader.finish(tree_hash(self.suite(), size, &reader))
    }

    /// RFC 6962 inclusion proof (audit path) of entry `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<[u8; 32]>, LogError> {
        let snapshot = self.snapshot()?;
        check_size(size, snapshot.size())?;
        if index >= size {
            return Err(LogError::InvalidArgument(format!(
                "entry {index} is not in a tree of size {size}"
            )));
        }
        let reader = StoredHashes::new(&*snapshot);
        reader.finish(prove_record(self.suite(), size, index, &reader))
    }

    /// RFC 6962 consistency proof from the tree of `old` entries to the tree of `new` entries,
    /// `1 <= old <= new <= size` (a proof from the empty tree is not defined).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, LogError> {
        let snapshot = self.snapshot()?;
        check_size(new, snapshot.size())?;
        if old == 0 || old > new {
            return Err(LogError::InvalidArgument(format!(
                "no consistency proof from size {old} to size {new}: needs 1 <= old <= new"
            )));
        }
        let reader = StoredHashes::new(&*snapshot);
        reader.finish(prove_tree(self.suite(), new, old, &reader))
    }

    /// C2SP tlog-tiles hash tile: level `level`, tile index `n`, `width` hashes (1..=256). Stored
    /// hashes never change, so a tile is the same in every tree that contains it; it must lie within
    /// the current tree.
    pub fn hash_tile(&self, level: u8, n: u64, width: u32) -> Result<Vec<u8>, LogError> {
        let snapshot = self.snapshot()?;
        check_tile(level, n, width, snapshot.size())?;
        let reader = StoredHashes::new(&*snapshot);
        let hashes =
            reader.finish(reader.read_hashes(&tree::tile_indexes(TILE_HEIGHT, level, n, width)))?;
        Ok(hashes.concat())
    }

    /// C2SP tlog-tiles entry bundle: entries `n*256 .. n*256+width`, each as a big-endian uint16
    /// length and the bytes.
    pub fn entry_bundle(&self, n: u64, width: u32) -> Result<Vec<u8>, LogError> {
        self.entries_held()?;
        let snapshot = self.snapshot()?;
        let range = check_tile(0, n, width, snapshot.size())?;
        encode_entry_bundle(&snapshot.entries(range)?)
    }

    /// The bytes stored under `digest` with the entry at `index`, if any.
    pub fn blob(&self, index: u64, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, LogError> {
        self.snapshot()?.blob(index, digest)
    }

    /// Indexes of the entries whose index row `name` has key `key`, ascending.
    pub fn lookup(&self, name: &'static str, key: &[u8]) -> Result<Vec<u64>, LogError> {
        self.snapshot()?.lookup(name, key)
    }

    /// The request row under `key` (when it was made, and its record), if any
    /// ([`super::Engine::request_row`]).
    pub fn request_row(&self, key: &[u8]) -> Result<Option<(u64, Vec<u8>)>, LogError> {
        self.inner.engine.request_row(key)
    }

    /// The last stored checkpoint and the tree size it is for.
    pub fn last_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, LogError> {
        self.snapshot()?.last_checkpoint()
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
        let from = match after.map(|size| size.checked_add(1)) {
            None => 0,
            Some(Some(next)) => next,
            // Nothing is above the largest size.
            Some(None) => return Ok(Vec::new()),
        };
        self.snapshot()?.checkpoints_from(from, limit)
    }
}

fn check_size(requested: u64, size: u64) -> Result<(), LogError> {
    if requested > size {
        return Err(LogError::BeyondSize { requested, size });
    }
    Ok(())
}

impl Log {
    /// The right edge of the tree of the first `size` entries (`size` at most the log's):
    /// read from the stored subtree hashes, without reading any entry.
    pub fn frontier(&self, size: u64) -> Result<tongban_core::log::frontier::Frontier, LogError> {
        let snapshot = self.snapshot()?;
        check_size(size, snapshot.size())?;
        let mut heights = Vec::new();
        let mut positions = Vec::new();
        for (height, first) in tongban_core::log::frontier::Frontier::peak_positions(size) {
            let level = u8::try_from(height)
                .map_err(|_| LogError::Corrupt("a subtree height beyond 255".into()))?;
            heights.push(height);
            positions.push(tree::stored_hash_index(level, first >> height));
        }
        let reader = StoredHashes::new(&*snapshot);
        let hashes = reader.finish(reader.read_hashes(&positions))?;
        let peaks = heights.into_iter().zip(hashes).collect();
        tongban_core::log::frontier::Frontier::from_peaks(self.suite(), size, peaks)
            .ok_or_else(|| LogError::Corrupt("the stored subtree hashes do not fit".into()))
    }
}
