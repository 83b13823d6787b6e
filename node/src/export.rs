//! Audit export (specs/log.md §6): the log's entries, every checkpoint it signed, its key and a trust
//! bundle, as a directory `tongban-verify audit replay` reads.

use std::path::Path;

use tongban_core::log::audit::encode_entries;

use crate::log::{Log, LogError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Writes the audit bundle of `log` into `dir` (created if needed), as of the latest checkpoint's
/// size so the entries and checkpoints agree. Returns the number of entries written.
pub fn write_audit_bundle(
    log: &Log,
    vkey: &str,
    trust_bundle: &[u8],
    dir: &Path,
) -> Result<u64, ExportError> {
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|source| ExportError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    let checkpoints_dir = dir.join("checkpoints");
    std::fs::create_dir_all(&checkpoints_dir).map_err(|source| ExportError::Io {
        path: checkpoints_dir.display().to_string(),
        source,
    })?;
    let size = log.size()?;
    write(&dir.join("log.vkey"), format!("{vkey}\n").as_bytes())?;
    write(&dir.join("trust.tbt"), trust_bundle)?;
    write(
        &dir.join("entries"),
        &encode_entries(&log.entries(0..size)?),
    )?;
    for (checkpoint_size, note) in log.checkpoints()? {
        write(
            &checkpoints_dir.join(format!("{checkpoint_size:020}.checkpoint")),
            &note,
        )?;
    }
    Ok(size)
}
