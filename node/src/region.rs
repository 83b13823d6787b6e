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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard};
use tongban_core::cert::Claims;

use tongban_core::cert::verify::StatusSource;
use tongban_core::cert::{self, Draft, Holder, Predecessor, TrustLevel, Verification};
use tongban_core::cert::{FieldName, FieldValue};
use tongban_core::codes::Code;
use tongban_core::envelope::{Envelope, Kind as EnvelopeKind};
use tongban_core::ids::{Identifier, IssuerCode, RegionCode, TypeCode};
use tongban_core::keys::{KeyId, PublicKey, SecretKey};
use tongban_core::log::entry::{Act, LogEntry};
use tongban_core::log::overlay::{Layered, Overlay};
use tongban_core::log::state::{
    ApplyError, CertRecord, Delta, Head, Rules, SealRecord, StateRead, own_signature,
};
use tongban_core::status::{self, Operation, State, Succession, Termination};
use tongban_core::trust::{
    FederationRoot, MediaType, Picture, SealId, SealInfo, SealRevocation, SealType, StatusEntry,
    StatusSnapshot,
};
use tongban_core::values::{ShortText, Time};

use crate::checkpoints::CheckpointSigner;
use crate::credentials::Credentials;
use crate::entry_index::EntryIndexer;
use crate::home::{Home, HomeError, Loaded, load};
use crate::keyfile::{self, random};
use crate::log::{Blob, Log, LogConfig, LogError, Pending, StateSnapshot};
use crate::refusal::{Kind, Refusal};

mod fill;
mod rebuild;
mod share;
pub mod state;
mod status_list;
mod view;

pub use fill::Filled;
pub use rebuild::{Check, RebuildError, check, check_home};
pub use status_list::TTL as STATUS_LIST_TTL;

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
pub use share::{EvidencePolicy, PreparedTransfer, ShareAnswer, ShareAsk, TrustElements};
pub use view::{LoggedSeal, OwnStatus, Seals, View, status_note};
use view::{Published, Signer};

/// Promises lapsed per run of the lapse job, so that one run never holds a list of a whole
/// region's promises.
const LAPSE_BATCH: usize = 10_000;

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

/// The seal's description and key, the new identifier and its predecessor.
type IssuancePlan = (SealInfo, Arc<SecretKey>, Identifier, Option<Predecessor>);

/// Signed seals and signed seal revocations, as logged.
pub type SignedSeals = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// A submitted receipts entry: its bytes, its index, and the durability to wait for.
pub type SubmittedReceipts = (Vec<u8>, u64, Pending<std::ops::Range<u64>>);

/// What the log's writes need, kept under one lock so acts enter the log in the order they were
/// checked.
struct Sequencer {
    region: RegionCode,
    root: PublicKey,
    /// The log as the sequencer has it: every entry submitted, durable or not.
    head: Head,
    /// Every seal registered (a bounded set: one per agency's stamp), with what is in flight.
    seals: HashMap<KeyId, SealRecord>,
    /// What entries submitted and not durable yet changed.
    overlay: Overlay,
    seal_keys: HashMap<KeyId, Arc<SecretKey>>,
}

/// An entry checked and applied by the sequencer, not yet submitted to the log.
struct Staged {
    bytes: Vec<u8>,
    delta: Delta,
}

impl Sequencer {
    /// A snapshot of the durable state, and the overlay trimmed to what it does not hold. The
    /// snapshot is opened under the sequencer lock, after every commit the overlay was trimmed
    /// for: whatever the overlay no longer holds, the snapshot does.
    fn snapshot(&mut self, log: &Log) -> Result<StateSnapshot, Refusal> {
        let snapshot = log.state()?;
        self.overlay.settle(snapshot.size());
        Ok(snapshot)
    }

    fn layered<'a>(
        &'a self,
        rows: &'a state::Rows<'a, StateSnapshot>,
    ) -> Layered<'a, state::Rows<'a, StateSnapshot>> {
        Layered {
            seals: &self.seals,
            overlay: &self.overlay,
            store: rows,
        }
    }

    /// Reads the state as the sequencer has it (in flight, else durable).
    fn read<T>(
        &mut self,
        log: &Log,
        f: impl FnOnce(&Layered<'_, state::Rows<'_, StateSnapshot>>) -> Result<T, LogError>,
    ) -> Result<T, Refusal> {
        let snapshot = self.snapshot(log)?;
        let rows = state::Rows(&snapshot);
        Ok(f(&self.layered(&rows))?)
    }

    fn cert(&mut self, log: &Log, id: &Identifier) -> Result<Option<CertRecord>, Refusal> {
        self.read(log, |state| state.cert(id))
    }

    /// Checks an entry its caller has just signed with `signer` against the rules and applies
    /// it: every later act is checked against it.
    fn apply_own(
        &mut self,
        log: &Log,
        bytes: Vec<u8>,
        signer: &PublicKey,
    ) -> Result<Staged, Refusal> {
        let snapshot = self.snapshot(log)?;
        let rows = state::Rows(&snapshot);
        let rules = Rules {
            region: &self.region,
            root: &self.root,
        };
        let checked = rules.check(self.head, &self.layered(&rows), &bytes, |_, key| {
            own_signature(key, signer)
        });
        let (_, (), delta) = checked.map_err(|e| match e {
            ApplyError::Rejected(rejection) => Refusal::from(rejection),
            ApplyError::Store(e) => Refusal::from(e),
        })?;
        self.overlay.take(self.head.size, &delta, &mut self.seals);
        self.head = delta.head;
        Ok(Staged { bytes, delta })
    }
}

