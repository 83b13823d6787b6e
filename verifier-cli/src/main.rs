//! tongban-verify: verify Tongban e-certificates offline, inspect them, and run the conformance
//! vectors.

mod audit;
mod bulk;
mod generate;
mod report;
mod sharing;
mod vectors;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use tongban_core::cert;
use tongban_core::keys::KeyId;
use tongban_core::trust::{StatusSnapshot, StatusTable, TrustStore};
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
    /// Verify one certificate against a trust bundle (and status snapshots).
    Verify {
        /// The certificate file (the COSE_Sign1 bytes).
        file: PathBuf,
        /// The trust bundle file.
        #[arg(long)]
        trust: PathBuf,
        /// Status snapshot files, one per region.
        #[arg(long = "status")]
        status: Vec<PathBuf>,
        /// Verify as of this Unix time instead of the clock.
        #[arg(long)]
        now: Option<u64>,
        /// Refuse a bundle whose federation root has another key id (32 hex digits).
        #[arg(long)]
        federation_kid: Option<String>,
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
        /// Also write the vectors as files (trust bundle, snapshots, certificates) into this folder.
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Verify many certificates through the fast path; one JSON line per certificate.
    Bulk(bulk::BulkArgs),
    /// Make a large test set (stream, trust bundle, status snapshots) from the fixed test keys.
    Gen(generate::GenArgs),
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
fn emit(text: &str) -> Result<()> {
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
    /// Replay audit bundles (one directory per region log): recompute every root, check every
    /// checkpoint and entry, derive statuses and statistics.
    Replay {
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

fn audit_replay(dirs: &[PathBuf], json: bool) -> Result<ExitCode> {
    let bundles = dirs
        .iter()
        .map(|d| audit::Bundle::read(d))
        .collect::<Result<Vec<_>>>()?;
    let reports = audit::replay_all(&bundles);
    let clean = reports.iter().all(|r| r.is_clean());
    if json {
        let logs: Vec<_> = dirs
            .iter()
            .zip(&reports)
            .map(|(d, r)| audit::json(d, r))
            .collect();
        emit(&format!(
            "{:#}\n",
            serde_json::json!({"clean": clean, "logs": logs})
        ))?;
    } else {
        let text: String = dirs
            .iter()
            .zip(&reports)
            .map(|(d, r)| audit::text(d, r))
            .collect();
        emit(&text)?;
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

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

fn verify(
    file: &Path,
    trust: &Path,
    status: &[PathBuf],
    now: Option<u64>,
    federation_kid: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let now = now_or(now)?;
    let pinned = pinned_kid(federation_kid)?;
    let store = TrustStore::load(&read(trust)?, now, pinned)
        .map_err(|f| anyhow!("trust bundle {}: {f}", trust.display()))?;
    let mut table = StatusTable::default();
    for path in status {
        let snapshot = StatusSnapshot::load(&read(path)?, &store)
            .map_err(|f| anyhow!("status snapshot {}: {f}", path.display()))?;
        table.add(snapshot);
    }
    let result = cert::verify(&read(file)?, &store, &table, now);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::verification_json(&result))?
        );
    } else {
        print!("{}", report::verification_text(&result));
    }
    Ok(if result.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

fn inspect(file: &Path, json: bool) -> Result<ExitCode> {
    let inspection = cert::inspect(&read(file)?).map_err(|f| anyhow!("{}: {f}", file.display()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::inspection_json(&inspection))?
        );
    } else {
        print!("{}", report::inspection_text(&inspection));
    }
    Ok(ExitCode::SUCCESS)
}

fn conformance(path: &Path, export: Option<&Path>) -> Result<ExitCode> {
    let file: vectors::VectorFile = serde_json::from_slice(&read(path)?)
        .with_context(|| format!("{} is not a vector file", path.display()))?;
    let outcome = vectors::run(&file)?;
    if let Some(dir) = export {
        let written = vectors::export(&file, dir)?;
        emit(&format!("wrote {written} files to {}\n", dir.display()))?;
    }
    for failure in &outcome.failures {
        println!("FAIL {failure}");
    }
    println!(
        "conformance: {} certificate, {} trust bundle, {} copy and {} proof cases from {}",
        file.certificates.len(),
        file.trust_bundles.len(),
        file.copies.len(),
        file.proofs.len(),
        path.display()
    );
    println!(
        "{} passed, {} failed",
        outcome.passed,
        outcome.failures.len()
    );
    Ok(if outcome.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Verify {
            file,
            trust,
            status,
            now,
            federation_kid,
            json,
        } => verify(file, trust, status, *now, federation_kid.as_deref(), *json),
        Command::Inspect { file, json } => inspect(file, *json),
        Command::Conformance { vectors, export } => conformance(vectors, export.as_deref()),
        Command::Bulk(args) => bulk::run(args),
        Command::Gen(args) => generate::run(args),
        Command::Audit {
            command: AuditCommand::Replay { bundles, json },
        } => audit_replay(bundles, *json),
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
