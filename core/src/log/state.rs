//! A region's state as its log establishes it, entry by entry (specs/log.md §1, §7): the seals, the
//! certificates and their status. Audit replay and the node both apply entries through
//! [`RegionState::apply`], so the rules that decide whether an act is allowed exist once.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::cert::FieldName;
use crate::envelope::{Envelope, Kind};
use crate::ids::{Identifier, RegionCode, Uscc};
use crate::keys::{KeyId, PublicKey};
use crate::log::audit::FindingCode;
use crate::log::entry::{Act, LogEntry, ShareOutcome};
use crate::sharing::presentation::{self, PresentationRecord};
use crate::status::{self, ListStatus, Operation, State, Succession};
use crate::trust::{SealInfo, SealRevocation};
use crate::values::{ShortText, Time};

/// Entries may be up to this much older than the entry before them (clocks of different signers).
pub const TIME_TOLERANCE: u64 = 300;

/// Why an entry cannot follow the state: a finding code and a detail for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Rejection {
    pub code: FindingCode,
    pub detail: String,
}

fn reject<T>(code: FindingCode, detail: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection {
        code,
        detail: detail.into(),
    })
}

/// A registered seal and, once revoked, the time its revocation takes effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealRecord {
    pub info: SealInfo,
    /// The signed seal object as logged.
    pub signed: Vec<u8>,
    pub revoked_from: Option<Time>,
    /// The signed revocation as logged.
    pub revocation: Option<Vec<u8>>,
}

impl SealRecord {
    /// Whether a certificate stamped at `time` may use this seal.
    pub fn usable_at(&self, time: Time) -> bool {
        self.info.valid_at(time) && self.revoked_from.is_none_or(|r| time < r)
    }
}

/// A certificate as the log knows it: no personal data, only what the entries carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRecord {
    pub state: State,
    /// The USCC of the agency whose seal stamped it.
    pub agency: String,
    pub seal: KeyId,
    pub digest: [u8; 32],
    pub issued: Time,
    pub predecessor: Option<Identifier>,
    pub promise_deadline: Option<Time>,
    pub promise_fulfilled: bool,
    /// Log index of the issuance entry, and of the last entry that changed this record.
    pub issued_at_index: u64,
    pub changed_at_index: u64,
    /// When the current state was entered.
    pub changed: Time,
    /// The reason given with the last status change, if any.
    pub reason: Option<ShortText>,
    /// Transferred out and the transfer accepted (operation 11): the receiving region takes it
    /// in, and the transfer can no longer be cancelled.
    pub transfer_accepted: bool,
    /// Its index in the region's status list.
    pub status_index: u32,
}

impl CertRecord {
    /// The record as a store keeps it: a CBOR array of its fields, optional ones as arrays of
    /// none or one item.
    pub fn encode(&self) -> Vec<u8> {
        use crate::cbor::{
            write_bool, write_bytes, write_head, write_option, write_text, write_uint,
        };
        let mut out = Vec::with_capacity(160);
        write_head(&mut out, 4, 14);
        write_uint(&mut out, self.state.code());
        write_text(&mut out, &self.agency);
        write_bytes(&mut out, &self.seal.0);
        write_bytes(&mut out, &self.digest);
        write_uint(&mut out, self.issued.seconds());
        write_option(&mut out, self.predecessor.as_ref(), |o, p| {
            write_text(o, p.as_str())
        });
        write_option(&mut out, self.promise_deadline, |o, t| {
            write_uint(o, t.seconds())
        });
        write_bool(&mut out, self.promise_fulfilled);
        write_uint(&mut out, self.issued_at_index);
        write_uint(&mut out, self.changed_at_index);
        write_uint(&mut out, self.changed.seconds());
        write_option(&mut out, self.reason.as_ref(), |o, r| {
            write_text(o, r.as_str())
        });
        write_bool(&mut out, self.transfer_accepted);
        write_uint(&mut out, u64::from(self.status_index));
        out
    }

    /// What [`CertRecord::encode`] wrote; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<CertRecord> {
        use crate::cbor::{Reader, read_option};
        let mut r = Reader::new(bytes);
        (r.array()? == 14).then_some(())?;
        let state = State::from_code(r.uint()?)?;
        let agency = r.text()?.to_owned();
        let seal = KeyId(r.bytes()?.try_into().ok()?);
        let digest = r.bytes()?.try_into().ok()?;
        let issued = Time::new(r.uint()?)?;
        let predecessor = read_option(&mut r, |r| Identifier::parse(r.text()?).ok())?;
        let promise_deadline = read_option(&mut r, |r| Time::new(r.uint()?))?;
        let promise_fulfilled = r.bool()?;
        let issued_at_index = r.uint()?;
        let changed_at_index = r.uint()?;
        let changed = Time::new(r.uint()?)?;
        let reason = read_option(&mut r, |r| ShortText::new(r.text()?))?;
        let transfer_accepted = r.bool()?;
        let status_index = u32::try_from(r.uint()?).ok()?;
        r.at_end().then_some(CertRecord {
            state,
            agency,
            seal,
            digest,
            issued,
            predecessor,
            promise_deadline,
            promise_fulfilled,
            issued_at_index,
            changed_at_index,
            changed,
            reason,
            transfer_accepted,
            status_index,
        })
    }

    /// What the region's status list says of this certificate (specs/status.md §5).
    pub fn list_status(&self) -> ListStatus {
        // A revocation is the promise's lapse only when made at or after the deadline: an
        // agency's revocation before it shows as revoked whatever reason it gives.
        let lapsed = self.reason.as_ref().map(ShortText::as_str) == Some(status::PROMISE_LAPSED)
            && self.promise_deadline.is_some_and(|pd| self.changed >= pd);
        ListStatus::of(
            self.state,
            self.promise_deadline.map(|_| self.promise_fulfilled),
            lapsed,
        )
    }
}

