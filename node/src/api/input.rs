//! Request bodies, paths, queries and fields: JSON that fails to parse, is too large or has unknown
//! fields, a path parameter that does not decode and a query string that does not fit are refused
//! as problem+json, and every field is checked into a core type before a handler uses it.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::de::DeserializeOwned;
use tongban_core::ids::{Identifier, Uscc};
use tongban_core::keys::KeyId;
use tongban_core::values::{ShortText, Time};

use crate::refusal::{Kind, Refusal};

/// `Json<T>` whose rejections are problem responses with stable codes.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(BodyLimit(limit)) = req.extensions().get::<BodyLimit>().copied()
            && let Some(declared) = declared_over(req.headers(), limit)
        {
            return Err(refuse_oversized(req.into_body(), declared).await);
        }
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(refusal(&rejection)),
        }
    }
}

/// The largest body the router accepts, for extractors that check a declared length first.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

fn too_large() -> Refusal {
    Refusal::new(
        Kind::TooLarge,
        "TOO_LARGE",
        "request body larger than this node accepts",
    )
}

/// A body's declared length (`Content-Length`), when it is over `limit`.
fn declared_over(headers: &HeaderMap, limit: usize) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|length| *length > limit as u64)
}

/// The most of a refused body read before answering.
const DRAIN: u64 = 1 << 20;

/// Refuses a body whose declared length is over the limit, without waiting for one a client
/// may never send. A declared length up to [`DRAIN`] is read and dropped first (within the body
/// timeout): most clients send their whole body before they read the answer, and would meet a
/// closed connection instead of the 413; a larger one is refused at once.
async fn refuse_oversized(body: axum::body::Body, declared: u64) -> Refusal {
    if declared <= DRAIN {
        let _ = axum::body::to_bytes(body, DRAIN as usize).await;
    }
    too_large()
}
/// Whether an `E` is among the causes of `error`.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<E>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// A body that did not arrive in time (the server's body timeout, crate::serve).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    caused_by::<crate::serve::BodyTimeout>(error)
}

fn body_timeout() -> Refusal {
    Refusal::new(
        Kind::Timeout,
        "BODY_TIMEOUT",
        "the request body did not arrive in time",
    )
}

/// Reads a whole body of at most `limit` bytes (a declared larger one is refused before
/// reading): for routes that take raw bytes rather than JSON.
pub async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, Refusal> {
    if let Some(declared) = declared_over(headers, limit) {
        return Err(refuse_oversized(body, declared).await);
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if timed_out(&e) {
            body_timeout()
        } else if caused_by::<http_body_util::LengthLimitError>(&e) {
            too_large()
        } else {
            Refusal::new(Kind::Invalid, "MALFORMED_BODY", e.to_string())
        }
    })
}

/// The path's certificate identifier (`{id}`), checked: `IDENTIFIER_INVALID` when it is not one,
/// not valid UTF-8 once percent-decoded included.
pub struct CertId(pub Identifier);

impl<S: Send + Sync> FromRequestParts<S> for CertId {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        let text = path_text(parts, state).await.map_err(|detail| {
            Refusal::new(
                Kind::Invalid,
                tongban_core::Code::IdentifierInvalid.as_str(),
                format!("id: {detail}"),
            )
        })?;
        identifier(&text).map(CertId)
    }
}

/// The path's seal key id (`{kid}`), checked: `INVALID_REQUEST` when it is not 32 hex digits.
pub struct Kid(pub KeyId);

impl<S: Send + Sync> FromRequestParts<S> for Kid {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        let text = path_text(parts, state)
            .await
            .map_err(|detail| Refusal::invalid(format!("kid: {detail}")))?;
        kid("kid", &text).map(Kid)
    }
}

/// The route's one path parameter, percent-decoded; or the reason it is not, for a refusal.
async fn path_text<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<String, String> {
    match Path::<String>::from_request_parts(parts, state).await {
        Ok(Path(text)) => Ok(text),
        Err(rejection) => Err(rejection.body_text()),
    }
}

/// A closed query string (`T` denies unknown fields): anything that does not deserialize, an
/// unknown or repeated parameter included, is `400 MALFORMED_QUERY`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(Refusal::new(
                Kind::Invalid,
                "MALFORMED_QUERY",
                rejection.body_text(),
            )),
        }
    }
}

fn refusal(rejection: &JsonRejection) -> Refusal {
    if timed_out(rejection) {
        return body_timeout();
    }
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Refusal::new(
            Kind::Invalid,
            "CONTENT_TYPE",
            "send the body as application/json",
        ),
        _ => Refusal::new(Kind::Invalid, "MALFORMED_BODY", rejection.body_text()),
    }
}

pub fn time(field: &str, seconds: u64) -> Result<Time, Refusal> {
    Time::new(seconds).ok_or_else(|| Refusal::invalid(format!("{field}: not a time in range")))
}

pub fn optional_time(field: &str, seconds: Option<u64>) -> Result<Option<Time>, Refusal> {
    seconds.map(|s| time(field, s)).transpose()
}

pub fn short_text(field: &str, text: &str) -> Result<ShortText, Refusal> {
    ShortText::new(text).ok_or_else(|| {
        Refusal::invalid(format!(
            "{field}: 1–256 bytes of text without control characters"
        ))
    })
}

pub fn kid(field: &str, text: &str) -> Result<KeyId, Refusal> {
    KeyId::from_hex(text)
        .ok_or_else(|| Refusal::invalid(format!("{field}: a key id is 32 hex digits")))
}

pub fn identifier(text: &str) -> Result<Identifier, Refusal> {
    Identifier::parse(text).map_err(|e| {
        Refusal::new(
            Kind::Invalid,
            tongban_core::Code::IdentifierInvalid.as_str(),
            e.to_string(),
        )
    })
}

pub fn uscc(text: &str) -> Result<Uscc, Refusal> {
    Uscc::parse(text).map_err(|e| {
        Refusal::new(
            Kind::Invalid,
            tongban_core::Code::UsccInvalid.as_str(),
            e.to_string(),
        )
    })
}

/// A `nonce`: 32 hex digits (16 bytes), echoed in a verification receipt.
pub fn nonce_required(text: &str) -> Result<[u8; 16], Refusal> {
    hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .ok_or_else(|| Refusal::invalid("nonce: 32 hex digits"))
}

/// An optional `nonce`, as [`nonce_required`].
pub fn nonce(text: Option<&str>) -> Result<Option<[u8; 16]>, Refusal> {
    text.map(nonce_required).transpose()
}

pub fn base64(field: &str, text: &str) -> Result<Vec<u8>, Refusal> {
    B64.decode(text)
        .map_err(|_| Refusal::invalid(format!("{field}: not standard base64")))
}
