//! Crash safety: a real process appends from several threads and is killed with SIGKILL at random
//! moments, again and again on the same directory. After every kill the reopened log must hold
//! every entry the process acknowledged, with the acknowledged content, a tree that matches its
//! entries, and every signed checkpoint kept, verifying, and a prefix of the log. Runs on either
//! storage engine (the tests' PostgreSQL server with `TONGBAN_TEST_STORAGE=postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Rng, merkle_root, seed};
use tlog_tiles::record_hash;
use tongban_core::log::checkpoint;
use tongban_core::log::note::NoteVerifier;
use tongban_node::config::StorageConfig;
use tongban_node::home::Home;
use tongban_node::log::{LogConfig, NoIndex};
use tongban_node::storage::{LogName, Storage, test_postgres};

const ROUNDS: usize = 40;
const THREADS: &str = "4";

/// The verifier key of the checkpoints the stress tool signs in `dir` (its key is kept there).
fn stress_vkey(dir: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tongban-log-stress"))
        .arg("--vkey")
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

struct Ack {
    digest: [u8; 32],
    writer: String,
}

/// Parses the complete lines of the stress tool's output; a line cut by the kill is not an ack.
fn parse_acks(out: &[u8]) -> Vec<(u64, Ack)> {
    let complete = match out.iter().rposition(|&b| b == b'\n') {
        Some(end) => &out[..=end],
        None => return Vec::new(),
    };
    String::from_utf8(complete.to_vec())
        .unwrap()
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            assert!(parts.len() == 4 && parts[0] == "ack", "bad line {line:?}");
            let digest = hex::decode(parts[2]).unwrap().try_into().unwrap();
            (
                parts[1].parse().unwrap(),
                Ack {
                    digest,
                    writer: parts[3].to_string(),
                },
            )
        })
        .collect()
}

#[test]
fn acknowledged_entries_survive_sigkill() {
    let started = Instant::now();
    let mut rng = Rng(seed());
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_tongban-log-stress");
    let mut acked: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
    let mut checkpoints_seen = 0;
    // The tests' storage: a redb file in `dir`, or a schema on the tests' PostgreSQL server,
    // named to the stress tool in the file it reads.
    let storage = match test_postgres() {
        None => StorageConfig::Redb,
        Some(config) => {
            let config = StorageConfig::Postgres(config);
            std::fs::write(
                dir.path().join("storage.toml"),
                toml::to_string(&config).unwrap(),
            )
            .unwrap();
            config
        }
    };

    for round in 0..ROUNDS {
        let mut child = Command::new(exe)
            .arg(dir.path())
            .arg(THREADS)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).unwrap();
            out
        });
        let delay = rng.between(20, 300);
        std::thread::sleep(Duration::from_millis(delay));
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("round {round}: the stress tool exited by itself ({status}): {err}");
        }
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        let round_acks = parse_acks(&reader.join().unwrap());

        let log = Storage::open(&Home::new(dir.path()), &storage)
            .and_then(|s| s.open_log(&LogName::Region, LogConfig::default(), Arc::new(NoIndex)))
            .unwrap_or_else(|e| panic!("round {round}: reopening after SIGKILL: {e}"));
        let size = log.size().unwrap();
        let mut by_writer: HashMap<String, Vec<u64>> = HashMap::new();
        for (index, ack) in round_acks.iter() {
            let previous = acked.insert(*index, ack.digest);
            assert!(
                previous.is_none(),
                "round {round}: index {index} acknowledged twice"
            );
            by_writer
                .entry(ack.writer.clone())
                .or_default()
                .push(*index);
        }
        if let Some((&max, _)) = acked.last_key_value() {
            assert!(
                size > max,
                "round {round}: size {size} but index {max} was acknowledged"
            );
        }

        let entries = log.entries(0..size).unwrap();
        for (&index, digest) in &acked {
            assert_eq!(
                &record_hash(&entries[index as usize]).0,
                digest,
                "round {round}: entry {index} differs from what was acknowledged"
            );
        }
        assert_eq!(
            log.root(size).unwrap(),
            merkle_root(&entries),
            "round {round}: stored tree disagrees with the entries"
        );
        // Index rows committed with their entries.
        for (writer, indexes) in &by_writer {
            let found = log.lookup("writer", writer.as_bytes()).unwrap();
            for index in indexes {
                assert!(
                    found.binary_search(index).is_ok(),
                    "round {round}: entry {index} missing from the writer index"
                );
            }
        }
        // Every checkpoint ever signed verifies under the log key and is a prefix of this tree: no
        // acknowledged checkpoint was lost, and none contradicts another.
        let verifier = NoteVerifier::parse(&stress_vkey(dir.path())).unwrap();
        let history = log.checkpoints().unwrap();
        for (cp_size, note) in &history {
            let head = checkpoint::open(note, &verifier, &[]).unwrap().checkpoint;
            assert_eq!(head.size, *cp_size);
            assert!(
                head.size <= size,
                "round {round}: checkpoint beyond the log"
            );
            assert_eq!(
                head.root,
                log.root(head.size).unwrap(),
                "round {round}: checkpoint {cp_size} is not a prefix of the log"
            );
        }
        assert!(
            history.len() >= checkpoints_seen,
            "round {round}: a signed checkpoint was lost"
        );
        checkpoints_seen = history.len();
        eprintln!(
            "round {round}: killed after {delay} ms, {} acks, size {size}",
            round_acks.len()
        );
    }
    assert!(
        acked.len() > 1_000,
        "only {} acks in all rounds",
        acked.len()
    );
    assert!(checkpoints_seen > 0, "no checkpoint was ever stored");
    eprintln!(
        "{ROUNDS} rounds, {} acknowledged entries checked, {:.1} s",
        acked.len(),
        started.elapsed().as_secs_f64()
    );
}
