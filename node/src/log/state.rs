//! The state: what a log's entries establish, as (kind, key) → value rows that the layer above
//! defines. The log writes a batch's state changes in the same transaction as its entries, so
//! the two are durable together or not at all, and reads them in snapshots like everything else.
//! It never interprets them.

use std::path::Path;

use super::engine::{Engine, StateView, WriteSet};
use super::redb_engine::RedbEngine;
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

impl StateOp {
    /// A [`StateOp::Patch`] applied to the row it patches (`None`: not there yet).
    pub(crate) fn patched(&self, held: Option<Vec<u8>>) -> Result<Vec<u8>, LogError> {
        let StateOp::Patch {
            kind,
            key,
            len,
            fill,
            offset,
            byte,
        } = self
        else {
            return Err(LogError::InvalidArgument(
                "internal: only a patch patches a row".into(),
            ));
        };
        let mut row = held.unwrap_or_else(|| vec![*fill; *len]);
        let held = row.len();
        let slot = row.get_mut(*offset).ok_or_else(|| {
            LogError::Corrupt(format!(
                "state row {kind}/{key:?} holds {held} bytes, not {len}"
            ))
        })?;
        *slot = *byte;
        Ok(row)
    }
}

/// A row's key (without its kind) and value.
pub type Row = (Vec<u8>, Vec<u8>);

/// Reads rows of a state table.
pub trait StateRows {
    fn get(&self, kind: u8, key: &[u8]) -> Result<Option<Vec<u8>>, LogError>;
}

/// A consistent snapshot of the durable state, whatever engine keeps it.
pub struct StateSnapshot(Box<dyn StateView>);

impl StateSnapshot {
    /// How many entries of the log this state reflects.
    pub fn size(&self) -> u64 {
        self.0.size()
    }

    /// Every row of `kind` whose key starts with `from` or sorts after it, in key order, while
    /// `each` returns true.
    pub fn scan(
        &self,
        kind: u8,
        from: &[u8],
        mut each: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), LogError> {
        self.0.scan(kind, from, &mut each)
    }

    /// The last row of `kind` in key order, if any.
    pub fn last(&self, kind: u8) -> Result<Option<Row>, LogError> {
        self.0.last(kind)
    }
}

impl StateRows for StateSnapshot {
    fn get(&self, kind: u8, key: &[u8]) -> Result<Option<Vec<u8>>, LogError> {
        self.0.get(kind, key)
    }
}

impl Log {
    /// A snapshot of the durable state.
    pub fn state(&self) -> Result<StateSnapshot, LogError> {
        Ok(StateSnapshot(self.inner.engine.state()?))
    }

    /// The state as the log's sequencer reads it ([`super::Engine::sequencer_state`]): rows as
    /// committed when read, its size what was committed before. Only for a reader that holds
    /// every entry in flight itself and reads those first.
    pub fn sequencer_state(&self) -> Result<StateSnapshot, LogError> {
        Ok(StateSnapshot(self.inner.engine.sequencer_state()?))
    }

    /// The rows at `keys` as committed at one moment, and the state's size then
    /// ([`super::Engine::rows_at`]).
    pub fn rows_at(&self, keys: &[(u8, Vec<u8>)]) -> Result<super::RowsAt, LogError> {
        self.inner.engine.rows_at(keys)
    }

    /// [`Log::rows_at`] for an async caller ([`super::Engine::rows_at_later`]).
    pub fn rows_at_later(&self, keys: Vec<(u8, Vec<u8>)>) -> super::RowsAtLater {
        self.inner.engine.rows_at_later(keys)
    }

    /// Whether a read waits on a database server ([`super::Engine::reads_wait_on_network`]).
    pub fn reads_wait_on_network(&self) -> bool {
        self.inner.engine.reads_wait_on_network()
    }

    /// How many entries the durable state reflects: the log's size, except after an upgrade
    /// from a log without state, until [`Log::catch_up_state`] has brought it up to date.
    pub fn state_size(&self) -> Result<u64, LogError> {
        Ok(self.state()?.size())
    }

    /// Writes the state changes of the entries from the state's size up to `to` (which the log
    /// holds already), in one transaction.
    pub fn catch_up_state(&self, to: u64, ops: Vec<StateOp>) -> Result<(), LogError> {
        self.request(|reply| super::writer::Command::CatchUp { to, ops, reply })
    }

    /// Compares the state with `other`'s, row by row in key order; returns how many rows
    /// differ and the first few (kind, key) that do.
    pub fn state_differences(&self, other: &Scratch) -> Result<Differences, LogError> {
        differences(&*self.inner.engine.state()?, &*other.engine.state()?)
    }

    /// [`Log::state_differences`] with another log's state (a replica's of this region, which
    /// the same rules over the same entries make row for row the same).
    pub fn state_differences_with(&self, other: &Log) -> Result<Differences, LogError> {
        differences(&*self.inner.engine.state()?, &*other.inner.engine.state()?)
    }
}

fn differences(mine: &dyn StateView, theirs: &dyn StateView) -> Result<Differences, LogError> {
    let mut a = mine.rows()?;
    let mut b = theirs.rows()?;
    let mut out = Differences::default();
    let mut next_a = a.next().transpose()?;
    let mut next_b = b.next().transpose()?;
    loop {
        let (step_a, step_b) = match (&next_a, &next_b) {
            (None, None) => break,
            (Some((kind, key, _)), None) => {
                out.note(*kind, key);
                (true, false)
            }
            (None, Some((kind, key, _))) => {
                out.note(*kind, key);
                (false, true)
            }
            (Some((ka, keya, va)), Some((kb, keyb, vb))) => match (ka, keya).cmp(&(kb, keyb)) {
                std::cmp::Ordering::Less => {
                    out.note(*ka, keya);
                    (true, false)
                }
                std::cmp::Ordering::Greater => {
                    out.note(*kb, keyb);
                    (false, true)
                }
                std::cmp::Ordering::Equal => {
                    if va != vb {
                        out.note(*ka, keya);
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

/// A state of its own, in a file of its own, written without fsync: where `check` rebuilds a
/// log's state from its entries to compare it with the stored one.
pub struct Scratch {
    engine: RedbEngine,
}

impl Scratch {
    pub fn create(path: &Path) -> Result<Scratch, LogError> {
        Ok(Scratch {
            engine: RedbEngine::scratch(path)?,
        })
    }
}

/// Where a state is rebuilt from a log's entries, a batch of them at a time: the log's own state
/// after an upgrade, or a [`Scratch`] state for `check`.
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
        Ok(StateSnapshot(self.engine.state()?))
    }

    fn catch_up(&self, to: u64, ops: Vec<StateOp>) -> Result<(), LogError> {
        self.engine.write(&WriteSet {
            state: ops.iter().collect(),
            state_size: Some(to),
            ..WriteSet::default()
        })
    }
}
