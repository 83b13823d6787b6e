//! Another region's log as a node replicates it (specs/federation.md §5): the region's state,
//! established entry by entry through the same [`RegionState`] rules an auditor runs, and the right
//! edge of its Merkle tree. Entries come either from the region's own node, in its log order
//! (gossip: applied at once, confirmed later by a checkpoint), or from any member with a proof
//! against a checkpoint signed by the region's log key (catch-up).

use crate::federation::membership::Member;
use crate::federation::{Reason, Refused, refuse};
use crate::log::checkpoint::{self, Checkpoint, VerifiedCheckpoint};
use crate::log::frontier::Frontier;
use crate::log::note::NoteVerifier;
use crate::log::proof::verify_consistency;
use crate::log::state::{Applied, RegionState};

/// What applying a batch did: the entries applied (in order) and, if one was refused, why (the
/// entries after it were not looked at).
#[derive(Debug, Default)]
pub struct Progress {
    pub applied: Vec<Applied>,
    pub refused: Option<Refused>,
}

#[derive(Clone, Debug)]
pub struct Replica {
    log: NoteVerifier,
    state: RegionState,
    frontier: Frontier,
}

impl Replica {
    /// The empty replica of `member`'s log in federation `federation`.
    pub fn new(member: &Member, federation: &str) -> Result<Replica, Refused> {
        Ok(Replica {
            log: member.log_verifier(federation)?,
            state: RegionState::new(member.region().clone(), member.root.key.clone()),
            frontier: Frontier::default(),
        })
    }

    /// Entries applied so far: the index the next entry must have.
    pub fn size(&self) -> u64 {
        self.state.size()
    }

    pub fn state(&self) -> &RegionState {
        &self.state
    }

    /// The root of the entries applied so far.
    pub fn root(&self) -> [u8; 32] {
        self.frontier.root()
    }

    pub fn log_verifier(&self) -> &NoteVerifier {
        &self.log
    }

    /// Opens a checkpoint of this log: the log key's signature must verify, and so must every
    /// cosignature by one of `witnesses`.
    pub fn open_checkpoint(
        &self,
        note: &[u8],
        witnesses: &[NoteVerifier],
    ) -> Result<VerifiedCheckpoint, Refused> {
        checkpoint::open(note, &self.log, witnesses)
            .map_err(|e| Refused::new(Reason::CheckpointInvalid, e.to_string()))
    }

    /// Applies entries published by the region's own node, in its log order, starting at `first`,
    /// which must be the replica's size (the caller drops what it already holds).
    pub fn apply_published(&mut self, first: u64, entries: &[Vec<u8>]) -> Progress {
        if first != self.size() {
            return Progress {
                applied: Vec::new(),
                refused: Some(Refused::new(
                    Reason::Gap,
                    format!("entries from {first}, the replica holds {}", self.size()),
                )),
            };
        }
        self.apply_all(entries)
    }

    fn apply_all(&mut self, entries: &[Vec<u8>]) -> Progress {
        let mut progress = Progress::default();
        for entry in entries {
            match self.state.apply(entry) {
                Ok(applied) => {
                    self.frontier.push(entry);
                    progress.applied.push(applied);
                }
                Err(rejection) => {
                    progress.refused = Some(Refused::new(
                        Reason::EntryRejected,
                        format!("entry {}: {rejection}", self.size()),
                    ));
                    break;
                }
            }
        }
        progress
    }

    /// Applies entries `[first, first + n)` received from any member, with `note` (a checkpoint of
    /// size at least `first + n`) and the consistency proof from `first + n` to its size. Nothing
    /// is applied unless the proof shows these are the log's entries at those indexes; an entry
    /// that is then refused means the region's own log breaks the rules.
    pub fn apply_proven(
        &mut self,
        first: u64,
        entries: &[Vec<u8>],
        head: &Checkpoint,
        proof: &[[u8; 32]],
    ) -> Result<Progress, Refused> {
        if first != self.size() {
            return refuse(
                Reason::Gap,
                format!("entries from {first}, the replica holds {}", self.size()),
            );
        }
        let end = first + entries.len() as u64;
        if end > head.size {
            return refuse(Reason::ProofInvalid, "entries beyond the checkpoint");
        }
        let mut frontier = self.frontier.clone();
        for entry in entries {
            frontier.push(entry);
        }
        if end > 0 && !verify_consistency(end, frontier.root(), head.size, head.root, proof) {
            return refuse(
                Reason::ProofInvalid,
                format!(
                    "entries {first}..{end} are not a prefix of the checkpoint of size {}",
                    head.size
                ),
            );
        }
        Ok(self.apply_all(entries))
    }

