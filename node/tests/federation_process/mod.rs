//! Several `tongban-node` processes on loopback forming a federation: init with a shared
//! federation root, member descriptions, a signed membership, `[p2p]` configuration, start with
//! bootstrap addresses, and polling with deadlines (never fixed sleeps).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::node_process::{BIN, Node};

/// Runs `tongban-node` with `args`; panics with its stderr unless it succeeds.
pub fn tongban(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "tongban-node {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `init` of region `code` in `dir`, certified by `federation_key` (a new federation when None).
pub fn init(dir: &Path, code: &str, federation_key: Option<&Path>) -> Node {
    let mut args = vec![
        "init".to_owned(),
        "--region".into(),
        code.into(),
        "--name".into(),
        format!("地区{code}"),
        "--dir".into(),
        dir.display().to_string(),
        "--suite".into(),
        crate::node_process::suite(),
    ];
    if let Some(key) = federation_key {
        args.push("--federation-key".into());
        args.push(key.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdout = tongban(&args);
    let operator = stdout
        .split_whitespace()
        .find(|w| w.starts_with("tb_"))
        .expect("init prints the operator token")
        .to_owned();
    // Checkpoints often, so witnessing and catch-up tests do not wait for the default second.
    let config = dir.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "checkpoint_interval_ms = 1000",
        "checkpoint_interval_ms = 200",
    );
    std::fs::write(&config, text).unwrap();
    crate::node_process::use_test_storage(&config);
    Node {
        dir: dir.to_owned(),
        operator,
        child: None,
        addr: String::new(),
    }
}

/// Writes the member description of `node` and returns its path.
pub fn member_file(node: &Node) -> PathBuf {
    let json = tongban(&["federation", "member", "--dir", node.dir.to_str().unwrap()]);
    let path = node.dir.join("member.json");
    std::fs::write(&path, json).unwrap();
    path
}

/// Signs version 1 with `key` over `members`, written to `out`.
pub fn genesis(key: &Path, quorum: u64, members: &[PathBuf], out: &Path) {
    let mut args = vec![
        "federation".to_owned(),
        "genesis".into(),
        "--key".into(),
        key.display().to_string(),
        "--name".into(),
        "tongban.local".into(),
        "--quorum".into(),
        quorum.to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    for m in members {
        args.push("--member".into());
        args.push(m.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tongban(&args);
}

/// Adds a `[p2p]` section listening on a free loopback port.
pub fn enable_p2p(node: &Node, membership: &Path) {
    let config = node.dir.join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nmembership = \"{}\"\ncatch_up_interval_ms = 500\ncosign_timeout_ms = 2000\n",
        membership.display()
    ));
    std::fs::write(&config, text).unwrap();
}

/// Polls `probe` every 20 ms until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn status(node: &Node) -> Value {
    let reply = node.get("/v1/federation/status", None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// The node's p2p address (with /p2p/<PeerId>), once it listens.
pub fn p2p_address(node: &Node) -> String {
    wait_for(Duration::from_secs(10), "a p2p listen address", || {
        status(node)["listening"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

pub fn peer_id(node: &Node) -> String {
    status(node)["peer_id"].as_str().unwrap().to_owned()
}

/// Whether `node` is connected to every peer in `peers`.
pub fn connected_to(node: &Node, peers: &[String]) -> bool {
    let status = status(node);
    let connected: Vec<&str> = status["connected"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    peers.iter().all(|p| connected.contains(&p.as_str()))
}

/// A metric's value from `/metrics` (0 when absent).
pub fn metric(node: &Node, name_and_labels: &str) -> f64 {
    let text = node.get("/metrics", None).text();
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A federation of `regions.len()` members under the first member's federation root, started
/// one after another, each bootstrapping from the first.
pub struct Federation {
    pub nodes: Vec<Node>,
    pub membership: PathBuf,
    pub federation_key: PathBuf,
    pub bootstrap: String,
    _dir: tempfile::TempDir,
}

impl Federation {
    pub fn start(regions: &[&str], quorum: u64) -> Federation {
        Federation::start_with(regions, quorum, &[])
    }

    /// [`Federation::start`], with `p2p[i]`'s lines added to the `[p2p]` section of node `i`.
    pub fn start_with(regions: &[&str], quorum: u64, p2p: &[(usize, &str)]) -> Federation {
        let dir = tempfile::tempdir().unwrap();
        let first = init(&dir.path().join(regions[0]), regions[0], None);
        let federation_key = first.dir.join("keys/federation-root.key");
        let mut nodes = vec![first];
        for code in &regions[1..] {
            nodes.push(init(&dir.path().join(code), code, Some(&federation_key)));
        }
        let members: Vec<PathBuf> = nodes.iter().map(member_file).collect();
        let membership = dir.path().join("federation.tbm");
        genesis(&federation_key, quorum, &members, &membership);
        for node in &nodes {
            enable_p2p(node, &membership);
        }
        for (i, lines) in p2p {
            let config = nodes[*i].dir.join("config.toml");
            let mut text = std::fs::read_to_string(&config).unwrap();
            text.push_str(lines);
            text.push('\n');
            std::fs::write(&config, text).unwrap();
        }
        nodes[0].start();
        let bootstrap = p2p_address(&nodes[0]);
        for node in &mut nodes[1..] {
            node.start_with(&["--bootstrap".into(), bootstrap.clone()]);
        }
        let federation = Federation {
            nodes,
            membership,
            federation_key,
            bootstrap,
            _dir: dir,
        };
        federation.wait_connected(Duration::from_secs(30));
        federation
    }

    /// Waits until every node is connected to every other.
    pub fn wait_connected(&self, limit: Duration) {
        let ids: Vec<String> = self.nodes.iter().map(peer_id).collect();
        for (i, node) in self.nodes.iter().enumerate() {
            let others: Vec<String> = ids
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| p.clone())
                .collect();
            wait_for(limit, "a full mesh", || {
                connected_to(node, &others).then_some(())
            });
        }
    }

    pub fn restart(&mut self, i: usize) {
        let bootstrap = self.bootstrap.clone();
        self.nodes[i].start_with(&["--bootstrap".into(), bootstrap]);
    }
}

/// The size of `region`'s replica on `node`.
pub fn replica_size(node: &Node, region: &str) -> u64 {
    let reply = node.get(&format!("/v1/federation/regions/{region}"), None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["size"].as_u64().unwrap()
}

/// `node`'s own log size.
pub fn log_size(node: &Node) -> u64 {
    node.get("/healthz", None).json()["log_size"]
        .as_u64()
        .unwrap()
}
