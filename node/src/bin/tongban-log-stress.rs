//! Development tool for the log's crash test (node/tests/crash.rs), not a command of the node:
//! opens the region log of `<dir>` (a redb file there, or the storage `<dir>/storage.toml`
//! names: a `[storage]` table as in config.toml, which the test writes when it runs on
//! PostgreSQL) and appends from several threads until killed, printing
//!
//! ```text
//! ack <index> <leaf hash hex> <writer>   for every acknowledged (durable) entry
//! ```
//!
//! flushed line by line, while another thread signs a C2SP checkpoint every few milliseconds
//! (with a key of its own, made on its first run and kept as `<dir>/stress.key`). The test kills
//! it with SIGKILL and checks every printed line and every stored checkpoint against the reopened
//! log.
//!
//! Usage: `tongban-log-stress <dir> [threads]`, or `tongban-log-stress --vkey <dir>` to print the
//! checkpoints' verifier key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tongban_node::checkpoints::CheckpointSigner;
use tongban_node::config::StorageConfig;
use tongban_node::home::Home;
use tongban_node::keyfile;
use tongban_node::log::{Indexer, Log, LogConfig};
use tongban_node::storage::{LogName, Storage};

/// Indexes each entry by the writer (process and thread) that appended it, so the crash test also
/// checks that index rows commit with their entries.
struct ByWriter;

impl Indexer for ByWriter {
    fn index_keys(&self, entry: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        match entry.split(|&b| b == b' ').nth(1) {
            Some(writer) => vec![("writer", writer.to_vec())],
            None => Vec::new(),
        }
    }
}

const ORIGIN: &str = "tongban.example/341200/log/stress";
/// The file in the stress directory that names another storage than a redb file.
const STORAGE: &str = "storage.toml";

/// The signer of `dir`'s checkpoints: its key made on the first run, read on the others.
fn signer(dir: &std::path::Path) -> Result<CheckpointSigner, String> {
    let path = dir.join("stress.key");
    let key = match keyfile::read(&path) {
        Ok(key) => key,
        Err(_) if !path.exists() => {
            let key = keyfile::generate(tongban_core::suite::Suite::Ed25519)
                .map_err(|e| e.to_string())?;
            keyfile::write(&path, &key).map_err(|e| e.to_string())?;
            key
        }
        Err(e) => return Err(e.to_string()),
    };
    CheckpointSigner::new(ORIGIN, key).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--vkey") {
        let Some(dir) = args.get(1).map(PathBuf::from) else {
            eprintln!("usage: tongban-log-stress --vkey <dir>");
            return ExitCode::from(2);
        };
        return match signer(&dir).and_then(|s| s.vkey().map_err(|e| e.to_string())) {
            Ok(vkey) => {
                println!("{vkey}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: tongban-log-stress <dir> [threads]");
        return ExitCode::from(2);
    };
    let threads: usize = match args.get(1).map(|s| s.parse()) {
        None => 4,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("threads must be a positive number");
            return ExitCode::from(2);
        }
    };
    let log = match open(&dir) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("opening the log: {e}");
            return ExitCode::FAILURE;
        }
    };

    let signer = match signer(&dir) {
        Ok(signer) => signer,
        Err(e) => {
            eprintln!("the checkpoint key: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Every thread runs until it fails; the first failure ends the process.
    let (failed, failure) = std::sync::mpsc::channel::<String>();
    for t in 0..threads {
        let (log, failed) = (log.clone(), failed.clone());
        std::thread::spawn(move || {
            if let Err(e) = append_forever(&log, t) {
                let _ = failed.send(e);
            }
        });
    }
    std::thread::spawn(move || {
        if let Err(e) = checkpoint_forever(&log, &signer) {
            let _ = failed.send(e);
        }
    });
    let reason = failure
        .recv()
        .unwrap_or_else(|_| "every thread stopped".into());
    eprintln!("tongban-log-stress: {reason}");
    ExitCode::FAILURE
}

/// The region log of `dir`, in the storage `<dir>/storage.toml` names, else in a redb file.
fn open(dir: &Path) -> Result<Log, String> {
    let config = match std::fs::read_to_string(dir.join(STORAGE)) {
        Ok(text) => toml::from_str(&text).map_err(|e| format!("{STORAGE}: {e}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => StorageConfig::Redb,
        Err(e) => return Err(format!("{STORAGE}: {e}")),
    };
    let storage = Storage::open(&Home::new(dir), &config).map_err(|e| e.to_string())?;
    storage
        .open_log(&LogName::Region, LogConfig::default(), Arc::new(ByWriter))
        .map_err(|e| e.to_string())
}

fn append_forever(log: &Log, thread: usize) -> Result<(), String> {
    let writer = format!("{}-{thread}", std::process::id());
    let mut rng = Rng(std::process::id() as u64 * 1_000 + thread as u64);
    let mut seq: u64 = 0;
    loop {
        // Mostly single appends, sometimes a few at once, of varying sizes.
        let count = if rng.next().is_multiple_of(5) {
            1 + rng.next() % 4
        } else {
            1
        };
        let entries: Vec<Vec<u8>> = (0..count)
            .map(|_| {
                seq += 1;
                let mut e = format!("stress {writer} {seq} ").into_bytes();
                let padding = (rng.next() % 400) as usize;
                e.extend((0..padding).map(|_| rng.next() as u8));
                e
            })
            .collect();
        let range = log
            .append_many(entries.clone())
            .map_err(|e| format!("append: {e}"))?;
        let mut out = std::io::stdout().lock();
        for (index, entry) in range.zip(&entries) {
            let digest = hex::encode(tongban_core::log::tree::leaf_hash(log.suite(), entry));
            writeln!(out, "ack {index} {digest} {writer}").map_err(|e| format!("stdout: {e}"))?;
        }
        out.flush().map_err(|e| format!("stdout: {e}"))?;
    }
}

fn checkpoint_forever(log: &Log, signer: &CheckpointSigner) -> Result<(), String> {
    loop {
        std::thread::sleep(Duration::from_millis(5));
        signer.sign(log).map_err(|e| format!("checkpoint: {e}"))?;
    }
}

/// splitmix64: cheap varied entry contents without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
