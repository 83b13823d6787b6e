//! An agency's requests on its certificates.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use tongban_core::cert::{FieldName, FieldValue, Holder, HolderIdType, TrustLevel, present};
use tongban_core::ids::{RegionCode, TypeCode};
use tongban_core::status::{Operation, Succession, Termination};

use super::input::{self, Body, CertId, Query};
use super::{Agency, App, blocking, read};
use crate::metrics::TypeLabel;
use crate::refusal::{Kind, Refusal};
use crate::region::{CertificateSpec, IssuedCertificate, Lineage, check_owner};

/// Most decoy digests a request may ask for.
const MAX_DECOYS: usize = 32;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderRequest {
    name: String,
    id_type: String,
    id_number: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// Key id of the seal to stamp with (32 hex digits).
    seal: String,
    /// New certificates only: the 21-character type code and the agency's serial.
    type_code: Option<String>,
    serial: Option<String>,
    type_name: String,
    valid_from: Option<u64>,
    valid_until: Option<u64>,
    level: String,
    promise_deadline: Option<u64>,
    holder: HolderRequest,
    #[serde(default)]
    licence: BTreeMap<String, Value>,
    #[serde(default)]
    decoys: usize,
}

fn field_value(name: &str, value: &Value) -> Result<FieldValue, Refusal> {
    match value {
        Value::String(s) => Ok(FieldValue::Text(s.clone())),
        Value::Bool(b) => Ok(FieldValue::Bool(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(FieldValue::Int)
            .ok_or_else(|| Refusal::invalid(format!("licence.{name}: integers only"))),
        _ => Err(Refusal::invalid(format!(
            "licence.{name}: text, integer or boolean"
        ))),
    }
}

fn spec(request: IssueRequest) -> Result<CertificateSpec, Refusal> {
    let id_type = HolderIdType::parse(&request.holder.id_type)
        .ok_or_else(|| Refusal::invalid("holder.id_type: USCC, RESIDENT_ID, PASSPORT or OTHER"))?;
    if !id_type.accepts(&request.holder.id_number) {
        let code = match id_type {
            HolderIdType::Uscc => "USCC_INVALID",
            _ => "HOLDER_ID_INVALID",
        };
        return Err(Refusal::new(
            Kind::Invalid,
            code,
            format!("holder.id_number is not a valid {}", id_type.as_str()),
        ));
    }
    if request.decoys > MAX_DECOYS {
        return Err(Refusal::invalid(format!("decoys: at most {MAX_DECOYS}")));
    }
    let mut licence = Vec::with_capacity(request.licence.len());
    for (name, value) in &request.licence {
        let field = FieldName::parse(&format!("licence.{name}"))
            .ok_or_else(|| Refusal::invalid(format!("licence.{name}: not a valid field name")))?;
        licence.push((field, field_value(name, value)?));
    }
    Ok(CertificateSpec {
        seal: input::kid("seal", &request.seal)?,
        type_name: input::short_text("type_name", &request.type_name)?,
        valid_from: input::optional_time("valid_from", request.valid_from)?,
        valid_until: input::optional_time("valid_until", request.valid_until)?,
        level: TrustLevel::parse(&request.level)
            .ok_or_else(|| Refusal::invalid("level: A, B, C or D"))?,
        promise_deadline: input::optional_time("promise_deadline", request.promise_deadline)?,
        holder: Holder {
            name: input::short_text("holder.name", &request.holder.name)?,
            id_type,
            id_number: request.holder.id_number,
        },
        licence,
        decoys: request.decoys,
    })
}

fn issued_json(app: &App, issued: &IssuedCertificate) -> Value {
    app.metrics
        .issued
        .get_or_create(&TypeLabel {
            type_code: issued.id.type_code().as_str().to_owned(),
        })
        .inc();
    json!({
        "id": issued.id.as_str(),
        "digest": hex::encode(issued.digest),
        "certificate": B64.encode(&issued.bytes),
        "log_index": issued.log_index,
    })
}

pub async fn issue(
    State(app): State<App>,
    Agency(agency): Agency,
    Body(request): Body<IssueRequest>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let (Some(type_code), Some(serial)) = (request.type_code.clone(), request.serial.clone())
    else {
        return Err(Refusal::invalid(
            "type_code and serial are required for a new certificate",
        ));
    };
    let type_code = TypeCode::parse(&type_code).map_err(|e| {
        Refusal::new(
            Kind::Invalid,
            "IDENTIFIER_INVALID",
            format!("type_code: {e}"),
        )
    })?;
    let spec = spec(request)?;
    let marker = super::idempotency::marker();
    let issued = app
        .region
        .issue_new(agency, type_code, serial, spec, marker)
        .await?;
    Ok((StatusCode::CREATED, Json(issued_json(&app, &issued))))
}

async fn successor(
    app: App,
    agency: String,
    of: tongban_core::ids::Identifier,
    request: IssueRequest,
    how: Succession,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    if request.type_code.is_some() || request.serial.is_some() {
        return Err(Refusal::invalid(
            "a renewal or change keeps its predecessor's type_code and serial; omit them",
        ));
    }
    let spec = spec(request)?;
    let region = app.region.clone();
    let issued =
        blocking(move || region.issue(&agency, Lineage::Successor { of, how }, spec)).await?;
    Ok((StatusCode::CREATED, Json(issued_json(&app, &issued))))
}

pub async fn renew(
    State(app): State<App>,
    Agency(agency): Agency,
    CertId(id): CertId,
    Body(request): Body<IssueRequest>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    successor(app, agency, id, request, Succession::Renew).await
}

pub async fn change(
    State(app): State<App>,
    Agency(agency): Agency,
    CertId(id): CertId,
    Body(request): Body<IssueRequest>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    successor(app, agency, id, request, Succession::Change).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    operation: String,
    reason: Option<String>,
    /// The receiving region of a transfer out (`transfer_out` only).
    destination: Option<String>,
}

fn operation(name: &str) -> Result<Operation, Refusal> {
    Ok(match name {
        "suspend" => Operation::Suspend,
        "unsuspend" => Operation::Unsuspend,
        "revoke" => Operation::Terminate(Termination::Revoke),
        "cancel" => Operation::Terminate(Termination::Cancel),
        "revoke_penalty" => Operation::Terminate(Termination::RevokeAsPenalty),
        "expire" => Operation::Expire,
        "other" => Operation::Other,
        "transfer_out" => Operation::Terminate(Termination::TransferOut),
        "cancel_transfer_out" => Operation::CancelTransferOut,
        _ => {
            return Err(Refusal::invalid(
                "operation: suspend, unsuspend, revoke, cancel, revoke_penalty, expire, other, \
                 transfer_out or cancel_transfer_out",
            ));
        }
    })
}

pub async fn change_status(
    State(app): State<App>,
    Agency(agency): Agency,
    CertId(id): CertId,
    Body(request): Body<StatusRequest>,
) -> Result<Json<Value>, Refusal> {
    let operation = operation(&request.operation)?;
    let reason = request
        .reason
        .as_deref()
        .map(|r| input::short_text("reason", r))
        .transpose()?;
    let transfer_out = operation == Operation::Terminate(Termination::TransferOut);
    let destination = match (request.destination.as_deref(), transfer_out) {
        (Some(d), true) => {
            Some(RegionCode::parse(d).map_err(|e| Refusal::invalid(format!("destination: {e}")))?)
        }
        (None, true) => {
            return Err(Refusal::invalid(
                "destination: a transfer out names the receiving region",
            ));
        }
        (Some(_), false) => {
            return Err(Refusal::invalid("destination: only a transfer out has one"));
        }
        (None, false) => None,
    };
    let region = app.region.clone();
    let key = id.clone();
    let (state, index) = blocking(move || match destination {
        Some(destination) => region.transfer_out(&agency, &key, destination, reason),
        None => region.change_status(&agency, &key, operation, reason),
    })
    .await?;
    Ok(Json(json!({
        "id": id.as_str(),
        "state": state.code(),
        "state_name": state.name(),
        "log_index": index,
    })))
}

pub async fn fulfil(
    State(app): State<App>,
    Agency(agency): Agency,
    CertId(id): CertId,
) -> Result<Json<Value>, Refusal> {
    let region = app.region.clone();
    let key = id.clone();
    let index = blocking(move || region.fulfil(&agency, &key)).await?;
    Ok(Json(
        json!({"id": id.as_str(), "promise_fulfilled": true, "log_index": index}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferInRequest {
    /// The certificate to take in, another region's, transferred out to this one (standard
    /// base64, as the holder presents it).
    predecessor: String,
    /// The successor: its serial, and the content of a new certificate (no type code: it is the
    /// predecessor's).
    certificate: IssueRequest,
}

/// `POST /v1/certificates/transfer-in`: an agency issues the successor of another region's
/// certificate transferred out to this region, once that region has accepted the transfer
/// (specs/sharing.md §5.2; the node asks it over the federation).
pub async fn transfer_in(
    State(app): State<App>,
    Agency(agency): Agency,
    Body(request): Body<TransferInRequest>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let predecessor = input::base64("predecessor", &request.predecessor)?;
    if request.certificate.type_code.is_some() {
        return Err(Refusal::invalid(
            "certificate.type_code: a transferred-in certificate keeps its predecessor's type",
        ));
    }
    let serial = request
        .certificate
        .serial
        .clone()
        .ok_or_else(|| Refusal::invalid("certificate.serial is required"))?;
    let spec = spec(request.certificate)?;
    let origin = tongban_core::cert::inspect(&predecessor)
        .and_then(|i| i.claims)
        .map_err(Refusal::from_failure)?
        .region;
    if &origin == app.region.code() {
        return Err(Refusal::code(
            Kind::Invalid,
            tongban_core::codes::Code::RegionMismatch,
            "a certificate of this region is not transferred in",
        ));
    }
    let federation = super::share::federation_for(&app, &origin)?;
    let issued = federation
        .transfer_in(agency, predecessor, serial, spec)
        .await?;
    Ok((StatusCode::CREATED, Json(issued_json(&app, &issued))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchQuery {
    /// Comma-separated field names to disclose; absent: all.
    disclose: Option<String>,
}

pub async fn fetch(
    State(app): State<App>,
    Agency(agency): Agency,
    CertId(id): CertId,
    Query(query): Query<FetchQuery>,
) -> Result<Json<Value>, Refusal> {
    let presented = presented(&app, &agency, &id, query.disclose.as_deref()).await?;
    Ok(Json(json!({
        "id": id.as_str(),
        "certificate": B64.encode(&presented),
    })))
}

/// The agency's certificate with all its disclosures, or only those `disclose` names
/// (comma-separated; empty names skipped).
async fn presented(
    app: &App,
    agency: &str,
    id: &tongban_core::ids::Identifier,
    disclose: Option<&str>,
) -> Result<Vec<u8>, Refusal> {
    let asked = id.clone();
    let record = read(&app.region, move |region| region.certificate(&asked)).await?;
    check_owner(&record, agency)?;
    let region = app.region.clone();
    let bytes = blocking(move || region.certificate_bytes(&record)).await?;
    let Some(disclose) = disclose else {
        return Ok(bytes);
    };
    let names: Vec<&str> = disclose.split(',').filter(|s| !s.is_empty()).collect();
    present(&bytes, |name| names.contains(&name.as_str()))
        .map_err(|f| Refusal::internal(f.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrQuery {
    /// Comma-separated field names to disclose; absent: all.
    disclose: Option<String>,
    /// `svg` (the default), `png` or `text`.
    format: Option<QrFormat>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QrFormat {
    Svg,
    Png,
    Text,
}

/// `GET /v1/certificates/{id}/qr`: the certificate (all or some disclosures) as one QR code a
/// holder shows on a phone (specs/presentation.md §1): SVG, PNG or the QR text itself.
pub async fn qr(
    State(app): State<App>,
    Agency(agency): Agency,
    CertId(id): CertId,
    Query(query): Query<QrQuery>,
) -> Result<axum::response::Response, Refusal> {
    use axum::response::IntoResponse;
    let presented = presented(&app, &agency, &id, query.disclose.as_deref()).await?;
    let text = tongban_core::qr::encode(&presented).map_err(|e| {
        Refusal::code(
            Kind::Invalid,
            tongban_core::codes::Code::QrTooLarge,
            e.to_string(),
        )
    })?;
    let format = query.format.unwrap_or(QrFormat::Svg);
    let (content_type, body) = match format {
        QrFormat::Text => ("text/plain; charset=utf-8", text.into_bytes()),
        QrFormat::Svg | QrFormat::Png => {
            let symbol = tongban_core::qr::symbol::Symbol::new(&text)
                .map_err(|e| Refusal::internal(e.to_string()))?;
            match format {
                QrFormat::Png => (
                    "image/png",
                    symbol
                        .png(8)
                        .map_err(|e| Refusal::internal(e.to_string()))?,
                ),
                _ => ("image/svg+xml", symbol.svg().into_bytes()),
            }
        }
    };
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response())
}
