//! Match clauses against a request, with Kubernetes' own meanings.

use crate::admission::AdmissionRequest;
use crate::policy::{LabelSelector, Match, NamespaceMatch, SubjectMatch};

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
    if is_namespace_object(request) {
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
    selector_fits(selector, request, name, index)
}

/// Whether the namespace's labels fit the selector.
///
/// A Namespace request is judged by the Namespace object itself, not by what the index last saw:
/// by the labels it will have (`object`) and by the labels it had (`oldObject`), and it is in
/// scope when either fits. So relabelling a namespace out of a guarded selector
/// (`kubectl label ns payments env-`) is guarded like any change inside it. Every other request is
/// judged by its namespace's labels from the index. Both are read in place: nothing is copied
/// per guardrail on the webhook's hot path.
fn selector_fits(
    selector: &LabelSelector,
    request: &AdmissionRequest,
    name: &str,
    index: &dyn NamespaceLabels,
) -> bool {
    if is_namespace_object(request) {
        let sides = [request.object.as_ref(), request.old_object.as_ref()];
        if sides.iter().all(Option::is_none) {
            // Nothing to read labels from: match, so a guarded request fails closed.
            return true;
        }
        return sides
            .into_iter()
            .flatten()
            .any(|object| selector.matches_by(|key| object_label(object, key)));
    }
    match index.labels(name) {
        Some(labels) => selector.matches(labels),
        // Labels unknown (no reflector, namespace not yet seen): match, so guarded requests fail closed.
        None => true,
    }
}

/// Whether the request is on a Namespace object (any subresource) rather than inside a namespace.
fn is_namespace_object(request: &AdmissionRequest) -> bool {
    request.resource.group.is_empty() && request.resource.resource == "namespaces"
}

/// One string label of an object, as `labels_of` would keep it.
fn object_label<'a>(object: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get("labels")?.get(key)?.as_str()
}
