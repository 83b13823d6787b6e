//! A member holding its log key sends many conflicting `add-checkpoint` requests at once to
//! another member's witness, over HTTP and over the federation's request-response protocol
//! together: the witness never cosigns two checkpoints that conflict (two roots of one size, or
//! two trees that diverge), round after round (specs/federation.md §6.1). The rogue members are
//! played by this test with their log and node keys; they never run a node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod federation_process;
mod node_process;

use std::time::Duration;

use federation_process::{enable_p2p, genesis, init, member_file, p2p_address};
use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, noise, tcp, yamux};
use node_process::Node;
use tongban_core::federation::wire::{Request, Response};
use tongban_core::federation::witness::AddCheckpoint;
use tongban_core::keys::SecretKey;
use tongban_core::log::checkpoint::Checkpoint;
use tongban_core::log::proof::MemoryTree;
use tongban_node::federation::codec::{PROTOCOL, RawCodec};

/// Concurrent requests per transport in a round.
const REQUESTS: usize = 8;
/// Rounds of diverging extensions of different sizes.
const ROUNDS: usize = 6;

fn key_of(node: &Node, name: &str) -> SecretKey {
    tongban_node::keyfile::read(&node.dir.join("keys").join(name)).unwrap()
}

/// A rogue member's log: the leaves it has had witnessed, and its log key.
struct Rogue {
    origin: String,
    log_key: SecretKey,
    node: Node,
    /// The leaves of the chain the witness holds.
    held: Vec<Vec<u8>>,
}

/// One checkpoint a request asks the witness to cosign: its leaves decide what it conflicts with.
#[derive(Clone)]
struct Candidate {
    leaves: Vec<Vec<u8>>,
    body: Vec<u8>,
}

fn tree(leaves: &[Vec<u8>]) -> MemoryTree {
    let mut tree =
        MemoryTree::new(tongban_core::suite::Suite::parse(&node_process::suite()).unwrap());
    for leaf in leaves {
        tree.append(leaf).unwrap();
    }
    tree
}

impl Rogue {
    /// A request from the held size to the checkpoint of `leaves`.
    fn candidate(&self, leaves: Vec<Vec<u8>>) -> Candidate {
        let tree = tree(&leaves);
        let size = tree.size();
        let old = self.held.len() as u64;
        let note = Checkpoint {
            origin: self.origin.clone(),
            size,
            root: tree.root(size).unwrap(),
        }
        .sign(&self.origin, &self.log_key)
        .unwrap()
        .into_bytes();
        let proof = match old {
            0 => Vec::new(),
            old => tree.consistency_proof(old, size).unwrap(),
        };
        let body = AddCheckpoint { old, proof, note }.encode();
        Candidate { leaves, body }
    }

    /// `n` extensions of the held chain that diverge right after it: the i-th adds `extra(i)`
    /// leaves of its own.
    fn diverging(&self, round: usize, extra: impl Fn(usize) -> usize) -> Vec<Candidate> {
        (0..REQUESTS)
            .map(|i| {
                let mut leaves = self.held.clone();
                for k in 0..extra(i) {
                    leaves.push(format!("round {round} branch {i} leaf {k}").into_bytes());
                }
                self.candidate(leaves)
            })
            .collect()
    }
}

/// Whether two checkpoints conflict: neither's leaves are a prefix of the other's.
fn conflict(a: &Candidate, b: &Candidate) -> bool {
    let n = a.leaves.len().min(b.leaves.len());
    a.leaves[..n] != b.leaves[..n]
}

/// What one request got.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Cosigned,
    Conflict,
    Refused(String),
}

fn over_http(witness: &str, body: &[u8]) -> Answer {
    let node = Node {
        dir: Default::default(),
        operator: String::new(),
        child: None,
        addr: witness.to_owned(),
    };
    let mut request = format!(
        "POST /add-checkpoint HTTP/1.1\r\nHost: {witness}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let reply = node.raw(&request);
    match reply.status {
        200 => {
            assert!(reply.text().starts_with("— "), "{}", reply.text());
            Answer::Cosigned
        }
        409 => Answer::Conflict,
        status => Answer::Refused(format!("{status} {}", reply.text().trim())),
    }
}

fn over_p2p(response: &[u8]) -> Answer {
    match Response::decode(response).unwrap() {
        Response::Cosigned { lines } => {
            assert!(lines.starts_with("— "), "{lines}");
            Answer::Cosigned
        }
        Response::Conflict { .. } => Answer::Conflict,
        Response::Refused { code, detail } => Answer::Refused(format!("{code} {detail}")),
        other => panic!("the witness answered {other:?}"),
    }
}

type RogueSwarm = libp2p::Swarm<request_response::Behaviour<RawCodec>>;

/// A request-response peer with the rogue member's node key, connected to the witness.
async fn rogue_swarm(rogue: &Node, witness: Multiaddr) -> RogueSwarm {
    let seed = std::fs::read_to_string(rogue.dir.join("keys/node.key")).unwrap();
    let mut seed: [u8; 32] = hex::decode(seed.trim()).unwrap().try_into().unwrap();
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed).unwrap();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                RawCodec,
                [(PROTOCOL, ProtocolSupport::Outbound)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    swarm.dial(witness).unwrap();
    let connected = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let SwarmEvent::ConnectionEstablished { .. } = swarm.select_next_some().await {
                return;
            }
        }
    })
    .await;
    assert!(connected.is_ok(), "the rogue could not connect");
    swarm
}

