//! The registry of stable result codes (specs/verification.md §4).
//!
//! A code's string never changes meaning and is never reused: agencies' systems and auditors match on
//! it. Messages and details are for people and may change.

use std::fmt;

macro_rules! codes {
    ($($variant:ident => $name:literal, $about:literal;)*) => {
        /// A stable result code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $(#[doc = $about] $variant,)*
        }

        impl Code {
            /// Every code, in registry order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable string, e.g. `SIGNATURE_INVALID`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// A one-line explanation for people.
            pub const fn about(self) -> &'static str {
                match self { $(Code::$variant => $about,)* }
            }

            /// The code with this stable string.
            pub fn parse(name: &str) -> Option<Code> {
                match name { $($name => Some(Code::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    Ok => "OK", "every check passed";
    TooLarge => "TOO_LARGE", "input larger than the object's size limit";
    QrTooLarge => "QR_TOO_LARGE", "an offline QR text longer than 4,296 characters";
    QrPrefix => "QR_PREFIX", "an offline QR text that does not start with TB1:";
    QrEncoding => "QR_ENCODING", "an offline QR text whose body is not Base45";
    QrZlib => "QR_ZLIB", "an offline QR text whose bytes are not one whole ZLIB stream";
    CborTruncated => "CBOR_TRUNCATED", "input ends inside an item, or a length or count exceeds the bytes left";
    CborTrailingBytes => "CBOR_TRAILING_BYTES", "bytes after the top-level item";
    CborIndefiniteLength => "CBOR_INDEFINITE_LENGTH", "an indefinite-length string, array or map";
    CborNonMinimal => "CBOR_NON_MINIMAL", "an integer, length or count not in its shortest form";
    CborDuplicateKey => "CBOR_DUPLICATE_KEY", "a map key repeated";
    CborUnsupported => "CBOR_UNSUPPORTED", "a float, simple value, misplaced tag, or map key neither integer nor text";
    CborLimitExceeded => "CBOR_LIMIT_EXCEEDED", "nesting deeper than 16, or a length or count beyond the size limit";
    CborMalformed => "CBOR_MALFORMED", "reserved additional information, a stray break, or invalid UTF-8";
    CoseWrongTag => "COSE_WRONG_TAG", "not tagged as COSE_Sign1 (18)";
    CoseMalformed => "COSE_MALFORMED", "not [bstr, map, bstr, bstr(64)]";
    HeaderInvalid => "HEADER_INVALID", "protected or unprotected header not as the profile requires";
    AlgUnsupported => "ALG_UNSUPPORTED", "algorithm other than EdDSA (-8)";
    WrongType => "WRONG_TYPE", "typ names another kind of object";
    KidUnknown => "KID_UNKNOWN", "no e-seal in the trust bundle has this key id";
    SignatureInvalid => "SIGNATURE_INVALID", "the signature does not verify strictly";
    ClaimsInvalid => "CLAIMS_INVALID", "payload not a valid claims set of this version";
    IdentifierInvalid => "IDENTIFIER_INVALID", "identifier malformed or wrong check character";
    UsccInvalid => "USCC_INVALID", "unified social credit code malformed or wrong check character";
    DisclosureMalformed => "DISCLOSURE_MALFORMED", "a disclosure is not a valid [salt, name, value]";
    DisclosureMismatch => "DISCLOSURE_MISMATCH", "a disclosure's digest is not committed in the payload";
    DisclosureDuplicate => "DISCLOSURE_DUPLICATE", "the same disclosure or field name twice";
    SealRegionMismatch => "SEAL_REGION_MISMATCH", "certificate claims a region other than its seal's";
    IssuerMismatch => "ISSUER_MISMATCH", "issuing agency differs from the seal's agency";
    SealNotYetValid => "SEAL_NOT_YET_VALID", "stamped before the seal's validity";
    SealExpired => "SEAL_EXPIRED", "stamped after the seal's validity";
    SealRevoked => "SEAL_REVOKED", "stamped at or after the seal's revocation time";
    IssuedInFuture => "ISSUED_IN_FUTURE", "issued later than now plus the clock tolerance";
    NotYetValid => "NOT_YET_VALID", "before the start of validity";
    Expired => "EXPIRED", "at or after the end of validity";
    StatusSuspended => "STATUS_SUSPENDED", "state 02 suspended (暂扣)";
    StatusRevoked => "STATUS_REVOKED", "state 03 revoked (撤销)";
    StatusCancelled => "STATUS_CANCELLED", "state 04 cancelled (注销)";
    StatusExpired => "STATUS_EXPIRED", "state 05 expired (失效)";
    StatusTransferredOut => "STATUS_TRANSFERRED_OUT", "state 06 transferred out (转出)";
    StatusRevokedPenalty => "STATUS_REVOKED_PENALTY", "state 07 revoked as penalty (吊销)";
    StatusOther => "STATUS_OTHER", "state 99 other (其他)";
    PromiseLapsed => "PROMISE_LAPSED", "promise deadline passed without recorded fulfilment";
    TrustBundleInvalid => "TRUST_BUNDLE_INVALID", "the trust bundle failed to load";
    TrustBundleExpired => "TRUST_BUNDLE_EXPIRED", "the trust bundle is past its expiry";
    TrustBundleUntrusted => "TRUST_BUNDLE_UNTRUSTED", "the bundle's federation root is not the pinned one";
    WeakKey => "WEAK_KEY", "a trust bundle certifies a canonically encoded small-order public key";
    StatusSnapshotInvalid => "STATUS_SNAPSHOT_INVALID", "a status snapshot failed to load";
    StatusListInvalid => "STATUS_LIST_INVALID", "a status list failed to load";
    TransitionNotAllowed => "TRANSITION_NOT_ALLOWED", "a status operation refused by the transition rules";
    RegionMismatch => "REGION_MISMATCH", "an object names a region other than its signer's or the one it was sent to";
    CertificateNotLogged => "CERTIFICATE_NOT_LOGGED", "the issuing region's log holds no issuance of this certificate";
    ProofMismatch => "PROOF_MISMATCH", "a verification proof's parts disagree with each other or with the request";
    LogProofInvalid => "LOG_PROOF_INVALID", "a log key, checkpoint, cosignature quorum, inclusion proof or log entry signature does not verify";
    ShareNotAuthorised => "SHARE_NOT_AUTHORISED", "the requesting seal's sharing scope does not cover the certificate's type";
    ShareRequestStale => "SHARE_REQUEST_STALE", "a share request's time is too far from the answering node's clock";
    ShareFieldUnavailable => "SHARE_FIELD_UNAVAILABLE", "a requested field is not among the certificate's disclosures";
    CopyExpired => "COPY_EXPIRED", "at or after the purpose-bound copy's expiry";
    CopyWrongRecipient => "COPY_WRONG_RECIPIENT", "the copy is presented by a party other than its recipient";
    CopyMismatch => "COPY_MISMATCH", "the copy's certificate is not the one requested, or discloses other fields";
    TransferUnconfirmed => "TRANSFER_UNCONFIRMED", "a transferred-in certificate whose predecessor the verifier does not know to be transferred out";
    PresentationMalformed => "PRESENTATION_MALFORMED", "a presentation code that is not a region code and ten code characters";
    PresentationUnknown => "PRESENTATION_UNKNOWN", "no presentation with this code was made in the code's region";
    PresentationExpired => "PRESENTATION_EXPIRED", "at or after the presentation code's expiry";
    PresentationUsedUp => "PRESENTATION_USED_UP", "the presentation code was resolved as many times as its holder allowed";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed check: the stable code and a detail for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Failure {
    pub code: Code,
    pub detail: String,
}

impl Failure {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Failure {
            code,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {}", code.as_str());
            assert_eq!(Code::parse(code.as_str()), Some(code));
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_')
            );
        }
        assert_eq!(Code::parse("NOPE"), None);
    }

    #[test]
    fn registry_in_spec_lists_every_code() {
        let spec = include_str!("../../specs/verification.md");
        for &code in Code::ALL {
            assert!(
                spec.contains(&format!("| `{}` |", code.as_str())),
                "{} missing from specs/verification.md §4",
                code.as_str()
            );
        }
    }
}
