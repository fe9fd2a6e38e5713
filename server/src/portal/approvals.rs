//! The approvers' side over JSON: approve or reject with a fresh security-key step-up each time,
//! and the requester withdrawing. The rules live in [`crate::elevation`]; this is the plumbing.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use webauthn_rs::prelude::PasskeyAuthentication;

use super::backend::signed_in;
use super::ceremonies::{start_step_up, step_up_evidence, Client, Done, StepUpFinish};
use super::error::ApiError;
use crate::challenges::ApprovalDecision;
use crate::clock;
use crate::elevation::Actor;
use crate::identity::authz::{authorize, Permission};
use crate::identity::User;
use crate::state::AppState;

const DECIDE_KEY: &str = "ceremony.decide";

#[derive(Serialize, Deserialize)]
struct DecideCeremony {
    user_id: String,
    code: String,
    decision: ApprovalDecision,
    reason: String,
    state: PasskeyAuthentication,
}

fn actor(user: &User) -> Actor {
    Actor {
        account: user.username.clone(),
        groups: user.groups.clone(),
    }
}

/// `POST /auth/decide/start`
#[derive(Deserialize)]
pub struct DecideStart {
    code: String,
    decision: ApprovalDecision,
    #[serde(default)]
    reason: String,
}

/// Check the approver may decide (before any key is touched), then ask for their step-up.
pub async fn decide_start(
    State(state): State<AppState>,
    session: Session,
    Json(body): Json<DecideStart>,
) -> Result<Response, ApiError> {
    let user = signed_in(&state, &session)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    authorize(Some(user.role), Permission::ReviewEscalations)?;
    state
        .elevation()
        .check_decider(&body.code, &actor(&user), clock::now())
        .await?;
    if body.decision == ApprovalDecision::Reject && body.reason.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "reason: say why, so the requester knows".into(),
        ));
    }
    let failed = ("approval.stepup_failed", body.code.as_str());
    let (options, auth) = start_step_up(&state, &user, failed).await?;
    session
        .insert(
            DECIDE_KEY,
            DecideCeremony {
                user_id: user.user_id,
                code: body.code,
                decision: body.decision,
                reason: body.reason,
                state: auth,
            },
        )
        .await?;
    Ok(Json(options).into_response())
}

/// Verify the approver's step-up and record their decision (issuing the grant at the threshold).
pub async fn decide_finish(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    Json(body): Json<StepUpFinish>,
) -> Result<Json<Done>, ApiError> {
    let user = signed_in(&state, &session)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    authorize(Some(user.role), Permission::ReviewEscalations)?;
    let ceremony: DecideCeremony = session
        .remove(DECIDE_KEY)
        .await?
        .ok_or_else(|| ApiError::BadRequest("start again".into()))?;
    if ceremony.user_id != user.user_id || ceremony.code != body.code {
        return Err(ApiError::BadRequest("start again".into()));
    }
    let now = clock::now();
    let evidence = step_up_evidence(
        &state,
        &user,
        (&body.credential, &ceremony.state),
        &client,
        ("approval.stepup_failed", &ceremony.code),
        now,
    )
    .await?;
    state
        .elevation()
        .decide(
            &ceremony.code,
            &actor(&user),
            ceremony.decision,
            &ceremony.reason,
            evidence,
            now,
        )
        .await?;
    session.cycle_id().await?;
    session
        .insert(app::backend::session_keys::AUTH_TIME, now)
        .await?;
    Ok(Json(Done {
        redirect: format!("/approvals/{}", ceremony.code),
    }))
}

/// `POST /c/withdraw`
#[derive(Deserialize)]
pub struct Withdraw {
    code: String,
}

/// The requester takes their request back.
pub async fn withdraw(
    State(state): State<AppState>,
    session: Session,
    Json(body): Json<Withdraw>,
) -> Result<Json<Done>, ApiError> {
    let user = signed_in(&state, &session)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    authorize(Some(user.role), Permission::ConfirmOwnChallenge)?;
    state
        .elevation()
        .withdraw(&body.code, &actor(&user), clock::now())
        .await?;
    Ok(Json(Done {
        redirect: format!("/c/{}", body.code),
    }))
}
