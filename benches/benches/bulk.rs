//! The bulk verifier against its limit and against the naive path, side by side in one run:
//! `cargo bench -p tongban-benches --bench bulk`.
//!
//! - (a) `verify_batch` alone over pre-decoded signatures, in batches of the pipeline's size: the
//!   limit, on one thread and on two; and (a′) the bulk path's own batch equation alone over the
//!   same signatures (it gathers the terms of one seal key: specs/bulk.md §4);
//! - (b) the full bulk pipeline (decode, seal table, batch signatures, claims, disclosures, status,
//!   ordered results) on one thread and on two, and one batch call without the pipeline;
//! - (c) the naive path: coset decode and `verify_strict`, one certificate at a time;
//! - the verified-digest cache, cold (every certificate new) and warm (every one a repeat).
//!
//! Each iteration verifies the same 8,192 valid certificates of 16 regions and 32 seals.

use std::hint::black_box;
use std::time::Duration;

use coset::{CoseSign1, TaggedCborSerializable};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signature, VerifyingKey};
use tongban_core::bulk::equation::{Equation, Term};
use tongban_core::bulk::{
    CompactStatus, Config, DigestCache, FastVerifier, PreparedSeal, Scratch, pipeline,
};
use tongban_core::envelope::{Envelope, Kind, SigStructure};
use tongban_core::keys::KeyId;
use tongban_core::suite::Suite;
use tongban_core::testkit::NOW;
use tongban_core::testkit::bulk::{Mix, generate};
use tongban_core::trust::TrustStore;
use tongban_core::values::Time;

const COUNT: u64 = 8192;

/// The allocator `tongban-verify` runs on (verifier-cli/src/main.rs): with glibc's, batches whose
/// outcomes a worker allocates and the calling thread frees scale worse over two threads than
/// the command does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn must<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// Pre-decoded signatures for (a): messages (whole for `verify_batch`, in pieces for our
/// equation, as the bulk path hashes them), signatures and decompressed keys.
struct Decoded<'a> {
    messages: Vec<Vec<u8>>,
    structures: Vec<SigStructure<'a>>,
    signatures: Vec<Signature>,
    keys: Vec<VerifyingKey>,
    signature_bytes: Vec<[u8; 64]>,
    seals: Vec<&'a PreparedSeal>,
}

/// (a′): the bulk path's batch equation alone, over the same pre-decoded signatures.
fn raw_equation(decoded: &Decoded<'_>, range: std::ops::Range<usize>, batch: usize) {
    let mut equation = Equation::default();
    let terms: Vec<Term<'_>> = range
        .map(|i| {
            Term::of_seal(
                decoded.structures[i],
                &decoded.signature_bytes[i],
                decoded.seals[i],
            )
            .unwrap_or_else(|| panic!("the bench's seals are batchable"))
        })
        .collect();
    for chunk in terms.chunks(batch) {
        assert!(equation.holds(&[0x5a; 32], chunk));
    }
}

fn raw_batches(decoded: &Decoded<'_>, range: std::ops::Range<usize>, batch: usize) {
    let messages: Vec<&[u8]> = decoded.messages[range.clone()]
        .iter()
        .map(Vec::as_slice)
        .collect();
    let signatures = &decoded.signatures[range.clone()];
    let keys = &decoded.keys[range];
    for ((m, s), k) in messages
        .chunks(batch)
        .zip(signatures.chunks(batch))
        .zip(keys.chunks(batch))
    {
        must(ed25519_dalek::verify_batch(m, s, k));
    }
}

fn run_pipeline(
    verifier: &FastVerifier,
    cache: Option<&DigestCache>,
    config: &Config,
    certificates: &[Vec<u8>],
) -> u64 {
    // In memory already: each record is borrowed, as the pipeline allows.
    let input = certificates
        .iter()
        .map(|c| Ok::<_, std::convert::Infallible>(((), c.as_slice())));
    let mut valid = 0u64;
    let summary = must(pipeline::run(verifier, cache, config, input, |(), o| {
        valid += u64::from(o.code == tongban_core::Code::Ok);
        Ok(())
    }));
    assert_eq!(valid, summary.certificates);
    valid
}

