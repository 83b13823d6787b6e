//! Presenting verification results and inspections to people and machines.

use serde_json::{Value, json};
use tongban_core::cert::{Claims, Inspection, StatusView, Verification};
use tongban_core::codes::Code;
use tongban_core::values::Time;

use crate::vectors::field_json;

fn time(t: Time) -> String {
    t.to_rfc3339()
}

fn claims_json(c: &Claims) -> Value {
    json!({
        "identifier": c.id.as_str(),
        "type_code": c.id.type_code().as_str(),
        "type_name": c.type_name.as_str(),
        "agency": c.agency.as_str(),
        "agency_name": c.agency_name.as_str(),
        "region": c.region.as_str(),
        "issued": c.issued.seconds(),
        "valid_from": c.valid_from.seconds(),
        "valid_until": c.valid_until.map(Time::seconds),
        "trust_level": c.level.as_str(),
        "promise_deadline": c.promise_deadline.map(Time::seconds),
        "predecessor": c.predecessor.as_ref().map(|p| json!({"identifier": p.id.as_str(), "operation": p.how.code()})),
        "committed_fields": c.digests.len(),
        "status_index": c.status_index,
    })
}

fn status_json(v: &Verification) -> Value {
    let age = v.status_age();
    match &v.status {
        StatusView::Unknown => json!({"known": false}),
        StatusView::Valid { as_of } => json!({
            "known": true, "state": 1, "name": "valid", "as_of": as_of.seconds(), "age_seconds": age,
        }),
        StatusView::Listed {
            state,
            since,
            note,
            as_of,
        } => json!({
            "known": true, "state": state.code(), "name": state.name(),
            "since": since.map(Time::seconds), "note": note.as_ref().map(|n| n.as_str()),
            "as_of": as_of.seconds(), "age_seconds": age,
        }),
    }
}

/// How old status data is, for people: "3 min", "2 h 5 min".
fn age_text(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// The machine-readable result of `verify --json`.
pub fn verification_json(v: &Verification) -> Value {
    json!({
        "verdict": v.verdict.as_str(),
        "code": v.code.as_str(),
        "message": v.code.about(),
        "detail": v.detail,
        "kid": v.kid.map(|k| k.to_hex()),
        "digest": v.digest.map(hex::encode),
        "seal": v.seal.as_ref().map(|(id, name)| json!({"id": id, "name": name})),
        "claims": v.claims.as_ref().map(claims_json),
        "disclosed": v.disclosed.iter().map(|(n, val)| json!({"name": n.as_str(), "value": field_json(val)})).collect::<Vec<_>>(),
        "undisclosed": v.undisclosed,
        "status": status_json(v),
    })
}

fn claims_lines(c: &Claims, out: &mut Vec<(String, String)>) {
    let mut row = |k: &str, v: String| out.push((k.to_owned(), v));
    row("identifier", c.id.as_str().to_owned());
    row("type", format!("{} ({})", c.type_name, c.id.type_code()));
    row(
        "issued by",
        format!("{} ({}), region {}", c.agency_name, c.agency, c.region),
    );
    row("issued at", time(c.issued));
    let until = c
        .valid_until
        .map_or("no end date (长期有效)".to_owned(), time);
    row("valid", format!("{} → {until}", time(c.valid_from)));
    row("trust level", c.level.as_str().to_owned());
    if let Some(pd) = c.promise_deadline {
        row("promise due", time(pd));
    }
    if let Some(p) = &c.predecessor {
        row(
            "succeeds",
            format!("{} (operation {:02})", p.id, p.how.code()),
        );
    }
}

/// Two aligned columns, one row per line.
pub(crate) fn table<K: AsRef<str>>(rows: &[(K, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.as_ref().chars().count())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("  {:width$}  {v}\n", k.as_ref()))
        .collect()
}

/// The first line(s) of a human-readable result: `VALID — <valid>`, or the code, what it means
/// and why.
pub fn verdict_line(valid: bool, what: &str, code: Code, detail: &str) -> String {
    if valid {
        format!("VALID — {what}\n")
    } else {
        format!("INVALID — {code}: {}\n  why: {detail}\n", code.about())
    }
}

/// The human-readable result of `verify`.
pub fn verification_text(v: &Verification) -> String {
    let mut out = verdict_line(v.is_valid(), "every check passed", v.code, &v.detail);
    let mut rows = Vec::new();
    if let Some(c) = &v.claims {
        claims_lines(c, &mut rows);
    }
    if let Some((id, name)) = &v.seal {
        rows.push(("seal".into(), format!("{id} {name}")));
    }
    let per = |as_of: Time| {
        format!(
            "per status of {} ({} old)",
            time(as_of),
            age_text(v.status_age().unwrap_or_default())
        )
    };
    let status = match &v.status {
        StatusView::Unknown => {
            "unknown (no current status list or snapshot of the issuing region covers it)"
                .to_owned()
        }
        StatusView::Valid { as_of } => format!("01 valid, {}", per(*as_of)),
        StatusView::Listed {
            state,
            since,
            note,
            as_of,
        } => format!(
            "{state}{}{}, {}",
            since
                .map(|s| format!(" since {}", time(s)))
                .unwrap_or_default(),
            note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default(),
            per(*as_of)
        ),
    };
    if v.claims.is_some() {
        rows.push(("status".into(), status));
    }
    let mut disclosed: Vec<_> = v.disclosed.iter().collect();
    // People read holder fields first, then licence fields by name; received order is arbitrary.
    disclosed.sort_by_key(|(name, _)| (!name.as_str().starts_with("holder."), name.as_str()));
    for (name, value) in disclosed {
        rows.push((name.as_str().to_owned(), value.to_string()));
    }
    if v.disclosures_checked {
        rows.push((
            "not disclosed".into(),
            format!("{} committed field(s) or decoys", v.undisclosed),
        ));
    }
    if let Some(d) = v.digest {
        rows.push(("digest".into(), hex::encode(d)));
    }
    out.push_str(&table(&rows));
    out
}

/// `inspect` output: nothing here is verified.
pub fn inspection_text(i: &Inspection) -> String {
    let mut out = String::from(
        "NOT VERIFIED — decoded for reading only; run `tongban-verify verify` to check it\n",
    );
    let mut rows = vec![
        ("seal kid".to_owned(), i.kid.to_hex()),
        ("digest".to_owned(), hex::encode(i.digest)),
    ];
    match &i.claims {
        Ok(c) => claims_lines(c, &mut rows),
        Err(f) => rows.push(("claims".into(), format!("undecodable: {f}"))),
    }
    for (disclosure, committed) in &i.disclosures {
        match disclosure {
            Ok(d) => rows.push((
                d.name.as_str().to_owned(),
                format!(
                    "{}{}",
                    d.value,
                    if *committed { "" } else { "  [NOT COMMITTED]" }
                ),
            )),
            Err(f) => rows.push(("disclosure".into(), format!("malformed: {f}"))),
        }
    }
    out.push_str(&table(&rows));
    out
}

pub fn inspection_json(i: &Inspection) -> Value {
    json!({
        "verified": false,
        "kid": i.kid.to_hex(),
        "digest": hex::encode(i.digest),
        "claims": match &i.claims { Ok(c) => claims_json(c), Err(f) => json!({"error": f.code.as_str(), "detail": f.detail}) },
        "disclosures": i.disclosures.iter().map(|(d, committed)| match d {
            Ok(d) => json!({"name": d.name.as_str(), "value": field_json(&d.value), "committed": committed}),
            Err(f) => json!({"error": f.code.as_str(), "detail": f.detail}),
        }).collect::<Vec<_>>(),
    })
}
