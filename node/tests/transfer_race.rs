//! Transfers raced against their cancellation across real processes (specs/sharing.md §5): in
//! every round a certificate of Fuyang is transferred out to Jinan, then Fuyang's agency cancels
//! the transfer while Jinan's agency takes the certificate in, at random moments, with anyone
//! fetching public proofs meanwhile. Whatever the interleaving, exactly one of the two succeeds,
//! no node (Fuyang, Jinan, or Suqian, which only replicates both) ever verifies the predecessor
//! and its successor as valid at once, and the auditor finds every log clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod federation_process;
mod node_process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use federation_process::{Federation, wait_for};
use node_process::{AGENCY_A, Node, certificate};
use serde_json::json;
use tongban_verify::audit::{Reading, Source, replay_all};

const JINAN_APPROVAL: &str = "11370100MB0000003G";
const ROUNDS: u64 = 12;

fn handle(node: &Node) -> Node {
    Node {
        dir: Default::default(),
        operator: String::new(),
        child: None,
        addr: node.addr.clone(),
    }
}

fn verify_code(node: &Node, cert: &str) -> String {
    let reply = node.post("/v1/verify", None, &json!({"certificate": cert}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["code"].as_str().unwrap().to_owned()
}

#[test]
fn a_licence_is_never_valid_in_two_regions_whatever_the_interleaving() {
    let federation = Federation::start(&["341200", "370100", "321300"], 0);
    let (fuyang, jinan) = (&federation.nodes[0], &federation.nodes[1]);
    let (fuyang_token, fuyang_seal) = fuyang.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let (jinan_token, jinan_seal) = jinan.agency_with_seal(JINAN_APPROVAL, "JN-SP-1");
    let mut rng = common::Rng(common::seed());
    let (mut cancelled, mut transferred) = (0, 0);
    for round in 0..ROUNDS {
        let issued = fuyang.post(
            "/v1/certificates",
            Some(&fuyang_token),
            &certificate(&fuyang_seal, &format!("2026{round:06}")),
        );
        assert_eq!(issued.status, 201, "{}", issued.text());
        let predecessor = issued.json()["certificate"].as_str().unwrap().to_owned();
        let id = issued.json()["id"].as_str().unwrap().to_owned();
        let out = fuyang.post(
            &format!("/v1/certificates/{id}/status"),
            Some(&fuyang_token),
            &json!({"operation": "transfer_out", "destination": "370100"}),
        );
        assert_eq!(out.status, 200, "{}", out.text());

        let successor: Arc<Mutex<Option<String>>> = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        // Observers: on every node, the successor (once it exists) and then the predecessor. A
        // successor valid and then a predecessor valid is both valid at once: the successor's
        // validity never goes back at a node.
        let observers: Vec<_> = federation
            .nodes
            .iter()
            .map(|node| {
                let (node, successor, done, predecessor) = (
                    handle(node),
                    successor.clone(),
                    done.clone(),
                    predecessor.clone(),
                );
                std::thread::spawn(move || {
                    let mut checks = 0;
                    while !done.load(Ordering::Acquire) {
                        let s = successor.lock().unwrap().clone();
                        let s_valid = s.as_ref().is_some_and(|s| verify_code(&node, s) == "OK");
                        let p_code = verify_code(&node, &predecessor);
                        assert!(
                            !(s_valid && p_code == "OK"),
                            "round {round}: {} verified both the successor and the predecessor as valid",
                            node.addr
                        );
                        checks += 1;
                    }
                    checks
                })
            })
            .collect();
        let (cancel_at, take_at) = (rng.between(0, 60), rng.between(0, 20));
        let canceller = {
            let (node, token, id) = (handle(fuyang), fuyang_token.clone(), id.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(cancel_at));
                let reply = node.post(
                    &format!("/v1/certificates/{id}/status"),
                    Some(&token),
                    &json!({"operation": "cancel_transfer_out"}),
                );
                assert!(
                    reply.status == 200 || reply.code() == "TRANSITION_NOT_ALLOWED",
                    "{}",
                    reply.text()
                );
                reply.status == 200
            })
        };
        let prover = {
            let (node, cert) = (handle(fuyang), predecessor.clone());
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let reply = node.post(
                        "/v1/verify/proof",
                        None,
                        &json!({
                            "certificate": cert, "requester_region": "370100",
                            "nonce": "00112233445566778899aabbccddeeff",
                        }),
                    );
                    assert_eq!(reply.status, 200, "{}", reply.text());
                }
            })
        };
        let taker = {
            let (node, token, seal, cert, successor) = (
                handle(jinan),
                jinan_token.clone(),
                jinan_seal.clone(),
                predecessor.clone(),
                successor.clone(),
            );
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(take_at));
                let mut body = certificate(&seal, &format!("2026{round:06}"));
                body.as_object_mut().unwrap().remove("type_code");
                let reply = node.post(
                    "/v1/certificates/transfer-in",
                    Some(&token),
                    &json!({"predecessor": cert, "certificate": body}),
                );
                if reply.status == 201 {
                    let s = reply.json()["certificate"].as_str().unwrap().to_owned();
                    *successor.lock().unwrap() = Some(s);
                    return true;
                }
                assert_eq!(reply.code(), "TRANSFER_NOT_CONFIRMED", "{}", reply.text());
                false
            })
        };
        let was_cancelled = canceller.join().unwrap();
        let was_taken = taker.join().unwrap();
        prover.join().unwrap();
        assert!(
            was_cancelled != was_taken,
            "round {round}: cancelled {was_cancelled}, taken in {was_taken}"
        );
        // Every node comes to the same view, observed all the while.
        let settled = Instant::now();
        let successor = successor.lock().unwrap().clone();
        for node in &federation.nodes {
            wait_for(Duration::from_secs(15), "every node to agree", || {
                let p = verify_code(node, &predecessor);
                let s = successor.as_ref().map(|s| verify_code(node, s));
                let agreed = match &s {
                    Some(s) => p == "STATUS_TRANSFERRED_OUT" && s == "OK",
                    None => p == "OK",
                };
                agreed.then_some(())
            });
        }
        std::thread::sleep(Duration::from_millis(100).saturating_sub(settled.elapsed()));
        done.store(true, Ordering::Release);
        let checks: usize = observers.into_iter().map(|o| o.join().unwrap()).sum();
        if was_taken {
            transferred += 1;
        } else {
            cancelled += 1;
        }
        eprintln!(
            "round {round}: cancel at {cancel_at} ms, take in at {take_at} ms: {}; {checks} checks",
            if was_taken {
                "transferred"
            } else {
                "cancelled"
            }
        );
    }
    eprintln!("{transferred} transferred, {cancelled} cancelled");

    // The auditor replays the three logs together: no entry any node wrote is refused, and every
    // transfer in matches its origin's accepted transfer out.
    let sources: Vec<Source> = federation
        .nodes
        .iter()
        .map(|n| Source::Node(format!("http://{}", n.addr)))
        .collect();
    for report in replay_all(&sources, Reading::new(Duration::from_secs(10)), None, None).unwrap() {
        assert!(
            report.is_clean(),
            "{}: {:?}",
            report.origin,
            report.findings
        );
    }
}
