//! Status files a verifier is given (`--status`): status lists and snapshots, each loaded by
//! core's [`LoadedStatus`] (told apart by `typ`).

use std::path::Path;

use anyhow::{Result, anyhow};
use tongban_core::envelope::Kind;
use tongban_core::trust::{LoadedStatus, StatusSet, TrustStore};

use crate::cli::read_capped;

/// Reads and loads one status file against `trust`.
pub fn load(path: &Path, trust: &TrustStore) -> Result<LoadedStatus> {
    let limit = Kind::StatusList
        .size_limit()
        .max(Kind::StatusSnapshot.size_limit());
    LoadedStatus::load(&read_capped(path, limit)?, trust)
        .map_err(|f| anyhow!("status file {}: {f}", path.display()))
}

/// Every file of `paths`, loaded into one set.
pub fn load_all(paths: &[impl AsRef<Path>], trust: &TrustStore) -> Result<StatusSet> {
    let mut set = StatusSet::default();
    for path in paths {
        set.add(load(path.as_ref(), trust)?);
    }
    Ok(set)
}
