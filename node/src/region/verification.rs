//! Verification: certificates of this region against its durable state, other regions' through
//! the federation's replicas, and the receipts logged for them.

use tongban_core::cert::Claims;

use tongban_core::cert::verify::StatusSource;
use tongban_core::cert::{self, Verification};
use tongban_core::envelope::{Envelope, Kind as EnvelopeKind};
use tongban_core::ids::Identifier;
use tongban_core::log::entry::{Act, LogEntry};
use tongban_core::status::State;
use tongban_core::values::Time;

use crate::log::Pending;
use crate::refusal::Refusal;

use super::{OwnStatus, Region, SubmittedReceipts, View, now};

/// Verifies certificates of other regions from what the federation replicated
/// (specs/federation.md §5).
pub trait PeerVerifier: Send + Sync {
    fn verify(&self, bytes: &[u8], now: Time) -> Result<Verification, Refusal>;
    /// Other regions' certificate status, as replicated, read as of `now`.
    fn status(&self, now: Time) -> Result<Box<dyn PeerStatus>, Refusal>;
}

/// Other regions' certificate status as a node holds it (its replicas), for core's verifier,
/// and what transfers need of it.
pub trait PeerStatus: StatusSource {
    /// Whether another region's log holds `id` as transferred out.
    fn transferred_out(&self, id: &Identifier) -> bool;
    /// A read that failed while core asked (and was answered as unknown): a local error.
    fn failed(&self) -> Result<(), Refusal>;
}

/// The status of a node that replicates no other region.
pub(crate) struct NoPeers;

impl StatusSource for NoPeers {
    fn view(&self, _: &Claims, _: Time) -> tongban_core::cert::verify::StatusView {
        tongban_core::cert::verify::StatusView::Unknown
    }

    fn promise_fulfilled(&self, _: &Claims, _: Time) -> bool {
        false
    }
}

impl PeerStatus for NoPeers {
    fn transferred_out(&self, _: &Identifier) -> bool {
        false
    }

    fn failed(&self) -> Result<(), Refusal> {
        Ok(())
    }
}

impl Region {
    /// Logs a batch of verification receipts, committed by `root`; returns the entry and its index
    /// once durable.
    pub fn log_receipts(
        &self,
        count: u64,
        root: [u8; 32],
        cross_region: u64,
    ) -> Result<SubmittedReceipts, Refusal> {
        let mut seq = self.sequencer()?;
        let entry = LogEntry {
            region: self.code.clone(),
            at: now()?,
            act: Act::Receipts {
                count,
                root,
                cross_region,
            },
        }
        .sign(&self.root)
        .map_err(|e| Refusal::internal(e.to_string()))?;
        let (index, pending) = self.submit(&mut seq, entry.clone(), &self.root, Vec::new())?;
        Ok((entry, index, pending))
    }

    /// Waits for a receipts entry submitted by [`Region::log_receipts`].
    pub fn receipts_durable(
        &self,
        index: u64,
        pending: Pending<std::ops::Range<u64>>,
    ) -> Result<u64, Refusal> {
        self.durable(index, pending)
    }

    /// Verifies a certificate against the node's trust and live status.
    pub fn verify(&self, bytes: &[u8]) -> Result<(Verification, Option<State>), Refusal> {
        let now = now()?;
        let view = self.view()?;
        // A seal this region does not know may be another member's: the federation's replicas
        // decide (their state codes are not this log's, so none is returned).
        if let Some(peers) = self.peers.get()
            && let Ok(envelope) = Envelope::open(bytes, EnvelopeKind::Certificate)
            && view.trust.seal(&envelope.kid).is_none()
        {
            let mut verification = peers.verify(bytes, now)?;
            self.settle_transfers(&mut verification, &self.own_status()?)?;
            return Ok((verification, None));
        }
        let own = self.own_status()?;
        let verification = self.verify_own(bytes, &view, &own, now)?;
        let state = match verification.claims.as_ref() {
            Some(claims) => own.record(&claims.id)?.map(|r| r.state),
            None => None,
        };
        Ok((verification, state))
    }

    /// Other regions' status as the federation replicated it (none before it is attached).
    pub(crate) fn peer_status(&self, now: Time) -> Result<Box<dyn PeerStatus>, Refusal> {
        match self.peers.get() {
            Some(peers) => peers.status(now),
            None => Ok(Box::new(NoPeers)),
        }
    }

    /// The status of this region's certificates: the durable state, read live.
    pub(crate) fn own_status(&self) -> Result<OwnStatus, Refusal> {
        Ok(OwnStatus::new(self.code.clone(), self.log.clone(), now()?))
    }

    /// Verifies a certificate of this region against the view and the durable state
    /// (verification.md §2, the state this log establishes as its status source), then the
    /// transfer rules.
    pub(super) fn verify_own(
        &self,
        bytes: &[u8],
        view: &View,
        own: &OwnStatus,
        now: Time,
    ) -> Result<Verification, Refusal> {
        let mut verification = cert::verify(bytes, &view.trust, own, now);
        own.failed()?;
        self.settle_transfers(&mut verification, own)?;
        Ok(verification)
    }

    /// specs/sharing.md §5.5: what this node knows of transfers, from its own log and its
    /// replicas, applied to a verification: never a predecessor and its successor valid at once.
    fn settle_transfers(
        &self,
        verification: &mut Verification,
        own: &OwnStatus,
    ) -> Result<(), Refusal> {
        let peers = self.peer_status(own.now())?;
        let failed = std::cell::RefCell::new(None);
        tongban_core::sharing::transfer::settle(verification, |id| {
            let here = own.transferred_away(id).unwrap_or_else(|e| {
                failed.borrow_mut().get_or_insert(e);
                false
            });
            here || peers.transferred_out(id)
        });
        peers.failed()?;
        match failed.into_inner() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}