/// A new certificate's content, checked by the API layer.
#[derive(Clone, Debug)]
pub struct CertificateSpec {
    pub seal: KeyId,
    pub type_name: ShortText,
    pub valid_from: Option<Time>,
    pub valid_until: Option<Time>,
    pub level: TrustLevel,
    pub promise_deadline: Option<Time>,
    pub holder: Holder,
    pub licence: Vec<(FieldName, FieldValue)>,
    pub decoys: usize,
}

/// Which identifier a new certificate gets.
#[derive(Clone, Debug)]
pub enum Lineage {
    /// A first version: `<type>.<agency USCC>.<serial>.001`.
    New { type_code: TypeCode, serial: String },
    /// The next version of `of` (renewal or change).
    Successor { of: Identifier, how: Succession },
    /// The successor of `of`, another region's certificate transferred out to this one
    /// (specs/sharing.md §5.2): `<of's type>.<agency USCC>.<serial>.001`.
    TransferIn { of: Identifier, serial: String },
}

/// A certificate built and signed, and its signed `cert.issued` entry, not yet logged.
struct PreparedIssuance {
    id: Identifier,
    digest: [u8; 32],
    bytes: Vec<u8>,
    seal: KeyId,
    key: Arc<SecretKey>,
    entry: Vec<u8>,
}

/// An issued certificate as the API returns it.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    pub id: Identifier,
    pub digest: [u8; 32],
    pub bytes: Vec<u8>,
    pub log_index: u64,
}

/// A seal rotation, as the operator asks for it.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// The seal to replace.
    pub old: KeyId,
    /// The new seal's id (unique in the region, as every seal's).
    pub id: SealId,
    /// The new seal's validity; absent: from now, until the old seal's end.
    pub valid_from: Option<Time>,
    pub valid_until: Option<Time>,
    /// From when the old seal is revoked; absent: the second after the rotation.
    pub revoke_from: Option<Time>,
    pub reason: ShortText,
}

/// What a rotation logged.
#[derive(Clone, Debug)]
pub struct Rotated {
    pub seal: SealInfo,
    pub registered_at: u64,
    pub revoked_from: Time,
    pub revoked_at: u64,
}

/// A new seal, as the operator asks for it.
#[derive(Clone, Debug)]
pub struct SealSpec {
    pub agency: tongban_core::ids::Uscc,
    pub agency_name: ShortText,
    pub id: SealId,
    pub seal_type: SealType,
    pub name: ShortText,
    pub valid_from: Option<Time>,
    pub valid_until: Time,
    pub picture: Vec<u8>,
    pub media_type: MediaType,
    /// The sharing scope (specs/trust.md §3 `"ct"`), sorted and unique; empty: none.
    pub share_types: Vec<TypeCode>,
}

/// Verifies certificates of other regions from what the federation replicated
/// (specs/federation.md §5).
pub trait PeerVerifier: Send + Sync {
    fn verify(&self, bytes: &[u8], now: Time) -> Result<Verification, Refusal>;
    /// Other regions' certificate status, as replicated, read as of `now`.
    fn status(&self, now: Time) -> Result<Box<dyn PeerStatus>, Refusal>;
}

/// Other regions' certificate status as a node holds it (its replicas), for core's verifier,
/// and what transfers need of it.
pub trait PeerStatus: StatusSource {
    /// Whether another region's log holds `id` as transferred out.
    fn transferred_out(&self, id: &Identifier) -> bool;
    /// A read that failed while core asked (and was answered as unknown): a local error.
    fn failed(&self) -> Result<(), Refusal>;
}

/// The status of a node that replicates no other region.
pub(crate) struct NoPeers;

impl StatusSource for NoPeers {
    fn view(&self, _: &Claims, _: Time) -> tongban_core::cert::verify::StatusView {
        tongban_core::cert::verify::StatusView::Unknown
    }

    fn promise_fulfilled(&self, _: &Claims, _: Time) -> bool {
        false
    }
}

impl PeerStatus for NoPeers {
    fn transferred_out(&self, _: &Identifier) -> bool {
        false
    }

    fn failed(&self) -> Result<(), Refusal> {
        Ok(())
    }
}

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
}

fn lock_failed() -> Refusal {
    Refusal::internal("an internal lock was poisoned by a panic")
}

