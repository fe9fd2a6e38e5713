//! Challenges: a denied guarded request waiting for its requester to step up.

mod approval;
pub mod cache;
mod code;
mod limits;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admission::AdmissionRequest;
use crate::policy::{ApprovalPolicy, GrantScope, Guardrail};

pub use approval::{ApprovalCase, ApprovalDecision, ApprovalRecord, Closed};
pub use cache::{ChallengeCache, OpenChallenge};
pub use code::{is_code, new_code};
pub use limits::{ChallengeLimits, ChallengeUsage, LimitReached};

/// How long a challenge link stays usable.
pub const CHALLENGE_TTL_SECS: i64 = 15 * 60;

/// Where a challenge is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeStatus {
    /// Waiting for the requester's step-up.
    Pending,
    /// Confirmed by the requester, waiting for approvers (approval guardrails).
    Awaiting,
    /// A grant was issued.
    Granted,
    /// An approver said no.
    Rejected,
    /// The requester took it back.
    Withdrawn,
    /// Nobody confirmed (or approved) it in time.
    Expired,
}

impl ChallengeStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeStatus::Pending => "pending",
            ChallengeStatus::Awaiting => "awaiting",
            ChallengeStatus::Granted => "granted",
            ChallengeStatus::Rejected => "rejected",
            ChallengeStatus::Withdrawn => "withdrawn",
            ChallengeStatus::Expired => "expired",
        }
    }

    /// From storage; unknown values read as expired so they can never be confirmed.
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => ChallengeStatus::Pending,
            "awaiting" => ChallengeStatus::Awaiting,
            "granted" => ChallengeStatus::Granted,
            "rejected" => ChallengeStatus::Rejected,
            "withdrawn" => ChallengeStatus::Withdrawn,
            _ => ChallengeStatus::Expired,
        }
    }

    /// Still going somewhere: a retry finds it rather than opening another.
    pub fn is_open(self) -> bool {
        matches!(self, ChallengeStatus::Pending | ChallengeStatus::Awaiting)
    }
}

/// `deployments.apps/scale`: resource, group and subresource as kubectl users read them.
pub fn resource_label(group: &str, resource: &str, subresource: &str) -> String {
    let mut label = resource.to_owned();
    if !group.is_empty() {
        label = format!("{label}.{group}");
    }
    if !subresource.is_empty() {
        label = format!("{label}/{subresource}");
    }
    label
}

/// What was attempted, as shown on the challenge page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptedRequest {
    /// Kubernetes username.
    pub username: String,
    /// Groups of the user at the time.
    pub groups: Vec<String>,
    /// CREATE, UPDATE, DELETE, CONNECT.
    pub operation: String,
    /// API group.
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource, empty if none.
    pub subresource: String,
    /// Kind of object.
    pub kind: String,
    /// Namespace, empty if cluster-scoped.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// New object.
    pub object: Option<Value>,
    /// Old object.
    pub old_object: Option<Value>,
    /// The operation's options (DeleteOptions, CreateOptions, ...), bound by the digest too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

impl AttemptedRequest {
    /// Summarise an admission request, with a Secret's values redacted (the digest is computed
    /// from the request itself, before this).
    pub fn from_request(request: &AdmissionRequest) -> Self {
        let (object, old_object) = crate::admission::redact::redacted_objects(request);
        Self {
            username: request.user_info.username.clone(),
            groups: request.user_info.groups.clone(),
            operation: request.operation.as_str().to_owned(),
            api_group: request.resource.group.clone(),
            api_version: request.resource.version.clone(),
            resource: request.resource.resource.clone(),
            subresource: request.sub_resource.clone(),
            kind: request.kind.kind.clone(),
            namespace: request.namespace.clone(),
            name: request.name.clone(),
            object,
            old_object,
            options: request.options.clone(),
        }
    }

    /// `deployments.apps/scale`-style resource label.
    pub fn resource_label(&self) -> String {
        resource_label(&self.api_group, &self.resource, &self.subresource)
    }
}

/// A challenge as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Challenge {
    /// Short code in the link (`/c/K7Q2M9XD`).
    pub code: String,
    /// Digest of the request it was made for.
    pub digest: String,
    /// Cluster name.
    pub cluster: String,
    /// Guardrail that asked for the step-up; several, as [`guardrail_set`] joins them, when one
    /// request tripped several guardrails that each need a grant.
    pub guardrail: String,
    /// Why, in the guardrail's words.
    pub message: String,
    /// What was attempted.
    pub request: AttemptedRequest,
    /// Scope of the grant it will yield.
    pub scope: GrantScope,
    /// Lifetime of that grant.
    pub grant_ttl_secs: i64,
    /// Uses of that grant (`None` = unlimited within the ttl).
    pub grant_uses: Option<u32>,
    /// How recent the authentication must be, in seconds.
    pub freshness_secs: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// State.
    pub status: ChallengeStatus,
    /// The grant once issued.
    pub grant_id: Option<String>,
    /// Approvers and reasons, for an approval guardrail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalCase>,
    /// The grant key's seal over what policy decided (`elevation::seal`); a challenge without a
    /// valid one is never confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
    /// The guardrail version that decided it (empty for challenges opened before versions).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy_version: String,
}

