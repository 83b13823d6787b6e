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
    assert!(
        !node.get("/v1/audit/checkpoints", None).json()["checkpoints"]
            .as_array()
            .unwrap()
            .is_empty()
    );
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
