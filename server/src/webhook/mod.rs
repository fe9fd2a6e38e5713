//! The webhook listener: `POST /k8s/admit`, health, metrics and the grant JWKS, over TLS.

mod admit;
pub mod decision_log;
pub mod grant_cache;
pub mod metrics;
mod stepup;
pub mod tls;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub use admit::review;

/// Largest AdmissionReview accepted; the API server's own limit on objects is 3 MiB, reviews carry two.
pub const MAX_REVIEW_BYTES: usize = 8 * 1024 * 1024;

/// Routes of the webhook listener.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/k8s/admit", post(admit::admit))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(admit::ready))
        .route("/metrics", get(admit::metrics))
        .route("/.well-known/jwks.json", get(admit::jwks))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(state)
}
