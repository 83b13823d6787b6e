//! The region state on disk: `tongban-node check` finds a state that disagrees with the log, and a
//! log written before the state was kept on disk (format 2) is brought up to date at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod node_process;

use node_process::{AGENCY_A, Node, certificate};
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};
use serde_json::json;
use tongban_core::status::State;

const STATE: TableDefinition<(u8, &[u8]), &[u8]> = TableDefinition::new("state");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");

/// Changes the (stopped) node's log file behind its back, in one committed transaction.
fn edit_log(node: &Node, edit: impl FnOnce(&WriteTransaction)) {
    let db = Database::create(node.dir.join("log.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    edit(&txn);
    txn.commit().unwrap();
}

fn remove_first_state_row(txn: &WriteTransaction) {
    let mut table = txn.open_table(STATE).unwrap();
    let (kind, key) = {
        let (key, _) = table.iter().unwrap().next().unwrap().unwrap();
        let (kind, key) = key.value();
        (kind, key.to_vec())
    };
    table.remove((kind, key.as_slice())).unwrap();
}

/// Issues three certificates, suspends the second and renews the third; returns the agency's
/// token and their ids.
fn some_acts(node: &Node) -> (String, Vec<String>) {
    let (token, seal) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let ids: Vec<String> = (0..3)
        .map(|n| {
            let reply = node.post(
                "/v1/certificates",
                Some(&token),
                &certificate(&seal, &format!("S{n}")),
            );
            assert_eq!(reply.status, 201, "{}", reply.text());
            reply.json()["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let suspend = node.post(
        &format!("/v1/certificates/{}/status", ids[1]),
        Some(&token),
        &json!({"operation": "suspend"}),
    );
    assert_eq!(suspend.status, 200, "{}", suspend.text());
    let renew = node.post(
        &format!("/v1/certificates/{}/renew", ids[2]),
        Some(&token),
        &{
            let mut body = certificate(&seal, "S2");
            let fields = body.as_object_mut().unwrap();
            fields.remove("type_code");
            fields.remove("serial");
            body
        },
    );
    assert_eq!(renew.status, 201, "{}", renew.text());
    (token, ids)
}

fn state_of(node: &Node, id: &str) -> u64 {
    let reply = node.get(&format!("/v1/certificates/{id}/status"), None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["state"].as_u64().unwrap()
}

#[test]
fn check_finds_a_state_that_the_log_does_not_establish() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    some_acts(&node);
    node.kill9();
    let (agrees, report) = node.check();
    assert!(agrees, "{report}");
    assert!(report.contains("state agrees with the log"), "{report}");

    // One row of the state removed behind the node's back.
    edit_log(&node, remove_first_state_row);
    let (agrees, report) = node.check();
    assert!(!agrees, "a missing row went unnoticed: {report}");
    assert!(report.contains("differs"), "{report}");

    // An entry whose signature no longer verifies: the replay stops there and names it.
    edit_log(&node, |txn| {
        let mut entries = txn.open_table(ENTRIES).unwrap();
        let mut entry = entries.get(2).unwrap().unwrap().value().to_vec();
        let last = entry.len() - 1;
        entry[last] ^= 1;
        entries.insert(2, entry.as_slice()).unwrap();
    });
    let (agrees, report) = node.check();
    assert!(!agrees, "a broken signature went unnoticed: {report}");
    assert!(
        report.contains("entry 2 is refused") && report.contains("ENTRY_SIGNATURE"),
        "{report}"
    );
}

#[test]
fn a_dropped_state_is_rebuilt_at_start_and_an_old_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let (_, ids) = some_acts(&node);
    let before: Vec<u64> = ids.iter().map(|id| state_of(&node, id)).collect();
    assert_eq!(before[1], State::Suspended.code());
    node.kill9();

    // What an upgrade of the state's layout does: the state dropped, its size reset; the start
    // rebuilds it from the entries.
    edit_log(&node, |txn| {
        txn.delete_table(STATE).unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("state_size", 0)
            .unwrap();
    });

    node.start();
    let after: Vec<u64> = ids.iter().map(|id| state_of(&node, id)).collect();
    assert_eq!(after, before);
    node.kill9();
    let (agrees, report) = node.check();
    assert!(agrees, "{report}");

    // A log of format 4 holds entries of format 1: refused with a message that says so.
    edit_log(&node, |txn| {
        txn.open_table(META).unwrap().insert("format", 4).unwrap();
    });
    let (opened, refused) = node.check();
    assert!(!opened, "{refused}");
    assert!(
        refused.contains("log format 4 holds entries written before status lists"),
        "{refused}"
    );
}

/// The identifiers and states the node's signed status snapshot lists, checked against its own
/// trust bundle.
fn listed(node: &Node) -> Vec<(String, u64)> {
    let bundle = node.get("/v1/trust-bundle", None).body;
    let trust = tongban_core::trust::TrustStore::load_any_time(&bundle, None).unwrap();
    let reply = node.get("/v1/status-snapshot", None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let snapshot = tongban_core::trust::StatusSnapshot::load(&reply.body, &trust).unwrap();
    let mut listed: Vec<_> = snapshot
        .entries
        .iter()
        .map(|e| (e.id.as_str().to_owned(), e.state.code()))
        .collect();
    listed.sort();
    listed
}

#[test]
fn the_status_snapshot_lists_exactly_the_certificates_that_are_not_valid() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.start();
    let (token, ids) = some_acts(&node);
    let mut expected = vec![
        (ids[1].clone(), State::Suspended.code()),
        (ids[2].clone(), state_of(&node, &ids[2])),
    ];
    expected.sort();
    assert_ne!(expected[0].1, State::Valid.code());
    assert_ne!(expected[1].1, State::Valid.code());
    assert_eq!(listed(&node), expected);

    // Valid again: no longer listed.
    let reply = node.post(
        &format!("/v1/certificates/{}/status", ids[1]),
        Some(&token),
        &json!({"operation": "unsuspend"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        listed(&node),
        vec![(ids[2].clone(), state_of(&node, &ids[2]))]
    );
    node.kill9();
    let (agrees, report) = node.check();
    assert!(agrees, "{report}");
}
