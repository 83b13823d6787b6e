//! RFC 6962 Merkle tree maths over either suite's hash (specs/log.md §2): SHA-256 in the `ed25519`
//! suite, as RFC 6962 and every C2SP tool have it, and SM3 in the `sm2` suite, the same
//! construction with SM3 in place of SHA-256.
//!
//! Stored hashes follow the layout of Go's `golang.org/x/mod/sumdb/tlog` (`StoredHashIndex`), so a
//! log stores each hash once when it is first complete, tree hashes and proofs are reads of a few
//! stored hashes, and C2SP tlog-tiles hash tiles are plain runs of them. The algorithms are those
//! of that package, written here once over a [`Suite`]; tests check them against `tlog_tiles` (a
//! Rust port of it) for SHA-256. Arguments a caller could get wrong return an error, never panic.

use sha2::Sha256;
use sm3::Sm3;

use crate::suite::Suite;

/// A tree hash: a leaf hash, an interior node or a root.
pub type Hash = [u8; 32];

/// Why a tree operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// The arguments do not describe a tree, leaf or proof that can exist.
    #[error("tree: {0}")]
    Arguments(String),
    /// The reader could not give a hash the tree must have.
    #[error("tree: stored hash {0} cannot be read")]
    Unreadable(u64),
}

/// Where a tree's stored hashes come from: a log's table, memory, the hashes of a batch in flight.
pub trait HashReader {
    /// The hashes at these stored-hash indexes, in the order asked.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError>;
}

/// The suite's plain hash of `parts` one after the other: SHA-256, or SM3 in the `sm2` suite.
/// The tree and signed-note key ids use it (the suite's [`Suite::digest`] is BLAKE3 or SM3).
pub(crate) fn plain_hash(suite: Suite, parts: &[&[u8]]) -> Hash {
    match suite {
        Suite::Ed25519 => {
            use sha2::Digest;
            let mut hasher = Sha256::new();
            parts.iter().for_each(|p| hasher.update(p));
            hasher.finalize().into()
        }
        Suite::Sm2 => {
            use sm3::Digest;
            let mut hasher = Sm3::new();
            parts.iter().for_each(|p| hasher.update(p));
            hasher.finalize().into()
        }
    }
}

/// H(0x00 ‖ entry).
pub fn leaf_hash(suite: Suite, entry: &[u8]) -> Hash {
    plain_hash(suite, &[&[0x00], entry])
}

/// H(0x01 ‖ left ‖ right).
pub fn node_hash(suite: Suite, left: &Hash, right: &Hash) -> Hash {
    plain_hash(suite, &[&[0x01], left, right])
}

/// The root of the empty tree: H of nothing.
pub fn empty_root(suite: Suite) -> Hash {
    plain_hash(suite, &[])
}

/// The index, among all stored hashes, of the hash of the `n`-th complete subtree at `level`
/// (leaves are level 0): Go's `StoredHashIndex`.
pub fn stored_hash_index(level: u8, n: u64) -> u64 {
    // Each of the n subtrees before it brings its own stored hashes; the level adds its own.
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    let mut index = 0u64;
    while n > 0 {
        index += n;
        n >>= 1;
    }
    index + u64::from(level)
}

/// How many hashes a tree of `n` leaves stores.
pub fn stored_hash_count(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut count = stored_hash_index(0, n - 1) + 1;
    let mut i = n - 1;
    while i & 1 != 0 {
        count += 1;
        i >>= 1;
    }
    count
}

fn read_exactly<R: HashReader + ?Sized>(r: &R, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
    let hashes = r.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TreeError::Arguments(format!(
            "asked for {} stored hashes, read {}",
            indexes.len(),
            hashes.len()
        )));
    }
    Ok(hashes)
}

