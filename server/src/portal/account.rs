//! The signed-in person's own passkeys (add after a recent sign-in or a fresh assertion, rename,
//! remove with a fresh assertion) and the usernameless sign-in with a discoverable passkey.
//! Ceremony state lives in the session.

use app::backend::session_keys;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyAuthentication, PublicKeyCredential,
    RegisterPublicKeyCredential,
};

use super::backend::signed_in;
use super::ceremonies::{
    audit, block_cloned, refuse_disabled, save_use, start_session, verify_assertion, Client,
};
use super::error::ApiError;
use crate::clock;
use crate::identity::passkeys::{PasskeyError, Passkeys, RegistrationState};
use crate::identity::{Credential, User};
use crate::state::AppState;
use crate::store::StoreError;

const ADD_KEY: &str = "ceremony.add_passkey";
const REMOVE_KEY: &str = "ceremony.remove_passkey";
const DISCOVERABLE_KEY: &str = "ceremony.discoverable";

/// Longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 60;

/// How long after signing in a key may be added without touching an existing one.
pub const RECENT_SIGN_IN_SECS: i64 = 5 * 60;

/// Session key: an add whose person must first confirm with one of their keys.
const ADD_CONFIRM_KEY: &str = "ceremony.add_passkey_confirm";

/// Why adding this key is allowed (finding 3): a stolen session alone cannot add one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "camelCase")]
enum Freshness {
    /// Signed in within [`RECENT_SIGN_IN_SECS`].
    RecentSignIn {
        #[serde(rename = "signedInAt")]
        signed_in_at: i64,
    },
    /// A fresh user-verified assertion with one of the person's keys.
    Assertion {
        #[serde(rename = "credentialId")]
        credential_id: String,
    },
}

#[derive(Serialize, Deserialize)]
struct AddCeremony {
    user_id: String,
    name: String,
    state: RegistrationState,
    freshness: Freshness,
}

#[derive(Serialize, Deserialize)]
struct AddConfirmCeremony {
    user_id: String,
    name: String,
    state: PasskeyAuthentication,
}

#[derive(Serialize, Deserialize)]
struct RemoveCeremony {
    user_id: String,
    credential_id: String,
    state: PasskeyAuthentication,
}

/// Where the browser goes next, and what to announce.
#[derive(Serialize)]
pub struct Outcome {
    redirect: String,
    message: String,
}

fn outcome(redirect: &str, message: impl Into<String>) -> Json<Outcome> {
    Json(Outcome {
        redirect: redirect.to_owned(),
        message: message.into(),
    })
}

/// A passkey name as given: trimmed, non-empty, at most [`MAX_NAME_CHARS`] characters, no control
/// characters.
pub fn clean_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::BadRequest(
            "give the passkey a name, e.g. \"YubiKey on my keyring\"".into(),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "use at most {MAX_NAME_CHARS} printable characters for the name"
        )));
    }
    Ok(name.to_owned())
}

/// The signed-in local account (an identity-provider session has no passkeys here).
async fn local_user(state: &AppState, session: &Session) -> Result<User, ApiError> {
    let user = signed_in(state, session)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let local = session
        .get::<String>(session_keys::USER_ID)
        .await?
        .is_some_and(|id| id == user.user_id);
    if !local {
        return Err(ApiError::Forbidden(
            "you signed in through your identity provider; its keys are managed there".into(),
        ));
    }
    Ok(user)
}

/// One of the user's credentials, or a 400 that does not say whether it exists for someone else.
async fn own_credential(
    state: &AppState,
    user: &User,
    credential_id: &str,
) -> Result<Credential, ApiError> {
    state
        .store
        .credential(credential_id)
        .await?
        .filter(|c| c.user_id == user.user_id)
        .ok_or_else(|| ApiError::BadRequest("you have no passkey with this id".into()))
}

/// `POST /account/passkeys/add/start`
#[derive(Deserialize)]
pub struct AddStart {
    name: String,
}

/// Registration options when the session signed in recently; otherwise `{"reauthenticate": options}`,
/// an assertion over the person's keys (any of them, sign-in-only ones too) that
/// `/account/passkeys/add/confirm` takes before the new key is registered.
pub async fn add_start(
    State(state): State<AppState>,
    session: Session,
    Json(body): Json<AddStart>,
) -> Result<Response, ApiError> {
    let user = local_user(&state, &session).await?;
    let name = clean_name(&body.name)?;
    let existing = state.store.credentials_of(&user.user_id).await?;
    let login_time = session
        .get::<i64>(session_keys::LOGIN_TIME)
        .await?
        .unwrap_or(0);
    if clock::now() - login_time > RECENT_SIGN_IN_SECS {
        let (options, auth) = state.passkeys.start_authentication(&existing)?;
        session.remove::<AddCeremony>(ADD_KEY).await?;
        session
            .insert(
                ADD_CONFIRM_KEY,
                AddConfirmCeremony {
                    user_id: user.user_id,
                    name,
                    state: auth,
                },
            )
            .await?;
        return Ok(Json(serde_json::json!({ "reauthenticate": options })).into_response());
    }
    let freshness = Freshness::RecentSignIn {
        signed_in_at: login_time,
    };
    registration(&state, &session, &user, name, &existing, freshness).await
}

