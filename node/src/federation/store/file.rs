//! The federation's records in one redb file, `federation.redb` (a node on redb files); each
//! write is one fsynced transaction.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tongban_core::federation::witness::Witnessed;

use super::{StoreError, WitnessStep, fail};

/// Membership version → its signed bytes.
const MEMBERSHIPS: TableDefinition<u64, &[u8]> = TableDefinition::new("memberships");
/// Origin → (size, root, note) last cosigned.
const WITNESSED: TableDefinition<&str, (u64, [u8; 32], &[u8])> = TableDefinition::new("witnessed");
/// Origin → (size, cosignature line) given for the checkpoint held in `WITNESSED`: a request for
/// that very checkpoint again gets the same line, never a second cosignature of one size.
const WITNESS_LINES: TableDefinition<&str, (u64, &str)> = TableDefinition::new("witness_lines");
/// Region code → the misbehaviour record (JSON: reason and evidence).
const MISBEHAVING: TableDefinition<&str, &[u8]> = TableDefinition::new("misbehaving");
/// `own` → (size, note) of the node's latest checkpoint with its quorum of cosignatures.
const COSIGNED: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("cosigned");

pub struct FileStore {
    db: Database,
}

impl FileStore {
    pub fn open(path: &Path) -> Result<FileStore, StoreError> {
        let db = Database::create(path).map_err(fail)?;
        let txn = db.begin_write().map_err(fail)?;
        txn.open_table(MEMBERSHIPS).map_err(fail)?;
        txn.open_table(WITNESSED).map_err(fail)?;
        txn.open_table(WITNESS_LINES).map_err(fail)?;
        txn.open_table(MISBEHAVING).map_err(fail)?;
        txn.open_table(COSIGNED).map_err(fail)?;
        txn.commit().map_err(fail)?;
        Ok(FileStore { db })
    }

    fn write(
        &self,
        change: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(fail)?;
        change(&txn).map_err(fail)?;
        txn.commit().map_err(fail)
    }

    /// Every stored membership version, oldest first.
    pub fn memberships(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(MEMBERSHIPS).map_err(fail)?;
        table
            .iter()
            .map_err(fail)?
            .map(|row| row.map(|(_, v)| v.value().to_vec()).map_err(fail))
            .collect()
    }

    /// Every stored membership version with its number, oldest first.
    pub fn numbered_memberships(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(MEMBERSHIPS).map_err(fail)?;
        table
            .iter()
            .map_err(fail)?
            .map(|row| {
                row.map(|(k, v)| (k.value(), v.value().to_vec()))
                    .map_err(fail)
            })
            .collect()
    }

    pub fn add_membership(&self, version: u64, signed: &[u8]) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(MEMBERSHIPS)?.insert(version, signed)?;
            Ok(())
        })
    }

    pub fn witnessed(&self, origin: &str) -> Result<Option<Witnessed>, StoreError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(WITNESSED).map_err(fail)?;
        Ok(table.get(origin).map_err(fail)?.map(|g| {
            let (size, root, note) = g.value();
            Witnessed {
                size,
                root,
                note: note.to_vec(),
            }
        }))
    }

    /// One step of the witness for `origin`, atomic against every other: reads the checkpoint
    /// held (with the cosignature line given for it), lets `decide` judge the request against
    /// it, and, when it decides to cosign, stores the new head with its line, all in one write
    /// transaction. redb runs one write transaction at a time, so two requests never both judge
    /// against the same held checkpoint, whichever transport they came by. The line is durable
    /// when this returns it.
    pub fn witness_step<E>(
        &self,
        origin: &str,
        decide: impl FnOnce(Option<&Witnessed>, Option<&str>) -> Result<WitnessStep, E>,
    ) -> Result<Result<WitnessStep, E>, StoreError> {
        let txn = self.db.begin_write().map_err(fail)?;
        let step = {
            let mut heads = txn.open_table(WITNESSED).map_err(fail)?;
            let mut lines = txn.open_table(WITNESS_LINES).map_err(fail)?;
            let held = heads.get(origin).map_err(fail)?.map(|g| {
                let (size, root, note) = g.value();
                Witnessed {
                    size,
                    root,
                    note: note.to_vec(),
                }
            });
            let line = lines.get(origin).map_err(fail)?.and_then(|g| {
                let (size, line) = g.value();
                (held.as_ref().map(|h| h.size) == Some(size)).then(|| line.to_owned())
            });
            let step = match decide(held.as_ref(), line.as_deref()) {
                Ok(step) => step,
                // Nothing written: the transaction is dropped, which aborts it.
                Err(e) => return Ok(Err(e)),
            };
            if let WitnessStep::Cosigned { head, line } = &step {
                heads
                    .insert(origin, (head.size, head.root, head.note.as_slice()))
                    .map_err(fail)?;
                lines
                    .insert(origin, (head.size, line.as_str()))
                    .map_err(fail)?;
            }
            step
        };
        txn.commit().map_err(fail)?;
        Ok(Ok(step))
    }

    /// Every origin's head held, with the line given for it (when it is for that head).
    pub fn all_witnessed(&self) -> Result<Vec<(String, Witnessed, Option<String>)>, StoreError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let heads = txn.open_table(WITNESSED).map_err(fail)?;
        let lines = txn.open_table(WITNESS_LINES).map_err(fail)?;
        let mut all = Vec::new();
        for row in heads.iter().map_err(fail)? {
            let (origin, head) = row.map_err(fail)?;
            let (size, root, note) = head.value();
            let line = lines.get(origin.value()).map_err(fail)?.and_then(|g| {
                let (at, line) = g.value();
                (at == size).then(|| line.to_owned())
            });
            let head = Witnessed {
                size,
                root,
                note: note.to_vec(),
            };
            all.push((origin.value().to_owned(), head, line));
        }
        Ok(all)
    }

    pub fn misbehaving(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(MISBEHAVING).map_err(fail)?;
        table
            .iter()
            .map_err(fail)?
            .map(|row| {
                row.map(|(k, v)| (k.value().to_owned(), v.value().to_vec()))
                    .map_err(fail)
            })
            .collect()
    }

    /// Records a misbehaving member; the first record stays.
    pub fn mark_misbehaving(&self, region: &str, record: &[u8]) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(MISBEHAVING)?;
            if table.get(region)?.is_none() {
                table.insert(region, record)?;
            }
            Ok(())
        })
    }

    pub fn cosigned(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let table = txn.open_table(COSIGNED).map_err(fail)?;
        Ok(table
            .get("own")
            .map_err(fail)?
            .map(|g| (g.value().0, g.value().1.to_vec())))
    }

    pub fn set_cosigned(&self, size: u64, note: &[u8]) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(COSIGNED)?.insert("own", (size, note))?;
            Ok(())
        })
    }
}
