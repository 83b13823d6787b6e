//! RFC 6962 Merkle tree hashes and proofs in either suite's hash (through [`crate::log::tree`]),
//! with the argument checks that keep hostile sizes and proofs out of the tree maths.

use crate::log::tree::{self, Hash, HashReader};
use crate::suite::Suite;

pub use crate::log::tree::{TreeError, empty_root, leaf_hash};

/// Proofs longer than this cannot belong to any tree of at most 2^63 leaves.
pub const MAX_PROOF: usize = 64;

/// Whether `proof` shows leaf `leaf` at `index` in the tree of `size` leaves with root `root`.
pub fn verify_inclusion(
    suite: Suite,
    leaf: [u8; 32],
    index: u64,
    size: u64,
    root: [u8; 32],
    proof: &[[u8; 32]],
) -> bool {
    index < size
        && proof.len() <= MAX_PROOF
        && tree::check_record(suite, proof, size, root, index, leaf)
}

/// Whether `proof` shows the tree (`old_size`, `old_root`) is a prefix of (`new_size`, `new_root`).
pub fn verify_consistency(
    suite: Suite,
    old_size: u64,
    old_root: [u8; 32],
    new_size: u64,
    new_root: [u8; 32],
    proof: &[[u8; 32]],
) -> bool {
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    0 < old_size
        && old_size < new_size
        && proof.len() <= MAX_PROOF
        && tree::check_tree(suite, proof, new_size, new_root, old_size, old_root)
}

/// A tree held in memory: what an auditor rebuilds from a log's entries.
#[derive(Clone)]
pub struct MemoryTree {
    suite: Suite,
    stored: Vec<Hash>,
    size: u64,
}

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.stored.get(i))
                    .copied()
                    .ok_or(TreeError::Unreadable(i))
            })
            .collect()
    }
}

fn refused(what: String) -> TreeError {
    TreeError::Arguments(what)
}

