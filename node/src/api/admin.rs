//! The operator's requests: agencies and their seals.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tongban_core::ids::TypeCode;
use tongban_core::trust::seal::MAX_SHARE_TYPES;
use tongban_core::trust::{MediaType, SealId, SealInfo, SealType};

use super::input::{self, Body, Kid};
use super::{App, Operator, blocking};
use crate::credentials::CredentialError;
use crate::refusal::{Kind, Refusal};
use crate::region::{Rotation, SealSpec};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyRequest {
    uscc: String,
    name: String,
}

pub async fn register_agency(
    State(app): State<App>,
    _: Operator,
    Body(request): Body<AgencyRequest>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let uscc = input::uscc(&request.uscc)?;
    let name = input::short_text("name", &request.name)?;
    let region = app.region.clone();
    let token = blocking(move || {
        region
            .credentials
            .register(&uscc, name.as_str())
            .map_err(|e| match e {
                CredentialError::Exists(_) => {
                    Refusal::new(Kind::Conflict, "AGENCY_EXISTS", e.to_string())
                }
                CredentialError::Storage(detail) => Refusal::internal(detail),
            })
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"uscc": request.uscc, "name": request.name, "token": token})),
    ))
}

pub async fn agencies(State(app): State<App>, _: Operator) -> Result<Json<Value>, Refusal> {
    Ok(Json(json!({"agencies": app.region.credentials.agencies()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealRequest {
    agency_uscc: String,
    seal_id: String,
    seal_type: String,
    name: String,
    valid_from: Option<u64>,
    valid_until: u64,
    picture: String,
    media_type: String,
    /// Certificate type codes whose fields the agency may request from other regions with this
    /// seal (its sharing scope, specs/trust.md §3).
    #[serde(default)]
    share_types: Vec<String>,
}

fn seal_json(info: &SealInfo, revoked_from: Option<u64>) -> Value {
    json!({
        "kid": info.key.kid().to_hex(),
        "seal_id": info.id.as_str(),
        "seal_type": info.seal_type.as_str(),
        "name": info.name.as_str(),
        "agency_uscc": info.agency.as_str(),
        "agency_name": info.agency_name.as_str(),
        "valid_from": info.valid_from.seconds(),
        "valid_until": info.valid_until.seconds(),
        "revoked_from": revoked_from,
        "share_types": info.share_types.iter().map(|t| t.as_str().to_owned()).collect::<Vec<_>>(),
    })
}

/// A seal's sharing scope: type codes, sorted and unique, at most 64.
fn share_types(types: &[String]) -> Result<Vec<TypeCode>, Refusal> {
    let mut parsed = types
        .iter()
        .map(|t| {
            TypeCode::parse(t).map_err(|e| {
                Refusal::new(
                    Kind::Invalid,
                    "IDENTIFIER_INVALID",
                    format!("share_types: {e}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    parsed.sort();
    parsed.dedup();
    if parsed.len() > MAX_SHARE_TYPES {
        return Err(Refusal::invalid(format!(
            "share_types: at most {MAX_SHARE_TYPES} type codes"
        )));
    }
    Ok(parsed)
}

pub async fn create_seal(
    State(app): State<App>,
    _: Operator,
    Body(request): Body<SealRequest>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let agency = input::uscc(&request.agency_uscc)?;
    let registered = app
        .region
        .credentials
        .agency(agency.as_str())
        .ok_or_else(|| {
            Refusal::not_found(format!("agency {} is not registered", agency.as_str()))
        })?;
    let spec = SealSpec {
        agency_name: input::short_text("agency name", &registered.name)?,
        agency,
        id: SealId::parse(&request.seal_id)
            .ok_or_else(|| Refusal::invalid("seal_id: 1–64 characters of [0-9A-Za-z-]"))?,
        seal_type: SealType::parse(&request.seal_type).ok_or_else(|| {
            Refusal::invalid("seal_type: official, approval, licence, business or other")
        })?,
        name: input::short_text("name", &request.name)?,
        valid_from: input::optional_time("valid_from", request.valid_from)?,
        valid_until: input::time("valid_until", request.valid_until)?,
        picture: input::base64("picture", &request.picture)?,
        media_type: MediaType::parse(&request.media_type).ok_or_else(|| {
            Refusal::invalid("media_type: image/png, image/svg+xml, image/jpeg or application/ofd")
        })?,
        share_types: share_types(&request.share_types)?,
    };
    let region = app.region.clone();
    let (info, index) = blocking(move || region.create_seal(spec)).await?;
    let mut body = seal_json(&info, None);
    body["log_index"] = json!(index);
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn seals(State(app): State<App>, _: Operator) -> Result<Json<Value>, Refusal> {
    let seals = app.region.seals()?;
    Ok(Json(json!({
        "seals": seals.iter().map(|(info, revoked)| seal_json(info, revoked.map(|t| t.seconds()))).collect::<Vec<_>>()
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    from: Option<u64>,
    reason: String,
}

pub async fn revoke_seal(
    State(app): State<App>,
    _: Operator,
    Kid(kid): Kid,
    Body(request): Body<RevokeRequest>,
) -> Result<Json<Value>, Refusal> {
    let from = match request.from {
        Some(seconds) => input::time("from", seconds)?,
        None => crate::region::now()?,
    };
    let reason = input::short_text("reason", &request.reason)?;
    let region = app.region.clone();
    let index = blocking(move || region.revoke_seal(kid, from, reason)).await?;
    Ok(Json(
        json!({"kid": kid.to_hex(), "revoked_from": from.seconds(), "log_index": index}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    seal_id: String,
    valid_from: Option<u64>,
    valid_until: Option<u64>,
    from: Option<u64>,
    reason: String,
}

pub async fn rotate_seal(
    State(app): State<App>,
    _: Operator,
    Kid(old): Kid,
    Body(request): Body<RotateRequest>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let rotation = Rotation {
        old,
        id: SealId::parse(&request.seal_id)
            .ok_or_else(|| Refusal::invalid("seal_id: 1–64 characters of [0-9A-Za-z-]"))?,
        valid_from: input::optional_time("valid_from", request.valid_from)?,
        valid_until: input::optional_time("valid_until", request.valid_until)?,
        revoke_from: input::optional_time("from", request.from)?,
        reason: input::short_text("reason", &request.reason)?,
    };
    let region = app.region.clone();
    let rotated = blocking(move || region.rotate_seal(rotation)).await?;
    let mut seal = seal_json(&rotated.seal, None);
    seal["log_index"] = json!(rotated.registered_at);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "seal": seal,
            "revoked": {
                "kid": old.to_hex(),
                "revoked_from": rotated.revoked_from.seconds(),
                "log_index": rotated.revoked_at,
            },
        })),
    ))
}
