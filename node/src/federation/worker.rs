//! The federation's worker: one thread that judges gossip, applies entries to the replicas in
//! order, answers requests (catch-up, witnessing, membership) and applies catch-up answers. It is
//! the only writer of the replicas and the witness state, so their updates never interleave.

use super::status::StatusData;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use libp2p::PeerId;
use libp2p::gossipsub::MessageAcceptance;
use libp2p::request_response::ResponseChannel;
use tokio::sync::mpsc;
use tongban_core::federation::gossip::{self, Body, Gossip};
use tongban_core::federation::membership::Succession;
use tongban_core::federation::replica::{Progress, Replica};
use tongban_core::federation::wire::{
    MAX_CATCH_UP_BYTES, MAX_CATCH_UP_ENTRIES, MAX_VERSIONS, Request, Response,
};
use tongban_core::federation::witness::{self, AddCheckpoint, Outcome};
use tongban_core::federation::{Membership, Reason, Refused};
use tongban_core::ids::RegionCode;
use tongban_core::log::checkpoint::{self, Checkpoint};
use tongban_core::log::note::Note;

use super::replicas::{Replicas, Slot, is_quiet};
use super::store::WitnessStep;
use super::swarm::{Command, Inbound};
use super::{Federation, FederationError, Misbehaviour, peer_map};
use crate::log::Log;
use crate::metrics::{ReasonLabel, ResultLabel};
use crate::region::now;
use crate::region::state::Rows;

/// What a witness answers (specs/federation.md §6.1), whichever transport asked.
pub enum WitnessAnswer {
    Cosigned(String),
    Conflict(u64),
    Refused(Refused),
}

pub(super) fn spawn(
    federation: Arc<Federation>,
    mut inbound: mpsc::Receiver<Inbound>,
) -> Result<(), FederationError> {
    std::thread::Builder::new()
        .name("tongban-federation".into())
        .spawn(move || {
            while let Some(item) = inbound.blocking_recv() {
                match item {
                    Inbound::Gossip {
                        id,
                        source,
                        author,
                        data,
                    } => {
                        let acceptance = federation.judge_gossip(author, &data);
                        let _ = federation.commands.send(Command::Validate {
                            id,
                            source,
                            acceptance,
                        });
                    }
                    Inbound::Request {
                        peer,
                        bytes,
                        channel,
                    } => match Request::decode(&bytes) {
                        // They wait for the log: answered off this thread.
                        Ok(
                            request @ (Request::Proof { .. }
                            | Request::Share { .. }
                            | Request::Transfer { .. }
                            | Request::Presentation { .. }),
                        ) => {
                            federation.answer_later(peer, request, channel);
                        }
                        Ok(request) => {
                            federation.respond(channel, &federation.answer(peer, request))
                        }
                        Err(r) => federation.respond(channel, &Response::refused(&r)),
                    },
                    Inbound::CatchUp {
                        region,
                        bytes,
                        done,
                    } => {
                        let applied = federation.apply_catch_up(&region, &bytes);
                        federation.count_catch_up(&region, &applied);
                        let _ = done.send(());
                    }
                }
                if federation.trust_dirty.swap(false, Ordering::AcqRel)
                    && let Err(e) = federation.refresh_trust()
                {
                    tracing::error!(error = %e, "rebuilding the trust store");
                }
            }
        })
        .map(|_| ())
        .map_err(|e| super::setup(format!("starting the federation worker: {e}")))
}

/// This node's own failure (storage, a lock, the clock): never the sender's fault.
fn internal(e: impl std::fmt::Display) -> Refused {
    Refused::new(Reason::Internal, e.to_string())
}

/// specs/federation.md §4.1: accept (forward), ignore (drop quietly) or reject (drop, penalise
/// the sender). A message this node failed to judge is ignored: rejecting it would penalise an
/// honest sender for a local fault.
fn acceptance(outcome: &Result<(), Refused>) -> MessageAcceptance {
    match outcome {
        Ok(()) => MessageAcceptance::Accept,
        Err(r) if r.code.is_local() || is_quiet(r) || r.code == Reason::Misbehaving => {
            MessageAcceptance::Ignore
        }
        Err(_) => MessageAcceptance::Reject,
    }
}

