//! Single-certificate verification and its parts, side by side in one run, in both suites:
//! `cargo bench -p tongban-benches --bench verify` (`-- sm2` for the national suite only).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tongban_core::cert::{self, Claims};
use tongban_core::envelope::{Envelope, Kind};
use tongban_core::keys::PublicKey;
use tongban_core::suite::Suite;
use tongban_core::testkit::{NOW, TestFederation};
use tongban_core::trust::{StatusTable, TrustStore};
use tongban_core::values::Time;

/// The test federation in `suite`, its trust store, and one business licence stamped by its
/// Fuyang seal.
struct Fixture {
    federation: TestFederation,
    now: Time,
    bundle: Vec<u8>,
    trust: TrustStore,
    bytes: Vec<u8>,
}

impl Fixture {
    fn of(suite: Suite) -> Fixture {
        let federation = TestFederation::of(suite).unwrap_or_else(|e| panic!("{e}"));
        let now = Time::new(NOW).unwrap_or_else(|| panic!("now"));
        let bundle = federation.bundle().unwrap_or_else(|e| panic!("{e}"));
        let trust = TrustStore::load(&bundle, now, None).unwrap_or_else(|e| panic!("{e}"));
        let seal = federation.amr();
        let draft = federation
            .draft(seal, "2026000001")
            .unwrap_or_else(|e| panic!("{e}"));
        let bytes = cert::issue(
            &draft,
            &seal.info,
            &seal.key,
            &mut tongban_core::testkit::SeededSalts::new("bench"),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .bytes;
        Fixture {
            federation,
            now,
            bundle,
            trust,
            bytes,
        }
    }
}

fn bench(c: &mut Criterion) {
    let Fixture {
        federation,
        now,
        bundle,
        trust,
        bytes,
    } = Fixture::of(Suite::Ed25519);
    let seal = federation.amr();
    let status = StatusTable::default();
    let envelope = Envelope::open(&bytes, Kind::Certificate).unwrap_or_else(|e| panic!("{e}"));
    let signed = envelope.signed_bytes();

    let mut group = c.benchmark_group("certificate");
    group.bench_function("verify (all steps)", |b| {
        b.iter(|| cert::verify(black_box(&bytes), &trust, &status, now))
    });
    group.bench_function("open envelope (steps 1-6)", |b| {
        b.iter(|| Envelope::open(black_box(&bytes), Kind::Certificate).map(|e| e.kid))
    });
    group.bench_function("verify_strict only", |b| {
        b.iter(|| {
            seal.info
                .key
                .verify_strict(black_box(&signed), &envelope.signature)
        })
    });
    group.bench_function("decode claims (step 9)", |b| {
        b.iter(|| Claims::decode(black_box(envelope.payload)).map(|c| c.issued))
    });
    group.bench_function("load trust bundle", |b| {
        b.iter(|| TrustStore::load(black_box(&bundle), now, None).map(|t| t.version))
    });
    group.finish();
}

/// The same certificate path in the national suite (issue 15): the test federation with SM2 keys.
/// `benches/sm2.sh` runs it beside `openssl speed sm2` on this machine.
fn bench_sm2(c: &mut Criterion) {
    let Fixture {
        federation,
        now,
        trust,
        bytes,
        ..
    } = Fixture::of(Suite::Sm2);
    let seal = federation.amr();
    let status = StatusTable::default();
    let envelope = Envelope::open(&bytes, Kind::Certificate).unwrap_or_else(|e| panic!("{e}"));
    let signed = envelope.signed_bytes();

    let mut group = c.benchmark_group("sm2 certificate");
    group.bench_function("verify (all steps)", |b| {
        b.iter(|| cert::verify(black_box(&bytes), &trust, &status, now))
    });
    group.bench_function("verify_strict only", |b| {
        b.iter(|| {
            seal.info
                .key
                .verify_strict(black_box(&signed), &envelope.signature)
        })
    });
    // A key read afresh: its first verification builds the key's table (sm2_tables.rs).
    group.bench_function("first verification by a new key", |b| {
        b.iter(|| {
            PublicKey::from_bytes(black_box(seal.info.key.as_bytes()))
                .map(|key| key.verify_strict(&signed, &envelope.signature))
        })
    });
    group.bench_function("sign (issue's signature only)", |b| {
        b.iter(|| seal.key.sign(black_box(&signed)))
    });
    group.finish();
}

criterion_group!(benches, bench, bench_sm2);
criterion_main!(benches);
