//! tongban-verify as a process: exit codes, text and JSON output, refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tongban_core::testkit::vectors::{VectorSet, generate};
use tongban_core::testkit::{NOW, T0, YEAR};

const BIN: &str = env!("CARGO_BIN_EXE_tongban-verify");

/// The vectors written as files into a folder of the test's own.
struct Files {
    dir: PathBuf,
    set: VectorSet,
}

fn must<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

impl Files {
    fn new(test: &str) -> Files {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
        must(std::fs::create_dir_all(&dir));
        let set = must(generate());
        must(std::fs::write(dir.join("bundle.tbt"), &set.bundle));
        for (region, bytes) in &set.snapshots {
            must(std::fs::write(dir.join(format!("{region}.tbs")), bytes));
        }
        Files { dir, set }
    }

    fn cert(&self, case: &str) -> String {
        let case = self.set.certificates.iter().find(|c| c.name == case);
        let bytes = &case.unwrap_or_else(|| panic!("no vector case")).bytes;
        let path = self
            .dir
            .join(format!("{}.tbc", case.map_or("", |c| c.name)));
        must(std::fs::write(&path, bytes));
        path.display().to_string()
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `verify <case> --trust bundle.tbt <extra…>`.
    fn verify(&self, case: &str, extra: &[&str]) -> Output {
        let (cert, trust) = (self.cert(case), self.path("bundle.tbt"));
        let mut args = vec!["verify", &cert, "--trust", &trust];
        args.extend_from_slice(extra);
        run(&args)
    }
}

fn run(args: &[&str]) -> Output {
    must(Command::new(BIN).args(args).output())
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

#[test]
fn valid_certificate_exits_zero_with_its_content() {
    let f = Files::new("valid");
    let (now, status) = (NOW.to_string(), f.path("341200.tbs"));
    let out = f.verify(
        "valid-full-disclosure",
        &["--status", &status, "--now", &now],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.starts_with("VALID"), "{text}");
    for expected in ["营业执照", "holder.name", "01 valid"] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
    let out = f.verify("valid-full-disclosure", &["--now", &now, "--json"]);
    let v = json(&out);
    assert_eq!(v["verdict"], "valid");
    assert_eq!(v["code"], "OK");
    assert_eq!(v["disclosed"].as_array().map(Vec::len), Some(6));
    assert_eq!(v["status"]["known"], false);
}

#[test]
fn invalid_certificates_exit_one_with_their_code() {
    let f = Files::new("invalid");
    let (now, status) = (NOW.to_string(), f.path("341200.tbs"));
    for (case, code) in [
        ("tampered-payload", "SIGNATURE_INVALID"),
        ("status-revoked", "STATUS_REVOKED"),
        ("truncated", "CBOR_TRUNCATED"),
    ] {
        let out = f.verify(case, &["--status", &status, "--now", &now, "--json"]);
        assert_eq!(out.status.code(), Some(1), "{case}");
        assert_eq!(json(&out)["code"], code, "{case}");
        let text = stdout(&f.verify(case, &["--status", &status, "--now", &now]));
        assert!(text.starts_with(&format!("INVALID — {code}")), "{text}");
    }
}

#[test]
fn unusable_trust_exits_two_and_names_the_code() {
    let f = Files::new("trust");
    let (now, late) = (NOW.to_string(), (T0 + 3 * YEAR).to_string());
    let out = f.verify("valid-full-disclosure", &["--now", &late]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("TRUST_BUNDLE_EXPIRED"));
    let zero_kid = "00000000000000000000000000000000";
    let out = f.verify(
        "valid-full-disclosure",
        &["--now", &now, "--federation-kid", zero_kid],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("TRUST_BUNDLE_UNTRUSTED"));
    let cert = f.cert("valid-full-disclosure");
    for (trust, message) in [
        (f.path("missing.tbt"), "cannot read"),
        (cert.clone(), "TRUST_BUNDLE_INVALID"),
    ] {
        let out = run(&["verify", &cert, "--trust", &trust, "--now", &now]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
}

#[test]
fn inspect_shows_content_marked_unverified() {
    let f = Files::new("inspect");
    let cert = f.cert("tampered-payload");
    let out = run(&["inspect", &cert]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.starts_with("NOT VERIFIED") && text.contains("1.2.156.3005.2."),
        "{text}"
    );
    assert_eq!(json(&run(&["inspect", &cert, "--json"]))["verified"], false);
    let garbage = f.path("garbage.tbc");
    must(std::fs::write(&garbage, b"not cbor"));
    assert_eq!(run(&["inspect", &garbage]).status.code(), Some(2));
}

#[test]
fn conformance_passes_and_exports_usable_files() {
    let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/vectors/vectors.json");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("export");
    let out = run(&[
        "conformance",
        vectors,
        "--export",
        &dir.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains(" passed, 0 failed"));
    let cert = dir
        .join("certificates/valid-renewal.tbc")
        .display()
        .to_string();
    let bundle = dir.join("bundle.tbt").display().to_string();
    let out = run(&[
        "verify",
        &cert,
        "--trust",
        &bundle,
        "--now",
        &NOW.to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn bulk_usage_errors_exit_two() {
    let out = run(&["bulk", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--trust"), "{}", stderr(&out));
}
