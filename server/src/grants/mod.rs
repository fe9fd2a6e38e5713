//! Grants: short-lived, signed permissions bound to a request, an object or a namespace.

pub mod cache;
pub mod in_force;
mod signing;

use serde::{Deserialize, Serialize};

use crate::challenges::Challenge;
use crate::policy::GrantScope;

pub use cache::{CoveringGrant, GrantCache, LiveGrant};
pub use signing::{GrantClaims, GrantRejected, GrantSigner, SigningError, ADMISSION_AUDIENCE};

/// Proof of the step-up behind a grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// `webauthn` or `oidc`.
    pub method: String,
    /// Local account or OIDC subject that stepped up.
    pub account: String,
    /// WebAuthn credential id (base64url).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// Whether the authenticator verified the user (PIN, biometrics).
    pub user_verified: bool,
    /// Unix seconds of the authentication.
    pub auth_time: i64,
    /// Client address, as seen by the portal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    /// Client user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// `acr` of the identity provider's ID token (method `oidc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// `amr` of the identity provider's ID token (method `oidc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// AAGUID (authenticator model) of the WebAuthn credential, when the authenticator disclosed
    /// it at registration (method `webauthn`; absent means unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aaguid: Option<String>,
    /// Why the requester asked (approval guardrails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The approvers who countersigned, in the order they did (approval guardrails).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApproverEvidence>,
    /// Issued by break glass: the requester approved their own request in an emergency.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
}

/// One approver's countersignature: who, as a member of which groups, why, and their own step-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApproverEvidence {
    /// Account that approved.
    pub approver: String,
    /// Their groups that counted.
    pub groups: Vec<String>,
    /// What they said.
    pub reason: String,
    /// Unix seconds.
    pub decided_at: i64,
    /// Their step-up.
    pub step_up: Evidence,
}

/// A grant as stored and as checked by the webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// Unique id (`jti` of the token).
    pub id: String,
    /// Challenge it was issued for.
    pub challenge_code: String,
    /// Kubernetes username it admits.
    pub username: String,
    /// Guardrail it satisfies.
    pub guardrail: String,
    /// Cluster.
    pub cluster: String,
    /// What it covers.
    pub scope: GrantScope,
    /// Request digest (scope `request`).
    pub digest: String,
    /// Namespace of the request (scopes `object`, `namespace`).
    pub namespace: String,
    /// [`object_key`] of the request (scope `object`).
    pub object_key: String,
    /// Uses left; `None` is unlimited within the ttl.
    pub uses_left: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds, once revoked.
    pub revoked_at: Option<i64>,
    /// Who revoked it (a username, or `cli` for the command line).
    pub revoked_by: Option<String>,
    /// The signed JWS.
    pub token: String,
    /// How the step-up was done.
    pub evidence: Evidence,
    /// The guardrail version that decided its challenge (empty before versions).
    pub policy_version: String,
}

/// What the webhook compares against a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTarget<'a> {
    /// Requesting user.
    pub username: &'a str,
    /// Guardrail asking for a grant.
    pub guardrail: &'a str,
    /// Cluster.
    pub cluster: &'a str,
    /// Request digest.
    pub digest: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// [`object_key`] of the request.
    pub object_key: &'a str,
}

/// `OPERATION group/resource/subresource namespace/name`: what an `object`-scoped grant covers.
///
/// Operation and subresource are part of it, so a grant for `kubectl port-forward` does not also
/// allow `kubectl exec` into the same pod, nor a grant for a delete an update.
pub fn object_key(
    operation: &str,
    group: &str,
    resource: &str,
    subresource: &str,
    namespace: &str,
    name: &str,
) -> String {
    format!("{operation} {group}/{resource}/{subresource} {namespace}/{name}")
}

impl Grant {
    /// A grant for a confirmed challenge (its token is signed afterwards).
    pub fn for_challenge(challenge: &Challenge, evidence: Evidence, now: i64) -> Self {
        let r = &challenge.request;
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            challenge_code: challenge.code.clone(),
            username: r.username.clone(),
            guardrail: challenge.guardrail.clone(),
            cluster: challenge.cluster.clone(),
            scope: challenge.scope,
            digest: challenge.digest.clone(),
            namespace: r.namespace.clone(),
            object_key: object_key(
                &r.operation,
                &r.api_group,
                &r.resource,
                &r.subresource,
                &r.namespace,
                &r.name,
            ),
            uses_left: challenge.grant_uses.map(i64::from),
            created_at: now,
            expires_at: now + challenge.grant_ttl_secs,
            revoked_at: None,
            revoked_by: None,
            token: String::new(),
            evidence,
            policy_version: challenge.policy_version.clone(),
        }
    }

    /// Whether this grant admits `target` at `now` (uses are checked when consumed).
    pub fn covers(&self, target: &GrantTarget<'_>, now: i64) -> bool {
        let alive = self.revoked_at.is_none()
            && now < self.expires_at
            && self.uses_left.is_none_or(|n| n > 0);
        let same_subject = self.username == target.username
            && self.guardrail == target.guardrail
            && self.cluster == target.cluster;
        let in_scope = match self.scope {
            GrantScope::Request => self.digest == target.digest,
            GrantScope::Object => self.object_key == target.object_key,
            GrantScope::Namespace => {
                !self.namespace.is_empty() && self.namespace == target.namespace
            }
        };
        alive && same_subject && in_scope
    }
}
