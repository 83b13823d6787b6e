//! The streaming audit of one log (specs/log.md §7): entries, checkpoints and a node's hash tiles
//! are handed over as they are read, and nothing is kept per entry or per checkpoint. Entries go
//! through the tree's right edge (a [`Frontier`]: at most 64 hashes) and through the log's rules
//! in windows whose signatures are checked on every core; a checkpoint is checked when it arrives
//! (its signature: before anything else uses its size) and when the tree reaches its size (its
//! root); a hash tile is compared as soon as the tree has all of its hashes. So an auditor reads a
//! log of any length, from a node that may lie about it, in memory that does not grow with the
//! log: the region's state, which specs/log.md §7 needs to apply the rules, lives in the
//! [`AuditStore`] the audit is given (on disk for a province's log).
//!
//! Checkpoints must come in size order (an audit bundle's names and a node's list give them so):
//! once the tree has passed a size, its root at that size is gone.
//!
//! A replay that stops at a refused entry leaves the store with the state before that entry (a
//! window's changes are taken only as far as every rule and signature held), which the report
//! describes.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;

use crate::ids::RegionCode;
use crate::keys::PublicKey;
use crate::log::audit::{AuditReport, FindingCode, Statistics, conclude, count};
use crate::log::checkpoint;
use crate::log::entry::LogEntry;
use crate::log::frontier::Frontier;
use crate::log::note::NoteVerifier;
use crate::log::proof::leaf_hash;
use crate::log::replay::{Replay, ReplayError};
use crate::log::state::{AuditStore, MemoryStore};
use crate::log::tiles::{MAX_LEVEL, TILE_WIDTH, TilePath};
use crate::log::tree::node_hash;
use crate::suite::Suite;
use crate::trust::TrustStore;

/// Entries replayed together: their signatures are checked in parallel.
const WINDOW: usize = 4096;

/// What the log's rules have made of the entries so far.
enum Rules<S> {
    /// Before the first entry (which names the region): the store, empty.
    Unstarted(S),
    Running {
        replay: Box<Replay<S>>,
        /// Entries read but not replayed yet, the first at index `base`.
        window: Vec<Vec<u8>>,
        base: u64,
    },
    /// The replay stopped at entry `index` (a finding says why); the store holds the state
    /// before it.
    Stopped { replay: Box<Replay<S>>, index: u64 },
    /// No state: the first entry named no region the bundle has, or the store failed.
    Ended,
}

/// A streaming audit of one log, its region's state kept in `S`.
pub struct LogAudit<S = MemoryStore> {
    report: AuditReport,
    setup: Option<(NoteVerifier, TrustStore)>,
    tree: Frontier,
    tiles: Option<TileCheck>,
    /// Verified checkpoints of sizes the tree has not reached: size → (name, root).
    pending: BTreeMap<u64, Vec<(String, [u8; 32])>>,
    /// The last checkpoint checked against the tree: (size, root, name).
    reached: Option<(u64, [u8; 32], String)>,
    rules: Rules<S>,
    statistics: Statistics,
    ledger: crate::log::ledger::Ledger,
    threads: NonZeroUsize,
    /// The batch coefficient key, when signatures are checked in batches.
    batch: Option<[u8; 32]>,
}

/// How an audit ended: its report, and the store with the state the report describes (the
/// whole log's, or the state before a refused entry), for a caller that wants more of it.
pub struct Finished<S> {
    pub report: AuditReport,
    pub store: Option<S>,
}

impl LogAudit<MemoryStore> {
    /// An audit that keeps the region's state in memory: for logs of a modest size.
    pub fn new(log_key: &str, trust_bundle: &[u8], hash_tiles: bool) -> LogAudit<MemoryStore> {
        LogAudit::with_store(log_key, trust_bundle, hash_tiles, MemoryStore::default())
    }
}