/// Who may hear of a challenge: its subject and the groups its approval rule names. Neither
/// changes in a challenge's life (both are sealed), so it may be kept as long as is useful.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    /// Kubernetes username of the request.
    pub subject: String,
    /// The approval rule's group lists (empty for a step-up guardrail).
    pub rule_groups: Vec<Vec<String>>,
}

/// The names of several guardrails as one challenge keeps them: sorted, each once, joined by `,`
/// (a guardrail name cannot hold one), so the same set always gives the same key.
pub fn guardrail_set<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

/// The scope a grant for `request` gets: the guardrail's, unless the request cannot name what it
/// reaches. An unnamed create (`generateName`) has no object to bind to (an object grant would
/// cover every create of that kind in the namespace), and a cluster-scoped request has no
/// namespace; both fall back to the request itself.
pub fn effective_scope(scope: GrantScope, request: &AdmissionRequest) -> GrantScope {
    match scope {
        GrantScope::Object if request.name.is_empty() => GrantScope::Request,
        GrantScope::Namespace if request.namespace.is_empty() => GrantScope::Request,
        scope => scope,
    }
}

impl Challenge {
    /// A new pending challenge for a request denied by `guardrails`: one, or every guardrail that
    /// needs a grant for it, so that one step-up (and one round of approvals) satisfies them all.
    /// Its grant takes the strictest of their terms: the narrowest scope, the shortest ttl, the
    /// fewest uses, the most recent authentication, and every approval rule at once.
    pub fn new(
        cluster: &str,
        digest: String,
        guardrails: &[&Guardrail],
        message: String,
        request: &AdmissionRequest,
        now: i64,
    ) -> Self {
        let rules: Vec<&ApprovalPolicy> = guardrails
            .iter()
            .filter_map(|g| g.action.approval.as_ref())
            .collect();
        let approval = ApprovalPolicy::all_of(&rules).map(|rule| ApprovalCase {
            rule,
            reason: None,
            confirmed_by: None,
            requester_evidence: None,
            confirmed_at: None,
            closed: None,
        });
        let terms = guardrails.iter().map(|g| &g.action);
        Self {
            code: new_code(),
            digest,
            cluster: cluster.to_owned(),
            guardrail: guardrail_set(guardrails.iter().map(|g| g.id.as_str())),
            message,
            request: AttemptedRequest::from_request(request),
            scope: terms
                .clone()
                .map(|a| effective_scope(a.grant.scope, request))
                .min()
                .unwrap_or(GrantScope::Request),
            grant_ttl_secs: terms
                .clone()
                .map(|a| a.grant.ttl.seconds() as i64)
                .min()
                .unwrap_or(0),
            grant_uses: terms.clone().filter_map(|a| a.grant.uses).min(),
            freshness_secs: terms
                .map(|a| a.freshness.seconds() as i64)
                .min()
                .unwrap_or(0),
            created_at: now,
            // An approval may wait as long as its guardrails let approvers take.
            expires_at: now
                + approval
                    .as_ref()
                    .map_or(CHALLENGE_TTL_SECS, |a| a.rule.timeout_secs),
            status: ChallengeStatus::Pending,
            grant_id: None,
            approval,
            seal: None,
            policy_version: String::new(),
        }
    }

    /// The guardrails it stands for (several when one request tripped several).
    pub fn guardrails(&self) -> impl Iterator<Item = &str> {
        self.guardrail.split(',')
    }

    /// Its guardrails as people read them: `a, b`.
    pub fn guardrails_label(&self) -> String {
        self.guardrail.replace(',', ", ")
    }

    /// Whether approvers must countersign it.
    pub fn needs_approval(&self) -> bool {
        self.approval.is_some()
    }

    /// The status as of `now`: a pending challenge past its expiry reads as expired.
    pub fn status_at(&self, now: i64) -> ChallengeStatus {
        if self.status.is_open() && now >= self.expires_at {
            ChallengeStatus::Expired
        } else {
            self.status
        }
    }

    /// Whether it can still be confirmed at `now`.
    pub fn is_open(&self, now: i64) -> bool {
        self.status == ChallengeStatus::Pending && now < self.expires_at
    }

    /// Whether approvers can still decide it at `now`.
    pub fn is_awaiting(&self, now: i64) -> bool {
        self.status == ChallengeStatus::Awaiting && now < self.expires_at
    }
}
