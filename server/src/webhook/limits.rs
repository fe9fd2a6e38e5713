//! Bounds on what callers can make the webhook hold: it must answer the API server within its
//! budget whatever else reaches the port (a flood of large reviews, slow clients).
//!
//! - Review bodies in flight share a byte budget, taken before the body is read (from
//!   `Content-Length`, or the largest review when it is absent); a review waits for its share.
//! - Requests in flight are capped in number, and each has a deadline below the API server's
//!   10 s webhook timeout: past it the caller gets 503 and the connection's work is dropped.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::MAX_REVIEW_BYTES;

/// Review bytes the webhook holds at once: two reviews of the largest size, or many small ones.
pub const REVIEW_BYTES_IN_FLIGHT: usize = 2 * MAX_REVIEW_BYTES;
/// Requests in flight on the listener.
pub const MAX_CONCURRENT_REQUESTS: usize = 1024;
/// Deadline of one request, below the API server's default webhook timeout (10 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(9);

/// Budget granularity: one permit per KiB keeps the permit count well inside `u32`.
const PERMIT_BYTES: usize = 1024;

/// Review bytes left to hand out (see [`REVIEW_BYTES_IN_FLIGHT`]).
#[derive(Clone)]
pub struct ReviewBudget(Arc<Semaphore>);

impl ReviewBudget {
    /// The whole budget.
    pub fn new() -> Self {
        Self(Arc::new(Semaphore::new(
            REVIEW_BYTES_IN_FLIGHT / PERMIT_BYTES,
        )))
    }
}

impl Default for ReviewBudget {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: wait for this review's share of the budget before its body is read.
pub async fn within_budget(
    State(budget): State<ReviewBudget>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(MAX_REVIEW_BYTES)
        .min(MAX_REVIEW_BYTES);
    let permits = declared.div_ceil(PERMIT_BYTES).max(1) as u32;
    match budget.0.acquire_many_owned(permits).await {
        // Held until the answer is built: the parsed review lives that long.
        Ok(_held) => next.run(request).await,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
