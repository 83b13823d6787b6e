//! Where `audit replay` keeps a region's state while it replays the log: a temporary redb file,
//! removed when the audit ends. Memory stays within redb's cache whatever the log's length; the
//! file holds one record per certificate (specs/log.md §7 needs them to apply the rules).

use std::path::Path;

use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition};
use tongban_core::ids::{Identifier, RegionCode};
use tongban_core::keys::KeyId;
use tongban_core::log::state::{
    AuditStore, CertRecord, Delta, SealRecord, StateRead, Write, decode_transfer_in,
    encode_transfer_in,
};
use tongban_core::sharing::PresentationRecord;

/// Identifier → the certificate's record ([`CertRecord::encode`]).
const CERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("certs");
/// Predecessor → entry index (8 bytes, big-endian) ‖ identifier issued for it.
const TRANSFERS_IN: TableDefinition<&str, &[u8]> = TableDefinition::new("transfers_in");
/// Identifier → receiving region, while transferred out.
const TRANSFERS_OUT: TableDefinition<&str, &str> = TableDefinition::new("transfers_out");
/// Status list indexes held.
const INDEXES: TableDefinition<u32, ()> = TableDefinition::new("indexes");
/// Presentation code digest → its record ([`PresentationRecord::encode`]).
const PRESENTATIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("presentations");

