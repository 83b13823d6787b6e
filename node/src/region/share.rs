//! The node's cross-region acts (specs/sharing.md), without the network: answering another
//! region's verification and share requests, recording the proofs and copies this region receives,
//! and transferring certificates out and in. The federation transport calls these from its
//! request handlers; the HTTP API calls them for what one node can do alone.
//!
//! Every function takes the federation's trust (`federation`: the roots and seals of every member
//! region) explicitly: which regions a node trusts is the federation layer's to decide.

use std::sync::Arc;

use tongban_core::cert::verify::Layered;
use tongban_core::cert::{self, FieldName};
use tongban_core::codes::{Code, Failure};
use tongban_core::ids::{Identifier, RegionCode, Uscc};
use tongban_core::keys::{KeyId, SecretKey};
use tongban_core::log::entry::{Act, LogEntry, ShareOutcome};
use tongban_core::log::note::NoteVerifier;
use tongban_core::log::receipt::Receipt;
use tongban_core::log::state::{CertRecord, StateRead};
use tongban_core::sharing::copy::{CopyContents, CopyVerification, check_fields_available};
use tongban_core::sharing::proof::answer_item;
use tongban_core::sharing::{
    OpenedRequest, Party, ProofContents, ProofExpectation, ProofRequest, ShareRequest,
    VerifiedProof, object_digest, verify_copy, verify_proof,
};
use tongban_core::status::{Operation, State, Termination};
use tongban_core::trust::TrustStore;
use tongban_core::values::{ShortText, Time};

use super::{CertificateSpec, IssuedCertificate, Lineage, PreparedIssuance, Region, now};
use crate::entry_index::BY_IDENTIFIER;
use crate::keyfile::random;
use crate::receipts::Receipts;
use crate::refusal::{Kind, Refusal};

/// How long a purpose-bound copy this node gives stays valid (the spec allows up to 90 days).
pub const COPY_LIFETIME: u64 = 30 * 86_400;

/// What an agency of this region asks another region (or this one) for.
#[derive(Clone, Debug)]
pub struct ShareAsk {
    /// The seal to sign the request with: one of the agency's, with a sharing scope.
    pub seal: KeyId,
    pub to: RegionCode,
    pub id: Identifier,
    pub fields: Vec<FieldName>,
    pub purpose: ShortText,
    pub case: ShortText,
}

/// The answer to an authenticated share request; both kinds are logged.
#[derive(Clone, Debug)]
pub enum ShareAnswer {
    /// The copy, handed out once its `share.answered` entry is durable at `log_index`.
    Given { copy: Vec<u8>, log_index: u64 },
    /// Refused with `failure`'s code, logged at `log_index`.
    Refused { failure: Failure, log_index: u64 },
}

/// What the node requires of a verification proof it relies on.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvidencePolicy<'a> {
    /// The nonce this node sent, when it knows it.
    pub nonce: Option<[u8; 16]>,
    /// Witness cosigner keys and how many must have cosigned (specs/sharing.md §3.4 step 13).
    pub witnesses: &'a [NoteVerifier],
    pub quorum: usize,
}

/// The signed objects of this region's trust: what a federation-wide trust bundle takes from it.
#[derive(Clone, Debug)]
pub struct TrustElements {
    pub region_certificate: Vec<u8>,
    pub seals: Vec<Vec<u8>>,
    pub revocations: Vec<Vec<u8>>,
}

/// Step 1 of specs/sharing.md §3.2: a request that does not decode is refused (and not logged).
fn decode_proof_request(request: &[u8]) -> Result<ProofRequest, Refusal> {
    ProofRequest::decode(request).map_err(|f| {
        let kind = match f.code {
            Code::TooLarge => Kind::TooLarge,
            _ => Kind::Invalid,
        };
        refused(kind, f)
    })
}

fn refused(kind: Kind, failure: Failure) -> Refusal {
    Refusal::code(kind, failure.code, failure.detail)
}

