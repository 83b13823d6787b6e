//! A member's node that floods gossip faster than the node it is connected to can judge it:
//! the queue to the worker is bounded (here to 2 by configuration), what does not fit is ignored
//! and counted, and the node stays responsive and goes on accepting gossip once the flood ends.
//! The rogue is a bare libp2p gossipsub peer in this process, holding a member's node key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod federation_process;
mod node_process;

use std::time::Duration;

use federation_process::{enable_p2p, genesis, init, member_file, metric, p2p_address, wait_for};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::{Multiaddr, noise, tcp, yamux};
use node_process::{Node, now};
use tongban_core::federation::gossip::{Body, Gossip};
use tongban_core::ids::RegionCode;

const FLOOD: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossip_flood_is_dropped_at_a_bounded_queue_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let first = init(&dir.path().join("341200"), "341200", None);
    let key = first.dir.join("keys/federation-root.key");
    let rogue = init(&dir.path().join("500000"), "500000", Some(&key));
    let members = vec![member_file(&first), member_file(&rogue)];
    let membership = dir.path().join("federation.tbm");
    genesis(&key, 0, &members, &membership);
    enable_p2p(&first, &membership);
    let config = first.dir.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}inbound_queue = 2\n")).unwrap();
    let mut node = first;
    let node = tokio::task::spawn_blocking(move || {
        node.start();
        node
    })
    .await
    .unwrap();
    let address: Multiaddr = {
        let node = Node {
            dir: Default::default(),
            operator: String::new(),
            child: None,
            addr: node.addr.clone(),
        };
        tokio::task::spawn_blocking(move || p2p_address(&node))
            .await
            .unwrap()
            .parse()
            .unwrap()
    };

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
    swarm.dial(address).unwrap();
    let own = RegionCode::parse("500000").unwrap();
    let message = || {
        Gossip {
            region: own.clone(),
            at: now(),
            body: Body::Log {
                first: 0,
                entries: Vec::new(),
                checkpoint: None,
            },
        }
        .encode()
        .unwrap()
    };
    // Publishing fails until the node's subscription has arrived.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while swarm
        .behaviour_mut()
        .publish(topic.clone(), message())
        .is_err()
    {
        assert!(tokio::time::Instant::now() < deadline, "never subscribed");
        tokio::select! {
            _ = swarm.select_next_some() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    for _ in 0..FLOOD {
        let _ = swarm.behaviour_mut().publish(topic.clone(), message());
    }
    let addr = node.addr.clone();
    let check = tokio::task::spawn_blocking(move || {
        let node = Node {
            dir: Default::default(),
            operator: String::new(),
            child: None,
            addr,
        };
        wait_for(Duration::from_secs(20), "the flood to be judged", || {
            let dropped = metric(&node, "tongban_federation_dropped_total{reason=\"gossip\"}");
            let accepted = metric(&node, "tongban_gossip_accepted_total");
            (dropped > 0.0 && dropped + accepted >= FLOOD as f64 / 2.0).then_some(dropped)
        })
    });
    let drive = async {
        loop {
            swarm.select_next_some().await;
        }
    };
    let dropped = tokio::select! {
        _ = drive => unreachable!("the swarm stream never ends"),
        dropped = check => dropped.unwrap(),
    };
    eprintln!("{dropped} of {FLOOD} messages dropped at the queue");
    // Still answering.
    let addr = node.addr.clone();
    tokio::task::spawn_blocking(move || {
        let node = Node {
            dir: Default::default(),
            operator: String::new(),
            child: None,
            addr,
        };
        assert_eq!(node.get("/healthz", None).status, 200);
    })
    .await
    .unwrap();
    drop(node);
}