/// An applied entry's signature, not verified yet, with the key that must have made it.
#[derive(Debug)]
pub(crate) struct PendingSignature<'a> {
    envelope: Envelope<'a>,
    key: PublicKey,
}

impl<'a> PendingSignature<'a> {
    pub(crate) fn new(envelope: Envelope<'a>, key: &PublicKey) -> PendingSignature<'a> {
        PendingSignature {
            envelope,
            key: key.clone(),
        }
    }

    pub(crate) fn envelope(&self) -> &Envelope<'a> {
        &self.envelope
    }

    pub(crate) fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The strict check [`RegionState::apply`] makes, with the same rejection when it fails.
    pub(crate) fn check(&self) -> Result<(), Rejection> {
        verify_entry(&self.envelope, &self.key)
    }
}

fn verify_entry(envelope: &Envelope<'_>, key: &PublicKey) -> Result<(), Rejection> {
    envelope
        .verify(key)
        .or_else(|f| reject(FindingCode::EntrySignature, f.to_string()))
}

/// What applying an entry established, for callers that count (audit statistics).
#[derive(Clone, Debug)]
pub struct Applied {
    pub signer: KeyId,
    pub entry: LogEntry,
}

/// Where a log stands: how many entries it holds (the index the next one gets) and the latest
/// `"at"` among them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub last_at: Option<Time>,
}

/// What the rules read of a region's state to judge the next entry. The state lives wherever its
/// holder keeps it (in memory for an audit, on disk beside the log for a node): the rules are the
/// same, and a store's own failure is never taken for a fault of the entry.
pub trait StateRead {
    type Error: std::error::Error + Send + Sync + 'static;
    fn seal(&self, kid: &KeyId) -> Result<Option<SealRecord>, Self::Error>;
    fn cert(&self, id: &Identifier) -> Result<Option<CertRecord>, Self::Error>;
    /// Whether another region's certificate `predecessor` was transferred in here already.
    fn transferred_in(&self, predecessor: &Identifier) -> Result<bool, Self::Error>;
    /// Where `id` is transferred out to, while it is (not taken back).
    fn transfer_out(&self, id: &Identifier) -> Result<Option<RegionCode>, Self::Error>;
    /// Whether a certificate holds status list index `index` already.
    fn status_index_taken(&self, index: u32) -> Result<bool, Self::Error>;
    /// The presentation made with the code whose digest is `code`.
    fn presentation(&self, code: &[u8; 32]) -> Result<Option<PresentationRecord>, Self::Error>;
}

/// A transfer in as a store keeps it, under its predecessor: the index of the entry that took it
/// in (8 bytes, big-endian) and the identifier issued for it.
pub fn encode_transfer_in(index: u64, id: &Identifier) -> Vec<u8> {
    let mut value = index.to_be_bytes().to_vec();
    value.extend_from_slice(id.as_str().as_bytes());
    value
}

/// What [`encode_transfer_in`] wrote.
pub fn decode_transfer_in(value: &[u8]) -> Option<(u64, Identifier)> {
    let (index, id) = value.split_first_chunk::<8>()?;
    let id = Identifier::parse(std::str::from_utf8(id).ok()?).ok()?;
    Some((u64::from_be_bytes(*index), id))
}

/// One change an entry makes to the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A seal registered or revoked: its whole record, keyed by its key id.
    Seal(SealRecord),
    Cert {
        id: Identifier,
        record: CertRecord,
    },
    /// Another region's `predecessor` taken in as `id` by the entry at `index`.
    TransferIn {
        index: u64,
        id: Identifier,
        predecessor: Identifier,
    },
    /// `id` is transferred out to `to`; `None`: no longer on its way anywhere.
    TransferOut {
        id: Identifier,
        to: Option<RegionCode>,
    },
    /// A presentation made, or resolved once more: its whole record, under its code's digest.
    Presentation {
        code: [u8; 32],
        record: PresentationRecord,
    },
}

/// Everything one entry changes: its writes, in order, and the head after it. A store applies a
/// delta whole, in the same transaction as the entry, or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta {
    pub head: Head,
    pub writes: Vec<Write>,
}

/// Why an entry was not applied: the rules refused it, or the state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Rejected(Rejection),
    #[error("the region state could not be read: {0}")]
    Store(#[source] E),
}

impl<E: std::error::Error + 'static> From<Rejection> for ApplyError<E> {
    fn from(r: Rejection) -> Self {
        ApplyError::Rejected(r)
    }
}

/// The rules of a region's log (specs/log.md §1, §7), over a state held anywhere.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub region: &'a RegionCode,
    pub root: &'a PublicKey,
}

