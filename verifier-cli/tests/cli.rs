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
        for (region, bytes) in &set.status {
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
fn status_lists_decide_and_the_verdict_says_how_old_they_are() {
    let f = Files::new("lists");
    let now = NOW.to_string();
    let (list, jinan) = (f.path("341200-list.tbs"), f.path("370100-list.tbs"));
    let out = f.verify(
        "status-revoked",
        &[
            "--status", &list, "--status", &jinan, "--now", &now, "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["code"], "STATUS_REVOKED");
    // The vectors' lists were signed a day before NOW.
    assert_eq!(v["status"]["age_seconds"], 86_400, "{v}");
    assert_eq!(v["status"]["since"], serde_json::Value::Null);
    let text = stdout(&f.verify("valid-full-disclosure", &["--status", &list, "--now", &now]));
    assert!(text.contains("01 valid, per status of"), "{text}");
    assert!(text.contains("(1 d 0 h old)"), "{text}");
    // A list that does not load stops the run before any certificate.
    let bad = f.path("341200-list-reserved.tbs");
    let out = f.verify("valid-full-disclosure", &["--status", &bad, "--now", &now]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("STATUS_LIST_INVALID"),
        "{}",
        stderr(&out)
    );
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

/// A copy or proof case of the vectors, written into the test's folder.
fn sharing_file(f: &Files, name: &str) -> String {
    let bytes = f
        .set
        .copies
        .iter()
        .find(|c| c.name == name)
        .map(|c| &c.bytes)
        .or_else(|| {
            f.set
                .proofs
                .iter()
                .find(|p| p.name == name)
                .map(|p| &p.bytes)
        })
        .unwrap_or_else(|| panic!("no case {name}"));
    let path = f.path(name);
    must(std::fs::write(&path, bytes));
    path
}

#[test]
fn copies_verify_for_their_recipient_only() {
    let f = Files::new("copies");
    let (trust, now) = (f.path("bundle.tbt"), NOW.to_string());
    let recipient = {
        let case = f.set.copies.iter().find(|c| c.name == "copy-valid");
        let p = &case.unwrap_or_else(|| panic!("copy-valid")).presenter;
        format!("{}:{}", p.region, p.agency.as_str())
    };
    let copy = sharing_file(&f, "copy-valid");
    let verify = |file: &str, recipient: &str, now: &str, extra: &[&str]| {
        let mut args = vec![
            "copy",
            "verify",
            file,
            "--trust",
            &trust,
            "--recipient",
            recipient,
            "--now",
            now,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let out = verify(&copy, &recipient, &now, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.starts_with("VALID"), "{text}");
    assert!(
        text.contains("企业跨省迁移登记") && text.contains("holder.name"),
        "{text}"
    );
    let value = json(&verify(&copy, &recipient, &now, &["--json"]));
    assert_eq!(value["code"], "OK");
    assert_eq!(value["request"]["fields"].as_array().map(Vec::len), Some(2));
    // Another presenter; after the expiry; a tampered copy.
    let other = format!(
        "370100:{}",
        must(tongban_core::testkit::make_uscc("11370100MB0000009")).as_str()
    );
    let wrong = verify(&copy, &other, &now, &["--json"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert_eq!(json(&wrong)["code"], "COPY_WRONG_RECIPIENT");
    let later = (NOW + 40 * 86_400).to_string();
    assert_eq!(
        json(&verify(&copy, &recipient, &later, &["--json"]))["code"],
        "COPY_EXPIRED"
    );
    let tampered = sharing_file(&f, "copy-tampered-field");
    assert_eq!(
        json(&verify(&tampered, &recipient, &now, &["--json"]))["code"],
        "SIGNATURE_INVALID"
    );
    // Usage errors and unreadable input exit 2.
    assert_eq!(verify(&copy, "370100", &now, &[]).status.code(), Some(2));
    let inspected = run(&["copy", "inspect", &copy]);
    assert_eq!(inspected.status.code(), Some(0));
    assert!(stdout(&inspected).starts_with("NOT VERIFIED"));
    assert_eq!(
        json(&run(&["copy", "inspect", &copy, "--json"]))["verified"],
        false
    );
    let garbage = f.path("garbage.tbcopy");
    must(std::fs::write(&garbage, b"not cbor"));
    assert_eq!(run(&["copy", "inspect", &garbage]).status.code(), Some(2));
}

#[test]
fn proofs_verify_offline_and_report_the_answer() {
    let f = Files::new("proofs");
    let (trust, now) = (f.path("bundle.tbt"), NOW.to_string());
    let nonce = "5a".repeat(16);
    let verify = |name: &str, requester: &str, extra: &[&str]| {
        let file = sharing_file(&f, name);
        let mut args = vec![
            "proof",
            "verify",
            &file,
            "--trust",
            &trust,
            "--requester",
            requester,
            "--now",
            &now,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let out = verify("proof-valid", "370100", &["--nonce", &nonce]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("AUTHENTIC"), "{}", stdout(&out));
    // Authentic, but the certificate was transferred out: exit 1, answer in the JSON.
    let out = verify("proof-transferred-out", "370100", &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let value = json(&out);
    assert_eq!(value["authentic"], true);
    assert_eq!(value["answer"]["code"], "STATUS_TRANSFERRED_OUT");
    assert_eq!(value["transferred_to"], "370100");
    let text = stdout(&verify("proof-transferred-out", "370100", &[]));
    assert!(text.contains("to region 370100"), "{text}");
    // Not authentic: another requester, another nonce.
    let out = verify("proof-valid", "341200", &["--json"]);
    assert_eq!(
        (out.status.code(), json(&out)["code"].clone()),
        (Some(1), "PROOF_MISMATCH".into())
    );
    let out = verify(
        "proof-valid",
        "370100",
        &["--nonce", &"00".repeat(16), "--json"],
    );
    assert_eq!(json(&out)["code"], "PROOF_MISMATCH");
    // A quorum no witness meets.
    let out = verify("proof-valid", "370100", &["--quorum", "1", "--json"]);
    assert_eq!(json(&out)["code"], "LOG_PROOF_INVALID");
    assert_eq!(
        verify("proof-valid", "370100", &["--nonce", "zz"])
            .status
            .code(),
        Some(2)
    );
    let file = sharing_file(&f, "proof-valid");
    let inspected = run(&["proof", "inspect", &file, "--json"]);
    assert_eq!(inspected.status.code(), Some(0));
    assert_eq!(json(&inspected)["answer"]["code"], "OK");
}

#[test]
fn a_closed_stdout_ends_the_output_quietly_with_the_verdicts_exit_code() {
    let f = Files::new("closed-stdout");
    let (cert, trust, status) = (
        f.cert("valid-full-disclosure"),
        f.path("bundle.tbt"),
        f.path("341200.tbs"),
    );
    let now = NOW.to_string();
    // The reading end is closed before the verifier writes (`| head -0`).
    let (reader, writer) = must(std::io::pipe());
    drop(reader);
    let out = must(
        Command::new(BIN)
            .args(["verify", &cert, "--trust", &trust, "--status", &status])
            .args(["--now", &now])
            .stdout(writer)
            .output(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// Every file the commands take is read only up to its object's size limit: an endless file
/// (`/dev/zero`) is refused with the object's size code at once, never read whole.
#[test]
fn endless_files_are_refused_without_being_read_whole() {
    let f = Files::new("endless");
    let trust = f.path("bundle.tbt");
    let cert = f.cert("valid-full-disclosure");
    let now = NOW.to_string();
    let cases: [(Vec<&str>, i32, &str); 7] = [
        (
            vec!["verify", "/dev/zero", "--trust", &trust, "--now", &now],
            1,
            "TOO_LARGE",
        ),
        (
            vec!["verify", &cert, "--trust", "/dev/zero"],
            2,
            "TOO_LARGE",
        ),
        (
            vec![
                "verify",
                &cert,
                "--trust",
                &trust,
                "--status",
                "/dev/zero",
                "--now",
                &now,
            ],
            2,
            "STATUS_SNAPSHOT_INVALID",
        ),
        (vec!["inspect", "/dev/zero"], 2, "TOO_LARGE"),
        (
            vec![
                "copy",
                "verify",
                "/dev/zero",
                "--trust",
                &trust,
                "--recipient",
                "370100:11370100MB0000003G",
                "--now",
                &now,
            ],
            1,
            "TOO_LARGE",
        ),
        (
            vec![
                "proof",
                "verify",
                "/dev/zero",
                "--trust",
                &trust,
                "--requester",
                "370100",
                "--now",
                &now,
            ],
            1,
            "TOO_LARGE",
        ),
        (vec!["proof", "inspect", "/dev/zero"], 2, "TOO_LARGE"),
    ];
    for (args, code, says) in cases {
        let started = std::time::Instant::now();
        let out = run(&args);
        let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{args:?}"
        );
    }
}
