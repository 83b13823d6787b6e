#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tlog_tiles::{Hash, check_record, check_tree, record_hash};

use super::*;
use crate::storage::{LogName, Storage};
use std::sync::mpsc;
use tongban_core::suite::Suite;

/// The RFC 6962 test leaves (certificate-transparency-go's merkle test data).
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn h(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn hs(list: &[&str]) -> Vec<[u8; 32]> {
    list.iter().map(|s| h(s)).collect()
}

/// A temporary directory and the engine the tests run on (`storage::test_storage`: redb, or
/// PostgreSQL when CI says so), kept while a test's logs are open.
struct Held {
    _dir: tempfile::TempDir,
    storage: Storage,
}

fn held() -> Held {
    let dir = tempfile::tempdir().unwrap();
    let storage = crate::storage::test_storage(dir.path());
    Held { _dir: dir, storage }
}

impl Held {
    /// The log `n` (each `n` another log), opened or created.
    fn open(&self, n: u64, config: LogConfig, indexer: Arc<dyn Indexer>) -> Result<Log, LogError> {
        let name = LogName::Replica {
            region: tongban_core::ids::RegionCode::parse("341200").unwrap(),
            generation: n,
        };
        self.storage.open_log(&name, config, indexer)
    }
}

fn temp_log(config: LogConfig) -> (Held, Log) {
    let held = held();
    let log = held.open(1, config, Arc::new(NoIndex)).unwrap();
    (held, log)
}

fn rfc_log() -> (Held, Log) {
    let (dir, log) = temp_log(LogConfig::default());
    for leaf in LEAVES {
        log.append(hex::decode(leaf).unwrap()).unwrap();
    }
    (dir, log)
}

#[test]
fn rfc6962_roots_for_sizes_1_to_8() {
    let (_dir, log) = rfc_log();
    assert_eq!(log.size().unwrap(), 8);
    for (i, want) in ROOTS.iter().enumerate() {
        assert_eq!(log.root(i as u64 + 1).unwrap(), h(want), "size {}", i + 1);
    }
    // RFC 6962: the empty tree's hash is SHA-256 of nothing.
    assert_eq!(
        log.root(0).unwrap(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
}

#[test]
fn rfc6962_inclusion_and_consistency_proofs() {
    let (_dir, log) = rfc_log();
    assert_eq!(
        log.inclusion_proof(0, 8).unwrap(),
        hs(&[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ])
    );
    assert_eq!(
        log.inclusion_proof(5, 8).unwrap(),
        hs(&[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ])
    );
    assert_eq!(
        log.consistency_proof(2, 5).unwrap(),
        hs(&[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ])
    );
    // Every proof in the small tree checks out with the Go port's verifiers.
    for size in 1..=8u64 {
        let root = Hash(log.root(size).unwrap());
        for index in 0..size {
            let proof: Vec<Hash> = log
                .inclusion_proof(index, size)
                .unwrap()
                .into_iter()
                .map(Hash)
                .collect();
            let leaf = record_hash(&hex::decode(LEAVES[index as usize]).unwrap());
            check_record(&proof, size, root, index, leaf).unwrap();
        }
        for old in 1..=size {
            let proof: Vec<Hash> = log
                .consistency_proof(old, size)
                .unwrap()
                .into_iter()
                .map(Hash)
                .collect();
            check_tree(&proof, size, root, old, Hash(log.root(old).unwrap())).unwrap();
        }
    }
}

#[test]
fn out_of_range_requests_are_errors_not_panics() {
    let (_dir, log) = rfc_log();
    assert!(matches!(
        log.root(9),
        Err(LogError::BeyondSize {
            requested: 9,
            size: 8
        })
    ));
    assert!(log.inclusion_proof(8, 8).is_err());
    assert!(log.inclusion_proof(0, 9).is_err());
    assert!(log.inclusion_proof(u64::MAX, u64::MAX).is_err());
    assert!(log.consistency_proof(0, 5).is_err());
    assert!(log.consistency_proof(6, 5).is_err());
    assert!(log.consistency_proof(5, 9).is_err());
    assert!(log.entries(std::ops::Range { start: 3, end: 2 }).is_err());
    assert!(log.entries(0..9).is_err());
    assert_eq!(log.entries(8..8).unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(log.entry(8).unwrap(), None);
    assert!(log.hash_tile(0, 0, 9).is_err());
    assert!(log.hash_tile(0, 0, 0).is_err());
    assert!(log.hash_tile(0, 0, 257).is_err());
    assert!(log.hash_tile(1, 0, 1).is_err());
    assert!(log.hash_tile(8, 0, 1).is_err());
    assert!(log.hash_tile(255, u64::MAX, 256).is_err());
    assert!(log.hash_tile(0, u64::MAX, 256).is_err());
    assert!(log.entry_bundle(0, 9).is_err());
    assert!(log.entry_bundle(u64::MAX, 256).is_err());
    assert!(log.entry_bundle(1, 1).is_err());
}

#[test]
fn hash_tile_and_entry_bundle_at_level_0() {
    let (_dir, log) = rfc_log();
    let tile = log.hash_tile(0, 0, 8).unwrap();
    let want: Vec<u8> = LEAVES
        .iter()
        .flat_map(|l| record_hash(&hex::decode(l).unwrap()).0)
        .collect();
    assert_eq!(tile, want);
    // A partial tile is a prefix of the wider one.
    assert_eq!(log.hash_tile(0, 0, 3).unwrap(), want[..3 * 32]);

    let bundle = log.entry_bundle(0, 3).unwrap();
    assert_eq!(bundle, [0, 0, 0, 1, 0x00, 0, 1, 0x10]);
}

#[test]
fn hash_tiles_above_level_0_hold_subtree_roots() {
    let (_dir, log) = temp_log(LogConfig::default());
    let entries: Vec<Vec<u8>> = (0..600u32).map(|i| i.to_be_bytes().to_vec()).collect();
    log.append_many(entries.clone()).unwrap();
    // Level 1, tile 0 holds the roots of entries [256k, 256(k+1)); 600 entries complete two.
    let tile = log.hash_tile(1, 0, 2).unwrap();
    assert_eq!(tile.len(), 64);
    let mut scratch = temp_log(LogConfig::default());
    scratch.1.append_many(entries[..256].to_vec()).unwrap();
    assert_eq!(tile[..32], scratch.1.root(256).unwrap());
    drop(scratch.1);
    scratch = temp_log(LogConfig::default());
    scratch.1.append_many(entries[256..512].to_vec()).unwrap();
    assert_eq!(tile[32..], scratch.1.root(256).unwrap());
    assert!(log.hash_tile(1, 0, 3).is_err());
    // Level-0 tile 2 is partial: 88 entries.
    assert_eq!(log.hash_tile(0, 2, 88).unwrap().len(), 88 * 32);
    assert!(log.hash_tile(0, 2, 89).is_err());
    let bundle = log.entry_bundle(2, 88).unwrap();
    assert_eq!(bundle.len(), 88 * (2 + 4));
    assert_eq!(bundle[..6], [0, 4, 0, 0, 2, 0]);
}

#[test]
fn entry_bundle_encoding() {
    let encoded = encode_entry_bundle(&[b"ab".to_vec(), vec![], vec![7; 300]]).unwrap();
    assert_eq!(encoded[..4], [0, 2, b'a', b'b']);
    assert_eq!(encoded[4..6], [0, 0]);
    assert_eq!(encoded[6..8], [1, 44]);
    assert_eq!(encoded.len(), 8 + 300);
    assert!(encode_entry_bundle(&[vec![0; 65_536]]).is_err());
}

#[test]
fn oversized_entries_are_refused_and_nothing_is_written() {
    let (_dir, log) = temp_log(LogConfig {
        max_batch: 16,
        max_entry: 10,
        ..LogConfig::default()
    });
    log.append(vec![1; 10]).unwrap();
    assert!(matches!(
        log.append(vec![1; 11]),
        Err(LogError::EntryTooLarge { len: 11, max: 10 })
    ));
    assert!(
        log.append_many(vec![vec![1], vec![2; 11]]).is_err(),
        "one oversized entry refuses the whole call"
    );
    assert_eq!(log.size().unwrap(), 1);
    assert_eq!(log.append_many(vec![]).unwrap(), 1..1);
}

#[test]
fn configurations_that_cannot_work_are_refused() {
    let held = held();
    for config in [
        LogConfig {
            max_batch: 0,
            max_entry: 10,
            ..LogConfig::default()
        },
        LogConfig {
            max_batch: 1,
            max_entry: 65_536,
            ..LogConfig::default()
        },
        LogConfig {
            max_batch: 1,
            max_entry: 0,
            ..LogConfig::default()
        },
    ] {
        assert!(matches!(
            held.open(1, config, Arc::new(NoIndex)),
            Err(LogError::Config(_))
        ));
    }
}

#[test]
fn checkpoints_never_move_backwards_or_past_the_log() {
    let (_dir, log) = rfc_log();
    assert_eq!(log.last_checkpoint().unwrap(), None);
    log.store_checkpoint(5, b"five".to_vec()).unwrap();
    assert!(matches!(
        log.store_checkpoint(4, b"four".to_vec()),
        Err(LogError::CheckpointRefused { requested: 4, .. })
    ));
    assert!(matches!(
        log.store_checkpoint(9, b"nine".to_vec()),
        Err(LogError::CheckpointRefused { requested: 9, .. })
    ));
    assert_eq!(log.last_checkpoint().unwrap(), Some((5, b"five".to_vec())));
    // Same size again (e.g. with more cosignatures) replaces it.
    log.store_checkpoint(5, b"five, cosigned".to_vec()).unwrap();
    log.store_checkpoint(8, b"eight".to_vec()).unwrap();
    assert_eq!(log.last_checkpoint().unwrap(), Some((8, b"eight".to_vec())));
}

struct Panicky;

impl Indexer for Panicky {
    fn index_keys(&self, entry: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        assert!(entry != b"boom", "indexer refuses boom");
        vec![("first", entry[..1.min(entry.len())].to_vec())]
    }
}

#[test]
fn a_failed_batch_fails_its_callers_and_keeps_everything_acknowledged() {
    let held = held();
    let log = held
        .open(1, LogConfig::default(), Arc::new(Panicky))
        .unwrap();
    log.append(b"a".to_vec()).unwrap();
    let root = log.root(1).unwrap();
    let err = log
        .append_many(vec![b"b".to_vec(), b"boom".to_vec()])
        .unwrap_err();
    assert!(matches!(err, LogError::BatchFailed(_)), "{err}");
    assert_eq!(log.size().unwrap(), 1);
    assert_eq!(log.root(1).unwrap(), root);
    assert_eq!(log.lookup("first", b"b").unwrap(), Vec::<u64>::new());
    // The writer survived and goes on from where the log was.
    assert_eq!(log.append(b"c".to_vec()).unwrap(), 1);
    assert_eq!(
        log.entries(0..2).unwrap(),
        vec![b"a".to_vec(), b"c".to_vec()]
    );
    assert_eq!(log.lookup("first", b"c").unwrap(), vec![1]);
}

#[test]
fn a_log_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    assert_send_sync::<LogError>();
}

/// A log whose writer thread is `writer`, to see what callers get when the writer is gone.
fn log_with_writer(dir: &tempfile::TempDir, writer: impl FnOnce(mpsc::Receiver<Command>)) -> Log {
    let (engine, _) = RedbEngine::open(
        &dir.path().join("log.redb"),
        1 << 20,
        Contents::Entries,
        Suite::Ed25519,
    )
    .unwrap();
    let (sender, receiver) = mpsc::channel();
    writer(receiver);
    Log {
        inner: Arc::new(Inner {
            engine: Arc::new(engine),
            config: LogConfig::default(),
            contents: Contents::Entries,
            suite: Suite::Ed25519,
            sender: Some(sender),
            writer: None,
            epoch: Arc::default(),
        }),
    }
}

#[test]
fn a_writer_that_is_gone_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_writer(&dir, drop);
    assert!(matches!(log.append(vec![1]), Err(LogError::WriterClosed)));
    assert!(matches!(
        log.store_checkpoint(0, vec![]),
        Err(LogError::WriterClosed)
    ));
    assert!(matches!(log.rebuild_indexes(), Err(LogError::WriterClosed)));
    // Reads do not need the writer.
    assert_eq!(log.size().unwrap(), 0);
}

#[test]
fn a_writer_that_dies_holding_a_request_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with_writer(&dir, |receiver| {
        // Takes one request and dies without answering, as a panicking writer would.
        std::thread::spawn(move || drop(receiver.recv()));
    });
    assert!(matches!(log.append(vec![1]), Err(LogError::WriterClosed)));
    assert!(matches!(log.append(vec![1]), Err(LogError::WriterClosed)));
}

#[test]
fn blobs_are_found_by_their_entry_and_digest_only() {
    let (_dir, log) = temp_log(LogConfig::default());
    log.append(b"first".to_vec()).unwrap();
    let digest = [7u8; 32];
    let range = log
        .submit(
            vec![b"names the blob".to_vec()],
            vec![Blob {
                entry: 0,
                digest,
                bytes: b"bytes".to_vec(),
            }],
            Vec::new(),
        )
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(range, 1..2);
    assert_eq!(log.blob(1, &digest).unwrap(), Some(b"bytes".to_vec()));
    assert_eq!(log.blob(0, &digest).unwrap(), None);
    assert_eq!(log.blob(1, &[8u8; 32]).unwrap(), None);
}

#[test]
fn a_tree_only_log_keeps_hashes_state_and_checkpoints_but_no_entry() {
    let tree = LogConfig {
        contents: Contents::Tree,
        ..LogConfig::default()
    };
    let held = held();
    let log = held.open(1, tree.clone(), Arc::new(NoIndex)).unwrap();
    assert_eq!(log.contents(), Contents::Tree);
    let put = StateOp::Put {
        kind: 1,
        key: b"k".to_vec(),
        value: b"v".to_vec(),
    };
    let leaves: Vec<Vec<u8>> = LEAVES.iter().map(|l| hex::decode(l).unwrap()).collect();
    log.submit(leaves[..3].to_vec(), Vec::new(), vec![put])
        .unwrap()
        .wait()
        .unwrap();
    log.append_many(leaves[3..].to_vec()).unwrap();
    log.store_checkpoint(8, b"checkpoint".to_vec()).unwrap();

    // The tree is whole: the same roots, proofs and leaf hashes as a log with its entries.
    let (_full_dir, full) = rfc_log();
    for size in 1..=8 {
        assert_eq!(log.root(size).unwrap(), full.root(size).unwrap());
        assert_eq!(log.root(size).unwrap(), h(ROOTS[size as usize - 1]));
    }
    assert_eq!(
        log.consistency_proof(3, 8).unwrap(),
        full.consistency_proof(3, 8).unwrap()
    );
    let hashes = log.leaf_hashes(2..5).unwrap();
    let want: Vec<[u8; 32]> = leaves[2..5].iter().map(|l| record_hash(l).0).collect();
    assert_eq!(hashes, want);
    assert_eq!(full.leaf_hashes(2..5).unwrap(), want);
    assert!(matches!(
        log.leaf_hashes(7..9),
        Err(LogError::BeyondSize { .. })
    ));
    assert_eq!(
        log.state().unwrap().get(1, b"k").unwrap(),
        Some(b"v".to_vec())
    );
    // No entry is kept, and a read says so rather than reporting a corrupt file.
    for refused in [
        log.entries(0..1).err(),
        log.entry(0).err(),
        log.entry_bundle(0, 8).err(),
    ] {
        assert!(
            matches!(refused, Some(LogError::EntriesNotHeld)),
            "{refused:?}"
        );
    }
    let blob = Blob {
        entry: 0,
        digest: [7; 32],
        bytes: b"personal data".to_vec(),
    };
    let refused = log.submit(vec![b"x".to_vec()], vec![blob], Vec::new());
    assert!(refused.and_then(|p| p.wait()).is_err());
    assert_eq!(log.size().unwrap(), 8);
    drop(log);

    // The file keeps what it was made with, whatever a later opening asks for; its checks pass.
    let reopened = held
        .open(1, LogConfig::default(), Arc::new(NoIndex))
        .unwrap();
    assert_eq!(reopened.contents(), Contents::Tree);
    assert_eq!(reopened.size().unwrap(), 8);
    assert_eq!(reopened.root(8).unwrap(), h(ROOTS[7]));
    assert_eq!(
        reopened.last_checkpoint().unwrap(),
        Some((8, b"checkpoint".to_vec()))
    );
    drop(reopened);
    // A log with its entries opened as tree-only stays whole.
    drop(
        held.open(2, LogConfig::default(), Arc::new(NoIndex))
            .unwrap(),
    );
    let full = held.open(2, tree, Arc::new(NoIndex)).unwrap();
    assert_eq!(full.contents(), Contents::Entries);
}

#[test]
fn state_changes_are_committed_with_their_entries_and_read_in_snapshots() {
    let (_dir, log) = temp_log(LogConfig::default());
    let put = |key: &[u8], value: &[u8]| StateOp::Put {
        kind: 1,
        key: key.to_vec(),
        value: value.to_vec(),
    };
    let before = log.state().unwrap();
    log.submit(vec![b"a".to_vec()], Vec::new(), vec![put(b"k", b"1")])
        .unwrap()
        .wait()
        .unwrap();
    log.submit(
        vec![b"b".to_vec(), b"c".to_vec()],
        Vec::new(),
        vec![
            put(b"k", b"2"),
            StateOp::Delete {
                kind: 1,
                key: b"gone".to_vec(),
            },
        ],
    )
    .unwrap()
    .wait()
    .unwrap();
    // A snapshot opened earlier keeps seeing its own moment.
    assert_eq!(before.size(), 0);
    assert_eq!(before.get(1, b"k").unwrap(), None);
    let now = log.state().unwrap();
    assert_eq!(now.size(), 3);
    assert_eq!(now.get(1, b"k").unwrap(), Some(b"2".to_vec()));
    let mut rows = Vec::new();
    now.scan(1, b"", |k, v| {
        rows.push((k.to_vec(), v.to_vec()));
        true
    })
    .unwrap();
    assert_eq!(rows, vec![(b"k".to_vec(), b"2".to_vec())]);
    // Caught up already: nothing to bring the state to.
    assert!(log.catch_up_state(3, Vec::new()).is_err());
}

#[test]
fn rows_read_at_once_are_in_the_order_asked_and_of_one_state_size() {
    let (_dir, log) = temp_log(LogConfig::default());
    let put = |kind: u8, key: &[u8], value: &[u8]| StateOp::Put {
        kind,
        key: key.to_vec(),
        value: value.to_vec(),
    };
    assert_eq!(log.rows_at(&[]).unwrap(), (0, Vec::new()));
    log.submit(
        vec![b"a".to_vec(), b"b".to_vec()],
        Vec::new(),
        vec![
            put(1, b"k", b"1"),
            put(2, b"k", b"2"),
            put(1, b"", b"empty"),
        ],
    )
    .unwrap()
    .wait()
    .unwrap();
    let keys = [
        (2, b"k".to_vec()),
        (1, b"absent".to_vec()),
        (1, b"k".to_vec()),
        (2, b"k".to_vec()),
        (1, Vec::new()),
        (3, b"k".to_vec()),
    ];
    let (size, rows) = log.rows_at(&keys).unwrap();
    assert_eq!(size, 2);
    assert_eq!(
        rows,
        vec![
            Some(b"2".to_vec()),
            None,
            Some(b"1".to_vec()),
            Some(b"2".to_vec()),
            Some(b"empty".to_vec()),
            None,
        ]
    );
    assert_eq!(log.rows_at(&[]).unwrap(), (2, Vec::new()));
}

#[test]
fn patches_apply_in_order_to_stored_new_and_rewritten_rows_and_fail_beyond_a_row() {
    let (_dir, log) = temp_log(LogConfig::default());
    let patch = |key: &[u8], offset: usize, byte: u8| StateOp::Patch {
        kind: 4,
        key: key.to_vec(),
        len: 3,
        fill: b'.',
        offset,
        byte,
    };
    let put = |key: &[u8], value: &[u8]| StateOp::Put {
        kind: 4,
        key: key.to_vec(),
        value: value.to_vec(),
    };
    let delete = |key: &[u8]| StateOp::Delete {
        kind: 4,
        key: key.to_vec(),
    };
    let commit = |ops: Vec<StateOp>| log.submit(vec![b"e".to_vec()], Vec::new(), ops)?.wait();
    commit(vec![
        patch(b"a", 0, b'x'),
        put(b"b", b"bbb"),
        put(b"c", b"ccc"),
    ])
    .unwrap();
    commit(vec![
        // Stored, patched twice; stored, patched after a put; deleted, then patched from
        // nothing; new, patched twice.
        patch(b"a", 2, b'z'),
        patch(b"a", 1, b'y'),
        put(b"b", b"BBB"),
        patch(b"b", 0, b'!'),
        delete(b"c"),
        patch(b"c", 1, b'c'),
        patch(b"n", 2, b'1'),
        patch(b"n", 2, b'2'),
    ])
    .unwrap();
    let keys: Vec<_> = [&b"a"[..], b"b", b"c", b"n"]
        .iter()
        .map(|k| (4, k.to_vec()))
        .collect();
    let rows = |log: &Log| log.rows_at(&keys).unwrap().1;
    let expected = [&b"xyz"[..], b"!BB", b".c.", b"..2"].map(|v| Some(v.to_vec()));
    assert_eq!(rows(&log), expected);
    // A patch beyond the stored row fails its batch, which leaves nothing behind.
    assert!(commit(vec![patch(b"z", 0, b'z'), patch(b"a", 3, b'!')]).is_err());
    assert_eq!(rows(&log), expected);
    assert_eq!(log.rows_at(&[(4, b"z".to_vec())]).unwrap(), (2, vec![None]));
}

#[test]
fn the_frontier_read_from_stored_hashes_has_the_tree_root_at_every_size() {
    let (_dir, log) = temp_log(LogConfig::default());
    for n in 0..40u64 {
        let frontier = log.frontier(n).unwrap();
        assert_eq!(frontier.size(), n);
        assert_eq!(frontier.root(), log.root(n).unwrap(), "size {n}");
        log.append(n.to_be_bytes().to_vec()).unwrap();
    }
    assert!(log.frontier(41).is_err());
}

/// An engine that fails one write of its choosing, either before writing anything or after the
/// write is committed (as a database connection lost after COMMIT was sent would).
struct Flaky {
    inner: Arc<dyn Engine>,
    next: std::sync::Mutex<Option<Fault>>,
}

#[derive(Clone, Copy)]
enum Fault {
    Before,
    After,
}

impl Flaky {
    fn fail_next(&self, fault: Fault) {
        *self.next.lock().unwrap() = Some(fault);
    }
}

fn lost() -> LogError {
    LogError::Storage("the connection was lost".into())
}

impl Engine for Flaky {
    fn write(&self, set: &WriteSet<'_>) -> Result<(), LogError> {
        match self.next.lock().unwrap().take() {
            Some(Fault::Before) => Err(lost()),
            Some(Fault::After) => {
                self.inner.write(set)?;
                Err(lost())
            }
            None => self.inner.write(set),
        }
    }

    fn read(&self) -> Result<Box<dyn Snapshot + '_>, LogError> {
        self.inner.read()
    }

    fn state(&self) -> Result<Box<dyn StateView>, LogError> {
        self.inner.state()
    }

    fn rebuild_index_rows(&self, derive: &mut IndexRows<'_>) -> Result<(), LogError> {
        self.inner.rebuild_index_rows(derive)
    }
}