impl Region {
    /// Opens the node in `home`: reads its keys, replays its log into the state, loads the keys of
    /// its seals.
    pub fn open(home: &Home) -> Result<Region, OpenError> {
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
        let log = Log::open(
            &home.log(),
            LogConfig {
                max_batch: config.log.max_batch,
                cache_bytes: config.log.cache_mib.saturating_mul(1 << 20),
                ..LogConfig::default()
            },
            Arc::new(EntryIndexer),
        )?;
        let size = log.size()?;
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
        let mut seq = Sequencer {
            region: region.clone(),
            root: region_root.public().clone(),
            head: state::Rows(&snapshot).head(snapshot.size())?,
            seals,
            overlay: Overlay::default(),
            seal_keys: HashMap::new(),
        };
        drop(snapshot);
        seq.seal_keys = seal_keys(&home.seal_keys(), &seq.seals)?;
        let credentials =
            Credentials::open(&home.credentials()).map_err(|e| OpenError::Setup(e.to_string()))?;
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
        };
        tracing::info!(region = %region.code, entries = size, origin = %region.origin, "region state opened");
        Ok(region)
    }

    pub fn code(&self) -> &RegionCode {
        &self.code
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn log_vkey(&self) -> Result<String, Refusal> {
        self.signer
            .vkey()
            .map_err(|e| Refusal::internal(e.to_string()))
    }

    pub fn view(&self) -> Result<RwLockReadGuard<'_, View>, Refusal> {
        self.view.read().map_err(|_| lock_failed())
    }

    fn sequencer(&self) -> Result<MutexGuard<'_, Sequencer>, Refusal> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Refusal::new(
                Kind::Unavailable,
                "STORAGE_UNAVAILABLE",
                "a write failed after it was applied; restart the node to replay its log",
            ));
        }
        self.seq.lock().map_err(|_| lock_failed())
    }

    fn poison(&self, why: &str) {
        tracing::error!(why, "refusing further writes until restart");
        self.poisoned.store(true, Ordering::Release);
    }

    /// Applies a signed entry to the state, submits it to the log and updates the view, all under
    /// the sequencer lock; the caller waits for durability after releasing it.
    fn submit(
        &self,
        seq: &mut Sequencer,
        entry: Vec<u8>,
        signer: &SecretKey,
        blobs: Vec<Blob>,
    ) -> Result<(u64, Pending<std::ops::Range<u64>>), Refusal> {
        let staged = seq.apply_own(&self.log, entry, signer.public())?;
        self.log_applied(seq, vec![staged], blobs)
    }

    /// Submits entries already applied to the state, in one log submission (so they commit in
    /// one transaction: all durable or none), and updates the view; returns the first's index.
    fn log_applied(
        &self,
        seq: &mut Sequencer,
        entries: Vec<Staged>,
        blobs: Vec<Blob>,
    ) -> Result<(u64, Pending<std::ops::Range<u64>>), Refusal> {
        let first = seq.head.size - entries.len() as u64;
        let seals_changed = entries.iter().any(|e| {
            e.delta
                .writes
                .iter()
                .any(|w| matches!(w, tongban_core::log::state::Write::Seal(_)))
        });
        let ops = entries
            .iter()
            .flat_map(|e| state::ops_of(&e.delta))
            .collect();
        let bytes = entries.into_iter().map(|e| e.bytes).collect();
        let pending = match self.log.submit(bytes, blobs, ops) {
            Ok(pending) => pending,
            Err(e) => {
                self.poison("the log refused an applied entry");
                return Err(e.into());
            }
        };
        if seals_changed {
            // The trust bundle is signed over these seals once the entries are durable.
            self.published
                .push(seq.head.size - 1, Arc::new(Seals::of(seq.seals.values())))?;
        }
        Ok((first, pending))
    }

    fn signer(&self) -> Signer<'_> {
        Signer {
            federation: &self.federation,
            region_cert: &self.region_cert,
            root: &self.root,
        }
    }

    /// Waits until a submitted entry is durable.
    fn durable(&self, index: u64, pending: Pending<std::ops::Range<u64>>) -> Result<u64, Refusal> {
        match pending.wait() {
            Ok(range) if range.start == index => {
                // Everything below range.end is durable now: the view may show it.
                self.published
                    .publish(range.end, &self.view, &self.signer())?;
                self.appended.notify_one();
                Ok(index)
            }
            Ok(range) => {
                self.poison("the log gave an entry another index than the state");
                Err(Refusal::internal(format!(
                    "entry logged at {} but applied as {index}",
                    range.start
                )))
            }
            Err(e) => {
                self.poison("a commit failed after its entry was applied");
                Err(e.into())
            }
        }
    }

    /// Signs `act` with `key`, then submits and waits.
    fn act(
        &self,
        seq: MutexGuard<'_, Sequencer>,
        act: Act,
        key: &SecretKey,
    ) -> Result<u64, Refusal> {
        self.act_with(seq, act, key, Vec::new())
    }

    fn act_with(
        &self,
        mut seq: MutexGuard<'_, Sequencer>,
        act: Act,
        key: &SecretKey,
        blobs: Vec<Blob>,
    ) -> Result<u64, Refusal> {
        let entry = LogEntry {
            region: self.code.clone(),
            at: now()?,
            act,
        }
        .sign(key)
        .map_err(|e| Refusal::internal(e.to_string()))?;
        let (index, pending) = self.submit(&mut seq, entry, key, blobs)?;
        drop(seq);
        self.durable(index, pending)
    }

    // ---- the operator's acts ----

    /// Creates a seal for a registered agency: its key file first (durable), then the logged,
    /// root-signed seal.
    pub fn create_seal(&self, spec: SealSpec) -> Result<(SealInfo, u64), Refusal> {
        let now = now()?;
        let key = keyfile::generate().map_err(|e| Refusal::internal(e.to_string()))?;
        let info = SealInfo {
            id: spec.id,
            seal_type: spec.seal_type,
            name: spec.name,
            agency_name: spec.agency_name,
            agency: spec.agency,
            region: self.code.clone(),
            key: key.public().clone(),
            created: now,
            valid_from: spec.valid_from.unwrap_or(now),
            valid_until: spec.valid_until,
            picture: Picture::of(&spec.picture, spec.media_type),
            share_types: spec.share_types,
        };
        if info.valid_from >= info.valid_until {
            return Err(Refusal::invalid("valid_from must precede valid_until"));
        }
        let signed = info
            .sign(&self.root)
            .map_err(|e| Refusal::invalid(e.to_string()))?;
        let mut seq = self.sequencer()?;
        if seq.seals.values().any(|s| s.info.id == info.id) {
            return Err(Refusal::new(
                Kind::Conflict,
                "SEAL_EXISTS",
                format!("a seal with id {} exists", info.id),
            ));
        }
        keyfile::write(
            &self
                .seal_dir
                .join(format!("{}.key", info.key.kid().to_hex())),
            &key,
        )
        .map_err(|e| Refusal::internal(e.to_string()))?;
        seq.seal_keys.insert(info.key.kid(), Arc::new(key));
        let index = self.act(seq, Act::SealRegistered { seal: signed }, &self.root)?;
        Ok((info, index))
    }

    /// Revokes a seal from `from`: certificates it stamped at or after `from` become invalid.
    pub fn revoke_seal(&self, kid: KeyId, from: Time, reason: ShortText) -> Result<u64, Refusal> {
        let seq = self.sequencer()?;
        live_seal(&seq.seals, &kid)?;
        let revocation = self.revocation(kid, from, reason)?;
        self.act(seq, Act::SealRevoked { revocation }, &self.root)
    }

    fn revocation(&self, kid: KeyId, from: Time, reason: ShortText) -> Result<Vec<u8>, Refusal> {
        SealRevocation {
            region: self.code.clone(),
            seal: kid,
            revoked_from: from,
            reason,
        }
        .sign(&self.root)
        .map_err(|e| Refusal::internal(e.to_string()))
    }

    /// Replaces a seal: a new seal for the same agency (a new key, its file durable first, with
    /// the old seal's type, name and picture) is registered and the old one revoked from
    /// `rotation.revoke_from` (default: the next second), as two entries of one log submission, so both are
    /// durable or neither is. The new seal is registered first: the agency is never without one.
    pub fn rotate_seal(&self, rotation: Rotation) -> Result<Rotated, Refusal> {
        let now = now()?;
        let key = keyfile::generate().map_err(|e| Refusal::internal(e.to_string()))?;
        let mut seq = self.sequencer()?;
        let old = live_seal(&seq.seals, &rotation.old)?.info.clone();
        if seq.seals.values().any(|s| s.info.id == rotation.id) {
            return Err(Refusal::new(
                Kind::Conflict,
                "SEAL_EXISTS",
                format!("a seal with id {} exists", rotation.id),
            ));
        }
        let info = SealInfo {
            id: rotation.id,
            seal_type: old.seal_type,
            name: old.name.clone(),
            agency_name: old.agency_name.clone(),
            agency: old.agency.clone(),
            region: self.code.clone(),
            key: key.public().clone(),
            created: now,
            valid_from: rotation.valid_from.unwrap_or(now),
            valid_until: rotation.valid_until.unwrap_or(old.valid_until),
            picture: old.picture.clone(),
            // The agency may ask other regions for what it could ask for before.
            share_types: old.share_types.clone(),
        };
        if info.valid_from >= info.valid_until {
            return Err(Refusal::invalid(
                "valid_from must precede valid_until (the old seal's, when absent)",
            ));
        }
        let signed = info
            .sign(&self.root)
            .map_err(|e| Refusal::invalid(e.to_string()))?;
        // By default the old seal is revoked from the next second: every certificate it stamped
        // up to now (times are whole seconds) stays valid, and it stamps no more, since this node
        // issues with no seal that has a revocation on record (`issue`).
        let revoked_from = match rotation.revoke_from {
            Some(from) => from,
            None => Time::new(now.seconds() + 1)
                .ok_or_else(|| Refusal::internal("the clock is at the end of the time range"))?,
        };
        let revocation = self.revocation(rotation.old, revoked_from, rotation.reason)?;
        let entry = |act| {
            LogEntry {
                region: self.code.clone(),
                at: now,
                act,
            }
            .sign(&self.root)
            .map_err(|e| Refusal::internal(e.to_string()))
        };
        let register = entry(Act::SealRegistered { seal: signed })?;
        let revoke = entry(Act::SealRevoked { revocation })?;
        let kid = info.key.kid();
        keyfile::write(&self.seal_dir.join(format!("{}.key", kid.to_hex())), &key)
            .map_err(|e| Refusal::internal(e.to_string()))?;
        seq.seal_keys.insert(kid, Arc::new(key));
        let registered = seq.apply_own(&self.log, register, self.root.public())?;
        let revoked = match seq.apply_own(&self.log, revoke, self.root.public()) {
            Ok(revoked) => revoked,
            Err(mut refusal) => {
                // Not expected (the old seal was checked live above, under this lock); the new
                // seal is already in the state, so it is logged alone to keep state and log one.
                let (index, pending) = self.log_applied(&mut seq, vec![registered], Vec::new())?;
                drop(seq);
                self.durable(index, pending)?;
                refusal.detail = format!(
                    "the new seal {kid} is registered (entry {index}) but the old one is not revoked: {}",
                    refusal.detail
                );
                return Err(refusal);
            }
        };
        let (index, pending) = self.log_applied(&mut seq, vec![registered, revoked], Vec::new())?;
        drop(seq);
        let index = self.durable(index, pending)?;
        Ok(Rotated {
            seal: info,
            registered_at: index,
            revoked_from,
            revoked_at: index + 1,
        })
    }

    // ---- an agency's acts ----

    /// Issues a certificate stamped with one of `agency`'s seals.
    pub fn issue(
        &self,
        agency: &str,
        lineage: Lineage,
        spec: CertificateSpec,
    ) -> Result<IssuedCertificate, Refusal> {
        let prepared = self.prepare_issuance(agency, lineage, spec)?;
        self.log_issuance(prepared, None)
    }

    /// A certificate built and signed, with its signed `cert.issued` entry, not logged yet. The
    /// checks that name the refusal are made against the state first; the certificate is then
    /// built and signed without the lock (the costly part), and [`Region::log_issuance`] applies
    /// the entry under the lock, where the log's rules decide again against the latest state (a
    /// duplicate identifier or a seal revoked meanwhile is refused there).
    fn prepare_issuance(
        &self,
        agency: &str,
        lineage: Lineage,
        spec: CertificateSpec,
    ) -> Result<PreparedIssuance, Refusal> {
        let (info, key, id, predecessor) = self.issuance_plan(agency, lineage, &spec)?;
        let now = now()?;
        let status_index = self.take_status_index()?;
        let draft = Draft {
            id: id.clone(),
            type_name: spec.type_name,
            issued: now,
            valid_from: spec.valid_from.unwrap_or(now),
            valid_until: spec.valid_until,
            level: spec.level,
            promise_deadline: spec.promise_deadline,
            predecessor: predecessor.clone(),
            status_index,
            holder: spec.holder,
            licence: spec.licence,
            decoys: spec.decoys,
        };
        let mut salt_error = None;
        let mut salts = || {
            random::<16>().unwrap_or_else(|e| {
                salt_error = Some(e);
                [0; 16]
            })
        };
        let issued = cert::issue(&draft, &info, &key, &mut salts)
            .map_err(|e| Refusal::invalid(e.to_string()))?;
        if let Some(e) = salt_error {
            return Err(Refusal::internal(e.to_string()));
        }
        let entry = LogEntry {
            region: self.code.clone(),
            at: now,
            act: Act::CertIssued {
                id: id.clone(),
                digest: issued.digest,
                seal: spec.seal,
                issued: now,
                operation: predecessor.as_ref().map_or(1, |p| p.how.code()),
                predecessor: predecessor.map(|p| p.id),
                promise_deadline: spec.promise_deadline,
                status_index,
            },
        }
        .sign(&key)
        .map_err(|e| Refusal::internal(e.to_string()))?;
        Ok(PreparedIssuance {
            id,
            digest: issued.digest,
            bytes: issued.bytes,
            seal: spec.seal,
            key,
            entry,
        })
    }

    /// Logs a prepared issuance and waits until it is durable; with `before`, a root-signed
    /// entry logged first in the same submission (so both are durable or neither is).
    fn log_issuance(
        &self,
        prepared: PreparedIssuance,
        before: Option<Vec<u8>>,
    ) -> Result<IssuedCertificate, Refusal> {
        let mut seq = self.sequencer()?;
        // Again under the lock: a rotation or revocation logged while the certificate was built.
        if let Some(seal) = seq.seals.get(&prepared.seal) {
            refuse_revoked(seal)?;
        }
        let mut entries = Vec::new();
        if let Some(before) = before {
            entries.push(seq.apply_own(&self.log, before, self.root.public())?);
        }
        match seq.apply_own(&self.log, prepared.entry, prepared.key.public()) {
            Ok(staged) => entries.push(staged),
            Err(rejection) if !entries.is_empty() => {
                // The entry before is in the state already: it is logged alone, so that state
                // and log stay one (it records a fact and changes no certificate).
                let (index, pending) = self.log_applied(&mut seq, entries, Vec::new())?;
                drop(seq);
                self.durable(index, pending)?;
                return Err(rejection);
            }
            Err(rejection) => return Err(rejection),
        }
        let last = entries.len() - 1;
        let blob = Blob {
            entry: last,
            digest: prepared.digest,
            bytes: prepared.bytes.clone(),
        };
        let (index, pending) = self.log_applied(&mut seq, entries, vec![blob])?;
        drop(seq);
        let first = self.durable(index, pending)?;
        Ok(IssuedCertificate {
            id: prepared.id,
            digest: prepared.digest,
            bytes: prepared.bytes,
            log_index: first + last as u64,
        })
    }

    /// What an issuance needs from the state: the seal, its key, the new identifier and its
    /// predecessor, checked for this agency.
    fn issuance_plan(
        &self,
        agency: &str,
        lineage: Lineage,
        spec: &CertificateSpec,
    ) -> Result<IssuancePlan, Refusal> {
        let mut seq = self.sequencer()?;
        let seal = seq.seals.get(&spec.seal).ok_or_else(|| {
            Refusal::code(Kind::NotFound, Code::KidUnknown, spec.seal.to_string())
        })?;
        if seal.info.agency.as_str() != agency {
            return Err(Refusal::forbidden("the seal belongs to another agency"));
        }
        refuse_revoked(seal)?;
        let info = seal.info.clone();
        let key = seq.seal_keys.get(&spec.seal).cloned().ok_or_else(|| {
            Refusal::new(
                Kind::Conflict,
                "SEAL_KEY_MISSING",
                "this node does not hold the seal's key",
            )
        })?;
        let (id, predecessor) = match lineage {
            Lineage::New { type_code, serial } => (
                Identifier::new(
                    type_code,
                    IssuerCode::Uscc(info.agency.clone()),
                    &serial,
                    "001",
                )
                .map_err(|e| {
                    Refusal::code(Kind::Invalid, Code::IdentifierInvalid, e.to_string())
                })?,
                None,
            ),
            Lineage::Successor { of, how } => {
                let old = seq
                    .cert(&self.log, &of)?
                    .ok_or_else(|| Refusal::not_found(of.as_str()))?;
                check_owner(&old, agency)?;
                status::succeed(old.state, how).map_err(|f| {
                    Refusal::new(Kind::Conflict, "TRANSITION_NOT_ALLOWED", f.detail)
                })?;
                (next_version(&of)?, Some(Predecessor { id: of, how }))
            }
            Lineage::TransferIn { of, serial } => {
                // The predecessor lives in another region's log; the caller checked its proof.
                let id = Identifier::new(
                    of.type_code().clone(),
                    IssuerCode::Uscc(info.agency.clone()),
                    &serial,
                    "001",
                )
                .map_err(|e| {
                    Refusal::code(Kind::Invalid, Code::IdentifierInvalid, e.to_string())
                })?;
                let how = Succession::TransferIn;
                (id, Some(Predecessor { id: of, how }))
            }
        };
        Ok((info, key, id, predecessor))
    }

    /// A key of `agency` to sign its acts on `id` with.
    fn agency_key(
        &self,
        seq: &mut Sequencer,
        agency: &str,
        id: &Identifier,
    ) -> Result<(Arc<SecretKey>, CertRecord), Refusal> {
        let cert = seq
            .cert(&self.log, id)?
            .ok_or_else(|| Refusal::not_found(id.as_str()))?;
        check_owner(&cert, agency)?;
        // The stamping seal if the node holds it and it is not revoked, else another unrevoked
        // seal of the agency the node holds (the one that replaced it, after a rotation), else
        // any held seal of the agency: the log accepts a status act signed by any of them.
        let held = |seal: &SealRecord| seq.seal_keys.get(&seal.info.key.kid());
        let agency_seals = || {
            seq.seals
                .values()
                .filter(move |s| s.info.agency.as_str() == agency)
        };
        let stamping = seq.seals.get(&cert.seal);
        let key = stamping
            .filter(|s| s.revoked_from.is_none())
            .and_then(held)
            .or_else(|| {
                agency_seals()
                    .filter(|s| s.revoked_from.is_none())
                    .find_map(held)
            })
            .or_else(|| stamping.and_then(held))
            .or_else(|| agency_seals().find_map(held))
            .cloned()
            .ok_or_else(|| {
                Refusal::new(
                    Kind::Conflict,
                    "SEAL_KEY_MISSING",
                    "this node holds no seal key of the agency",
                )
            })?;
        Ok((key, cert))
    }

    /// A status operation by the issuing agency.
    pub fn change_status(
        &self,
        agency: &str,
        id: &Identifier,
        operation: Operation,
        reason: Option<ShortText>,
    ) -> Result<(State, u64), Refusal> {
        self.status_act(agency, id, operation, reason, None)
    }

    /// A status operation; `destination` is the receiving region of a transfer out.
    fn status_act(
        &self,
        agency: &str,
        id: &Identifier,
        operation: Operation,
        reason: Option<ShortText>,
        destination: Option<RegionCode>,
    ) -> Result<(State, u64), Refusal> {
        let mut seq = self.sequencer()?;
        let (key, cert) = self.agency_key(&mut seq, agency, id)?;
        let to = status::transition(cert.state, operation)
            .map_err(|f| Refusal::new(Kind::Conflict, "TRANSITION_NOT_ALLOWED", f.detail))?;
        if to == State::Other && reason.is_none() {
            return Err(Refusal::invalid("state 99 (other) needs a reason"));
        }
        let act = Act::StatusChanged {
            id: id.clone(),
            operation,
            to,
            reason,
            destination,
        };
        Ok((to, self.act(seq, act, &key)?))
    }

    /// Records that a promise-based certificate's promise was kept.
    pub fn fulfil(&self, agency: &str, id: &Identifier) -> Result<u64, Refusal> {
        let mut seq = self.sequencer()?;
        let (key, _) = self.agency_key(&mut seq, agency, id)?;
        self.act(seq, Act::PromiseFulfilled { id: id.clone() }, &key)
    }

    /// The node's own act: every promise whose deadline has passed unfulfilled lapses (operation 05
    /// → revoked, reason `promise_lapsed`). Returns how many lapsed.
    pub fn lapse_promises(&self) -> Result<usize, Refusal> {
        let now = now()?;
        let due = self.due_promises(now)?;
        let reason = ShortText::new(PROMISE_LAPSED).ok_or_else(|| Refusal::internal("reason"))?;
        let mut lapsed = 0;
        for id in due {
            let mut seq = self.sequencer()?;
            let open = seq.cert(&self.log, &id)?.is_some_and(|c| {
                !c.promise_fulfilled
                    && !c.state.is_terminal()
                    && c.promise_deadline.is_some_and(|d| d <= now)
            });
            if !open {
                continue;
            }
            let act = Act::StatusChanged {
                id,
                operation: Operation::Terminate(Termination::Revoke),
                to: State::Revoked,
                reason: Some(reason.clone()),
                destination: None,
            };
            self.act(seq, act, &self.root)?;
            lapsed += 1;
        }
        Ok(lapsed)
    }

    /// Open promises whose deadline is at or before `now`, at most [`LAPSE_BATCH`] of them (the
    /// next run takes the rest), from the durable state's promise rows.
    fn due_promises(&self, now: Time) -> Result<Vec<Identifier>, Refusal> {
        let after = Time::new(now.seconds() + 1).unwrap_or(now);
        let mut due = Vec::new();
        let mut bad = None;
        self.log.state()?.scan(state::PROMISE, &[], |key, _| {
            match state::lapsed_promise(key, after) {
                None => false,
                Some(Ok(id)) => {
                    due.push(id);
                    due.len() < LAPSE_BATCH
                }
                Some(Err(e)) => {
                    bad = Some(e);
                    false
                }
            }
        })?;
        match bad {
            Some(e) => Err(e.into()),
            None => Ok(due),
        }
    }

    /// Logs a batch of verification receipts, committed by `root`; returns the entry and its index
    /// once durable.
    pub fn log_receipts(
        &self,
        count: u64,
        root: [u8; 32],
        cross_region: u64,
    ) -> Result<SubmittedReceipts, Refusal> {
        let mut seq = self.sequencer()?;
        let entry = LogEntry {
            region: self.code.clone(),
            at: now()?,
            act: Act::Receipts {
                count,
                root,
                cross_region,
            },
        }
        .sign(&self.root)
        .map_err(|e| Refusal::internal(e.to_string()))?;
        let (index, pending) = self.submit(&mut seq, entry.clone(), &self.root, Vec::new())?;
        Ok((entry, index, pending))
    }

    /// Waits for a receipts entry submitted by [`Region::log_receipts`].
    pub fn receipts_durable(
        &self,
        index: u64,
        pending: Pending<std::ops::Range<u64>>,
    ) -> Result<u64, Refusal> {
        self.durable(index, pending)
    }

    // ---- reads ----

    /// Verifies a certificate against the node's trust and live status.
    pub fn verify(&self, bytes: &[u8]) -> Result<(Verification, Option<State>), Refusal> {
        let now = now()?;
        let view = self.view()?;
        // A seal this region does not know may be another member's: the federation's replicas
        // decide (their state codes are not this log's, so none is returned).
        if let Some(peers) = self.peers.get()
            && let Ok(envelope) = Envelope::open(bytes, EnvelopeKind::Certificate)
            && view.trust.seal(&envelope.kid).is_none()
        {
            let mut verification = peers.verify(bytes, now)?;
            self.settle_transfers(&mut verification, &self.own_status()?)?;
            return Ok((verification, None));
        }
        let own = self.own_status()?;
        let verification = self.verify_own(bytes, &view, &own, now)?;
        let state = match verification.claims.as_ref() {
            Some(claims) => own.record(&claims.id)?.map(|r| r.state),
            None => None,
        };
        Ok((verification, state))
    }

    /// Other regions' status as the federation replicated it (none before it is attached).
    pub(crate) fn peer_status(&self, now: Time) -> Result<Box<dyn PeerStatus>, Refusal> {
        match self.peers.get() {
            Some(peers) => peers.status(now),
            None => Ok(Box::new(NoPeers)),
        }
    }

    /// The status of this region's certificates: the durable state, read live.
    pub(crate) fn own_status(&self) -> Result<OwnStatus, Refusal> {
        Ok(OwnStatus::new(self.code.clone(), self.log.state()?, now()?))
    }

    /// Verifies a certificate of this region against the view and the durable state
    /// (verification.md §2, the state this log establishes as its status source), then the
    /// transfer rules.
    fn verify_own(
        &self,
        bytes: &[u8],
        view: &View,
        own: &OwnStatus,
        now: Time,
    ) -> Result<Verification, Refusal> {
        let mut verification = cert::verify(bytes, &view.trust, own, now);
        own.failed()?;
        self.settle_transfers(&mut verification, own)?;
        Ok(verification)
    }

    /// specs/sharing.md §5.5: what this node knows of transfers, from its own log and its
    /// replicas, applied to a verification: never a predecessor and its successor valid at once.
    fn settle_transfers(
        &self,
        verification: &mut Verification,
        own: &OwnStatus,
    ) -> Result<(), Refusal> {
        let peers = self.peer_status(own.now())?;
        let failed = std::cell::RefCell::new(None);
        tongban_core::sharing::transfer::settle(verification, |id| {
            let here = own.transferred_away(id).unwrap_or_else(|e| {
                failed.borrow_mut().get_or_insert(e);
                false
            });
            here || peers.transferred_out(id)
        });
        peers.failed()?;
        match failed.into_inner() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
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

    /// This region's status snapshot, signed now.
    pub fn status_snapshot(&self) -> Result<Vec<u8>, Refusal> {
        let now = now()?;
        let state = self.log.state()?;
        let mut snapshot = StatusSnapshot {
            region: self.code.clone(),
            // The durable log this state reflects, not the sequencer's one commit ahead.
            version: state.size(),
            issued: now,
            entries: Vec::new(),
            fulfilled: Vec::new(),
        };
        // Only the listed rows: the certificates not valid or with a fulfilled promise.
        let mut listed = Vec::new();
        state.scan(state::LISTED, &[], |key, _| {
            listed.push(key.to_vec());
            true
        })?;
        let mut bad = None;
        let rows = state::Rows(&state);
        for key in listed {
            let id = std::str::from_utf8(&key)
                .ok()
                .and_then(|id| Identifier::parse(id).ok());
            let record = match &id {
                Some(id) => rows.cert(id)?,
                None => None,
            };
            let (Some(id), Some(record)) = (id, record) else {
                bad = Some(Refusal::internal(format!(
                    "listed state row {:?} names no certificate",
                    String::from_utf8_lossy(&key)
                )));
                break;
            };
            if record.promise_fulfilled {
                snapshot.fulfilled.push(id.clone());
            }
            if record.state != State::Valid {
                snapshot.entries.push(StatusEntry {
                    note: view::status_note(&record),
                    id,
                    state: record.state,
                    since: record.changed,
                });
            }
        }
        if let Some(bad) = bad {
            return Err(bad);
        }
        drop(state);
        snapshot.normalise();
        snapshot
            .sign(&self.root)
            .map_err(|e| Refusal::internal(e.to_string()))
    }

    /// Signs a checkpoint when the log has grown since the last one (or none exists).
    pub fn checkpoint(&self) -> Result<Option<String>, Refusal> {
        let size = self.log.size()?;
        let last = self.log.last_checkpoint()?.map(|(s, _)| s);
        if last.is_some_and(|l| l >= size) {
            return Ok(None);
        }
        self.signer
            .sign(&self.log)
            .map(Some)
            .map_err(|e| Refusal::new(Kind::Unavailable, "CHECKPOINT_REFUSED", e.to_string()))
    }

    /// Lets the federation verify other regions' certificates for this node.
    pub fn attach_peers(&self, peers: Arc<dyn PeerVerifier>) {
        if self.peers.set(peers).is_err() {
            tracing::warn!("a peer verifier was already attached");
        }
    }

    /// The signed seals and seal revocations this region's durable log registered.
    pub fn signed_seals(&self) -> Result<SignedSeals, Refusal> {
        let seals = self.view()?.seals.clone();
        Ok((seals.signed(), seals.revocations()))
    }

    /// The seals registered in this region's durable log, by id.
    pub fn seals(&self) -> Result<Vec<(SealInfo, Option<Time>)>, Refusal> {
        let seals = self.view()?.seals.clone();
        let mut listed: Vec<_> = seals
            .0
            .iter()
            .map(|s| (s.info.clone(), s.revoked_from))
            .collect();
        listed.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok(listed)
    }
}