/// `POST /account/passkeys/add/confirm`: the assertion asked for by `add/start`, then registration
/// options.
#[derive(Deserialize)]
pub struct AddConfirm {
    credential: PublicKeyCredential,
}

pub async fn add_confirm(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    Json(body): Json<AddConfirm>,
) -> Result<Response, ApiError> {
    let user = local_user(&state, &session).await?;
    let ceremony: AddConfirmCeremony = session
        .remove(ADD_CONFIRM_KEY)
        .await?
        .filter(|c: &AddConfirmCeremony| c.user_id == user.user_id)
        .ok_or_else(|| ApiError::BadRequest("start adding the passkey again".into()))?;
    let used = match verify_assertion(&state, &user, &body.credential, &ceremony.state, &client)
        .await
    {
        Ok(used) => used,
        Err(e) => {
            audit(&state, "passkey.add_failed", &user.username, &user.username, serde_json::json!({
                    "reason": format!("confirmation with an existing key failed: {e}"), "address": client.address,
                }))
                .await;
            return Err(e);
        }
    };
    // A user-verified assertion: the session is freshly authenticated.
    session
        .insert(session_keys::AUTH_TIME, clock::now())
        .await?;
    let existing = state.store.credentials_of(&user.user_id).await?;
    let freshness = Freshness::Assertion {
        credential_id: used.credential_id,
    };
    registration(&state, &session, &user, ceremony.name, &existing, freshness).await
}

/// Start registering the new key, remembering why it is allowed.
async fn registration(
    state: &AppState,
    session: &Session,
    user: &User,
    name: String,
    existing: &[Credential],
    freshness: Freshness,
) -> Result<Response, ApiError> {
    let (options, reg) = state.passkeys.start_registration(user, existing)?;
    session
        .insert(
            ADD_KEY,
            AddCeremony {
                user_id: user.user_id.clone(),
                name,
                state: reg,
                freshness,
            },
        )
        .await?;
    Ok(Json(options).into_response())
}

/// `POST /account/passkeys/add/finish`
pub async fn add_finish(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    Json(credential): Json<RegisterPublicKeyCredential>,
) -> Result<Json<Outcome>, ApiError> {
    let user = local_user(&state, &session).await?;
    let ceremony: AddCeremony = session
        .remove(ADD_KEY)
        .await?
        .filter(|c: &AddCeremony| c.user_id == user.user_id)
        .ok_or_else(|| ApiError::BadRequest("start adding the passkey again".into()))?;
    let registered = match state
        .passkeys
        .finish_registration(&credential, &ceremony.state)
    {
        Ok(r) => r,
        Err(e) => {
            audit(
                &state,
                "passkey.add_failed",
                &user.username,
                &user.username,
                serde_json::json!({
                    "reason": e.to_string(), "address": client.address,
                }),
            )
            .await;
            return Err(e.into());
        }
    };
    let now = clock::now();
    state
        .store
        .add_credential(&Credential {
            credential_id: registered.credential_id.clone(),
            user_id: user.user_id.clone(),
            name: ceremony.name.clone(),
            passkey: registered.passkey,
            created_at: now,
            last_used_at: None,
            aaguid: registered.aaguid.clone(),
            blocked_at: None,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                ApiError::Conflict("this passkey is already registered".into())
            }
            other => other.into(),
        })?;
    audit(&state, "passkey.added", &user.username, &user.username, serde_json::json!({
        "credentialId": registered.credential_id, "name": ceremony.name, "aaguid": registered.aaguid,
        "authenticated": ceremony.freshness, "address": client.address, "userAgent": client.user_agent,
    }))
    .await;
    Ok(outcome(
        "/account?done=added",
        format!("Added \u{201c}{}\u{201d}.", ceremony.name),
    ))
}

/// `POST /account/passkeys/rename`
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rename {
    credential_id: String,
    name: String,
}

pub async fn rename(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    Json(body): Json<Rename>,
) -> Result<Json<Outcome>, ApiError> {
    let user = local_user(&state, &session).await?;
    let name = clean_name(&body.name)?;
    let before = own_credential(&state, &user, &body.credential_id).await?;
    if !state
        .store
        .rename_credential(&user.user_id, &body.credential_id, &name)
        .await?
    {
        return Err(ApiError::BadRequest(
            "you have no passkey with this id".into(),
        ));
    }
    audit(&state, "passkey.renamed", &user.username, &user.username, serde_json::json!({
        "credentialId": body.credential_id, "from": before.name, "to": name, "address": client.address,
    }))
    .await;
    Ok(outcome(
        "/account?done=renamed",
        format!("Renamed to \u{201c}{name}\u{201d}."),
    ))
}

/// `POST /account/passkeys/remove/start`: removal is confirmed with a fresh assertion.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveStart {
    credential_id: String,
}

