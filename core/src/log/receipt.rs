//! Offline receipts (C2SP tlog-proof@v1): an entry's index, its inclusion proof and the (cosigned)
//! checkpoint it is proven against. Tongban puts the entry itself in the `extra` line, so a receipt
//! alone shows what was logged.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::log::checkpoint::{self, VerifiedCheckpoint};
use crate::log::note::{NoteError, NoteVerifier};
use crate::log::proof::{MAX_PROOF, leaf_hash, verify_inclusion};

const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A receipt for one log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub entry: Vec<u8>,
    pub index: u64,
    pub proof: Vec<[u8; 32]>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

impl Receipt {
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{HEADER}\nextra {}\nindex {}\n",
            B64.encode(&self.entry),
            self.index
        );
        for hash in &self.proof {
            out.push_str(&B64.encode(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    pub fn parse(text: &str) -> Result<Receipt, NoteError> {
        let bad = NoteError::Malformed;
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or(bad("receipt has no checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad("not a c2sp.org/tlog-proof@v1"));
        }
        let entry = lines
            .next()
            .and_then(|l| l.strip_prefix("extra "))
            .and_then(|e| B64.decode(e).ok())
            .ok_or(bad("a Tongban receipt carries its entry in the extra line"))?;
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .filter(|i| *i == "0" || !i.starts_with('0'))
            .and_then(|i| i.parse::<u64>().ok())
            .ok_or(bad("index line"))?;
        let proof = lines
            .map(|l| {
                B64.decode(l)
                    .ok()
                    .and_then(|h| <[u8; 32]>::try_from(h).ok())
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(bad("proof hash"))?;
        if proof.len() > MAX_PROOF {
            return Err(bad("proof too long"));
        }
        Ok(Receipt {
            entry,
            index,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Verifies offline: the checkpoint is signed by `log` (cosignatures by `witnesses` counted) and
    /// the entry is included at `index` in its tree.
    pub fn verify(
        &self,
        log: &NoteVerifier,
        witnesses: &[NoteVerifier],
    ) -> Result<VerifiedCheckpoint, NoteError> {
        let verified = checkpoint::open(self.checkpoint.as_bytes(), log, witnesses)?;
        let head = &verified.checkpoint;
        if !verify_inclusion(
            log.suite(),
            leaf_hash(log.suite(), &self.entry),
            self.index,
            head.size,
            head.root,
            &self.proof,
        ) {
            return Err(NoteError::Malformed("inclusion proof does not verify"));
        }
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use crate::log::checkpoint::Checkpoint;
    use crate::log::note::NoteRole;
    use crate::log::proof::MemoryTree;

    #[test]
    fn receipt_round_trip_and_tamper() -> Result<(), Box<dyn std::error::Error>> {
        let key = SecretKey::from_seed(&[5; 32])?;
        let origin = "tongban.example/341200/log/2026";
        let log = NoteVerifier::new(origin, NoteRole::Log, key.public().clone())?;
        let mut tree = MemoryTree::new(crate::suite::Suite::Ed25519);
        let entries: Vec<Vec<u8>> = (0u8..13).map(|i| vec![i; 40]).collect();
        for e in &entries {
            tree.append(e)?;
        }
        let checkpoint = Checkpoint {
            origin: origin.into(),
            size: 13,
            root: tree.root(13)?,
        }
        .sign(origin, &key)?;
        let receipt = Receipt {
            entry: entries[6].clone(),
            index: 6,
            proof: tree.inclusion_proof(6, 13)?,
            checkpoint,
        };
        let text = receipt.to_text();
        let parsed = Receipt::parse(&text)?;
        assert_eq!(parsed, receipt);
        assert_eq!(parsed.verify(&log, &[])?.checkpoint.size, 13);
        let mut wrong = parsed.clone();
        wrong.entry[0] ^= 1;
        assert!(wrong.verify(&log, &[]).is_err());
        let mut wrong = parsed;
        wrong.index = 7;
        assert!(wrong.verify(&log, &[]).is_err());
        Ok(())
    }
}
