//! Cross-region verification proofs (核验回执, specs/sharing.md §3): the issuing region's signed
//! answer to another region's "is this certificate valid?", with the verification receipt it logged
//! and offline inclusion receipts of the certificate's entries in its log.

use crate::cbor::{self, Key};
use crate::cert::Verification;
use crate::codes::{Code, Failure};
use crate::encode::{bytes, entry, map_bytes, text, uint};
use crate::envelope::{BuildError, Envelope, Kind, seal};
use crate::fields::{Bad, Fields};
use crate::ids::RegionCode;
use crate::keys::{KeyId, PublicKey, SecretKey};
use crate::log::checkpoint::VerifiedCheckpoint;
use crate::log::entry::{Act, LogEntry};
use crate::log::note::{NoteRole, NoteVerifier};
use crate::log::receipt::Receipt;
use crate::log::state::CertRecord;
use crate::log::verification::{ReceiptItem, VerificationReceipt};
use crate::sharing::{object_digest, open_region_signed, same_region};
use crate::status::{Operation, State, Termination};
use crate::suite::Suite;
use crate::trust::TrustStore;
use crate::values::Time;

/// Largest proof request: a certificate and a nonce.
pub const MAX_REQUEST: u64 = 65_600;

/// What the asking region sends (specs/sharing.md §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofRequest {
    /// The certificate, best with its disclosures stripped.
    pub certificate: Vec<u8>,
    pub nonce: [u8; 16],
}

impl ProofRequest {
    pub fn encode(&self) -> Result<Vec<u8>, BuildError> {
        if self.certificate.len() as u64 > Kind::Certificate.size_limit() {
            return Err(BuildError::Invalid(
                "the certificate is larger than any certificate may be".into(),
            ));
        }
        map_bytes(vec![
            entry("v", uint(1)),
            entry("cert", bytes(&self.certificate)),
            entry("n", bytes(&self.nonce)),
        ])
    }

    /// Step 1 of specs/sharing.md §3.2.
    pub fn decode(input: &[u8]) -> Result<ProofRequest, Failure> {
        if input.len() as u64 > MAX_REQUEST {
            return Err(Failure::new(
                Code::TooLarge,
                format!("{} bytes; the limit is {MAX_REQUEST}", input.len()),
            ));
        }
        cbor::check(input, MAX_REQUEST, false)?;
        let read = || -> Result<ProofRequest, Bad> {
            let mut f = Fields::whole(input)?;
            f.version_1()?;
            let certificate = f.bytes(Key::Text("cert"))?.to_vec();
            let nonce = f.fixed::<16>(Key::Text("n"))?;
            f.finish()?;
            if certificate.len() as u64 > Kind::Certificate.size_limit() {
                return Err(Bad::new("the certificate is larger than 65,536 bytes"));
            }
            Ok(ProofRequest { certificate, nonce })
        };
        read().map_err(|b| b.into_failure(Code::ClaimsInvalid))
    }
}

/// Steps 2–4 of specs/sharing.md §3.2: the receipt item the answering region `here` (of a
/// federation of `suite`) gives for `request`'s certificate, given `verification` (verified at `at`
/// against its own trust and live status), where `logged` is its log's record of the
/// certificate's identifier, if any.
pub fn answer_item(
    suite: Suite,
    here: &RegionCode,
    request: &ProofRequest,
    verification: &Verification,
    logged: Option<&CertRecord>,
    requester: &RegionCode,
    at: Time,
) -> ReceiptItem {
    let claims = verification.claims.as_ref();
    // The log vouches for exactly the certificate it recorded: same identifier, same digest.
    let record = logged.filter(|r| Some(r.digest) == verification.digest);
    let code = match (verification.code, claims) {
        (Code::Ok, Some(claims)) if claims.region != *here => Code::RegionMismatch,
        (Code::Ok, _) if record.is_none() => Code::CertificateNotLogged,
        (code, _) => code,
    };
    ReceiptItem {
        region: here.clone(),
        at,
        // Bytes that are not even an envelope have no certificate digest: name them by their hash.
        digest: verification
            .digest
            .unwrap_or_else(|| object_digest(suite, &request.certificate)),
        id: claims.map(|c| c.id.clone()),
        valid: code == Code::Ok,
        code,
        state: record.map(|r| r.state),
        requester: Some(requester.clone()),
        nonce: Some(request.nonce),
    }
}

