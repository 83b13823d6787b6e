//! A real node process on loopback: holder-consented presentation codes (亮证码) made by one
//! agency and resolved by another, with every refusal, many staff resolving one code at once,
//! and the audit of the log that records it all (specs/presentation.md §2, specs/api.yaml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_process;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use node_process::{AGENCY_A, AGENCY_B, Node, certificate};
use serde_json::{Value, json};

/// A counter agency that resolves codes: its seal has no sharing scope at all.
const AGENCY_C: &str = "11341200MB0000004Q";

fn make(node: &Node, token: &str, id: &str, fields: &[&str], extra: Value) -> node_process::Reply {
    let mut body = json!({"id": id, "fields": fields});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    node.post("/v1/presentations", Some(token), &body)
}

fn resolve(node: &Node, token: &str, code: &str) -> node_process::Reply {
    node.post(
        "/v1/presentations/resolve",
        Some(token),
        &json!({"code": code, "purpose": "企业开户核验", "case": "FY-2026-0456"}),
    )
}

fn issue(node: &Node, token: &str, seal: &str, serial: &str) -> String {
    let issued = node.post("/v1/certificates", Some(token), &certificate(seal, serial));
    assert_eq!(issued.status, 201, "{}", issued.text());
    issued.json()["id"].as_str().unwrap().to_owned()
}

