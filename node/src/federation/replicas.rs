//! The replicas of other members' logs (specs/federation.md §5): each a core [`Replica`] (the
//! region's state under the log rules, and its tree's right edge) over a durable copy of the
//! entries, plus what the node derives from them for verification: the other regions' seals and
//! certificate status.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tongban_core::cert::{self, Verification};
use tongban_core::federation::replica::{Progress, Replica};
use tongban_core::federation::{Member, Membership, Reason, Refused};
use tongban_core::ids::RegionCode;
use tongban_core::log::checkpoint::Checkpoint;
use tongban_core::log::entry::Act;
use tongban_core::log::state::Applied;
use tongban_core::trust::{BundleContents, FederationRoot, StatusTable, TrustStore};
use tongban_core::values::{ShortText, Time};

use super::{Federation, FederationError, setup};
use crate::entry_index::EntryIndexer;
use crate::log::{Log, LogConfig};
use crate::metrics::RegionLabel;
use crate::refusal::Refusal;
use crate::region::{now, record_status};

/// How long the federation-wide trust bundles this node builds stay valid.
const BUNDLE_VALIDITY: u64 = 7 * 24 * 3600;

/// One other member's replicated log.
pub struct Slot {
    pub member: Member,
    pub replica: Replica,
    pub log: Log,
    /// The latest checkpoint whose root matched the replica, and its note.
    pub verified: Option<(Checkpoint, Vec<u8>)>,
    /// The latest valid checkpoint seen, possibly ahead of the replica.
    pub latest: Option<(Checkpoint, Vec<u8>)>,
    /// The replica's size, for those waiting on it.
    pub progress: watch::Sender<u64>,
}

impl Slot {
    /// The replica's root at `size` (≤ its size).
    pub fn root_at(&self, size: u64) -> Result<[u8; 32], String> {
        if size == self.replica.size() {
            return Ok(self.replica.root());
        }
        self.log.root(size).map_err(|e| e.to_string())
    }
}

pub(super) fn federation_root(federation: &Federation) -> Result<FederationRoot, FederationError> {
    Ok(FederationRoot {
        name: ShortText::new(&federation.name).ok_or_else(|| setup("federation name"))?,
        key: federation.federation_key.clone(),
    })
}

/// A trust bundle of every member's region root and the given seals, signed by this region's
/// root, and the store it loads into.
fn bundle(
    membership: &Membership,
    fed: FederationRoot,
    root: &tongban_core::keys::SecretKey,
    seals: Vec<Vec<u8>>,
    revocations: Vec<Vec<u8>>,
) -> Result<(Vec<u8>, TrustStore), FederationError> {
    let issued = now().map_err(|r| setup(r.to_string()))?;
    let expires = Time::new(issued.seconds() + BUNDLE_VALIDITY).ok_or_else(|| setup("time"))?;
    let pinned = fed.key.kid();
    let bytes = BundleContents {
        version: membership.version,
        issued,
        expires,
        federation: fed,
        regions: membership
            .members
            .iter()
            .map(|m| m.certificate.clone())
            .collect(),
        seals,
        revocations,
    }
    .sign(root)
    .map_err(|e| setup(e.to_string()))?;
    let store = TrustStore::load(&bytes, issued, Some(pinned))
        .map_err(|f| setup(format!("the federation trust bundle does not load: {f}")))?;
    Ok((bytes, store))
}

/// The trust store before any replica is open: members' roots, no seals.
pub(super) fn empty_trust(
    membership: &Membership,
    fed: FederationRoot,
    root: &tongban_core::keys::SecretKey,
) -> Result<TrustStore, FederationError> {
    Ok(bundle(membership, fed, root, Vec::new(), Vec::new())?.1)
}

impl Federation {
    /// Opens (or creates) the replica of every other member and replays its stored entries.
    pub(super) fn open_replicas(&self) -> Result<(), FederationError> {
        let membership = self.membership();
        for member in &membership.members {
            self.open_replica(member)?;
        }
        self.refresh_trust()?;
        Ok(())
    }

