//! What the decision log keeps about one review: the request summary, the verdict, and why each
//! guardrail matched or not.

use serde::{Deserialize, Serialize};

/// One logged decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Unix seconds.
    pub at: i64,
    /// AdmissionReview uid.
    pub uid: String,
    /// Cluster.
    pub cluster: String,
    /// Requesting user.
    pub username: String,
    /// CREATE, UPDATE, DELETE, CONNECT.
    pub operation: String,
    /// `deployments.apps/scale`.
    pub resource: String,
    /// Namespace, empty for cluster-scoped.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// Server-side dry run.
    pub dry_run: bool,
    /// Strictest enforced action.
    pub action: String,
    /// allowed, denied, challenged or granted.
    pub outcome: String,
    /// Matched guardrails (name, action, message).
    pub hits: serde_json::Value,
    /// Every guardrail: matched or why not, and the condition's result.
    pub explanations: serde_json::Value,
    /// The guardrail version that decided it.
    #[serde(default)]
    pub policy_version: String,
}
