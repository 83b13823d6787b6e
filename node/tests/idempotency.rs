//! `Idempotency-Key` on writes, on a real node process: a retry gets the first answer and never
//! makes the act again, whether the first answer was lost, the request is sent many times at
//! once, or the node was killed mid-burst and restarted; another request under a used key is
//! refused. Runs on either storage engine (node_process::use_test_storage).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_process;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use node_process::{AGENCY_A, AGENCY_B, Node, Reply, certificate};
use serde_json::{Value, json};

fn keyed(node: &Node, path: &str, token: &str, body: &Value, key: &str) -> std::io::Result<Reply> {
    node.try_request_with(
        "POST",
        path,
        Some(token),
        Some(body.to_string().as_bytes()),
        &[("Idempotency-Key", key)],
    )
}

/// The size of the node's latest checkpoint, once it has one.
fn log_size(node: &Node) -> Option<u64> {
    let reply = node.get("/checkpoint", None);
    // The signed note's second line is the tree size.
    (reply.status == 200).then(|| reply.text().lines().nth(1).unwrap().parse().unwrap())
}

/// The log's size once a checkpoint (signed every second) has caught up with every write made
/// so far: the same size twice, a checkpoint interval apart.
fn settled_size(node: &Node) -> u64 {
    let mut last = log_size(node);
    loop {
        std::thread::sleep(Duration::from_millis(1100));
        let now = log_size(node);
        if let (Some(now), true) = (now, now == last) {
            return now;
        }
        last = now;
    }
}

