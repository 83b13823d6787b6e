//! Status snapshots: a region's signed list of certificates that are not simply valid
//! (specs/trust.md §6), and the table a verifier consults.

use std::collections::{HashMap, HashSet};

use ciborium::Value;

use crate::cbor::{Key, Reader};
use crate::codes::{Code, Failure};
use crate::encode::{entry, map_bytes, text, uint};
use crate::envelope::{BuildError, Kind, seal};
use crate::fields::{Bad, Fields};
use crate::ids::{Identifier, RegionCode};
use crate::keys::SecretKey;
use crate::status::State;
use crate::trust::TrustStore;
use crate::values::{ShortText, Time};

/// One certificate's state in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEntry {
    pub id: Identifier,
    pub state: State,
    pub since: Time,
    /// The text of state 99 (other); absent for every other state.
    pub note: Option<ShortText>,
}

/// A region's status snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSnapshot {
    pub region: RegionCode,
    pub version: u64,
    pub issued: Time,
    /// Certificates not in state 01, sorted by identifier.
    pub entries: Vec<StatusEntry>,
    /// Promise-based certificates whose promise was fulfilled, sorted.
    pub fulfilled: Vec<Identifier>,
}

fn entry_value(e: &StatusEntry) -> Value {
    let mut items = vec![
        text(e.id.as_str()),
        uint(e.state.code()),
        uint(e.since.seconds()),
    ];
    if let Some(note) = &e.note {
        items.push(text(note.as_str()));
    }
    Value::Array(items)
}

fn well_formed(entry: &StatusEntry) -> bool {
    entry.state != State::Valid && (entry.state == State::Other) == entry.note.is_some()
}

fn sorted_unique<'a>(ids: impl Iterator<Item = &'a Identifier>) -> bool {
    let mut previous: Option<&str> = None;
    for id in ids {
        if previous.is_some_and(|p| p.as_bytes() >= id.as_str().as_bytes()) {
            return false;
        }
        previous = Some(id.as_str());
    }
    true
}

impl StatusSnapshot {
    /// Sorts the lists as the format requires.
    pub fn normalise(&mut self) {
        self.entries
            .sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        self.fulfilled.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    }

    fn check(&self) -> Result<(), Bad> {
        if !self.entries.iter().all(well_formed) {
            return Err(Bad::new(
                "an entry is state 01, or a note does not match state 99",
            ));
        }
        if !sorted_unique(self.entries.iter().map(|e| &e.id))
            || !sorted_unique(self.fulfilled.iter())
        {
            return Err(Bad::new("lists must be sorted by identifier and unique"));
        }
        Ok(())
    }

    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        self.check().map_err(|b| BuildError::Invalid(b.detail))?;
        map_bytes(vec![
            entry("v", uint(1)),
            entry("rc", text(self.region.as_str())),
            entry("ver", uint(self.version)),
            entry("iat", uint(self.issued.seconds())),
            entry(
                "st",
                Value::Array(self.entries.iter().map(entry_value).collect()),
            ),
            entry(
                "pf",
                Value::Array(self.fulfilled.iter().map(|i| text(i.as_str())).collect()),
            ),
        ])
    }

    /// The snapshot, signed by the region root.
    pub fn sign(&self, region_root: &SecretKey) -> Result<Vec<u8>, BuildError> {
        seal(Kind::StatusSnapshot, region_root, self.payload()?, &[])
    }

    pub fn from_payload(payload: &[u8]) -> Result<StatusSnapshot, Bad> {
        let mut fields = Fields::whole(payload)?;
        fields.version_1()?;
        let region = fields.text(Key::Text("rc"))?;
        let version = fields.uint(Key::Text("ver"))?;
        let issued = fields.time(Key::Text("iat"))?;
        let entries = fields.array(Key::Text("st"), "a list of status entries", read_entry)?;
        let fulfilled = fields.array(Key::Text("pf"), "a list of identifiers", |r| {
            Identifier::parse(r.text()?).ok()
        })?;
        fields.finish()?;
        let snapshot = StatusSnapshot {
            region: RegionCode::parse(region).map_err(|e| Bad::new(e.to_string()))?,
            version,
            issued,
            entries,
            fulfilled,
        };
        snapshot.check()?;
        Ok(snapshot)
    }

    /// Loads a signed snapshot, checking it against the trust store's region roots.
    pub fn load(bytes: &[u8], trust: &TrustStore) -> Result<StatusSnapshot, Failure> {
        let invalid = |detail: String| Failure::new(Code::StatusSnapshotInvalid, detail);
        let (payload, root) =
            trust.open_region_signed(bytes, Kind::StatusSnapshot, Code::StatusSnapshotInvalid)?;
        let snapshot = StatusSnapshot::from_payload(payload).map_err(|b| invalid(b.detail))?;
        if snapshot.region != root.region {
            return Err(invalid(format!(
                "snapshot of {} signed by the root of {}",
                snapshot.region, root.region
            )));
        }
        Ok(snapshot)
    }
}

