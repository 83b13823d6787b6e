//! The `tongban-verify` command line. A library module so that `tongban-testnet` can run the very
//! same audit replay by re-executing itself (one binary to build); this is the binary edge, hence
//! anyhow.

use crate::trust::TrustArgs;
use crate::{audit, bulk, fetch, generate, qr, report, sharing, vectors};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use tongban_core::cert;
use tongban_core::envelope::Kind;
use tongban_core::keys::KeyId;
use tongban_core::log::ledger::Period;
use tongban_core::values::Time;

/// Exit codes: 0 valid (or every case passed), 1 invalid (or a case failed), 2 could not check.
pub(crate) const EXIT_INVALID: u8 = 1;
pub(crate) const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "tongban-verify",
    version,
    about = "Verify Tongban e-certificates (电子证照) offline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify one certificate against a trust bundle (and status lists or snapshots).
    Verify {
        /// The certificate file: the COSE_Sign1 bytes, or its offline QR text (`TB1:…`).
        file: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        /// Status lists (or status snapshots) of the issuing regions, one per region: the newest of
        /// each region counts, and a list before a snapshot.
        #[arg(long = "status")]
        status: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show a certificate's contents without verifying it.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run the conformance vectors of specs/vectors/ and report each mismatch.
    Conformance {
        #[arg(default_value = "specs/vectors/vectors.json")]
        vectors: PathBuf,
        /// Also write the vectors as files (trust bundle, status files, certificates) into this folder.
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Verify many certificates through the fast path; one JSON line per certificate.
    Bulk(bulk::BulkArgs),
    /// A certificate as one QR code (its offline QR text, TB1:…), and QR codes read from images.
    Qr {
        #[command(subcommand)]
        command: qr::QrCommand,
    },
    /// Make a large test set (stream, trust bundle, status lists) from the fixed test keys.
    Gen(generate::GenArgs),
    /// Download a node's federation-wide trust bundle and every member region's status
    /// list, checked, for offline verification.
    Fetch(fetch::FetchArgs),
    /// Audit signed transparency logs.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Purpose-bound copies (加注件): verify one as presented by an agency, or inspect it.
    Copy {
        #[command(subcommand)]
        command: sharing::CopyCommand,
    },
    /// Cross-region verification proofs (核验回执): verify one offline, or inspect it.
    Proof {
        #[command(subcommand)]
        command: sharing::ProofCommand,
    },
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
pub(crate) fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Replay region logs, each an audit bundle directory or a node's URL (http:// or https://):
    /// recompute every root, check every checkpoint, entry and (from a node) hash tile, derive
    /// statuses and statistics.
    Replay {
        /// Audit bundle directories and node URLs, one per region log.
        #[arg(required = true, value_name = "BUNDLE_DIR|NODE_URL")]
        sources: Vec<PathBuf>,
        /// Seconds each request to a node may take, from connecting to the last byte.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// Refuse (exit 2) any source whose trust bundle is not published by the federation root
        /// with this key id (32 hex digits): without it a log is only checked against itself.
        #[arg(long)]
        federation_kid: Option<String>,
        /// Most checkpoints read from a node's list; a longer list is refused (exit 2).
        #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
        max_checkpoints: u64,
        /// Also write every certificate's final state to this new file, one JSON line each
        /// (the report itself only counts them).
        #[arg(long, value_name = "FILE")]
        states: Option<PathBuf>,
        /// Check every entry signature one by one, strictly, instead of in batches (which may
        /// accept a signature its own signer crafted with torsion in R: specs/bulk.md §4.4).
        #[arg(long)]
        exact: bool,
        #[arg(long)]
        json: bool,
    },
    /// The report of a month, quarter or year (月报、季报、年报) from the same replay: per region
    /// and for the federation, beside the previous period and the same period a year before,
    /// with the log range and signed checkpoint each region's period ends at. A log with
    /// findings gives them and exit 1, and no report.
    Report {
        /// Audit bundle directories and node URLs, one per region log.
        #[arg(required = true, value_name = "BUNDLE_DIR|NODE_URL")]
        sources: Vec<PathBuf>,
        /// 2026-11, 2026-Q4 or 2026 (China Standard Time).
        #[arg(long, value_parser = parse_period)]
        period: Period,
        #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
        format: ReportFormat,
        /// Write the report to this file (whole or not at all) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Seconds each request to a node may take, from connecting to the last byte.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// As for `audit replay`.
        #[arg(long)]
        federation_kid: Option<String>,
        #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
        max_checkpoints: u64,
        #[arg(long)]
        exact: bool,
    },
    /// Write a node's log as an audit bundle directory (specs/log.md §6), for replay later or
    /// elsewhere.
    Export {
        /// The node's URL (http:// or https://).
        node: String,
        /// A new (or empty) directory.
        dir: PathBuf,
        /// Seconds each request to the node may take, from connecting to the last byte.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// Most checkpoints read from the node's list; a longer list is refused (exit 2).
        #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
        max_checkpoints: u64,
    },
}

fn reading(timeout: u64, max_checkpoints: u64) -> audit::Reading {
    audit::Reading {
        timeout: std::time::Duration::from_secs(timeout),
        max_checkpoints,
        batch: None,
    }
}

fn audit_export(node: &str, dir: &Path, reading: audit::Reading) -> Result<ExitCode> {
    let (entries, checkpoints) = audit::export(node, dir, reading)?;
    emit(&format!(
        "wrote {entries} entries and {checkpoints} checkpoints of {} to {}\n",
        node.trim_end_matches('/'),
        dir.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ReportFormat {
    Json,
    Csv,
    Html,
}

fn parse_period(text: &str) -> Result<Period, String> {
    Period::parse(text)
}

fn audit_report(
    sources: &[PathBuf],
    period: Period,
    format: ReportFormat,
    out: Option<&Path>,
    reading: audit::Reading,
    federation_kid: Option<&str>,
    exact: bool,
) -> Result<ExitCode> {
    let pinned = pinned_kid(federation_kid)?;
    let reading = audit::Reading {
        batch: match exact {
            true => None,
            false => Some(crate::bulk::coefficient_key()?),
        },
        ..reading
    };
    let sources: Vec<audit::Source> = sources.iter().map(|s| audit::Source::from_arg(s)).collect();
    let reports = audit::replay_all(&sources, reading, pinned, None)?;
    if !reports.iter().all(|r| r.is_clean()) {
        // What `audit replay` says of these logs, and no report that could pass for complete.
        for (source, report) in sources.iter().zip(&reports) {
            eprint!("{}", audit::text(&source.name(), report));
        }
        eprintln!("tongban-verify: no report: a log has findings");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let regions: Vec<audit::period_report::RegionReport<'_>> = sources
        .iter()
        .zip(&reports)
        .map(|(source, report)| audit::period_report::RegionReport {
            source: source.name(),
            report,
        })
        .collect();
    let text = match format {
        ReportFormat::Json => format!("{:#}\n", audit::period_report::to_json(period, &regions)),
        ReportFormat::Csv => audit::period_report::to_csv(period, &regions),
        ReportFormat::Html => audit::period_report::to_html(period, &regions),
    };
    match out {
        None => emit(&text)?,
        Some(path) => write_whole(path, text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary name beside `path`, syncs it and renames it into place.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| anyhow!("cannot write in {}: {e}", dir.display()))?;
    std::io::Write::write_all(&mut temp, bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    temp.persist(path)
        .map_err(|e| anyhow!("cannot write {}: {}", path.display(), e.error))?;
    Ok(())
}

fn audit_replay(
    sources: &[PathBuf],
    reading: audit::Reading,
    federation_kid: Option<&str>,
    states: Option<&Path>,
    exact: bool,
    json: bool,
) -> Result<ExitCode> {
    let pinned = pinned_kid(federation_kid)?;
    let reading = audit::Reading {
        batch: match exact {
            true => None,
            false => Some(crate::bulk::coefficient_key()?),
        },
        ..reading
    };
    let sources: Vec<audit::Source> = sources.iter().map(|s| audit::Source::from_arg(s)).collect();
    // A new file, written whole or removed: a partial list of states must not pass for one.
    let mut out = states
        .map(|path| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map(std::io::BufWriter::new)
                .map_err(|e| anyhow!("cannot create {}: {e}", path.display()))
        })
        .transpose()?;
    let replayed = audit::replay_all(
        &sources,
        reading,
        pinned,
        out.as_mut().map(|w| w as &mut dyn std::io::Write),
    )
    .and_then(|reports| {
        if let Some(w) = out.as_mut() {
            std::io::Write::flush(w).map_err(|e| anyhow!("cannot write the states: {e}"))?;
        }
        Ok(reports)
    });
    let reports = match replayed {
        Ok(reports) => reports,
        Err(e) => {
            if let Some(path) = states {
                drop(out);
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    let clean = reports.iter().all(|r| r.is_clean());
    if json {
        let logs: Vec<_> = sources
            .iter()
            .zip(&reports)
            .map(|(s, r)| audit::json(&s.name(), r))
            .collect();
        emit(&format!(
            "{:#}\n",
            serde_json::json!({"clean": clean, "logs": logs})
        ))?;
    } else {
        let text: String = sources
            .iter()
            .zip(&reports)
            .map(|(s, r)| audit::text(&s.name(), r))
            .collect();
        emit(&text)?;
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

/// Reads at most `limit` + 1 bytes of the file at `path`: enough for the object's own size check
/// (its first step) to refuse a larger one with its code, without reading a large file whole
/// (`/dev/zero` included).
pub(crate) fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}

/// Reads the file at `path`, refusing one larger than `limit` bytes (read at most one byte more).
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let bytes = read_capped(path, limit)?;
    if bytes.len() as u64 > limit {
        return Err(anyhow!(
            "{}: larger than {limit} bytes, the most it may hold",
            path.display()
        ));
    }
    Ok(bytes)
}

/// The largest conformance vector file read.
const MAX_VECTORS: u64 = 64 << 20;

pub(crate) fn now_or(now: Option<u64>) -> Result<Time> {
    let seconds = match now {
        Some(s) => s,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("system clock before 1970")?
            .as_secs(),
    };
    Time::new(seconds).ok_or_else(|| anyhow!("time {seconds} out of range"))
}

/// The `--federation-kid` option's key id.
pub(crate) fn pinned_kid(federation_kid: Option<&str>) -> Result<Option<KeyId>> {
    federation_kid
        .map(|k| hex::decode(k).ok().and_then(|b| KeyId::from_slice(&b)))
        .map(|k| k.ok_or_else(|| anyhow!("--federation-kid must be 32 hex digits")))
        .transpose()
}

fn verify(file: &Path, trust: &TrustArgs, status: &[PathBuf], json: bool) -> Result<ExitCode> {
    let (store, now) = trust.load()?;
    let status = crate::status::load_all(status, &store)?;
    // The certificate's bytes, its offline QR text (specs/presentation.md §1), or a photo or scan
    // of that QR code.
    let mut input = read_capped(file, qr::MAX_IMAGE_BYTES)?;
    if qr::is_image(&input) {
        if input.len() as u64 > qr::MAX_IMAGE_BYTES {
            return Err(anyhow!(
                "{}: an image over {} bytes",
                file.display(),
                qr::MAX_IMAGE_BYTES
            ));
        }
        let texts = qr::texts_in_image(&input).with_context(|| file.display().to_string())?;
        input = texts
            .into_iter()
            .find(|t| tongban_core::qr::is_qr_text(t.as_bytes()))
            .ok_or_else(|| anyhow!("{}: no Tongban QR code (TB1:) in the image", file.display()))?
            .into_bytes();
    } else {
        // Anything past the certificate's limit is TOO_LARGE whatever it holds.
        input.truncate(Kind::Certificate.size_limit() as usize + 1);
    }
    let result = tongban_core::qr::verify_either(&input, &store, &status, now);
    if json {
        emit(&format!("{:#}\n", report::verification_json(&result)))?;
    } else {
        emit(&report::verification_text(&result))?;
    }
    Ok(if result.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

fn inspect(file: &Path, json: bool) -> Result<ExitCode> {
    let inspection = cert::inspect(&read_capped(file, Kind::Certificate.size_limit())?)
        .map_err(|f| anyhow!("{}: {f}", file.display()))?;
    if json {
        emit(&format!("{:#}\n", report::inspection_json(&inspection)))?;
    } else {
        emit(&report::inspection_text(&inspection))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn conformance(path: &Path, export: Option<&Path>) -> Result<ExitCode> {
    let file: vectors::VectorFile = serde_json::from_slice(&read_bounded(path, MAX_VECTORS)?)
        .with_context(|| format!("{} is not a vector file", path.display()))?;
    let outcome = vectors::run(&file)?;
    if let Some(dir) = export {
        let written = vectors::export(&file, dir)?;
        emit(&format!("wrote {written} files to {}\n", dir.display()))?;
    }
    let mut text: String = outcome
        .failures
        .iter()
        .map(|failure| format!("FAIL {failure}\n"))
        .collect();
    let suites: Vec<String> = file
        .suites
        .iter()
        .map(|s| {
            format!(
                "{}: {} certificate and {} log cases",
                s.suite,
                s.certificates.len(),
                vectors::log_case_count(&s.log)
            )
        })
        .collect();
    text.push_str(&format!(
        "conformance: {} certificate, {} trust bundle, {} copy and {} proof cases; {} — from {}\n{} passed, {} failed\n",
        file.certificates.len(),
        file.trust_bundles.len(),
        file.copies.len(),
        file.proofs.len(),
        suites.join("; "),
        path.display(),
        outcome.passed,
        outcome.failures.len()
    ));
    emit(&text)?;
    Ok(if outcome.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

/// Runs `tongban-verify` with `args` (the first is the program name), as its `main` does.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let outcome = match &cli.command {
        Command::Verify {
            file,
            trust,
            status,
            json,
        } => verify(file, trust, status, *json),
        Command::Inspect { file, json } => inspect(file, *json),
        Command::Conformance { vectors, export } => conformance(vectors, export.as_deref()),
        Command::Bulk(args) => bulk::run(args),
        Command::Qr { command } => qr::run(command),
        Command::Gen(args) => generate::run(args),
        Command::Fetch(args) => fetch::run(args),
        Command::Audit {
            command:
                AuditCommand::Replay {
                    sources,
                    timeout,
                    federation_kid,
                    max_checkpoints,
                    states,
                    exact,
                    json,
                },
        } => audit_replay(
            sources,
            reading(*timeout, *max_checkpoints),
            federation_kid.as_deref(),
            states.as_deref(),
            *exact,
            *json,
        ),
        Command::Audit {
            command:
                AuditCommand::Export {
                    node,
                    dir,
                    timeout,
                    max_checkpoints,
                },
        } => audit_export(node, dir, reading(*timeout, *max_checkpoints)),
        Command::Audit {
            command:
                AuditCommand::Report {
                    sources,
                    period,
                    format,
                    out,
                    timeout,
                    federation_kid,
                    max_checkpoints,
                    exact,
                },
        } => audit_report(
            sources,
            *period,
            *format,
            out.as_deref(),
            reading(*timeout, *max_checkpoints),
            federation_kid.as_deref(),
            *exact,
        ),
        Command::Copy { command } => sharing::copy(command),
        Command::Proof { command } => sharing::proof(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tongban-verify: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