/// A log over a [`Flaky`] engine on the tests' storage (kept alive by the first value).
fn flaky_log() -> (Held, Arc<Flaky>, Log) {
    let held = held();
    let (inner, opened) = held
        .storage
        .open_engine(&LogName::Region, &LogConfig::default())
        .unwrap();
    let engine = Arc::new(Flaky {
        inner,
        next: std::sync::Mutex::new(None),
    });
    let log = Log::over(
        engine.clone(),
        opened,
        LogConfig::default(),
        Arc::new(NoIndex),
    )
    .unwrap();
    (held, engine, log)
}

#[test]
fn a_write_the_engine_fails_is_never_acknowledged_and_one_it_committed_is_never_overwritten() {
    let (_held, engine, log) = flaky_log();
    log.append(b"a".to_vec()).unwrap();

    // Failed before anything was written: the caller is told, the size stays.
    engine.fail_next(Fault::Before);
    let err = log.append(b"lost".to_vec()).unwrap_err();
    assert!(matches!(err, LogError::BatchFailed(_)), "{err}");
    assert_eq!(log.size().unwrap(), 1);
    assert_eq!(log.append(b"b".to_vec()).unwrap(), 1);

    // Failed after the commit: the caller is told it failed (it cannot know better), and the
    // writer takes the size from storage again, so the next entry does not take index 2 twice.
    engine.fail_next(Fault::After);
    assert!(log.append(b"c".to_vec()).is_err());
    assert_eq!(log.size().unwrap(), 3);
    assert_eq!(log.append(b"d".to_vec()).unwrap(), 3);
    assert_eq!(
        log.entries(0..4).unwrap(),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]
    );
    let leaves: Vec<[u8; 32]> = [b"a", b"b", b"c", b"d"]
        .iter()
        .map(|e| record_hash(&e[..]).0)
        .collect();
    assert_eq!(log.leaf_hashes(0..4).unwrap(), leaves);

    // A checkpoint committed despite the error still bars going back below it.
    engine.fail_next(Fault::After);
    assert!(log.store_checkpoint(4, b"four".to_vec()).is_err());
    assert!(matches!(
        log.store_checkpoint(3, b"three".to_vec()),
        Err(LogError::CheckpointRefused { .. })
    ));
    assert_eq!(log.last_checkpoint().unwrap(), Some((4, b"four".to_vec())));
}

