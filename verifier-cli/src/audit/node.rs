//! Reading a region log from its node (specs/log.md §7.1), streamed: the key, the trust bundle
//! and the served checkpoint first, then the checkpoint list a page at a time, each page's
//! checkpoints verified before the entries up to them are fetched, tile by tile, and the hash
//! tiles as the recomputed tree completes them. Every response is bounded, no size a node claims
//! is used before its signature is checked, and nothing is kept per entry or per checkpoint.

use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Duration;

use serde::Deserialize;
use tongban_core::envelope::Kind;
use tongban_core::log::auditor::{Finished, LogAudit};
use tongban_core::log::note::MAX_NOTE;
use tongban_core::log::tiles::{TILE_WIDTH, TilePath, decode_entry_bundle};

use super::http::{Client, FetchError};
use super::store::DiskStore;

/// `/v1/audit/log.vkey`: one verifier key line.
pub const MAX_VKEY: u64 = 4 << 10;
/// One page of `/v1/audit/checkpoints` (at most 1,000 notes of a few hundred bytes).
const MAX_CHECKPOINT_PAGE: u64 = 4 << 20;
/// The longest entry a tlog-tiles entry bundle can hold.
const MAX_ENTRY: u64 = u16::MAX as u64;
/// Most checkpoints a node may list, by default (`--max-checkpoints`): a node signing one a
/// second for four months. A list that goes on past the limit is refused rather than read forever.
pub const MAX_LISTED: u64 = 10_000_000;

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

/// The name under which a `/checkpoint` note that is not in the list is reported.
pub const SERVED_CHECKPOINT: &str = "served-latest.checkpoint";

/// A node's audit routes.
pub struct Node {
    client: Client,
    base: String,
    max_listed: u64,
}

