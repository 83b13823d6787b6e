//! The durable log through its public API: proofs against an independent tree, concurrent
//! appenders, indexes, reopening.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{Rng, merkle_root, seed};
use tlog_tiles::{Hash, check_record, check_tree, record_hash};
use tongban_node::log::{Indexer, Log, LogConfig, LogError, NoIndex};

fn open(dir: &tempfile::TempDir, indexer: Arc<dyn Indexer>) -> Log {
    Log::open(&dir.path().join("log.redb"), LogConfig::default(), indexer).unwrap()
}

fn hashes(proof: Vec<[u8; 32]>) -> Vec<Hash> {
    proof.into_iter().map(Hash).collect()
}

#[test]
fn proofs_at_random_sizes_verify_and_any_flipped_bit_fails() {
    let mut rng = Rng(seed());
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, Arc::new(NoIndex));
    let entries: Vec<Vec<u8>> = (0..700)
        .map(|i| {
            let len = rng.between(0, 64) as usize;
            let mut e = format!("entry {i} ").into_bytes();
            e.extend((0..len).map(|_| rng.next() as u8));
            e
        })
        .collect();
    // Uneven batches, so batch boundaries fall everywhere in the tree.
    let mut at = 0;
    while at < entries.len() {
        let n = (rng.between(1, 90) as usize).min(entries.len() - at);
        let range = log.append_many(entries[at..at + n].to_vec()).unwrap();
        assert_eq!(range, at as u64..(at + n) as u64);
        at += n;
    }
    let size = entries.len() as u64;

    for _ in 0..60 {
        let new = rng.between(1, size);
        let root = log.root(new).unwrap();
        assert_eq!(root, merkle_root(&entries[..new as usize]), "root at {new}");

        let index = rng.between(0, new - 1);
        let mut proof = hashes(log.inclusion_proof(index, new).unwrap());
        let leaf = record_hash(&entries[index as usize]);
        check_record(&proof, new, Hash(root), index, leaf).unwrap();
        for i in 0..proof.len() {
            for bit in [0u8, 7, 255] {
                let (byte, mask) = (usize::from(bit) / 8, 1u8 << (bit % 8));
                proof[i].0[byte] ^= mask;
                assert!(check_record(&proof, new, Hash(root), index, leaf).is_err());
                proof[i].0[byte] ^= mask;
            }
        }
        let mut bad_root = root;
        bad_root[rng.between(0, 31) as usize] ^= 1 << rng.between(0, 7);
        assert!(check_record(&proof, new, Hash(bad_root), index, leaf).is_err());

        let old = rng.between(1, new);
        let old_root = log.root(old).unwrap();
        let mut proof = hashes(log.consistency_proof(old, new).unwrap());
        check_tree(&proof, new, Hash(root), old, Hash(old_root)).unwrap();
        for i in 0..proof.len() {
            for bit in 0..256u16 {
                let (byte, mask) = (usize::from(bit / 8), 1u8 << (bit % 8));
                proof[i].0[byte] ^= mask;
                assert!(
                    check_tree(&proof, new, Hash(root), old, Hash(old_root)).is_err(),
                    "flipped bit {bit} of hash {i} in consistency proof {old}->{new}"
                );
                proof[i].0[byte] ^= mask;
            }
        }
        let mut bad_old = old_root;
        bad_old[rng.between(0, 31) as usize] ^= 1 << rng.between(0, 7);
        assert!(check_tree(&proof, new, Hash(root), old, Hash(bad_old)).is_err());
        assert!(check_tree(&proof, new, Hash(bad_root), old, Hash(old_root)).is_err());
    }
}

#[test]
fn concurrent_appenders_get_distinct_durable_indexes() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, Arc::new(NoIndex));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| {
                        let entry = format!("thread {t} entry {i}").into_bytes();
                        (log.append(entry.clone()).unwrap(), entry)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let acked: Vec<(u64, Vec<u8>)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();

    let total = (THREADS * PER_THREAD) as u64;
    let distinct: HashSet<u64> = acked.iter().map(|(i, _)| *i).collect();
    assert_eq!(distinct.len() as u64, total);
    assert_eq!(log.size().unwrap(), total);
    for (index, entry) in &acked {
        assert_eq!(log.entry(*index).unwrap().as_ref(), Some(entry));
    }
    let all = log.entries(0..total).unwrap();
    assert_eq!(log.root(total).unwrap(), merkle_root(&all));
}

