//! A node that finds another process writing its region's log (several processes on one
//! PostgreSQL database) stands by: it serves reads and verification from the database (its
//! region opened to read, `Region::open_reader`; receipts forwarded to the sequencer), answers
//! every write `503 NOT_SEQUENCER` so that clients and load balancers go to the sequencer, and
//! waits for the log's writer lock. When the sequencer stops or dies, the server ends its
//! session and frees the lock, and the standby opens the region to write and serves in its
//! place.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::refusal::Refusal;
use crate::serve::Limits;
use crate::storage::{LogName, Storage};

/// Every request to a standby that could not open its region to read.
pub async fn not_sequencer() -> Response {
    let mut response = Refusal::not_sequencer().into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Serves `router` as a standby on `listener` until the region's log is free (true) or
/// `shutdown` completes (false).
pub async fn serve_until_free(
    listener: TcpListener,
    storage: Storage,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> bool {
    let freed = Arc::new(AtomicBool::new(false));
    let until = {
        let freed = freed.clone();
        async move {
            let wait = tokio::task::spawn_blocking(move || storage.wait_for_log(&LogName::Region));
            tokio::select! {
                waited = wait => match waited {
                    Ok(Ok(())) => freed.store(true, Ordering::Release),
                    Ok(Err(e)) => tracing::error!(error = %e, "waiting for the region's log"),
                    Err(e) => tracing::error!(error = %e, "the standby's wait failed"),
                },
                () = shutdown => {}
            }
        }
    };
    crate::serve::serve(listener, router, limits, metrics, until).await;
    freed.load(Ordering::Acquire)
}
