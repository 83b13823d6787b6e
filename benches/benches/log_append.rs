//! The durable log: fsynced appends per second with 1, 16 and 64 concurrent appenders of 400-byte
//! entries (group commit shares one fsync among everyone waiting), and inclusion proofs read from
//! storage at size 100,000: `cargo bench -p tongban-benches --bench log_append`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tlog_tiles::{Hash, check_record, record_hash};
use tongban_node::log::{Log, LogConfig, NoIndex};

const ENTRY_BYTES: usize = 400;
const PROOF_SIZE: u64 = 100_000;

fn open_temp() -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = Log::open(
        &dir.path().join("log.redb"),
        LogConfig::default(),
        Arc::new(NoIndex),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (dir, log)
}

/// `total` appends spread over `appenders` threads, each waiting for its own acknowledgement.
fn append_concurrently(log: &Log, appenders: u64, total: u64) -> Duration {
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..appenders {
            let share = total / appenders + u64::from(t < total % appenders);
            s.spawn(move || {
                for _ in 0..share {
                    log.append(vec![0x5a; ENTRY_BYTES])
                        .unwrap_or_else(|e| panic!("{e}"));
                }
            });
        }
    });
    started.elapsed()
}

fn appends(c: &mut Criterion) {
    let (_dir, log) = open_temp();
    let mut group = c.benchmark_group("log durable append (400-byte entries)");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(6));
    for appenders in [1u64, 16, 64] {
        group.bench_with_input(
            BenchmarkId::new("concurrent appenders", appenders),
            &appenders,
            |b, &appenders| b.iter_custom(|iters| append_concurrently(&log, appenders, iters)),
        );
    }
    group.finish();
}

fn proofs(c: &mut Criterion) {
    let (_dir, log) = open_temp();
    let entries: Vec<Vec<u8>> = (0..PROOF_SIZE)
        .map(|i| format!("entry {i:0>392}").into_bytes())
        .collect();
    for chunk in entries.chunks(4096) {
        log.append_many(chunk.to_vec())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let root = Hash(log.root(PROOF_SIZE).unwrap_or_else(|e| panic!("{e}")));
    let index = 77_777;
    let leaf = record_hash(&entries[index as usize]);

    let mut group = c.benchmark_group("log proofs from storage (100,000 entries)");
    group.bench_function("inclusion proof: generate", |b| {
        b.iter(|| log.inclusion_proof(black_box(index), PROOF_SIZE))
    });
    group.bench_function("inclusion proof: generate + verify", |b| {
        b.iter(|| {
            let proof: Vec<Hash> = log
                .inclusion_proof(black_box(index), PROOF_SIZE)
                .unwrap_or_else(|e| panic!("{e}"))
                .into_iter()
                .map(Hash)
                .collect();
            check_record(&proof, PROOF_SIZE, root, index, leaf)
        })
    });
    group.bench_function("consistency proof: generate", |b| {
        b.iter(|| log.consistency_proof(black_box(60_001), PROOF_SIZE))
    });
    group.bench_function("root at size", |b| {
        b.iter(|| log.root(black_box(PROOF_SIZE - 1)))
    });
    group.finish();
}

criterion_group!(benches, appends, proofs);
criterion_main!(benches);
