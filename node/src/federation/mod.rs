//! The federation (specs/federation.md): the node's membership, its libp2p swarm, a replica of
//! every other member's log, the witness, and the tasks that publish this region's log, catch up
//! on others' and gather cosignatures. Formats and rules are core's (`tongban_core::federation`);
//! this module moves bytes, stores them and schedules work.

pub mod check;
pub mod cli;
pub mod codec;
pub mod http;
mod replicas;
mod sharing;
pub mod status;
pub mod store;
pub mod swarm;
mod tasks;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};

use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;
use tongban_core::federation::Membership;
use tongban_core::ids::RegionCode;
use tongban_core::keys::{PublicKey, SecretKey};
use tongban_core::trust::{FederationRoot, TrustStore};
use tongban_core::values::ShortText;

use crate::config::P2pConfig;
use crate::home::Home;
use crate::keyfile;
use crate::metrics::{Metrics, RegionLabel};
use crate::receipts::Receipts;
use crate::region::Region;

pub use replicas::Slot;
pub use sharing::{AskedProof, Shared};
use store::Store;
use swarm::{Command, Inbound};

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("federation: {0}")]
    Setup(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

fn setup(detail: impl Into<String>) -> FederationError {
    FederationError::Setup(detail.into())
}

/// A member marked misbehaving, and why (specs/federation.md §6.4).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Misbehaviour {
    pub reason: String,
    /// The two checkpoint notes of equivocation evidence, when that is the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<(String, String)>,
}

impl Misbehaviour {
    /// A mark for a reason other than equivocation evidence.
    pub fn because(reason: impl Into<String>) -> Misbehaviour {
        Misbehaviour {
            reason: reason.into(),
            evidence: None,
        }
    }
}

/// Signed status of other regions, by kind and region, with its freshness.
type HeldStatus = HashMap<
    (status::StatusData, RegionCode),
    (tongban_core::trust::snapshot::Freshness, Arc<Vec<u8>>),
>;

pub struct Federation {
    pub name: String,
    region: Arc<Region>,
    /// The region's receipt batches, where proofs given to other regions are logged.
    receipts: Receipts,
    own: RegionCode,
    federation_key: PublicKey,
    root: SecretKey,
    witness: SecretKey,
    membership: RwLock<Arc<Membership>>,
    /// Node PeerId → the member's region.
    peers: RwLock<HashMap<PeerId, RegionCode>>,
    replicas: Mutex<HashMap<RegionCode, Slot>>,
    /// Other regions' seals (a bundle of the members' roots and every replicated seal).
    trust: RwLock<Arc<TrustStore>>,
    /// Set when a replica's seals changed: the trust store is rebuilt once the replicas are free.
    trust_dirty: AtomicBool,
    /// The replicas' files, for readers of other regions' status (copied on write: a replica
    /// opened replaces the map).
    replica_logs: RwLock<Arc<HashMap<RegionCode, crate::log::Log>>>,
    misbehaving: Mutex<BTreeMap<String, Misbehaviour>>,
    /// The latest status list and snapshot fetched of each other region, with their freshness.
    status_held: Mutex<HeldStatus>,
    /// The federation-wide bundle and its loaded store, with the two inputs it was built from
    /// (this region's bundle, the replicas' trust): rebuilt only when one of them changed.
    full: Mutex<Option<replicas::FullTrust>>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    /// Local commands to the swarm task: each comes from this node's own work, at most one per
    /// item of the bounded queues above (a validation, a response), so it needs no bound of its
    /// own.
    commands: mpsc::UnboundedSender<Command>,
    /// Gossip, requests and catch-up answers for the worker: bounded; what the network brings
    /// beyond it is refused at once and counted (tongban_federation_dropped_total).
    inbound: mpsc::Sender<Inbound>,
    /// Regions to catch up on now: bounded; a region asked for when the queue is full waits for
    /// the periodic round.
    catch_up: mpsc::Sender<RegionCode>,
    config: P2pConfig,
    home: Home,
    pub local: PeerId,
    /// The runtime, for work the worker thread starts; and the federation itself, for such work.
    runtime: tokio::runtime::Handle,
    this: OnceLock<Weak<Federation>>,
}

/// Regions waiting for an immediate catch-up (each region once is all it takes).
const CATCH_UP_QUEUE: usize = 256;

fn poisoned() -> FederationError {
    setup("an internal lock was poisoned by a panic")
}

