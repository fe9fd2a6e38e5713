//! Errors of the portal's JSON endpoints, turned into responses once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::identity::passkeys::PasskeyError;
use crate::store::StoreError;

/// What a portal endpoint can refuse with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input the person can fix.
    #[error("{0}")]
    BadRequest(String),
    /// Not signed in.
    #[error("sign in first")]
    Unauthenticated,
    /// Signed in, not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// State changed underneath (challenge already confirmed, link used).
    #[error("{0}")]
    Conflict(String),
    /// The ceremony failed verification.
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    /// Past a bound (open live-update streams, say).
    #[error("{0}")]
    TooMany(String),
    /// Storage failed.
    #[error("the portal could not reach its database; try again shortly")]
    Store(#[from] StoreError),
    /// Session storage failed.
    #[error("your session could not be saved; try again")]
    Session(#[from] tower_sessions::session::Error),
}

impl From<crate::identity::authz::Denied> for ApiError {
    fn from(d: crate::identity::authz::Denied) -> Self {
        match d {
            crate::identity::authz::Denied::Unauthenticated => ApiError::Unauthenticated,
            forbidden => ApiError::Forbidden(forbidden.to_string()),
        }
    }
}

impl From<crate::elevation::ElevationError> for ApiError {
    fn from(e: crate::elevation::ElevationError) -> Self {
        use crate::elevation::ElevationError as E;
        match e {
            E::Store(s) => ApiError::Store(s),
            E::NotFound | E::BadReason(_) => ApiError::BadRequest(e.to_string()),
            E::NotYours { .. } | E::Refused(_) | E::NoBreakGlass(_) | E::StaleStepUp(_) => {
                ApiError::Forbidden(e.to_string())
            }
            E::Closed(_) | E::NotNow(_) | E::AlreadyDecided | E::Tampered(_) => {
                ApiError::Conflict(e.to_string())
            }
            E::UnknownGuardrail(_) => ApiError::Conflict(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Passkey(PasskeyError::RelyingParty(..) | PasskeyError::Corrupt) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Passkey(_) => StatusCode::FORBIDDEN,
            ApiError::Store(_) | ApiError::Session(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        if status.is_server_error() {
            tracing::error!(error = ?self, "portal request failed");
        }
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}
