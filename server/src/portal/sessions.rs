//! "Sign out everywhere": end every session of the signed-in person, in every browser.

use axum::extract::State;
use axum::response::Redirect;
use tower_sessions::Session;

use super::backend::signed_in;
use super::ceremonies::{audit, Client};
use super::error::ApiError;
use crate::clock;
use crate::state::AppState;

/// `POST /auth/logout-everywhere` (a plain form, like sign-out).
pub async fn logout_everywhere(
    State(state): State<AppState>,
    session: Session,
    client: Client,
) -> Result<Redirect, ApiError> {
    let user = signed_in(&state, &session)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    // Sessions keep their sign-in time; every one signed in until now is refused from now on. In
    // milliseconds, so signing in again right after is not caught by the same second.
    state
        .store
        .set_session_epoch(&user.user_id, clock::now_ms())
        .await?;
    audit(
        &state,
        "logout.everywhere",
        &user.username,
        &user.username,
        serde_json::json!({ "address": client.address, "userAgent": client.user_agent }),
    )
    .await;
    session.flush().await?;
    Ok(Redirect::to("/login?done=ended"))
}
