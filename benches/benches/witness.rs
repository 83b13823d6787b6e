//! The cost of witnessing one checkpoint (specs/federation.md §6): what a witness does per
//! `add-checkpoint` request (parse the body, verify the log's signature and a consistency proof
//! from the size it holds, then sign a cosignature/v1 line), what the region does with each answer
//! (verify the cosignature), and what every receiver of the published checkpoint does (verify the
//! log signature and the quorum's cosignatures). Log of 1,000,000 entries, checkpoints 1,000
//! entries apart, quorum 2 and 15. `cargo bench -p tongban-benches --bench witness`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tongban_core::federation::witness::{self, AddCheckpoint, Outcome, Witnessed};
use tongban_core::keys::SecretKey;
use tongban_core::log::checkpoint::{self, Checkpoint};
use tongban_core::log::note::{NoteRole, NoteSignature, NoteVerifier};
use tongban_core::log::proof::MemoryTree;

const ORIGIN: &str = "tongban.local/341200/log/1";
const OLD: u64 = 999_000;
const NEW: u64 = 1_000_000;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(&[n; 32]).unwrap_or_else(|e| panic!("{e}"))
}

fn bench(c: &mut Criterion) {
    let mut tree = MemoryTree::new(tongban_core::suite::Suite::Ed25519);
    for i in 0..NEW {
        tree.append(&i.to_be_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let log_key = key(1);
    let log = NoteVerifier::new(ORIGIN, NoteRole::Log, log_key.public().clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let head = |size| Checkpoint {
        origin: ORIGIN.into(),
        size,
        root: tree.root(size).unwrap_or_else(|e| panic!("{e}")),
    };
    let held = Witnessed {
        size: OLD,
        root: head(OLD).root,
        note: head(OLD)
            .sign(ORIGIN, &log_key)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_bytes(),
    };
    let note = head(NEW)
        .sign(ORIGIN, &log_key)
        .unwrap_or_else(|e| panic!("{e}"));
    let body = AddCheckpoint {
        old: OLD,
        proof: tree
            .consistency_proof(OLD, NEW)
            .unwrap_or_else(|e| panic!("{e}")),
        note: note.clone().into_bytes(),
    }
    .encode();
    let witness_key = key(2);
    let name = "tongban.local/370100/witness";
    let line = witness::cosignature(&head(NEW), 1_800_000_000, name, &witness_key)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "add-checkpoint request {} bytes (proof of {} hashes), cosignature line {} bytes",
        body.len(),
        tree.consistency_proof(OLD, NEW)
            .map(|p| p.len())
            .unwrap_or(0),
        line.len()
    );

    c.bench_function("witness: add-checkpoint + cosign", |b| {
        b.iter(|| {
            let request = AddCheckpoint::parse(black_box(&body)).unwrap_or_else(|e| panic!("{e}"));
            match witness::add_checkpoint(&request, &log, Some(&held)) {
                Ok(Outcome::Cosign { checkpoint, .. }) => {
                    witness::cosignature(&checkpoint, 1_800_000_000, name, &witness_key)
                }
                other => panic!("{other:?}"),
            }
        })
    });

    let verifier = NoteVerifier::new(name, NoteRole::Witness, witness_key.public().clone())
        .unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("region: check one cosignature", |b| {
        b.iter(|| {
            let signatures =
                witness::parse_lines(black_box(&line)).unwrap_or_else(|e| panic!("{e}"));
            let cosigned = checkpoint::add_signatures(note.as_bytes(), &signatures)
                .unwrap_or_else(|e| panic!("{e}"));
            checkpoint::open(cosigned.as_bytes(), &log, std::slice::from_ref(&verifier))
        })
    });

    let mut group = c.benchmark_group("receiver: open a cosigned checkpoint");
    for quorum in [2u8, 15] {
        let witnesses: Vec<(SecretKey, NoteVerifier)> = (0..quorum)
            .map(|i| {
                let k = key(10 + i);
                let v = NoteVerifier::new(&format!("w{i}"), NoteRole::Witness, k.public().clone())
                    .unwrap_or_else(|e| panic!("{e}"));
                (k, v)
            })
            .collect();
        let lines: Vec<NoteSignature> = witnesses
            .iter()
            .map(|(k, v)| {
                checkpoint::cosign(&head(NEW).body(), 1_800_000_000, &v.name, k)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let cosigned =
            checkpoint::add_signatures(note.as_bytes(), &lines).unwrap_or_else(|e| panic!("{e}"));
        let verifiers: Vec<NoteVerifier> = witnesses.into_iter().map(|(_, v)| v).collect();
        group.bench_with_input(
            BenchmarkId::from_parameter(quorum),
            &cosigned,
            |b, cosigned| {
                b.iter(|| checkpoint::open(black_box(cosigned.as_bytes()), &log, &verifiers))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