/// Submits one entry built in `epoch`, with nothing beside it.
fn submit_in(log: &Log, epoch: u64, entry: &[u8]) -> Result<Pending<Range<u64>>, LogError> {
    log.submit_in(
        epoch,
        vec![entry.to_vec()],
        Vec::new(),
        Vec::new(),
        Vec::new(),
    )
}

#[test]
fn what_was_built_on_a_failed_batch_never_enters_the_log() {
    let (_held, engine, log) = flaky_log();
    let epoch = log.epoch();
    submit_in(&log, epoch, b"a").unwrap().wait().unwrap();
    // A sequencer applied "b", then "c" on top of it; "b"'s batch fails.
    engine.fail_next(Fault::Before);
    let b = submit_in(&log, epoch, b"b").unwrap();
    assert!(matches!(b.wait(), Err(LogError::BatchFailed(_))));
    let c = submit_in(&log, epoch, b"c").unwrap();
    assert!(
        matches!(c.wait(), Err(LogError::Stale { built, current }) if built == epoch && current == epoch + 1)
    );
    // Appends that were not built on earlier submissions (a replica's) are not refused.
    assert_eq!(log.append(b"plain".to_vec()).unwrap(), 1);
    // A fence answers once everything before it is answered, and starts an epoch of its own.
    let fenced = log.fence().unwrap();
    assert_eq!(fenced, epoch + 2);
    assert!(submit_in(&log, epoch + 1, b"x").unwrap().wait().is_err());
    submit_in(&log, fenced, b"d").unwrap().wait().unwrap();
    assert_eq!(
        log.entries(0..3).unwrap(),
        vec![b"a".to_vec(), b"plain".to_vec(), b"d".to_vec()]
    );
}

