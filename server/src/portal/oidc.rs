//! Sign-in and step-up through the OpenID Provider: plain form posts that redirect to the provider,
//! and the callback. Every outcome is a redirect to a portal page; failures carry a fixed reason
//! code (`?oidc=not_mfa`) the page turns into a message, never a raw error.

use app::auth::next::after_sign_in;
use app::backend::session_keys;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tower_sessions::Session;

use super::backend::{oidc_identity, signed_in};
use super::ceremonies::{audit, confirm_challenge, open_challenge_of, Client};
use super::error::ApiError;
use crate::challenges::{is_code, ApprovalDecision};
use crate::clock;
use crate::elevation::{checked_reason, Actor};
use crate::grants::Evidence;
use crate::identity::authz::{allows, Permission};
use crate::identity::oidc::{OidcError, OidcIdentity, PendingFlow, Purpose, StepUpDemand};
use crate::state::AppState;

const FLOW_KEY: &str = "oidc.flow";
/// Set when the provider answered a step-up with a sign-in older than asked for: it ignores
/// `max_age`, so the next attempt insists with `prompt=login`.
const STALE_KEY: &str = "oidc.stale_stepup";

/// Only same-origin paths: an open redirect after sign-in would make a fine phishing link.
fn same_site_path(state: &AppState, next: Option<&str>) -> String {
    after_sign_in(next, &state.public_url.origin().ascii_serialization())
}

fn login_page(reason: &str, next: &str) -> Response {
    let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    Redirect::to(&format!("/login?oidc={reason}&next={next}")).into_response()
}

fn challenge_page(code: &str, reason: Option<&str>) -> Response {
    // `code` is checked with `is_code` before it gets here, so it is safe in a path.
    match reason {
        Some(r) => Redirect::to(&format!("/c/{code}?oidc={r}")).into_response(),
        None => Redirect::to(&format!("/c/{code}")).into_response(),
    }
}

/// `POST /auth/oidc/login` (form: `next`)
#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = same_site_path(&state, form.next.as_deref());
    let Some(oidc) = state.oidc.clone() else {
        return login_page("off", &next);
    };
    match oidc
        .begin(Purpose::SignIn { next: next.clone() }, None, clock::now())
        .await
    {
        Ok((url, flow)) => {
            redirect_to_provider(&session, url, flow, || login_page("session", &next)).await
        }
        Err(e) => login_page(e.reason(), &next),
    }
}

/// `POST /auth/oidc/stepup` (form: `code`)
#[derive(Deserialize)]
pub struct StepUpForm {
    code: String,
    /// Why, for an approval guardrail.
    #[serde(default)]
    reason: Option<String>,
    /// `yes` to break the glass: approve one's own request in an emergency.
    #[serde(default, rename = "breakGlass")]
    break_glass: Option<String>,
}

pub async fn stepup(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<StepUpForm>,
) -> Response {
    let code = form.code;
    if !is_code(&code) {
        return Redirect::to("/").into_response();
    }
    let Some(oidc) = state.oidc.clone() else {
        return challenge_page(&code, Some("off"));
    };
    let user = match signed_in(&state, &session).await {
        Ok(Some(user)) => user,
        Ok(None) => return login_page("signin", &format!("/c/{code}")),
        Err(_) => return challenge_page(&code, Some("unavailable")),
    };
    let Some(identity) = oidc_identity(&session).await else {
        return challenge_page(&code, Some("not_oidc"));
    };
    let break_glass = form.break_glass.as_deref() == Some("yes");
    let challenge =
        match open_challenge_of(&state, &user, &identity.groups, &code, break_glass).await {
            Ok(c) => c,
            Err(_) => return challenge_page(&code, Some("challenge")),
        };
    let reason = match &challenge.approval {
        Some(case) => {
            // Breaking the glass always says why.
            let mut rule = case.rule.reason;
            if break_glass {
                rule.required = true;
                rule.min_length = rule.min_length.max(1);
            }
            match checked_reason(form.reason.as_deref(), rule) {
                Ok(reason) => reason,
                Err(_) => return challenge_page(&code, Some("reason")),
            }
        }
        None => None,
    };
    let refused_as_stale = matches!(session.get::<bool>(STALE_KEY).await, Ok(Some(true)));
    let demand = step_up_demand(
        challenge.freshness_secs,
        identity.multi_factor(&oidc.config().mfa_acr),
        refused_as_stale,
    );
    match oidc
        .begin(
            Purpose::StepUp {
                code: code.clone(),
                reason,
                break_glass,
            },
            Some(demand),
            clock::now(),
        )
        .await
    {
        Ok((url, flow)) => {
            redirect_to_provider(&session, url, flow, || {
                challenge_page(&code, Some("session"))
            })
            .await
        }
        Err(e) => challenge_page(&code, Some(e.reason())),
    }
}

