//! Signing the log's checkpoints: never one that does not extend the last signed (specs/log.md §3).

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
}

impl CheckpointSigner {
    pub fn new(origin: &str, key: SecretKey) -> Result<CheckpointSigner, NoteError> {
        NoteVerifier::new(origin, NoteRole::Log, key.public().clone())?;
        Ok(CheckpointSigner {
            origin: origin.to_owned(),
            key,
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
