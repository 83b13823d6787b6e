//! The replicas of other members' logs (specs/federation.md §5): each a core [`Replica`] (where
//! the log stands, its seals, its tree's right edge) over a durable copy of the entries and the
//! state they establish, both in the replica's own redb file and written in one transaction, as
//! a region's own log and state are. Other regions' certificate status is read from there
//! ([`ReplicaStatus`]): nothing is held in memory per replicated certificate, and a start opens
//! each replica without replaying it.

use std::collections::HashMap;
use std::sync::Arc;
use tongban_core::cert::Claims;

use tokio::sync::watch;
use tongban_core::cert::verify::{StatusSource, StatusView};
use tongban_core::cert::{self, Verification};
use tongban_core::federation::replica::{Progress, Replica};
use tongban_core::federation::{Member, Membership, Reason, Refused};
use tongban_core::ids::{Identifier, RegionCode};
use tongban_core::log::checkpoint::Checkpoint;
use tongban_core::log::state::{CertRecord, StateRead, Write};
use tongban_core::status::State;
use tongban_core::trust::{BundleContents, FederationRoot, TrustStore};
use tongban_core::values::{ShortText, Time};

use super::{Federation, FederationError, setup};
use crate::entry_index::EntryIndexer;
use crate::log::{Contents, Log, LogConfig, LogError};
use crate::metrics::RegionLabel;
use crate::refusal::Refusal;
use crate::region::state::{self, Rows};
use crate::region::{PeerStatus, now, rebuild_state, status_note};
use crate::storage::LogName;

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
    /// Whether the replica keeps the entries (and so can serve them to other members).
    pub fn holds_entries(&self) -> bool {
        self.log.contents() == Contents::Entries
    }

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
        let name = LogName::Replica {
            region: member.region().clone(),
            generation: member.log_generation,
        };
        let storage = self.region.storage();
        let path = storage.describe(&name);
        let config = LogConfig {
            contents: match self.config.replica_entries {
                true => Contents::Entries,
                false => Contents::Tree,
            },
            suite: member.log_key.suite(),
            ..LogConfig::default()
        };
        let log = storage
            .open_log(&name, config, Arc::new(EntryIndexer))
            .map_err(|e| setup(format!("{path}: {e}")))?;
        let size = log.size().map_err(|e| setup(e.to_string()))?;
        // A replica written by an older build holds entries without their state: rebuilt once.
        // (A replica without its entries was written with its state, always.)
        if log.contents() == Contents::Entries {
            rebuild_state(&log, member.region(), &member.root.key, size)
                .map_err(|e| setup(format!("replica {path}: {e}")))?;
        }
        let replica = self.resume(member, &log)?;
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
        {
            let mut logs = self.replica_logs.write().map_err(|_| super::poisoned())?;
            let mut grown = (**logs).clone();
            grown.insert(member.region().clone(), log.clone());
            *logs = Arc::new(grown);
        }
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

    /// The replica of `member` as its file holds it: where the log stands, its seals and its
    /// tree's right edge, read without replaying an entry.
    fn resume(&self, member: &Member, log: &Log) -> Result<Replica, FederationError> {
        let fail = |e: LogError| setup(format!("replica of {}: {e}", member.region()));
        let snapshot = log.state().map_err(fail)?;
        let head = Rows(&snapshot).head(snapshot.size()).map_err(fail)?;
        let seals = state::all_seals(&snapshot).map_err(fail)?;
        let frontier = log.frontier(head.size).map_err(fail)?;
        Replica::resume(member, &self.name, head, seals, frontier).map_err(|r| setup(r.to_string()))
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
            let mut records: Vec<_> = slot.replica.seals().collect();
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

    /// Stores `progress`'s entries and the state they establish in `region`'s replica file, in
    /// one transaction, and updates what derives from them. `entries` are the entries the
    /// progress applied, in order. The new size is published last, once the state and (when a
    /// seal changed) the trust store reflect the entries: whoever sees the size can verify what
    /// those entries made valid. If the write fails, the replica is resumed from its file, which
    /// the failed transaction left as it was.
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
        let ops = progress.deltas.iter().flat_map(state::ops_of).collect();
        let stored = slot
            .log
            .submit(entries, Vec::new(), ops)
            .and_then(|pending| pending.wait());
        if let Err(e) = stored {
            let member = slot.member.clone();
            slot.replica = self.resume(&member, &slot.log)?;
            return Err(setup(format!("replica of {region}: {e}")));
        }
        let seals_changed = progress
            .deltas
            .iter()
            .any(|d| d.writes.iter().any(|w| matches!(w, Write::Seal(_))));
        if seals_changed {
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
    fn verify(&self, bytes: &[u8], now: Time) -> Result<Verification, Refusal> {
        let trust = self
            .trust
            .read()
            .map(|t| t.clone())
            .map_err(|_| Refusal::internal("an internal lock was poisoned by a panic"))?;
        let status = self.replica_status(now)?;
        let verification = cert::verify(bytes, &trust, &status, now);
        status.failed()?;
        Ok(verification)
    }

    fn status(&self, now: Time) -> Result<Box<dyn PeerStatus>, Refusal> {
        Ok(Box::new(self.replica_status(now)?))
    }
}

impl Federation {
    fn replica_status(&self, now: Time) -> Result<ReplicaStatus, Refusal> {
        let logs = self
            .replica_logs
            .read()
            .map_err(|_| Refusal::internal("an internal lock was poisoned by a panic"))?
            .clone();
        Ok(ReplicaStatus {
            logs,
            now,
            error: std::sync::Mutex::new(None),
        })
    }
}

/// Other regions' certificate status, read from the replicas' durable state. As for the own
/// region's ([`crate::region::OwnStatus`]), a read that fails is kept and turned into a local
/// error by [`PeerStatus::failed`] before the verdict is used.
pub struct ReplicaStatus {
    logs: Arc<HashMap<RegionCode, Log>>,
    now: Time,
    error: std::sync::Mutex<Option<LogError>>,
}

impl ReplicaStatus {
    fn keep<T>(&self, read: Result<T, LogError>) -> Option<T> {
        match read {
            Ok(value) => Some(value),
            Err(e) => {
                if let Ok(mut error) = self.error.lock() {
                    error.get_or_insert(e);
                }
                None
            }
        }
    }

    /// The record of `id` in `region`'s replica: `None` when no replica of the region is held
    /// (status unknown) or a read failed; `Some(None)` when the replica does not hold it.
    fn record(&self, region: &RegionCode, id: &str) -> Option<Option<CertRecord>> {
        let log = self.logs.get(region)?;
        let id = Identifier::parse(id).ok()?;
        let snapshot = self.keep(log.state())?;
        self.keep(Rows(&snapshot).cert(&id))
    }
}

impl StatusSource for ReplicaStatus {
    fn view(&self, claims: &Claims, _: Time) -> StatusView {
        match self.record(&claims.region, claims.id.as_str()) {
            None => StatusView::Unknown,
            Some(Some(record)) if record.state != State::Valid => StatusView::Listed {
                state: record.state,
                since: Some(record.changed),
                note: status_note(&record),
                as_of: self.now,
            },
            Some(_) => StatusView::Valid { as_of: self.now },
        }
    }

    fn promise_fulfilled(&self, claims: &Claims, _: Time) -> bool {
        matches!(
            self.record(&claims.region, claims.id.as_str()),
            Some(Some(r)) if r.promise_fulfilled
        )
    }
}

impl PeerStatus for ReplicaStatus {
    fn transferred_out(&self, id: &Identifier) -> bool {
        self.logs.values().any(|log| {
            self.keep(log.state())
                .and_then(|snapshot| self.keep(Rows(&snapshot).cert(id)))
                .flatten()
                .is_some_and(|r| r.state == State::TransferredOut)
        })
    }

    fn failed(&self) -> Result<(), Refusal> {
        match self
            .error
            .lock()
            .map_err(|_| Refusal::internal("an internal lock was poisoned by a panic"))?
            .take()
        {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

pub(super) fn is_quiet(r: &Refused) -> bool {
    matches!(r.code, Reason::Stale | Reason::Gap)
}
