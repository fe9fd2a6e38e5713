//! One-time setup links: the first admin's, printed on first start, and invitations an admin makes
//! for further local accounts (`countersign user invite`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Role;

/// How long a setup link works.
pub const SETUP_TTL_SECS: i64 = 24 * 3600;

/// What a setup link creates: an account with this role, and this username when the admin fixed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Role of the new account.
    pub role: Role,
    /// The Kubernetes username the account must have; `None` lets the person choose.
    pub username: Option<String>,
}

impl Invitation {
    /// The first-admin link.
    pub fn first_admin() -> Self {
        Self {
            role: Role::Admin,
            username: None,
        }
    }

    /// Whether `username` may be registered with this link.
    pub fn admits(&self, username: &str) -> bool {
        self.username.as_deref().is_none_or(|u| u == username)
    }
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
