//! The federation's background tasks: publishing this region's durable entries, catching up on
//! other regions' logs (specs/federation.md §5.2), and gathering cosignatures for this region's
//! checkpoints before publishing them (§6.2).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};
use tongban_core::federation::Reason;
use tongban_core::federation::gossip::{Body, MAX_ENTRIES, MAX_GOSSIP};
use tongban_core::federation::wire::{Request, Response};
use tongban_core::federation::witness::{self, AddCheckpoint};
use tongban_core::ids::RegionCode;
use tongban_core::log::checkpoint;
use tongban_core::log::note::NoteSignature;

use super::Federation;
use super::swarm::{Command, Inbound};
use crate::metrics::ResultLabel;

/// A log message's entries stay below this many bytes, leaving room for the message's own keys.
const PUBLISH_BYTES: usize = MAX_GOSSIP - 64 * 1024;
/// How long one catch-up or cosign request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn spawn(federation: Arc<Federation>, catch_up: mpsc::Receiver<RegionCode>) {
    tokio::spawn(publish_own(federation.clone()));
    tokio::spawn(catch_up_loop(federation.clone(), catch_up));
    tokio::spawn(witness_rounds(federation));
}

/// Sends a request to `peer` through the swarm and waits for the answer.
pub(super) async fn request(
    federation: &Federation,
    peer: PeerId,
    request: &Request,
) -> Result<Response, String> {
    let bytes = request.encode().map_err(|e| e.to_string())?;
    let (reply, answer) = oneshot::channel();
    federation
        .commands
        .send(Command::Request { peer, bytes, reply })
        .map_err(|_| "the swarm stopped".to_owned())?;
    let bytes = tokio::time::timeout(REQUEST_TIMEOUT, answer)
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|_| "the swarm dropped the request".to_owned())??;
    Response::decode(&bytes).map_err(|r| r.to_string())
}

/// Publishes this region's entries as soon as they are durable, in index order.
async fn publish_own(federation: Arc<Federation>) {
    let log = federation.region.log().clone();
    let mut published = match log.size() {
        Ok(size) => size,
        Err(e) => {
            tracing::error!(error = %e, "reading the log's size; not publishing");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = federation.region.appended.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let size = match log.size() {
            Ok(size) => size,
            Err(e) => {
                tracing::error!(error = %e, "reading the log's size");
                continue;
            }
        };
        while published < size {
            let end = size.min(published + MAX_ENTRIES as u64);
            let entries = match log.entries(published..end) {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::error!(error = %e, "reading entries to publish");
                    break;
                }
            };
            let mut bytes = 0;
            let count = entries
                .iter()
                .take_while(|e| {
                    bytes += e.len() + 4;
                    bytes <= PUBLISH_BYTES
                })
                .count()
                .max(1);
            let chunk: Vec<Vec<u8>> = entries.into_iter().take(count).collect();
            federation.publish(Body::Log {
                first: published,
                entries: chunk,
                checkpoint: None,
            });
            published += count as u64;
        }
    }
}

/// Asks for missing entries: for every region on an interval, and at once for a region whose
/// gossip showed a gap.
async fn catch_up_loop(federation: Arc<Federation>, mut wanted: mpsc::Receiver<RegionCode>) {
    let every = Duration::from_millis(federation.config.catch_up_interval_ms.max(100));
    let mut tick = tokio::time::interval(every);
    let busy: Arc<Mutex<HashSet<RegionCode>>> = Arc::default();
    loop {
        let regions: Vec<RegionCode> = tokio::select! {
            region = wanted.recv() => match region {
                Some(region) => vec![region],
                None => return,
            },
            _ = tick.tick() => {
                federation.refresh_trust_if_old();
                federation
                    .replicas()
                    .map(|r| r.keys().cloned().collect())
                    .unwrap_or_default()
            }
        };
        for region in regions {
            let Ok(mut set) = busy.lock() else { return };
            if !set.insert(region.clone()) {
                continue;
            }
            drop(set);
            let (federation, busy) = (federation.clone(), busy.clone());
            tokio::spawn(async move {
                catch_up(&federation, &region).await;
                if let Ok(mut set) = busy.lock() {
                    set.remove(&region);
                }
            });
        }
    }
}

