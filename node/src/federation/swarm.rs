//! The libp2p side (specs/federation.md §3–4): TCP + Noise + Yamux, a membership gate in front of
//! every other protocol, identify, ping, Kademlia, gossipsub with explicit validation, and the
//! `/tongban/fed/1` request-response protocol. One task owns the swarm; everything else talks to it
//! through [`Command`]s, and it hands gossip and inbound requests to the worker as [`Inbound`]s.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::gossipsub::{
    self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, ValidationMode,
};
use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{DialError, ListenError, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, noise, ping, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tongban_core::federation::gossip::MAX_GOSSIP;

use super::codec::{PROTOCOL, RawCodec};
use crate::metrics::{Metrics, ReasonLabel};

const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/tongban/kad/1.0.0");
/// How often members the node is not connected to are redialled.
const REDIAL: Duration = Duration::from_secs(2);

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// First, so a peer outside the membership is refused before any other protocol sees it.
    gate: allow_block_list::Behaviour<AllowedPeers>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    rpc: request_response::Behaviour<RawCodec>,
}

/// What the rest of the node asks of the swarm.
pub enum Command {
    Publish(Vec<u8>),
    Validate {
        id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    },
    Request {
        peer: PeerId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    Respond {
        channel: ResponseChannel<Vec<u8>>,
        bytes: Vec<u8>,
    },
    /// The node keys of the current members (the node's own included).
    Members(Vec<PeerId>),
    Status(oneshot::Sender<SwarmStatus>),
}

/// What the swarm hands to the worker.
pub enum Inbound {
    Gossip {
        id: MessageId,
        source: PeerId,
        author: Option<PeerId>,
        data: Vec<u8>,
    },
    Request {
        peer: PeerId,
        bytes: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    },
    /// A catch-up answer for `region`'s replica (the tasks ask; the worker applies). `done` is
    /// told once it is applied.
    CatchUp {
        region: tongban_core::ids::RegionCode,
        bytes: Vec<u8>,
        done: oneshot::Sender<()>,
    },
}

#[derive(Clone, Debug, Default)]
pub struct SwarmStatus {
    pub peer_id: String,
    pub listening: Vec<String>,
    pub connected: Vec<String>,
}

/// The Ed25519 node key as a libp2p identity.
pub fn keypair(seed: &[u8; 32]) -> Result<Keypair, String> {
    let mut seed = *seed;
    Keypair::ed25519_from_bytes(&mut seed).map_err(|e| e.to_string())
}

/// The PeerId of an Ed25519 node key (32 bytes). Node keys are Ed25519 in either suite (libp2p has no SM2 identity): any other key is refused.
pub fn peer_id(node_key: &[u8]) -> Result<PeerId, String> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(node_key)
        .map_err(|e| e.to_string())?;
    Ok(libp2p::identity::PublicKey::from(key).to_peer_id())
}

/// The gossip topic of federation `name`.
pub fn topic(name: &str) -> IdentTopic {
    IdentTopic::new(format!("/tongban/{name}/1"))
}

pub struct Started {
    pub commands: mpsc::UnboundedSender<Command>,
    pub local: PeerId,
}

