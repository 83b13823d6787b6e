//! Acknowledgement latency of durable appends under load: 64 (and, for comparison, 1 and 16)
//! threads append 400-byte entries as fast as their acknowledgements come back; prints throughput
//! and latency percentiles. Not a criterion bench: percentiles of individual calls are the point.
//!
//! `cargo bench -p tongban-benches --bench log_ack_latency` (optionally `-- <seconds per run>`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tongban_node::log::{Log, LogConfig, NoIndex};

const ENTRY_BYTES: usize = 400;

fn main() {
    // cargo bench passes `--bench`; a bare number is the duration of each run.
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = Log::open(
        &dir.path().join("log.redb"),
        LogConfig::default(),
        Arc::new(NoIndex),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    println!("durable appends of {ENTRY_BYTES}-byte entries, {seconds} s per run");
    for appenders in [1, 16, 64] {
        run(&log, appenders, Duration::from_secs(seconds));
    }
}

fn run(log: &Log, appenders: usize, length: Duration) {
    let size_before = log.size().unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..appenders)
            .map(|_| {
                s.spawn(move || {
                    let mut mine = Vec::new();
                    while started.elapsed() < length {
                        let t = Instant::now();
                        log.append(vec![0x5a; ENTRY_BYTES])
                            .unwrap_or_else(|e| panic!("{e}"));
                        mine.push(t.elapsed());
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|_| panic!("appender panicked")))
            .collect()
    });
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies[i.min(latencies.len() - 1)].as_secs_f64() * 1e3
    };
    let appended = log.size().unwrap_or_else(|e| panic!("{e}")) - size_before;
    println!(
        "{appenders:>3} appenders: {:>8.0} appends/s ({appended} in {:.2} s), ack latency ms: \
         p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        appended as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
    );
}
