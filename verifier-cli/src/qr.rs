//! `tongban-verify qr`: a certificate as one QR code (specs/presentation.md §1), drawn as SVG or
//! PNG or written as text, and QR codes read back from a photo or a scan (rxing, ZXing's
//! decoder in Rust).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use image::ImageReader;
use tongban_core::cert::present;
use tongban_core::envelope::Kind;
use tongban_core::qr::symbol::Symbol;

use crate::cli::{emit, read_bounded};

/// The largest image `qr decode` and `verify` read: a phone photo fits.
pub const MAX_IMAGE_BYTES: u64 = 32 * 1024 * 1024;
/// The widest and tallest image decoded (a 48-megapixel photo is 8000x6000).
const MAX_SIDE: u32 = 8192;
/// What decoding one image may allocate.
const MAX_DECODED_BYTES: u64 = 256 * 1024 * 1024;

#[derive(clap::Subcommand)]
pub enum QrCommand {
    /// Show a certificate as its offline QR text: an SVG or PNG image, or the text.
    Encode {
        /// The certificate file (COSE_Sign1 bytes).
        file: PathBuf,
        /// Keep only these disclosed fields (names separated by commas, e.g.
        /// `holder.name,holder.id_number`); every field when omitted, none when empty.
        #[arg(long, value_delimiter = ',')]
        disclose: Option<Vec<String>>,
        /// Write here: `*.svg` and `*.png` draw the code, any other name gets the text; standard
        /// output (the text) when omitted.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Pixels per module in a PNG.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
        scale: u32,
    },
    /// Print the text of every QR code found in an image (PNG or JPEG: a photo or a scan).
    Decode { image: PathBuf },
}

pub fn run(command: &QrCommand) -> Result<ExitCode> {
    match command {
        QrCommand::Encode {
            file,
            disclose,
            out,
            scale,
        } => encode(file, disclose.as_deref(), out.as_deref(), *scale),
        QrCommand::Decode { image } => {
            let texts = texts_in_image(&read_bounded(image, MAX_IMAGE_BYTES)?)?;
            if texts.is_empty() {
                return Err(anyhow!("no QR code found in {}", image.display()));
            }
            for text in texts {
                emit(&format!("{text}\n"))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn encode(
    file: &Path,
    disclose: Option<&[String]>,
    out: Option<&Path>,
    scale: u32,
) -> Result<ExitCode> {
    let certificate = read_bounded(file, Kind::Certificate.size_limit())?;
    let shown = match disclose {
        None => certificate,
        Some(names) => present(&certificate, |name| {
            names.iter().any(|n| n == name.as_str())
        })
        .map_err(|f| anyhow!("{}: {f}", file.display()))?,
    };
    let text = tongban_core::qr::encode(&shown)?;
    let symbol = Symbol::new(&text)?;
    eprintln!(
        "QR version {}, level {}, {2}x{2} modules, {3} characters, {4} certificate bytes",
        symbol.version(),
        symbol.level(),
        symbol.width(),
        text.len(),
        shown.len()
    );
    let extension = out
        .and_then(Path::extension)
        .map(|e| e.to_ascii_lowercase());
    let bytes = match extension.as_ref().and_then(|e| e.to_str()) {
        Some("svg") => symbol.svg().into_bytes(),
        Some("png") => symbol.png(scale)?,
        _ => format!("{text}\n").into_bytes(),
    };
    match out {
        None => emit(&format!("{text}\n"))?,
        Some(path) => write_whole(path, &bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `bytes` start as a PNG or a JPEG file does.
pub fn is_image(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xff, 0xd8, 0xff])
}

/// The texts of the QR codes found in an image, in the order found.
pub fn texts_in_image(bytes: &[u8]) -> Result<Vec<String>> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .context("cannot read the image")?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let grey = reader
        .decode()
        .context("cannot decode the image")?
        .into_luma8();
    let (width, height) = grey.dimensions();
    let mut hints = rxing::DecodeHints {
        PossibleFormats: Some(std::collections::HashSet::from([
            rxing::BarcodeFormat::QR_CODE,
        ])),
        ..rxing::DecodeHints::default()
    };
    // ZXing's multiple-code reader, trying harder: it finds codes a camera left soft or skewed.
    let found = rxing::helpers::detect_multiple_in_luma_with_hints(
        grey.into_raw(),
        width,
        height,
        &mut hints,
    );
    use rxing::Exceptions;
    match found {
        Ok(codes) => Ok(codes.into_iter().map(|r| r.getText().to_owned()).collect()),
        // No code, or codes too damaged to read: nothing to give.
        Err(
            Exceptions::NotFoundException(_)
            | Exceptions::FormatException(_)
            | Exceptions::ChecksumException(_)
            | Exceptions::ReedSolomonException(_),
        ) => Ok(Vec::new()),
        Err(other) => Err(anyhow!("cannot look for QR codes in the image: {other}")),
    }
}

/// Writes `bytes` to `path` whole: a temporary name beside it, synced, then renamed.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