impl<'a> Rules<'a> {
    /// Judges the entry `bytes` following `head` over `store`, its signature decided by
    /// `signature` (given the envelope and the acting key) at the point where the rules check
    /// it. Reads only: what the entry changes comes back as a [`Delta`].
    pub fn check<'b, S: StateRead, T>(
        &self,
        head: Head,
        store: &S,
        bytes: &'b [u8],
        signature: impl FnOnce(Envelope<'b>, &PublicKey) -> Result<T, Rejection>,
    ) -> Result<(Applied, T, Delta), ApplyError<S::Error>> {
        let (envelope, entry) = LogEntry::open(bytes)
            .or_else(|f| reject(FindingCode::EntryMalformed, f.to_string()))?;
        if entry.region != *self.region {
            return refuse(
                FindingCode::EntryRegion,
                format!("entry of region {}", entry.region),
            );
        }
        let signer = envelope.kid;
        let key = self.acting_key(store, signer, &entry.act)?;
        let checked = signature(envelope, &key)?;
        if let Some(last) = head.last_at
            && entry.at.seconds() + TIME_TOLERANCE < last.seconds()
        {
            return refuse(
                FindingCode::TimeRegression,
                format!("at {} after {}", entry.at.to_rfc3339(), last.to_rfc3339()),
            );
        }
        let writes = Judgement::new(self, store, head.size, &entry).writes()?;
        let delta = Delta {
            head: Head {
                size: head.size + 1,
                last_at: Some(head.last_at.map_or(entry.at, |l| l.max(entry.at))),
            },
            writes,
        };
        Ok((Applied { signer, entry }, checked, delta))
    }

    /// The key allowed to sign `act`, given the state so far.
    fn acting_key<S: StateRead>(
        &self,
        store: &S,
        signer: KeyId,
        act: &Act,
    ) -> Result<PublicKey, ApplyError<S::Error>> {
        let root = self.root.kid() == signer;
        let key = match act {
            Act::SealRegistered { .. }
            | Act::SealRevoked { .. }
            | Act::Receipts { .. }
            | Act::ShareAnswered { .. }
            | Act::ShareReceived { .. }
            | Act::ProofReceived { .. }
            | Act::PresentationCreated { .. }
            | Act::PresentationAnswered { .. }
            | Act::StatusChanged {
                operation: Operation::AcceptTransfer,
                ..
            } => root.then(|| self.root.clone()),
            Act::CertIssued { seal, .. } => match signer == *seal {
                true => read(store.seal(seal))?.map(|s| s.info.key),
                false => None,
            },
            Act::StatusChanged { id, .. } | Act::PromiseFulfilled { id } => {
                let cert = known(store, id)?;
                match read(store.seal(&signer))? {
                    Some(seal) if seal.info.agency.as_str() == cert.agency => Some(seal.info.key),
                    _ => root.then(|| self.root.clone()),
                }
            }
        };
        key.ok_or_else(|| {
            ApplyError::Rejected(Rejection {
                code: FindingCode::EntrySignature,
                detail: format!("{signer} may not sign a {} entry here", act.type_name()),
            })
        })
    }

    fn region_object<'b>(&self, bytes: &'b [u8], kind: Kind) -> Result<Envelope<'b>, Rejection> {
        let envelope = Envelope::open(bytes, kind)
            .or_else(|f| reject(FindingCode::SealInvalid, f.to_string()))?;
        if envelope.kid != self.root.kid() {
            return reject(FindingCode::SealInvalid, "not signed by the region root");
        }
        envelope
            .verify(self.root)
            .or_else(|f| reject(FindingCode::SealInvalid, f.to_string()))?;
        Ok(envelope)
    }
}

fn read<T, E: std::error::Error + 'static>(r: Result<T, E>) -> Result<T, ApplyError<E>> {
    r.map_err(ApplyError::Store)
}

fn known<S: StateRead>(store: &S, id: &Identifier) -> Result<CertRecord, ApplyError<S::Error>> {
    read(store.cert(id))?.ok_or_else(|| {
        ApplyError::Rejected(Rejection {
            code: FindingCode::UnknownCertificate,
            detail: id.as_str().to_owned(),
        })
    })
}

fn refuse<T, E: std::error::Error + 'static>(
    code: FindingCode,
    detail: impl Into<String>,
) -> Result<T, ApplyError<E>> {
    Err(ApplyError::Rejected(Rejection {
        code,
        detail: detail.into(),
    }))
}

/// One entry's act, judged against the state: every check comes before the first write, so a
/// refused entry changes nothing.
struct Judgement<'r, 's, S> {
    rules: &'r Rules<'r>,
    store: &'s S,
    index: u64,
    entry: &'s LogEntry,
}

impl<'r, 's, S: StateRead> Judgement<'r, 's, S> {
    fn new(rules: &'r Rules<'r>, store: &'s S, index: u64, entry: &'s LogEntry) -> Self {
        Judgement {
            rules,
            store,
            index,
            entry,
        }
    }

