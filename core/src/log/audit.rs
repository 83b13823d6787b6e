//! Audit replay (specs/log.md §7): recompute a log's tree, check every checkpoint and entry, and derive
//! every certificate's final state and the statistics. Pure: the caller reads the files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::num::NonZeroUsize;

use crate::envelope::Kind;
use crate::ids::RegionCode;
use crate::log::checkpoint::{self, Checkpoint};
use crate::log::entry::{Act, LogEntry, ShareOutcome};
use crate::log::note::NoteVerifier;
use crate::log::proof::MemoryTree;
use crate::log::replay;
use crate::log::state::{Applied, RegionState};
use crate::log::tiles::{TILE_WIDTH, TilePath};
use crate::status::{State, Succession};
use crate::trust::TrustStore;
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
    UnknownCertificate,
    TransitionNotAllowed,
    SealNotValidAtIssue,
    CheckpointSignature,
    CheckpointRoot,
    Equivocation,
    TransferUnmatched,
    TileHash,
    ShareInvalid,
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
            FindingCode::UnknownCertificate => "UNKNOWN_CERTIFICATE",
            FindingCode::TransitionNotAllowed => "TRANSITION_NOT_ALLOWED",
            FindingCode::SealNotValidAtIssue => "SEAL_NOT_VALID_AT_ISSUE",
            FindingCode::CheckpointSignature => "CHECKPOINT_SIGNATURE",
            FindingCode::CheckpointRoot => "CHECKPOINT_ROOT",
            FindingCode::Equivocation => "EQUIVOCATION",
            FindingCode::TransferUnmatched => "TRANSFER_UNMATCHED",
            FindingCode::TileHash => "TILE_HASH",
            FindingCode::ShareInvalid => "SHARE_INVALID",
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
    pub findings: Vec<Finding>,
    pub statistics: Statistics,
    /// Final state of every certificate, by identifier.
    pub certificates: BTreeMap<String, State>,
    /// Transfers in: (entry index, identifier issued, predecessor identifier).
    pub transfers_in: Vec<(u64, String, String)>,
    /// Transfers out whose transfer in the log accepted (operation 11): (identifier, receiving
    /// region). A transfer out not accepted yet may still be cancelled: no region may take it in.
    pub transfers_accepted: BTreeMap<String, RegionCode>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    fn entry_finding(&mut self, index: u64, code: FindingCode, detail: impl Into<String>) {
        self.findings.push(Finding {
            code,
            entry: Some(index),
            checkpoint: None,
            tile: None,
            detail: detail.into(),
        });
    }

    fn checkpoint_finding(&mut self, name: &str, code: FindingCode, detail: impl Into<String>) {
        self.findings.push(Finding {
            code,
            entry: None,
            checkpoint: Some(name.to_owned()),
            tile: None,
            detail: detail.into(),
        });
    }

    fn tile_finding(&mut self, tile: TilePath, detail: impl Into<String>) {
        self.findings.push(Finding {
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

/// Adds what an applied entry contributes to the statistics.
fn count(applied: &Applied, state: &RegionState, stats: &mut Statistics) {
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
            if let Some(cert) = state.cert(id.as_str()) {
                *stats
                    .issued_by_agency
                    .entry(cert.agency.clone())
                    .or_default() += 1;
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
                if requester != state.region() {
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
            if provider != state.region() {
                stats.copies_received_cross_region += 1;
            }
        }
        Act::ProofReceived { .. } => stats.proofs_received += 1,
        Act::SealRegistered { .. } | Act::SealRevoked { .. } | Act::PromiseFulfilled { .. } => {}
    }
}

/// Replays one log. Never panics on hostile input; everything wrong becomes a finding.
pub fn replay(input: &AuditInput<'_>) -> AuditReport {
    let mut report = AuditReport {
        entries: input.entries.len() as u64,
        ..AuditReport::default()
    };
    let setup = NoteVerifier::parse(input.log_key.trim())
        .map_err(|e| format!("log key: {e}"))
        .and_then(|log| {
            TrustStore::load_any_time(input.trust_bundle, None)
                .map(|t| (log, t))
                .map_err(|f| format!("trust bundle: {f}"))
        });
    let (log, trust) = match setup {
        Ok(setup) => setup,
        Err(detail) => {
            report.checkpoint_finding("(setup)", FindingCode::CheckpointSignature, detail);
            return report;
        }
    };
    report.origin = log.name.clone();
    // The tree, from every entry.
    let mut tree = MemoryTree::default();
    for entry in input.entries {
        if tree.append(entry).is_err() {
            report.entry_finding(
                tree.size(),
                FindingCode::EntryMalformed,
                "tree could not take the entry",
            );
            return report;
        }
    }
    check_checkpoints(input, &log, &tree, &mut report);
    check_hash_tiles(input, &tree, &mut report);
    replay_entries(input, &trust, &mut report);
    report
}

fn check_checkpoints(
    input: &AuditInput<'_>,
    log: &NoteVerifier,
    tree: &MemoryTree,
    report: &mut AuditReport,
) {
    let mut by_size: BTreeMap<u64, (&str, [u8; 32])> = BTreeMap::new();
    for (name, note) in input.checkpoints {
        let head: Checkpoint = match checkpoint::open(note, log, &[]) {
            Ok(verified) => verified.checkpoint,
            Err(e) => {
                report.checkpoint_finding(name, FindingCode::CheckpointSignature, e.to_string());
                continue;
            }
        };
        if let Some((other, root)) = by_size.get(&head.size)
            && *root != head.root
        {
            report.checkpoint_finding(
                name,
                FindingCode::Equivocation,
                format!(
                    "same size {} as {other}, different root: the log forked",
                    head.size
                ),
            );
            continue;
        }
        by_size.insert(head.size, (name, head.root));
        match tree.root(head.size) {
            Ok(root) if root == head.root => {
                report.checkpoints_verified += 1;
                report.largest_checkpoint = report.largest_checkpoint.max(Some(head.size));
            }
            Ok(_) => report.checkpoint_finding(
                name,
                FindingCode::CheckpointRoot,
                format!("root at size {} differs from the entries'", head.size),
            ),
            Err(_) => report.checkpoint_finding(
                name,
                FindingCode::CheckpointRoot,
                format!("size {} but only {} entries", head.size, tree.size()),
            ),
        }
    }
}

/// A node's hash tiles are what tile clients build proofs from: each must be the recomputed
/// tree's.
fn check_hash_tiles(input: &AuditInput<'_>, tree: &MemoryTree, report: &mut AuditReport) {
    for (tile, served) in input.hash_tiles {
        let Some(level) = tile.level else {
            report.tile_finding(*tile, "an entry bundle where a hash tile was expected");
            continue;
        };
        match tree.tile(level, tile.index, tile.width) {
            Err(e) => report.tile_finding(*tile, e.to_string()),
            Ok(want) if served.len() != want.len() => report.tile_finding(
                *tile,
                format!(
                    "{} bytes where {} hashes take {}",
                    served.len(),
                    tile.width,
                    want.len()
                ),
            ),
            Ok(want) => {
                let Some(i) = served
                    .chunks(32)
                    .zip(want.chunks(32))
                    .position(|(s, w)| s != w)
                else {
                    report.tiles_verified += 1;
                    continue;
                };
                let node = tile.index.saturating_mul(u64::from(TILE_WIDTH)) + i as u64;
                report.tile_finding(
                    *tile,
                    format!(
                        "hash {i} (node {node} at height {}) differs from the tree recomputed from the entries",
                        8 * u32::from(level)
                    ),
                );
            }
        }
    }
}

fn replay_entries(input: &AuditInput<'_>, trust: &TrustStore, report: &mut AuditReport) {
    let Some(first) = input.entries.first() else {
        return;
    };
    let region = match LogEntry::open(first) {
        Ok((_, entry)) => entry.region,
        Err(f) => return report.entry_finding(0, FindingCode::EntryMalformed, f.to_string()),
    };
    let Some(root) = trust.region(&region) else {
        return report.entry_finding(
            0,
            FindingCode::EntrySignature,
            format!("the trust bundle has no root for region {region}"),
        );
    };
    let fresh = || RegionState::new(region.clone(), root.key.clone());
    let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let mut statistics = Statistics::default();
    let replayed = replay::replay(fresh(), input.entries, threads, |state, applied| {
        count(&applied, state, &mut statistics)
    });
    let state = match replayed {
        Ok(state) => {
            report.replayed = input.entries.len() as u64;
            state
        }
        // The report describes the state before the refused entry, which the parallel replay
        // does not keep: a log that fails is replayed again one entry at a time.
        Err(_) => {
            let mut state = fresh();
            statistics = Statistics::default();
            for (index, bytes) in input.entries.iter().enumerate() {
                match state.apply(bytes) {
                    Ok(applied) => count(&applied, &state, &mut statistics),
                    Err(rejection) => {
                        report.entry_finding(index as u64, rejection.code, rejection.detail);
                        break;
                    }
                }
                report.replayed += 1;
            }
            state
        }
    };
    for (id, cert) in state.certs() {
        *statistics
            .final_states
            .entry(cert.state.name().to_owned())
            .or_default() += 1;
        report.certificates.insert(id.clone(), cert.state);
    }
    report.region = Some(region);
    report.statistics = statistics;
    report.transfers_in = state.transfers_in().to_vec();
    report.transfers_accepted = state
        .transfers_out()
        .iter()
        .filter(|(id, _)| state.cert(id).is_some_and(|c| c.transfer_accepted))
        .map(|(id, to)| (id.clone(), to.clone()))
        .collect();
}

/// A replayed log's region, what it issued, and where it transferred certificates.
type LogSummary = (
    Option<RegionCode>,
    HashSet<String>,
    BTreeMap<String, RegionCode>,
);

/// Replays several regions' logs and cross-checks them: a transfer in whose predecessor belongs to a
/// replayed region must match that region's accepted transfer out to this region (specs/log.md §7).
pub fn replay_many(inputs: &[AuditInput<'_>]) -> Vec<AuditReport> {
    let mut reports: Vec<AuditReport> = inputs.iter().map(replay).collect();
    let logs: Vec<LogSummary> = reports
        .iter()
        .map(|r| {
            (
                r.region.clone(),
                r.certificates.keys().cloned().collect(),
                r.transfers_accepted.clone(),
            )
        })
        .collect();
    // Which log transferred each predecessor in first: (report, entry index). Logs are in no time
    // order with each other, so "first" is by the order the logs were given, then by index.
    let mut taken: HashMap<String, (usize, u64)> = HashMap::new();
    for (n, report) in reports.iter().enumerate() {
        for (index, _, prev) in &report.transfers_in {
            taken.entry(prev.clone()).or_insert((n, *index));
        }
    }
    for (n, report) in reports.iter_mut().enumerate() {
        let Some(here) = report.region.clone() else {
            continue;
        };
        let mut unmatched = Vec::new();
        for (index, id, prev) in &report.transfers_in {
            if let Some(&(first, _)) = taken.get(prev)
                && first != n
            {
                let other = logs[first].0.as_ref().map_or("?", |r| r.as_str());
                unmatched.push((
                    *index,
                    format!("{id} transferred in, but region {other} transferred {prev} in first"),
                ));
                continue;
            }
            let origin = logs.iter().find(|(region, issued, _)| {
                region.as_ref() != Some(&here) && issued.contains(prev)
            });
            if let Some((_, _, out)) = origin
                && out.get(prev) != Some(&here)
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
    reports
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
