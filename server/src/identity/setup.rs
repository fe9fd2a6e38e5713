//! One-time setup links: the first admin's, printed on first start, and invitations an admin makes
//! for further local accounts (`countersign user invite`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::accounts::AccountError;
use super::{validate_username, Role};
use crate::audit::AuditEvent;
use crate::clock;
use crate::store::Store;

/// How long a setup link works.
pub const SETUP_TTL_SECS: i64 = 24 * 3600;

/// What a setup link creates: an account with this role and this username, both fixed by whoever
/// made the link (an admin, or the operator for the first admin), never by the person who opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Role of the new account.
    pub role: Role,
    /// The Kubernetes username the account gets.
    pub username: String,
    /// Groups the account gets (for approvals).
    pub groups: Vec<String>,
}

impl Invitation {
    /// The first-admin link, for the username the operator named (`serve --first-admin`).
    pub fn first_admin(username: &str) -> Self {
        Self {
            role: Role::Admin,
            username: username.to_owned(),
            groups: Vec::new(),
        }
    }

    /// Whether `username` may be registered with this link.
    pub fn admits(&self, username: &str) -> bool {
        self.username == username
    }
}

/// What `serve` did about the first-admin link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstAdmin {
    /// Accounts exist: nothing to do.
    NotNeeded,
    /// OIDC maps a group to admin, so admins sign in there; no link is made.
    ByIdentityProvider,
    /// No username was given (`--first-admin`), so no link was made.
    NoUsername,
    /// A first-admin link was made before (printed once); it is not made again.
    MadeBefore,
    /// A new link: its token, printed once.
    Made(String),
}

/// Make the first-admin link for `username` if the store has no account, none was made before and
/// no identity-provider group maps to admin; audited.
pub async fn first_admin_link(
    store: &dyn Store,
    username: Option<&str>,
    oidc_admins: bool,
) -> Result<FirstAdmin, AccountError> {
    if store.count_users().await? > 0 {
        return Ok(FirstAdmin::NotNeeded);
    }
    if oidc_admins {
        return Ok(FirstAdmin::ByIdentityProvider);
    }
    let Some(username) = username else {
        return Ok(FirstAdmin::NoUsername);
    };
    validate_username(username).map_err(|m| AccountError::BadUsername(username.to_owned(), m))?;
    let token = new_token();
    let hash = token_hash(&token);
    let now = clock::now();
    let invitation = Invitation::first_admin(username);
    if !store
        .put_first_admin_link(&hash, now, now + SETUP_TTL_SECS, &invitation)
        .await?
    {
        return Ok(FirstAdmin::MadeBefore);
    }
    let event = AuditEvent::new(
        "account.first_admin_link",
        "serve",
        username,
        serde_json::json!({ "role": "admin", "link": &hash[..12], "expiresAt": now + SETUP_TTL_SECS }),
    );
    store.append_audit(&event).await?;
    Ok(FirstAdmin::Made(token))
}

/// A fresh random token (256 bits) for the setup link.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Only a hash of the token is stored, so a database dump cannot create admins.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