/// The keys in `dir` of the seals `state` registered. A seal's key file is written (durably,
/// under a temporary name first) before its registration is logged, so a crash between the two
/// leaves a key the log does not hold: it is passed over (and a leftover temporary file removed),
/// and never stops a start. A key of a registered seal that does not read, or is another key than
/// the seal's, does: the operator must see it.
fn seal_keys(
    dir: &Path,
    seals: &HashMap<KeyId, SealRecord>,
) -> Result<HashMap<KeyId, Arc<SecretKey>>, OpenError> {
    let fail = |e: &dyn std::fmt::Display| OpenError::Setup(format!("{}: {e}", dir.display()));
    let mut keys = HashMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| fail(&e))? {
        let path = entry.map_err(|e| fail(&e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(keyfile::TEMPORARY) {
            // A key being written when the node stopped, never given its name: nothing uses it,
            // and a secret is not left lying about.
            std::fs::remove_file(&path).map_err(|e| fail(&e))?;
            tracing::info!(file = %path.display(), "removed a key file left half-made by a crash");
            continue;
        }
        let registered = name
            .strip_suffix(".key")
            .and_then(KeyId::from_hex)
            .filter(|kid| seals.contains_key(kid));
        let Some(kid) = registered else {
            tracing::warn!(file = %path.display(), "not the key of a seal the log registered; passed over");
            continue;
        };
        let key = keyfile::read(&path).map_err(|e| OpenError::Setup(e.to_string()))?;
        if key.public().kid() != kid {
            return Err(OpenError::Setup(format!(
                "{} holds the key {}, not the seal's",
                path.display(),
                key.public().kid()
            )));
        }
        keys.insert(kid, Arc::new(key));
    }
    Ok(keys)
}

/// A registered seal that is not revoked yet: `404 KID_UNKNOWN` or `409 SEAL_ALREADY_REVOKED`
/// otherwise (a seal is revoked once; the log would refuse a second revocation as
/// `SEAL_INVALID`, which would not tell the operator what happened).
fn live_seal<'a>(
    seals: &'a HashMap<KeyId, SealRecord>,
    kid: &KeyId,
) -> Result<&'a SealRecord, Refusal> {
    let seal = seals
        .get(kid)
        .ok_or_else(|| Refusal::code(Kind::NotFound, Code::KidUnknown, kid.to_string()))?;
    match seal.revoked_from {
        None => Ok(seal),
        Some(from) => Err(Refusal::new(
            Kind::Conflict,
            "SEAL_ALREADY_REVOKED",
            format!("seal {kid} is revoked from {}", from.to_rfc3339()),
        )),
    }
}