/// A request that did not open (steps 1–5 of specs/sharing.md §4.1): refused, not logged.
pub(super) fn unopened(failure: Failure) -> Refusal {
    let kind = match failure.code {
        Code::TooLarge => Kind::TooLarge,
        _ => Kind::Invalid,
    };
    refused(kind, failure)
}

/// A copy goes back to the node that delivered the request, so only the requester's own
/// region's node may deliver it.
pub(super) fn delivered_by_own_region(
    requester: &Party,
    sender: &RegionCode,
) -> Result<(), Refusal> {
    if &requester.region == sender {
        return Ok(());
    }
    Err(Refusal::code(
        Kind::Forbidden,
        Code::RegionMismatch,
        format!(
            "a request of region {}'s agency delivered by region {sender}'s node",
            requester.region
        ),
    ))
}

impl Region {
    /// This region's root certificate, seals and seal revocations, as signed and logged.
    pub fn trust_elements(&self) -> Result<TrustElements, Refusal> {
        let seals = self.view()?.seals.clone();
        Ok(TrustElements {
            region_certificate: self.region_cert.clone(),
            seals: seals.signed(),
            revocations: seals.revocations(),
        })
    }

    /// Signs a root act of this node and waits until it is durable.
    fn root_act(&self, act: Act) -> Result<u64, Refusal> {
        let seq = self.sequencer()?;
        self.act(seq, act, &self.root)
    }

    // ---- purpose-bound sharing (specs/sharing.md §4) ----

    /// An agency's share request, signed with its seal `ask.seal` (specs/sharing.md §4.1).
    pub fn share_request(&self, agency: &str, ask: ShareAsk) -> Result<Vec<u8>, Refusal> {
        let key = self.agency_seal_key(agency, Some(ask.seal))?;
        let mut fields = ask.fields;
        fields.sort();
        fields.dedup();
        ShareRequest {
            to: ask.to,
            id: ask.id,
            fields,
            purpose: ask.purpose,
            case: ask.case,
            at: now()?,
            nonce: random::<16>().map_err(|e| Refusal::internal(e.to_string()))?,
        }
        .sign(&key)
        .map_err(|e| Refusal::invalid(e.to_string()))
    }

    /// The key of the seal `kid` of `agency` that this node holds; with no `kid`, of the
    /// agency's most recent seal usable now whose key this node holds.
    pub(super) fn agency_seal_key(
        &self,
        agency: &str,
        kid: Option<KeyId>,
    ) -> Result<Arc<SecretKey>, Refusal> {
        let seq = self.sequencer()?;
        let missing = || {
            Refusal::new(
                Kind::Conflict,
                "SEAL_KEY_MISSING",
                "this node does not hold the seal's key",
            )
        };
        let kid = match kid {
            Some(kid) => {
                let seal = seq.seals.get(&kid).ok_or_else(|| {
                    Refusal::code(Kind::NotFound, Code::KidUnknown, kid.to_string())
                })?;
                if seal.info.agency.as_str() != agency {
                    return Err(Refusal::forbidden("the seal belongs to another agency"));
                }
                kid
            }
            None => {
                let now = now()?;
                seq.seals
                    .iter()
                    .filter(|(kid, seal)| {
                        seal.info.agency.as_str() == agency
                            && seal.usable_at(now)
                            && seq.seal_keys.contains_key(kid)
                    })
                    .max_by_key(|(kid, seal)| (seal.info.valid_from, **kid))
                    .map(|(kid, _)| *kid)
                    .ok_or_else(missing)?
            }
        };
        seq.seal_keys.get(&kid).cloned().ok_or_else(missing)
    }

