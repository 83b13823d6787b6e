//! `tongban-verify audit replay` as a process over audit bundle directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tongban_core::log::audit::encode_entries;
use tongban_core::testkit::log::{SampleLog, sample};

const BIN: &str = env!("CARGO_BIN_EXE_tongban-verify");

fn write_bundle(name: &str, log: &SampleLog) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("audit")
        .join(name);
    let checkpoints = dir.join("checkpoints");
    let _ = std::fs::remove_dir_all(&dir);
    let write =
        |path: PathBuf, bytes: &[u8]| std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(&checkpoints).unwrap_or_else(|e| panic!("{e}"));
    write(dir.join("log.vkey"), format!("{}\n", log.vkey).as_bytes());
    write(dir.join("trust.tbt"), &log.trust_bundle);
    write(dir.join("entries"), &encode_entries(&log.entries));
    for (name, note) in &log.checkpoints {
        write(checkpoints.join(name), note);
    }
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn log() -> SampleLog {
    sample().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_clean_bundle_exits_zero_with_statistics() {
    let dir = write_bundle("clean", &log());
    let out = run(&["audit", "replay", &dir.display().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("CLEAN") && text.contains("3 verified, largest size 11"),
        "{text}"
    );
    assert!(text.contains("100 (7 for other regions, 7.0 %)"), "{text}");
}

#[test]
fn findings_exit_one_and_name_the_first_bad_entry() {
    let clean = write_bundle("clean-too", &log());
    let mut bad = log();
    bad.entries.swap(3, 4);
    let bad = write_bundle("reordered", &bad);
    let out = run(&[
        "audit",
        "replay",
        &clean.display().to_string(),
        &bad.display().to_string(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["clean"], false);
    assert_eq!(v["logs"][0]["clean"], true);
    let findings = v["logs"][1]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        findings
            .iter()
            .any(|f| f["code"] == "UNKNOWN_CERTIFICATE" && f["entry"] == 3),
        "{findings:?}"
    );
    let text =
        String::from_utf8_lossy(&run(&["audit", "replay", &bad.display().to_string()]).stdout)
            .into_owned();
    assert!(text.contains("entry 3: UNKNOWN_CERTIFICATE"), "{text}");
}

#[test]
fn an_unreadable_bundle_exits_two() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("audit")
        .join("missing");
    let out = run(&["audit", "replay", &dir.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let broken = write_bundle("broken", &log());
    std::fs::write(broken.join("entries"), [0, 0, 0, 9, 1]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        run(&["audit", "replay", &broken.display().to_string()])
            .status
            .code(),
        Some(2)
    );
}

/// Each kind of damage issue 3 names, through the command: exit 1 and the finding's code in the
/// report for people.
#[test]
fn tampering_truncation_forgery_and_equivocation_are_each_reported() {
    use tongban_core::keys::SecretKey;
    use tongban_core::log::entry::{Act, LogEntry};
    use tongban_core::testkit::{NOW, key, region_code, seed, time};

    let mut tampered = log();
    let at = tampered.entries[5].len() - 70;
    tampered.entries[5][at] ^= 1;

    let mut truncated = log();
    truncated.entries.truncate(9);

    let mut forged = log();
    let (_, genuine) = LogEntry::open(&forged.entries[7]).unwrap_or_else(|e| panic!("{e}"));
    forged.entries[7] = genuine
        .sign(&key("forger").unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let head = forged.checkpoint(11).unwrap_or_else(|e| panic!("{e}"));
    forged.checkpoints = vec![("11.checkpoint".into(), head)];

    let mut equivocating = log();
    let mut fork = log();
    fork.entries[10] = LogEntry {
        region: region_code("341200").unwrap_or_else(|e| panic!("{e}")),
        at: time(NOW).unwrap_or_else(|e| panic!("{e}")),
        act: Act::Receipts {
            count: 1,
            root: [1; 32],
            cross_region: 0,
        },
    }
    .sign(&SecretKey::from_seed(&seed("region 341200 root")).unwrap_or_else(|e| panic!("{e}")))
    .unwrap_or_else(|e| panic!("{e}"));
    let head = fork.checkpoint(11).unwrap_or_else(|e| panic!("{e}"));
    equivocating
        .checkpoints
        .push(("fork-11.checkpoint".into(), head));

    for (name, damaged, says) in [
        (
            "tampered",
            tampered,
            "checkpoint 7.checkpoint: CHECKPOINT_ROOT",
        ),
        (
            "truncated",
            truncated,
            "checkpoint 11.checkpoint: CHECKPOINT_ROOT",
        ),
        ("forged", forged, "entry 7: ENTRY_SIGNATURE"),
        ("equivocating", equivocating, "EQUIVOCATION"),
    ] {
        let dir = write_bundle(name, &damaged);
        let out = run(&["audit", "replay", &dir.display().to_string()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name}: {text}");
        assert!(text.contains(says), "{name}: {text}");
    }
}

#[test]
fn a_pinned_federation_refuses_a_log_of_another() {
    let log = log();
    let dir = write_bundle("pinned", &log);
    let dir = dir.display().to_string();
    let trust = tongban_core::trust::TrustStore::load_any_time(&log.trust_bundle, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let right = trust.federation.key.kid().to_hex();
    let out = run(&["audit", "replay", &dir, "--federation-kid", &right]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wrong = "00".repeat(16);
    let out = run(&["audit", "replay", &dir, "--federation-kid", &wrong]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&dir) && stderr.contains("trust bundle"),
        "{stderr}"
    );
    let out = run(&["audit", "replay", &dir, "--federation-kid", "xyz"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn states_lists_every_certificate_as_the_replay_leaves_it() {
    let log = log();
    let dir = write_bundle("states", &log);
    let states = Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit/states.jsonl");
    let _ = std::fs::remove_file(&states);
    let args = |states: &Path| {
        vec![
            "audit".to_owned(),
            "replay".to_owned(),
            dir.display().to_string(),
            "--states".to_owned(),
            states.display().to_string(),
            "--json".to_owned(),
        ]
    };
    let argv = args(&states);
    let out = run(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&states).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // One line per certificate, each state counted in the report's final states.
    let mut counted = std::collections::BTreeMap::<String, u64>::new();
    for line in &lines {
        assert_eq!(line["region"], "341200");
        *counted
            .entry(line["state_name"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let final_states = &report["logs"][0]["statistics"]["final_states"];
    assert!(!lines.is_empty());
    for (state, n) in &counted {
        assert_eq!(final_states[state], *n, "{state}: {final_states}");
    }
    // The renewal of the sample is a fulfilled promise.
    assert!(lines.iter().any(|l| l["promise_fulfilled"] == true));
    // Never over an existing file: exit 2, the file untouched.
    let out = run(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&states).unwrap_or_default(), text);
}

/// `audit report` of the sample log (core's test kit: acts at set times across months and
/// quarters of 2026, China Standard Time). The expected figures are counted from how the sample
/// is built, entry by entry, not from the code that counts them.
#[test]
fn a_report_adds_up_each_period_and_names_where_it_ends_in_the_log() {
    let dir = write_bundle("report", &log());
    let source = dir.display().to_string();
    let report = |period: &str, format: &str| {
        run(&[
            "audit", "report", &source, "--period", period, "--format", format,
        ])
    };
    let out = report("2026-Q2", "json");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (&json["period"], &json["previous"], &json["year_before"]),
        (&"2026-Q2".into(), &"2026-Q1".into(), &"2025-Q2".into())
    );
    let region = &json["regions"][0];
    let q2 = &region["figures"]["period"];
    // Entries 6–10, April: seal revoked, licence 1 revoked, 100 verifications (7 for other
    // regions), the promise-based renewal of licence 3, its promise fulfilled.
    assert_eq!(q2["entries"], 5);
    assert_eq!(
        (&q2["first_index"], &q2["last_index"]),
        (&6.into(), &10.into())
    );
    assert_eq!(
        (&q2["issued"], &q2["renewed"], &q2["promise_based"]),
        (&1.into(), &1.into(), &1.into())
    );
    assert_eq!(q2["promises_fulfilled"], 1);
    assert_eq!(q2["status_changes"], serde_json::json!({"revoked": 1}));
    assert_eq!(
        (&q2["verifications"], &q2["verifications_cross_region"]),
        (&100.into(), &7.into())
    );
    assert_eq!(q2["cross_region_share"], 0.07);
    // The checkpoint that covers entry 10 is the one of size 11.
    assert_eq!(region["log"]["checkpoint"]["size"], 11);
    // Q1: entries 0–5 (January and February): two seals, three licences, one suspension.
    let q1 = &region["figures"]["previous"];
    assert_eq!((&q1["entries"], &q1["issued"]), (&6.into(), &3.into()));
    assert_eq!(q1["status_changes"], serde_json::json!({"suspended": 1}));
    assert_eq!(region["figures"]["year_before"]["entries"], 0);
    // A month: January holds entries 0–4; the checkpoint of size 7 covers them.
    let out = report("2026-01", "json");
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let january = &json["regions"][0];
    assert_eq!(january["figures"]["period"]["issued"], 2);
    assert_eq!(january["log"]["checkpoint"]["size"], 7);
    assert_eq!(json["federation"]["period"]["issued"], 2);
    // CSV and HTML carry the same figures.
    let csv = String::from_utf8_lossy(&report("2026-Q2", "csv").stdout).into_owned();
    assert!(
        csv.starts_with("region,figure,2026-Q2,2026-Q1,2025-Q2\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains("341200,\"verifications\",100,0,0\r\n"),
        "{csv}"
    );
    assert!(csv.contains("federation,\"issued\",1,3,0\r\n"), "{csv}");
    let html = String::from_utf8_lossy(&report("2026-Q2", "html").stdout).into_owned();
    assert!(html.contains("<svg") && html.contains("大小 11"), "{html}");
}

#[test]
fn no_report_of_a_log_with_findings_and_a_bad_period_is_refused() {
    let mut bad = log();
    bad.entries.swap(3, 4);
    let bad = write_bundle("report-reordered", &bad);
    let out = run(&[
        "audit",
        "report",
        &bad.display().to_string(),
        "--period",
        "2026",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no report is written");
    assert!(String::from_utf8_lossy(&out.stderr).contains("FINDING(S)"));
    let clean = write_bundle("report-clean", &log());
    let out = run(&[
        "audit",
        "report",
        &clean.display().to_string(),
        "--period",
        "2026-13",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.html");
    let out = run(&[
        "audit",
        "report",
        &clean.display().to_string(),
        "--period",
        "2026",
        "--format",
        "html",
        "--out",
        &target.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read_to_string(&target).is_ok_and(|h| h.starts_with("<!doctype html>")));
}
