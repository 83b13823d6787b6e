//! The witness (C2SP tlog-witness, specs/federation.md §6): a node cosigns a member's checkpoint
//! only when it provably extends the last one it cosigned for that origin, and recognises a second
//! checkpoint of the same size with another root as equivocation. Sans-I/O: the node persists the
//! new [`Witnessed`] head before it hands out the cosignature.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::federation::evidence::Equivocation;
use crate::federation::{Reason, Refused, refuse};
use crate::keys::SecretKey;
use crate::log::checkpoint::{self, Checkpoint};
use crate::log::note::{Note, NoteSignature, NoteVerifier};
use crate::log::proof::{MAX_PROOF, verify_consistency};

/// A request body larger than this is refused (a checkpoint note with its cosignatures and a
/// 64-hash proof fit in a few kilobytes).
pub const MAX_REQUEST: usize = 64 * 1024;

/// The body of a C2SP tlog-witness `add-checkpoint` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the witness is believed to hold.
    pub old: u64,
    /// Consistency proof from `old` to the new checkpoint's size.
    pub proof: Vec<[u8; 32]>,
    /// The signed checkpoint note, as received.
    pub note: Vec<u8>,
}

fn malformed(detail: &str) -> Refused {
    Refused::new(Reason::Malformed, format!("add-checkpoint: {detail}"))
}

impl AddCheckpoint {
    /// `old <size>\n`, one base64 hash per line, an empty line, then the note.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old);
        for hash in &self.proof {
            out.push_str(&B64.encode(hash));
            out.push('\n');
        }
        out.push('\n');
        let mut out = out.into_bytes();
        out.extend_from_slice(&self.note);
        out
    }

    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, Refused> {
        if body.len() > MAX_REQUEST {
            return refuse(
                Reason::TooLarge,
                format!("add-checkpoint over {MAX_REQUEST} bytes"),
            );
        }
        let mut rest = body;
        let mut line = || -> Result<&[u8], Refused> {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| malformed("unterminated line"))?;
            let (line, tail) = rest.split_at(end);
            rest = &tail[1..];
            Ok(line)
        };
        let old = std::str::from_utf8(line()?)
            .ok()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| *n == "0" || !n.starts_with('0'))
            .and_then(|n| {
                n.parse::<u64>()
                    .ok()
                    .filter(|_| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .ok_or_else(|| malformed("first line must be `old <size>`"))?;
        let mut proof = Vec::new();
        loop {
            let hash = line()?;
            if hash.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF {
                return Err(malformed("proof longer than 64 hashes"));
            }
            let hash = B64
                .decode(hash)
                .ok()
                .and_then(|h| <[u8; 32]>::try_from(h).ok())
                .ok_or_else(|| malformed("proof line is not a base64 SHA-256 hash"))?;
            proof.push(hash);
        }
        Ok(AddCheckpoint {
            old,
            proof,
            note: rest.to_vec(),
        })
    }
}

/// What a witness holds for one origin: the last checkpoint it cosigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witnessed {
    pub size: u64,
    pub root: [u8; 32],
    /// The note it cosigned, as received (what equivocation evidence quotes).
    pub note: Vec<u8>,
}

/// What to do with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Persist `next`, then answer with [`cosignature`] over `checkpoint`.
    Cosign {
        checkpoint: Checkpoint,
        next: Witnessed,
    },
    /// The checkpoint is the one held (same size and root): answer with the cosignature already
    /// given for it, so that one (origin, size) never gets two.
    Held,
    /// The request's `old` is not the size held (C2SP: 409 with the held size).
    Conflict { held: u64 },
    /// The log signed two checkpoints of one size with different roots.
    Equivocation(Equivocation),
}

