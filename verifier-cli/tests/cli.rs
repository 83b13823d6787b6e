//! tongban-verify as a process: exit codes, text and JSON output, refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tongban_core::testkit::vectors::{VectorSet, generate};
use tongban_core::testkit::{NOW, T0, YEAR};

const BIN: &str = env!("CARGO_BIN_EXE_tongban-verify");

struct Files {
    dir: PathBuf,
    set: VectorSet,
}

impl Files {
    fn new(test: &str) -> Files {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let set = generate().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("bundle.tbt"), &set.bundle).unwrap_or_else(|e| panic!("{e}"));
        for (region, bytes) in &set.snapshots {
            std::fs::write(dir.join(format!("{region}.tbs")), bytes)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        Files { dir, set }
    }

    fn cert(&self, case: &str) -> PathBuf {
        let bytes = &self
            .set
            .certificates
            .iter()
            .find(|c| c.name == case)
            .unwrap_or_else(|| panic!("no case {case}"))
            .bytes;
        let path = self.dir.join(format!("{case}.tbc"));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

#[test]
fn valid_certificate_exits_zero_with_its_content() {
    let f = Files::new("valid");
    let cert = f.cert("valid-full-disclosure");
    let now = NOW.to_string();
    let out = run(&[
        "verify",
        cert.to_str().unwrap_or_default(),
        "--trust",
        &f.path("bundle.tbt"),
        "--status",
        &f.path("341200.tbs"),
        "--now",
        &now,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.starts_with("VALID"), "{text}");
    assert!(
        text.contains("营业执照") && text.contains("holder.name") && text.contains("01 valid"),
        "{text}"
    );
    let out = run(&[
        "verify",
        cert.to_str().unwrap_or_default(),
        "--trust",
        &f.path("bundle.tbt"),
        "--now",
        &now,
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(v["verdict"], "valid");
    assert_eq!(v["code"], "OK");
    assert_eq!(v["disclosed"].as_array().map(Vec::len), Some(6));
    assert_eq!(v["status"]["known"], false);
}

#[test]
fn invalid_certificates_exit_one_with_their_code() {
    let f = Files::new("invalid");
    let now = NOW.to_string();
    for (case, code) in [
        ("tampered-payload", "SIGNATURE_INVALID"),
        ("status-revoked", "STATUS_REVOKED"),
        ("truncated", "CBOR_TRUNCATED"),
    ] {
        let cert = f.cert(case);
        let out = run(&[
            "verify",
            cert.to_str().unwrap_or_default(),
            "--trust",
            &f.path("bundle.tbt"),
            "--status",
            &f.path("341200.tbs"),
            "--now",
            &now,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(1), "{case}");
        assert_eq!(json(&out)["code"], code, "{case}");
        let text = run(&[
            "verify",
            cert.to_str().unwrap_or_default(),
            "--trust",
            &f.path("bundle.tbt"),
            "--status",
            &f.path("341200.tbs"),
            "--now",
            &now,
        ]);
        assert!(
            stdout(&text).starts_with(&format!("INVALID — {code}")),
            "{}",
            stdout(&text)
        );
    }
}

#[test]
fn unusable_trust_exits_two_and_names_the_code() {
    let f = Files::new("trust");
    let cert = f.cert("valid-full-disclosure");
    let cert = cert.to_str().unwrap_or_default();
    let late = (T0 + 3 * YEAR).to_string();
    let out = run(&[
        "verify",
        cert,
        "--trust",
        &f.path("bundle.tbt"),
        "--now",
        &late,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TRUST_BUNDLE_EXPIRED"));
    let now = NOW.to_string();
    let out = run(&[
        "verify",
        cert,
        "--trust",
        &f.path("bundle.tbt"),
        "--now",
        &now,
        "--federation-kid",
        "00000000000000000000000000000000",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TRUST_BUNDLE_UNTRUSTED"));
    let out = run(&[
        "verify",
        cert,
        "--trust",
        &f.path("missing.tbt"),
        "--now",
        &now,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let out = run(&["verify", cert, "--trust", cert, "--now", &now]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TRUST_BUNDLE_INVALID"));
}

#[test]
fn inspect_shows_content_marked_unverified() {
    let f = Files::new("inspect");
    let cert = f.cert("tampered-payload");
    let out = run(&["inspect", cert.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.starts_with("NOT VERIFIED") && text.contains("1.2.156.3005.2."),
        "{text}"
    );
    let out = run(&["inspect", cert.to_str().unwrap_or_default(), "--json"]);
    assert_eq!(json(&out)["verified"], false);
    let garbage = f.dir.join("garbage.tbc");
    std::fs::write(&garbage, b"not cbor").unwrap_or_else(|e| panic!("{e}"));
    let out = run(&["inspect", garbage.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn conformance_passes_on_the_committed_vectors() {
    let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/vectors/vectors.json");
    let out = run(&["conformance", vectors]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains(" passed, 0 failed"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("export");
    let out = run(&[
        "conformance",
        vectors,
        "--export",
        dir.to_str().unwrap_or_default(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let now = NOW.to_string();
    let cert = dir.join("certificates/valid-renewal.tbc");
    let bundle = dir.join("bundle.tbt");
    let out = run(&[
        "verify",
        cert.to_str().unwrap_or_default(),
        "--trust",
        bundle.to_str().unwrap_or_default(),
        "--now",
        &now,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn unbuilt_commands_say_so() {
    for command in ["bulk", "audit"] {
        let out = run(&[command, "x"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("not built yet"));
    }
}
