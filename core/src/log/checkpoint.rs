//! Checkpoints (C2SP tlog-checkpoint) signed as notes, and cosignatures (C2SP tlog-cosignature,
//! `cosignature/v1`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::keys::SecretKey;
use crate::log::note::{self, Note, NoteError, NoteRole, NoteSignature, NoteVerifier};
use crate::suite::Suite;

/// A tree head: `<origin>\n<size>\n<base64 root>\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: [u8; 32],
}

impl Checkpoint {
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint body. Tongban checkpoints carry no extension lines, so none are accepted.
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = NoteError::Malformed;
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .ok_or(bad("checkpoint must end with a newline"))?
            .split('\n')
            .collect();
        let [origin, size, root] = lines.as_slice() else {
            return Err(bad("checkpoint must have exactly three lines"));
        };
        let canonical = !size.is_empty()
            && (size == &"0" || !size.starts_with('0'))
            && size.bytes().all(|b| b.is_ascii_digit());
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or(bad("size"))?;
        let root = B64
            .decode(root)
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .ok_or(bad("root"))?;
        if origin.is_empty() {
            return Err(bad("empty origin"));
        }
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root,
        })
    }

    /// The checkpoint signed by the log key (`name` is the log's key name, normally the origin).
    pub fn sign(&self, name: &str, key: &SecretKey) -> Result<String, NoteError> {
        let text = self.body();
        let signature = note::sign(&text, name, key)?;
        Ok(Note {
            text,
            signatures: vec![signature],
        }
        .to_text())
    }
}

/// The rule a log obeys before it signs (specs/log.md §3), and a witness before it cosigns
/// (C2SP tlog-witness): `next` must provably extend `last` — same origin, no smaller, and `proof`
/// a valid consistency proof from `last` to `next` in the tree hash of `suite`.
pub fn extends(suite: Suite, last: &Checkpoint, next: &Checkpoint, proof: &[[u8; 32]]) -> bool {
    last.origin == next.origin
        && (last.size == 0 && proof.is_empty()
            || crate::log::proof::verify_consistency(
                suite, last.size, last.root, next.size, next.root, proof,
            ))
}

/// The message a cosigner signs: `cosignature/v1\ntime <t>\n` followed by the checkpoint body.
pub fn cosignature_message(time: u64, body: &str) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

/// A witness's cosignature line on `body` at `time`.
pub fn cosign(
    body: &str,
    time: u64,
    name: &str,
    key: &SecretKey,
) -> Result<NoteSignature, NoteError> {
    let verifier = NoteVerifier::new(name, NoteRole::Witness, key.public().clone())?;
    let mut blob = time.to_be_bytes().to_vec();
    blob.extend_from_slice(&key.sign(cosignature_message(time, body).as_bytes()));
    Ok(NoteSignature {
        name: name.to_owned(),
        id: verifier.id,
        body: blob,
    })
}

/// A checkpoint whose log signature verified, with the cosignatures that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub checkpoint: Checkpoint,
    /// (witness name, cosignature time) for each known witness that cosigned.
    pub cosigned_by: Vec<(String, u64)>,
}

/// Opens a signed checkpoint: the log's signature must verify; signatures of unknown keys are
/// ignored; a known witness whose cosignature fails rejects the whole note.
pub fn open(
    note_bytes: &[u8],
    log: &NoteVerifier,
    witnesses: &[NoteVerifier],
) -> Result<VerifiedCheckpoint, NoteError> {
    let note = Note::parse(note_bytes)?;
    if !note.verify_log(log)? {
        return Err(NoteError::Unsigned);
    }
    let checkpoint = Checkpoint::parse(&note.text)?;
    if checkpoint.origin != log.name {
        return Err(NoteError::Malformed("origin is not the log's key name"));
    }
    let mut cosigned_by = Vec::new();
    for witness in witnesses
        .iter()
        .filter(|w| w.role == NoteRole::Witness && w.suite() == log.suite())
    {
        for signature in note.by(witness) {
            let (time, sig) = signature
                .body
                .split_at_checked(8)
                .ok_or_else(|| NoteError::BadSignature(witness.name.clone()))?;
            let time = u64::from_be_bytes(
                time.try_into()
                    .map_err(|_| NoteError::BadSignature(witness.name.clone()))?,
            );
            let sig: &[u8; 64] = sig
                .try_into()
                .map_err(|_| NoteError::BadSignature(witness.name.clone()))?;
            if time > i64::MAX as u64
                || !witness
                    .key
                    .verify_strict(cosignature_message(time, &note.text).as_bytes(), sig)
            {
                return Err(NoteError::BadSignature(witness.name.clone()));
            }
            cosigned_by.push((witness.name.clone(), time));
        }
    }
    Ok(VerifiedCheckpoint {
        checkpoint,
        cosigned_by,
    })
}

