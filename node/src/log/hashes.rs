//! `HashReader`s over stored hashes: one over a snapshot, and one that puts the hashes of the
//! batch being written in front of it.

use std::cell::RefCell;

use tongban_core::log::tree::{Hash, HashReader, TreeError};

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

/// The hashes computed for the batch in flight, which starts at stored-hash index `base`, in front
/// of the stored ones: `stored_hashes` for entry n needs hashes written for entries earlier in
/// the same batch, which are not stored yet.
pub(crate) struct BatchHashes<'a> {
    pub(crate) base: u64,
    pub(crate) pending: &'a [Hash],
    pub(crate) stored: &'a StoredHashes<'a>,
}

impl HashReader for BatchHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| match i.checked_sub(self.base) {
                Some(offset) => usize::try_from(offset)
                    .ok()
                    .and_then(|o| self.pending.get(o).copied())
                    .ok_or(TreeError::Unreadable(i)),
                None => self
                    .stored
                    .read(&[i])?
                    .pop()
                    .ok_or(TreeError::Unreadable(i)),
            })
            .collect()
    }
}
