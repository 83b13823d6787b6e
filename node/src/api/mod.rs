//! The node's HTTP API (specs/api.yaml): routes, authentication, RFC 9457 problem responses,
//! request limits and latency metrics. Handlers are thin: they parse, call the region service,
//! and shape its answer.

mod admin;
mod certs;
pub mod idempotency;
pub(crate) mod input;
mod internal;
mod presentation;
mod public;
mod share;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use tongban_core::trust::TrustStore;

use crate::credentials::Principal;
use crate::federation::Federation;
use crate::metrics::{AuthLabel, Metrics, RouteLabel};
use crate::receipts::Receipts;
use crate::refusal::{Kind, Refusal};
use crate::region::Region;

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    pub region: Arc<Region>,
    pub receipts: Receipts,
    pub metrics: Arc<Metrics>,
    /// The federation, when the node is a member: how it reaches other regions.
    pub federation: Option<Arc<Federation>>,
    /// Keyed writes in progress (`Idempotency-Key`).
    pub in_flight: Arc<idempotency::InFlight>,
}

impl App {
    /// What other regions' signed objects are checked against: the federation's trust (every
    /// member's root and seals, this region's included), or this region's alone outside one.
    /// Blocking: the federation signs and loads a new bundle when either input changed.
    fn cross_region_trust(&self) -> Result<Arc<TrustStore>, Refusal> {
        match &self.federation {
            Some(federation) => federation
                .full_trust()
                .map_err(|e| Refusal::internal(e.to_string())),
            None => Ok(self.region.view()?.trust.clone()),
        }
    }
}

pub fn router(app: App) -> Router {
    let max_body = app.region.config.http.max_body_bytes;
    let api = Router::new()
        .route("/healthz", get(public::healthz))
        .route("/healthz/sequencer", get(public::healthz_sequencer))
        .route("/metrics", get(public::metrics))
        .route("/v1/verify", post(public::verify))
        .route("/v1/trust-bundle", get(public::trust_bundle))
        .route("/v1/status-snapshot", get(public::status_snapshot))
        .route("/v1/status-list", get(public::status_list))
        .route("/v1/report/month", get(public::month_report))
        .route("/v1/audit/log.vkey", get(public::log_vkey))
        .route("/v1/audit/checkpoints", get(public::checkpoints))
        .route("/v1/certificates/{id}/status", get(public::status))
        .route("/v1/certificates/{id}/receipt", get(public::receipt))
        .route(
            "/v1/admin/agencies",
            post(admin::register_agency).get(admin::agencies),
        )
        .route(
            "/v1/admin/seals",
            post(admin::create_seal).get(admin::seals),
        )
        .route("/v1/admin/seals/{kid}/revoke", post(admin::revoke_seal))
        .route("/v1/admin/seals/{kid}/rotate", post(admin::rotate_seal))
        .route("/v1/certificates", post(certs::issue))
        .route("/v1/certificates/{id}", get(certs::fetch))
        .route("/v1/certificates/{id}/qr", get(certs::qr))
        .route("/v1/certificates/{id}/renew", post(certs::renew))
        .route("/v1/certificates/{id}/change", post(certs::change))
        .route("/v1/certificates/{id}/status", post(certs::change_status))
        .route("/v1/certificates/{id}/fulfil", post(certs::fulfil))
        .route("/v1/certificates/transfer-in", post(certs::transfer_in))
        .route("/v1/verify/proof", post(share::proof))
        .route("/v1/proofs", post(share::ask_proof))
        .route("/v1/shares", post(share::share))
        .route("/v1/copies/verify", post(share::verify_copy))
        .route("/v1/presentations", post(presentation::make))
        .route("/v1/presentations/resolve", post(presentation::resolve))
        .route("/v1/internal/receipts", post(internal::receipt))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(public::not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::Extension(input::BodyLimit(max_body)))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            idempotency::layer,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app.clone());
    api.merge(crate::tiles_http::router(app.region.log().clone()))
        .merge(crate::page::router())
}