/// Builds the swarm, starts listening, and spawns the task that runs it.
pub fn start(
    key: Keypair,
    federation: &str,
    listen: &[Multiaddr],
    dial: Vec<Multiaddr>,
    members: Vec<PeerId>,
    inbound: mpsc::Sender<Inbound>,
    metrics: std::sync::Arc<Metrics>,
) -> Result<Started, String> {
    let local = key.public().to_peer_id();
    let topic = topic(federation);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| format!("transport: {e}"))?
        .with_behaviour(
            |key| -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
                let gossip_config = gossipsub::ConfigBuilder::default()
                    .validation_mode(ValidationMode::Strict)
                    .validate_messages()
                    // Frames up to twice the message limit reach validation, which refuses (and
                    // counts) the oversized ones; larger frames are dropped by the codec.
                    .max_transmit_size(2 * MAX_GOSSIP)
                    .heartbeat_interval(Duration::from_millis(700))
                    .flood_publish(true)
                    .build()?;
                let gossipsub = gossipsub::Behaviour::new(
                    MessageAuthenticity::Signed(key.clone()),
                    gossip_config,
                )?;
                let mut kad = kad::Behaviour::with_config(
                    key.public().to_peer_id(),
                    MemoryStore::new(key.public().to_peer_id()),
                    kad::Config::new(KAD_PROTOCOL),
                );
                // Members run on LANs and loopback too, where no external address is ever confirmed.
                kad.set_mode(Some(kad::Mode::Server));
                Ok(Behaviour {
                    gate: allow_block_list::Behaviour::default(),
                    identify: identify::Behaviour::new(
                        identify::Config::new("/tongban/1".into(), key.public())
                            .with_agent_version(format!(
                                "tongban-node/{}",
                                env!("CARGO_PKG_VERSION")
                            )),
                    ),
                    ping: ping::Behaviour::default(),
                    kad,
                    gossipsub,
                    rpc: request_response::Behaviour::with_codec(
                        RawCodec,
                        [(PROTOCOL, ProtocolSupport::Full)],
                        request_response::Config::default()
                            .with_request_timeout(Duration::from_secs(10)),
                    ),
                })
            },
        )
        .map_err(|e| format!("behaviour: {e}"))?
        // Members stay connected while idle; a closed connection costs a redial and a handshake
        // right when a revocation has to travel.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(24 * 3600)))
        .build();
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .map_err(|e| format!("subscribing to {topic}: {e}"))?;
    for address in listen {
        swarm
            .listen_on(address.clone())
            .map_err(|e| format!("listening on {address}: {e}"))?;
    }
    let (commands, receiver) = mpsc::unbounded_channel();
    let mut runner = Runner {
        swarm,
        topic,
        inbound,
        metrics,
        members: HashSet::new(),
        pending: HashMap::new(),
        bootstrap: dial,
        local,
    };
    runner.set_members(members);
    runner.dial_bootstrap();
    tokio::spawn(runner.run(receiver));
    Ok(Started { commands, local })
}

struct Runner {
    swarm: Swarm<Behaviour>,
    topic: IdentTopic,
    inbound: mpsc::Sender<Inbound>,
    metrics: std::sync::Arc<Metrics>,
    members: HashSet<PeerId>,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, String>>>,
    bootstrap: Vec<Multiaddr>,
    local: PeerId,
}

impl Runner {
    fn set_members(&mut self, members: Vec<PeerId>) {
        let next: HashSet<PeerId> = members.into_iter().filter(|p| *p != self.local).collect();
        let gate = &mut self.swarm.behaviour_mut().gate;
        for removed in self.members.difference(&next) {
            // Closes its connections at once.
            gate.disallow_peer(*removed);
        }
        for added in next.difference(&self.members) {
            gate.allow_peer(*added);
        }
        self.members = next;
    }

    fn dial_bootstrap(&mut self) {
        for address in self.bootstrap.clone() {
            // Dialled by address alone: who answers is decided by the gate once the handshake
            // names the peer, the same way for every connection.
            let address: Multiaddr = address
                .iter()
                .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
                .collect();
            if let Err(e) = self.swarm.dial(address.clone()) {
                tracing::debug!(%address, error = %e, "bootstrap dial");
            }
        }
    }