/// What a proof holds, before the answering region's root signs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofContents {
    pub region: RegionCode,
    /// The encoded verification receipt (specs/log.md §8).
    pub receipt: Vec<u8>,
    /// The region's log verifier key.
    pub log_key: String,
    /// Receipt of the certificate's `cert.issued` entry.
    pub issuance: Option<Receipt>,
    /// Receipt of the `cert.status` entry that set the certificate's current state.
    pub status: Option<Receipt>,
}

impl ProofContents {
    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        if let (Some(status), issuance) = (&self.status, &self.issuance)
            && issuance
                .as_ref()
                .is_none_or(|i| i.checkpoint != status.checkpoint)
        {
            return Err(BuildError::Invalid(
                "a status receipt goes with an issuance receipt on the same checkpoint".into(),
            ));
        }
        let mut entries = vec![
            entry("v", uint(1)),
            entry("rc", text(self.region.as_str())),
            entry("r", bytes(&self.receipt)),
            entry("lk", text(&self.log_key)),
        ];
        if let Some(issuance) = &self.issuance {
            entries.push(entry("ip", text(&issuance.to_text())));
        }
        if let Some(status) = &self.status {
            entries.push(entry("sp", text(&status.to_text())));
        }
        map_bytes(entries)
    }

    /// The proof, signed by the answering region's root.
    pub fn sign(&self, region_root: &SecretKey) -> Result<Vec<u8>, BuildError> {
        seal(Kind::VerificationProof, region_root, self.payload()?, &[])
    }
}

/// What the verifier of a proof expects (specs/sharing.md §3.4, inputs).
#[derive(Clone, Copy, Debug)]
pub struct ProofExpectation<'a> {
    /// The region that asked.
    pub requester: &'a RegionCode,
    /// The nonce it sent, when the verifier knows it.
    pub nonce: Option<[u8; 16]>,
    /// Witness cosigner keys (C2SP cosignature/v1) and how many of them must have cosigned.
    pub witnesses: &'a [NoteVerifier],
    pub quorum: usize,
}

/// A log entry proven included in the answering region's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedEntry {
    pub index: u64,
    pub entry: LogEntry,
}

/// An authentic proof: what the answering region said, and what its log shows.
#[derive(Clone, Debug)]
pub struct VerifiedProof {
    /// The proof's object digest.
    pub digest: [u8; 32],
    /// The answering region.
    pub region: RegionCode,
    /// Its answer: verdict, code, state, requester and nonce.
    pub item: ReceiptItem,
    /// Index of the `receipts` entry that logged the answer.
    pub receipts_index: u64,
    /// The log's origin, and the checkpoint the inclusion receipts are proven against.
    pub origin: String,
    pub checkpoint: Option<VerifiedCheckpoint>,
    pub issuance: Option<LoggedEntry>,
    pub status: Option<LoggedEntry>,
}

impl VerifiedProof {
    /// Where the status entry transferred the certificate: a transfer out, or its acceptance.
    pub fn transferred_to(&self) -> Option<&RegionCode> {
        match self.status.as_ref().map(|s| &s.entry.act) {
            Some(Act::StatusChanged {
                operation:
                    Operation::Terminate(Termination::TransferOut) | Operation::AcceptTransfer,
                destination,
                ..
            }) => destination.as_ref(),
            _ => None,
        }
    }

    /// The region whose transfer in the origin accepted (specs/sharing.md §5.2), when the status
    /// entry is that acceptance: only then may that region take the certificate in.
    pub fn accepted_for(&self) -> Option<&RegionCode> {
        match self.status.as_ref().map(|s| &s.entry.act) {
            Some(Act::StatusChanged {
                operation: Operation::AcceptTransfer,
                destination,
                ..
            }) => destination.as_ref(),
            _ => None,
        }
    }
}

struct RawProof<'a> {
    region: RegionCode,
    receipt: &'a [u8],
    log_key: &'a str,
    issuance: Option<&'a str>,
    status: Option<&'a str>,
}

fn read(payload: &[u8]) -> Result<RawProof<'_>, Bad> {
    let mut f = Fields::whole(payload)?;
    f.version_1()?;
    let region = f.text(Key::Text("rc"))?;
    let receipt = f.bytes(Key::Text("r"))?;
    let log_key = f.text(Key::Text("lk"))?;
    let issuance = f.optional_text(Key::Text("ip"))?;
    let status = f.optional_text(Key::Text("sp"))?;
    f.finish()?;
    Ok(RawProof {
        region: RegionCode::parse(region).map_err(|e| Bad::new(e.to_string()))?,
        receipt,
        log_key,
        issuance,
        status,
    })
}

