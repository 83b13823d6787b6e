//! A real node process on loopback, driven through every endpoint, including each refused case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_process;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use node_process::{AGENCY_A, AGENCY_B, Node, certificate};
use serde_json::json;
use tongban_core::ids::{Identifier, IssuerCode, TypeCode};
use tongban_core::log::note::NoteVerifier;
use tongban_core::log::receipt::Receipt;
use tongban_core::log::verification::VerificationReceipt;
use tongban_core::trust::TrustStore;

fn verify(node: &Node, cert_b64: &str) -> serde_json::Value {
    let reply = node.post(
        "/v1/verify",
        None,
        &json!({"certificate": cert_b64, "nonce": "00112233445566778899aabbccddeeff"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[test]
fn a_node_serves_its_whole_api_and_refuses_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    assert_eq!(node.get("/healthz", None).status, 200);

    // Authentication and roles.
    let reply = node.post(
        "/v1/admin/agencies",
        None,
        &json!({"uscc": AGENCY_A, "name": "x"}),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (401, "TOKEN_MISSING")
    );
    assert!(
        reply
            .headers
            .contains("content-type: application/problem+json")
    );
    let reply = node.post(
        "/v1/admin/agencies",
        Some("tb_wrong"),
        &json!({"uscc": AGENCY_A, "name": "x"}),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (401, "TOKEN_INVALID")
    );
    let reply = node.post(
        "/v1/admin/agencies",
        Some(&node.operator),
        &json!({"uscc": "11341200MB0000001X", "name": "x"}),
    );
    assert_eq!((reply.status, reply.code().as_str()), (400, "USCC_INVALID"));
    let (a, seal_a) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let (b, seal_b) = node.agency_with_seal(AGENCY_B, "FY-OTHER-1");
    let reply = node.post(
        "/v1/admin/agencies",
        Some(&a),
        &json!({"uscc": AGENCY_B, "name": "x"}),
    );
    assert_eq!((reply.status, reply.code().as_str()), (403, "FORBIDDEN"));
    let reply = node.post(
        "/v1/certificates",
        Some(&node.operator),
        &certificate(&seal_a, "1"),
    );
    assert_eq!(reply.status, 403);

    // Issuance: only with one's own seal, once per identifier.
    let reply = node.post(
        "/v1/certificates",
        Some(&b),
        &certificate(&seal_a, "2026000001"),
    );
    assert_eq!((reply.status, reply.code().as_str()), (403, "FORBIDDEN"));
    let issued = node.post(
        "/v1/certificates",
        Some(&a),
        &certificate(&seal_a, "2026000001"),
    );
    assert_eq!(issued.status, 201, "{}", issued.text());
    let issued = issued.json();
    let id = issued["id"].as_str().unwrap().to_owned();
    let cert = issued["certificate"].as_str().unwrap().to_owned();
    let reply = node.post(
        "/v1/certificates",
        Some(&a),
        &certificate(&seal_a, "2026000001"),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "DUPLICATE_IDENTIFIER")
    );
    assert_eq!(
        node.post(
            "/v1/certificates",
            Some(&b),
            &certificate(&seal_b, "2026000001")
        )
        .status,
        201
    );

    // Malformed, oversized and unknown input.
    let reply = node.request("POST", "/v1/certificates", Some(&a), Some(b"{not json"));
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "MALFORMED_BODY")
    );
    let mut extra = certificate(&seal_a, "2026000009");
    extra["surprise"] = json!(1);
    assert_eq!(
        node.post("/v1/certificates", Some(&a), &extra).code(),
        "MALFORMED_BODY"
    );
    let big = vec![b'x'; 300 * 1024];
    let reply = node.request("POST", "/v1/verify", None, Some(&big));
    assert_eq!((reply.status, reply.code().as_str()), (413, "TOO_LARGE"));
    let mut bad = certificate(&seal_a, "2026000010");
    bad["holder"]["id_number"] = json!("91341200MA2T00001X");
    assert_eq!(
        node.post("/v1/certificates", Some(&a), &bad).code(),
        "USCC_INVALID"
    );
    let wrong_check = format!("{}Z", &id[..id.len() - 1]);
    let reply = node.get(&format!("/v1/certificates/{wrong_check}/status"), None);
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "IDENTIFIER_INVALID")
    );
    let unknown = Identifier::new(
        TypeCode::parse(node_process::TYPE_CODE).unwrap(),
        IssuerCode::parse(AGENCY_A).unwrap(),
        "2026000099",
        "001",
    )
    .unwrap();
    let unknown = unknown.as_str();
    assert_eq!(
        node.get(&format!("/v1/certificates/{unknown}/status"), None)
            .status,
        404
    );
    assert_eq!(node.get("/v1/nowhere", None).status, 404);

    // Verification with a receipt that verifies under the region root of the node's bundle.
    let bundle = node.get("/v1/trust-bundle", None).body;
    let trust = TrustStore::load_any_time(&bundle, None).unwrap();
    let root = trust.regions()[0].key.clone();
    let answer = verify(&node, &cert);
    assert_eq!(
        (answer["verdict"].as_str(), answer["code"].as_str()),
        (Some("valid"), Some("OK"))
    );
    let receipt =
        VerificationReceipt::decode(&B64.decode(answer["receipt"].as_str().unwrap()).unwrap())
            .unwrap();
    let item = receipt.verify(&root).unwrap();
    assert_eq!(item.id.as_ref().map(|i| i.as_str()), Some(id.as_str()));
    assert_eq!(
        item.nonce,
        Some([
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff
        ])
    );
    let tampered = {
        let mut bytes = B64.decode(&cert).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        B64.encode(bytes)
    };
    assert_eq!(verify(&node, &tampered)["code"], "SIGNATURE_INVALID");

    // Selective disclosure on fetch, for the issuing agency only.
    let fetched = node.get(
        &format!("/v1/certificates/{id}?disclose=holder.name"),
        Some(&a),
    );
    assert_eq!(fetched.status, 200, "{}", fetched.text());
    let shown = verify(&node, fetched.json()["certificate"].as_str().unwrap());
    assert_eq!(shown["disclosed"], json!(["holder.name"]));
    assert_eq!(
        node.get(&format!("/v1/certificates/{id}"), Some(&b)).status,
        403
    );

    // The same as one QR code a holder shows (specs/presentation.md §1): the text decodes to the
    // presented certificate, which verifies; SVG by default, PNG on request; the owner only.
    let qr = node.get(
        &format!("/v1/certificates/{id}/qr?disclose=holder.name&format=text"),
        Some(&a),
    );
    assert_eq!(qr.status, 200, "{}", qr.text());
    assert_eq!(
        qr.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let inside = tongban_core::qr::decode(&qr.text()).unwrap();
    let shown = verify(&node, &B64.encode(&inside));
    assert_eq!(shown["disclosed"], json!(["holder.name"]));
    let svg = node.get(&format!("/v1/certificates/{id}/qr"), Some(&a));
    assert_eq!(svg.header("content-type").as_deref(), Some("image/svg+xml"));
    assert!(svg.text().contains("<svg"), "{}", svg.text());
    let png = node.get(&format!("/v1/certificates/{id}/qr?format=png"), Some(&a));
    assert_eq!(png.header("content-type").as_deref(), Some("image/png"));
    assert!(png.body.starts_with(b"\x89PNG"));
    assert_eq!(
        node.get(&format!("/v1/certificates/{id}/qr"), Some(&b))
            .status,
        403
    );
    let gif = node.get(&format!("/v1/certificates/{id}/qr?format=gif"), Some(&a));
    assert_eq!(
        (gif.status, gif.code()),
        (400, "MALFORMED_QUERY".to_owned())
    );

    // Status operations and the transition rules.
    let status = |op: &str| {
        node.post(
            &format!("/v1/certificates/{id}/status"),
            Some(&a),
            &json!({"operation": op}),
        )
    };
    assert_eq!(status("suspend").status, 200);
    assert_eq!(verify(&node, &cert)["code"], "STATUS_SUSPENDED");
    assert_eq!(
        node.post(
            &format!("/v1/certificates/{id}/status"),
            Some(&b),
            &json!({"operation": "unsuspend"})
        )
        .status,
        403
    );
    assert_eq!(status("unsuspend").status, 200);
    assert_eq!(verify(&node, &cert)["code"], "OK");

    // Change: a new version linked to the old.
    let mut changed = certificate(&seal_a, "x");
    changed.as_object_mut().unwrap().remove("type_code");
    changed.as_object_mut().unwrap().remove("serial");
    let reply = node.post(&format!("/v1/certificates/{id}/change"), Some(&a), &changed);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let v2 = reply.json()["id"].as_str().unwrap().to_owned();
    assert!(v2.contains(".2026000001.002."));
    let v2_status = node
        .get(&format!("/v1/certificates/{v2}/status"), None)
        .json();
    assert_eq!(v2_status["predecessor"], json!(id));
    let reply = status("suspend");
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "TRANSITION_NOT_ALLOWED"),
        "{}",
        reply.text()
    );

    // Promise-based issuance lapses by itself at its deadline; a kept one does not.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut promised = certificate(&seal_a, "2026000020");
    promised["promise_deadline"] = json!(now + 2);
    let lapsing = node.post("/v1/certificates", Some(&a), &promised).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    promised["serial"] = json!("2026000021");
    let kept = node.post("/v1/certificates", Some(&a), &promised).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        node.post(
            &format!("/v1/certificates/{kept}/fulfil"),
            Some(&a),
            &json!({})
        )
        .status,
        200
    );
    let reply = node.post(
        &format!("/v1/certificates/{kept}/fulfil"),
        Some(&a),
        &json!({}),
    );
    assert_eq!(reply.status, 409, "{}", reply.text());
    std::thread::sleep(std::time::Duration::from_secs(4));
    let lapsed = node
        .get(&format!("/v1/certificates/{lapsing}/status"), None)
        .json();
    assert_eq!(
        (lapsed["state_name"].as_str(), lapsed["reason"].as_str()),
        (Some("revoked"), Some("promise_lapsed"))
    );
    assert_eq!(
        node.get(&format!("/v1/certificates/{kept}/status"), None)
            .json()["state_name"],
        "valid"
    );

    // The issuance entry's offline receipt, and the tiles.
    let vkey = node.get("/v1/audit/log.vkey", None).text();
    let receipt = Receipt::parse(
        &node
            .get(&format!("/v1/certificates/{id}/receipt"), None)
            .text(),
    )
    .unwrap();
    receipt
        .verify(&NoteVerifier::parse(vkey.trim()).unwrap(), &[])
        .unwrap();
    assert_eq!(node.get("/checkpoint", None).status, 200);
    assert_eq!(node.get("/tile/entries/000.p/1", None).status, 200);
    assert_eq!(node.get("/tile/0%2F000.p%2F1", None).status, 404);
    let all = node.get("/v1/audit/checkpoints", None).json();
    let all = all["checkpoints"].as_array().unwrap().clone();
    assert!(!all.is_empty());
    // Page by page, one at a time: the same checkpoints, oldest first, then no `next`.
    let mut paged = Vec::new();
    let mut path = "/v1/audit/checkpoints?limit=1".to_owned();
    loop {
        let page = node.get(&path, None).json();
        paged.extend(page["checkpoints"].as_array().unwrap().iter().cloned());
        match page["next"].as_u64() {
            Some(next) => path = format!("/v1/audit/checkpoints?limit=1&after={next}"),
            None => break,
        }
        assert!(paged.len() <= all.len() + 1, "paging does not end");
    }
    // Checkpoints signed since `all` was read may follow it.
    assert!(paged.len() >= all.len());
    assert_eq!(paged[..all.len()], all[..]);
    let page = node.get(&format!("/v1/audit/checkpoints?after={}", u64::MAX), None);
    assert_eq!(page.json()["checkpoints"].as_array().map(Vec::len), Some(0));
    for bad in ["limit=0", "limit=1001", "after=-1", "page=2"] {
        let reply = node.get(&format!("/v1/audit/checkpoints?{bad}"), None);
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, "MALFORMED_QUERY"),
            "{bad}"
        );
    }
    assert_eq!(node.get("/v1/status-snapshot", None).status, 200);

    // Seal revocation from now: later issuance with it is refused.
    let reply = node.post(
        &format!("/v1/admin/seals/{seal_b}/revoke"),
        Some(&node.operator),
        &json!({"reason": "lost"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let reply = node.post(
        "/v1/certificates",
        Some(&b),
        &certificate(&seal_b, "2026000030"),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "SEAL_NOT_VALID_AT_ISSUE"),
        "{}",
        reply.text()
    );

    // Metrics count what happened.
    let metrics = node.get("/metrics", None).text();
    assert!(
        metrics.contains("tongban_auth_refused_total{reason=\"missing\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tongban_verifications_total{code=\"OK\"}"));

    // After kill -9 the state replays from the log.
    let before: Vec<_> = [&id, &v2, &lapsing, &kept]
        .iter()
        .map(|i| {
            node.get(&format!("/v1/certificates/{i}/status"), None)
                .json()
        })
        .collect();
    let code_before = verify(&node, &cert)["code"].clone();
    node.kill9();
    node.start();
    let after: Vec<_> = [&id, &v2, &lapsing, &kept]
        .iter()
        .map(|i| {
            node.get(&format!("/v1/certificates/{i}/status"), None)
                .json()
        })
        .collect();
    assert_eq!(before, after);
    assert_eq!(verify(&node, &cert)["code"], code_before);
}

/// Asserts a problem document with this status and code.
fn problem(reply: &node_process::Reply, status: u16, code: &str) {
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (status, code),
        "{}",
        reply.text()
    );
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/problem+json")
    );
}

