//! `tongban-verify qr` and `verify` of QR texts and images, as processes (specs/presentation.md §1).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tongban_core::testkit::NOW;
use tongban_core::testkit::vectors::generate;

const BIN: &str = env!("CARGO_BIN_EXE_tongban-verify");

fn must<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

fn run(args: &[&str]) -> Output {
    must(Command::new(BIN).args(args).output())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A folder with the vectors' trust bundle, Fuyang's snapshot and the full business licence.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(test: &str) -> Files {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
        let _ = std::fs::remove_dir_all(&dir);
        must(std::fs::create_dir_all(&dir));
        let set = must(generate());
        must(std::fs::write(dir.join("bundle.tbt"), &set.bundle));
        for (name, bytes) in &set.status {
            must(std::fs::write(dir.join(format!("{name}.tbs")), bytes));
        }
        for case in ["valid-full-disclosure", "status-revoked"] {
            let bytes = &set
                .certificates
                .iter()
                .find(|c| c.name == case)
                .unwrap_or_else(|| panic!("no {case} vector"))
                .bytes;
            must(std::fs::write(dir.join(format!("{case}.tbc")), bytes));
        }
        Files { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `verify FILE --trust … --status 341200 --now NOW --json`: (exit code, JSON or null).
    fn verify(&self, name: &str) -> (Option<i32>, serde_json::Value) {
        let (file, trust, status, now) = (
            self.path(name),
            self.path("bundle.tbt"),
            self.path("341200.tbs"),
            NOW.to_string(),
        );
        let out = run(&[
            "verify", &file, "--trust", &trust, "--status", &status, "--now", &now, "--json",
        ]);
        let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.code(), json)
    }

    fn encode(&self, cert: &str, out: &str, disclose: Option<&str>) -> Output {
        let (cert, out) = (self.path(cert), self.path(out));
        let mut args = vec!["qr", "encode", &cert, "--out", &out];
        if let Some(fields) = disclose {
            args.extend(["--disclose", fields]);
        }
        let output = run(&args);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        output
    }
}

#[test]
fn a_licence_as_text_png_and_svg_verifies_from_each() {
    let f = Files::new("qr-formats");
    let out = f.encode("valid-full-disclosure.tbc", "full.txt", None);
    assert!(
        text(&out.stderr).contains("QR version"),
        "{}",
        text(&out.stderr)
    );
    let qr_text = must(std::fs::read_to_string(f.dir.join("full.txt")));
    assert!(qr_text.starts_with("TB1:"));
    let (code, json) = f.verify("full.txt");
    assert_eq!(
        (code, json["code"].as_str()),
        (Some(0), Some("OK")),
        "{json}"
    );

    // Two fields: the QR text of the same certificate with fewer disclosures.
    f.encode(
        "valid-full-disclosure.tbc",
        "two.png",
        Some("holder.name,holder.id_number"),
    );
    let decoded = run(&["qr", "decode", &f.path("two.png")]);
    assert_eq!(decoded.status.code(), Some(0), "{}", text(&decoded.stderr));
    assert!(text(&decoded.stdout).starts_with("TB1:"));
    let (code, json) = f.verify("two.png");
    assert_eq!(
        (code, json["code"].as_str()),
        (Some(0), Some("OK")),
        "{json}"
    );
    let shown: Vec<&str> = json["disclosed"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(shown.len(), 2, "{json}");

    f.encode("valid-full-disclosure.tbc", "full.svg", None);
    let svg = must(std::fs::read_to_string(f.dir.join("full.svg")));
    assert!(svg.contains("<svg"), "{svg}");
}

#[test]
fn a_photo_of_the_code_verifies() {
    // What a counter's camera gives: the code not on the pixel grid (1.25 and 1.5 pixels per
    // pixel), softened, as JPEG. (rqrr misses some resamplings, e.g. 1,000 -> 1,007 pixels with
    // a triangle filter: a camera's own rescaling differs, but a stronger decoder would help.)
    let f = Files::new("qr-photo");
    f.encode("valid-full-disclosure.tbc", "code.png", None);
    let png = must(std::fs::read(f.dir.join("code.png")));
    let sharp = image_of(&png);
    for (n, d) in [(5, 4), (3, 2)] {
        let (w, h) = (sharp.width() * n / d, sharp.height() * n / d);
        let photo = image::imageops::blur(
            &image::imageops::resize(&sharp, w, h, image::imageops::FilterType::Triangle),
            1.2,
        );
        let mut jpeg = Vec::new();
        must(
            photo.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut jpeg, 60,
            )),
        );
        let name = format!("photo-{n}-{d}.jpg");
        must(std::fs::write(f.dir.join(&name), &jpeg));
        let (code, json) = f.verify(&name);
        assert_eq!(
            (code, json["code"].as_str()),
            (Some(0), Some("OK")),
            "{name}: {json}"
        );
    }
}

#[test]
fn a_revoked_licence_shown_as_a_code_is_still_revoked() {
    let f = Files::new("qr-revoked");
    f.encode("status-revoked.tbc", "revoked.png", None);
    let (code, json) = f.verify("revoked.png");
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["code"], "STATUS_REVOKED");
}

#[test]
fn texts_that_do_not_decode_have_their_codes() {
    let f = Files::new("qr-refused");
    for (name, body, expected) in [
        ("base45.txt", "TB1:abc\n", "QR_ENCODING"),
        ("zlib.txt", "TB1:000\n", "QR_ZLIB"),
    ] {
        must(std::fs::write(f.dir.join(name), body));
        let (code, json) = f.verify(name);
        assert_eq!(
            (code, json["code"].as_str()),
            (Some(1), Some(expected)),
            "{name}: {json}"
        );
    }
    // An image without a Tongban code cannot be verified at all: exit 2.
    f.encode("valid-full-disclosure.tbc", "code.png", None);
    let png = must(std::fs::read(f.dir.join("code.png")));
    let blank = {
        let mut image = image_of(&png);
        for pixel in image.pixels_mut() {
            pixel.0 = [255];
        }
        let mut out = std::io::Cursor::new(Vec::new());
        must(image.write_to(&mut out, image::ImageFormat::Png));
        out.into_inner()
    };
    must(std::fs::write(f.dir.join("blank.png"), blank));
    let (code, _) = f.verify("blank.png");
    assert_eq!(code, Some(2));
    // A file that cannot be read: exit 2.
    let out = run(&["qr", "encode", &f.path("missing.tbc")]);
    assert_eq!(out.status.code(), Some(2));
}

fn image_of(png: &[u8]) -> image::GrayImage {
    must(image::load_from_memory(png)).into_luma8()
}