/// Reads the configured membership and the stored versions, and returns the one to hold.
fn initial_membership(
    home: &Home,
    config: &P2pConfig,
    federation_name: &str,
    federation_key: &PublicKey,
    store: &Store,
) -> Result<Membership, FederationError> {
    let path = home.dir.join(&config.membership);
    let bytes = std::fs::read(&path).map_err(|e| setup(format!("{}: {e}", path.display())))?;
    let configured = Membership::open(&bytes, federation_key)
        .map_err(|r| setup(format!("{}: {r}", path.display())))?;
    if configured.name.as_str() != federation_name {
        return Err(setup(format!(
            "{} is the membership of federation {}, this node belongs to {federation_name}",
            path.display(),
            configured.name.as_str()
        )));
    }
    let stored = store
        .memberships()?
        .last()
        .map(|b| Membership::open(b, federation_key))
        .transpose()
        .map_err(|r| setup(format!("stored membership: {r}")))?;
    match stored {
        Some(held) if held.version >= configured.version => Ok(held),
        _ => {
            // The operator's file is trusted as a starting point (it opened under the pinned
            // federation root); later versions must extend it.
            store.add_membership(configured.version, configured.bytes())?;
            Ok(configured)
        }
    }
}

impl Federation {
    /// Joins the federation: checks the membership names this node, opens the replicas, starts
    /// the swarm, the worker and the background tasks. Must run inside the tokio runtime.
    pub fn start(
        home: &Home,
        region: Arc<Region>,
        receipts: Receipts,
        metrics: Arc<Metrics>,
        extra_bootstrap: &[String],
    ) -> Result<Arc<Federation>, FederationError> {
        let config = region
            .config
            .p2p
            .clone()
            .ok_or_else(|| setup("no [p2p] section in the configuration"))?;
        let federation_name = region.config.federation.name.clone();
        let federation_key = hex::decode(&region.config.federation.root_key)
            .ok()
            .and_then(|b| PublicKey::from_bytes(&b).ok())
            .ok_or_else(|| setup("federation.root_key is not an Ed25519 key"))?;
        let store = Store::open(region.storage(), home)?;
        let membership =
            initial_membership(home, &config, &federation_name, &federation_key, &store)?;
        let own = region.code().clone();
        let witness = keyfile::read(&home.witness_key()).map_err(|e| setup(e.to_string()))?;
        let root = keyfile::read(&home.region_root_key()).map_err(|e| setup(e.to_string()))?;
        let me = membership
            .member(&own)
            .ok_or_else(|| setup(format!("region {own} is not a member of the membership")))?;
        if me.node_key != *region.node_key.public() || me.witness_key != *witness.public() {
            return Err(setup(format!(
                "the membership lists other node or witness keys for {own} than keys/ holds"
            )));
        }
        let listen = parse_addresses(&config.listen)?;
        let mut dial = parse_addresses(&config.bootstrap)?;
        dial.extend(parse_addresses(extra_bootstrap)?);
        let (inbound, inbound_rx) = mpsc::channel(config.inbound_queue.max(1));
        let (catch_up, catch_up_rx) = mpsc::channel(CATCH_UP_QUEUE);
        let keypair = swarm::keypair(region.node_key.seed()).map_err(setup)?;
        let peers = peer_map(&membership)?;
        for (peer, region_code) in &peers {
            if let Some(member) = membership.member(region_code) {
                for address in parse_addresses(&member.addresses)? {
                    dial.push(address.with_p2p(*peer).unwrap_or_else(|a| a));
                }
            }
        }
        let started = swarm::start(
            keypair,
            &federation_name,
            &listen,
            dial,
            peers.keys().copied().collect(),
            inbound.clone(),
            metrics.clone(),
        )
        .map_err(setup)?;
        let misbehaving = store
            .misbehaving()?
            .into_iter()
            .filter_map(|(region, record)| {
                serde_json::from_slice::<Misbehaviour>(&record)
                    .ok()
                    .map(|m| (region, m))
            })
            .collect::<BTreeMap<_, _>>();
        for region_code in misbehaving.keys() {
            metrics
                .misbehaving
                .get_or_create(&RegionLabel {
                    region: region_code.clone(),
                })
                .set(1);
        }
        let trust = replicas::empty_trust(
            &membership,
            FederationRoot {
                name: ShortText::new(&federation_name).ok_or_else(|| setup("federation name"))?,
                key: federation_key.clone(),
            },
            &root,
        )?;
        let federation = Arc::new(Federation {
            name: federation_name,
            own,
            federation_key,
            root,
            witness,
            trust: RwLock::new(Arc::new(trust)),
            trust_dirty: AtomicBool::new(false),
            membership: RwLock::new(Arc::new(membership)),
            peers: RwLock::new(peers),
            replicas: Mutex::new(HashMap::new()),
            replica_logs: RwLock::new(Arc::new(HashMap::new())),
            misbehaving: Mutex::new(misbehaving),
            status_held: Mutex::new(HashMap::new()),
            full: Mutex::new(None),
            store: Arc::new(store),
            metrics,
            commands: started.commands,
            inbound,
            catch_up,
            config,
            home: home.clone(),
            local: started.local,
            region: region.clone(),
            receipts,
            runtime: tokio::runtime::Handle::current(),
            this: OnceLock::new(),
        });
        let _ = federation.this.set(Arc::downgrade(&federation));
        federation.open_replicas()?;
        worker::spawn(federation.clone(), inbound_rx)?;
        tasks::spawn(federation.clone(), catch_up_rx);
        region.attach_peers(federation.clone());
        tracing::info!(peer = %federation.local, federation = %federation.name, "joined the federation");
        Ok(federation)
    }

