//! `tongban-verify gen`: large, realistic certificate sets from the fixed-seed test keys, for
//! trying and measuring `bulk` (README, "Bulk verification"). The test keys' seeds are published:
//! only a build with the `testkit` feature has them, and with them this command.

use std::path::PathBuf;

/// The options of `gen`.
#[derive(clap::Args)]
pub struct GenArgs {
    /// The directory to write into (created if missing).
    out: PathBuf,
    /// How many certificates.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Relative weights of the kinds of certificate.
    #[arg(
        long,
        default_value = "valid=90,revoked=3,expired=3,tampered=2,foreign=1,malformed=1"
    )]
    mix: String,
    /// Regions in the trust bundle (1 to 16), each with two seals.
    #[arg(long, default_value_t = 16)]
    regions: usize,
    /// Write JSON lines (certificates.jsonl) instead of a bulk stream (certificates.tbb).
    #[arg(long)]
    jsonl: bool,
    /// The federation's signature suite: ed25519 or sm2 (every key, certificate and list).
    #[arg(long, default_value = "ed25519")]
    suite: tongban_core::suite::Suite,
    /// Threads making certificates (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

#[cfg(not(feature = "testkit"))]
pub fn run(_: &GenArgs) -> anyhow::Result<std::process::ExitCode> {
    Err(anyhow::anyhow!(
        "gen is not in this build: it signs with the test keys, whose seeds are published; \
         build tongban-verify with `--features testkit` to make test sets"
    ))
}

#[cfg(feature = "testkit")]
pub use make::run;

#[cfg(feature = "testkit")]
mod make {
    use std::collections::BTreeMap;
    use std::fs::File;
    use std::io::{BufWriter, Write};
    use std::path::Path;
    use std::process::ExitCode;

    use super::GenArgs;

    use anyhow::{Context, Result, anyhow};
    use base64::Engine;
    use serde_json::json;
    use tongban_core::testkit::NOW;
    use tongban_core::testkit::bulk::{BulkFederation, Generated, Mix};

    /// Certificates made per task: enough to keep a thread busy for tens of milliseconds.
    const CHUNK: u64 = 1024;

    fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn run(args: &GenArgs) -> Result<ExitCode> {
        let mix = Mix::parse(&args.mix).map_err(|e| anyhow!("--mix: {e}"))?;
        let federation =
            BulkFederation::new(args.suite, args.regions).map_err(|e| anyhow!("--regions: {e}"))?;
        let threads = match args.threads {
            Some(0) => return Err(anyhow!("--threads must be at least 1")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        let name = if args.jsonl {
            "certificates.jsonl"
        } else {
            "certificates.tbb"
        };
        let path = args.out.join(name);
        let file =
            File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut revoked: Vec<(usize, u32)> = Vec::new();
        let mut bytes_written = 0u64;
        let chunks = args.count.div_ceil(CHUNK);
        let mut next = 0u64;
        while next < chunks {
            // One round: a chunk per thread, made in parallel, written in order.
            let round: Vec<u64> = (next..chunks.min(next + threads as u64)).collect();
            next += round.len() as u64;
            let made: Vec<Result<Vec<Generated>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = round
                    .iter()
                    .map(|&chunk| {
                        let (federation, mix) = (&federation, &mix);
                        let end = ((chunk + 1) * CHUNK).min(args.count);
                        scope.spawn(move || {
                            (chunk * CHUNK..end)
                                .map(|i| federation.certificate(i, mix.pick(i)))
                                .collect::<Result<Vec<_>, _>>()
                                .map_err(|e| anyhow!("certificate generation: {e}"))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow!("a generator thread failed")))
                    })
                    .collect()
            });
            for chunk in made {
                for generated in chunk? {
                    *kinds.entry(generated.sample.as_str()).or_default() += 1;
                    if generated.sample == tongban_core::testkit::bulk::Sample::Revoked
                        && let Some(region) = generated.region
                    {
                        revoked.push((region, generated.status_index));
                    }
                    if args.jsonl {
                        let encoded =
                            base64::engine::general_purpose::STANDARD.encode(&generated.bytes);
                        writeln!(out, "\"{encoded}\"")?;
                    } else {
                        let length = u32::try_from(generated.bytes.len())
                            .context("a generated certificate is over 4 GiB")?;
                        out.write_all(&length.to_be_bytes())?;
                        out.write_all(&generated.bytes)?;
                    }
                    bytes_written += generated.bytes.len() as u64;
                }
            }
        }
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        write_file(
            &args.out.join("bundle.tbt"),
            &federation
                .bundle()
                .map_err(|e| anyhow!("trust bundle: {e}"))?,
        )?;
        let lists = federation
            .status_lists(&revoked, args.count)
            .map_err(|e| anyhow!("status lists: {e}"))?;
        let mut status_files = Vec::new();
        for (region, bytes) in federation.regions.iter().zip(&lists) {
            let file = format!("status-{}.tsl", region.certificate.region.as_str());
            write_file(&args.out.join(&file), bytes)?;
            status_files.push(file);
        }
        let status_args: String = status_files
            .iter()
            .map(|f| format!(" --status {}", args.out.join(f).display()))
            .collect();
        let command = format!(
            "tongban-verify bulk {} --trust {}{status_args} --now {NOW}",
            path.display(),
            args.out.join("bundle.tbt").display(),
        );
        let manifest = json!({
            "certificates": args.count,
            "certificate_bytes": bytes_written,
            "mix": mix.to_string(),
            "kinds": kinds,
            "regions": args.regions,
            "suite": args.suite.name(),
            "now": NOW,
            "file": name,
            "status": status_files,
            "command": command,
        });
        write_file(
            &args.out.join("manifest.json"),
            format!("{manifest:#}\n").as_bytes(),
        )?;
        crate::cli::emit(&format!(
            "wrote {} certificates to {}\n{command}\n",
            args.count,
            path.display()
        ))?;
        Ok(ExitCode::SUCCESS)
    }
}
