//! Bounds on what callers can make the webhook hold: it must answer the API server within its
//! budget whatever else reaches the port (a flood of large reviews, slow clients).
//!
//! - Review bodies in flight share a byte budget, taken before the body is read (from
//!   `Content-Length`, or the largest review when it is absent); a review waits for its share.
//!   Small reviews (what the API server sends for nearly every object) have a lane of their own
//!   that large ones cannot take, so a few large or trickled reviews never hold up a small one
//!   (second review, finding 8).
//! - A body must arrive at a minimum rate (a second, plus a second per 4 MiB): a client that
//!   trickles it is answered 408 and gives its share back long before the API server's timeout.
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

/// Review bytes the webhook holds at once in the large lane: two reviews of the largest size.
pub const REVIEW_BYTES_IN_FLIGHT: usize = 2 * MAX_REVIEW_BYTES;
/// Reviews up to this size go to the small lane.
pub const SMALL_REVIEW_BYTES: usize = 256 * 1024;
/// Review bytes the small lane holds at once (at least 64 small reviews).
pub const SMALL_REVIEW_BYTES_IN_FLIGHT: usize = 16 * 1024 * 1024;
/// Requests in flight on the listener.
pub const MAX_CONCURRENT_REQUESTS: usize = 1024;
/// Deadline of one request, below the API server's default webhook timeout (10 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(9);
/// Slowest a review body may arrive: past [`body_deadline`] it is refused.
pub const MIN_BODY_BYTES_PER_SEC: usize = 4 * 1024 * 1024;

/// Budget granularity: one permit per KiB keeps the permit count well inside `u32`.
const PERMIT_BYTES: usize = 1024;

/// How long a body of `bytes` may take to arrive.
pub fn body_deadline(bytes: usize) -> Duration {
    Duration::from_secs(1) + Duration::from_secs_f64(bytes as f64 / MIN_BODY_BYTES_PER_SEC as f64)
}

/// Review bytes left to hand out, in two lanes (see [`REVIEW_BYTES_IN_FLIGHT`] and
/// [`SMALL_REVIEW_BYTES_IN_FLIGHT`]).
#[derive(Clone)]
pub struct ReviewBudget {
    large: Arc<Semaphore>,
    small: Arc<Semaphore>,
}

impl ReviewBudget {
    /// The whole budget.
    pub fn new() -> Self {
        Self {
            large: Arc::new(Semaphore::new(REVIEW_BYTES_IN_FLIGHT / PERMIT_BYTES)),
            small: Arc::new(Semaphore::new(SMALL_REVIEW_BYTES_IN_FLIGHT / PERMIT_BYTES)),
        }
    }
}

impl Default for ReviewBudget {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: wait for this review's share of its lane, then read its body within the
/// deadline its size allows, before the handler sees it.
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
        .unwrap_or(MAX_REVIEW_BYTES);
    if declared > MAX_REVIEW_BYTES {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let lane = if declared <= SMALL_REVIEW_BYTES {
        &budget.small
    } else {
        &budget.large
    };
    let permits = declared.div_ceil(PERMIT_BYTES).max(1) as u32;
    // Held until the answer is built: the parsed review lives that long.
    let Ok(_held) = lane.clone().acquire_many_owned(permits).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    crate::body_deadline::read_then(request, declared, body_deadline(declared), next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_body_gets_a_few_seconds_not_the_whole_deadline() {
        assert_eq!(body_deadline(2048).as_millis(), 1000);
        assert!(body_deadline(MAX_REVIEW_BYTES) <= Duration::from_secs(3));
        assert!(body_deadline(MAX_REVIEW_BYTES) < REQUEST_TIMEOUT);
    }
}
