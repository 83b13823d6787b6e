//! A local federation of N `tongban-node` processes on loopback, measuring how long a revocation
//! takes to reach every other member (specs/federation.md §5.1) and counting witnessing rounds.
//!
//! tongban-fed-bench [--nodes 16] [--revocations 100] [--quorum 2]
//!
//! Sets up N regions under one federation root (init, member descriptions, a signed genesis,
//! `[p2p]` on free loopback ports), starts them with node 0 as the bootstrap peer, waits for a
//! full mesh, issues one certificate per revocation in region 0, and waits until every replica
//! holds them. Then, for each revocation: every other node is asked to answer once its replica of
//! region 0 holds the revocation's entry (a long-poll registered before the revocation is sent),
//! the revocation is sent to node 0, and each node's answer time is recorded. Latencies are from
//! the moment the revocation request was sent (so they include node 0's durable commit).
//! Prints p50/p99/max per node and per revocation ("everywhere" = the slowest node), and the
//! witnessing rounds each node completed. Uses the `tongban-node` binary beside this one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 16)]
    nodes: usize,
    #[arg(long, default_value_t = 100)]
    revocations: usize,
    /// Witness quorum of the membership.
    #[arg(long, default_value_t = 2)]
    quorum: u64,
}

const REGIONS: [&str; 24] = [
    "110000", "120000", "130000", "140000", "150000", "210000", "220000", "230000", "310000",
    "320000", "330000", "340000", "350000", "360000", "370000", "410000", "420000", "430000",
    "440000", "450000", "460000", "500000", "510000", "520000",
];
const AGENCY: &str = "11341200MB0000001F";

