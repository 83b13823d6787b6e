//! Cross-region acts between real `tongban-node` processes of a four-member federation, carried
//! by the federation's request-response protocol (specs/federation.md §5.3, specs/sharing.md):
//! Jinan asks Fuyang for a verification proof and for a purpose-bound copy; an unauthorised
//! agency's request is refused and the refusal logged; a certificate transferred from Fuyang to
//! Jinan is seen so by Suqian; an unreachable region is reported so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod federation_process;
mod node_process;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use federation_process::{Federation, wait_for};
use node_process::{AGENCY_A, AGENCY_B, Node, TYPE_CODE, certificate, now};
use serde_json::{Value, json};
use tongban_core::codes::Code;
use tongban_core::ids::RegionCode;
use tongban_core::log::entry::{Act, LogEntry, ShareOutcome};
use tongban_core::log::tiles::decode_entry_bundle;
use tongban_core::sharing::{ProofExpectation, verify_proof};
use tongban_core::trust::TrustStore;

const JINAN_APPROVAL: &str = "11370100MB0000003G";
const JINAN_OTHER: &str = "11370100MB00000093";

/// Entry `index` of `node`'s log, read from its entry tiles once a checkpoint covers it (the
/// tests keep logs under one tile).
fn entry_at(node: &Node, index: u64) -> LogEntry {
    assert!(index < 256);
    let width = index + 1;
    let bytes = wait_for(Duration::from_secs(10), "a checkpoint covering it", || {
        let reply = node.get(&format!("/tile/entries/000.p/{width}"), None);
        (reply.status == 200).then_some(reply.body)
    });
    let entries = decode_entry_bundle(&bytes, u32::try_from(width).unwrap()).unwrap();
    LogEntry::open(&entries[usize::try_from(index).unwrap()])
        .unwrap()
        .1
}

