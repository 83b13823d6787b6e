//! C2SP signed notes (signed-note@v1): the text, a blank line, and `— <name> <base64(id ‖ sig)>` lines.
//! Checkpoints and cosignatures are notes (specs/log.md §3).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::keys::{PublicKey, SecretKey};
use crate::log::tree;
use crate::suite::Suite;

/// What a note key signs: a log's checkpoints, or a witness's cosignatures of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoteRole {
    Log,
    Witness,
}

/// The signature types of C2SP signed-note that Tongban speaks: `0x01` Ed25519 and `0x04`
/// cosignature/v1 in the `ed25519` suite; in the `sm2` suite, two types without an assigned byte,
/// named after `0xff` as signed-note asks of such types (specs/log.md §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureType {
    Ed25519,
    CosignatureV1,
    Sm2,
    Sm2Cosignature,
}

impl SignatureType {
    pub const ALL: [SignatureType; 4] = [
        SignatureType::Ed25519,
        SignatureType::CosignatureV1,
        SignatureType::Sm2,
        SignatureType::Sm2Cosignature,
    ];

    pub fn of(suite: Suite, role: NoteRole) -> SignatureType {
        match (suite, role) {
            (Suite::Ed25519, NoteRole::Log) => SignatureType::Ed25519,
            (Suite::Ed25519, NoteRole::Witness) => SignatureType::CosignatureV1,
            (Suite::Sm2, NoteRole::Log) => SignatureType::Sm2,
            (Suite::Sm2, NoteRole::Witness) => SignatureType::Sm2Cosignature,
        }
    }

    pub fn suite(self) -> Suite {
        match self {
            SignatureType::Ed25519 | SignatureType::CosignatureV1 => Suite::Ed25519,
            SignatureType::Sm2 | SignatureType::Sm2Cosignature => Suite::Sm2,
        }
    }

    pub fn role(self) -> NoteRole {
        match self {
            SignatureType::Ed25519 | SignatureType::Sm2 => NoteRole::Log,
            SignatureType::CosignatureV1 | SignatureType::Sm2Cosignature => NoteRole::Witness,
        }
    }

    /// The bytes that name the type in a key id and before the key in a verifier key.
    pub fn identifier(self) -> &'static [u8] {
        match self {
            SignatureType::Ed25519 => &[0x01],
            SignatureType::CosignatureV1 => &[0x04],
            SignatureType::Sm2 => b"\xfftongban-sm2/v1",
            SignatureType::Sm2Cosignature => b"\xfftongban-sm2-cosignature/v1",
        }
    }

    /// Splits a verifier key's material into its type and key bytes.
    fn split(material: &[u8]) -> Option<(SignatureType, &[u8])> {
        SignatureType::ALL
            .into_iter()
            .find_map(|t| material.strip_prefix(t.identifier()).map(|key| (t, key)))
    }
}
/// Notes larger than this are refused before parsing.
pub const MAX_NOTE: usize = 1 << 20;
/// More signature lines than this are refused (the spec asks verifiers to accept at least 16).
pub const MAX_SIGNATURES: usize = 64;
const DASH: &str = "— ";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("malformed verifier key: {0}")]
    BadKey(&'static str),
    #[error("signature by {0} does not verify")]
    BadSignature(String),
    #[error("no signature by a known key")]
    Unsigned,
}

/// The 4-byte key id of C2SP signed-note: H(name ‖ "\n" ‖ type identifier ‖ key)[:4],
/// big-endian, with H SHA-256 as signed-note has it, or SM3 in the `sm2` suite, where no hash
/// but SM3 is used.
pub fn key_id(name: &str, signature_type: SignatureType, key: &[u8]) -> u32 {
    let digest = tree::plain_hash(
        signature_type.suite(),
        &[name.as_bytes(), b"\n", signature_type.identifier(), key],
    );
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// A key that verifies note signatures: a log key or a witness (cosigner) key, of either suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    pub name: String,
    pub role: NoteRole,
    pub key: PublicKey,
    pub id: u32,
}

impl NoteVerifier {
    /// The verifier of `key` in `role`; its signature type follows from the key's suite.
    pub fn new(name: &str, role: NoteRole, key: PublicKey) -> Result<NoteVerifier, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadKey("key name empty or with spaces or '+'"));
        }
        let signature_type = SignatureType::of(key.suite(), role);
        Ok(NoteVerifier {
            id: key_id(name, signature_type, key.as_bytes()),
            name: name.to_owned(),
            role,
            key,
        })
    }

    pub fn signature_type(&self) -> SignatureType {
        SignatureType::of(self.key.suite(), self.role)
    }

    /// The suite of the key, and so of the tree whose checkpoints it signs or cosigns.
    pub fn suite(&self) -> Suite {
        self.key.suite()
    }

    /// Parses `<name>+<hex id>+<base64(type ‖ key)>`.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, NoteError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::BadKey("expected name+id+key"));
        };
        let id = u32::from_str_radix(id, 16)
            .ok()
            .filter(|_| id.len() == 8)
            .ok_or(NoteError::BadKey("id is not 8 hex digits"))?;
        let material = B64
            .decode(material)
            .map_err(|_| NoteError::BadKey("key is not base64"))?;
        let (signature_type, key) = SignatureType::split(&material)
            .ok_or(NoteError::BadKey("unsupported signature type"))?;
        let key = PublicKey::from_bytes(key)
            .ok()
            .filter(|k| k.suite() == signature_type.suite())
            .ok_or(NoteError::BadKey("not a key of the signature type's suite"))?;
        let verifier = NoteVerifier::new(name, signature_type.role(), key)?;
        if verifier.id != id {
            return Err(NoteError::BadKey("id does not match name and key"));
        }
        Ok(verifier)
    }

    /// The `<name>+<hex id>+<base64>` form.
    pub fn to_vkey(&self) -> String {
        let mut material = self.signature_type().identifier().to_vec();
        material.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, B64.encode(material))
    }
}

