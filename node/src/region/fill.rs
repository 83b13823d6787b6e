//! `tongban-node fill`: a region of a real size, made in minutes for scale runs. Every
//! certificate is built, sealed and logged through the same code as an agency's issuance
//! (`prepare_issuance`, the sequencer's rules, the log's group commit with the state in the same
//! transaction); only the HTTP layer and the wait per request are skipped: the certificates are
//! prepared on every core and committed a chunk per transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tongban_core::cert::{FieldName, FieldValue, Holder, HolderIdType, TrustLevel};
use tongban_core::ids::{Identifier, TypeCode, Uscc, uscc};
use tongban_core::keys::{KeyId, SecretKey};
use tongban_core::log::entry::{Act, LogEntry};
use tongban_core::status::{Operation, State, Termination};
use tongban_core::trust::{MediaType, SealId, SealType};
use tongban_core::values::{ShortText, Time};

use super::{CertificateSpec, Lineage, PreparedIssuance, Region, SealSpec, Staged, now};
use crate::log::Blob;
use crate::refusal::Refusal;

/// Certificates per write transaction.
const CHUNK: u64 = 4096;
/// The status changes a fill makes, in turn.
const CHANGES: [(Operation, State); 4] = [
    (Operation::Terminate(Termination::Revoke), State::Revoked),
    (Operation::Terminate(Termination::Cancel), State::Cancelled),
    (Operation::Suspend, State::Suspended),
    (Operation::Expire, State::Expired),
];
/// The business licence type code of specs/ examples.
const TYPE_CODE: &str = "11100000000013338W001";

/// What a fill did.
#[derive(Debug)]
pub struct Filled {
    pub issued: u64,
    /// Certificates whose status the fill changed.
    pub changed: u64,
    pub elapsed: Duration,
    pub log_size: u64,
}

fn text(s: &str) -> Result<ShortText, Refusal> {
    ShortText::new(s).ok_or_else(|| Refusal::internal(format!("{s:?} is not a short text")))
}