    /// Answers a share request that region `sender`'s node delivered (specs/sharing.md §4.2). A
    /// request that is not authentic, or that another region's node relays, is refused unlogged
    /// (`Err`): the copy goes back to the sender, so only the requester's own region may ask.
    /// Every other one is answered and logged, the copy handed out only once its entry is durable.
    pub fn answer_share_request(
        &self,
        request: &[u8],
        federation: &TrustStore,
        sender: &RegionCode,
    ) -> Result<ShareAnswer, Refusal> {
        let now = now()?;
        let opened = ShareRequest::open(request, federation).map_err(unopened)?;
        let requester = opened.requester();
        delivered_by_own_region(&requester, sender)?;
        let (answer, result) = match self.copy_for(&opened, request, now)? {
            Ok((copy, expires)) => (
                ShareOutcome::Given {
                    copy: object_digest(self.suite(), &copy),
                    expires,
                },
                Ok(copy),
            ),
            Err(failure) => (ShareOutcome::Refused(failure.code), Err(failure)),
        };
        let log_index = self.root_act(Act::ShareAnswered {
            requester: requester.region,
            agency: requester.agency,
            seal: opened.seal.info.key.kid(),
            id: opened.request.id.clone(),
            request: opened.digest,
            outcome: answer,
        })?;
        Ok(match result {
            Ok(copy) => ShareAnswer::Given { copy, log_index },
            Err(failure) => ShareAnswer::Refused { failure, log_index },
        })
    }

    /// Steps 2–6 of specs/sharing.md §4.2: the copy and its expiry, or the refusal to log. The
    /// outer error is the node's own failure (storage), which is not an answer.
    fn copy_for(
        &self,
        opened: &OpenedRequest,
        request: &[u8],
        now: Time,
    ) -> Result<Result<(Vec<u8>, Time), Failure>, Refusal> {
        if let Err(failure) = opened.authorise(&self.code, now) {
            return Ok(Err(failure));
        }
        let id = &opened.request.id;
        let stored = match self.stored_valid(id, now)? {
            None => {
                return Ok(Err(Failure::new(
                    Code::CertificateNotLogged,
                    format!("this region's log holds no certificate {id}"),
                )));
            }
            Some(Err(failure)) => return Ok(Err(failure)),
            Some(Ok(stored)) => stored,
        };
        if let Err(failure) = check_fields_available(&stored, &opened.request.fields) {
            return Ok(Err(failure));
        }
        Ok(Ok(self.sign_copy(
            request,
            &stored,
            &opened.request.fields,
            now,
        )?))
    }

    /// This region's certificate `id` as stored, verified at `now` against the region's own
    /// trust and status: `None` when the log holds no such certificate, the failure when it is
    /// not valid. The outer error is the node's own failure.
    pub(super) fn stored_valid(
        &self,
        id: &Identifier,
        now: Time,
    ) -> Result<Option<Result<Vec<u8>, Failure>>, Refusal> {
        let own = self.own_status()?;
        let Some(record) = own.record(id)? else {
            return Ok(None);
        };
        let stored = self.certificate_bytes(&record)?;
        let verification = {
            let view = self.view()?;
            cert::verify(&stored, &view.trust, &own, now)
        };
        own.failed()?;
        if !verification.is_valid() {
            return Ok(Some(Err(Failure::new(
                verification.code,
                verification.detail,
            ))));
        }
        Ok(Some(Ok(stored)))
    }

    /// A purpose-bound copy of `fields` of `stored` for `request`, signed by the region root,
    /// expiring [`COPY_LIFETIME`] after `now`; and its expiry.
    pub(super) fn sign_copy(
        &self,
        request: &[u8],
        stored: &[u8],
        fields: &[FieldName],
        now: Time,
    ) -> Result<(Vec<u8>, Time), Refusal> {
        let expires = Time::new(now.seconds() + COPY_LIFETIME)
            .ok_or_else(|| Refusal::internal("copy expiry beyond the time range"))?;
        let copy = CopyContents::of(
            self.code.clone(),
            request.to_vec(),
            stored,
            fields,
            now,
            expires,
        )
        .and_then(|c| c.sign(&self.root))
        .map_err(|e| Refusal::internal(e.to_string()))?;
        Ok((copy, expires))
    }