    fn writes(&self) -> Result<Vec<Write>, ApplyError<S::Error>> {
        let entry = self.entry;
        match &entry.act {
            Act::SealRegistered { seal } => self.register_seal(seal),
            Act::SealRevoked { revocation } => self.revoke_seal(revocation),
            Act::CertIssued {
                id,
                digest,
                seal,
                issued,
                operation,
                predecessor,
                promise_deadline,
                status_index,
            } => {
                let Some(record) = read(self.store.seal(seal))? else {
                    return refuse(FindingCode::SealNotValidAtIssue, "seal not registered");
                };
                if !record.usable_at(*issued) {
                    return refuse(
                        FindingCode::SealNotValidAtIssue,
                        format!(
                            "seal {} not usable at {}",
                            record.info.id,
                            issued.to_rfc3339()
                        ),
                    );
                }
                if read(self.store.cert(id))?.is_some() {
                    return refuse(FindingCode::DuplicateIdentifier, id.as_str());
                }
                if read(self.store.status_index_taken(*status_index))? {
                    return refuse(
                        FindingCode::DuplicateStatusIndex,
                        format!("status index {status_index} is another certificate's"),
                    );
                }
                let mut writes = Vec::with_capacity(3);
                let succession = Succession::from_code(*operation);
                match (predecessor, succession) {
                    // The predecessor of a transfer in lives in another region's log; this log
                    // can only see that it is not one of its own and not taken twice.
                    (Some(prev), Some(Succession::TransferIn)) => {
                        if read(self.store.cert(prev))?.is_some() {
                            return refuse(
                                FindingCode::TransitionNotAllowed,
                                format!("{prev} is this region's own: nothing to transfer in"),
                            );
                        }
                        if read(self.store.transferred_in(prev))? {
                            return refuse(
                                FindingCode::TransitionNotAllowed,
                                format!("{prev} was already transferred in"),
                            );
                        }
                        writes.push(Write::TransferIn {
                            index: self.index,
                            id: id.clone(),
                            predecessor: prev.clone(),
                        });
                    }
                    (Some(prev), Some(how)) => {
                        let mut pred = known(self.store, prev)?;
                        pred.state = status::succeed(pred.state, how)
                            .or_else(|f| refuse(FindingCode::TransitionNotAllowed, f.detail))?;
                        pred.changed_at_index = self.index;
                        pred.changed = entry.at;
                        writes.push(Write::Cert {
                            id: prev.clone(),
                            record: pred,
                        });
                    }
                    _ => {}
                }
                writes.push(Write::Cert {
                    id: id.clone(),
                    record: CertRecord {
                        state: State::Valid,
                        agency: record.info.agency.as_str().to_owned(),
                        seal: *seal,
                        digest: *digest,
                        issued: *issued,
                        predecessor: predecessor.clone(),
                        promise_deadline: *promise_deadline,
                        promise_fulfilled: false,
                        issued_at_index: self.index,
                        changed_at_index: self.index,
                        changed: entry.at,
                        reason: None,
                        transfer_accepted: false,
                        status_index: *status_index,
                    },
                });
                Ok(writes)
            }
            Act::StatusChanged {
                id,
                operation,
                to,
                destination,
                reason,
            } => {
                let mut cert = known(self.store, id)?;
                let next = status::transition(cert.state, *operation)
                    .or_else(|f| refuse(FindingCode::TransitionNotAllowed, f.detail))?;
                let going_to = read(self.store.transfer_out(id))?;
                let going = || going_to.as_ref().map_or("?", |r| r.as_str());
                match operation {
                    Operation::CancelTransferOut if cert.transfer_accepted => {
                        return refuse(
                            FindingCode::TransitionNotAllowed,
                            format!(
                                "the transfer of {id} to {} was accepted: it cannot be cancelled",
                                going()
                            ),
                        );
                    }
                    Operation::AcceptTransfer if cert.transfer_accepted => {
                        return refuse(
                            FindingCode::TransitionNotAllowed,
                            format!("the transfer of {id} was accepted already"),
                        );
                    }
                    Operation::AcceptTransfer if *destination != going_to => {
                        return refuse(
                            FindingCode::TransitionNotAllowed,
                            format!(
                                "{id} is transferred out to {}, not to the accepting region",
                                going()
                            ),
                        );
                    }
                    _ => {}
                }
                if next != *to {
                    return refuse(
                        FindingCode::TransitionNotAllowed,
                        format!("operation leads to {next}, entry says {to}"),
                    );
                }
                if destination.as_ref() == Some(self.rules.region) {
                    return refuse(
                        FindingCode::TransitionNotAllowed,
                        "a transfer out to the log's own region",
                    );
                }
                let mut writes = Vec::with_capacity(2);
                match (next, destination) {
                    (State::TransferredOut, Some(dest)) => writes.push(Write::TransferOut {
                        id: id.clone(),
                        to: Some(dest.clone()),
                    }),
                    // Taken back (operation 10): no longer on its way anywhere.
                    _ if going_to.is_some() => writes.push(Write::TransferOut {
                        id: id.clone(),
                        to: None,
                    }),
                    _ => {}
                }
                cert.changed_at_index = self.index;
                if *operation == Operation::AcceptTransfer {
                    // Still 06 since the transfer out, for the reason given then.
                    cert.transfer_accepted = true;
                } else {
                    cert.state = next;
                    cert.changed = entry.at;
                    cert.reason = reason.clone();
                }
                writes.push(Write::Cert {
                    id: id.clone(),
                    record: cert,
                });
                Ok(writes)
            }
            Act::PromiseFulfilled { id } => {
                let mut cert = known(self.store, id)?;
                if cert.promise_deadline.is_none()
                    || cert.promise_fulfilled
                    || cert.state.is_terminal()
                {
                    return refuse(
                        FindingCode::TransitionNotAllowed,
                        format!("{id} has no open promise"),
                    );
                }
                cert.promise_fulfilled = true;
                cert.changed_at_index = self.index;
                Ok(vec![Write::Cert {
                    id: id.clone(),
                    record: cert,
                }])
            }
            Act::Receipts {
                count,
                cross_region,
                ..
            } => match cross_region > count {
                true => refuse(
                    FindingCode::EntryMalformed,
                    "more cross-region receipts than receipts",
                ),
                false => Ok(Vec::new()),
            },
            Act::ShareAnswered {
                id,
                outcome: ShareOutcome::Given { .. },
                ..
            } => {
                let cert = known(self.store, id)?;
                if cert.state != State::Valid {
                    return refuse(
                        FindingCode::ShareInvalid,
                        format!("a copy of {id} given in state {}", cert.state),
                    );
                }
                Ok(Vec::new())
            }
            Act::PresentationCreated {
                agency,
                id,
                code,
                fields,
                expires,
                uses,
            } => self.create_presentation(agency, id, code, fields, *expires, *uses),
            Act::PresentationAnswered {
                code,
                id,
                outcome: ShareOutcome::Given { .. },
                ..
            } => self.redeem_presentation(code, id.as_ref()),
            // A refusal, a copy received, a proof received: facts about other parties' objects,
            // which this log commits to by digest and does not interpret.
            Act::ShareAnswered { .. }
            | Act::ShareReceived { .. }
            | Act::ProofReceived { .. }
            | Act::PresentationAnswered { .. } => Ok(Vec::new()),
        }
    }

