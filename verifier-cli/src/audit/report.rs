//! The replay report, for people and as JSON.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tongban_core::log::audit::AuditReport;

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "—".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn text(source: &str, r: &AuditReport) -> String {
    let verdict = if r.is_clean() {
        "CLEAN".to_owned()
    } else {
        format!(
            "{} FINDING(S)",
            r.findings.len() as u64 + r.findings_omitted
        )
    };
    let region = r.region.as_ref().map_or("?".to_owned(), |c| c.to_string());
    let mut out = format!(
        "AUDIT {} — {} (region {region}, {})\n",
        r.origin, verdict, source
    );
    for f in &r.findings {
        let place = match (f.entry, &f.checkpoint, &f.tile) {
            (Some(i), _, _) => format!("entry {i}"),
            (None, Some(name), _) => format!("checkpoint {name}"),
            (None, None, Some(tile)) => format!("tile {tile}"),
            (None, None, None) => "log".into(),
        };
        out.push_str(&format!("  ✗ {place}: {} — {}\n", f.code, f.detail));
    }
    if r.findings_omitted > 0 {
        out.push_str(&format!("  ✗ … and {} more findings\n", r.findings_omitted));
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
        (
            "codes shown",
            format!(
                "{} made, {} resolved ({} by other regions)",
                s.presentations_made,
                s.presentations_resolved,
                s.presentations_resolved_cross_region
            ),
        ),
        ("codes refused", counts(&s.presentations_refused)),
    ];
    for (k, v) in rows {
        out.push_str(&format!("  {k:16}{v}\n"));
    }
    if r.tiles_verified > 0 {
        out.push_str(&format!(
            "  {:16}{} served by the node, equal to the recomputed tree's\n",
            "hash tiles", r.tiles_verified
        ));
    }
    out
}

pub fn json(source: &str, r: &AuditReport) -> Value {
    let s = &r.statistics;
    json!({
        "source": source,
        "origin": r.origin,
        "region": r.region.as_ref().map(|c| c.to_string()),
        "clean": r.is_clean(),
        "entries": r.entries,
        "replayed": r.replayed,
        "checkpoints_verified": r.checkpoints_verified,
        "largest_checkpoint": r.largest_checkpoint,
        "hash_tiles_verified": r.tiles_verified,
        "findings_omitted": r.findings_omitted,
        "findings": r.findings.iter().map(|f| json!({"code": f.code.as_str(), "entry": f.entry, "checkpoint": f.checkpoint, "tile": f.tile, "detail": f.detail})).collect::<Vec<_>>(),
        "statistics": {
            "issued": s.issued, "issued_by_type": s.issued_by_type, "issued_by_agency": s.issued_by_agency,
            "issued_by_month": s.issued_by_month, "transferred_in": s.transferred_in,
            "status_changes_by_state": s.status_changes_by_state, "final_states": s.final_states,
            "verifications": s.verifications, "verifications_cross_region": s.verifications_cross_region,
            "shares_given": s.shares_given, "shares_given_cross_region": s.shares_given_cross_region,
            "shares_refused": s.shares_refused, "copies_received": s.copies_received,
            "copies_received_cross_region": s.copies_received_cross_region,
            "proofs_received": s.proofs_received,
            "presentations_made": s.presentations_made,
            "presentations_resolved": s.presentations_resolved,
            "presentations_resolved_cross_region": s.presentations_resolved_cross_region,
            "presentations_refused": s.presentations_refused,
        },
    })
}
