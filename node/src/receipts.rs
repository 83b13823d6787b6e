//! Verification receipts signed per batch (specs/log.md §8): a collector thread gathers the
//! verifications of a short window into one tree and logs its root; a completer thread waits for
//! that entry to be durable and hands each verifier its receipt. While one batch waits for its
//! fsync the next one gathers, so signing and syncing never cap verification throughput.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tongban_core::log::verification::{Batch, VerificationReceipt, batch};

use crate::log::Pending;
use crate::refusal::{Kind, Refusal};
use crate::region::Region;

type Reply = oneshot::Sender<Result<VerificationReceipt, Refusal>>;

struct Request {
    item: Vec<u8>,
    cross_region: bool,
    reply: Reply,
}

struct Logged {
    items: Vec<Vec<u8>>,
    replies: Vec<Reply>,
    paths: Vec<Vec<[u8; 32]>>,
    entry: Vec<u8>,
    index: u64,
    pending: Pending<std::ops::Range<u64>>,
}

/// The handle verifiers ask for receipts through.
#[derive(Clone)]
pub struct Receipts {
    requests: SyncSender<Request>,
}

impl Receipts {
    /// Starts the collector and completer threads for `region`.
    pub fn start(region: Arc<Region>) -> std::io::Result<Receipts> {
        let window = Duration::from_micros(region.config.receipts.window_us);
        let max = region.config.receipts.max_batch.max(1);
        let (requests, incoming) = sync_channel::<Request>(max * 4);
        let (logged, completing) = sync_channel::<Logged>(4);
        let collector_region = region.clone();
        std::thread::Builder::new()
            .name("tongban-receipts".into())
            .spawn(move || collect(&collector_region, &incoming, &logged, window, max))?;
        std::thread::Builder::new()
            .name("tongban-receipts-done".into())
            .spawn(move || complete(&region, &completing))?;
        Ok(Receipts { requests })
    }

    /// A receipt for `item`, once the batch that holds it is durable in the log.
    pub async fn receipt(
        &self,
        item: Vec<u8>,
        cross_region: bool,
    ) -> Result<VerificationReceipt, Refusal> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            item,
            cross_region,
            reply,
        };
        // The channel is bounded: a full one pushes back on verifiers rather than growing.
        match self.requests.try_send(request) {
            Ok(()) => {}
            Err(TrySendError::Full(request)) => {
                let requests = self.requests.clone();
                tokio::task::spawn_blocking(move || requests.send(request))
                    .await
                    .map_err(|e| Refusal::internal(e.to_string()))?
                    .map_err(|_| stopped())?;
            }
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Refusal {
    Refusal::new(
        Kind::Unavailable,
        "RECEIPTS_UNAVAILABLE",
        "the receipt signer has stopped",
    )
}

fn collect(
    region: &Region,
    incoming: &Receiver<Request>,
    logged: &SyncSender<Logged>,
    window: Duration,
    max: usize,
) {
    while let Ok(first) = incoming.recv() {
        let deadline = Instant::now() + window;
        let mut requests = vec![first];
        while requests.len() < max {
            match incoming.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(request) => requests.push(request),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let cross = requests.iter().filter(|r| r.cross_region).count() as u64;
        let (items, replies): (Vec<_>, Vec<_>) =
            requests.into_iter().map(|r| (r.item, r.reply)).unzip();
        let result =
            batch(&items)
                .map_err(Refusal::from_failure)
                .and_then(|Batch { root, paths }| {
                    region
                        .log_receipts(items.len() as u64, root, cross)
                        .map(|(entry, index, pending)| (paths, entry, index, pending))
                });
        match result {
            Ok((paths, entry, index, pending)) => {
                let batch = Logged {
                    items,
                    replies,
                    paths,
                    entry,
                    index,
                    pending,
                };
                if logged.send(batch).is_err() {
                    return;
                }
            }
            Err(refusal) => {
                tracing::error!(error = %refusal, "a receipt batch could not be logged");
                for reply in replies {
                    let _ = reply.send(Err(refusal.clone()));
                }
            }
        }
    }
}

fn complete(region: &Region, completing: &Receiver<Logged>) {
    while let Ok(batch) = completing.recv() {
        match region.receipts_durable(batch.index, batch.pending) {
            Ok(log_index) => {
                for (i, ((item, path), reply)) in batch
                    .items
                    .into_iter()
                    .zip(batch.paths)
                    .zip(batch.replies)
                    .enumerate()
                {
                    // A verifier that gave up has dropped its receiver; nothing to tell it.
                    let _ = reply.send(Ok(VerificationReceipt {
                        item,
                        index: i as u64,
                        path,
                        entry: batch.entry.clone(),
                        log_index,
                    }));
                }
            }
            Err(refusal) => {
                for reply in batch.replies {
                    let _ = reply.send(Err(refusal.clone()));
                }
            }
        }
    }
}
