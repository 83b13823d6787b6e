//! A member's node that publishes forged and oversized gossip: the node it is connected to drops
//! the messages after validation, and they never reach the rest of the federation. The rogue is a
//! bare libp2p gossipsub peer in this process, holding a member's node key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod federation_process;
mod node_process;

use std::time::Duration;

use federation_process::{
    connected_to, enable_p2p, genesis, init, log_size, member_file, metric, p2p_address, peer_id,
    replica_size, wait_for,
};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::{Multiaddr, noise, tcp, yamux};
use node_process::{AGENCY_A, Node, certificate, now};
use tongban_core::federation::gossip::{Body, Gossip, MAX_GOSSIP};
use tongban_core::ids::RegionCode;

fn rejected(node: &Node, code: &str) -> f64 {
    metric(
        node,
        &format!("tongban_gossip_rejected_total{{code=\"{code}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_refused_and_forged_or_oversized_gossip_is_not_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let regions = ["341200", "370100", "110000", "500000"];
    let first = init(&dir.path().join(regions[0]), regions[0], None);
    let key = first.dir.join("keys/federation-root.key");
    let mut nodes = vec![first];
    for code in &regions[1..] {
        nodes.push(init(&dir.path().join(code), code, Some(&key)));
    }
    let members: Vec<_> = nodes.iter().map(member_file).collect();
    let membership = dir.path().join("federation.tbm");
    genesis(&key, 0, &members, &membership);
    // The last member never runs a node: the test plays its node, with its node key.
    let rogue = nodes.pop().unwrap();
    for node in &nodes {
        enable_p2p(node, &membership);
    }
    let mut nodes = tokio::task::spawn_blocking(move || {
        nodes[0].start();
        let bootstrap = p2p_address(&nodes[0]);
        for node in &mut nodes[1..] {
            node.start_with(&["--bootstrap".into(), bootstrap.clone()]);
        }
        let ids: Vec<String> = nodes.iter().map(peer_id).collect();
        for node in &nodes {
            wait_for(Duration::from_secs(20), "a full mesh", || {
                connected_to(
                    node,
                    &ids.iter()
                        .filter(|p| **p != peer_id(node))
                        .cloned()
                        .collect::<Vec<_>>(),
                )
                .then_some(())
            });
        }
        nodes
    })
    .await
    .unwrap();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (token, seal) = a.agency_with_seal(AGENCY_A, "FY-AMR-1");
    let issued = a.post(
        "/v1/certificates",
        Some(&token),
        &certificate(&seal, "2026000001"),
    );
    assert_eq!(issued.status, 201);
    let size = log_size(a);
    wait_for(Duration::from_secs(10), "B to hold A's log", || {
        (replica_size(b, "341200") >= size).then_some(())
    });
    let b_address: Multiaddr = p2p_address(b).parse().unwrap();

    // A stranger (a key no membership lists) connects to B: B closes the connection once the
    // handshake names it, before any protocol runs, and counts it.
    let refused_before = metric(
        b,
        "tongban_p2p_connections_refused_total{reason=\"not_member\"}",
    );
    let mut stranger = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| libp2p::ping::Behaviour::default())
        .unwrap()
        .build();
    stranger.dial(b_address.clone()).unwrap();
    let stranger_done = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let libp2p::swarm::SwarmEvent::ConnectionClosed { .. } =
                stranger.select_next_some().await
            {
                return;
            }
        }
    })
    .await;
    assert!(
        stranger_done.is_ok(),
        "B kept the stranger's connection open"
    );
    let b_addr = b.addr.clone();
    tokio::task::spawn_blocking(move || {
        let b = Node {
            dir: Default::default(),
            operator: String::new(),
            child: None,
            addr: b_addr,
        };
        wait_for(Duration::from_secs(10), "B to count the refusal", || {
            (metric(
                &b,
                "tongban_p2p_connections_refused_total{reason=\"not_member\"}",
            ) > refused_before)
                .then_some(())
        });
    })
    .await
    .unwrap();

    // The rogue: a gossipsub peer with the rogue member's node key, connected to B only, not
    // listening, speaking no Kademlia or identify, so A and C cannot reach it.
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
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(ValidationMode::Strict)
                .max_transmit_size(4 * MAX_GOSSIP)
                .heartbeat_interval(Duration::from_millis(200))
                .build()
                .unwrap();
            gossipsub::Behaviour::<
                gossipsub::IdentityTransform,
                gossipsub::AllowAllSubscriptionFilter,
            >::new(MessageAuthenticity::Signed(key.clone()), config)
            .unwrap()
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let topic = IdentTopic::new("/tongban/tongban.local/1");
    swarm.behaviour_mut().subscribe(&topic).unwrap();
    swarm.dial(b_address).unwrap();

    let own: RegionCode = RegionCode::parse("500000").unwrap();
    let fuyang: RegionCode = RegionCode::parse("341200").unwrap();
    let entry = {
        let bytes = a.get("/tile/entries/000.p/1", None).body;
        // One entry bundle entry: a big-endian uint16 length, then the entry; forged by flipping
        // a bit of its signature.
        let mut entry = bytes[2..].to_vec();
        let last = entry.len() - 1;
        entry[last] ^= 1;
        entry
    };
    let messages = vec![
        // Oversized: over the 1 MiB limit, under the 2 MiB frames the transport lets through.
        vec![0xa0u8; MAX_GOSSIP + 1000],
        // Forged: the rogue publishes an entry of A's log (its signature broken) as if for A.
        Gossip {
            region: fuyang.clone(),
            at: now(),
            body: Body::Log {
                first: 0,
                entries: vec![entry],
                checkpoint: None,
            },
        }
        .encode()
        .unwrap(),
    ];
    // A valid message of the rogue's own region, published last: it does reach A and C, which
    // shows the others were stopped at B and not by a broken path.
    let control = Gossip {
        region: own,
        at: now(),
        body: Body::Log {
            first: 0,
            entries: Vec::new(),
            checkpoint: None,
        },
    }
    .encode()
    .unwrap();
    let accepted_before = (
        metric(a, "tongban_gossip_accepted_total"),
        metric(c, "tongban_gossip_accepted_total"),
    );
    let mut queue: Vec<Vec<u8>> = messages.into_iter().chain([control]).collect();
    queue.reverse();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Some(next) = queue.last().cloned() {
        tokio::select! {
            _ = swarm.select_next_some() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                // Publishing fails until B's subscription arrived.
                if swarm.behaviour_mut().publish(topic.clone(), next).is_ok() {
                    queue.pop();
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rogue could not publish"
        );
    }
    // Keep the rogue's swarm running while the nodes judge the messages.
    let drive = async {
        loop {
            swarm.select_next_some().await;
        }
    };
    let check = tokio::task::spawn_blocking(move || {
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        wait_for(Duration::from_secs(10), "B to reject both messages", || {
            (rejected(b, "FED_TOO_LARGE") >= 1.0 && rejected(b, "NOT_MEMBER") >= 1.0).then_some(())
        });
        wait_for(
            Duration::from_secs(10),
            "the valid control message to reach A and C",
            || {
                (metric(a, "tongban_gossip_accepted_total") > accepted_before.0
                    && metric(c, "tongban_gossip_accepted_total") > accepted_before.1)
                    .then_some(())
            },
        );
        for node in [a, c] {
            assert_eq!(
                rejected(node, "FED_TOO_LARGE"),
                0.0,
                "an oversized message was forwarded"
            );
            assert_eq!(
                rejected(node, "NOT_MEMBER"),
                0.0,
                "a forged message was forwarded"
            );
        }
        // Nothing of the forged entry reached any replica.
        assert_eq!(replica_size(c, "341200"), size);
        nodes
    });
    tokio::select! {
        _ = drive => unreachable!("the rogue's swarm stream never ends"),
        result = check => { nodes = result.unwrap(); }
    }
    drop(nodes);
}
