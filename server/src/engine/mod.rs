//! The guardrail engine: which guardrails match a request and what the strictest of them says.
//!
//! Pure: no I/O, no clock, no locks, so it can be benchmarked and fuzzed alone.

mod index;
mod matching;
mod namespaces;
mod snapshot;

use std::cell::OnceCell;

use serde::Serialize;

use crate::admission::AdmissionRequest;
use crate::policy::{ActionKind, Activation, Guardrail, Inputs, Mode};

pub use matching::Clause;
pub use namespaces::{NamespaceIndex, NamespaceLabels};
pub use snapshot::{LiveGuardrails, Snapshot};

/// A guardrail that matched a request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Hit {
    /// Guardrail name.
    pub name: String,
    /// Guardrail id: what the challenge and grants it leads to record.
    #[serde(skip)]
    pub id: String,
    /// Its action.
    pub action: ActionKind,
    /// Enforce or dry run.
    #[serde(skip)]
    pub mode: Mode,
    /// Message for the person behind the request.
    pub message: String,
    /// Why the condition could not be evaluated, when it could not: the guardrail then matches
    /// (fail closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_error: Option<String>,
}

/// Why one guardrail matched a request or not; produced only by [`Engine::explain`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// Guardrail name.
    pub name: String,
    /// Whether it matched (and so counts in the decision, unless it is a dry run).
    pub matched: bool,
    /// The match clause that did not fit (`operation`, `resource`, `subject`, `namespace`), or
    /// `condition` when the clauses fit and the condition was false or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<&'static str>,
    /// In words.
    pub reason: String,
    /// The condition's result, when it was evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionResult>,
}

/// What a guardrail's CEL condition gave.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConditionResult {
    /// The expression.
    pub expression: String,
    /// Its value, when it evaluated to a bool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<bool>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the engine decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Strictest action among enforcing guardrails (`Allow` when none matched).
    pub action: ActionKind,
    /// Every guardrail that matched, enforcing or dry-run, in policy order.
    pub hits: Vec<Hit>,
}

impl Decision {
    /// Enforcing hits with exactly this action.
    pub fn enforced(&self, action: ActionKind) -> impl Iterator<Item = &Hit> {
        self.hits
            .iter()
            .filter(move |h| h.mode == Mode::Enforce && h.action == action)
    }

    /// Enforcing hits that need a grant (step-up and approval), in policy order.
    pub fn needing_grants(&self) -> impl Iterator<Item = &Hit> {
        self.hits
            .iter()
            .filter(|h| h.mode == Mode::Enforce && h.action.needs_grant())
    }

    /// Warnings for the client: every enforcing `warn`, and what dry-run guardrails would have done.
    pub fn warnings(&self) -> Vec<String> {
        self.hits
            .iter()
            .filter_map(|h| match (h.mode, h.action) {
                (Mode::Enforce, ActionKind::Warn) => {
                    Some(format!("guardrail \"{}\": {}", h.name, h.message))
                }
                (Mode::DryRun, action) if action >= ActionKind::Warn => Some(format!(
                    "guardrail \"{}\" (dry run) would {}: {}",
                    h.name,
                    action.as_str(),
                    h.message
                )),
                _ => None,
            })
            .collect()
    }
}

/// A snapshot of loaded guardrails.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    guardrails: Vec<Guardrail>,
    index: index::ResourceIndex,
}

/// The guardrails one evaluation looks at, in policy order.
enum Walk<'a> {
    /// Every one (explanations name them all).
    All(std::ops::Range<usize>),
    /// Those whose resource clauses can fit the request.
    Indexed(index::Merge<'a>),
}

impl Iterator for Walk<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            Walk::All(range) => range.next(),
            Walk::Indexed(merge) => merge.next(),
        }
    }
}

impl Engine {
    /// An engine over these guardrails.
    pub fn new(guardrails: Vec<Guardrail>) -> Self {
        let index = index::ResourceIndex::new(&guardrails);
        Self { guardrails, index }
    }

    /// The guardrails, in policy order.
    pub fn guardrails(&self) -> &[Guardrail] {
        &self.guardrails
    }

    /// Look a guardrail up by its id (what challenges and grants record; the name unless the
    /// guardrail gives another).
    pub fn guardrail(&self, id: &str) -> Option<&Guardrail> {
        self.guardrails.iter().find(|g| g.id.as_str() == id)
    }

    /// Evaluate one request. Guardrails without a condition cost no allocation beyond their hit;
    /// the interpreter's CEL variables are built once, and only when a condition needs them.
    pub fn evaluate(
        &self,
        request: &AdmissionRequest,
        namespaces: &dyn NamespaceLabels,
    ) -> Decision {
        self.run(request, namespaces, None)
    }

    /// Evaluate one request and say, for every guardrail, whether it matched and why.
    pub fn explain(
        &self,
        request: &AdmissionRequest,
        namespaces: &dyn NamespaceLabels,
    ) -> (Decision, Vec<Explanation>) {
        let mut explanations = Vec::with_capacity(self.guardrails.len());
        let decision = self.run(request, namespaces, Some(&mut explanations));
        (decision, explanations)
    }

