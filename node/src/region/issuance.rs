//! Issuance: a certificate planned against the state, built and signed outside the lock, then
//! logged with its bytes under it.

use std::sync::Arc;

use tongban_core::cert::{self, Draft, Holder, Predecessor, TrustLevel};
use tongban_core::cert::{FieldName, FieldValue};
use tongban_core::codes::Code;
use tongban_core::ids::{Identifier, IssuerCode, TypeCode};
use tongban_core::keys::{KeyId, SecretKey};
use tongban_core::log::entry::{Act, LogEntry};
use tongban_core::log::state::CertRecord;
use tongban_core::status::{self, Succession};
use tongban_core::trust::SealInfo;
use tongban_core::values::{ShortText, Time};

use crate::keyfile::random;
use crate::log::{Blob, RequestRow};
use crate::refusal::{Kind, Refusal};

use super::request_marker::{carrying, on_blocking_thread};
use super::sequencer::Sequencer;
use super::{Region, now, refuse_revoked, state};

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
pub(super) struct PreparedIssuance {
    pub(super) id: Identifier,
    pub(super) digest: [u8; 32],
    pub(super) bytes: Vec<u8>,
    pub(super) seal: KeyId,
    pub(super) key: Arc<SecretKey>,
    pub(super) entry: Vec<u8>,
    /// The rows the log's rules will read to apply `entry` (`state::reads_of`).
    pub(super) reads: Vec<(u8, Vec<u8>)>,
}

impl PreparedIssuance {
    /// The certificate's bytes, stored under the digest with the `entry`-th entry submitted.
    fn blob(&self, entry: usize) -> Blob {
        Blob {
            entry,
            digest: self.digest,
            bytes: self.bytes.clone(),
        }
    }

    /// The certificate issued, its entry logged at `log_index`.
    fn issued(self, log_index: u64) -> IssuedCertificate {
        IssuedCertificate {
            id: self.id,
            digest: self.digest,
            bytes: self.bytes,
            log_index,
        }
    }
}

/// An issued certificate as the API returns it.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    pub id: Identifier,
    pub digest: [u8; 32],
    pub bytes: Vec<u8>,
    pub log_index: u64,
}

/// The seal's description and key, the new identifier and its predecessor.
type IssuancePlan = (SealInfo, Arc<SecretKey>, Identifier, Option<Predecessor>);

impl Region {
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

    /// Issues a first version (`<type>.<agency USCC>.<serial>.001`) from an async worker, as
    /// [`Region::issue`] does on a blocking thread, without waiting on storage on the worker:
    /// the act's rows are read ahead and its durability awaited, and the sequencer lock taken
    /// only when it is free within a few tries. What would wait (the lock held on, a row the
    /// rules read that was not read ahead, a state to read again after a failed write)
    /// continues on a blocking thread. Handing every issuance to a blocking thread, which then
    /// waits twice for other threads (its rows, its commit), cost more CPU than the issuance's
    /// own work on a busy node.
    pub async fn issue_new(
        self: &Arc<Self>,
        agency: String,
        type_code: TypeCode,
        serial: String,
        spec: CertificateSpec,
        mut marker: Option<RequestRow>,
    ) -> Result<IssuedCertificate, Refusal> {
        let lineage = Lineage::New { type_code, serial };
        // The lock is released before anything is awaited (it is not for async tasks).
        let plan = match self.sequencer_now()? {
            Some(mut seq) => Some(self.plan_under(&mut seq, &agency, lineage.clone(), &spec)?),
            None => None,
        };
        let Some(plan) = plan else {
            let region = self.clone();
            return on_blocking_thread(marker, move || region.issue(&agency, lineage, spec)).await;
        };
        let prepared = self.prepare_planned(plan, spec)?;
        let ahead = self
            .ahead
            .read_later(&self.log, prepared.reads.clone())
            .await?;
        let submitted = match self.sequencer_now()? {
            Some(mut seq) => {
                // Again under the lock: a rotation or revocation logged while it was built.
                if let Some(seal) = seq.seals.get(&prepared.seal) {
                    refuse_revoked(seal)?;
                }
                let entry = prepared.entry.clone();
                match seq.apply_own_read_ahead(&self.log, entry, prepared.key.public(), &ahead)? {
                    Some(staged) => {
                        let blob = prepared.blob(0);
                        let marker = marker.take();
                        Some(carrying(marker, || {
                            self.log_applied(&mut seq, vec![staged], vec![blob])
                        })?)
                    }
                    None => None,
                }
            }
            None => None,
        };
        drop(ahead);
        let Some((index, pending)) = submitted else {
            let region = self.clone();
            return on_blocking_thread(marker, move || region.log_issuance(prepared, None)).await;
        };
        // Settled in a task of its own: this future is dropped if the client goes away, and an
        // entry submitted must still be settled (the view moved past it, or the state poisoned
        // if its batch failed, so that later acts are not built on it).
        let region = self.clone();
        let settled = tokio::spawn(async move { region.durable_later(index, pending).await });
        let log_index = settled
            .await
            .map_err(|e| Refusal::internal(format!("settling an issuance failed: {e}")))??;
        Ok(prepared.issued(log_index))
    }

