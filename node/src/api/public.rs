//! Requests anyone may make: verification with receipts, trust and status documents, a
//! certificate's status and inclusion receipt, the audit documents, health and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use tongban_core::cert::{StatusView, Verification};
use tongban_core::ids::RegionCode;
use tongban_core::log::receipt::Receipt;
use tongban_core::log::verification::ReceiptItem;

use super::input::{self, Body, CertId, Query};
use super::{App, blocking, read};
use crate::metrics::{PhaseLabel, ResultLabel};
use crate::refusal::{Kind, Refusal};
use crate::region::Role;

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Sequencer => "sequencer",
        Role::Reader => "standby",
    }
}

pub async fn healthz(State(app): State<App>) -> Result<Json<Value>, Refusal> {
    let size = read(&app.region, |region| Ok(region.log().size()?)).await?;
    Ok(Json(json!({
        "status": "ok",
        "region": app.region.code().as_str(),
        "log_size": size,
        "role": role_name(app.region.role()),
    })))
}

/// `/healthz/sequencer`: 200 on the process that takes writes, `503 NOT_SEQUENCER` on a standby
/// (which serves reads and verification): what a load balancer checks before sending writes.
pub async fn healthz_sequencer(State(app): State<App>) -> Result<Json<Value>, Refusal> {
    if app.region.role() != Role::Sequencer {
        return Err(Refusal::not_sequencer());
    }
    healthz(State(app)).await
}

pub async fn metrics(State(app): State<App>) -> Result<Response, Refusal> {
    let size = read(&app.region, |region| Ok(region.log().size()?)).await?;
    app.metrics
        .log_size
        .set(i64::try_from(size).unwrap_or(i64::MAX));
    let reads = app.region.sequencer_reads();
    for (phase, rows) in [("ahead", reads.ahead), ("under_lock", reads.under_lock)] {
        app.metrics
            .sequencer_rows_read
            .get_or_create(&PhaseLabel { phase })
            .set(i64::try_from(rows).unwrap_or(i64::MAX));
    }
    let text = app
        .metrics
        .render()
        .map_err(|e| Refusal::internal(e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

pub async fn not_found() -> Refusal {
    Refusal::not_found("no such endpoint")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The certificate, standard base64.
    certificate: String,
    /// 16 bytes in hex, echoed in the signed receipt.
    nonce: Option<String>,
    /// The asking region, when another region asks.
    requester_region: Option<String>,
}

fn status_json(view: &StatusView) -> Value {
    match view {
        StatusView::Unknown => json!({"known": false}),
        StatusView::Valid { as_of } => json!({"known": true, "state": 1, "as_of": as_of.seconds()}),
        StatusView::Listed {
            state,
            since,
            as_of,
            ..
        } => {
            json!({"known": true, "state": state.code(), "state_name": state.name(), "since": since.map(|t| t.seconds()), "as_of": as_of.seconds()})
        }
    }
}

pub async fn verify(
    State(app): State<App>,
    Body(request): Body<VerifyRequest>,
) -> Result<Json<Value>, Refusal> {
    let bytes = input::base64("certificate", &request.certificate)?;
    let nonce = input::nonce(request.nonce.as_deref())?;
    let requester = request
        .requester_region
        .as_deref()
        .map(|r| {
            RegionCode::parse(r).map_err(|e| Refusal::invalid(format!("requester_region: {e}")))
        })
        .transpose()?;
    let (bytes, (verification, state)): (_, (Verification, _)) = read(&app.region, move |region| {
        region.verify(&bytes).map(|v| (bytes, v))
    })
    .await?;
    app.metrics
        .verified
        .get_or_create(&ResultLabel {
            code: verification.code.as_str().to_owned(),
        })
        .inc();
    let digest = verification
        .digest
        .unwrap_or_else(|| *blake3::hash(&bytes).as_bytes());
    let item = ReceiptItem {
        region: app.region.code().clone(),
        at: crate::region::now()?,
        digest,
        id: verification.claims.as_ref().map(|c| c.id.clone()),
        valid: verification.is_valid(),
        code: verification.code,
        state,
        requester: requester.clone(),
        nonce,
    }
    .encode()
    .map_err(|e| Refusal::internal(e.to_string()))?;
    let cross = requester.is_some_and(|r| &r != app.region.code());
    let receipt = app.receipts.receipt(item, cross).await?;
    let receipt = receipt
        .encode()
        .map_err(|e| Refusal::internal(e.to_string()))?;
    // The verdict rests on what was applied of the region's log before it was marked; the caller
    // still learns that the federation caught that region misbehaving (federation.md §6.4).
    let misbehaving = verification.claims.as_ref().is_some_and(|c| {
        app.federation
            .as_ref()
            .is_some_and(|f| f.is_misbehaving(c.region.as_str()))
    });
    Ok(Json(json!({
        "verdict": verification.verdict.as_str(),
        "code": verification.code.as_str(),
        "detail": verification.detail,
        "id": verification.claims.as_ref().map(|c| c.id.as_str().to_owned()),
        "status": status_json(&verification.status),
        "disclosed": verification.disclosed.iter().map(|(n, _)| n.as_str().to_owned()).collect::<Vec<_>>(),
        "receipt": B64.encode(receipt),
        "warnings": if misbehaving { vec!["REGION_MISBEHAVING"] } else { vec![] },
    })))
}

pub async fn trust_bundle(State(app): State<App>) -> Result<Response, Refusal> {
    let bundle = app.region.view()?.bundle.clone();
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/cose; cose-type=\"cose-sign1\"",
        )],
        bundle.as_ref().clone(),
    )
        .into_response())
}