/// Entries `[from, end)` of `log`, at most the catch-up limits, with `end ≤ limit`.
fn batch(log: &Log, from: u64, limit: u64) -> Result<Vec<Vec<u8>>, Refused> {
    let end = limit.min(from + MAX_CATCH_UP_ENTRIES as u64);
    let mut entries = log.entries(from..end).map_err(internal)?;
    let mut bytes = 0;
    let keep = entries
        .iter()
        .take_while(|e| {
            bytes += e.len();
            bytes <= MAX_CATCH_UP_BYTES
        })
        .count()
        .max(1);
    entries.truncate(keep);
    Ok(entries)
}

impl Federation {
    fn count(&self, outcome: &Result<(), Refused>) {
        match outcome {
            Ok(()) => {
                self.metrics.gossip_accepted.inc();
            }
            Err(r) if r.code.is_local() => self.local_failure("gossip", r),
            Err(r) => {
                self.metrics
                    .gossip_rejected
                    .get_or_create(&ResultLabel {
                        code: r.code.as_str().to_owned(),
                    })
                    .inc();
            }
        }
    }

    /// Counts a catch-up answer of entries by what became of applying it, and logs one not
    /// applied.
    fn count_catch_up(&self, region: &RegionCode, applied: &Result<(), Refused>) {
        match applied {
            Ok(()) => self.count_catch_up_code("applied"),
            Err(r) if r.code.is_local() => {
                self.local_failure("catch-up", r);
                self.count_catch_up_code(r.code.as_str());
            }
            Err(r) => {
                tracing::warn!(%region, refused = %r, "catch-up answer not applied");
                self.count_catch_up_code(r.code.as_str());
            }
        }
    }

    /// Counts a catch-up answer other than entries (`code`: the refusal's, `unexpected` or
    /// `unreachable`); "nothing after what the replica holds" and "this node keeps no entries of
    /// that log" (a replica kept without its entries) are not worth a line.
    pub(super) fn catch_up_answered(
        &self,
        region: &RegionCode,
        code: &str,
        detail: impl std::fmt::Display,
    ) {
        if code == Reason::Gap.as_str() {
            tracing::debug!(%region, %detail, "caught up with a source");
        } else if code == Reason::NotHeld.as_str() {
            tracing::debug!(%region, %detail, "a source keeps no entries of that log");
        } else {
            tracing::warn!(%region, code, %detail, "a catch-up source did not answer with entries");
        }
        self.count_catch_up_code(code);
    }

    fn count_catch_up_code(&self, code: &str) {
        self.metrics
            .catch_up
            .get_or_create(&ResultLabel {
                code: code.to_owned(),
            })
            .inc();
    }

    /// Logs and counts a failure of this node's own while it handled `what`.
    pub(super) fn local_failure(&self, what: &str, refused: &Refused) {
        tracing::error!(what, error = %refused.detail, "local failure (not the peer's)");
        self.metrics
            .federation_internal
            .get_or_create(&ReasonLabel {
                reason: what.to_owned(),
            })
            .inc();
    }

    fn judge_gossip(&self, author: Option<PeerId>, data: &[u8]) -> MessageAcceptance {
        let outcome = self.check_gossip(author, data);
        self.count(&outcome);
        let acceptance = acceptance(&outcome);
        match (&outcome, &acceptance) {
            (Err(r), MessageAcceptance::Reject) => {
                tracing::warn!(refused = %r, author = ?author, "gossip rejected")
            }
            (Err(r), _) => tracing::debug!(refused = %r, "gossip ignored"),
            (Ok(()), _) => {}
        }
        acceptance
    }

    fn check_gossip(&self, author: Option<PeerId>, data: &[u8]) -> Result<(), Refused> {
        if data.len() > gossip::MAX_GOSSIP {
            return Err(Refused::new(
                Reason::TooLarge,
                format!("{} bytes; the limit is {}", data.len(), gossip::MAX_GOSSIP),
            ));
        }
        let not_member = || Refused::new(Reason::NotMember, format!("author {author:?}"));
        let author = author.ok_or_else(not_member)?;
        let region = self.region_of(&author).ok_or_else(not_member)?;
        let membership = self.membership();
        let member = membership.member(&region).ok_or_else(not_member)?;
        let now = now().map_err(internal)?;
        let message = gossip::check(data, member, &membership, &self.federation_key, now)?;
        match message.body {
            Body::Log {
                first,
                entries,
                checkpoint,
            } => self.on_log(&region, first, entries, checkpoint),
            Body::Evidence { accused, a, b } => {
                self.mark_misbehaving(
                    accused.as_str(),
                    Misbehaviour {
                        reason: format!("equivocation evidence published by {region}"),
                        evidence: Some(text_pair(&a, &b)),
                    },
                );
                Ok(())
            }
            Body::Membership { signed } => self.on_membership(&signed, Some(author)),
        }
    }

