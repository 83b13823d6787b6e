//! The region node's service: every act (seal registered or revoked, certificate issued, status
//! changed, promise fulfilled or lapsed, receipts) is checked against the state the log
//! establishes, signed by the acting key, applied and submitted to the log under one lock, and
//! acknowledged only once durable. Verification reads a view kept beside that state.
//!
//! The state is what the log establishes under core's [`Rules`], the same rules an auditor runs;
//! it lives on disk beside the log (`state.rs`), written in the same transaction as the entries
//! that change it, so a start opens it instead of replaying the log. The sequencer checks each
//! act against the durable state plus the acts it submitted that are not durable yet (its
//! overlay). An act's effect reaches readers, verifiers and the root's signatures only once its
//! entry is durable (they read the durable state, `view.rs`). Should the log fail to commit an
//! act already applied, the sequencer would be ahead of the log: the node then refuses every
//! further write until it is restarted, while everything read or signed stays with the durable
//! log.
//!
//! The service is a sequencer and small services over that one state store, each an `impl
//! Region` of its own: `sequencer.rs` (the lock, submission, durability), `seals.rs` (the
//! operator's seals), `issuance.rs`, `status_acts.rs` (status operations, promises, the
//! snapshot), `share.rs` (copies and transfers between regions), `verification.rs` (own and
//! other regions' certificates, receipts) and `status_list.rs`. Only the sequencer writes; the
//! services go through it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};

use tongban_core::ids::{Identifier, RegionCode};
use tongban_core::keys::{KeyId, PublicKey, SecretKey};
use tongban_core::log::overlay::Overlay;
use tongban_core::log::state::{CertRecord, SealRecord};
use tongban_core::trust::FederationRoot;
use tongban_core::values::Time;

use crate::checkpoints::CheckpointSigner;
use crate::credentials::Credentials;
use crate::entry_index::EntryIndexer;
use crate::home::{Home, HomeError, Loaded, load};
use crate::log::{Log, LogConfig, Pending};
use crate::refusal::{Kind, Refusal};
use crate::storage::{LogName, Storage};

mod fill;
mod issuance;
mod presentation;
mod read_ahead;
mod rebuild;
mod report;
pub mod request_marker;
mod seals;
mod sequencer;
mod share;
pub mod state;
mod status_acts;
mod status_list;
mod verification;
mod view;

pub use fill::Filled;
use issuance::PreparedIssuance;
pub use issuance::{CertificateSpec, IssuedCertificate, Lineage, check_owner};
pub use rebuild::{Check, RebuildError, check, check_home};
pub use seals::{Rotated, Rotation, SealSpec};
use seals::{refuse_revoked, seal_keys};
use sequencer::{Sequencer, Staged};
pub use status_list::TTL as STATUS_LIST_TTL;
pub use verification::{PeerStatus, PeerVerifier};

/// Brings the state in `log`'s file up to its `size` entries of `region` (whose root key is
/// `root`), replaying what it does not reflect yet: a log written by a build without state.
pub fn rebuild_state(
    log: &Log,
    region: &RegionCode,
    root: &PublicKey,
    size: u64,
) -> Result<(), RebuildError> {
    rebuild::catch_up(log, log, region, root, size)
}
pub use presentation::{MadePresentation, PresentationAsk};
pub use share::{EvidencePolicy, PreparedTransfer, ShareAnswer, ShareAsk, TrustElements};
pub use view::{LoggedSeal, OwnStatus, Seals, View, status_note};
use view::{Published, Signer};

/// The reason recorded when a promise lapses (specs/status.md §4).
pub use tongban_core::status::PROMISE_LAPSED;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    #[error("the log does not replay at entry {index}: {detail}")]
    Replay { index: u64, detail: String },
    #[error("{0}")]
    Setup(String),
}

/// Seconds since the Unix epoch, now.
pub fn now() -> Result<Time, Refusal> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| Time::new(d.as_secs()))
        .ok_or_else(|| Refusal::internal("the system clock is outside the supported range"))
}

/// Signed seals and signed seal revocations, as logged.
pub type SignedSeals = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// A submitted receipts entry: its bytes, its index, and the durability to wait for.
pub type SubmittedReceipts = (Vec<u8>, u64, Pending<std::ops::Range<u64>>);