fn mismatch(detail: impl Into<String>) -> Failure {
    Failure::new(Code::ProofMismatch, detail)
}

fn log_invalid(detail: impl Into<String>) -> Failure {
    Failure::new(Code::LogProofInvalid, detail)
}

/// Whether `origin` is `<federation name>/<region>/log/<generation>` (specs/log.md §3).
fn origin_of(origin: &str, region: &RegionCode) -> bool {
    let parts: Vec<&str> = origin.split('/').collect();
    match parts.as_slice() {
        [before @ .., rc, "log", generation] => {
            !before.is_empty() && *rc == region.as_str() && !generation.is_empty()
        }
        _ => false,
    }
}

/// Steps 10–11: a tlog-proof that verifies under the log key, and its entry with the kid that
/// signed it (its signature checked by the caller, which knows the acting key).
fn logged(
    text: &str,
    log: &NoteVerifier,
    witnesses: &[NoteVerifier],
    what: &str,
) -> Result<(Receipt, VerifiedCheckpoint, LogEntry, KeyId), Failure> {
    let receipt = Receipt::parse(text).map_err(|e| log_invalid(format!("{what}: {e}")))?;
    let checkpoint = receipt
        .verify(log, witnesses)
        .map_err(|e| log_invalid(format!("{what}: {e}")))?;
    let (envelope, entry) =
        LogEntry::open(&receipt.entry).map_err(|f| mismatch(format!("{what}'s entry: {f}")))?;
    let kid = envelope.kid;
    Ok((receipt, checkpoint, entry, kid))
}

/// An entry of a proof signed by `key`: its signature verifies strictly (sharing.md §3.4 steps
/// 10–11), else `LOG_PROOF_INVALID`.
fn signed_by(entry: &[u8], key: Option<&PublicKey>, what: &str) -> Result<(), Failure> {
    let key =
        key.ok_or_else(|| log_invalid(format!("{what} is not signed by a key that may sign it")))?;
    Envelope::open(entry, Kind::LogEntry)
        .and_then(|envelope| envelope.verify(key))
        .map_err(|f| log_invalid(format!("{what}'s signature: {f}")))
}

