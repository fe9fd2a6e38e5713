//! Headers every portal response carries: it may not be framed (clickjacking a confirmation), and
//! whatever sets no policy of its own (JSON, redirects, files) gets one that allows nothing.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// For responses that are not pages; pages set theirs with the nonce of their inline scripts.
const DEFAULT_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Strict-Transport-Security for a portal served over https: a year, subdomains included.
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Whether the portal is served over https (then every response carries HSTS).
#[derive(Debug, Clone, Copy)]
pub struct Https(pub bool);

/// Add the Content-Security-Policy (unless the page set one), `Cache-Control: no-store` (unless the
/// response set its own), `X-Frame-Options`, and HSTS over https.
pub async fn on_every_response(
    axum::extract::State(Https(https)): axum::extract::State<Https>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_POLICY));
    // Pages and answers are per person and may carry secrets (a setup link, a grant token, the
    // CSRF token): no cache keeps them, unless a response says otherwise (the hashed assets do).
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    // For browsers that predate frame-ancestors.
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