fn read_entry(reader: &mut Reader<'_>) -> Option<StatusEntry> {
    let len = reader.array()?;
    if !(3..=4).contains(&len) {
        return None;
    }
    let id = Identifier::parse(reader.text()?).ok()?;
    let state = State::from_code(reader.uint()?)?;
    let since = Time::new(reader.uint()?)?;
    let note = if len == 4 {
        Some(ShortText::new(reader.text()?)?)
    } else {
        None
    };
    Some(StatusEntry {
        id,
        state,
        since,
        note,
    })
}

/// What a status table says about one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// No snapshot of the certificate's region is held.
    Unknown,
    /// The region's snapshot does not list it: state 01 as of the snapshot's time.
    Valid {
        as_of: Time,
    },
    Listed {
        entry: &'a StatusEntry,
        as_of: Time,
    },
}

struct RegionStatus {
    version: u64,
    issued: Time,
    entries: HashMap<String, StatusEntry>,
    fulfilled: HashSet<String>,
}

/// Whether a snapshot of (version, issue time) `incoming` replaces the one held, if any
/// (trust.md §6): the highest version wins, and of two with the same version (the same state of
/// the log, signed at two times) the later one; so the result does not depend on the order in
/// which snapshots are loaded.
pub fn supersedes(held: Option<Freshness>, incoming: Freshness) -> bool {
    held.is_none_or(|held| incoming > held)
}

/// How fresh a snapshot is: its version, then the time it was signed (ordered as [`supersedes`]
/// compares them).
pub type Freshness = (u64, Time);

/// The snapshots a verifier holds, one per region (the highest version wins).
#[derive(Default)]
pub struct StatusTable {
    regions: HashMap<RegionCode, RegionStatus>,
}

impl StatusTable {
    pub fn add(&mut self, snapshot: StatusSnapshot) {
        if !supersedes(
            self.regions
                .get(&snapshot.region)
                .map(|h| (h.version, h.issued)),
            (snapshot.version, snapshot.issued),
        ) {
            return;
        }
        let status = RegionStatus {
            version: snapshot.version,
            issued: snapshot.issued,
            entries: snapshot
                .entries
                .into_iter()
                .map(|e| (e.id.as_str().to_owned(), e))
                .collect(),
            fulfilled: snapshot
                .fulfilled
                .iter()
                .map(|i| i.as_str().to_owned())
                .collect(),
        };
        self.regions.insert(snapshot.region, status);
    }

    /// Records one certificate's current state in `region`'s list, as a node does for its own
    /// region from its log (no signed snapshot involved). State 01 removes it from the list.
    pub fn record(&mut self, region: &RegionCode, entry: StatusEntry, as_of: Time) {
        let status = self.live(region, as_of);
        if entry.state == State::Valid {
            status.entries.remove(entry.id.as_str());
        } else {
            status.entries.insert(entry.id.as_str().to_owned(), entry);
        }
    }

    /// Records a fulfilled promise in `region`'s live list.
    pub fn record_fulfilled(&mut self, region: &RegionCode, id: &str, as_of: Time) {
        self.live(region, as_of).fulfilled.insert(id.to_owned());
    }

    fn live(&mut self, region: &RegionCode, as_of: Time) -> &mut RegionStatus {
        let status = self
            .regions
            .entry(region.clone())
            .or_insert_with(|| RegionStatus {
                version: 0,
                issued: as_of,
                entries: HashMap::new(),
                fulfilled: HashSet::new(),
            });
        status.issued = status.issued.max(as_of);
        status
    }

    pub fn lookup(&self, region: &RegionCode, id: &str) -> Lookup<'_> {
        match self.regions.get(region) {
            None => Lookup::Unknown,
            Some(status) => match status.entries.get(id) {
                Some(entry) => Lookup::Listed {
                    entry,
                    as_of: status.issued,
                },
                None => Lookup::Valid {
                    as_of: status.issued,
                },
            },
        }
    }

    /// The state `id` is listed in, in whichever region's snapshot lists it (an identifier
    /// names its issuer, so at most one region's does): for a verifier that knows a
    /// certificate's identifier and not its region (a transfer's predecessor).
    pub fn listed_state(&self, id: &str) -> Option<State> {
        self.regions
            .values()
            .find_map(|status| status.entries.get(id))
            .map(|entry| entry.state)
    }

    pub fn promise_fulfilled(&self, region: &RegionCode, id: &str) -> bool {
        self.regions
            .get(region)
            .is_some_and(|s| s.fulfilled.contains(id))
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }
}