    /// `presentation.created`: a new code for a valid certificate of this log, within the
    /// limits of specs/presentation.md §2.2 as of the entry's time.
    fn create_presentation(
        &self,
        agency: &Uscc,
        id: &Identifier,
        code: &[u8; 32],
        fields: &[FieldName],
        expires: Time,
        uses: u32,
    ) -> Result<Vec<Write>, ApplyError<S::Error>> {
        let cert = known(self.store, id)?;
        let at = self.entry.at.seconds();
        let lifetime = expires.seconds().saturating_sub(at);
        let bad = if cert.state != State::Valid {
            Some(format!("a code for {id} made in state {}", cert.state))
        } else if read(self.store.presentation(code))?.is_some() {
            Some("a code made twice".to_owned())
        } else if expires.seconds() <= at || lifetime > presentation::MAX_LIFETIME {
            Some(format!("a code living {lifetime} s"))
        } else if !(1..=presentation::MAX_USES).contains(&uses) {
            Some(format!("a code for {uses} uses"))
        } else {
            None
        };
        if let Some(detail) = bad {
            return refuse(FindingCode::PresentationInvalid, detail);
        }
        Ok(vec![Write::Presentation {
            code: *code,
            record: PresentationRecord {
                agency: agency.clone(),
                id: id.clone(),
                fields: fields.to_vec(),
                expires,
                uses,
                used: 0,
            },
        }])
    }

    /// `presentation.answered` with a copy given: a code of this log for that certificate, still
    /// redeemable at the entry's time, for a certificate still valid; one use spent.
    fn redeem_presentation(
        &self,
        code: &[u8; 32],
        id: Option<&Identifier>,
    ) -> Result<Vec<Write>, ApplyError<S::Error>> {
        let Some(mut record) = read(self.store.presentation(code))? else {
            return refuse(
                FindingCode::PresentationInvalid,
                "a copy for an unknown code",
            );
        };
        if id != Some(&record.id) {
            return refuse(
                FindingCode::PresentationInvalid,
                format!(
                    "the answer names another certificate than the code's {}",
                    record.id
                ),
            );
        }
        if let Err(failure) = record.redeemable(self.entry.at) {
            return refuse(FindingCode::PresentationInvalid, failure.to_string());
        }
        let cert = known(self.store, &record.id)?;
        if cert.state != State::Valid {
            return refuse(
                FindingCode::PresentationInvalid,
                format!("a copy of {} given in state {}", record.id, cert.state),
            );
        }
        record.used += 1;
        Ok(vec![Write::Presentation {
            code: *code,
            record,
        }])
    }

    fn register_seal(&self, bytes: &[u8]) -> Result<Vec<Write>, ApplyError<S::Error>> {
        let envelope = self.rules.region_object(bytes, Kind::Seal)?;
        let info = SealInfo::from_payload(envelope.payload)
            .or_else(|b| reject(FindingCode::SealInvalid, b.detail))?;
        if info.region != *self.rules.region || read(self.store.seal(&info.key.kid()))?.is_some() {
            return refuse(
                FindingCode::SealInvalid,
                format!("seal {} of another region or registered twice", info.id),
            );
        }
        Ok(vec![Write::Seal(SealRecord {
            info,
            signed: bytes.to_vec(),
            revoked_from: None,
            revocation: None,
        })])
    }

    fn revoke_seal(&self, bytes: &[u8]) -> Result<Vec<Write>, ApplyError<S::Error>> {
        let envelope = self.rules.region_object(bytes, Kind::SealRevocation)?;
        let revocation = SealRevocation::from_payload(envelope.payload)
            .or_else(|b| reject(FindingCode::SealInvalid, b.detail))?;
        let seal = match revocation.region == *self.rules.region {
            true => read(self.store.seal(&revocation.seal))?,
            false => None,
        };
        match seal {
            Some(mut seal) if seal.revoked_from.is_none() => {
                seal.revoked_from = Some(revocation.revoked_from);
                seal.revocation = Some(bytes.to_vec());
                Ok(vec![Write::Seal(seal)])
            }
            _ => refuse(
                FindingCode::SealInvalid,
                "revocation of an unknown or already revoked seal",
            ),
        }
    }
}