impl<S: AuditStore> LogAudit<S> {
    /// Starts the audit of the log whose verifier key (`<origin>+<hex>+<base64>`) and trust bundle
    /// these are, its state kept in `store` (empty); `hash_tiles`: whether a node's hash tiles
    /// will be compared. A key or bundle that does not load is the report's only finding, and the
    /// audit takes nothing more.
    pub fn with_store(
        log_key: &str,
        trust_bundle: &[u8],
        hash_tiles: bool,
        store: S,
    ) -> LogAudit<S> {
        let mut report = AuditReport::default();
        let setup = NoteVerifier::parse(log_key.trim())
            .map_err(|e| format!("log key: {e}"))
            .and_then(|log| {
                TrustStore::load_any_time(trust_bundle, None)
                    .map(|t| (log, t))
                    .map_err(|f| format!("trust bundle: {f}"))
            });
        let setup = match setup {
            Ok(setup) => {
                report.origin = setup.0.name.clone();
                Some(setup)
            }
            Err(detail) => {
                report.checkpoint_finding("(setup)", FindingCode::CheckpointSignature, detail);
                None
            }
        };
        // The log key's suite is the tree's (nothing is taken when the key did not load).
        let suite = setup
            .as_ref()
            .map_or(Suite::Ed25519, |(log, _)| log.suite());
        LogAudit {
            report,
            setup,
            tree: Frontier::new(suite),
            tiles: hash_tiles.then(|| TileCheck::new(suite)),
            pending: BTreeMap::new(),
            reached: None,
            rules: Rules::Unstarted(store),
            statistics: Statistics::default(),
            ledger: crate::log::ledger::Ledger::default(),
            threads: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            batch: None,
        }
    }

    /// Checks the entries' signatures in batches (see [`Replay::batched`]) with this secret,
    /// random coefficient key; without it, each one strictly.
    pub fn batched(mut self, coefficient_key: [u8; 32]) -> LogAudit<S> {
        self.batch = Some(coefficient_key);
        self
    }

    /// Whether the audit can use more input (its key and bundle loaded).
    pub fn is_open(&self) -> bool {
        self.setup.is_some()
    }

    /// Entries taken so far: the tree's size.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The size `note` states, when it is a checkpoint signed by the log's key (nothing is
    /// recorded: [`LogAudit::checkpoint`] takes it into the audit).
    pub fn verified_size(&self, note: &[u8]) -> Option<u64> {
        let (log, _) = self.setup.as_ref()?;
        checkpoint::open(note, log, &[])
            .ok()
            .map(|c| c.checkpoint.size)
    }

    /// A signed checkpoint named `name` (a file name, for the findings). Its signature is checked
    /// now: the verified size is returned, and only a verified checkpoint may tell a reader how
    /// far the log goes. Its root is checked when the tree reaches its size.
    pub fn checkpoint(&mut self, name: &str, note: &[u8]) -> Option<u64> {
        let (log, _) = self.setup.as_ref()?;
        let head = match checkpoint::open(note, log, &[]) {
            Ok(verified) => verified.checkpoint,
            Err(e) => {
                self.report.checkpoint_finding(
                    name,
                    FindingCode::CheckpointSignature,
                    e.to_string(),
                );
                return None;
            }
        };
        let (size, root) = (head.size, head.root);
        let known = match self.reached.as_ref() {
            Some((reached, known, other)) if *reached == size => Some((*known, other.clone())),
            _ => self
                .pending
                .get(&size)
                .and_then(|at| at.first().map(|(other, known)| (*known, other.clone()))),
        };
        if let Some((known, other)) = known
            && known != root
        {
            self.report.checkpoint_finding(
                name,
                FindingCode::Equivocation,
                format!("same size {size} as {other}, different root: the log forked"),
            );
            return Some(size);
        }
        match size.cmp(&self.tree.size()) {
            std::cmp::Ordering::Greater => {
                self.pending
                    .entry(size)
                    .or_default()
                    .push((name.to_owned(), root));
            }
            std::cmp::Ordering::Equal => self.check_root(name, size, root),
            std::cmp::Ordering::Less => self.report.checkpoint_finding(
                name,
                FindingCode::CheckpointRoot,
                format!(
                    "size {size} given after the replay passed it (at {}): checkpoints must come \
                     in size order",
                    self.tree.size()
                ),
            ),
        }
        Some(size)
    }

    fn check_root(&mut self, name: &str, size: u64, root: [u8; 32]) {
        if self.tree.root() == root {
            self.report.checkpoints_verified += 1;
            self.report.largest_checkpoint = self.report.largest_checkpoint.max(Some(size));
            self.report
                .verified_checkpoints
                .push((size, name.to_owned()));
        } else {
            self.report.checkpoint_finding(
                name,
                FindingCode::CheckpointRoot,
                format!("root at size {size} differs from the entries'"),
            );
        }
        self.reached = Some((size, root, name.to_owned()));
    }

