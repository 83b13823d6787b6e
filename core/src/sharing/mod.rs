//! Cross-region acts (specs/sharing.md): verification proofs (核验回执), share requests and
//! purpose-bound copies (加注件), and what a verifier concludes from a transfer's two certificates.
//!
//! Every object here verifies offline against a trust bundle that holds the regions' roots and
//! seals; a node answering or recording one uses the same functions, so "valid or not" is decided
//! once.

pub mod copy;
pub mod presentation;
pub mod proof;
pub mod request;
pub mod transfer;

use std::fmt;

use crate::codes::{Code, Failure};
use crate::envelope::{Envelope, Kind};
use crate::ids::{RegionCode, Uscc};
use crate::suite::Suite;
use crate::trust::{RegionRoot, SealEntry, TrustStore};
use crate::values::Time;

pub use copy::{
    CopyContents, CopyInspection, CopyRequest, CopyVerification, inspect_copy, verify_copy,
};
pub use presentation::{
    OpenedPresentation, PresentationCode, PresentationRecord, PresentationRequest,
    PresentationTerms,
};
pub use proof::{ProofContents, ProofExpectation, ProofRequest, VerifiedProof, verify_proof};
pub use request::{Opened, OpenedRequest, ShareRequest};
pub use transfer::{Link, PredecessorEvidence, assess};

/// Object digest (specs/encoding.md §4): the federation suite's hash (BLAKE3 or SM3) of the exact
/// bytes received. Logs name proofs, requests and copies by it. The suite is the federation's
/// (its trust store's, or the node's root key's), not the object's: bytes that are not even an
/// envelope are named too.
pub fn object_digest(suite: Suite, bytes: &[u8]) -> [u8; 32] {
    suite.digest(bytes)
}

/// An agency of a region: who asks for data, and who may present a copy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Party {
    pub region: RegionCode,
    pub agency: Uscc,
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.agency.as_str())
    }
}

/// Steps 1–4 shared by the objects a region root signs (a proof, a copy): size and envelope, the
/// kid naming a region root of the bundle, and the strict signature under it.
fn open_region_signed<'a>(
    bytes: &'a [u8],
    kind: Kind,
    trust: &'a TrustStore,
) -> Result<(Envelope<'a>, &'a RegionRoot), Failure> {
    let envelope = Envelope::open(bytes, kind)?;
    let root = trust.region_by_kid(&envelope.kid).ok_or_else(|| {
        Failure::new(
            Code::KidUnknown,
            format!("no region root with key id {}", envelope.kid),
        )
    })?;
    envelope.verify(&root.key)?;
    crate::cbor::check(envelope.payload, kind.size_limit(), false)?;
    Ok((envelope, root))
}

/// Whether `seal` may act (sign) at `at`: within its validity and before its revocation.
fn seal_may_act(seal: &SealEntry, at: Time) -> Result<(), Failure> {
    let info = &seal.info;
    if at < info.valid_from {
        return Err(Failure::new(
            Code::SealNotYetValid,
            format!("seal {} not yet valid at {}", info.id, at.to_rfc3339()),
        ));
    }
    if at >= info.valid_until {
        return Err(Failure::new(
            Code::SealExpired,
            format!("seal {} expired before {}", info.id, at.to_rfc3339()),
        ));
    }
    if let Some(revocation) = &seal.revocation
        && at >= revocation.revoked_from
    {
        return Err(Failure::new(
            Code::SealRevoked,
            format!(
                "seal {} revoked from {} ({})",
                info.id,
                revocation.revoked_from.to_rfc3339(),
                revocation.reason
            ),
        ));
    }
    Ok(())
}

/// `REGION_MISMATCH` unless `found` is `expected`.
fn same_region(found: &RegionCode, expected: &RegionCode, what: &str) -> Result<(), Failure> {
    if found == expected {
        Ok(())
    } else {
        Err(Failure::new(
            Code::RegionMismatch,
            format!("{what} names region {found}, expected {expected}"),
        ))
    }
}

#[cfg(test)]
mod tests;
