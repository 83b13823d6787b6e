//! `Idempotency-Key` on every write (the IETF httpapi draft's header): a client that sends a
//! write again with the same key, after a lost answer or a take-over, gets the first answer
//! again and the act is never made twice.
//!
//! Keys are scoped to the caller (a digest of the `Authorization` header; requests without one,
//! and answers `401`, are not kept) and kept 24 hours,
//! in the log's request table (beside the entries, in the same store: the answer survives a
//! restart and is seen by a standby that takes over). For each keyed write:
//!
//! 1. One request per key at a time in this process (`409 IDEMPOTENCY_KEY_IN_USE`).
//! 2. A recorded answer is replayed (same status and body, `Idempotent-Replayed: true`) when the
//!    request is the same (method, path and body digest); another request under the same key is
//!    `422 IDEMPOTENCY_KEY_REUSED`.
//! 3. Otherwise the request runs, carrying a marker that the sequencer writes in the same
//!    transaction as the act it logs (region::request_marker); the answer, unless a server error,
//!    is then recorded over the marker before it is sent.
//! 4. A marker without an answer means the process died between the act's commit and the
//!    answer's record: the act is logged, so it is not made again; the retry is answered `409
//!    IDEMPOTENCY_INTERRUPTED` (look the outcome up: the certificate, its status).

use std::collections::HashSet;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::input::read_body;
use super::{App, blocking};
use crate::log::RequestRow;
use crate::refusal::{Kind, Refusal};

/// How long a key's answer is kept.
const KEPT_SECONDS: u64 = 24 * 3600;
/// The largest answer recorded (every write's answer is far smaller).
const MAX_ANSWER: usize = 1 << 20;
/// The longest key accepted.
const MAX_KEY: usize = 255;
/// What the request table's keys of idempotency rows start with.
const ROW_PREFIX: &[u8] = b"idempotency\0";

tokio::task_local! {
    /// The marker of the keyed write this task serves, for `blocking` to hand to the region.
    static MARKER: Option<RequestRow>;
}

/// The marker of the keyed write the current task serves, if any.
pub(super) fn marker() -> Option<RequestRow> {
    MARKER.try_with(Clone::clone).ok().flatten()
}

/// The keys of this process's keyed writes in progress.
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<Vec<u8>>>);

/// A key claimed by one request, released when dropped.
struct Claim<'a> {
    in_flight: &'a InFlight,
    key: Vec<u8>,
}

impl InFlight {
    fn claim(&self, key: &[u8]) -> Option<Claim<'_>> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(key.to_vec()).then(|| Claim {
            in_flight: self,
            key: key.to_vec(),
        })
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut held = self.in_flight.0.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.key);
    }
}

/// What the request table keeps under a key.
#[derive(Serialize, Deserialize)]
struct Record {
    /// BLAKE3 of the method, path and body, hex.
    request: String,
    /// The answer, once recorded: none while only the marker is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<Answer>,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    /// The body, base64.
    body: String,
}