impl MemoryTree {
    /// An empty tree hashing with `suite`'s tree hash.
    pub fn new(suite: Suite) -> MemoryTree {
        MemoryTree {
            suite,
            stored: Vec::new(),
            size: 0,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn append(&mut self, entry: &[u8]) -> Result<u64, TreeError> {
        let added = tree::stored_hashes(self.suite, self.size, entry, self)?;
        self.stored.extend(added);
        self.size += 1;
        Ok(self.size - 1)
    }

    pub fn root(&self, size: u64) -> Result<[u8; 32], TreeError> {
        if size > self.size {
            return Err(refused(format!(
                "size {size} beyond the tree's {}",
                self.size
            )));
        }
        tree::tree_hash(self.suite, size, self)
    }

    /// The C2SP tlog-tiles hash tile `level`/`index` of `width` hashes, as the tree's own hashes
    /// give it: what a node must serve at `/tile/<level>/<index>[.p/<width>]`.
    pub fn tile(&self, level: u8, index: u64, width: u32) -> Result<Vec<u8>, TreeError> {
        use crate::log::tiles::{MAX_LEVEL, TILE_WIDTH};
        if !(1..=TILE_WIDTH).contains(&width) || level > MAX_LEVEL {
            return Err(refused(format!(
                "no tile of level {level} and width {width}"
            )));
        }
        // The tile's last node must exist at its level, which has size >> 8·level complete nodes;
        // u128 because a hostile index times 256 does not fit in u64.
        let nodes = u128::from(index) * u128::from(TILE_WIDTH) + u128::from(width);
        if nodes > u128::from(self.size >> (8 * u32::from(level))) {
            return Err(refused(format!(
                "tile {level}/{index} of width {width} is beyond the tree of {} entries",
                self.size
            )));
        }
        let hashes = self.read_hashes(&tree::tile_indexes(8, level, index, width))?;
        Ok(hashes.concat())
    }

    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<[u8; 32]>, TreeError> {
        if index >= size || size > self.size {
            return Err(refused(format!(
                "no leaf {index} in a tree of {size} (of {})",
                self.size
            )));
        }
        tree::prove_record(self.suite, size, index, self)
    }

    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, TreeError> {
        if old == 0 || old > new || new > self.size {
            return Err(refused(format!(
                "no consistency proof from {old} to {new} (of {})",
                self.size
            )));
        }
        if old == new {
            return Ok(Vec::new());
        }
        tree::prove_tree(self.suite, new, old, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(hex: &str) -> [u8; 32] {
        let bytes: Vec<u8> = (0..64)
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect();
        bytes.try_into().unwrap_or([0; 32])
    }

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect()
    }

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

    fn rfc_tree() -> MemoryTree {
        let mut tree = MemoryTree::new(Suite::Ed25519);
        for leaf in LEAVES {
            tree.append(&unhex(leaf)).unwrap_or_else(|e| panic!("{e}"));
        }
        tree
    }

    #[test]
    fn rfc6962_roots_and_proofs() -> Result<(), TreeError> {
        let tree = rfc_tree();
        for (n, root) in ROOTS.iter().enumerate() {
            assert_eq!(tree.root(n as u64 + 1)?, h(root), "size {}", n + 1);
        }
        assert_eq!(
            tree.root(0)?,
            h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        let path0 = [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ];
        assert_eq!(tree.inclusion_proof(0, 8)?, path0.map(h).to_vec());
        let path5 = [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ];
        assert_eq!(tree.inclusion_proof(5, 8)?, path5.map(h).to_vec());
        let consistency = [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ];
        assert_eq!(tree.consistency_proof(2, 5)?, consistency.map(h).to_vec());
        assert!(verify_consistency(
            Suite::Ed25519,
            2,
            h(ROOTS[1]),
            5,
            h(ROOTS[4]),
            &consistency.map(h)
        ));
        assert!(verify_inclusion(
            Suite::Ed25519,
            leaf_hash(Suite::Ed25519, &unhex(LEAVES[5])),
            5,
            8,
            h(ROOTS[7]),
            &path5.map(h)
        ));
        Ok(())
    }

    #[test]
    fn every_proof_of_random_trees_verifies_and_bit_flips_fail() -> Result<(), TreeError> {
        let mut tree = MemoryTree::new(Suite::Ed25519);
        let entries: Vec<Vec<u8>> = (0u32..70).map(|i| i.to_be_bytes().to_vec()).collect();
        for e in &entries {
            tree.append(e)?;
        }
        for size in 1..=70u64 {
            let root = tree.root(size)?;
            for index in (0..size).step_by(7) {
                let proof = tree.inclusion_proof(index, size)?;
                let leaf = leaf_hash(Suite::Ed25519, &entries[index as usize]);
                assert!(verify_inclusion(
                    Suite::Ed25519,
                    leaf,
                    index,
                    size,
                    root,
                    &proof
                ));
                for (i, bit) in [(0usize, 0u8), (proof.len().saturating_sub(1), 7)] {
                    if let Some(mut bad) = (!proof.is_empty()).then(|| proof.clone()) {
                        bad[i][5] ^= 1 << bit;
                        assert!(!verify_inclusion(
                            Suite::Ed25519,
                            leaf,
                            index,
                            size,
                            root,
                            &bad
                        ));
                    }
                }
                let mut bad_root = root;
                bad_root[31] ^= 1;
                assert!(!verify_inclusion(
                    Suite::Ed25519,
                    leaf,
                    index,
                    size,
                    bad_root,
                    &proof
                ));
                assert!(!verify_inclusion(
                    Suite::Ed25519,
                    leaf,
                    index + size,
                    size,
                    root,
                    &proof
                ));
            }
            for old in (1..=size).step_by(5) {
                let proof = tree.consistency_proof(old, size)?;
                assert!(verify_consistency(
                    Suite::Ed25519,
                    old,
                    tree.root(old)?,
                    size,
                    root,
                    &proof
                ));
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = [first[0] ^ 1; 32];
                    assert!(!verify_consistency(
                        Suite::Ed25519,
                        old,
                        tree.root(old)?,
                        size,
                        root,
                        &bad
                    ));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn hash_tiles_hold_leaf_hashes_and_subtree_roots() -> Result<(), TreeError> {
        let entries: Vec<Vec<u8>> = (0u32..600).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut tree = MemoryTree::new(Suite::Ed25519);
        for e in &entries {
            tree.append(e)?;
        }
        let level0 = tree.tile(0, 2, 88)?;
        let want: Vec<u8> = entries[512..]
            .iter()
            .flat_map(|e| leaf_hash(Suite::Ed25519, e))
            .collect();
        assert_eq!(level0, want);
        // Level 1 holds the roots of whole 256-entry subtrees: two of them in 600 entries.
        let level1 = tree.tile(1, 0, 2)?;
        for (k, root) in level1.chunks(32).enumerate() {
            let mut sub = MemoryTree::new(Suite::Ed25519);
            for e in &entries[256 * k..256 * (k + 1)] {
                sub.append(e)?;
            }
            assert_eq!(root, sub.root(256)?);
        }
        for (level, index, width) in [
            (1u8, 0u64, 3u32),
            (0, 2, 89),
            (0, 3, 1),
            (0, 0, 0),
            (0, 0, 257),
            (8, 0, 1),
            (7, u64::MAX, 256),
        ] {
            assert!(
                tree.tile(level, index, width).is_err(),
                "{level}/{index}/{width}"
            );
        }
        Ok(())
    }

    #[test]
    fn hostile_arguments_do_not_panic() {
        let junk = vec![[3u8; 32]; 70];
        for (index, size) in [
            (0u64, 0u64),
            (5, 3),
            (u64::MAX - 1, u64::MAX),
            (0, 1),
            (1, 2),
        ] {
            for len in [0usize, 1, 2, 64, 65] {
                let _ =
                    verify_inclusion(Suite::Ed25519, [1; 32], index, size, [2; 32], &junk[..len]);
                let _ =
                    verify_consistency(Suite::Ed25519, index, [1; 32], size, [2; 32], &junk[..len]);
            }
        }
    }
}