fn bench(c: &mut Criterion) {
    let now = Time::new(NOW).unwrap_or_else(|| panic!("now"));
    let set = must(generate(Suite::Ed25519, COUNT, &Mix::valid(), 16));
    let trust = must(TrustStore::load(&set.bundle, now, None));
    let verifier = must(FastVerifier::new(&trust, CompactStatus::default(), now));
    let certificates: Vec<Vec<u8>> = set.certificates.iter().map(|c| c.bytes.clone()).collect();
    let config = Config::new(1);
    let batch = config.batch_size;
    let mut decoded = Decoded {
        messages: Vec::new(),
        structures: Vec::new(),
        signatures: Vec::new(),
        keys: Vec::new(),
        signature_bytes: Vec::new(),
        seals: Vec::new(),
    };
    for bytes in &certificates {
        let envelope = must(Envelope::open(bytes, Kind::Certificate));
        let seal = verifier
            .seals()
            .get(&envelope.kid)
            .unwrap_or_else(|| panic!("seal"));
        decoded.messages.push(envelope.signed_bytes());
        decoded.structures.push(envelope.sig_structure());
        decoded
            .signatures
            .push(Signature::from_bytes(&envelope.signature));
        decoded.keys.push(
            seal.batch_key
                .unwrap_or_else(|| panic!("the bench's seals are batchable")),
        );
        decoded.signature_bytes.push(envelope.signature);
        decoded.seals.push(seal);
    }
    let n = certificates.len();

    let mut group = c.benchmark_group("bulk");
    group.throughput(Throughput::Elements(COUNT));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(6));
    group.warm_up_time(Duration::from_secs(2));
    group.bench_function("a raw verify_batch, 1 thread", |b| {
        b.iter(|| raw_batches(black_box(&decoded), 0..n, batch))
    });
    group.bench_function("a raw verify_batch, 2 threads", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                s.spawn(|| raw_batches(&decoded, 0..n / 2, batch));
                raw_batches(&decoded, n / 2..n, batch);
            })
        })
    });
    group.bench_function("a' raw gathered equation, 1 thread", |b| {
        b.iter(|| raw_equation(black_box(&decoded), 0..n, batch))
    });
    group.bench_function("b bulk pipeline, 1 thread", |b| {
        b.iter(|| run_pipeline(&verifier, None, &Config::new(1), black_box(&certificates)))
    });
    group.bench_function("b bulk pipeline, 2 threads", |b| {
        b.iter(|| run_pipeline(&verifier, None, &Config::new(2), black_box(&certificates)))
    });
    group.bench_function("b FastVerifier::verify_batch, no pipeline", |b| {
        let mut scratch = Scratch::default();
        b.iter(|| {
            let mut out = Vec::with_capacity(n);
            for chunk in certificates.chunks(batch) {
                let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                verifier.verify_batch(black_box(&slices), None, &mut scratch, &mut out);
            }
            out.len()
        })
    });
    let mixed = must(generate(
        Suite::Ed25519,
        COUNT,
        &must(Mix::parse(
            "valid=90,revoked=3,expired=3,tampered=2,foreign=1,malformed=1",
        )),
        16,
    ));
    let mixed_trust = must(TrustStore::load(&mixed.bundle, now, None));
    let mut mixed_status = CompactStatus::default();
    for bytes in &mixed.lists {
        mixed_status.add_list(must(tongban_core::trust::StatusList::load(
            bytes,
            &mixed_trust,
        )));
    }
    let mixed_verifier = must(FastVerifier::new(&mixed_trust, mixed_status, now));
    let mixed_certificates: Vec<Vec<u8>> =
        mixed.certificates.iter().map(|c| c.bytes.clone()).collect();
    group.bench_function("b bulk pipeline, 1 thread, gen's default mix", |b| {
        b.iter(|| {
            let input = mixed_certificates
                .iter()
                .map(|c| Ok::<_, std::convert::Infallible>(((), c.as_slice())));
            must(pipeline::run(
                &mixed_verifier,
                None,
                &Config::new(1),
                input,
                |(), o| {
                    black_box(o);
                    Ok(())
                },
            ))
            .certificates
        })
    });
    group.bench_function("c naive coset + verify_strict", |b| {
        b.iter(|| naive(&trust, black_box(&certificates)))
    });
    group.finish();

    // Where the time of (b) beyond (a) goes: the stages around the signature check.
    let mut group = c.benchmark_group("bulk stages");
    group.throughput(Throughput::Elements(COUNT));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("steps 1-7: open envelope, find seal", |b| {
        b.iter(|| {
            certificates
                .iter()
                .filter(|c| {
                    Envelope::open(black_box(c), Kind::Certificate)
                        .is_ok_and(|e| verifier.seals().get(&e.kid).is_some())
                })
                .count()
        })
    });
    let opened: Vec<_> = certificates
        .iter()
        .map(|c| {
            let envelope = must(Envelope::open(c, Kind::Certificate));
            let seal = verifier
                .seals()
                .get(&envelope.kid)
                .unwrap_or_else(|| panic!("seal"));
            (envelope, seal)
        })
        .collect();
    group.bench_function("steps 9-16: verify_signed", |b| {
        b.iter(|| {
            opened
                .iter()
                .filter(|(e, s)| {
                    tongban_core::cert::verify_signed(e, &s.entry, verifier.status(), now)
                        .is_valid()
                })
                .count()
        })
    });
    group.bench_function("cache key: BLAKE3 of the bytes", |b| {
        b.iter(|| {
            certificates
                .iter()
                .map(|c| DigestCache::key(black_box(c))[0] as usize)
                .sum::<usize>()
        })
    });
    group.finish();

    // Runs unless a filter names other benchmarks (a profiling run of one function, say).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if filters.is_empty() || filters.iter().any(|f| f.contains("interleaved")) {
        interleaved(&decoded, batch, &verifier, &trust, &certificates);
    }

    let mut group = c.benchmark_group("bulk cache");
    group.throughput(Throughput::Elements(COUNT));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("pipeline, 1 thread, no cache", |b| {
        b.iter(|| run_pipeline(&verifier, None, &Config::new(1), black_box(&certificates)))
    });
    group.bench_function("pipeline, 1 thread, cold cache (all new)", |b| {
        b.iter(|| {
            let cache = DigestCache::new(1 << 16);
            run_pipeline(
                &verifier,
                Some(&cache),
                &Config::new(1),
                black_box(&certificates),
            )
        })
    });
    let warm = DigestCache::new(1 << 16);
    run_pipeline(&verifier, Some(&warm), &Config::new(1), &certificates);
    group.bench_function("pipeline, 1 thread, warm cache (all repeats)", |b| {
        b.iter(|| {
            run_pipeline(
                &verifier,
                Some(&warm),
                &Config::new(1),
                black_box(&certificates),
            )
        })
    });
    group.finish();
}

