//! Log entries (specs/log.md §1): every act of a region node, as a signed envelope of the acting key.

use ciborium::Value;

use crate::cbor::{self, Key};
use crate::cert::FieldName;
use crate::codes::{Code, Failure};
use crate::encode::{bytes, entry, map_bytes, text, uint};
use crate::envelope::{BuildError, Envelope, Kind, seal};
use crate::fields::{Bad, Fields};
use crate::ids::{Identifier, RegionCode, Uscc};
use crate::keys::{KeyId, SecretKey};
use crate::status::{Operation, State, Termination};
use crate::values::{ShortText, Time};

/// The entry format version this build reads and writes (2: issuances carry a status index).
pub const VERSION: u64 = 2;

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    /// An e-seal (its signed object) was registered; signed by the region root.
    SealRegistered { seal: Vec<u8> },
    /// A seal revocation (its signed object); signed by the region root.
    SealRevoked { revocation: Vec<u8> },
    /// A certificate was issued; signed by the seal that stamped it. No personal data: the digest
    /// and identifier only.
    CertIssued {
        id: Identifier,
        digest: [u8; 32],
        seal: KeyId,
        issued: Time,
        /// Operation code: 1 new, 2 renew, 8 transfer in, 9 change.
        operation: u64,
        predecessor: Option<Identifier>,
        promise_deadline: Option<Time>,
        /// The certificate's index in the region's status list (specs/status.md §5), as its
        /// claims carry it: unique in the region.
        status_index: u32,
    },
    /// A status operation; signed by a seal of the issuing agency, or by the region root for the
    /// node's own acts (a promise lapsing).
    StatusChanged {
        id: Identifier,
        operation: Operation,
        to: State,
        reason: Option<ShortText>,
        /// The receiving region of a transfer out, and of its acceptance (operation 11).
        destination: Option<RegionCode>,
    },
    /// The promise of a promise-based certificate was fulfilled; signed like a status change.
    PromiseFulfilled { id: Identifier },
    /// A batch of verification receipts, committed by its Merkle root; signed by the region root.
    Receipts {
        count: u64,
        root: [u8; 32],
        cross_region: u64,
    },
    /// An authenticated share request answered (specs/sharing.md §4.2): a copy given, or a
    /// refusal; signed by the region root. Digests only: no purpose, case id or field value.
    ShareAnswered {
        /// The requesting region and agency, and the kid of the seal that signed the request.
        requester: RegionCode,
        agency: Uscc,
        seal: KeyId,
        id: Identifier,
        /// Object digest of the request.
        request: [u8; 32],
        outcome: ShareOutcome,
    },
    /// A purpose-bound copy received and verified (sharing.md §4.5); signed by the region root.
    ShareReceived {
        provider: RegionCode,
        /// The recipient agency.
        agency: Uscc,
        id: Identifier,
        request: [u8; 32],
        copy: [u8; 32],
        expires: Time,
    },
    /// A holder's presentation code made for an agency acting for the holder
    /// (specs/presentation.md §2.2); signed by the region root. The code by its digest only.
    PresentationCreated {
        agency: Uscc,
        id: Identifier,
        code: [u8; 32],
        /// The fields the code shows, sorted and unique: names, never values.
        fields: Vec<FieldName>,
        expires: Time,
        uses: u32,
    },
    /// An authenticated presentation request answered (presentation.md §2.3): a copy given, or a
    /// refusal; signed by the region root.
    PresentationAnswered {
        /// The resolving region and agency, and the kid of the seal that signed the request.
        requester: RegionCode,
        agency: Uscc,
        seal: KeyId,
        code: [u8; 32],
        /// The certificate the code shows; `None` exactly when no presentation has the code.
        id: Option<Identifier>,
        /// Object digest of the request.
        request: [u8; 32],
        outcome: ShareOutcome,
    },
    /// A verification proof received from another region and verified (sharing.md §3.5); signed by
    /// the region root.
    ProofReceived {
        from: RegionCode,
        /// The certificate digest the proof is about.
        digest: [u8; 32],
        id: Option<Identifier>,
        /// The code the proof reports for the certificate.
        code: Code,
        /// Object digest of the proof.
        proof: [u8; 32],
    },
}

/// How a share request was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareOutcome {
    /// A copy was given: its object digest and expiry.
    Given { copy: [u8; 32], expires: Time },
    /// Refused with this code (never `OK`).
    Refused(Code),
}