/// The key as sent (a bare token or an RFC 8941 string), checked.
fn key_of(value: &HeaderValue) -> Result<&[u8], Refusal> {
    let raw = value.as_bytes();
    let key = match raw {
        [b'"', inner @ .., b'"'] => inner,
        _ => raw,
    };
    if key.is_empty() || key.len() > MAX_KEY || !key.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(Refusal::new(
            Kind::Invalid,
            "IDEMPOTENCY_KEY_INVALID",
            format!("Idempotency-Key: 1 to {MAX_KEY} visible ASCII characters"),
        ));
    }
    Ok(key)
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The middleware: keyed POSTs as the module says; everything else passes through.
pub(super) async fn layer(State(app): State<App>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get("idempotency-key").cloned() else {
        return next.run(request).await;
    };
    // Keys are the caller's: an anonymous request (a verification) is answered without one,
    // so nobody can make the node write a row per request by sending keys.
    if !request.headers().contains_key(header::AUTHORIZATION) {
        return next.run(request).await;
    }
    let key = match key_of(&value) {
        Ok(key) => key,
        Err(refused) => return refused.into_response(),
    };
    let (parts, body) = request.into_parts();
    let bytes = match read_body(&parts.headers, body, app.region.config.http.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused.into_response(),
    };
    let row_key = {
        let caller = parts
            .headers
            .get(header::AUTHORIZATION)
            .map_or(&b""[..], HeaderValue::as_bytes);
        let mut row_key = ROW_PREFIX.to_vec();
        row_key.extend_from_slice(blake3::hash(caller).as_bytes());
        row_key.extend_from_slice(key);
        row_key
    };
    let fingerprint = {
        let mut hasher = blake3::Hasher::new();
        for part in [
            parts.method.as_str().as_bytes(),
            parts.uri.path().as_bytes(),
            parts.uri.query().unwrap_or("").as_bytes(),
        ] {
            hasher.update(&(part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hasher.update(&bytes);
        hasher.finalize().to_hex().to_string()
    };
    let Some(_claim) = app.in_flight.claim(&row_key) else {
        return Refusal::new(
            Kind::Conflict,
            "IDEMPOTENCY_KEY_IN_USE",
            "a request with this Idempotency-Key is in progress",
        )
        .into_response();
    };
    let stored = {
        let (log, row_key) = (app.region.log().clone(), row_key.clone());
        blocking(move || Ok(log.request_row(&row_key)?)).await
    };
    match stored {
        Err(refused) => return refused.into_response(),
        Ok(Some((_, record))) => return replay(&record, &fingerprint),
        Ok(None) => {}
    }
    let created = now_seconds();
    let marker = RequestRow {
        key: row_key.clone(),
        created,
        record: encode(&Record {
            request: fingerprint.clone(),
            answer: None,
        }),
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let response = MARKER.scope(Some(marker), next.run(request)).await;
    // Neither a server error (the write may be sent again) nor a token refused (not a caller
    // whose keys are kept) is recorded.
    if response.status().is_server_error() || response.status() == StatusCode::UNAUTHORIZED {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, MAX_ANSWER).await {
        Ok(body) => body,
        Err(e) => return Refusal::internal(format!("reading the answer: {e}")).into_response(),
    };
    let record = Record {
        request: fingerprint,
        answer: Some(Answer {
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: STANDARD.encode(&body),
        }),
    };
    let row = RequestRow {
        key: row_key,
        created,
        record: encode(&record),
    };
    let log = app.region.log().clone();
    let prune_before = created.saturating_sub(KEPT_SECONDS);
    if let Err(e) = blocking(move || Ok(log.record_request(row, prune_before)?)).await {
        // The act is done and its answer goes out; a retry finds the marker (or, for a write
        // that logs nothing, runs again and is refused as a duplicate by the act's own rules).
        tracing::error!(error = %e.detail, "recording an idempotent answer failed");
    }
    Response::from_parts(parts, Body::from(body))
}

fn encode(record: &Record) -> Vec<u8> {
    // A struct of strings and numbers always serialises.
    serde_json::to_vec(record).unwrap_or_default()
}

/// The answer to a request whose key has a record.
fn replay(record: &[u8], fingerprint: &str) -> Response {
    let record: Record = match serde_json::from_slice(record) {
        Ok(record) => record,
        Err(e) => {
            return Refusal::internal(format!("a stored request record: {e}")).into_response();
        }
    };
    if record.request != fingerprint {
        return Refusal::new(
            Kind::Unprocessable,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used for another request",
        )
        .into_response();
    }
    let Some(answer) = record.answer else {
        return Refusal::new(
            Kind::Conflict,
            "IDEMPOTENCY_INTERRUPTED",
            "the request with this Idempotency-Key was logged but the node stopped before its \
             answer was recorded: it is not made again; look its outcome up",
        )
        .into_response();
    };
    let body = match STANDARD.decode(answer.body) {
        Ok(body) => body,
        Err(e) => return Refusal::internal(format!("a stored answer: {e}")).into_response(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        axum::http::StatusCode::from_u16(answer.status).unwrap_or(axum::http::StatusCode::OK);
    let headers = response.headers_mut();
    if let Some(value) = answer
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