    pub(super) fn open_replica(&self, member: &Member) -> Result<(), FederationError> {
        if member.region() == &self.own || self.replicas()?.contains_key(member.region()) {
            return Ok(());
        }
        let dir = self.home.replicas();
        std::fs::create_dir_all(&dir).map_err(|e| setup(format!("{}: {e}", dir.display())))?;
        let path = dir.join(format!(
            "{}-{}.redb",
            member.region(),
            member.log_generation
        ));
        let log = Log::open(&path, LogConfig::default(), Arc::new(EntryIndexer))
            .map_err(|e| setup(format!("{}: {e}", path.display())))?;
        let mut replica = Replica::new(member, &self.name).map_err(|r| setup(r.to_string()))?;
        let size = log.size().map_err(|e| setup(e.to_string()))?;
        let mut start = 0;
        while start < size {
            let end = size.min(start + 4096);
            let entries = log.entries(start..end).map_err(|e| setup(e.to_string()))?;
            let progress = replica.apply_published(start, &entries);
            if let Some(refused) = progress.refused {
                return Err(setup(format!("replica {}: {refused}", path.display())));
            }
            self.reflect(&replica, &progress.applied)?;
            start = end;
        }
        let verified = log
            .last_checkpoint()
            .map_err(|e| setup(e.to_string()))?
            .and_then(|(_, note)| {
                let head = replica.open_checkpoint(&note, &[]).ok()?;
                Some((head.checkpoint, note))
            });
        self.metrics
            .replica_size
            .get_or_create(&RegionLabel {
                region: member.region().to_string(),
            })
            .set(i64::try_from(size).unwrap_or(i64::MAX));
        tracing::info!(region = %member.region(), entries = size, "replica opened");
        let (progress, _) = watch::channel(size);
        self.replicas()?.insert(
            member.region().clone(),
            Slot {
                member: member.clone(),
                replica,
                log,
                latest: verified.clone(),
                verified,
                progress,
            },
        );
        Ok(())
    }

    /// Updates the other regions' status table after entries were applied to `replica`; returns
    /// whether a seal changed (the trust store must be rebuilt).
    pub(super) fn reflect(
        &self,
        replica: &Replica,
        applied: &[Applied],
    ) -> Result<bool, FederationError> {
        let mut seals_changed = false;
        let mut status = self.status.write().map_err(|_| super::poisoned())?;
        let region = replica.state().region().clone();
        for a in applied {
            match &a.entry.act {
                Act::SealRegistered { .. } | Act::SealRevoked { .. } => seals_changed = true,
                Act::CertIssued {
                    id, predecessor, ..
                } => {
                    for id in std::iter::once(id).chain(predecessor.iter()) {
                        if let Some(record) = replica.state().cert(id.as_str()) {
                            record_status(&mut status, &region, id, record);
                        }
                    }
                }
                Act::StatusChanged { id, .. } | Act::PromiseFulfilled { id } => {
                    if let Some(record) = replica.state().cert(id.as_str()) {
                        record_status(&mut status, &region, id, record);
                    }
                }
                // Records of acts between regions: no certificate's status changes.
                Act::Receipts { .. }
                | Act::ShareAnswered { .. }
                | Act::ShareReceived { .. }
                | Act::ProofReceived { .. } => {}
            }
        }
        Ok(seals_changed)
    }

    /// Rebuilds the trust store of other regions' seals from the replicas.
    pub(super) fn refresh_trust(&self) -> Result<(), FederationError> {
        let replicas = self.replicas()?;
        self.refresh_trust_from(&replicas)
    }

    /// [`Federation::refresh_trust`] with the replicas already locked.
    fn refresh_trust_from(&self, replicas: &Replicas) -> Result<(), FederationError> {
        let (seals, revocations) = self.replicated_seals(replicas);
        let (_, store) = bundle(
            &self.membership(),
            federation_root(self)?,
            &self.root,
            seals,
            revocations,
        )?;
        *self.trust.write().map_err(|_| super::poisoned())? = Arc::new(store);
        Ok(())
    }

    fn replicated_seals(&self, replicas: &Replicas) -> crate::region::SignedSeals {
        let membership = self.membership();
        let mut seals = Vec::new();
        let mut revocations = Vec::new();
        // A member removed from the membership no longer has its root in the bundle, so neither
        // do its seals (its replica stays, as history).
        for slot in replicas
            .values()
            .filter(|s| membership.member(s.member.region()).is_some())
        {
            let mut records: Vec<_> = slot.replica.state().seals().collect();
            records.sort_by_key(|s| s.info.key.kid());
            seals.extend(records.iter().map(|s| s.signed.clone()));
            revocations.extend(records.iter().filter_map(|s| s.revocation.clone()));
        }
        (seals, revocations)
    }

