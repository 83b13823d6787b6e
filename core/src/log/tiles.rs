//! C2SP tlog-tiles paths: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, with `<N>` in
//! 3-digit groups, every group but the last prefixed with `x` (e.g. `x001/x234/067`).

/// Hashes (or entries) per full tile.
pub const TILE_WIDTH: u32 = 256;
/// Deepest level a tree of at most 2^64 leaves can have tiles at.
pub const MAX_LEVEL: u8 = 7;

/// A tile named by a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TilePath {
    /// `None` for an entry bundle.
    pub level: Option<u8>,
    pub index: u64,
    /// 1..=256; 256 is a full tile (no `.p/` suffix).
    pub width: u32,
}

impl TilePath {
    /// Parses the part after `tile/`. Anything but the canonical spelling is refused, so one tile
    /// has one URL (and caches cannot be poisoned with aliases).
    pub fn parse(path: &str) -> Option<TilePath> {
        let (head, rest) = path.split_once('/')?;
        let level = match head {
            "entries" => None,
            l if l == "0" || (!l.starts_with('0') && l.len() <= 2) => {
                Some(l.parse::<u8>().ok().filter(|l| *l <= MAX_LEVEL)?)
            }
            _ => return None,
        };
        let (index_part, width) = match rest.split_once(".p/") {
            None => (rest, TILE_WIDTH),
            Some((index, w)) if !w.starts_with('0') && w.bytes().all(|b| b.is_ascii_digit()) => (
                index,
                w.parse::<u32>()
                    .ok()
                    .filter(|w| (1..TILE_WIDTH).contains(w))?,
            ),
            Some(_) => return None,
        };
        let groups: Vec<&str> = index_part.split('/').collect();
        let (last, leading) = groups.split_last()?;
        let mut index: u64 = 0;
        for (i, group) in groups.iter().enumerate() {
            let digits = if i < leading.len() {
                group.strip_prefix('x')?
            } else {
                last
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            index = index
                .checked_mul(1000)?
                .checked_add(digits.parse::<u64>().ok()?)?;
        }
        // A leading group of 000 would be a second spelling of a smaller index.
        if leading.first().is_some_and(|g| *g == "x000") {
            return None;
        }
        Some(TilePath {
            level,
            index,
            width,
        })
    }

    /// The path after `tile/`.
    pub fn to_path(self) -> String {
        let mut groups = vec![format!("{:03}", self.index % 1000)];
        let mut n = self.index / 1000;
        while n > 0 {
            groups.push(format!("x{:03}", n % 1000));
            n /= 1000;
        }
        groups.reverse();
        let level = self.level.map_or("entries".to_owned(), |l| l.to_string());
        let partial = if self.width == TILE_WIDTH {
            String::new()
        } else {
            format!(".p/{}", self.width)
        };
        format!("{level}/{}{partial}", groups.join("/"))
    }
}

/// Why bytes are not the entry bundle asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryBundleError {
    #[error("entry {index} is {len} bytes; an entry bundle holds at most 65,535")]
    EntryTooLarge { index: usize, len: usize },
    #[error("entry {index}'s length runs past the end of the bundle")]
    Truncated { index: usize },
    #[error("{found} entries where the tile's width is {width}")]
    Width { found: usize, width: u32 },
}

