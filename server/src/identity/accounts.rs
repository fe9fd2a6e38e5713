//! Local accounts managed by an admin: invitations with a role and a fixed username, role changes,
//! disabling and enabling. All are audited.

use super::setup::{new_token, token_hash, Invitation};
use super::{validate_username, Role};
use crate::audit::AuditEvent;
use crate::clock;
use crate::store::{Store, StoreError};

/// How long an invitation works.
pub const INVITATION_TTL_SECS: i64 = 72 * 3600;

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The username cannot be a local account's.
    #[error("username {0:?}: {1}")]
    BadUsername(String, String),
    /// An account with that username exists already.
    #[error(
        "an account named {0} exists already; change its role with `countersign user set-role`"
    )]
    Exists(String),
    /// No account has that username.
    #[error("no account is named {0}")]
    Unknown(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Make a one-time setup link token for a new account with `invitation`'s role (and username).
pub async fn invite(
    store: &dyn Store,
    invitation: &Invitation,
    actor: &str,
) -> Result<String, AccountError> {
    let name = &invitation.username;
    validate_username(name).map_err(|m| AccountError::BadUsername(name.clone(), m))?;
    if store.user_by_username(name).await?.is_some() {
        return Err(AccountError::Exists(name.clone()));
    }
    let token = new_token();
    let hash = token_hash(&token);
    let now = clock::now();
    store
        .put_invitation(&hash, now, now + INVITATION_TTL_SECS, invitation)
        .await?;
    // The token itself never reaches the audit log; a prefix of its hash identifies it.
    let event = AuditEvent::new(
        "account.invited",
        actor,
        &invitation.username,
        serde_json::json!({
            "role": invitation.role.as_str(), "link": &hash[..12], "expiresAt": now + INVITATION_TTL_SECS,
        }),
    );
    store.append_audit(&event).await?;
    Ok(token)
}

/// Give the account `username` another role.
pub async fn set_role(
    store: &dyn Store,
    username: &str,
    role: Role,
    actor: &str,
) -> Result<Role, AccountError> {
    let before = store
        .user_by_username(username)
        .await?
        .ok_or_else(|| AccountError::Unknown(username.to_owned()))?
        .role;
    if !store.set_role(username, role).await? {
        return Err(AccountError::Unknown(username.to_owned()));
    }
    let event = AuditEvent::new(
        "account.role_changed",
        actor,
        username,
        serde_json::json!({ "from": before.as_str(), "to": role.as_str() }),
    );
    store.append_audit(&event).await?;
    Ok(before)
}

/// Disable (`disabled`) or enable the account `username`; returns whether anything changed. A
/// disabled account cannot sign in, its sessions are refused and it confirms nothing.
pub async fn set_disabled(
    store: &dyn Store,
    username: &str,
    disabled: bool,
    actor: &str,
) -> Result<bool, AccountError> {
    let user = store
        .user_by_username(username)
        .await?
        .ok_or_else(|| AccountError::Unknown(username.to_owned()))?;
    let was = store.disabled_at(&user.user_id).await?.is_some();
    if was == disabled {
        return Ok(false);
    }
    let at = disabled.then(clock::now);
    if !store.set_disabled(username, at).await? {
        return Err(AccountError::Unknown(username.to_owned()));
    }
    let kind = if disabled {
        "account.disabled"
    } else {
        "account.enabled"
    };
    let event = AuditEvent::new(kind, actor, username, serde_json::json!({}));
    store.append_audit(&event).await?;
    Ok(true)
}