    /// Verifies a copy this region's agency `recipient` received and logs it (specs/sharing.md
    /// §4.5). A copy that does not verify is refused with its code and not logged.
    pub fn record_copy_received(
        &self,
        copy: &[u8],
        federation: &TrustStore,
        recipient: &str,
    ) -> Result<(CopyVerification, u64), Refusal> {
        let verification = self.check_copy(copy, federation, recipient)?;
        if !verification.is_valid() {
            return Err(Refusal::code(
                Kind::Invalid,
                verification.code,
                verification.detail,
            ));
        }
        let (Some(provider), Some(id), Some(request_digest), Some(expires)) = (
            verification.provider.clone(),
            verification.id().cloned(),
            verification.request_digest,
            verification.expires,
        ) else {
            return Err(Refusal::internal("a valid copy without its parts"));
        };
        let index = self.root_act(Act::ShareReceived {
            provider,
            agency: Uscc::parse(recipient).map_err(|e| Refusal::invalid(e.to_string()))?,
            id,
            request: request_digest,
            copy: verification.digest,
            expires,
        })?;
        Ok((verification, index))
    }

    /// Verifies a copy as presented by `presenter`, an agency of this region (specs/sharing.md
    /// §4.4), against `federation` and the status this node holds.
    pub fn check_copy(
        &self,
        copy: &[u8],
        federation: &TrustStore,
        presenter: &str,
    ) -> Result<CopyVerification, Refusal> {
        let presenter = Party {
            region: self.code.clone(),
            agency: Uscc::parse(presenter).map_err(|e| Refusal::invalid(e.to_string()))?,
        };
        let now = now()?;
        let own = self.own_status()?;
        // The certificate inside is usually another region's: its status is the federation's.
        let peers = self.peer_status(now)?;
        let status = Layered(&own, &*peers);
        let verified = verify_copy(copy, federation, &status, now, &presenter);
        own.failed()?;
        peers.failed()?;
        Ok(verified)
    }

    // ---- cross-region verification proofs (specs/sharing.md §3) ----

    /// Answers another region's proof request (specs/sharing.md §3.2): verifies the certificate
    /// against this node's trust and live status, logs the answer in a receipt batch, and signs
    /// the proof with the region root. `cosigned` is the latest checkpoint the federation's
    /// witnesses cosigned (size, note), used when it covers the certificate's entries so that the
    /// asker sees the cosignatures.
    pub async fn answer_verification_request(
        self: &Arc<Self>,
        receipts: &Receipts,
        requester: &RegionCode,
        request: &[u8],
        cosigned: Option<(u64, Vec<u8>)>,
    ) -> Result<Vec<u8>, Refusal> {
        let request = decode_proof_request(request)?;
        self.prove(receipts, requester, &request, cosigned).await
    }

