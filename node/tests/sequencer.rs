//! The sequencer under many simultaneous acts of one region, in one process: an identifier is
//! issued once however many ask for it at the same moment, a certificate is renewed once however
//! many renew it at once, every issuance's rows are read before the sequencer lock (none under
//! it: region/read_ahead.rs), and the state the acts leave is the one a replay of the log makes.
//! Runs on either storage engine (node_process::use_test_storage).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod node_process;

use std::sync::{Arc, Barrier};

use tongban_core::cert::{FieldName, FieldValue, Holder, HolderIdType, TrustLevel};
use tongban_core::ids::{Identifier, IssuerCode, TypeCode, Uscc};
use tongban_core::keys::KeyId;
use tongban_core::status::Succession;
use tongban_core::suite::Suite;
use tongban_core::trust::{MediaType, SealId, SealType};
use tongban_core::values::{ShortText, Time};
use tongban_node::config::HttpConfig;
use tongban_node::home::{Home, InitOptions, init};
use tongban_node::region::{CertificateSpec, Lineage, Region, SealSpec, check_home, now};

const AGENCY: &str = "11341200MB0000001F";
const THREADS: usize = 16;
/// Serials every thread issues at once, and serials each issues alone.
const SHARED: usize = 8;
const OWN: usize = 8;

fn text(t: &str) -> ShortText {
    ShortText::new(t).unwrap()
}

fn open(dir: &std::path::Path) -> (Home, Region, KeyId) {
    let home = Home::new(dir);
    init(
        &home,
        &InitOptions {
            region: "341200",
            name: "阜阳市",
            federation_name: "tongban.test",
            federation_key: None,
            suite: Suite::Ed25519,
            http: HttpConfig::default(),
            now: now().unwrap(),
        },
    )
    .unwrap();
    node_process::use_test_storage(&home.config());
    let region = Region::open(&home).unwrap();
    let agency = Uscc::parse(AGENCY).unwrap();
    region
        .credentials
        .register(&agency, "阜阳市市场监督管理局")
        .unwrap();
    let (info, _) = region
        .create_seal(SealSpec {
            agency,
            agency_name: text("阜阳市市场监督管理局"),
            id: SealId::parse("SEQ-1").unwrap(),
            seal_type: SealType::Approval,
            name: text("行政审批专用章"),
            valid_from: None,
            valid_until: Time::new(now().unwrap().seconds() + 86_400).unwrap(),
            picture: b"png".to_vec(),
            media_type: MediaType::Png,
            share_types: Vec::new(),
        })
        .unwrap();
    (home, region, info.key.kid())
}

fn spec(seal: KeyId) -> CertificateSpec {
    CertificateSpec {
        seal,
        type_name: text("营业执照"),
        valid_from: None,
        valid_until: None,
        level: TrustLevel::A,
        promise_deadline: None,
        holder: Holder {
            name: text("阜阳市通办示范科技有限公司"),
            id_type: HolderIdType::Uscc,
            id_number: "91341200MA2T00001L".into(),
        },
        licence: vec![(
            FieldName::parse("licence.capital").unwrap(),
            FieldValue::Int(10_000_000),
        )],
        decoys: 0,
    }
}

fn new(serial: &str) -> Lineage {
    Lineage::New {
        type_code: TypeCode::parse(node_process::TYPE_CODE).unwrap(),
        serial: serial.into(),
    }
}

fn first_version(serial: &str) -> Identifier {
    Identifier::new(
        TypeCode::parse(node_process::TYPE_CODE).unwrap(),
        IssuerCode::Uscc(Uscc::parse(AGENCY).unwrap()),
        serial,
        "001",
    )
    .unwrap()
}