    fn on_log(
        &self,
        region: &RegionCode,
        first: u64,
        entries: Vec<Vec<u8>>,
        checkpoint: Option<Vec<u8>>,
    ) -> Result<(), Refused> {
        if region == &self.own {
            return Ok(());
        }
        if self.is_misbehaving(region.as_str()) {
            return Err(Refused::new(Reason::Misbehaving, region.as_str()));
        }
        let mut replicas = self.replicas().map_err(internal)?;
        let slot = replicas
            .get_mut(region)
            .ok_or_else(|| Refused::new(Reason::NotMember, format!("no replica of {region}")))?;
        if !entries.is_empty() {
            let size = slot.replica.size();
            let fresh = self.held_prefix(slot, first, &entries)?;
            if first > size {
                self.want_catch_up(region.clone());
                return Err(Refused::new(
                    Reason::Gap,
                    format!("entries from {first}, the replica holds {size}"),
                ));
            }
            let new = &entries[fresh..];
            let snapshot = slot.log.state().map_err(internal)?;
            let progress = slot.replica.apply_published(size, new, &Rows(&snapshot));
            drop(snapshot);
            if let Some(refused) = self.commit_progress(&mut replicas, region, new, progress)? {
                drop(replicas);
                return Err(self.refused_entry(
                    region,
                    "its node published an entry its own log rules refuse",
                    refused,
                ));
            }
        }
        match (checkpoint, replicas.get_mut(region)) {
            (None, _) => Ok(()),
            (Some(note), Some(slot)) => self.on_checkpoint(slot, &note),
            (Some(_), None) => Err(Refused::new(Reason::NotMember, region.as_str())),
        }
    }

    /// Commits the entries of `entries` that `progress` applied; returns the refusal that
    /// stopped it, for the caller to report once the replicas are free.
    fn commit_progress(
        &self,
        replicas: &mut Replicas,
        region: &RegionCode,
        entries: &[Vec<u8>],
        mut progress: Progress,
    ) -> Result<Option<Refused>, Refused> {
        let applied = entries[..progress.applied.len()].to_vec();
        self.commit(replicas, region, applied, &progress)
            .map_err(internal)?;
        match progress.refused.take() {
            // This node could not read its own store: not the region's fault.
            Some(refused) if refused.code == Reason::Internal => Err(refused),
            refused => Ok(refused),
        }
    }

    /// Marks `region` misbehaving for an entry its log rules refuse (`how` it came) and returns
    /// the refusal.
    fn refused_entry(&self, region: &RegionCode, how: &str, refused: Refused) -> Refused {
        self.mark_misbehaving(
            region.as_str(),
            Misbehaviour::because(format!("{how}: {refused}")),
        );
        refused
    }

    /// How many of `entries` (starting at `first`) the replica already holds; refuses, and marks
    /// the region misbehaving, when they differ from what it holds.
    fn held_prefix(&self, slot: &Slot, first: u64, entries: &[Vec<u8>]) -> Result<usize, Refused> {
        let size = slot.replica.size();
        if first >= size {
            return Ok(0);
        }
        let held_end = size.min(first + entries.len() as u64);
        // By leaf hash: equal hashes are equal entries, and a replica need not keep the entries.
        let held = slot.log.leaf_hashes(first..held_end).map_err(internal)?;
        if let Some(i) = held
            .iter()
            .zip(entries)
            .position(|(a, b)| *a != tongban_core::log::tree::leaf_hash(slot.log.suite(), b))
        {
            let index = first + i as u64;
            self.mark_misbehaving(
                slot.member.region().as_str(),
                Misbehaviour::because(format!("two different entries at index {index}")),
            );
            return Err(Refused::new(
                Reason::EntryConflict,
                format!("entry {index} differs from the one held"),
            ));
        }
        Ok(held.len())
    }

