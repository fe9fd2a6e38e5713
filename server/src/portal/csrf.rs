//! CSRF synchronizer token: a random value kept in the server-side session, embedded in every page
//! (`<meta name="csrf-token">`), and required on every non-GET request — as the `x-csrf-token` header
//! (`fetch` calls) or the `csrf` form field (HTML forms and Leptos action forms). It is replaced
//! whenever the session id is (sign-in, step-up), so a token seen before sign-in is worthless after.
//!
//! This complements the Origin/Referer check in [`super::origin`]: either one alone refuses a
//! cross-site form post; together they also cover a same-site attacker without the page's token.
//!
//! A visitor with nothing in a session yet (someone opening a link before signing in, a crawler)
//! gets the token in a cookie instead (double submit), so a page view stores nothing on the
//! server; the session that a sign-in ceremony then creates adopts that token.

use app::backend::{session_keys, CsrfToken, CSRF_FIELD, CSRF_HEADER};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
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

/// The cookie that carries the token of a visitor whose session holds nothing yet (over plain
/// http, for local use).
pub const CSRF_COOKIE: &str = "countersign_csrf";

/// Its name over https: a `__Host-` cookie cannot be set by a sibling subdomain (no `Domain`), so
/// nobody can toss one in to break sign-in posts (second review, finding 17).
pub const HOST_CSRF_COOKIE: &str = "__Host-countersign_csrf";

/// How the token cookie is set.
#[derive(Debug, Clone, Copy)]
pub struct CsrfCookie {
    /// `Secure` (the portal is served over https).
    pub secure: bool,
}

impl CsrfCookie {
    /// The cookie's name.
    pub fn name(self) -> &'static str {
        if self.secure {
            HOST_CSRF_COOKIE
        } else {
            CSRF_COOKIE
        }
    }

    fn header(self, token: &str) -> Option<HeaderValue> {
        let (name, secure) = (self.name(), if self.secure { "; Secure" } else { "" });
        HeaderValue::from_str(&format!(
            "{name}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"
        ))
        .ok()
    }
}

/// The token in the request's cookie `name`, if it looks like one of ours.
fn cookie_token(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
        .find(|t| {
            t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
}

/// The token for a page: the session's (made and stored if the session holds something but no
/// token), else, for a visitor with an empty session, the cookie's (made if absent; `true` when it
/// must be set).
async fn page_token(
    session: &Session,
    from_cookie: Option<&str>,
) -> Result<(String, bool), tower_sessions::session::Error> {
    if let Some(token) = session.get::<String>(session_keys::CSRF_TOKEN).await? {
        return Ok((token, false));
    }
    if session.is_empty().await {
        return Ok(match from_cookie {
            Some(token) => (token.to_owned(), false),
            None => (new_token(), true),
        });
    }
    let token = new_token();
    session.insert(session_keys::CSRF_TOKEN, &token).await?;
    Ok((token, false))
}

/// A session the handler just gave its first data keeps the visitor's cookie token, so the page
/// they hold stays valid for the ceremony's next step.
async fn adopt(session: &Session, token: Option<&str>) {
    let Some(token) = token else { return };
    if session.is_empty().await {
        return;
    }
    match session.get::<String>(session_keys::CSRF_TOKEN).await {
        Ok(Some(_)) => {}
        _ => {
            if let Err(e) = session.insert(session_keys::CSRF_TOKEN, token).await {
                tracing::error!(error = %e, "could not keep the CSRF token in the new session");
            }
        }
    }
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
pub async fn synchronizer_token(
    State(cookie): State<CsrfCookie>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let id_before = session.id();
    let from_cookie = cookie_token(request.headers(), cookie.name());
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        // Only pages embed the token; assets and data calls need none.
        let mut set_cookie = None;
        if wants_html(&request) {
            match page_token(&session, from_cookie.as_deref()).await {
                Ok((token, fresh)) => {
                    if fresh {
                        set_cookie = Some(token.clone());
                    }
                    request.extensions_mut().insert(CsrfToken(token));
                }
                Err(e) => tracing::error!(error = %e, "could not issue a CSRF token"),
            }
        }
        let mut response = next.run(request).await;
        adopt(&session, set_cookie.as_deref().or(from_cookie.as_deref())).await;
        renew_if_cycled(&session, id_before).await;
        if let Some(value) = set_cookie.and_then(|t| cookie.header(&t)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        return response;
    }
    let expected = match session.get::<String>(session_keys::CSRF_TOKEN).await {
        Ok(Some(token)) => token,
        // Nothing in a session yet: the double-submitted cookie is what the page embedded.
        Ok(None) => match from_cookie.clone() {
            Some(token) if session.is_empty().await => token,
            _ => return refused("this request carries no valid CSRF token"),
        },
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
    let mut response = next.run(request).await;
    adopt(&session, from_cookie.as_deref()).await;
    // A page that stepped up in place keeps working: the script swaps in the renewed token
    // (a same-origin read; other origins cannot see response headers).
    if let Some(value) = renew_if_cycled(&session, id_before)
        .await
        .and_then(|t| header::HeaderValue::from_str(&t).ok())
    {
        response.headers_mut().insert(RENEWED_TOKEN_HEADER, value);
    }
    response
}

/// The header that hands a renewed token to the page whose request renewed it.
const RENEWED_TOKEN_HEADER: &str = "x-csrf-token";

/// A new token when the session id was cycled (its data kept), returned for the page that asked;
/// a flushed session needs none.
async fn renew_if_cycled(
    session: &Session,
    id_before: Option<tower_sessions::session::Id>,
) -> Option<String> {
    if id_before.is_some() && session.id().is_none() && !session.is_empty().await {
        let token = new_token();
        match session
            .insert(session_keys::CSRF_TOKEN, token.clone())
            .await
        {
            Ok(()) => return Some(token),
            Err(e) => tracing::error!(error = %e, "could not renew the CSRF token"),
        }
    }
    None
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
    fn the_cookie_token_is_read_only_when_it_looks_like_ours() {
        let token = new_token();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {CSRF_COOKIE}={token}; c=d")).unwrap(),
        );
        assert_eq!(cookie_token(&headers, CSRF_COOKIE), Some(token));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("countersign_csrf=short; countersign_csrfx=1"),
        );
        assert_eq!(cookie_token(&headers, CSRF_COOKIE), None);
    }

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