    pub fn membership(&self) -> Arc<Membership> {
        self.membership
            .read()
            .map(|m| m.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn replicas(&self) -> Result<MutexGuard<'_, HashMap<RegionCode, Slot>>, FederationError> {
        self.replicas.lock().map_err(|_| poisoned())
    }

    fn region_of(&self, peer: &PeerId) -> Option<RegionCode> {
        self.peers.read().ok()?.get(peer).cloned()
    }

    fn peer_of(&self, region: &RegionCode) -> Option<PeerId> {
        self.peers
            .read()
            .ok()?
            .iter()
            .find(|(_, r)| *r == region)
            .map(|(p, _)| *p)
    }

    pub fn is_misbehaving(&self, region: &str) -> bool {
        self.misbehaving
            .lock()
            .map(|m| m.contains_key(region))
            .unwrap_or(true)
    }

    pub fn misbehaviours(&self) -> BTreeMap<String, Misbehaviour> {
        self.misbehaving
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Counts an item dropped from a full queue (`queue`: gossip, request, catch-up).
    pub(super) fn dropped(&self, queue: &str) {
        self.metrics
            .federation_dropped
            .get_or_create(&crate::metrics::ReasonLabel {
                reason: queue.to_owned(),
            })
            .inc();
    }

    /// Asks for `region` to be caught up on now; when the queue is full, the periodic round
    /// will.
    fn want_catch_up(&self, region: RegionCode) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.catch_up.try_send(region) {
            self.dropped("catch-up");
        }
    }

    /// Marks `region` misbehaving, durably; returns whether it was new.
    fn mark_misbehaving(&self, region: &str, record: Misbehaviour) -> bool {
        let Ok(mut marks) = self.misbehaving.lock() else {
            return false;
        };
        if marks.contains_key(region) {
            return false;
        }
        tracing::error!(region, reason = %record.reason, "member marked misbehaving");
        match serde_json::to_vec(&record) {
            Ok(bytes) => {
                if let Err(e) = self.store.mark_misbehaving(region, &bytes) {
                    tracing::error!(error = %e, "storing the misbehaviour");
                }
            }
            Err(e) => tracing::error!(error = %e, "encoding the misbehaviour"),
        }
        self.metrics
            .misbehaving
            .get_or_create(&RegionLabel {
                region: region.to_owned(),
            })
            .set(1);
        marks.insert(region.to_owned(), record);
        true
    }

    pub fn home_dir(&self) -> &Path {
        &self.home.dir
    }
}

fn parse_addresses(texts: &[String]) -> Result<Vec<Multiaddr>, FederationError> {
    texts
        .iter()
        .map(|t| {
            t.parse::<Multiaddr>()
                .map_err(|e| setup(format!("address {t:?}: {e}")))
        })
        .collect()
}

/// Every member's node PeerId and region.
fn peer_map(membership: &Membership) -> Result<HashMap<PeerId, RegionCode>, FederationError> {
    membership
        .members
        .iter()
        .map(|m| {
            swarm::peer_id(m.node_key.as_bytes())
                .map(|p| (p, m.region().clone()))
                .map_err(setup)
        })
        .collect()
}