/// Sends every candidate at once over both transports; returns, per answer that cosigned, the
/// candidate's index, and every refusal.
async fn round(
    swarm: &mut RogueSwarm,
    peer: libp2p::PeerId,
    witness: &str,
    candidates: &[Candidate],
) -> (Vec<usize>, Vec<String>) {
    let mut ids = std::collections::HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        let bytes = Request::Cosign {
            body: c.body.clone(),
        }
        .encode()
        .unwrap();
        ids.insert(swarm.behaviour_mut().send_request(&peer, bytes), i);
    }
    let http: Vec<_> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (witness, body) = (witness.to_owned(), c.body.clone());
            tokio::task::spawn_blocking(move || (i, over_http(&witness, &body)))
        })
        .collect();
    let mut answers = Vec::new();
    while !ids.is_empty() {
        let event = tokio::time::timeout(Duration::from_secs(30), swarm.select_next_some())
            .await
            .expect("the witness answers within 30 s");
        match event {
            SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            }) => {
                let i = ids.remove(&request_id).unwrap();
                answers.push((i, over_p2p(&response)));
            }
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure { error, .. }) => {
                panic!("a request failed: {error}")
            }
            _ => {}
        }
    }
    for task in http {
        answers.push(task.await.unwrap());
    }
    let mut cosigned = Vec::new();
    let mut refused = Vec::new();
    for (i, answer) in answers {
        match answer {
            Answer::Cosigned => cosigned.push(i),
            Answer::Conflict => {}
            Answer::Refused(why) => refused.push(why),
        }
    }
    (cosigned, refused)
}

/// The candidates the witness cosigned conflict with none of each other nor with the chain it
/// held before the round; returns the longest of them, the chain it holds now.
fn assert_no_fork(before: &Candidate, candidates: &[Candidate], cosigned: &[usize]) -> Candidate {
    let mut all: Vec<&Candidate> = cosigned.iter().map(|&i| &candidates[i]).collect();
    all.push(before);
    for (x, a) in all.iter().enumerate() {
        for b in &all[x + 1..] {
            assert!(
                !conflict(a, b),
                "the witness cosigned two conflicting checkpoints (sizes {} and {})",
                a.leaves.len(),
                b.leaves.len()
            );
        }
    }
    all.into_iter()
        .max_by_key(|c| c.leaves.len())
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_never_cosigns_a_fork_under_concurrent_requests() {
    let dir = tempfile::tempdir().unwrap();
    let regions = ["341200", "370100", "110000"];
    let first = init(&dir.path().join(regions[0]), regions[0], None);
    let federation_key = first.dir.join("keys/federation-root.key");
    let mut nodes = vec![first];
    for code in &regions[1..] {
        nodes.push(init(&dir.path().join(code), code, Some(&federation_key)));
    }
    let members: Vec<_> = nodes.iter().map(member_file).collect();
    let membership = dir.path().join("federation.tbm");
    genesis(&federation_key, 0, &members, &membership);
    // The witness is the first member's node; the other two are rogues played by the test.
    let mut witness = nodes.remove(0);
    enable_p2p(&witness, &membership);
    let (witness, address) = tokio::task::spawn_blocking(move || {
        witness.start();
        let address = p2p_address(&witness);
        (witness, address)
    })
    .await
    .unwrap();
    let address: Multiaddr = address.parse().unwrap();
    let peer = match address.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => peer,
        _ => panic!("no peer id in {address}"),
    };

    let mut rogues: Vec<Rogue> = nodes
        .into_iter()
        .zip(&regions[1..])
        .map(|(node, code)| Rogue {
            origin: format!("tongban.local/{code}/log/1"),
            log_key: key_of(&node, "log.key"),
            node,
            held: Vec::new(),
        })
        .collect();

    for rogue in &mut rogues {
        let mut swarm = rogue_swarm(&rogue.node, address.clone()).await;
        // The witness first holds size 2.
        let start = rogue.candidate(vec![b"a".to_vec(), b"b".to_vec()]);
        let (cosigned, refused) = round(
            &mut swarm,
            peer,
            &witness.addr,
            std::slice::from_ref(&start),
        )
        .await;
        assert!(refused.is_empty(), "{refused:?}");
        // The first to arrive is cosigned; the same request by the other transport then finds
        // size 2 held (409).
        assert_eq!(cosigned.len(), 1, "{cosigned:?}");
        rogue.held = start.leaves.clone();
        let mut before = start;

        // Diverging trees of different sizes, round after round: at most one branch wins.
        for n in 0..ROUNDS {
            let candidates = rogue.diverging(n, |i| i + 1);
            let (cosigned, refused) = round(&mut swarm, peer, &witness.addr, &candidates).await;
            assert!(refused.is_empty(), "round {n}: {refused:?}");
            assert!(!cosigned.is_empty(), "round {n}: nothing was cosigned");
            before = assert_no_fork(&before, &candidates, &cosigned);
            rogue.held = before.leaves.clone();
        }

        // One size, many roots: one is cosigned, the others are refused as equivocation and the
        // rogue is marked misbehaving.
        let candidates = rogue.diverging(ROUNDS, |_| 3);
        let (cosigned, refused) = round(&mut swarm, peer, &witness.addr, &candidates).await;
        assert_eq!(
            cosigned.len(),
            1,
            "cosigned {cosigned:?}, refused {refused:?}"
        );
        assert_no_fork(&before, &candidates, &cosigned);
        assert!(
            refused
                .iter()
                .all(|r| r.contains("EQUIVOCATION") || r.contains("MISBEHAVING")),
            "{refused:?}"
        );
        assert!(!refused.is_empty());
    }
    drop(witness);
}
