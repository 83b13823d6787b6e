//! A real node process on loopback: purpose-bound sharing between agencies of its region, copies
//! verified by their presenter, verification proofs checked offline, and transfers out, with
//! every refusal (specs/sharing.md, specs/api.yaml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_process;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use node_process::{AGENCY_A, Node, TYPE_CODE, certificate, now};
use serde_json::{Value, json};
use tongban_core::codes::Code;
use tongban_core::ids::RegionCode;
use tongban_core::sharing::{ProofExpectation, verify_proof};
use tongban_core::trust::TrustStore;

/// Agencies that use data (USCCs with their check characters).
const AGENCY_C: &str = "11341200MB0000004Q";
const AGENCY_D: &str = "11341200MB0000005U";

fn share(seal: &str, region: &str, id: &str, fields: &[&str]) -> Value {
    json!({
        "seal": seal, "region": region, "id": id, "fields": fields,
        "purpose": "企业跨省迁移登记", "case": "FY-2026-0001",
    })
}

#[test]
fn agencies_share_purpose_bound_copies_and_the_node_proves_and_transfers() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let (a, seal_a) = node.agency_with_scope(AGENCY_A, "FY-AMR-1", &[]);
    let (c, seal_c) = node.agency_with_scope(AGENCY_C, "FY-TAX-1", &[TYPE_CODE]);
    let (d, seal_d) = node.agency_with_scope(AGENCY_D, "FY-OTHER-1", &[]);
    let bad = node.post(
        "/v1/admin/seals",
        Some(&node.operator),
        &json!({
            "agency_uscc": AGENCY_C, "seal_id": "FY-TAX-2", "seal_type": "approval",
            "name": "x", "valid_until": 2_000_000_000u64, "picture": "cG5n",
            "media_type": "image/png", "share_types": ["not a type"],
        }),
    );
    assert_eq!(
        (bad.status, bad.code().as_str()),
        (400, "IDENTIFIER_INVALID")
    );
    let issued = node.post(
        "/v1/certificates",
        Some(&a),
        &certificate(&seal_a, "2026000001"),
    );
    assert_eq!(issued.status, 201, "{}", issued.text());
    let issued = issued.json();
    let id = issued["id"].as_str().unwrap().to_owned();
    let cert_b64 = issued["certificate"].as_str().unwrap().to_owned();

    // An authorised agency gets a copy of the fields it asked for, logged on both sides.
    let fields = ["holder.name", "licence.capital"];
    let reply = node.post(
        "/v1/shares",
        Some(&c),
        &share(&seal_c, "341200", &id, &fields),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let given = reply.json();
    assert_eq!(given["code"], "OK");
    assert_eq!(given["purpose"], "企业跨省迁移登记");
    assert_eq!(given["recipient"]["agency"], AGENCY_C);
    assert_eq!(given["fields"].as_array().map(Vec::len), Some(2));
    assert!(given["received_log_index"].as_u64() > given["log_index"].as_u64());
    let copy = given["copy"].as_str().unwrap().to_owned();

    // Its recipient may present it; another agency may not; nobody without a token.
    let reply = node.post("/v1/copies/verify", Some(&c), &json!({"copy": copy}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["code"], "OK");
    let reply = node.post("/v1/copies/verify", Some(&d), &json!({"copy": copy}));
    assert_eq!(reply.json()["code"], "COPY_WRONG_RECIPIENT");
    assert_eq!(reply.json()["verdict"], "invalid");
    let mut tampered = B64.decode(&copy).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let reply = node.post(
        "/v1/copies/verify",
        Some(&c),
        &json!({"copy": B64.encode(&tampered)}),
    );
    assert_eq!(reply.json()["code"], "SIGNATURE_INVALID");
    let reply = node.post("/v1/copies/verify", None, &json!({"copy": copy}));
    assert_eq!(reply.status, 401);
    let reply = node.post("/v1/copies/verify", Some(&c), &json!({"copy": "%%%"}));
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "INVALID_REQUEST")
    );

    // An agency without a sharing scope is refused, and the refusal is logged.
    let reply = node.post(
        "/v1/shares",
        Some(&d),
        &share(&seal_d, "341200", &id, &fields),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (403, "SHARE_NOT_AUTHORISED")
    );
    assert!(reply.json()["log_index"].as_u64().is_some());
    let reply = node.post(
        "/v1/shares",
        Some(&c),
        &share(&seal_c, "341200", &id, &["licence.not_there"]),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "SHARE_FIELD_UNAVAILABLE")
    );
    // Another agency's seal; another region (no federation transport in this node); bad fields.
    let reply = node.post(
        "/v1/shares",
        Some(&d),
        &share(&seal_c, "341200", &id, &fields),
    );
    assert_eq!((reply.status, reply.code().as_str()), (403, "FORBIDDEN"));
    let reply = node.post(
        "/v1/shares",
        Some(&c),
        &share(&seal_c, "370100", &id, &fields),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (503, "REGION_UNREACHABLE")
    );
    let reply = node.post(
        "/v1/shares",
        Some(&c),
        &share(&seal_c, "341200", &id, &["Name"]),
    );
    assert_eq!(reply.status, 400);
    // A proof is asked of another region only; this node is in no federation anyway.
    let reply = node.post("/v1/proofs", Some(&c), &json!({"certificate": cert_b64}));
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "REGION_MISMATCH")
    );
    let reply = node.post("/v1/proofs", None, &json!({"certificate": cert_b64}));
    assert_eq!(reply.status, 401);

    // A verification proof for another region, checked offline against the node's trust bundle.
    let trust_bytes = node.get("/v1/trust-bundle", None).body;
    let trust = TrustStore::load(&trust_bytes, now(), None).unwrap();
    let jinan = RegionCode::parse("370100").unwrap();
    let nonce = "00112233445566778899aabbccddeeff";
    let prove = |node: &Node| {
        let reply = node.post(
            "/v1/verify/proof",
            None,
            &json!({"certificate": cert_b64, "nonce": nonce, "requester_region": "370100"}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    };
    let answer = prove(&node);
    assert_eq!(
        (answer["verdict"].clone(), answer["code"].clone()),
        ("valid".into(), "OK".into())
    );
    let proof = B64.decode(answer["proof"].as_str().unwrap()).unwrap();
    let expect = ProofExpectation {
        requester: &jinan,
        nonce: Some(hex::decode(nonce).unwrap().try_into().unwrap()),
        witnesses: &[],
        quorum: 0,
    };
    let verified = verify_proof(&proof, &trust, now(), &expect).unwrap();
    assert_eq!(verified.item.code, Code::Ok);
    assert!(verified.issuance.is_some());
    let reply = node.post(
        "/v1/verify/proof",
        None,
        &json!({"certificate": cert_b64, "nonce": "00", "requester_region": "370100"}),
    );
    assert_eq!(reply.status, 400);

    // Transfer out through the status endpoint, with its refusals.
    let status = format!("/v1/certificates/{id}/status");
    let reply = node.post(&status, Some(&a), &json!({"operation": "transfer_out"}));
    assert_eq!(reply.status, 400);
    let reply = node.post(
        &status,
        Some(&a),
        &json!({"operation": "transfer_out", "destination": "341200"}),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "REGION_MISMATCH")
    );
    let reply = node.post(
        &status,
        Some(&a),
        &json!({"operation": "suspend", "destination": "370100"}),
    );
    assert_eq!(reply.status, 400);
    let reply = node.post(
        &status,
        Some(&c),
        &json!({"operation": "transfer_out", "destination": "370100"}),
    );
    assert_eq!(reply.status, 403);
    let reply = node.post(
        &status,
        Some(&a),
        &json!({"operation": "transfer_out", "destination": "370100", "reason": "企业迁址"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["state"], 6);
    let answer = prove(&node);
    assert_eq!(answer["code"], "STATUS_TRANSFERRED_OUT");
    let proof = B64.decode(answer["proof"].as_str().unwrap()).unwrap();
    let verified = verify_proof(&proof, &trust, now(), &expect).unwrap();
    assert_eq!(verified.transferred_to(), Some(&jinan));
    // A transferred-out certificate is shared no more.
    let reply = node.post(
        "/v1/shares",
        Some(&c),
        &share(&seal_c, "341200", &id, &fields),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "STATUS_TRANSFERRED_OUT")
    );
    // This node cannot take in its own certificate, and reaches no other region.
    let mut successor = certificate(&seal_c, "2026100001");
    successor.as_object_mut().unwrap().remove("type_code");
    let reply = node.post(
        "/v1/certificates/transfer-in",
        Some(&c),
        &json!({"predecessor": cert_b64, "certificate": successor}),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "REGION_MISMATCH")
    );
    let reply = node.post(
        "/v1/certificates/transfer-in",
        Some(&c),
        &json!({"predecessor": B64.encode(b"junk"), "certificate": successor}),
    );
    assert_eq!(reply.status, 400);
    let reply = node.post(
        "/v1/certificates/transfer-in",
        Some(&c),
        &json!({"proof": answer["proof"], "certificate": successor}),
    );
    assert_eq!(reply.status, 400, "the old form, with a proof, is refused");
    successor["type_code"] = json!(TYPE_CODE);
    let reply = node.post(
        "/v1/certificates/transfer-in",
        Some(&c),
        &json!({"predecessor": cert_b64, "certificate": successor}),
    );
    assert_eq!(reply.status, 400);
    let reply = node.post(
        &status,
        Some(&a),
        &json!({"operation": "cancel_transfer_out"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["state"], 1);
}
