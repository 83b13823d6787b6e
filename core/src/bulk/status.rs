//! A compact status index: what [`StatusTable`](crate::trust::StatusTable) answers, in a few flat
//! arrays instead of a hash map of owned entries, so that a province's snapshots fit in a bulk
//! run's memory budget.

use crate::cert::verify::Layered;
use crate::cert::{Claims, StatusSource, StatusView};
use crate::ids::RegionCode;
use crate::status::State;
use crate::trust::snapshot::supersedes;
use crate::trust::{StatusList, StatusLists, StatusSnapshot};
use crate::values::{ShortText, Time};

/// One listed certificate: its identifier is `ids[start..start + len]`.
#[derive(Clone, Copy, Debug)]
struct Listed {
    start: u32,
    len: u32,
    state: State,
    since: Time,
    /// Index into `notes` (state 99 only).
    note: Option<u32>,
}

/// One region's snapshot. Snapshots list identifiers sorted and unique (specs/trust.md §6), so
/// lookups are binary searches over the identifiers kept in one string each.
#[derive(Clone, Debug)]
struct RegionIndex {
    region: RegionCode,
    version: u64,
    issued: Time,
    ids: String,
    listed: Vec<Listed>,
    notes: Vec<ShortText>,
    fulfilled_ids: String,
    /// (start, len) into `fulfilled_ids`.
    fulfilled: Vec<(u32, u32)>,
    /// BLAKE3 of the snapshot's contents: part of the verified-digest cache's context.
    fingerprint: [u8; 32],
}

fn slice(arena: &str, start: u32, len: u32) -> &str {
    arena
        .get(start as usize..start as usize + len as usize)
        .unwrap_or_default()
}

/// Appends `text` to `arena`; `None` if the arena would pass 4 GiB (a snapshot is at most 256 MiB,
/// so this never happens for a loaded one).
fn push(arena: &mut String, text: &str) -> Option<(u32, u32)> {
    let start = u32::try_from(arena.len()).ok()?;
    let len = u32::try_from(text.len()).ok()?;
    start.checked_add(len)?;
    arena.push_str(text);
    Some((start, len))
}

impl RegionIndex {
    fn build(snapshot: StatusSnapshot) -> Option<RegionIndex> {
        let mut hasher = blake3::Hasher::new_derive_key("tongban v1 bulk status fingerprint");
        hasher.update(snapshot.region.as_str().as_bytes());
        hasher.update(&snapshot.version.to_be_bytes());
        hasher.update(&snapshot.issued.seconds().to_be_bytes());
        let mut index = RegionIndex {
            region: snapshot.region,
            version: snapshot.version,
            issued: snapshot.issued,
            ids: String::new(),
            listed: Vec::with_capacity(snapshot.entries.len()),
            notes: Vec::new(),
            fulfilled_ids: String::new(),
            fulfilled: Vec::with_capacity(snapshot.fulfilled.len()),
            fingerprint: [0; 32],
        };
        for entry in snapshot.entries {
            let (start, len) = push(&mut index.ids, entry.id.as_str())?;
            hasher.update(b"\x01");
            hasher.update(entry.id.as_str().as_bytes());
            hasher.update(&entry.state.code().to_be_bytes());
            hasher.update(&entry.since.seconds().to_be_bytes());
            let note = match entry.note {
                Some(note) => {
                    hasher.update(note.as_str().as_bytes());
                    index.notes.push(note);
                    Some(u32::try_from(index.notes.len() - 1).ok()?)
                }
                None => None,
            };
            index.listed.push(Listed {
                start,
                len,
                state: entry.state,
                since: entry.since,
                note,
            });
        }
        for id in &snapshot.fulfilled {
            hasher.update(b"\x02");
            hasher.update(id.as_str().as_bytes());
            index
                .fulfilled
                .push(push(&mut index.fulfilled_ids, id.as_str())?);
        }
        index.ids.shrink_to_fit();
        index.fulfilled_ids.shrink_to_fit();
        index.fingerprint = *hasher.finalize().as_bytes();
        Some(index)
    }

