//! SIGKILL during a burst of issuance and status changes loses no acknowledged act: after each
//! kill the state on disk agrees with a full replay of the log (`tongban-node check`), and after
//! each restart every certificate the node answered 201 for is there, with its bytes, in the
//! state its last acknowledged change left it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod node_process;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use node_process::{AGENCY_A, Node, certificate};
use serde_json::json;

#[test]
fn killed_mid_burst_keeps_every_acknowledged_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let (token, seal) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let suspended: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 0..3u64 {
        let node_ref = Arc::new(Node {
            dir: node.dir.clone(),
            operator: node.operator.clone(),
            child: None,
            addr: node.addr.clone(),
        });
        let workers: Vec<_> = (0..8u64)
            .map(|worker| {
                let (node, token, seal, acked, suspended) = (
                    node_ref.clone(),
                    token.clone(),
                    seal.clone(),
                    acked.clone(),
                    suspended.clone(),
                );
                std::thread::spawn(move || {
                    for n in 0.. {
                        let serial = format!("R{round}W{worker}N{n}");
                        let body = certificate(&seal, &serial).to_string();
                        let Ok(reply) = node.try_request(
                            "POST",
                            "/v1/certificates",
                            Some(&token),
                            Some(body.as_bytes()),
                        ) else {
                            return;
                        };
                        if reply.status != 201 {
                            continue;
                        }
                        let json = reply.json();
                        let id = json["id"].as_str().unwrap().to_owned();
                        acked
                            .lock()
                            .unwrap()
                            .push((id.clone(), json["certificate"].as_str().unwrap().to_owned()));
                        // Every third one is suspended: status changes race the kill too.
                        if n % 3 == 0 {
                            let Ok(reply) = node.try_request(
                                "POST",
                                &format!("/v1/certificates/{id}/status"),
                                Some(&token),
                                Some(br#"{"operation":"suspend"}"#),
                            ) else {
                                return;
                            };
                            if reply.status == 200 {
                                suspended.lock().unwrap().push(id);
                            }
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + 250 * round));
        node.kill9();
        for worker in workers {
            worker.join().unwrap();
        }
        let (agrees, report) = node.check();
        assert!(
            agrees,
            "round {round}: state and log disagree after the kill: {report}"
        );
        node.start();
        let acked = acked.lock().unwrap();
        assert!(
            !acked.is_empty(),
            "round {round}: nothing was acknowledged before the kill"
        );
        for (id, cert) in acked.iter() {
            let status = node.get(&format!("/v1/certificates/{id}/status"), None);
            assert_eq!(
                status.status, 200,
                "round {round}: acknowledged {id} is missing"
            );
            let fetched = node.get(&format!("/v1/certificates/{id}"), Some(&token));
            assert_eq!(fetched.json()["certificate"].as_str(), Some(cert.as_str()));
        }
        let suspended = suspended.lock().unwrap();
        for id in suspended.iter() {
            let status = node.get(&format!("/v1/certificates/{id}/status"), None);
            assert_eq!(
                status.json()["state"],
                tongban_core::status::State::Suspended.code(),
                "round {round}: the acknowledged suspension of {id} is lost"
            );
        }
        let valid = acked
            .iter()
            .find(|(id, _)| !suspended.contains(id))
            .expect("a certificate that was not suspended");
        let verified = node.post("/v1/verify", None, &json!({"certificate": valid.1}));
        assert_eq!(verified.json()["code"], "OK");
        eprintln!(
            "round {round}: {} acknowledged certificates survived",
            acked.len()
        );
    }
}

/// SIGKILL while seals are being created, at random moments: the node always starts again, every
/// seal it acknowledged is registered with its key held (it stamps), and key files of seals the
/// log never registered (a crash between the key and its entry, or a file cut short by an older
/// version's crash) do not stop a start.
#[test]
fn killed_while_creating_seals_still_starts_with_every_acknowledged_seal() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let (token, _) = node.agency_with_seal(AGENCY_A, "FY-AMR-0");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut rng = common::Rng(common::seed());
    // What a crash of a version that wrote keys in place could leave: an empty key file of a
    // seal never registered, and a temporary file.
    let seals = dir.path().join("keys/seals");
    std::fs::write(seals.join(format!("{}.key", "ab".repeat(16))), "").unwrap();
    std::fs::write(seals.join(format!("{}.key.tmp", "cd".repeat(16))), "12").unwrap();
    for round in 0..12u64 {
        let before = acked.lock().unwrap().len();
        let node_ref = Arc::new(Node {
            dir: node.dir.clone(),
            operator: node.operator.clone(),
            child: None,
            addr: node.addr.clone(),
        });
        let workers: Vec<_> = (0..4u64)
            .map(|worker| {
                let (node, acked) = (node_ref.clone(), acked.clone());
                std::thread::spawn(move || {
                    for n in 0.. {
                        let body = json!({
                            "agency_uscc": AGENCY_A, "seal_id": format!("S{round}-{worker}-{n}"),
                            "seal_type": "approval", "name": "行政审批专用章",
                            "valid_until": 2_000_000_000u64, "picture": "cG5n",
                            "media_type": "image/png",
                        })
                        .to_string();
                        let Ok(reply) = node.try_request(
                            "POST",
                            "/v1/admin/seals",
                            Some(&node.operator),
                            Some(body.as_bytes()),
                        ) else {
                            return;
                        };
                        if reply.status == 201 {
                            let kid = reply.json()["kid"].as_str().unwrap().to_owned();
                            acked.lock().unwrap().push(kid);
                        }
                    }
                })
            })
            .collect();
        let delay = rng.between(50, 400);
        std::thread::sleep(Duration::from_millis(delay));
        // On a busy machine the first acknowledgement can come after the delay: the kill waits
        // for one (at most 30 s), so that every round kills a node that was registering seals.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while acked.lock().unwrap().len() == before && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        node.kill9();
        for worker in workers {
            worker.join().unwrap();
        }
        let (agrees, report) = node.check();
        assert!(
            agrees,
            "round {round}: state and log disagree after the kill: {report}"
        );
        node.start();
        assert!(!seals.join(format!("{}.key.tmp", "cd".repeat(16))).exists());
        let acked = acked.lock().unwrap();
        assert!(acked.len() > before, "round {round}: no seal acknowledged");
        for (n, kid) in acked[before..].iter().enumerate() {
            let serial = format!("K{round}N{n}");
            let issued = node.post("/v1/certificates", Some(&token), &certificate(kid, &serial));
            assert_eq!(
                issued.status,
                201,
                "round {round}: acknowledged seal {kid} cannot stamp: {}",
                issued.text()
            );
        }
        eprintln!(
            "round {round}: killed after {delay} ms; {} acknowledged seals stamp",
            acked.len() - before
        );
    }
}
