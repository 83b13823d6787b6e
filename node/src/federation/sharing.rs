//! Cross-region acts carried over the federation (specs/sharing.md, specs/federation.md §5.3):
//! answering other regions' proof and share requests, and asking other regions on behalf of this
//! region's agencies. The rules are the region's (`crate::region::share`); this module moves the
//! requests and answers and decides which region is asking (the sender's node key, certified by
//! the membership).

use std::sync::Arc;

use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;
use tongban_core::cert;
use tongban_core::codes::Code;
use tongban_core::federation::gossip;
use tongban_core::federation::wire::{Request, Response, bounded_detail};
use tongban_core::federation::{Reason, Refused};
use tongban_core::ids::RegionCode;
use tongban_core::sharing::{ProofRequest, VerifiedProof};
use tongban_core::trust::TrustStore;

use super::{Federation, tasks};
use crate::keyfile::random;
use crate::refusal::{Kind, Refusal};
use crate::region::{CertificateSpec, EvidencePolicy, IssuedCertificate, ShareAnswer};

/// A verification proof this region asked for, verified and logged as evidence received.
pub struct AskedProof {
    pub proof: Vec<u8>,
    pub verified: VerifiedProof,
    /// The `proof.received` entry in this region's log.
    pub log_index: u64,
}

/// Another region's answer to a share request.
pub enum Shared {
    /// The copy, and its `share.answered` entry in the provider's log.
    Copy { copy: Vec<u8>, log_index: u64 },
    /// Refused with a sharing code; the refusal carries the index of the `share.answered` entry
    /// in the provider's log that recorded it.
    Declined(Refusal),
}

fn poisoned() -> Refusal {
    Refusal::internal("an internal lock was poisoned by a panic")
}

fn unreachable(region: &RegionCode, why: impl std::fmt::Display) -> Refusal {
    Refusal::new(
        Kind::Unavailable,
        "REGION_UNREACHABLE",
        format!("region {region}'s node: {why}"),
    )
}

/// This node's refusal as a `refused` answer, its detail bounded as every answer's is.
fn refusal_response(r: &Refusal) -> Response {
    Response::Refused {
        code: r.code.to_owned(),
        detail: bounded_detail(&r.detail),
    }
}

/// Another region's refusal as this node's: its code when it is one of the specs' registry,
/// else `REMOTE_REFUSED` with the code in the detail (a code this version does not know).
fn remote_refusal(region: &RegionCode, code: &str, detail: &str) -> Refusal {
    match Code::parse(code) {
        Some(code) => Refusal::code(
            Kind::of_sharing(code),
            code,
            format!("region {region}: {detail}"),
        ),
        None => Refusal::new(
            Kind::Conflict,
            "REMOTE_REFUSED",
            format!("region {region} refused with {code}: {detail}"),
        ),
    }
}

fn proof_response(requester: &RegionCode, answer: Result<Vec<u8>, Refusal>) -> Response {
    match answer {
        Ok(proof) => Response::Proof { proof },
        Err(r) => {
            tracing::info!(%requester, refused = %r, "proof request refused");
            refusal_response(&r)
        }
    }
}

impl Federation {
    /// Answers a proof, share or transfer request of `peer` off the worker thread (both wait for the log)
    /// and sends the response through the swarm.
    pub(super) fn answer_later(
        &self,
        peer: PeerId,
        request: Request,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        let Some(federation) = self.this.get().and_then(std::sync::Weak::upgrade) else {
            return;
        };
        self.runtime.spawn(async move {
            let response = match federation.region_of(&peer) {
                None => Response::refused(&Refused::new(
                    Reason::NotMember,
                    "the sender is no member's node",
                )),
                Some(sender) => match request {
                    Request::Proof { request } => federation.answer_proof(&sender, request).await,
                    Request::Share { request } => {
                        federation.clone().answer_share(sender, request).await
                    }
                    Request::Transfer { request } => {
                        federation.answer_transfer(&sender, request).await
                    }
                    Request::Presentation { request } => {
                        federation
                            .clone()
                            .answer_presentation(sender, request)
                            .await
                    }
                    _ => Response::refused(&Refused::new(
                        Reason::Malformed,
                        "not a proof, share or transfer request",
                    )),
                },
            };
            federation.respond(channel, &response);
        });
    }