#[test]
fn codes_show_chosen_fields_to_staff_until_used_up_expired_or_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    // The node's public address: its codes' QR codes link its verification page.
    let config = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(
        "[http]\n",
        "[http]\npublic_url = \"https://zwfw.example.gov.cn/fy/\"\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    node.start();
    let (a, seal_a) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let (app, _) = node.agency_with_seal(AGENCY_B, "FY-APP-1");
    let (c, seal_c) = node.agency_with_seal(AGENCY_C, "FY-BANK-1");
    let id = issue(&node, &a, &seal_a, "2026000001");

    // A short-lived code first: it must expire while the rest runs.
    let short = make(
        &node,
        &app,
        &id,
        &["holder.name"],
        json!({"lifetime_seconds": 10}),
    );
    assert_eq!(short.status, 201, "{}", short.text());
    let short_code = short.json()["code"].as_str().unwrap().to_owned();
    let short_made = Instant::now();

    // The app makes a code for two fields, usable twice.
    let made = make(
        &node,
        &app,
        &id,
        &["licence.capital", "holder.name"],
        json!({"uses": 2}),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let made = made.json();
    let code = made["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("341200-") && code.len() == 18, "{code}");
    let url = format!("https://zwfw.example.gov.cn/fy/verify/#TBP1:{code}");
    assert_eq!((&made["url"], &made["qr_text"]), (&json!(url), &json!(url)));
    assert!(made["qr_svg"].as_str().unwrap().starts_with("<?xml"));
    assert_eq!(made["uses"], 2);
    let lifetime = made["expires"].as_u64().unwrap() - node_process::now().seconds();
    assert!((295..=300).contains(&lifetime), "{lifetime}");

    // Staff resolve it as a scanner gives it, and as a person types it.
    let scanned = format!("TBP1:{code}\r\n");
    let reply = resolve(&node, &c, &scanned);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let copy = reply.json();
    assert_eq!(
        (copy["code"].clone(), copy["id"].clone()),
        ("OK".into(), json!(id))
    );
    assert_eq!(copy["recipient"]["agency"], AGENCY_C);
    let mut names: Vec<&str> = copy["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["holder.name", "licence.capital"]);
    assert!(copy["received_log_index"].as_u64() > copy["log_index"].as_u64());
    // The copy is the counter agency's: it verifies for it, not for the app.
    let presented = json!({"copy": copy["copy"]});
    assert_eq!(
        node.post("/v1/copies/verify", Some(&c), &presented).json()["code"],
        "OK"
    );
    assert_eq!(
        node.post("/v1/copies/verify", Some(&app), &presented)
            .json()["code"],
        "COPY_WRONG_RECIPIENT"
    );
    let typed = code.to_ascii_lowercase().replace('-', " ");
    let with_seal = node.post(
        "/v1/presentations/resolve",
        Some(&c),
        &json!({"code": typed, "purpose": "p", "case": "c", "seal": seal_c}),
    );
    assert_eq!(with_seal.status, 201, "{}", with_seal.text());
    // Two uses spent: the third is refused, and the refusal is logged.
    let reply = resolve(&node, &c, &code);
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "PRESENTATION_USED_UP")
    );
    assert!(reply.json()["log_index"].as_u64().is_some());

    // Malformed and unknown codes.
    for bad in ["341200-7KQ9M", "341200-UUUUU-UUUUU", "TB1:xyz"] {
        let reply = resolve(&node, &c, bad);
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, "PRESENTATION_MALFORMED"),
            "{bad}"
        );
    }
    let reply = resolve(&node, &c, "341200-00000-00000");
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (404, "PRESENTATION_UNKNOWN")
    );
    assert!(reply.json()["log_index"].as_u64().is_some());
    // Another region's code, and this node is in no federation.
    let reply = resolve(&node, &c, "370100-7KQ9M-2XDPT");
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (503, "REGION_UNREACHABLE")
    );

    // What a code may be made for.
    let cases = [
        (
            make(&node, &app, &id, &["licence.not_there"], json!({})),
            409,
            "SHARE_FIELD_UNAVAILABLE",
        ),
        (
            make(&node, &app, &id, &["holder.name"], json!({"uses": 0})),
            400,
            "INVALID_REQUEST",
        ),
        (
            make(&node, &app, &id, &["holder.name"], json!({"uses": 101})),
            400,
            "INVALID_REQUEST",
        ),
        (
            make(
                &node,
                &app,
                &id,
                &["holder.name"],
                json!({"lifetime_seconds": 1801}),
            ),
            400,
            "INVALID_REQUEST",
        ),
        (
            make(&node, &app, &id, &[], json!({})),
            400,
            "INVALID_REQUEST",
        ),
        (
            make(&node, &app, &id, &["Name"], json!({})),
            400,
            "INVALID_REQUEST",
        ),
    ];
    for (reply, status, code) in cases {
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (status, code),
            "{}",
            reply.text()
        );
    }
    let unknown = id.replace("2026000001", "2026000099");
    let reply = make(&node, &app, &unknown, &["holder.name"], json!({}));
    assert!(matches!(reply.status, 400 | 404), "{}", reply.text());
    let reply = node.post(
        "/v1/presentations",
        None,
        &json!({"id": id, "fields": ["holder.name"]}),
    );
    assert_eq!(reply.status, 401);

    // A code outlives its certificate's validity only on paper: revoked, it shows nothing.
    let second = issue(&node, &a, &seal_a, "2026000002");
    let made = make(&node, &app, &second, &["holder.name"], json!({}));
    let revoked_code = made.json()["code"].as_str().unwrap().to_owned();
    let reply = node.post(
        &format!("/v1/certificates/{second}/status"),
        Some(&a),
        &json!({"operation": "revoke", "reason": "吊销"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = resolve(&node, &c, &revoked_code);
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "STATUS_REVOKED")
    );
    let reply = make(&node, &app, &second, &["holder.name"], json!({}));
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "STATUS_REVOKED")
    );

    // Many counters resolve one code at once: exactly its uses succeed.
    let third = issue(&node, &a, &seal_a, "2026000003");
    let made = make(&node, &app, &third, &["holder.name"], json!({"uses": 3}));
    let shared_code = made.json()["code"].as_str().unwrap().to_owned();
    let barrier = Barrier::new(12);
    let statuses: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let reply = resolve(&node, &c, &shared_code);
                    (reply.status, reply.code())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let given = statuses.iter().filter(|(s, _)| *s == 201).count();
    let used_up = statuses
        .iter()
        .filter(|(s, c)| *s == 409 && c == "PRESENTATION_USED_UP")
        .count();
    assert_eq!((given, used_up), (3, 9), "{statuses:?}");

    // The short code has expired by now (or soon).
    let left = Duration::from_secs(11).saturating_sub(short_made.elapsed());
    std::thread::sleep(left);
    let reply = resolve(&node, &c, &short_code);
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "PRESENTATION_EXPIRED")
    );

    // The region's month, counted live from its log (unless the month turned meanwhile).
    let month = node.get("/v1/report/month", None);
    assert_eq!(month.status, 200, "{}", month.text());
    let month = month.json();
    let figures = &month["figures"];
    if figures["entries"].as_f64() == Some(month["last_index"].as_f64().unwrap_or(-1.0) + 1.0) {
        assert_eq!(figures["issued"], 3.0);
        assert_eq!(figures["presentations_made"], 4.0);
        assert_eq!(figures["presentations_resolved"], 5.0);
        assert_eq!(figures["refusals:PRESENTATION_USED_UP"], 10.0);
        assert_eq!(figures["refusals:PRESENTATION_EXPIRED"], 1.0);
        assert_eq!(figures["refusals:PRESENTATION_UNKNOWN"], 1.0);
        assert_eq!(figures["refusals:STATUS_REVOKED"], 1.0);
        assert_eq!(figures["status_changes:revoked"], 1.0);
    } else {
        // Only on a run across midnight at a month's end, Beijing time.
        eprintln!("the month turned during the test: its figures are not checked");
    }

    // The log holds all of it, and passes its own rules on a restart and in an audit.
    node.kill9();
    let (ok, report) = node.check();
    assert!(ok, "{report}");
    node.start();
    let reply = resolve(&node, &c, &code);
    assert_eq!(
        reply.code(),
        "PRESENTATION_USED_UP",
        "uses survive a restart"
    );
}
