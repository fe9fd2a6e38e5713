//! What one client can hold of the portal (second review, finding 6): requests in flight per
//! client address, and how long a request body may take to arrive. With the global bound on
//! requests and the listener's header deadline and connection cap, slow or greedy clients cannot
//! keep step-ups and decisions from everyone else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Requests one client address may have in flight; more are answered 503 at once.
pub const MAX_PER_CLIENT: usize = 32;
/// The largest request body the portal reads (ceremonies, forms and server functions are small).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long a request body may take to arrive, whatever its size (it is at most [`MAX_BODY_BYTES`]).
pub const BODY_DEADLINE: Duration = Duration::from_secs(3);

/// Requests in flight, per client address.
#[derive(Debug, Clone, Default)]
pub struct PerClient(Arc<Mutex<HashMap<String, usize>>>);

/// One request's place; given back when it is answered.
struct Place {
    all: PerClient,
    client: String,
}

impl PerClient {
    fn take(&self, client: &str) -> Option<Place> {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = all.entry(client.to_owned()).or_default();
        if *n >= MAX_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(Place {
            all: self.clone(),
            client: client.to_owned(),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut all = self
            .all
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = all.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                all.remove(&self.client);
            }
        }
    }
}

/// Middleware: at most [`MAX_PER_CLIENT`] requests in flight per client address (the client's, not
/// a trusted proxy's), and the body read whole within [`BODY_DEADLINE`] before anything else
/// looks at it.
pub async fn per_client(State(places): State<PerClient>, request: Request, next: Next) -> Response {
    let client = super::client::address_of(request.extensions())
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let Some(_place) = places.take(&client) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "too many requests at once from your address; try again in a moment",
        )
            .into_response();
    };
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v != "0")
        && request.method() != axum::http::Method::GET
        && request.method() != axum::http::Method::HEAD;
    if !has_body {
        return next.run(request).await;
    }
    crate::body_deadline::read_then(request, MAX_BODY_BYTES, BODY_DEADLINE, next).await
}