/// The hashes to store when leaf `n` (0-based, the tree holding `n` leaves before it) is
/// appended: its leaf hash, then the root of each subtree it completes.
pub fn stored_hashes<R: HashReader + ?Sized>(
    suite: Suite,
    n: u64,
    entry: &[u8],
    r: &R,
) -> Result<Vec<Hash>, TreeError> {
    let mut hash = leaf_hash(suite, entry);
    let completed = (n + 1).trailing_zeros();
    // Left siblings, from the highest level down, as Go reads them.
    let indexes: Vec<u64> = (0..completed)
        .rev()
        .map(|level| stored_hash_index(level as u8, (n >> level) - 1))
        .collect();
    let siblings = read_exactly(r, &indexes)?;
    let mut hashes = Vec::with_capacity(siblings.len() + 1);
    hashes.push(hash);
    for left in siblings.iter().rev() {
        hash = node_hash(suite, left, &hash);
        hashes.push(hash);
    }
    Ok(hashes)
}

/// The largest power of two below `n` (n ≥ 2), and its log₂.
fn maxpow2(n: u64) -> (u64, u8) {
    let level = 63 - (n - 1).leading_zeros() as u8;
    (1 << level, level)
}

fn arguments(what: &str) -> TreeError {
    TreeError::Arguments(what.to_owned())
}

/// Appends the stored-hash indexes of the complete subtrees covering `lo..hi`, largest first.
fn subtree_indexes(mut lo: u64, hi: u64, need: &mut Vec<u64>) -> Result<(), TreeError> {
    while lo < hi {
        let (k, level) = maxpow2(hi - lo + 1);
        if lo & (k - 1) != 0 {
            return Err(arguments("a subtree that does not start on its boundary"));
        }
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
    Ok(())
}

/// The hash of `lo..hi` from the subtree hashes [`subtree_indexes`] named, consumed from `hashes`.
fn subtree_hash(
    suite: Suite,
    mut lo: u64,
    hi: u64,
    hashes: &mut &[Hash],
) -> Result<Hash, TreeError> {
    let mut count = 0;
    while lo < hi {
        lo += maxpow2(hi - lo + 1).0;
        count += 1;
    }
    if count == 0 || count > hashes.len() {
        return Err(arguments("too few subtree hashes"));
    }
    let (mine, rest) = hashes.split_at(count);
    *hashes = rest;
    let mut hash = mine[count - 1];
    for left in mine[..count - 1].iter().rev() {
        hash = node_hash(suite, left, &hash);
    }
    Ok(hash)
}

fn all_used(hashes: &[Hash]) -> Result<(), TreeError> {
    if hashes.is_empty() {
        Ok(())
    } else {
        Err(arguments("more hashes than the proof uses"))
    }
}

/// The root of the tree of the first `n` leaves.
pub fn tree_hash<R: HashReader + ?Sized>(suite: Suite, n: u64, r: &R) -> Result<Hash, TreeError> {
    if n == 0 {
        return Ok(empty_root(suite));
    }
    let mut indexes = Vec::new();
    subtree_indexes(0, n, &mut indexes)?;
    let hashes = read_exactly(r, &indexes)?;
    let mut rest = hashes.as_slice();
    let root = subtree_hash(suite, 0, n, &mut rest)?;
    all_used(rest)?;
    Ok(root)
}

fn leaf_proof_indexes(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) -> Result<(), TreeError> {
    if lo + 1 == hi {
        return Ok(());
    }
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        leaf_proof_indexes(lo, lo + k, n, need)?;
        subtree_indexes(lo + k, hi, need)
    } else {
        subtree_indexes(lo, lo + k, need)?;
        leaf_proof_indexes(lo + k, hi, n, need)
    }
}

fn leaf_proof(
    suite: Suite,
    lo: u64,
    hi: u64,
    n: u64,
    hashes: &mut &[Hash],
) -> Result<Vec<Hash>, TreeError> {
    if lo + 1 == hi {
        return Ok(Vec::new());
    }
    let (k, _) = maxpow2(hi - lo);
    let (mut proof, sibling) = if n < lo + k {
        let proof = leaf_proof(suite, lo, lo + k, n, hashes)?;
        (proof, subtree_hash(suite, lo + k, hi, hashes)?)
    } else {
        let sibling = subtree_hash(suite, lo, lo + k, hashes)?;
        (leaf_proof(suite, lo + k, hi, n, hashes)?, sibling)
    };
    proof.push(sibling);
    Ok(proof)
}

