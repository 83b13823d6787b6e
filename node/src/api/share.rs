//! Cross-region acts over HTTP (specs/sharing.md): a verification proof for another region, an
//! agency's request for another region's proof or copy (carried by the federation), and verifying
//! a purpose-bound copy as its presenter.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use tongban_core::cert::FieldValue;
use tongban_core::ids::RegionCode;
use tongban_core::sharing::copy::CopyVerification;
use tongban_core::sharing::proof::inspect_proof;
use tongban_core::sharing::{ProofRequest, object_digest};

use super::input::{self, Body};
use super::{Agency, App, blocking};
use crate::federation::{Federation, Shared};
use crate::refusal::{Kind, Refusal};
use crate::region::{ShareAnswer, ShareAsk};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBody {
    /// The certificate, standard base64 (best without disclosures).
    certificate: String,
    /// 16 bytes in hex.
    nonce: String,
    /// The asking region.
    requester_region: String,
}

fn region(field: &str, text: &str) -> Result<RegionCode, Refusal> {
    RegionCode::parse(text).map_err(|e| Refusal::invalid(format!("{field}: {e}")))
}

/// `POST /v1/verify/proof`: this region's signed answer for another region (specs/sharing.md §3).
pub async fn proof(
    State(app): State<App>,
    Body(body): Body<ProofBody>,
) -> Result<Json<Value>, Refusal> {
    let certificate = input::base64("certificate", &body.certificate)?;
    // Not encoded as a proof request: a certificate over its size limit gets its verification
    // code (TOO_LARGE), as /v1/verify gives, not a refusal of the request.
    let request = ProofRequest {
        certificate,
        nonce: input::nonce_required(&body.nonce)?,
    };
    let requester = region("requester_region", &body.requester_region)?;
    let proof = app
        .region
        .prove(&app.receipts, &requester, &request, None)
        .await?;
    // What the proof says, read back from the bytes just signed.
    let inspection = inspect_proof(&proof).map_err(|f| Refusal::internal(f.to_string()))?;
    let answer = inspection
        .item
        .map_err(|f| Refusal::internal(f.to_string()))?;
    Ok(Json(json!({
        "verdict": if answer.valid { "valid" } else { "invalid" },
        "code": answer.code.as_str(),
        "state": answer.state.map(|s| s.code()),
        "proof": B64.encode(&proof),
        "digest": hex::encode(object_digest(app.region.suite(), &proof)),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    /// Key id of the seal to sign the request with (32 hex digits).
    seal: String,
    /// The region that issued the certificate.
    region: String,
    id: String,
    fields: Vec<String>,
    purpose: String,
    case: String,
}

/// `POST /v1/shares`: an agency asks for fields of a certificate, for a purpose and a case
/// (specs/sharing.md §4). Answered here when this region issued it.
pub async fn share(
    State(app): State<App>,
    Agency(agency): Agency,
    Body(body): Body<ShareBody>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let fields = body
        .fields
        .iter()
        .map(|f| {
            tongban_core::cert::FieldName::parse(f)
                .ok_or_else(|| Refusal::invalid(format!("fields: {f:?} is not a field name")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if fields.is_empty() || fields.len() > 256 {
        return Err(Refusal::invalid("fields: 1 to 256 field names"));
    }
    let ask = ShareAsk {
        seal: input::kid("seal", &body.seal)?,
        to: region("region", &body.region)?,
        id: input::identifier(&body.id)?,
        fields,
        purpose: input::short_text("purpose", &body.purpose)?,
        case: input::short_text("case", &body.case)?,
    };
    if &ask.to != app.region.code() {
        return share_remote(&app, agency, ask).await;
    }
    let region = app.region.clone();
    let (copy, answered, received, verification) = blocking(move || {
        let request = region.share_request(&agency, ask)?;
        let federation = region.view()?.trust.clone();
        match region.answer_share_request(&request, &federation, region.code())? {
            ShareAnswer::Given { copy, log_index } => {
                let (verification, received) =
                    region.record_copy_received(&copy, &federation, &agency)?;
                Ok((copy, log_index, received, verification))
            }
            ShareAnswer::Refused { failure, log_index } => {
                Err(
                    Refusal::code(Kind::of_sharing(failure.code), failure.code, failure.detail)
                        .logged_at(log_index),
                )
            }
        }
    })
    .await?;
    Ok(copy_created(&copy, &verification, answered, received))
}

/// The answer to an agency that received a copy: the copy, what it says, where both logs hold it.
pub(super) fn copy_created(
    copy: &[u8],
    verification: &CopyVerification,
    answered: u64,
    received: u64,
) -> (StatusCode, Json<Value>) {
    let mut body = copy_json(verification);
    body["copy"] = json!(B64.encode(copy));
    body["log_index"] = json!(answered);
    body["received_log_index"] = json!(received);
    (StatusCode::CREATED, Json(body))
}

/// The federation that reaches `region`, or why there is none.
pub(super) fn federation_for(app: &App, region: &RegionCode) -> Result<Arc<Federation>, Refusal> {
    app.federation.clone().ok_or_else(|| {
        Refusal::new(
            Kind::Unavailable,
            "REGION_UNREACHABLE",
            format!("region {region} is another region's, and this node is in no federation"),
        )
    })
}

/// A share request for another region: signed here with the agency's seal, answered there, and
/// the copy verified and logged here as received.
async fn share_remote(
    app: &App,
    agency: String,
    ask: ShareAsk,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let federation = federation_for(app, &ask.to)?;
    let to = ask.to.clone();
    let region = app.region.clone();
    let signer = agency.clone();
    let request = blocking(move || region.share_request(&signer, ask)).await?;
    let (copy, answered) = match federation.ask_share(&to, request).await? {
        Shared::Copy { copy, log_index } => (copy, log_index),
        Shared::Declined(refusal) => return Err(refusal),
    };
    let app = app.clone();
    let (verification, received, copy) = blocking(move || {
        let trust = app.cross_region_trust()?;
        let (verification, received) = app.region.record_copy_received(&copy, &trust, &agency)?;
        Ok((verification, received, copy))
    })
    .await?;
    Ok(copy_created(&copy, &verification, answered, received))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskProofBody {
    /// The certificate, standard base64 (its disclosures are not sent).
    certificate: String,
}

/// `POST /v1/proofs`: an agency of this region asks the region that issued a certificate for a
/// verification proof (specs/sharing.md §3); the proof is verified and logged here as evidence
/// received.
pub async fn ask_proof(
    State(app): State<App>,
    Agency(_agency): Agency,
    Body(body): Body<AskProofBody>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let certificate = input::base64("certificate", &body.certificate)?;
    let issuer = tongban_core::cert::inspect(&certificate)
        .and_then(|i| i.claims)
        .map_err(Refusal::from_failure)?
        .region;
    if &issuer == app.region.code() {
        return Err(Refusal::code(
            Kind::Invalid,
            tongban_core::codes::Code::RegionMismatch,
            "this region's own certificate: verify it with /v1/verify",
        ));
    }
    let federation = federation_for(&app, &issuer)?;
    let asked = federation.ask_proof(&certificate).await?;
    let item = &asked.verified.item;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "region": asked.verified.region.as_str(),
            "verdict": if item.valid { "valid" } else { "invalid" },
            "code": item.code.as_str(),
            "state": item.state.map(|s| s.code()),
            "at": item.at.seconds(),
            "cosignatures": asked
                .verified
                .checkpoint
                .as_ref()
                .map_or(0, |c| c.cosigned_by.len()),
            "proof": B64.encode(&asked.proof),
            "digest": hex::encode(asked.verified.digest),
            "log_index": asked.log_index,
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyBody {
    /// The purpose-bound copy, standard base64.
    copy: String,
}

fn field_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Text(t) => json!(t),
        FieldValue::Int(i) => json!(i),
        FieldValue::Bool(b) => json!(b),
    }
}

fn copy_json(v: &CopyVerification) -> Value {
    let certificate = v.certificate.as_ref();
    json!({
        "verdict": v.verdict.as_str(),
        "code": v.code.as_str(),
        "detail": v.detail,
        "digest": hex::encode(v.digest),
        "provider": v.provider.as_ref().map(|r| r.as_str().to_owned()),
        "recipient": v.recipient.as_ref().map(|(p, name)| json!({
            "region": p.region.as_str(), "agency": p.agency.as_str(), "agency_name": name.as_str(),
        })),
        "purpose": v.request.as_ref().map(|r| r.purpose().as_str().to_owned()),
        "case": v.request.as_ref().map(|r| r.case().as_str().to_owned()),
        "id": v.id().map(|id| id.as_str().to_owned()),
        "issued": v.issued.map(|t| t.seconds()),
        "expires": v.expires.map(|t| t.seconds()),
        "fields": certificate.map(|c| c.disclosed.iter().map(|(n, value)| json!({
            "name": n.as_str(), "value": field_json(value),
        })).collect::<Vec<_>>()).unwrap_or_default(),
    })
}

/// `POST /v1/copies/verify`: the calling agency presents a copy (specs/sharing.md §4.4); valid
/// only when it is the copy's recipient.
pub async fn verify_copy(
    State(app): State<App>,
    Agency(agency): Agency,
    Body(body): Body<CopyBody>,
) -> Result<Json<Value>, Refusal> {
    let copy = input::base64("copy", &body.copy)?;
    let verification = blocking(move || {
        let trust = app.cross_region_trust()?;
        app.region.check_copy(&copy, &trust, &agency)
    })
    .await?;
    Ok(Json(copy_json(&verification)))
}
