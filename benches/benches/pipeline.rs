//! The stages of `tongban-verify bulk` outside the workers, alone: reading a bulk stream into
//! batches, handing them out, putting the results back in order and writing the result lines
//! (issue 16: each must sustain ≥ 1,000,000 certificates/s on one core, so that 16 or 64 workers
//! are never starved). The workers' verification is replaced by a stand-in that answers "valid"
//! at once; the workers still render the lines, as they do in a real run.
//!
//! `cargo bench -p tongban-benches --bench pipeline` prints, for a bulk stream and for JSON lines
//! (base64 decoded on the calling thread), with 1 and 2 workers, the median of 5 runs over
//! 1,000,000 records: certificates/s through the whole pipeline, and the calling thread's rate on
//! the CPU time it used (its capacity on one core of its own).

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::time::Instant;

use tongban_core::bulk::{Config, Outcome, Scratch, Work};
use tongban_core::cert::Verdict;
use tongban_core::suite::Suite;
use tongban_core::testkit::bulk::{Mix, generate};
use tongban_verify::bulk::input::{Format, Records, Source};
use tongban_verify::bulk::sweep;

const COUNT: usize = 1_000_000;
const RUNS: usize = 5;

fn must<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// Answers every certificate "valid" with the identifier a real one carries.
struct Valid;

impl Work for Valid {
    fn verify(&self, certificates: &[&[u8]], _: &mut Scratch, out: &mut Vec<Outcome>) {
        out.extend(certificates.iter().map(|_| Outcome {
            verdict: Verdict::Valid,
            code: tongban_core::Code::Ok,
            id: Some("1.2.156.3005.2.11100000000013127D.11010100.000001.Q".into()),
        }));
    }
}

/// The calling thread's CPU time so far, in nanoseconds (the first field of schedstat).
fn thread_cpu_ns() -> u64 {
    let text = must(std::fs::read_to_string("/proc/thread-self/schedstat"));
    text.split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("schedstat: {text}"))
}

fn main() {
    let set = must(generate(Suite::Ed25519, 16, &Mix::valid(), 1));
    let dir = must(tempfile::tempdir());
    let stream = dir.path().join("certificates.tbb");
    let jsonl = dir.path().join("certificates.jsonl");
    let mut file = std::io::BufWriter::new(must(std::fs::File::create(&stream)));
    let mut lines = std::io::BufWriter::new(must(std::fs::File::create(&jsonl)));
    let mut bytes = 0usize;
    for i in 0..COUNT {
        let certificate = &set.certificates[i % set.certificates.len()].bytes;
        must(file.write_all(&(certificate.len() as u32).to_be_bytes()));
        must(file.write_all(certificate));
        must(writeln!(lines, "\"{}\"", B64.encode(certificate)));
        bytes += certificate.len();
    }
    must(file.flush());
    must(lines.flush());
    drop((file, lines));
    println!(
        "{COUNT} records, {:.0} bytes each on average, in {}",
        bytes as f64 / COUNT as f64,
        dir.path().display()
    );
    for (path, format) in [(&stream, Format::Stream), (&jsonl, Format::Jsonl)] {
        println!("{format:?}:");
        measure(path, format);
    }
}

/// Runs the file through the pipeline with 1 and 2 workers, 5 times each, and prints the medians.
fn measure(path: &std::path::Path, format: Format) {
    for threads in [1, 2] {
        let mut wall = Vec::new();
        let mut cpu = Vec::new();
        for _ in 0..RUNS {
            let records = Records::new(vec![Source::Path(path.to_path_buf())], format);
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::sink());
            let cpu_before = thread_cpu_ns();
            let started = Instant::now();
            let (summary, tally) = must(sweep(
                &Valid,
                &Config::new(threads),
                records,
                &mut out,
                |_| {},
            ));
            let elapsed = started.elapsed().as_secs_f64();
            let used = (thread_cpu_ns() - cpu_before) as f64 / 1e9;
            assert_eq!(
                (summary.certificates, tally.valid),
                (COUNT as u64, COUNT as u64)
            );
            wall.push(COUNT as f64 / elapsed);
            cpu.push(COUNT as f64 / used);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "{threads} worker(s): {:>10.0} certificates/s through the pipeline; calling thread {:>10.0}/s of its own CPU time (median of {RUNS})",
            median(wall),
            median(cpu)
        );
    }
}