/// The RFC 6962 inclusion proof (audit path) of leaf `n` in the tree of `t` leaves.
pub fn prove_record<R: HashReader + ?Sized>(
    suite: Suite,
    t: u64,
    n: u64,
    r: &R,
) -> Result<Vec<Hash>, TreeError> {
    if n >= t {
        return Err(arguments("the leaf is not in the tree"));
    }
    let mut indexes = Vec::new();
    leaf_proof_indexes(0, t, n, &mut indexes)?;
    let hashes = read_exactly(r, &indexes)?;
    let mut rest = hashes.as_slice();
    let proof = leaf_proof(suite, 0, t, n, &mut rest)?;
    all_used(rest)?;
    Ok(proof)
}

/// The root that `proof` gives for leaf `n` of the tree `lo..hi` with leaf hash `leaf`.
fn run_record_proof(
    suite: Suite,
    proof: &[Hash],
    lo: u64,
    hi: u64,
    n: u64,
    leaf: Hash,
) -> Option<Hash> {
    if lo + 1 == hi {
        return proof.is_empty().then_some(leaf);
    }
    let (last, rest) = proof.split_last()?;
    let (k, _) = maxpow2(hi - lo);
    if n < lo + k {
        let left = run_record_proof(suite, rest, lo, lo + k, n, leaf)?;
        Some(node_hash(suite, &left, last))
    } else {
        let right = run_record_proof(suite, rest, lo + k, hi, n, leaf)?;
        Some(node_hash(suite, last, &right))
    }
}

/// Whether `proof` shows leaf hash `leaf` at index `n` of the tree of `t` leaves with root `root`.
pub fn check_record(suite: Suite, proof: &[Hash], t: u64, root: Hash, n: u64, leaf: Hash) -> bool {
    n < t && run_record_proof(suite, proof, 0, t, n, leaf) == Some(root)
}

fn tree_proof_indexes(lo: u64, hi: u64, n: u64, need: &mut Vec<u64>) -> Result<(), TreeError> {
    if n == hi {
        return if lo == 0 {
            Ok(())
        } else {
            subtree_indexes(lo, hi, need)
        };
    }
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        tree_proof_indexes(lo, lo + k, n, need)?;
        subtree_indexes(lo + k, hi, need)
    } else {
        subtree_indexes(lo, lo + k, need)?;
        tree_proof_indexes(lo + k, hi, n, need)
    }
}

fn tree_proof(
    suite: Suite,
    lo: u64,
    hi: u64,
    n: u64,
    hashes: &mut &[Hash],
) -> Result<Vec<Hash>, TreeError> {
    if n == hi {
        return if lo == 0 {
            Ok(Vec::new())
        } else {
            Ok(vec![subtree_hash(suite, lo, hi, hashes)?])
        };
    }
    let (k, _) = maxpow2(hi - lo);
    let (mut proof, sibling) = if n <= lo + k {
        let proof = tree_proof(suite, lo, lo + k, n, hashes)?;
        (proof, subtree_hash(suite, lo + k, hi, hashes)?)
    } else {
        let sibling = subtree_hash(suite, lo, lo + k, hashes)?;
        (tree_proof(suite, lo + k, hi, n, hashes)?, sibling)
    };
    proof.push(sibling);
    Ok(proof)
}

/// The RFC 6962 consistency proof from the tree of `n` leaves to the tree of `t`, 1 ≤ n ≤ t.
pub fn prove_tree<R: HashReader + ?Sized>(
    suite: Suite,
    t: u64,
    n: u64,
    r: &R,
) -> Result<Vec<Hash>, TreeError> {
    if n == 0 || n > t {
        return Err(arguments("no consistency proof between these sizes"));
    }
    let mut indexes = Vec::new();
    tree_proof_indexes(0, t, n, &mut indexes)?;
    let hashes = read_exactly(r, &indexes)?;
    let mut rest = hashes.as_slice();
    let proof = tree_proof(suite, 0, t, n, &mut rest)?;
    all_used(rest)?;
    Ok(proof)
}

