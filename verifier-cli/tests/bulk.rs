//! `tongban-verify gen` and `bulk` as processes: every line's code is the single path's, over every
//! input layout, with the documented exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tongban_core::cert;
use tongban_core::testkit::NOW;
use tongban_core::trust::{LoadedStatus, StatusSet, TrustStore};
use tongban_core::values::Time;

const BIN: &str = env!("CARGO_BIN_EXE_tongban-verify");

fn must<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

fn run(args: &[&str]) -> Output {
    must(Command::new(BIN).args(args).output())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| must(serde_json::from_str(l)))
        .collect()
}

/// A generated set in a folder of the test's own.
struct Set {
    dir: PathBuf,
}

impl Set {
    fn new(test: &str, count: u64, mix: &str, extra: &[&str]) -> Set {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("bulk")
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        let dir_text = dir.display().to_string();
        let count = count.to_string();
        let mut args = vec![
            "gen",
            &dir_text,
            "--count",
            &count,
            "--mix",
            mix,
            "--regions",
            "6",
        ];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        Set { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn status_files(&self) -> Vec<String> {
        let mut files: Vec<String> = must(std::fs::read_dir(&self.dir))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "tsl"))
            .map(|p| p.display().to_string())
            .collect();
        files.sort();
        files
    }

    /// `bulk <inputs> --trust bundle.tbt --status … --now NOW <extra>`.
    fn bulk(&self, inputs: &[&str], extra: &[&str]) -> Output {
        let trust = self.path("bundle.tbt");
        let now = NOW.to_string();
        let status = self.status_files();
        let mut args = vec!["bulk"];
        args.extend_from_slice(inputs);
        args.extend_from_slice(&["--trust", &trust, "--now", &now]);
        for file in &status {
            args.extend_from_slice(&["--status", file]);
        }
        args.extend_from_slice(extra);
        run(&args)
    }

    /// The certificates of the stream, in order.
    fn certificates(&self) -> Vec<Vec<u8>> {
        let stream = must(std::fs::read(self.dir.join("certificates.tbb")));
        let mut out = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let length = u32::from_be_bytes(must(stream[at..at + 4].try_into())) as usize;
            out.push(stream[at + 4..at + 4 + length].to_vec());
            at += 4 + length;
        }
        out
    }

    /// The single path's code for every certificate.
    fn expected(&self) -> Vec<&'static str> {
        let now = Time::new(NOW).unwrap_or_else(|| panic!("now"));
        let trust = must(TrustStore::load(
            &must(std::fs::read(self.dir.join("bundle.tbt"))),
            now,
            None,
        ));
        let mut table = StatusSet::default();
        for file in self.status_files() {
            table.add(must(LoadedStatus::load(&must(std::fs::read(file)), &trust)));
        }
        self.certificates()
            .iter()
            .map(|c| cert::verify(c, &trust, &table, now).code.as_str())
            .collect()
    }
}

