//! Audit replay finds every kind of tampering named in specs/log.md §7.

use tongban_core::keys::SecretKey;
use tongban_core::log::audit::{AuditInput, AuditReport, FindingCode, replay, replay_many};
use tongban_core::log::entry::{Act, LogEntry};
use tongban_core::status::State;
use tongban_core::testkit::log::{SampleLog, sample, transfer_pair};
use tongban_core::testkit::{NOW, key, time};

fn audit(log: &SampleLog) -> AuditReport {
    replay(&AuditInput {
        log_key: &log.vkey,
        trust_bundle: &log.trust_bundle,
        entries: &log.entries,
        checkpoints: &log.checkpoints,
        hash_tiles: &[],
    })
}

fn first(report: &AuditReport) -> (FindingCode, Option<u64>) {
    let f = report
        .findings
        .first()
        .unwrap_or_else(|| panic!("no finding"));
    (f.code, f.entry)
}

#[test]
fn a_clean_log_replays_with_statistics() -> Result<(), Box<dyn std::error::Error>> {
    let log = sample()?;
    let report = audit(&log);
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(
        (
            report.replayed,
            report.checkpoints_verified,
            report.largest_checkpoint
        ),
        (11, 3, Some(11))
    );
    let s = &report.statistics;
    assert_eq!(
        (s.issued, s.verifications, s.verifications_cross_region),
        (4, 100, 7)
    );
    assert_eq!(s.issued_by_month.get("2026-01"), Some(&2));
    assert_eq!(s.status_changes_by_state.get("revoked"), Some(&1));
    let states: Vec<(&str, u64)> = s
        .final_states
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        states,
        vec![
            (State::Cancelled.name(), 1),
            (State::Revoked.name(), 1),
            (State::Suspended.name(), 1),
            (State::Valid.name(), 1)
        ]
    );
    Ok(())
}

#[test]
fn a_tampered_entry_breaks_the_roots_and_its_signature() -> Result<(), Box<dyn std::error::Error>> {
    let mut log = sample()?;
    let last = log.entries[5].len() - 70;
    log.entries[5][last] ^= 1;
    let report = audit(&log);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == FindingCode::CheckpointRoot
                && f.checkpoint.as_deref() == Some("7.checkpoint"))
    );
    assert!(report.findings.iter().any(|f| f.entry == Some(5)));
    Ok(())
}

#[test]
fn truncation_is_found() -> Result<(), Box<dyn std::error::Error>> {
    let mut log = sample()?;
    log.entries.truncate(9);
    let report = audit(&log);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].code, FindingCode::CheckpointRoot);
    assert_eq!(
        report.findings[0].checkpoint.as_deref(),
        Some("11.checkpoint")
    );
    Ok(())
}

#[test]
fn reordering_is_found() -> Result<(), Box<dyn std::error::Error>> {
    let mut log = sample()?;
    log.entries.swap(3, 4);
    let report = audit(&log);
    assert_eq!(first(&report), (FindingCode::CheckpointRoot, None));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == FindingCode::UnknownCertificate && f.entry == Some(3))
    );
    Ok(())
}

#[test]
fn a_forged_entry_is_found() -> Result<(), Box<dyn std::error::Error>> {
    let mut log = sample()?;
    let forger = key("forger")?;
    let (_, genuine) = LogEntry::open(&log.entries[7])?;
    log.entries[7] = genuine.sign(&forger)?;
    let cp = log.checkpoint(11)?;
    log.checkpoints = vec![("11.checkpoint".into(), cp)];
    let report = audit(&log);
    assert_eq!(first(&report), (FindingCode::EntrySignature, Some(7)));
    assert_eq!(report.replayed, 7);
    Ok(())
}

/// A receipts entry claiming `u64::MAX` verifications, with a bad signature: reported as a bad
/// signature, not a panic (its count is read before the parallel replay checks signatures).
#[test]
fn a_forged_huge_count_is_a_finding_not_an_overflow() -> Result<(), Box<dyn std::error::Error>> {
    let mut log = sample()?;
    let mut forged = LogEntry {
        region: tongban_core::testkit::region_code("341200")?,
        at: time(NOW)?,
        act: Act::Receipts {
            count: u64::MAX,
            root: [1; 32],
            cross_region: u64::MAX,
        },
    }
    .sign(&SecretKey::from_seed(&tongban_core::testkit::seed(
        "region 341200 root",
    ))?)?;
    let last = forged.last_mut().ok_or("an empty entry")?;
    *last ^= 1;
    log.entries.push(forged);
    log.checkpoints.clear();
    let report = audit(&log);
    assert_eq!(first(&report), (FindingCode::EntrySignature, Some(11)));
    assert_eq!(report.statistics.verifications, 100);
    Ok(())
}

