//! What readers, verifiers and the region root's signatures see: the region's state **as of its
//! durable log**. Certificates and transfers are read from the durable state on disk
//! ([`OwnStatus`]); the seals, and the trust bundle signed over them, are kept here and move
//! only once the log has committed the entry that changed them ([`Published::publish`], in log
//! order), so nothing the node signs from the view runs ahead of what a crash would leave.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use tongban_core::cert::Claims;

use tongban_core::cert::verify::{StatusSource, StatusView};
use tongban_core::ids::{Identifier, RegionCode};
use tongban_core::keys::{KeyId, SecretKey};
use tongban_core::log::state::{CertRecord, SealRecord, StateRead};
use tongban_core::status::State;
use tongban_core::trust::{BundleContents, FederationRoot, SealInfo, TrustStore};
use tongban_core::values::{ShortText, Time};

use super::state::{self, Rows};
use super::{lock_failed, now};
use crate::log::{Log, LogError};
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
    pub fn of<'a>(records: impl Iterator<Item = &'a SealRecord>) -> Seals {
        let mut seals: Vec<LoggedSeal> = records
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

/// What readers and verifiers see of the seals, and how far the durable log reaches.
pub struct View {
    pub trust: Arc<TrustStore>,
    pub bundle: Arc<Vec<u8>>,
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
    /// The view of the durable seals of a log of `size` entries (a node's start).
    pub fn of(
        seals: &HashMap<KeyId, SealRecord>,
        size: u64,
        signer: &Signer<'_>,
    ) -> Result<View, Refusal> {
        let seals = Arc::new(Seals::of(seals.values()));
        let (bundle, trust) = trust_of(&seals, size, signer)?;
        Ok(View {
            trust: Arc::new(trust),
            bundle: Arc::new(bundle),
            seals,
            size,
        })
    }
}

/// Seal changes submitted to the log and not yet in the view, in log order: (index of the last
/// entry of the submission, the seals after it).
#[derive(Default)]
pub struct Published {
    queue: Mutex<VecDeque<(u64, Arc<Seals>)>>,
}

impl Published {
    /// Queues the seals as of the entry at `index` (called in log order, under the sequencer).
    pub fn push(&self, index: u64, seals: Arc<Seals>) -> Result<(), Refusal> {
        self.queue
            .lock()
            .map_err(|_| lock_failed())?
            .push_back((index, seals));
        Ok(())
    }

    /// Forgets every queued change (their entries were not made durable).
    pub fn clear(&self) {
        match self.queue.lock() {
            Ok(mut queue) => queue.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }

    /// Everything below `durable` is committed: the view reaches it, and takes the seals of the
    /// latest queued change below it; a trust bundle is signed only here, over seals the log
    /// holds.
    pub fn publish(
        &self,
        durable: u64,
        view: &RwLock<View>,
        signer: &Signer<'_>,
    ) -> Result<(), Refusal> {
        let mut queue = self.queue.lock().map_err(|_| lock_failed())?;
        let mut latest = None;
        while let Some((index, _)) = queue.front()
            && *index < durable
        {
            latest = queue.pop_front();
        }
        if latest.is_none() && view.read().map_err(|_| lock_failed())?.size >= durable {
            return Ok(());
        }
        let mut view = view.write().map_err(|_| lock_failed())?;
        if let Some((index, seals)) = latest {
            let (bundle, trust) = trust_of(&seals, index + 1, signer)?;
            view.trust = Arc::new(trust);
            view.bundle = Arc::new(bundle);
            view.seals = seals;
        }
        view.size = view.size.max(durable);
        Ok(())
    }
}

/// The status of this region's certificates as its durable state holds them, read live: each
/// certificate's rows (its record, and whether it was transferred in) together in one read
/// ([`crate::log::Log::rows_at`]: one statement, no transaction, on PostgreSQL), the first time
/// it is asked about, and kept for the rest of the verification, so that every question about
/// one certificate gets answers of one moment. Core's verifier asks through [`StatusSource`],
/// which cannot fail: a read that fails is kept and answered as unknown, and the caller turns it
/// into a local error with [`OwnStatus::failed`] before it uses the verdict.
pub struct OwnStatus {
    region: RegionCode,
    log: Log,
    now: Time,
    read: Mutex<HashMap<Identifier, CertRows>>,
    error: Mutex<Option<LogError>>,
}

/// What the state holds of one certificate.
#[derive(Clone)]
struct CertRows {
    record: Option<CertRecord>,
    transferred_in: bool,
}

impl OwnStatus {
    pub fn new(region: RegionCode, log: Log, now: Time) -> OwnStatus {
        OwnStatus {
            region,
            log,
            now,
            read: Mutex::new(HashMap::new()),
            error: Mutex::new(None),
        }
    }

    /// The moment this status is read at.
    pub fn now(&self) -> Time {
        self.now
    }

    fn rows(&self, id: &Identifier) -> Result<CertRows, LogError> {
        let poisoned = || LogError::Storage("a status lock was poisoned by a panic".into());
        if let Some(rows) = self.read.lock().map_err(|_| poisoned())?.get(id) {
            return Ok(rows.clone());
        }
        let keys = state::cert_rows(id);
        let (_, found) = self.log.rows_at(&keys)?;
        let fetched = state::Fetched(keys.into_iter().zip(found).collect());
        let rows = Rows(&fetched);
        let rows = CertRows {
            record: rows.cert(id)?,
            transferred_in: rows.transferred_in(id)?,
        };
        self.read
            .lock()
            .map_err(|_| poisoned())?
            .insert(id.clone(), rows.clone());
        Ok(rows)
    }

    /// The record of one of this region's certificates.
    pub fn record(&self, id: &Identifier) -> Result<Option<CertRecord>, LogError> {
        Ok(self.rows(id)?.record)
    }

    /// Whether `id` left through this log: one of its own transferred out, or another region's
    /// taken in here (sharing.md §5.5).
    pub fn transferred_away(&self, id: &Identifier) -> Result<bool, LogError> {
        let rows = self.rows(id)?;
        Ok(rows.transferred_in
            || rows
                .record
                .is_some_and(|r| r.state == State::TransferredOut))
    }

    /// The first read that failed while core asked, if any.
    pub fn failed(&self) -> Result<(), Refusal> {
        match self.error.lock().map_err(|_| lock_failed())?.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn read(&self, id: &str) -> Option<CertRecord> {
        let id = Identifier::parse(id).ok()?;
        match self.record(&id) {
            Ok(record) => record,
            Err(e) => {
                if let Ok(mut error) = self.error.lock() {
                    error.get_or_insert(e);
                }
                None
            }
        }
    }
}

impl StatusSource for OwnStatus {
    fn view(&self, claims: &Claims, _: Time) -> StatusView {
        if claims.region != self.region {
            return StatusView::Unknown;
        }
        // The live log: its status is as of now. A certificate it does not hold is not listed.
        match self.read(claims.id.as_str()) {
            Some(record) if record.state != State::Valid => StatusView::Listed {
                state: record.state,
                since: Some(record.changed),
                note: status_note(&record),
                as_of: self.now,
            },
            _ => StatusView::Valid { as_of: self.now },
        }
    }

    fn promise_fulfilled(&self, claims: &Claims, _: Time) -> bool {
        claims.region == self.region
            && self
                .read(claims.id.as_str())
                .is_some_and(|r| r.promise_fulfilled)
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