/// The most memory redb's page cache takes.
const CACHE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the audit's state store: {0}")]
    Redb(#[from] redb::Error),
    #[error("the audit's state store holds a record that does not decode: {0}")]
    Corrupt(String),
    #[error("the audit's state store: {0}")]
    Io(#[from] std::io::Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// The tables as of the last window taken.
struct Tables {
    certs: ReadOnlyTable<&'static str, &'static [u8]>,
    transfers_in: ReadOnlyTable<&'static str, &'static [u8]>,
    transfers_out: ReadOnlyTable<&'static str, &'static str>,
    indexes: ReadOnlyTable<u32, ()>,
    presentations: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

/// A region's state in a temporary file.
pub struct DiskStore {
    db: Database,
    tables: Tables,
    /// Removes the file when the store is dropped.
    _dir: tempfile::TempDir,
}

impl DiskStore {
    /// A new, empty store in a fresh directory under `parent` (the system's temporary directory
    /// when `None`).
    pub fn create(parent: Option<&Path>) -> Result<DiskStore, StoreError> {
        let dir = match parent {
            Some(parent) => tempfile::Builder::new()
                .prefix("tongban-audit-")
                .tempdir_in(parent)?,
            None => tempfile::Builder::new()
                .prefix("tongban-audit-")
                .tempdir()?,
        };
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.path().join("state.redb"))?;
        let txn = db.begin_write()?;
        txn.open_table(CERTS)?;
        txn.open_table(TRANSFERS_IN)?;
        txn.open_table(TRANSFERS_OUT)?;
        txn.open_table(INDEXES)?;
        txn.open_table(PRESENTATIONS)?;
        txn.commit()?;
        let tables = Self::tables(&db)?;
        Ok(DiskStore {
            db,
            tables,
            _dir: dir,
        })
    }

    fn tables(db: &Database) -> Result<Tables, StoreError> {
        let read = db.begin_read()?;
        Ok(Tables {
            certs: read.open_table(CERTS)?,
            transfers_in: read.open_table(TRANSFERS_IN)?,
            transfers_out: read.open_table(TRANSFERS_OUT)?,
            indexes: read.open_table(INDEXES)?,
            presentations: read.open_table(PRESENTATIONS)?,
        })
    }
}

fn identifier(text: &str) -> Result<Identifier, StoreError> {
    Identifier::parse(text).map_err(|_| StoreError::Corrupt(text.to_owned()))
}

fn region(text: &str) -> Result<RegionCode, StoreError> {
    RegionCode::parse(text).map_err(|_| StoreError::Corrupt(text.to_owned()))
}

/// A transfer in's value: the entry index and the identifier issued.
fn transfer_in(value: &[u8]) -> Result<(u64, Identifier), StoreError> {
    decode_transfer_in(value).ok_or_else(|| StoreError::Corrupt(format!("transfer in {value:?}")))
}

impl StateRead for DiskStore {
    type Error = StoreError;

    fn seal(&self, _: &KeyId) -> Result<Option<SealRecord>, StoreError> {
        // The replay holds the seals (a bounded set): the store never answers for them.
        Ok(None)
    }

    fn cert(&self, id: &Identifier) -> Result<Option<CertRecord>, StoreError> {
        self.tables
            .certs
            .get(id.as_str())?
            .map(|v| {
                CertRecord::decode(v.value()).ok_or_else(|| StoreError::Corrupt(id.to_string()))
            })
            .transpose()
    }

    fn transferred_in(&self, predecessor: &Identifier) -> Result<bool, StoreError> {
        Ok(self
            .tables
            .transfers_in
            .get(predecessor.as_str())?
            .is_some())
    }

    fn transfer_out(&self, id: &Identifier) -> Result<Option<RegionCode>, StoreError> {
        self.tables
            .transfers_out
            .get(id.as_str())?
            .map(|v| region(v.value()))
            .transpose()
    }

    fn status_index_taken(&self, index: u32) -> Result<bool, StoreError> {
        Ok(self.tables.indexes.get(index)?.is_some())
    }

    fn presentation(&self, code: &[u8; 32]) -> Result<Option<PresentationRecord>, StoreError> {
        self.tables
            .presentations
            .get(code.as_slice())?
            .map(|v| {
                PresentationRecord::decode(v.value()).ok_or_else(|| {
                    StoreError::Corrupt(format!("presentation {}", hex::encode(code)))
                })
            })
            .transpose()
    }
}

impl AuditStore for DiskStore {
    fn take(&mut self, deltas: &[Delta]) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write()?;
        // A crash loses the audit, not data: the file is removed and the audit starts over.
        txn.set_durability(Durability::None)?;
        {
            let mut certs = txn.open_table(CERTS)?;
            let mut transfers_in = txn.open_table(TRANSFERS_IN)?;
            let mut transfers_out = txn.open_table(TRANSFERS_OUT)?;
            let mut indexes = txn.open_table(INDEXES)?;
            let mut presentations = txn.open_table(PRESENTATIONS)?;
            for write in deltas.iter().flat_map(|d| &d.writes) {
                match write {
                    Write::Seal(_) => {}
                    Write::Cert { id, record } => {
                        certs.insert(id.as_str(), record.encode().as_slice())?;
                        indexes.insert(record.status_index, ())?;
                    }
                    Write::TransferIn {
                        index,
                        id,
                        predecessor,
                    } => {
                        let value = encode_transfer_in(*index, id);
                        transfers_in.insert(predecessor.as_str(), value.as_slice())?;
                    }
                    Write::TransferOut { id, to: Some(to) } => {
                        transfers_out.insert(id.as_str(), to.as_str())?;
                    }
                    Write::TransferOut { id, to: None } => {
                        transfers_out.remove(id.as_str())?;
                    }
                    Write::Presentation { code, record } => {
                        presentations.insert(code.as_slice(), record.encode().as_slice())?;
                    }
                }
            }
        }
        txn.commit()?;
        self.tables = Self::tables(&self.db)?;
        Ok(())
    }

    fn each_cert(
        &self,
        each: &mut dyn FnMut(&Identifier, &CertRecord) -> bool,
    ) -> Result<(), StoreError> {
        for row in self.tables.certs.iter()? {
            let (key, value) = row?;
            let id = identifier(key.value())?;
            let record = CertRecord::decode(value.value())
                .ok_or_else(|| StoreError::Corrupt(id.to_string()))?;
            if !each(&id, &record) {
                break;
            }
        }
        Ok(())
    }

    fn each_transfer_in(
        &self,
        each: &mut dyn FnMut(u64, &Identifier, &Identifier),
    ) -> Result<(), StoreError> {
        for row in self.tables.transfers_in.iter()? {
            let (key, value) = row?;
            let predecessor = identifier(key.value())?;
            let (index, id) = transfer_in(value.value())?;
            each(index, &id, &predecessor);
        }
        Ok(())
    }

    fn each_transfer_out(
        &self,
        each: &mut dyn FnMut(&Identifier, &RegionCode),
    ) -> Result<(), StoreError> {
        for row in self.tables.transfers_out.iter()? {
            let (key, value) = row?;
            each(&identifier(key.value())?, &region(value.value())?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tongban_core::log::auditor::LogAudit;
    use tongban_core::testkit::log::{SampleLog, sample, transfer_pair};

    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn on_disk(log: &SampleLog, entries: &[Vec<u8>]) -> Result<String, Box<dyn std::error::Error>> {
        let mut audit = LogAudit::with_store(
            &log.vkey,
            &log.trust_bundle,
            false,
            DiskStore::create(None)?,
        );
        for entry in entries {
            audit.entry(entry.clone());
        }
        Ok(format!("{:?}", audit.finish().report))
    }

    fn in_memory(log: &SampleLog, entries: &[Vec<u8>]) -> String {
        let mut audit = LogAudit::new(&log.vkey, &log.trust_bundle, false);
        for entry in entries {
            audit.entry(entry.clone());
        }
        format!("{:?}", audit.finish().report)
    }

    #[test]
    fn a_replay_on_disk_reports_what_one_in_memory_does() -> R {
        let (fuyang, jinan) = transfer_pair(true)?;
        for log in [sample()?, fuyang, jinan] {
            assert_eq!(on_disk(&log, &log.entries)?, in_memory(&log, &log.entries));
            // Stopped at a refused entry: the state before it, on disk as in memory.
            let mut bad = log.entries.clone();
            let n = bad.len();
            bad.swap(n.min(5) - 2, n.min(5) - 1);
            let report = on_disk(&log, &bad)?;
            assert!(report.contains("findings: [Finding"), "{report}");
            assert_eq!(report, in_memory(&log, &bad));
        }
        Ok(())
    }

    #[test]
    fn the_store_reads_back_what_it_took_and_its_file_goes_with_it() -> R {
        let mut audit = LogAudit::with_store(
            &sample()?.vkey,
            &sample()?.trust_bundle,
            false,
            DiskStore::create(None)?,
        );
        for entry in &sample()?.entries {
            audit.entry(entry.clone());
        }
        let store = audit.finish().store.ok_or("no store")?;
        let dir = store._dir.path().to_owned();
        assert!(dir.join("state.redb").exists());
        let mut certs = 0;
        store.each_cert(&mut |id, record| {
            certs += usize::from(
                store
                    .cert(id)
                    .is_ok_and(|read| read.as_ref() == Some(record)),
            );
            true
        })?;
        assert!(certs >= 4, "{certs}");
        drop(store);
        assert!(!dir.exists());
        Ok(())
    }
}
