//! What the portal shows, shared by server and browser.

use serde::{Deserialize, Serialize};

/// The person signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// Username (their Kubernetes username).
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// engineer, approver, admin or auditor.
    pub role: String,
    /// Signed in through the identity provider (so steps up there too).
    #[serde(default)]
    pub oidc: bool,
    /// Groups the identity provider asserted (service-account ownership goes by them).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// One line of the object diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffLine {
    /// ' ' unchanged, '+' added, '-' removed, '@' a hunk header or a note between hunks.
    pub sign: char,
    /// The text.
    pub text: String,
}

/// A grant as shown after confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    /// Grant id.
    pub id: String,
    /// request, object or namespace.
    pub scope: String,
    /// What the scope means in words.
    pub scope_text: String,
    /// Expiry, formatted.
    pub expires_at: String,
    /// "1 use", "3 uses left", "unlimited".
    pub uses: String,
    /// The signed token (JWS).
    pub token: String,
}

/// A challenge as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeView {
    /// Code.
    pub code: String,
    /// pending, granted, expired.
    pub status: String,
    /// Guardrail name.
    pub guardrail: String,
    /// Why the guardrail asks.
    pub message: String,
    /// Kubernetes username.
    pub username: String,
    /// Operation.
    pub operation: String,
    /// `deployments.apps`.
    pub resource: String,
    /// Kind.
    pub kind: String,
    /// Namespace or empty.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Cluster.
    pub cluster: String,
    /// Created, formatted.
    pub created_at: String,
    /// Expiry, formatted.
    pub expires_at: String,
    /// What the grant will cover.
    pub scope_text: String,
    /// Object diff (old → new).
    pub diff: Vec<DiffLine>,
    /// The diff was cut at the page's bounds; the full objects are a download away.
    #[serde(default)]
    pub diff_truncated: bool,
    /// The request's options the grant binds (`propagationPolicy: Orphan`), one per line.
    #[serde(default)]
    pub options: Vec<String>,
    /// The grant, once issued.
    pub grant: Option<GrantView>,
    /// Confirm through the identity provider (an OIDC session) rather than a security key.
    #[serde(default)]
    pub confirm_with_idp: bool,
}

/// What the challenge page may show to this viewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChallengeAccess {
    /// Not signed in.
    SignInRequired,
    /// Signed in as someone else.
    NotYours {
        /// Who may confirm it, in words: the requester, or a service account's owners.
        owner: String,
    },
    /// No such challenge.
    NotFound,
    /// The owner.
    Owner(Box<ChallengeView>),
}

/// What an unused setup link creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupInvitation {
    /// engineer, approver, admin or auditor.
    pub role: String,
    /// The username the account must have, when the admin fixed it.
    pub username: Option<String>,
}

/// A row in "your challenges".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeSummary {
    /// Code.
    pub code: String,
    /// Status.
    pub status: String,
    /// Guardrail.
    pub guardrail: String,
    /// `UPDATE deployments.apps payments/api`.
    pub title: String,
    /// Created, formatted.
    pub created_at: String,
}

/// A live grant as the admin "Grants" page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRow {
    /// Grant id.
    pub id: String,
    /// Kubernetes username it admits.
    pub username: String,
    /// Guardrail it satisfies.
    pub guardrail: String,
    /// request, object or namespace.
    pub scope: String,
    /// What it covers, in words (digest, object or namespace).
    pub target: String,
    /// Expiry, formatted.
    pub expires_at: String,
    /// Uses left, in words.
    pub uses: String,
}

/// A passkey as its owner sees it on the account page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyView {
    /// Credential id (base64url).
    pub id: String,
    /// Name given by the owner.
    pub name: String,
    /// Registered, formatted.
    pub created_at: String,
    /// Last sign-in or step-up, formatted; `None` if never used.
    pub last_used_at: Option<String>,
    /// When it was blocked as a possible clone, formatted; `None` while usable.
    pub blocked_at: Option<String>,
    /// Authenticator model (AAGUID), when the authenticator disclosed it.
    pub aaguid: Option<String>,
    /// What the administrator's authenticator allow-list says about this key.
    pub approval: KeyApproval,
}

/// A key under the authenticator allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyApproval {
    /// There is no allow-list.
    Unrestricted,
    /// An approved model, proven by its vendor's attestation; the model's name.
    Approved(String),
    /// Not on the list: signs in, cannot confirm step-ups.
    NotApproved,
}

/// What the account page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountAccess {
    /// Not signed in.
    SignInRequired,
    /// Signed in through the identity provider: no local passkeys.
    IdentityProvider,
    /// A local account and its passkeys, oldest first.
    Local {
        /// The passkeys.
        keys: Vec<PasskeyView>,
        /// With an authenticator allow-list, the approved models' names.
        approved_models: Option<Vec<String>>,
    },
}