/// This node stamps nothing with a seal that has a revocation on record, even one that takes
/// effect later (a rotated seal's, by default the second after the rotation): the revocation's
/// time says which certificates it stamped stay valid, not that it may go on stamping.
fn refuse_revoked(seal: &SealRecord) -> Result<(), Refusal> {
    match seal.revoked_from {
        None => Ok(()),
        Some(from) => Err(Refusal::new(
            Kind::Conflict,
            "SEAL_NOT_VALID_AT_ISSUE",
            format!(
                "seal {} is revoked from {}; issue with another seal of the agency",
                seal.info.id,
                from.to_rfc3339()
            ),
        )),
    }
}

/// Only the issuing agency may act on, or read the personal data of, its certificates.
pub fn check_owner(record: &CertRecord, agency: &str) -> Result<(), Refusal> {
    match record.agency == agency {
        true => Ok(()),
        false => Err(Refusal::forbidden(
            "the certificate belongs to another agency",
        )),
    }
}

/// The identifier of the next version: same type, issuer and serial, version + 1.
fn next_version(id: &Identifier) -> Result<Identifier, Refusal> {
    let version: u16 = id
        .version()
        .parse()
        .map_err(|_| Refusal::internal("identifier version"))?;
    if version >= 999 {
        return Err(Refusal::new(
            Kind::Conflict,
            "VERSION_EXHAUSTED",
            "the certificate is at version 999",
        ));
    }
    Identifier::new(
        id.type_code().clone(),
        id.issuer().clone(),
        id.serial(),
        &format!("{:03}", version + 1),
    )
    .map_err(|e| Refusal::internal(e.to_string()))
}
