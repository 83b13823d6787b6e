//! Audit replay (specs/log.md §7): recompute a log's tree, check every checkpoint and entry, and derive
//! every certificate's final state and the statistics. Pure: the caller reads the files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::envelope::Kind;
use crate::ids::RegionCode;
use crate::log::auditor::LogAudit;
use crate::log::entry::{Act, ShareOutcome};
use crate::log::replay::Replay;
use crate::log::state::{Applied, AuditStore, Delta, Write};
use crate::log::tiles::TilePath;
use crate::status::Succession;
use crate::values::Time;

pub use crate::log::state::TIME_TOLERANCE;

/// What an audit found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingCode {
    EntryMalformed,
    EntryRegion,
    EntrySignature,
    TimeRegression,
    SealInvalid,
    DuplicateIdentifier,
    DuplicateStatusIndex,
    UnknownCertificate,
    TransitionNotAllowed,
    SealNotValidAtIssue,
    CheckpointSignature,
    CheckpointRoot,
    Equivocation,
    TransferUnmatched,
    TileHash,
    ShareInvalid,
    PresentationInvalid,
}

impl FindingCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::EntryMalformed => "ENTRY_MALFORMED",
            FindingCode::EntryRegion => "ENTRY_REGION",
            FindingCode::EntrySignature => "ENTRY_SIGNATURE",
            FindingCode::TimeRegression => "TIME_REGRESSION",
            FindingCode::SealInvalid => "SEAL_INVALID",
            FindingCode::DuplicateIdentifier => "DUPLICATE_IDENTIFIER",
            FindingCode::DuplicateStatusIndex => "DUPLICATE_STATUS_INDEX",
            FindingCode::UnknownCertificate => "UNKNOWN_CERTIFICATE",
            FindingCode::TransitionNotAllowed => "TRANSITION_NOT_ALLOWED",
            FindingCode::SealNotValidAtIssue => "SEAL_NOT_VALID_AT_ISSUE",
            FindingCode::CheckpointSignature => "CHECKPOINT_SIGNATURE",
            FindingCode::CheckpointRoot => "CHECKPOINT_ROOT",
            FindingCode::Equivocation => "EQUIVOCATION",
            FindingCode::TransferUnmatched => "TRANSFER_UNMATCHED",
            FindingCode::TileHash => "TILE_HASH",
            FindingCode::ShareInvalid => "SHARE_INVALID",
            FindingCode::PresentationInvalid => "PRESENTATION_INVALID",
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding: the code, where (entry index, checkpoint name or tile path), and a detail for
/// people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: FindingCode,
    pub entry: Option<u64>,
    pub checkpoint: Option<String>,
    /// A hash tile's path after `tile/`, e.g. `0/001.p/7`.
    pub tile: Option<String>,
    pub detail: String,
}

/// What an auditor is given (specs/log.md §6), already read from disk.
pub struct AuditInput<'a> {
    pub log_key: &'a str,
    pub trust_bundle: &'a [u8],
    pub entries: &'a [Vec<u8>],
    /// (name, signed note) of every checkpoint.
    pub checkpoints: &'a [(String, Vec<u8>)],
    /// Hash tiles a node served for this log (none from an audit bundle): each must equal the
    /// tile of the tree recomputed from the entries.
    pub hash_tiles: &'a [(TilePath, Vec<u8>)],
}

/// Counts derived from the entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    pub issued: u64,
    pub issued_by_type: BTreeMap<String, u64>,
    pub issued_by_agency: BTreeMap<String, u64>,
    pub issued_by_month: BTreeMap<String, u64>,
    pub transferred_in: u64,
    pub status_changes_by_state: BTreeMap<String, u64>,
    pub final_states: BTreeMap<String, u64>,
    pub verifications: u64,
    pub verifications_cross_region: u64,
    /// Purpose-bound copies given (`share.answered` with `OK`), and of those to other regions.
    pub shares_given: u64,
    pub shares_given_cross_region: u64,
    /// Authenticated share requests refused, by code.
    pub shares_refused: BTreeMap<String, u64>,
    /// Copies received, and of those from other regions.
    pub copies_received: u64,
    pub copies_received_cross_region: u64,
    /// Verification proofs received from other regions.
    pub proofs_received: u64,
    /// Presentation codes made for holders (`presentation.created`).
    pub presentations_made: u64,
    /// Codes resolved with a copy given (`presentation.answered` with `OK`), and of those for
    /// other regions.
    pub presentations_resolved: u64,
    pub presentations_resolved_cross_region: u64,
    /// Authenticated presentation requests refused, by code.
    pub presentations_refused: BTreeMap<String, u64>,
}