    fn find(&self, id: &str) -> Option<&Listed> {
        self.listed
            .binary_search_by(|l| {
                slice(&self.ids, l.start, l.len)
                    .as_bytes()
                    .cmp(id.as_bytes())
            })
            .ok()
            .and_then(|i| self.listed.get(i))
    }

    fn is_fulfilled(&self, id: &str) -> bool {
        self.fulfilled
            .binary_search_by(|&(start, len)| {
                slice(&self.fulfilled_ids, start, len)
                    .as_bytes()
                    .cmp(id.as_bytes())
            })
            .is_ok()
    }
}

/// The status snapshots a bulk run holds, one per region, the highest version winning as in
/// [`StatusTable`](crate::trust::StatusTable).
#[derive(Clone, Debug, Default)]
pub struct CompactStatus {
    /// Snapshots, sorted by region code.
    regions: Vec<RegionIndex>,
    /// Status lists: packed already, half a byte per certificate.
    lists: StatusLists,
}

/// The snapshots alone, as a status source.
struct Snapshots<'a>(&'a [RegionIndex]);

impl Snapshots<'_> {
    fn region(&self, region: &RegionCode) -> Option<&RegionIndex> {
        self.0
            .binary_search_by(|r| r.region.cmp(region))
            .ok()
            .and_then(|i| self.0.get(i))
    }
}

impl CompactStatus {
    /// Adds a loaded (signature-checked) snapshot.
    pub fn add(&mut self, snapshot: StatusSnapshot) {
        let at = self
            .regions
            .binary_search_by(|r| r.region.cmp(&snapshot.region));
        let held = at
            .ok()
            .and_then(|i| self.regions.get(i))
            .map(|r| (r.version, r.issued));
        if !supersedes(held, (snapshot.version, snapshot.issued)) {
            return;
        }
        // A loaded snapshot is at most 256 MiB, so its arenas fit u32 offsets.
        let Some(index) = RegionIndex::build(snapshot) else {
            return;
        };
        match at {
            Ok(i) => self.regions[i] = index,
            Err(i) => self.regions.insert(i, index),
        }
    }

    /// Adds a loaded (signature-checked) status list; asked before any snapshot of its region.
    pub fn add_list(&mut self, list: StatusList) {
        self.lists.add(list);
    }

    /// Number of listed certificates over all regions.
    pub fn listed(&self) -> usize {
        self.regions.iter().map(|r| r.listed.len()).sum()
    }

    /// BLAKE3 over every held snapshot's contents, in region order: changes whenever the answers
    /// could.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        for region in &self.regions {
            hasher.update(&region.fingerprint);
        }
        let mut lists: Vec<&StatusList> = self.lists.lists().collect();
        lists.sort_by(|a, b| a.region.cmp(&b.region));
        for list in lists {
            hasher.update(b"list");
            hasher.update(&list.fingerprint());
        }
        *hasher.finalize().as_bytes()
    }
}

impl StatusSource for CompactStatus {
    fn view(&self, claims: &Claims, now: Time) -> StatusView {
        Layered(&self.lists, &Snapshots(&self.regions)).view(claims, now)
    }

    fn promise_fulfilled(&self, claims: &Claims, now: Time) -> bool {
        Layered(&self.lists, &Snapshots(&self.regions)).promise_fulfilled(claims, now)
    }
}

impl StatusSource for Snapshots<'_> {
    fn view(&self, claims: &Claims, _: Time) -> StatusView {
        let Some(index) = self.region(&claims.region) else {
            return StatusView::Unknown;
        };
        match index.find(claims.id.as_str()) {
            None => StatusView::Valid {
                as_of: index.issued,
            },
            Some(listed) => StatusView::Listed {
                state: listed.state,
                since: Some(listed.since),
                note: listed
                    .note
                    .and_then(|n| index.notes.get(n as usize))
                    .cloned(),
                as_of: index.issued,
            },
        }
    }

    fn promise_fulfilled(&self, claims: &Claims, _: Time) -> bool {
        self.region(&claims.region)
            .is_some_and(|r| r.is_fulfilled(claims.id.as_str()))
    }
}
