//! The webhook listener: `POST /k8s/admit`, health, metrics and the grant JWKS, over TLS.

mod admit;
pub(crate) mod byte_budget;
pub mod decision_log;
pub mod grant_cache;
pub mod metrics;
mod state;
mod stepup;
pub mod tls;

pub mod limits;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

pub use admit::review;
pub use state::WebhookState;

/// Largest AdmissionReview accepted; the API server's own limit on objects is 3 MiB, reviews carry two.
pub const MAX_REVIEW_BYTES: usize = 8 * 1024 * 1024;

/// Routes of the webhook listener, with its bounds on concurrent work (see [`limits`]).
pub fn router(state: WebhookState) -> Router {
    let admit = post(admit::admit).layer(axum::middleware::from_fn_with_state(
        limits::ReviewBudget::new(),
        limits::within_budget,
    ));
    Router::new()
        .route("/k8s/admit", admit)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(admit::ready))
        .route("/metrics", get(admit::metrics))
        .route("/.well-known/jwks.json", get(admit::jwks))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .layer(
            tower::ServiceBuilder::new()
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    limits::REQUEST_TIMEOUT,
                ))
                // One semaphore for the listener: a Router layer is applied per route, and
                // `ConcurrencyLimitLayer` would give each route its own.
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    limits::MAX_CONCURRENT_REQUESTS,
                )),
        )
        .with_state(state)
}

/// Routes of the probe listener (`--probe-listen`, plain HTTP): health, readiness and metrics for
/// kubelet and Prometheus, which cannot present the client certificate the webhook port may
/// require. It serves nothing else.
pub fn probe_router(state: WebhookState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(admit::ready))
        .route("/metrics", get(admit::metrics))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            limits::REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

/// A TLS handshake that has not finished by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Request headers that have not all arrived by then close the connection (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve the webhook router over TLS on `listener` until the future is dropped, with handshake and
/// header-read timeouts (what `serve` and the tests run).
pub async fn serve_tls(
    listener: std::net::TcpListener,
    state: WebhookState,
    config: rustls::ServerConfig,
) -> std::io::Result<()> {
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
    )
    .handshake_timeout(HANDSHAKE_TIMEOUT);
    let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    server.serve(router(state).into_make_service()).await
}
