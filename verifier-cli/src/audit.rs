//! `tongban-verify audit replay`: read audit bundles (specs/log.md §6) and report what core's replay finds.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use tongban_core::log::audit::{AuditInput, AuditReport, decode_entries, replay_many};

/// One audit bundle directory, read into memory (specs/log.md §6).
pub struct Bundle {
    log_key: String,
    trust: Vec<u8>,
    entries: Vec<Vec<u8>>,
    checkpoints: Vec<(String, Vec<u8>)>,
}

impl Bundle {
    pub fn read(dir: &Path) -> Result<Bundle> {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .with_context(|| format!("cannot read {}", dir.join(name).display()))
        };
        let log_key = String::from_utf8(read("log.vkey")?).context("log.vkey is not text")?;
        let trust = read("trust.tbt")?;
        let entries = decode_entries(&read("entries")?).ok_or_else(|| {
            anyhow!(
                "{}: entries file is not length-prefixed entries",
                dir.display()
            )
        })?;
        let mut checkpoints = Vec::new();
        let folder = dir.join("checkpoints");
        let listing = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot list {}", folder.display()))?;
        for file in listing {
            let path = file?.path();
            if path.extension().is_some_and(|e| e == "checkpoint") {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                checkpoints.push((
                    name,
                    std::fs::read(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                ));
            }
        }
        checkpoints.sort();
        Ok(Bundle {
            log_key,
            trust,
            entries,
            checkpoints,
        })
    }

    fn input(&self) -> AuditInput<'_> {
        AuditInput {
            log_key: &self.log_key,
            trust_bundle: &self.trust,
            entries: &self.entries,
            checkpoints: &self.checkpoints,
        }
    }
}

/// Replays the bundles together, so that transfers between their regions are cross-checked.
pub fn replay_all(bundles: &[Bundle]) -> Vec<AuditReport> {
    let inputs: Vec<AuditInput<'_>> = bundles.iter().map(Bundle::input).collect();
    replay_many(&inputs)
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "—".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn text(dir: &Path, r: &AuditReport) -> String {
    let verdict = if r.is_clean() {
        "CLEAN".to_owned()
    } else {
        format!("{} FINDING(S)", r.findings.len())
    };
    let region = r.region.as_ref().map_or("?".to_owned(), |c| c.to_string());
    let mut out = format!(
        "AUDIT {} — {} (region {region}, {})\n",
        r.origin,
        verdict,
        dir.display()
    );
    for f in &r.findings {
        let place = match (f.entry, &f.checkpoint) {
            (Some(i), _) => format!("entry {i}"),
            (None, Some(name)) => format!("checkpoint {name}"),
            (None, None) => "log".into(),
        };
        out.push_str(&format!("  ✗ {place}: {} — {}\n", f.code, f.detail));
    }
    let s = &r.statistics;
    let share = if s.verifications == 0 {
        0.0
    } else {
        100.0 * s.verifications_cross_region as f64 / s.verifications as f64
    };
    let rows = [
        (
            "entries",
            format!(
                "{} ({} replayed before any bad entry)",
                r.entries, r.replayed
            ),
        ),
        (
            "checkpoints",
            format!(
                "{} verified, largest size {}",
                r.checkpoints_verified,
                r.largest_checkpoint.map_or("—".into(), |s| s.to_string())
            ),
        ),
        (
            "issued",
            format!("{} ({} transferred in)", s.issued, s.transferred_in),
        ),
        ("  by type", counts(&s.issued_by_type)),
        ("  by agency", counts(&s.issued_by_agency)),
        ("  by month", counts(&s.issued_by_month)),
        ("status changes", counts(&s.status_changes_by_state)),
        ("final states", counts(&s.final_states)),
        (
            "verifications",
            format!(
                "{} ({} for other regions, {share:.1} %)",
                s.verifications, s.verifications_cross_region
            ),
        ),
        (
            "copies given",
            format!(
                "{} ({} to other regions)",
                s.shares_given, s.shares_given_cross_region
            ),
        ),
        ("shares refused", counts(&s.shares_refused)),
        (
            "copies received",
            format!(
                "{} ({} from other regions)",
                s.copies_received, s.copies_received_cross_region
            ),
        ),
        ("proofs received", s.proofs_received.to_string()),
    ];
    for (k, v) in rows {
        out.push_str(&format!("  {k:16}{v}\n"));
    }
    out
}

pub fn json(dir: &Path, r: &AuditReport) -> Value {
    let s = &r.statistics;
    json!({
        "bundle": dir.display().to_string(),
        "origin": r.origin,
        "region": r.region.as_ref().map(|c| c.to_string()),
        "clean": r.is_clean(),
        "entries": r.entries,
        "replayed": r.replayed,
        "checkpoints_verified": r.checkpoints_verified,
        "largest_checkpoint": r.largest_checkpoint,
        "findings": r.findings.iter().map(|f| json!({"code": f.code.as_str(), "entry": f.entry, "checkpoint": f.checkpoint, "detail": f.detail})).collect::<Vec<_>>(),
        "statistics": {
            "issued": s.issued, "issued_by_type": s.issued_by_type, "issued_by_agency": s.issued_by_agency,
            "issued_by_month": s.issued_by_month, "transferred_in": s.transferred_in,
            "status_changes_by_state": s.status_changes_by_state, "final_states": s.final_states,
            "verifications": s.verifications, "verifications_cross_region": s.verifications_cross_region,
            "shares_given": s.shares_given, "shares_given_cross_region": s.shares_given_cross_region,
            "shares_refused": s.shares_refused, "copies_received": s.copies_received,
            "copies_received_cross_region": s.copies_received_cross_region,
            "proofs_received": s.proofs_received,
        },
        "certificates": r.certificates.iter().map(|(id, st)| (id.clone(), json!(st.code()))).collect::<serde_json::Map<_, _>>(),
    })
}
