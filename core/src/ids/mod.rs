//! Chinese registry identifiers that appear inside e-seals and e-licences.
//!
//! Every type here can only hold a value that passed validation, so code that
//! receives one never has to re-check it. Parsing is strict: nothing is
//! trimmed, case-folded or otherwise normalised, because these strings are
//! compared byte-for-byte against signed data and a "repaired" value would no
//! longer match what was signed.

pub mod identifier;
pub mod region;
pub mod resident_id;
pub mod uscc;

pub use identifier::{Identifier, IssuerCode, TypeCode, mod37_36_check};
pub use region::RegionCode;
pub use resident_id::ResidentId;
pub use uscc::Uscc;

/// A validated part held inline, so that parsing one allocates nothing; `too_long` should the
/// part not fit, which validation has already ruled out.
fn inline<const N: usize>(
    part: &str,
    too_long: IdError,
) -> Result<arrayvec::ArrayString<N>, IdError> {
    arrayvec::ArrayString::from(part).map_err(|_| too_long)
}

/// Why an identifier was rejected.
///
/// The reason is a fixed string so the error stays `Copy` and never echoes
/// the rejected input (which may be personal data) into logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum IdError {
    /// Unified Social Credit Code (GB 32100-2015).
    #[error("invalid unified social credit code: {0}")]
    Uscc(&'static str),
    /// E-licence identifier (GB/T 36904) or one of its parts.
    #[error("invalid e-licence identifier: {0}")]
    Identifier(&'static str),
    /// Administrative division code (GB/T 2260).
    #[error("invalid region code: {0}")]
    Region(&'static str),
    /// Resident identity number (GB 11643).
    #[error("invalid resident id: {0}")]
    ResidentId(&'static str),
}