/// One signature line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: u32,
    /// The bytes after the key id: a 64-byte signature, or 8-byte time ‖ signature for cosignatures.
    pub body: Vec<u8>,
}

/// A parsed, not yet verified note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The text, including its final newline.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    pub fn parse(note: &[u8]) -> Result<Note, NoteError> {
        if note.len() > MAX_NOTE {
            return Err(NoteError::Malformed("note too large"));
        }
        let note = std::str::from_utf8(note).map_err(|_| NoteError::Malformed("not UTF-8"))?;
        if note.chars().any(|c| c != '\n' && (c as u32) < 0x20) {
            return Err(NoteError::Malformed("control character"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line"))?;
        let (text, rest) = (&note[..split + 1], &note[split + 2..]);
        if !rest.ends_with('\n') {
            return Err(NoteError::Malformed("signatures must end with a newline"));
        }
        let mut signatures = Vec::new();
        for line in rest[..rest.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::Malformed("too many signatures"));
            }
            let line = line
                .strip_prefix(DASH)
                .ok_or(NoteError::Malformed("signature line"))?;
            let (name, blob) = line
                .split_once(' ')
                .ok_or(NoteError::Malformed("signature line"))?;
            let blob = B64
                .decode(blob)
                .map_err(|_| NoteError::Malformed("signature not base64"))?;
            if !valid_name(name) || blob.len() < 5 {
                return Err(NoteError::Malformed("signature line"));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id: u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]),
                body: blob[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signature lines"));
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signatures of `verifier` in this note (by name and id).
    pub fn by<'a>(&'a self, verifier: &'a NoteVerifier) -> impl Iterator<Item = &'a NoteSignature> {
        self.signatures
            .iter()
            .filter(|s| s.name == verifier.name && s.id == verifier.id)
    }

    /// Verifies the log signature (Ed25519 or SM2) of `verifier`: `Ok(false)` when it did not
    /// sign, an error when its signature fails (the whole note is then to be rejected, as
    /// signed-note asks) or the key is not a log key.
    pub fn verify_log(&self, verifier: &NoteVerifier) -> Result<bool, NoteError> {
        if verifier.role != NoteRole::Log {
            return Err(NoteError::BadKey("not a log key"));
        }
        let mut signed = false;
        for signature in self.by(verifier) {
            let sig: &[u8; 64] = signature
                .body
                .as_slice()
                .try_into()
                .map_err(|_| NoteError::BadSignature(verifier.name.clone()))?;
            if !verifier.key.verify_strict(self.text.as_bytes(), sig) {
                return Err(NoteError::BadSignature(verifier.name.clone()));
            }
            signed = true;
        }
        Ok(signed)
    }

    /// The note with its text and signatures, as bytes.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.text);
        for s in &self.signatures {
            let mut blob = s.id.to_be_bytes().to_vec();
            blob.extend_from_slice(&s.body);
            out.push_str(&format!("{DASH}{} {}\n", s.name, B64.encode(blob)));
        }
        out
    }
}

/// A log signature (type 0x01, or the `sm2` log type) of `text` by `key` under `name`.
pub fn sign(text: &str, name: &str, key: &SecretKey) -> Result<NoteSignature, NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end with a newline"));
    }
    let verifier = NoteVerifier::new(name, NoteRole::Log, key.public().clone())?;
    Ok(NoteSignature {
        name: name.to_owned(),
        id: verifier.id,
        body: key.sign(text.as_bytes()).to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // golang.org/x/mod/sumdb/note's published example.
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIGNED: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn go_reference_note_signs_and_verifies() -> Result<(), Box<dyn std::error::Error>> {
        let verifier = NoteVerifier::parse(VKEY)?;
        assert_eq!(verifier.to_vkey(), VKEY);
        let seed = B64.decode(SKEY_B64)?;
        let key = SecretKey::from_seed(seed[1..].try_into()?)?;
        let note = Note {
            text: TEXT.into(),
            signatures: vec![sign(TEXT, "PeterNeumann", &key)?],
        };
        assert_eq!(note.to_text(), SIGNED);
        let parsed = Note::parse(SIGNED.as_bytes())?;
        assert_eq!(parsed.text, TEXT);
        assert!(parsed.verify_log(&verifier)?);
        Ok(())
    }

    #[test]
    fn tampering_and_unknown_keys() -> Result<(), Box<dyn std::error::Error>> {
        let verifier = NoteVerifier::parse(VKEY)?;
        let tampered = SIGNED.replace("problem is", "problem was");
        assert!(
            Note::parse(tampered.as_bytes())?
                .verify_log(&verifier)
                .is_err()
        );
        let other = SIGNED.replace("PeterNeumann x08", "PeterNeumann2 x08");
        assert_eq!(
            Note::parse(other.as_bytes())?.verify_log(&verifier),
            Ok(false)
        );
        for bad in [
            "no blank line\n— a AAAAAAA=\n",
            "text\n\n— a !!!\n",
            "text\n\nnot a signature\n",
            "text\n\n",
            "a\u{1}\n\n— a AAAAAAA=\n",
        ] {
            assert!(Note::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(
            NoteVerifier::parse(
                "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            )
            .is_err()
        );
        Ok(())
    }
}