impl ShareOutcome {
    pub fn code(self) -> Code {
        match self {
            ShareOutcome::Given { .. } => Code::Ok,
            ShareOutcome::Refused(code) => code,
        }
    }

    /// `"c"`, and `"cd"` and `"exp"` for a copy given.
    fn add_to(self, add: &mut impl FnMut(&str, Value)) -> Result<(), BuildError> {
        add("c", text(self.code().as_str()));
        match self {
            ShareOutcome::Given { copy, expires } => {
                add("cd", bytes(&copy));
                add("exp", uint(expires.seconds()));
            }
            ShareOutcome::Refused(Code::Ok) => {
                return Err(BuildError::Invalid("a refusal needs a refusal code".into()));
            }
            ShareOutcome::Refused(_) => {}
        }
        Ok(())
    }

    /// What [`ShareOutcome::add_to`] wrote.
    fn read(f: &mut Fields<'_>) -> Result<ShareOutcome, Bad> {
        let code = code(f.text(Key::Text("c"))?)?;
        let copy = f.optional_fixed::<32>(Key::Text("cd"))?;
        let expires = f.optional_time(Key::Text("exp"))?;
        match (code, copy, expires) {
            (Code::Ok, Some(copy), Some(expires)) => Ok(ShareOutcome::Given { copy, expires }),
            (Code::Ok, _, _) => Err(Bad::new("a copy given without its digest or expiry")),
            (code, None, None) => Ok(ShareOutcome::Refused(code)),
            _ => Err(Bad::new("a refusal with a copy's digest or expiry")),
        }
    }
}

impl Act {
    pub fn type_name(&self) -> &'static str {
        match self {
            Act::SealRegistered { .. } => "seal.registered",
            Act::SealRevoked { .. } => "seal.revoked",
            Act::CertIssued { .. } => "cert.issued",
            Act::StatusChanged { .. } => "cert.status",
            Act::PromiseFulfilled { .. } => "promise.fulfilled",
            Act::Receipts { .. } => "receipts",
            Act::ShareAnswered { .. } => "share.answered",
            Act::ShareReceived { .. } => "share.received",
            Act::ProofReceived { .. } => "proof.received",
            Act::PresentationCreated { .. } => "presentation.created",
            Act::PresentationAnswered { .. } => "presentation.answered",
        }
    }

    /// The certificate the act concerns, if any.
    pub fn identifier(&self) -> Option<&Identifier> {
        match self {
            Act::CertIssued { id, .. }
            | Act::StatusChanged { id, .. }
            | Act::PromiseFulfilled { id }
            | Act::ShareAnswered { id, .. }
            | Act::ShareReceived { id, .. }
            | Act::PresentationCreated { id, .. } => Some(id),
            Act::ProofReceived { id, .. } | Act::PresentationAnswered { id, .. } => id.as_ref(),
            _ => None,
        }
    }
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub region: RegionCode,
    pub at: Time,
    pub act: Act,
}

/// A decoded entry with the key id that signed it (signature not yet checked against a key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedEntry {
    pub signer: KeyId,
    pub entry: LogEntry,
}

fn operation_of(code: u64, to: State) -> Option<Operation> {
    Some(match code {
        3 => Operation::Suspend,
        4 => Operation::Expire,
        5 => Operation::Terminate(match to {
            State::Revoked => Termination::Revoke,
            State::Cancelled => Termination::Cancel,
            State::RevokedPenalty => Termination::RevokeAsPenalty,
            State::TransferredOut => Termination::TransferOut,
            _ => return None,
        }),
        6 => Operation::Unsuspend,
        7 => Operation::Other,
        10 => Operation::CancelTransferOut,
        11 => Operation::AcceptTransfer,
        _ => return None,
    })
}

