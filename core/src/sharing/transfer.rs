//! What a verifier concludes from a transferred-in certificate and what it knows of its
//! predecessor in the origin region (specs/sharing.md §5.4).

use crate::cert::{StatusView, Verification};
use crate::codes::{Code, Failure};
use crate::ids::Identifier;
use crate::sharing::proof::VerifiedProof;
use crate::status::{State, Succession};

/// The link between a transferred-in successor and its predecessor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// The origin region's log shows the predecessor transferred out to the successor's region.
    Confirmed,
    /// The origin region lists the predecessor as transferred out (destination not known).
    Consistent,
    /// The origin region says otherwise: the two regions disagree on where the licence lives.
    Contradicted,
    /// Nothing is known of the origin region's view.
    Unknown,
}

impl Link {
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Confirmed => "confirmed",
            Link::Consistent => "consistent",
            Link::Contradicted => "contradicted",
            Link::Unknown => "unknown",
        }
    }
}

/// What the verifier holds about the predecessor.
#[derive(Clone, Copy, Debug)]
pub enum PredecessorEvidence<'a> {
    /// An authentic verification proof of the predecessor from its region (already verified).
    Proof(&'a VerifiedProof),
    /// The predecessor's entry in its region's status snapshot.
    Status(&'a StatusView),
    None,
}

/// The link between `successor` and its predecessor, or `None` when there is no link to assess
/// (the successor is not valid, or not a transfer in).
pub fn assess(successor: &Verification, evidence: PredecessorEvidence<'_>) -> Option<Link> {
    let claims = successor.claims.as_ref().filter(|_| successor.is_valid())?;
    let prev = claims
        .predecessor
        .as_ref()
        .filter(|p| p.how == Succession::TransferIn)?;
    Some(match evidence {
        PredecessorEvidence::Proof(proof) => {
            if proof.item.id.as_ref() != Some(&prev.id) {
                // A proof about another certificate says nothing of this one.
                Link::Unknown
            } else if proof.item.code == Code::StatusTransferredOut
                && proof.item.state == Some(State::TransferredOut)
                && proof.transferred_to() == Some(&claims.region)
            {
                Link::Confirmed
            } else {
                Link::Contradicted
            }
        }
        PredecessorEvidence::Status(StatusView::Listed {
            state: State::TransferredOut,
            ..
        }) => Link::Consistent,
        PredecessorEvidence::Status(StatusView::Listed { .. } | StatusView::Valid { .. }) => {
            Link::Contradicted
        }
        PredecessorEvidence::Status(StatusView::Unknown) | PredecessorEvidence::None => {
            Link::Unknown
        }
    })
}

/// specs/sharing.md §5.5, for a verifier that answers for the federation (a node): after
/// verification.md §2, a certificate that `transferred_out` knows to be transferred out of its
/// region is not valid (`STATUS_TRANSFERRED_OUT`), and a transferred-in successor is valid only
/// when `transferred_out` knows its predecessor to be (`TRANSFER_UNCONFIRMED` otherwise). Since
/// the origin accepts a transfer before the successor exists and never takes it back, a verifier
/// that applies both never reports a predecessor and its successor valid at once, however far
/// behind its knowledge of either region is.
pub fn settle(verification: &mut Verification, transferred_out: impl Fn(&Identifier) -> bool) {
    let Some(claims) = verification
        .claims
        .as_ref()
        .filter(|_| verification.is_valid())
    else {
        return;
    };
    let failure = if transferred_out(&claims.id) {
        Failure::new(
            Code::StatusTransferredOut,
            format!("{} is known to be transferred out of its region", claims.id),
        )
    } else {
        match claims
            .predecessor
            .as_ref()
            .filter(|p| p.how == Succession::TransferIn)
        {
            Some(prev) if !transferred_out(&prev.id) => Failure::new(
                Code::TransferUnconfirmed,
                format!(
                    "{} succeeds {} by a transfer in, which is not known to be transferred out",
                    claims.id, prev.id
                ),
            ),
            _ => return,
        }
    };
    verification.fail(failure);
}
