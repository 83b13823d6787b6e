//! `tongban-verify audit replay` and `audit export`: region logs read from audit bundles (specs/log.md
//! §6) or from their nodes (§7), streamed through core's audit. Both sources feed the same
//! streaming audit; the rules are core's alone.

mod bundle;
pub(crate) mod http;
pub(crate) mod node;
mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow};
use tongban_core::keys::KeyId;
use tongban_core::log::audit::{AuditReport, cross_check};
use tongban_core::log::checkpoint;
use tongban_core::log::note::NoteVerifier;
use tongban_core::trust::TrustStore;

pub use node::HashTiles;
pub use report::{json, text};

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

/// How logs are read from nodes.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    /// Bounds each request, from connecting to the last byte.
    pub timeout: Duration,
    /// Most checkpoints read from a node's list.
    pub max_checkpoints: u64,
}

impl Reading {
    pub fn new(timeout: Duration) -> Reading {
        Reading {
            timeout,
            max_checkpoints: node::MAX_LISTED,
        }
    }
}

/// Audits one log from its source. An error is a log that cannot be read (exit 2); what is wrong
/// with a log that can is in the report.
pub fn audit(source: &Source, reading: Reading, pinned: Option<KeyId>) -> Result<AuditReport> {
    match source {
        Source::Dir(dir) => {
            let bundle = bundle::Bundle { dir: dir.clone() };
            let (key, trust) = (bundle.log_key()?, bundle.trust_bundle()?);
            check_federation(source, &trust, pinned)?;
            bundle::audit(&bundle, &key, &trust)
        }
        Source::Node(url) => {
            let node = node::Node::new(url, reading.timeout, reading.max_checkpoints)?;
            let (key, trust) = (node.log_key()?, node.trust_bundle()?);
            check_federation(source, &trust, pinned)?;
            Ok(node::audit(&node, &key, &trust, HashTiles::Check)?)
        }
    }
}

/// Audits the logs one after the other and cross-checks the transfers between their regions.
pub fn replay_all(
    sources: &[Source],
    reading: Reading,
    pinned: Option<KeyId>,
) -> Result<Vec<AuditReport>> {
    let mut reports = sources
        .iter()
        .map(|s| audit(s, reading, pinned))
        .collect::<Result<Vec<_>>>()?;
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
