//! Request bodies and fields: JSON that fails to parse, is too large or has unknown fields is
//! refused as problem+json, and every field is checked into a core type before a handler uses it.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
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
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(refusal(&rejection)),
        }
    }
}

fn refusal(rejection: &JsonRejection) -> Refusal {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Refusal::new(
            Kind::TooLarge,
            "TOO_LARGE",
            "request body larger than this node accepts",
        ),
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
    hex::decode(text)
        .ok()
        .and_then(|b| KeyId::from_slice(&b))
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

pub fn base64(field: &str, text: &str) -> Result<Vec<u8>, Refusal> {
    B64.decode(text)
        .map_err(|_| Refusal::invalid(format!("{field}: not standard base64")))
}
