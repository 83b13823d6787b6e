//! No client can stop a node (issue: connection limits and timeouts): silent, slow and idle
//! connections are closed on their deadlines, a body that does not come is answered 408, a
//! declared length over the limit 413 at once, and connections beyond the cap (or beyond a low
//! open-file limit) never lock real clients out. Each case against a real node process with
//! short, configured limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use node_process::{BIN, Node};
use serde_json::json;

const HEADER_MS: u64 = 600;
const IDLE_MS: u64 = 1200;
const BODY_MS: u64 = 600;
const CAP: usize = 32;

/// A node with short deadlines and a small connection cap.
fn node(dir: &std::path::Path) -> Node {
    let node = Node::init(dir);
    let config = dir.join("config.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "max_connections = 4096",
            &format!("max_connections = {CAP}"),
        )
        .replace(
            "header_timeout_ms = 10000",
            &format!("header_timeout_ms = {HEADER_MS}"),
        )
        .replace(
            "idle_timeout_ms = 60000",
            &format!("idle_timeout_ms = {IDLE_MS}"),
        )
        .replace(
            "body_timeout_ms = 30000",
            &format!("body_timeout_ms = {BODY_MS}"),
        );
    std::fs::write(&config, text).unwrap();
    node
}

fn connect(node: &Node) -> TcpStream {
    let stream = TcpStream::connect(&node.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// How long until the node closes `stream` (reads return end of file or an error).
fn closed_after(mut stream: TcpStream, started: Instant) -> Duration {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}

fn verify_ok(node: &Node) -> bool {
    let reply = node.try_request(
        "POST",
        "/v1/verify",
        None,
        Some(json!({"certificate": "AAAA"}).to_string().as_bytes()),
    );
    // A well-formed answer (this is not a certificate: 200 with its code) means served.
    reply.is_ok_and(|r| r.status == 200)
}

#[test]
fn silent_slow_and_idle_connections_are_closed_on_their_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path());
    node.start();

    // Connected, nothing sent: closed once idle for IDLE_MS.
    let started = Instant::now();
    let silent = closed_after(connect(&node), started);
    assert!(
        silent >= Duration::from_millis(IDLE_MS) && silent < Duration::from_millis(IDLE_MS + 2000),
        "a silent connection was closed after {silent:?}"
    );

    // Slowloris: a head dripped a byte at a time never completes; closed HEADER_MS after its first
    // byte although bytes keep coming.
    let mut slow = connect(&node);
    let started = Instant::now();
    let head = b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let mut cut = None;
    for byte in head.iter().chain(std::iter::repeat(&b'a')) {
        if slow.write_all(&[*byte]).is_err() {
            cut = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    let cut = cut.unwrap_or_else(|| closed_after(slow, started));
    assert!(
        cut >= Duration::from_millis(HEADER_MS) && cut < Duration::from_millis(HEADER_MS + 2000),
        "a dripped head was cut after {cut:?}"
    );

    // Keep-alive: served, then closed once idle.
    let mut kept = connect(&node);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(kept.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let started = Instant::now();
    let idle = closed_after(kept, started);
    assert!(
        idle >= Duration::from_millis(IDLE_MS - 100)
            && idle < Duration::from_millis(IDLE_MS + 2000),
        "an idle keep-alive connection was closed after {idle:?}"
    );

    // A body that never comes: 408 BODY_TIMEOUT.
    let started = Instant::now();
    let mut stream = connect(&node);
    stream
        .write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"certif")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("BODY_TIMEOUT"), "{answer}");
    assert!(started.elapsed() < Duration::from_millis(BODY_MS + 2000));

    // A declared length far over the limit: 413 at once, nothing waited for.
    let started = Instant::now();
    let mut stream = connect(&node);
    stream
        .write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9223372036854775807\r\n\r\n{")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("TOO_LARGE"), "{answer}");
    assert!(started.elapsed() < Duration::from_millis(BODY_MS));
    // The witness endpoint (raw body) likewise.
    let mut stream = connect(&node);
    stream
        .write_all(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775807\r\n\r\no")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 413") || answer.starts_with("HTTP/1.1 404"),
        "{answer}"
    );
}

#[test]
fn connections_beyond_the_cap_never_lock_clients_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path());
    node.start();
    // Ten times the cap of silent connections, held open by the attacker.
    let flood: Vec<TcpStream> = (0..CAP * 10).map(|_| connect(&node)).collect();
    for n in 0..20 {
        assert!(verify_ok(&node), "verification {n} failed under the flood");
    }
    let open: f64 = node
        .get("/metrics", None)
        .text()
        .lines()
        .find_map(|l| {
            l.strip_prefix("tongban_http_connections ")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0);
    assert!(
        open <= (CAP + 2) as f64,
        "{open} connections open, cap {CAP}"
    );
    drop(flood);
}

/// The (soft, hard) open-file limits the process runs with.
fn fd_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_owned();
    let mut numbers = line.split_whitespace().skip(3).map(|n| n.parse().unwrap());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// Starts the node under `ulimit` settings given to bash, and waits until it listens.
fn start_limited(node: &mut Node, ulimit: &str) {
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit {ulimit} && exec \"$0\" run --listen 127.0.0.1:0 --dir \"$1\""
        ))
        .arg(BIN)
        .arg(&node.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    node.addr = line.split("http://").nth(1).unwrap().trim().to_owned();
    node.child = Some(child);
}

#[test]
fn a_low_open_file_limit_is_raised_and_respected() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    // A soft limit below the hard one is raised to it.
    start_limited(&mut node, "-Sn 300");
    let (soft, hard) = fd_limits(node.child.as_ref().unwrap().id());
    assert_eq!(soft, hard);
    assert!(soft > 300);
    node.kill9();

    // A hard limit of 320: the cap is kept below it, so more silent connections than file
    // descriptors never stop verification.
    start_limited(&mut node, "-n 320");
    assert_eq!(fd_limits(node.child.as_ref().unwrap().id()), (320, 320));
    let flood: Vec<TcpStream> = (0..400).map(|_| connect(&node)).collect();
    for n in 0..20 {
        assert!(
            verify_ok(&node),
            "verification {n} failed with 400 silent connections"
        );
    }
    drop(flood);
}