impl LogEntry {
    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        let mut entries = vec![
            entry("v", uint(VERSION)),
            entry("t", text(self.act.type_name())),
            entry("rc", text(self.region.as_str())),
            entry("at", uint(self.at.seconds())),
        ];
        let mut add = |k: &str, v: Value| entries.push(entry(k, v));
        match &self.act {
            Act::SealRegistered { seal } => add("obj", bytes(seal)),
            Act::SealRevoked { revocation } => add("obj", bytes(revocation)),
            Act::CertIssued {
                id,
                digest,
                seal,
                issued,
                operation,
                predecessor,
                promise_deadline,
                status_index,
            } => {
                add("id", text(id.as_str()));
                add("si", uint(u64::from(*status_index)));
                add("d", bytes(digest));
                add("sk", bytes(&seal.0));
                add("iat", uint(issued.seconds()));
                add("op", uint(*operation));
                if let Some(prev) = predecessor {
                    add("prev", text(prev.as_str()));
                }
                if let Some(pd) = promise_deadline {
                    add("pd", uint(pd.seconds()));
                }
            }
            Act::StatusChanged {
                id,
                operation,
                to,
                reason,
                destination,
            } => {
                add("id", text(id.as_str()));
                add("op", uint(operation.code()));
                add("to", uint(to.code()));
                if let Some(reason) = reason {
                    add("why", text(reason.as_str()));
                }
                if let Some(dest) = destination {
                    add("dest", text(dest.as_str()));
                }
            }
            Act::PromiseFulfilled { id } => add("id", text(id.as_str())),
            Act::Receipts {
                count,
                root,
                cross_region,
            } => {
                add("n", uint(*count));
                add("root", bytes(root));
                add("x", uint(*cross_region));
            }
            Act::ShareAnswered {
                requester,
                agency,
                seal,
                id,
                request,
                outcome,
            } => {
                add("rq", text(requester.as_str()));
                add("ra", text(agency.as_str()));
                add("sk", bytes(&seal.0));
                add("id", text(id.as_str()));
                add("rd", bytes(request));
                outcome.add_to(&mut add)?;
            }
            Act::PresentationCreated {
                agency,
                id,
                code,
                fields,
                expires,
                uses,
            } => {
                add("ra", text(agency.as_str()));
                add("id", text(id.as_str()));
                add("pc", bytes(code));
                add(
                    "f",
                    Value::Array(fields.iter().map(|f| text(f.as_str())).collect()),
                );
                add("exp", uint(expires.seconds()));
                add("u", uint(u64::from(*uses)));
            }
            Act::PresentationAnswered {
                requester,
                agency,
                seal,
                code,
                id,
                request,
                outcome,
            } => {
                if id.is_none() != (outcome.code() == Code::PresentationUnknown) {
                    return Err(BuildError::Invalid(
                        "an answer names the certificate exactly when the code is known".into(),
                    ));
                }
                add("rq", text(requester.as_str()));
                add("ra", text(agency.as_str()));
                add("sk", bytes(&seal.0));
                add("pc", bytes(code));
                if let Some(id) = id {
                    add("id", text(id.as_str()));
                }
                add("rd", bytes(request));
                outcome.add_to(&mut add)?;
            }
            Act::ShareReceived {
                provider,
                agency,
                id,
                request,
                copy,
                expires,
            } => {
                add("src", text(provider.as_str()));
                add("ra", text(agency.as_str()));
                add("id", text(id.as_str()));
                add("rd", bytes(request));
                add("cd", bytes(copy));
                add("exp", uint(expires.seconds()));
            }
            Act::ProofReceived {
                from,
                digest,
                id,
                code,
                proof,
            } => {
                add("src", text(from.as_str()));
                add("d", bytes(digest));
                if let Some(id) = id {
                    add("id", text(id.as_str()));
                }
                add("c", text(code.as_str()));
                add("pd", bytes(proof));
            }
        }
        map_bytes(entries)
    }

    /// The entry signed by the acting key.
    pub fn sign(&self, key: &SecretKey) -> Result<Vec<u8>, BuildError> {
        seal(Kind::LogEntry, key, self.payload()?, &[])
    }

    /// Decodes an entry (structure and payload rules; the signature is the caller's to check against
    /// the key the replay state says may act). Failures carry `CLAIMS_INVALID` or a CBOR/COSE code.
    pub fn open(bytes: &[u8]) -> Result<(Envelope<'_>, LogEntry), Failure> {
        let envelope = Envelope::open(bytes, Kind::LogEntry)?;
        let entry = LogEntry::from_payload(envelope.payload)?;
        Ok((envelope, entry))
    }

    /// Decodes an entry's payload (accepted CBOR, then the entry table): for callers that check
    /// the envelope's signer before they look inside.
    pub fn from_payload(payload: &[u8]) -> Result<LogEntry, Failure> {
        cbor::check(payload, Kind::LogEntry.size_limit(), false)?;
        read(payload).map_err(|b| b.into_failure(Code::ClaimsInvalid))
    }
}

fn identifier(text: &str) -> Result<Identifier, Bad> {
    Identifier::parse(text).map_err(|e| Bad::new(e.to_string()))
}