impl Node {
    /// `timeout` bounds each request; `max_listed` the checkpoints read from its list.
    pub fn new(url: &str, timeout: Duration, max_listed: u64) -> Result<Node, FetchError> {
        Ok(Node {
            client: Client::new(timeout),
            base: base(url)?,
            max_listed,
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log_key(&self) -> Result<String, FetchError> {
        let path = "/v1/audit/log.vkey";
        String::from_utf8(self.client.get(&self.at(path), MAX_VKEY)?).map_err(|_| {
            FetchError::Malformed {
                url: self.at(path),
                detail: "not UTF-8 text".into(),
            }
        })
    }

    pub fn trust_bundle(&self) -> Result<Vec<u8>, FetchError> {
        self.client
            .get(&self.at("/v1/trust-bundle"), Kind::TrustBundle.size_limit())
    }

    /// The checkpoint the node serves to tile clients, if any.
    pub fn latest(&self) -> Result<Option<Vec<u8>>, FetchError> {
        self.client
            .get_unless_missing(&self.at("/checkpoint"), MAX_NOTE as u64)
    }

    /// The checkpoint list, page by page from the oldest: `(size, note)` of each, handed to
    /// `each` before the next page is read. A page that does not move forward, or a list longer
    /// than the reader's limit, is malformed: a node cannot keep its reader in a loop.
    pub fn checkpoints(
        &self,
        mut each: impl FnMut(&[(u64, Vec<u8>)]) -> Result<(), FetchError>,
    ) -> Result<u64, FetchError> {
        let mut after: Option<u64> = None;
        let mut listed = 0u64;
        loop {
            let path = match after {
                None => "/v1/audit/checkpoints".to_owned(),
                Some(size) => format!("/v1/audit/checkpoints?after={size}"),
            };
            let malformed = |detail: String| FetchError::Malformed {
                url: self.at(&path),
                detail,
            };
            let page: CheckpointList =
                serde_json::from_slice(&self.client.get(&self.at(&path), MAX_CHECKPOINT_PAGE)?)
                    .map_err(|e| malformed(format!("not a page of the checkpoint list ({e})")))?;
            listed += page.checkpoints.len() as u64;
            if listed > self.max_listed {
                return Err(malformed(format!(
                    "more than {} checkpoints listed (--max-checkpoints)",
                    self.max_listed
                )));
            }
            let notes: Vec<(u64, Vec<u8>)> = page
                .checkpoints
                .into_iter()
                .map(|c| (c.size, c.note.into_bytes()))
                .collect();
            each(&notes)?;
            match page.next {
                None => return Ok(listed),
                Some(next) if after.is_none_or(|a| next > a) => after = Some(next),
                Some(next) => {
                    return Err(malformed(format!(
                        "next page after {next} does not move forward"
                    )));
                }
            }
        }
    }

    /// Entries from `from` up to `to` (exclusive), at most one tile's worth: those of the tile
    /// that holds `from`.
    pub fn entries(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, FetchError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let width64 = u64::from(TILE_WIDTH);
        let index = from / width64;
        let end = to.min((index + 1) * width64);
        let width = u32::try_from(end - index * width64).unwrap_or(TILE_WIDTH);
        let path = TilePath {
            level: None,
            index,
            width,
        };
        let url = self.at(&format!("/tile/{}", path.to_path()));
        let bytes = self.client.get(&url, u64::from(width) * (2 + MAX_ENTRY))?;
        let mut entries =
            decode_entry_bundle(&bytes, width).map_err(|e| FetchError::TileMalformed {
                url,
                detail: e.to_string(),
            })?;
        let skip = usize::try_from(from - index * width64).unwrap_or(0);
        entries.drain(..skip.min(entries.len()));
        Ok(entries)
    }

    pub fn hash_tile(&self, path: TilePath) -> Result<Vec<u8>, FetchError> {
        self.client.get(
            &self.at(&format!("/tile/{}", path.to_path())),
            u64::from(path.width) * 32,
        )
    }
}

/// Whether to compare the node's hash tiles too.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum HashTiles {
    Check,
    Skip,
}

/// The node's entries in order, fetched a tile at a time: tiles as the tree of `target` entries
/// has them (full ones, and its last partial one), which a node serving a checkpoint of that
/// size must serve, whatever smaller sizes the audit stops at on the way.
struct Entries<'a> {
    node: &'a Node,
    /// The largest verified checkpoint size known: how far entries may be fetched.
    target: u64,
    /// Index of the first entry in `fetched`.
    next: u64,
    fetched: std::collections::VecDeque<Vec<u8>>,
}

/// Entry tiles fetched ahead of the rules, at most: the fetching thread waits for room, so what
/// is held stays bounded (each tile at most 256 entries of at most 64 KiB).
const TILES_AHEAD: usize = 2;

impl<'a> Entries<'a> {
    fn new(node: &'a Node, target: u64) -> Entries<'a> {
        Entries {
            node,
            target,
            next: 0,
            fetched: Default::default(),
        }
    }

    /// The entry at `index` (the one after the last taken), from the tiles `tiles` brings when
    /// none is left over.
    fn take(
        &mut self,
        index: u64,
        tiles: &Receiver<Result<Vec<Vec<u8>>, FetchError>>,
    ) -> Result<Vec<u8>, FetchError> {
        if self.fetched.is_empty() {
            // The fetching thread stops only after sending an error, or once it fetched up to
            // the size asked for, which the caller does not pass.
            self.fetched = tiles
                .recv()
                .map_err(|_| FetchError::TileMalformed {
                    url: self.node.url().to_owned(),
                    detail: format!("no entry served at {index}"),
                })??
                .into();
            self.next = index;
        }
        let entry = self
            .fetched
            .pop_front()
            .ok_or_else(|| FetchError::TileMalformed {
                url: self.node.url().to_owned(),
                detail: format!("no entry served at {index}"),
            })?;
        self.next += 1;
        Ok(entry)
    }
}

/// Feeds `audit` the node's entries until it holds `size`, and the hash tiles it completes. The
/// entry tiles are fetched by a thread of their own, ahead of the rules, so that the node's
/// answering and the audit's work overlap.
fn stream_to(
    entries: &mut Entries<'_>,
    audit: &mut LogAudit<DiskStore>,
    size: u64,
    progress: &super::Progress,
) -> Result<(), FetchError> {
    if entries.next != audit.size() {
        entries.fetched.clear();
        entries.next = audit.size();
    }
    let (node, target) = (entries.node, entries.target);
    let first_missing = entries.next + entries.fetched.len() as u64;
    std::thread::scope(|scope| {
        let (sender, tiles) = sync_channel(TILES_AHEAD);
        scope.spawn(move || {
            let mut from = first_missing;
            while from < size {
                let fetched = node.entries(from, target);
                let stop = match &fetched {
                    Ok(batch) if !batch.is_empty() => {
                        from += batch.len() as u64;
                        false
                    }
                    // Nothing more served: the reader reports the missing entry.
                    _ => true,
                };
                // A reader gone (it failed) wants nothing more.
                if sender.send(fetched).is_err() || stop {
                    return;
                }
            }
        });
        while audit.size() < size {
            audit.entry(entries.take(audit.size(), &tiles)?);
            progress.entry();
            if audit.size().is_multiple_of(u64::from(TILE_WIDTH)) || audit.size() == size {
                for path in audit.tiles_wanted() {
                    audit.served_tile(path, node.hash_tile(path)?);
                }
            }
        }
        Ok(())
    })
}

/// Audits the log of `node`, whose key and trust bundle the caller read (and checked against a
/// pinned federation root), as of the largest checkpoint it lists or serves **with a valid
/// signature**.
pub fn audit(
    node: &Node,
    log_key: &str,
    trust: &[u8],
    tiles: HashTiles,
    (store, batch, progress): (DiskStore, Option<[u8; 32]>, &super::Progress),
) -> Result<Finished<DiskStore>, FetchError> {
    let mut audit = LogAudit::with_store(log_key, trust, tiles == HashTiles::Check, store);
    if let Some(key) = batch {
        audit = audit.batched(key);
    }
    if !audit.is_open() {
        return Ok(audit.finish());
    }
    // The served checkpoint: its size (once its signature verifies) is how far entries may be
    // fetched; it is taken into the audit beside the listed one of its size, or after the list
    // when none is, so that a fork served to tile clients is reported as the served one.
    let latest = node.latest()?;
    let served = latest.as_ref().and_then(|note| audit.verified_size(note));
    let mut served_fed = false;
    let mut entries = Entries::new(node, served.unwrap_or(0));
    node.checkpoints(|page| {
        let mut page_largest = 0;
        for (size, note) in page {
            // The served one listed: checked under its list name, once.
            served_fed |= latest.as_ref() == Some(note);
            if let Some(verified) = audit.checkpoint(&format!("{size:020}.checkpoint"), note) {
                page_largest = page_largest.max(verified);
            }
        }
        if !served_fed
            && served.is_some_and(|s| s <= page_largest)
            && let Some(note) = &latest
        {
            audit.checkpoint(SERVED_CHECKPOINT, note);
            served_fed = true;
        }
        entries.target = entries.target.max(page_largest);
        stream_to(&mut entries, &mut audit, page_largest, progress)
    })?;
    if !served_fed && let Some(note) = &latest {
        // After the list: beyond every listed size, or not signed by the log (then reported,
        // its size used for nothing).
        audit.checkpoint(SERVED_CHECKPOINT, note);
    }
    let target = entries.target;
    stream_to(&mut entries, &mut audit, target, progress)?;
    for path in audit.partial_tiles() {
        audit.served_tile(path, node.hash_tile(path)?);
    }
    Ok(audit.finish())
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
}
