//! The federation's HTTP routes (specs/federation.md, specs/api.yaml): its status, the
//! federation-wide trust bundle, the membership, this region's cosigned checkpoint, replica
//! progress (with an optional wait), the C2SP tlog-witness endpoint, and the operator's way to
//! hand the node a new membership version.

use super::status::StatusData;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tongban_core::federation::Reason;
use tongban_core::federation::witness::MAX_REQUEST;
use tongban_core::ids::RegionCode;

use super::Federation;
use super::swarm::Command;
use super::worker::WitnessAnswer;
use crate::api::input::{Query, read_body};
use crate::credentials::Principal;
use crate::refusal::{Kind, Refusal};

/// The longest a progress request may wait.
const MAX_WAIT_MS: u64 = 30_000;

pub fn router(federation: Arc<Federation>) -> Router {
    Router::new()
        .route("/v1/federation/status", get(status))
        .route("/v1/federation/trust-bundle", get(trust_bundle))
        .route("/v1/federation/membership", get(membership))
        .route("/v1/federation/checkpoint", get(cosigned))
        .route("/v1/federation/regions/{rc}", get(region))
        .route("/v1/federation/status-snapshots/{rc}", get(status_snapshot))
        .route("/v1/federation/status-lists/{rc}", get(status_list))
        .route("/v1/admin/federation/membership", post(new_membership))
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(2 << 20))
        .with_state(federation)
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    Refusal::internal(e.to_string())
}

async fn status(State(f): State<Arc<Federation>>) -> Result<Json<Value>, Refusal> {
    let (reply, answer) = oneshot::channel();
    f.commands
        .send(Command::Status(reply))
        .map_err(|_| Refusal::new(Kind::Unavailable, "P2P_STOPPED", "the swarm stopped"))?;
    let swarm = answer
        .await
        .map_err(|_| Refusal::new(Kind::Unavailable, "P2P_STOPPED", "the swarm stopped"))?;
    let membership = f.membership();
    let misbehaving = f.misbehaviours();
    let mut regions = serde_json::Map::new();
    // (region, origin) of each replica, for the witness sizes read once the replicas are free.
    let mut origins = Vec::new();
    {
        let replicas = f.replicas().map_err(internal)?;
        for (code, slot) in replicas.iter() {
            let origin = slot.member.origin(&f.name);
            origins.push((code.to_string(), origin.clone()));
            regions.insert(
                code.to_string(),
                json!({
                    "origin": origin,
                    "size": slot.replica.size(),
                    "verified_checkpoint": slot.verified.as_ref().map(|(c, _)| c.size),
                    "latest_checkpoint": slot.latest.as_ref().map(|(c, _)| c.size),
                    "misbehaving": misbehaving.get(code.as_str()),
                }),
            );
        }
    }
    let witnessed = f
        .store
        .off_thread(move |store| {
            origins
                .into_iter()
                .map(|(code, origin)| Ok((code, store.witnessed(&origin)?.map(|w| w.size))))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(internal)?;
    for (code, size) in witnessed {
        if let Some(region) = regions.get_mut(&code) {
            region["witnessed"] = json!(size);
        }
    }
    Ok(Json(json!({
        "federation": f.name,
        "region": f.own.as_str(),
        "peer_id": swarm.peer_id,
        "listening": swarm.listening,
        "connected": swarm.connected,
        "membership_version": membership.version,
        "quorum": membership.quorum,
        "regions": regions,
        "misbehaving": misbehaving,
    })))
}

fn cose(bytes: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/cose; cose-type=\"cose-sign1\"",
        )],
        bytes,
    )
        .into_response()
}

async fn trust_bundle(State(f): State<Arc<Federation>>) -> Result<Response, Refusal> {
    let bundle = tokio::task::spawn_blocking(move || f.trust_bundle())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(cose(bundle.as_ref().clone()))
}

/// A member's status snapshot, signed by its root (trust.md §6): `tongban-verify --status` loads
/// it with the federation trust bundle.
async fn status_snapshot(f: State<Arc<Federation>>, rc: Path<String>) -> Result<Response, Refusal> {
    let snapshot = status_data(f, rc, StatusData::Snapshot, "SNAPSHOT_UNAVAILABLE").await?;
    Ok(cose(snapshot))
}

/// A member's status list, signed by its root (status.md §5), for verifiers and caches.
async fn status_list(f: State<Arc<Federation>>, rc: Path<String>) -> Result<Response, Refusal> {
    let list = status_data(f, rc, StatusData::List, "STATUS_LIST_UNAVAILABLE").await?;
    Ok(crate::api::status_list_response(list))
}

async fn status_data(
    State(f): State<Arc<Federation>>,
    Path(rc): Path<String>,
    kind: StatusData,
    unavailable: &'static str,
) -> Result<Vec<u8>, Refusal> {
    let code = RegionCode::parse(&rc).map_err(|e| Refusal::invalid(e.to_string()))?;
    if f.membership().member(&code).is_none() {
        return Err(Refusal::not_found(format!("{rc} is not a member")));
    }
    f.status_data(kind, &code)
        .await
        .map_err(|e| Refusal::new(Kind::Unavailable, unavailable, e))
}

