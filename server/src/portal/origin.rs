//! CSRF defence: a state-changing request must come from the portal's own origin.
//!
//! Cookies are also `SameSite=Strict`; this check covers browsers and proxies that do not honour it.

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The portal origin, `scheme://host[:port]`.
#[derive(Clone)]
pub struct PortalOrigin(pub String);

/// Refuse non-safe methods whose `Origin` (or, lacking it, `Referer`) is not the portal's.
pub async fn same_origin_only(
    State(origin): State<PortalOrigin>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let sent = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            let referer = headers.get(header::REFERER)?.to_str().ok()?;
            let url = url::Url::parse(referer).ok()?;
            Some(url.origin().ascii_serialization())
        });
    if sent.as_deref() == Some(origin.0.as_str()) {
        next.run(request).await
    } else {
        (StatusCode::FORBIDDEN, "cross-site request refused").into_response()
    }
}