/// The (old root, new root) that `proof` gives for the tree `lo..hi` whose first `n` leaves have
/// root `old`.
fn run_tree_proof(
    suite: Suite,
    proof: &[Hash],
    lo: u64,
    hi: u64,
    n: u64,
    old: Hash,
) -> Option<(Hash, Hash)> {
    if n == hi {
        return match (lo, proof) {
            (0, []) => Some((old, old)),
            (0, _) => None,
            (_, [only]) => Some((*only, *only)),
            _ => None,
        };
    }
    let (last, rest) = proof.split_last()?;
    let (k, _) = maxpow2(hi - lo);
    if n <= lo + k {
        let (old_hash, left) = run_tree_proof(suite, rest, lo, lo + k, n, old)?;
        Some((old_hash, node_hash(suite, &left, last)))
    } else {
        let (old_hash, right) = run_tree_proof(suite, rest, lo + k, hi, n, old)?;
        Some((
            node_hash(suite, last, &old_hash),
            node_hash(suite, last, &right),
        ))
    }
}

/// Whether `proof` shows the tree of `n` leaves with root `old` is a prefix of the tree of `t`
/// leaves with root `root`, 1 ≤ n ≤ t.
pub fn check_tree(suite: Suite, proof: &[Hash], t: u64, root: Hash, n: u64, old: Hash) -> bool {
    0 < n && n <= t && run_tree_proof(suite, proof, 0, t, n, old) == Some((old, root))
}

