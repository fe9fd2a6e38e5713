//! WebAuthn ceremonies over JSON: first-admin setup, sign-in, and the step-up that issues a grant.
//! Ceremony state lives in the server-side session, never in the browser.

use app::backend::session_keys;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use webauthn_rs::prelude::{
    PasskeyAuthentication, PublicKeyCredential, RegisterPublicKeyCredential,
};

use super::backend::signed_in;
use super::error::ApiError;
use crate::audit::AuditEvent;
use crate::challenges::is_code;
use crate::clock;
use crate::elevation::{Actor, Confirmed};
use crate::grants::Evidence;
use crate::identity::passkeys::{PasskeyError, Passkeys, RegistrationState};
use crate::identity::setup::token_hash;
use crate::identity::{validate_username, Credential, User};
use crate::state::AppState;

const SETUP_KEY: &str = "ceremony.setup";
const LOGIN_KEY: &str = "ceremony.login";
const STEPUP_KEY: &str = "ceremony.stepup";

#[derive(Serialize, Deserialize)]
struct SetupCeremony {
    token_hash: String,
    user: User,
    /// What the person named their first passkey.
    #[serde(default)]
    passkey_name: String,
    state: RegistrationState,
}

#[derive(Serialize, Deserialize)]
struct LoginCeremony {
    user_id: String,
    state: PasskeyAuthentication,
}

#[derive(Serialize, Deserialize)]
struct StepUpCeremony {
    user_id: String,
    code: String,
    /// Why, for an approval guardrail (checked when the ceremony starts).
    #[serde(default)]
    reason: Option<String>,
    /// Approve it oneself, loudly (the guardrail's break-glass groups only).
    #[serde(default)]
    break_glass: bool,
    state: PasskeyAuthentication,
}

/// Where the browser goes next.
#[derive(Serialize)]
pub struct Done {
    pub(super) redirect: String,
}

/// `POST /auth/setup/start`
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupStart {
    token: String,
    /// Optional: the link fixes the username; a different one is refused.
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    /// The first passkey's name; a default when left empty.
    #[serde(default)]
    passkey_name: String,
}

/// The first passkey's name when its owner gave none.
const FIRST_PASSKEY_NAME: &str = "First passkey";

pub async fn setup_start(
    State(state): State<AppState>,
    session: Session,
    Json(body): Json<SetupStart>,
) -> Result<Response, ApiError> {
    let hash = token_hash(&body.token);
    let Some(invitation) = state.store.invitation(&hash, clock::now()).await? else {
        return Err(ApiError::Conflict(
            "this setup link has already been used or has expired".into(),
        ));
    };
    // The username is the one whoever made the link fixed, never the invitee's choice (finding 2).
    let asked = body.username.trim();
    if !asked.is_empty() && !invitation.admits(asked) {
        return Err(ApiError::Forbidden(format!(
            "this invitation is for {}",
            invitation.username
        )));
    }
    let username = invitation.username.clone();
    validate_username(&username).map_err(|m| ApiError::BadRequest(format!("username: {m}")))?;
    let display_name = match body.display_name.trim() {
        "" => username.clone(),
        d => d.chars().take(100).collect(),
    };
    let user = User {
        user_id: uuid::Uuid::new_v4().to_string(),
        username,
        display_name,
        role: invitation.role,
        groups: invitation.groups.clone(),
        created_at: clock::now(),
    };
    let passkey_name = match body.passkey_name.trim() {
        "" => FIRST_PASSKEY_NAME.to_owned(),
        name => super::account::clean_name(name)?,
    };
    let (options, reg) = state.passkeys.start_registration(&user, &[])?;
    session
        .insert(
            SETUP_KEY,
            SetupCeremony {
                token_hash: hash,
                user,
                passkey_name,
                state: reg,
            },
        )
        .await?;
    Ok(Json(options).into_response())
}