/// Decides an `add-checkpoint` request for the log of `log`, given what is held for its origin.
/// The caller must read `held`, decide and persist the outcome as one atomic step per origin
/// (concurrent requests would otherwise each be judged against the same held checkpoint and
/// cosign conflicting extensions of it). Refusals: `CHECKPOINT_INVALID` (not signed by the log, or a known cosigner's signature fails),
/// `FED_MALFORMED` (old larger than the checkpoint), `PROOF_INVALID`.
pub fn add_checkpoint(
    request: &AddCheckpoint,
    log: &NoteVerifier,
    held: Option<&Witnessed>,
) -> Result<Outcome, Refused> {
    let opened = checkpoint::open(&request.note, log, &[])
        .map_err(|e| Refused::new(Reason::CheckpointInvalid, e.to_string()))?;
    let next = opened.checkpoint;
    if request.old > next.size {
        return Err(malformed("old size larger than the checkpoint"));
    }
    let held_size = held.map_or(0, |h| h.size);
    if let Some(held) = held
        && held.size == next.size
        && held.root != next.root
    {
        return crate::federation::evidence::check(&held.note, &request.note, log)
            .map(Outcome::Equivocation);
    }
    if request.old != held_size {
        return Ok(Outcome::Conflict { held: held_size });
    }
    if held.is_some_and(|h| h.size == next.size) && request.proof.is_empty() {
        // Same size and, by the check above, the same root: nothing new to cosign.
        return Ok(Outcome::Held);
    }
    let consistent = match held {
        None => request.proof.is_empty(),
        Some(held) => verify_consistency(
            log.suite(),
            held.size,
            held.root,
            next.size,
            next.root,
            &request.proof,
        ),
    };
    if !consistent {
        return refuse(
            Reason::ProofInvalid,
            format!(
                "no valid consistency proof from size {held_size} to {}",
                next.size
            ),
        );
    }
    Ok(Outcome::Cosign {
        next: Witnessed {
            size: next.size,
            root: next.root,
            note: request.note.clone(),
        },
        checkpoint: next,
    })
}

/// The cosignature line (`— <name> <base64>\n`) a witness returns.
pub fn cosignature(
    checkpoint: &Checkpoint,
    time: u64,
    name: &str,
    key: &SecretKey,
) -> Result<String, Refused> {
    let signature = checkpoint::cosign(&checkpoint.body(), time, name, key)
        .map_err(|e| Refused::new(Reason::Malformed, e.to_string()))?;
    Ok(line(&signature))
}

fn line(signature: &NoteSignature) -> String {
    let mut blob = signature.id.to_be_bytes().to_vec();
    blob.extend_from_slice(&signature.body);
    format!("— {} {}\n", signature.name, B64.encode(blob))
}

