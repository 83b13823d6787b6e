//! `HashReader`s over stored hashes: one over a table (a read snapshot or the write transaction),
//! and one that puts the hashes of the batch being written in front of it.

use std::cell::RefCell;

use redb::ReadableTable;
use tlog_tiles::Hash;
use tlog_tiles::tlog::Error as TlogError;

use super::LogError;

/// Reads stored hashes from a table. `HashReader` can only return tlog's error type, so the real
/// cause (a storage error, or a hash that should exist but does not) is kept aside and handed back
/// by [`TableHashes::finish`].
pub(crate) struct TableHashes<'a, T> {
    table: &'a T,
    failure: RefCell<Option<LogError>>,
}

impl<'a, T: ReadableTable<u64, [u8; 32]>> TableHashes<'a, T> {
    pub(crate) fn new(table: &'a T) -> Self {
        TableHashes {
            table,
            failure: RefCell::new(None),
        }
    }

    fn read_one(&self, index: u64) -> Result<Hash, TlogError> {
        match self.table.get(index) {
            Ok(Some(g)) => Ok(Hash(g.value())),
            Ok(None) => {
                self.fail(LogError::Corrupt(format!("stored hash {index} is missing")));
                Err(TlogError::IndexesNotInTree)
            }
            Err(e) => {
                self.fail(e.into());
                Err(TlogError::IndexesNotInTree)
            }
        }
    }

    fn fail(&self, e: LogError) {
        self.failure.borrow_mut().get_or_insert(e);
    }

    /// Converts the result of a tlog call made with this reader, preferring the cause kept aside.
    pub(crate) fn finish<R>(&self, result: Result<R, TlogError>) -> Result<R, LogError> {
        match (result, self.failure.borrow_mut().take()) {
            (_, Some(cause)) => Err(cause),
            (Ok(r), None) => Ok(r),
            (Err(e), None) => Err(e.into()),
        }
    }
}

impl<T: ReadableTable<u64, [u8; 32]>> tlog_tiles::HashReader for TableHashes<'_, T> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TlogError> {
        indexes.iter().map(|&i| self.read_one(i)).collect()
    }
}

/// The hashes computed for the batch in flight, which starts at stored-hash index `base`, in front
/// of the table: `stored_hashes` for entry n needs hashes written for entries earlier in the same
/// batch, which are not in the table yet.
pub(crate) struct BatchHashes<'a, T> {
    pub(crate) base: u64,
    pub(crate) pending: &'a [Hash],
    pub(crate) table: &'a TableHashes<'a, T>,
}

impl<T: ReadableTable<u64, [u8; 32]>> tlog_tiles::HashReader for BatchHashes<'_, T> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TlogError> {
        indexes
            .iter()
            .map(|&i| match i.checked_sub(self.base) {
                Some(offset) => usize::try_from(offset)
                    .ok()
                    .and_then(|o| self.pending.get(o).copied())
                    .ok_or(TlogError::IndexesNotInTree),
                None => self.table.read_one(i),
            })
            .collect()
    }
}