#[test]
fn request_rows_commit_with_their_entries_and_expire() {
    let (_held, engine, log) = flaky_log();
    let row = |key: &[u8], created: u64, record: &[u8]| RequestRow {
        key: key.to_vec(),
        created,
        record: record.to_vec(),
    };
    let epoch = log.epoch();
    log.submit_in(
        epoch,
        vec![b"a".to_vec()],
        Vec::new(),
        Vec::new(),
        vec![row(b"k1", 100, b"marker")],
    )
    .unwrap()
    .wait()
    .unwrap();
    assert_eq!(
        log.request_row(b"k1").unwrap(),
        Some((100, b"marker".to_vec()))
    );
    // A batch that fails writes its request rows no more than its entries.
    engine.fail_next(Fault::Before);
    let failed = log
        .submit_in(
            epoch,
            vec![b"b".to_vec()],
            Vec::new(),
            Vec::new(),
            vec![row(b"k2", 100, b"marker")],
        )
        .unwrap()
        .wait();
    assert!(failed.is_err());
    assert_eq!(log.request_row(b"k2").unwrap(), None);
    // An answer replaces its marker; rows made before the pruning time go.
    log.record_request(row(b"k1", 100, b"answer"), 0).unwrap();
    assert_eq!(
        log.request_row(b"k1").unwrap(),
        Some((100, b"answer".to_vec()))
    );
    log.record_request(row(b"k3", 200, b"answer"), 150).unwrap();
    assert_eq!(log.request_row(b"k1").unwrap(), None);
    assert_eq!(
        log.request_row(b"k3").unwrap(),
        Some((200, b"answer".to_vec()))
    );
    assert_eq!(log.size().unwrap(), 1);
}

