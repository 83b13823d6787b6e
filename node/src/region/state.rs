//! The region's state on disk, beside its log: the rows core's [`Rules`] read and the deltas they
//! make, encoded for the log's state table (node/src/log/state.rs) and written in the same
//! transaction as the entries that make them. Nothing here is held per certificate in memory:
//! the sequencer keeps only the changes of entries submitted and not yet durable (core's
//! `Overlay`),
//! and the seals (one per agency's stamp, a bounded set).
//!
//! Rows (kind, key → value):
//! - [`CERT`]: identifier → [`CertRecord`] (encoded by [`CertRecord::encode`]);
//! - [`SEAL`]: key id → the signed seal, and its signed revocation once revoked;
//! - [`TRANSFER_IN`]: predecessor → (entry index, identifier issued for it);
//! - [`TRANSFER_OUT`]: identifier → receiving region, while transferred out;
//! - [`PROMISE`]: deadline (8 bytes, big-endian) ‖ identifier → nothing, while a promise is open;
//! - [`HEAD`]: `last_at` → the latest `"at"` (8 bytes);
//! - [`LISTED`]: identifier → nothing, while a status snapshot lists the certificate (not valid,
//!   or its promise fulfilled), so a snapshot reads those rows and not every certificate's;
//! - [`SLOTS`]: chunk number (4 bytes, big-endian) → [`CHUNK`] bytes, one per status list index
//!   of the chunk: the list value of the certificate that holds it ([`UNASSIGNED`] for none), so
//!   the rules see which indexes are taken and the status list is read in one pass;
//! - [`PRESENTATION`]: a presentation code's digest → its [`PresentationRecord`].

use tongban_core::cbor::{self, Reader};
use tongban_core::envelope::{Envelope, Kind};
use tongban_core::ids::{Identifier, RegionCode};
use tongban_core::keys::KeyId;
use tongban_core::log::entry::Act;
use tongban_core::log::state::{
    CertRecord, Delta, Head, SealRecord, StateRead, Write, encode_transfer_in,
};
use tongban_core::sharing::PresentationRecord;
use tongban_core::status::{ListStatus, State};
use tongban_core::trust::{SealInfo, SealRevocation};
use tongban_core::values::Time;

use crate::log::{LogError, StateOp, StateRows};

pub const CERT: u8 = 1;
pub const SEAL: u8 = 2;
pub const TRANSFER_IN: u8 = 3;
pub const TRANSFER_OUT: u8 = 4;
pub const PROMISE: u8 = 5;
pub const HEAD: u8 = 6;
pub const LISTED: u8 = 7;
pub const SLOTS: u8 = 8;
pub const PRESENTATION: u8 = 9;

/// Status list indexes per [`SLOTS`] row: 1 KiB rows, so a status change rewrites 1 KiB.
pub const CHUNK: u32 = 1024;
/// The byte of an index no certificate holds (list values are 4 bits).
pub const UNASSIGNED: u8 = 0xFF;

/// The [`SLOTS`] row and the byte within it of status list index `index`.
pub fn slot(index: u32) -> ([u8; 4], usize) {
    ((index / CHUNK).to_be_bytes(), (index % CHUNK) as usize)
}

const LAST_AT: &[u8] = b"last_at";

/// A row that does not decode: the file was changed under the node, or written by a build with
/// another layout.
fn corrupt(what: &str, key: &[u8]) -> LogError {
    LogError::Corrupt(format!(
        "state row {what} {:?} does not decode",
        String::from_utf8_lossy(key)
    ))
}

// ---- encoding: CBOR arrays with core's writer and reader (certificate records are core's) ----

use tongban_core::cbor::{read_option as take_option, write_option as put_option};

fn encode_seal(record: &SealRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.signed.len() + 16);
    cbor::write_head(&mut out, 4, 2);
    cbor::write_bytes(&mut out, &record.signed);
    put_option(&mut out, record.revocation.as_deref(), cbor::write_bytes);
    out
}