fn issue(node: &Node, token: &str, seal: &str, serial: &str) -> node_process::Reply {
    node.post("/v1/certificates", Some(token), &certificate(seal, serial))
}

#[test]
fn paths_queries_and_methods_are_refused_as_problems_and_the_token_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let (a, seal_a) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let issued = issue(&node, &a, &seal_a, "2026000001");
    assert_eq!(issued.status, 201, "{}", issued.text());
    let id = issued.json()["id"].as_str().unwrap().to_owned();

    // A path parameter that is not UTF-8 once percent-decoded is refused as the field it is.
    problem(
        &node.get("/v1/certificates/%FF/status", None),
        400,
        "IDENTIFIER_INVALID",
    );
    problem(
        &node.post("/v1/certificates/%FF%FE/fulfil", Some(&a), &json!({})),
        400,
        "IDENTIFIER_INVALID",
    );
    problem(
        &node.post(
            "/v1/admin/seals/%FF/revoke",
            Some(&node.operator),
            &json!({"reason": "x"}),
        ),
        400,
        "INVALID_REQUEST",
    );
    // A query string with an unknown or repeated parameter.
    problem(
        &node.get(&format!("/v1/certificates/{id}?bogus=1"), Some(&a)),
        400,
        "MALFORMED_QUERY",
    );
    problem(
        &node.get(
            &format!("/v1/certificates/{id}?disclose=holder.name&disclose=licence.scope"),
            Some(&a),
        ),
        400,
        "MALFORMED_QUERY",
    );
    assert_eq!(
        node.get(&format!("/v1/certificates/{id}?disclose="), Some(&a))
            .status,
        200
    );

    // A method a known path does not serve: 405, a problem, and what it does serve.
    let reply = node.request("DELETE", "/v1/verify", None, None);
    problem(&reply, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(reply.header("allow").as_deref(), Some("post"));
    let reply = node.request("PUT", &format!("/v1/certificates/{id}/status"), None, None);
    problem(&reply, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(reply.header("allow").as_deref(), Some("get,head,post"));
    let reply = node.request("POST", "/checkpoint", None, Some(b"{}"));
    problem(&reply, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(reply.header("allow").as_deref(), Some("get,head"));
    problem(
        &node.request("GET", "/v1/admin/seals/00/rotate", None, None),
        405,
        "METHOD_NOT_ALLOWED",
    );

    // The token is checked before the path, the query and the body: a caller without a valid
    // one, or with one of the wrong role, learns nothing from how they would have been judged.
    problem(
        &node.request("POST", "/v1/certificates", None, Some(b"{not json")),
        401,
        "TOKEN_MISSING",
    );
    problem(
        &node.request(
            "POST",
            "/v1/admin/agencies",
            Some("tb_unknown"),
            Some(b"{not json"),
        ),
        401,
        "TOKEN_INVALID",
    );
    problem(
        &node.request("POST", "/v1/admin/seals", Some(&a), Some(b"[]")),
        403,
        "FORBIDDEN",
    );
    problem(
        &node.request(
            "POST",
            &format!("/v1/certificates/{id}/renew"),
            Some(&node.operator),
            Some(b"{}"),
        ),
        403,
        "FORBIDDEN",
    );
    problem(
        &node.post("/v1/certificates/%FF/fulfil", None, &json!({})),
        401,
        "TOKEN_MISSING",
    );
    problem(
        &node.post("/v1/admin/seals/%FF/revoke", Some(&a), &json!({})),
        403,
        "FORBIDDEN",
    );
    problem(
        &node.get(&format!("/v1/certificates/{id}?bogus=1"), None),
        401,
        "TOKEN_MISSING",
    );
    // An oversized body is not even read without a token: the node answers at the headers.
    let head = format!(
        "POST /v1/certificates HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
        node.addr
    );
    problem(&node.raw(head.as_bytes()), 401, "TOKEN_MISSING");

    // A seal is revoked once, and the second attempt says so before reaching the log.
    let revoke = |kid: &str| {
        node.post(
            &format!("/v1/admin/seals/{kid}/revoke"),
            Some(&node.operator),
            &json!({"reason": "印章遗失"}),
        )
    };
    let size = node.get("/healthz", None).json()["log_size"].clone();
    problem(
        &revoke("00112233445566778899aabbccddeeff"),
        404,
        "KID_UNKNOWN",
    );
    let first = revoke(&seal_a);
    assert_eq!(first.status, 200, "{}", first.text());
    let size_after = node.get("/healthz", None).json()["log_size"].clone();
    assert_eq!(size_after, json!(size.as_u64().unwrap() + 1));
    problem(&revoke(&seal_a), 409, "SEAL_ALREADY_REVOKED");
    problem(
        &node.post(
            &format!("/v1/admin/seals/{seal_a}/rotate"),
            Some(&node.operator),
            &json!({"seal_id": "FY-AMR-2", "reason": "x"}),
        ),
        409,
        "SEAL_ALREADY_REVOKED",
    );
    assert_eq!(node.get("/healthz", None).json()["log_size"], size_after);
}

#[test]
fn a_rotated_seal_keeps_its_certificates_valid_and_stamps_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let (a, old) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let (b, seal_b) = node.agency_with_seal(AGENCY_B, "FY-OTHER-1");
    let before = issue(&node, &a, &old, "2026000001");
    assert_eq!(before.status, 201, "{}", before.text());
    let before = before.json();
    let before_cert = before["certificate"].as_str().unwrap().to_owned();
    let before_id = before["id"].as_str().unwrap().to_owned();
    let rotate = |token: Option<&str>, kid: &str, body: serde_json::Value| {
        node.post(&format!("/v1/admin/seals/{kid}/rotate"), token, &body)
    };
    let body = json!({"seal_id": "FY-AMR-2", "reason": "年度更换"});

    // Refusals, in the order the spec lists them.
    problem(&rotate(None, &old, body.clone()), 401, "TOKEN_MISSING");
    problem(&rotate(Some(&a), &old, body.clone()), 403, "FORBIDDEN");
    problem(
        &rotate(Some(&node.operator), "xyz", body.clone()),
        400,
        "INVALID_REQUEST",
    );
    problem(
        &rotate(
            Some(&node.operator),
            &old,
            json!({"seal_id": "FY AMR", "reason": "x"}),
        ),
        400,
        "INVALID_REQUEST",
    );
    problem(
        &rotate(
            Some(&node.operator),
            "00112233445566778899aabbccddeeff",
            body.clone(),
        ),
        404,
        "KID_UNKNOWN",
    );
    problem(
        &rotate(
            Some(&node.operator),
            &old,
            json!({"seal_id": "FY-OTHER-1", "reason": "x"}),
        ),
        409,
        "SEAL_EXISTS",
    );
    problem(
        &rotate(
            Some(&node.operator),
            &old,
            json!({"seal_id": "FY-AMR-2", "reason": "x", "valid_until": 1_000_000_000u64}),
        ),
        400,
        "INVALID_REQUEST",
    );

    // The rotation: a new seal like the old one, the old revoked from the next second.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let reply = rotate(Some(&node.operator), &old, body.clone());
    assert_eq!(reply.status, 201, "{}", reply.text());
    let rotated = reply.json();
    let new = rotated["seal"]["kid"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated["seal"]["seal_id"], "FY-AMR-2");
    assert_eq!(rotated["seal"]["agency_uscc"], AGENCY_A);
    assert_eq!(rotated["seal"]["name"], "行政审批专用章");
    assert_eq!(rotated["seal"]["valid_until"], 2_000_000_000u64);
    assert_eq!(rotated["seal"]["revoked_from"], json!(null));
    assert_eq!(rotated["revoked"]["kid"], json!(old));
    let revoked_from = rotated["revoked"]["revoked_from"].as_u64().unwrap();
    assert!((now + 1..=now + 3).contains(&revoked_from), "{rotated}");
    assert_eq!(
        rotated["revoked"]["log_index"].as_u64().unwrap(),
        rotated["seal"]["log_index"].as_u64().unwrap() + 1
    );

    // What the old seal stamped before stays valid; it stamps no more; the new one does.
    assert_eq!(verify(&node, &before_cert)["code"], "OK");
    problem(
        &issue(&node, &a, &old, "2026000002"),
        409,
        "SEAL_NOT_VALID_AT_ISSUE",
    );
    let after = issue(&node, &a, &new, "2026000003");
    assert_eq!(after.status, 201, "{}", after.text());
    let after_cert = after.json()["certificate"].as_str().unwrap().to_owned();
    assert_eq!(verify(&node, &after_cert)["code"], "OK");
    // The old seal's certificates can still be managed (signed with a live seal of the agency).
    let reply = node.post(
        &format!("/v1/certificates/{before_id}/status"),
        Some(&a),
        &json!({"operation": "suspend"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(verify(&node, &before_cert)["code"], "STATUS_SUSPENDED");
    problem(
        &rotate(
            Some(&node.operator),
            &old,
            json!({"seal_id": "FY-AMR-3", "reason": "x"}),
        ),
        409,
        "SEAL_ALREADY_REVOKED",
    );

    // A rotation from an earlier time (a compromised key): what it stamped since is invalid.
    let b_cert = issue(&node, &b, &seal_b, "2026000001");
    assert_eq!(b_cert.status, 201, "{}", b_cert.text());
    let b_cert = b_cert.json();
    let b_status = node
        .get(
            &format!("/v1/certificates/{}/status", b_cert["id"].as_str().unwrap()),
            None,
        )
        .json();
    let reply = rotate(
        Some(&node.operator),
        &seal_b,
        json!({"seal_id": "FY-OTHER-2", "reason": "私钥泄露", "from": b_status["issued"]}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(
        verify(&node, b_cert["certificate"].as_str().unwrap())["code"],
        "SEAL_REVOKED"
    );

    // The trust bundle carries both seals and the revocation; all of it survives kill -9 (the
    // new seal's key included).
    let bundle = node.get("/v1/trust-bundle", None).body;
    let trust = TrustStore::load_any_time(&bundle, None).unwrap();
    assert_eq!(trust.seals().count(), 4);
    let seals = node.get("/v1/admin/seals", Some(&node.operator)).json();
    let revoked: Vec<_> = seals["seals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["revoked_from"].is_null())
        .map(|s| s["seal_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(revoked, ["FY-AMR-1", "FY-OTHER-1"]);
    node.kill9();
    node.start();
    assert_eq!(verify(&node, &before_cert)["code"], "STATUS_SUSPENDED");
    assert_eq!(verify(&node, &after_cert)["code"], "OK");
    problem(
        &issue(&node, &a, &old, "2026000004"),
        409,
        "SEAL_NOT_VALID_AT_ISSUE",
    );
    assert_eq!(issue(&node, &a, &new, "2026000005").status, 201);
}

/// Small refusals that must be exact: a bearer token is `Bearer <token>` with one space and
/// nothing else; a query string is ignored on the tile routes; a proof for a certificate too
/// large or too deeply nested to verify carries the verification code `/v1/verify` gives.
#[test]
fn tokens_queries_and_proof_inputs_are_judged_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let raw = |auth: &str| {
        node.raw(
            format!(
                "GET /v1/admin/agencies HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {auth}\r\n\r\n"
            )
            .as_bytes(),
        )
    };
    assert_eq!(raw(&format!("Bearer {}", node.operator)).status, 200);
    for bad in [
        format!("Bearer  {}", node.operator),
        format!("Bearer\t{}", node.operator),
        format!("bearer {}", node.operator),
    ] {
        problem(&raw(&bad), 401, "TOKEN_INVALID");
    }
    assert_eq!(
        node.get("/checkpoint?x=1", None).status,
        node.get("/checkpoint", None).status
    );
    for (depth, code) in [(100_000usize, "TOO_LARGE"), (60_000, "CBOR_LIMIT_EXCEEDED")] {
        let mut nested = vec![0x81u8; depth];
        nested.push(0);
        let body = serde_json::json!({
            "certificate": B64.encode(&nested),
            "nonce": "00112233445566778899aabbccddeeff",
            "requester_region": "370100",
        });
        let proof = node.post("/v1/verify/proof", None, &body);
        assert_eq!(proof.status, 200, "{}", proof.text());
        assert_eq!(proof.json()["code"], code);
        let verified = node.post(
            "/v1/verify",
            None,
            &serde_json::json!({"certificate": B64.encode(&nested)}),
        );
        assert_eq!(verified.json()["code"], code);
    }
}
