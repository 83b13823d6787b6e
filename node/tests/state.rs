//! The region state on disk: `tongban-node check` finds a state that disagrees with the log, and a
//! log written before the state was kept on disk (format 2) is brought up to date at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod node_process;

use node_process::{AGENCY_A, Node, certificate};
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};
use serde_json::json;
use tongban_core::status::State;
use tongban_node::config::StorageConfig;

const STATE: TableDefinition<(u8, &[u8]), &[u8]> = TableDefinition::new("state");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");

/// A change made behind the (stopped) node's back, to its log file or its database rows.
enum Edit {
    /// The first state row, in (kind, key) order, removed.
    RemoveFirstStateRow,
    /// The last byte of entry 2 flipped.
    FlipEntry2,
    /// The state dropped and its size reset: what an upgrade of the state's layout does.
    DropState,
    /// Marked as written by a newer build: redb's file format 4 (entries of format 1), or a
    /// database schema version this build does not know.
    NewerFormat,
}

fn edit_log(node: &Node, edit: Edit) {
    let config = tongban_node::home::load(&tongban_node::home::Home::new(&node.dir))
        .unwrap()
        .config;
    match config.storage {
        StorageConfig::Postgres(pg) => edit_database(&pg, edit),
        StorageConfig::Redb => edit_file(node, edit),
    }
}

fn edit_database(pg: &tongban_node::config::PostgresConfig, edit: Edit) {
    let log = "(SELECT id FROM tb_logs WHERE name = 'region')";
    let sql = match edit {
        Edit::RemoveFirstStateRow => format!(
            "DELETE FROM tb_state WHERE (log, kind, key) = (SELECT log, kind, key FROM tb_state
             WHERE log = {log} ORDER BY kind, key LIMIT 1)"
        ),
        Edit::FlipEntry2 => format!(
            "UPDATE tb_entries SET bytes = set_byte(bytes, length(bytes) - 1,
                                                    get_byte(bytes, length(bytes) - 1) # 1)
             WHERE log = {log} AND idx = 2"
        ),
        Edit::DropState => format!(
            "DELETE FROM tb_state WHERE log = {log}; UPDATE tb_logs SET state_size = 0 WHERE id = {log}"
        ),
        Edit::NewerFormat => "INSERT INTO tb_migrations (version) VALUES (999)".to_owned(),
    };
    let out = std::process::Command::new("psql")
        .args([pg.url.0.as_str(), "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("SET search_path = {}; {sql}", pg.schema.as_str()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn edit_file(node: &Node, edit: Edit) {
    let db = Database::create(node.dir.join("log.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    match edit {
        Edit::RemoveFirstStateRow => remove_first_state_row(&txn),
        Edit::FlipEntry2 => {
            let mut entries = txn.open_table(ENTRIES).unwrap();
            let mut entry = entries.get(2).unwrap().unwrap().value().to_vec();
            let last = entry.len() - 1;
            entry[last] ^= 1;
            entries.insert(2, entry.as_slice()).unwrap();
        }
        Edit::DropState => {
            txn.delete_table(STATE).unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("state_size", 0)
                .unwrap();
        }
        Edit::NewerFormat => {
            txn.open_table(META).unwrap().insert("format", 4).unwrap();
        }
    }
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
    edit_log(&node, Edit::RemoveFirstStateRow);
    let (agrees, report) = node.check();
    assert!(!agrees, "a missing row went unnoticed: {report}");
    assert!(report.contains("differs"), "{report}");

    // An entry whose signature no longer verifies: the replay stops there and names it.
    edit_log(&node, Edit::FlipEntry2);
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
    edit_log(&node, Edit::DropState);

    node.start();
    let after: Vec<u64> = ids.iter().map(|id| state_of(&node, id)).collect();
    assert_eq!(after, before);
    node.kill9();
    let (agrees, report) = node.check();
    assert!(agrees, "{report}");

    // A log written by a newer build (redb: format 4, entries of format 1; PostgreSQL: a
    // schema version this build does not know) is refused with a message that says so.
    edit_log(&node, Edit::NewerFormat);
    let (opened, refused) = node.check();
    assert!(!opened, "{refused}");
    assert!(
        refused.contains("log format 4 holds entries written before status lists")
            || refused.contains("schema is at version 999"),
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