/// `POST /auth/oidc/decide` (form: `code`, `decision`, `reason`): an approver signed in through the
/// identity provider decides after the provider vouches for them again, with a second factor.
#[derive(Deserialize)]
pub struct DecideForm {
    code: String,
    decision: ApprovalDecision,
    #[serde(default)]
    reason: String,
}

fn review_page(code: &str, reason: Option<&str>) -> Response {
    // `code` is checked with `is_code` before it gets here, so it is safe in a path.
    match reason {
        Some(r) => Redirect::to(&format!("/approvals/{code}?oidc={r}")).into_response(),
        None => Redirect::to(&format!("/approvals/{code}")).into_response(),
    }
}

pub async fn decide(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<DecideForm>,
) -> Response {
    let code = form.code;
    if !is_code(&code) {
        return Redirect::to("/approvals").into_response();
    }
    let Some(oidc) = state.oidc.clone() else {
        return review_page(&code, Some("off"));
    };
    let Some(identity) = oidc_identity(&session).await else {
        return review_page(&code, Some("not_oidc"));
    };
    if !allows(identity.role, Permission::ReviewEscalations) {
        return review_page(&code, Some("challenge"));
    }
    let approver = Actor {
        account: identity.username.clone(),
        groups: identity.groups.clone(),
    };
    let challenge = match state
        .elevation()
        .check_decider(&code, &approver, clock::now())
        .await
    {
        Ok(c) => c,
        Err(_) => return review_page(&code, Some("challenge")),
    };
    if form.decision == ApprovalDecision::Reject && form.reason.trim().is_empty() {
        return review_page(&code, Some("reason"));
    }
    let refused_as_stale = matches!(session.get::<bool>(STALE_KEY).await, Ok(Some(true)));
    let demand = step_up_demand(
        challenge.freshness_secs,
        identity.multi_factor(&oidc.config().mfa_acr),
        refused_as_stale,
    );
    let purpose = Purpose::Decide {
        code: code.clone(),
        decision: form.decision,
        reason: form.reason,
    };
    match oidc.begin(purpose, Some(demand), clock::now()).await {
        Ok((url, flow)) => {
            redirect_to_provider(&session, url, flow, || review_page(&code, Some("session"))).await
        }
        Err(e) => review_page(&code, Some(e.reason())),
    }
}

/// What a step-up asks the provider for. `max_age` makes it re-authenticate a stale sign-in;
/// `acr_values` is only a wish, so a sign-in without a second factor is sent back to the login
/// prompt outright, and so is every attempt after the provider ignored `max_age` once.
fn step_up_demand(freshness_secs: i64, multi_factor: bool, refused_as_stale: bool) -> StepUpDemand {
    StepUpDemand {
        max_age_secs: u64::try_from(freshness_secs.max(0)).unwrap_or(0),
        force_login: !multi_factor || refused_as_stale,
    }
}

async fn redirect_to_provider(
    session: &Session,
    url: url::Url,
    flow: PendingFlow,
    on_error: impl FnOnce() -> Response,
) -> Response {
    match session.insert(FLOW_KEY, flow).await {
        Ok(()) => Redirect::to(url.as_str()).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "saving the OIDC flow failed");
            on_error()
        }
    }
}