    /// The next entry of the log.
    pub fn entry(&mut self, bytes: Vec<u8>) {
        if self.setup.is_none() {
            return;
        }
        let leaf = leaf_hash(self.tree.suite(), &bytes);
        self.tree.push_leaf(leaf);
        if let Some(tiles) = self.tiles.as_mut() {
            tiles.push_leaf(leaf, &mut self.report);
        }
        let size = self.tree.size();
        if let Some(due) = self.pending.remove(&size) {
            for (name, root) in due {
                self.check_root(&name, size, root);
            }
        }
        self.rules_take(bytes);
    }

    fn rules_take(&mut self, bytes: Vec<u8>) {
        if let Rules::Unstarted(_) = self.rules {
            let Rules::Unstarted(store) = std::mem::replace(&mut self.rules, Rules::Ended) else {
                return;
            };
            if let Some((region, root)) = self.start(&bytes) {
                self.report.region = Some(region.clone());
                let replay = Replay::new(region, root, store, self.threads);
                let replay = match self.batch {
                    Some(key) => replay.batched(key),
                    None => replay,
                };
                self.rules = Rules::Running {
                    replay: Box::new(replay),
                    window: Vec::with_capacity(WINDOW),
                    base: 0,
                };
            }
        }
        if let Rules::Running { window, .. } = &mut self.rules {
            window.push(bytes);
            if window.len() >= WINDOW {
                self.replay_window();
            }
        }
    }

    /// The region the first entry names and the root the trust bundle has for it; else a
    /// finding.
    fn start(&mut self, first: &[u8]) -> Option<(RegionCode, PublicKey)> {
        let (_, trust) = self.setup.as_ref()?;
        match start_of(trust, first) {
            Ok(start) => Some(start),
            Err((code, detail)) => {
                self.report.entry_finding(0, code, detail);
                None
            }
        }
    }

    fn replay_window(&mut self) {
        let Rules::Running {
            mut replay,
            window,
            base,
        } = std::mem::replace(&mut self.rules, Rules::Ended)
        else {
            return;
        };
        let (statistics, region) = (&mut self.statistics, replay.region().clone());
        let ledger = &mut self.ledger;
        let outcome = replay.entries(&window, |applied, delta| {
            count(applied, delta, &region, statistics);
            ledger.record(delta.head.size - 1, applied, delta, &region);
        });
        match outcome {
            Ok(()) => {
                self.rules = Rules::Running {
                    base: base + window.len() as u64,
                    window: Vec::with_capacity(WINDOW),
                    replay,
                };
            }
            Err(ReplayError::Refused(stopped)) => {
                let index = base + stopped.offset as u64;
                self.report
                    .entry_finding(index, stopped.rejection.code, stopped.rejection.detail);
                self.rules = Rules::Stopped { replay, index };
            }
            Err(ReplayError::Store(e)) => {
                self.report.store_failure = Some(e.to_string());
            }
        }
    }

    /// The hash tiles the tree has completed and not yet compared: the node's tiles at these
    /// paths are to be given to [`LogAudit::served_tile`].
    pub fn tiles_wanted(&self) -> Vec<TilePath> {
        self.tiles
            .as_ref()
            .map(TileCheck::wanted)
            .unwrap_or_default()
    }

    /// The partial hash tiles of the tree as it stands (call once every entry is in).
    pub fn partial_tiles(&self) -> Vec<TilePath> {
        self.tiles
            .as_ref()
            .map(|t| t.partials())
            .unwrap_or_default()
    }

    /// A hash tile the node served at `path`.
    pub fn served_tile(&mut self, path: TilePath, served: Vec<u8>) {
        if let Some(tiles) = self.tiles.as_mut() {
            tiles.served(path, served, &mut self.report);
        }
    }

