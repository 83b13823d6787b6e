//! What a holder of a region's state has applied and its store does not hold yet: the changes of
//! entries in flight (a node's sequencer between submission and commit; a replica or a rebuild
//! between a batch's checks and its write). Read before the store, dropped once the store holds
//! them, so its size is the number of entries in flight, never the number of certificates.

use std::collections::{HashMap, VecDeque};

use crate::ids::{Identifier, RegionCode};
use crate::keys::KeyId;
use crate::log::state::{CertRecord, Delta, SealRecord, StateRead, Write};
use crate::sharing::presentation::PresentationRecord;

/// A written key and the map it lives in.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    Cert(Identifier),
    TransferIn(Identifier),
    TransferOut(Identifier),
    Presentation([u8; 32]),
}

/// The changes of entries not in the store yet, by the index of the entry that made them.
#[derive(Debug, Default)]
pub struct Overlay {
    certs: HashMap<Identifier, (u64, CertRecord)>,
    transfers_in: HashMap<Identifier, u64>,
    transfers_out: HashMap<Identifier, (u64, Option<RegionCode>)>,
    /// Status list indexes of the certificates in `certs`, by the entry that last wrote them.
    status_indexes: HashMap<u32, u64>,
    presentations: HashMap<[u8; 32], (u64, PresentationRecord)>,
    /// Keys written, by entry index, in log order: what to drop when.
    written: VecDeque<(u64, Slot)>,
}

impl Overlay {
    /// Takes the writes of the entry at `index`; seals are left to `seals` (their holder keeps
    /// every one of them).
    pub fn take(&mut self, index: u64, delta: &Delta, seals: &mut HashMap<KeyId, SealRecord>) {
        for write in &delta.writes {
            match write {
                Write::Cert { id, record } => {
                    self.status_indexes.insert(record.status_index, index);
                    self.certs.insert(id.clone(), (index, record.clone()));
                    self.written.push_back((index, Slot::Cert(id.clone())));
                }
                Write::TransferIn { predecessor, .. } => {
                    self.transfers_in.insert(predecessor.clone(), index);
                    self.written
                        .push_back((index, Slot::TransferIn(predecessor.clone())));
                }
                Write::TransferOut { id, to } => {
                    self.transfers_out.insert(id.clone(), (index, to.clone()));
                    self.written
                        .push_back((index, Slot::TransferOut(id.clone())));
                }
                Write::Presentation { code, record } => {
                    self.presentations.insert(*code, (index, record.clone()));
                    self.written.push_back((index, Slot::Presentation(*code)));
                }
                Write::Seal(record) => {
                    seals.insert(record.info.key.kid(), record.clone());
                }
            }
        }
    }

    /// Drops what entries below `durable` wrote, unless a later entry wrote it again.
    pub fn settle(&mut self, durable: u64) {
        while let Some((index, _)) = self.written.front()
            && *index < durable
        {
            let Some((index, slot)) = self.written.pop_front() else {
                break;
            };
            match slot {
                Slot::Cert(id) if self.certs.get(&id).is_some_and(|(i, _)| *i == index) => {
                    if let Some((_, record)) = self.certs.remove(&id) {
                        self.status_indexes.remove(&record.status_index);
                    }
                }
                Slot::TransferIn(id) if self.transfers_in.get(&id) == Some(&index) => {
                    self.transfers_in.remove(&id);
                }
                Slot::TransferOut(id)
                    if self
                        .transfers_out
                        .get(&id)
                        .is_some_and(|(i, _)| *i == index) =>
                {
                    self.transfers_out.remove(&id);
                }
                Slot::Presentation(code)
                    if self
                        .presentations
                        .get(&code)
                        .is_some_and(|(i, _)| *i == index) =>
                {
                    self.presentations.remove(&code);
                }
                _ => {}
            }
        }
    }

    /// Whether every key written is settled.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }
}

/// The state as a holder sees it: its seals, what is in flight, then the store.
pub struct Layered<'a, S> {
    pub seals: &'a HashMap<KeyId, SealRecord>,
    pub overlay: &'a Overlay,
    pub store: &'a S,
}

impl<S: StateRead> StateRead for Layered<'_, S> {
    type Error = S::Error;

    fn seal(&self, kid: &KeyId) -> Result<Option<SealRecord>, S::Error> {
        Ok(self.seals.get(kid).cloned())
    }

    fn cert(&self, id: &Identifier) -> Result<Option<CertRecord>, S::Error> {
        match self.overlay.certs.get(id) {
            Some((_, record)) => Ok(Some(record.clone())),
            None => self.store.cert(id),
        }
    }

    fn transferred_in(&self, predecessor: &Identifier) -> Result<bool, S::Error> {
        match self.overlay.transfers_in.contains_key(predecessor) {
            true => Ok(true),
            false => self.store.transferred_in(predecessor),
        }
    }

    fn transfer_out(&self, id: &Identifier) -> Result<Option<RegionCode>, S::Error> {
        match self.overlay.transfers_out.get(id) {
            Some((_, to)) => Ok(to.clone()),
            None => self.store.transfer_out(id),
        }
    }

    fn status_index_taken(&self, index: u32) -> Result<bool, S::Error> {
        match self.overlay.status_indexes.contains_key(&index) {
            true => Ok(true),
            false => self.store.status_index_taken(index),
        }
    }

    fn presentation(&self, code: &[u8; 32]) -> Result<Option<PresentationRecord>, S::Error> {
        match self.overlay.presentations.get(code) {
            Some((_, record)) => Ok(Some(record.clone())),
            None => self.store.presentation(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::state::Head;
    use crate::status::State;
    use crate::testkit::{BUSINESS_LICENCE, identifier, make_uscc};
    use crate::values::Time;

    #[test]
    fn an_entry_is_forgotten_only_once_durable_and_not_written_again()
    -> Result<(), Box<dyn std::error::Error>> {
        let id = identifier(BUSINESS_LICENCE, &make_uscc("91340100MA2N0AAAA")?, "000002")?;
        let time = Time::new(1_700_000_000).ok_or("time")?;
        let record = |state| CertRecord {
            state,
            agency: "91340100MA2N0AAAA1".into(),
            seal: KeyId([7; 16]),
            digest: [9; 32],
            issued: time,
            predecessor: None,
            promise_deadline: None,
            promise_fulfilled: false,
            issued_at_index: 3,
            changed_at_index: 3,
            status_index: 3,
            changed: time,
            reason: None,
            transfer_accepted: false,
        };
        let write = |state| Delta {
            head: Head::default(),
            writes: vec![Write::Cert {
                id: id.clone(),
                record: record(state),
            }],
        };
        let mut seals = HashMap::new();
        let mut overlay = Overlay::default();
        overlay.take(3, &write(State::Valid), &mut seals);
        overlay.take(4, &write(State::Suspended), &mut seals);
        overlay.settle(4);
        // Entry 3 is durable, but entry 4 wrote the record again: it stays.
        assert_eq!(
            overlay.certs.get(&id).map(|(i, r)| (*i, r.state)),
            Some((4, State::Suspended))
        );
        overlay.settle(5);
        assert!(overlay.is_empty());
        assert!(overlay.certs.is_empty());
        Ok(())
    }
}
