//! One whole ZLIB stream (RFC 1950), inflated with a bound: what status lists and offline QR texts
//! both carry. Each caller turns the three ways it fails into its own format's codes.

use std::io::Read;

use flate2::bufread::ZlibDecoder;

/// Why the bytes are not one whole ZLIB stream of at most the limit.
#[derive(Debug, thiserror::Error)]
pub enum InflateError {
    /// A bad header, corrupt data, a wrong Adler-32, or a stream cut short.
    #[error("does not inflate: {0}")]
    Corrupt(std::io::Error),
    #[error("inflates beyond {0} bytes")]
    TooLarge(u64),
    /// The stream ended before the bytes did: one input, one reading.
    #[error("bytes follow the ZLIB stream")]
    Trailing,
}

/// Inflates `compressed`, which must be exactly one ZLIB stream, stopping one byte past `limit`.
pub fn inflate_whole(compressed: &[u8], limit: u64) -> Result<Vec<u8>, InflateError> {
    let mut decoder = ZlibDecoder::new(compressed);
    let mut out = Vec::new();
    (&mut decoder)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(InflateError::Corrupt)?;
    if out.len() as u64 > limit {
        return Err(InflateError::TooLarge(limit));
    }
    // A stream cut short fails above; one that ended must be the last thing given.
    if !decoder.into_inner().is_empty() {
        return Err(InflateError::Trailing);
    }
    Ok(out)
}
