//! tongban-testnet: several region nodes on one machine, the end-to-end story, and fault
//! scenarios. Every node is this binary re-executed as `tongban-testnet node run …` (the whole
//! `tongban-node` command line, from the node's library), and the audit replay is this binary as
//! `tongban-testnet verify audit replay …`, so one build is all the testnet needs.

mod demo;
mod http;
mod net;
mod scenario;
mod signals;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use serde_json::Value;
use tongban_core::suite::Suite;

use net::{DEFAULT_REGIONS, MAX_REGIONS, Testnet};

const DEFAULT_DIR: &str = "testnet-data";

#[derive(Parser)]
#[command(
    name = "tongban-testnet",
    version,
    about = "A local Tongban testnet: region nodes on loopback forming one federation"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start N region nodes on loopback (a new network, or the stopped nodes of the one in D),
    /// with the signed membership, demo agencies and seals; the nodes keep running.
    Up {
        /// How many regions (阜阳 341200, 济南 370100, 宿迁 321300, 铜陵 340700, then further
        /// cities); ignored when D already holds a network.
        #[arg(long, default_value_t = DEFAULT_REGIONS.len())]
        regions: usize,
        /// The network's directory: node directories and testnet.json (0600: it holds tokens).
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// The federation's signature suite, for a new network: ed25519 or sm2 (national
        /// cryptography: SM2 with SM3, SM3 for every hash).
        #[arg(long, default_value = "ed25519")]
        suite: Suite,
    },
    /// Each node's peers, log size, last checkpoint and its cosignatures; exits 1 if a node does
    /// not answer.
    Status {
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Stop the nodes of D: SIGTERM, wait for each to exit (SIGKILL after 15 s), report.
    Down {
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Start the four-region network and walk through the story step by step, with the
    /// evidence; ends with a summary and exits 1 if any step failed.
    Demo {
        /// Keep the network's directory here (default: a temporary directory, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The federation's signature suite: ed25519 or sm2.
        #[arg(long, default_value = "ed25519")]
        suite: Suite,
    },
    /// Fault scenarios with measured figures; exits 1 if the network does not behave.
    ///
    /// crash: SIGKILL a node during an issuance burst, restart it: nothing acknowledged is lost,
    /// and the time to catch up. partition: emulated on one machine without root by SIGSTOP-ing
    /// a minority of the nodes (they neither answer nor send), issuing in the majority, then
    /// SIGCONT: the time to converge. equivocation: a node signs two checkpoints of one size;
    /// every other node detects it. outsider: a node of another federation is refused. flood:
    /// malformed requests (bad JSON, base64, CBOR, oversized bodies, bad tokens), answered by
    /// status while valid verifications keep being served.
    Scenario {
        #[arg(value_enum)]
        name: scenario::Name,
        /// How many regions (at least 3 for partition and equivocation, 2 for the others).
        #[arg(long, default_value_t = DEFAULT_REGIONS.len())]
        regions: usize,
        /// Keep the network's directory here (default: a temporary directory, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The federation's signature suite: ed25519 or sm2.
        #[arg(long, default_value = "ed25519")]
        suite: Suite,
    },
    /// Runs a region node: `tongban-node`'s command line (how the testnet starts its nodes).
    #[command(hide = true, disable_help_flag = true)]
    Node {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Runs `tongban-verify`'s command line (how the demo replays the logs).
    #[command(hide = true, disable_help_flag = true)]
    Verify {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

// The nodes this binary runs use the allocator `tongban-node` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Cmd::Node { args } => {
            return tongban_node::cli::main(
                std::iter::once(OsString::from("tongban-node")).chain(args),
            );
        }
        Cmd::Verify { args } => {
            return tongban_verify::cli::main(
                std::iter::once(OsString::from("tongban-verify")).chain(args),
            );
        }
        command => signals::install_handler().and_then(|()| run(command)),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tongban-testnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Cmd) -> Result<ExitCode> {
    match command {
        Cmd::Up {
            regions,
            dir,
            suite,
        } => up(&dir, regions, suite),
        Cmd::Status { dir } => status(&dir),
        Cmd::Down { dir } => down(&dir),
        Cmd::Demo { dir, suite } => demo::run(dir.as_deref(), suite),
        Cmd::Scenario {
            name,
            regions,
            dir,
            suite,
        } => scenario::run(name, regions, dir.as_deref(), suite),
        Cmd::Node { .. } | Cmd::Verify { .. } => bail!("handled in main"),
    }
}

fn up(dir: &Path, regions: usize, suite: Suite) -> Result<ExitCode> {
    if !(1..=MAX_REGIONS).contains(&regions) {
        bail!("--regions must be between 1 and {MAX_REGIONS}");
    }
    let net = if dir.join(net::STATE_FILE).exists() {
        let mut net = Testnet::open(dir)?;
        let started = net.start_stopped()?;
        if started.is_empty() {
            println!(
                "all {} nodes of {} are already running",
                net.len(),
                net.dir.display()
            );
        } else {
            println!("restarted {} of {} nodes", started.len(), net.len());
        }
        net.wait_mesh(&net.all(), Duration::from_secs(60))?;
        net
    } else {
        println!("starting {regions} region node(s) in {} …", dir.display());
        Testnet::create(dir, regions, suite)?
    };
    println!(
        "federation {} ({} suite, membership {}), quorum {}:",
        net.state.federation,
        net.state.suite,
        net.state.membership.display(),
        net.state.quorum
    );
    for node in &net.state.nodes {
        println!(
            "  {} {}  API {}  p2p {}",
            node.region,
            node.name,
            node.api,
            node.p2p.as_deref().unwrap_or("—")
        );
        for agency in &node.agencies {
            println!(
                "      {} {} ({}), seal {} {}",
                agency.role, agency.name, agency.uscc, agency.seal_id, agency.seal
            );
        }
    }
    println!(
        "tokens and process ids: {} (0600); `tongban-testnet status --dir {1}`, \
         `tongban-testnet down --dir {1}`",
        net.dir.join(net::STATE_FILE).display(),
        dir.display()
    );
    net.detach()?;
    Ok(ExitCode::SUCCESS)
}

/// A signed note: its checkpoint (origin, size, root) and the names of its signers.
struct Note {
    size: u64,
    root: String,
    signers: Vec<String>,
}

fn parse_note(text: &str) -> Option<Note> {
    let mut lines = text.lines();
    let _origin = lines.next()?;
    let size = lines.next()?.trim().parse().ok()?;
    let root = lines.next()?.trim().to_owned();
    let signers = text
        .lines()
        .filter_map(|l| l.strip_prefix("— "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    Some(Note {
        size,
        root,
        signers,
    })
}

fn status(dir: &Path) -> Result<ExitCode> {
    let mut net = Testnet::open(dir)?;
    let names: Vec<(String, String)> = net
        .state
        .nodes
        .iter()
        .filter_map(|n| n.peer_id.clone().map(|p| (p, n.name.clone())))
        .collect();
    println!(
        "testnet {} — federation {}, {} regions, quorum {}",
        net.dir.display(),
        net.state.federation,
        net.len(),
        net.state.quorum
    );
    let mut down = 0;
    for i in 0..net.len() {
        let node = net.node(i).clone();
        if !net.is_running(i) {
            println!("{} {}: not running", node.region, node.name);
            down += 1;
            continue;
        }
        match node_status(&net, i, &names) {
            Ok(lines) => {
                println!(
                    "{} {}: running (pid {}), API {}",
                    node.region,
                    node.name,
                    node.pid.unwrap_or_default(),
                    node.api
                );
                for line in lines {
                    println!("    {line}");
                }
            }
            Err(e) => {
                println!(
                    "{} {}: process {} does not answer: {e:#}",
                    node.region,
                    node.name,
                    node.pid.unwrap_or_default()
                );
                down += 1;
            }
        }
    }
    if down > 0 {
        eprintln!(
            "tongban-testnet: {down} of {} nodes are not running or do not answer \
             (`tongban-testnet up --dir {}` restarts stopped nodes)",
            net.len(),
            dir.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn node_status(net: &Testnet, i: usize, names: &[(String, String)]) -> Result<Vec<String>> {
    let fed = net.fed_status(i)?;
    let connected: Vec<String> = fed["connected"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|p| {
                    names
                        .iter()
                        .find(|(id, _)| id == p)
                        .map_or_else(|| p.to_owned(), |(_, name)| name.clone())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut lines = vec![format!(
        "peers: {} of {} connected ({}); membership version {}; p2p {}",
        connected.len(),
        net.len() - 1,
        connected.join(", "),
        fed["membership_version"],
        net.node(i).p2p.as_deref().unwrap_or("—")
    )];
    lines.push(format!("log: {} entries", net.log_size(i)?));
    let own = net.http.get(&net.url(i, "/checkpoint"), None)?;
    match (own.status, parse_note(&own.text())) {
        (200, Some(note)) => lines.push(format!(
            "last checkpoint: size {}, root {}",
            note.size, note.root
        )),
        _ => lines.push("last checkpoint: none yet".into()),
    }
    let cosigned = net
        .http
        .get(&net.url(i, "/v1/federation/checkpoint"), None)?;
    match (cosigned.status, parse_note(&cosigned.text())) {
        (200, Some(note)) => lines.push(format!(
            "cosigned checkpoint: size {}, {} cosignature(s) ({})",
            note.size,
            note.signers.len().saturating_sub(1),
            note.signers
                .iter()
                .skip(1)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => lines.push(format!(
            "cosigned checkpoint: none has reached the quorum of {} yet",
            net.state.quorum
        )),
    }
    let misbehaving = fed["misbehaving"].as_object().map(|m| m.len()).unwrap_or(0);
    if misbehaving > 0 {
        lines.push(format!(
            "misbehaving members: {}",
            fed["misbehaving"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        ));
    }
    Ok(lines)
}

fn down(dir: &Path) -> Result<ExitCode> {
    let mut net = Testnet::open(dir)?;
    let mut failed = 0;
    for i in 0..net.len() {
        let node = net.node(i).clone();
        if !net.is_running(i) {
            println!("{} {}: was not running", node.region, node.name);
            net.state.nodes[i].pid = None;
            continue;
        }
        match net.terminate(i, Duration::from_secs(15)) {
            Ok((took, false)) => println!(
                "{} {}: stopped by SIGTERM in {} ms",
                node.region,
                node.name,
                took.as_millis()
            ),
            Ok((took, true)) => println!(
                "{} {}: did not exit within 15 s of SIGTERM; killed (SIGKILL) after {} ms",
                node.region,
                node.name,
                took.as_millis()
            ),
            Err(e) => {
                println!("{} {}: could not be stopped: {e:#}", node.region, node.name);
                failed += 1;
            }
        }
    }
    net.save()?;
    println!(
        "state kept in {} (`tongban-testnet up --dir {}` starts the nodes again)",
        net.dir.display(),
        dir.display()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cosigned_note_names_its_signers() {
        let note = "tongban.local/341200/log/1\n12\nmx0wYDvw=\n\n\
                    — tongban.local/341200/log/1 AAAA\n\
                    — tongban.local/370100/witness BBBB\n";
        let parsed = parse_note(note);
        assert_eq!(parsed.as_ref().map(|n| n.size), Some(12));
        assert_eq!(parsed.as_ref().map(|n| n.root.as_str()), Some("mx0wYDvw="));
        assert_eq!(
            parsed.map(|n| n.signers),
            Some(vec![
                "tongban.local/341200/log/1".to_owned(),
                "tongban.local/370100/witness".to_owned()
            ])
        );
        assert!(parse_note("origin\nnot a size\n").is_none());
    }
}