pub async fn status_snapshot(State(app): State<App>) -> Result<Response, Refusal> {
    let region = app.region.clone();
    let snapshot = blocking(move || region.status_snapshot()).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/cose; cose-type=\"cose-sign1\"",
        )],
        snapshot,
    )
        .into_response())
}

/// This region's status list (specs/status.md §5).
pub async fn status_list(State(app): State<App>) -> Result<Response, Refusal> {
    let region = app.region.clone();
    let list = blocking(move || region.status_list()).await?;
    Ok(super::status_list_response(list.as_ref().clone()))
}

pub async fn log_vkey(State(app): State<App>) -> Result<Response, Refusal> {
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", app.region.log_vkey()?),
    )
        .into_response())
}

/// Most checkpoints one page of `/v1/audit/checkpoints` holds (about 200 bytes each).
pub const CHECKPOINT_PAGE: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointsQuery {
    /// Only checkpoints of tree sizes above this one.
    after: Option<u64>,
    /// At most this many (1 to [`CHECKPOINT_PAGE`]; default the most).
    limit: Option<usize>,
}

/// The checkpoints the log signed, oldest first, a page at a time: what `audit replay <node URL>`
/// checks. `next` (the last size of the page) is present while more may follow.
pub async fn checkpoints(
    State(app): State<App>,
    Query(query): Query<CheckpointsQuery>,
) -> Result<Json<Value>, Refusal> {
    let limit = query.limit.unwrap_or(CHECKPOINT_PAGE);
    if !(1..=CHECKPOINT_PAGE).contains(&limit) {
        return Err(Refusal::new(
            Kind::Invalid,
            "MALFORMED_QUERY",
            format!("limit must be 1 to {CHECKPOINT_PAGE}"),
        ));
    }
    let region = app.region.clone();
    let notes = blocking(move || Ok(region.log().checkpoints_after(query.after, limit)?)).await?;
    let full = notes.len() == limit;
    let next = notes.last().map(|(size, _)| *size).filter(|_| full);
    let notes: Vec<Value> = notes
        .into_iter()
        .map(|(size, note)| json!({"size": size, "note": String::from_utf8_lossy(&note)}))
        .collect();
    let mut page = json!({"checkpoints": notes});
    if let Some(next) = next {
        page["next"] = json!(next);
    }
    Ok(Json(page))
}

pub async fn status(State(app): State<App>, CertId(id): CertId) -> Result<Json<Value>, Refusal> {
    let asked = id.clone();
    let record = read(&app.region, move |region| region.certificate(&asked)).await?;
    Ok(Json(json!({
        "id": id.as_str(),
        "state": record.state.code(),
        "state_name": record.state.name(),
        "since": record.changed.seconds(),
        "reason": record.reason.as_ref().map(|r| r.as_str().to_owned()),
        "issued": record.issued.seconds(),
        "digest": hex::encode(record.digest),
        "predecessor": record.predecessor.as_ref().map(|p| p.as_str().to_owned()),
        "promise_deadline": record.promise_deadline.map(|t| t.seconds()),
        "promise_fulfilled": record.promise_fulfilled,
        "issued_at_index": record.issued_at_index,
        "changed_at_index": record.changed_at_index,
    })))
}

/// An offline receipt (C2SP tlog-proof) for the certificate's issuance entry, against a
/// checkpoint that covers it (signed now if the latest does not).
pub async fn receipt(State(app): State<App>, CertId(id): CertId) -> Result<Response, Refusal> {
    let record = read(&app.region, move |region| region.certificate(&id)).await?;
    let index = record.issued_at_index;
    let region = app.region.clone();
    let text = blocking(move || {
        let log = region.log();
        let covered = log.last_checkpoint()?.is_some_and(|(size, _)| size > index);
        if !covered {
            region.checkpoint()?;
        }
        let (size, note) = log.last_checkpoint()?.ok_or_else(|| {
            Refusal::new(Kind::Unavailable, "CHECKPOINT_REFUSED", "no checkpoint")
        })?;
        if size <= index {
            return Err(Refusal::new(
                Kind::Unavailable,
                "CHECKPOINT_REFUSED",
                "the entry is not yet durable",
            ));
        }
        let entry = log
            .entry(index)?
            .ok_or_else(|| Refusal::internal("the issuance entry is missing"))?;
        Ok(Receipt {
            entry,
            index,
            proof: log.inclusion_proof(index, size)?,
            checkpoint: String::from_utf8(note)
                .map_err(|_| Refusal::internal("checkpoint is not UTF-8"))?,
        }
        .to_text())
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// `GET /v1/report/month`: this region's figures for the current month (China Standard Time),
/// counted live from its durable log by the code `tongban-verify audit report` uses
/// (specs/log.md §7.2): what the node's page shows.
pub async fn month_report(State(app): State<App>) -> Result<Json<Value>, Refusal> {
    let region = app.region.clone();
    let (month, tally) = super::blocking(move || {
        let now = crate::region::now()?;
        region.month_report(now)
    })
    .await?;
    let figures: serde_json::Map<String, Value> = tally
        .figures()
        .into_iter()
        .map(|(name, value)| (name, json!(value)))
        .collect();
    Ok(Json(json!({
        "region": app.region.code().as_str(),
        "month": month.to_string(),
        "time_zone": "UTC+08:00",
        "figures": figures,
        "first_index": tally.first_index,
        "last_index": tally.last_index,
    })))
}
