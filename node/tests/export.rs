//! A node's log exported as an audit bundle replays clean; the checkpoint signer refuses forks; the
//! Tongban indexes answer lookups.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tongban_core::log::audit::{AuditInput, decode_entries, replay};
use tongban_core::log::entry::LogEntry;
use tongban_core::testkit::log::{ORIGIN, sample};
use tongban_core::testkit::{key, time};
use tongban_node::checkpoints::{CheckpointError, CheckpointSigner};
use tongban_node::entry_index::{BY_IDENTIFIER, BY_KIND, BY_MONTH, EntryIndexer};
use tongban_node::export::write_audit_bundle;
use tongban_node::log::{Log, LogConfig};

fn open(dir: &tempfile::TempDir) -> Log {
    Log::open(
        &dir.path().join("log.redb"),
        LogConfig::default(),
        Arc::new(EntryIndexer),
    )
    .unwrap()
}

#[test]
fn exported_bundle_replays_clean() {
    let sample = sample().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let signer = CheckpointSigner::new(ORIGIN, key("log 341200").unwrap()).unwrap();
    assert_eq!(signer.vkey().unwrap(), sample.vkey);
    for chunk in sample.entries.chunks(4) {
        log.append_many(chunk.to_vec()).unwrap();
        signer.sign(&log).unwrap();
    }
    let out = dir.path().join("audit");
    assert_eq!(
        write_audit_bundle(&log, &signer.vkey().unwrap(), &sample.trust_bundle, &out).unwrap(),
        11
    );

    let entries = decode_entries(&std::fs::read(out.join("entries")).unwrap()).unwrap();
    assert_eq!(entries, sample.entries);
    let mut checkpoints: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .map(|f| {
            let path = f.unwrap().path();
            (path.display().to_string(), std::fs::read(path).unwrap())
        })
        .collect();
    checkpoints.sort();
    assert_eq!(checkpoints.len(), 3);
    let vkey = std::fs::read_to_string(out.join("log.vkey")).unwrap();
    let trust = std::fs::read(out.join("trust.tbt")).unwrap();
    let report = replay(&AuditInput {
        log_key: &vkey,
        trust_bundle: &trust,
        entries: &entries,
        checkpoints: &checkpoints,
        hash_tiles: &[],
    });
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(
        (report.checkpoints_verified, report.statistics.issued),
        (3, 4)
    );
}

#[test]
fn the_signer_refuses_to_sign_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    let signer = CheckpointSigner::new(ORIGIN, key("log 341200").unwrap()).unwrap();
    log.append_many(vec![b"a".to_vec(), b"b".to_vec()]).unwrap();
    signer.sign(&log).unwrap();
    // A checkpoint of another tree of the same size sneaks into the store (a restored backup of
    // another log, say): the next signature must be refused, not fork the log.
    let other = tempfile::tempdir().unwrap();
    let other_log = open(&other);
    other_log
        .append_many(vec![b"x".to_vec(), b"y".to_vec()])
        .unwrap();
    let foreign = signer.sign(&other_log).unwrap();
    log.store_checkpoint(2, foreign.into_bytes()).unwrap();
    log.append(b"c".to_vec()).unwrap();
    assert!(matches!(
        signer.sign(&log),
        Err(CheckpointError::Fork { last: 2, size: 3 })
    ));
}

#[test]
fn entries_are_indexed_and_indexes_rebuild() {
    let sample = sample().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir);
    log.append_many(sample.entries.clone()).unwrap();
    // The second certificate: issued at entry 3, suspended at entry 4.
    let (_, issued) = LogEntry::open(&sample.entries[3]).unwrap();
    let id = issued
        .act
        .identifier()
        .unwrap()
        .as_str()
        .as_bytes()
        .to_vec();
    assert_eq!(log.lookup(BY_IDENTIFIER, &id).unwrap(), vec![3, 4]);
    assert_eq!(log.lookup(BY_KIND, b"seal.registered").unwrap(), vec![0, 1]);
    let january = time(tongban_core::testkit::T0).unwrap().to_rfc3339()[..7].to_owned();
    assert_eq!(log.lookup(BY_MONTH, january.as_bytes()).unwrap().len(), 5);
    log.rebuild_indexes().unwrap();
    assert_eq!(log.lookup(BY_KIND, b"seal.registered").unwrap(), vec![0, 1]);
}