/// A seal row, its signed objects parsed again (they were verified when logged).
fn decode_seal(bytes: &[u8]) -> Option<SealRecord> {
    let mut r = Reader::new(bytes);
    (r.array()? == 2).then_some(())?;
    let signed = r.bytes()?.to_vec();
    let revocation = take_option(&mut r, |r| r.bytes().map(<[u8]>::to_vec))?;
    r.at_end().then_some(())?;
    let info = SealInfo::from_payload(Envelope::open(&signed, Kind::Seal).ok()?.payload).ok()?;
    let revoked_from = match &revocation {
        Some(rev) => Some(
            SealRevocation::from_payload(Envelope::open(rev, Kind::SealRevocation).ok()?.payload)
                .ok()?
                .revoked_from,
        ),
        None => None,
    };
    Some(SealRecord {
        info,
        signed,
        revoked_from,
        revocation,
    })
}

fn promise_key(deadline: Time, id: &Identifier) -> Vec<u8> {
    let mut key = deadline.seconds().to_be_bytes().to_vec();
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

/// The identifier of a [`PROMISE`] row whose deadline is before `now`, or `None` once the rows
/// reach `now`.
pub fn lapsed_promise(key: &[u8], now: Time) -> Option<Result<Identifier, LogError>> {
    let (deadline, id) = key.split_first_chunk::<8>()?;
    if u64::from_be_bytes(*deadline) >= now.seconds() {
        return None;
    }
    Some(
        std::str::from_utf8(id)
            .ok()
            .and_then(|id| Identifier::parse(id).ok())
            .ok_or_else(|| corrupt("promise", key)),
    )
}

/// The rows a delta changes, in order, ending with the head.
pub fn ops_of(delta: &Delta) -> Vec<StateOp> {
    let mut ops = Vec::with_capacity(delta.writes.len() + 2);
    for write in &delta.writes {
        match write {
            Write::Seal(record) => ops.push(StateOp::Put {
                kind: SEAL,
                key: record.info.key.kid().0.to_vec(),
                value: encode_seal(record),
            }),
            Write::Cert { id, record } => {
                if let Some(deadline) = record.promise_deadline {
                    let key = promise_key(deadline, id);
                    ops.push(match open_promise(record) {
                        true => StateOp::Put {
                            kind: PROMISE,
                            key,
                            value: Vec::new(),
                        },
                        false => StateOp::Delete { kind: PROMISE, key },
                    });
                }
                let key = id.as_str().as_bytes().to_vec();
                ops.push(match listed(record) {
                    true => StateOp::Put {
                        kind: LISTED,
                        key: key.clone(),
                        value: Vec::new(),
                    },
                    false => StateOp::Delete {
                        kind: LISTED,
                        key: key.clone(),
                    },
                });
                ops.push(StateOp::Put {
                    kind: CERT,
                    key,
                    value: record.encode(),
                });
                let (chunk, offset) = slot(record.status_index);
                ops.push(StateOp::Patch {
                    kind: SLOTS,
                    key: chunk.to_vec(),
                    len: CHUNK as usize,
                    fill: UNASSIGNED,
                    offset,
                    byte: record.list_status().value(),
                });
            }
            Write::TransferIn {
                index,
                id,
                predecessor,
            } => {
                ops.push(StateOp::Put {
                    kind: TRANSFER_IN,
                    key: predecessor.as_str().as_bytes().to_vec(),
                    value: encode_transfer_in(*index, id),
                });
            }
            Write::TransferOut { id, to } => {
                let key = id.as_str().as_bytes().to_vec();
                ops.push(match to {
                    Some(to) => StateOp::Put {
                        kind: TRANSFER_OUT,
                        key,
                        value: to.as_str().as_bytes().to_vec(),
                    },
                    None => StateOp::Delete {
                        kind: TRANSFER_OUT,
                        key,
                    },
                });
            }
            Write::Presentation { code, record } => ops.push(StateOp::Put {
                kind: PRESENTATION,
                key: code.to_vec(),
                value: record.encode(),
            }),
        }
    }
    if let Some(at) = delta.head.last_at {
        ops.push(StateOp::Put {
            kind: HEAD,
            key: LAST_AT.to_vec(),
            value: at.seconds().to_be_bytes().to_vec(),
        });
    }
    ops
}

/// Whether a status snapshot (trust.md §6) names this certificate.
fn listed(record: &CertRecord) -> bool {
    record.state != State::Valid || record.promise_fulfilled
}

/// Whether the lapse job must look at this certificate's promise.
fn open_promise(record: &CertRecord) -> bool {
    record.promise_deadline.is_some() && !record.promise_fulfilled && !record.state.is_terminal()
}

/// Core's rules reading the state table through any [`StateRows`].
pub struct Rows<'a, R>(pub &'a R);

