//! Load generator for a running node: keep-alive HTTP/1.1 connections on loopback, each sending
//! requests back to back, measuring every request's latency. Sets itself up with the operator's
//! token (a fresh agency and seal, and `--distinct` certificates the verification phase cycles
//! through, so no answer can come from a cache of one), then runs a verification phase (every
//! answer carries a batch-signed receipt) and an issuance phase (every answer is durable).
//!
//! tongban-load --url 127.0.0.1:8341[,…] --operator-token tb_… [--connections 32] [--seconds 10]
//!   [--threads 1] [--phases verify,issue]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Args {
    /// host:port of the node's HTTP API; several, comma-separated, for the processes of one
    /// node (a sequencer and its standbys on PostgreSQL): the setup's writes go to the first,
    /// the phases' connections to each in turn.
    #[arg(long, value_delimiter = ',', required = true)]
    url: Vec<String>,
    #[arg(long)]
    operator_token: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Threads driving the connections. One event loop keeps the generator's own share of the
    /// two cores small (as wrk does); more only if it cannot keep up.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Distinct certificates issued before the phases; verification cycles through them.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    distinct: u32,
    /// Which phases to run, in this order.
    #[arg(long, value_delimiter = ',', default_values = ["verify", "issue"])]
    phases: Vec<Phase>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Phase {
    Verify,
    Issue,
}

struct Conn {
    stream: BufReader<TcpStream>,
    host: String,
    line: String,
}

impl Conn {
    async fn open(host: &str) -> Result<Conn> {
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
            host: host.to_owned(),
            line: String::new(),
        })
    }

    async fn post(
        &mut self,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>)> {
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        // One write per request, as wrk does: a head and a body sent apart cost both sides a
        // second segment and wake-up.
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.stream.get_mut().write_all(&request).await?;
        self.line.clear();
        self.stream.read_line(&mut self.line).await?;
        let status: u16 = self.line.get(9..12).context("status line")?.parse()?;
        let mut length = 0;
        loop {
            self.line.clear();
            self.stream.read_line(&mut self.line).await?;
            if self.line == "\r\n" || self.line.is_empty() {
                break;
            }
            if let Some((name, value)) = self.line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, body))
    }
}

async fn call(host: &str, path: &str, token: &str, body: &Value) -> Result<Value> {
    let (status, reply) = Conn::open(host)
        .await?
        .post(path, Some(token), body.to_string().as_bytes())
        .await?;
    if status >= 300 {
        bail!("{path}: {status} {}", String::from_utf8_lossy(&reply));
    }
    Ok(serde_json::from_slice(&reply)?)
}

type MakeBody = Arc<dyn Fn(usize, u64) -> Vec<u8> + Send + Sync>;