fn codes(output: &Output) -> Vec<String> {
    lines(output)
        .iter()
        .map(|l| l["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn summary(output: &Output) -> serde_json::Value {
    let text = stderr(output);
    let last = text.lines().last().unwrap_or_default().to_owned();
    must(serde_json::from_str::<serde_json::Value>(&last))["summary"].clone()
}

#[test]
fn every_line_has_the_single_paths_code() {
    let set = Set::new(
        "mixed",
        1500,
        "valid=70,revoked=6,expired=6,tampered=6,foreign=6,malformed=6",
        &[],
    );
    let expected = set.expected();
    let out = set.bulk(
        &[&set.path("certificates.tbb")],
        &["--threads", "2", "--batch", "64"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(codes(&out), expected);
    let first = &lines(&out)[0];
    assert_eq!(first["input"], set.path("certificates.tbb"));
    assert_eq!(first["index"], 0);
    let summary = summary(&out);
    assert_eq!(summary["certificates"], 1500);
    let valid = expected.iter().filter(|c| **c == "OK").count();
    assert_eq!(summary["valid"], valid);
    assert_eq!(summary["codes"]["OK"], valid);
    // --exact: the same lines, every signature checked one by one.
    let exact = set.bulk(&[&set.path("certificates.tbb")], &["--exact"]);
    assert_eq!(exact.status.code(), Some(1), "{}", stderr(&exact));
    assert_eq!(codes(&exact), expected);
    let signatures = &crate::summary(&exact)["signatures"];
    assert_eq!(signatures["batch_calls"], 0, "{signatures}");
    // Each kind is in the set, and tongban-verify verify agrees on a certificate of each code.
    let manifest: serde_json::Value = must(serde_json::from_slice(&must(std::fs::read(
        set.dir.join("manifest.json"),
    ))));
    for kind in [
        "valid",
        "revoked",
        "expired",
        "tampered",
        "foreign",
        "malformed",
    ] {
        assert!(manifest["kinds"][kind].as_u64() > Some(0), "{kind}");
    }
    let certificates = set.certificates();
    let mut seen = std::collections::HashSet::new();
    for (i, code) in expected.iter().enumerate() {
        if !seen.insert(*code) {
            continue;
        }
        let file = set.dir.join(format!("one-{i}.tbc"));
        must(std::fs::write(&file, &certificates[i]));
        let (trust, now) = (set.path("bundle.tbt"), NOW.to_string());
        let file = file.display().to_string();
        let mut args = vec!["verify", &file, "--trust", &trust, "--now", &now, "--json"];
        let status = set.status_files();
        for s in &status {
            args.extend_from_slice(&["--status", s]);
        }
        let single = run(&args);
        let json: serde_json::Value = must(serde_json::from_slice(&single.stdout));
        assert_eq!(json["code"], *code, "certificate {i}");
    }
    assert!(seen.len() >= 6, "{seen:?}");
}

#[test]
fn json_lines_directories_and_stdin_agree_with_the_stream() {
    let set = Set::new("layouts", 300, "valid=8,tampered=1,malformed=1", &[]);
    let jsonl = Set::new(
        "layouts-jsonl",
        300,
        "valid=8,tampered=1,malformed=1",
        &["--jsonl"],
    );
    let expected = set.expected();
    let stream = set.bulk(&[&set.path("certificates.tbb")], &[]);
    assert_eq!(codes(&stream), expected);
    let lines_out = jsonl.bulk(&[&jsonl.path("certificates.jsonl")], &[]);
    assert_eq!(codes(&lines_out), expected);
    // Standard input, and two inputs one after the other.
    let trust = set.path("bundle.tbt");
    let now = NOW.to_string();
    let mut child = must(
        Command::new(BIN)
            .args([
                "bulk",
                "-",
                &set.path("certificates.tbb"),
                "--trust",
                &trust,
                "--now",
                &now,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn(),
    );
    let stdin_bytes = must(std::fs::read(jsonl.dir.join("certificates.jsonl")));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        must(stdin.write_all(&stdin_bytes));
    }
    let both = must(child.wait_with_output());
    let all = lines(&both);
    assert_eq!(all.len(), 600);
    assert_eq!(all[0]["input"], "-");
    assert_eq!(all[300]["index"], 0);
    // Without status snapshots the codes are the same here: the set has no revoked ones.
    let codes_both: Vec<String> = all
        .iter()
        .map(|l| l["code"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(codes_both[..300], expected[..]);
    assert_eq!(codes_both[300..], expected[..]);
    // A directory of certificate files: one line per file, named by the file.
    let dir = set.dir.join("files");
    must(std::fs::create_dir_all(&dir));
    let certificates = set.certificates();
    for (i, bytes) in certificates.iter().enumerate().take(40) {
        must(std::fs::write(dir.join(format!("{i:03}.tbc")), bytes));
    }
    must(std::fs::write(dir.join(".hidden"), b"not a certificate"));
    // A file over the size limit gets TOO_LARGE, as `verify` gives it.
    must(std::fs::write(dir.join("large.tbc"), vec![0u8; 70_000]));
    let out = set.bulk(&[&dir.display().to_string()], &[]);
    let results = lines(&out);
    assert_eq!(results.len(), 41);
    for line in &results {
        let name = line["input"].as_str().unwrap_or_default();
        let stem = Path::new(name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let expected_code = match stem.parse::<usize>() {
            Ok(i) => expected[i],
            Err(_) => "TOO_LARGE",
        };
        assert_eq!(line["code"], expected_code, "{name}");
    }
}

#[test]
fn exit_codes() {
    let set = Set::new("exits", 200, "valid=1", &[]);
    let valid = set.bulk(&[&set.path("certificates.tbb")], &["--cache", "1000"]);
    assert_eq!(valid.status.code(), Some(0), "{}", stderr(&valid));
    assert_eq!(summary(&valid)["valid"], 200);
    // The same stream twice on one thread: the second time every certificate comes from the
    // cache, but for those whose first copy is in the same batch (looked up before it is done).
    let path = set.path("certificates.tbb");
    let twice = set.bulk(
        &[&path, &path],
        &["--cache", "1000", "--threads", "1", "--batch", "50"],
    );
    assert_eq!(twice.status.code(), Some(0));
    assert_eq!(summary(&twice)["signatures"]["cached"], 200);
    // Thread counts beyond 1,024 are refused (they once panicked trying to start them).
    let out = set.bulk(&[&path], &["--threads", "100000"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("1..=1024"), "{}", stderr(&out));
    // A stream cut inside its last record: the records before it are verified, then exit 2.
    let bytes = must(std::fs::read(set.dir.join("certificates.tbb")));
    let cut = set.dir.join("cut.tbb");
    must(std::fs::write(&cut, &bytes[..bytes.len() - 10]));
    let out = set.bulk(&[&cut.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(lines(&out).len(), 199);
    assert!(
        stderr(&out).contains("STREAM_TRUNCATED"),
        "{}",
        stderr(&out)
    );
    // A length over the limit.
    let long = set.dir.join("long.tbb");
    must(std::fs::write(&long, 70_000u32.to_be_bytes()));
    let out = set.bulk(&[&long.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("STREAM_RECORD_TOO_LONG"));
    // A trust bundle that is not one, and a bundle past its expiry.
    let out = run(&["bulk", &path, "--trust", &path, "--now", &NOW.to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("TRUST_BUNDLE_INVALID"),
        "{}",
        stderr(&out)
    );
    let late = (NOW + 3 * 365 * 86_400).to_string();
    let out = run(&[
        "bulk",
        &path,
        "--trust",
        &set.path("bundle.tbt"),
        "--now",
        &late,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("TRUST_BUNDLE_EXPIRED"),
        "{}",
        stderr(&out)
    );
    // A missing input.
    let out = set.bulk(&["/nonexistent/input.tbb"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("INPUT_UNREADABLE"));
}