    /// Dials members that are not connected and whose addresses Kademlia or the membership knows.
    fn redial(&mut self) {
        let missing: Vec<PeerId> = self
            .members
            .iter()
            .filter(|p| !self.swarm.is_connected(p))
            .copied()
            .collect();
        for peer in missing {
            // Kademlia supplies the addresses it knows when the swarm asks behaviours for them.
            let _ = self.swarm.dial(peer);
        }
        if self.swarm.connected_peers().next().is_none() {
            self.dial_bootstrap();
        } else if !self.members.is_empty() {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        self.metrics
            .p2p_connected
            .set(i64::try_from(self.swarm.connected_peers().count()).unwrap_or(i64::MAX));
    }

    fn dropped(&self, queue: &str) {
        self.metrics
            .federation_dropped
            .get_or_create(&ReasonLabel {
                reason: queue.to_owned(),
            })
            .inc();
    }

    fn refused(&self, reason: &str) {
        self.metrics
            .p2p_refused
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut redial = tokio::time::interval(REDIAL);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_event(event),
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                _ = redial.tick() => self.redial(),
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        let behaviour = self.swarm.behaviour_mut();
        match command {
            Command::Publish(data) => {
                if let Err(e) = behaviour.gossipsub.publish(self.topic.clone(), data) {
                    // No peer subscribed yet: they catch up by request (specs/federation.md §5.2).
                    tracing::debug!(error = %e, "gossip not published");
                }
            }
            Command::Validate {
                id,
                source,
                acceptance,
            } => {
                behaviour
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
            }
            Command::Request { peer, bytes, reply } => {
                let id = behaviour.rpc.send_request(&peer, bytes);
                self.pending.insert(id, reply);
            }
            Command::Respond { channel, bytes } => {
                if behaviour.rpc.send_response(channel, bytes).is_err() {
                    tracing::debug!("the requester went away before the response");
                }
            }
            Command::Members(members) => self.set_members(members),
            Command::Status(reply) => {
                let status = SwarmStatus {
                    peer_id: self.local.to_string(),
                    listening: self
                        .swarm
                        .listeners()
                        .map(|a| format!("{a}/p2p/{}", self.local))
                        .collect(),
                    connected: self
                        .swarm
                        .connected_peers()
                        .map(|p| p.to_string())
                        .collect(),
                };
                let _ = reply.send(status);
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let gossip = Inbound::Gossip {
                    id: message_id.clone(),
                    source: propagation_source,
                    author: message.source,
                    data: message.data,
                };
                if self.inbound.try_send(gossip).is_err() {
                    // The worker is behind: the message is neither forwarded nor held (its
                    // author is not to blame), and catch-up fetches what it carried.
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                    self.dropped("gossip");
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let inbound = Inbound::Request {
                        peer,
                        bytes: request,
                        channel,
                    };
                    if let Err(mpsc::error::TrySendError::Full(Inbound::Request {
                        channel, ..
                    })) = self.inbound.try_send(inbound)
                    {
                        // Answered at once, so the requester need not wait for its timeout.
                        if let Ok(busy) = tongban_core::federation::wire::Response::refused(
                            &tongban_core::federation::Refused::new(
                                tongban_core::federation::Reason::Busy,
                                "the node is behind on requests; ask again later",
                            ),
                        )
                        .encode()
                        {
                            let _ = self.swarm.behaviour_mut().rpc.send_response(channel, busy);
                        }
                        self.dropped("request");
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(
                request_response::Event::OutboundFailure {
                    request_id, error, ..
                },
            )) => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if self.members.contains(&peer_id) => {
                for address in info.listen_addrs {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, address);
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                tracing::debug!(peer = %peer_id, address = %endpoint.get_remote_address(), "connected");
            }
            SwarmEvent::IncomingConnectionError {
                error: ListenError::Denied { cause },
                send_back_addr,
                ..
            } => {
                tracing::info!(from = %send_back_addr, reason = %cause, "refused a peer outside the federation");
                self.refused("not_member");
            }
            SwarmEvent::OutgoingConnectionError {
                error: DialError::Denied { cause },
                peer_id,
                ..
            } => {
                tracing::info!(peer = ?peer_id, reason = %cause, "dialled a peer outside the federation; closed");
                self.refused("not_member");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, peer = %self.local, "p2p listening");
            }
            _ => {}
        }
    }
}
