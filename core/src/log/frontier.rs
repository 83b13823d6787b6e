//! The right edge of an RFC 6962 tree: the roots of its perfect subtrees, largest first (at most
//! 64 hashes). It is enough to append leaves and compute the root, so a node can check a batch of
//! another region's entries against a signed checkpoint before it applies or stores any of them,
//! and an auditor can stream a log of any length through its tree in constant memory.

use crate::log::tree::{empty_root, leaf_hash, node_hash};
use crate::suite::Suite;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frontier {
    /// Whose tree hash the tree uses.
    suite: Suite,
    size: u64,
    /// (height, hash) of each perfect subtree on the right edge, largest (leftmost) first.
    peaks: Vec<(u32, [u8; 32])>,
}

impl Frontier {
    /// The empty tree of `suite`'s tree hash.
    pub fn new(suite: Suite) -> Frontier {
        Frontier {
            suite,
            size: 0,
            peaks: Vec::new(),
        }
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The right edge of a tree of `size` leaves from its perfect subtrees' roots, largest
    /// (leftmost) first, with their heights: those of the set bits of `size`, from the highest
    /// (as a log that stores its subtree hashes reads them). `None` if they are not.
    pub fn from_peaks(suite: Suite, size: u64, peaks: Vec<(u32, [u8; 32])>) -> Option<Frontier> {
        let heights: Vec<u32> = (0..64).rev().filter(|h| size >> h & 1 == 1).collect();
        let matches = heights.len() == peaks.len()
            && heights
                .iter()
                .zip(&peaks)
                .all(|(h, (height, _))| h == height);
        matches.then_some(Frontier { suite, size, peaks })
    }

    /// The heights of the perfect subtrees on the right edge of a tree of `size` leaves, largest
    /// first, with the index of each one's first leaf.
    pub fn peak_positions(size: u64) -> Vec<(u32, u64)> {
        let mut start = 0;
        (0..64u32)
            .rev()
            .filter(|h| size >> h & 1 == 1)
            .map(|h| {
                let at = start;
                start += 1 << h;
                (h, at)
            })
            .collect()
    }

    /// Appends an entry (its leaf hash is computed here).
    pub fn push(&mut self, entry: &[u8]) {
        self.push_leaf(leaf_hash(self.suite, entry));
    }

    pub fn push_leaf(&mut self, leaf: [u8; 32]) {
        let mut carry = (0u32, leaf);
        while let Some(&(height, left)) = self.peaks.last() {
            if height != carry.0 {
                break;
            }
            self.peaks.pop();
            carry = (height + 1, node_hash(self.suite, &left, &carry.1));
        }
        self.peaks.push(carry);
        self.size += 1;
    }

    /// The RFC 6962 root of the entries pushed so far.
    pub fn root(&self) -> [u8; 32] {
        let mut peaks = self.peaks.iter().rev();
        let Some(&(_, mut root)) = peaks.next() else {
            return empty_root(self.suite);
        };
        for &(_, left) in peaks {
            root = node_hash(self.suite, &left, &root);
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::proof::MemoryTree;

    #[test]
    fn a_frontier_made_from_its_peaks_is_the_one_built_leaf_by_leaf()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut built = Frontier::new(Suite::Sm2);
        for n in 0..70u64 {
            let again =
                Frontier::from_peaks(Suite::Sm2, n, built.peaks.clone()).ok_or("peaks refused")?;
            assert_eq!(again, built);
            let positions = Frontier::peak_positions(n);
            assert_eq!(
                positions.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
                built.peaks.iter().map(|(h, _)| *h).collect::<Vec<_>>()
            );
            if n > 0 {
                // Wrong heights, or one peak too few, are refused.
                assert_eq!(
                    Frontier::from_peaks(Suite::Sm2, n + 1, built.peaks.clone()),
                    None
                );
            }
            built.push(&n.to_be_bytes());
        }
        Ok(())
    }

    #[test]
    fn matches_the_tree_at_every_size() -> Result<(), Box<dyn std::error::Error>> {
        for suite in Suite::ALL {
            matches_at_every_size(suite)?;
        }
        Ok(())
    }

    fn matches_at_every_size(suite: Suite) -> Result<(), Box<dyn std::error::Error>> {
        let (mut tree, mut frontier) = (MemoryTree::new(suite), Frontier::new(suite));
        assert_eq!(frontier.root(), tree.root(0)?);
        for i in 0u32..300 {
            let entry = i.to_be_bytes();
            tree.append(&entry)?;
            frontier.push(&entry);
            assert_eq!(
                frontier.root(),
                tree.root(u64::from(i) + 1)?,
                "size {}",
                i + 1
            );
            assert!(frontier.peaks.len() <= 64);
        }
        Ok(())
    }
}
