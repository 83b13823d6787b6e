//! `HashReader`s over stored hashes: one over a snapshot, and one that puts the hashes of the
//! batch being written in front of it.

use std::cell::RefCell;
use std::collections::HashMap;

use tongban_core::log::tree::{Hash, HashReader, TreeError, stored_hash_index};

use super::LogError;
use super::engine::Snapshot;

/// Reads stored hashes from a snapshot. `HashReader` can only return the tree's error type, so
/// the real cause (a storage error, or a hash that should exist but does not) is kept aside and
/// handed back by [`StoredHashes::finish`].
pub(crate) struct StoredHashes<'a> {
    snapshot: &'a dyn Snapshot,
    failure: RefCell<Option<LogError>>,
}

impl<'a> StoredHashes<'a> {
    pub(crate) fn new(snapshot: &'a dyn Snapshot) -> Self {
        StoredHashes {
            snapshot,
            failure: RefCell::new(None),
        }
    }

    fn read(&self, positions: &[u64]) -> Result<Vec<Hash>, TreeError> {
        let found = self.snapshot.hashes(positions).and_then(|found| {
            if found.len() != positions.len() {
                return Err(LogError::Corrupt(format!(
                    "asked for {} stored hashes, the engine answered {}",
                    positions.len(),
                    found.len()
                )));
            }
            positions
                .iter()
                .zip(found)
                .map(|(p, hash)| {
                    hash.ok_or_else(|| LogError::Corrupt(format!("stored hash {p} is missing")))
                })
                .collect()
        });
        found.map_err(|e| {
            self.failure.borrow_mut().get_or_insert(e);
            TreeError::Unreadable(positions.first().copied().unwrap_or_default())
        })
    }

    /// Converts the result of a tree call made with this reader, preferring the cause kept aside.
    pub(crate) fn finish<R>(&self, result: Result<R, TreeError>) -> Result<R, LogError> {
        match (result, self.failure.borrow_mut().take()) {
            (_, Some(cause)) => Err(cause),
            (Ok(r), None) => Ok(r),
            (Err(e), None) => Err(e.into()),
        }
    }
}

impl HashReader for StoredHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        self.read(indexes)
    }
}

/// The stored hashes of the perfect subtrees on the right edge of a tree of `size` leaves, by
/// stored-hash index. Appending reads nothing else (core's `stored_hashes` reads the left
/// siblings of the subtrees a new leaf completes, which are these), so a writer that keeps its
/// edge reads no stored hash from storage: with a database server, each read is a round trip
/// on the path every write waits behind.
pub(crate) struct Edge {
    size: u64,
    hashes: HashMap<u64, Hash>,
}

impl Edge {
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The stored-hash indexes of the right edge of a tree of `size` leaves.
    fn positions(size: u64) -> Vec<u64> {
        (0..64u8)
            .rev()
            .filter(|h| size >> h & 1 == 1)
            .map(|h| stored_hash_index(h, (size >> h) - 1))
            .collect()
    }

    /// The edge of the tree `snapshot` holds `size` leaves of.
    pub(crate) fn read(snapshot: &dyn Snapshot, size: u64) -> Result<Edge, LogError> {
        let positions = Edge::positions(size);
        let stored = StoredHashes::new(snapshot);
        let hashes = stored.finish(stored.read(&positions))?;
        Ok(Edge {
            size,
            hashes: positions.into_iter().zip(hashes).collect(),
        })
    }

    /// The edge at `size` after `pending` (the stored hashes from index `base` on) were
    /// written: each subtree on it is one of this edge's or a new one.
    pub(crate) fn after(&self, base: u64, pending: &[Hash], size: u64) -> Result<Edge, LogError> {
        let reader = BatchHashes {
            base,
            pending,
            edge: self,
        };
        let positions = Edge::positions(size);
        let hashes = reader
            .read_hashes(&positions)
            .map_err(|e| LogError::Corrupt(format!("the tree's edge at size {size}: {e}")))?;
        Ok(Edge {
            size,
            hashes: positions.into_iter().zip(hashes).collect(),
        })
    }
}

/// The hashes computed for the batch in flight, which starts at stored-hash index `base`, in front
/// of the tree's edge before it: `stored_hashes` for entry n reads hashes of subtrees completed
/// earlier in the same batch, which are not stored yet, or on the edge.
pub(crate) struct BatchHashes<'a> {
    pub(crate) base: u64,
    pub(crate) pending: &'a [Hash],
    pub(crate) edge: &'a Edge,
}

impl HashReader for BatchHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| {
                let found = match i.checked_sub(self.base) {
                    Some(offset) => usize::try_from(offset)
                        .ok()
                        .and_then(|o| self.pending.get(o)),
                    None => self.edge.hashes.get(&i),
                };
                found.copied().ok_or(TreeError::Unreadable(i))
            })
            .collect()
    }
}
