//! CSRF synchronizer token: a random value kept in the server-side session, embedded in every page
//! (`<meta name="csrf-token">`), and required on every non-GET request — as the `x-csrf-token` header
//! (`fetch` calls) or the `csrf` form field (HTML forms and Leptos action forms). It is replaced
//! whenever the session id is (sign-in, step-up), so a token seen before sign-in is worthless after.
//!
//! This complements the Origin/Referer check in [`super::origin`]: either one alone refuses a
//! cross-site form post; together they also cover a same-site attacker without the page's token.

use app::backend::{session_keys, CsrfToken, CSRF_FIELD, CSRF_HEADER};
use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use tower_sessions::Session;

/// Form bodies larger than this are not searched for the token (and so refused).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A fresh random token (256 bits).
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The session's token, made and stored when it has none.
async fn ensure_token(session: &Session) -> Result<String, tower_sessions::session::Error> {
    if let Some(token) = session.get::<String>(session_keys::CSRF_TOKEN).await? {
        return Ok(token);
    }
    let token = new_token();
    session.insert(session_keys::CSRF_TOKEN, &token).await?;
    Ok(token)
}

fn refused(why: &'static str) -> Response {
    tracing::info!(why, "CSRF check refused a request");
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({
            "error": format!("{why}; reload the page and try again"),
        })
        .to_string(),
    )
        .into_response()
}

/// Check the token on non-GET requests, hand it to pages on GET, and renew it when the handler gave
/// the session a new id.
pub async fn synchronizer_token(session: Session, mut request: Request, next: Next) -> Response {
    let id_before = session.id();
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        // Only pages embed the token; assets and data calls need no session write.
        if wants_html(&request) {
            match ensure_token(&session).await {
                Ok(token) => {
                    request.extensions_mut().insert(CsrfToken(token));
                }
                Err(e) => tracing::error!(error = %e, "could not issue a CSRF token"),
            }
        }
        let response = next.run(request).await;
        renew_if_cycled(&session, id_before).await;
        return response;
    }
    let expected = match session.get::<String>(session_keys::CSRF_TOKEN).await {
        Ok(Some(token)) => token,
        Ok(None) => return refused("this request carries no valid CSRF token"),
        Err(_) => return refused("your session could not be read"),
    };
    let (request, presented) = match presented_token(request).await {
        Ok(pair) => pair,
        Err(response) => return response,
    };
    let matches = presented
        .as_deref()
        .is_some_and(|p| constant_time_eq(p.as_bytes(), expected.as_bytes()));
    if !matches {
        return refused("this request carries no valid CSRF token");
    }
    let response = next.run(request).await;
    renew_if_cycled(&session, id_before).await;
    response
}

/// A new token when the session id was cycled (its data kept); a flushed session needs none.
async fn renew_if_cycled(session: &Session, id_before: Option<tower_sessions::session::Id>) {
    if id_before.is_some() && session.id().is_none() && !session.is_empty().await {
        if let Err(e) = session.insert(session_keys::CSRF_TOKEN, new_token()).await {
            tracing::error!(error = %e, "could not renew the CSRF token");
        }
    }
}

fn wants_html(request: &Request) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// The token from the header, else from a URL-encoded form body (which is put back for the handler).
async fn presented_token(request: Request) -> Result<(Request, Option<String>), Response> {
    if let Some(token) = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        let token = token.to_owned();
        return Ok((request, Some(token)));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((request, None));
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| refused("this form is too large to check for its CSRF token"))?;
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_compared_exactly() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits, base64url");
        assert!(constant_time_eq(a.as_bytes(), a.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), b.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), &a.as_bytes()[..42]));
    }
}
