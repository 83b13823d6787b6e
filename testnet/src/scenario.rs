//! `tongban-testnet scenario <name>`: faults injected into a fresh network, each with the figures
//! it measured and a non-zero exit when the network does not behave as specified.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tongban_core::suite::Suite;

use crate::http::{Answer, Http};
use crate::net::{self, BUSINESS_LICENCE, Testnet, wait_for};
use crate::signals;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Name {
    Crash,
    Partition,
    Equivocation,
    Outsider,
    Flood,
}

impl Name {
    fn least_regions(self) -> usize {
        match self {
            Name::Partition | Name::Equivocation => 3,
            Name::Crash | Name::Outsider | Name::Flood => 2,
        }
    }
}

/// The serial of a scenario's first licence (each agency numbers its own).
const FIRST_SERIAL: u64 = 2_026_000_001;

/// One kind of malformed request of the flood.
struct Malformed {
    kind: &'static str,
    method: &'static str,
    path: &'static str,
    token: Option<String>,
    body: Vec<u8>,
}

/// The figures a scenario measured, printed as `name: value` lines.
type Figures = Vec<(String, String)>;

pub fn run(name: Name, regions: usize, dir: Option<&Path>, suite: Suite) -> Result<ExitCode> {
    if regions < name.least_regions() || regions > net::MAX_REGIONS {
        bail!(
            "scenario {name:?} needs between {} and {} regions",
            name.least_regions(),
            net::MAX_REGIONS
        );
    }
    // The temporary directory, if any, lives as long as the run.
    let (dir, _temp) = signals::state_dir(dir, "tongban-scenario-")?;
    println!("scenario {name:?}: starting {regions} region nodes …");
    let started = Instant::now();
    let mut net = Testnet::create(&dir, regions, suite)?;
    println!(
        "network up (full mesh) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let outcome = match name {
        Name::Crash => crash(&mut net),
        Name::Partition => partition(&mut net),
        Name::Equivocation => equivocation(&mut net),
        Name::Outsider => outsider(&mut net),
        Name::Flood => flood(&mut net),
    };
    drop(net);
    match outcome {
        Ok(figures) => {
            let width = figures
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0);
            for (k, v) in &figures {
                println!("  {k}{}  {v}", " ".repeat(width - k.chars().count()));
            }
            println!("scenario {name:?}: PASS");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("scenario {name:?}: FAIL: {e:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn figure(name: &str, value: impl std::fmt::Display) -> (String, String) {
    (name.to_owned(), value.to_string())
}

/// An issuance request for a business licence of the issuer agency of node `i`.
fn licence(net: &Testnet, i: usize, serial: u64) -> Result<(String, String, Value)> {
    let agency = net.agency(i, "issuer")?;
    let region = &net.node(i).region;
    Ok((
        net.url(i, "/v1/certificates"),
        agency.token.clone(),
        json!({
            "seal": agency.seal, "type_code": BUSINESS_LICENCE, "serial": serial.to_string(),
            "type_name": "营业执照", "level": "A",
            "holder": {"name": "通办示范科技有限公司", "id_type": "USCC",
                       "id_number": net::company_uscc(region, 1)?},
            "licence": {"capital": 1_000_000}
        }),
    ))
}

/// Issues one licence at node `i`; returns (id, certificate).
fn issue(net: &Testnet, i: usize, serial: u64) -> Result<(String, String)> {
    let (url, token, body) = licence(net, i, serial)?;
    let issued = net
        .http
        .post(&url, Some(&token), &body)?
        .expect(201, "issuing")?;
    Ok((
        issued["id"].as_str().unwrap_or_default().to_owned(),
        issued["certificate"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ))
}

fn verify_code(net: &Testnet, i: usize, certificate: &str) -> Result<String> {
    let answer = net
        .http
        .post(
            &net.url(i, "/v1/verify"),
            None,
            &json!({"certificate": certificate}),
        )?
        .expect(200, "verifying")?;
    Ok(answer["code"].as_str().unwrap_or_default().to_owned())
}

/// Every node's own log size, by region.
fn sizes(net: &Testnet, nodes: &[usize]) -> Result<Vec<(String, u64)>> {
    nodes
        .iter()
        .map(|&i| Ok((net.node(i).region.clone(), net.log_size(i)?)))
        .collect()
}

/// `region size, region size, …`, for a figure.
fn listed(sizes: &[(String, u64)]) -> String {
    sizes
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// SIGKILL the first node during a burst of issuance there; the second keeps issuing while it
/// is down; after the restart every acknowledged licence is still there and every replica
/// converges.
fn crash(net: &mut Testnet) -> Result<Figures> {
    let (a, b) = (0, 1);
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let burst_started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (url, token, _) = licence(net, a, 0)?;
        let template = licence(net, a, 0)?.2;
        let http = Http::new(Duration::from_secs(10));
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        workers.push(std::thread::spawn(move || {
            let mut unanswered = 0u64;
            let mut serial = FIRST_SERIAL + 100_000 + w * 100_000;
            while !stop.load(Ordering::Relaxed) {
                serial += 1;
                let mut body = template.clone();
                body["serial"] = json!(serial.to_string());
                match http.post(&url, Some(&token), &body) {
                    Ok(answer) if answer.status == 201 => {
                        if let Ok(v) = answer.json() {
                            let id = v["id"].as_str().unwrap_or_default().to_owned();
                            let cert = v["certificate"].as_str().unwrap_or_default().to_owned();
                            acknowledged
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((id, cert));
                        }
                    }
                    // Refused or cut off: not acknowledged, so nothing is owed.
                    _ => unanswered += 1,
                }
            }
            unanswered
        }));
    }
    let count = || acknowledged.lock().unwrap_or_else(|e| e.into_inner()).len();
    wait_for(
        Duration::from_secs(60),
        "100 acknowledged issuances",
        || Ok((count() >= 100).then_some(())),
    )?;
    net.kill9(a)?;
    let killed_after = burst_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut unanswered = 0;
    for worker in workers {
        unanswered += worker
            .join()
            .map_err(|_| anyhow!("an issuing thread panicked"))?;
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap_or_else(|e| e.into_inner()));
    let rate = acknowledged.len() as f64 / killed_after.as_secs_f64();
    // The others go on while the first is down.
    for serial in 0..10 {
        issue(net, b, FIRST_SERIAL + serial)?;
    }
    let others: Vec<usize> = (1..net.len()).collect();
    let targets = sizes(net, &others)?;
    let restarted = Instant::now();
    net.start(a)?;
    let listening = restarted.elapsed();
    let mut lost = Vec::new();
    for (id, _) in &acknowledged {
        let answer = net
            .http
            .get(&net.url(a, &format!("/v1/certificates/{id}/status")), None)?;
        if answer.status != 200 {
            lost.push(id.clone());
        }
    }
    if !lost.is_empty() {
        bail!(
            "{} acknowledged licences are gone after the restart, e.g. {}",
            lost.len(),
            lost[0]
        );
    }
    net.wait_replicas(a, &targets, Duration::from_secs(60))?;
    let own = net.log_size(a)?;
    let region = net.node(a).region.clone();
    for &i in &others {
        net.wait_replicas(i, &[(region.clone(), own)], Duration::from_secs(60))?;
    }
    let converged = restarted.elapsed();
    let mut checked = 0;
    for (_, certificate) in acknowledged.iter().step_by(10) {
        let code = verify_code(net, b, certificate)?;
        if code != "OK" {
            bail!("an acknowledged licence verifies as {code} in another region");
        }
        checked += 1;
    }
    Ok(vec![
        figure(
            "issuance burst",
            format!("4 clients, {:.0} acknowledged licences/s", rate),
        ),
        figure(
            "killed (SIGKILL) after",
            format!(
                "{} ms, {} acknowledged, {} requests cut off unanswered",
                killed_after.as_millis(),
                acknowledged.len(),
                unanswered
            ),
        ),
        figure(
            "acknowledged but lost",
            format!("0 of {}", acknowledged.len()),
        ),
        figure("issued elsewhere while down", "10 licences"),
        figure("restart to listening", ms(listening)),
        figure(
            "restart to converged",
            format!(
                "{} (its replicas reached {}; every other node holds its {own} entries)",
                ms(converged),
                listed(&targets)
            ),
        ),
        figure(
            "verified in another region",
            format!("{checked} sampled acknowledged licences: OK"),
        ),
    ])
}

/// SIGSTOP a minority, issue in the majority (whose checkpoints still reach their quorum),
/// SIGCONT, and measure how long until the stopped nodes hold everything.
fn partition(net: &mut Testnet) -> Result<Figures> {
    let n = net.len();
    let minority = (n - 1) / 2;
    let majority: Vec<usize> = (0..n - minority).collect();
    let stopped: Vec<usize> = (n - minority..n).collect();
    for &i in &stopped {
        net.pause(i)?;
    }
    let paused_at = Instant::now();
    let issuing = Instant::now();
    let mut issued = Vec::new();
    for &i in &majority {
        for serial in 0..10 {
            issued.push(issue(net, i, FIRST_SERIAL + serial)?);
        }
    }
    let issue_time = issuing.elapsed();
    // Witnessing goes on without the minority: the first node's checkpoint over everything it
    // issued reaches its quorum.
    let size = net.log_size(0)?;
    let quorum_wait = Instant::now();
    let cosigned = wait_for(
        Duration::from_secs(30),
        "a cosigned checkpoint in the majority",
        || {
            let answer = net
                .http
                .get(&net.url(0, "/v1/federation/checkpoint"), None)?;
            if answer.status != 200 {
                return Ok(None);
            }
            let text = answer.text();
            let covered = text
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse::<u64>().ok());
            let signatures = text.lines().filter(|l| l.starts_with("— ")).count();
            Ok(covered
                .filter(|c| *c >= size)
                .map(|c| (c, signatures.saturating_sub(1))))
        },
    )?;
    let quorum_time = quorum_wait.elapsed();
    let targets = sizes(net, &majority)?;
    let partitioned_for = paused_at.elapsed();
    for &i in &stopped {
        net.resume(i)?;
    }
    let healed = Instant::now();
    for &i in &stopped {
        net.wait_replicas(i, &targets, Duration::from_secs(120))?;
    }
    let converged = healed.elapsed();
    let (_, certificate) = issued.last().ok_or_else(|| anyhow!("nothing was issued"))?;
    for &i in &stopped {
        let code = verify_code(net, i, certificate)?;
        if code != "OK" {
            bail!("after healing, {} verifies as {code}", net.node(i).region);
        }
    }
    let names = |nodes: &[usize]| {
        nodes
            .iter()
            .map(|&i| net.node(i).region.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(vec![
        figure(
            "emulation",
            "the minority is SIGSTOPped (on one machine without root): it neither answers nor sends",
        ),
        figure(
            "partition",
            format!(
                "{} stopped, {} running, for {}",
                names(&stopped),
                names(&majority),
                ms(partitioned_for)
            ),
        ),
        figure(
            "issued in the majority",
            format!(
                "{} licences in {} ({:.1} ms each)",
                issued.len(),
                ms(issue_time),
                issue_time.as_secs_f64() * 1000.0 / issued.len() as f64
            ),
        ),
        figure(
            "checkpoints without the minority",
            format!(
                "{}'s checkpoint of size {} cosigned by {} (quorum {}) after {}",
                net.node(0).region,
                cosigned.0,
                cosigned.1,
                net.state.quorum,
                ms(quorum_time)
            ),
        ),
        figure(
            "SIGCONT to converged",
            format!(
                "{} (every stopped node's replicas reached {})",
                ms(converged),
                listed(&targets)
            ),
        ),
        figure(
            "after healing",
            "the last licence verifies OK in every stopped node",
        ),
    ])
}

/// The first node signs a second checkpoint of a size the second node has witnessed, with
/// another root, and asks the second node to cosign it; every node must mark it misbehaving.
fn equivocation(net: &mut Testnet) -> Result<Figures> {
    use tongban_core::log::checkpoint::Checkpoint;
    let (a, b) = (0, 1);
    let region = net.node(a).region.clone();
    issue(net, a, FIRST_SERIAL)?;
    let size = net.log_size(a)?;
    let held = wait_for(
        Duration::from_secs(20),
        "the second node to witness the first one's log",
        || {
            let held = net.fed_status(b)?["regions"][&region].clone();
            Ok((held["witnessed"].as_u64() >= Some(size)).then_some(held))
        },
    )?;
    let witnessed = held["witnessed"].as_u64().unwrap_or(size);
    let origin = held["origin"]
        .as_str()
        .ok_or_else(|| anyhow!("no origin for {region}"))?
        .to_owned();
    let key = tongban_node::keyfile::read(&net.node(a).dir.join("keys/log.key"))
        .context("reading the first node's log key")?;
    let forged = Checkpoint {
        origin: origin.clone(),
        size: witnessed,
        root: [7; 32],
    }
    .sign(&origin, &key)
    .map_err(|e| anyhow!("signing the forged checkpoint: {e}"))?;
    let asked = Instant::now();
    let answer = net.http.post_raw(
        &net.url(b, "/add-checkpoint"),
        None,
        "text/plain",
        format!("old {witnessed}\n\n{forged}").as_bytes(),
    )?;
    if answer.status != 422 || !answer.text().starts_with("EQUIVOCATION") {
        bail!(
            "the witness answered {} {} to a second checkpoint of size {witnessed}",
            answer.status,
            answer.text().trim()
        );
    }
    let mut detected = Vec::new();
    for i in 0..net.len() {
        let mark = wait_for(
            Duration::from_secs(20),
            &format!("{} to mark {region} misbehaving", net.node(i).region),
            || {
                let mark = net.fed_status(i)?["misbehaving"][&region].clone();
                Ok((!mark.is_null()).then_some(mark))
            },
        )?;
        let carries = mark["evidence"]
            .as_array()
            .is_some_and(|e| e.iter().any(|n| n.as_str() == Some(forged.as_str())));
        if !carries {
            bail!(
                "{} marked {region} without the forged checkpoint as evidence",
                net.node(i).region
            );
        }
        detected.push(format!(
            "{} after {}",
            net.node(i).region,
            ms(asked.elapsed())
        ));
    }
    let next = Checkpoint {
        origin: origin.clone(),
        size: witnessed + 1,
        root: [8; 32],
    }
    .sign(&origin, &key)
    .map_err(|e| anyhow!("signing: {e}"))?;
    let refused = net.http.post_raw(
        &net.url(b, "/add-checkpoint"),
        None,
        "text/plain",
        format!("old {witnessed}\n\n{next}").as_bytes(),
    )?;
    if refused.status != 403 {
        bail!(
            "the witness still cosigns for the equivocating region: {} {}",
            refused.status,
            refused.text().trim()
        );
    }
    Ok(vec![
        figure(
            "forged",
            format!("{region} signed a second checkpoint of size {witnessed} (another root)"),
        ),
        figure(
            "witness answer",
            format!("{} {}", answer.status, first_line(&answer.text())),
        ),
        figure(
            "marked misbehaving (with the evidence)",
            detected.join(", "),
        ),
        figure(
            "further checkpoints of the region",
            format!("refused by the witness ({})", refused.status),
        ),
    ])
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// A metric's value from a node's `/metrics` (0 when absent).
fn metric(http: &Http, url: &str, name_and_labels: &str) -> Result<f64> {
    let text = http.get(url, None)?.text();
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0))
}

/// A node of another federation (its own root) dials every member: each connection is closed
/// once the handshake names the peers, and no member counts it as a peer.
fn outsider(net: &mut Testnet) -> Result<Figures> {
    let refused = "tongban_p2p_connections_refused_total{reason=\"not_member\"}";
    let members: Vec<String> = net
        .state
        .nodes
        .iter()
        .filter_map(|n| n.p2p.clone())
        .collect();
    let before: f64 = (0..net.len())
        .map(|i| metric(&net.http, &net.url(i, "/metrics"), refused))
        .sum::<Result<f64>>()?;
    let suite = Suite::parse(&net.state.suite).unwrap_or(Suite::Ed25519);
    let mut other =
        Testnet::create_regions(&net.dir.join("outsider"), &[("440100", "广州市")], suite)?;
    other.kill9(0)?;
    let dialled = Instant::now();
    other.start_with(0, &members)?;
    let outsider_id = other
        .node(0)
        .peer_id
        .clone()
        .ok_or_else(|| anyhow!("the outsider has no peer id"))?;
    let url = other.url(0, "/metrics");
    wait_for(
        Duration::from_secs(20),
        "the outsider's dials to be refused",
        || Ok((metric(&other.http, &url, refused)? >= members.len() as f64).then_some(())),
    )?;
    let refusal = dialled.elapsed();
    let counted = metric(&other.http, &url, refused)?;
    // Give the members a moment to have connected, if they wrongly would: poll their status for
    // as long as the refusal itself took, and fail at the first sight of the outsider.
    let watch = Instant::now() + refusal.max(Duration::from_millis(500));
    while Instant::now() < watch {
        for i in 0..net.len() {
            let status = net.fed_status(i)?;
            let connected = status["connected"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p.as_str() == Some(outsider_id.as_str())));
            if connected {
                bail!("{} is connected to the outsider", net.node(i).region);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let connected = other.fed_status(0)?["connected"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    if connected != 0 {
        bail!("the outsider holds {connected} connections");
    }
    let after: f64 = (0..net.len())
        .map(|i| metric(&net.http, &net.url(i, "/metrics"), refused))
        .sum::<Result<f64>>()?;
    let still = net.len();
    net.wait_mesh(&net.all(), Duration::from_secs(10))?;
    drop(other);
    Ok(vec![
        figure(
            "outsider",
            format!("440100 广州市, a federation of its own, dialling all {still} members"),
        ),
        figure(
            "refused",
            format!(
                "{} connections closed after the handshake within {} (counted by the outsider); \
                 members counted {} refusals",
                counted,
                ms(refusal),
                after - before
            ),
        ),
        figure("outsider's connections", "0; no member lists it as a peer"),
        figure("the federation", "still a full mesh"),
    ])
}

/// Malformed requests from 4 clients for 5 seconds while a fifth keeps verifying a valid
/// licence: every malformed one is refused with a 4xx, none with a 5xx, and every valid
/// verification is answered OK.
fn flood(net: &mut Testnet) -> Result<Figures> {
    let (_, certificate) = issue(net, 0, FIRST_SERIAL)?;
    let agency_token = net.agency(0, "issuer")?.token.clone();
    let base = net.node(0).api.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let length = Duration::from_secs(5);
    let malformed = |kind, method, path, token: Option<String>, body: Vec<u8>| Malformed {
        kind,
        method,
        path,
        token,
        body,
    };
    let kinds = vec![
        malformed(
            "bad JSON",
            "POST",
            "/v1/verify",
            None,
            b"{not json".to_vec(),
        ),
        malformed(
            "bad base64",
            "POST",
            "/v1/verify",
            None,
            json!({"certificate": "!!not base64!!"})
                .to_string()
                .into_bytes(),
        ),
        malformed(
            "bad CBOR",
            "POST",
            "/v1/verify",
            None,
            json!({"certificate": B64.encode([0xff, 0x00, 0x9f, 0x42, 0x13, 0x37])})
                .to_string()
                .into_bytes(),
        ),
        malformed(
            "oversized body",
            "POST",
            "/v1/verify",
            None,
            vec![b'x'; 300 * 1024],
        ),
        malformed(
            "bad token",
            "POST",
            "/v1/certificates",
            Some("tb_not_a_token".into()),
            b"{}".to_vec(),
        ),
        malformed(
            "wrong role",
            "POST",
            "/v1/admin/agencies",
            Some(agency_token),
            b"{}".to_vec(),
        ),
        malformed(
            "bad identifier",
            "GET",
            "/v1/certificates/not-an-identifier/status",
            None,
            Vec::new(),
        ),
    ];
    let kinds = Arc::new(kinds);
    type Counts = BTreeMap<(String, String), u64>;
    let started = Instant::now();
    let mut flooders = Vec::new();
    for w in 0..4usize {
        let kinds = kinds.clone();
        let stop = stop.clone();
        let base = base.clone();
        flooders.push(std::thread::spawn(move || {
            let http = Http::unpooled(Duration::from_secs(10));
            let mut counts = Counts::new();
            let mut n = w;
            while !stop.load(Ordering::Relaxed) {
                let request = &kinds[n % kinds.len()];
                n += 1;
                let url = format!("{base}{}", request.path);
                let token = request.token.as_deref();
                let answer: Result<Answer> = if request.method == "GET" {
                    http.get(&url, token)
                } else {
                    http.post_raw(&url, token, "application/json", &request.body)
                };
                let outcome = match answer {
                    Ok(a) => format!("{} {}", a.status, a.code()),
                    Err(e) => format!("no answer ({})", e.root_cause()),
                };
                *counts
                    .entry((request.kind.to_owned(), outcome))
                    .or_default() += 1;
            }
            counts
        }));
    }
    let checker = {
        let stop = stop.clone();
        let url = format!("{base}/v1/verify");
        let body = json!({"certificate": certificate});
        std::thread::spawn(move || {
            let http = Http::new(Duration::from_secs(10));
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                match http.post(&url, None, &body) {
                    Ok(a) if a.status == 200 && a.code() == "OK" => latencies.push(sent.elapsed()),
                    Ok(a) => failures.push(format!("{} {}", a.status, a.text())),
                    Err(e) => failures.push(format!("{e:#}")),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (latencies, failures)
        })
    };
    std::thread::sleep(length);
    stop.store(true, Ordering::Relaxed);
    let mut counts = Counts::new();
    for flooder in flooders {
        for (k, v) in flooder
            .join()
            .map_err(|_| anyhow!("a flooding thread panicked"))?
        {
            *counts.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed();
    let (mut latencies, failures) = checker
        .join()
        .map_err(|_| anyhow!("the checking thread panicked"))?;
    let total: u64 = counts.values().sum();
    let mut figures = vec![figure(
        "flood",
        format!(
            "{total} malformed requests from 4 clients in {} ms: {:.0} requests/s",
            elapsed.as_millis(),
            total as f64 / elapsed.as_secs_f64()
        ),
    )];
    let mut bad = Vec::new();
    for ((kind, outcome), n) in &counts {
        figures.push(figure(&format!("  {kind}"), format!("{outcome}: {n}")));
        let status: u16 = outcome
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        // A refusal is a 4xx; the bad CBOR is an answer saying the certificate is malformed.
        let fine = (400..500).contains(&status) || (kind == "bad CBOR" && status == 200);
        if !fine {
            bad.push(format!("{kind}: {outcome} ×{n}"));
        }
    }
    latencies.sort();
    let p50 = latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or_default();
    let max = latencies.last().copied().unwrap_or_default();
    figures.push(figure(
        "valid verifications meanwhile",
        format!(
            "{} OK, {} failed; latency p50 {:.1} ms, max {:.1} ms",
            latencies.len(),
            failures.len(),
            p50.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0
        ),
    ));
    let health = net.http.get(&net.url(0, "/healthz"), None)?;
    let after = verify_code(net, 0, &certificate)?;
    figures.push(figure(
        "afterwards",
        format!("healthz {}, a valid verification {after}", health.status),
    ));
    if !bad.is_empty() {
        bail!(
            "malformed requests answered otherwise than refused: {}",
            bad.join("; ")
        );
    }
    if !failures.is_empty() || latencies.is_empty() {
        bail!(
            "{} valid verifications failed during the flood, e.g. {}",
            failures.len(),
            failures.first().map_or("none answered", String::as_str)
        );
    }
    if health.status != 200 || after != "OK" {
        bail!(
            "after the flood: healthz {}, verification {after}",
            health.status
        );
    }
    Ok(figures)
}