/// Fetches `region`'s entries the replica lacks, from its own node first, then from any member,
/// until the replica reaches the checkpoint the answers carry.
async fn catch_up(federation: &Arc<Federation>, region: &RegionCode) {
    let mut sources: Vec<PeerId> = federation.peer_of(region).into_iter().collect();
    if let Ok(peers) = federation.peers.read() {
        let others: Vec<PeerId> = peers
            .iter()
            .filter(|(_, r)| *r != region && **r != federation.own)
            .map(|(p, _)| *p)
            .collect();
        sources.extend(others);
    }
    for peer in sources {
        loop {
            if federation.is_misbehaving(region.as_str()) {
                return;
            }
            let Some(from) = federation.replica_size(region) else {
                return;
            };
            let answer = request(
                federation,
                peer,
                &Request::Entries {
                    region: region.clone(),
                    from,
                },
            )
            .await;
            let more = match &answer {
                Ok(Response::Entries {
                    first,
                    entries,
                    checkpoint,
                    ..
                }) => {
                    let end = first + entries.len() as u64;
                    let head = checkpoint_size(checkpoint);
                    head.is_some_and(|s| s > end)
                }
                // Nothing after what the replica holds (LOG_GAP): up to date with this source.
                // Any other refusal: counted and logged, the next source tried.
                Ok(Response::Refused { code, detail }) => {
                    federation.catch_up_answered(region, code, detail);
                    if code == Reason::Gap.as_str() {
                        return;
                    }
                    break;
                }
                Ok(other) => {
                    federation.catch_up_answered(region, "unexpected", other.kind());
                    break;
                }
                Err(e) => {
                    federation.catch_up_answered(region, "unreachable", e);
                    break;
                }
            };
            let Ok(Response::Entries { .. }) = &answer else {
                break;
            };
            let bytes = match answer.and_then(|a| a.encode().map_err(|e| e.to_string())) {
                Ok(bytes) => bytes,
                Err(_) => break,
            };
            let (done, applied) = oneshot::channel();
            // Waits for room: catch-up is this node's own work, paced by the worker.
            if federation
                .inbound
                .send(Inbound::CatchUp {
                    region: region.clone(),
                    bytes,
                    done,
                })
                .await
                .is_err()
            {
                return;
            }
            let _ = applied.await;
            if !more {
                return;
            }
        }
    }
}

fn checkpoint_size(note: &[u8]) -> Option<u64> {
    let note = tongban_core::log::note::Note::parse(note).ok()?;
    checkpoint::Checkpoint::parse(&note.text)
        .ok()
        .map(|c| c.size)
}

/// Asks every other member's witness to cosign each new checkpoint of this region, and publishes
/// it once the quorum is reached.
async fn witness_rounds(federation: Arc<Federation>) {
    let every = Duration::from_millis(federation.region.config.log.checkpoint_interval_ms.max(50));
    let mut done = federation
        .store
        .off_thread(|store| store.cosigned())
        .await
        .ok()
        .flatten()
        .map_or(0, |(size, _)| size);
    // The size each witness is known to hold for this origin.
    let mut known: HashMap<RegionCode, u64> = HashMap::new();
    loop {
        tokio::time::sleep(every).await;
        let log = federation.region.log().clone();
        let Ok(Some((size, note))) = log.last_checkpoint() else {
            continue;
        };
        if size <= done {
            continue;
        }
        let membership = federation.membership();
        let quorum = membership.quorum as usize;
        let mut signatures: Vec<NoteSignature> = Vec::new();
        if quorum > 0 {
            let mut rounds = Vec::new();
            for member in &membership.members {
                if member.region() == &federation.own
                    || federation.is_misbehaving(member.region().as_str())
                {
                    continue;
                }
                let Some(peer) = federation.peer_of(member.region()) else {
                    continue;
                };
                let old = known.get(member.region()).copied().unwrap_or(0);
                let (federation, member, note, log) = (
                    federation.clone(),
                    member.clone(),
                    note.clone(),
                    log.clone(),
                );
                rounds.push(tokio::spawn(async move {
                    let result = cosign(&federation, &log, peer, &member, &note, old, size).await;
                    (member.region().clone(), result)
                }));
            }
            let timeout = Duration::from_millis(federation.config.cosign_timeout_ms.max(100));
            let deadline = tokio::time::Instant::now() + timeout;
            // Each answer counts as it arrives: a witness that never answers (stopped, cut off)
            // must not cost the round the others' cosignatures, as waiting for all at once did.
            let mut pending: futures::stream::FuturesUnordered<_> = rounds.into_iter().collect();
            while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, pending.next()).await {
                let Ok((region, result)) = joined else {
                    continue;
                };
                match result {
                    Ok(signature) => {
                        known.insert(region, size);
                        signatures.push(signature);
                    }
                    Err(e) => tracing::debug!(%region, error = %e, "no cosignature"),
                }
            }
            // The silent witnesses' requests are not waited for by the next round either.
            for round in pending {
                round.abort();
            }
        }
        let label = |code: &str| ResultLabel {
            code: code.to_owned(),
        };
        if signatures.len() < quorum {
            federation
                .metrics
                .witness_rounds
                .get_or_create(&label("short"))
                .inc();
            tracing::warn!(
                size,
                got = signatures.len(),
                quorum,
                "checkpoint not cosigned by a quorum yet"
            );
            continue;
        }
        let cosigned = match checkpoint::add_signatures(&note, &signatures) {
            Ok(cosigned) => cosigned.into_bytes(),
            Err(e) => {
                tracing::error!(error = %e, "adding cosignatures");
                continue;
            }
        };
        let stored = {
            let cosigned = cosigned.clone();
            federation
                .store
                .off_thread(move |store| store.set_cosigned(size, &cosigned))
                .await
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, "storing the cosigned checkpoint");
            continue;
        }
        federation
            .metrics
            .witness_rounds
            .get_or_create(&label("quorum"))
            .inc();
        federation.publish(Body::Log {
            first: size,
            entries: Vec::new(),
            checkpoint: Some(cosigned),
        });
        done = size;
    }
}

