//! `tongban-verify bulk`: many certificates through the fast path (specs/bulk.md).

pub mod input;

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use tongban_core::trust::LoadedStatus;

use anyhow::{Context, Result, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tongban_core::bulk::{CompactStatus, Config, DigestCache, FastVerifier, Outcome, pipeline};
use tongban_core::cert::Verdict;

use crate::cli::{EXIT_ERROR, EXIT_INVALID};
use crate::trust::TrustArgs;
use input::{Format, InputError, Position, Records, Source};

/// The options of `bulk`.
#[derive(clap::Args)]
pub struct BulkArgs {
    /// Bulk streams, JSON-lines files or directories of certificate files; `-` reads standard
    /// input (specs/bulk.md §2).
    #[arg(required = true)]
    inputs: Vec<String>,
    #[command(flatten)]
    trust: TrustArgs,
    /// Status lists (or status snapshots) of the issuing regions, one per region: the newest of
    /// each region counts, and a list before a snapshot.
    #[arg(long = "status")]
    status: Vec<PathBuf>,
    /// Worker threads, 1 to 1,024 (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Certificates per signature batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Keep the outcomes of up to this many certificates in the verified-digest cache, to answer
    /// repeats without checking them again (0: no cache).
    #[arg(long, default_value_t = 0)]
    cache: usize,
    /// Check every signature one by one with strict verification, as `verify` does, instead of
    /// in batches: slower, but equal to `verify` even on signatures an issuer crafted to be judged
    /// differently by batch verification (specs/bulk.md §4.4).
    #[arg(long)]
    exact: bool,
    /// How files and standard input are laid out.
    #[arg(long, value_enum, default_value = "auto")]
    format: Format,
    /// Never show a progress bar (it is shown only when standard error is a terminal).
    #[arg(long)]
    no_progress: bool,
}

/// A secret key for this run's batch coefficients, so that no issuer can predict them
/// (specs/bulk.md §4.4).
pub(crate) fn coefficient_key() -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| anyhow!("no randomness for the batch coefficients: {e}"))?;
    Ok(key)
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("cannot write results: {0}")]
    Output(io::Error),
}

/// Counts for the summary.
#[derive(Default)]
struct Tally {
    valid: u64,
    invalid: u64,
    codes: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        match outcome.verdict {
            Verdict::Valid => self.valid += 1,
            Verdict::Invalid => self.invalid += 1,
        }
        *self.codes.entry(outcome.code.as_str()).or_default() += 1;
    }
}

/// Appends one result line (specs/bulk.md §3). Written by hand rather than through
/// `serde_json::Value`: at a hundred thousand lines a second the formatting would otherwise take a
/// noticeable share of a core.
fn line(out: &mut String, position: &Position, outcome: &Outcome) {
    use std::fmt::Write as _;
    let id = match outcome.id.as_deref() {
        None => "null".to_owned(),
        Some(id) => json_string(id),
    };
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{{\"input\":{},\"index\":{},\"id\":{id},\"verdict\":\"{}\",\"code\":\"{}\"}}",
        position.input_json,
        position.index,
        outcome.verdict.as_str(),
        outcome.code.as_str(),
    );
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    if text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/'))
    {
        format!("\"{text}\"")
    } else {
        serde_json::Value::from(text).to_string()
    }
}

fn progress(args: &BulkArgs) -> Option<ProgressBar> {
    if args.no_progress || !io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    let style = ProgressStyle::with_template(
        "{spinner} {human_pos} certificates  {rate}  {elapsed_precise}",
    )
    .ok()?
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        },
    );
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}

pub fn run(args: &BulkArgs) -> Result<ExitCode> {
    if args.inputs.iter().filter(|i| *i == "-").count() > 1 {
        return Err(anyhow!("standard input (-) can be read only once"));
    }
    if args.batch == 0 {
        return Err(anyhow!("--batch must be at least 1"));
    }
    let (trust, now) = args.trust.load()?;
    let mut status = CompactStatus::default();
    for path in &args.status {
        match crate::status::load(path, &trust)? {
            LoadedStatus::List(list) => status.add_list(list),
            LoadedStatus::Snapshot(snapshot) => status.add(snapshot),
        }
    }
    let verifier = FastVerifier::new(&trust, status, now)
        .map_err(|f| anyhow!("trust bundle {}: {f}", args.trust.trust.display()))?
        .exact(args.exact)
        .coefficient_key(coefficient_key()?);
    drop(trust);
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let config = Config {
        batch_size: args.batch,
        ..Config::new(threads)
    };
    let cache = (args.cache > 0).then(|| DigestCache::new(args.cache));
    let sources = args.inputs.iter().map(|i| Source::parse(i)).collect();
    let records = Records::new(sources, args.format);

    let bar = progress(args);
    let mut tally = Tally::default();
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut text = String::with_capacity(256);
    let result = pipeline::run(
        &verifier,
        cache.as_ref(),
        &config,
        records.map(|r| r.map_err(Stop::from)),
        |position: Position, outcome: Outcome| {
            tally.add(&outcome);
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            text.clear();
            line(&mut text, &position, &outcome);
            out.write_all(text.as_bytes()).map_err(Stop::Output)
        },
    );
    let flushed = out.flush();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summary = match result {
        Ok(summary) => summary,
        Err(Stop::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            // The reader went away (`| head`): not every certificate was checked.
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        Err(stop) => return Err(anyhow::Error::from(stop)),
    };
    match flushed {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::from(EXIT_ERROR)),
        other => other.context("cannot write results")?,
    }
    let seconds = summary.elapsed.as_secs_f64();
    let signatures = summary.signatures;
    let report = json!({
        "summary": {
            "certificates": summary.certificates,
            "valid": tally.valid,
            "invalid": tally.invalid,
            "codes": tally.codes,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "per_second": if seconds > 0.0 { (summary.certificates as f64 / seconds).round() } else { 0.0 },
            "threads": config.threads,
            "batch": config.batch_size,
            "signatures": {
                "batched": signatures.batched,
                "batch_calls": signatures.batch_calls,
                "batch_failures": signatures.batch_failures,
                "strict": signatures.strict,
                "cached": signatures.cached,
            },
        }
    });
    eprintln!("{report}");
    Ok(if tally.invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_json_whatever_the_names() {
        for name in ["certs.tbb", "-", "证照/\"quoted\"\\dir\n.tbb", "a b.tbc"] {
            let position = Position {
                input_json: json_string(name).into(),
                index: 7,
            };
            for id in [None, Some("1.2.156.3005.2.X.Y.Z.001.Q")] {
                let outcome = Outcome {
                    verdict: Verdict::Invalid,
                    code: tongban_core::Code::Expired,
                    id: id.map(Into::into),
                };
                let mut text = String::new();
                line(&mut text, &position, &outcome);
                assert!(text.ends_with('\n'));
                let parsed: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
                assert_eq!(parsed["input"], name);
                assert_eq!(parsed["index"], 7);
                assert_eq!(parsed["id"].as_str(), id);
                assert_eq!(parsed["verdict"], "invalid");
                assert_eq!(parsed["code"], "EXPIRED");
            }
        }
    }
}