/// The outcome of replaying one log.
#[derive(Clone, Debug, Default)]
pub struct AuditReport {
    pub origin: String,
    pub region: Option<RegionCode>,
    pub entries: u64,
    /// Entries replayed before the first bad one (all of them when none is bad).
    pub replayed: u64,
    pub checkpoints_verified: usize,
    pub largest_checkpoint: Option<u64>,
    /// Hash tiles found equal to the recomputed tree's.
    pub tiles_verified: usize,
    /// The first [`MAX_FINDINGS`] findings, and how many more there were.
    pub findings: Vec<Finding>,
    pub findings_omitted: u64,
    pub statistics: Statistics,
    /// The same acts month by month (China Standard Time), for reports of any period.
    pub ledger: crate::log::ledger::Ledger,
    /// Every checkpoint whose root the replay verified: (size, name), in size order.
    pub verified_checkpoints: Vec<(u64, String)>,
    /// Transfers in: (entry index, identifier issued, predecessor identifier).
    pub transfers_in: Vec<(u64, String, String)>,
    /// Transfers out whose transfer in the log accepted (operation 11): (identifier, receiving
    /// region). A transfer out not accepted yet may still be cancelled: no region may take it in.
    pub transfers_accepted: BTreeMap<String, RegionCode>,
    /// The USCCs of the agencies with a seal in this log: the issuers of its identifiers, so that
    /// a transfer in elsewhere can be matched to this log without a list of its certificates.
    pub agencies: BTreeSet<String>,
    /// The auditor's own state store failed (a full disk, say): the replay did not finish, and
    /// this is no fault of the log.
    pub store_failure: Option<String>,
}

/// Findings a report keeps; past them it counts (a hostile log could otherwise fill memory with
/// findings, one per bad tile or checkpoint).
pub const MAX_FINDINGS: usize = 1000;

impl AuditReport {
    /// No finding, and the replay finished.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.store_failure.is_none()
    }

    fn push(&mut self, finding: Finding) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(finding);
        } else {
            self.findings_omitted = self.findings_omitted.saturating_add(1);
        }
    }

    pub(crate) fn entry_finding(
        &mut self,
        index: u64,
        code: FindingCode,
        detail: impl Into<String>,
    ) {
        self.push(Finding {
            code,
            entry: Some(index),
            checkpoint: None,
            tile: None,
            detail: detail.into(),
        });
    }

    pub(crate) fn checkpoint_finding(
        &mut self,
        name: &str,
        code: FindingCode,
        detail: impl Into<String>,
    ) {
        self.push(Finding {
            code,
            entry: None,
            checkpoint: Some(name.to_owned()),
            tile: None,
            detail: detail.into(),
        });
    }

    pub(crate) fn tile_finding(&mut self, tile: TilePath, detail: impl Into<String>) {
        self.push(Finding {
            code: FindingCode::TileHash,
            entry: None,
            checkpoint: None,
            tile: Some(tile.to_path()),
            detail: detail.into(),
        });
    }
}

fn month(time: Time) -> String {
    time.to_rfc3339()[..7].to_owned()
}

