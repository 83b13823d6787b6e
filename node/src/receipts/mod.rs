//! Verification receipts signed per batch (specs/log.md §8): a collector thread gathers
//! verifications into one tree and logs its root; a completer thread waits for that entry to be
//! durable and hands each verifier its receipt.
//!
//! At most `in_flight` batches wait for the log at once; the collector cuts the next one once a
//! slot is free and its window (`window_us` after its first verification) has passed, with every
//! verification that queued meanwhile. Under load batches grow instead of waits, so signing and
//! syncing never cap verification throughput; with one slot and no window, a lone verification
//! waits for one commit only.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
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

/// A batch's permission to wait for the log; handed back once it is durable (or failed).
struct Slot(SyncSender<()>);

impl Drop for Slot {
    fn drop(&mut self) {
        // The channel has room for every slot, so this never blocks; a closed one means the
        // collector has stopped and needs no slot back.
        let _ = self.0.try_send(());
    }
}

mod forward;

pub use forward::internal_token;

/// The handle verifiers ask for receipts through.
#[derive(Clone)]
pub struct Receipts(Signer);

/// Who signs the receipts: this process (the sequencer), or the sequencer a standby forwards to.
#[derive(Clone)]
enum Signer {
    Here(SyncSender<Request>),
    Forwarded(Arc<forward::Forwarder>),
}

impl Receipts {
    /// Starts the collector and completer threads for `region`.
    pub fn start(region: Arc<Region>) -> std::io::Result<Receipts> {
        let window = Duration::from_micros(region.config.receipts.window_us);
        let max = region.config.receipts.max_batch.max(1);
        let in_flight = region.config.receipts.in_flight.max(1);
        let (requests, incoming) = sync_channel::<Request>(max * 4);
        let (logged, completing) = sync_channel::<(Logged, Slot)>(in_flight);
        let (free, slots) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            free.try_send(())
                .map_err(|_| std::io::Error::other("receipt slots"))?;
        }
        let collector_region = region.clone();
        let batches = Batches {
            incoming,
            slots,
            free,
            logged,
            window,
            max,
        };
        std::thread::Builder::new()
            .name("tongban-receipts".into())
            .spawn(move || batches.collect(&collector_region))?;
        std::thread::Builder::new()
            .name("tongban-receipts-done".into())
            .spawn(move || complete(&region, &completing))?;
        Ok(Receipts(Signer::Here(requests)))
    }

    /// Receipts for a standby: each verification's item is sent to the sequencer (found in the
    /// database, where it announces itself), which batches and logs it like its own.
    pub fn forwarded(region: Arc<Region>) -> Receipts {
        Receipts(Signer::Forwarded(Arc::new(forward::Forwarder::new(region))))
    }

    /// A receipt for `item`, once the batch that holds it is durable in the log.
    pub async fn receipt(
        &self,
        item: Vec<u8>,
        cross_region: bool,
    ) -> Result<VerificationReceipt, Refusal> {
        match &self.0 {
            Signer::Here(requests) => receipt_here(requests, item, cross_region).await,
            Signer::Forwarded(forwarder) => forwarder.receipt(item, cross_region).await,
        }
    }
}

async fn receipt_here(
    requests: &SyncSender<Request>,
    item: Vec<u8>,
    cross_region: bool,
) -> Result<VerificationReceipt, Refusal> {
    {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            item,
            cross_region,
            reply,
        };
        // The channel is bounded: a full one pushes back on verifiers rather than growing.
        match requests.try_send(request) {
            Ok(()) => {}
            Err(TrySendError::Full(request)) => {
                let requests = requests.clone();
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

/// The collector's ends of the channels, and its tuning.
struct Batches {
    incoming: Receiver<Request>,
    /// A free slot for one more batch to wait for the log.
    slots: Receiver<()>,
    free: SyncSender<()>,
    logged: SyncSender<(Logged, Slot)>,
    window: Duration,
    max: usize,
}

impl Batches {
    fn collect(&self, region: &Region) {
        while let Ok(first) = self.incoming.recv() {
            let deadline = Instant::now() + self.window;
            // Wait for a slot: verifications queue meanwhile and join this batch.
            if self.slots.recv().is_err() {
                return;
            }
            let slot = Slot(self.free.clone());
            let requests = self.gather(first, deadline);
            let cross = requests.iter().filter(|r| r.cross_region).count() as u64;
            let (items, replies): (Vec<_>, Vec<_>) =
                requests.into_iter().map(|r| (r.item, r.reply)).unzip();
            let result = batch(region.suite(), &items)
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
                    if self.logged.send((batch, slot)).is_err() {
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

    /// `first` and every verification queued behind it, up to `max`, and those arriving until
    /// `deadline`.
    fn gather(&self, first: Request, deadline: Instant) -> Vec<Request> {
        let mut requests = vec![first];
        while requests.len() < self.max {
            let next = match self.incoming.try_recv() {
                Ok(request) => Some(request),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match left.is_zero() {
                        true => None,
                        false => self.incoming.recv_timeout(left).ok(),
                    }
                }
            };
            match next {
                Some(request) => requests.push(request),
                None => break,
            }
        }
        requests
    }
}

fn complete(region: &Region, completing: &Receiver<(Logged, Slot)>) {
    while let Ok((batch, slot)) = completing.recv() {
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
        drop(slot);
    }
}