pub struct Region {
    code: RegionCode,
    origin: String,
    log: Log,
    signer: CheckpointSigner,
    root: SecretKey,
    federation: FederationRoot,
    region_cert: Vec<u8>,
    seal_dir: PathBuf,
    seq: Mutex<Sequencer>,
    /// Rows read for acts before they take the sequencer lock (read_ahead.rs).
    ahead: Arc<read_ahead::ReadsAhead>,
    view: RwLock<View>,
    /// Changes of entries submitted and not yet durable: the view takes them once they are.
    published: Published,
    poisoned: AtomicBool,
    pub credentials: Credentials,
    pub config: crate::config::Config,
    pub node_key: SecretKey,
    /// Woken whenever entries became durable: the federation publishes them then.
    pub appended: tokio::sync::Notify,
    peers: OnceLock<Arc<dyn PeerVerifier>>,
    /// The status list index the next certificate gets: one past the highest any holds, counted
    /// on from there (an issuance refused after taking one leaves a gap, read as valid).
    next_status_index: AtomicU64,
    /// The status list last made (status_list.rs).
    status_list: Mutex<Option<status_list::MadeList>>,
    /// The current month's figures and the log size they were counted at (report.rs).
    month_report: Mutex<Option<report::Counted>>,
    storage: Storage,
    role: Role,
}

/// What a process does with its region's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Writes it: the one process that acts.
    Sequencer,
    /// Reads what the sequencer writes (a standby, PostgreSQL only).
    Reader,
}

/// Rows the sequencer read: ahead of its lock, and under it (read_ahead.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequencerReads {
    pub ahead: u64,
    pub under_lock: u64,
}

fn lock_failed() -> Refusal {
    Refusal::internal("an internal lock was poisoned by a panic")
}

impl Region {
    /// Opens the node in `home`: reads its keys, replays its log into the state, loads the keys of
    /// its seals.
    pub fn open(home: &Home) -> Result<Region, OpenError> {
        let config = load(home)?.config;
        Region::open_in(home, Storage::open(home, &config.storage)?)
    }

    /// [`Region::open`] with the node's storage opened already (a standby that waited for the
    /// log opens the region in the database it waited on).
    pub fn open_in(home: &Home, storage: Storage) -> Result<Region, OpenError> {
        Region::open_as(home, storage, Role::Sequencer)
    }

    /// The region of a standby, which reads what another process of the node writes
    /// (PostgreSQL): it serves reads and verification from the database, its view following the
    /// log ([`Region::follow`]), and refuses every act with `NOT_SEQUENCER`.
    pub fn open_reader(home: &Home, storage: Storage) -> Result<Region, OpenError> {
        Region::open_as(home, storage, Role::Reader)
    }

    fn open_as(home: &Home, storage: Storage, role: Role) -> Result<Region, OpenError> {
        let Loaded {
            config,
            region,
            federation_name,
            federation_key,
            region_root,
            region_cert,
            log_key,
            node_key,
        } = load(home)?;
        let origin = format!(
            "{}/{}/log/{}",
            config.federation.name, config.region, config.log.generation
        );
        let signer = CheckpointSigner::new(&origin, log_key)
            .map_err(|e| OpenError::Setup(format!("log origin {origin:?}: {e}")))?;
        let log_config = LogConfig {
            max_batch: config.log.max_batch,
            cache_bytes: config.log.cache_mib.saturating_mul(1 << 20),
            suite: region_root.public().suite(),
            ..LogConfig::default()
        };
        let log = match role {
            Role::Sequencer => {
                storage.open_log(&LogName::Region, log_config, Arc::new(EntryIndexer))?
            }
            Role::Reader => {
                storage.open_log_reader(&LogName::Region, log_config, Arc::new(EntryIndexer))?
            }
        };
        let size = log.size()?;
        if role == Role::Reader && log.state_size()? != size {
            return Err(OpenError::Setup(
                "the log's state is behind its entries: its sequencer brings it up to date, a \
                 standby only reads"
                    .into(),
            ));
        }
        // The state is on disk, in step with the log; only a log written by an older build
        // (without state) is replayed, once.
        rebuild::catch_up(&log, &log, &region, region_root.public(), size).map_err(
            |e| match e {
                rebuild::RebuildError::Refused { index, rejection } => OpenError::Replay {
                    index,
                    detail: rejection.to_string(),
                },
                rebuild::RebuildError::Log(e) => OpenError::Log(e),
                rebuild::RebuildError::Home(e) => OpenError::Home(e),
            },
        )?;
        let snapshot = log.state()?;
        let next_status_index = state::status_list_length(&snapshot)?;
        let seals: HashMap<KeyId, SealRecord> = state::all_seals(&snapshot)?
            .into_iter()
            .map(|s| (s.info.key.kid(), s))
            .collect();
        let ahead = Arc::new(read_ahead::ReadsAhead::new(snapshot.size()));
        let mut seq = Sequencer {
            region: region.clone(),
            root: region_root.public().clone(),
            head: state::Rows(&snapshot).head(snapshot.size())?,
            seals,
            overlay: Overlay::default(),
            seal_keys: HashMap::new(),
            epoch: log.epoch(),
            ahead: ahead.clone(),
        };
        drop(snapshot);
        seq.seal_keys = seal_keys(&home.seal_keys(), &seq.seals, role)?;
        let credentials = Credentials::open(&home.credentials(), &storage)
            .map_err(|e| OpenError::Setup(e.to_string()))?;
        let federation = FederationRoot {
            name: federation_name,
            key: federation_key,
        };
        let view = View::of(
            &seq.seals,
            size,
            &Signer {
                federation: &federation,
                region_cert: &region_cert,
                root: &region_root,
            },
        )
        .map_err(|r| OpenError::Setup(r.to_string()))?;
        let region = Region {
            code: region,
            origin,
            log,
            signer,
            root: region_root,
            federation,
            region_cert,
            seal_dir: home.seal_keys(),
            seq: Mutex::new(seq),
            ahead,
            view: RwLock::new(view),
            published: Published::default(),
            poisoned: AtomicBool::new(false),
            credentials,
            config,
            node_key,
            appended: tokio::sync::Notify::new(),
            peers: OnceLock::new(),
            next_status_index: AtomicU64::new(next_status_index),
            status_list: Mutex::new(None),
            month_report: Mutex::new(None),
            storage,
            role,
        };
        tracing::info!(region = %region.code, entries = size, origin = %region.origin, "region state opened");
        Ok(region)
    }