    /// Ends the audit: the remaining window replayed, checkpoints beyond the entries reported.
    pub fn finish(mut self) -> Finished<S> {
        self.replay_window();
        let size = self.tree.size();
        self.report.entries = size;
        for (at, due) in std::mem::take(&mut self.pending) {
            for (name, _) in due {
                self.report.checkpoint_finding(
                    &name,
                    FindingCode::CheckpointRoot,
                    format!("size {at} but only {size} entries"),
                );
            }
        }
        if let Some(tiles) = self.tiles.take() {
            tiles.finish(size, &mut self.report);
        }
        let mut report = self.report;
        report.statistics = self.statistics;
        report.ledger = self.ledger;
        let replay = match self.rules {
            Rules::Unstarted(store) => {
                return Finished {
                    report,
                    store: Some(store),
                };
            }
            Rules::Ended => None,
            Rules::Running { replay, .. } => {
                report.replayed = size;
                Some(replay)
            }
            Rules::Stopped { replay, index } => {
                report.replayed = index;
                Some(replay)
            }
        };
        let store = replay.and_then(|replay| match conclude(&mut report, &replay) {
            Ok(()) => Some(replay.into_store()),
            Err(e) => {
                report.store_failure = Some(e.to_string());
                None
            }
        });
        Finished { report, store }
    }
}

/// The region the first entry of a log names and its root key in `trust`, or why there is none.
fn start_of(
    trust: &TrustStore,
    first: &[u8],
) -> Result<(RegionCode, PublicKey), (FindingCode, String)> {
    let region: RegionCode = LogEntry::open(first)
        .map_err(|f| (FindingCode::EntryMalformed, f.to_string()))?
        .1
        .region;
    let root = trust.region(&region).ok_or_else(|| {
        (
            FindingCode::EntrySignature,
            format!("the trust bundle has no root for region {region}"),
        )
    })?;
    let key = root.key.clone();
    Ok((region, key))
}

/// Hash tiles recomputed as the tree grows, compared with the node's as both are at hand. Each
/// level keeps only the hashes of its tile in progress (at most 256).
struct TileCheck {
    suite: Suite,
    /// Per level, the hashes of the incomplete tile, and how many full tiles came before it.
    levels: Vec<(Vec<[u8; 32]>, u64)>,
    /// Full tiles computed and not compared yet.
    computed: HashMap<TilePath, Vec<u8>>,
    /// Tiles served and not compared yet.
    served: HashMap<TilePath, Vec<u8>>,
}

impl TileCheck {
    fn new(suite: Suite) -> TileCheck {
        TileCheck {
            suite,
            levels: Vec::new(),
            computed: HashMap::new(),
            served: HashMap::new(),
        }
    }

    fn push_leaf(&mut self, leaf: [u8; 32], report: &mut AuditReport) {
        let mut carry = Some(leaf);
        let mut level = 0usize;
        while let Some(hash) = carry.take() {
            if level > usize::from(MAX_LEVEL) {
                break;
            }
            if self.levels.len() <= level {
                self.levels.push((Vec::new(), 0));
            }
            let (hashes, done) = &mut self.levels[level];
            hashes.push(hash);
            if hashes.len() == TILE_WIDTH as usize {
                let full = std::mem::take(hashes);
                let path = TilePath {
                    level: u8::try_from(level).ok(),
                    index: *done,
                    width: TILE_WIDTH,
                };
                *done += 1;
                carry = Some(subtree_root(self.suite, &full));
                self.computed.insert(path, full.concat());
                self.compare(path, report);
            }
            level += 1;
        }
    }

    fn wanted(&self) -> Vec<TilePath> {
        let mut paths: Vec<TilePath> = self
            .computed
            .keys()
            .filter(|p| !self.served.contains_key(p))
            .copied()
            .collect();
        paths.sort();
        paths
    }

    fn partials(&self) -> Vec<TilePath> {
        self.levels
            .iter()
            .enumerate()
            .filter(|(_, (hashes, _))| !hashes.is_empty())
            .filter_map(|(level, (hashes, done))| {
                Some(TilePath {
                    level: Some(u8::try_from(level).ok()?),
                    index: *done,
                    width: u32::try_from(hashes.len()).ok()?,
                })
            })
            .collect()
    }

    fn served(&mut self, path: TilePath, bytes: Vec<u8>, report: &mut AuditReport) {
        self.served.insert(path, bytes);
        self.compare(path, report);
    }

    fn compare(&mut self, path: TilePath, report: &mut AuditReport) {
        if !self.computed.contains_key(&path) || !self.served.contains_key(&path) {
            return;
        }
        let (Some(want), Some(served)) = (self.computed.remove(&path), self.served.remove(&path))
        else {
            return;
        };
        compare_tile(path, &want, &served, report);
    }

