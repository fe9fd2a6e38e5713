//! `POST /theme`: remember the colour scheme without script (the hydrated page switches in place
//! and sets the same cookie itself).

use app::auth::next::after_sign_in;
use app::theme::{Theme, THEME_COOKIE};
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::PortalOrigin;

/// The form: one of the three buttons (the CSRF field is checked before this runs).
#[derive(Deserialize)]
pub struct ThemeChoice {
    #[serde(default)]
    theme: String,
}

/// Set the cookie and go back to the page the form was on (same origin only).
pub async fn set_theme(
    State(origin): State<PortalOrigin>,
    headers: HeaderMap,
    Form(choice): Form<ThemeChoice>,
) -> Response {
    let theme = Theme::parse(&choice.theme);
    // The same same-origin rule as `next` after sign-in, on the referrer's path.
    let back = after_sign_in(
        headers
            .get(header::REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(|r| r.strip_prefix(origin.0.as_str())),
        &origin.0,
    );
    let cookie = format!(
        "{THEME_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        theme.as_str()
    );
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