/// `GET /auth/oidc/callback`
#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    Query(params): Query<Callback>,
) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return login_page("off", "/");
    };
    // The flow is taken out first, so a callback can be used once.
    let flow = match session.remove::<PendingFlow>(FLOW_KEY).await {
        Ok(Some(flow)) => flow,
        _ => return login_page("flow", "/"),
    };
    let now = clock::now();
    let outcome = match (&params.error, &params.code) {
        _ if !flow.state_matches(params.state.as_deref()) => Err(OidcError::State),
        (Some(error), _) => Err(OidcError::Provider(
            match params.error_description.as_deref() {
                Some(d) => format!("{error}: {}", d.chars().take(200).collect::<String>()),
                None => error.chars().take(100).collect(),
            },
        )),
        (None, Some(code)) => {
            oidc.finish(
                &flow,
                params.state.as_deref().unwrap_or_default(),
                code,
                now,
            )
            .await
        }
        (None, None) => Err(OidcError::Provider("no authorization code".into())),
    };
    let current = signed_in(&state, &session).await.ok().flatten();
    let actor = current
        .as_ref()
        .map_or("anonymous", |u| u.username.as_str())
        .to_owned();
    match flow.purpose {
        Purpose::SignIn { next } => match (same_site_path(&state, Some(&next)), outcome) {
            (next, Ok(identity)) => match sign_in(&state, &session, &client, identity, now).await {
                Ok(()) => Redirect::to(&next).into_response(),
                Err(e) => {
                    tracing::error!(error = %e, "OIDC sign-in could not be saved");
                    login_page("session", &next)
                }
            },
            (next, Err(e)) => {
                audit(
                    &state,
                    "login.failed",
                    &actor,
                    &actor,
                    serde_json::json!({
                        "method": "oidc", "reason": e.to_string(), "address": client.address,
                    }),
                )
                .await;
                login_page(e.reason(), &next)
            }
        },
        Purpose::StepUp {
            code,
            reason,
            break_glass,
        } => {
            let refused = |reason: &'static str, why: String| {
                let state = state.clone();
                let actor = actor.clone();
                let code = code.clone();
                let address = client.address.clone();
                async move {
                    audit(
                        &state,
                        "stepup.failed",
                        &actor,
                        &code,
                        serde_json::json!({
                            "method": "oidc", "reason": why, "address": address,
                        }),
                    )
                    .await;
                    challenge_page(&code, Some(reason))
                }
            };
            let identity = match reauthenticated(&session, current.is_some(), outcome).await {
                Ok(identity) => identity,
                Err((reason, why)) => return refused(reason, why).await,
            };
            match step_up(
                &state,
                &session,
                &client,
                identity,
                (&code, reason.as_deref(), break_glass),
                now,
            )
            .await
            {
                Ok(()) => {
                    let _ = session.remove_value(STALE_KEY).await;
                    challenge_page(&code, None)
                }
                Err(e) => refused("challenge", e.to_string()).await,
            }
        }
        Purpose::Decide {
            code,
            decision,
            reason,
        } => {
            let identity = match reauthenticated(&session, current.is_some(), outcome).await {
                Ok(identity) => identity,
                Err((why_code, why)) => {
                    audit(
                        &state,
                        "approval.stepup_failed",
                        &actor,
                        &code,
                        serde_json::json!({
                            "method": "oidc", "reason": why, "address": client.address,
                        }),
                    )
                    .await;
                    return review_page(&code, Some(why_code));
                }
            };
            match decided(
                &state,
                &session,
                &client,
                identity,
                (&code, decision, &reason),
                now,
            )
            .await
            {
                Ok(()) => {
                    let _ = session.remove_value(STALE_KEY).await;
                    review_page(&code, None)
                }
                Err(e) => {
                    tracing::info!(error = %e, %code, "an approver's decision was refused");
                    review_page(&code, Some("challenge"))
                }
            }
        }
    }
}

/// The evidence of a step-up the provider has just vouched for.
fn oidc_evidence(identity: &OidcIdentity, client: &Client) -> Evidence {
    Evidence {
        method: "oidc".into(),
        account: identity.username.clone(),
        // The provider verified the person with the factors named in acr/amr.
        user_verified: true,
        auth_time: identity.auth_time,
        client_address: client.address.clone(),
        user_agent: client.user_agent.clone(),
        acr: identity.acr.clone(),
        amr: Some(identity.amr.clone()),
        ..Evidence::default()
    }
}