#[test]
fn reads_far_beyond_the_log_find_nothing_on_every_engine() {
    let (_held, log) = rfc_log();
    log.store_checkpoint(8, b"eight".to_vec()).unwrap();
    assert_eq!(
        log.checkpoints_after(Some(u64::MAX - 1), 1).unwrap(),
        Vec::new()
    );
    assert_eq!(
        log.checkpoints_after(Some(i64::MAX as u64), 1).unwrap(),
        Vec::new()
    );
    assert_eq!(log.entry(u64::MAX).unwrap(), None);
    assert_eq!(log.blob(u64::MAX, &[0; 32]).unwrap(), None);
    assert!(log.inclusion_proof(u64::MAX, 8).is_err());
}

#[test]
fn one_write_may_store_one_checkpoint_size_twice_and_the_last_wins() {
    let held = held();
    let (engine, _) = held
        .storage
        .open_engine(&LogName::Region, &LogConfig::default())
        .unwrap();
    engine
        .write(&WriteSet {
            checkpoints: vec![(0, b"first"), (0, b"second")],
            ..WriteSet::default()
        })
        .unwrap();
    assert_eq!(
        engine.read().unwrap().last_checkpoint().unwrap(),
        Some((0, b"second".to_vec()))
    );
}

#[test]
fn an_sm2_log_keeps_an_sm3_tree_and_refuses_to_open_as_the_other_suite() {
    use tongban_core::log::tree;
    let held = held();
    let sm2 = LogConfig {
        suite: Suite::Sm2,
        ..LogConfig::default()
    };
    let entries: Vec<Vec<u8>> = (0u32..300).map(|i| i.to_be_bytes().to_vec()).collect();
    {
        let log = held.open(1, sm2.clone(), Arc::new(NoIndex)).unwrap();
        assert_eq!(log.suite(), Suite::Sm2);
        log.append_many(entries.clone()).unwrap();
        let root = log.root(300).unwrap();
        let mut memory = tongban_core::log::proof::MemoryTree::new(Suite::Sm2);
        for e in &entries {
            memory.append(e).unwrap();
        }
        assert_eq!(root, memory.root(300).unwrap());
        assert_ne!(root, {
            let mut sha = tongban_core::log::proof::MemoryTree::new(Suite::Ed25519);
            entries.iter().for_each(|e| {
                sha.append(e).unwrap();
            });
            sha.root(300).unwrap()
        });
        let proof = log.inclusion_proof(77, 300).unwrap();
        let leaf = tree::leaf_hash(Suite::Sm2, &entries[77]);
        assert!(tree::check_record(Suite::Sm2, &proof, 300, root, 77, leaf));
        let old = log.root(100).unwrap();
        let consistency = log.consistency_proof(100, 300).unwrap();
        assert!(tree::check_tree(
            Suite::Sm2,
            &consistency,
            300,
            root,
            100,
            old
        ));
        assert_eq!(
            log.hash_tile(0, 0, 256).unwrap(),
            memory.tile(0, 0, 256).unwrap()
        );
        assert_eq!(log.frontier(300).unwrap().root(), root);
    }
    assert!(matches!(
        held.open(1, LogConfig::default(), Arc::new(NoIndex)),
        Err(LogError::SuiteMismatch {
            file: Suite::Sm2,
            wanted: Suite::Ed25519
        })
    ));
    assert_eq!(
        held.open(1, sm2, Arc::new(NoIndex))
            .unwrap()
            .size()
            .unwrap(),
        300
    );
}