    pub fn code(&self) -> &RegionCode {
        &self.code
    }

    /// Where the node's logs are kept (the federation opens its replicas there).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    /// How many state rows the sequencer has read since start, ahead of its lock and under it.
    pub fn sequencer_reads(&self) -> SequencerReads {
        use std::sync::atomic::Ordering::Relaxed;
        SequencerReads {
            ahead: self.ahead.counts.ahead.load(Relaxed),
            under_lock: self.ahead.counts.under_lock.load(Relaxed),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The federation's suite: this region root's (specs/encoding.md §2.3).
    pub fn suite(&self) -> tongban_core::suite::Suite {
        self.root.suite()
    }

    pub fn log_vkey(&self) -> Result<String, Refusal> {
        self.signer
            .vkey()
            .map_err(|e| Refusal::internal(e.to_string()))
    }

    pub fn view(&self) -> Result<RwLockReadGuard<'_, View>, Refusal> {
        self.view.read().map_err(|_| lock_failed())
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// A reader's view follows what the sequencer made durable: the seals (and the trust
    /// bundle signed over them) as the log now holds them, and the agencies' credentials.
    /// Returns whether the log had grown. (The sequencer's own view moves as its entries become
    /// durable; it never needs this.)
    pub fn follow(&self) -> Result<bool, Refusal> {
        // Agencies are registered without a log entry: read again each time.
        self.credentials
            .reload()
            .map_err(|e| Refusal::internal(e.to_string()))?;
        let snapshot = self.log.state()?;
        let size = snapshot.size();
        if size <= self.view()?.size {
            return Ok(false);
        }
        let seals: HashMap<KeyId, SealRecord> = state::all_seals(&snapshot)?
            .into_iter()
            .map(|s| (s.info.key.kid(), s))
            .collect();
        drop(snapshot);
        let view = View::of(&seals, size, &self.signer())?;
        *self.view.write().map_err(|_| lock_failed())? = view;
        Ok(true)
    }

    /// A certificate of this region as its durable log establishes it.
    pub fn certificate(&self, id: &Identifier) -> Result<CertRecord, Refusal> {
        self.own_status()?
            .record(id)?
            .ok_or_else(|| Refusal::not_found(id.as_str()))
    }

    /// The stored certificate bytes (every disclosure attached).
    pub fn certificate_bytes(&self, record: &CertRecord) -> Result<Vec<u8>, Refusal> {
        self.log
            .blob(record.issued_at_index, &record.digest)?
            .ok_or_else(|| Refusal::internal("the certificate's bytes are missing from the store"))
    }

    /// Signs a checkpoint when the log has grown since the last one (or none exists).
    pub fn checkpoint(&self) -> Result<Option<String>, Refusal> {
        self.signer
            .sign_if_grown(&self.log)
            .map_err(|e| Refusal::new(Kind::Unavailable, "CHECKPOINT_REFUSED", e.to_string()))
    }

    /// Lets the federation verify other regions' certificates for this node.
    pub fn attach_peers(&self, peers: Arc<dyn PeerVerifier>) {
        if self.peers.set(peers).is_err() {
            tracing::warn!("a peer verifier was already attached");
        }
    }
}