    /// Compares the partial tiles served with the tree's last hashes, and reports a served tile
    /// the tree of `size` entries does not have.
    fn finish(mut self, size: u64, report: &mut AuditReport) {
        for path in self.partials() {
            let level = path.level.map_or(0, usize::from);
            if let Some((hashes, _)) = self.levels.get(level) {
                self.computed.insert(path, hashes.concat());
                self.compare(path, report);
            }
        }
        let mut extra: Vec<TilePath> = self.served.into_keys().collect();
        extra.sort();
        for path in extra {
            match path.level {
                None => report.tile_finding(path, "an entry bundle where a hash tile was expected"),
                Some(_) => report.tile_finding(
                    path,
                    format!("a tile beyond the tree of {size} entries recomputed from the entries"),
                ),
            }
        }
    }
}

/// The root of a perfect subtree over 256 hashes of one level: a hash of the level eight above.
fn subtree_root(suite: Suite, hashes: &[[u8; 32]]) -> [u8; 32] {
    let mut level: Vec<[u8; 32]> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => node_hash(suite, left, right),
                [single] => *single,
                _ => [0; 32],
            })
            .collect();
    }
    level.first().copied().unwrap_or([0; 32])
}

fn compare_tile(path: TilePath, want: &[u8], served: &[u8], report: &mut AuditReport) {
    if path.level.is_none() {
        report.tile_finding(path, "an entry bundle where a hash tile was expected");
        return;
    }
    if served.len() != want.len() {
        report.tile_finding(
            path,
            format!(
                "{} bytes where {} hashes take {}",
                served.len(),
                path.width,
                want.len()
            ),
        );
        return;
    }
    let Some(i) = served
        .chunks(32)
        .zip(want.chunks(32))
        .position(|(s, w)| s != w)
    else {
        report.tiles_verified += 1;
        return;
    };
    let level = path.level.map_or(0, u32::from);
    let node = path.index.saturating_mul(u64::from(TILE_WIDTH)) + i as u64;
    report.tile_finding(
        path,
        format!(
            "hash {i} (node {node} at height {}) differs from the tree recomputed from the entries",
            8 * level
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::checkpoint::Checkpoint;
    use crate::log::note::NoteRole;
    use crate::log::proof::MemoryTree;
    use crate::log::tiles::tiles_of_tree;
    use crate::testkit::log::sample;

    const ORIGIN: &str = "tongban.example/341200/log/9";

    struct Fixture {
        key: crate::keys::SecretKey,
        vkey: String,
        trust: Vec<u8>,
        entries: Vec<Vec<u8>>,
        tree: MemoryTree,
    }

    /// `n` entries that are not log entries (the rules stop at the first; the tree, the
    /// checkpoints and the tiles are what these tests look at).
    fn fixture(n: u32) -> Result<Fixture, Box<dyn std::error::Error>> {
        let key = crate::testkit::key("streaming audit log")?;
        let vkey = NoteVerifier::new(ORIGIN, NoteRole::Log, key.public().clone())?.to_vkey();
        let entries: Vec<Vec<u8>> = (0..n).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut tree = MemoryTree::new(crate::suite::Suite::Ed25519);
        for e in &entries {
            tree.append(e)?;
        }
        Ok(Fixture {
            key,
            vkey,
            trust: sample()?.trust_bundle,
            entries,
            tree,
        })
    }

    impl Fixture {
        fn note(
            &self,
            size: u64,
            root: Option<[u8; 32]>,
        ) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
            let root = match root {
                Some(root) => root,
                None => self.tree.root(size)?,
            };
            Ok(Checkpoint {
                origin: ORIGIN.into(),
                size,
                root,
            }
            .sign(ORIGIN, &self.key)?
            .into_bytes())
        }
    }

    fn done(finished: Finished<MemoryStore>) -> AuditReport {
        finished.report
    }

    #[test]
    fn hash_tiles_and_checkpoints_are_checked_as_the_tree_grows()
    -> Result<(), Box<dyn std::error::Error>> {
        // Three levels of tiles, partial tiles at each.
        let f = fixture(70_000)?;
        let mut audit = LogAudit::new(&f.vkey, &f.trust, true);
        for size in [1, 256, 65_536, 70_000] {
            assert_eq!(
                audit.checkpoint(&format!("{size}"), &f.note(size, None)?),
                Some(size)
            );
        }
        let mut served = 0;
        for entry in &f.entries {
            audit.entry(entry.clone());
            for path in audit.tiles_wanted() {
                let level = path.level.ok_or("a hash tile")?;
                audit.served_tile(path, f.tree.tile(level, path.index, path.width)?);
                served += 1;
            }
        }
        for path in audit.partial_tiles() {
            let level = path.level.ok_or("a hash tile")?;
            audit.served_tile(path, f.tree.tile(level, path.index, path.width)?);
            served += 1;
        }
        assert_eq!(served, tiles_of_tree(70_000).len());
        let report = done(audit.finish());
        assert_eq!(report.tiles_verified, served);
        assert_eq!(
            (report.checkpoints_verified, report.largest_checkpoint),
            (4, Some(70_000))
        );
        // The only finding is the rules', at entry 0 (these are not log entries).
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert_eq!(report.findings[0].entry, Some(0));
        Ok(())
    }

    #[test]
    fn bad_tiles_and_checkpoints_are_findings() -> Result<(), Box<dyn std::error::Error>> {
        let f = fixture(600)?;
        let mut audit = LogAudit::new(&f.vkey, &f.trust, true);
        // Unsigned (another key): refused before its size is used.
        let stranger = crate::testkit::key("stranger")?;
        let forged = Checkpoint {
            origin: ORIGIN.into(),
            size: 1 << 40,
            root: [1; 32],
        }
        .sign(ORIGIN, &stranger)?;
        assert_eq!(audit.checkpoint("forged", forged.as_bytes()), None);
        // Two roots for one size: equivocation; a wrong root: caught at its size; beyond the log.
        audit.checkpoint("a", &f.note(300, None)?);
        audit.checkpoint("b", &f.note(300, Some([2; 32]))?);
        audit.checkpoint("c", &f.note(400, Some([3; 32]))?);
        audit.checkpoint("d", &f.note(900, Some([4; 32]))?);
        for entry in &f.entries[..500] {
            audit.entry(entry.clone());
        }
        // Given after the tree passed its size.
        audit.checkpoint("late", &f.note(450, None)?);
        for entry in &f.entries[500..] {
            audit.entry(entry.clone());
        }
        let mut bad = f.tree.tile(0, 1, 256)?;
        bad[7 * 32] ^= 1;
        audit.served_tile(
            TilePath {
                level: Some(0),
                index: 1,
                width: 256,
            },
            bad,
        );
        let report = done(audit.finish());
        let found: Vec<(FindingCode, Option<&str>, Option<&str>)> = report
            .findings
            .iter()
            .filter(|f| f.entry.is_none())
            .map(|f| (f.code, f.checkpoint.as_deref(), f.tile.as_deref()))
            .collect();
        assert_eq!(
            found,
            vec![
                (FindingCode::CheckpointSignature, Some("forged"), None),
                (FindingCode::Equivocation, Some("b"), None),
                (FindingCode::CheckpointRoot, Some("c"), None),
                (FindingCode::CheckpointRoot, Some("late"), None),
                (FindingCode::TileHash, None, Some("0/001")),
                (FindingCode::CheckpointRoot, Some("d"), None),
            ]
        );
        assert_eq!(report.checkpoints_verified, 1);
        Ok(())
    }

    #[test]
    fn a_stopped_replay_describes_the_state_before_the_refused_entry()
    -> Result<(), Box<dyn std::error::Error>> {
        let log = sample()?;
        let mut tampered = log.entries.clone();
        let last = tampered[5].len() - 1;
        tampered[5][last] ^= 1;
        let mut audit = LogAudit::new(&log.vkey, &log.trust_bundle, false);
        for entry in &tampered {
            audit.entry(entry.clone());
        }
        let report = audit.finish().report;
        assert_eq!(report.replayed, 5);
        assert_eq!(report.findings[0].entry, Some(5));
        // Exactly the state a replay of the first five entries reaches.
        let mut audit = LogAudit::new(&log.vkey, &log.trust_bundle, false);
        for entry in &log.entries[..5] {
            audit.entry(entry.clone());
        }
        let expected = audit.finish().report;
        assert!(expected.is_clean(), "{:?}", expected.findings);
        assert_eq!(
            report.statistics.final_states,
            expected.statistics.final_states
        );
        assert!(!report.statistics.final_states.is_empty());
        assert_eq!(report.statistics.issued, expected.statistics.issued);
        assert_eq!(report.agencies, expected.agencies);
        Ok(())
    }
}