#[test]
fn a_retried_write_gets_its_first_answer_and_is_made_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let (token, seal) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let (other, _) = node.agency_with_seal(AGENCY_B, "FY-AMR-2");
    let body = certificate(&seal, "IK0001");

    let first = keyed(&node, "/v1/certificates", &token, &body, "issue-IK0001").unwrap();
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), None);
    let size = settled_size(&node);
    // The answer was lost: the same request again answers the same, and logs nothing.
    let again = keyed(&node, "/v1/certificates", &token, &body, "issue-IK0001").unwrap();
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(settled_size(&node), size);
    // Another request under the same key is refused; the key is the caller's own.
    let changed = certificate(&seal, "IK0002");
    let reused = keyed(&node, "/v1/certificates", &token, &changed, "issue-IK0001").unwrap();
    assert_eq!(
        (reused.status, reused.code()),
        (422, "IDEMPOTENCY_KEY_REUSED".into())
    );
    let elsewhere = keyed(&node, "/v1/certificates", &other, &changed, "issue-IK0001").unwrap();
    assert_eq!(
        elsewhere.status, 403,
        "another agency's key space, its own refusal"
    );
    // A refusal is an answer too, replayed as given.
    let bad = json!({"seal": seal});
    let refused = keyed(&node, "/v1/certificates", &token, &bad, "bad-1").unwrap();
    assert_eq!(refused.status, 400);
    let refused_again = keyed(&node, "/v1/certificates", &token, &bad, "bad-1").unwrap();
    assert_eq!(
        (refused_again.status, refused_again.body),
        (400, refused.body)
    );
    for key in ["", &"k".repeat(256), "with space"] {
        let invalid = keyed(&node, "/v1/certificates", &token, &body, key).unwrap();
        assert_eq!(
            (invalid.status, invalid.code()),
            (400, "IDEMPOTENCY_KEY_INVALID".into()),
            "{key:?}"
        );
    }

    // An anonymous write (a verification) keeps no key: nobody can make the node store a row
    // per request.
    let verify = json!({"certificate": first.json()["certificate"]});
    for _ in 0..2 {
        let anonymous = node
            .try_request_with(
                "POST",
                "/v1/verify",
                None,
                Some(verify.to_string().as_bytes()),
                &[("Idempotency-Key", "anonymous-1")],
            )
            .unwrap();
        assert_eq!(anonymous.status, 200, "{}", anonymous.text());
        assert_eq!(anonymous.header("idempotent-replayed"), None);
    }

    // Sixteen clients send one request with one key at once: it is made once, and every
    // answer that is not "in progress" is the first one.
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let present = json!({"id": id, "fields": ["holder.name"], "uses": 1});
    let barrier = Arc::new(Barrier::new(16));
    let before = settled_size(&node);
    let answers: Vec<Reply> = (0..16)
        .map(|_| {
            let (node, token, present, barrier) = (
                node.handle(),
                token.clone(),
                present.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                keyed(&node, "/v1/presentations", &token, &present, "present-1").unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let made: HashSet<&[u8]> = answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| a.body.as_slice())
        .collect();
    assert_eq!(made.len(), 1, "one code, whoever got it");
    for answer in &answers {
        assert!(
            answer.status == 201
                || (answer.status == 409 && answer.code() == "IDEMPOTENCY_KEY_IN_USE"),
            "{} {}",
            answer.status,
            answer.text()
        );
    }
    assert_eq!(
        settled_size(&node),
        before + 1,
        "one presentation.created entry"
    );
}

/// Keyed writes in a burst, the node killed (SIGKILL) in the middle and restarted, every key
/// sent again: each act is in the log once, and each retry answers the first answer, or says
/// the act was logged before its answer could be recorded, or (never having reached the log)
/// makes it now.
#[test]
fn keyed_writes_killed_mid_burst_are_never_made_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let (token, seal) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let issued = node.post(
        "/v1/certificates",
        Some(&token),
        &certificate(&seal, "KB0001"),
    );
    assert_eq!(issued.status, 201, "{}", issued.text());
    let id = issued.json()["id"].as_str().unwrap().to_owned();
    let present = json!({"id": id, "fields": ["holder.name"]});

    let first: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (handle, token, present, first) =
                (node.handle(), token.clone(), present.clone(), first.clone());
            std::thread::spawn(move || {
                for n in 0.. {
                    let key = format!("burst-{worker}-{n}");
                    match keyed(&handle, "/v1/presentations", &token, &present, &key) {
                        Ok(reply) => {
                            assert_eq!(reply.status, 201, "{}", reply.text());
                            first.lock().unwrap().insert(key, reply);
                        }
                        Err(_) => {
                            // Killed: this key's outcome is unknown; it is retried below.
                            first.lock().unwrap().insert(
                                key,
                                Reply {
                                    status: 0,
                                    headers: String::new(),
                                    body: Vec::new(),
                                },
                            );
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    node.kill9();
    for worker in workers {
        worker.join().unwrap();
    }
    node.start();
    let first = first.lock().unwrap().clone();
    let mut logged = 0;
    let mut outcomes: HashMap<(u16, u16), usize> = HashMap::new();
    for (key, answer) in &first {
        let retry = keyed(&node, "/v1/presentations", &token, &present, key).unwrap();
        *outcomes.entry((answer.status, retry.status)).or_default() += 1;
        match (answer.status, retry.status) {
            (201, 201) => {
                assert_eq!(retry.body, answer.body, "{key}: not the first answer");
                logged += 1;
            }
            (0, 201) => logged += 1,
            (0, 409) => {
                assert_eq!(retry.code(), "IDEMPOTENCY_INTERRUPTED", "{key}");
                logged += 1;
            }
            other => panic!("{key}: {other:?} {}", retry.text()),
        }
        // And once more: now always a recorded answer or the interruption, never a new act.
        let third = keyed(&node, "/v1/presentations", &token, &present, key).unwrap();
        assert!(
            third.header("idempotent-replayed").is_some()
                || third.code() == "IDEMPOTENCY_INTERRUPTED",
            "{key}: {} {}",
            third.status,
            third.text()
        );
    }
    assert!(first.len() > 8, "the burst made only {}", first.len());
    eprintln!(
        "(first answer, retry) of {} keys: {outcomes:?}",
        first.len()
    );
    // Every key's act is in the log exactly once: the month's codes made count them.
    let month = node.get("/v1/report/month", None).json();
    let figures = &month["figures"];
    if figures["entries"].as_f64() == Some(month["last_index"].as_f64().unwrap_or(-1.0) + 1.0) {
        assert_eq!(figures["presentations_made"].as_f64(), Some(logged as f64));
    } else {
        eprintln!("the month turned during the test (Beijing time): the count is not checked");
    }
    node.kill9();
    let (ok, out) = node.check();
    assert!(ok, "{out}");
}