/// The identity the provider has just vouched for, if it is the person signed in here: a stale
/// sign-in is remembered, so the next attempt asks the provider to log in again.
async fn reauthenticated(
    session: &Session,
    signed_in: bool,
    outcome: Result<OidcIdentity, OidcError>,
) -> Result<OidcIdentity, (&'static str, String)> {
    let identity = match outcome {
        Ok(identity) => identity,
        Err(e) => {
            if matches!(e, OidcError::Stale(_)) {
                let _ = session.insert(STALE_KEY, true).await;
            }
            return Err((e.reason(), e.to_string()));
        }
    };
    // The step-up must come from the same provider account that is signed in here.
    let same_person = oidc_identity(session).await.is_some_and(|signed| {
        signed.issuer == identity.issuer && signed.subject == identity.subject
    });
    if !signed_in || !same_person {
        return Err((
            "mismatch",
            format!(
                "the provider confirmed {}, not the signed-in person",
                identity.username
            ),
        ));
    }
    Ok(identity)
}

/// The approver's decision, once the provider vouched for the same person again.
async fn decided(
    state: &AppState,
    session: &Session,
    client: &Client,
    identity: OidcIdentity,
    (code, decision, reason): (&str, ApprovalDecision, &str),
    now: i64,
) -> Result<(), ApiError> {
    let evidence = oidc_evidence(&identity, client);
    let approver = Actor {
        account: identity.username.clone(),
        groups: identity.groups.clone(),
    };
    state
        .elevation()
        .decide(code, &approver, decision, reason, evidence, now)
        .await?;
    session.cycle_id().await?;
    session
        .insert(session_keys::OIDC_IDENTITY, &identity)
        .await?;
    Ok(())
}

async fn sign_in(
    state: &AppState,
    session: &Session,
    client: &Client,
    identity: OidcIdentity,
    now: i64,
) -> Result<(), ApiError> {
    // New session id, then the signed-in markers (defeats session fixation).
    session.cycle_id().await?;
    let _ = session.remove_value(session_keys::USER_ID).await?;
    session
        .insert(session_keys::OIDC_IDENTITY, &identity)
        .await?;
    session
        .insert(session_keys::AUTH_TIME, identity.auth_time)
        .await?;
    session.insert(session_keys::LOGIN_TIME, now).await?;
    session
        .insert(session_keys::LOGIN_TIME_MS, clock::now_ms())
        .await?;
    audit(state, "login", &identity.username, &identity.username, serde_json::json!({
        "method": "oidc", "issuer": identity.issuer, "subject": identity.subject,
        "groups": identity.groups, "acr": identity.acr, "amr": identity.amr,
        "authTime": identity.auth_time, "address": client.address, "userAgent": client.user_agent,
    }))
    .await;
    Ok(())
}

/// Confirm challenge `code` (with `reason`), or break its glass, with the step-up the provider
/// has just vouched for.
async fn step_up(
    state: &AppState,
    session: &Session,
    client: &Client,
    identity: OidcIdentity,
    (code, reason, break_glass): (&str, Option<&str>, bool),
    now: i64,
) -> Result<(), ApiError> {
    // The owner check runs on the identity the provider has just vouched for.
    let user = identity.as_user();
    let challenge = open_challenge_of(state, &user, &identity.groups, code, break_glass).await?;
    let evidence = oidc_evidence(&identity, client);
    if break_glass {
        let actor = Actor {
            account: user.username.clone(),
            groups: identity.groups.clone(),
        };
        let auth_time = evidence.auth_time;
        state
            .elevation()
            .break_glass(
                &challenge.code,
                &actor,
                reason.unwrap_or_default(),
                evidence,
                now,
            )
            .await?;
        session.cycle_id().await?;
        session.insert(session_keys::AUTH_TIME, auth_time).await?;
    } else {
        confirm_challenge(
            state,
            session,
            &user,
            &challenge.code,
            evidence,
            reason,
            now,
        )
        .await?;
    }
    // The session now carries the stronger, fresher authentication.
    session
        .insert(session_keys::OIDC_IDENTITY, &identity)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_13_after_a_stale_refusal_the_step_up_insists_on_a_new_login() {
        let fresh = step_up_demand(300, true, false);
        assert_eq!((fresh.max_age_secs, fresh.force_login), (300, false));
        let after_stale = step_up_demand(300, true, true);
        assert!(after_stale.force_login);
        assert!(step_up_demand(300, false, false).force_login);
    }
}
