//! The federation (specs/federation.md): who the members are (a signed, versioned membership),
//! what travels between their nodes (gossip messages and request/response messages), and the
//! rules each node applies to it — replicating every other region's log, witnessing its
//! checkpoints, and recognising equivocation. Sans-I/O: the node moves the bytes.

pub mod evidence;
pub mod gossip;
pub mod membership;
pub mod replica;
pub mod wire;
pub mod witness;

pub use membership::{Member, Membership, MembershipContents};

/// Why a federation object or message was refused: a stable code (specs/federation.md §8) and a
/// detail for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", code.as_str())]
pub struct Refused {
    pub code: Reason,
    pub detail: String,
}

impl Refused {
    pub fn new(code: Reason, detail: impl Into<String>) -> Refused {
        Refused {
            code,
            detail: detail.into(),
        }
    }
}

pub(crate) fn refuse<T>(code: Reason, detail: impl Into<String>) -> Result<T, Refused> {
    Err(Refused::new(code, detail))
}

macro_rules! reasons {
    ($($variant:ident => $code:literal),* $(,)?) => {
        /// The stable codes of specs/federation.md §8.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason { $($variant),* }

        impl Reason {
            pub const ALL: &[Reason] = &[$(Reason::$variant),*];

            pub const fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $code),* }
            }
        }
    };
}

reasons! {
    TooLarge => "FED_TOO_LARGE",
    Malformed => "FED_MALFORMED",
    MembershipInvalid => "MEMBERSHIP_INVALID",
    MembershipNotExtending => "MEMBERSHIP_NOT_EXTENDING",
    MembershipFork => "MEMBERSHIP_FORK",
    NotMember => "NOT_MEMBER",
    Stale => "GOSSIP_STALE",
    EntryRejected => "ENTRY_REJECTED",
    EntryConflict => "ENTRY_CONFLICT",
    Gap => "LOG_GAP",
    NotHeld => "ENTRIES_NOT_HELD",
    CheckpointInvalid => "CHECKPOINT_INVALID",
    CheckpointMismatch => "CHECKPOINT_MISMATCH",
    ProofInvalid => "PROOF_INVALID",
    EvidenceInvalid => "EVIDENCE_INVALID",
    WitnessConflict => "WITNESS_CONFLICT",
    Equivocation => "EQUIVOCATION",
    Misbehaving => "REGION_MISBEHAVING",
    Internal => "FED_INTERNAL",
    Busy => "FED_BUSY",
}

impl Reason {
    /// Whether the refusal is the refusing node's own failure (its storage, a lock, its clock),
    /// which says nothing about the sender or what it sent.
    pub fn is_local(self) -> bool {
        self == Reason::Internal
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