/// Adds what an entry of `region`'s log, applied with `delta`, contributes to the statistics.
pub(crate) fn count(applied: &Applied, delta: &Delta, region: &RegionCode, stats: &mut Statistics) {
    match &applied.entry.act {
        Act::CertIssued {
            id,
            issued,
            operation,
            predecessor,
            ..
        } => {
            stats.issued += 1;
            *stats
                .issued_by_type
                .entry(id.type_code().as_str().to_owned())
                .or_default() += 1;
            // The issuing agency, as the new certificate's record names it.
            let agency = delta.writes.iter().find_map(|w| match w {
                Write::Cert {
                    id: written,
                    record,
                } if written == id => Some(&record.agency),
                _ => None,
            });
            if let Some(agency) = agency {
                *stats.issued_by_agency.entry(agency.clone()).or_default() += 1;
            }
            *stats.issued_by_month.entry(month(*issued)).or_default() += 1;
            if *operation == Succession::TransferIn.code() && predecessor.is_some() {
                stats.transferred_in += 1;
            }
        }
        Act::StatusChanged { to, .. } => {
            *stats
                .status_changes_by_state
                .entry(to.name().to_owned())
                .or_default() += 1;
        }
        Act::Receipts {
            count,
            cross_region,
            ..
        } => {
            // The counts come from the entry (and, in a parallel replay, before its signature
            // is checked): a hostile log must not overflow them.
            stats.verifications = stats.verifications.saturating_add(*count);
            stats.verifications_cross_region = stats
                .verifications_cross_region
                .saturating_add(*cross_region);
        }
        Act::ShareAnswered {
            requester, outcome, ..
        } => match outcome {
            ShareOutcome::Given { .. } => {
                stats.shares_given += 1;
                if requester != region {
                    stats.shares_given_cross_region += 1;
                }
            }
            ShareOutcome::Refused(code) => {
                *stats
                    .shares_refused
                    .entry(code.as_str().to_owned())
                    .or_default() += 1;
            }
        },
        Act::ShareReceived { provider, .. } => {
            stats.copies_received += 1;
            if provider != region {
                stats.copies_received_cross_region += 1;
            }
        }
        Act::ProofReceived { .. } => stats.proofs_received += 1,
        Act::PresentationCreated { .. } => stats.presentations_made += 1,
        Act::PresentationAnswered {
            requester, outcome, ..
        } => match outcome {
            ShareOutcome::Given { .. } => {
                stats.presentations_resolved += 1;
                if requester != region {
                    stats.presentations_resolved_cross_region += 1;
                }
            }
            ShareOutcome::Refused(code) => {
                *stats
                    .presentations_refused
                    .entry(code.as_str().to_owned())
                    .or_default() += 1;
            }
        },
        Act::SealRegistered { .. } | Act::SealRevoked { .. } | Act::PromiseFulfilled { .. } => {}
    }
}

/// What the state a replay reached says for the report: the certificates' final states, the
/// transfers, and the agencies whose identifiers the log issues.
pub(crate) fn conclude<S: AuditStore>(
    report: &mut AuditReport,
    replay: &Replay<S>,
) -> Result<(), S::Error> {
    let store = replay.store();
    let states = &mut report.statistics.final_states;
    store.each_cert(&mut |_, cert| {
        *states.entry(cert.state.name().to_owned()).or_default() += 1;
        true
    })?;
    let transfers_in = &mut report.transfers_in;
    store.each_transfer_in(&mut |index, id, predecessor| {
        transfers_in.push((
            index,
            id.as_str().to_owned(),
            predecessor.as_str().to_owned(),
        ));
    })?;
    transfers_in.sort();
    let mut out = Vec::new();
    store.each_transfer_out(&mut |id, to| out.push((id.clone(), to.clone())))?;
    for (id, to) in out {
        if store.cert(&id)?.is_some_and(|c| c.transfer_accepted) {
            report.transfers_accepted.insert(id.as_str().to_owned(), to);
        }
    }
    report.agencies = replay
        .seals()
        .map(|s| s.info.agency.as_str().to_owned())
        .collect();
    Ok(())
}

/// Replays one log held in memory (the streaming audit, fed from slices). Never panics on
/// hostile input; everything wrong becomes a finding.
pub fn replay(input: &AuditInput<'_>) -> AuditReport {
    let mut audit = LogAudit::new(
        input.log_key,
        input.trust_bundle,
        !input.hash_tiles.is_empty(),
    );
    if !audit.is_open() {
        return audit.finish().report;
    }
    for (path, bytes) in input.hash_tiles {
        audit.served_tile(*path, bytes.clone());
    }
    // Checkpoints in size order (unverified ones first: they are reported and go no further),
    // each given before the entries reach it.
    let mut checkpoints: Vec<&(String, Vec<u8>)> = input.checkpoints.iter().collect();
    checkpoints.sort_by_cached_key(|(_, note)| note_size(note));
    for (name, note) in checkpoints {
        audit.checkpoint(name, note);
    }
    for entry in input.entries {
        audit.entry(entry.clone());
    }
    audit.finish().report
}