/// Runs `make_body(connection, n)` requests on every connection for the duration; returns
/// sorted latencies.
async fn phase(
    args: &Args,
    path: &'static str,
    token: Option<String>,
    make_body: MakeBody,
    expect: u16,
) -> Result<(Vec<Duration>, Duration)> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.connections)
        .map(|worker| {
            let (stop, host, token, make_body) = (
                stop.clone(),
                args.url[worker % args.url.len()].clone(),
                token.clone(),
                make_body.clone(),
            );
            tokio::spawn(async move {
                let mut conn = Conn::open(&host).await?;
                let mut latencies = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = make_body(worker, n);
                    let sent = Instant::now();
                    let (status, reply) = conn.post(path, token.as_deref(), &body).await?;
                    latencies.push(sent.elapsed());
                    if status != expect {
                        bail!("{path}: {status} {}", String::from_utf8_lossy(&reply));
                    }
                    n += 1;
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.context("a connection's task failed")??);
    }
    let elapsed = started.elapsed();
    all.sort();
    Ok((all, elapsed))
}

/// Issues `args.distinct` certificates over a few connections; returns their base64 bytes.
async fn issue_distinct(
    args: &Args,
    token: &str,
    body: Arc<impl Fn(String) -> Value + Send + Sync + 'static>,
    run: u32,
) -> Result<Vec<String>> {
    const SETUP_CONNECTIONS: u32 = 16;
    let tasks: Vec<_> = (0..SETUP_CONNECTIONS)
        .map(|c| {
            let (host, token, body) = (args.url[0].clone(), token.to_owned(), body.clone());
            let count = (args.distinct + SETUP_CONNECTIONS - 1 - c) / SETUP_CONNECTIONS;
            tokio::spawn(async move {
                let mut conn = Conn::open(&host).await?;
                let mut issued = Vec::new();
                for n in 0..count {
                    let request = body(format!("L{run}S{c}N{n}")).to_string();
                    let (status, reply) = conn
                        .post("/v1/certificates", Some(&token), request.as_bytes())
                        .await?;
                    if status != 201 {
                        bail!("issuing: {status} {}", String::from_utf8_lossy(&reply));
                    }
                    let reply: Value = serde_json::from_slice(&reply)?;
                    let certificate = reply["certificate"].as_str().context("certificate")?;
                    issued.push(certificate.to_owned());
                }
                Ok::<_, anyhow::Error>(issued)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.context("a setup connection's task failed")??);
    }
    Ok(all)
}

fn report(name: &str, latencies: &[Duration], elapsed: Duration) -> Result<()> {
    if latencies.is_empty() {
        bail!("{name}: no request completed");
    }
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let line = format!(
        "{name}: {} requests in {:.1} s = {:.0}/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.90).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
    );
    // A closed stdout (`| head -1`) ends the report quietly instead of panicking.
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(usize::from(n));
            builder
        }
    }
    .enable_all()
    .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let run = std::process::id();
    // A USCC unique to this run.
    let first17 = format!("11341200MB{:07}", run % 10_000_000);
    let uscc = format!(
        "{first17}{}",
        tongban_core::ids::uscc::check_char(&first17)?
    );
    let agency = call(
        &args.url[0],
        "/v1/admin/agencies",
        &args.operator_token,
        &json!({"uscc": uscc, "name": "压测机构"}),
    )
    .await?;
    let token = agency["token"].as_str().context("agency token")?.to_owned();
    let seal = call(
        &args.url[0],
        "/v1/admin/seals",
        &args.operator_token,
        &json!({
            "agency_uscc": uscc, "seal_id": format!("LOAD-{run}"), "seal_type": "approval",
            "name": "行政审批专用章", "valid_until": 2_000_000_000u64, "picture": "cG5n", "media_type": "image/png"
        }),
    )
    .await?;
    let kid = seal["kid"].as_str().context("seal kid")?.to_owned();
    let body = move |serial: String| {
        json!({
            "seal": kid, "type_code": "11100000000013338W001", "serial": serial, "type_name": "营业执照",
            "level": "A",
            "holder": {"name": "阜阳市通办示范科技有限公司", "id_type": "USCC", "id_number": "91341200MA2T00001L"},
            "licence": {"capital": 1000000}
        })
    };
    let body = Arc::new(body);
    let certificates = issue_distinct(&args, &token, body.clone(), run).await?;
    if args.url.len() > 1 {
        // A standby's view follows its sequencer's log every 250 ms: the setup's seal reaches
        // it before the phases, so that it verifies what the sequencer would.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let verify_bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        certificates
            .iter()
            .map(|c| json!({ "certificate": c }).to_string().into_bytes())
            .collect(),
    );

    for which in &args.phases {
        let (name, result) = match which {
            Phase::Verify => {
                let bodies = verify_bodies.clone();
                (
                    "verify (with receipts)",
                    phase(
                        &args,
                        "/v1/verify",
                        None,
                        Arc::new(move |worker, n| {
                            let i = (worker as u64 * 7919 + n) as usize % bodies.len();
                            bodies[i].clone()
                        }),
                        200,
                    )
                    .await,
                )
            }
            Phase::Issue => {
                let body = body.clone();
                (
                    "issue (durable)",
                    phase(
                        &args,
                        "/v1/certificates",
                        Some(token.clone()),
                        Arc::new(move |worker, n| {
                            body(format!("L{run}W{worker}N{n}"))
                                .to_string()
                                .into_bytes()
                        }),
                        201,
                    )
                    .await,
                )
            }
        };
        let (latencies, elapsed) = result?;
        report(name, &latencies, elapsed)?;
    }
    Ok(())
}
