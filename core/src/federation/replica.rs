//! Another region's log as a node replicates it (specs/federation.md §5): the region's state,
//! established entry by entry through the same [`Rules`] an auditor runs over a store the holder
//! keeps (on disk, for a node), and the right edge of its Merkle tree. Entries come either from the region's own node, in its log order
//! (gossip: applied at once, confirmed later by a checkpoint), or from any member with a proof
//! against a checkpoint signed by the region's log key (catch-up).

use std::collections::HashMap;

use crate::federation::membership::Member;
use crate::federation::{Reason, Refused, refuse};
use crate::ids::RegionCode;
use crate::keys::{KeyId, PublicKey};
use crate::log::checkpoint::{self, Checkpoint, VerifiedCheckpoint};
use crate::log::frontier::Frontier;
use crate::log::note::NoteVerifier;
use crate::log::overlay::{Layered, Overlay};
use crate::log::proof::verify_consistency;
use crate::log::state::{
    Applied, ApplyError, Delta, Head, Rules, SealRecord, StateRead, checked_signature,
};

/// What applying a batch did: the entries applied (in order), what each changed (for the
/// holder to store with the entries, in one transaction) and, if one was refused, why (the
/// entries after it were not looked at).
#[derive(Debug, Default)]
pub struct Progress {
    pub applied: Vec<Applied>,
    pub deltas: Vec<Delta>,
    pub refused: Option<Refused>,
}

/// A replica's own memory: the log's key, where the log stands, its seals and its tree's right
/// edge. The certificates' state lives in the holder's store, read through [`StateRead`]; the
/// replica hands back what each entry changes and never keeps it.
#[derive(Clone, Debug)]
pub struct Replica {
    log: NoteVerifier,
    region: RegionCode,
    root: PublicKey,
    head: Head,
    seals: HashMap<KeyId, SealRecord>,
    frontier: Frontier,
}

impl Replica {
    /// The empty replica of `member`'s log in federation `federation`.
    pub fn new(member: &Member, federation: &str) -> Result<Replica, Refused> {
        Replica::resume(
            member,
            federation,
            Head::default(),
            Vec::new(),
            Frontier::new(member.log_key.suite()),
        )
    }

    /// The replica as its holder stored it: where the log stands, its seals, its right edge.
    pub fn resume(
        member: &Member,
        federation: &str,
        head: Head,
        seals: Vec<SealRecord>,
        frontier: Frontier,
    ) -> Result<Replica, Refused> {
        if frontier.suite() != member.log_key.suite() {
            return refuse(
                Reason::Internal,
                format!(
                    "a stored replica's tree in {}, its log key of {}",
                    frontier.suite(),
                    member.log_key.suite()
                ),
            );
        }
        if frontier.size() != head.size {
            return refuse(
                Reason::Internal,
                format!(
                    "a stored replica of {} entries with a tree of {}",
                    head.size,
                    frontier.size()
                ),
            );
        }
        Ok(Replica {
            log: member.log_verifier(federation)?,
            region: member.region().clone(),
            root: member.root.key.clone(),
            head,
            seals: seals.into_iter().map(|s| (s.info.key.kid(), s)).collect(),
            frontier,
        })
    }

    /// Entries applied so far: the index the next entry must have.
    pub fn size(&self) -> u64 {
        self.head.size
    }

    pub fn region(&self) -> &RegionCode {
        &self.region
    }

