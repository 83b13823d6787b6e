//! Helpers shared by the log's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use tlog_tiles::{node_hash, record_hash};

/// RFC 6962 §2.1 MTH, written out recursively and independently of the stored-hash layout, to
/// check the log against.
pub fn merkle_root(entries: &[Vec<u8>]) -> [u8; 32] {
    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            0 => unreachable!("callers handle the empty tree"),
            1 => leaves[0],
            n => {
                // The largest power of two strictly less than n.
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(
                    tlog_tiles::Hash(mth(&leaves[..k])),
                    tlog_tiles::Hash(mth(&leaves[k..])),
                )
                .0
            }
        }
    }
    if entries.is_empty() {
        return tlog_tiles::EMPTY_HASH.0;
    }
    let leaves: Vec<[u8; 32]> = entries.iter().map(|e| record_hash(e).0).collect();
    mth(&leaves)
}

/// splitmix64: a seeded generator, so a failing case can be replayed from its printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `lo..=hi` for tests.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

pub fn seed() -> u64 {
    let seed = std::env::var("TONGBAN_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("seed {seed} (replay with TONGBAN_TEST_SEED={seed})");
    seed
}
