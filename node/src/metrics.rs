//! Prometheus metrics: issued and verified certificates by type and result, refused
//! authentications, request latency by route, log size and checkpoint age.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub type_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegionLabel {
    pub region: String,
}

pub struct Metrics {
    registry: Registry,
    pub issued: Family<TypeLabel, Counter>,
    pub verified: Family<ResultLabel, Counter>,
    pub auth_refused: Family<AuthLabel, Counter>,
    pub latency: Family<RouteLabel, Histogram>,
    pub log_size: Gauge,
    pub checkpoint_age: Gauge,
    /// The federation (specs/federation.md).
    pub p2p_refused: Family<ReasonLabel, Counter>,
    pub p2p_connected: Gauge,
    pub gossip_accepted: Counter,
    pub gossip_rejected: Family<ResultLabel, Counter>,
    pub misbehaving: Family<RegionLabel, Gauge>,
    pub replica_size: Family<RegionLabel, Gauge>,
    pub witness_rounds: Family<ResultLabel, Counter>,
    /// Failures of this node's own while handling federation traffic, by what it was handling.
    pub federation_internal: Family<ReasonLabel, Counter>,
    /// Network-fed items dropped from a full queue, by queue (gossip, request, catch-up).
    pub federation_dropped: Family<ReasonLabel, Counter>,
    /// Catch-up answers, by what became of them (`applied`, or the refusal's code).
    pub catch_up: Family<ResultLabel, Counter>,
    /// State rows the sequencer read, ahead of its lock and under it (region/read_ahead.rs).
    pub sequencer_rows_read: Family<PhaseLabel, Gauge>,
    /// The HTTP server (serve.rs).
    pub http_connections: Gauge,
    pub http_closed: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tongban");
        let issued = Family::<TypeLabel, Counter>::default();
        let verified = Family::<ResultLabel, Counter>::default();
        let auth_refused = Family::<AuthLabel, Counter>::default();
        // 50 µs … about 1.6 s.
        let latency = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00005, 2.0, 16))
        });
        let log_size = Gauge::default();
        let checkpoint_age = Gauge::default();
        registry.register(
            "certificates_issued",
            "Certificates issued, by type code",
            issued.clone(),
        );
        registry.register(
            "verifications",
            "Verifications answered, by result code",
            verified.clone(),
        );
        registry.register(
            "auth_refused",
            "Requests refused for a missing or wrong token",
            auth_refused.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Request latency by route and status",
            latency.clone(),
        );
        registry.register("log_size", "Entries in the region log", log_size.clone());
        registry.register(
            "checkpoint_age_seconds",
            "Seconds since the last checkpoint was signed",
            checkpoint_age.clone(),
        );
        let p2p_refused = Family::<ReasonLabel, Counter>::default();
        let p2p_connected = Gauge::default();
        let gossip_accepted = Counter::default();
        let gossip_rejected = Family::<ResultLabel, Counter>::default();
        let misbehaving = Family::<RegionLabel, Gauge>::default();
        let replica_size = Family::<RegionLabel, Gauge>::default();
        let witness_rounds = Family::<ResultLabel, Counter>::default();
        registry.register(
            "p2p_connections_refused",
            "Connections closed because the peer is not a member's node",
            p2p_refused.clone(),
        );
        registry.register(
            "p2p_connected_peers",
            "Members' nodes connected",
            p2p_connected.clone(),
        );
        registry.register(
            "gossip_accepted",
            "Gossip messages accepted and forwarded",
            gossip_accepted.clone(),
        );
        registry.register(
            "gossip_rejected",
            "Gossip messages dropped, by code",
            gossip_rejected.clone(),
        );
        registry.register(
            "federation_misbehaving",
            "1 for each member marked misbehaving",
            misbehaving.clone(),
        );
        registry.register(
            "replica_size",
            "Entries of each other region's log held",
            replica_size.clone(),
        );
        registry.register(
            "witness_rounds",
            "Cosigning rounds for this node's checkpoints, by result",
            witness_rounds.clone(),
        );
        let federation_internal = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "federation_internal_errors",
            "Failures of this node's own (storage, locks, clock) while handling federation traffic: never counted against the peer",
            federation_internal.clone(),
        );
        let federation_dropped = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "federation_dropped",
            "Network-fed items dropped from a full queue (gossip ignored, requests answered FED_BUSY, catch-up left to the next round), by queue",
            federation_dropped.clone(),
        );
        let catch_up = Family::<ResultLabel, Counter>::default();
        registry.register(
            "catch_up_answers",
            "Catch-up answers from other regions' nodes, by result (applied, or the refusal's code)",
            catch_up.clone(),
        );
        let http_connections = Gauge::default();
        let http_closed = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "http_connections",
            "HTTP connections open",
            http_connections.clone(),
        );
        registry.register(
            "http_connections_closed",
            "HTTP connections the node closed or refused, by reason (idle_timeout, header_timeout, evicted, refused)",
            http_closed.clone(),
        );
        let sequencer_rows_read = Family::<PhaseLabel, Gauge>::default();
        registry.register(
            "sequencer_rows_read",
            "State rows the sequencer read since start: ahead of its lock, and under it",
            sequencer_rows_read.clone(),
        );
        Metrics {
            registry,
            sequencer_rows_read,
            federation_internal,
            federation_dropped,
            catch_up,
            http_connections,
            http_closed,
            issued,
            verified,
            auth_refused,
            latency,
            log_size,
            checkpoint_age,
            p2p_refused,
            p2p_connected,
            gossip_accepted,
            gossip_rejected,
            misbehaving,
            replica_size,
            witness_rounds,
        }
    }
}

impl Metrics {
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
