//! The state table: what a log's entries establish, as (kind, key) → value rows that the layer
//! above defines. The log writes a batch's state changes in the same transaction as its entries,
//! so the two are durable together or not at all, and reads them in snapshots like everything
//! else. It never interprets them.

use std::path::Path;

use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table,
};

use super::schema::{META, META_STATE_SIZE, STATE, read_state_size};
use super::{Log, LogError};

/// One change to the state table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateOp {
    Put {
        kind: u8,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        kind: u8,
        key: Vec<u8>,
    },
    /// Sets one byte of a fixed-size row, in the transaction: a row missing so far starts as
    /// `len` bytes of `fill`. Several patches of one row in one transaction compose in order.
    Patch {
        kind: u8,
        key: Vec<u8>,
        len: usize,
        fill: u8,
        offset: usize,
        byte: u8,
    },
}

/// A row's key (without its kind) and value.
pub type Row = (Vec<u8>, Vec<u8>);

/// Reads rows of a state table.
pub trait StateRows {
    fn get(&self, kind: u8, key: &[u8]) -> Result<Option<Vec<u8>>, LogError>;
}

/// A consistent snapshot of the durable state (a redb read transaction).
pub struct StateSnapshot {
    table: ReadOnlyTable<(u8, &'static [u8]), &'static [u8]>,
    size: u64,
}

impl StateSnapshot {
    fn of(txn: &ReadTransaction) -> Result<StateSnapshot, LogError> {
        Ok(StateSnapshot {
            table: txn.open_table(STATE)?,
            size: read_state_size(&txn.open_table(META)?)?,
        })
    }