    /// The region's seals, as its log registered and revoked them.
    pub fn seals(&self) -> impl Iterator<Item = &SealRecord> {
        self.seals.values()
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
    /// which must be the replica's size (the caller drops what it already holds), over the
    /// state in `store` (which holds every earlier entry's changes).
    pub fn apply_published<S: StateRead>(
        &mut self,
        first: u64,
        entries: &[Vec<u8>],
        store: &S,
    ) -> Progress {
        if first != self.size() {
            return Progress {
                refused: Some(Refused::new(
                    Reason::Gap,
                    format!("entries from {first}, the replica holds {}", self.size()),
                )),
                ..Progress::default()
            };
        }
        self.apply_all(entries, store)
    }

    /// Every rule an auditor runs, each signature verified strictly, entry after entry; the
    /// changes of the batch's earlier entries are read from an overlay until the holder stores
    /// them. A store that cannot be read stops the batch as this node's own fault.
    fn apply_all<S: StateRead>(&mut self, entries: &[Vec<u8>], store: &S) -> Progress {
        let mut progress = Progress::default();
        let mut overlay = Overlay::default();
        for entry in entries {
            let rules = Rules {
                region: &self.region,
                root: &self.root,
            };
            let state = Layered {
                seals: &self.seals,
                overlay: &overlay,
                store,
            };
            match rules.check(self.head, &state, entry, checked_signature) {
                Ok((applied, (), delta)) => {
                    overlay.take(self.head.size, &delta, &mut self.seals);
                    self.head = delta.head;
                    self.frontier.push(entry);
                    progress.applied.push(applied);
                    progress.deltas.push(delta);
                }
                Err(ApplyError::Rejected(rejection)) => {
                    progress.refused = Some(Refused::new(
                        Reason::EntryRejected,
                        format!("entry {}: {rejection}", self.size()),
                    ));
                    break;
                }
                Err(ApplyError::Store(e)) => {
                    progress.refused = Some(Refused::new(
                        Reason::Internal,
                        format!("entry {}: {e}", self.size()),
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
    pub fn apply_proven<S: StateRead>(
        &mut self,
        first: u64,
        entries: &[Vec<u8>],
        head: &Checkpoint,
        proof: &[[u8; 32]],
        store: &S,
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
        if end > 0
            && !verify_consistency(
                frontier.suite(),
                end,
                frontier.root(),
                head.size,
                head.root,
                proof,
            )
        {
            return refuse(
                Reason::ProofInvalid,
                format!(
                    "entries {first}..{end} are not a prefix of the checkpoint of size {}",
                    head.size
                ),
            );
        }
        Ok(self.apply_all(entries, store))
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

    use crate::log::state::RegionState;

    /// A replica's store in memory: the deltas it hands back, taken in.
    fn store() -> Result<RegionState, Box<dyn std::error::Error>> {
        let root = crate::testkit::key("region 341200 root")?.public().clone();
        Ok(RegionState::new(
            crate::testkit::region_code("341200")?,
            root,
        ))
    }

    fn keep(store: &mut RegionState, progress: &Progress) {
        for delta in &progress.deltas {
            store.take(delta.clone());
        }
    }

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
        let mut s = store()?;
        let gap = r.apply_published(2, &log.entries[2..4], &s);
        assert_eq!(gap.refused.map(|r| r.code), Some(Reason::Gap));
        let progress = r.apply_published(0, &log.entries[..5], &s);
        assert!(progress.refused.is_none());
        keep(&mut s, &progress);
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
        let progress = r.apply_published(5, &[log.entries[2].clone(), log.entries[5].clone()], &s);
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
        let mut tree = MemoryTree::new(crate::suite::Suite::Ed25519);
        for e in &log.entries {
            tree.append(e)?;
        }
        let size = log.entries.len() as u64;
        let mut r = replica()?;
        let mut s = store()?;
        let head = r.open_checkpoint(&log.checkpoint(size)?, &[])?.checkpoint;
        let proof = tree.consistency_proof(4, size)?;
        // Reordered entries do not match the checkpoint.
        let mut swapped = log.entries[..4].to_vec();
        swapped.swap(2, 3);
        assert_eq!(
            r.apply_proven(0, &swapped, &head, &proof, &s)
                .err()
                .map(|r| r.code),
            Some(Reason::ProofInvalid)
        );
        assert_eq!(r.size(), 0);
        let progress = r.apply_proven(0, &log.entries[..4], &head, &proof, &s)?;
        assert_eq!((progress.applied.len(), r.size()), (4, 4));
        keep(&mut s, &progress);
        let rest = &log.entries[4..];
        let progress = r.apply_proven(4, rest, &head, &[], &s)?;
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
