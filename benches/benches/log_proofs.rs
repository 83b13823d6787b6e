//! Inclusion and consistency proofs over a 100,000-entry tree, in both suites' tree hashes
//! (SHA-256 and SM3), generated and verified side by side:
//! `cargo bench -p tongban-benches --bench log_proofs`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tongban_core::log::proof::{MemoryTree, leaf_hash, verify_consistency, verify_inclusion};
use tongban_core::suite::Suite;

const SIZE: u64 = 100_000;

fn bench(c: &mut Criterion) {
    for suite in Suite::ALL {
        bench_suite(c, suite);
    }
}

fn bench_suite(c: &mut Criterion, suite: Suite) {
    let mut tree = MemoryTree::new(suite);
    let entries: Vec<Vec<u8>> = (0..SIZE)
        .map(|i| format!("entry {i:0>392}").into_bytes())
        .collect();
    for entry in &entries {
        tree.append(entry).unwrap_or_else(|e| panic!("{e}"));
    }
    let root = tree.root(SIZE).unwrap_or_else(|e| panic!("{e}"));
    let index = 77_777;
    let proof = tree
        .inclusion_proof(index, SIZE)
        .unwrap_or_else(|e| panic!("{e}"));
    let leaf = leaf_hash(suite, &entries[index as usize]);
    let old = 60_001;
    let old_root = tree.root(old).unwrap_or_else(|e| panic!("{e}"));
    let consistency = tree
        .consistency_proof(old, SIZE)
        .unwrap_or_else(|e| panic!("{e}"));

    let mut group = c.benchmark_group(format!("log proofs ({suite}, 100,000 entries)"));
    group.bench_function("append 400-byte entry (in memory)", |b| {
        b.iter_batched(
            || tree.clone(),
            |mut t| t.append(black_box(&entries[0])),
            criterion::BatchSize::LargeInput,
        )
    });
    group.bench_function("inclusion proof: generate", |b| {
        b.iter(|| tree.inclusion_proof(black_box(index), SIZE))
    });
    group.bench_function("inclusion proof: verify", |b| {
        b.iter(|| verify_inclusion(suite, leaf, black_box(index), SIZE, root, &proof))
    });
    group.bench_function("consistency proof: generate", |b| {
        b.iter(|| tree.consistency_proof(black_box(old), SIZE))
    });
    group.bench_function("consistency proof: verify", |b| {
        b.iter(|| verify_consistency(suite, black_box(old), old_root, SIZE, root, &consistency))
    });
    group.bench_function("root at size", |b| {
        b.iter(|| tree.root(black_box(SIZE - 1)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