/// Where a replay keeps what the log establishes beyond its seals (which it holds itself: a bounded
/// set): certificates, transfers, status indexes. In memory for a small log ([`MemoryStore`]), on
/// disk for a province's (`tongban-verify audit replay`'s temporary store). The rules read it;
/// it takes a window's changes only once every rule and signature of the window held.
pub trait AuditStore: StateRead {
    /// Takes the changes of the entries that follow those taken so far, in order (their seal
    /// writes too, which a store may ignore).
    fn take(&mut self, deltas: &[Delta]) -> Result<(), Self::Error>;
    /// Every certificate's record, in no particular order, while `each` returns true.
    fn each_cert(
        &self,
        each: &mut dyn FnMut(&Identifier, &CertRecord) -> bool,
    ) -> Result<(), Self::Error>;
    /// Every transfer in: (entry index, identifier issued, predecessor).
    fn each_transfer_in(
        &self,
        each: &mut dyn FnMut(u64, &Identifier, &Identifier),
    ) -> Result<(), Self::Error>;
    /// Every certificate transferred out and not taken back, with its receiving region.
    fn each_transfer_out(
        &self,
        each: &mut dyn FnMut(&Identifier, &RegionCode),
    ) -> Result<(), Self::Error>;
}

/// An [`AuditStore`] in memory: what a test, a small log's audit or a small replica uses.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    certs: HashMap<Identifier, CertRecord>,
    transfers_in: Vec<(u64, Identifier, Identifier)>,
    /// Predecessors already transferred in: each may be only once.
    transferred_predecessors: HashSet<Identifier>,
    transfers_out: BTreeMap<Identifier, RegionCode>,
    status_indexes: HashSet<u32>,
    presentations: HashMap<[u8; 32], PresentationRecord>,
}

impl MemoryStore {
    fn take_one(&mut self, delta: &Delta) {
        for write in &delta.writes {
            match write {
                Write::Seal(_) => {}
                Write::Cert { id, record } => {
                    self.status_indexes.insert(record.status_index);
                    self.certs.insert(id.clone(), record.clone());
                }
                Write::TransferIn {
                    index,
                    id,
                    predecessor,
                } => {
                    self.transferred_predecessors.insert(predecessor.clone());
                    self.transfers_in
                        .push((*index, id.clone(), predecessor.clone()));
                }
                Write::TransferOut { id, to: Some(to) } => {
                    self.transfers_out.insert(id.clone(), to.clone());
                }
                Write::TransferOut { id, to: None } => {
                    self.transfers_out.remove(id);
                }
                Write::Presentation { code, record } => {
                    self.presentations.insert(*code, record.clone());
                }
            }
        }
    }
}

impl StateRead for MemoryStore {
    type Error = std::convert::Infallible;

    fn seal(&self, _: &KeyId) -> Result<Option<SealRecord>, Self::Error> {
        // Seals are their holder's (RegionState, a replay), never the store's.
        Ok(None)
    }

    fn cert(&self, id: &Identifier) -> Result<Option<CertRecord>, Self::Error> {
        Ok(self.certs.get(id).cloned())
    }

    fn transferred_in(&self, predecessor: &Identifier) -> Result<bool, Self::Error> {
        Ok(self.transferred_predecessors.contains(predecessor))
    }

    fn transfer_out(&self, id: &Identifier) -> Result<Option<RegionCode>, Self::Error> {
        Ok(self.transfers_out.get(id).cloned())
    }

    fn status_index_taken(&self, index: u32) -> Result<bool, Self::Error> {
        Ok(self.status_indexes.contains(&index))
    }

    fn presentation(&self, code: &[u8; 32]) -> Result<Option<PresentationRecord>, Self::Error> {
        Ok(self.presentations.get(code).cloned())
    }
}

impl AuditStore for MemoryStore {
    fn take(&mut self, deltas: &[Delta]) -> Result<(), Self::Error> {
        for delta in deltas {
            self.take_one(delta);
        }
        Ok(())
    }

    fn each_cert(
        &self,
        each: &mut dyn FnMut(&Identifier, &CertRecord) -> bool,
    ) -> Result<(), Self::Error> {
        for (id, record) in &self.certs {
            if !each(id, record) {
                break;
            }
        }
        Ok(())
    }

    fn each_transfer_in(
        &self,
        each: &mut dyn FnMut(u64, &Identifier, &Identifier),
    ) -> Result<(), Self::Error> {
        for (index, id, predecessor) in &self.transfers_in {
            each(*index, id, predecessor);
        }
        Ok(())
    }

    fn each_transfer_out(
        &self,
        each: &mut dyn FnMut(&Identifier, &RegionCode),
    ) -> Result<(), Self::Error> {
        for (id, to) in &self.transfers_out {
            each(id, to);
        }
        Ok(())
    }
}

/// The state of one region's log after some prefix of its entries, held in memory: what a test
/// or a small replica uses. A node keeps its own on disk beside its log; an audit, in whichever
/// [`AuditStore`] it is given.
#[derive(Clone, Debug)]
pub struct RegionState {
    region: RegionCode,
    root: PublicKey,
    head: Head,
    seals: HashMap<KeyId, SealRecord>,
    store: MemoryStore,
}

impl StateRead for RegionState {
    type Error = std::convert::Infallible;

    fn seal(&self, kid: &KeyId) -> Result<Option<SealRecord>, Self::Error> {
        Ok(self.seals.get(kid).cloned())
    }

    fn cert(&self, id: &Identifier) -> Result<Option<CertRecord>, Self::Error> {
        self.store.cert(id)
    }