pub async fn remove_start(
    State(state): State<AppState>,
    session: Session,
    Json(body): Json<RemoveStart>,
) -> Result<Response, ApiError> {
    let user = local_user(&state, &session).await?;
    own_credential(&state, &user, &body.credential_id).await?;
    let credentials = state.store.credentials_of(&user.user_id).await?;
    // Checked again atomically on removal; here it spares a pointless key touch.
    let others = credentials
        .iter()
        .filter(|c| c.usable() && c.credential_id != body.credential_id)
        .count();
    if others == 0 {
        return Err(ApiError::Conflict(last_one()));
    }
    let (options, auth) = state.passkeys.start_authentication(&credentials)?;
    session
        .insert(
            REMOVE_KEY,
            RemoveCeremony {
                user_id: user.user_id,
                credential_id: body.credential_id,
                state: auth,
            },
        )
        .await?;
    Ok(Json(options).into_response())
}

fn last_one() -> String {
    "this is your last usable passkey; add another one before removing it, or you could not sign in again".into()
}

/// `POST /account/passkeys/remove/finish`
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveFinish {
    credential_id: String,
    credential: PublicKeyCredential,
}

pub async fn remove_finish(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    Json(body): Json<RemoveFinish>,
) -> Result<Json<Outcome>, ApiError> {
    let user = local_user(&state, &session).await?;
    let ceremony: RemoveCeremony = session
        .remove(REMOVE_KEY)
        .await?
        .filter(|c: &RemoveCeremony| {
            c.user_id == user.user_id && c.credential_id == body.credential_id
        })
        .ok_or_else(|| ApiError::BadRequest("start removing the passkey again".into()))?;
    let target = own_credential(&state, &user, &ceremony.credential_id).await?;
    let used = verify_assertion(&state, &user, &body.credential, &ceremony.state, &client).await?;
    let now = clock::now();
    // The assertion was a step-up: the session is freshly authenticated.
    session.insert(session_keys::AUTH_TIME, now).await?;
    if !state
        .store
        .remove_credential(&user.user_id, &ceremony.credential_id)
        .await?
    {
        return Err(ApiError::Conflict(last_one()));
    }
    audit(&state, "passkey.removed", &user.username, &user.username, serde_json::json!({
        "credentialId": target.credential_id, "name": target.name, "confirmedWith": used.credential_id,
        "address": client.address, "userAgent": client.user_agent,
    }))
    .await;
    Ok(outcome(
        "/account?done=removed",
        format!("Removed \u{201c}{}\u{201d}.", target.name),
    ))
}

/// `POST /auth/login/passkey/start`: sign in without a username (discoverable credential).
pub async fn discoverable_start(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, ApiError> {
    let (options, auth) = state.passkeys.start_discoverable()?;
    session.insert(DISCOVERABLE_KEY, auth).await?;
    Ok(Json(options).into_response())
}

/// `POST /auth/login/passkey/finish`
pub async fn discoverable_finish(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    Json(response): Json<PublicKeyCredential>,
) -> Result<Json<Outcome>, ApiError> {
    let ceremony: DiscoverableAuthentication = session
        .remove(DISCOVERABLE_KEY)
        .await?
        .ok_or_else(|| ApiError::BadRequest("start signing in again".into()))?;
    // One answer for every way the credential can be unknown, so it reveals nothing.
    let unknown = || ApiError::Passkey(PasskeyError::Unknown);
    let (user_id, credential_id) = state.passkeys.identify_discoverable(&response)?;
    let credential = state
        .store
        .credential(&credential_id)
        .await?
        .filter(|c| c.user_id == user_id)
        .ok_or_else(unknown)?;
    let user = state
        .store
        .user_by_id(&user_id)
        .await?
        .ok_or_else(unknown)?;
    let result = match state
        .passkeys
        .finish_discoverable(&response, ceremony, &credential)
    {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, PasskeyError::PossibleClone) {
                block_cloned(&state, &user, &credential_id, &client).await?;
            }
            audit(&state, "login.failed", &user.username, &user.username, serde_json::json!({
                "reason": e.to_string(), "credentialId": credential_id, "address": client.address,
            }))
            .await;
            return Err(e.into());
        }
    };
    save_use(&state, &credential, &result).await?;
    refuse_disabled(&state, &user, &client).await?;
    let now = clock::now();
    start_session(&session, &user.user_id, now).await?;
    audit(&state, "login", &user.username, &user.username, serde_json::json!({
        "method": "webauthn", "discoverable": true, "credentialId": Passkeys::credential_id(&result),
        "address": client.address, "userAgent": client.user_agent,
    }))
    .await;
    Ok(outcome("/", "Signed in."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passkey_names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("  YubiKey 5C  ").unwrap(), "YubiKey 5C");
        assert!(clean_name("   ").is_err());
        assert!(clean_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(clean_name("bad\u{0007}name").is_err());
        assert_eq!(
            clean_name(&"é".repeat(MAX_NAME_CHARS))
                .unwrap()
                .chars()
                .count(),
            MAX_NAME_CHARS
        );
    }
}
