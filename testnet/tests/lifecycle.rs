//! `tongban-testnet up`, `status` and `down` as real processes on a temporary directory, and the
//! refusals a person meets first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_tongban-testnet");

fn testnet(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Stops whatever the test left running, even when an assertion failed.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = testnet(&["down"], self.0);
    }
}

fn pids(dir: &Path) -> Vec<u32> {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("testnet.json")).unwrap()).unwrap();
    state["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["pid"].as_u64())
        .map(|p| u32::try_from(p).unwrap())
        .collect()
}

/// Whether `pid` is a live process running a node of `dir` (not a zombie, not a reused id).
fn runs_node(pid: u32, dir: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
        .unwrap_or(false)
}

#[test]
fn up_status_down_and_up_again() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("net");
    let _down = Down(&dir);

    let out = testnet(&["up", "--regions", "2"], &dir);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("341200 阜阳市  API http://127.0.0.1:"),
        "{shown}"
    );
    assert!(shown.contains("370100 济南市"), "{shown}");
    assert!(shown.contains("/p2p/"), "{shown}");
    // The state file holds tokens: its owner's alone.
    let mode = std::fs::metadata(dir.join("testnet.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let running = pids(&dir);
    assert_eq!(running.len(), 2);
    // The nodes outlived `up`.
    assert!(running.iter().all(|&p| runs_node(p, &dir)));

    let out = testnet(&["status"], &dir);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert_eq!(
        shown.matches("peers: 1 of 1 connected").count(),
        2,
        "{shown}"
    );
    assert!(shown.contains("log: "), "{shown}");
    assert!(shown.contains("last checkpoint: "), "{shown}");
    assert!(shown.contains("cosigned checkpoint: "), "{shown}");

    let out = testnet(&["down"], &dir);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).matches("stopped by SIGTERM").count(),
        2,
        "{}",
        text(&out)
    );
    assert!(running.iter().all(|&p| !runs_node(p, &dir)));

    // Stopped: status says so and fails; up starts the same network again.
    let out = testnet(&["status"], &dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        text(&out).matches(": not running\n").count(),
        2,
        "{}",
        text(&out)
    );
    let out = testnet(&["up"], &dir);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("restarted 2 of 2 nodes"),
        "{}",
        text(&out)
    );
    let out = testnet(&["status"], &dir);
    assert!(out.status.success(), "{}", text(&out));
    let out = testnet(&["down"], &dir);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn status_and_down_without_a_network_say_so() {
    let temp = tempfile::tempdir().unwrap();
    for command in ["status", "down"] {
        let out = testnet(&[command], temp.path());
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("no testnet in"), "{said}");
        assert!(said.contains("tongban-testnet up --dir"), "{said}");
    }
}

#[test]
fn up_refuses_bad_input_without_starting_anything() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("unrelated.txt"), "x").unwrap();
    let out = testnet(&["up"], temp.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is not empty"), "{}", text(&out));

    let out = testnet(&["up", "--regions", "0"], &temp.path().join("new"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--regions must be between 1 and 16"));
    assert!(!temp.path().join("new").exists());

    let out = Command::new(BIN)
        .args(["scenario", "partition", "--regions", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("needs between 3 and 16 regions"));
}