    /// A verified checkpoint of the slot's log: equivocation against those known, confirmation
    /// against the replica, or a reason to catch up.
    fn on_checkpoint(&self, slot: &mut Slot, note: &[u8]) -> Result<(), Refused> {
        let witnesses = gossip::witnesses(&self.membership())?;
        let head = slot.replica.open_checkpoint(note, &witnesses)?.checkpoint;
        let region = slot.member.region().clone();
        for (known, known_note) in slot.verified.iter().chain(slot.latest.iter()) {
            if known.size == head.size && known.root != head.root {
                let (a, b) = (known_note.clone(), note.to_vec());
                self.equivocation(&region, &a, &b);
                return Err(Refused::new(Reason::Equivocation, region.as_str()));
            }
        }
        if head.size <= slot.replica.size() {
            let root = slot.root_at(head.size).map_err(internal)?;
            if let Err(r) = Replica::confirms(&head, root) {
                self.mark_misbehaving(region.as_str(), Misbehaviour::because(r.to_string()));
                return Err(r);
            }
            if slot
                .verified
                .as_ref()
                .is_none_or(|(v, _)| v.size < head.size)
            {
                // Kept with the replica, so catch-up answers survive a restart; held as verified
                // only once stored, so that what is served never runs ahead of what is kept.
                slot.log
                    .store_checkpoint(head.size, note.to_vec())
                    .map_err(internal)?;
                slot.verified = Some((head.clone(), note.to_vec()));
            }
        } else {
            self.want_catch_up(region);
        }
        if slot.latest.as_ref().is_none_or(|(l, _)| l.size < head.size) {
            slot.latest = Some((head, note.to_vec()));
        }
        Ok(())
    }

    /// Records, marks and publishes equivocation evidence against `region`.
    fn equivocation(&self, region: &RegionCode, a: &[u8], b: &[u8]) {
        let fresh = self.mark_misbehaving(
            region.as_str(),
            Misbehaviour {
                reason: "equivocation: two checkpoints of one size with different roots".into(),
                evidence: Some(text_pair(a, b)),
            },
        );
        if fresh {
            self.publish(tongban_core::federation::gossip::Body::Evidence {
                accused: region.clone(),
                a: a.to_vec(),
                b: b.to_vec(),
            });
        }
    }

    /// Publishes a message of this node on the federation's topic.
    pub(super) fn publish(&self, body: Body) {
        let message = now().map(|at| Gossip {
            region: self.own.clone(),
            at,
            body,
        });
        match message
            .map_err(|r| r.to_string())
            .and_then(|m| m.encode().map_err(|e| e.to_string()))
        {
            Ok(bytes) => {
                let _ = self.commands.send(Command::Publish(bytes));
            }
            Err(e) => tracing::error!(error = %e, "building a gossip message"),
        }
    }

    /// A membership received (gossip or operator): adopted when it is the next version.
    pub(super) fn on_membership(&self, signed: &[u8], from: Option<PeerId>) -> Result<(), Refused> {
        let received = Membership::open(signed, &self.federation_key)?;
        let held = self.membership();
        match received.succeeds(&held) {
            Ok(Succession::Same | Succession::Older) => Ok(()),
            Ok(Succession::Next) => self.adopt(received),
            Err(r) if r.code == Reason::MembershipNotExtending => {
                if let Some(peer) = from {
                    self.fetch_memberships(peer, held.version);
                }
                Err(Refused::new(Reason::Gap, r.detail))
            }
            Err(r) => Err(r),
        }
    }

    fn adopt(&self, next: Membership) -> Result<(), Refused> {
        let peers = peer_map(&next).map_err(internal)?;
        self.store
            .add_membership(next.version, next.bytes())
            .map_err(internal)?;
        let _ = self
            .commands
            .send(Command::Members(peers.keys().copied().collect()));
        *self.peers.write().map_err(internal)? = peers;
        let version = next.version;
        let next = Arc::new(next);
        *self.membership.write().map_err(internal)? = next.clone();
        for member in &next.members {
            self.open_replica(member).map_err(internal)?;
        }
        self.trust_dirty.store(true, Ordering::Release);
        tracing::info!(version, "membership version adopted");
        Ok(())
    }