    /// Steps 2–6 of specs/sharing.md §3.2 for a decoded request. The HTTP API's proof for
    /// another region comes here directly, so a certificate that a proof request could not carry
    /// (over its size limit) is answered like any other, with its verification code.
    pub async fn prove(
        self: &Arc<Self>,
        receipts: &Receipts,
        requester: &RegionCode,
        request: &ProofRequest,
        cosigned: Option<(u64, Vec<u8>)>,
    ) -> Result<Vec<u8>, Refusal> {
        let now = now()?;
        let (verification, record) = {
            let view = self.view()?;
            let own = self.own_status()?;
            let verification = self.verify_own(&request.certificate, &view, &own, now)?;
            let record = match verification.claims.as_ref() {
                Some(claims) => own.record(&claims.id)?,
                None => None,
            };
            (verification, record)
        };
        let item = answer_item(
            self.suite(),
            &self.code,
            request,
            &verification,
            record.as_ref(),
            requester,
            now,
        );
        let encoded = item
            .encode()
            .map_err(|e| Refusal::internal(e.to_string()))?;
        let receipt = receipts
            .receipt(encoded, requester != &self.code)
            .await?
            .encode()
            .map_err(|e| Refusal::internal(e.to_string()))?;
        // The log's evidence only for the very certificate it recorded (same digest).
        let logged = record.filter(|r| Some(r.digest) == verification.digest);
        let id = item.id.clone();
        let region = self.clone();
        let work = move || {
            let (issuance, status) = match (logged, id) {
                (Some(record), Some(id)) => region.log_evidence(&record, &id, cosigned)?,
                _ => (None, None),
            };
            ProofContents {
                region: region.code.clone(),
                receipt,
                log_key: region.log_vkey()?,
                issuance,
                status,
            }
            .sign(&region.root)
            .map_err(|e| Refusal::internal(e.to_string()))
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Refusal::internal(format!("a worker failed: {e}")))?
    }

    /// Receipts of a certificate's issuance entry and, when its current state was set by a
    /// `cert.status` entry, of that entry, against one checkpoint that covers both: `cosigned`
    /// when it does, else the latest signed checkpoint (a new one if that does not either).
    fn log_evidence(
        &self,
        record: &CertRecord,
        id: &Identifier,
        cosigned: Option<(u64, Vec<u8>)>,
    ) -> Result<(Option<Receipt>, Option<Receipt>), Refusal> {
        let log = self.log();
        let mut status_index = None;
        for index in log
            .lookup(BY_IDENTIFIER, id.as_str().as_bytes())?
            .into_iter()
            .rev()
        {
            let Some(bytes) = log.entry(index)? else {
                continue;
            };
            if let Ok((
                _,
                LogEntry {
                    act: Act::StatusChanged { to, .. },
                    ..
                },
            )) = LogEntry::open(&bytes)
            {
                status_index = (to == record.state).then_some(index);
                break;
            }
        }
        let newest = status_index.unwrap_or(record.issued_at_index);
        let (size, note) = match cosigned.filter(|(size, _)| *size > newest) {
            Some(cosigned) => cosigned,
            None => {
                let covered = log
                    .last_checkpoint()?
                    .is_some_and(|(size, _)| size > newest);
                if !covered {
                    self.checkpoint()?;
                }
                log.last_checkpoint()?.ok_or_else(|| {
                    Refusal::new(Kind::Unavailable, "CHECKPOINT_REFUSED", "no checkpoint")
                })?
            }
        };
        if size <= newest {
            return Err(Refusal::new(
                Kind::Unavailable,
                "CHECKPOINT_REFUSED",
                "the certificate's entries are not yet in a checkpoint",
            ));
        }
        let checkpoint =
            String::from_utf8(note).map_err(|_| Refusal::internal("checkpoint is not UTF-8"))?;
        let receipt = |index: u64| -> Result<Receipt, Refusal> {
            Ok(Receipt {
                entry: log
                    .entry(index)?
                    .ok_or_else(|| Refusal::internal("a logged entry is missing"))?,
                index,
                proof: log.inclusion_proof(index, size)?,
                checkpoint: checkpoint.clone(),
            })
        };
        Ok((
            Some(receipt(record.issued_at_index)?),
            status_index.map(receipt).transpose()?,
        ))
    }

    /// Verifies a proof this region asked for and logs it as evidence received (specs/sharing.md
    /// §3.5). A proof that is not authentic is refused with its code and not logged.
    pub fn record_verification_evidence(
        &self,
        proof: &[u8],
        federation: &TrustStore,
        policy: &EvidencePolicy<'_>,
    ) -> Result<(VerifiedProof, u64), Refusal> {
        let verified = self.check_proof(proof, federation, policy)?;
        let index = self.root_act(Act::ProofReceived {
            from: verified.region.clone(),
            digest: verified.item.digest,
            id: verified.item.id.clone(),
            code: verified.item.code,
            proof: verified.digest,
        })?;
        Ok((verified, index))
    }

