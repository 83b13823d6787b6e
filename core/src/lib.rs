//! tongban-core: Tongban's formats and rules, with no I/O.
//!
//! Everything that decides "valid or not" lives here, once: the strict CBOR acceptance rules, the
//! signed envelope, trust bundles, e-seals, e-certificates with selective disclosure, the status
//! model, and the verification algorithm of `specs/verification.md`.

pub mod bulk;
pub mod cbor;
pub mod cert;
pub mod codes;
pub mod conformance;
pub mod encode;
pub mod envelope;
pub mod federation;
pub mod fields;
pub mod ids;
pub mod keys;
pub mod log;
pub mod qr;
pub mod sharing;
pub mod sm2_tables;
pub mod status;
pub mod suite;
/// Fixed test keys (with published seeds), fixtures and the vector generator: for tests, `gen`
/// and vector generation only, never in a production build (feature `testkit`).
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod trust;
pub mod values;
pub mod zlib;

pub use codes::{Code, Failure};
