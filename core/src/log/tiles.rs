//! C2SP tlog-tiles paths: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, with `<N>` in
//! 3-digit groups, every group but the last prefixed with `x` (e.g. `x001/x234/067`).

/// Hashes (or entries) per full tile.
pub const TILE_WIDTH: u32 = 256;
/// Deepest level a tree of at most 2^64 leaves can have tiles at.
pub const MAX_LEVEL: u8 = 7;

/// A tile named by a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