    /// The latest checkpoint of this region with its quorum of cosignatures, for proofs.
    async fn cosigned(&self) -> Option<(u64, Vec<u8>)> {
        let cosigned = self.store.off_thread(|store| store.cosigned()).await;
        cosigned.unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading the cosigned checkpoint");
            None
        })
    }

    /// specs/sharing.md §3.2 for the region whose node sent the request.
    async fn answer_proof(&self, requester: &RegionCode, request: Vec<u8>) -> Response {
        let cosigned = self.cosigned().await;
        let answer = self
            .region
            .answer_verification_request(&self.receipts, requester, &request, cosigned)
            .await;
        proof_response(requester, answer)
    }

    /// specs/sharing.md §5.2 at the origin, for the region whose node sent the request.
    async fn answer_transfer(&self, requester: &RegionCode, request: Vec<u8>) -> Response {
        let cosigned = self.cosigned().await;
        let answer = self
            .region
            .answer_transfer_request(&self.receipts, requester, &request, cosigned)
            .await;
        proof_response(requester, answer)
    }

    /// specs/sharing.md §4.2, for a request the sender's region must have signed.
    async fn answer_share(self: Arc<Self>, sender: RegionCode, request: Vec<u8>) -> Response {
        self.answer_with_copy(move |federation, trust| {
            federation
                .region
                .answer_share_request(&request, trust, &sender)
        })
        .await
    }

    /// specs/presentation.md §2.4, for a request the sender's region must have signed.
    async fn answer_presentation(
        self: Arc<Self>,
        sender: RegionCode,
        request: Vec<u8>,
    ) -> Response {
        self.answer_with_copy(move |federation, trust| {
            federation
                .region
                .answer_presentation_request(&request, trust, &sender)
        })
        .await
    }

    /// Runs `answer` (a share or presentation request's, which waits for the log) off the async
    /// threads with the federation's trust, and turns its answer into the response.
    async fn answer_with_copy(
        self: Arc<Self>,
        answer: impl FnOnce(&Federation, &TrustStore) -> Result<ShareAnswer, Refusal> + Send + 'static,
    ) -> Response {
        let work = move || -> Result<ShareAnswer, Refusal> {
            let trust = self.trust.read().map_err(|_| poisoned())?.clone();
            answer(&self, &trust)
        };
        let answer = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Refusal::internal(format!("a worker failed: {e}")))
            .and_then(|r| r);
        match answer {
            Ok(ShareAnswer::Given { copy, log_index }) => Response::Copy { copy, log_index },
            Ok(ShareAnswer::Refused { failure, log_index }) => Response::Declined {
                code: failure.code.as_str().to_owned(),
                detail: bounded_detail(&failure.detail),
                log_index,
            },
            Err(r) => refusal_response(&r),
        }
    }

    /// Sends `request` to `region`'s node and waits for the answer.
    async fn ask(&self, region: &RegionCode, request: &Request) -> Result<Response, Refusal> {
        if region == &self.own {
            return Err(Refusal::code(
                Kind::Invalid,
                Code::RegionMismatch,
                "this region's own: it needs no other region's answer",
            ));
        }
        let peer = self
            .peer_of(region)
            .ok_or_else(|| unreachable(region, "not a member of the federation"))?;
        tasks::request(self, peer, request)
            .await
            .map_err(|e| unreachable(region, e))
    }

    /// Sends `region` a proof request for `certificate`, stripped of its disclosures (the answer
    /// does not depend on them), with a fresh nonce, as `kind` says (a proof or a transfer
    /// request); returns the proof and the nonce.
    async fn request_proof(
        &self,
        region: &RegionCode,
        certificate: &[u8],
        kind: fn(Vec<u8>) -> Request,
    ) -> Result<(Vec<u8>, [u8; 16]), Refusal> {
        let stripped = cert::present(certificate, |_| false).map_err(Refusal::from_failure)?;
        let nonce = random::<16>().map_err(|e| Refusal::internal(e.to_string()))?;
        let request = ProofRequest {
            certificate: stripped,
            nonce,
        }
        .encode()
        .map_err(|e| Refusal::new(Kind::TooLarge, "TOO_LARGE", e.to_string()))?;
        match self.ask(region, &kind(request)).await? {
            Response::Proof { proof } => Ok((proof, nonce)),
            Response::Refused { code, detail } => Err(remote_refusal(region, &code, &detail)),
            other => Err(unreachable(region, format!("answered {other:?}"))),
        }
    }

    /// The witnesses' keys, for the proofs this node relies on. Cosignature lines present must
    /// verify; how many there are is reported, not required: a certificate issued since the
    /// last witnessing round comes with a fresh checkpoint its witnesses have not seen yet.
    fn witnesses(&self) -> Result<Vec<tongban_core::log::note::NoteVerifier>, Refusal> {
        gossip::witnesses(&self.membership()).map_err(|r| Refusal::internal(r.to_string()))
    }

    /// Asks the region that issued `certificate` for a verification proof (specs/sharing.md §3),
    /// verifies it and logs it as evidence received (§3.5).
    pub async fn ask_proof(self: &Arc<Self>, certificate: &[u8]) -> Result<AskedProof, Refusal> {
        let claims = cert::inspect(certificate)
            .and_then(|i| i.claims)
            .map_err(Refusal::from_failure)?;
        let (proof, nonce) = self
            .request_proof(&claims.region, certificate, |request| Request::Proof {
                request,
            })
            .await?;
        let federation = self.clone();
        let work = move || {
            let trust = federation.trust.read().map_err(|_| poisoned())?.clone();
            let witnesses = federation.witnesses()?;
            let policy = EvidencePolicy {
                nonce: Some(nonce),
                witnesses: &witnesses,
                quorum: 0,
            };
            let (verified, log_index) = federation
                .region
                .record_verification_evidence(&proof, &trust, &policy)?;
            Ok(AskedProof {
                proof,
                verified,
                log_index,
            })
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Refusal::internal(format!("a worker failed: {e}")))?
    }

    /// A transfer in (specs/sharing.md §5.2): this region's agency issues the successor of
    /// `predecessor`, another region's certificate transferred out to this one. The successor is
    /// prepared first (nothing is asked of the origin for a transfer this region could not
    /// complete), the origin is asked to accept the transfer, and the successor is logged with
    /// the origin's proof of its acceptance.
    pub async fn transfer_in(
        self: &Arc<Self>,
        agency: String,
        predecessor: Vec<u8>,
        serial: String,
        spec: CertificateSpec,
    ) -> Result<IssuedCertificate, Refusal> {
        let region = self.region.clone();
        let certificate = predecessor.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            region.prepare_transfer_in(&agency, &certificate, serial, spec)
        })
        .await
        .map_err(|e| Refusal::internal(format!("a worker failed: {e}")))??;
        let (proof, nonce) = self
            .request_proof(&prepared.origin, &predecessor, |request| {
                Request::Transfer { request }
            })
            .await?;
        let federation = self.clone();
        let work = move || {
            let trust = federation.trust.read().map_err(|_| poisoned())?.clone();
            let witnesses = federation.witnesses()?;
            let policy = EvidencePolicy {
                nonce: Some(nonce),
                witnesses: &witnesses,
                quorum: 0,
            };
            federation
                .region
                .complete_transfer_in(prepared, &proof, &trust, &policy)
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Refusal::internal(format!("a worker failed: {e}")))?
    }

    /// Sends an agency's signed share request to region `to` (specs/sharing.md §4).
    pub async fn ask_share(&self, to: &RegionCode, request: Vec<u8>) -> Result<Shared, Refusal> {
        self.ask_copy(to, Request::Share { request }).await
    }

    /// Sends an agency's signed presentation request to region `to`, the code's
    /// (specs/presentation.md §2.4).
    pub async fn ask_presentation(
        &self,
        to: &RegionCode,
        request: Vec<u8>,
    ) -> Result<Shared, Refusal> {
        self.ask_copy(to, Request::Presentation { request }).await
    }

    /// Sends a request answered with a copy or a logged refusal.
    async fn ask_copy(&self, to: &RegionCode, request: Request) -> Result<Shared, Refusal> {
        match self.ask(to, &request).await? {
            Response::Copy { copy, log_index } => Ok(Shared::Copy { copy, log_index }),
            Response::Declined {
                code,
                detail,
                log_index,
            } => Ok(Shared::Declined(
                remote_refusal(to, &code, &detail).logged_at(log_index),
            )),
            Response::Refused { code, detail } => Err(remote_refusal(to, &code, &detail)),
            other => Err(unreachable(to, format!("answered {other:?}"))),
        }
    }
}