/// Verifies a proof (specs/sharing.md §3.4). The answer about the certificate is in the result's
/// `item`; an `Err` means the proof itself is not to be relied on.
pub fn verify_proof(
    bytes: &[u8],
    trust: &TrustStore,
    now: Time,
    expect: &ProofExpectation<'_>,
) -> Result<VerifiedProof, Failure> {
    // 0
    trust.check_fresh(now)?;
    // 1–4, and the payload's CBOR
    let (envelope, root) = open_region_signed(bytes, Kind::VerificationProof, trust)?;
    // 5
    let proof = read(envelope.payload).map_err(|b| b.into_failure(Code::ClaimsInvalid))?;
    // 6
    same_region(&proof.region, &root.region, "the proof")?;
    // 7
    let receipt = VerificationReceipt::decode(proof.receipt)?;
    let item = receipt.verify(&root.key)?;
    same_region(&item.region, &proof.region, "the receipt item")?;
    // 8
    if item.requester.as_ref() != Some(expect.requester) {
        return Err(mismatch(format!(
            "the answer was for region {}, not {}",
            item.requester.as_ref().map_or("(none)", |r| r.as_str()),
            expect.requester
        )));
    }
    if let Some(nonce) = expect.nonce
        && item.nonce != Some(nonce)
    {
        return Err(mismatch("the answer does not carry the request's nonce"));
    }
    // 9
    let log =
        NoteVerifier::parse(proof.log_key).map_err(|e| log_invalid(format!("log key: {e}")))?;
    if log.role != NoteRole::Log || !origin_of(&log.name, &proof.region) {
        return Err(log_invalid(format!(
            "{} is not a log key of region {}",
            log.name, proof.region
        )));
    }
    // 10
    let mut checkpoint = None;
    let mut issuance = None;
    let mut issuing_agency = None;
    if let Some(text) = proof.issuance {
        let (receipt, verified, entry, kid) = logged(text, &log, expect.witnesses, "the issuance")?;
        let Act::CertIssued {
            id, digest, seal, ..
        } = &entry.act
        else {
            return Err(mismatch(
                "the issuance receipt is not of a cert.issued entry",
            ));
        };
        if entry.region != proof.region || Some(id) != item.id.as_ref() || *digest != item.digest {
            return Err(mismatch(
                "the issuance entry is not of the certificate the answer is about",
            ));
        }
        // Signed by its seal (log.md §1): a seal of the answering region in the bundle.
        let stamping = trust
            .seal(seal)
            .filter(|s| kid == *seal && s.info.region == proof.region);
        signed_by(
            &receipt.entry,
            stamping.map(|s| &s.info.key),
            "the issuance entry",
        )?;
        issuing_agency = stamping.map(|s| s.info.agency.clone());
        issuance = Some((receipt, entry));
        checkpoint = Some(verified);
    }
    // 11
    let mut status = None;
    if let Some(text) = proof.status {
        let Some((issued, _)) = &issuance else {
            return Err(mismatch("a status receipt without an issuance receipt"));
        };
        let (receipt, _, entry, kid) = logged(text, &log, expect.witnesses, "the status")?;
        if receipt.checkpoint != issued.checkpoint {
            return Err(mismatch(
                "the status and issuance receipts are on different checkpoints",
            ));
        }
        let Act::StatusChanged {
            id, to, operation, ..
        } = &entry.act
        else {
            return Err(mismatch("the status receipt is not of a cert.status entry"));
        };
        if receipt.index <= issued.index
            || entry.region != proof.region
            || Some(id) != item.id.as_ref()
            || Some(*to) != item.state
        {
            return Err(mismatch(
                "the status entry does not set the state the answer reports",
            ));
        }
        // Signed by the region root, or (but for an acceptance, op 11) by a seal of the issuing
        // agency in the answering region (log.md §1).
        let acting = if kid == root.key.kid() {
            Some(&root.key)
        } else {
            trust
                .seal(&kid)
                .filter(|s| {
                    *operation != Operation::AcceptTransfer
                        && s.info.region == proof.region
                        && Some(&s.info.agency) == issuing_agency.as_ref()
                })
                .map(|s| &s.info.key)
        };
        signed_by(&receipt.entry, acting, "the status entry")?;
        status = Some(LoggedEntry {
            index: receipt.index,
            entry,
        });
    }
    // 12
    if item.valid && (issuance.is_none() || item.state != Some(State::Valid)) {
        return Err(mismatch(
            "a valid answer without the issuance receipt or in a state other than 01",
        ));
    }
    if issuance.is_some() && item.state.is_none() {
        return Err(mismatch("a logged certificate's answer without its state"));
    }
    // 13
    if expect.quorum > 0 {
        let cosigners = checkpoint.as_ref().map_or(0, |c: &VerifiedCheckpoint| {
            let mut names: Vec<&String> = c.cosigned_by.iter().map(|(n, _)| n).collect();
            names.sort();
            names.dedup();
            names.len()
        });
        if cosigners < expect.quorum {
            return Err(log_invalid(format!(
                "{cosigners} known witnesses cosigned the checkpoint; {} are required",
                expect.quorum
            )));
        }
    }
    Ok(VerifiedProof {
        digest: object_digest(trust.suite(), bytes),
        region: proof.region,
        item,
        receipts_index: receipt.log_index,
        origin: log.name,
        checkpoint,
        issuance: issuance.map(|(receipt, entry)| LoggedEntry {
            index: receipt.index,
            entry,
        }),
        status,
    })
}

/// A proof decoded without trust, for people (`tongban-verify proof inspect`). Nothing is verified.
#[derive(Clone, Debug)]
pub struct ProofInspection {
    /// Key id of the signing region root.
    pub kid: KeyId,
    pub digest: [u8; 32],
    pub region: RegionCode,
    pub item: Result<ReceiptItem, Failure>,
    pub log_key: String,
    pub issuance_index: Option<u64>,
    pub status_index: Option<u64>,
}

/// Decodes a proof for display without verifying it.
pub fn inspect_proof(bytes: &[u8]) -> Result<ProofInspection, Failure> {
    let envelope = Envelope::open(bytes, Kind::VerificationProof)?;
    cbor::check(
        envelope.payload,
        Kind::VerificationProof.size_limit(),
        false,
    )?;
    let proof = read(envelope.payload).map_err(|b| b.into_failure(Code::ClaimsInvalid))?;
    let index = |text: Option<&str>| text.and_then(|t| Receipt::parse(t).ok()).map(|r| r.index);
    Ok(ProofInspection {
        kid: envelope.kid,
        digest: object_digest(envelope.suite, bytes),
        region: proof.region,
        item: VerificationReceipt::decode(proof.receipt).and_then(|r| ReceiptItem::decode(&r.item)),
        log_key: proof.log_key.to_owned(),
        issuance_index: index(proof.issuance),
        status_index: index(proof.status),
    })
}
