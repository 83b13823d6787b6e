//! Other regions' signed status, relayed: a member asks the node of a region for its status list
//! (status.md §5) or snapshot (trust.md §6), checks it against that region's root, and keeps the
//! newest, so that it still serves one while that node cannot be reached.

use std::sync::Arc;

use tongban_core::federation::wire::{Request, Response};
use tongban_core::ids::RegionCode;
use tongban_core::trust::snapshot::Freshness;
use tongban_core::trust::{StatusList, StatusSnapshot, TrustStore};

use super::{Federation, tasks};
use crate::refusal::Refusal;

/// The kinds of signed status a federation relays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusData {
    Snapshot,
    List,
}

impl StatusData {
    pub fn name(self) -> &'static str {
        match self {
            StatusData::Snapshot => "status snapshot",
            StatusData::List => "status list",
        }
    }

    fn request(self, region: &RegionCode) -> Request {
        let region = region.clone();
        match self {
            StatusData::Snapshot => Request::Snapshot { region },
            StatusData::List => Request::StatusList { region },
        }
    }

    pub(super) fn respond(self, bytes: Vec<u8>) -> Response {
        match self {
            StatusData::Snapshot => Response::Snapshot { snapshot: bytes },
            StatusData::List => Response::StatusList { list: bytes },
        }
    }

    fn unpack(self, response: Response) -> Result<Vec<u8>, String> {
        match (self, response) {
            (StatusData::Snapshot, Response::Snapshot { snapshot }) => Ok(snapshot),
            (StatusData::List, Response::StatusList { list }) => Ok(list),
            (_, other) => Err(format!("unexpected answer {}", other.kind())),
        }
    }

    /// This region's own, signed now (or the list held, while fresh).
    pub(super) fn own(self, region: &crate::region::Region) -> Result<Vec<u8>, Refusal> {
        match self {
            StatusData::Snapshot => region.status_snapshot(),
            StatusData::List => region.status_list().map(|l| l.as_ref().clone()),
        }
    }

    /// The region and freshness of `bytes`, once they verify under that region's root.
    fn load(self, bytes: &[u8], trust: &TrustStore) -> Result<(RegionCode, Freshness), String> {
        match self {
            StatusData::Snapshot => StatusSnapshot::load(bytes, trust)
                .map(|s| (s.region, (s.version, s.issued)))
                .map_err(|f| f.to_string()),
            StatusData::List => StatusList::load(bytes, trust)
                .map(|l| (l.region, (l.version, l.issued)))
                .map_err(|f| f.to_string()),
        }
    }
}

impl Federation {
    /// `region`'s latest signed status of `kind`: this region's is made here; another region's
    /// is fetched from its node, checked against its root and kept, and the last one kept is
    /// served while that node cannot be reached.
    pub async fn status_data(
        &self,
        kind: StatusData,
        region: &RegionCode,
    ) -> Result<Vec<u8>, String> {
        if region == &self.own {
            let node = self.region.clone();
            return tokio::task::spawn_blocking(move || kind.own(&node))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|r| r.to_string());
        }
        let fetched = match self.peer_of(region) {
            Some(peer) => tasks::request(self, peer, &kind.request(region))
                .await
                .and_then(|answer| kind.unpack(answer))
                .and_then(|bytes| self.keep_status(kind, region, bytes)),
            None => Err(format!("{region} is not a member")),
        };
        fetched.or_else(|e| {
            tracing::debug!(%region, error = %e, kind = kind.name(), "not fetched; serving the last one");
            self.held_status(kind, region)
                .map(|b| b.as_ref().clone())
                .ok_or_else(|| format!("no {} of {region}: {e}", kind.name()))
        })
    }

    /// The status of `kind` last kept for `region`.
    pub(super) fn held_status(
        &self,
        kind: StatusData,
        region: &RegionCode,
    ) -> Option<Arc<Vec<u8>>> {
        self.status_held
            .lock()
            .ok()?
            .get(&(kind, region.clone()))
            .map(|(_, bytes)| bytes.clone())
    }

    /// Checks status of `region` against its root and keeps it unless older than the one held;
    /// returns the newer of the two.
    fn keep_status(
        &self,
        kind: StatusData,
        region: &RegionCode,
        bytes: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let trust = self
            .trust
            .read()
            .map(|t| t.clone())
            .map_err(|_| "poisoned".to_owned())?;
        let (of, incoming) = kind.load(&bytes, &trust)?;
        if &of != region {
            return Err(format!("a {} of {of} instead", kind.name()));
        }
        let mut held = self.status_held.lock().map_err(|_| "poisoned".to_owned())?;
        let key = (kind, region.clone());
        match held.get(&key) {
            Some((kept_at, kept))
                if !tongban_core::trust::snapshot::supersedes(Some(*kept_at), incoming) =>
            {
                Ok(kept.as_ref().clone())
            }
            _ => {
                held.insert(key, (incoming, Arc::new(bytes.clone())));
                Ok(bytes)
            }
        }
    }
}
