//! The region's status list (specs/status.md §5) from a real node: every certificate gets an index
//! of its own, also when many are issued at once and across a kill -9; the list says each one's
//! state at its index, follows status changes, and is served as the draft's media type, cacheable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod node_process;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use node_process::{AGENCY_A, Node, certificate};
use serde_json::json;
use tongban_core::cert::Claims;
use tongban_core::status::{ListStatus, State};
use tongban_core::trust::{StatusList, TrustStore};
use tongban_core::values::Time;

/// The claims of the certificate an issuance reply carries.
fn claims_of(reply: &serde_json::Value) -> Claims {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(reply["certificate"].as_str().unwrap())
        .unwrap();
    tongban_core::cert::inspect(&bytes).unwrap().claims.unwrap()
}

/// Issues `count` certificates from `threads` threads at once; returns their claims.
fn issue_at_once(node: &Node, token: &str, seal: &str, prefix: &str, count: usize) -> Vec<Claims> {
    let threads = 8;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|n| {
                            let body = certificate(seal, &format!("{prefix}{n:04}"));
                            let reply = node.post("/v1/certificates", Some(token), &body);
                            assert_eq!(reply.status, 201, "{}", reply.text());
                            claims_of(&reply.json())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

fn trust(node: &Node) -> TrustStore {
    TrustStore::load_any_time(&node.get("/v1/trust-bundle", None).body, None).unwrap()
}

fn fetch_list(node: &Node) -> StatusList {
    let reply = node.get("/v1/status-list", None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/statuslist+cwt")
    );
    assert_eq!(
        reply.header("cache-control").as_deref(),
        Some("public, max-age=300")
    );
    StatusList::load(&reply.body, &trust(node)).unwrap()
}

/// Fetches the list until it says `expected` for every certificate (a list is made again at most
/// once a second); panics with what it said after 10 s.
fn list_says(node: &Node, expected: &HashMap<u32, ListStatus>) -> StatusList {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = fetch_list(node);
        let wrong: Vec<_> = expected
            .iter()
            .filter(|(index, status)| list.get(**index) != Some(**status))
            .map(|(index, status)| (index, status, list.get(*index)))
            .collect();
        if wrong.is_empty() {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "the list says otherwise: {wrong:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn change(node: &Node, token: &str, id: &str, body: serde_json::Value) {
    let reply = node.post(&format!("/v1/certificates/{id}/status"), Some(token), &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn every_certificate_has_its_own_index_and_the_list_tells_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let (token, seal) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");

    // Many issuances at once: no two certificates share an index.
    let mut issued = issue_at_once(&node, &token, &seal, "A", 96);
    let mut indexes: Vec<u32> = issued.iter().map(|c| c.status_index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), issued.len(), "an index was given twice");

    // One of each kind of state, and a promise.
    let id = |n: usize| issued[n].id.as_str().to_owned();
    change(&node, &token, &id(0), json!({"operation": "suspend"}));
    change(
        &node,
        &token,
        &id(1),
        json!({"operation": "revoke", "reason": "违法"}),
    );
    change(&node, &token, &id(2), json!({"operation": "cancel"}));
    change(
        &node,
        &token,
        &id(3),
        json!({"operation": "revoke_penalty"}),
    );
    change(
        &node,
        &token,
        &id(4),
        json!({"operation": "other", "reason": "核查中"}),
    );
    change(
        &node,
        &token,
        &id(5),
        json!({"operation": "transfer_out", "destination": "370100"}),
    );
    let now = Time::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let mut promised = certificate(&seal, "P0001");
    promised["promise_deadline"] = json!(now.seconds() + 86_400);
    let reply = node.post("/v1/certificates", Some(&token), &promised);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let promise = claims_of(&reply.json());

    let mut expected: HashMap<u32, ListStatus> = issued
        .iter()
        .map(|c| (c.status_index, ListStatus::Valid))
        .collect();
    for (n, state) in [
        (0, State::Suspended),
        (1, State::Revoked),
        (2, State::Cancelled),
        (3, State::RevokedPenalty),
        (4, State::Other),
        (5, State::TransferredOut),
    ] {
        expected.insert(issued[n].status_index, ListStatus::State(state));
    }
    expected.insert(promise.status_index, ListStatus::PromiseOpen);
    let list = list_says(&node, &expected);
    assert!(list.usable_at(now) && list.expires.seconds() >= now.seconds() + 86_000);

    // Changes show: un-suspended, the promise fulfilled.
    change(&node, &token, &id(0), json!({"operation": "unsuspend"}));
    let fulfil = node.post(
        &format!("/v1/certificates/{}/fulfil", promise.id.as_str()),
        Some(&token),
        &json!({}),
    );
    assert_eq!(fulfil.status, 200, "{}", fulfil.text());
    expected.insert(issued[0].status_index, ListStatus::Valid);
    expected.insert(promise.status_index, ListStatus::Valid);
    list_says(&node, &expected);

    // Killed while issuing, then started again: indexes go on past every one given before.
    let before = indexes.last().copied().unwrap().max(promise.status_index);
    let stopping = std::thread::scope(|scope| {
        let issuing = scope.spawn(|| {
            (0..200)
                .map(|n| {
                    let body = certificate(&seal, &format!("K{n:04}"));
                    let body = body.to_string();
                    node.try_request(
                        "POST",
                        "/v1/certificates",
                        Some(&token),
                        Some(body.as_bytes()),
                    )
                })
                .take_while(|r| r.as_ref().is_ok_and(|r| r.status == 201))
                .map(|r| claims_of(&r.unwrap().json()))
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(300));
        let killed = std::process::Command::new("kill")
            .args(["-9", &node.pid().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        issuing.join().unwrap()
    });
    node.kill9();
    node.start();
    issued.extend(stopping);
    let after = issue_at_once(&node, &token, &seal, "B", 16);
    assert!(after.iter().all(|c| c.status_index > before));
    issued.extend(after);
    let mut all: Vec<u32> = issued.iter().map(|c| c.status_index).collect();
    all.push(promise.status_index);
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        all.len(),
        total,
        "an index was given twice across the restart"
    );
    for c in &issued[96..] {
        expected.insert(c.status_index, ListStatus::Valid);
    }
    list_says(&node, &expected);

    node.kill9();
    let (agrees, report) = node.check();
    assert!(agrees, "{report}");
}