    fn transferred_in(&self, predecessor: &Identifier) -> Result<bool, Self::Error> {
        self.store.transferred_in(predecessor)
    }

    fn transfer_out(&self, id: &Identifier) -> Result<Option<RegionCode>, Self::Error> {
        self.store.transfer_out(id)
    }

    fn status_index_taken(&self, index: u32) -> Result<bool, Self::Error> {
        self.store.status_index_taken(index)
    }

    fn presentation(&self, code: &[u8; 32]) -> Result<Option<PresentationRecord>, Self::Error> {
        self.store.presentation(code)
    }
}

fn rejection(e: ApplyError<std::convert::Infallible>) -> Rejection {
    match e {
        ApplyError::Rejected(r) => r,
        ApplyError::Store(never) => match never {},
    }
}

impl RegionState {
    /// The empty log of `region`, whose root key is `root`.
    pub fn new(region: RegionCode, root: PublicKey) -> RegionState {
        RegionState {
            region,
            root,
            head: Head::default(),
            seals: HashMap::new(),
            store: MemoryStore::default(),
        }
    }

    pub fn region(&self) -> &RegionCode {
        &self.region
    }

    pub fn root(&self) -> &PublicKey {
        &self.root
    }

    /// How many entries have been applied (the index the next entry gets).
    pub fn size(&self) -> u64 {
        self.head.size
    }

    /// The latest `"at"` applied.
    pub fn last_at(&self) -> Option<Time> {
        self.head.last_at
    }

    pub fn head(&self) -> Head {
        self.head
    }

    pub fn seal(&self, kid: &KeyId) -> Option<&SealRecord> {
        self.seals.get(kid)
    }

    pub fn seals(&self) -> impl Iterator<Item = &SealRecord> {
        self.seals.values()
    }

    pub fn cert(&self, id: &str) -> Option<&CertRecord> {
        self.store.certs.get(id)
    }

    pub fn certs(&self) -> impl Iterator<Item = (&Identifier, &CertRecord)> {
        self.store.certs.iter()
    }

    /// Transfers in: (entry index, identifier issued, predecessor identifier).
    pub fn transfers_in(&self) -> &[(u64, Identifier, Identifier)] {
        &self.store.transfers_in
    }

    /// Certificates transferred out and not taken back: identifier → receiving region.
    pub fn transfers_out(&self) -> &BTreeMap<Identifier, RegionCode> {
        &self.store.transfers_out
    }

    /// Applies the next entry of the log. On a rejection the state is unchanged, so a node can
    /// try an act here before it logs it.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<Applied, Rejection> {
        self.apply_checked(bytes, |envelope, key| verify_entry(&envelope, key))
            .map(|(applied, ())| applied)
    }

    /// Applies an entry its caller has just signed with the secret key of `signer`: every rule
    /// of [`RegionState::apply`], the acting key included, except the strict verification of the
    /// signature, which holds by construction when the acting key is `signer`.
    pub fn apply_own(&mut self, bytes: &[u8], signer: &PublicKey) -> Result<Applied, Rejection> {
        self.apply_checked(bytes, |_, key| own_signature(key, signer))
            .map(|(applied, ())| applied)
    }

    fn apply_checked<'a, T>(
        &mut self,
        bytes: &'a [u8],
        signature: impl FnOnce(Envelope<'a>, &PublicKey) -> Result<T, Rejection>,
    ) -> Result<(Applied, T), Rejection> {
        let rules = Rules {
            region: &self.region,
            root: &self.root,
        };
        let (applied, checked, delta) = rules
            .check(self.head, &*self, bytes, signature)
            .map_err(rejection)?;
        self.take(delta);
        Ok((applied, checked))
    }

    /// Takes a delta the rules made over this state (by [`Rules::check`], as a replica does
    /// with this state as its store); nothing is checked here.
    pub fn take(&mut self, delta: Delta) {
        for write in &delta.writes {
            if let Write::Seal(record) = write {
                self.seals.insert(record.info.key.kid(), record.clone());
            }
        }
        self.store.take_one(&delta);
        self.head = delta.head;
    }
}

/// The signature rule of an entry its caller has just signed with `signer`'s secret key: the
/// acting key must be `signer`, and then the signature holds by construction.
pub fn own_signature(key: &PublicKey, signer: &PublicKey) -> Result<(), Rejection> {
    if key == signer {
        Ok(())
    } else {
        reject(
            FindingCode::EntrySignature,
            "signed with another key than the one that may sign it",
        )
    }
}

/// The strict signature rule of an entry read from a log.
pub fn checked_signature(envelope: Envelope<'_>, key: &PublicKey) -> Result<(), Rejection> {
    verify_entry(&envelope, key)
}