pub async fn setup_finish(
    State(state): State<AppState>,
    session: Session,
    Json(credential): Json<RegisterPublicKeyCredential>,
) -> Result<Json<Done>, ApiError> {
    let ceremony: SetupCeremony = session
        .remove(SETUP_KEY)
        .await?
        .ok_or_else(|| ApiError::BadRequest("start the registration again".into()))?;
    let registered = match state
        .passkeys
        .finish_registration(&credential, &ceremony.state)
    {
        Ok(r) => r,
        Err(e) => {
            audit(
                &state,
                "account.setup_failed",
                &ceremony.user.username,
                &ceremony.user.username,
                serde_json::json!({ "reason": e.to_string() }),
            )
            .await;
            return Err(e.into());
        }
    };
    let credential_id = registered.credential_id.clone();
    let now = clock::now();
    // Token, account, passkey and the audit record: one unit, so a failure half-way leaves the
    // link usable and no account without a key.
    let mut unit = state.store.begin().await?;
    if !unit.use_setup_token(&ceremony.token_hash, now).await? {
        return Err(ApiError::Conflict(
            "this setup link has already been used or has expired".into(),
        ));
    }
    unit.create_user(&ceremony.user)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                ApiError::Conflict("that username is taken".into())
            }
            other => other.into(),
        })?;
    unit.add_credential(&Credential {
        credential_id: credential_id.clone(),
        user_id: ceremony.user.user_id.clone(),
        name: match ceremony.passkey_name.as_str() {
            "" => FIRST_PASSKEY_NAME.to_owned(),
            name => name.to_owned(),
        },
        passkey: registered.passkey,
        created_at: now,
        last_used_at: None,
        aaguid: registered.aaguid,
        blocked_at: None,
    })
    .await?;
    unit.append_audit(&AuditEvent::new(
        "account.created",
        &ceremony.user.username,
        &ceremony.user.username,
        serde_json::json!({
            "role": ceremony.user.role.as_str(), "groups": ceremony.user.groups,
            "credentialId": credential_id, "via": "setup link",
        }),
    ))
    .await?;
    unit.commit().await?;
    start_session(&session, &ceremony.user.user_id, now).await?;
    Ok(Json(Done {
        redirect: "/".into(),
    }))
}

/// `POST /auth/login/start`
#[derive(Deserialize)]
pub struct LoginStart {
    username: String,
}

pub async fn login_start(
    State(state): State<AppState>,
    session: Session,
    Json(body): Json<LoginStart>,
) -> Result<Response, ApiError> {
    let username = body.username.trim();
    let user = state.store.user_by_username(username).await?;
    let credentials = match &user {
        Some(u) => state.store.credentials_of(&u.user_id).await?,
        None => Vec::new(),
    };
    let usable = credentials.iter().any(Credential::usable);
    let (Some(user), true) = (user, usable) else {
        // Same shape as a real answer: whether the username exists is not revealed. No
        // authenticator holds the decoy ids, so the browser reports that no key matched.
        session.remove::<LoginCeremony>(LOGIN_KEY).await?;
        return Ok(Json(state.passkeys.decoy_authentication(username)?).into_response());
    };
    let (options, auth) = state.passkeys.start_authentication(&credentials)?;
    session
        .insert(
            LOGIN_KEY,
            LoginCeremony {
                user_id: user.user_id,
                state: auth,
            },
        )
        .await?;
    Ok(Json(options).into_response())
}