    /// Whether `head` agrees with the replica, given the replica's root at `head.size` (which
    /// the caller reads from its stored copy when the checkpoint is older than the replica).
    pub fn confirms(head: &Checkpoint, root_at_size: [u8; 32]) -> Result<(), Refused> {
        match head.root == root_at_size {
            true => Ok(()),
            false => refuse(
                Reason::CheckpointMismatch,
                format!(
                    "the checkpoint of size {} does not match the entries the region published",
                    head.size
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::Membership;
    use crate::log::proof::MemoryTree;
    use crate::testkit::federation::TestMembers;
    use crate::testkit::log::sample;

    fn replica() -> Result<Replica, Box<dyn std::error::Error>> {
        let t = TestMembers::new(2)?;
        let m = Membership::open(&t.genesis(0)?, t.federation.public())?;
        let fuyang = m
            .members
            .iter()
            .find(|m| m.region().as_str() == "341200")
            .ok_or("member")?;
        Ok(Replica::new(fuyang, m.name.as_str())?)
    }

    #[test]
    fn published_entries_apply_in_order_and_gaps_are_named()
    -> Result<(), Box<dyn std::error::Error>> {
        let log = sample()?;
        let mut r = replica()?;
        let gap = r.apply_published(2, &log.entries[2..4]);
        assert_eq!(gap.refused.map(|r| r.code), Some(Reason::Gap));
        let progress = r.apply_published(0, &log.entries[..5]);
        assert!(progress.refused.is_none());
        assert_eq!((progress.applied.len(), r.size()), (5, 5));
        let head = r.open_checkpoint(&log.checkpoint(5)?, &[])?.checkpoint;
        Replica::confirms(&head, r.root())?;
        let mut other = head.clone();
        other.root[0] ^= 1;
        assert_eq!(
            Replica::confirms(&other, r.root()).err().map(|r| r.code),
            Some(Reason::CheckpointMismatch)
        );
        // A replayed entry is refused by the log's rules, and stops the batch.
        let progress = r.apply_published(5, &[log.entries[2].clone(), log.entries[5].clone()]);
        assert_eq!(
            progress.refused.map(|r| r.code),
            Some(Reason::EntryRejected)
        );
        assert_eq!(r.size(), 5);
        Ok(())
    }

    #[test]
    fn proven_entries_need_a_valid_proof() -> Result<(), Box<dyn std::error::Error>> {
        let log = sample()?;
        let mut tree = MemoryTree::default();
        for e in &log.entries {
            tree.append(e)?;
        }
        let size = log.entries.len() as u64;
        let mut r = replica()?;
        let head = r.open_checkpoint(&log.checkpoint(size)?, &[])?.checkpoint;
        let proof = tree.consistency_proof(4, size)?;
        // Reordered entries do not match the checkpoint.
        let mut swapped = log.entries[..4].to_vec();
        swapped.swap(2, 3);
        assert_eq!(
            r.apply_proven(0, &swapped, &head, &proof)
                .err()
                .map(|r| r.code),
            Some(Reason::ProofInvalid)
        );
        assert_eq!(r.size(), 0);
        let progress = r.apply_proven(0, &log.entries[..4], &head, &proof)?;
        assert_eq!((progress.applied.len(), r.size()), (4, 4));
        let rest = &log.entries[4..];
        let progress = r.apply_proven(4, rest, &head, &[])?;
        assert!(progress.refused.is_none());
        assert_eq!(r.root(), head.root);
        // A checkpoint signed by another key does not open.
        let forged = Checkpoint {
            origin: log.origin.clone(),
            size,
            root: head.root,
        }
        .sign(&log.origin, &crate::keys::SecretKey::from_seed(&[1; 32])?)?;
        assert!(r.open_checkpoint(forged.as_bytes(), &[]).is_err());
        Ok(())
    }
}