fn verify_code(node: &Node, cert: &str) -> String {
    let reply = node.post("/v1/verify", None, &json!({"certificate": cert}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["code"].as_str().unwrap().to_owned()
}

fn ask_proof(node: &Node, token: &str, cert: &str) -> (u16, Value) {
    let reply = node.post("/v1/proofs", Some(token), &json!({"certificate": cert}));
    (reply.status, reply.json())
}

fn share(seal: &str, id: &str) -> Value {
    json!({
        "seal": seal, "region": "341200", "id": id,
        "fields": ["holder.name", "licence.capital"],
        "purpose": "企业跨省迁移登记", "case": "JN-2026-0042",
    })
}

#[test]
fn regions_exchange_proofs_and_purpose_bound_copies_over_the_federation() {
    let mut federation = Federation::start(&["341200", "370100", "321300", "340700"], 2);
    let (fuyang_token, fuyang_seal) = federation.nodes[0].agency_with_seal(AGENCY_A, "FY-AMR-1");
    let (jinan_token, jinan_seal) =
        federation.nodes[1].agency_with_scope(JINAN_APPROVAL, "JN-APP-1", &[TYPE_CODE]);
    let (other_token, other_seal) = federation.nodes[1].agency_with_seal(JINAN_OTHER, "JN-OTH-1");
    let (a, b) = (&federation.nodes[0], &federation.nodes[1]);
    let issued = a.post(
        "/v1/certificates",
        Some(&fuyang_token),
        &certificate(&fuyang_seal, "2026000001"),
    );
    assert_eq!(issued.status, 201, "{}", issued.text());
    let issued = issued.json();
    let id = issued["id"].as_str().unwrap().to_owned();
    let cert = issued["certificate"].as_str().unwrap().to_owned();
    // Fuyang must know Jinan's seals (from its replica) before it can open Jinan's requests.
    wait_for(Duration::from_secs(10), "the regions' replicas", || {
        (verify_code(b, &cert) == "OK"
            && federation_process::replica_size(a, "370100") >= federation_process::log_size(b))
        .then_some(())
    });

    // A verification proof: Fuyang answers, Jinan verifies it and logs the evidence.
    let (status, answer) = ask_proof(b, &jinan_token, &cert);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        (&answer["region"], &answer["verdict"], &answer["code"]),
        (&json!("341200"), &json!("valid"), &json!("OK"))
    );
    let Act::ProofReceived {
        from, id: proven, ..
    } = entry_at(b, answer["log_index"].as_u64().unwrap()).act
    else {
        panic!("a proof.received entry in Jinan's log")
    };
    assert_eq!(
        (from.as_str(), proven.map(|i| i.as_str().to_owned())),
        ("341200", Some(id.clone()))
    );
    // The proof verifies offline with the federation's trust bundle, and Fuyang's log holds the
    // receipt batch that recorded the answer it gave.
    let bundle = b.get("/v1/federation/trust-bundle", None).body;
    let trust = TrustStore::load(&bundle, now(), None).unwrap();
    let jinan = RegionCode::parse("370100").unwrap();
    let proof = B64.decode(answer["proof"].as_str().unwrap()).unwrap();
    let verified = verify_proof(
        &proof,
        &trust,
        now(),
        &ProofExpectation {
            requester: &jinan,
            nonce: None,
            witnesses: &[],
            quorum: 0,
        },
    )
    .unwrap();
    assert!(matches!(
        entry_at(a, verified.receipts_index).act,
        Act::Receipts { .. }
    ));

    // A purpose-bound copy for an authorised agency, logged by both regions.
    let reply = b.post("/v1/shares", Some(&jinan_token), &share(&jinan_seal, &id));
    assert_eq!(reply.status, 201, "{}", reply.text());
    let given = reply.json();
    assert_eq!(
        (&given["code"], &given["provider"], &given["case"]),
        (&json!("OK"), &json!("341200"), &json!("JN-2026-0042"))
    );
    assert!(matches!(
        entry_at(a, given["log_index"].as_u64().unwrap()).act,
        Act::ShareAnswered {
            outcome: ShareOutcome::Given { .. },
            ..
        }
    ));
    assert!(matches!(
        entry_at(b, given["received_log_index"].as_u64().unwrap()).act,
        Act::ShareReceived { .. }
    ));
    let copy = given["copy"].as_str().unwrap().to_owned();
    let present = |token: &str| {
        let reply = b.post("/v1/copies/verify", Some(token), &json!({"copy": copy}));
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["code"].as_str().unwrap().to_owned()
    };
    assert_eq!(present(&jinan_token), "OK");
    assert_eq!(present(&other_token), "COPY_WRONG_RECIPIENT");

    // An agency whose seal may not ask for business licences: refused by Fuyang, and logged there.
    let reply = b.post("/v1/shares", Some(&other_token), &share(&other_seal, &id));
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (403, "SHARE_NOT_AUTHORISED"),
        "{}",
        reply.text()
    );
    let Act::ShareAnswered {
        outcome, agency, ..
    } = entry_at(a, reply.json()["log_index"].as_u64().unwrap()).act
    else {
        panic!("a share.answered entry in Fuyang's log")
    };
    assert_eq!(outcome, ShareOutcome::Refused(Code::ShareNotAuthorised));
    assert_eq!(agency.as_str(), JINAN_OTHER);

    // A holder's presentation code made by Fuyang's app, resolved by Jinan's agency whose seal
    // may not ask for business licences: the holder's consent is the authority (亮证码).
    let (app_token, _) = a.agency_with_seal(AGENCY_B, "FY-APP-1");
    let made = a.post(
        "/v1/presentations",
        Some(&app_token),
        &json!({"id": id, "fields": ["holder.name"]}),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let code = made.json()["code"].as_str().unwrap().to_owned();
    let resolve = |code: &str| {
        b.post(
            "/v1/presentations/resolve",
            Some(&other_token),
            &json!({"code": code, "purpose": "企业开户核验", "case": "JN-2026-0456"}),
        )
    };
    let reply = resolve(&code);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let shown = reply.json();
    assert_eq!(
        (&shown["code"], &shown["provider"], &shown["id"]),
        (&json!("OK"), &json!("341200"), &json!(id))
    );
    assert_eq!(shown["recipient"]["agency"], JINAN_OTHER);
    assert_eq!(shown["fields"].as_array().map(Vec::len), Some(1));
    let Act::PresentationAnswered {
        outcome: ShareOutcome::Given { .. },
        requester,
        id: answered_id,
        ..
    } = entry_at(a, shown["log_index"].as_u64().unwrap()).act
    else {
        panic!("a presentation.answered entry in Fuyang's log")
    };
    assert_eq!(
        (
            requester.as_str(),
            answered_id.map(|i| i.as_str().to_owned())
        ),
        ("370100", Some(id.clone()))
    );
    assert!(matches!(
        entry_at(b, shown["received_log_index"].as_u64().unwrap()).act,
        Act::ShareReceived { .. }
    ));
    // Used once: Fuyang refuses the second, and logs the refusal.
    let reply = resolve(&code);
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "PRESENTATION_USED_UP"),
        "{}",
        reply.text()
    );
    assert!(matches!(
        entry_at(a, reply.json()["log_index"].as_u64().unwrap()).act,
        Act::PresentationAnswered {
            outcome: ShareOutcome::Refused(Code::PresentationUsedUp),
            ..
        }
    ));
    let reply = resolve("341200-00000-00000");
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (404, "PRESENTATION_UNKNOWN")
    );

    // Transferred out to Jinan (转出), taken in there on Fuyang's proof (转入), and both acts seen
    // by Suqian from its replicas.
    let moved = a.post(
        "/v1/certificates",
        Some(&fuyang_token),
        &certificate(&fuyang_seal, "2026000002"),
    );
    assert_eq!(moved.status, 201, "{}", moved.text());
    let moved = moved.json()["certificate"].as_str().unwrap().to_owned();
    let moved_id = tongban_core::cert::inspect(&B64.decode(&moved).unwrap())
        .unwrap()
        .claims
        .unwrap()
        .id;
    let reply = a.post(
        &format!("/v1/certificates/{}/status", moved_id.as_str()),
        Some(&fuyang_token),
        &json!({"operation": "transfer_out", "destination": "370100", "reason": "企业迁址"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (status, answer) = ask_proof(b, &jinan_token, &moved);
    assert_eq!(
        (status, &answer["code"]),
        (201, &json!("STATUS_TRANSFERRED_OUT")),
        "{answer}"
    );
    // Jinan's node asks Fuyang's to accept the transfer, then issues the successor.
    let mut successor = certificate(&jinan_seal, "2026100001");
    successor.as_object_mut().unwrap().remove("type_code");
    let reply = b.post(
        "/v1/certificates/transfer-in",
        Some(&jinan_token),
        &json!({"predecessor": moved, "certificate": successor}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let successor_id = reply.json()["id"].as_str().unwrap().to_owned();
    let successor = reply.json()["certificate"].as_str().unwrap().to_owned();
    // Its bytes are kept under its own entry (the evidence entry before it names no bytes).
    let fetched = b.get(
        &format!("/v1/certificates/{successor_id}"),
        Some(&jinan_token),
    );
    assert_eq!(fetched.status, 200, "{}", fetched.text());
    assert_eq!(
        fetched.json()["certificate"].as_str(),
        Some(successor.as_str())
    );
    // Accepted: Fuyang can no longer take it back.
    let reply = a.post(
        &format!("/v1/certificates/{}/status", moved_id.as_str()),
        Some(&fuyang_token),
        &json!({"operation": "cancel_transfer_out"}),
    );
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "TRANSITION_NOT_ALLOWED"),
        "{}",
        reply.text()
    );
    let suqian = &federation.nodes[2];
    wait_for(Duration::from_secs(10), "Suqian to see both acts", || {
        (verify_code(suqian, &successor) == "OK"
            && verify_code(suqian, &moved) == "STATUS_TRANSFERRED_OUT")
            .then_some(())
    });

    // Revoked in Fuyang: a new proof says so.
    let revoke = a.post(
        &format!("/v1/certificates/{id}/status"),
        Some(&fuyang_token),
        &json!({"operation": "revoke"}),
    );
    assert_eq!(revoke.status, 200, "{}", revoke.text());
    let (status, answer) = ask_proof(b, &jinan_token, &cert);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        (&answer["verdict"], &answer["code"]),
        (&json!("invalid"), &json!("STATUS_REVOKED"))
    );

    // No token, a certificate that does not decode, and Fuyang's node stopped.
    let reply = b.post("/v1/proofs", None, &json!({"certificate": cert}));
    assert_eq!(reply.status, 401);
    let (status, answer) = ask_proof(b, &jinan_token, "AAAA");
    assert_eq!(status, 400, "{answer}");
    federation.nodes[0].kill9();
    let (status, answer) = ask_proof(&federation.nodes[1], &jinan_token, &cert);
    assert_eq!(
        (status, &answer["code"]),
        (503, &json!("REGION_UNREACHABLE"))
    );
}