/// [`checked_signature`] for an envelope kept to be checked later (on another thread).
pub fn verify_signature(envelope: &Envelope<'_>, key: &PublicKey) -> Result<(), Rejection> {
    verify_entry(envelope, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::log::sample;
    use crate::testkit::region_code;

    type Replayed = (RegionState, Vec<Vec<u8>>);

    fn replayed() -> Result<Replayed, Box<dyn std::error::Error>> {
        let log = sample()?;
        let root = crate::testkit::key("region 341200 root")?.public().clone();
        let mut state = RegionState::new(region_code("341200")?, root);
        for entry in &log.entries {
            state.apply(entry)?;
        }
        Ok((state, log.entries))
    }

    #[test]
    fn only_a_revocation_at_the_deadline_reads_as_a_lapsed_promise()
    -> Result<(), Box<dyn std::error::Error>> {
        let time = |s: u64| Time::new(s).ok_or("time");
        let record = CertRecord {
            state: State::Revoked,
            agency: "91340100MA2N0AAAA1".into(),
            seal: KeyId([7; 16]),
            digest: [9; 32],
            issued: time(1_700_000_000)?,
            predecessor: None,
            promise_deadline: Some(time(1_700_086_400)?),
            promise_fulfilled: false,
            issued_at_index: 5,
            changed_at_index: 9,
            changed: time(1_700_086_400)?,
            reason: ShortText::new(status::PROMISE_LAPSED),
            transfer_accepted: false,
            status_index: 3,
        };
        assert_eq!(record.list_status(), ListStatus::PromiseOpen);
        // The same reason given by a revocation before the deadline: revoked, not "promise open"
        // (which a verifier would take for valid until the deadline).
        let early = CertRecord {
            changed: time(1_700_000_100)?,
            ..record
        };
        assert_eq!(early.list_status(), ListStatus::State(State::Revoked));
        Ok(())
    }

    #[test]
    fn a_certificate_record_decodes_to_the_record_it_encodes()
    -> Result<(), Box<dyn std::error::Error>> {
        let time = |s: u64| Time::new(s).ok_or("time");
        let agency = crate::testkit::make_uscc("91340100MA2N0AAAA")?;
        let id =
            |serial| crate::testkit::identifier(crate::testkit::BUSINESS_LICENCE, &agency, serial);
        let full = CertRecord {
            state: State::Suspended,
            agency: "91340100MA2N0AAAA1".into(),
            seal: KeyId([7; 16]),
            digest: [9; 32],
            issued: time(1_700_000_000)?,
            predecessor: Some(id("000001")?),
            promise_deadline: Some(time(1_800_000_000)?),
            promise_fulfilled: false,
            issued_at_index: 5,
            changed_at_index: 9,
            changed: time(1_700_000_500)?,
            reason: ShortText::new("核查中"),
            transfer_accepted: true,
            status_index: 70_000,
        };
        assert_eq!(CertRecord::decode(&full.encode()), Some(full.clone()));
        let bare = CertRecord {
            predecessor: None,
            promise_deadline: None,
            reason: None,
            ..full
        };
        let bytes = bare.encode();
        assert_eq!(CertRecord::decode(&bytes), Some(bare));
        // Cut short or extended, a record does not decode.
        assert_eq!(CertRecord::decode(&bytes[..bytes.len() - 1]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(CertRecord::decode(&longer), None);
        Ok(())
    }

    #[test]
    fn the_sample_log_establishes_its_certificates() -> Result<(), Box<dyn std::error::Error>> {
        let (state, entries) = replayed()?;
        assert_eq!(state.size(), entries.len() as u64);
        let renewed = state
            .certs()
            .find(|(_, c)| c.promise_deadline.is_some())
            .ok_or("the sample's renewal carries a promise")?;
        assert!(renewed.1.promise_fulfilled);
        assert!(renewed.1.predecessor.is_some());
        Ok(())
    }

    #[test]
    fn an_own_entry_applies_only_when_its_signer_is_the_acting_key()
    -> Result<(), Box<dyn std::error::Error>> {
        let log = sample()?;
        let first = log.entries.first().ok_or("sample is empty")?;
        let root = crate::testkit::key("region 341200 root")?.public().clone();
        let other = crate::testkit::key("region 370100 root")?.public().clone();
        let mut state = RegionState::new(region_code("341200")?, root.clone());
        let refused = state.apply_own(first, &other).map(|_| ());
        assert_eq!(
            refused.map_err(|r| r.code),
            Err(FindingCode::EntrySignature)
        );
        assert_eq!(state.size(), 0);
        state.apply_own(first, &root)?;
        assert_eq!(state.size(), 1);
        Ok(())
    }

    #[test]
    fn a_rejected_entry_changes_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let (mut state, entries) = replayed()?;
        let snapshot = |s: &RegionState| format!("{:?}", s.certs().collect::<BTreeMap<_, _>>());
        let before = snapshot(&state);
        // Fulfilling the same promise twice.
        let fulfilment = entries.last().ok_or("sample is empty")?;
        let twice = state.apply(fulfilment).map(|_| ());
        assert_eq!(
            twice.map_err(|r| r.code),
            Err(FindingCode::TransitionNotAllowed)
        );
        assert_eq!(state.size(), entries.len() as u64);
        assert_eq!(snapshot(&state), before);

        // Issuing the same identifier twice, right after the first issuance.
        let issuance = entries
            .iter()
            .position(|e| {
                matches!(
                    LogEntry::open(e),
                    Ok((
                        _,
                        LogEntry {
                            act: Act::CertIssued { .. },
                            ..
                        }
                    ))
                )
            })
            .ok_or("sample has an issuance")?;
        let root = crate::testkit::key("region 341200 root")?.public().clone();
        let mut early = RegionState::new(region_code("341200")?, root);
        for entry in &entries[..=issuance] {
            early.apply(entry)?;
        }
        let before = snapshot(&early);
        let again = early.apply(&entries[issuance]).map(|_| ());
        assert_eq!(
            again.map_err(|r| r.code),
            Err(FindingCode::DuplicateIdentifier)
        );
        assert_eq!(early.size(), issuance as u64 + 1);
        assert_eq!(snapshot(&early), before);
        Ok(())
    }
}
