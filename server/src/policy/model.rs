//! The validated guardrail model the engine works on. Raw YAML shapes live in `load.rs`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{CelExpression, PolicyDuration};

/// A guardrail's name: a DNS-1123 subdomain, as for any Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct GuardrailName(String);

impl GuardrailName {
    /// Parse a name: lowercase letters, digits, `-` and `.`, starting and ending alphanumeric.
    pub fn parse(name: &str) -> Result<Self, String> {
        let ok_edge =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && ok_edge(name.chars().next())
            && ok_edge(name.chars().last());
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!(
                "`{name}` is not a valid name (lowercase letters, digits, '-' and '.', at most 253 characters)"
            ))
        }
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GuardrailName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a guardrail acts or only records what it would have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Decisions take effect.
    Enforce,
    /// Decisions are recorded and the request admitted.
    DryRun,
}

/// An admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// Object creation.
    Create,
    /// Object update.
    Update,
    /// Object deletion.
    Delete,
    /// `pods/exec`, `pods/attach`, `pods/portforward` and other connect subresources.
    Connect,
}

impl Operation {
    /// The operation as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// What a guardrail does when it matches, ordered from mildest to strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionKind {
    /// Nothing matched.
    Allow,
    /// Admit and record.
    Audit,
    /// Admit with a warning shown to the client.
    Warn,
    /// Admit only with a grant earned by a fresh step-up.
    StepUp,
    /// Admit only with a grant countersigned by approvers.
    Approval,
    /// Refuse.
    Deny,
}

impl ActionKind {
    /// The action as the policy format spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Allow => "allow",
            ActionKind::Audit => "audit",
            ActionKind::Warn => "warn",
            ActionKind::StepUp => "stepUp",
            ActionKind::Approval => "approval",
            ActionKind::Deny => "deny",
        }
    }

    /// Whether this action needs a grant before the request is admitted.
    pub fn needs_grant(self) -> bool {
        matches!(self, ActionKind::StepUp | ActionKind::Approval)
    }
}

/// What a grant covers once issued, narrowest first (so `min` is the narrower of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GrantScope {
    /// Exactly the request that was challenged (its digest).
    Request,
    /// Any change to the same object by the same user under the same guardrail.
    Object,
    /// Any change in the same namespace by the same user under the same guardrail.
    Namespace,
}

impl GrantScope {
    /// The scope as the policy format spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantScope::Request => "request",
            GrantScope::Object => "object",
            GrantScope::Namespace => "namespace",
        }
    }

    /// Parse the policy spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "request" => Some(GrantScope::Request),
            "object" => Some(GrantScope::Object),
            "namespace" => Some(GrantScope::Namespace),
            _ => None,
        }
    }
}

/// How a grant earned under a guardrail is shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantPolicy {
    /// What the grant covers.
    pub scope: GrantScope,
    /// How long it lives.
    pub ttl: PolicyDuration,
    /// How many admissions it allows; `None` is unlimited within the ttl.
    pub uses: Option<u32>,
}

impl Default for GrantPolicy {
    fn default() -> Self {
        Self {
            scope: GrantScope::Request,
            ttl: PolicyDuration::minutes(15),
            uses: Some(1),
        }
    }
}

/// Who must countersign: distinct approvers from each inner group list (`count` of them unless the
/// list says its own), every list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalPolicy {
    /// Each inner list is satisfied by approvers in any of its groups; all lists must be satisfied.
    pub groups: Vec<Vec<String>>,
    /// Approvers needed from each inner list that gives no count of its own.
    pub count: u32,
    /// Approvers needed from each list, by position ("two peers and one manager"); empty when
    /// every list needs `count` (so rules written before per-list counts keep their sealed form).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<u32>,
    /// How long a challenge may wait for its approvers, in seconds.
    pub timeout_secs: i64,
    /// What the requester must say about why.
    pub reason: ReasonRule,
    /// Who may approve their own request in an emergency, loudly; `None` allows nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlass>,
}

impl ApprovalPolicy {
    /// Approvers needed from list `list`.
    pub fn needed(&self, list: usize) -> u32 {
        self.counts.get(list).copied().unwrap_or(self.count)
    }

    /// Approvers needed in all, from distinct persons.
    pub fn total_needed(&self) -> u32 {
        (0..self.groups.len()).map(|l| self.needed(l)).sum()
    }