pub async fn login_finish(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    Json(response): Json<PublicKeyCredential>,
) -> Result<Json<Done>, ApiError> {
    let ceremony: LoginCeremony = session
        .remove(LOGIN_KEY)
        .await?
        .ok_or_else(|| ApiError::BadRequest("start signing in again".into()))?;
    let user = state
        .store
        .user_by_id(&ceremony.user_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let credential_id =
        match verify_assertion(&state, &user, &response, &ceremony.state, &client).await {
            Ok(used) => used.credential_id,
            Err(e) => {
                audit(
                    &state,
                    "login.failed",
                    &user.username,
                    &user.username,
                    serde_json::json!({
                        "reason": e.to_string(), "address": client.address,
                    }),
                )
                .await;
                return Err(e);
            }
        };
    refuse_disabled(&state, &user, &client).await?;
    let now = clock::now();
    start_session(&session, &user.user_id, now).await?;
    audit(&state, "login", &user.username, &user.username, serde_json::json!({
        "method": "webauthn", "credentialId": credential_id, "address": client.address, "userAgent": client.user_agent,
    }))
    .await;
    Ok(Json(Done {
        redirect: "/".into(),
    }))
}

/// `POST /auth/logout` (a plain form, so it works before hydration).
pub async fn logout(State(state): State<AppState>, session: Session) -> Result<Redirect, ApiError> {
    if let Ok(Some(user)) = signed_in(&state, &session).await {
        audit(
            &state,
            "logout",
            &user.username,
            &user.username,
            serde_json::json!({}),
        )
        .await;
    }
    session.flush().await?;
    Ok(Redirect::to("/login?done=signed-out"))
}

/// `POST /auth/stepup/start`
#[derive(Deserialize)]
pub struct StepUpStart {
    code: String,
    /// Why the requester needs it (approval guardrails; may be required).
    #[serde(default)]
    reason: Option<String>,
    /// Break the glass instead of asking approvers.
    #[serde(default, rename = "breakGlass")]
    break_glass: bool,
}

pub async fn stepup_start(
    State(state): State<AppState>,
    session: Session,
    Json(body): Json<StepUpStart>,
) -> Result<Response, ApiError> {
    let user = signed_in(&state, &session)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let challenge =
        open_challenge_of(&state, &user, &user.groups, &body.code, body.break_glass).await?;
    // A reason the guardrail would refuse is refused before the key is touched.
    let reason = match &challenge.approval {
        Some(case) => crate::elevation::checked_reason(body.reason.as_deref(), case.rule.reason)?,
        None => None,
    };
    if body.break_glass && reason.is_none() {
        return Err(ApiError::BadRequest(
            "Breaking the glass needs a reason: say what the emergency is.".into(),
        ));
    }
    let (options, auth) = start_step_up(&state, &user, ("stepup.failed", &body.code)).await?;
    session
        .insert(
            STEPUP_KEY,
            StepUpCeremony {
                user_id: user.user_id,
                code: body.code,
                reason,
                break_glass: body.break_glass,
                state: auth,
            },
        )
        .await?;
    Ok(Json(options).into_response())
}

/// The finish of a step-up on a challenge (`/auth/stepup/finish`, `/auth/decide/finish`): which
/// challenge, and the security key's answer.
#[derive(Deserialize)]
pub struct StepUpFinish {
    pub(super) code: String,
    pub(super) credential: PublicKeyCredential,
}

pub async fn stepup_finish(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    Json(body): Json<StepUpFinish>,
) -> Result<Json<Done>, ApiError> {
    let user = signed_in(&state, &session)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let ceremony: StepUpCeremony = session
        .remove(STEPUP_KEY)
        .await?
        .ok_or_else(|| ApiError::BadRequest("start the confirmation again".into()))?;
    if ceremony.user_id != user.user_id || ceremony.code != body.code {
        return Err(ApiError::BadRequest("start the confirmation again".into()));
    }
    let challenge = open_challenge_of(
        &state,
        &user,
        &user.groups,
        &body.code,
        ceremony.break_glass,
    )
    .await?;
    let now = clock::now();
    let evidence = step_up_evidence(
        &state,
        &user,
        (&body.credential, &ceremony.state),
        &client,
        ("stepup.failed", &challenge.code),
        now,
    )
    .await?;
    if ceremony.break_glass {
        let actor = Actor {
            account: user.username.clone(),
            groups: user.groups.clone(),
        };
        state
            .elevation()
            .break_glass(
                &challenge.code,
                &actor,
                ceremony.reason.as_deref().unwrap_or_default(),
                evidence,
                now,
            )
            .await?;
        session.cycle_id().await?;
        session.insert(session_keys::AUTH_TIME, now).await?;
        return Ok(Json(Done {
            redirect: format!("/c/{}", challenge.code),
        }));
    }
    confirm_challenge(
        &state,
        &session,
        &user,
        &challenge.code,
        evidence,
        ceremony.reason.as_deref(),
        now,
    )
    .await?;
    Ok(Json(Done {
        redirect: format!("/c/{}", challenge.code),
    }))
}

/// Confirm a challenge with a step-up just verified, whichever way it was done (security key or
/// identity provider): the elevation issues the grant, or hands an approval guardrail's request to
/// its approvers; then the session, whose authentication is fresher now, gets a new id.
pub(super) async fn confirm_challenge(
    state: &AppState,
    session: &Session,
    user: &User,
    code: &str,
    evidence: Evidence,
    reason: Option<&str>,
    now: i64,
) -> Result<Confirmed, ApiError> {
    let auth_time = evidence.auth_time;
    let actor = Actor {
        account: user.username.clone(),
        groups: user.groups.clone(),
    };
    let confirmed = state
        .elevation()
        .confirm(code, &actor, evidence, reason, now)
        .await?;
    // A step-up raises the session's privilege: give it a new id.
    session.cycle_id().await?;
    session.insert(session_keys::AUTH_TIME, auth_time).await?;
    Ok(confirmed)
}

/// The challenge if it is open and `user` (with the groups their identity provider asserts) may confirm
/// it: it was theirs, made under another username of theirs, or by a service account they own. For
/// `break_glass`, a request already waiting for its approvers counts as open too.
pub(super) async fn open_challenge_of(
    state: &AppState,
    user: &User,
    groups: &[String],
    code: &str,
    break_glass: bool,
) -> Result<crate::challenges::Challenge, ApiError> {
    crate::identity::authz::authorize(
        Some(user.role),
        crate::identity::authz::Permission::ConfirmOwnChallenge,
    )?;
    if !is_code(code) {
        return Err(ApiError::BadRequest("no challenge has this code".into()));
    }
    let challenge = state
        .store
        .challenge(code)
        .await?
        .ok_or_else(|| ApiError::BadRequest("no challenge has this code".into()))?;
    let subject = &challenge.request.username;
    if state
        .identities
        .authority(&user.username, groups, subject)
        .is_none()
    {
        return Err(ApiError::Forbidden(format!(
            "this request was made by {subject}; only {} can confirm it",
            state.identities.confirmers_of(subject)
        )));
    }
    let now = clock::now();
    if !(challenge.is_open(now) || break_glass && challenge.is_awaiting(now)) {
        return Err(ApiError::Conflict(
            "this challenge was confirmed already or has expired".into(),
        ));
    }
    Ok(challenge)
}

/// Ask `user`'s usable security keys for a step-up; a failure to start is audited as `failed`
/// (kind, subject).
pub(super) async fn start_step_up(
    state: &AppState,
    user: &User,
    failed: (&str, &str),
) -> Result<(serde_json::Value, PasskeyAuthentication), ApiError> {
    let credentials = state.store.credentials_of(&user.user_id).await?;
    if !credentials.iter().any(Credential::usable) {
        return Err(ApiError::Forbidden(
            "your account has no usable passkey to step up with".into(),
        ));
    }
    match state.passkeys.start_stepup(&credentials) {
        Ok(started) => Ok(started),
        Err(e) => {
            let detail = serde_json::json!({ "reason": e.to_string() });
            audit(state, failed.0, &user.username, failed.1, detail).await;
            Err(e.into())
        }
    }
}

/// A step-up by `user` with a security key, verified (an approved key, user verification) and
/// recorded as evidence; a failure is audited as `failed` (kind, subject) and refused.
pub(super) async fn step_up_evidence(
    state: &AppState,
    user: &User,
    (response, ceremony): (&PublicKeyCredential, &PasskeyAuthentication),
    client: &Client,
    failed: (&str, &str),
    now: i64,
) -> Result<Evidence, ApiError> {
    let used = match verify_assertion(state, user, response, ceremony, client).await {
        Ok(used) => used,
        Err(e) => {
            let detail = serde_json::json!({ "reason": e.to_string(), "address": client.address });
            audit(state, failed.0, &user.username, failed.1, detail).await;
            return Err(e);
        }
    };
    // The ceremony offered only approved keys and webauthn-rs holds the assertion to them; this
    // keeps the rule true should either change.
    if !state.passkeys.approval(&used).allows_stepup() {
        return Err(PasskeyError::NoApprovedKey.into());
    }
    Ok(Evidence {
        method: "webauthn".into(),
        account: user.username.clone(),
        credential_id: Some(used.credential_id),
        // Unknown when the authenticator did not disclose its model at registration.
        aaguid: used.aaguid,
        user_verified: true,
        auth_time: now,
        client_address: client.address.clone(),
        user_agent: client.user_agent.clone(),
        ..Evidence::default()
    })
}

/// Verify an assertion against the user's own usable credentials and save the new counter; returns
/// the credential used. A counter that went backwards blocks the credential for good.
pub(super) async fn verify_assertion(
    state: &AppState,
    user: &User,
    response: &PublicKeyCredential,
    ceremony: &PasskeyAuthentication,
    client: &Client,
) -> Result<Credential, ApiError> {
    let result = match state.passkeys.finish_authentication(response, ceremony) {
        Err(PasskeyError::PossibleClone) => {
            let claimed = Passkeys::claimed_credential_id(response);
            block_cloned(state, user, &claimed, client).await?;
            return Err(PasskeyError::PossibleClone.into());
        }
        other => other?,
    };
    let credential = state
        .store
        .credential(&Passkeys::credential_id(&result))
        .await?
        .filter(|c| c.user_id == user.user_id)
        .ok_or(ApiError::Passkey(PasskeyError::NotVerified))?;
    save_use(state, &credential, &result).await?;
    Ok(credential)
}

/// Record a successful assertion (new counter, last use); refuses a credential blocked meanwhile.
pub(super) async fn save_use(
    state: &AppState,
    credential: &Credential,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<(), ApiError> {
    if !credential.usable() {
        return Err(PasskeyError::Blocked.into());
    }
    let passkey =
        Passkeys::updated_passkey(credential, result).unwrap_or_else(|| credential.passkey.clone());
    state
        .store
        .touch_credential(&credential.credential_id, &passkey, clock::now())
        .await?;
    Ok(())
}

/// Block a credential of `user` whose signature counter went backwards, and audit it: the block
/// and its record are one unit of work.
pub(super) async fn block_cloned(
    state: &AppState,
    user: &User,
    credential_id: &str,
    client: &Client,
) -> Result<(), ApiError> {
    let owned = state
        .store
        .credential(credential_id)
        .await?
        .filter(|c| c.user_id == user.user_id);
    let Some(credential) = owned else {
        return Ok(());
    };
    let mut unit = state.store.begin().await?;
    if unit
        .block_credential(credential_id, "counter_regression", clock::now())
        .await?
    {
        unit.append_audit(&AuditEvent::new(
            "passkey.counter_regression",
            &user.username,
            &user.username,
            serde_json::json!({
                "credentialId": credential_id, "name": credential.name, "aaguid": credential.aaguid,
                "address": client.address, "userAgent": client.user_agent,
            }),
        ))
        .await?;
        unit.commit().await?;
    }
    Ok(())
}

/// Refuse a sign-in to a disabled account (after the key was verified, so the answer reveals the
/// state only to the account's holder); audited.
pub(super) async fn refuse_disabled(
    state: &AppState,
    user: &User,
    client: &Client,
) -> Result<(), ApiError> {
    if state.store.disabled_at(&user.user_id).await?.is_none() {
        return Ok(());
    }
    audit(
        state,
        "login.refused",
        &user.username,
        &user.username,
        serde_json::json!({ "reason": "account disabled", "address": client.address }),
    )
    .await;
    Err(ApiError::Forbidden(
        "this account is disabled; ask an administrator".into(),
    ))
}

/// New session id, then the signed-in markers (defeats session fixation).
pub(super) async fn start_session(
    session: &Session,
    user_id: &str,
    now: i64,
) -> Result<(), ApiError> {
    session.cycle_id().await?;
    // A local sign-in on top of an identity-provider session: the provider's identity (and its
    // groups, which own service accounts) must not stay with the local account.
    let _ = session.remove_value(session_keys::OIDC_IDENTITY).await?;
    session.insert(session_keys::USER_ID, user_id).await?;
    session.insert(session_keys::AUTH_TIME, now).await?;
    session.insert(session_keys::LOGIN_TIME, now).await?;
    session
        .insert(session_keys::LOGIN_TIME_MS, clock::now_ms())
        .await?;
    Ok(())
}

pub(super) async fn audit(
    state: &AppState,
    kind: &str,
    actor: &str,
    subject: &str,
    detail: serde_json::Value,
) {
    if let Err(e) = state
        .store
        .append_audit(&AuditEvent::new(kind, actor, subject, detail))
        .await
    {
        tracing::error!(error = %e, kind, "audit append failed");
    }
}

/// Client address and user agent, recorded as evidence.
pub struct Client {
    pub(super) address: Option<String>,
    pub(super) user_agent: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        // Behind a trusted proxy, the forwarded client (finding 10).
        let address = super::client::address_of(&parts.extensions).map(|ip| ip.to_string());
        let headers: &HeaderMap = &parts.headers;
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(300).collect());
        Ok(Client {
            address,
            user_agent,
        })
    }
}
