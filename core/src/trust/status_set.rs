//! The status a verifier holds: status lists (specs/status.md §5) and, for as long as nodes serve
//! them, status snapshots (specs/trust.md §6). Either kind loads from its signed bytes, told apart
//! by `typ`; lists answer first, snapshots for regions no list covers.

use crate::cert::verify::Layered;
use crate::cert::{Claims, StatusSource, StatusView};
use crate::codes::{Code, Failure};
use crate::envelope::{Envelope, Kind};
use crate::trust::{StatusList, StatusLists, StatusSnapshot, StatusTable, TrustStore};
use crate::values::Time;

/// One signed status object, loaded.
#[derive(Clone, Debug)]
pub enum LoadedStatus {
    List(StatusList),
    Snapshot(StatusSnapshot),
}

impl LoadedStatus {
    /// Loads `bytes` as a snapshot when its `typ` says so, else as a status list (whose errors,
    /// a wrong `typ` among them, are `STATUS_LIST_INVALID`).
    pub fn load(bytes: &[u8], trust: &TrustStore) -> Result<LoadedStatus, Failure> {
        match Envelope::open(bytes, Kind::StatusSnapshot) {
            Err(f) if f.code == Code::WrongType => {
                StatusList::load(bytes, trust).map(LoadedStatus::List)
            }
            _ => StatusSnapshot::load(bytes, trust).map(LoadedStatus::Snapshot),
        }
    }
}

/// Lists and snapshots, one of each per region at most (the newest).
#[derive(Default)]
pub struct StatusSet {
    lists: StatusLists,
    snapshots: StatusTable,
}

impl StatusSet {
    pub fn add(&mut self, status: LoadedStatus) {
        match status {
            LoadedStatus::List(list) => self.lists.add(list),
            LoadedStatus::Snapshot(snapshot) => self.snapshots.add(snapshot),
        }
    }
}

impl StatusSource for StatusSet {
    fn view(&self, claims: &Claims, now: Time) -> StatusView {
        Layered(&self.lists, &self.snapshots).view(claims, now)
    }

    fn promise_fulfilled(&self, claims: &Claims, now: Time) -> bool {
        Layered(&self.lists, &self.snapshots).promise_fulfilled(claims, now)
    }
}