/// Parses cosignature lines returned by a witness.
pub fn parse_lines(text: &str) -> Result<Vec<NoteSignature>, Refused> {
    // A note's signature block is exactly such lines: reuse its parser on a dummy text.
    Note::parse(format!("x\n\n{text}").as_bytes())
        .map(|n| n.signatures)
        .map_err(|e| malformed(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::checkpoint::open;
    use crate::log::note::NoteRole;
    use crate::log::proof::MemoryTree;

    const ORIGIN: &str = "tongban.example/341200/log/1";

    struct Fixture {
        key: SecretKey,
        log: NoteVerifier,
        tree: MemoryTree,
    }

    impl Fixture {
        fn new() -> Result<Fixture, Box<dyn std::error::Error>> {
            let key = SecretKey::from_seed(&[11; 32])?;
            let log = NoteVerifier::new(ORIGIN, NoteRole::Log, key.public().clone())?;
            let mut tree = MemoryTree::new(crate::suite::Suite::Ed25519);
            for i in 0u8..20 {
                tree.append(&[i])?;
            }
            Ok(Fixture { key, log, tree })
        }

        fn note(&self, size: u64) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
            let root = self.tree.root(size)?;
            Ok(Checkpoint {
                origin: ORIGIN.into(),
                size,
                root,
            }
            .sign(ORIGIN, &self.key)?
            .into_bytes())
        }

        fn request(
            &self,
            old: u64,
            size: u64,
        ) -> Result<AddCheckpoint, Box<dyn std::error::Error>> {
            let proof = match old {
                0 => Vec::new(),
                old => self.tree.consistency_proof(old, size)?,
            };
            Ok(AddCheckpoint {
                old,
                proof,
                note: self.note(size)?,
            })
        }
    }

    fn cosigned(outcome: Outcome) -> Result<(Checkpoint, Witnessed), String> {
        match outcome {
            Outcome::Cosign { checkpoint, next } => Ok((checkpoint, next)),
            other => Err(format!("expected a cosignature, got {other:?}")),
        }
    }

    #[test]
    fn the_body_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let f = Fixture::new()?;
        let request = f.request(5, 12)?;
        assert_eq!(AddCheckpoint::parse(&request.encode())?, request);
        for bad in [
            "old 01\n\nx",
            "old 5\nnot-base64\n\nx",
            "new 5\n\nx",
            "old 5\n",
        ] {
            assert!(AddCheckpoint::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn cosigns_only_extensions_and_catches_equivocation() -> Result<(), Box<dyn std::error::Error>>
    {
        let f = Fixture::new()?;
        let (first, held) = cosigned(add_checkpoint(&f.request(0, 5)?, &f.log, None)?)?;
        let witness = SecretKey::from_seed(&[12; 32])?;
        let name = "tongban.example/370100/witness";
        let line = cosignature(&first, 1_700_000_000, name, &witness)?;
        let with = checkpoint::add_signatures(&held.note, &parse_lines(&line)?)?;
        let verifier = NoteVerifier::new(name, NoteRole::Witness, witness.public().clone())?;
        assert_eq!(
            open(with.as_bytes(), &f.log, &[verifier])?
                .cosigned_by
                .len(),
            1
        );

        // The next one, with a proof from the held size.
        let (_, held) = cosigned(add_checkpoint(&f.request(5, 12)?, &f.log, Some(&held))?)?;
        assert_eq!(held.size, 12);
        // The held checkpoint again: nothing new to cosign.
        assert_eq!(
            add_checkpoint(&f.request(12, 12)?, &f.log, Some(&held))?,
            Outcome::Held
        );
        // A stale `old`: conflict naming the held size.
        assert_eq!(
            add_checkpoint(&f.request(5, 15)?, &f.log, Some(&held))?,
            Outcome::Conflict { held: 12 }
        );
        // A wrong proof.
        let mut bad = f.request(12, 15)?;
        bad.proof[0][0] ^= 1;
        assert_eq!(
            add_checkpoint(&bad, &f.log, Some(&held))
                .err()
                .map(|r| r.code),
            Some(Reason::ProofInvalid)
        );
        // Same size, another root: evidence.
        let forged = Checkpoint {
            origin: ORIGIN.into(),
            size: 12,
            root: [7; 32],
        }
        .sign(ORIGIN, &f.key)?
        .into_bytes();
        let request = AddCheckpoint {
            old: 12,
            proof: Vec::new(),
            note: forged,
        };
        match add_checkpoint(&request, &f.log, Some(&held))? {
            Outcome::Equivocation(e) => assert_eq!(e.size, 12),
            other => return Err(format!("expected evidence, got {other:?}").into()),
        }
        // Not signed by the log.
        let stranger = SecretKey::from_seed(&[13; 32])?;
        let unsigned = Checkpoint {
            origin: ORIGIN.into(),
            size: 13,
            root: f.tree.root(13)?,
        }
        .sign(ORIGIN, &stranger)?
        .into_bytes();
        let request = AddCheckpoint {
            old: 12,
            proof: f.tree.consistency_proof(12, 13)?,
            note: unsigned,
        };
        assert_eq!(
            add_checkpoint(&request, &f.log, Some(&held))
                .err()
                .map(|r| r.code),
            Some(Reason::CheckpointInvalid)
        );
        Ok(())
    }
}
