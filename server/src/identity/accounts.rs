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
    /// A group name that cannot be one.
    #[error("group {0:?}: {1}")]
    BadGroup(String, &'static str),
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
    let invitation = &Invitation {
        groups: clean_groups(&invitation.groups)?,
        ..invitation.clone()
    };
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
            "role": invitation.role.as_str(), "groups": invitation.groups, "link": &hash[..12],
            "expiresAt": now + INVITATION_TTL_SECS,
        }),
    );
    store.append_audit(&event).await?;
    Ok(token)
}

/// Longest group name accepted (Kubernetes puts no limit; identity providers keep them short).
const MAX_GROUP_CHARS: usize = 200;
/// Most groups one account may be given here.
const MAX_GROUPS: usize = 100;

/// Groups as given, trimmed, without repeats, in order; an empty, overlong or `system:` name is
/// refused (those groups are Kubernetes' own, and approving as one would be nobody's decision).
pub fn clean_groups(groups: &[String]) -> Result<Vec<String>, AccountError> {
    let mut out: Vec<String> = Vec::new();
    for g in groups {
        let g = g.trim();
        if g.is_empty() {
            return Err(AccountError::BadGroup(g.to_owned(), "must not be empty"));
        }
        if g.chars().count() > MAX_GROUP_CHARS || g.chars().any(char::is_control) {
            return Err(AccountError::BadGroup(
                g.to_owned(),
                "at most 200 characters, none of them control characters",
            ));
        }
        if super::is_reserved(g) {
            return Err(AccountError::BadGroup(
                g.to_owned(),
                "names starting with `system:` are Kubernetes' own",
            ));
        }
        if !out.iter().any(|o| o == g) {
            out.push(g.to_owned());
        }
    }
    if out.len() > MAX_GROUPS {
        return Err(AccountError::BadGroup(
            out.len().to_string(),
            "at most 100 groups per account",
        ));
    }
    Ok(out)
}

/// Replace the groups of the account `username`; returns the groups it had before. The change
/// and its audit record are one unit of work: neither lands without the other.
pub async fn set_groups(
    store: &dyn Store,
    username: &str,
    groups: &[String],
    actor: &str,
) -> Result<Vec<String>, AccountError> {
    let groups = clean_groups(groups)?;
    let mut unit = store.begin().await?;
    let before = unit
        .set_groups(username, &groups)
        .await?
        .ok_or_else(|| AccountError::Unknown(username.to_owned()))?;
    unit.append_audit(&AuditEvent::new(
        "account.groups_changed",
        actor,
        username,
        serde_json::json!({ "from": before, "to": groups }),
    ))
    .await?;
    unit.commit().await?;
    Ok(before)
}

/// Give the account `username` another role; returns the role it had. The change and its audit
/// record are one unit of work.
pub async fn set_role(
    store: &dyn Store,
    username: &str,
    role: Role,
    actor: &str,
) -> Result<Role, AccountError> {
    let mut unit = store.begin().await?;
    let before = unit
        .set_role(username, role)
        .await?
        .ok_or_else(|| AccountError::Unknown(username.to_owned()))?;
    unit.append_audit(&AuditEvent::new(
        "account.role_changed",
        actor,
        username,
        serde_json::json!({ "from": before.as_str(), "to": role.as_str() }),
    ))
    .await?;
    unit.commit().await?;
    Ok(before)
}

/// Disable (`disabled`) or enable the account `username`; returns whether anything changed. A
/// disabled account cannot sign in, its sessions are refused and it confirms nothing. The change
/// and its audit record are one unit of work.
pub async fn set_disabled(
    store: &dyn Store,
    username: &str,
    disabled: bool,
    actor: &str,
) -> Result<bool, AccountError> {
    let mut unit = store.begin().await?;
    let at = disabled.then(clock::now);
    let before = unit
        .set_disabled(username, at)
        .await?
        .ok_or_else(|| AccountError::Unknown(username.to_owned()))?;
    if before.is_some() == disabled {
        // Nothing changes (and a disabled account keeps the time it was disabled).
        return Ok(false);
    }
    let kind = if disabled {
        "account.disabled"
    } else {
        "account.enabled"
    };
    unit.append_audit(&AuditEvent::new(
        kind,
        actor,
        username,
        serde_json::json!({}),
    ))
    .await?;
    unit.commit().await?;
    Ok(true)
}
