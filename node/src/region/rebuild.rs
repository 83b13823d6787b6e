//! The state rebuilt from the log's entries, the log being the single source of truth: after an
//! upgrade from a log without state (into the log's own state table), and by `tongban-node check`
//! (into a scratch table, then compared row by row with the stored one). Every entry is checked
//! with every rule, its signature verified strictly, as an auditor would.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tongban_core::envelope::Envelope;
use tongban_core::ids::RegionCode;
use tongban_core::keys::{KeyId, PublicKey};
use tongban_core::log::state::{ApplyError, Rejection, Rules, SealRecord, verify_signature};

use tongban_core::log::overlay::{Layered, Overlay};

use super::state::{self, Rows};
use crate::entry_index::EntryIndexer;
use crate::home::{Home, load};
use crate::log::{Log, LogConfig, LogError, Scratch, StateTarget};

/// Entries applied per write transaction.
const CHUNK: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    /// The log holds an entry its own rules refuse: no state can be built past it.
    #[error("entry {index} is refused by the log's rules: {rejection}")]
    Refused { index: u64, rejection: Rejection },
}

/// Applies entries from `target`'s state size up to `to` and writes their changes into it.
pub fn catch_up(
    log: &Log,
    target: &impl StateTarget,
    region: &RegionCode,
    root: &PublicKey,
    to: u64,
) -> Result<(), RebuildError> {
    let started = Instant::now();
    let snapshot = target.state()?;
    let from = snapshot.size();
    if from >= to {
        return Ok(());
    }
    let mut head = Rows(&snapshot).head(from)?;
    let mut seals: HashMap<KeyId, SealRecord> = state::all_seals(&snapshot)?
        .into_iter()
        .map(|s| (s.info.key.kid(), s))
        .collect();
    drop(snapshot);
    let rules = Rules { region, root };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut start = from;
    while start < to {
        let end = to.min(start + CHUNK);
        let entries = log.entries(start..end)?;
        let snapshot = target.state()?;
        let rows = Rows(&snapshot);
        let mut overlay = Overlay::default();
        let mut ops = Vec::new();
        // Every rule now; the signatures, most of the time, on every core once the chunk is
        // judged. Nothing is written before both passed.
        let mut signatures = Vec::with_capacity(entries.len());
        for (index, bytes) in (start..).zip(&entries) {
            let store = Layered {
                seals: &seals,
                overlay: &overlay,
                store: &rows,
            };
            let checked = rules.check(head, &store, bytes, |envelope, key| {
                Ok((envelope, key.clone()))
            });
            let (_, signature, delta) = match checked {
                Ok(checked) => checked,
                Err(ApplyError::Rejected(rejection)) => {
                    // An earlier entry's bad signature is the first fault.
                    first_bad_signature(&signatures, threads)?;
                    return Err(RebuildError::Refused { index, rejection });
                }
                Err(ApplyError::Store(e)) => return Err(RebuildError::Log(e)),
            };
            signatures.push((index, signature));
            overlay.take(index, &delta, &mut seals);
            ops.extend(state::ops_of(&delta));
            head = delta.head;
        }
        first_bad_signature(&signatures, threads)?;
        drop(signatures);
        drop(snapshot);
        target.catch_up(end, ops)?;
        start = end;
    }
    tracing::info!(
        region = %region,
        entries = to - from,
        millis = started.elapsed().as_millis() as u64,
        "region state rebuilt from the log"
    );
    Ok(())
}

/// `tongban-node check`: the node in `home` must be stopped (its log file is locked while it
/// runs).
pub fn check_home(home: &Home) -> Result<Check, RebuildError> {
    let loaded = load(home)?;
    let config = LogConfig {
        suite: loaded.region_root.public().suite(),
        ..LogConfig::default()
    };
    let storage = crate::storage::Storage::open(home, &loaded.config.storage)?;
    let log = storage.open_log(
        &crate::storage::LogName::Region,
        config,
        Arc::new(EntryIndexer),
    )?;
    let dir = home.log();
    let scratch_dir = dir.parent().unwrap_or(Path::new("."));
    check(
        &log,
        &loaded.region,
        loaded.region_root.public(),
        scratch_dir,
    )
}

/// Verifies the signatures of a chunk's entries on `threads` threads; the lowest index whose
/// signature fails is the error.
fn first_bad_signature(
    signatures: &[(u64, (Envelope<'_>, PublicKey))],
    threads: usize,
) -> Result<(), RebuildError> {
    let per = signatures.len().div_ceil(threads.max(1)).max(1);
    let failed = std::thread::scope(|scope| {
        let workers: Vec<_> = signatures
            .chunks(per)
            .map(|part| {
                scope.spawn(move || {
                    part.iter().find_map(|(index, (envelope, key))| {
                        verify_signature(envelope, key)
                            .err()
                            .map(|rejection| (*index, rejection))
                    })
                })
            })
            .collect();
        // Parts are in index order: the first part with a failure holds the lowest index.
        workers.into_iter().find_map(|w| w.join().ok().flatten())
    });
    match failed {
        Some((index, rejection)) => Err(RebuildError::Refused { index, rejection }),
        None => Ok(()),
    }
}

/// What `tongban-node check` found.
#[derive(Debug)]
pub struct Check {
    pub entries: u64,
    pub differences: crate::log::Differences,
}

/// Replays the whole log into a scratch state in `scratch_dir` and compares it with the stored
/// state. The scratch file is removed afterwards.
pub fn check(
    log: &Log,
    region: &RegionCode,
    root: &PublicKey,
    scratch_dir: &Path,
) -> Result<Check, RebuildError> {
    let path = scratch_dir.join(format!("check-{}.redb", std::process::id()));
    let result = (|| {
        let scratch = Scratch::create(&path)?;
        let entries = log.size()?;
        let stored = log.state_size()?;
        if stored != entries {
            return Err(RebuildError::Log(LogError::StateBehind {
                state: stored,
                size: entries,
            }));
        }
        catch_up(log, &scratch, region, root, entries)?;
        let differences = log.state_differences(&scratch)?;
        Ok(Check {
            entries,
            differences,
        })
    })();
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), error = %e, "the scratch state was not removed");
    }
    result
}
