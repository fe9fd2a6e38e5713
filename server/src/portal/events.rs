//! `GET /events`: server-sent events that tell open pages an elevation changed, so the
//! requester's page, the approvers' queue and the header badge update without a reload.
//!
//! Each event names only the challenge and what happened; the page refetches through the same
//! access checks as ever. A person hears only of challenges they may see: their own (or their
//! service accounts'), or those their groups review.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

use super::backend::signed_in;
use super::error::ApiError;
use crate::elevation::Actor;
use crate::identity::authz::{allows, Permission};
use crate::identity::{Role, User};
use crate::state::AppState;

/// `GET /events`
pub async fn events(State(state): State<AppState>, session: Session) -> Result<Response, ApiError> {
    let user = signed_in(&state, &session)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let receiver = state.events.subscribe();
    let stream = stream::unfold(
        (state, user, receiver),
        |(state, user, mut receiver)| async move {
            loop {
                let event = match receiver.recv().await {
                    Ok(event) => Some(event),
                    // Missed some: the page refetches anyway.
                    Err(RecvError::Lagged(_)) => None,
                    Err(RecvError::Closed) => return None,
                };
                let data = match event {
                    Some(e) if concerns(&state, &user, &e.code).await => {
                        serde_json::json!({ "code": e.code, "happened": e.happened }).to_string()
                    }
                    Some(_) => continue,
                    None => "{}".to_owned(),
                };
                let sse = Event::default().event("message").data(data);
                return Some((Ok::<_, Infallible>(sse), (state, user, receiver)));
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// A comment line this often keeps proxies (and the portal's stall guard) from closing a quiet
/// stream.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Whether `user` may see the challenge `code`: theirs to confirm, or theirs to review.
async fn concerns(state: &AppState, user: &User, code: &str) -> bool {
    let Ok(Some(challenge)) = state.store.challenge(code).await else {
        return false;
    };
    let subject = &challenge.request.username;
    if state
        .identities
        .authority(&user.username, &user.groups, subject)
        .is_some()
    {
        return true;
    }
    if !allows(user.role, Permission::ReviewEscalations) {
        return false;
    }
    let actor = Actor {
        account: user.username.clone(),
        groups: user.groups.clone(),
    };
    user.role == Role::Admin || state.elevation().concerns(&challenge, &actor)
}