/// Adds cosignature lines to a signed checkpoint note.
pub fn add_signatures(
    note_bytes: &[u8],
    signatures: &[NoteSignature],
) -> Result<String, NoteError> {
    let mut note = Note::parse(note_bytes)?;
    note.signatures.extend_from_slice(signatures);
    Ok(note.to_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::note::NoteRole;

    fn key(suite: Suite, n: u8) -> SecretKey {
        SecretKey::from_suite_seed(suite, &[n; 32]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn sign_open_and_cosign_in_both_suites() -> Result<(), Box<dyn std::error::Error>> {
        for suite in Suite::ALL {
            sign_open_and_cosign(suite)?;
        }
        Ok(())
    }

    fn sign_open_and_cosign(suite: Suite) -> Result<(), Box<dyn std::error::Error>> {
        let origin = "tongban.example/341200/log/2026";
        let (log_key, witness_key) = (key(suite, 1), key(suite, 2));
        let log = NoteVerifier::new(origin, NoteRole::Log, log_key.public().clone())?;
        let witness = NoteVerifier::new(
            "tongban.example/370100/witness",
            NoteRole::Witness,
            witness_key.public().clone(),
        )?;
        let checkpoint = Checkpoint {
            origin: origin.into(),
            size: 20852163,
            root: [7; 32],
        };
        let signed = checkpoint.sign(origin, &log_key)?;
        assert!(signed.starts_with("tongban.example/341200/log/2026\n20852163\nBwcH"));
        let opened = open(signed.as_bytes(), &log, std::slice::from_ref(&witness))?;
        assert_eq!(opened.checkpoint, checkpoint);
        assert!(opened.cosigned_by.is_empty());
        let cosignature = cosign(
            &checkpoint.body(),
            1_679_315_147,
            &witness.name,
            &witness_key,
        )?;
        let cosigned = add_signatures(signed.as_bytes(), &[cosignature])?;
        let opened = open(cosigned.as_bytes(), &log, std::slice::from_ref(&witness))?;
        assert_eq!(
            opened.cosigned_by,
            vec![(witness.name.clone(), 1_679_315_147)]
        );
        // A cosignature over another time fails the whole note.
        let mut note = Note::parse(cosigned.as_bytes())?;
        note.signatures[1].body[7] ^= 1;
        assert!(
            open(
                note.to_text().as_bytes(),
                &log,
                std::slice::from_ref(&witness)
            )
            .is_err()
        );
        // Verifier keys read back, and name their suite's signature type.
        for verifier in [&log, &witness] {
            assert_eq!(&NoteVerifier::parse(&verifier.to_vkey())?, verifier);
            assert_eq!(verifier.signature_type().suite(), suite);
        }
        // The log key of the other suite, under the same name, did not sign it.
        let other = match suite {
            Suite::Ed25519 => Suite::Sm2,
            Suite::Sm2 => Suite::Ed25519,
        };
        let stranger = NoteVerifier::new(origin, NoteRole::Log, key(other, 1).public().clone())?;
        assert_eq!(
            open(signed.as_bytes(), &stranger, &[]),
            Err(NoteError::Unsigned)
        );
        // A witness key is not a log key.
        assert!(open(signed.as_bytes(), &witness, &[]).is_err());
        Ok(())
    }

    #[test]
    fn sm2_verifier_keys_name_their_type_after_0xff() -> Result<(), Box<dyn std::error::Error>> {
        let log = NoteVerifier::new("o", NoteRole::Log, key(Suite::Sm2, 1).public().clone())?;
        let vkey = log.to_vkey();
        let material = B64.decode(vkey.rsplit('+').next().ok_or("vkey")?)?;
        assert_eq!(&material[..15], b"\xfftongban-sm2/v1");
        assert_eq!(material.len(), 15 + 65);
        // The key id is SM3's, not SHA-256's.
        let sm3 = crate::log::tree::plain_hash(Suite::Sm2, &[b"o\n", &material]);
        assert_eq!(log.id, u32::from_be_bytes([sm3[0], sm3[1], sm3[2], sm3[3]]));
        // An Ed25519 key under the sm2 type, or an unknown type name, is refused.
        let mut wrong = b"\xfftongban-sm2/v1".to_vec();
        wrong.extend_from_slice(key(Suite::Ed25519, 1).public().as_bytes());
        let forged = format!("o+{:08x}+{}", log.id, B64.encode(&wrong));
        assert!(NoteVerifier::parse(&forged).is_err());
        let unknown = vkey.replace(
            &B64.encode(&material),
            &B64.encode([&b"\xfftongban-sm9/v1"[..], &material[15..]].concat()),
        );
        assert!(NoteVerifier::parse(&unknown).is_err());
        Ok(())
    }

    #[test]
    fn only_extensions_are_accepted() -> Result<(), Box<dyn std::error::Error>> {
        let mut tree = crate::log::proof::MemoryTree::new(Suite::Ed25519);
        for i in 0u8..9 {
            tree.append(&[i])?;
        }
        let at = |size| -> Result<Checkpoint, crate::log::proof::TreeError> {
            Ok(Checkpoint {
                origin: "o".into(),
                size,
                root: tree.root(size)?,
            })
        };
        assert!(extends(Suite::Ed25519, &at(0)?, &at(5)?, &[]));
        assert!(extends(
            Suite::Ed25519,
            &at(5)?,
            &at(9)?,
            &tree.consistency_proof(5, 9)?
        ));
        assert!(extends(Suite::Ed25519, &at(9)?, &at(9)?, &[]));
        assert!(!extends(
            Suite::Ed25519,
            &at(9)?,
            &at(5)?,
            &tree.consistency_proof(5, 9)?
        ));
        let mut fork = at(9)?;
        fork.root[0] ^= 1;
        assert!(!extends(
            Suite::Ed25519,
            &at(5)?,
            &fork,
            &tree.consistency_proof(5, 9)?
        ));
        let mut other = at(9)?;
        other.origin = "p".into();
        assert!(!extends(
            Suite::Ed25519,
            &at(5)?,
            &other,
            &tree.consistency_proof(5, 9)?
        ));
        Ok(())
    }

    #[test]
    fn bodies_are_strict() {
        for bad in [
            "o\n1\nAAAA\n",
            "o\n01\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\next\n",
            "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            "\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Checkpoint::parse("o\n0\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n").is_ok());
    }
}
