//! A sample region log for audit tests and demos: seals registered, certificates issued and changed,
//! a receipt batch, a seal revoked, and signed checkpoints.

use crate::envelope::BuildError;
use crate::keys::SecretKey;
use crate::log::checkpoint::Checkpoint;
use crate::log::entry::{Act, LogEntry};
use crate::log::note::{NoteRole, NoteVerifier};
use crate::log::proof::MemoryTree;
use crate::status::{Operation, State, Termination};
use crate::testkit::{DAY, T0, TestFederation, key, time};
use crate::values::Time;

pub const ORIGIN: &str = "tongban.example/341200/log/1";

/// Everything an audit bundle holds, in memory.
pub struct SampleLog {
    pub origin: String,
    pub log_key: SecretKey,
    pub vkey: String,
    pub trust_bundle: Vec<u8>,
    pub entries: Vec<Vec<u8>>,
    pub checkpoints: Vec<(String, Vec<u8>)>,
}

impl SampleLog {
    /// A signed checkpoint of the first `size` entries.
    pub fn checkpoint(&self, size: u64) -> Result<Vec<u8>, BuildError> {
        let mut tree = MemoryTree::new(self.log_key.suite());
        for entry in &self.entries {
            tree.append(entry)
                .map_err(|e| BuildError::Invalid(e.to_string()))?;
        }
        let root = tree
            .root(size)
            .map_err(|e| BuildError::Invalid(e.to_string()))?;
        Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
        }
        .sign(&self.origin, &self.log_key)
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
    // The renewal (2026000004) is issued on a promise, fulfilled later in the log.
    let issued =
        |serial: &str, days: u64, operation: u64, predecessor| -> Result<Act, BuildError> {
            Ok(Act::CertIssued {
                id: id(serial)?,
                digest: *blake3::hash(serial.as_bytes()).as_bytes(),
                seal: amr.key.public().kid(),
                issued: at(days)?,
                operation,
                promise_deadline: match predecessor {
                    Some(_) => Some(at(days + 30)?),
                    None => None,
                },
                predecessor,
                status_index: crate::testkit::status_index_of(serial),
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
    finish(&f, ORIGIN, "log 341200", entries, &[3, 7, 11])
}

fn finish(
    f: &TestFederation,
    origin: &str,
    key_name: &str,
    entries: Vec<Vec<u8>>,
    sizes: &[u64],
) -> Result<SampleLog, BuildError> {
    let log_key = key(key_name)?;
    let vkey = NoteVerifier::new(origin, NoteRole::Log, log_key.public().clone())
        .map_err(|e| BuildError::Invalid(e.to_string()))?
        .to_vkey();
    let mut log = SampleLog {
        origin: origin.to_owned(),
        log_key,
        vkey,
        trust_bundle: f.bundle()?,
        entries,
        checkpoints: Vec::new(),
    };
    for &size in sizes {
        let note = log.checkpoint(size)?;
        log.checkpoints.push((format!("{size}.checkpoint"), note));
    }
    Ok(log)
}

/// Two regions' logs: Fuyang transfers certificate `2026000005` out to Jinan and accepts its
/// transfer in, and Jinan issues its successor (op 08). With `matched = false`, Jinan claims a
/// predecessor Fuyang never transferred.
pub fn transfer_pair(matched: bool) -> Result<(SampleLog, SampleLog), BuildError> {
    let f = TestFederation::standard()?;
    let mut fuyang = sample()?;
    let amr = f.amr();
    let (fy, jn) = (
        f.fuyang.certificate.region.clone(),
        f.jinan.certificate.region.clone(),
    );
    let moved = f.draft(amr, "2026000005")?.id;
    let other = f.draft(amr, "2026000002")?.id;
    let issue = |id: crate::ids::Identifier,
                 seal: &crate::testkit::TestSeal,
                 days,
                 operation,
                 predecessor|
     -> Result<Act, BuildError> {
        Ok(Act::CertIssued {
            digest: [5; 32],
            seal: seal.key.public().kid(),
            issued: time(T0 + days * DAY)?,
            status_index: crate::testkit::status_index_of(id.serial()),
            id,
            operation,
            predecessor,
            promise_deadline: None,
        })
    };
    let entry = |region: &crate::ids::RegionCode, days: u64, act, key: &SecretKey| {
        LogEntry {
            region: region.clone(),
            at: time(T0 + days * DAY)?,
            act,
        }
        .sign(key)
    };
    fuyang.entries.push(entry(
        &fy,
        110,
        issue(moved.clone(), amr, 110, 1, None)?,
        &amr.key,
    )?);
    let out = Act::StatusChanged {
        id: moved.clone(),
        operation: Operation::Terminate(Termination::TransferOut),
        to: State::TransferredOut,
        reason: None,
        destination: Some(jn.clone()),
    };
    fuyang.entries.push(entry(&fy, 111, out, &amr.key)?);
    // Fuyang's node accepts Jinan's transfer in (operation 11) before Jinan issues.
    let accepted = Act::StatusChanged {
        id: moved.clone(),
        operation: Operation::AcceptTransfer,
        to: State::TransferredOut,
        reason: None,
        destination: Some(jn.clone()),
    };
    fuyang
        .entries
        .push(entry(&fy, 111, accepted, &f.fuyang.root)?);
    let size = fuyang.entries.len() as u64;
    fuyang
        .checkpoints
        .push((format!("{size}.checkpoint"), fuyang.checkpoint(size)?));
    let seal = &f.jinan.seals[0];
    let successor = f.draft(seal, "2026100005")?.id;
    let predecessor = Some(if matched { moved } else { other });
    let entries = vec![
        entry(
            &jn,
            1,
            Act::SealRegistered {
                seal: seal.signed.clone(),
            },
            &f.jinan.root,
        )?,
        entry(
            &jn,
            112,
            issue(successor, seal, 112, 8, predecessor)?,
            &seal.key,
        )?,
    ];
    let jinan = finish(
        &f,
        "tongban.example/370100/log/1",
        "log 370100",
        entries,
        &[2],
    )?;
    Ok((fuyang, jinan))
}