    /// How many entries of the log this state reflects.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Every row of `kind` whose key starts with `from` or sorts after it, in key order, while
    /// `each` returns true.
    pub fn scan(
        &self,
        kind: u8,
        from: &[u8],
        mut each: impl FnMut(&[u8], &[u8]) -> bool,
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

    /// The last row of `kind` in key order, if any.
    pub fn last(&self, kind: u8) -> Result<Option<Row>, LogError> {
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
}

impl StateRows for StateSnapshot {
    fn get(&self, kind: u8, key: &[u8]) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self.table.get((kind, key))?.map(|v| v.value().to_vec()))
    }
}

pub(crate) fn write_ops(
    table: &mut Table<(u8, &'static [u8]), &'static [u8]>,
    ops: &[StateOp],
) -> Result<(), LogError> {
    for op in ops {
        match op {
            StateOp::Put { kind, key, value } => {
                table.insert((*kind, key.as_slice()), value.as_slice())?;
            }
            StateOp::Delete { kind, key } => {
                table.remove((*kind, key.as_slice()))?;
            }
            StateOp::Patch {
                kind,
                key,
                len,
                fill,
                offset,
                byte,
            } => {
                let mut row = match table.get((*kind, key.as_slice()))? {
                    Some(value) => value.value().to_vec(),
                    None => vec![*fill; *len],
                };
                let held = row.len();
                let slot = row.get_mut(*offset).ok_or_else(|| {
                    LogError::Corrupt(format!(
                        "state row {kind}/{key:?} holds {held} bytes, not {len}"
                    ))
                })?;
                *slot = *byte;
                table.insert((*kind, key.as_slice()), row.as_slice())?;
            }
        }
    }
    Ok(())
}

impl Log {
    /// A snapshot of the durable state.
    pub fn state(&self) -> Result<StateSnapshot, LogError> {
        StateSnapshot::of(&self.inner.db.begin_read()?)
    }

    /// How many entries the durable state reflects: the log's size, except after an upgrade
    /// from a log without state, until [`Log::catch_up_state`] has brought it up to date.
    pub fn state_size(&self) -> Result<u64, LogError> {
        Ok(self.state()?.size)
    }

    /// Writes the state changes of the entries from the state's size up to `to` (which the log
    /// holds already), in one transaction.
    pub fn catch_up_state(&self, to: u64, ops: Vec<StateOp>) -> Result<(), LogError> {
        self.request(|reply| super::writer::Command::CatchUp { to, ops, reply })
    }

    /// Compares the state table with `other`'s, row by row in key order; returns how many rows
    /// differ and the first few (kind, key) that do.
    pub fn state_differences(&self, other: &Scratch) -> Result<Differences, LogError> {
        differences(&self.inner.db, &other.db)
    }

    /// [`Log::state_differences`] with another log's state (a replica's of this region, which
    /// the same rules over the same entries make row for row the same).
    pub fn state_differences_with(&self, other: &Log) -> Result<Differences, LogError> {
        differences(&self.inner.db, &other.inner.db)
    }
}

fn differences(mine: &Database, theirs: &Database) -> Result<Differences, LogError> {
    {
        let mine = mine.begin_read()?;
        let mine = mine.open_table(STATE)?;
        let theirs = theirs.begin_read()?;
        let theirs = theirs.open_table(STATE)?;
        let mut a = mine.iter()?;
        let mut b = theirs.iter()?;
        let mut out = Differences::default();
        let mut next_a = a.next().transpose()?;
        let mut next_b = b.next().transpose()?;
        loop {
            let (ka, kb) = (
                next_a.as_ref().map(|(k, _)| k.value()),
                next_b.as_ref().map(|(k, _)| k.value()),
            );
            let (step_a, step_b) = match (ka, kb) {
                (None, None) => break,
                (Some(ka), None) => {
                    out.note(ka.0, ka.1);
                    (true, false)
                }
                (None, Some(kb)) => {
                    out.note(kb.0, kb.1);
                    (false, true)
                }
                (Some(ka), Some(kb)) => match ka.cmp(&kb) {
                    std::cmp::Ordering::Less => {
                        out.note(ka.0, ka.1);
                        (true, false)
                    }
                    std::cmp::Ordering::Greater => {
                        out.note(kb.0, kb.1);
                        (false, true)
                    }
                    std::cmp::Ordering::Equal => {
                        let same = next_a.as_ref().map(|(_, v)| v.value())
                            == next_b.as_ref().map(|(_, v)| v.value());
                        if !same {
                            out.note(ka.0, ka.1);
                        }
                        out.compared += 1;
                        (true, true)
                    }
                },
            };
            if step_a {
                next_a = a.next().transpose()?;
            }
            if step_b {
                next_b = b.next().transpose()?;
            }
        }
        Ok(out)
    }
}

/// The outcome of [`Log::state_differences`].
#[derive(Debug, Default)]
pub struct Differences {
    /// Rows present on both sides.
    pub compared: u64,
    /// Rows that differ or are present on one side only.
    pub count: u64,
    /// The first of them: (kind, key).
    pub first: Vec<(u8, Vec<u8>)>,
}

impl Differences {
    fn note(&mut self, kind: u8, key: &[u8]) {
        self.count += 1;
        if self.first.len() < 10 {
            self.first.push((kind, key.to_vec()));
        }
    }
}

/// A state table of its own, in a file of its own, written without fsync: where `check`
/// rebuilds a log's state from its entries to compare it with the stored one.
pub struct Scratch {
    db: Database,
}

impl Scratch {
    pub fn create(path: &Path) -> Result<Scratch, LogError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(STATE)?;
        txn.open_table(META)?.insert(META_STATE_SIZE, 0)?;
        txn.commit()?;
        Ok(Scratch { db })
    }
}

/// Where a state is rebuilt from a log's entries, a batch of them at a time: the log's own state
/// table after an upgrade, or a [`Scratch`] table for `check`.
pub trait StateTarget {
    /// The state so far.
    fn state(&self) -> Result<StateSnapshot, LogError>;
    /// Writes the changes of the entries from the state's size up to `to`, in one transaction.
    fn catch_up(&self, to: u64, ops: Vec<StateOp>) -> Result<(), LogError>;
}

impl StateTarget for Log {
    fn state(&self) -> Result<StateSnapshot, LogError> {
        Log::state(self)
    }

    fn catch_up(&self, to: u64, ops: Vec<StateOp>) -> Result<(), LogError> {
        self.catch_up_state(to, ops)
    }
}

impl StateTarget for Scratch {
    fn state(&self) -> Result<StateSnapshot, LogError> {
        StateSnapshot::of(&self.db.begin_read()?)
    }

    fn catch_up(&self, to: u64, ops: Vec<StateOp>) -> Result<(), LogError> {
        let mut txn = self.db.begin_write()?;
        // Nothing here needs to survive a crash: `check` starts over.
        txn.set_durability(Durability::None)?;
        write_ops(&mut txn.open_table(STATE)?, &ops)?;
        txn.open_table(META)?.insert(META_STATE_SIZE, to)?;
        txn.commit()?;
        Ok(())
    }
}