impl<R: StateRows> Rows<'_, R> {
    pub fn head(&self, size: u64) -> Result<Head, LogError> {
        let last_at = match self.0.get(HEAD, LAST_AT)? {
            None => None,
            Some(v) => {
                let secs: [u8; 8] = v.try_into().map_err(|_| corrupt("head", LAST_AT))?;
                Some(Time::new(u64::from_be_bytes(secs)).ok_or_else(|| corrupt("head", LAST_AT))?)
            }
        };
        Ok(Head { size, last_at })
    }
}

impl<R: StateRows> StateRead for Rows<'_, R> {
    type Error = LogError;

    fn seal(&self, kid: &KeyId) -> Result<Option<SealRecord>, LogError> {
        self.0
            .get(SEAL, &kid.0)?
            .map(|v| decode_seal(&v).ok_or_else(|| corrupt("seal", &kid.0)))
            .transpose()
    }

    fn cert(&self, id: &Identifier) -> Result<Option<CertRecord>, LogError> {
        let key = id.as_str().as_bytes();
        self.0
            .get(CERT, key)?
            .map(|v| CertRecord::decode(&v).ok_or_else(|| corrupt("certificate", key)))
            .transpose()
    }

    fn transferred_in(&self, predecessor: &Identifier) -> Result<bool, LogError> {
        Ok(self
            .0
            .get(TRANSFER_IN, predecessor.as_str().as_bytes())?
            .is_some())
    }

    fn transfer_out(&self, id: &Identifier) -> Result<Option<RegionCode>, LogError> {
        let key = id.as_str().as_bytes();
        self.0
            .get(TRANSFER_OUT, key)?
            .map(|v| {
                std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| RegionCode::parse(s).ok())
                    .ok_or_else(|| corrupt("transfer out", key))
            })
            .transpose()
    }

    fn status_index_taken(&self, index: u32) -> Result<bool, LogError> {
        let (chunk, offset) = slot(index);
        Ok(self
            .0
            .get(SLOTS, &chunk)?
            .is_some_and(|row| row.get(offset).is_some_and(|b| *b != UNASSIGNED)))
    }

    fn presentation(&self, code: &[u8; 32]) -> Result<Option<PresentationRecord>, LogError> {
        self.0
            .get(PRESENTATION, code)?
            .map(|v| PresentationRecord::decode(&v).ok_or_else(|| corrupt("presentation", code)))
            .transpose()
    }
}

/// The rows core's rules read to judge `act` when they accept it: what the sequencer reads
/// before its lock (read_ahead.rs). A hint, not a rule: a row left out here is read under the
/// lock, so this only has to be right for speed. The keys come from [`Rows`] itself, which
/// records them instead of reading.
pub fn reads_of(act: &Act) -> Vec<(u8, Vec<u8>)> {
    let keys = Keys::default();
    let rows = Rows(&keys);
    // The recorder answers every read with nothing, and never fails.
    let _ = match act {
        Act::CertIssued {
            id,
            status_index,
            predecessor,
            ..
        } => rows
            .cert(id)
            .and(rows.status_index_taken(*status_index))
            .and(match predecessor {
                Some(before) => rows.cert(before).and(rows.transferred_in(before)),
                None => Ok(false),
            }),
        Act::StatusChanged { id, .. } | Act::PromiseFulfilled { id } => {
            rows.cert(id).and(rows.transfer_out(id)).map(|_| false)
        }
        _ => Ok(false),
    };
    keys.0.into_inner()
}

/// The rows of certificate `id` a verification reads: its record, and whether another region's
/// certificate of that identifier was transferred in.
pub fn cert_rows(id: &Identifier) -> Vec<(u8, Vec<u8>)> {
    let keys = Keys::default();
    let rows = Rows(&keys);
    // The recorder answers every read with nothing, and never fails.
    let _ = rows.cert(id).and(rows.transferred_in(id));
    keys.0.into_inner()
}

