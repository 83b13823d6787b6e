//! The log over HTTP as C2SP tlog-tiles (specs/log.md §5): `/checkpoint`, `/tile/<L>/<N>[.p/<W>]`
//! and `/tile/entries/<N>[.p/<W>]`, so standard tile clients and auditors can read it. The node's
//! HTTP API mounts this router.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tongban_core::log::tiles::{TILE_WIDTH, TilePath};

use crate::log::{Log, LogError};

/// Full tiles never change: caches may keep them for good. Partial tiles and the checkpoint grow.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const FRESH: &str = "no-cache";

pub fn router(log: Log) -> Router {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        // Like the rest of the API: a problem document and an `Allow` header.
        .method_not_allowed_fallback(crate::api::method_not_allowed)
        .with_state(log)
}

fn failure(error: LogError) -> Response {
    match error {
        LogError::BeyondSize { .. } | LogError::InvalidArgument(_) => {
            (StatusCode::NOT_FOUND, "no such tile in this tree\n").into_response()
        }
        other => {
            tracing::error!(error = %other, "reading the log for a tile request");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the log could not be read\n",
            )
                .into_response()
        }
    }
}

/// Runs a read of the log off the async threads (redb reads block on the disk).
async fn blocking<T: Send + 'static>(
    log: Log,
    read: impl FnOnce(&Log) -> Result<T, LogError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(move || read(&log)).await {
        Ok(result) => result.map_err(failure),
        Err(join) => {
            tracing::error!(error = %join, "a log read task failed");
            Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "the log could not be read\n",
            )
                .into_response())
        }
    }
}

async fn checkpoint(State(log): State<Log>) -> Response {
    match blocking(log, Log::last_checkpoint).await {
        Ok(Some((_, note))) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, FRESH),
            ],
            note,
        )
            .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no checkpoint signed yet\n").into_response(),
        Err(response) => response,
    }
}

/// Parses the raw (still percent-encoded) path, so an encoded spelling such as `0%2F000` is not a
/// second URL for a tile.
async fn tile(State(log): State<Log>, uri: Uri) -> Response {
    let Some(tile) = uri.path().strip_prefix("/tile/").and_then(TilePath::parse) else {
        return (StatusCode::NOT_FOUND, "not a tile path\n").into_response();
    };
    let read = move |log: &Log| match tile.level {
        Some(level) => log.hash_tile(level, tile.index, tile.width),
        None => log.entry_bundle(tile.index, tile.width),
    };
    let cache = if tile.width == TILE_WIDTH {
        IMMUTABLE
    } else {
        FRESH
    };
    match blocking(log, read).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CACHE_CONTROL, cache),
            ],
            bytes,
        )
            .into_response(),
        Err(response) => response,
    }
}
