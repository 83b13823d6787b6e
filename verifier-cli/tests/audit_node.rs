//! `tongban-verify audit replay <node URL>`: against a real `tongban-node` process on loopback, and
//! against a stand-in server on loopback that serves a log wrongly in each way the client refuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tongban_core::log::audit::encode_entries;
use tongban_core::log::proof::MemoryTree;
use tongban_core::log::tiles::encode_entry_bundle;
use tongban_core::testkit::log::{SampleLog, sample};

const VERIFY: &str = env!("CARGO_BIN_EXE_tongban-verify");
const AGENCY: &str = "11341200MB0000001F";
const TYPE_CODE: &str = "11100000000013338W001";
const HOLDER_USCC: &str = "91341200MA2T00001L";

/// The node binary. Cargo links it beside this crate's binary whenever the workspace's tests are
/// built (`cargo test --workspace`, as CI runs: the node's own tests need it); `TONGBAN_NODE`
/// names another build.
fn node_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TONGBAN_NODE") {
        return path.into();
    }
    let bin =
        Path::new(VERIFY).with_file_name(format!("tongban-node{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is not built: run `cargo test --workspace` (or `cargo build -p tongban-node` first), \
         or set TONGBAN_NODE",
        bin.display()
    );
    bin
}

/// Makes the node in `dir` the only member of the federation its `init` created.
fn federate(dir: &Path) {
    let member = Command::new(node_bin())
        .args(["federation", "member", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(member.status.success(), "{}", stderr(&member));
    std::fs::write(dir.join("member.json"), &member.stdout).unwrap();
    let genesis = Command::new(node_bin())
        .args(["federation", "genesis", "--name", "tongban.local", "--key"])
        .arg(dir.join("keys/federation-root.key"))
        .arg("--member")
        .arg(dir.join("member.json"))
        .arg("--out")
        .arg(dir.join("federation.tbm"))
        .output()
        .unwrap();
    assert!(genesis.status.success(), "{}", stderr(&genesis));
    let config = dir.join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nmembership = \"federation.tbm\"\n",
    );
    std::fs::write(&config, text).unwrap();
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("audit-node")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    dir
}

fn replay(args: &[&str]) -> Output {
    Command::new(VERIFY)
        .args(["audit", "replay"])
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `tongban-node` process, killed when dropped.
struct Node {
    child: Child,
    url: String,
    operator: String,
    agent: ureq::Agent,
}

impl Node {
    fn start(name: &str, region: &str, region_name: &str) -> Node {
        Node::start_with(name, region, region_name, false)
    }

    /// With `federated`, the node is the one member of a federation of its own (its p2p routes
    /// serve the federation-wide bundle and snapshots).
    fn start_with(name: &str, region: &str, region_name: &str, federated: bool) -> Node {
        let dir = scratch(name);
        let init = Command::new(node_bin())
            .args(["init", "--region", region, "--name", region_name, "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(init.status.success(), "{}", stderr(&init));
        let operator = stdout(&init)
            .split_whitespace()
            .find(|w| w.starts_with("tb_"))
            .expect("init prints the operator token")
            .to_owned();
        // Checkpoints often, so the test does not wait long for one.
        let config = dir.join("config.toml");
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "checkpoint_interval_ms = 1000",
            "checkpoint_interval_ms = 100",
        );
        std::fs::write(&config, text).unwrap();
        if federated {
            federate(&dir);
        }
        let mut child = Command::new(node_bin())
            .args(["run", "--listen", "127.0.0.1:0", "--dir"])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .expect("run prints its address")
            .trim();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Node {
            child,
            url: format!("http://{addr}"),
            operator,
            agent,
        }
    }

    fn get(&self, path: &str) -> Value {
        let mut reply = self
            .agent
            .get(format!("{}{path}", self.url))
            .call()
            .unwrap();
        assert_eq!(reply.status(), 200, "GET {path}");
        serde_json::from_slice(&reply.body_mut().read_to_vec().unwrap()).unwrap()
    }

    fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Value {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut reply = request.send(body.to_string()).unwrap();
        let status = reply.status().as_u16();
        let body: Value = serde_json::from_slice(&reply.body_mut().read_to_vec().unwrap()).unwrap();
        assert!((200..300).contains(&status), "POST {path}: {status} {body}");
        body
    }

    /// Waits until a checkpoint covers the whole log; returns the log's size.
    fn checkpointed(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let size = self.get("/healthz")["log_size"].as_u64().unwrap();
            let largest = self.get("/v1/audit/checkpoints")["checkpoints"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["size"].as_u64())
                .max();
            if largest == Some(size) {
                return size;
            }
            assert!(Instant::now() < deadline, "no checkpoint of size {size}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issues `count` certificates with a new agency's seal, suspends the first and verifies the
/// second; returns the identifiers.
/// Registers an agency and seal, issues `count` certificates and suspends the first; returns
/// their identifiers and certificates (base64).
fn activity(node: &Node, count: usize) -> (Vec<String>, Vec<String>) {
    let agency = node.post(
        "/v1/admin/agencies",
        Some(&node.operator),
        &json!({"uscc": AGENCY, "name": "阜阳市市场监督管理局"}),
    );
    let token = agency["token"].as_str().unwrap().to_owned();
    let seal = node.post(
        "/v1/admin/seals",
        Some(&node.operator),
        &json!({
            "agency_uscc": AGENCY, "seal_id": "FY-AMR-1", "seal_type": "approval",
            "name": "行政审批专用章", "valid_until": 2_000_000_000u64,
            "picture": "cG5n", "media_type": "image/png"
        }),
    );
    let kid = seal["kid"].as_str().unwrap().to_owned();
    let mut issued = Vec::new();
    let mut certificates = Vec::new();
    for serial in 0..count {
        let reply = node.post(
            "/v1/certificates",
            Some(&token),
            &json!({
                "seal": kid, "type_code": TYPE_CODE, "serial": format!("20260000{serial:02}"),
                "type_name": "营业执照", "level": "A",
                "holder": {"name": "阜阳市通办示范科技有限公司", "id_type": "USCC", "id_number": HOLDER_USCC},
                "licence": {"capital": 1_000_000, "scope": "软件开发"}
            }),
        );
        issued.push(reply["id"].as_str().unwrap().to_owned());
        certificates.push(reply["certificate"].as_str().unwrap().to_owned());
    }
    node.post(
        &format!("/v1/certificates/{}/status", issued[0]),
        Some(&token),
        &json!({"operation": "suspend"}),
    );
    let verified = node.post("/v1/verify", None, &json!({"certificate": certificates[1]}));
    assert_eq!(verified["code"], "OK");
    (issued, certificates)
}

#[test]
fn a_live_node_replays_clean_alone_and_beside_a_bundle_and_a_stopped_one_cannot_be_read() {
    let node = Node::start("fuyang", "341200", "阜阳市");
    activity(&node, 3);
    let size = node.checkpointed();

    let out = replay(&[&node.url, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let log = &v["logs"][0];
    assert_eq!(
        (&v["clean"], &log["source"]),
        (&json!(true), &json!(node.url))
    );
    assert_eq!(log["entries"], json!(size));
    assert_eq!(log["replayed"], json!(size));
    assert_eq!(log["largest_checkpoint"], json!(size));
    // A tree of fewer than 256 entries has one hash tile: the partial level-0 one.
    assert_eq!(log["hash_tiles_verified"], 1);
    let s = &log["statistics"];
    assert_eq!(s["issued"], 3);
    assert_eq!(s["issued_by_type"], json!({TYPE_CODE: 3}));
    assert_eq!(s["issued_by_agency"], json!({AGENCY: 3}));
    assert_eq!(s["status_changes_by_state"], json!({"suspended": 1}));
    assert_eq!(s["final_states"], json!({"suspended": 1, "valid": 2}));
    assert_eq!(
        (&s["verifications"], &s["verifications_cross_region"]),
        (&json!(1), &json!(0))
    );
    // Counts, never a list of every certificate: a region's report stays small.
    assert!(log.get("certificates").is_none());

    // Exported as a bundle, the log replays to the same report.
    let exported = scratch("exported");
    let out = Command::new(VERIFY)
        .args(["audit", "export", &node.url])
        .arg(&exported)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("wrote {size} entries and ")),
        "{}",
        stdout(&out)
    );
    let again = replay(&[&exported.display().to_string(), "--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    for key in [
        "statistics",
        "certificates",
        "entries",
        "checkpoints_verified",
    ] {
        assert_eq!(again["logs"][0][key], log[key], "{key}");
    }
    let out = Command::new(VERIFY)
        .args(["audit", "export", &node.url])
        .arg(&exported)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "exporting over a bundle");
    assert!(stderr(&out).contains("is not empty"), "{}", stderr(&out));

    // A bundle directory of another region and the node in one call; text for people.
    let bundle = write_bundle("beside-node", &sample().unwrap());
    let bundle = bundle.display().to_string();
    let out = replay(&[&bundle, &format!("{}/", node.url)]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert_eq!(text.matches("CLEAN").count(), 2, "{text}");
    assert!(
        text.contains(&format!("CLEAN (region 341200, {bundle})")),
        "{text}"
    );
    assert!(text.contains(&node.url), "{text}");
    assert!(
        text.contains("issued          3 (0 transferred in)"),
        "{text}"
    );
    assert!(
        text.contains("hash tiles      1 served by the node"),
        "{text}"
    );

    // The same node stopped: the call cannot finish, and says why.
    let url = node.url.clone();
    drop(node);
    for args in [vec![url.as_str()], vec![bundle.as_str(), url.as_str()]] {
        let out = replay(&args);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        assert!(stdout(&out).is_empty());
        let err = stderr(&out);
        assert!(
            err.contains("NODE_UNREACHABLE") && err.contains(&format!("{url}/v1/audit/log.vkey")),
            "{err}"
        );
    }
}

#[test]
fn a_node_whose_log_spans_tiles_replays_clean() {
    // 256 entries and more: full entry and hash tiles, a partial tail, and a level-1 tile.
    let node = Node::start("many", "341200", "阜阳市");
    activity(&node, 260);
    let size = node.checkpointed();
    assert!(size > 256, "{size}");
    let out = replay(&[&node.url, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["logs"][0]["entries"], json!(size));
    assert_eq!(v["logs"][0]["statistics"]["issued"], 260);
    // Level 0: one full and one partial tile; level 1: one partial tile.
    assert_eq!(v["logs"][0]["hash_tiles_verified"], 3);
}

fn write_bundle(name: &str, log: &SampleLog) -> PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
    std::fs::write(dir.join("log.vkey"), format!("{}\n", log.vkey)).unwrap();
    std::fs::write(dir.join("trust.tbt"), &log.trust_bundle).unwrap();
    std::fs::write(dir.join("entries"), encode_entries(&log.entries)).unwrap();
    for (name, note) in &log.checkpoints {
        std::fs::write(dir.join("checkpoints").join(name), note).unwrap();
    }
    dir
}

/// What the stand-in server answers for a path.
#[derive(Clone)]
enum Answer {
    Body(u16, Vec<u8>),
    /// Accepts the request and never answers.
    Silence,
}

/// A stand-in node on loopback serving fixed answers, one connection at a time, for as long as
/// the test process lives.
fn serve(answers: HashMap<String, Answer>) -> String {
    serve_with(move |path| answers.get(path).cloned())
}

/// A stand-in node whose answers `answers` makes up per path.
fn serve_with(answers: impl Fn(&str) -> Option<Answer> + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let answers = Arc::new(answers);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let answers = answers.clone();
            std::thread::spawn(move || answer(stream, &*answers));
        }
    });
    format!("http://{addr}")
}

fn answer(mut stream: TcpStream, answers: &dyn Fn(&str) -> Option<Answer>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or_default();
    match answers(path) {
        Some(Answer::Silence) => std::thread::sleep(Duration::from_secs(30)),
        found => {
            let (status, body) = match found {
                Some(Answer::Body(status, body)) => (status, body),
                _ => (404, b"not here\n".to_vec()),
            };
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = stream.write_all(&body);
        }
    }
}

/// The sample log (11 entries, checkpoints at 3, 7 and 11) as a node serves it.
fn served_sample() -> HashMap<String, Answer> {
    let log = sample().unwrap();
    let mut tree = MemoryTree::new(tongban_core::suite::Suite::Ed25519);
    for e in &log.entries {
        tree.append(e).unwrap();
    }
    let checkpoints: Vec<Value> = log
        .checkpoints
        .iter()
        .map(|(name, note)| {
            let size: u64 = name.trim_end_matches(".checkpoint").parse().unwrap();
            json!({"size": size, "note": String::from_utf8_lossy(note)})
        })
        .collect();
    let ok = |body: Vec<u8>| Answer::Body(200, body);
    HashMap::from([
        (
            "/v1/audit/log.vkey".to_owned(),
            ok(format!("{}\n", log.vkey).into_bytes()),
        ),
        ("/v1/trust-bundle".to_owned(), ok(log.trust_bundle.clone())),
        (
            "/checkpoint".to_owned(),
            ok(log.checkpoints.last().unwrap().1.clone()),
        ),
        (
            "/v1/audit/checkpoints".to_owned(),
            ok(json!({ "checkpoints": checkpoints })
                .to_string()
                .into_bytes()),
        ),
        (
            "/tile/entries/000.p/11".to_owned(),
            ok(encode_entry_bundle(&log.entries).unwrap()),
        ),
        (
            "/tile/0/000.p/11".to_owned(),
            ok(tree.tile(0, 0, 11).unwrap()),
        ),
    ])
}

#[test]
fn what_a_node_serves_wrongly_is_refused_or_reported() {
    // Served right, the stand-in replays clean: the cases below differ from it in one answer.
    let url = serve(served_sample());
    let out = replay(&[&url]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("3 verified, largest size 11"),
        "{}",
        stdout(&out)
    );

    let with = |path: &str, answer: Answer| {
        let mut answers = served_sample();
        answers.insert(path.to_owned(), answer);
        serve(answers)
    };
    let mut tile = served_sample();
    let Some(Answer::Body(_, hashes)) = tile.get_mut("/tile/0/000.p/11") else {
        unreachable!()
    };
    hashes[4 * 32] ^= 1;
    let forged_tile = serve(tile);
    let out = replay(&[&forged_tile, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["logs"][0]["findings"][0]["code"], "TILE_HASH");
    assert_eq!(v["logs"][0]["findings"][0]["tile"], "0/000.p/11");
    // The served /checkpoint is not one of the listed: a fork served to tile clients.
    let log = sample().unwrap();
    let mut fork = sample().unwrap();
    fork.entries[10] = fork.entries[9].clone();
    let forked = with(
        "/checkpoint",
        Answer::Body(200, fork.checkpoint(11).unwrap()),
    );
    let text = stdout(&replay(&[&forked]));
    assert!(
        text.contains("checkpoint served-latest.checkpoint: EQUIVOCATION"),
        "{text}"
    );

    // The list in pages of one: read to the end, the same clean replay.
    let mut paged = served_sample();
    let listed: Vec<Value> = log
        .checkpoints
        .iter()
        .map(|(name, note)| {
            let size: u64 = name.trim_end_matches(".checkpoint").parse().unwrap();
            json!({"size": size, "note": String::from_utf8_lossy(note)})
        })
        .collect();
    let page = |i: usize| {
        let mut body = json!({"checkpoints": [listed[i].clone()]});
        if i + 1 < listed.len() {
            body["next"] = listed[i]["size"].clone();
        }
        Answer::Body(200, body.to_string().into_bytes())
    };
    paged.insert("/v1/audit/checkpoints".to_owned(), page(0));
    for i in 1..listed.len() {
        let after = listed[i - 1]["size"].as_u64().unwrap();
        paged.insert(format!("/v1/audit/checkpoints?after={after}"), page(i));
    }
    let out = replay(&[&serve(paged)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 verified, largest size 11"),
        "{}",
        stdout(&out)
    );
    // A `next` that does not move forward would keep a reader in a loop.
    let mut looping = served_sample();
    let first = listed[0]["size"].as_u64().unwrap();
    let again = json!({"checkpoints": [listed[0].clone()], "next": first}).to_string();
    looping.insert(
        "/v1/audit/checkpoints".to_owned(),
        Answer::Body(200, again.clone().into_bytes()),
    );
    looping.insert(
        format!("/v1/audit/checkpoints?after={first}"),
        Answer::Body(200, again.into_bytes()),
    );
    let looping = serve(looping);

    let big = vec![b'x'; 5 << 10];
    let refused = [
        (
            with("/v1/audit/log.vkey", Answer::Body(200, big)),
            vec![],
            "RESPONSE_TOO_LARGE",
        ),
        (
            with("/tile/entries/000.p/11", Answer::Body(200, vec![0, 9, 1])),
            vec![],
            "TILE_MALFORMED",
        ),
        (
            with(
                "/tile/entries/000.p/11",
                Answer::Body(200, encode_entry_bundle(&log.entries[..10]).unwrap()),
            ),
            vec![],
            "TILE_MALFORMED",
        ),
        (
            with("/v1/trust-bundle", Answer::Body(503, b"busy".to_vec())),
            vec![],
            "HTTP_STATUS",
        ),
        (
            with("/tile/0/000.p/11", Answer::Body(404, vec![])),
            vec![],
            "HTTP_STATUS",
        ),
        (
            with("/v1/audit/checkpoints", Answer::Body(200, b"[]".to_vec())),
            vec![],
            "RESPONSE_MALFORMED",
        ),
        (
            with("/v1/audit/log.vkey", Answer::Silence),
            vec!["--timeout", "1"],
            "NODE_TIMEOUT",
        ),
        (looping, vec![], "RESPONSE_MALFORMED"),
        ("http://127.0.0.1:1".to_owned(), vec![], "NODE_UNREACHABLE"),
        (
            "http://node.example/?x".to_owned(),
            vec![],
            "NODE_URL_INVALID",
        ),
    ];
    for (url, extra, code) in refused {
        let mut args = vec![url.as_str()];
        args.extend(extra);
        let out = replay(&args);
        assert_eq!(out.status.code(), Some(2), "{url}: {}", stdout(&out));
        assert!(stderr(&out).contains(code), "{url}: {}", stderr(&out));
    }
}

fn tongban(args: &[&str]) -> Output {
    Command::new(VERIFY).args(args).output().unwrap()
}

#[test]
fn fetch_downloads_checked_trust_and_status_for_offline_verification() {
    for federated in [false, true] {
        let name = if federated {
            "fetch-federated"
        } else {
            "fetch-alone"
        };
        let node = Node::start_with(name, "341200", "阜阳市", federated);
        let (_, certificates) = activity(&node, 2);
        let dir = scratch(&format!("{name}-out"));
        let dir_arg = dir.to_str().unwrap();
        let out = tongban(&["fetch", &node.url, dir_arg]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("341200 阜阳市: status list"),
            "{}",
            stdout(&out)
        );
        // The first certificate was suspended: offline, with the fetched files, it says so.
        let check = |b64: &str| {
            let file = dir.join("certificate.tbc");
            std::fs::write(&file, B64.decode(b64).unwrap()).unwrap();
            let out = tongban(&[
                "verify",
                file.to_str().unwrap(),
                "--trust",
                dir.join("bundle.tbt").to_str().unwrap(),
                "--status",
                dir.join("status-341200.tsl").to_str().unwrap(),
                "--json",
            ]);
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            report["code"].as_str().unwrap().to_owned()
        };
        assert_eq!(check(&certificates[0]), "STATUS_SUSPENDED");
        assert_eq!(check(&certificates[1]), "OK");
        // Into a directory that is not empty; pinned to another federation root.
        let out = tongban(&["fetch", &node.url, dir_arg]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
        let other = scratch(&format!("{name}-other"));
        let out = tongban(&[
            "fetch",
            &node.url,
            other.to_str().unwrap(),
            "--federation-kid",
            "00112233445566778899aabbccddeeff",
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        assert!(!other.join("bundle.tbt").exists());
    }
    // Nobody listening.
    let out = tongban(&[
        "fetch",
        "http://127.0.0.1:9",
        scratch("fetch-down").to_str().unwrap(),
        "--timeout",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("NODE_UNREACHABLE"),
        "{}",
        stderr(&out)
    );
}

/// Peak resident memory of a process, in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A node's signed checkpoint of a log it makes up.
struct Forger {
    key: tongban_core::keys::SecretKey,
    origin: String,
}

impl Forger {
    fn new(name: &str) -> Forger {
        Forger {
            key: tongban_core::testkit::key(name).unwrap(),
            origin: "tongban.example/341200/log/1".to_owned(),
        }
    }

    fn vkey(&self) -> String {
        tongban_core::log::note::NoteVerifier::new(
            &self.origin,
            tongban_core::log::note::NoteRole::Log,
            self.key.public().clone(),
        )
        .unwrap()
        .to_vkey()
    }

    fn note(&self, size: u64, root: [u8; 32]) -> Vec<u8> {
        tongban_core::log::checkpoint::Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
        }
        .sign(&self.origin, &self.key)
        .unwrap()
        .into_bytes()
    }
}

/// The made-up log's entry `i`.
fn made_up(i: u64) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// Hash tile `level`/`index` (full) of the made-up log, for levels 0 and 1.
fn made_up_tile(level: u8, index: u64) -> Vec<u8> {
    let tree = |first: u64| {
        let mut tree = MemoryTree::new(tongban_core::suite::Suite::Ed25519);
        for i in first..first + 256 {
            tree.append(&made_up(i)).unwrap();
        }
        tree
    };
    match level {
        0 => tree(index * 256).tile(0, 0, 256).unwrap(),
        _ => (0..256)
            .map(|j| tree((index * 256 + j) * 256).root(256).unwrap())
            .collect::<Vec<_>>()
            .concat(),
    }
}

#[test]
fn a_hostile_node_cannot_exhaust_the_auditor() {
    let trust = sample().unwrap().trust_bundle;
    // A size of 2^40 claimed by checkpoints the log's key never signed: refused at once, and no
    // entry is fetched for them.
    let forger = Forger::new("hostile log");
    let stranger = Forger::new("not the log's key");
    let huge = stranger.note(1 << 40, [9; 32]);
    let listed =
        json!({"checkpoints": [{"size": 1u64 << 40, "note": String::from_utf8_lossy(&huge)}]});
    let unsigned = serve(HashMap::from([
        (
            "/v1/audit/log.vkey".to_owned(),
            Answer::Body(200, forger.vkey().into_bytes()),
        ),
        (
            "/v1/trust-bundle".to_owned(),
            Answer::Body(200, trust.clone()),
        ),
        ("/checkpoint".to_owned(), Answer::Body(200, huge.clone())),
        (
            "/v1/audit/checkpoints".to_owned(),
            Answer::Body(200, listed.to_string().into_bytes()),
        ),
    ]));
    let started = Instant::now();
    let out = replay(&[&unsigned, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["logs"][0]["entries"], 0);
    let codes: Vec<&str> = v["logs"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    // The served checkpoint is the listed one: reported once.
    assert_eq!(codes, ["CHECKPOINT_SIGNATURE"]);
    assert!(started.elapsed() < Duration::from_secs(5));

    // A list that never ends (each page moves forward): read up to the limit, then refused.
    let endless = {
        let (vkey, trust) = (forger.vkey(), trust.clone());
        let note = String::from_utf8_lossy(&huge).into_owned();
        serve_with(move |path| {
            let after: u64 = match path {
                "/v1/audit/log.vkey" => return Some(Answer::Body(200, vkey.clone().into_bytes())),
                "/v1/trust-bundle" => return Some(Answer::Body(200, trust.clone())),
                "/v1/audit/checkpoints" => 0,
                p => p
                    .strip_prefix("/v1/audit/checkpoints?after=")?
                    .parse()
                    .ok()?,
            };
            let page: Vec<Value> = (after + 1..=after + 1000)
                .map(|size| json!({"size": size, "note": note}))
                .collect();
            let body = json!({"checkpoints": page, "next": after + 1000});
            Some(Answer::Body(200, body.to_string().into_bytes()))
        })
    };
    let out = replay(&[&endless, "--max-checkpoints", "5000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("RESPONSE_MALFORMED"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("more than 5000 checkpoints"),
        "{}",
        stderr(&out)
    );

    // A checkpoint of 2^40 entries signed by the log's own key (a node holds it), with entries
    // and hash tiles served as fast as asked: the auditor streams them in bounded memory.
    let streaming = {
        let (vkey, trust) = (forger.vkey(), trust.clone());
        let note = forger.note(1 << 40, [7; 32]);
        serve_with(move |path| {
            let ok = |body: Vec<u8>| Some(Answer::Body(200, body));
            match path {
                "/v1/audit/log.vkey" => return ok(vkey.clone().into_bytes()),
                "/v1/trust-bundle" => return ok(trust.clone()),
                "/checkpoint" => return ok(note.clone()),
                "/v1/audit/checkpoints" => return ok(b"{\"checkpoints\": []}".to_vec()),
                _ => {}
            }
            let tile = tongban_core::log::tiles::TilePath::parse(path.strip_prefix("/tile/")?)?;
            let index = tile.index;
            match tile.level {
                None => ok(encode_entry_bundle(
                    &(index * 256..index * 256 + 256)
                        .map(made_up)
                        .collect::<Vec<_>>(),
                )
                .unwrap()),
                Some(level @ (0 | 1)) => ok(made_up_tile(level, index)),
                _ => None,
            }
        })
    };
    let mut child = Command::new(VERIFY)
        .args(["audit", "replay", &streaming])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(4));
    let peak = peak_rss_kib(pid);
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(running, "the auditor stopped by itself: {err}");
    eprintln!("streamed for 4 s, peak RSS {peak} KiB");
    assert!(peak > 0 && peak < 64 * 1024, "peak RSS {peak} KiB");
}
