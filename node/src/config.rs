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
    /// Where the logs and their state are kept: redb files in the node's directory (the
    /// default) or a PostgreSQL database.
    #[serde(default)]
    pub storage: StorageConfig,
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
    /// Where the node's other processes (on PostgreSQL: standbys) reach this one when it is the
    /// sequencer, to have verification receipts logged. Without it, `http://` and the listen
    /// address (127.0.0.1 when that is every address): right when they share a host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_url: Option<PublicUrl>,
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
    pub fn as_str(&self) -> &str {
        &self.0
    }

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
            internal_url: None,
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

/// `[storage]`: the engine that keeps the node's logs, their state, indexes, certificate bytes
/// and replicas.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "engine", rename_all = "lowercase")]
pub enum StorageConfig {
    /// One redb file per log in the node's directory: embedded, nothing to install.
    #[default]
    Redb,
    /// A PostgreSQL server (README, "Storage: redb files or PostgreSQL").
    Postgres(PostgresConfig),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// A libpq connection URL or key=value string, e.g.
    /// `postgres://tongban@db.example:5432/tongban` (the password is best left to the server's
    /// authentication setup rather than written here).
    pub url: DatabaseUrl,
    /// The schema the node's tables live in: one database can hold several nodes' schemas.
    #[serde(default = "default_schema")]
    pub schema: SchemaName,
    /// Most pooled connections for reads (the log's writer has one of its own per log).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// The PEM file of the certificate authority the database server's certificate must chain
    /// to: with it, every connection is TLS (rustls), the server's certificate verified against
    /// this CA and the URL's host name; without it, plain TCP (and a URL that asks for TLS,
    /// `sslmode=require`, is refused, since nothing would verify the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<std::path::PathBuf>,
}

fn default_schema() -> SchemaName {
    SchemaName("tongban".to_owned())
}

fn default_pool_size() -> usize {
    16
}

/// A database connection string; shown redacted, since it may hold a password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(<redacted>)")
    }
}

/// A PostgreSQL schema name the node may create and set as its search path: a lowercase ASCII
/// letter or underscore, then lowercase letters, digits or underscores, at most 63 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SchemaName(String);

impl TryFrom<String> for SchemaName {
    type Error = String;

    fn try_from(name: String) -> Result<SchemaName, String> {
        let mut chars = name.chars();
        let first = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !(first && rest && name.len() <= 63 && !name.starts_with("pg_")) {
            return Err(format!(
                "schema {name:?}: a lowercase letter or _, then lowercase letters, digits or _, \
                 at most 63 bytes, not starting with pg_"
            ));
        }
        Ok(SchemaName(name))
    }
}

impl From<SchemaName> for String {
    fn from(name: SchemaName) -> String {
        name.0
    }
}

impl SchemaName {
    pub fn as_str(&self) -> &str {
        &self.0
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
    fn storage_is_redb_unless_postgres_is_named_with_a_url() {
        let parse = |text: &str| toml::from_str::<StorageConfig>(text);
        assert_eq!(parse("engine = \"redb\"").ok(), Some(StorageConfig::Redb));
        let pg = parse("engine = \"postgres\"\nurl = \"postgres://u:secret@h/db\"\n");
        let Ok(StorageConfig::Postgres(pg)) = pg else {
            panic!("{pg:?}")
        };
        assert_eq!(pg.schema.as_str(), "tongban");
        assert_eq!(pg.pool_size, 16);
        assert!(
            !format!("{pg:?}").contains("secret"),
            "the password is redacted"
        );
        assert!(parse("engine = \"postgres\"").is_err(), "a url is required");
        assert!(parse("engine = \"sqlite\"").is_err());
        for bad in ["Tongban", "1x", "a-b", "pg_catalog", "x; drop"] {
            let text = format!("engine = \"postgres\"\nurl = \"u\"\nschema = \"{bad}\"\n");
            assert!(parse(&text).is_err(), "{bad}");
        }
    }

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
