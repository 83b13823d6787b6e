//! E-certificates (电子证照): claims, selective disclosure, issuing and verifying
//! (specs/certificate.md, specs/verification.md).

pub mod claims;
pub mod disclosure;
pub mod issue;
pub mod verify;

pub use claims::{Claims, Predecessor, TrustLevel};
pub use disclosure::{Disclosure, FieldName, FieldValue, FieldValueRef, HolderIdType};
pub use issue::{Draft, Holder, Issued, SaltSource, issue, present};
pub use verify::{
    Inspection, StatusSource, StatusView, Verdict, Verification, find_seal, inspect, verify,
    verify_signed,
};