/// The size a checkpoint note states (unverified: for ordering only).
pub fn note_size(note: &[u8]) -> Option<u64> {
    let note = crate::log::note::Note::parse(note).ok()?;
    crate::log::checkpoint::Checkpoint::parse(&note.text)
        .ok()
        .map(|c| c.size)
}

/// Replays several regions' logs and cross-checks them (specs/log.md §7).
pub fn replay_many(inputs: &[AuditInput<'_>]) -> Vec<AuditReport> {
    let mut reports: Vec<AuditReport> = inputs.iter().map(replay).collect();
    cross_check(&mut reports);
    reports
}

/// The cross-log rule of specs/log.md §7 over replayed logs: a transfer in whose predecessor was
/// issued by another replayed log (its issuer is one of that log's agencies) must match that
/// log's accepted transfer out to this region, and no two logs may take the same predecessor in.
/// A log whose replay stopped is not a source of findings against others: what it would have
/// shown after the refused entry is unknown.
pub fn cross_check(reports: &mut [AuditReport]) {
    // Which log transferred each predecessor in first: (report, entry index). Logs are in no time
    // order with each other, so "first" is by the order the logs were given, then by index.
    let mut taken: HashMap<String, (usize, u64)> = HashMap::new();
    for (n, report) in reports.iter().enumerate() {
        for (index, _, prev) in &report.transfers_in {
            taken.entry(prev.clone()).or_insert((n, *index));
        }
    }
    struct Origin {
        region: Option<RegionCode>,
        /// Replayed to its end: what it ends with is known.
        whole: bool,
        agencies: BTreeSet<String>,
        accepted: BTreeMap<String, RegionCode>,
    }
    let origins: Vec<Origin> = reports
        .iter()
        .map(|r| Origin {
            region: r.region.clone(),
            whole: r.replayed == r.entries,
            agencies: r.agencies.clone(),
            accepted: r.transfers_accepted.clone(),
        })
        .collect();
    for (n, report) in reports.iter_mut().enumerate() {
        let Some(here) = report.region.clone() else {
            continue;
        };
        let mut unmatched = Vec::new();
        for (index, id, prev) in &report.transfers_in {
            if let Some(&(first, _)) = taken.get(prev)
                && first != n
            {
                let other = origins[first].region.as_ref().map_or("?", |r| r.as_str());
                unmatched.push((
                    *index,
                    format!("{id} transferred in, but region {other} transferred {prev} in first"),
                ));
                continue;
            }
            let issuer = crate::ids::Identifier::parse(prev)
                .ok()
                .map(|p| p.issuer().as_str().to_owned());
            let origin = origins.iter().find(|o| {
                o.region.as_ref() != Some(&here)
                    && issuer.as_ref().is_some_and(|i| o.agencies.contains(i))
            });
            if let Some(origin) = origin
                && origin.whole
                && origin.accepted.get(prev) != Some(&here)
            {
                unmatched.push((
                    *index,
                    format!(
                        "{id} transferred in, but {prev} does not end transferred out to {here} \
                         with the transfer accepted"
                    ),
                ));
            }
        }
        for (index, detail) in unmatched {
            report.entry_finding(index, FindingCode::TransferUnmatched, detail);
        }
    }
}

/// The `entries` file of an audit bundle: each entry as a 4-byte big-endian length and its bytes.
pub fn encode_entries(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 4).sum());
    for entry in entries {
        out.extend_from_slice(&(entry.len() as u32).to_be_bytes());
        out.extend_from_slice(entry);
    }
    out
}

/// Reads an `entries` file; `None` when a length runs past the end or exceeds an entry's limit.
pub fn decode_entries(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let limit = Kind::LogEntry.size_limit() as usize;
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > limit || len > rest.len() {
            return None;
        }
        entries.push(rest[..len].to_vec());
        bytes = &rest[len..];
    }
    Some(entries)
}