    fn check_proof(
        &self,
        proof: &[u8],
        federation: &TrustStore,
        policy: &EvidencePolicy<'_>,
    ) -> Result<VerifiedProof, Refusal> {
        let expect = ProofExpectation {
            requester: &self.code,
            nonce: policy.nonce,
            witnesses: policy.witnesses,
            quorum: policy.quorum,
        };
        verify_proof(proof, federation, now()?, &expect).map_err(|f| refused(Kind::Invalid, f))
    }

    // ---- transfers (specs/sharing.md §5) ----

    /// The issuing agency transfers `id` out to `destination` (operation 05 → 06).
    pub fn transfer_out(
        &self,
        agency: &str,
        id: &Identifier,
        destination: RegionCode,
        reason: Option<ShortText>,
    ) -> Result<(State, u64), Refusal> {
        if destination == self.code {
            return Err(Refusal::code(
                Kind::Invalid,
                Code::RegionMismatch,
                "a certificate is transferred out to another region",
            ));
        }
        self.status_act(
            agency,
            id,
            Operation::Terminate(Termination::TransferOut),
            reason,
            Some(destination),
        )
    }

    /// The first half of a transfer in (specs/sharing.md §5.2) at the receiving region: checks
    /// what this region can check alone (the predecessor is another region's certificate, not
    /// taken in here before; the agency, its seal and the new identifier) and builds and signs
    /// the successor, so that the origin is asked to accept only a transfer this region can
    /// complete. [`Region::complete_transfer_in`] logs it once the origin has accepted.
    pub fn prepare_transfer_in(
        &self,
        agency: &str,
        predecessor: &[u8],
        serial: String,
        spec: CertificateSpec,
    ) -> Result<PreparedTransfer, Refusal> {
        let claims = cert::inspect(predecessor)
            .and_then(|i| i.claims)
            .map_err(Refusal::from_failure)?;
        if claims.region == self.code {
            return Err(Refusal::code(
                Kind::Invalid,
                Code::RegionMismatch,
                "a certificate of this region is not transferred in",
            ));
        }
        self.refuse_taken_in(&claims.id)?;
        let prepared = self.prepare_issuance(
            agency,
            Lineage::TransferIn {
                of: claims.id.clone(),
                serial,
            },
            spec,
        )?;
        Ok(PreparedTransfer {
            origin: claims.region,
            predecessor: claims.id,
            issuance: prepared,
        })
    }

    /// `TRANSITION_NOT_ALLOWED` when this region already took `predecessor` in.
    fn refuse_taken_in(&self, predecessor: &Identifier) -> Result<(), Refusal> {
        let mut seq = self.sequencer()?;
        let taken = seq.read(&self.log, |state| {
            Ok(state.cert(predecessor)?.is_some() || state.transferred_in(predecessor)?)
        })?;
        if taken {
            return Err(Refusal::new(
                Kind::Conflict,
                "TRANSITION_NOT_ALLOWED",
                format!("{predecessor} was already transferred in, or is this region's own"),
            ));
        }
        Ok(())
    }

