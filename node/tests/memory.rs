//! The node's memory does not grow with the number of certificates its region holds: two nodes,
//! one with ten times the certificates of the other (made by `tongban-node fill`), serve the same
//! work (status reads of random certificates, issuances, verifications) and end within a few MiB
//! of each other. A node that kept a record per certificate in RAM (~2 KB each) would differ by
//! hundreds of MiB here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod node_process;

use common::{Rng, seed};
use node_process::{AGENCY_A, Node, certificate};
use serde_json::json;
use tongban_core::ids::{Identifier, IssuerCode, TypeCode, Uscc, uscc};

const SMALL: u64 = 20_000;
const LARGE: u64 = 200_000;
/// What the larger region may cost beyond the smaller one: caches and allocator noise.
const ALLOWED_MIB: u64 = 24;

/// The identifier `fill` gave its `n`-th certificate in a new node: serials count on from the
/// log's size once the filler's seal is registered (one entry).
fn filled_id(n: u64) -> Identifier {
    let first17 = "11341200MB9999999";
    let agency = Uscc::parse(&format!("{first17}{}", uscc::check_char(first17).unwrap())).unwrap();
    Identifier::new(
        TypeCode::parse(node_process::TYPE_CODE).unwrap(),
        IssuerCode::Uscc(agency),
        &format!("F{:012}", 1 + n),
        "001",
    )
    .unwrap()
}

fn rss_kib(node: &Node) -> u64 {
    let pid = node.child.as_ref().unwrap().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The same work on a node of `count` certificates; returns its RSS afterwards.
fn serve_work(count: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::init(dir.path());
    node.fill(count);
    node.start();
    eprintln!("{count}: started {} KiB", rss_kib(&node));
    let mut rng = Rng(seed());
    for _ in 0..500 {
        let id = filled_id(rng.between(0, count - 1));
        let reply = node.get(&format!("/v1/certificates/{}/status", id.as_str()), None);
        assert_eq!(reply.status, 200, "{} {}", id.as_str(), reply.text());
    }
    eprintln!("{count}: after reads {} KiB", rss_kib(&node));
    let (token, seal) = node.agency_with_seal(AGENCY_A, "FY-AMR-1");
    for n in 0..100 {
        let reply = node.post(
            "/v1/certificates",
            Some(&token),
            &certificate(&seal, &format!("M{n}")),
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
        let cert = reply.json()["certificate"].as_str().unwrap().to_owned();
        let verified = node.post("/v1/verify", None, &json!({ "certificate": cert }));
        assert_eq!(verified.json()["code"], "OK");
    }
    let rss = rss_kib(&node);
    node.kill9();
    rss
}

#[test]
fn memory_does_not_grow_with_the_number_of_certificates() {
    let small = serve_work(SMALL);
    let large = serve_work(LARGE);
    eprintln!(
        "RSS after the same work: {small} KiB with {SMALL} certificates, {large} KiB with {LARGE}"
    );
    assert!(
        large <= small + ALLOWED_MIB * 1024,
        "{LARGE} certificates cost {} KiB more than {SMALL}",
        large.saturating_sub(small)
    );
}
