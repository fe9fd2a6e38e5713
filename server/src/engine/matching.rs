//! Match clauses against a request, with Kubernetes' own meanings.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::admission::AdmissionRequest;
use crate::policy::{Match, NamespaceMatch, SubjectMatch};

use super::namespaces::labels_of;
use super::NamespaceLabels;

/// A match clause, named for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clause {
    /// `match.operations`
    Operation,
    /// `match.resources`
    Resource,
    /// `match.subjects`
    Subject,
    /// `match.namespaces`
    Namespace,
}

impl Clause {
    /// The clause as explanations name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Clause::Operation => "operation",
            Clause::Resource => "resource",
            Clause::Subject => "subject",
            Clause::Namespace => "namespace",
        }
    }
}

/// The first clause of `m` that does not fit the request, checked cheapest first; `None` when
/// every clause fits.
pub(super) fn mismatch(
    m: &Match,
    request: &AdmissionRequest,
    namespaces: &dyn NamespaceLabels,
) -> Option<Clause> {
    if !operation_fits(m, request) {
        Some(Clause::Operation)
    } else if !resource_fits(m, request) {
        Some(Clause::Resource)
    } else if !subjects_fit(&m.subjects, request) {
        Some(Clause::Subject)
    } else if !m
        .namespaces
        .as_ref()
        .is_none_or(|ns| namespace_fits(ns, request, namespaces))
    {
        Some(Clause::Namespace)
    } else {
        None
    }
}

fn operation_fits(m: &Match, request: &AdmissionRequest) -> bool {
    m.operations
        .as_ref()
        .is_none_or(|ops| ops.contains(&request.operation))
}

fn resource_fits(m: &Match, request: &AdmissionRequest) -> bool {
    m.resources.is_empty()
        || m.resources.iter().any(|rule| {
            rule.api_groups
                .as_ref()
                .is_none_or(|groups| groups.contains(&request.resource.group))
                && rule
                    .resources
                    .iter()
                    .any(|p| p.matches(&request.resource.resource, &request.sub_resource))
        })
}

fn subjects_fit(s: &SubjectMatch, request: &AdmissionRequest) -> bool {
    let user = &request.user_info;
    (s.include.is_empty() || s.include.names(&user.username, &user.groups))
        && !s.exclude.names(&user.username, &user.groups)
}

/// The namespace a request is "in" for namespace clauses: its own, or the Namespace object itself.
fn subject_namespace(request: &AdmissionRequest) -> Option<&str> {
    if request.resource.group.is_empty() && request.resource.resource == "namespaces" {
        return Some(request.name.as_str()).filter(|n| !n.is_empty());
    }
    Some(request.namespace.as_str()).filter(|n| !n.is_empty())
}

fn namespace_fits(
    ns: &NamespaceMatch,
    request: &AdmissionRequest,
    index: &dyn NamespaceLabels,
) -> bool {
    // A cluster-scoped object is outside every namespace clause.
    let Some(name) = subject_namespace(request) else {
        return false;
    };
    if ns.exclude.iter().any(|g| g.matches(name)) {
        return false;
    }
    if ns.names.is_empty() && ns.selector.is_none() {
        return true;
    }
    if ns.names.iter().any(|g| g.matches(name)) {
        return true;
    }
    let Some(selector) = &ns.selector else {
        return false;
    };
    match namespace_labels(request, name, index) {
        Some(labels) => selector.matches(&labels),
        // Labels unknown (no reflector, namespace not yet seen): match, so guarded requests fail closed.
        None => true,
    }
}

fn namespace_labels<'a>(
    request: &AdmissionRequest,
    name: &str,
    index: &'a dyn NamespaceLabels,
) -> Option<Cow<'a, BTreeMap<String, String>>> {
    let is_namespace_object =
        request.resource.group.is_empty() && request.resource.resource == "namespaces";
    if is_namespace_object {
        // A Namespace being created or relabelled is judged by the labels it will have.
        let object = request.object.as_ref().or(request.old_object.as_ref())?;
        return Some(Cow::Owned(labels_of(object)));
    }
    // Borrowed: the webhook's hot path does not copy a namespace's labels per guardrail.
    index.labels(name).map(Cow::Borrowed)
}
