//! `tongban-node check` for the replicas a stopped node keeps (specs/federation.md §5). A replica
//! kept without its entries cannot be replayed; what can be checked is that its state reflects
//! every entry its tree holds, that its tree gives the root of the latest checkpoint it verified,
//! and, given the region's own node directory (`--origin`), that its state is the origin's row
//! for row: the same rules over the same entries.

use std::path::PathBuf;
use std::sync::Arc;

use tongban_core::ids::RegionCode;
use tongban_core::log::checkpoint::Checkpoint;
use tongban_core::log::note::Note;

use crate::home::{Home, HomeError, load};
use crate::log::{Contents, Differences, Log, LogConfig, LogError, NoIndex};
use crate::storage::{LogName, Storage};

/// What `check` found of one replica.
#[derive(Debug)]
pub struct ReplicaCheck {
    /// Where the replica is kept (its file, or its name in the database).
    pub file: String,
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
        file: String,
        #[source]
        source: LogError,
    },
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error("{0}")]
    Storage(#[source] LogError),
    #[error("{file}: the state reflects {state} of its {size} entries")]
    StateBehind { file: String, state: u64, size: u64 },
    #[error("{file}: {detail}")]
    Checkpoint { file: String, detail: String },
    #[error(
        "{file} holds {replica} entries and the origin {origin}: stop both at the same size to \
         compare them"
    )]
    Sizes {
        file: String,
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
        let loaded = load(&origin)?;
        let storage =
            Storage::open(&origin, &loaded.config.storage).map_err(ReplicaCheckError::Storage)?;
        origin_logs.push((loaded.region, open(&storage, &LogName::Region)?));
    }
    let storage =
        Storage::open(home, &load(home)?.config.storage).map_err(ReplicaCheckError::Storage)?;
    let mut checks = Vec::new();
    let mut found = Vec::new();
    for name in storage.replicas().map_err(ReplicaCheckError::Storage)? {
        let file = storage.describe(&name);
        let log = open(&storage, &name)?;
        let mut check = check_one(&file, &log)?;
        let LogName::Replica { region, .. } = &name else {
            continue;
        };
        found.push(region.clone());
        if let Some((_, origin)) = origin_logs.iter().find(|(r, _)| r == region) {
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
        if !found.contains(region) {
            return Err(ReplicaCheckError::NoReplica(region.clone()));
        }
    }
    Ok(checks)
}

fn check_one(file: &str, log: &Log) -> Result<ReplicaCheck, ReplicaCheckError> {
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

/// Opens a log in whichever suite it was written in (a check reads any).
fn open(storage: &Storage, name: &LogName) -> Result<Log, ReplicaCheckError> {
    let file = storage.describe(name);
    match storage.open_log(name, LogConfig::default(), Arc::new(NoIndex)) {
        Err(LogError::SuiteMismatch { file: suite, .. }) => {
            let config = LogConfig {
                suite,
                ..LogConfig::default()
            };
            storage
                .open_log(name, config, Arc::new(NoIndex))
                .map_err(fail(&file))
        }
        opened => opened.map_err(fail(&file)),
    }
}

fn fail(file: &str) -> impl Fn(LogError) -> ReplicaCheckError + '_ {
    move |source| ReplicaCheckError::Log {
        file: file.to_owned(),
        source,
    }
}
