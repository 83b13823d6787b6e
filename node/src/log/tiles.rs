//! C2SP tlog-tiles coordinates: tiles of height 8 (256 hashes or entries wide).

use std::ops::Range;

use tongban_core::log::tiles::{self, EntryBundleError};

use super::LogError;

pub(crate) const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u32 = 1 << TILE_HEIGHT;

/// Checks that tile (`level`, `n`) of `width` lies within a tree of `size` entries, and returns
/// the range of nodes it covers at its level (entries, for level 0).
pub(crate) fn check_tile(level: u8, n: u64, width: u32, size: u64) -> Result<Range<u64>, LogError> {
    if !(1..=TILE_WIDTH).contains(&width) {
        return Err(LogError::InvalidArgument(format!(
            "tile width {width} is not in 1..={TILE_WIDTH}"
        )));
    }
    // Level L holds nodes of tree level 8L; beyond 7 a single node would span over 2^64 entries.
    if u32::from(level) * u32::from(TILE_HEIGHT) >= 64 {
        return Err(LogError::InvalidArgument(format!(
            "tile level {level} is beyond any tree"
        )));
    }
    // u128: n is caller-chosen and n*256 + width may not fit in u64.
    let first = u128::from(n) * u128::from(TILE_WIDTH);
    let end = first + u128::from(width);
    let entries_needed = end << (u32::from(level) * u32::from(TILE_HEIGHT));
    if entries_needed > u128::from(size) {
        return Err(LogError::BeyondSize {
            requested: u64::try_from(entries_needed).unwrap_or(u64::MAX),
            size,
        });
    }
    // Both fit in u64: they are at most entries_needed <= size.
    let first = u64::try_from(first).map_err(|_| LogError::InvalidArgument("tile index".into()))?;
    let end = u64::try_from(end).map_err(|_| LogError::InvalidArgument("tile index".into()))?;
    Ok(first..end)
}

/// Encodes entries as a C2SP tlog-tiles entry bundle (the format is core's, so auditors read what
/// the node writes).
pub fn encode_entry_bundle(entries: &[Vec<u8>]) -> Result<Vec<u8>, LogError> {
    tiles::encode_entry_bundle(entries).map_err(|e| match e {
        EntryBundleError::EntryTooLarge { len, .. } => LogError::EntryTooLarge {
            len,
            max: usize::from(u16::MAX),
        },
        other => LogError::InvalidArgument(other.to_string()),
    })
}
