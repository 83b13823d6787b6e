//! `tongban-verify audit replay` and `audit export`: region logs read from audit bundles (specs/log.md
//! §6) or from their nodes (§7), streamed through core's audit. Both sources feed the same
//! streaming audit; the rules are core's alone.

mod bundle;
pub(crate) mod http;
pub(crate) mod node;
pub mod period_report;
mod report;
pub(crate) mod store;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow};
use tongban_core::ids::RegionCode;
use tongban_core::keys::KeyId;
use tongban_core::log::audit::{AuditReport, cross_check};
use tongban_core::log::checkpoint;
use tongban_core::log::note::NoteVerifier;
use tongban_core::log::state::AuditStore;
use tongban_core::trust::TrustStore;

pub use node::HashTiles;
pub use report::{json, text};
use store::DiskStore;

/// Where a log is read from.
#[derive(Clone, Debug)]
pub enum Source {
    Dir(PathBuf),
    /// A node's base URL (`http://` or `https://`).
    Node(String),
}

impl Source {
    /// An argument that starts with `http://` or `https://` (any case) is a node; anything else is
    /// a directory (write `./http:…` for a directory of that name).
    pub fn from_arg(arg: &Path) -> Source {
        match arg.to_str() {
            Some(s) if node::is_url(s) => Source::Node(s.to_owned()),
            _ => Source::Dir(arg.to_owned()),
        }
    }

    /// The directory or URL, for the report.
    pub fn name(&self) -> String {
        match self {
            Source::Dir(dir) => dir.display().to_string(),
            Source::Node(url) => url.trim_end_matches('/').to_owned(),
        }
    }
}

/// Refuses a log whose trust bundle the pinned federation root did not publish.
fn check_federation(source: &Source, trust: &[u8], pinned: Option<KeyId>) -> Result<()> {
    match pinned {
        None => Ok(()),
        Some(kid) => TrustStore::load_any_time(trust, Some(kid))
            .map(drop)
            .map_err(|f| anyhow!("{}: trust bundle: {f}", source.name())),
    }
}

/// How logs are read (from nodes) and their signatures checked.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    /// Bounds each request, from connecting to the last byte.
    pub timeout: Duration,
    /// Most checkpoints read from a node's list.
    pub max_checkpoints: u64,
    /// Entry signatures checked in batches with this secret coefficient key (specs/bulk.md §4);
    /// `None`: each one strictly.
    pub batch: Option<[u8; 32]>,
}

impl Reading {
    pub fn new(timeout: Duration) -> Reading {
        Reading {
            timeout,
            max_checkpoints: node::MAX_LISTED,
            batch: None,
        }
    }
}

