//! `tongban-node check` for the replicas a stopped node keeps (specs/federation.md §5). A replica
//! kept without its entries cannot be replayed; what can be checked is that its state reflects
//! every entry its tree holds, that its tree gives the root of the latest checkpoint it verified,
//! and, given the region's own node directory (`--origin`), that its state is the origin's row
//! for row: the same rules over the same entries.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tongban_core::ids::RegionCode;
use tongban_core::log::checkpoint::Checkpoint;
use tongban_core::log::note::Note;

use crate::home::{Home, HomeError, load};
use crate::log::{Contents, Differences, Log, LogConfig, LogError, NoIndex};

/// What `check` found of one replica.
#[derive(Debug)]
pub struct ReplicaCheck {
    /// The replica's file.
    pub file: PathBuf,
    pub entries: u64,
    pub contents: Contents,
    /// The size of the latest checkpoint the replica verified, whose root its tree gives.
    pub checkpoint: Option<u64>,
    /// The comparison with the origin's state, when its directory was given.
    pub origin: Option<Differences>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicaCheckError {
    #[error("{file}: {source}")]
    Log {
        file: PathBuf,
        #[source]
        source: LogError,
    },
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("{file}: the state reflects {state} of its {size} entries")]
    StateBehind {
        file: PathBuf,
        state: u64,
        size: u64,
    },
    #[error("{file}: {detail}")]
    Checkpoint { file: PathBuf, detail: String },
    #[error(
        "{file} holds {replica} entries and the origin {origin}: stop both at the same size to \
         compare them"
    )]
    Sizes {
        file: PathBuf,
        replica: u64,
        origin: u64,
    },
    #[error("no replica of {0} in this node's directory")]
    NoReplica(RegionCode),
}

/// Checks every replica file in `home` (the node stopped); each of `origins` is the directory of
/// a region's own node, whose state the replica of that region must equal.
pub fn check_replicas(
    home: &Home,
    origins: &[PathBuf],
) -> Result<Vec<ReplicaCheck>, ReplicaCheckError> {
    let mut origin_logs = Vec::with_capacity(origins.len());
    for dir in origins {
        let origin = Home::new(dir);
        let region = load(&origin)?.region;
        origin_logs.push((region, open(&origin.log())?));
    }
    let mut checks = Vec::new();
    for file in replica_files(&home.replicas())? {
        let log = open(&file)?;
        let mut check = check_one(&file, &log)?;
        let region = region_of(&file);
        if let Some((_, origin)) = origin_logs
            .iter()
            .find(|(r, _)| Some(r.as_str()) == region.as_deref())
        {
            let origin_size = origin.size().map_err(fail(&file))?;
            if origin_size != check.entries {
                return Err(ReplicaCheckError::Sizes {
                    file,
                    replica: check.entries,
                    origin: origin_size,
                });
            }
            check.origin = Some(origin.state_differences_with(&log).map_err(fail(&file))?);
        }
        checks.push(check);
    }
    for (region, _) in &origin_logs {
        if !checks
            .iter()
            .any(|c| region_of(&c.file).as_deref() == Some(region.as_str()))
        {
            return Err(ReplicaCheckError::NoReplica(region.clone()));
        }
    }
    Ok(checks)
}

fn check_one(file: &Path, log: &Log) -> Result<ReplicaCheck, ReplicaCheckError> {
    let entries = log.size().map_err(fail(file))?;
    let state = log.state_size().map_err(fail(file))?;
    if state != entries {
        return Err(ReplicaCheckError::StateBehind {
            file: file.to_owned(),
            state,
            size: entries,
        });
    }
    let checkpoint = match log.last_checkpoint().map_err(fail(file))? {
        Some((size, note)) => {
            let bad = |detail: String| ReplicaCheckError::Checkpoint {
                file: file.to_owned(),
                detail,
            };
            let note = Note::parse(&note).map_err(|e| bad(format!("its checkpoint: {e}")))?;
            let head =
                Checkpoint::parse(&note.text).map_err(|e| bad(format!("its checkpoint: {e}")))?;
            if head.size != size {
                return Err(bad(format!(
                    "its checkpoint of size {} is stored as size {size}",
                    head.size
                )));
            }
            if log.root(size).map_err(fail(file))? != head.root {
                return Err(bad(format!(
                    "its tree's root at {size} is not the root of the checkpoint it verified"
                )));
            }
            Some(size)
        }
        None => None,
    };
    Ok(ReplicaCheck {
        file: file.to_owned(),
        entries,
        contents: log.contents(),
        checkpoint,
        origin: None,
    })
}

/// Opens a replica file in whichever suite it was written in (a check reads any).
fn open(file: &Path) -> Result<Log, ReplicaCheckError> {
    match Log::open(file, LogConfig::default(), Arc::new(NoIndex)) {
        Err(LogError::SuiteMismatch { file: suite, .. }) => {
            let config = LogConfig {
                suite,
                ..LogConfig::default()
            };
            Log::open(file, config, Arc::new(NoIndex)).map_err(fail(file))
        }
        opened => opened.map_err(fail(file)),
    }
}

fn fail(file: &Path) -> impl Fn(LogError) -> ReplicaCheckError + '_ {
    move |source| ReplicaCheckError::Log {
        file: file.to_owned(),
        source,
    }
}

/// The replica files (`<region>-<generation>.redb`) in `dir`, by name; none when it does not
/// exist (a node outside any federation).
fn replica_files(dir: &Path) -> Result<Vec<PathBuf>, ReplicaCheckError> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ReplicaCheckError::Io(dir.to_owned(), e)),
    };
    let mut files = Vec::new();
    for item in read {
        let path = item
            .map_err(|e| ReplicaCheckError::Io(dir.to_owned(), e))?
            .path();
        if path.extension().is_some_and(|e| e == "redb") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The region code a replica file is named after.
fn region_of(file: &Path) -> Option<String> {
    let stem = file.file_stem()?.to_str()?;
    let (region, _generation) = stem.rsplit_once('-')?;
    Some(region.to_owned())
}