#[test]
fn equivocation_is_found() -> Result<(), Box<dyn std::error::Error>> {
    let mut log = sample()?;
    let mut fork = sample()?;
    fork.entries[10] = LogEntry {
        region: tongban_core::testkit::region_code("341200")?,
        at: time(NOW)?,
        act: Act::Receipts {
            count: 1,
            root: [1; 32],
            cross_region: 0,
        },
    }
    .sign(&SecretKey::from_seed(&tongban_core::testkit::seed(
        "region 341200 root",
    ))?)?;
    log.checkpoints
        .push(("fork-11.checkpoint".into(), fork.checkpoint(11)?));
    let report = audit(&log);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == FindingCode::Equivocation)
    );
    Ok(())
}

#[test]
fn a_disallowed_transition_is_found() -> Result<(), Box<dyn std::error::Error>> {
    let mut log = sample()?;
    let (_, suspend) = LogEntry::open(&log.entries[4])?;
    let mut bad = suspend.clone();
    if let Act::StatusChanged { to, .. } = &mut bad.act {
        *to = State::Revoked;
    }
    log.entries[4] = bad.sign(&SecretKey::from_seed(&tongban_core::testkit::seed(
        "seal 341200 FY-AMR-01",
    ))?)?;
    log.checkpoints.clear();
    let report = audit(&log);
    assert_eq!(first(&report), (FindingCode::TransitionNotAllowed, Some(4)));
    Ok(())
}

#[test]
fn garbage_never_panics() {
    let log = sample().unwrap_or_else(|e| panic!("{e}"));
    let garbage = vec![vec![0xd2, 0x84], vec![], vec![0xff; 100]];
    let report = replay(&AuditInput {
        log_key: "not a key",
        trust_bundle: b"junk",
        entries: &garbage,
        checkpoints: &[],
        hash_tiles: &[],
    });
    assert!(!report.is_clean());
    let report = replay(&AuditInput {
        log_key: &log.vkey,
        trust_bundle: &log.trust_bundle,
        entries: &garbage,
        checkpoints: &[("x".into(), b"junk".to_vec())],
        hash_tiles: &[],
    });
    assert!(!report.is_clean());
}

fn input(log: &SampleLog) -> AuditInput<'_> {
    AuditInput {
        log_key: &log.vkey,
        trust_bundle: &log.trust_bundle,
        entries: &log.entries,
        checkpoints: &log.checkpoints,
        hash_tiles: &[],
    }
}

#[test]
fn logs_of_several_regions_are_cross_checked() -> Result<(), Box<dyn std::error::Error>> {
    let (fuyang, jinan) = transfer_pair(true)?;
    let reports = replay_many(&[input(&fuyang), input(&jinan)]);
    assert!(
        reports.iter().all(AuditReport::is_clean),
        "{:?}",
        reports.iter().map(|r| &r.findings).collect::<Vec<_>>()
    );
    assert_eq!(reports[1].statistics.transferred_in, 1);
    let (fuyang, jinan) = transfer_pair(false)?;
    let reports = replay_many(&[input(&fuyang), input(&jinan)]);
    assert!(reports[0].is_clean());
    assert_eq!(
        first(&reports[1]),
        (FindingCode::TransferUnmatched, Some(1))
    );
    // Alone, the Jinan log cannot be cross-checked, and is clean.
    assert!(replay(&input(&jinan)).is_clean());
    Ok(())
}

#[test]
fn served_hash_tiles_must_be_the_recomputed_trees() -> Result<(), Box<dyn std::error::Error>> {
    use tongban_core::log::proof::MemoryTree;
    use tongban_core::log::tiles::TilePath;
    let log = sample()?;
    let mut tree = MemoryTree::new(tongban_core::suite::Suite::Ed25519);
    for e in &log.entries {
        tree.append(e)?;
    }
    let path = |level, width| TilePath {
        level: Some(level),
        index: 0,
        width,
    };
    let good = tree.tile(0, 0, 11)?;
    let with = |tiles: &[(TilePath, Vec<u8>)]| {
        replay(&AuditInput {
            hash_tiles: tiles,
            ..input(&log)
        })
    };
    assert!(with(&[(path(0, 11), good.clone())]).is_clean());
    let mut flipped = good.clone();
    flipped[5 * 32 + 3] ^= 1;
    let short = good[..10 * 32].to_vec();
    let entries = TilePath {
        level: None,
        index: 0,
        width: 11,
    };
    for (tiles, says) in [
        (vec![(path(0, 11), flipped)], "hash 5 (node 5 at height 0)"),
        (
            vec![(path(0, 11), short)],
            "320 bytes where 11 hashes take 352",
        ),
        (vec![(path(0, 12), good.clone())], "beyond the tree of 11"),
        (vec![(path(1, 1), good.clone())], "beyond the tree of 11"),
        (vec![(entries, good.clone())], "an entry bundle"),
    ] {
        let report = with(&tiles);
        let f = report
            .findings
            .first()
            .unwrap_or_else(|| panic!("no finding for {says}"));
        assert_eq!(f.code, FindingCode::TileHash);
        assert!(f.detail.contains(says), "{}", f.detail);
        assert_eq!(f.tile.as_deref(), Some(tiles[0].0.to_path().as_str()));
        // The entries themselves replay as before: the tile is the only finding.
        assert_eq!((report.findings.len(), report.replayed), (1, 11));
    }
    Ok(())
}
