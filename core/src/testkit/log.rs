//! A sample region log for audit tests and demos: seals registered, certificates issued and changed,
//! a receipt batch, a seal revoked, and signed checkpoints.

use crate::envelope::BuildError;
use crate::keys::SecretKey;
use crate::log::checkpoint::Checkpoint;
use crate::log::entry::{Act, LogEntry};
use crate::log::note::{NoteVerifier, TYPE_ED25519};
use crate::log::proof::MemoryTree;
use crate::status::{Operation, State, Termination};
use crate::testkit::{DAY, T0, TestFederation, key, time};
use crate::values::Time;

pub const ORIGIN: &str = "tongban.example/341200/log/1";

/// Everything an audit bundle holds, in memory.
pub struct SampleLog {
    pub log_key: SecretKey,
    pub vkey: String,
    pub trust_bundle: Vec<u8>,
    pub entries: Vec<Vec<u8>>,
    pub checkpoints: Vec<(String, Vec<u8>)>,
}

impl SampleLog {
    /// A signed checkpoint of the first `size` entries.
    pub fn checkpoint(&self, size: u64) -> Result<Vec<u8>, BuildError> {
        let mut tree = MemoryTree::default();
        for entry in &self.entries {
            tree.append(entry)
                .map_err(|e| BuildError::Invalid(e.to_string()))?;
        }
        let root = tree
            .root(size)
            .map_err(|e| BuildError::Invalid(e.to_string()))?;
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
        }
        .sign(ORIGIN, &self.log_key)
        .map(String::into_bytes)
        .map_err(|e| BuildError::Invalid(e.to_string()))
    }
}

pub fn sample() -> Result<SampleLog, BuildError> {
    let f = TestFederation::standard()?;
    let region = f.fuyang.certificate.region.clone();
    let (amr, amr2) = (f.amr(), &f.fuyang.seals[2]);
    let at = |days: u64| time(T0 + days * DAY);
    let entry = |at: Time, act: Act, signer: &SecretKey| {
        LogEntry {
            region: region.clone(),
            at,
            act,
        }
        .sign(signer)
    };
    let id = |serial: &str| f.draft(amr, serial).map(|d| d.id);
    let issued =
        |serial: &str, days: u64, operation: u64, predecessor| -> Result<Act, BuildError> {
            Ok(Act::CertIssued {
                id: id(serial)?,
                digest: *blake3::hash(serial.as_bytes()).as_bytes(),
                seal: amr.key.public().kid(),
                issued: at(days)?,
                operation,
                predecessor,
                promise_deadline: None,
            })
        };
    let root = &f.fuyang.root;
    let entries = vec![
        entry(
            at(1)?,
            Act::SealRegistered {
                seal: amr.signed.clone(),
            },
            root,
        )?,
        entry(
            at(1)?,
            Act::SealRegistered {
                seal: amr2.signed.clone(),
            },
            root,
        )?,
        entry(at(10)?, issued("2026000001", 10, 1, None)?, &amr.key)?,
        entry(at(11)?, issued("2026000002", 11, 1, None)?, &amr.key)?,
        entry(
            at(12)?,
            Act::StatusChanged {
                id: id("2026000002")?,
                operation: Operation::Suspend,
                to: State::Suspended,
                reason: None,
                destination: None,
            },
            &amr.key,
        )?,
        entry(at(40)?, issued("2026000003", 40, 1, None)?, &amr.key)?,
        entry(
            at(100)?,
            Act::SealRevoked {
                revocation: f.revocation.clone(),
            },
            root,
        )?,
        entry(
            at(101)?,
            Act::StatusChanged {
                id: id("2026000001")?,
                operation: Operation::Terminate(Termination::Revoke),
                to: State::Revoked,
                reason: None,
                destination: None,
            },
            &amr.key,
        )?,
        entry(
            at(102)?,
            Act::Receipts {
                count: 100,
                root: [8; 32],
                cross_region: 7,
            },
            root,
        )?,
        entry(
            at(103)?,
            issued("2026000004", 103, 2, Some(id("2026000003")?))?,
            &amr.key,
        )?,
        entry(
            at(104)?,
            Act::PromiseFulfilled {
                id: id("2026000004")?,
            },
            &amr.key,
        )?,
    ];
    let log_key = key("log 341200")?;
    let vkey = NoteVerifier::new(ORIGIN, TYPE_ED25519, log_key.public().clone())
        .map_err(|e| BuildError::Invalid(e.to_string()))?
        .to_vkey();
    let mut log = SampleLog {
        log_key,
        vkey,
        trust_bundle: f.bundle()?,
        entries,
        checkpoints: Vec::new(),
    };
    for size in [3u64, 7, 11] {
        let note = log.checkpoint(size)?;
        log.checkpoints.push((format!("{size}.checkpoint"), note));
    }
    Ok(log)
}