    /// Asks `peer` for the membership versions after `since` and applies them in order.
    fn fetch_memberships(&self, peer: PeerId, since: u64) {
        let Ok(bytes) = (Request::Membership { since }).encode() else {
            return;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self
            .commands
            .send(Command::Request { peer, bytes, reply })
            .is_err()
        {
            return;
        }
        let federation = self.this.get().and_then(std::sync::Weak::upgrade);
        self.runtime.spawn(async move {
            let Ok(Ok(bytes)) = answer.await else {
                return;
            };
            let Some(federation) = federation else {
                return;
            };
            if let Ok(Response::Memberships { versions }) = Response::decode(&bytes) {
                for version in versions {
                    if let Err(r) = federation.on_membership(&version, None) {
                        tracing::warn!(refused = %r, "membership version from a peer");
                        break;
                    }
                }
            }
        });
    }

    /// Sends `response` on `channel` through the swarm.
    pub(super) fn respond(&self, channel: ResponseChannel<Vec<u8>>, response: &Response) {
        match response.encode() {
            Ok(bytes) => {
                let _ = self.commands.send(Command::Respond { channel, bytes });
            }
            Err(e) => tracing::error!(error = %e, "encoding a response"),
        }
    }

    /// This region's status of `kind`, or the one kept of another region.
    fn answer_status(&self, kind: StatusData, region: &RegionCode) -> Result<Response, Refused> {
        if *region == self.own {
            return kind
                .own(&self.region)
                .map(|b| kind.respond(b))
                .map_err(internal);
        }
        self.held_status(kind, region)
            .map(|b| kind.respond(b.as_ref().clone()))
            .ok_or_else(|| {
                Refused::new(Reason::Gap, format!("no {} of {region} held", kind.name()))
            })
    }

    /// Answers a request of `peer` (a member's node: the gate let it in).
    fn answer(&self, peer: PeerId, request: Request) -> Response {
        let answer = match request {
            Request::Entries { region, from } if region == self.own => self.own_entries(from),
            Request::Entries { region, from } => self.replica_entries(&region, from),
            Request::Cosign { body } => Ok(match self.witness_add(&body) {
                WitnessAnswer::Cosigned(lines) => Response::Cosigned { lines },
                WitnessAnswer::Conflict(size) => Response::Conflict { size },
                WitnessAnswer::Refused(r) => Response::refused(&r),
            }),
            Request::Snapshot { region } => self.answer_status(StatusData::Snapshot, &region),
            Request::StatusList { region } => self.answer_status(StatusData::List, &region),
            Request::Membership { since } => {
                self.store.memberships().map_err(internal).map(|all| {
                    let versions = all
                        .into_iter()
                        .filter_map(|b| {
                            let m = Membership::open(&b, &self.federation_key).ok()?;
                            (m.version > since).then_some(b)
                        })
                        .take(MAX_VERSIONS)
                        .collect();
                    Response::Memberships { versions }
                })
            }
            Request::Proof { .. }
            | Request::Share { .. }
            | Request::Transfer { .. }
            | Request::Presentation { .. } => Err(internal(
                "proof, share, transfer and presentation requests are answered off the worker thread",
            )),
        };
        answer.unwrap_or_else(|r| {
            if r.code.is_local() {
                self.local_failure("request", &r);
            } else {
                tracing::debug!(%peer, refused = %r, "request refused");
            }
            Response::refused(&r)
        })
    }

    fn own_entries(&self, from: u64) -> Result<Response, Refused> {
        // A fresh checkpoint covers everything durable, so a peer never waits for the next tick.
        self.region.checkpoint().map_err(internal)?;
        let log = self.region.log();
        let (size, note) = log
            .last_checkpoint()
            .map_err(internal)?
            .ok_or_else(|| Refused::new(Reason::Gap, "no checkpoint yet"))?;
        self.serve(log, from, size, note)
    }

    fn replica_entries(&self, region: &RegionCode, from: u64) -> Result<Response, Refused> {
        let replicas = self.replicas().map_err(internal)?;
        let slot = replicas
            .get(region)
            .ok_or_else(|| Refused::new(Reason::NotMember, format!("no replica of {region}")))?;
        if !slot.holds_entries() {
            return Err(Refused::new(
                Reason::NotHeld,
                format!("this node keeps {region}'s tree and state, not its entries"),
            ));
        }
        let (head, note) = slot
            .verified
            .clone()
            .ok_or_else(|| Refused::new(Reason::Gap, "no verified checkpoint of that log"))?;
        self.serve(&slot.log, from, head.size, note)
    }

    fn serve(&self, log: &Log, from: u64, size: u64, note: Vec<u8>) -> Result<Response, Refused> {
        if from >= size {
            return Err(Refused::new(Reason::Gap, format!("nothing after {size}")));
        }
        let entries = batch(log, from, size)?;
        let end = from + entries.len() as u64;
        let proof = match end < size {
            true => log.consistency_proof(end, size).map_err(internal)?,
            false => Vec::new(),
        };
        Ok(Response::Entries {
            first: from,
            entries,
            checkpoint: note,
            proof,
        })
    }

    /// specs/federation.md §6.1.
    pub fn witness_add(&self, body: &[u8]) -> WitnessAnswer {
        match self.witness_decide(body) {
            Ok(answer) => answer,
            Err(r) => WitnessAnswer::Refused(r),
        }
    }

    fn witness_decide(&self, body: &[u8]) -> Result<WitnessAnswer, Refused> {
        let request = AddCheckpoint::parse(body)?;
        let note = Note::parse(&request.note)
            .map_err(|e| Refused::new(Reason::CheckpointInvalid, e.to_string()))?;
        let origin = Checkpoint::parse(&note.text)
            .map_err(|e| Refused::new(Reason::CheckpointInvalid, e.to_string()))?
            .origin;
        let membership = self.membership();
        let member = membership
            .members
            .iter()
            .find(|m| m.origin(&self.name) == origin)
            .ok_or_else(|| Refused::new(Reason::NotMember, format!("unknown origin {origin}")))?;
        let region = member.region().clone();
        if region == self.own {
            return Err(Refused::new(
                Reason::NotMember,
                "a node does not witness its own log",
            ));
        }
        if self.is_misbehaving(region.as_str()) {
            return Err(Refused::new(Reason::Misbehaving, region.as_str()));
        }
        let log = member.log_verifier(&self.name)?;
        let checkpoint = checkpoint::open(&request.note, &log, &[])
            .map_err(|e| Refused::new(Reason::CheckpointInvalid, e.to_string()))?
            .checkpoint;
        // What this node's replica holds at that size, if it reaches it: a checkpoint to cosign
        // must have that root.
        let replicated = self.replica_root(&region, checkpoint.size)?;
        let me = membership
            .member(&self.own)
            .ok_or_else(|| internal("this node is not in the membership"))?;
        let name = me.witness_name(&self.name);
        let mut evidence = None;
        let mut mismatch = None;
        // Read, decide and write as one step per origin (specs/federation.md §6.1): concurrent
        // requests from the witnessed size must not each extend it.
        let step = self
            .store
            .witness_step(&origin, |held, line| {
                Ok(match witness::add_checkpoint(&request, &log, held)? {
                    Outcome::Conflict { held } => WitnessStep::Conflict(held),
                    Outcome::Equivocation(found) => {
                        let refused = Refused::new(
                            Reason::Equivocation,
                            format!("{origin} signed two checkpoints of size {}", found.size),
                        );
                        evidence = Some(found);
                        return Err(refused);
                    }
                    Outcome::Held => match line {
                        Some(line) => WitnessStep::Repeated(line.to_owned()),
                        // Held from before lines were kept: cosigned once more, and kept.
                        None => cosign(&checkpoint, held.cloned(), &name, &self.witness)?,
                    },
                    Outcome::Cosign { checkpoint, next } => {
                        if let Some(root) = replicated
                            && let Err(r) = Replica::confirms(&checkpoint, root)
                        {
                            mismatch = Some(r.to_string());
                            return Err(r);
                        }
                        cosign(&checkpoint, Some(next), &name, &self.witness)?
                    }
                })
            })
            .map_err(internal)?;
        if let Some(found) = evidence {
            self.equivocation(&region, &found.notes.0, &found.notes.1);
        }
        if let Some(why) = mismatch {
            self.mark_misbehaving(region.as_str(), Misbehaviour::because(why));
        }
        match step? {
            WitnessStep::Cosigned { line, .. } | WitnessStep::Repeated(line) => {
                Ok(WitnessAnswer::Cosigned(line))
            }
            WitnessStep::Conflict(held) => Ok(WitnessAnswer::Conflict(held)),
        }
    }

    /// The root of `region`'s replica at `size`, when the replica holds that many entries.
    fn replica_root(&self, region: &RegionCode, size: u64) -> Result<Option<[u8; 32]>, Refused> {
        let replicas = self.replicas().map_err(internal)?;
        match replicas.get(region) {
            Some(slot) if slot.replica.size() >= size => {
                slot.root_at(size).map(Some).map_err(internal)
            }
            _ => Ok(None),
        }
    }

    /// Applies a catch-up answer for `region` (specs/federation.md §5.2). An answer other than
    /// entries is refused with what it said (a `refused` answer: its code; anything else:
    /// `FED_MALFORMED`), for the caller to log and count.
    fn apply_catch_up(&self, region: &RegionCode, bytes: &[u8]) -> Result<(), Refused> {
        let (first, entries, checkpoint, proof) = match Response::decode(bytes)? {
            Response::Entries {
                first,
                entries,
                checkpoint,
                proof,
            } => (first, entries, checkpoint, proof),
            Response::Refused { code, detail } => {
                let code = Reason::ALL
                    .iter()
                    .copied()
                    .find(|r| r.as_str() == code)
                    .unwrap_or(Reason::Malformed);
                return Err(Refused::new(
                    code,
                    format!("{region}'s node answered: {detail}"),
                ));
            }
            other => {
                return Err(Refused::new(
                    Reason::Malformed,
                    format!("a catch-up request answered with {}", other.kind()),
                ));
            }
        };
        if self.is_misbehaving(region.as_str()) {
            return Err(Refused::new(Reason::Misbehaving, region.as_str()));
        }
        let witnesses = gossip::witnesses(&self.membership())?;
        let mut replicas = self.replicas().map_err(internal)?;
        let slot = replicas
            .get_mut(region)
            .ok_or_else(|| Refused::new(Reason::NotMember, region.as_str()))?;
        let head = slot
            .replica
            .open_checkpoint(&checkpoint, &witnesses)?
            .checkpoint;
        let size = slot.replica.size();
        if first > size {
            return Err(Refused::new(
                Reason::Gap,
                format!("answer from {first}, replica at {size}"),
            ));
        }
        let fresh = (size - first).min(entries.len() as u64) as usize;
        let rest = &entries[fresh..];
        if !rest.is_empty() {
            let snapshot = slot.log.state().map_err(internal)?;
            let progress =
                slot.replica
                    .apply_proven(size, rest, &head, &proof, &Rows(&snapshot))?;
            drop(snapshot);
            if let Some(refused) = self.commit_progress(&mut replicas, region, rest, progress)? {
                drop(replicas);
                return Err(self.refused_entry(
                    region,
                    "its log, proven by its checkpoint, breaks the log rules",
                    refused,
                ));
            }
        }
        match replicas.get_mut(region) {
            Some(slot) => self.on_checkpoint(slot, &checkpoint),
            None => Err(Refused::new(Reason::NotMember, region.as_str())),
        }
    }
}

/// The witness's cosignature of `checkpoint`, now, with the head it holds from then on.
fn cosign(
    checkpoint: &Checkpoint,
    head: Option<witness::Witnessed>,
    name: &str,
    key: &tongban_core::keys::SecretKey,
) -> Result<WitnessStep, Refused> {
    let head = head.ok_or_else(|| internal("a cosignature without a head to hold"))?;
    let time = now().map_err(internal)?.seconds();
    let line = witness::cosignature(checkpoint, time, name, key)?;
    Ok(WitnessStep::Cosigned { head, line })
}

fn text_pair(a: &[u8], b: &[u8]) -> (String, String) {
    (
        String::from_utf8_lossy(a).into_owned(),
        String::from_utf8_lossy(b).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_failure_never_penalises_the_sender() {
        let local = internal("storage: disk full");
        assert_eq!(local.code.as_str(), "FED_INTERNAL");
        assert!(matches!(acceptance(&Err(local)), MessageAcceptance::Ignore));
        let theirs = Refused::new(Reason::Malformed, "not CBOR");
        assert!(matches!(
            acceptance(&Err(theirs)),
            MessageAcceptance::Reject
        ));
        assert!(matches!(acceptance(&Ok(())), MessageAcceptance::Accept));
    }
}
