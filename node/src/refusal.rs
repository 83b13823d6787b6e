//! Why the node refuses a request: a kind (which becomes the HTTP status), a stable code from the
//! specs' registries, and a detail for people.

use tongban_core::codes::{Code, Failure};
use tongban_core::log::audit::FindingCode;
use tongban_core::log::state::Rejection;

use crate::log::LogError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 400: the request itself is wrong.
    Invalid,
    /// 401: no valid token.
    Unauthenticated,
    /// 403: a valid token that may not do this.
    Forbidden,
    /// 404
    NotFound,
    /// 405: a known path, a method it does not serve.
    MethodNotAllowed,
    /// 408: the request's body did not arrive in time.
    Timeout,
    /// 409: the request is well formed but the log's state refuses it.
    Conflict,
    /// 413
    TooLarge,
    /// 422: well formed, but not what was sent before under the same idempotency key.
    Unprocessable,
    /// 503: the node cannot take writes now.
    Unavailable,
    /// 500
    Internal,
}

impl Kind {
    /// The kind of a refusal with a sharing code (specs/sharing.md §6), whichever region gave it.
    pub fn of_sharing(code: Code) -> Kind {
        match code {
            Code::ShareNotAuthorised
            | Code::SealNotYetValid
            | Code::SealExpired
            | Code::SealRevoked => Kind::Forbidden,
            Code::CertificateNotLogged | Code::PresentationUnknown => Kind::NotFound,
            Code::TooLarge => Kind::TooLarge,
            Code::RegionMismatch | Code::ShareRequestStale | Code::PresentationMalformed => {
                Kind::Invalid
            }
            _ => Kind::Conflict,
        }
    }
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Refusal {
    pub kind: Kind,
    pub code: &'static str,
    pub detail: String,
    /// The log entry that recorded this refusal, when the node logs it (a refused share request).
    pub log_index: Option<u64>,
}

impl Refusal {
    /// A write asked of a process that is not its region's sequencer (a standby).
    pub fn not_sequencer() -> Refusal {
        Refusal::new(
            Kind::Unavailable,
            "NOT_SEQUENCER",
            "this node is a standby: another process of this region is its sequencer, and this \
             one takes over when it stops",
        )
    }

    pub fn new(kind: Kind, code: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            code,
            detail: detail.into(),
            log_index: None,
        }
    }

    /// The same refusal, recorded in the log at `index`.
    pub fn logged_at(mut self, index: u64) -> Refusal {
        self.log_index = Some(index);
        self
    }

    pub fn invalid(detail: impl Into<String>) -> Refusal {
        Refusal::new(Kind::Invalid, "INVALID_REQUEST", detail)
    }

    /// A request field that a core check refused, with the check's own code.
    pub fn from_failure(failure: Failure) -> Refusal {
        Refusal::new(Kind::Invalid, failure.code.as_str(), failure.detail)
    }

    pub fn code(kind: Kind, code: Code, detail: impl Into<String>) -> Refusal {
        Refusal::new(kind, code.as_str(), detail)
    }

    pub fn not_found(what: impl Into<String>) -> Refusal {
        Refusal::new(Kind::NotFound, "NOT_FOUND", what)
    }

    pub fn forbidden(detail: impl Into<String>) -> Refusal {
        Refusal::new(Kind::Forbidden, "FORBIDDEN", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Refusal {
        Refusal::new(Kind::Internal, "INTERNAL", detail)
    }
}

impl From<Rejection> for Refusal {
    fn from(r: Rejection) -> Refusal {
        let kind = match r.code {
            FindingCode::UnknownCertificate => Kind::NotFound,
            FindingCode::EntryMalformed
            | FindingCode::EntrySignature
            | FindingCode::EntryRegion => Kind::Internal,
            _ => Kind::Conflict,
        };
        Refusal::new(kind, r.code.as_str(), r.detail)
    }
}

impl From<LogError> for Refusal {
    fn from(e: LogError) -> Refusal {
        if let LogError::ReadOnly = e {
            return Refusal::not_sequencer();
        }
        tracing::error!(error = %e, "log failure");
        Refusal::new(Kind::Unavailable, "STORAGE_UNAVAILABLE", e.to_string())
    }
}