    /// The federation-wide trust bundle (specs/federation.md §5): every member's root, every seal
    /// and revocation of this region and of the replicas, signed by this region's root.
    pub fn trust_bundle(&self) -> Result<Arc<Vec<u8>>, FederationError> {
        Ok(self.full()?.bundle)
    }

    /// The federation-wide trust, loaded: what this node checks other regions' signed objects
    /// against when they involve this region's own seals too (a copy answering a request one of
    /// them signed).
    pub fn full_trust(&self) -> Result<Arc<TrustStore>, FederationError> {
        Ok(self.full()?.store)
    }

    /// The federation-wide bundle, signed and loaded again only when this region's seals or the
    /// replicas' trust changed since the last one (both are replaced, never changed in place).
    fn full(&self) -> Result<FullTrust, FederationError> {
        let own = self
            .region
            .view()
            .map_err(|r| setup(r.to_string()))?
            .bundle
            .clone();
        let others = self.trust.read().map_err(|_| super::poisoned())?.clone();
        let mut cached = self.full.lock().map_err(|_| super::poisoned())?;
        if let Some(full) = cached.as_ref()
            && Arc::ptr_eq(&full.own, &own)
            && Arc::ptr_eq(&full.others, &others)
        {
            return Ok(full.clone());
        }
        let (bundle, store) = self.full_bundle()?;
        let full = FullTrust {
            own,
            others,
            bundle: Arc::new(bundle),
            store: Arc::new(store),
        };
        *cached = Some(full.clone());
        Ok(full)
    }

    fn full_bundle(&self) -> Result<(Vec<u8>, TrustStore), FederationError> {
        let (mut seals, mut revocations) = self
            .region
            .signed_seals()
            .map_err(|r| setup(r.to_string()))?;
        let (others, other_revocations) = self.replicated_seals(&*self.replicas()?);
        seals.extend(others);
        revocations.extend(other_revocations);
        bundle(
            &self.membership(),
            federation_root(self)?,
            &self.root,
            seals,
            revocations,
        )
    }

    /// Applies `progress`'s entries durably to `region`'s replica log and updates what derives
    /// from them. `entries` are the entries the progress applied, in order. The new size is
    /// published last, once the status table and (when a seal changed) the trust store reflect
    /// the entries: whoever sees the size can verify what those entries made valid.
    pub(super) fn commit(
        &self,
        replicas: &mut Replicas,
        region: &RegionCode,
        entries: Vec<Vec<u8>>,
        progress: &Progress,
    ) -> Result<(), FederationError> {
        if entries.is_empty() {
            return Ok(());
        }
        let slot = slot_of(replicas, region)?;
        slot.log
            .append_many(entries)
            .map_err(|e| setup(format!("replica of {region}: {e}")))?;
        if self.reflect(&slot.replica, &progress.applied)? {
            self.refresh_trust_from(replicas)?;
        }
        let slot = slot_of(replicas, region)?;
        let size = slot.replica.size();
        slot.progress.send_replace(size);
        self.metrics
            .replica_size
            .get_or_create(&RegionLabel {
                region: region.to_string(),
            })
            .set(i64::try_from(size).unwrap_or(i64::MAX));
        Ok(())
    }
}

/// Every replica, by region (the map behind `Federation::replicas`).
pub(super) type Replicas = HashMap<RegionCode, Slot>;

fn slot_of<'r>(
    replicas: &'r mut Replicas,
    region: &RegionCode,
) -> Result<&'r mut Slot, FederationError> {
    replicas
        .get_mut(region)
        .ok_or_else(|| setup(format!("no replica of {region}")))
}

/// The federation-wide bundle and store, and what they were built from.
#[derive(Clone)]
pub(super) struct FullTrust {
    own: Arc<Vec<u8>>,
    others: Arc<TrustStore>,
    bundle: Arc<Vec<u8>>,
    store: Arc<TrustStore>,
}

impl crate::region::PeerVerifier for Federation {
    fn verify(&self, bytes: &[u8], now: Time) -> Verification {
        let trust = self
            .trust
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        match self.status.read() {
            Ok(status) => cert::verify(bytes, &trust, &*status, now),
            Err(e) => cert::verify(bytes, &trust, &*e.into_inner(), now),
        }
    }

    fn status(&self) -> Result<std::sync::RwLockReadGuard<'_, StatusTable>, Refusal> {
        self.status
            .read()
            .map_err(|_| Refusal::internal("an internal lock was poisoned by a panic"))
    }
}

pub(super) fn is_quiet(r: &Refused) -> bool {
    matches!(r.code, Reason::Stale | Reason::Gap)
}
