//! The node's configuration file, `config.toml` in its directory. Every tuning value has a default
//! that suits a region node; `init` writes them out so an operator sees what can be changed.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// GB/T 2260 division code of the region.
    pub region: String,
    /// The region's name, as the region root certificate names it.
    pub name: String,
    pub federation: FederationConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub receipts: ReceiptsConfig,
    #[serde(default)]
    pub promises: PromisesConfig,
    /// The federation (specs/federation.md §7); without it the node runs alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p: Option<P2pConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// The federation's name: the first part of every log origin.
    pub name: String,
    /// The federation root's public key, hex.
    pub root_key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; a larger declared `Content-Length` is answered
    /// 413 without reading the body.
    pub max_body_bytes: usize,
    /// Most connections open at once (kept below the open-file limit, which the node raises to
    /// its hard maximum at start). A connection beyond it takes the place of the one idle for
    /// longest, or is closed at once when all are busy.
    pub max_connections: usize,
    /// How long a request's head may take to arrive once its first byte has.
    pub header_timeout_ms: u64,
    /// How long a connection may wait for its next request (keep-alive).
    pub idle_timeout_ms: u64,
    /// How long a request's body may take to arrive once its head has.
    pub body_timeout_ms: u64,
    /// Where people reach this node's API from outside (behind a TLS terminator, say). When set,
    /// a presentation code's QR links the verification page there (`<url>/verify/#TBP1:…`), so a
    /// phone's camera opens the page with the code; without it the QR holds the code alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<PublicUrl>,
}

/// An `http` or `https` URL without a query or fragment, at most 200 characters: the base the
/// node's page is linked from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicUrl(String);

impl TryFrom<String> for PublicUrl {
    type Error = String;

    fn try_from(url: String) -> Result<PublicUrl, String> {
        let scheme = url.starts_with("https://") || url.starts_with("http://");
        let plain = url
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '#' | '?'));
        if !(scheme && plain && url.len() <= 200) {
            return Err(format!(
                "public_url {url:?}: an http(s) URL of at most 200 characters, without spaces, \
                 query or fragment"
            ));
        }
        Ok(PublicUrl(url.trim_end_matches('/').to_owned()))
    }
}

impl From<PublicUrl> for String {
    fn from(url: PublicUrl) -> String {
        url.0
    }
}

impl PublicUrl {
    /// The verification page there, opened with `fragment` (which never reaches a server).
    pub fn page(&self, fragment: &str) -> String {
        format!("{}/verify/#{fragment}", self.0)
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8341)),
            max_body_bytes: 256 * 1024,
            max_connections: 4096,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            body_timeout_ms: 30_000,
            public_url: None,
        }
    }
}

impl HttpConfig {
    pub fn limits(&self) -> crate::serve::Limits {
        crate::serve::Limits {
            max_connections: self.max_connections.max(1),
            header_timeout: std::time::Duration::from_millis(self.header_timeout_ms),
            idle_timeout: std::time::Duration::from_millis(self.idle_timeout_ms),
            body_timeout: std::time::Duration::from_millis(self.body_timeout_ms),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// The log generation: a new one starts a new origin and tree (specs/log.md §3).
    pub generation: u64,
    /// How often a checkpoint is signed when the log has grown.
    pub checkpoint_interval_ms: u64,
    /// Most entries one group commit takes.
    pub max_batch: usize,
    /// Memory for caching the log's and the state's pages, in MiB: the node's memory does not
    /// grow with the number of certificates beyond it.
    #[serde(default = "default_cache_mib")]
    pub cache_mib: usize,
}

fn default_cache_mib() -> usize {
    128
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            generation: 1,
            checkpoint_interval_ms: 1000,
            max_batch: 4096,
            cache_mib: default_cache_mib(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiptsConfig {
    /// How many receipt batches may wait for the log at once. While they all wait, verifications
    /// queue for the next batch, which is cut as soon as one of them is durable.
    pub in_flight: usize,
    /// How long a batch gathers verifications after its first one, once it may be cut (0: it
    /// takes what has queued and goes). The defaults (4 batches, 2 ms) make fewer, larger batches,
    /// cheaper to sign and commit; `in_flight = 1`, `window_us = 0` saves a lone verification
    /// the window's wait. Under load (32 connections, 2 cores shared with other work) the
    /// defaults gave more verifications/s in 12 of 19 back-to-back pairs of runs.
    pub window_us: u64,
    /// Most receipts one batch holds.
    pub max_batch: usize,
}

impl Default for ReceiptsConfig {
    fn default() -> Self {
        ReceiptsConfig {
            in_flight: 4,
            window_us: 2000,
            max_batch: 4096,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromisesConfig {
    /// How often lapsed promises are looked for.
    pub check_interval_ms: u64,
}

impl Default for PromisesConfig {
    fn default() -> Self {
        PromisesConfig {
            check_interval_ms: 1000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pConfig {
    /// libp2p multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/4341`.
    pub listen: Vec<String>,
    /// The membership file (specs/federation.md §2), relative to the node directory.
    pub membership: std::path::PathBuf,
    /// Peers to dial at start, as multiaddrs (with `/p2p/<PeerId>` where known).
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// How long a cosigning round waits for witnesses.
    #[serde(default = "default_cosign_timeout")]
    pub cosign_timeout_ms: u64,
    /// How often each other region's node is asked for entries the replica misses.
    #[serde(default = "default_catch_up")]
    pub catch_up_interval_ms: u64,
    /// Gossip and requests from the network the worker may have waiting; beyond it gossip is
    /// ignored and requests answered FED_BUSY (counted in tongban_federation_dropped_total).
    #[serde(default = "default_inbound_queue")]
    pub inbound_queue: usize,
    /// Whether a new replica keeps the entries of the other region's log, to serve catch-up
    /// to other members (specs/federation.md §5). By default a replica keeps the tree's hashes
    /// and the state the entries establish, not the entries: a fraction of the disk. An existing
    /// replica file keeps what it was created with; remove it to change (it is caught up anew).
    #[serde(default)]
    pub replica_entries: bool,
}

fn default_inbound_queue() -> usize {
    1024
}

impl P2pConfig {
    /// Listening on `listen`, with the membership file at `membership`, every tuning value its
    /// default.
    pub fn new(listen: Vec<String>, membership: std::path::PathBuf) -> P2pConfig {
        P2pConfig {
            listen,
            membership,
            bootstrap: Vec::new(),
            cosign_timeout_ms: default_cosign_timeout(),
            catch_up_interval_ms: default_catch_up(),
            inbound_queue: default_inbound_queue(),
            replica_entries: false,
        }
    }
}

fn default_cosign_timeout() -> u64 {
    5000
}

fn default_catch_up() -> u64 {
    2000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_is_an_http_url_without_query_or_fragment() {
        let ok = PublicUrl::try_from("https://zwfw.example.gov.cn/fy/".to_owned());
        assert_eq!(
            ok.map(|u| u.page("TBP1:341200-7KQ9M-2XDPT")),
            Ok("https://zwfw.example.gov.cn/fy/verify/#TBP1:341200-7KQ9M-2XDPT".to_owned())
        );
        for bad in [
            "ftp://x",
            "https://x/#a",
            "https://x/?a=b",
            "https://x y",
            "zwfw.example.gov.cn",
            &format!("https://{}", "x".repeat(200)),
        ] {
            assert!(PublicUrl::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }
}