    fn run(
        &self,
        request: &AdmissionRequest,
        namespaces: &dyn NamespaceLabels,
        mut explain: Option<&mut Vec<Explanation>>,
    ) -> Decision {
        let inputs: OnceCell<Inputs> = OnceCell::new();
        let make_inputs = || {
            // VAP: null for cluster-scoped requests (a Namespace itself included).
            let namespace = (!request.namespace.is_empty())
                .then(|| namespaces.namespace_object(&request.namespace));
            Inputs::new(request, namespace)
        };
        let activation = Activation::deferred(request, &inputs, &make_inputs);

        let mut action = ActionKind::Allow;
        let mut hits = Vec::new();
        let walk = if explain.is_some() {
            Walk::All(0..self.guardrails.len())
        } else {
            // The others' resource clauses cannot fit: they would not match.
            Walk::Indexed(
                self.index
                    .candidates(&request.resource.group, &request.resource.resource),
            )
        };
        for position in walk {
            let guardrail = &self.guardrails[position];
            if let Some(clause) = matching::mismatch(&guardrail.matcher, request, namespaces) {
                if let Some(out) = explain.as_deref_mut() {
                    out.push(Explanation {
                        name: guardrail.name.to_string(),
                        matched: false,
                        failed: Some(clause.as_str()),
                        reason: clause_reason(clause, request),
                        condition: None,
                    });
                }
                continue;
            }
            let mut condition_error = None;
            let mut condition = None;
            if let Some(expression) = &guardrail.condition {
                let outcome = expression.eval_bool(&activation);
                let matched = !matches!(outcome, Ok(false));
                if explain.is_some() {
                    condition = Some(ConditionResult {
                        expression: expression.source().to_owned(),
                        result: outcome.as_ref().ok().copied(),
                        error: outcome.as_ref().err().cloned(),
                    });
                }
                if let Err(e) = outcome {
                    condition_error = Some(e);
                }
                if !matched {
                    if let Some(out) = explain.as_deref_mut() {
                        out.push(Explanation {
                            name: guardrail.name.to_string(),
                            matched: false,
                            failed: Some("condition"),
                            reason: "the match clauses fit; the condition is false".into(),
                            condition,
                        });
                    }
                    continue;
                }
            }
            if guardrail.mode == Mode::Enforce {
                action = action.max(guardrail.action.kind);
            }
            let message = message(guardrail, condition_error.as_deref(), &activation);
            if let Some(out) = explain.as_deref_mut() {
                out.push(Explanation {
                    name: guardrail.name.to_string(),
                    matched: true,
                    failed: condition_error.as_ref().map(|_| "condition"),
                    reason: match &condition_error {
                        Some(e) => format!(
                            "the match clauses fit; the condition failed ({e}), so the guardrail applies (fail closed)"
                        ),
                        None if guardrail.condition.is_some() => {
                            "the match clauses fit and the condition is true".into()
                        }
                        None => "the match clauses fit".into(),
                    },
                    condition,
                });
            }
            hits.push(Hit {
                name: guardrail.name.to_string(),
                id: guardrail.id.to_string(),
                action: guardrail.action.kind,
                mode: guardrail.mode,
                message,
                condition_error,
            });
        }
        Decision { action, hits }
    }
}

/// A mismatched clause in words, with what the request had.
fn clause_reason(clause: Clause, request: &AdmissionRequest) -> String {
    let r = request;
    match clause {
        Clause::Operation => format!(
            "operation {} is not in match.operations",
            r.operation.as_str()
        ),
        Clause::Resource => {
            let group = if r.resource.group.is_empty() {
                "core"
            } else {
                r.resource.group.as_str()
            };
            let sub = if r.sub_resource.is_empty() {
                String::new()
            } else {
                format!("/{}", r.sub_resource)
            };
            format!(
                "resource {group} {}{sub} is not in match.resources",
                r.resource.resource
            )
        }
        Clause::Subject => format!(
            "user {} is not in match.subjects, or is excluded",
            r.user_info.username
        ),
        Clause::Namespace if r.namespace.is_empty() && r.resource.resource != "namespaces" => {
            "the request is cluster-scoped and the guardrail has a namespace clause".into()
        }
        Clause::Namespace => {
            let name = if r.namespace.is_empty() {
                &r.name
            } else {
                &r.namespace
            };
            format!(
                "namespace {name} is excluded, or fits neither match.namespaces names nor selector"
            )
        }
    }
}

/// Longest message a `messageExpression` may produce before `message` is used instead.
const MAX_MESSAGE_LEN: usize = 1024;

/// The message of a matched guardrail: `messageExpression` when it gives a usable string (as in a
/// ValidatingAdmissionPolicy: not empty, one line, not too long), else `message`, else the
/// description. A failed condition is said so.
fn message(
    guardrail: &Guardrail,
    condition_error: Option<&str>,
    variables: &Activation<'_>,
) -> String {
    let evaluated = match (&guardrail.message_expression, condition_error) {
        (Some(expression), None) => expression
            .eval_string(variables)
            .ok()
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty() && !m.contains('\n') && m.len() <= MAX_MESSAGE_LEN),
        _ => None,
    };
    let base = evaluated.unwrap_or_else(|| {
        guardrail
            .message
            .clone()
            .unwrap_or_else(|| guardrail.description.clone())
    });
    match condition_error {
        Some(e) => format!("{base} (condition could not be evaluated: {e})"),
        None => base,
    }
}

#[cfg(test)]
mod tests;
