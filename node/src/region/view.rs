//! What readers, verifiers and the region root's signatures see: the region's state **as of its
//! durable log**. The sequencer applies an act to its state when it submits the entry, so that the
//! next act is checked against it; the view takes the act only once the log has committed it
//! ([`Published::publish`], in log order), so nothing the node signs from the view (a status
//! snapshot, a trust bundle) or answers from it runs ahead of what a crash would leave.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use tongban_core::ids::{Identifier, RegionCode};
use tongban_core::keys::SecretKey;
use tongban_core::log::entry::Act;
use tongban_core::log::state::{Applied, CertRecord, RegionState};
use tongban_core::status::Succession;
use tongban_core::trust::{
    BundleContents, FederationRoot, SealInfo, StatusEntry, StatusTable, TrustStore,
};
use tongban_core::values::{ShortText, Time};

use super::{lock_failed, now};
use crate::refusal::Refusal;

/// How long a trust bundle the node publishes stays valid.
const BUNDLE_VALIDITY: u64 = 7 * 24 * 3600;

/// One seal as logged: its description, its signed object, and its revocation if any.
#[derive(Clone, Debug)]
pub struct LoggedSeal {
    pub info: SealInfo,
    pub signed: Vec<u8>,
    pub revoked_from: Option<Time>,
    pub revocation: Option<Vec<u8>>,
}

/// The region's seals as its log holds them, by key id: what its trust bundle is made of.
#[derive(Clone, Debug, Default)]
pub struct Seals(pub Vec<LoggedSeal>);

impl Seals {
    pub fn of(state: &RegionState) -> Seals {
        let mut seals: Vec<LoggedSeal> = state
            .seals()
            .map(|s| LoggedSeal {
                info: s.info.clone(),
                signed: s.signed.clone(),
                revoked_from: s.revoked_from,
                revocation: s.revocation.clone(),
            })
            .collect();
        seals.sort_by_key(|s| s.info.key.kid());
        Seals(seals)
    }

    pub fn signed(&self) -> Vec<Vec<u8>> {
        self.0.iter().map(|s| s.signed.clone()).collect()
    }

    pub fn revocations(&self) -> Vec<Vec<u8>> {
        self.0.iter().filter_map(|s| s.revocation.clone()).collect()
    }
}

/// What readers and verifiers see.
pub struct View {
    pub trust: Arc<TrustStore>,
    pub bundle: Arc<Vec<u8>>,
    pub status: StatusTable,
    pub certs: HashMap<Identifier, CertRecord>,
    /// Other regions' certificates this region took in (transfer in, op 08): they are no longer
    /// valid anywhere, whatever this node's replica of their region says yet.
    pub transferred_in: HashSet<String>,
    pub seals: Arc<Seals>,
    /// Entries of the log the view reflects: every durable one.
    pub size: u64,
}

/// What the region root signs a trust bundle with, and what it certifies.
pub struct Signer<'a> {
    pub federation: &'a FederationRoot,
    pub region_cert: &'a [u8],
    pub root: &'a SecretKey,
}

impl View {
    /// The view of `state`, all of it durable (a node's start).
    pub fn of(
        code: &RegionCode,
        state: &RegionState,
        signer: &Signer<'_>,
    ) -> Result<View, Refusal> {
        let seals = Arc::new(Seals::of(state));
        let (bundle, trust) = trust_of(&seals, state.size(), signer)?;
        let mut view = View {
            trust: Arc::new(trust),
            bundle: Arc::new(bundle),
            status: StatusTable::default(),
            certs: HashMap::new(),
            transferred_in: state
                .transfers_in()
                .iter()
                .map(|(_, _, predecessor)| predecessor.clone())
                .collect(),
            seals,
            size: state.size(),
        };
        for (id, record) in state.certs() {
            view.record(code, id, record);
        }
        Ok(view)
    }

    fn record(&mut self, code: &RegionCode, id: &Identifier, record: &CertRecord) {
        record_status(&mut self.status, code, id, record);
        self.certs.insert(id.clone(), record.clone());
    }
}

/// What an applied entry changes in the view, taken from the state right after it.
pub enum Change {
    Certs {
        records: Vec<(Identifier, CertRecord)>,
        transferred_in: Option<String>,
    },
    Seals(Arc<Seals>),
    Nothing,
}