    /// One rule met only when each of `rules` is met, for a request that tripped several approval
    /// guardrails: every list of every rule (a list two rules name with the same groups is kept
    /// once, needing the larger count; other lists need their own distinct approvers, which is
    /// never weaker than meeting each rule apart), the strictest reason, the shortest wait, and
    /// break glass only where every rule allows it, for the groups all of them name, for the
    /// shortest ttl. `None` when there is no rule.
    pub fn all_of(rules: &[&ApprovalPolicy]) -> Option<ApprovalPolicy> {
        let (first, rest) = rules.split_first()?;
        if rest.is_empty() {
            return Some((*first).clone());
        }
        let normal = |list: &[String]| {
            let mut list = list.to_vec();
            list.sort();
            list.dedup();
            list
        };
        let (mut groups, mut counts): (Vec<Vec<String>>, Vec<u32>) = (Vec::new(), Vec::new());
        for rule in rules {
            for (i, list) in rule.groups.iter().enumerate() {
                let same = groups.iter().position(|g| normal(g) == normal(list));
                match same {
                    Some(at) => counts[at] = counts[at].max(rule.needed(i)),
                    None => {
                        groups.push(list.clone());
                        counts.push(rule.needed(i));
                    }
                }
            }
        }
        let count = counts.iter().copied().min().unwrap_or(1);
        if counts.iter().all(|&c| c == count) {
            counts.clear();
        }
        let glass: Option<Vec<&BreakGlass>> =
            rules.iter().map(|r| r.break_glass.as_ref()).collect();
        let break_glass = glass.and_then(|all| {
            let groups: Vec<String> = all[0]
                .groups
                .iter()
                .filter(|g| all.iter().all(|b| b.groups.contains(g)))
                .cloned()
                .collect();
            let ttl_secs = all.iter().map(|b| b.ttl_secs).min()?;
            (!groups.is_empty()).then_some(BreakGlass { groups, ttl_secs })
        });
        Some(ApprovalPolicy {
            groups,
            count,
            counts,
            timeout_secs: rules.iter().map(|r| r.timeout_secs).min()?,
            reason: ReasonRule {
                required: rules.iter().any(|r| r.reason.required),
                min_length: rules.iter().map(|r| r.reason.min_length).max()?,
            },
            break_glass,
        })
    }
}

/// Whether a reason is required, and how long it must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasonRule {
    /// A request without a reason is refused.
    pub required: bool,
    /// Fewest characters of a given reason.
    pub min_length: u32,
}

/// Emergency self-approval: members of these groups may approve their own request with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakGlass {
    /// Groups allowed to break the glass.
    pub groups: Vec<String>,
    /// Lifetime of a break-glass grant, in seconds (short by design).
    pub ttl_secs: i64,
}

/// The action clause of a guardrail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// What happens.
    pub kind: ActionKind,
    /// How recent the authentication behind a step-up must be.
    pub freshness: PolicyDuration,
    /// The grant issued after a successful step-up or approval.
    pub grant: GrantPolicy,
    /// Approvers, for `approval` only.
    pub approval: Option<ApprovalPolicy>,
}

/// A glob over names: `*` alone, `prefix*`, `*suffix`, `*infix*` or an exact name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Glob {
    /// `*`
    Any,
    /// An exact name.
    Exact(String),
    /// `prefix*`
    Prefix(String),
    /// `*suffix`
    Suffix(String),
    /// `*infix*`
    Infix(String),
}

impl Glob {
    /// Parse a glob; `*` may only stand at either end.
    pub fn parse(text: &str) -> Result<Self, String> {
        let starts = text.starts_with('*');
        let ends = text.len() > 1 && text.ends_with('*');
        let inner = text.trim_start_matches('*').trim_end_matches('*');
        if text == "*" {
            return Ok(Glob::Any);
        }
        if inner.is_empty() || inner.contains('*') || text.matches('*').count() > 2 {
            return Err(format!(
                "`{text}` is not a glob (use name, prefix*, *suffix or *infix*)"
            ));
        }
        let inner = inner.to_owned();
        Ok(match (starts, ends) {
            (false, false) => Glob::Exact(inner),
            (false, true) => Glob::Prefix(inner),
            (true, false) => Glob::Suffix(inner),
            (true, true) => Glob::Infix(inner),
        })
    }

    /// Whether `name` fits this glob.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(s) => name == s,
            Glob::Prefix(s) => name.starts_with(s.as_str()),
            Glob::Suffix(s) => name.ends_with(s.as_str()),
            Glob::Infix(s) => name.contains(s.as_str()),
        }
    }
}

/// One resource pattern: `deployments`, `pods/exec`, `*`, `*/scale`, `pods/*`, `*/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePattern {
    /// Resource name, `None` for `*`.
    pub resource: Option<String>,
    /// Subresource: `Exact(None)` means the main resource only, as in Kubernetes rules.
    pub subresource: SubresourcePattern,
}

/// The subresource half of a resource pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubresourcePattern {
    /// No subresource (`pods`).
    None,
    /// Any subresource (`pods/*`).
    Any,
    /// A named subresource (`pods/exec`).
    Named(String),
}