/// The same comparisons again, interleaved: each round times (a), (b) and (c) back to back, so
/// that load from other processes on a shared machine hits all of them alike; the medians of the
/// per-round figures and ratios are printed. These are the figures the README quotes.
fn interleaved(
    decoded: &Decoded<'_>,
    batch: usize,
    verifier: &FastVerifier,
    trust: &TrustStore,
    certificates: &[Vec<u8>],
) {
    const ROUNDS: usize = 21;
    let n = certificates.len();
    let time = |f: &mut dyn FnMut()| {
        let started = std::time::Instant::now();
        f();
        COUNT as f64 / started.elapsed().as_secs_f64()
    };
    let names = [
        "a raw verify_batch, 1 thread",
        "a raw verify_batch, 2 threads",
        "b bulk pipeline, 1 thread",
        "b bulk pipeline, 2 threads",
        "c naive coset + verify_strict",
        "b verify_batch calls, no threads",
        "a' raw gathered equation, 1 thread",
    ];
    let mut scratch = Scratch::default();
    let mut rates: Vec<[f64; 7]> = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let a1 = time(&mut || raw_batches(decoded, 0..n, batch));
        let a2 = time(&mut || {
            std::thread::scope(|s| {
                s.spawn(|| raw_batches(decoded, 0..n / 2, batch));
                raw_batches(decoded, n / 2..n, batch);
            })
        });
        let b1 = time(&mut || {
            run_pipeline(verifier, None, &Config::new(1), certificates);
        });
        let b2 = time(&mut || {
            run_pipeline(verifier, None, &Config::new(2), certificates);
        });
        let c = time(&mut || {
            naive(trust, certificates);
        });
        let b0 = time(&mut || {
            let mut out = Vec::with_capacity(n);
            for chunk in certificates.chunks(batch) {
                let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                verifier.verify_batch(&slices, None, &mut scratch, &mut out);
            }
        });
        let a_own = time(&mut || raw_equation(decoded, 0..n, batch));
        rates.push([a1, a2, b1, b2, c, b0, a_own]);
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!("\ninterleaved, {ROUNDS} rounds of {COUNT} certificates (medians, certificates/s):");
    for (i, name) in names.iter().enumerate() {
        println!(
            "  {name:<32} {:>9.0}",
            median(rates.iter().map(|r| r[i]).collect())
        );
    }
    let ratio = |label: &str, top: usize, bottom: usize, scale: f64| {
        let value = median(rates.iter().map(|r| r[top] / (r[bottom] * scale)).collect());
        println!("  {label:<44} {value:>6.3}");
    };
    println!("ratios (medians of the per-round ratios):");
    ratio("(b) 1 thread / (a) 1 thread", 2, 0, 1.0);
    ratio("(b) 2 threads / (a) 2 threads", 3, 1, 1.0);
    ratio("(b) 1 thread / (c)", 2, 4, 1.0);
    ratio("(b) 2 threads / (c)", 3, 4, 1.0);
    ratio("(b) 2 threads / (b) 1 thread", 3, 2, 1.0);
    ratio("(a) 2 threads / (a) 1 thread", 1, 0, 1.0);
    ratio("(b) no threads / (a) 1 thread", 5, 0, 1.0);
    ratio("(b) 1 thread / (a') 1 thread", 2, 6, 1.0);
    ratio("(a') 1 thread / (a) 1 thread", 6, 0, 1.0);
}

fn naive(trust: &TrustStore, certificates: &[Vec<u8>]) -> u64 {
    let mut valid = 0u64;
    for bytes in certificates {
        let sign1 = must(CoseSign1::from_tagged_slice(bytes));
        let kid =
            KeyId::from_slice(&sign1.protected.header.key_id).unwrap_or_else(|| panic!("kid"));
        let seal = trust.seal(&kid).unwrap_or_else(|| panic!("seal"));
        let signature: [u8; 64] = sign1
            .signature
            .as_slice()
            .try_into()
            .unwrap_or_else(|_| panic!("signature"));
        let tbs = sign1.tbs_data(b"");
        valid += u64::from(seal.info.key.verify_strict(&tbs, &signature));
    }
    assert_eq!(valid, certificates.len() as u64);
    valid
}

criterion_group!(benches, bench);
criterion_main!(benches);
