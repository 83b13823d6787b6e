//! A region's state as its log establishes it, entry by entry (specs/log.md §1, §7): the seals, the
//! certificates and their status. Audit replay and the node both apply entries through
//! [`RegionState::apply`], so the rules that decide whether an act is allowed exist once.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::envelope::{Envelope, Kind};
use crate::ids::{Identifier, RegionCode};
use crate::keys::{KeyId, PublicKey};
use crate::log::audit::FindingCode;
use crate::log::entry::{Act, LogEntry, ShareOutcome};
use crate::status::{self, Operation, State, Succession};
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
#[derive(Clone, Debug)]
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
}

/// An applied entry's signature, not verified yet, with the key that must have made it.
#[derive(Debug)]
pub(crate) struct PendingSignature<'a> {
    envelope: Envelope<'a>,
    key: PublicKey,
}

impl PendingSignature<'_> {
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

/// The state of one region's log after some prefix of its entries.
#[derive(Clone, Debug)]
pub struct RegionState {
    region: RegionCode,
    root: PublicKey,
    seals: HashMap<KeyId, SealRecord>,
    certs: HashMap<Identifier, CertRecord>,
    last_at: Option<Time>,
    size: u64,
    transfers_in: Vec<(u64, String, String)>,
    /// Predecessors already transferred in: each may be only once.
    transferred_predecessors: HashSet<String>,
    transfers_out: BTreeMap<String, RegionCode>,
}

impl RegionState {
    /// The empty log of `region`, whose root key is `root`.
    pub fn new(region: RegionCode, root: PublicKey) -> RegionState {
        RegionState {
            region,
            root,
            seals: HashMap::new(),
            certs: HashMap::new(),
            last_at: None,
            size: 0,
            transfers_in: Vec::new(),
            transferred_predecessors: HashSet::new(),
            transfers_out: BTreeMap::new(),
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
        self.size
    }

    /// The latest `"at"` applied.
    pub fn last_at(&self) -> Option<Time> {
        self.last_at
    }

    pub fn seal(&self, kid: &KeyId) -> Option<&SealRecord> {
        self.seals.get(kid)
    }

    pub fn seals(&self) -> impl Iterator<Item = &SealRecord> {
        self.seals.values()
    }

    pub fn cert(&self, id: &str) -> Option<&CertRecord> {
        self.certs.get(id)
    }

    pub fn certs(&self) -> impl Iterator<Item = (&Identifier, &CertRecord)> {
        self.certs.iter()
    }

    /// Transfers in: (entry index, identifier issued, predecessor identifier).
    pub fn transfers_in(&self) -> &[(u64, String, String)] {
        &self.transfers_in
    }

    /// Certificates transferred out and not taken back: identifier → receiving region.
    pub fn transfers_out(&self) -> &BTreeMap<String, RegionCode> {
        &self.transfers_out
    }

    /// Applies the next entry of the log. On a rejection the state is unchanged, so a node can
    /// try an act here before it logs it.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<Applied, Rejection> {
        self.apply_checked(bytes, |envelope, key| verify_entry(&envelope, key))
            .map(|(applied, ())| applied)
    }

    /// Applies an entry its caller has just signed with the secret key of `signer`: every rule
    /// of [`RegionState::apply`], the acting key included, except the strict verification of the
    /// signature, which holds by construction when the acting key is `signer`. A node writes
    /// through here (one verification fewer per act, under its sequencer lock); replays and
    /// audits verify every signature with `apply` or [`replay`](crate::log::replay::replay).
    pub fn apply_own(&mut self, bytes: &[u8], signer: &PublicKey) -> Result<Applied, Rejection> {
        self.apply_checked(bytes, |_, key| {
            if key == signer {
                Ok(())
            } else {
                reject(
                    FindingCode::EntrySignature,
                    "signed with another key than the one that may sign it",
                )
            }
        })
        .map(|(applied, ())| applied)
    }

