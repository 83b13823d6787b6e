//! `tongban-verify audit replay`: read region logs from audit bundles (specs/log.md §6) or from
//! their nodes (§7), and report what core's replay finds. Both ways build the same input; the rules
//! are core's alone.

pub(crate) mod http;
pub(crate) mod node;
mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tongban_core::keys::KeyId;
use tongban_core::log::audit::{
    AuditInput, AuditReport, decode_entries, encode_entries, replay_many,
};
use tongban_core::log::tiles::TilePath;
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
}

/// One region log read into memory: what an audit bundle holds, plus the hash tiles a node served.
pub struct AuditLog {
    /// The directory or URL it was read from, for the report.
    pub source: String,
    log_key: String,
    trust: Vec<u8>,
    entries: Vec<Vec<u8>>,
    checkpoints: Vec<(String, Vec<u8>)>,
    hash_tiles: Vec<(TilePath, Vec<u8>)>,
}

impl AuditLog {
    /// Reads the log from its source; `timeout` bounds each request to a node.
    pub fn read(source: &Source, timeout: Duration) -> Result<AuditLog> {
        match source {
            Source::Dir(dir) => AuditLog::read_dir(dir),
            Source::Node(url) => Ok(node::fetch(url, timeout, HashTiles::Check)?),
        }
    }

    /// Reads a node's log without its hash tiles, for [`AuditLog::write_dir`].
    pub fn fetch(url: &str, timeout: Duration) -> Result<AuditLog> {
        if !node::is_url(url) {
            return Err(anyhow!("{url}: not a node URL (http:// or https://)"));
        }
        Ok(node::fetch(url, timeout, HashTiles::Skip)?)
    }

    /// Writes the log as an audit bundle (specs/log.md §6) into `dir`, which must not exist or be
    /// empty, so that no checkpoint of another log is mixed in.
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            return Err(anyhow!(
                "{} is not empty: export into a new directory",
                dir.display()
            ));
        }
        let checkpoints = dir.join("checkpoints");
        std::fs::create_dir_all(&checkpoints)
            .with_context(|| format!("cannot create {}", checkpoints.display()))?;
        let write = |path: PathBuf, bytes: &[u8]| {
            std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
        };
        write(
            dir.join("log.vkey"),
            format!("{}\n", self.log_key.trim_end()).as_bytes(),
        )?;
        write(dir.join("trust.tbt"), &self.trust)?;
        write(dir.join("entries"), &encode_entries(&self.entries))?;
        for (name, note) in &self.checkpoints {
            write(checkpoints.join(name), note)?;
        }
        Ok(())
    }

    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    pub fn checkpoints(&self) -> usize {
        self.checkpoints.len()
    }

    /// Reads an audit bundle directory (specs/log.md §6).
    pub fn read_dir(dir: &Path) -> Result<AuditLog> {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .with_context(|| format!("cannot read {}", dir.join(name).display()))
        };
        let log_key = String::from_utf8(read("log.vkey")?).context("log.vkey is not text")?;
        let trust = read("trust.tbt")?;
        let entries = decode_entries(&read("entries")?).ok_or_else(|| {
            anyhow!(
                "{}: entries file is not length-prefixed entries",
                dir.display()
            )
        })?;
        let mut checkpoints = Vec::new();
        let folder = dir.join("checkpoints");
        let listing = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot list {}", folder.display()))?;
        for file in listing {
            let path = file?.path();
            if path.extension().is_some_and(|e| e == "checkpoint") {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                checkpoints.push((
                    name,
                    std::fs::read(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                ));
            }
        }
        checkpoints.sort();
        Ok(AuditLog {
            source: dir.display().to_string(),
            log_key,
            trust,
            entries,
            checkpoints,
            hash_tiles: Vec::new(),
        })
    }

    /// Refuses a log whose trust bundle the pinned federation root did not publish.
    pub fn check_federation(&self, kid: KeyId) -> Result<()> {
        TrustStore::load_any_time(&self.trust, Some(kid))
            .map(drop)
            .map_err(|f| anyhow!("{}: trust bundle: {f}", self.source))
    }

    fn input(&self) -> AuditInput<'_> {
        AuditInput {
            log_key: &self.log_key,
            trust_bundle: &self.trust,
            entries: &self.entries,
            checkpoints: &self.checkpoints,
            hash_tiles: &self.hash_tiles,
        }
    }
}

/// Replays the logs together, so that transfers between their regions are cross-checked.
pub fn replay_all(logs: &[AuditLog]) -> Vec<AuditReport> {
    let inputs: Vec<AuditInput<'_>> = logs.iter().map(AuditLog::input).collect();
    replay_many(&inputs)
}
