//! A standby's verification receipts: the item of each verification it answers is sent to the
//! region's sequencer, which batches and logs it with its own and answers the receipt (only the
//! sequencer writes the log). The sequencer announces where it answers in the database
//! (`Storage::announce_sequencer`); the two processes of one node know each other by a token
//! derived from the node's key, which both hold and nobody else does.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tongban_core::keys::SecretKey;
use tongban_core::log::verification::VerificationReceipt;

use crate::refusal::{Kind, Refusal};
use crate::region::Region;
use crate::storage::LogName;

/// How long a forwarded receipt may take: the sequencer answers once its batch is durable.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most a sequencer's answer may hold (a receipt is a few hundred bytes).
const MAX_ANSWER: usize = 64 * 1024;

/// The token a node's processes present to each other (`POST /v1/internal/receipts`).
pub fn internal_token(node_key: &SecretKey) -> String {
    hex::encode(blake3::derive_key(
        "tongban-node 2026-12 internal requests",
        node_key.seed(),
    ))
}

pub(super) struct Forwarder {
    region: Arc<Region>,
    client: Client<HttpConnector, Full<Bytes>>,
    token: String,
    /// Where the sequencer answers, as last read from the database; read again after a
    /// failure (a take-over moves it).
    sequencer: Mutex<Option<String>>,
}

#[derive(Deserialize)]
struct Answer {
    receipt: String,
}

fn unavailable(detail: impl Into<String>) -> Refusal {
    Refusal::new(Kind::Unavailable, "RECEIPTS_UNAVAILABLE", detail)
}

impl Forwarder {
    pub(super) fn new(region: Arc<Region>) -> Forwarder {
        Forwarder {
            token: internal_token(&region.node_key),
            client: Client::builder(TokioExecutor::new()).build_http(),
            region,
            sequencer: Mutex::new(None),
        }
    }

    fn remembered(&self) -> Option<String> {
        self.sequencer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn remember(&self, url: Option<String>) {
        *self
            .sequencer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = url;
    }

    /// Where the sequencer answers: remembered, or read from the database.
    async fn sequencer_url(&self) -> Result<String, Refusal> {
        if let Some(url) = self.remembered() {
            return Ok(url);
        }
        let storage = self.region.storage().clone();
        let url = tokio::task::spawn_blocking(move || storage.sequencer_url(&LogName::Region))
            .await
            .map_err(|e| Refusal::internal(e.to_string()))??
            .ok_or_else(|| unavailable("no sequencer has said where it answers"))?;
        self.remember(Some(url.clone()));
        Ok(url)
    }

    pub(super) async fn receipt(
        &self,
        item: Vec<u8>,
        cross_region: bool,
    ) -> Result<VerificationReceipt, Refusal> {
        let answered = self.ask(item, cross_region).await;
        if answered.is_err() {
            self.remember(None);
        }
        answered
    }

    async fn ask(&self, item: Vec<u8>, cross_region: bool) -> Result<VerificationReceipt, Refusal> {
        let url = self.sequencer_url().await?;
        let body = serde_json::json!({"item": B64.encode(&item), "cross_region": cross_region});
        let request = Request::post(format!("{url}/v1/internal/receipts"))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| Refusal::internal(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| unavailable(format!("the sequencer at {url}: {e}")))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| unavailable(format!("the sequencer's answer: {e}")))?
                .to_bytes();
            Ok::<_, Refusal>((status, body))
        };
        let (status, body) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| unavailable(format!("the sequencer at {url} did not answer in time")))??;
        if status != StatusCode::OK {
            return Err(unavailable(format!(
                "the sequencer answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("the sequencer's answer: {e}")))?;
        let bytes = B64
            .decode(answer.receipt)
            .map_err(|e| unavailable(format!("the sequencer's receipt: {e}")))?;
        VerificationReceipt::decode(&bytes)
            .map_err(|f| unavailable(format!("the sequencer's receipt: {f:?}")))
    }
}
