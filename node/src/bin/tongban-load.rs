//! Load generator for a running node: keep-alive HTTP/1.1 connections on loopback, each sending
//! requests back to back, measuring every request's latency. Sets itself up with the operator's
//! token (a fresh agency and seal), then runs a verification phase (every answer carries a
//! batch-signed receipt) and an issuance phase (every answer is durable).
//!
//! tongban-load --url 127.0.0.1:8341 --operator-token tb_… [--connections 32] [--seconds 10]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// host:port of the node's HTTP API.
    #[arg(long)]
    url: String,
    #[arg(long)]
    operator_token: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

impl Conn {
    fn open(host: &str) -> Result<Conn> {
        let stream = TcpStream::connect(host)?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            host: host.to_owned(),
        })
    }

    fn post(&mut self, path: &str, token: Option<&str>, body: &[u8]) -> Result<(u16, Vec<u8>)> {
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        self.writer.write_all(head.as_bytes())?;
        self.writer.write_all(body)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line.get(9..12).context("status line")?.parse()?;
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }
}

fn call(host: &str, path: &str, token: &str, body: &Value) -> Result<Value> {
    let (status, reply) = Conn::open(host)?.post(path, Some(token), body.to_string().as_bytes())?;
    if status >= 300 {
        bail!("{path}: {status} {}", String::from_utf8_lossy(&reply));
    }
    Ok(serde_json::from_slice(&reply)?)
}

/// Runs `make_body(n)` requests on every connection for the duration; returns sorted latencies.
fn phase(
    args: &Args,
    path: &'static str,
    token: Option<String>,
    make_body: Arc<dyn Fn(usize, u64) -> Vec<u8> + Send + Sync>,
    expect: u16,
) -> Result<(Vec<Duration>, Duration)> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.connections)
        .map(|worker| {
            let (stop, host, token, make_body) = (
                stop.clone(),
                args.url.clone(),
                token.clone(),
                make_body.clone(),
            );
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                let mut conn = Conn::open(&host)?;
                let mut latencies = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = make_body(worker, n);
                    let sent = Instant::now();
                    let (status, reply) = conn.post(path, token.as_deref(), &body)?;
                    latencies.push(sent.elapsed());
                    if status != expect {
                        bail!("{path}: {status} {}", String::from_utf8_lossy(&reply));
                    }
                    n += 1;
                }
                Ok(latencies)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(args.seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for worker in workers {
        all.extend(
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))??,
        );
    }
    let elapsed = started.elapsed();
    all.sort();
    Ok((all, elapsed))
}

fn report(name: &str, latencies: &[Duration], elapsed: Duration) -> Result<()> {
    if latencies.is_empty() {
        bail!("{name}: no request completed");
    }
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let line = format!(
        "{name}: {} requests in {:.1} s = {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
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
    let run = std::process::id();
    // A USCC unique to this run.
    let first17 = format!("11341200MB{:07}", run % 10_000_000);
    let uscc = format!(
        "{first17}{}",
        tongban_core::ids::uscc::check_char(&first17)?
    );
    let agency = call(
        &args.url,
        "/v1/admin/agencies",
        &args.operator_token,
        &json!({"uscc": uscc, "name": "压测机构"}),
    )?;
    let token = agency["token"].as_str().context("agency token")?.to_owned();
    let seal = call(
        &args.url,
        "/v1/admin/seals",
        &args.operator_token,
        &json!({
            "agency_uscc": uscc, "seal_id": format!("LOAD-{run}"), "seal_type": "approval",
            "name": "行政审批专用章", "valid_until": 2_000_000_000u64, "picture": "cG5n", "media_type": "image/png"
        }),
    )?;
    let kid = seal["kid"].as_str().context("seal kid")?.to_owned();
    let body = move |serial: String| {
        json!({
            "seal": kid, "type_code": "11100000000013338W001", "serial": serial, "type_name": "营业执照",
            "level": "A",
            "holder": {"name": "阜阳市通办示范科技有限公司", "id_type": "USCC", "id_number": "91341200MA2T00001L"},
            "licence": {"capital": 1000000}
        })
    };
    let issued = call(
        &args.url,
        "/v1/certificates",
        &token,
        &body(format!("L{run}")),
    )?;
    let certificate = issued["certificate"]
        .as_str()
        .context("certificate")?
        .to_owned();
    let verify_body = json!({"certificate": certificate}).to_string().into_bytes();

    let (latencies, elapsed) = phase(
        &args,
        "/v1/verify",
        None,
        Arc::new(move |_, _| verify_body.clone()),
        200,
    )?;
    report("verify (with receipts)", &latencies, elapsed)?;
    let (latencies, elapsed) = phase(
        &args,
        "/v1/certificates",
        Some(token),
        Arc::new(move |worker, n| {
            body(format!("L{run}W{worker}N{n}"))
                .to_string()
                .into_bytes()
        }),
        201,
    )?;
    report("issue (durable)", &latencies, elapsed)?;
    Ok(())
}