/// Rows read at once ((kind, key) → the row, `None` where absent), read through [`Rows`]: a
/// row not among them is an error, not an absence.
pub struct Fetched(pub std::collections::HashMap<(u8, Vec<u8>), Option<Vec<u8>>>);

impl StateRows for Fetched {
    fn get(&self, kind: u8, key: &[u8]) -> Result<Option<Vec<u8>>, LogError> {
        self.0.get(&(kind, key.to_vec())).cloned().ok_or_else(|| {
            LogError::InvalidArgument(format!("internal: state row {kind}/{key:?} was not read"))
        })
    }
}

/// Records the rows read through it, and finds none.
#[derive(Default)]
struct Keys(std::cell::RefCell<Vec<(u8, Vec<u8>)>>);

impl StateRows for Keys {
    fn get(&self, kind: u8, key: &[u8]) -> Result<Option<Vec<u8>>, LogError> {
        self.0.borrow_mut().push((kind, key.to_vec()));
        Ok(None)
    }
}

/// One past the highest status list index a certificate holds: where the next issuance's index
/// starts, and how long the region's status list is.
pub fn status_list_length(snapshot: &crate::log::StateSnapshot) -> Result<u64, LogError> {
    let Some((key, row)) = snapshot.last(SLOTS)? else {
        return Ok(0);
    };
    let chunk: [u8; 4] = key
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("status slots", &key))?;
    let used = row
        .iter()
        .rposition(|b| *b != UNASSIGNED)
        .ok_or_else(|| corrupt("status slots", &key))?;
    Ok(u64::from(u32::from_be_bytes(chunk)) * u64::from(CHUNK) + used as u64 + 1)
}

/// The status list values of indexes `0..length`, in order, to `each`. An index no durable
/// certificate holds reads as 0x03: it may be one in flight (indexes are given before their
/// issuance is durable), and 0x03 claims nothing for it: valid before a promise's deadline,
/// lapsed after, never "promise kept".
pub fn status_list_values(
    snapshot: &crate::log::StateSnapshot,
    length: u64,
    mut each: impl FnMut(ListStatus) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut next: u64 = 0;
    let mut outcome = Ok(());
    let mut visit = |key: &[u8], row: &[u8]| -> Result<bool, LogError> {
        let chunk: [u8; 4] = key.try_into().map_err(|_| corrupt("status slots", key))?;
        let start = u64::from(u32::from_be_bytes(chunk)) * u64::from(CHUNK);
        if row.len() != CHUNK as usize || start < next {
            return Err(corrupt("status slots", key));
        }
        // Chunks no certificate reached: like any unassigned index.
        while next < start.min(length) {
            each(ListStatus::PromiseOpen)?;
            next += 1;
        }
        for byte in row {
            if next >= length {
                return Ok(false);
            }
            let status = match *byte {
                UNASSIGNED => ListStatus::PromiseOpen,
                value => {
                    ListStatus::from_value(value).ok_or_else(|| corrupt("status slots", key))?
                }
            };
            each(status)?;
            next += 1;
        }
        Ok(true)
    };
    snapshot.scan(SLOTS, &[], |key, row| match visit(key, row) {
        Ok(more) => more,
        Err(e) => {
            outcome = Err(e);
            false
        }
    })?;
    outcome?;
    while next < length {
        each(ListStatus::PromiseOpen)?;
        next += 1;
    }
    Ok(())
}

/// Every seal the state holds (a node keeps them in memory: one per agency's stamp).
pub fn all_seals(snapshot: &crate::log::StateSnapshot) -> Result<Vec<SealRecord>, LogError> {
    let mut seals = Vec::new();
    let mut bad = None;
    snapshot.scan(SEAL, &[], |key, value| match decode_seal(value) {
        Some(seal) => {
            seals.push(seal);
            true
        }
        None => {
            bad = Some(corrupt("seal", key));
            false
        }
    })?;
    match bad {
        Some(e) => Err(e),
        None => Ok(seals),
    }
}
