//! Real `tongban-node` processes on loopback forming a federation (specs/federation.md): the
//! membership gate, replication of trust and status (verify offline in another region, revocation
//! everywhere within a second), catch-up after a restart, witnessing with a quorum, and
//! equivocation detected by every member.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod federation_process;
mod node_process;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use federation_process::{
    Federation, connected_to, enable_p2p, genesis, init, log_size, member_file, metric,
    p2p_address, peer_id, replica_size, status, tongban, wait_for,
};
use node_process::{AGENCY_A, Node, certificate};
use serde_json::{Value, json};
use tongban_core::status::{ListStatus, State};
use tongban_core::trust::{StatusList, StatusSnapshot, TrustStore};
use tongban_node::log::{Contents, Log, LogConfig, LogError, NoIndex};
use tongban_node::storage::LogName;

fn verify(node: &Node, cert: &str) -> Value {
    let reply = node.post("/v1/verify", None, &json!({"certificate": cert}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

fn issue(node: &Node, token: &str, seal: &str, serial: &str) -> (String, String) {
    let reply = node.post("/v1/certificates", Some(token), &certificate(seal, serial));
    assert_eq!(reply.status, 201, "{}", reply.text());
    let json = reply.json();
    (
        json["id"].as_str().unwrap().to_owned(),
        json["certificate"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn members_connect_and_a_peer_outside_the_federation_is_refused() {
    let federation = Federation::start(&["341200", "370100", "110000"], 0);
    let a = &federation.nodes[0];
    assert_eq!(status(a)["membership_version"], 1);

    // A node of another federation (its own root) dials A: the connection is closed as soon as
    // the handshake names the peers (the outsider counts it; A's side of the same refusal is
    // counted in federation_gossip.rs, by a bare peer that does not close first).
    let dir = tempfile::tempdir().unwrap();
    let mut outsider = init(&dir.path().join("x"), "440300", None);
    let own = dir.path().join("own.tbm");
    genesis(
        &outsider.dir.join("keys/federation-root.key"),
        0,
        &[member_file(&outsider)],
        &own,
    );
    enable_p2p(&outsider, &own);
    outsider.start_with(&["--bootstrap".into(), federation.bootstrap.clone()]);
    p2p_address(&outsider);
    wait_for(
        Duration::from_secs(10),
        "the outsider's dial to be refused",
        || {
            (metric(
                &outsider,
                "tongban_p2p_connections_refused_total{reason=\"not_member\"}",
            ) >= 1.0)
                .then_some(())
        },
    );
    assert!(!connected_to(a, &[peer_id(&outsider)]));
    assert!(
        status(&outsider)["connected"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn trust_and_status_replicate_and_a_restarted_node_catches_up() {
    let mut federation = Federation::start(&["341200", "370100", "110000"], 1);
    let (a, b) = (&federation.nodes[0], &federation.nodes[1]);
    let (token, seal) = a.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let (id, cert) = issue(a, &token, &seal, "2026000001");

    // Issued in A, verified in B from its replica of A's log (B never asks A).
    let answer = wait_for(
        Duration::from_secs(5),
        "B to verify A's certificate",
        || {
            let answer = verify(b, &cert);
            (answer["code"] == "OK").then_some(answer)
        },
    );
    assert_eq!(answer["id"], json!(id));
    assert_eq!(answer["warnings"], json!([]));
    // The federation-wide trust bundle of B holds A's seal and loads offline.
    let bundle = b.get("/v1/federation/trust-bundle", None).body;
    let trust = TrustStore::load_any_time(&bundle, None).unwrap();
    assert_eq!(trust.regions().len(), 3);
    assert_eq!(trust.seals().count(), 1);

    // Revoked in A: B refuses it within a second of A's acknowledgement.
    let revoke = a.post(
        &format!("/v1/certificates/{id}/status"),
        Some(&token),
        &json!({"operation": "revoke"}),
    );
    assert_eq!(revoke.status, 200, "{}", revoke.text());
    let acknowledged = Instant::now();
    wait_for(Duration::from_secs(5), "B to see the revocation", || {
        (verify(b, &cert)["code"] == "STATUS_REVOKED").then_some(())
    });
    let latency = acknowledged.elapsed();
    eprintln!("revocation visible in B {latency:?} after A acknowledged it");
    assert!(latency < Duration::from_secs(1), "took {latency:?}");
    // B serves A's status snapshot, signed by A's root: with B's federation bundle an offline
    // verifier sees the revocation.
    let reply = b.get("/v1/federation/status-snapshots/341200", None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let bundle = b.get("/v1/federation/trust-bundle", None).body;
    let trust = TrustStore::load_any_time(&bundle, None).unwrap();
    let snapshot = StatusSnapshot::load(&reply.body, &trust).unwrap();
    assert_eq!(snapshot.region.as_str(), "341200");
    assert!(
        snapshot
            .entries
            .iter()
            .any(|e| e.id.as_str() == id && e.state == State::Revoked)
    );
    assert_eq!(
        b.get("/v1/federation/status-snapshots/440300", None).status,
        404
    );
    // And A's status list, relayed by B: the revoked certificate's index says revoked.
    let reply = b.get("/v1/federation/status-lists/341200", None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let list = StatusList::load(&reply.body, &trust).unwrap();
    assert_eq!(list.region.as_str(), "341200");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&cert)
        .unwrap();
    let index = tongban_core::cert::inspect(&bytes)
        .unwrap()
        .claims
        .unwrap()
        .status_index;
    assert_eq!(list.get(index), Some(ListStatus::State(State::Revoked)));
    assert_eq!(
        b.get("/v1/federation/status-lists/440300", None).status,
        404
    );

    // B stops; A keeps issuing; B restarts and converges with nothing lost.
    federation.nodes[1].kill9();
    let a = &federation.nodes[0];
    let mut certs = Vec::new();
    for serial in 2..12 {
        certs.push(issue(a, &token, &seal, &format!("20260000{serial:02}")).1);
    }
    let target = log_size(a);
    federation.restart(1);
    let (a, b, c) = (
        &federation.nodes[0],
        &federation.nodes[1],
        &federation.nodes[2],
    );
    wait_for(Duration::from_secs(20), "B to catch up with A", || {
        (replica_size(b, "341200") >= target).then_some(())
    });
    wait_for(Duration::from_secs(10), "C to hold A's log", || {
        (replica_size(c, "341200") >= target).then_some(())
    });
    for cert in &certs {
        assert_eq!(verify(b, cert)["code"], "OK");
    }
    // Every catch-up answer is counted by what became of it: entries applied, and, once B holds
    // everything, the peers' "nothing after" refusals — none dropped unseen.
    wait_for(
        Duration::from_secs(10),
        "B to count its catch-up answers",
        || (metric(b, "tongban_catch_up_answers_total{code=\"LOG_GAP\"}") > 0.0).then_some(()),
    );
    assert!(metric(b, "tongban_catch_up_answers_total{code=\"applied\"}") > 0.0);
    // A bad query on a federation route is a problem document, as everywhere.
    let reply = b.get("/v1/federation/regions/341200?min_size=x", None);
    assert_eq!(reply.status, 400);
    assert_eq!(reply.code(), "MALFORMED_QUERY");
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(
        metric(
            b,
            "tongban_federation_internal_errors_total{reason=\"catch-up\"}"
        ),
        0.0
    );
    // Witnessing: A's checkpoints reach their quorum of one cosignature.
    wait_for(
        Duration::from_secs(10),
        "a cosigned checkpoint of A",
        || {
            let reply = a.get("/v1/federation/checkpoint", None);
            (reply.status == 200 && reply.text().matches("\n— ").count() >= 2).then_some(())
        },
    );
    assert!(metric(a, "tongban_witness_rounds_total{code=\"quorum\"}") >= 1.0);
    assert!(status(b)["misbehaving"].as_object().unwrap().is_empty());

    // The replicas hold the state A's own log establishes, row for row, on disk: the same
    // rules over the same entries, whether applied as published or proven after a restart.
    let (origin, size) = stop_when_replicated(&mut federation);
    for i in [1, 2] {
        let replica = open(&federation.nodes[i].dir, &replica_name("341200"));
        assert_eq!(replica.state_size().unwrap(), size);
        let differences = origin.state_differences_with(&replica).unwrap();
        assert_eq!(differences.count, 0, "node {i}: {differences:?}");
        assert!(differences.compared > 10);
    }
}

/// A replica keeps the tree and the state, not the entries, unless its node is configured to keep
/// them (an archive): such a node serves catch-up while the region's own node cannot, the others
/// answer ENTRIES_NOT_HELD; either way the state is the origin's, row for row.
#[test]
fn replicas_keep_no_entries_unless_configured_and_an_archive_serves_catch_up() {
    let mut federation = Federation::start_with(
        &["341200", "370100", "110000"],
        1,
        &[(2, "replica_entries = true")],
    );
    let a = &federation.nodes[0];
    let (token, seal) = a.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let mut certs = Vec::new();
    for serial in 1..6 {
        certs.push(issue(a, &token, &seal, &format!("20260000{serial:02}")).1);
    }
    let target = log_size(a);
    let c = &federation.nodes[2];
    wait_for(
        Duration::from_secs(20),
        "C to hold and verify all of A",
        || {
            let verified = status(c)["regions"]["341200"]["verified_checkpoint"].as_u64();
            (replica_size(c, "341200") >= target && verified >= Some(target)).then_some(())
        },
    );

    // A stops answering; B loses its replica of A and starts again, knowing only C.
    signal(&federation.nodes[0], "-STOP");
    federation.nodes[1].kill9();
    node_process::node_storage(&federation.nodes[1].dir)
        .remove_log(&replica_name("341200"))
        .unwrap();
    let via_c = p2p_address(&federation.nodes[2]);
    federation.nodes[1].start_with(&["--bootstrap".into(), via_c]);
    let b = &federation.nodes[1];
    wait_for(Duration::from_secs(20), "B to catch up from C", || {
        (replica_size(b, "341200") >= target).then_some(())
    });
    for cert in &certs {
        assert_eq!(verify(b, cert)["code"], "OK");
    }

    // C loses its replica of A and starts again, knowing B, which keeps no entries, and A's
    // address (A answers nothing yet).
    federation.nodes[2].kill9();
    node_process::node_storage(&federation.nodes[2].dir)
        .remove_log(&replica_name("341200"))
        .unwrap();
    let via_b = p2p_address(&federation.nodes[1]);
    let bootstrap = [
        "--bootstrap".into(),
        via_b,
        "--bootstrap".into(),
        federation.bootstrap.clone(),
    ];
    federation.nodes[2].start_with(&bootstrap);
    let c = &federation.nodes[2];
    wait_for(
        Duration::from_secs(20),
        "B to tell C it holds no entries",
        || {
            (metric(
                c,
                "tongban_catch_up_answers_total{code=\"ENTRIES_NOT_HELD\"}",
            ) > 0.0)
                .then_some(())
        },
    );
    assert_eq!(replica_size(c, "341200"), 0);
    // A answers again: C catches up from it.
    signal(&federation.nodes[0], "-CONT");
    wait_for(Duration::from_secs(30), "C to catch up from A", || {
        (replica_size(&federation.nodes[2], "341200") >= target).then_some(())
    });
    assert_eq!(
        metric(
            &federation.nodes[2],
            "tongban_federation_internal_errors_total{reason=\"catch-up\"}"
        ),
        0.0
    );

    let (origin, size) = stop_when_replicated(&mut federation);
    let (light, archive) = (
        open(&federation.nodes[1].dir, &replica_name("341200")),
        open(&federation.nodes[2].dir, &replica_name("341200")),
    );
    assert_eq!(light.contents(), Contents::Tree);
    assert!(matches!(light.entries(0..1), Err(LogError::EntriesNotHeld)));
    assert_eq!(archive.contents(), Contents::Entries);
    assert_eq!(
        archive.entries(0..size).unwrap(),
        origin.entries(0..size).unwrap()
    );
    for replica in [&light, &archive] {
        assert_eq!(replica.root(size).unwrap(), origin.root(size).unwrap());
        let differences = origin.state_differences_with(replica).unwrap();
        assert_eq!(differences.count, 0, "{differences:?}");
        assert!(differences.compared > 5);
    }
    drop((origin, light, archive));

    // `check` says the same of the stopped nodes: each replica's tree and state in step, and
    // equal to the origin's; a replica whose state was changed behind the log's back is found.
    let a_dir = federation.nodes[0].dir.to_str().unwrap().to_owned();
    for i in [1, 2] {
        let dir = federation.nodes[i].dir.to_str().unwrap().to_owned();
        let out = tongban(&["check", "--dir", &dir, "--origin", &a_dir]);
        assert!(out.contains("state equal to the origin's"), "{out}");
        assert!(out.contains(&format!("{size} entries")), "{out}");
    }
    // One certificate record's last byte (its status index) changed where it is stored.
    flip_last_byte_of_first_certificate(&federation.nodes[1].dir);
    let dir = federation.nodes[1].dir.to_str().unwrap().to_owned();
    let out = std::process::Command::new(node_process::BIN)
        .args(["check", "--dir", &dir, "--origin", &a_dir])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("state differs from the origin's in 1 rows"),
        "{text}"
    );
}

/// Waits until nodes 1 and 2 hold all of node 0's log (region 341200), stops every node and
/// opens node 0's log: with its size, checked not to have grown meanwhile.
fn stop_when_replicated(federation: &mut Federation) -> (Log, u64) {
    let size = log_size(&federation.nodes[0]);
    for i in [1, 2] {
        wait_for(
            Duration::from_secs(10),
            "the replicas to hold all of A",
            || (replica_size(&federation.nodes[i], "341200") >= size).then_some(()),
        );
    }
    for node in &mut federation.nodes {
        node.kill9();
    }
    let origin = open(&federation.nodes[0].dir, &LogName::Region);
    assert_eq!(
        origin.size().unwrap(),
        size,
        "A logged more after the check"
    );
    (origin, size)
}

/// A log of the (stopped) node in `dir`, of the test federation's suite.
fn open(dir: &std::path::Path, name: &LogName) -> Log {
    let config = LogConfig {
        suite: tongban_core::suite::Suite::parse(&node_process::suite()).unwrap(),
        ..LogConfig::default()
    };
    node_process::node_storage(dir)
        .open_log(name, config, Arc::new(NoIndex))
        .unwrap()
}

/// Changes, behind the log's back, the last byte of the first certificate row (state kind 1) of
/// the (stopped) node's replica of 341200: in its redb file, or in its database rows.
fn flip_last_byte_of_first_certificate(dir: &std::path::Path) {
    let config = tongban_node::home::load(&tongban_node::home::Home::new(dir))
        .unwrap()
        .config;
    if let tongban_node::config::StorageConfig::Postgres(pg) = config.storage {
        let sql = format!(
            "SET search_path = {};
             UPDATE tb_state SET value = set_byte(value, length(value) - 1,
                                                  get_byte(value, length(value) - 1) # 1)
             WHERE (log, kind, key) = (
                 SELECT log, kind, key FROM tb_state
                 WHERE log = (SELECT id FROM tb_logs WHERE name = 'replica/341200-1') AND kind = 1
                 ORDER BY key LIMIT 1);",
            pg.schema.as_str()
        );
        let out = std::process::Command::new("psql")
            .args([pg.url.0.as_str(), "-v", "ON_ERROR_STOP=1", "-c", &sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("UPDATE 1"),
            "{out:?}"
        );
        return;
    }
    use redb::{ReadableDatabase, TableDefinition};
    const STATE: TableDefinition<(u8, &[u8]), &[u8]> = TableDefinition::new("state");
    let db = redb::Database::open(dir.join("replicas/341200-1.redb")).unwrap();
    let (key, mut value) = {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(STATE).unwrap();
        let (key, value) = table
            .range((1u8, &b""[..])..)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        (key.value().1.to_vec(), value.value().to_vec())
    };
    *value.last_mut().unwrap() ^= 1;
    let txn = db.begin_write().unwrap();
    txn.open_table(STATE)
        .unwrap()
        .insert((1u8, key.as_slice()), value.as_slice())
        .unwrap();
    txn.commit().unwrap();
}

/// The replica of the region `code`'s first log generation.
fn replica_name(code: &str) -> LogName {
    LogName::Replica {
        region: tongban_core::ids::RegionCode::parse(code).unwrap(),
        generation: 1,
    }
}

/// Sends `signal` (e.g. `-STOP`) to `node`'s process with kill(1).
fn signal(node: &Node, signal: &str) {
    let pid = node.child.as_ref().unwrap().id().to_string();
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[test]
fn checkpoints_reach_their_quorum_while_a_witness_is_stopped() {
    let federation = Federation::start(&["341200", "370100", "110000"], 1);
    let (a, c) = (&federation.nodes[0], &federation.nodes[2]);
    // C neither answers nor sends: each of A's witnessing rounds waits for it in vain.
    signal(c, "-STOP");
    let (token, seal) = a.agency_with_seal(AGENCY_A, "FY-AMR-1");
    issue(a, &token, &seal, "2026000001");
    let size = log_size(a);
    let covered = wait_for(
        Duration::from_secs(20),
        "A's checkpoint cosigned by B alone",
        || {
            let reply = a.get("/v1/federation/checkpoint", None);
            let text = reply.text();
            let covered: u64 = text.lines().nth(1)?.trim().parse().ok()?;
            (reply.status == 200 && covered >= size).then_some(covered)
        },
    );
    signal(c, "-CONT");
    assert!(covered >= size);
}

/// Signs a checkpoint of `node`'s log with its log key: what an equivocating region would do.
fn forge_checkpoint(node: &Node, origin: &str, size: u64, root: [u8; 32]) -> String {
    use tongban_core::log::checkpoint::Checkpoint;
    let key = tongban_node::keyfile::read(&node.dir.join("keys/log.key")).unwrap();
    Checkpoint {
        origin: origin.to_owned(),
        size,
        root,
    }
    .sign(origin, &key)
    .unwrap()
}

#[test]
fn an_equivocating_member_is_detected_by_every_other() {
    let federation = Federation::start(&["341200", "370100", "110000", "310000"], 2);
    let (a, b) = (&federation.nodes[0], &federation.nodes[1]);
    let (token, seal) = a.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let (_, cert) = issue(a, &token, &seal, "2026000001");
    let size = log_size(a);
    // B witnesses A's log up to its current size.
    let region_of_a = |s: &Value| s["regions"]["341200"].clone();
    let held = wait_for(
        Duration::from_secs(10),
        "B to cosign A's checkpoint",
        || {
            let held = region_of_a(&status(b));
            (held["witnessed"].as_u64() == Some(size)).then_some(held)
        },
    );
    let origin = held["origin"].as_str().unwrap().to_owned();

    // A (its log key) signs a second checkpoint of that size with another root, and asks B.
    let forged = forge_checkpoint(a, &origin, size, [7; 32]);
    let body = format!("old {size}\n\n{forged}");
    let reply = b.request("POST", "/add-checkpoint", None, Some(body.as_bytes()));
    assert_eq!(reply.status, 422, "{}", reply.text());
    assert!(reply.text().starts_with("EQUIVOCATION"), "{}", reply.text());

    // Every node, A included, marks A misbehaving from the evidence B published.
    for node in &federation.nodes {
        let marked = wait_for(
            Duration::from_secs(10),
            "the evidence to reach every node",
            || {
                let status = status(node);
                let mark = status["misbehaving"]["341200"].clone();
                (!mark.is_null()).then_some(mark)
            },
        );
        let evidence = marked["evidence"].as_array().unwrap();
        assert!(evidence.iter().any(|n| n.as_str() == Some(forged.as_str())));
        assert_eq!(
            metric(node, "tongban_federation_misbehaving{region=\"341200\"}"),
            1.0
        );
    }
    // B's answers about A's certificates say so.
    assert_eq!(verify(b, &cert)["warnings"], json!(["REGION_MISBEHAVING"]));
    // B no longer cosigns for A.
    let next = forge_checkpoint(a, &origin, size + 1, [8; 32]);
    let reply = b.request(
        "POST",
        "/add-checkpoint",
        None,
        Some(format!("old {size}\n\n{next}").as_bytes()),
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    // A well-formed request from a stranger's log is not witnessed.
    let reply = b.request(
        "POST",
        "/add-checkpoint",
        None,
        Some(b"old 0\n\nnot a note\n"),
    );
    assert!(reply.status >= 400);
}

#[test]
fn a_new_membership_version_adds_and_removes_members() {
    let mut federation = Federation::start(&["341200", "370100"], 0);
    let dir = tempfile::tempdir().unwrap();
    let mut c = init(
        &dir.path().join("c"),
        "110000",
        Some(&federation.federation_key),
    );
    let v2 = dir.path().join("v2.tbm");
    let key = federation.federation_key.display().to_string();
    let current = federation.membership.display().to_string();
    let member = member_file(&c).display().to_string();
    federation_process::tongban(&[
        "federation",
        "update",
        "--key",
        &key,
        "--current",
        &current,
        "--add",
        &member,
        "--out",
        v2.to_str().unwrap(),
    ]);
    let a = &federation.nodes[0];
    let (token, seal) = a.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let (_, cert) = issue(a, &token, &seal, "2026000001");
    // The operator hands A version 2; A adopts it and gossips it to B.
    let signed = std::fs::read(&v2).unwrap();
    use base64::Engine;
    let body = json!({"membership": base64::engine::general_purpose::STANDARD.encode(&signed)});
    assert_eq!(
        a.post("/v1/admin/federation/membership", None, &body)
            .status,
        401
    );
    let reply = a.post("/v1/admin/federation/membership", Some(&a.operator), &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["membership_version"], 2);
    let b = &federation.nodes[1];
    wait_for(Duration::from_secs(10), "B to adopt version 2", || {
        (status(b)["membership_version"] == 2).then_some(())
    });
    // Version 1 again is refused as a fork of nothing new; a forged one is refused.
    let v1 = std::fs::read(&federation.membership).unwrap();
    let old = json!({"membership": base64::engine::general_purpose::STANDARD.encode(&v1)});
    assert_eq!(
        a.post("/v1/admin/federation/membership", Some(&a.operator), &old)
            .status,
        200
    );
    assert_eq!(status(a)["membership_version"], 2);

    // The new member joins with version 2, catches up on A's log and verifies A's certificate.
    enable_p2p(&c, &v2);
    c.start_with(&["--bootstrap".into(), federation.bootstrap.clone()]);
    let size = log_size(a);
    wait_for(Duration::from_secs(20), "C to replicate A", || {
        (replica_size(&c, "341200") >= size).then_some(())
    });
    // The replica's size shows only once the trust store holds the seals its entries registered.
    assert_eq!(verify(&c, &cert)["code"], "OK");

    // Version 3 removes B: A and C close their connections to it.
    let v3 = dir.path().join("v3.tbm");
    federation_process::tongban(&[
        "federation",
        "update",
        "--key",
        &key,
        "--current",
        v2.to_str().unwrap(),
        "--remove",
        "370100",
        "--out",
        v3.to_str().unwrap(),
    ]);
    let body = json!({"membership": base64::engine::general_purpose::STANDARD.encode(std::fs::read(&v3).unwrap())});
    let reply = federation.nodes[0].post(
        "/v1/admin/federation/membership",
        Some(&federation.nodes[0].operator),
        &body,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let b_id = peer_id(&federation.nodes[1]);
    for node in [&federation.nodes[0], &c] {
        wait_for(Duration::from_secs(10), "B to be disconnected", || {
            (!connected_to(node, std::slice::from_ref(&b_id))).then_some(())
        });
    }
    federation.nodes[1].kill9();
}