    /// The second half of a transfer in: `proof` is the origin's answer to this region's
    /// transfer request (sharing.md §5.2), checked under `policy` (this node's nonce); it must
    /// show the transfer out to this region **accepted** by the origin, which then can no longer
    /// take it back. The proof (`proof.received`) and the successor (`cert.issued`, op 08) are
    /// logged in one submission, durable together or not at all.
    pub fn complete_transfer_in(
        &self,
        prepared: PreparedTransfer,
        proof: &[u8],
        federation: &TrustStore,
        policy: &EvidencePolicy<'_>,
    ) -> Result<IssuedCertificate, Refusal> {
        let verified = self.check_proof(proof, federation, policy)?;
        let item = &verified.item;
        let accepted = item.id.as_ref() == Some(&prepared.predecessor)
            && verified.region == prepared.origin
            && item.code == Code::StatusTransferredOut
            && item.state == Some(State::TransferredOut)
            && verified.accepted_for() == Some(&self.code);
        if !accepted {
            return Err(Refusal::new(
                Kind::Conflict,
                "TRANSFER_NOT_CONFIRMED",
                format!(
                    "region {} answered {} for {} without accepting its transfer to {}",
                    verified.region, item.code, prepared.predecessor, self.code
                ),
            ));
        }
        let evidence = LogEntry {
            region: self.code.clone(),
            at: now()?,
            act: Act::ProofReceived {
                from: verified.region.clone(),
                digest: item.digest,
                id: Some(prepared.predecessor.clone()),
                code: item.code,
                proof: verified.digest,
            },
        }
        .sign(&self.root)
        .map_err(|e| Refusal::internal(e.to_string()))?;
        self.log_issuance(prepared.issuance, Some(evidence))
    }

    /// specs/sharing.md §5.2 at the origin: region `requester` asks to take in the certificate
    /// of `request` (a proof request, §3.1). When this region transferred that very certificate
    /// out to `requester` and has not accepted the transfer yet, the node accepts it (operation
    /// 11, its own act, durable before it answers; from then on the transfer cannot be
    /// cancelled). It then answers as a proof request (§3.2): the proof's status receipt is the
    /// acceptance when there is one.
    pub async fn answer_transfer_request(
        self: &Arc<Self>,
        receipts: &Receipts,
        requester: &RegionCode,
        request: &[u8],
        cosigned: Option<(u64, Vec<u8>)>,
    ) -> Result<Vec<u8>, Refusal> {
        let decoded = decode_proof_request(request)?;
        let region = self.clone();
        let to = requester.clone();
        let certificate = decoded.certificate.clone();
        tokio::task::spawn_blocking(move || region.accept_transfer(&to, &certificate))
            .await
            .map_err(|e| Refusal::internal(format!("a worker failed: {e}")))??;
        self.prove(receipts, requester, &decoded, cosigned).await
    }

    /// Accepts the transfer of `certificate` to `requester` when the log allows it: the logged
    /// certificate (same digest), in state 06 with `requester` as its destination, not accepted
    /// yet. Decided and logged under the sequencer lock, so a cancel of the transfer out is
    /// either logged before (and the acceptance refused) or refused after.
    fn accept_transfer(&self, requester: &RegionCode, certificate: &[u8]) -> Result<(), Refusal> {
        let Ok(inspection) = cert::inspect(certificate) else {
            return Ok(());
        };
        let Ok(claims) = inspection.claims else {
            return Ok(());
        };
        let mut seq = self.sequencer()?;
        let acceptable = seq.read(&self.log, |state| {
            let logged = state.cert(&claims.id)?.is_some_and(|record| {
                record.digest == inspection.digest
                    && record.state == State::TransferredOut
                    && !record.transfer_accepted
            });
            Ok(logged && state.transfer_out(&claims.id)?.as_ref() == Some(requester))
        })?;
        if !acceptable {
            return Ok(());
        }
        let act = Act::StatusChanged {
            id: claims.id,
            operation: Operation::AcceptTransfer,
            to: State::TransferredOut,
            reason: None,
            destination: Some(requester.clone()),
        };
        self.act(seq, act, &self.root).map(drop)
    }
}

/// A transfer in prepared by [`Region::prepare_transfer_in`]: the successor built and signed,
/// waiting for the origin's acceptance.
pub struct PreparedTransfer {
    /// The region that issued the predecessor, to be asked.
    pub origin: RegionCode,
    pub predecessor: Identifier,
    issuance: PreparedIssuance,
}