impl Region {
    /// Issues `count` business licences with the filler's seal (made on first use), preparing
    /// them on `threads` threads, and changes the status of `not_valid` % of them; `progress` is
    /// told the running total after each chunk.
    pub fn fill(
        &self,
        count: u64,
        threads: usize,
        not_valid: u8,
        mut progress: impl FnMut(u64),
    ) -> Result<Filled, Refusal> {
        let started = Instant::now();
        let (agency, seal) = self.filler_seal()?;
        let type_code = TypeCode::parse(TYPE_CODE).map_err(|e| Refusal::internal(e.to_string()))?;
        // Serials never repeat across fills: the log only grows.
        let base = self.log.size()?;
        let spec = CertificateSpec {
            seal,
            type_name: text("营业执照")?,
            valid_from: None,
            valid_until: None,
            level: TrustLevel::A,
            promise_deadline: None,
            holder: Holder {
                name: text("阜阳市通办示范科技有限公司")?,
                id_type: HolderIdType::Uscc,
                id_number: agency.as_str().to_owned(),
            },
            licence: vec![
                (
                    FieldName::parse("licence.capital")
                        .ok_or_else(|| Refusal::internal("field name"))?,
                    FieldValue::Int(10_000_000),
                ),
                (
                    FieldName::parse("licence.scope")
                        .ok_or_else(|| Refusal::internal("field name"))?,
                    FieldValue::Text("软件开发；信息技术咨询服务".into()),
                ),
            ],
            decoys: 0,
        };
        let (mut issued, mut changed) = (0, 0);
        while issued < count {
            let n = CHUNK.min(count - issued);
            let first = base + issued;
            let prepared = self.prepare_chunk(&agency, &type_code, &spec, first, n, threads)?;
            // Which ones change is spread over the chunk by a multiplicative hash of the serial.
            let chosen: Vec<(Identifier, Arc<SecretKey>)> = prepared
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    (first + *i as u64).wrapping_mul(2_654_435_761) % 100 < u64::from(not_valid)
                })
                .map(|(_, p)| (p.id.clone(), p.key.clone()))
                .collect();
            self.log_chunk(prepared)?;
            changed += self.change_chunk(&chosen)?;
            issued += n;
            progress(issued);
        }
        Ok(Filled {
            issued,
            changed,
            elapsed: started.elapsed(),
            log_size: self.log.size()?,
        })
    }

    /// `n` issuances with serials from `first`, built and signed on `threads` threads.
    fn prepare_chunk(
        &self,
        agency: &Uscc,
        type_code: &TypeCode,
        spec: &CertificateSpec,
        first: u64,
        n: u64,
        threads: usize,
    ) -> Result<Vec<PreparedIssuance>, Refusal> {
        let per = n.div_ceil(threads.max(1) as u64);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..n)
                .step_by(per.max(1) as usize)
                .map(|start| {
                    let end = n.min(start + per);
                    scope.spawn(move || {
                        (start..end)
                            .map(|i| {
                                let lineage = Lineage::New {
                                    type_code: type_code.clone(),
                                    serial: format!("F{:012}", first + i),
                                };
                                self.prepare_issuance(agency.as_str(), lineage, spec.clone())
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(n as usize);
            for worker in workers {
                let part = worker
                    .join()
                    .map_err(|_| Refusal::internal("a fill thread panicked"))??;
                all.extend(part);
            }
            Ok(all)
        })
    }

    /// Applies a chunk of prepared issuances under the sequencer lock and logs them in one
    /// submission, each certificate's bytes with its entry; waits until they are durable.
    fn log_chunk(&self, mut prepared: Vec<PreparedIssuance>) -> Result<(), Refusal> {
        // The chunk's rows in one read, before the lock, like one agency's issuance.
        let keys = prepared
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.reads))
            .collect();
        let ahead = self.ahead.read(&self.log, keys)?;
        let mut seq = self.sequencer()?;
        let mut staged: Vec<Staged> = Vec::with_capacity(prepared.len());
        let mut blobs = Vec::with_capacity(prepared.len());
        for (entry, p) in prepared.into_iter().enumerate() {
            staged.push(seq.apply_own_ahead(&self.log, p.entry, p.key.public(), Some(&ahead))?);
            blobs.push(Blob {
                entry,
                digest: p.digest,
                bytes: p.bytes,
            });
        }
        let (index, pending) = self.log_applied(&mut seq, staged, blobs)?;
        drop(seq);
        self.durable(index, pending)?;
        Ok(())
    }

    /// Logs a status change of each of `chosen` (revoked, cancelled, suspended, expired in turn)
    /// in one submission, each signed by the key that stamped it; waits until they are durable.
    fn change_chunk(&self, chosen: &[(Identifier, Arc<SecretKey>)]) -> Result<u64, Refusal> {
        if chosen.is_empty() {
            return Ok(0);
        }
        let now = now()?;
        let entries = chosen
            .iter()
            .enumerate()
            .map(|(i, (id, key))| {
                let (operation, to) = CHANGES[i % CHANGES.len()];
                let entry = LogEntry {
                    region: self.code.clone(),
                    at: now,
                    act: Act::StatusChanged {
                        id: id.clone(),
                        operation,
                        to,
                        reason: None,
                        destination: None,
                    },
                }
                .sign(key)
                .map_err(|e| Refusal::internal(e.to_string()))?;
                Ok((entry, key))
            })
            .collect::<Result<Vec<_>, Refusal>>()?;
        let mut seq = self.sequencer()?;
        let staged = entries
            .into_iter()
            .map(|(entry, key)| seq.apply_own(&self.log, entry, key.public()))
            .collect::<Result<Vec<Staged>, _>>()?;
        let (index, pending) = self.log_applied(&mut seq, staged, Vec::new())?;
        drop(seq);
        self.durable(index, pending)?;
        Ok(chosen.len() as u64)
    }

    /// The filler's agency and a seal of it whose key the node holds, registered on first use.
    fn filler_seal(&self) -> Result<(Uscc, KeyId), Refusal> {
        let first17 = format!("11{}MB9999999", self.code.as_str());
        let check = uscc::check_char(&first17).map_err(|e| Refusal::internal(e.to_string()))?;
        let agency = Uscc::parse(&format!("{first17}{check}"))
            .map_err(|e| Refusal::internal(e.to_string()))?;
        {
            let seq = self.sequencer()?;
            let held = seq.seals.values().find(|s| {
                s.info.agency == agency
                    && s.revoked_from.is_none()
                    && seq.seal_keys.contains_key(&s.info.key.kid())
            });
            if let Some(seal) = held {
                return Ok((agency, seal.info.key.kid()));
            }
        }
        let now = now()?;
        let (info, _) = self.create_seal(SealSpec {
            agency: agency.clone(),
            agency_name: text("填充测试机构")?,
            id: SealId::parse(&format!("FILL-{}", now.seconds()))
                .ok_or_else(|| Refusal::internal("seal id"))?,
            seal_type: SealType::parse("licence").ok_or_else(|| Refusal::internal("seal type"))?,
            name: text("证照专用章（填充）")?,
            valid_from: None,
            valid_until: Time::new(now.seconds() + 10 * 365 * 86_400)
                .ok_or_else(|| Refusal::internal("seal validity"))?,
            picture: b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
            media_type: MediaType::parse("image/svg+xml")
                .ok_or_else(|| Refusal::internal("media type"))?,
            share_types: Vec::new(),
        })?;
        Ok((agency, info.key.kid()))
    }
}
