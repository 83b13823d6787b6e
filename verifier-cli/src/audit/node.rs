//! Reading a region log from its node (specs/log.md §7): the same input an audit bundle gives,
//! fetched in a fixed order, each response bounded, plus the node's hash tiles.

use std::time::Duration;

use serde::Deserialize;
use tongban_core::envelope::Kind;
use tongban_core::log::note::MAX_NOTE;
use tongban_core::log::tiles::{MAX_LEVEL, TILE_WIDTH, TilePath, decode_entry_bundle};

use super::AuditLog;
use super::http::{Client, FetchError};

/// `/v1/audit/log.vkey`: one verifier key line.
const MAX_VKEY: u64 = 4 << 10;
/// One page of `/v1/audit/checkpoints` (at most 1,000 notes of a few hundred bytes).
const MAX_CHECKPOINT_PAGE: u64 = 4 << 20;
/// The longest entry a tlog-tiles entry bundle can hold.
const MAX_ENTRY: u64 = u16::MAX as u64;

/// Whether `arg` names a node rather than a directory.
pub fn is_url(arg: &str) -> bool {
    let lower = arg.get(..8).unwrap_or(arg).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A node's base URL, without a trailing `/`; request paths are appended to it.
pub(crate) fn base(url: &str) -> Result<String, FetchError> {
    let invalid = |why: &str| FetchError::UrlInvalid {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    if url.contains(['?', '#']) {
        return Err(invalid("a node URL has no query or fragment"));
    }
    let base = url.trim_end_matches('/').to_owned();
    let uri: ureq::http::Uri = format!("{base}/checkpoint")
        .parse()
        .map_err(|e: ureq::http::uri::InvalidUri| invalid(&e.to_string()))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(base)
}

#[derive(Deserialize)]
struct CheckpointList {
    checkpoints: Vec<ListedCheckpoint>,
    /// Present while more may follow: the `after` of the next page.
    next: Option<u64>,
}

#[derive(Deserialize)]
struct ListedCheckpoint {
    size: u64,
    note: String,
}

/// Every checkpoint the node lists, page by page (specs/log.md §7.1). A page that does not move
/// forward is malformed: a node cannot keep the reader in a loop.
fn checkpoint_list(
    client: &Client,
    at: &dyn Fn(&str) -> String,
) -> Result<Vec<ListedCheckpoint>, FetchError> {
    let mut all = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let path = match after {
            None => "/v1/audit/checkpoints".to_owned(),
            Some(size) => format!("/v1/audit/checkpoints?after={size}"),
        };
        let page: CheckpointList =
            serde_json::from_slice(&client.get(&at(&path), MAX_CHECKPOINT_PAGE)?).map_err(|e| {
                FetchError::Malformed {
                    url: at(&path),
                    detail: format!("not a page of the checkpoint list ({e})"),
                }
            })?;
        all.extend(page.checkpoints);
        match page.next {
            None => return Ok(all),
            Some(next) if after.is_none_or(|a| next > a) => after = Some(next),
            Some(next) => {
                return Err(FetchError::Malformed {
                    url: at(&path),
                    detail: format!("next page after {next} does not move forward"),
                });
            }
        }
    }
}

/// The hash tiles of a tree of `size` entries, level by level: full tiles, then the partial one.
fn tiles_of_tree(size: u64) -> Vec<TilePath> {
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
fn tiles_of(count: u64) -> impl Iterator<Item = (u64, u32)> {
    let width = u64::from(TILE_WIDTH);
    let full = (0..count / width).map(|index| (index, TILE_WIDTH));
    // The remainder is below 256, so it fits.
    let partial = u32::try_from(count % width)
        .ok()
        .filter(|w| *w > 0)
        .map(|w| (count / width, w));
    full.chain(partial)
}

/// Whether to read the node's hash tiles too (an audit bundle has none to keep).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum HashTiles {
    Check,
    Skip,
}

/// The name under which a `/checkpoint` note that is not in the list is kept.
pub const SERVED_CHECKPOINT: &str = "served-latest.checkpoint";

/// Reads the log of the node at `url`, as of the largest checkpoint it lists.
pub fn fetch(url: &str, timeout: Duration, hash_tiles: HashTiles) -> Result<AuditLog, FetchError> {
    let base = base(url)?;
    let client = Client::new(timeout);
    let at = |path: &str| format!("{base}{path}");
    let text = |path: &str, bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| FetchError::Malformed {
            url: at(path),
            detail: "not UTF-8 text".into(),
        })
    };

    let log_key = text(
        "/v1/audit/log.vkey",
        client.get(&at("/v1/audit/log.vkey"), MAX_VKEY)?,
    )?;
    let trust = client.get(&at("/v1/trust-bundle"), Kind::TrustBundle.size_limit())?;
    // Before the list, so that the list (signed later) holds every checkpoint up to this one.
    let latest = client.get_unless_missing(&at("/checkpoint"), MAX_NOTE as u64)?;
    let list = checkpoint_list(&client, &at)?;
    let size = list.iter().map(|c| c.size).max().unwrap_or(0);
    let mut checkpoints: Vec<(String, Vec<u8>)> = list
        .into_iter()
        .map(|c| (format!("{:020}.checkpoint", c.size), c.note.into_bytes()))
        .collect();
    if let Some(latest) = latest
        && !checkpoints.iter().any(|(_, note)| *note == latest)
    {
        // Not in the list: checked like the others, so a fork served to tile clients shows.
        checkpoints.push((SERVED_CHECKPOINT.into(), latest));
    }

    let mut entries = Vec::new();
    for (index, width) in tiles_of(size) {
        let path = TilePath {
            level: None,
            index,
            width,
        };
        let url = at(&format!("/tile/{}", path.to_path()));
        let bytes = client.get(&url, u64::from(width) * (2 + MAX_ENTRY))?;
        entries.extend(decode_entry_bundle(&bytes, width).map_err(|e| {
            FetchError::TileMalformed {
                url,
                detail: e.to_string(),
            }
        })?);
    }

    let mut tiles = Vec::new();
    let wanted = match hash_tiles {
        HashTiles::Check => tiles_of_tree(size),
        HashTiles::Skip => Vec::new(),
    };
    for path in wanted {
        let bytes = client.get(
            &at(&format!("/tile/{}", path.to_path())),
            u64::from(path.width) * 32,
        )?;
        tiles.push((path, bytes));
    }

    Ok(AuditLog {
        source: base,
        log_key,
        trust,
        entries,
        checkpoints,
        hash_tiles: tiles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_directories_are_told_apart() {
        for url in [
            "http://127.0.0.1:8341",
            "HTTPS://node.example/341200/",
            "http://h",
        ] {
            assert!(is_url(url), "{url}");
        }
        for dir in ["./http://x", "http:/x", "audit", "", "https:"] {
            assert!(!is_url(dir), "{dir}");
        }
        assert_eq!(
            base("https://node.example/341200/").ok(),
            Some("https://node.example/341200".to_owned())
        );
        for bad in ["http://", "http://h/?x=1", "http://h/#top", "http://a b/"] {
            assert!(base(bad).is_err(), "{bad}");
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