/// Records each request's latency under its route pattern (never the raw path, whose identifiers
/// would make the label set unbounded).
async fn observe(State(app): State<App>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    app.metrics
        .latency
        .get_or_create(&RouteLabel {
            route,
            status: response.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The HTTP status of a refusal of this kind.
pub(crate) fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::Invalid => StatusCode::BAD_REQUEST,
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Kind::Timeout => StatusCode::REQUEST_TIMEOUT,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = status_of(self.kind);
        if status.is_server_error() {
            tracing::error!(code = self.code, detail = %self.detail, "request failed");
        }
        let mut body = json!({
            "type": format!("urn:tongban:problem:{}", self.code),
            "title": self.code,
            "status": status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        if let Some(index) = self.log_index {
            body["log_index"] = json!(index);
        }
        let mut response = (status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// A known path asked with a method it does not serve. The router adds the `Allow` header.
pub async fn method_not_allowed(method: Method) -> Refusal {
    Refusal::new(
        Kind::MethodNotAllowed,
        "METHOD_NOT_ALLOWED",
        format!("this path does not serve {method}; the Allow header lists what it does"),
    )
}

/// Counts a refused authentication and builds its refusal.
fn refuse_auth(app: &App, reason: &str, refusal: Refusal) -> Refusal {
    app.metrics
        .auth_refused
        .get_or_create(&AuthLabel {
            reason: reason.to_owned(),
        })
        .inc();
    refusal
}

/// The token of an `Authorization: Bearer <token>` header: exactly the word `Bearer`, one space,
/// and visible ASCII characters (RFC 6750's b64token alphabet is a subset); a second space, a tab
/// or trailing white space make it no token at all.
pub(crate) fn bearer(value: &header::HeaderValue) -> Option<&str> {
    let token = value.to_str().ok()?.strip_prefix("Bearer ")?;
    (!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())).then_some(token)
}

/// Who is calling, from the bearer token; counts refusals.
fn principal(app: &App, headers: &HeaderMap) -> Result<Principal, Refusal> {
    let refuse = |reason: &str, code: &'static str, detail: &str| {
        refuse_auth(
            app,
            reason,
            Refusal::new(Kind::Unauthenticated, code, detail),
        )
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(refuse(
            "missing",
            "TOKEN_MISSING",
            "this request needs a bearer token",
        ));
    };
    let token = bearer(value).ok_or_else(|| {
        refuse(
            "malformed",
            "TOKEN_INVALID",
            "Authorization must be `Bearer <token>`",
        )
    })?;
    app.region
        .credentials
        .authenticate(token)
        .ok_or_else(|| refuse("unknown", "TOKEN_INVALID", "the token is not valid"))
}

/// The calling agency, by its USCC: an extractor that refuses every other caller. Handlers take
/// it before their path, query and body, so the token is checked first and a caller without one
/// learns nothing from how its request would have been validated.
pub struct Agency(pub String);

impl FromRequestParts<App> for Agency {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Refusal> {
        match principal(app, &parts.headers)? {
            Principal::Agency { uscc, .. } => Ok(Agency(uscc)),
            Principal::Operator => Err(refuse_auth(
                app,
                "role",
                Refusal::forbidden("this request needs an agency's token"),
            )),
        }
    }
}

/// The operator: an extractor that refuses every other caller (checked first, as [`Agency`]).
pub struct Operator;

impl FromRequestParts<App> for Operator {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Refusal> {
        match principal(app, &parts.headers)? {
            Principal::Operator => Ok(Operator),
            Principal::Agency { .. } => Err(refuse_auth(
                app,
                "role",
                Refusal::forbidden("this request needs the operator's token"),
            )),
        }
    }
}

/// Runs blocking work (the log's durability waits) off the async threads.
/// A signed status list as served: the draft's media type, cacheable for its `ttl` by shared
/// caches (a verifier fetching through one is not seen by the node, which is the point).
pub fn status_list_response(list: Vec<u8>) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (
                header::CONTENT_TYPE,
                "application/statuslist+cwt".to_owned(),
            ),
            (
                header::CACHE_CONTROL,
                format!("public, max-age={}", crate::region::STATUS_LIST_TTL),
            ),
        ],
        list,
    )
        .into_response()
}

/// Reads the region's durable state: on a blocking thread when a read waits on a database
/// server (a round trip, or a timeout while it is unreachable, must not hold one of the few
/// threads every request shares), at once when the state is local (cheaper than the hand-off).
async fn read<T: Send + 'static>(
    region: &Arc<Region>,
    work: impl FnOnce(&Region) -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    if region.log().reads_wait_on_network() {
        let region = region.clone();
        blocking(move || work(&region)).await
    } else {
        work(region)
    }
}

/// Runs region work off the async threads, carrying the keyed write's marker, if any, to the
/// log submission it makes (`Idempotency-Key`).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    crate::region::request_marker::on_blocking_thread(idempotency::marker(), work).await
}
