//! Requests between the processes of one node (PostgreSQL, a sequencer and its standbys): a
//! standby's verification receipts, which only the sequencer can log (receipts/forward.rs).
//! Authenticated by the token derived from the node's key ([`internal_token`]), which only the
//! node's processes hold.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use tongban_core::log::verification::ReceiptItem;

use super::input::{self, Body};
use super::{App, bearer, refuse_auth};
use crate::receipts::internal_token;
use crate::refusal::{Kind, Refusal};

/// Another process of this node: an extractor that refuses every other caller.
pub struct Sibling;

impl FromRequestParts<App> for Sibling {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Refusal> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(bearer)
            .ok_or_else(|| {
                refuse_auth(
                    app,
                    "missing",
                    Refusal::new(
                        Kind::Unauthenticated,
                        "TOKEN_MISSING",
                        "this request needs the node's internal token",
                    ),
                )
            })?;
        // Compared as hashes: blake3::Hash compares in constant time.
        let expected = internal_token(&app.region.node_key);
        match blake3::hash(presented.as_bytes()) == blake3::hash(expected.as_bytes()) {
            true => Ok(Sibling),
            false => Err(refuse_auth(
                app,
                "unknown",
                Refusal::new(
                    Kind::Unauthenticated,
                    "TOKEN_INVALID",
                    "the token is not this node's internal token",
                ),
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardedReceipt {
    /// The verification's receipt item (log.md §8), base64.
    item: String,
    cross_region: bool,
}

/// `POST /v1/internal/receipts`: a receipt for an item a standby verified, logged in this
/// sequencer's next receipts batch.
pub async fn receipt(
    _: Sibling,
    State(app): State<App>,
    Body(request): Body<ForwardedReceipt>,
) -> Result<Json<Value>, Refusal> {
    let item = input::base64("item", &request.item)?;
    let decoded = ReceiptItem::decode(&item)
        .map_err(|f| Refusal::invalid(format!("item: not a receipt item: {f:?}")))?;
    if &decoded.region != app.region.code() {
        return Err(Refusal::invalid("item: another region's verification"));
    }
    let receipt = app.receipts.receipt(item, request.cross_region).await?;
    let receipt = receipt
        .encode()
        .map_err(|e| Refusal::internal(e.to_string()))?;
    Ok(Json(json!({"receipt": B64.encode(receipt)})))
}