    /// Every rule of [`RegionState::apply`] but the signature's verification, which is handed
    /// back to be done later (and elsewhere: on another thread). Until it is, the state may hold
    /// an entry that its signature would have refused: only [`replay`](crate::log::replay::replay)
    /// calls this, and it drops the state when a signature then fails.
    pub(crate) fn apply_deferred<'a>(
        &mut self,
        bytes: &'a [u8],
    ) -> Result<(Applied, PendingSignature<'a>), Rejection> {
        self.apply_checked(bytes, |envelope, key| {
            Ok(PendingSignature {
                envelope,
                key: key.clone(),
            })
        })
    }

    /// Applies an entry with every rule, its signature decided by `signature` (given the
    /// envelope and the acting key) at the point where the rules check it.
    fn apply_checked<'a, T>(
        &mut self,
        bytes: &'a [u8],
        signature: impl FnOnce(Envelope<'a>, &PublicKey) -> Result<T, Rejection>,
    ) -> Result<(Applied, T), Rejection> {
        let (envelope, entry) = LogEntry::open(bytes)
            .or_else(|f| reject(FindingCode::EntryMalformed, f.to_string()))?;
        if entry.region != self.region {
            return reject(
                FindingCode::EntryRegion,
                format!("entry of region {}", entry.region),
            );
        }
        let signer = envelope.kid;
        let key = self.acting_key(signer, &entry.act)?;
        let checked = signature(envelope, key)?;
        if let Some(last) = self.last_at
            && entry.at.seconds() + TIME_TOLERANCE < last.seconds()
        {
            return reject(
                FindingCode::TimeRegression,
                format!("at {} after {}", entry.at.to_rfc3339(), last.to_rfc3339()),
            );
        }
        // Every check above and in `act` happens before the first change to the state.
        self.act(&entry)?;
        self.last_at = Some(self.last_at.map_or(entry.at, |l| l.max(entry.at)));
        self.size += 1;
        Ok((Applied { signer, entry }, checked))
    }

    /// The key allowed to sign `act`, given the state so far.
    fn acting_key(&self, signer: KeyId, act: &Act) -> Result<&PublicKey, Rejection> {
        let root = self.root.kid() == signer;
        let key = match act {
            Act::SealRegistered { .. }
            | Act::SealRevoked { .. }
            | Act::Receipts { .. }
            | Act::ShareAnswered { .. }
            | Act::ShareReceived { .. }
            | Act::ProofReceived { .. }
            | Act::StatusChanged {
                operation: Operation::AcceptTransfer,
                ..
            } => root.then_some(&self.root),
            Act::CertIssued { seal, .. } => (signer == *seal)
                .then(|| self.seals.get(seal).map(|s| &s.info.key))
                .flatten(),
            Act::StatusChanged { id, .. } | Act::PromiseFulfilled { id } => {
                let cert = self.known(id)?;
                match self.seals.get(&signer) {
                    Some(seal) if seal.info.agency.as_str() == cert.agency => Some(&seal.info.key),
                    _ => root.then_some(&self.root),
                }
            }
        };
        key.map_or_else(
            || {
                reject(
                    FindingCode::EntrySignature,
                    format!("{signer} may not sign a {} entry here", act.type_name()),
                )
            },
            Ok,
        )
    }

    fn known(&self, id: &Identifier) -> Result<&CertRecord, Rejection> {
        self.certs
            .get(id.as_str())
            .map_or_else(|| reject(FindingCode::UnknownCertificate, id.as_str()), Ok)
    }

    fn act(&mut self, entry: &LogEntry) -> Result<(), Rejection> {
        let index = self.size;
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
            } => {
                let record = self.seals.get(seal).map_or_else(
                    || reject(FindingCode::SealNotValidAtIssue, "seal not registered"),
                    Ok,
                )?;
                if !record.usable_at(*issued) {
                    return reject(
                        FindingCode::SealNotValidAtIssue,
                        format!(
                            "seal {} not usable at {}",
                            record.info.id,
                            issued.to_rfc3339()
                        ),
                    );
                }
                let agency = record.info.agency.as_str().to_owned();
                if self.certs.contains_key(id.as_str()) {
                    return reject(FindingCode::DuplicateIdentifier, id.as_str());
                }
                let succession = Succession::from_code(*operation);
                let predecessor_state = match (predecessor, succession) {
                    // The predecessor of a transfer in lives in another region's log; this log
                    // can only see that it is not one of its own and not taken twice.
                    (Some(prev), Some(Succession::TransferIn)) => {
                        if self.certs.contains_key(prev.as_str()) {
                            return reject(
                                FindingCode::TransitionNotAllowed,
                                format!("{prev} is this region's own: nothing to transfer in"),
                            );
                        }
                        if self.transferred_predecessors.contains(prev.as_str()) {
                            return reject(
                                FindingCode::TransitionNotAllowed,
                                format!("{prev} was already transferred in"),
                            );
                        }
                        None
                    }
                    (Some(prev), Some(how)) => Some(
                        status::succeed(self.known(prev)?.state, how)
                            .or_else(|f| reject(FindingCode::TransitionNotAllowed, f.detail))?,
                    ),
                    _ => None,
                };
                if let (Some(prev), Some(next)) = (predecessor, predecessor_state)
                    && let Some(pred) = self.certs.get_mut(prev.as_str())
                {
                    pred.state = next;
                    pred.changed_at_index = index;
                    pred.changed = entry.at;
                }
                if succession == Some(Succession::TransferIn)
                    && let Some(prev) = predecessor
                {
                    self.transfers_in.push((
                        index,
                        id.as_str().to_owned(),
                        prev.as_str().to_owned(),
                    ));
                    self.transferred_predecessors
                        .insert(prev.as_str().to_owned());
                }
                self.certs.insert(
                    id.clone(),
                    CertRecord {
                        state: State::Valid,
                        agency,
                        seal: *seal,
                        digest: *digest,
                        issued: *issued,
                        predecessor: predecessor.clone(),
                        promise_deadline: *promise_deadline,
                        promise_fulfilled: false,
                        issued_at_index: index,
                        changed_at_index: index,
                        changed: entry.at,
                        reason: None,
                        transfer_accepted: false,
                    },
                );
                Ok(())
            }
            Act::StatusChanged {
                id,
                operation,
                to,
                destination,
                reason,
            } => {
                let cert = self.known(id)?;
                let next = status::transition(cert.state, *operation)
                    .or_else(|f| reject(FindingCode::TransitionNotAllowed, f.detail))?;
                let going_to = self.transfers_out.get(id.as_str());
                match operation {
                    Operation::CancelTransferOut if cert.transfer_accepted => {
                        return reject(
                            FindingCode::TransitionNotAllowed,
                            format!(
                                "the transfer of {id} to {} was accepted: it cannot be cancelled",
                                going_to.map_or("?", |r| r.as_str())
                            ),
                        );
                    }
                    Operation::AcceptTransfer if cert.transfer_accepted => {
                        return reject(
                            FindingCode::TransitionNotAllowed,
                            format!("the transfer of {id} was accepted already"),
                        );
                    }
                    Operation::AcceptTransfer if destination.as_ref() != going_to => {
                        return reject(
                            FindingCode::TransitionNotAllowed,
                            format!(
                                "{id} is transferred out to {}, not to the accepting region",
                                going_to.map_or("?", |r| r.as_str())
                            ),
                        );
                    }
                    _ => {}
                }
                if next != *to {
                    return reject(
                        FindingCode::TransitionNotAllowed,
                        format!("operation leads to {next}, entry says {to}"),
                    );
                }
                if destination.as_ref() == Some(&self.region) {
                    return reject(
                        FindingCode::TransitionNotAllowed,
                        "a transfer out to the log's own region",
                    );
                }
                match (next, destination) {
                    (State::TransferredOut, Some(dest)) => {
                        self.transfers_out
                            .insert(id.as_str().to_owned(), dest.clone());
                    }
                    // Taken back (operation 10): no longer on its way anywhere.
                    _ => {
                        self.transfers_out.remove(id.as_str());
                    }
                }
                if let Some(cert) = self.certs.get_mut(id.as_str()) {
                    cert.changed_at_index = index;
                    if *operation == Operation::AcceptTransfer {
                        // Still 06 since the transfer out, for the reason given then.
                        cert.transfer_accepted = true;
                    } else {
                        cert.state = next;
                        cert.changed = entry.at;
                        cert.reason = reason.clone();
                    }
                }
                Ok(())
            }
            Act::PromiseFulfilled { id } => {
                let cert = self.known(id)?;
                if cert.promise_deadline.is_none()
                    || cert.promise_fulfilled
                    || cert.state.is_terminal()
                {
                    return reject(
                        FindingCode::TransitionNotAllowed,
                        format!("{id} has no open promise"),
                    );
                }
                if let Some(cert) = self.certs.get_mut(id.as_str()) {
                    cert.promise_fulfilled = true;
                    cert.changed_at_index = index;
                }
                Ok(())
            }
            Act::Receipts {
                count,
                cross_region,
                ..
            } => match cross_region > count {
                true => reject(
                    FindingCode::EntryMalformed,
                    "more cross-region receipts than receipts",
                ),
                false => Ok(()),
            },
            Act::ShareAnswered {
                id,
                outcome: ShareOutcome::Given { .. },
                ..
            } => {
                let cert = self.known(id)?;
                if cert.state != State::Valid {
                    return reject(
                        FindingCode::ShareInvalid,
                        format!("a copy of {id} given in state {}", cert.state),
                    );
                }
                Ok(())
            }
            // A refusal, a copy received, a proof received: facts about other parties' objects,
            // which this log commits to by digest and does not interpret.
            Act::ShareAnswered { .. } | Act::ShareReceived { .. } | Act::ProofReceived { .. } => {
                Ok(())
            }
        }
    }

    fn region_object<'b>(&self, bytes: &'b [u8], kind: Kind) -> Result<Envelope<'b>, Rejection> {
        let envelope = Envelope::open(bytes, kind)
            .or_else(|f| reject(FindingCode::SealInvalid, f.to_string()))?;
        if envelope.kid != self.root.kid() {
            return reject(FindingCode::SealInvalid, "not signed by the region root");
        }
        envelope
            .verify(&self.root)
            .or_else(|f| reject(FindingCode::SealInvalid, f.to_string()))?;
        Ok(envelope)
    }

    fn register_seal(&mut self, bytes: &[u8]) -> Result<(), Rejection> {
        let envelope = self.region_object(bytes, Kind::Seal)?;
        let info = SealInfo::from_payload(envelope.payload)
            .or_else(|b| reject(FindingCode::SealInvalid, b.detail))?;
        if info.region != self.region || self.seals.contains_key(&info.key.kid()) {
            return reject(
                FindingCode::SealInvalid,
                format!("seal {} of another region or registered twice", info.id),
            );
        }
        self.seals.insert(
            info.key.kid(),
            SealRecord {
                info,
                signed: bytes.to_vec(),
                revoked_from: None,
                revocation: None,
            },
        );
        Ok(())
    }

    fn revoke_seal(&mut self, bytes: &[u8]) -> Result<(), Rejection> {
        let envelope = self.region_object(bytes, Kind::SealRevocation)?;
        let revocation = SealRevocation::from_payload(envelope.payload)
            .or_else(|b| reject(FindingCode::SealInvalid, b.detail))?;
        let seal = self
            .seals
            .get_mut(&revocation.seal)
            .filter(|_| revocation.region == self.region);
        match seal {
            Some(seal) if seal.revoked_from.is_none() => {
                seal.revoked_from = Some(revocation.revoked_from);
                seal.revocation = Some(bytes.to_vec());
                Ok(())
            }
            _ => reject(
                FindingCode::SealInvalid,
                "revocation of an unknown or already revoked seal",
            ),
        }
    }
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