/// A C2SP tlog-tiles entry bundle: each entry as a big-endian uint16 length and its bytes.
pub fn encode_entry_bundle(entries: &[Vec<u8>]) -> Result<Vec<u8>, EntryBundleError> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
    for (index, entry) in entries.iter().enumerate() {
        let len = u16::try_from(entry.len()).map_err(|_| EntryBundleError::EntryTooLarge {
            index,
            len: entry.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// Reads an entry bundle that must hold exactly `width` entries (a tile's width), nothing after.
pub fn decode_entry_bundle(mut bytes: &[u8], width: u32) -> Result<Vec<Vec<u8>>, EntryBundleError> {
    let mut entries = Vec::with_capacity(width.min(TILE_WIDTH) as usize);
    while !bytes.is_empty() {
        let index = entries.len();
        if index >= width as usize {
            // Counting the rest only to say how many there were.
            return Err(EntryBundleError::Width {
                found: index + count_rest(bytes),
                width,
            });
        }
        let (len, rest) = bytes
            .split_first_chunk::<2>()
            .ok_or(EntryBundleError::Truncated { index })?;
        let len = usize::from(u16::from_be_bytes(*len));
        let entry = rest
            .get(..len)
            .ok_or(EntryBundleError::Truncated { index })?;
        entries.push(entry.to_vec());
        bytes = &rest[len..];
    }
    if entries.len() != width as usize {
        return Err(EntryBundleError::Width {
            found: entries.len(),
            width,
        });
    }
    Ok(entries)
}

/// How many length-prefixed entries `bytes` starts with (a partial last one counts).
fn count_rest(mut bytes: &[u8]) -> usize {
    let mut n = 0;
    while let Some((len, rest)) = bytes.split_first_chunk::<2>() {
        n += 1;
        bytes = rest
            .get(usize::from(u16::from_be_bytes(*len))..)
            .unwrap_or(&[]);
    }
    n + usize::from(!bytes.is_empty())
}

/// The hash tiles of a tree of `size` entries, level by level: full tiles, then the partial one.
pub fn tiles_of_tree(size: u64) -> Vec<TilePath> {
    let mut tiles = Vec::new();
    for level in 0..=MAX_LEVEL {
        let nodes = size >> (8 * u32::from(level));
        if nodes == 0 {
            break;
        }
        tiles.extend(tiles_of(nodes).map(|(index, width)| TilePath {
            level: Some(level),
            index,
            width,
        }));
    }
    tiles
}

/// (index, width) of the tiles covering `count` nodes (or entries) of one level.
pub fn tiles_of(count: u64) -> impl Iterator<Item = (u64, u32)> {
    let width = u64::from(TILE_WIDTH);
    let full = (0..count / width).map(|index| (index, TILE_WIDTH));
    // The remainder is below 256, so it fits.
    let partial = u32::try_from(count % width)
        .ok()
        .filter(|w| *w > 0)
        .map(|w| (count / width, w));
    full.chain(partial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bundles_round_trip_and_refuse_what_is_not_one() {
        let entries = vec![b"ab".to_vec(), vec![], vec![7; 300]];
        let bytes = encode_entry_bundle(&entries).unwrap_or_default();
        assert_eq!(bytes[..4], [0, 2, b'a', b'b']);
        assert_eq!(bytes[4..8], [0, 0, 1, 44]);
        assert_eq!(decode_entry_bundle(&bytes, 3), Ok(entries));
        assert_eq!(
            decode_entry_bundle(&bytes, 2),
            Err(EntryBundleError::Width { found: 3, width: 2 })
        );
        assert_eq!(
            decode_entry_bundle(&bytes, 4),
            Err(EntryBundleError::Width { found: 3, width: 4 })
        );
        assert_eq!(
            decode_entry_bundle(&bytes[..bytes.len() - 1], 3),
            Err(EntryBundleError::Truncated { index: 2 })
        );
        assert_eq!(
            decode_entry_bundle(&[0], 1),
            Err(EntryBundleError::Truncated { index: 0 })
        );
        assert_eq!(decode_entry_bundle(&[], 0), Ok(vec![]));
        assert_eq!(
            encode_entry_bundle(&[vec![], vec![0; 65_536]]),
            Err(EntryBundleError::EntryTooLarge {
                index: 1,
                len: 65_536
            })
        );
    }

    #[test]
    fn c2sp_examples_and_round_trips() {
        let t = TilePath::parse("1/x001/x234/067.p/8");
        assert_eq!(
            t,
            Some(TilePath {
                level: Some(1),
                index: 1_234_067,
                width: 8
            })
        );
        assert_eq!(
            TilePath::parse("entries/000"),
            Some(TilePath {
                level: None,
                index: 0,
                width: 256
            })
        );
        for t in [
            TilePath {
                level: Some(0),
                index: 0,
                width: 256,
            },
            TilePath {
                level: Some(3),
                index: 999,
                width: 1,
            },
            TilePath {
                level: None,
                index: 1000,
                width: 255,
            },
            TilePath {
                level: Some(2),
                index: u64::MAX / 256,
                width: 256,
            },
        ] {
            assert_eq!(TilePath::parse(&t.to_path()), Some(t), "{}", t.to_path());
        }
    }

    #[test]
    fn only_canonical_paths() {
        for bad in [
            "",
            "0",
            "0/",
            "00/000",
            "8/000",
            "0/00",
            "0/0000",
            "0/001.p/0",
            "0/001.p/256",
            "0/001.p/07",
            "0/x000/001",
            "0/001/002",
            "0/x1/002",
            "entries/abc",
            "data/000",
            "0/001.p/",
            "-1/000",
        ] {
            assert_eq!(TilePath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn tiles_cover_the_tree_and_nothing_more() {
        assert!(tiles_of_tree(0).is_empty());
        let paths = |size| -> Vec<String> {
            tiles_of_tree(size)
                .into_iter()
                .map(|t| t.to_path())
                .collect()
        };
        assert_eq!(paths(11), ["0/000.p/11"]);
        assert_eq!(paths(256), ["0/000", "1/000.p/1"]);
        assert_eq!(paths(600), ["0/000", "0/001", "0/002.p/88", "1/000.p/2"]);
        assert_eq!(tiles_of_tree(70_000).len(), 274 + 2 + 1);
        let entries: Vec<(u64, u32)> = tiles_of(513).collect();
        assert_eq!(entries, [(0, 256), (1, 256), (2, 1)]);
    }
}