async fn membership(State(f): State<Arc<Federation>>) -> Response {
    cose(f.membership().bytes().to_vec())
}

async fn cosigned(State(f): State<Arc<Federation>>) -> Result<Response, Refusal> {
    let (_, note) = f
        .store
        .off_thread(|store| store.cosigned())
        .await
        .map_err(internal)?
        .ok_or_else(|| Refusal::not_found("no checkpoint has reached its quorum yet"))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Progress {
    min_size: Option<u64>,
    wait_ms: Option<u64>,
}

/// A replica's size; with `min_size` and `wait_ms`, answers once the replica holds that many
/// entries or the wait is over (what the revocation latency measurement uses).
async fn region(
    State(f): State<Arc<Federation>>,
    Path(rc): Path<String>,
    Query(query): Query<Progress>,
) -> Result<Json<Value>, Refusal> {
    let code = RegionCode::parse(&rc).map_err(|e| Refusal::invalid(e.to_string()))?;
    let mut watch = f
        .replicas()
        .map_err(internal)?
        .get(&code)
        .map(|s| s.progress.subscribe())
        .ok_or_else(|| Refusal::not_found(format!("no replica of {rc}")))?;
    if let Some(min) = query.min_size {
        let wait = Duration::from_millis(query.wait_ms.unwrap_or(0).min(MAX_WAIT_MS));
        let _ = tokio::time::timeout(wait, watch.wait_for(|size| *size >= min)).await;
    }
    let size = *watch.borrow();
    Ok(Json(json!({
        "region": rc,
        "size": size,
        "misbehaving": f.is_misbehaving(&rc),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMembership {
    /// The signed membership, standard base64.
    membership: String,
}

/// Largest new membership an operator may post (a few hundred members' descriptions).
const MAX_MEMBERSHIP_BODY: usize = 2 << 20;

async fn new_membership(
    State(f): State<Arc<Federation>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(crate::api::bearer)
        .ok_or_else(|| {
            Refusal::new(
                Kind::Unauthenticated,
                "TOKEN_MISSING",
                "this request needs the operator's token",
            )
        })?;
    match f.region.credentials.authenticate(token) {
        Some(Principal::Operator) => {}
        Some(_) => {
            return Err(Refusal::forbidden(
                "this request needs the operator's token",
            ));
        }
        None => {
            return Err(Refusal::new(
                Kind::Unauthenticated,
                "TOKEN_INVALID",
                "the token is not valid",
            ));
        }
    }
    let body = read_body(&headers, body, MAX_MEMBERSHIP_BODY).await?;
    let request: NewMembership =
        serde_json::from_slice(&body).map_err(|e| Refusal::invalid(e.to_string()))?;
    let signed = B64
        .decode(request.membership.as_bytes())
        .map_err(|_| Refusal::invalid("membership: not standard base64"))?;
    let federation = f.clone();
    let bytes = signed.clone();
    tokio::task::spawn_blocking(move || federation.on_membership(&bytes, None))
        .await
        .map_err(internal)?
        .map_err(|r| {
            let kind = match r.code {
                Reason::MembershipFork | Reason::MembershipNotExtending => Kind::Conflict,
                _ => Kind::Invalid,
            };
            Refusal::new(kind, r.code.as_str(), r.detail)
        })?;
    f.publish(tongban_core::federation::gossip::Body::Membership { signed });
    Ok(Json(json!({"membership_version": f.membership().version})))
}

/// C2SP tlog-witness `add-checkpoint`.
async fn add_checkpoint(
    State(f): State<Arc<Federation>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let plain = |status: StatusCode, text: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response()
    };
    let body = match read_body(&headers, body, MAX_REQUEST).await {
        Ok(body) => body,
        Err(refusal) => {
            let status = crate::api::status_of(refusal.kind);
            return plain(status, format!("{}: {}\n", refusal.code, refusal.detail));
        }
    };
    let witness = f.clone();
    let answer = tokio::task::spawn_blocking(move || witness.witness_add(&body)).await;
    if let Ok(WitnessAnswer::Refused(r)) = &answer
        && r.code.is_local()
    {
        f.local_failure("witness", r);
    }
    match answer {
        Ok(WitnessAnswer::Cosigned(lines)) => plain(StatusCode::OK, lines),
        Ok(WitnessAnswer::Conflict(size)) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format!("{size}\n"),
        )
            .into_response(),
        Ok(WitnessAnswer::Refused(r)) => {
            let status = match r.code {
                Reason::NotMember => StatusCode::NOT_FOUND,
                Reason::CheckpointInvalid => StatusCode::FORBIDDEN,
                Reason::ProofInvalid | Reason::CheckpointMismatch | Reason::Equivocation => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                Reason::Misbehaving => StatusCode::FORBIDDEN,
                Reason::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                // This node's own failure: the request may be fine.
                Reason::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            plain(status, format!("{}: {}\n", r.code, r.detail))
        }
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}