/// Runs `act(thread)` on [`THREADS`] threads released at once; returns each thread's results.
fn at_once<T: Send>(act: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let start = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (start, act) = (&start, &act);
                scope.spawn(move || {
                    start.wait();
                    act(t)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// An async runtime as the node runs one: two workers, every request a task on them.
fn node_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The state the region left is the one a replay of its log makes.
fn assert_replays(home: &Home) {
    let check = check_home(home).unwrap();
    assert_eq!(check.differences.count, 0, "{:?}", check.differences.first);
}

#[test]
fn simultaneous_acts_on_one_identifier_take_effect_once_and_read_nothing_under_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (home, region, seal) = open(dir.path());
    let region = Arc::new(region);
    let before = region.sequencer_reads();

    // Every thread issues the shared serials, in an order of its own, and serials of its own.
    let issued = at_once(|t| {
        let mut outcomes = Vec::new();
        for i in 0..SHARED + OWN {
            let serial = match i < SHARED {
                true => format!("S{:02}", (i + t) % SHARED),
                false => format!("T{t:02}X{i:02}"),
            };
            let outcome = region.issue(AGENCY, new(&serial), spec(seal));
            outcomes.push((serial, outcome.map(|c| c.id).map_err(|r| r.code)));
        }
        outcomes
    });
    for shared in 0..SHARED {
        let serial = format!("S{shared:02}");
        let outcomes: Vec<_> = issued
            .iter()
            .flatten()
            .filter(|(s, _)| *s == serial)
            .map(|(_, o)| o)
            .collect();
        assert_eq!(outcomes.len(), THREADS);
        let made: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(made, [&first_version(&serial)], "{serial}: {outcomes:?}");
        for refused in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            assert_eq!(*refused, "DUPLICATE_IDENTIFIER", "{serial}");
        }
    }
    let own = issued.iter().flatten().filter(|(s, _)| s.starts_with('T'));
    for (serial, outcome) in own {
        assert_eq!(outcome.as_ref(), Ok(&first_version(serial)), "{serial}");
    }

    // Every thread renews each shared certificate: one renewal each takes effect.
    let renewed = at_once(|t| {
        (0..SHARED)
            .map(|i| {
                let of = first_version(&format!("S{:02}", (i + t) % SHARED));
                let how = Succession::Renew;
                let outcome = region.issue(AGENCY, Lineage::Successor { of, how }, spec(seal));
                outcome.map(|c| c.id).map_err(|r| r.code)
            })
            .collect::<Vec<_>>()
    });
    let made: Vec<_> = renewed
        .iter()
        .flatten()
        .filter_map(|o| o.as_ref().ok())
        .collect();
    assert_eq!(made.len(), SHARED, "{renewed:?}");
    for id in &made {
        assert_eq!(id.version(), "002");
    }
    for refused in renewed.iter().flatten().filter_map(|o| o.as_ref().err()) {
        assert!(
            ["DUPLICATE_IDENTIFIER", "TRANSITION_NOT_ALLOWED"].contains(refused),
            "{refused}"
        );
    }

    // Every row the log's rules read for those acts was read ahead of the lock.
    let reads = region.sequencer_reads();
    assert_eq!(reads.under_lock, before.under_lock, "{reads:?}");
    // Two rows (the identifier's record, the status index's) for each new issuance at least;
    // renewals refused before they were built read nothing.
    let issuances = (THREADS * (SHARED + OWN)) as u64;
    assert!(reads.ahead - before.ahead >= 2 * issuances, "{reads:?}");

    drop(region);
    assert_replays(&home);
}

/// Issuances from async workers (`Region::issue_new`, the API's path) and from blocking threads
/// (`Region::issue`) at once, on the same serials: each identifier is issued once, the async
/// ones that found the lock busy carry on elsewhere and still answer, and the state is the
/// one a replay of the log makes.
#[test]
fn issuances_from_async_workers_and_blocking_threads_at_once_take_effect_once() {
    let dir = tempfile::tempdir().unwrap();
    let (home, region, seal) = open(dir.path());
    let region = Arc::new(region);
    let runtime = node_runtime();
    let type_code = TypeCode::parse(node_process::TYPE_CODE).unwrap();
    let serial = |i: usize| format!("M{:02}", i % SHARED);
    let tasks: Vec<_> = (0..THREADS * (SHARED + OWN))
        .map(|i| {
            let (region, type_code) = (region.clone(), type_code.clone());
            let serial = match i % 2 {
                0 => serial(i / 2),
                _ => format!("A{i:04}"),
            };
            runtime.spawn(async move {
                let issued = region
                    .issue_new(AGENCY.into(), type_code, serial.clone(), spec(seal), None)
                    .await;
                (serial, issued.map(|c| c.id).map_err(|r| r.code))
            })
        })
        .collect();
    let blocking = at_once(|t| {
        (0..SHARED)
            .map(|i| {
                let serial = serial(i + t);
                let issued = region.issue(AGENCY, new(&serial), spec(seal));
                (serial, issued.map(|c| c.id).map_err(|r| r.code))
            })
            .collect::<Vec<_>>()
    });
    let from_tasks: Vec<_> = runtime.block_on(async {
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    });
    let outcomes: Vec<_> = from_tasks.iter().chain(blocking.iter().flatten()).collect();
    for shared in 0..SHARED {
        let serial = serial(shared);
        let made: Vec<_> = outcomes
            .iter()
            .filter(|(s, _)| *s == serial)
            .filter_map(|(_, o)| o.as_ref().ok())
            .collect();
        assert_eq!(made, [&first_version(&serial)], "{serial}");
    }
    for (serial, outcome) in &outcomes {
        match outcome {
            Ok(id) => assert_eq!(id, &first_version(serial)),
            Err(code) => {
                assert!(serial.starts_with('M'), "{serial}: {code}");
                assert_eq!(*code, "DUPLICATE_IDENTIFIER", "{serial}");
            }
        }
    }
    drop(runtime);
    drop(region);
    assert_replays(&home);
}

/// An async issuance that finds the sequencer lock held (by an act waiting on storage, say)
/// carries on from a blocking thread instead of waiting on an async worker: the workers go on
/// serving meanwhile, and the issuance answers once the lock is free.
#[test]
fn an_async_issuance_that_finds_the_sequencer_busy_waits_off_the_async_workers() {
    let dir = tempfile::tempdir().unwrap();
    let (_home, region, seal) = open(dir.path());
    let region = Arc::new(region);
    let runtime = node_runtime();
    let type_code = TypeCode::parse(node_process::TYPE_CODE).unwrap();
    let held = region.hold_sequencer().unwrap();
    let issuances: Vec<_> = (0..4)
        .map(|i| {
            let (region, type_code) = (region.clone(), type_code.clone());
            runtime.spawn(async move {
                let serial = format!("H{i:02}");
                region
                    .issue_new(AGENCY.into(), type_code, serial, spec(seal), None)
                    .await
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    // More waiting issuances than workers, and the workers still run other tasks (watched
    // from this thread: a timer of the runtime would need a worker to fire).
    let others: Vec<_> = (0..8)
        .map(|i| runtime.spawn(async move { i * 2 }))
        .collect();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !others.iter().all(|t| t.is_finished()) && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let ran = others.iter().filter(|t| t.is_finished()).count();
    assert!(issuances.iter().all(|t| !t.is_finished()));
    drop(held);
    assert_eq!(ran, 8, "the async workers waited on the sequencer lock");
    for (i, issuance) in issuances.into_iter().enumerate() {
        let issued = runtime.block_on(issuance).unwrap().unwrap();
        assert_eq!(issued.id, first_version(&format!("H{i:02}")));
    }
}

/// An issuance whose caller goes away once it is submitted (an HTTP client that disconnects
/// drops the request's future) is still settled: the view moves past it, as it would have for
/// the caller. Checked on redb, where the first poll reaches the wait for the commit (its rows
/// read at once, the lock free); the settling is the same on either engine.
#[test]
fn an_issuance_dropped_while_its_commit_is_awaited_is_still_settled() {
    if tongban_node::storage::test_postgres().is_some() {
        eprintln!("skipped on PostgreSQL: a first poll there waits for the row reader");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (home, region, seal) = open(dir.path());
    let region = Arc::new(region);
    let runtime = node_runtime();
    let before = region.view().unwrap().size;
    let type_code = TypeCode::parse(node_process::TYPE_CODE).unwrap();
    let polled_once = {
        let _entered = runtime.enter();
        let issuance = region.issue_new(AGENCY.into(), type_code, "D01".into(), spec(seal), None);
        futures::FutureExt::now_or_never(issuance)
    };
    assert!(
        polled_once.is_none(),
        "answered before its commit: nothing dropped"
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while region.view().unwrap().size == before && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(region.view().unwrap().size, before + 1);
    drop(runtime);
    drop(region);
    assert_replays(&home);
}