struct Node {
    child: Child,
    http: String,
    operator: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(
    host: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_nodelay(true)?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no complete response")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head.get(9..12).context("status line")?.parse()?;
    let mut payload = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        payload = dechunk(&payload);
    }
    Ok((
        status,
        serde_json::from_slice(&payload).unwrap_or(Value::Null),
    ))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let Some(size) = std::str::from_utf8(&body[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
        else {
            break;
        };
        if size == 0 || body.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[(end + 4 + size).min(body.len())..];
    }
    out
}

fn run(binary: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(binary).args(args).output()?;
    if !out.status.success() {
        bail!(
            "tongban-node {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn start(binary: &Path, dir: &Path, bootstrap: Option<&str>, operator: String) -> Result<Node> {
    let mut command = Command::new(binary);
    command
        .args(["run", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(address) = bootstrap {
        command.args(["--bootstrap", address]);
    }
    let mut child = command.spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Keep draining what the node prints so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let http = line
        .split("http://")
        .nth(1)
        .context("the node did not print its address")?
        .trim()
        .to_owned();
    Ok(Node {
        child,
        http,
        operator,
    })
}

fn wait_for<T>(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe()? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0)),
        ms(percentile(&samples, 100.0))
    );
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(2..=REGIONS.len()).contains(&args.nodes) {
        bail!("--nodes must be between 2 and {}", REGIONS.len());
    }
    let binary = std::env::current_exe()?
        .parent()
        .context("binary directory")?
        .join("tongban-node");
    let root = std::env::temp_dir().join(format!("tongban-fed-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let result = bench(&args, &binary, &root);
    std::fs::remove_dir_all(&root)?;
    result
}

fn bench(args: &Args, binary: &Path, root: &Path) -> Result<()> {
    let regions = &REGIONS[..args.nodes];
    let dirs: Vec<PathBuf> = regions.iter().map(|r| root.join(r)).collect();
    let key = dirs[0].join("keys/federation-root.key");
    let mut operators = Vec::new();
    let mut members = Vec::new();
    for (i, (region, dir)) in regions.iter().zip(&dirs).enumerate() {
        let mut init = vec!["init", "--region", region, "--name", region, "--dir"];
        let dir_text = dir.display().to_string();
        init.push(&dir_text);
        let key_text = key.display().to_string();
        if i > 0 {
            init.extend(["--federation-key", &key_text]);
        }
        let out = run(binary, &init)?;
        operators.push(
            out.split_whitespace()
                .find(|w| w.starts_with("tb_"))
                .context("init prints the operator token")?
                .to_owned(),
        );
        let member = dir.join("member.json");
        std::fs::write(
            &member,
            run(binary, &["federation", "member", "--dir", &dir_text])?,
        )?;
        members.push(member.display().to_string());
    }
    let membership = root.join("federation.tbm");
    let mut genesis = vec![
        "federation".to_owned(),
        "genesis".into(),
        "--key".into(),
        key.display().to_string(),
        "--name".into(),
        "tongban.local".into(),
        "--quorum".into(),
        args.quorum.to_string(),
        "--out".into(),
        membership.display().to_string(),
    ];
    for m in &members {
        genesis.extend(["--member".into(), m.clone()]);
    }
    run(
        binary,
        &genesis.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    for dir in &dirs {
        let config = dir.join("config.toml");
        let mut text = std::fs::read_to_string(&config)?;
        text.push_str(&format!(
            "\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nmembership = \"{}\"\n",
            membership.display()
        ));
        std::fs::write(&config, text)?;
    }

    let started = Instant::now();
    let mut nodes = vec![start(binary, &dirs[0], None, operators[0].clone())?];
    let bootstrap = wait_for(Duration::from_secs(20), "node 0's p2p address", || {
        let (_, status) = http(&nodes[0].http, "GET", "/v1/federation/status", None, None)?;
        Ok(status["listening"][0].as_str().map(str::to_owned))
    })?;
    for (dir, operator) in dirs.iter().zip(&operators).skip(1) {
        nodes.push(start(binary, dir, Some(&bootstrap), operator.clone())?);
    }
    for node in &nodes {
        wait_for(Duration::from_secs(120), "a full mesh", || {
            let (_, status) = http(&node.http, "GET", "/v1/federation/status", None, None)?;
            let connected = status["connected"].as_array().map_or(0, Vec::len);
            Ok((connected + 1 >= args.nodes).then_some(()))
        })?;
    }
    println!(
        "{} nodes started and fully connected in {:.1} s",
        args.nodes,
        started.elapsed().as_secs_f64()
    );

    let a = &nodes[0];
    let (status, agency) = http(
        &a.http,
        "POST",
        "/v1/admin/agencies",
        Some(&a.operator),
        Some(&json!({"uscc": AGENCY, "name": "机构"})),
    )?;
    if status != 201 {
        bail!("registering the agency: {status} {agency}");
    }
    let token = agency["token"].as_str().context("agency token")?.to_owned();
    let (status, seal) = http(
        &a.http,
        "POST",
        "/v1/admin/seals",
        Some(&a.operator),
        Some(
            &json!({"agency_uscc": AGENCY, "seal_id": "BENCH-1", "seal_type": "approval",
            "name": "行政审批专用章", "valid_until": 4_000_000_000u64, "picture": "cG5n", "media_type": "image/png"}),
        ),
    )?;
    if status != 201 {
        bail!("creating the seal: {status} {seal}");
    }
    let seal = seal["kid"].as_str().context("seal kid")?.to_owned();
    let mut ids = Vec::new();
    for i in 0..args.revocations {
        let (status, issued) = http(
            &a.http,
            "POST",
            "/v1/certificates",
            Some(&token),
            Some(
                &json!({"seal": seal, "type_code": "11100000000013338W001", "serial": format!("B{i:09}"),
                "type_name": "营业执照", "level": "A",
                "holder": {"name": "测试公司", "id_type": "USCC", "id_number": "91341200MA2T00001L"},
                "licence": {"scope": "软件开发"}}),
            ),
        )?;
        if status != 201 {
            bail!("issuing: {status} {issued}");
        }
        ids.push(issued["id"].as_str().context("id")?.to_owned());
    }
    let region_a = regions[0];
    let size_of = |node: &Node| -> Result<u64> {
        let (_, health) = http(&node.http, "GET", "/healthz", None, None)?;
        health["log_size"].as_u64().context("log size")
    };
    let target = size_of(a)?;
    for node in &nodes[1..] {
        wait_for(
            Duration::from_secs(60),
            "every replica to hold the issuances",
            || {
                let (_, region) = http(
                    &node.http,
                    "GET",
                    &format!("/v1/federation/regions/{region_a}"),
                    None,
                    None,
                )?;
                Ok((region["size"].as_u64() >= Some(target)).then_some(()))
            },
        )?;
    }

    let mut per_node = Vec::new();
    let mut everywhere = Vec::new();
    for id in &ids {
        let size = size_of(a)?;
        let waiters: Vec<_> = nodes[1..]
            .iter()
            .map(|node| {
                let host = node.http.clone();
                let path = format!(
                    "/v1/federation/regions/{region_a}?min_size={}&wait_ms=10000",
                    size + 1
                );
                std::thread::spawn(move || -> Result<(Instant, u64)> {
                    let (_, answer) = http(&host, "GET", &path, None, None)?;
                    Ok((Instant::now(), answer["size"].as_u64().unwrap_or(0)))
                })
            })
            .collect();
        // Let the long-polls reach the nodes before the revocation is sent.
        std::thread::sleep(Duration::from_millis(30));
        let sent = Instant::now();
        let (status, answer) = http(
            &a.http,
            "POST",
            &format!("/v1/certificates/{id}/status"),
            Some(&token),
            Some(&json!({"operation": "revoke"})),
        )?;
        if status != 200 {
            bail!("revoking {id}: {status} {answer}");
        }
        let mut slowest = Duration::ZERO;
        for waiter in waiters {
            let (arrived, held) = waiter
                .join()
                .map_err(|_| anyhow::anyhow!("a waiter panicked"))??;
            if held <= size {
                bail!("a node did not receive revocation {id} within 10 s");
            }
            let latency = arrived.saturating_duration_since(sent);
            slowest = slowest.max(latency);
            per_node.push(latency);
        }
        everywhere.push(slowest);
    }
    // This region's last entries reach a checkpoint cosigned by the quorum.
    let last = Instant::now();
    let final_size = size_of(a)?;
    let cosigned = wait_for(
        Duration::from_secs(30),
        "a cosigned checkpoint covering the revocations",
        || {
            let mut stream = TcpStream::connect(&a.http)?;
            write!(
                stream,
                "GET /v1/federation/checkpoint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )?;
            let mut raw = String::new();
            stream.read_to_string(&mut raw)?;
            let Some((_, note)) = raw.split_once("\r\n\r\n") else {
                return Ok(None);
            };
            let size = note.lines().nth(1).and_then(|l| l.parse::<u64>().ok());
            Ok((size >= Some(final_size)).then(|| note.to_owned()))
        },
    )?;
    println!(
        "checkpoint of {final_size} entries signed, cosigned by {} witnesses and published {:.0} ms after the last revocation",
        cosigned.matches("\n— ").count().saturating_sub(1),
        last.elapsed().as_secs_f64() * 1000.0
    );
    println!("revocation to each other node (from the revocation request sent):");
    summary("  per node", per_node);
    summary("  everywhere (slowest node per revocation)", everywhere);

    let mut quorum = 0.0;
    let mut short = 0.0;
    for node in &nodes {
        let text = {
            let mut stream = TcpStream::connect(&node.http)?;
            write!(
                stream,
                "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )?;
            let mut raw = String::new();
            stream.read_to_string(&mut raw)?;
            raw
        };
        for line in text.lines() {
            let value = |prefix: &str| {
                line.strip_prefix(prefix)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            };
            if let Some(v) = value("tongban_witness_rounds_total{code=\"quorum\"}") {
                quorum += v;
            }
            if let Some(v) = value("tongban_witness_rounds_total{code=\"short\"}") {
                short += v;
            }
        }
    }
    println!(
        "witnessing: {quorum} checkpoints reached their quorum of {} cosignatures, {short} rounds fell short",
        args.quorum
    );
    Ok(())
}
