//! Equivocation evidence (specs/federation.md §6): two checkpoints of one origin, both signed by
//! its log key, with the same size and different roots. Self-contained: anyone holding the log's
//! verifier key can check it, so one node's discovery convinces every other.

use crate::federation::{Reason, Refused, refuse};
use crate::log::checkpoint::{self, Checkpoint};
use crate::log::note::NoteVerifier;

/// Checked evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    pub origin: String,
    pub size: u64,
    pub roots: ([u8; 32], [u8; 32]),
    /// The two signed notes, as received.
    pub notes: (Vec<u8>, Vec<u8>),
}

/// Checks that `a` and `b` prove that the log of `log` equivocated.
pub fn check(a: &[u8], b: &[u8], log: &NoteVerifier) -> Result<Equivocation, Refused> {
    let open = |note: &[u8]| -> Result<Checkpoint, Refused> {
        checkpoint::open(note, log, &[])
            .map(|v| v.checkpoint)
            .map_err(|e| Refused::new(Reason::EvidenceInvalid, e.to_string()))
    };
    let (first, second) = (open(a)?, open(b)?);
    if first.size != second.size || first.root == second.root {
        return refuse(
            Reason::EvidenceInvalid,
            "the checkpoints must have the same size and different roots",
        );
    }
    Ok(Equivocation {
        origin: first.origin,
        size: first.size,
        roots: (first.root, second.root),
        notes: (a.to_vec(), b.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use crate::log::note::NoteRole;

    #[test]
    fn only_same_size_different_roots_under_the_log_key() -> Result<(), Box<dyn std::error::Error>>
    {
        let origin = "tongban.example/341200/log/1";
        let key = SecretKey::from_seed(&[5; 32])?;
        let log = NoteVerifier::new(origin, NoteRole::Log, key.public().clone())?;
        let head = |size, fill| {
            Checkpoint {
                origin: origin.into(),
                size,
                root: [fill; 32],
            }
            .sign(origin, &key)
            .map(String::into_bytes)
        };
        let proven = check(&head(5, 1)?, &head(5, 2)?, &log)?;
        assert_eq!((proven.size, proven.roots), (5, ([1; 32], [2; 32])));
        for (a, b) in [(head(5, 1)?, head(5, 1)?), (head(5, 1)?, head(6, 2)?)] {
            assert_eq!(
                check(&a, &b, &log).err().map(|r| r.code),
                Some(Reason::EvidenceInvalid)
            );
        }
        // Signed by another key: not evidence against this log.
        let other = SecretKey::from_seed(&[6; 32])?;
        let forged = Checkpoint {
            origin: origin.into(),
            size: 5,
            root: [3; 32],
        }
        .sign(origin, &other)?;
        assert!(check(&head(5, 1)?, forged.as_bytes(), &log).is_err());
        Ok(())
    }
}