/// Indexes entries by their first word and, for entries naming a holder, by that holder.
struct Words;

impl Indexer for Words {
    fn index_keys(&self, entry: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        let text = String::from_utf8_lossy(entry);
        let mut words = text.split(' ');
        let mut keys = vec![("kind", words.next().unwrap_or_default().as_bytes().to_vec())];
        if let Some(holder) = words.find_map(|w| w.strip_prefix("holder=")) {
            keys.push(("holder", holder.as_bytes().to_vec()));
        }
        keys
    }
}

#[test]
fn lookups_find_index_rows_and_a_rebuild_gives_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, Arc::new(Words));
    let entries: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            let kind = ["issue", "revoke", "suspend"][i % 3];
            format!("{kind} n={i} holder=h{}", i % 7).into_bytes()
        })
        .collect();
    for chunk in entries.chunks(45) {
        log.append_many(chunk.to_vec()).unwrap();
    }
    let expect = |pred: &dyn Fn(usize) -> bool| -> Vec<u64> {
        (0..entries.len())
            .filter(|&i| pred(i))
            .map(|i| i as u64)
            .collect()
    };
    let queries: Vec<(&'static str, Vec<u8>, Vec<u64>)> = vec![
        ("kind", b"revoke".to_vec(), expect(&|i| i % 3 == 1)),
        ("holder", b"h3".to_vec(), expect(&|i| i % 7 == 3)),
        ("holder", b"h".to_vec(), vec![]),
        ("holder", b"h30".to_vec(), vec![]),
        ("kind", b"h3".to_vec(), vec![]),
        ("nothing", b"".to_vec(), vec![]),
    ];
    for (name, key, want) in &queries {
        assert_eq!(&log.lookup(name, key).unwrap(), want, "{name} {key:?}");
    }
    log.rebuild_indexes().unwrap();
    for (name, key, want) in &queries {
        assert_eq!(
            &log.lookup(name, key).unwrap(),
            want,
            "after rebuild: {name} {key:?}"
        );
    }
    // A rebuild with another indexer replaces the rows entirely.
    drop(log);
    let log = open(&dir, Arc::new(NoIndex));
    log.rebuild_indexes().unwrap();
    assert_eq!(log.lookup("kind", b"revoke").unwrap(), Vec::<u64>::new());
    assert_eq!(log.size().unwrap(), 300);
}

#[test]
fn a_reopened_log_has_everything_and_goes_on_appending() {
    let dir = tempfile::tempdir().unwrap();
    let first: Vec<Vec<u8>> = (0..37u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let root = {
        let log = open(&dir, Arc::new(NoIndex));
        log.append_many(first.clone()).unwrap();
        log.store_checkpoint(37, b"cp 37".to_vec()).unwrap();
        log.root(37).unwrap()
    };
    let log = open(&dir, Arc::new(NoIndex));
    assert_eq!(log.size().unwrap(), 37);
    assert_eq!(log.root(37).unwrap(), root);
    assert_eq!(
        log.last_checkpoint().unwrap(),
        Some((37, b"cp 37".to_vec()))
    );
    assert_eq!(log.append(b"more".to_vec()).unwrap(), 37);
    let mut all = first;
    all.push(b"more".to_vec());
    assert_eq!(log.root(38).unwrap(), merkle_root(&all));
    assert!(log.store_checkpoint(36, b"cp 36".to_vec()).is_err());
}

#[test]
fn a_second_open_of_the_same_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let _log = open(&dir, Arc::new(NoIndex));
    let again = Log::open(
        &dir.path().join("log.redb"),
        LogConfig::default(),
        Arc::new(NoIndex),
    );
    assert!(matches!(again, Err(LogError::Storage(_))));
}

#[test]
fn a_file_that_is_not_a_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    std::fs::write(&path, b"not a database at all, just some bytes").unwrap();
    assert!(Log::open(&path, LogConfig::default(), Arc::new(NoIndex)).is_err());
}
