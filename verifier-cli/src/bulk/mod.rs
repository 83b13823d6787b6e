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
use tongban_core::bulk::{
    Batch, CompactStatus, Config, DigestCache, FastVerifier, Outcome, Source, Summary, Work,
    pipeline,
};
use tongban_core::cert::Verdict;

use crate::cli::{EXIT_ERROR, EXIT_INVALID};
use crate::trust::TrustArgs;
use input::{Format, InputError, Position, Records};

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
pub enum Stop {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("cannot write results: {0}")]
    Output(io::Error),
}

/// The inputs, their errors stopping the run.
struct Inputs(Records);

impl Source for Inputs {
    type Tag = Position;
    type Error = Stop;

    fn read_into(&mut self, batch: &mut Batch<Position>) -> Result<bool, Stop> {
        Ok(self.0.read_into(batch)?)
    }
}

/// Counts for the summary.
#[derive(Default)]
pub struct Tally {
    pub valid: u64,
    pub invalid: u64,
    pub codes: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        match outcome.verdict {
            Verdict::Valid => self.valid += 1,
            Verdict::Invalid => self.invalid += 1,
        }
        *self.codes.entry(outcome.code.as_str()).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.valid += other.valid;
        self.invalid += other.invalid;
        for (code, n) in other.codes {
            *self.codes.entry(code).or_default() += n;
        }
    }
}

/// One batch's result lines and counts, made on the worker that verified it.
struct Rendered {
    text: String,
    tally: Tally,
}

/// Renders a batch's results (on a worker thread, so that formatting grows with the workers).
fn render(positions: Vec<Position>, outcomes: Vec<Outcome>) -> Rendered {
    let mut rendered = Rendered {
        text: String::with_capacity(outcomes.len() * 128),
        tally: Tally::default(),
    };
    let mut input: Option<std::sync::Arc<str>> = None;
    for (position, outcome) in positions.into_iter().zip(&outcomes) {
        if let Some(named) = position.input_json {
            input = Some(named);
        }
        // The first record of every batch names its input.
        let name = input.as_deref().unwrap_or("null");
        rendered.tally.add(outcome);
        line(&mut rendered.text, name, position.index, outcome);
    }
    rendered
}

/// Appends one result line (specs/bulk.md §3). Written by hand rather than through
/// `serde_json::Value`: at a hundred thousand lines a second the formatting would otherwise take a
/// noticeable share of a core.
fn line(out: &mut String, input_json: &str, index: u64, outcome: &Outcome) {
    use std::fmt::Write as _;
    out.push_str("{\"input\":");
    out.push_str(input_json);
    // Writing to a String cannot fail.
    let _ = write!(out, ",\"index\":{index},\"id\":");
    match outcome.id.as_deref() {
        None => out.push_str("null"),
        Some(id) => push_json_string(out, id),
    }
    out.push_str(",\"verdict\":\"");
    out.push_str(outcome.verdict.as_str());
    out.push_str("\",\"code\":\"");
    out.push_str(outcome.code.as_str());
    out.push_str("\"}\n");
}

/// Appends `text` as a JSON string literal.
fn push_json_string(out: &mut String, text: &str) {
    if is_plain(text) {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::from(text).to_string());
    }
}

/// Needs no escaping in JSON.
fn is_plain(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/'))
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_json_string(&mut out, text);
    out
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

/// What `bulk` does once its trust and status are loaded: every record of `records` through
/// `work` (the fast verifier, or a stand-in that measures the rest), a result line per
/// certificate written to `out` in input order, `progress` told how many more are done after each
/// batch. The calling thread reads and writes; the workers verify and render the lines.
pub fn sweep(
    work: &impl Work,
    config: &Config,
    records: Records,
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> Result<(Summary, Tally), Stop> {
    let mut tally = Tally::default();
    let summary = pipeline::run_rendered(work, config, Inputs(records), render, |rendered| {
        progress(rendered.tally.valid + rendered.tally.invalid);
        tally.merge(rendered.tally);
        out.write_all(rendered.text.as_bytes())
            .map_err(Stop::Output)
    })?;
    Ok((summary, tally))
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
    let sources = args
        .inputs
        .iter()
        .map(|i| input::Source::parse(i))
        .collect();
    let records = Records::new(sources, args.format);

    let bar = progress(args);
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let work = pipeline::Verify {
        verifier: &verifier,
        cache: cache.as_ref(),
    };
    let result = sweep(&work, &config, records, &mut out, |n| {
        if let Some(bar) = &bar {
            bar.inc(n);
        }
    });
    let flushed = out.flush();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let (summary, tally) = match result {
        Ok(done) => done,
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
            "ed25519_backend": tongban_core::bulk::ed25519_backend(),
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
            for id in [None, Some("1.2.156.3005.2.X.Y.Z.001.Q"), Some("证照\"1")] {
                let outcome = Outcome {
                    verdict: Verdict::Invalid,
                    code: tongban_core::Code::Expired,
                    id: id.map(Into::into),
                };
                let mut text = String::new();
                line(&mut text, &json_string(name), 7, &outcome);
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

    #[test]
    fn a_batch_names_each_line_by_the_last_input_named_before_it() {
        let at = |input: Option<&str>, index| Position {
            input_json: input.map(|n| json_string(n).into()),
            index,
        };
        let positions = vec![
            at(Some("a.tbb"), 5),
            at(None, 6),
            at(Some("b.tbb"), 0),
            at(None, 1),
        ];
        let outcome = |code| Outcome {
            verdict: if code == tongban_core::Code::Ok {
                Verdict::Valid
            } else {
                Verdict::Invalid
            },
            code,
            id: None,
        };
        let outcomes = vec![
            outcome(tongban_core::Code::Ok),
            outcome(tongban_core::Code::Expired),
            outcome(tongban_core::Code::Ok),
            outcome(tongban_core::Code::Ok),
        ];
        let rendered = render(positions, outcomes);
        let lines: Vec<serde_json::Value> = rendered
            .text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let got: Vec<(&str, u64)> = lines
            .iter()
            .map(|l| {
                (
                    l["input"].as_str().unwrap_or("?"),
                    l["index"].as_u64().unwrap_or(99),
                )
            })
            .collect();
        assert_eq!(
            got,
            [("a.tbb", 5), ("a.tbb", 6), ("b.tbb", 0), ("b.tbb", 1)]
        );
        assert_eq!((rendered.tally.valid, rendered.tally.invalid), (3, 1));
        assert_eq!(rendered.tally.codes.get("EXPIRED"), Some(&1));
    }
}