    /// A certificate built and signed, with its signed `cert.issued` entry, not logged yet. The
    /// checks that name the refusal are made against the state first; the certificate is then
    /// built and signed without the lock (the costly part), and [`Region::log_issuance`] applies
    /// the entry under the lock, where the log's rules decide again against the latest state (a
    /// duplicate identifier or a seal revoked meanwhile is refused there).
    pub(super) fn prepare_issuance(
        &self,
        agency: &str,
        lineage: Lineage,
        spec: CertificateSpec,
    ) -> Result<PreparedIssuance, Refusal> {
        let plan = self.issuance_plan(agency, lineage, &spec)?;
        self.prepare_planned(plan, spec)
    }

    /// A certificate built and signed to `plan`, with its signed `cert.issued` entry.
    fn prepare_planned(
        &self,
        (info, key, id, predecessor): IssuancePlan,
        spec: CertificateSpec,
    ) -> Result<PreparedIssuance, Refusal> {
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
        let act = Act::CertIssued {
            id: id.clone(),
            digest: issued.digest,
            seal: spec.seal,
            issued: now,
            operation: predecessor.as_ref().map_or(1, |p| p.how.code()),
            predecessor: predecessor.map(|p| p.id),
            promise_deadline: spec.promise_deadline,
            status_index,
        };
        let reads = state::reads_of(&act);
        let entry = LogEntry {
            region: self.code.clone(),
            at: now,
            act,
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
            reads,
        })
    }

    /// Logs a prepared issuance and waits until it is durable; with `before`, a root-signed
    /// entry logged first in the same submission (so both are durable or neither is).
    pub(super) fn log_issuance(
        &self,
        mut prepared: PreparedIssuance,
        before: Option<Vec<u8>>,
    ) -> Result<IssuedCertificate, Refusal> {
        let ahead = self
            .ahead
            .read(&self.log, std::mem::take(&mut prepared.reads))?;
        let mut seq = self.sequencer()?;
        // Again under the lock: a rotation or revocation logged while the certificate was built.
        if let Some(seal) = seq.seals.get(&prepared.seal) {
            refuse_revoked(seal)?;
        }
        let mut entries = Vec::new();
        if let Some(before) = before {
            entries.push(seq.apply_own(&self.log, before, self.root.public())?);
        }
        match seq.apply_own_ahead(
            &self.log,
            std::mem::take(&mut prepared.entry),
            prepared.key.public(),
            Some(&ahead),
        ) {
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
        let blob = prepared.blob(last);
        let (index, pending) = self.log_applied(&mut seq, entries, vec![blob])?;
        drop(seq);
        let first = self.durable(index, pending)?;
        Ok(prepared.issued(first + last as u64))
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
        self.plan_under(&mut seq, agency, lineage, spec)
    }

    /// [`Region::issuance_plan`] under the sequencer lock `seq`. A first version's reads
    /// nothing durable (seals and their keys are in memory); a successor's reads its
    /// predecessor.
    fn plan_under(
        &self,
        seq: &mut Sequencer,
        agency: &str,
        lineage: Lineage,
        spec: &CertificateSpec,
    ) -> Result<IssuancePlan, Refusal> {
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