/// The stored-hash indexes of C2SP tlog-tiles hash tile `level`/`index` of `width` hashes, with
/// tiles of height `height`: the hashes at tree level `height·level`, from `index·2^height` on.
pub fn tile_indexes(height: u8, level: u8, index: u64, width: u32) -> Vec<u64> {
    let tree_level = height * level;
    let first = index << height;
    (0..u64::from(width))
        .map(|i| stored_hash_index(tree_level, first + i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored hashes in a vector, as a log's table holds them.
    #[derive(Default)]
    struct Stored(Vec<Hash>);

    impl HashReader for Stored {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
            indexes
                .iter()
                .map(|&i| {
                    self.0
                        .get(i as usize)
                        .copied()
                        .ok_or(TreeError::Unreadable(i))
                })
                .collect()
        }
    }

    impl tlog_tiles::HashReader for Stored {
        fn read_hashes(
            &self,
            indexes: &[u64],
        ) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::tlog::Error> {
            indexes
                .iter()
                .map(|&i| {
                    self.0
                        .get(i as usize)
                        .map(|h| tlog_tiles::Hash(*h))
                        .ok_or(tlog_tiles::tlog::Error::IndexesNotInTree)
                })
                .collect()
        }
    }

    fn build(suite: Suite, entries: &[Vec<u8>]) -> Result<Stored, TreeError> {
        let mut stored = Stored::default();
        for (n, entry) in entries.iter().enumerate() {
            let added = stored_hashes(suite, n as u64, entry, &stored)?;
            stored.0.extend(added);
            assert_eq!(stored.0.len() as u64, stored_hash_count(n as u64 + 1));
        }
        Ok(stored)
    }

    fn entries(count: u32) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| format!("entry {i}").into_bytes())
            .collect()
    }

    /// The root computed straight from RFC 6962's definition, for any hash.
    fn mth(suite: Suite, leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            0 => empty_root(suite),
            1 => leaf_hash(suite, &leaves[0]),
            n => {
                let k = maxpow2(n as u64).0 as usize;
                node_hash(suite, &mth(suite, &leaves[..k]), &mth(suite, &leaves[k..]))
            }
        }
    }

    #[test]
    fn sha256_matches_go_tlog_as_tlog_tiles_ports_it() -> Result<(), Box<dyn std::error::Error>> {
        let entries = entries(300);
        let ours = build(Suite::Ed25519, &entries)?;
        let mut theirs: Vec<tlog_tiles::Hash> = Vec::new();
        for (n, entry) in entries.iter().enumerate() {
            let reader = Stored(theirs.iter().map(|h| h.0).collect());
            theirs.extend(tlog_tiles::stored_hashes(n as u64, entry, &reader)?);
        }
        assert_eq!(ours.0, theirs.iter().map(|h| h.0).collect::<Vec<_>>());
        for level in 0..9u8 {
            for n in [0u64, 1, 2, 7, 1000, 1 << 40] {
                assert_eq!(
                    stored_hash_index(level, n),
                    tlog_tiles::stored_hash_index(level, n)
                );
            }
        }
        for t in 1..=300u64 {
            assert_eq!(
                tree_hash(Suite::Ed25519, t, &ours)?,
                tlog_tiles::tree_hash(t, &ours)?.0
            );
            for n in (0..t).step_by(13) {
                let want: Vec<Hash> = tlog_tiles::prove_record(t, n, &ours)?
                    .into_iter()
                    .map(|h| h.0)
                    .collect();
                assert_eq!(prove_record(Suite::Ed25519, t, n, &ours)?, want);
            }
            for n in (1..=t).step_by(11) {
                let want: Vec<Hash> = tlog_tiles::prove_tree(t, n, &ours)?
                    .into_iter()
                    .map(|h| h.0)
                    .collect();
                assert_eq!(prove_tree(Suite::Ed25519, t, n, &ours)?, want);
            }
        }
        Ok(())
    }

    #[test]
    fn both_suites_give_rfc6962_roots_and_proofs_that_verify() -> Result<(), TreeError> {
        let entries = entries(70);
        for suite in Suite::ALL {
            let stored = build(suite, &entries)?;
            for t in 1..=70u64 {
                let root = tree_hash(suite, t, &stored)?;
                assert_eq!(root, mth(suite, &entries[..t as usize]), "{suite} {t}");
                for n in 0..t {
                    let proof = prove_record(suite, t, n, &stored)?;
                    let leaf = leaf_hash(suite, &entries[n as usize]);
                    assert!(check_record(suite, &proof, t, root, n, leaf));
                    let mut bad = proof.clone();
                    if let Some(h) = bad.last_mut() {
                        h[0] ^= 1;
                        assert!(!check_record(suite, &bad, t, root, n, leaf));
                    }
                    assert!(!check_record(suite, &proof, t, root, n + t, leaf));
                }
                for n in 1..=t {
                    let old = tree_hash(suite, n, &stored)?;
                    let proof = prove_tree(suite, t, n, &stored)?;
                    assert!(check_tree(suite, &proof, t, root, n, old));
                    assert!(!check_tree(suite, &proof, t, root, n, [9; 32]));
                }
            }
            assert_eq!(tree_hash(suite, 0, &stored)?, empty_root(suite));
        }
        // The two suites' trees differ from the first leaf.
        assert_ne!(leaf_hash(Suite::Ed25519, b"x"), leaf_hash(Suite::Sm2, b"x"));
        Ok(())
    }

    #[test]
    fn sm3_tree_is_sm3_with_the_rfc6962_prefixes() {
        // SM3("") from GB/T 32905's reference implementation.
        let empty = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b";
        let hex = |h: Hash| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(empty_root(Suite::Sm2)), empty);
        assert_eq!(
            leaf_hash(Suite::Sm2, b"abc"),
            Suite::Sm2.digest(&[b"\x00".as_slice(), b"abc"].concat())
        );
        let (l, r) = ([1u8; 32], [2u8; 32]);
        assert_eq!(
            node_hash(Suite::Sm2, &l, &r),
            Suite::Sm2.digest(&[&[1u8][..], &l, &r].concat())
        );
    }

    #[test]
    fn hostile_arguments_are_errors_not_panics() -> Result<(), TreeError> {
        let stored = build(Suite::Ed25519, &entries(10))?;
        assert!(prove_record(Suite::Ed25519, 10, 10, &stored).is_err());
        assert!(prove_tree(Suite::Ed25519, 10, 0, &stored).is_err());
        assert!(prove_tree(Suite::Ed25519, 10, 11, &stored).is_err());
        // Beyond what is stored: the reader's error, not a panic.
        assert_eq!(
            tree_hash(Suite::Ed25519, 11, &stored),
            Err(TreeError::Unreadable(18))
        );
        let junk = vec![[3u8; 32]; 70];
        for (n, t) in [
            (0u64, 0u64),
            (5, 3),
            (u64::MAX - 1, u64::MAX),
            (0, 1),
            (1, 2),
        ] {
            for len in [0usize, 1, 2, 64, 65] {
                let _ = check_record(Suite::Sm2, &junk[..len], t, [2; 32], n, [1; 32]);
                let _ = check_tree(Suite::Sm2, &junk[..len], t, [2; 32], n, [1; 32]);
            }
        }
        Ok(())
    }
}
