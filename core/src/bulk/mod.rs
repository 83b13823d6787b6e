//! The fast path for verifying many certificates (specs/bulk.md): the same verdict and code as
//! [`cert::verify`](crate::cert::verify) for every certificate, at the speed of batched signature
//! checks.
//!
//! The single path's stages are reused as they are: steps 1–6 ([`Envelope::open`]), step 7
//! ([`find_seal`](crate::cert::find_seal), over a [`SealTable`] prepared once per bundle),
//! steps 9–16 ([`verify_signed`](crate::cert::verify_signed), over a [`CompactStatus`]). Only
//! step 8 differs: signatures that pass the [`screen`] are checked together by the batch
//! [`equation`] (`ed25519_dalek::verify_batch`'s, with each seal key's terms gathered), and a failed batch is halved until `verify_strict` (the single
//! path's check) names the culprits. A [`DigestCache`] answers repeated certificates, and
//! [`pipeline`] spreads batches over threads with bounded memory.
//!
//! [`Envelope::open`]: crate::envelope::Envelope::open

pub mod backend;
pub mod batch;
pub mod cache;
pub mod equation;
pub mod pipeline;
pub mod screen;
pub mod seals;
pub mod status;

pub use backend::ed25519_backend;
pub use batch::{FastVerifier, Scratch, SignatureStats};
pub use cache::DigestCache;
pub use pipeline::{Batch, Config, Source, Summary, Work};
pub use seals::{PreparedSeal, SealTable};
pub use status::CompactStatus;

use crate::cert::{Verdict, Verification};
use crate::codes::{Code, Failure};

/// What the bulk verifier reports for one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub code: Code,
    /// The certificate's identifier, once its claims decoded (after the signature verified).
    pub id: Option<Box<str>>,
}

impl Outcome {
    /// The outcome the single path's [`Verification`] states.
    pub fn of(verification: Verification) -> Outcome {
        Outcome {
            verdict: verification.verdict,
            code: verification.code,
            id: verification.claims.map(|c| c.id.as_str().into()),
        }
    }

    pub fn failed(failure: &Failure) -> Outcome {
        Outcome {
            verdict: Verdict::Invalid,
            code: failure.code,
            id: None,
        }
    }

    /// Stands in a batch's output until the certificate's signature is decided.
    fn placeholder() -> Outcome {
        Outcome {
            verdict: Verdict::Invalid,
            code: Code::SignatureInvalid,
            id: None,
        }
    }
}
