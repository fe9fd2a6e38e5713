//! Identity: local accounts, their passkeys, sign-in through an OpenID Provider, sessions and the
//! first-admin setup link.

pub mod accounts;
pub mod authenticators;
pub mod authz;
pub mod document;
pub mod mapping;
pub mod models;
pub mod oidc;
pub mod passkeys;
pub mod session;
pub mod setup;

use serde::{Deserialize, Serialize};

/// What a person may do in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Confirms their own challenges.
    Engineer,
    /// Also reviews escalations.
    Approver,
    /// Also edits guardrails and accounts.
    Admin,
    /// Reads history only.
    Auditor,
    /// A stored role this version does not know: grants nothing (a typo or a newer role must not
    /// fall back to something that can read or confirm).
    Unknown,
}

impl Role {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Engineer => "engineer",
            Role::Approver => "approver",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Unknown => "unknown",
        }
    }

    /// Exactly one of the role names, for input that must be right (CLI, configuration).
    pub fn from_name(s: &str) -> Option<Self> {
        [Role::Engineer, Role::Approver, Role::Admin, Role::Auditor]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// From storage; an unknown value is [`Role::Unknown`], which grants nothing.
    pub fn parse(s: &str) -> Self {
        Self::from_name(s).unwrap_or(Role::Unknown)
    }
}

/// A local account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable id (UUID), also the WebAuthn user handle.
    pub user_id: String,
    /// Username; equals the Kubernetes username it confirms challenges for.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Groups, for approvals (a local account's are set by an admin; an identity provider's
    /// account brings those of its token).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A registered WebAuthn credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// base64url credential id.
    pub credential_id: String,
    /// Owner.
    pub user_id: String,
    /// Name given by the owner.
    pub name: String,
    /// webauthn-rs `Passkey` as JSON.
    pub passkey: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_used_at: Option<i64>,
    /// Authenticator model (AAGUID, hyphenated) from the attested credential data; `None` when the
    /// authenticator did not reveal it (all zeros) or it was registered before it was recorded.
    pub aaguid: Option<String>,
    /// Unix seconds the credential was blocked (a signature counter went backwards); never accepted again.
    pub blocked_at: Option<i64>,
}

impl Credential {
    /// Whether the credential may still sign in or step up.
    pub fn usable(&self) -> bool {
        self.blocked_at.is_none()
    }
}

/// The prefix Kubernetes reserves for its own identities (service accounts, nodes, components):
/// refused as a local account, an invitation, an identity-map alias and an OIDC-mapped name.
pub const RESERVED_PREFIX: &str = "system:";

/// Whether a Kubernetes username is one of the reserved `system:` names no person may take.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with(RESERVED_PREFIX)
}

/// Whether a username is acceptable for a local account (it must be a plausible Kubernetes username).
pub fn validate_username(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c))
        && !is_reserved(name);
    if ok {
        Ok(())
    } else {
        Err("use 1–128 letters, digits, '-', '_', '.', '@' or ':' (and not the reserved `system:` prefix)".into())
    }
}
