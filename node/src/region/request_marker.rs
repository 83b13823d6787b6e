//! The request row a region write carries into the log with its entries: an idempotency key's
//! "this request's act is being logged" marker (node/src/api/idempotency.rs), written in the same
//! transaction as the act, so that a retry after the process died between the act's commit and
//! the answer's record finds the act logged and never makes it a second time.
//!
//! The API sets it around the blocking call that serves the request ([`carrying`]); the first
//! submission the sequencer makes on that thread takes it ([`take`]). A thread-local because the
//! region's write functions are many and the marker concerns none of them but the submission
//! they all end in.

use std::cell::RefCell;

use crate::log::RequestRow;
use crate::refusal::Refusal;

thread_local! {
    static MARKER: RefCell<Option<RequestRow>> = const { RefCell::new(None) };
}

/// Runs `work` with `marker` for the first submission it makes, and forgets the marker after
/// (a request that logged nothing leaves nothing for the next request on this thread).
pub fn carrying<T>(marker: Option<RequestRow>, work: impl FnOnce() -> T) -> T {
    /// Forgets the marker however `work` ends: a panic unwinds through it too, and the
    /// blocking pool's thread lives on to serve other requests.
    struct Forget;
    impl Drop for Forget {
        fn drop(&mut self) {
            MARKER.with(|m| m.borrow_mut().take());
        }
    }
    MARKER.with(|m| *m.borrow_mut() = marker);
    let _forget = Forget;
    work()
}

/// Runs `work` on a blocking thread (off the async workers, which must not wait on storage),
/// carrying `marker` there.
pub async fn on_blocking_thread<T: Send + 'static>(
    marker: Option<RequestRow>,
    work: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(move || carrying(marker, work))
        .await
        .map_err(|e| Refusal::internal(format!("a worker failed: {e}")))?
}

/// The marker of the request this thread serves, once.
pub(super) fn take() -> Vec<RequestRow> {
    MARKER.with(|m| m.borrow_mut().take()).into_iter().collect()
}