fn region_code(text: &str) -> Result<RegionCode, Bad> {
    RegionCode::parse(text).map_err(|e| Bad::new(e.to_string()))
}

fn uscc(text: &str) -> Result<Uscc, Bad> {
    Uscc::parse(text).map_err(|e| Bad::new(e.to_string()))
}

fn code(text: &str) -> Result<Code, Bad> {
    Code::parse(text).ok_or_else(|| Bad::new(format!("{text:?} is not a registered code")))
}

fn read(payload: &[u8]) -> Result<LogEntry, Bad> {
    let mut f = Fields::whole(payload)?;
    f.version(VERSION)?;
    let kind = f.text(Key::Text("t"))?;
    let region =
        RegionCode::parse(f.text(Key::Text("rc"))?).map_err(|e| Bad::new(e.to_string()))?;
    let at = f.time(Key::Text("at"))?;
    let act = match kind {
        "seal.registered" => Act::SealRegistered {
            seal: f.bytes(Key::Text("obj"))?.to_vec(),
        },
        "seal.revoked" => Act::SealRevoked {
            revocation: f.bytes(Key::Text("obj"))?.to_vec(),
        },
        "cert.issued" => {
            let operation = f.uint(Key::Text("op"))?;
            if !matches!(operation, 1 | 2 | 8 | 9) {
                return Err(Bad::new(format!("issuing operation {operation}")));
            }
            let predecessor = f
                .optional_text(Key::Text("prev"))?
                .map(identifier)
                .transpose()?;
            // A successor names its predecessor; a new certificate has none.
            if predecessor.is_some() != (operation != 1) {
                return Err(Bad::new(format!(
                    "issuing operation {operation} with{} a predecessor",
                    if predecessor.is_some() { "" } else { "out" }
                )));
            }
            Act::CertIssued {
                id: identifier(f.text(Key::Text("id"))?)?,
                digest: f.fixed::<32>(Key::Text("d"))?,
                seal: KeyId(f.fixed::<16>(Key::Text("sk"))?),
                issued: f.time(Key::Text("iat"))?,
                operation,
                predecessor,
                promise_deadline: f.optional_time(Key::Text("pd"))?,
                status_index: {
                    let index = f.uint(Key::Text("si"))?;
                    u32::try_from(index)
                        .map_err(|_| Bad::new(format!("status index {index} beyond 2^32 - 1")))?
                },
            }
        }
        "cert.status" => {
            let id = identifier(f.text(Key::Text("id"))?)?;
            let code = f.uint(Key::Text("op"))?;
            let to = State::from_code(f.uint(Key::Text("to"))?)
                .ok_or_else(|| Bad::new("unknown state"))?;
            let operation = operation_of(code, to)
                .ok_or_else(|| Bad::new(format!("operation {code} to state {to}")))?;
            let reason = f
                .optional_text(Key::Text("why"))?
                .map(|r| ShortText::new(r).ok_or_else(|| Bad::new("reason")))
                .transpose()?;
            let destination = f
                .optional_text(Key::Text("dest"))?
                .map(|d| RegionCode::parse(d).map_err(|e| Bad::new(e.to_string())))
                .transpose()?;
            // Only a transfer out and its acceptance name where to, and they always do.
            let transfer = matches!(
                operation,
                Operation::Terminate(Termination::TransferOut) | Operation::AcceptTransfer
            );
            if destination.is_some() != transfer {
                return Err(Bad::new(if transfer {
                    "a transfer out or its acceptance without its destination"
                } else {
                    "a destination on an operation other than a transfer out or its acceptance"
                }));
            }
            Act::StatusChanged {
                id,
                operation,
                to,
                reason,
                destination,
            }
        }
        "promise.fulfilled" => Act::PromiseFulfilled {
            id: identifier(f.text(Key::Text("id"))?)?,
        },
        "receipts" => Act::Receipts {
            count: f.uint(Key::Text("n"))?,
            root: f.fixed::<32>(Key::Text("root"))?,
            cross_region: f.uint(Key::Text("x"))?,
        },
        "share.answered" => {
            let outcome = ShareOutcome::read(&mut f)?;
            Act::ShareAnswered {
                requester: region_code(f.text(Key::Text("rq"))?)?,
                agency: uscc(f.text(Key::Text("ra"))?)?,
                seal: KeyId(f.fixed::<16>(Key::Text("sk"))?),
                id: identifier(f.text(Key::Text("id"))?)?,
                request: f.fixed::<32>(Key::Text("rd"))?,
                outcome,
            }
        }
        "share.received" => Act::ShareReceived {
            provider: region_code(f.text(Key::Text("src"))?)?,
            agency: uscc(f.text(Key::Text("ra"))?)?,
            id: identifier(f.text(Key::Text("id"))?)?,
            request: f.fixed::<32>(Key::Text("rd"))?,
            copy: f.fixed::<32>(Key::Text("cd"))?,
            expires: f.time(Key::Text("exp"))?,
        },
        "proof.received" => Act::ProofReceived {
            from: region_code(f.text(Key::Text("src"))?)?,
            digest: f.fixed::<32>(Key::Text("d"))?,
            id: f
                .optional_text(Key::Text("id"))?
                .map(identifier)
                .transpose()?,
            code: code(f.text(Key::Text("c"))?)?,
            proof: f.fixed::<32>(Key::Text("pd"))?,
        },
        "presentation.created" => {
            let fields = f
                .array(Key::Text("f"), "an array of texts", |r| r.text())?
                .into_iter()
                .map(|n| FieldName::parse(n).ok_or_else(|| Bad::new(format!("field {n:?}"))))
                .collect::<Result<Vec<_>, _>>()?;
            if fields.is_empty() || fields.windows(2).any(|w| w[0] >= w[1]) {
                return Err(Bad::new(
                    "a presentation's fields: one or more, sorted, unique",
                ));
            }
            let uses = f.uint(Key::Text("u"))?;
            Act::PresentationCreated {
                agency: uscc(f.text(Key::Text("ra"))?)?,
                id: identifier(f.text(Key::Text("id"))?)?,
                code: f.fixed::<32>(Key::Text("pc"))?,
                fields,
                expires: f.time(Key::Text("exp"))?,
                uses: u32::try_from(uses).map_err(|_| Bad::new(format!("{uses} uses")))?,
            }
        }
        "presentation.answered" => {
            let outcome = ShareOutcome::read(&mut f)?;
            let id = f
                .optional_text(Key::Text("id"))?
                .map(identifier)
                .transpose()?;
            if id.is_none() != (outcome.code() == Code::PresentationUnknown) {
                return Err(Bad::new(
                    "\"id\" is absent exactly when the code is PRESENTATION_UNKNOWN",
                ));
            }
            Act::PresentationAnswered {
                requester: region_code(f.text(Key::Text("rq"))?)?,
                agency: uscc(f.text(Key::Text("ra"))?)?,
                seal: KeyId(f.fixed::<16>(Key::Text("sk"))?),
                code: f.fixed::<32>(Key::Text("pc"))?,
                id,
                request: f.fixed::<32>(Key::Text("rd"))?,
                outcome,
            }
        }
        other => return Err(Bad::new(format!("unknown entry type {other:?}"))),
    };
    f.finish()?;
    Ok(LogEntry { region, at, act })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{NOW, TestFederation, time};

    #[test]
    fn every_act_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let f = TestFederation::standard()?;
        let seal = f.amr();
        let id = f.draft(seal, "2026000001")?.id;
        let region = f.fuyang.certificate.region.clone();
        let acts = vec![
            Act::SealRegistered {
                seal: seal.signed.clone(),
            },
            Act::SealRevoked {
                revocation: f.revocation.clone(),
            },
            Act::CertIssued {
                id: id.clone(),
                digest: [9; 32],
                seal: seal.key.public().kid(),
                issued: time(NOW)?,
                operation: 2,
                predecessor: Some(id.clone()),
                promise_deadline: Some(time(NOW + 5)?),
                status_index: u32::MAX,
            },
            Act::StatusChanged {
                id: id.clone(),
                operation: Operation::Terminate(Termination::TransferOut),
                to: State::TransferredOut,
                reason: ShortText::new("moved"),
                destination: Some(f.jinan.certificate.region.clone()),
            },
            Act::PromiseFulfilled { id: id.clone() },
            Act::Receipts {
                count: 1000,
                root: [4; 32],
                cross_region: 17,
            },
            Act::ShareAnswered {
                requester: f.jinan.certificate.region.clone(),
                agency: f.jinan.seals[0].info.agency.clone(),
                seal: f.jinan.seals[0].key.public().kid(),
                id: id.clone(),
                request: [1; 32],
                outcome: ShareOutcome::Given {
                    copy: [2; 32],
                    expires: time(NOW + 30)?,
                },
            },
            Act::ShareAnswered {
                requester: f.jinan.certificate.region.clone(),
                agency: f.jinan.seals[0].info.agency.clone(),
                seal: f.jinan.seals[0].key.public().kid(),
                id: id.clone(),
                request: [1; 32],
                outcome: ShareOutcome::Refused(Code::ShareNotAuthorised),
            },
            Act::ShareReceived {
                provider: f.jinan.certificate.region.clone(),
                agency: seal.info.agency.clone(),
                id: id.clone(),
                request: [3; 32],
                copy: [4; 32],
                expires: time(NOW + 60)?,
            },
            Act::ProofReceived {
                from: f.jinan.certificate.region.clone(),
                digest: [5; 32],
                id: Some(id.clone()),
                code: Code::StatusTransferredOut,
                proof: [6; 32],
            },
            Act::ProofReceived {
                from: f.jinan.certificate.region.clone(),
                digest: [5; 32],
                id: None,
                code: Code::SignatureInvalid,
                proof: [6; 32],
            },
        ];
        for act in acts {
            let entry = LogEntry {
                region: region.clone(),
                at: time(NOW)?,
                act,
            };
            let bytes = entry.sign(&seal.key)?;
            let (envelope, opened) = LogEntry::open(&bytes)?;
            assert_eq!(opened, entry);
            envelope.verify(seal.key.public())?;
        }
        Ok(())
    }

    fn opens(entry: &LogEntry, key: &SecretKey) -> Result<(), Failure> {
        let bytes = entry
            .sign(key)
            .map_err(|e| Failure::new(Code::ClaimsInvalid, e.to_string()))?;
        LogEntry::open(&bytes).map(|_| ())
    }

    #[test]
    fn predecessors_and_destinations_only_where_they_belong()
    -> Result<(), Box<dyn std::error::Error>> {
        let f = TestFederation::standard()?;
        let seal = f.amr();
        let id = f.draft(seal, "2026000001")?.id;
        let issued = |operation, predecessor| LogEntry {
            region: f.fuyang.certificate.region.clone(),
            at: time(NOW).unwrap_or_else(|e| panic!("{e}")),
            act: Act::CertIssued {
                id: id.clone(),
                digest: [9; 32],
                seal: seal.key.public().kid(),
                issued: time(NOW).unwrap_or_else(|e| panic!("{e}")),
                operation,
                predecessor,
                promise_deadline: None,
                status_index: 0,
            },
        };
        let prev = Some(f.draft(seal, "2026000002")?.id);
        assert!(opens(&issued(1, None), &seal.key).is_ok());
        assert!(opens(&issued(8, prev.clone()), &seal.key).is_ok());
        for bad in [issued(1, prev.clone()), issued(2, None), issued(8, None)] {
            let refused = opens(&bad, &seal.key).map_err(|f| f.code);
            assert_eq!(refused, Err(Code::ClaimsInvalid));
        }
        let status = |operation, to, destination| LogEntry {
            region: f.fuyang.certificate.region.clone(),
            at: time(NOW).unwrap_or_else(|e| panic!("{e}")),
            act: Act::StatusChanged {
                id: id.clone(),
                operation,
                to,
                reason: None,
                destination,
            },
        };
        let out = Operation::Terminate(Termination::TransferOut);
        let jinan = Some(f.jinan.certificate.region.clone());
        assert!(
            opens(
                &status(out, State::TransferredOut, jinan.clone()),
                &seal.key
            )
            .is_ok()
        );
        assert!(opens(&status(out, State::TransferredOut, None), &seal.key).is_err());
        assert!(
            opens(
                &status(Operation::Suspend, State::Suspended, jinan),
                &seal.key
            )
            .is_err()
        );
        Ok(())
    }

    #[test]
    fn a_refusal_cannot_say_ok() -> Result<(), Box<dyn std::error::Error>> {
        let f = TestFederation::standard()?;
        let entry = LogEntry {
            region: f.fuyang.certificate.region.clone(),
            at: time(NOW)?,
            act: Act::ShareAnswered {
                requester: f.jinan.certificate.region.clone(),
                agency: f.jinan.seals[0].info.agency.clone(),
                seal: f.jinan.seals[0].key.public().kid(),
                id: f.draft(f.amr(), "2026000001")?.id,
                request: [1; 32],
                outcome: ShareOutcome::Refused(Code::Ok),
            },
        };
        assert!(entry.sign(&f.fuyang.root).is_err());
        Ok(())
    }
}