impl ResourcePattern {
    /// Parse a pattern as Kubernetes rules spell it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (res, sub) = match text.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (text, None),
        };
        let valid = |s: &str| {
            s == "*"
                || (!s.is_empty()
                    && s.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
                    }))
        };
        if !valid(res) || sub.is_some_and(|s| !valid(s)) {
            return Err(format!(
                "`{text}` is not a resource (e.g. deployments, pods/exec, *, */scale)"
            ));
        }
        let resource = (res != "*").then(|| res.to_owned());
        // Kubernetes treats a bare `*` as "all resources, no subresources"; `*/*` takes everything.
        let subresource = match sub {
            None => SubresourcePattern::None,
            Some("*") => SubresourcePattern::Any,
            Some(s) => SubresourcePattern::Named(s.to_owned()),
        };
        Ok(Self {
            resource,
            subresource,
        })
    }

    /// Whether a request's resource and subresource fit.
    pub fn matches(&self, resource: &str, subresource: &str) -> bool {
        if self.resource.as_deref().is_some_and(|r| r != resource) {
            return false;
        }
        match &self.subresource {
            SubresourcePattern::None => subresource.is_empty(),
            SubresourcePattern::Any => true,
            SubresourcePattern::Named(s) => s == subresource,
        }
    }
}

/// An apiGroups + resources pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRule {
    /// API groups; `None` for `*`. `""` is the core group.
    pub api_groups: Option<Vec<String>>,
    /// Resource patterns.
    pub resources: Vec<ResourcePattern>,
}

/// A label selector's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum SelectorOperator {
    /// Label value in the set.
    In,
    /// Label absent or value not in the set.
    NotIn,
    /// Label present.
    Exists,
    /// Label absent.
    DoesNotExist,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorRequirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: SelectorOperator,
    /// Values for In / NotIn.
    pub values: Vec<String>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// Exact label values.
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    pub match_expressions: Vec<SelectorRequirement>,
}

impl LabelSelector {
    /// Whether the labels satisfy every requirement (an empty selector matches everything).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_by(|key| labels.get(key).map(String::as_str))
    }

    /// Whether the labels `label` looks up satisfy every requirement; lets callers match labels
    /// where they are (an object's JSON) without copying them into a map.
    pub fn matches_by<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| label(k) == Some(v.as_str()))
            && self.match_expressions.iter().all(|req| {
                let value = label(&req.key);
                let listed = |v: &str| req.values.iter().any(|x| x == v);
                match req.operator {
                    SelectorOperator::In => value.is_some_and(listed),
                    SelectorOperator::NotIn => value.is_none_or(|v| !listed(v)),
                    SelectorOperator::Exists => value.is_some(),
                    SelectorOperator::DoesNotExist => value.is_none(),
                }
            })
    }
}

/// The namespace clause.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespaceMatch {
    /// Name globs; the namespace is in scope if it fits any of them or the selector.
    pub names: Vec<Glob>,
    /// Label selector on the Namespace object.
    pub selector: Option<LabelSelector>,
    /// Names that are never in scope.
    pub exclude: Vec<Glob>,
}

/// A subject list (users, groups, service accounts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubjectList {
    /// Usernames.
    pub users: Vec<String>,
    /// Group names.
    pub groups: Vec<String>,
    /// Service accounts as their usernames, `system:serviceaccount:NS:NAME`.
    pub service_accounts: Vec<String>,
}

impl SubjectList {
    /// Whether the list names nobody.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.service_accounts.is_empty()
    }

    /// Whether the user (with these groups) is named by the list.
    pub fn names(&self, username: &str, groups: &[String]) -> bool {
        self.users.iter().any(|u| u == username)
            || self.service_accounts.iter().any(|sa| sa == username)
            || self.groups.iter().any(|g| groups.contains(g))
    }
}

/// The subjects clause.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubjectMatch {
    /// Who is in scope; empty means everyone.
    pub include: SubjectList,
    /// Who is never in scope.
    pub exclude: SubjectList,
}

/// The match clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Operations; `None` for `*`.
    pub operations: Option<Vec<Operation>>,
    /// Resource rules; empty matches every resource.
    pub resources: Vec<ResourceRule>,
    /// Namespace clause; `None` matches everywhere, including cluster-scoped objects.
    pub namespaces: Option<NamespaceMatch>,
    /// Subjects clause.
    pub subjects: SubjectMatch,
}

/// A loaded, validated guardrail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardrail {
    /// Its name.
    pub name: GuardrailName,
    /// What challenges and grants record it by: `metadata.id`, or the name when none is given.
    /// Keeping the id while changing the name keeps its open challenges and live grants.
    pub id: GuardrailName,
    /// What it is for, shown to people.
    pub description: String,
    /// Enforce or dry run.
    pub mode: Mode,
    /// What it applies to.
    pub matcher: Match,
    /// What it does.
    pub action: Action,
    /// Shown in denials and on the challenge page.
    pub message: Option<String>,
    /// CEL `condition`: the guardrail matches only when it is true (an error counts as a match).
    pub condition: Option<CelExpression>,
    /// CEL `messageExpression`: replaces `message` when it evaluates to a usable string.
    pub message_expression: Option<CelExpression>,
}