/// One witness's cosignature on `note` (of size `size`), answering a conflict once with a proof
/// from the size the witness holds.
async fn cosign(
    federation: &Federation,
    log: &crate::log::Log,
    peer: PeerId,
    member: &tongban_core::federation::Member,
    note: &[u8],
    mut old: u64,
    size: u64,
) -> Result<NoteSignature, String> {
    for _ in 0..2 {
        let proof = match old {
            0 => Vec::new(),
            old if old <= size => {
                let log = log.clone();
                tokio::task::spawn_blocking(move || log.consistency_proof(old, size))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?
            }
            old => return Err(format!("the witness holds size {old}, beyond {size}")),
        };
        let body = AddCheckpoint {
            old,
            proof,
            note: note.to_vec(),
        }
        .encode();
        match request(federation, peer, &Request::Cosign { body }).await? {
            Response::Cosigned { lines } => {
                let verifier = member
                    .witness_verifier(&federation.name)
                    .map_err(|r| r.to_string())?;
                let signatures = witness::parse_lines(&lines).map_err(|r| r.to_string())?;
                let cosigned =
                    checkpoint::add_signatures(note, &signatures).map_err(|e| e.to_string())?;
                let own_log = federation
                    .membership()
                    .member(&federation.own)
                    .ok_or("not a member")?
                    .log_verifier(&federation.name)
                    .map_err(|r| r.to_string())?;
                let opened = checkpoint::open(
                    cosigned.as_bytes(),
                    &own_log,
                    std::slice::from_ref(&verifier),
                )
                .map_err(|e| e.to_string())?;
                if opened.cosigned_by.is_empty() {
                    return Err("the answer holds no cosignature of that witness".into());
                }
                return signatures
                    .into_iter()
                    .find(|s| s.name == verifier.name && s.id == verifier.id)
                    .ok_or_else(|| "no cosignature line".into());
            }
            Response::Conflict { size: held } => old = held,
            Response::Refused { code, detail } => return Err(format!("{code}: {detail}")),
            _ => return Err("unexpected answer".into()),
        }
    }
    Err("the witness kept answering conflicts".into())
}

impl Federation {
    fn replica_size(&self, region: &RegionCode) -> Option<u64> {
        self.replicas().ok()?.get(region).map(|s| s.replica.size())
    }

    /// Rebuilds the trust store well before its bundle expires.
    fn refresh_trust_if_old(&self) {
        let Ok(now) = crate::region::now() else {
            return;
        };
        let expires = self.trust.read().map(|t| t.expires.seconds()).unwrap_or(0);
        if expires < now.seconds() + 6 * 24 * 3600 {
            self.trust_dirty
                .store(true, std::sync::atomic::Ordering::Release);
            if let Err(e) = self.refresh_trust() {
                tracing::error!(error = %e, "rebuilding the trust store");
            }
        }
    }
}

/// Keeps the byte bound of a published message meaningful: the gossip limit.
const _: () = assert!(PUBLISH_BYTES < MAX_GOSSIP);