/// Entries replayed so far, on a spinner on standard error when it is a terminal (a province's
/// log takes minutes): nothing otherwise.
pub(crate) struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn start(name: &str) -> Progress {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {prefix}: {human_pos} entries replayed  {elapsed_precise}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(Some(bar))
    }

    /// One more entry replayed.
    pub(crate) fn entry(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Audits one log from its source, the region's state in a temporary file; with `states`, each
/// certificate's final state is written there as a JSON line. An error is a log that cannot be
/// read, or the auditor's own failure (exit 2); what is wrong with a log that can is in the
/// report.
pub fn audit(
    source: &Source,
    reading: Reading,
    pinned: Option<KeyId>,
    states: Option<&mut dyn Write>,
) -> Result<AuditReport> {
    let store = DiskStore::create(None)?;
    let progress = Progress::start(&source.name());
    let with = |store| (store, reading.batch, &progress);
    let finished = match source {
        Source::Dir(dir) => {
            let bundle = bundle::Bundle { dir: dir.clone() };
            let (key, trust) = (bundle.log_key()?, bundle.trust_bundle()?);
            check_federation(source, &trust, pinned)?;
            bundle::audit(&bundle, &key, &trust, with(store))?
        }
        Source::Node(url) => {
            let node = node::Node::new(url, reading.timeout, reading.max_checkpoints)?;
            let (key, trust) = (node.log_key()?, node.trust_bundle()?);
            check_federation(source, &trust, pinned)?;
            node::audit(&node, &key, &trust, HashTiles::Check, with(store))?
        }
    };
    let report = finished.report;
    if let Some(failure) = &report.store_failure {
        return Err(anyhow!(
            "{}: the audit could not finish: {failure}",
            source.name()
        ));
    }
    if let (Some(out), Some(store), Some(region)) = (states, &finished.store, &report.region) {
        write_states(out, region, store)?;
    }
    Ok(report)
}

/// Each certificate's final state as a JSON line (`--states`).
fn write_states(out: &mut dyn Write, region: &RegionCode, store: &DiskStore) -> Result<()> {
    let mut failed = None;
    store.each_cert(&mut |id, c| {
        let line = serde_json::json!({
            "region": region.as_str(),
            "id": id.as_str(),
            "state": c.state.code(),
            "state_name": c.state.name(),
            "since": c.changed.seconds(),
            "reason": c.reason.as_ref().map(|r| r.as_str()),
            "status_index": c.status_index,
            "issued_at_index": c.issued_at_index,
            "changed_at_index": c.changed_at_index,
            "promise_deadline": c.promise_deadline.map(|t| t.seconds()),
            "promise_fulfilled": c.promise_fulfilled,
            "transfer_accepted": c.transfer_accepted,
        });
        match writeln!(out, "{line}") {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    match failed {
        Some(e) => Err(anyhow!("cannot write the states: {e}")),
        None => Ok(()),
    }
}

/// Audits the logs one after the other and cross-checks the transfers between their regions;
/// with `states`, every certificate's final state goes there as a JSON line.
pub fn replay_all(
    sources: &[Source],
    reading: Reading,
    pinned: Option<KeyId>,
    mut states: Option<&mut dyn Write>,
) -> Result<Vec<AuditReport>> {
    let mut reports = Vec::with_capacity(sources.len());
    for source in sources {
        let out: Option<&mut dyn Write> = match states.as_mut() {
            Some(w) => Some(&mut **w),
            None => None,
        };
        reports.push(audit(source, reading, pinned, out)?);
    }
    cross_check(&mut reports);
    Ok(reports)
}

/// Writes the log of the node at `url` into `dir` as an audit bundle (specs/log.md §6), streamed:
/// every checkpoint it lists (and the one it serves, when not listed), and its entries up to the
/// largest of them whose signature verifies. Returns (entries, checkpoints) written.
pub fn export(url: &str, dir: &Path, reading: Reading) -> Result<(u64, u64)> {
    if !node::is_url(url) {
        return Err(anyhow!("{url}: not a node URL (http:// or https://)"));
    }
    let node = node::Node::new(url, reading.timeout, reading.max_checkpoints)?;
    let key = node.log_key()?;
    let trust = node.trust_bundle()?;
    let log = NoteVerifier::parse(key.trim()).map_err(|e| anyhow!("{url}: log key: {e}"))?;
    let verified = |note: &[u8]| {
        checkpoint::open(note, &log, &[])
            .ok()
            .map(|c| c.checkpoint.size)
    };
    let mut writer = bundle::Writer::create(dir, &key, &trust)?;
    let latest = node.latest()?;
    let mut largest = latest.as_deref().and_then(verified).unwrap_or(0);
    let mut failed = None;
    let mut listed_latest = false;
    node.checkpoints(|page| {
        for (size, note) in page {
            listed_latest |= latest.as_ref() == Some(note);
            if let Err(e) = writer.checkpoint(*size, note) {
                failed = Some(e);
                return Ok(());
            }
            largest = largest.max(verified(note).unwrap_or(0));
        }
        Ok(())
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(note) = latest.filter(|_| !listed_latest) {
        writer.named_checkpoint(node::SERVED_CHECKPOINT, &note)?;
    }
    while writer.entries() < largest {
        let entries = node.entries(writer.entries(), largest)?;
        if entries.is_empty() {
            return Err(anyhow!("{url}: no entry served at {}", writer.entries()));
        }
        for entry in &entries {
            writer.entry(entry)?;
        }
    }
    writer.finish()
}
