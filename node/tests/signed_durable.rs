//! Nothing the node signs runs ahead of its log: status snapshots and trust bundles are fetched
//! while certificates are revoked and seals created, and the node is killed with SIGKILL at
//! random moments. After every restart, whatever any snapshot or bundle said (a revocation, a
//! seal) is in the log: a signed statement never describes an act a crash could undo.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod node_process;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use node_process::{AGENCY_A, Node, certificate, now};
use serde_json::json;
use tongban_core::status::State;
use tongban_core::trust::{StatusSnapshot, TrustStore};

const ROUNDS: u64 = 12;

fn handle(node: &Node) -> Node {
    Node {
        dir: Default::default(),
        operator: node.operator.clone(),
        child: None,
        addr: node.addr.clone(),
    }
}

#[test]
fn snapshots_and_bundles_never_sign_what_a_crash_undoes() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let (token, seal) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let to_revoke: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut rng = common::Rng(common::seed());
    // What the node signed: certificates any snapshot listed revoked; seals any bundle listed.
    let signed_revoked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let signed_seals: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut snapshots_seen = 0;
    for round in 0..ROUNDS {
        // Certificates for this round's revocations.
        for n in 0..150 {
            let reply = node.post(
                "/v1/certificates",
                Some(&token),
                &certificate(&seal, &format!("R{round}N{n}")),
            );
            assert_eq!(reply.status, 201, "{}", reply.text());
            let id = reply.json()["id"].as_str().unwrap().to_owned();
            to_revoke.lock().unwrap().push(id);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for _ in 0..3 {
            let (node, token, queue, stop) = (
                handle(&node),
                token.clone(),
                to_revoke.clone(),
                stop.clone(),
            );
            workers.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let Some(id) = queue.lock().unwrap().pop() else {
                        return 0;
                    };
                    let body = json!({"operation": "revoke"}).to_string();
                    if node
                        .try_request(
                            "POST",
                            &format!("/v1/certificates/{id}/status"),
                            Some(&token),
                            Some(body.as_bytes()),
                        )
                        .is_err()
                    {
                        return 0;
                    }
                }
                0
            }));
        }
        {
            let (node, stop) = (handle(&node), stop.clone());
            workers.push(std::thread::spawn(move || {
                for n in 0.. {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let body = json!({
                        "agency_uscc": AGENCY_A, "seal_id": format!("R{round}-{n}"),
                        "seal_type": "approval", "name": "行政审批专用章",
                        "valid_until": 2_000_000_000u64, "picture": "cG5n",
                        "media_type": "image/png",
                    })
                    .to_string();
                    if node
                        .try_request(
                            "POST",
                            "/v1/admin/seals",
                            Some(&node.operator),
                            Some(body.as_bytes()),
                        )
                        .is_err()
                    {
                        break;
                    }
                }
                0
            }));
        }
        for _ in 0..2 {
            let (node, stop, revoked, seals) = (
                handle(&node),
                stop.clone(),
                signed_revoked.clone(),
                signed_seals.clone(),
            );
            workers.push(std::thread::spawn(move || {
                let mut fetched = 0;
                while !stop.load(Ordering::Acquire) {
                    let (Ok(bundle), Ok(snapshot)) = (
                        node.try_request("GET", "/v1/trust-bundle", None, None),
                        node.try_request("GET", "/v1/status-snapshot", None, None),
                    ) else {
                        break;
                    };
                    if bundle.status != 200 || snapshot.status != 200 {
                        break;
                    }
                    let trust = TrustStore::load(&bundle.body, now(), None)
                        .expect("the node's bundle loads");
                    seals
                        .lock()
                        .unwrap()
                        .extend(trust.seals().map(|s| s.info.key.kid().to_hex()));
                    let snapshot =
                        StatusSnapshot::load(&snapshot.body, &trust).expect("the snapshot loads");
                    revoked.lock().unwrap().extend(
                        snapshot
                            .entries
                            .iter()
                            .filter(|e| e.state == State::Revoked)
                            .map(|e| e.id.as_str().to_owned()),
                    );
                    fetched += 1;
                }
                fetched
            }));
        }
        let delay = rng.between(100, 500);
        std::thread::sleep(Duration::from_millis(delay));
        node.kill9();
        stop.store(true, Ordering::Release);
        for worker in workers {
            snapshots_seen += worker.join().unwrap();
        }
        node.start();

        let seals: HashMap<String, bool> = node.get("/v1/admin/seals", Some(&node.operator)).json()
            ["seals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["kid"].as_str().unwrap().to_owned(), true))
            .collect();
        for kid in signed_seals.lock().unwrap().iter() {
            assert!(
                seals.contains_key(kid),
                "round {round}: a signed trust bundle listed seal {kid}, which the log lost"
            );
        }
        for id in signed_revoked.lock().unwrap().iter() {
            let state = node
                .get(&format!("/v1/certificates/{id}/status"), None)
                .json()["state"]
                .as_u64();
            assert_eq!(
                state,
                Some(3),
                "round {round}: a signed snapshot listed {id} revoked, which the log lost"
            );
        }
        eprintln!(
            "round {round}: killed after {delay} ms; {} revocations and {} seals signed so far",
            signed_revoked.lock().unwrap().len(),
            signed_seals.lock().unwrap().len()
        );
    }
    assert!(snapshots_seen > 0);
}
