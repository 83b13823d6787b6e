//! Signing the log's checkpoints: never one that does not extend the last signed (specs/log.md §3).

use std::sync::{Mutex, PoisonError};

use tongban_core::keys::SecretKey;
use tongban_core::log::checkpoint::{self, Checkpoint};
use tongban_core::log::note::{Note, NoteError, NoteRole, NoteVerifier};

use crate::log::{Log, LogError};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The stored checkpoint is not a prefix of the tree: refusing to sign a fork.
    #[error(
        "refusing to sign: size {size} does not extend the last signed checkpoint (size {last})"
    )]
    Fork { last: u64, size: u64 },
}

/// The log key and origin of a region's log.
pub struct CheckpointSigner {
    origin: String,
    key: SecretKey,
    /// Held from reading the log's size to storing the checkpoint: two signers at once would
    /// each sign the size they read, and the smaller would be refused once the larger is
    /// stored (checkpoints never go back).
    signing: Mutex<()>,
}

impl CheckpointSigner {
    pub fn new(origin: &str, key: SecretKey) -> Result<CheckpointSigner, NoteError> {
        NoteVerifier::new(origin, NoteRole::Log, key.public().clone())?;
        Ok(CheckpointSigner {
            origin: origin.to_owned(),
            key,
            signing: Mutex::new(()),
        })
    }

    /// The log's verifier key, `<origin>+<id>+<key>`.
    pub fn vkey(&self) -> Result<String, NoteError> {
        Ok(NoteVerifier::new(&self.origin, NoteRole::Log, self.key.public().clone())?.to_vkey())
    }

    /// Signs a checkpoint of the log's current size and persists it before returning it: the
    /// caller may publish it only afterwards. Refuses when the last stored checkpoint is not
    /// provably a prefix of the current tree.
    pub fn sign(&self, log: &Log) -> Result<String, CheckpointError> {
        let _signing = self.lock()?;
        self.sign_locked(log)
    }

    /// Signs as [`CheckpointSigner::sign`] when the log has grown since the last stored
    /// checkpoint (or none is stored); `None` when the last one already covers it.
    pub fn sign_if_grown(&self, log: &Log) -> Result<Option<String>, CheckpointError> {
        let _signing = self.lock()?;
        let size = log.size()?;
        let last = log.last_checkpoint()?.map(|(size, _)| size);
        if last.is_some_and(|last| last >= size) {
            return Ok(None);
        }
        self.sign_locked(log).map(Some)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, ()>, CheckpointError> {
        // The guarded state is in the log, written whole or not at all: a panic while holding
        // the lock leaves nothing half done.
        Ok(self.signing.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn sign_locked(&self, log: &Log) -> Result<String, CheckpointError> {
        let size = log.size()?;
        let next = Checkpoint {
            origin: self.origin.clone(),
            size,
            root: log.root(size)?,
        };
        if let Some((last_size, note)) = log.last_checkpoint()? {
            let last = Checkpoint::parse(&Note::parse(&note)?.text)?;
            let proof = match last.size {
                0 => Vec::new(),
                old if old <= size => log.consistency_proof(old, size)?,
                _ => {
                    return Err(CheckpointError::Fork {
                        last: last_size,
                        size,
                    });
                }
            };
            if !checkpoint::extends(log.suite(), &last, &next, &proof) {
                return Err(CheckpointError::Fork {
                    last: last_size,
                    size,
                });
            }
        }
        let note = next.sign(&self.origin, &self.key)?;
        log.store_checkpoint(size, note.clone().into_bytes())?;
        Ok(note)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;
    use crate::log::{LogConfig, NoIndex};
    use crate::storage::{LogName, Storage};

    #[test]
    fn signers_racing_appends_never_refuse_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Storage = crate::storage::test_storage(dir.path());
        let log = storage
            .open_log(&LogName::Region, LogConfig::default(), Arc::new(NoIndex))
            .unwrap();
        let signer =
            CheckpointSigner::new("test.example/log", SecretKey::from_seed(&[7; 32]).unwrap())
                .unwrap();
        // One thread appends while eight sign as fast as they can: a signer that read an older
        // size must not be refused because another stored a newer one meanwhile. (That
        // interleaving needs a signer delayed between reading the size and storing, for a
        // commit's time: rare here, common on a loaded machine, where transfer_race.rs met it
        // on PostgreSQL as a 503 CHECKPOINT_REFUSED.)
        let appending = std::sync::atomic::AtomicBool::new(true);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                let (log, signer, appending) = (&log, &signer, &appending);
                scope.spawn(move || {
                    while appending.load(std::sync::atomic::Ordering::Relaxed) {
                        let size = log.size().unwrap();
                        signer.sign_if_grown(log).unwrap();
                        let covered = log.last_checkpoint().unwrap().map_or(0, |(s, _)| s);
                        assert!(covered >= size, "{covered} < {size}");
                    }
                });
            }
            // Submitted without waiting for each, so the log grows in many small commits.
            let pending: Vec<_> = (0..2000u32)
                .map(|n| {
                    log.submit(vec![n.to_be_bytes().to_vec()], Vec::new(), Vec::new())
                        .unwrap()
                })
                .collect();
            for p in pending {
                p.wait().unwrap();
            }
            appending.store(false, std::sync::atomic::Ordering::Relaxed);
        });
        signer.sign_if_grown(&log).unwrap();
        assert_eq!(log.last_checkpoint().unwrap().unwrap().0, 2000);
        assert!(signer.sign_if_grown(&log).unwrap().is_none());
    }
}
