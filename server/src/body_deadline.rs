//! A request body read whole within a deadline before a handler sees it: how both listeners keep a
//! client that trickles its body from holding their bounds (second review, findings 6 and 8).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Read the body (at most `limit` bytes) within `deadline`, then run `next` on it: 413 past the
/// limit, 408 past the deadline.
pub async fn read_then(
    request: Request<Body>,
    limit: usize,
    deadline: Duration,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            "the request body arrived too slowly",
        )
            .into_response(),
    }
}