impl Change {
    pub fn of(state: &RegionState, applied: &Applied) -> Change {
        let records = |ids: &mut dyn Iterator<Item = &Identifier>| {
            ids.filter_map(|id| state.cert(id.as_str()).map(|r| (id.clone(), r.clone())))
                .collect()
        };
        match &applied.entry.act {
            Act::SealRegistered { .. } | Act::SealRevoked { .. } => {
                Change::Seals(Arc::new(Seals::of(state)))
            }
            Act::CertIssued {
                id,
                predecessor,
                operation,
                ..
            } => Change::Certs {
                records: records(&mut std::iter::once(id).chain(predecessor.iter())),
                transferred_in: predecessor
                    .as_ref()
                    .filter(|_| *operation == Succession::TransferIn.code())
                    .map(|p| p.as_str().to_owned()),
            },
            Act::StatusChanged { id, .. } | Act::PromiseFulfilled { id } => Change::Certs {
                records: records(&mut std::iter::once(id)),
                transferred_in: None,
            },
            // Facts about other parties' objects, committed by digest: nothing in the view.
            Act::Receipts { .. }
            | Act::ShareAnswered { .. }
            | Act::ShareReceived { .. }
            | Act::ProofReceived { .. } => Change::Nothing,
        }
    }
}

/// Changes submitted to the log and not yet in the view, in log order.
#[derive(Default)]
pub struct Published {
    queue: Mutex<VecDeque<(u64, Change)>>,
}

impl Published {
    /// Queues the change of the entry at `index` (called in log order, under the sequencer).
    pub fn push(&self, index: u64, change: Change) -> Result<(), Refusal> {
        self.queue
            .lock()
            .map_err(|_| lock_failed())?
            .push_back((index, change));
        Ok(())
    }

    /// Takes every queued change of an entry below `durable` (the log committed them) into the
    /// view, in order; a trust bundle is signed only here, over seals the log holds.
    pub fn publish(
        &self,
        durable: u64,
        view: &RwLock<View>,
        code: &RegionCode,
        signer: &Signer<'_>,
    ) -> Result<(), Refusal> {
        let mut queue = self.queue.lock().map_err(|_| lock_failed())?;
        if queue.front().is_none_or(|(index, _)| *index >= durable) {
            return Ok(());
        }
        let mut view = view.write().map_err(|_| lock_failed())?;
        while let Some((index, _)) = queue.front()
            && *index < durable
        {
            let Some((index, change)) = queue.pop_front() else {
                break;
            };
            match change {
                Change::Certs {
                    records,
                    transferred_in,
                } => {
                    if let Some(predecessor) = transferred_in {
                        view.transferred_in.insert(predecessor);
                    }
                    for (id, record) in &records {
                        view.record(code, id, record);
                    }
                }
                Change::Seals(seals) => {
                    let (bundle, trust) = trust_of(&seals, index + 1, signer)?;
                    view.trust = Arc::new(trust);
                    view.bundle = Arc::new(bundle);
                    view.seals = seals;
                }
                Change::Nothing => {}
            }
            view.size = index + 1;
        }
        Ok(())
    }
}

/// The region's trust bundle over `seals` (version: the log size they are as of), signed by the
/// region root, and its trust store.
pub fn trust_of(
    seals: &Seals,
    version: u64,
    signer: &Signer<'_>,
) -> Result<(Vec<u8>, TrustStore), Refusal> {
    let now = now()?;
    let expires = Time::new(now.seconds() + BUNDLE_VALIDITY)
        .ok_or_else(|| Refusal::internal("bundle expiry beyond the time range"))?;
    let bundle = BundleContents {
        version,
        issued: now,
        expires,
        federation: signer.federation.clone(),
        regions: vec![signer.region_cert.to_vec()],
        seals: seals.signed(),
        revocations: seals.revocations(),
    }
    .sign(signer.root)
    .map_err(|e| Refusal::internal(e.to_string()))?;
    let trust = TrustStore::load(&bundle, now, Some(signer.federation.key.kid())).map_err(|f| {
        Refusal::internal(format!("the node's own trust bundle does not load: {f}"))
    })?;
    Ok((bundle, trust))
}

/// A certificate's snapshot note: the reason, for state 99 only (trust.md §6).
pub fn status_note(record: &CertRecord) -> Option<ShortText> {
    match record.state {
        tongban_core::status::State::Other => {
            record.reason.clone().or_else(|| ShortText::new("other"))
        }
        _ => None,
    }
}

pub(crate) fn record_status(
    table: &mut StatusTable,
    region: &RegionCode,
    id: &Identifier,
    record: &CertRecord,
) {
    table.record(
        region,
        StatusEntry {
            id: id.clone(),
            state: record.state,
            since: record.changed,
            note: status_note(record),
        },
        record.changed,
    );
    if record.promise_fulfilled {
        table.record_fulfilled(region, id.as_str(), record.changed);
    }
}
