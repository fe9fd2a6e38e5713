//! The guardrail engine: which guardrails match a request and what the strictest of them says.
//!
//! Pure: no I/O, no clock, no locks, so it can be benchmarked and fuzzed alone.

mod matching;
mod namespaces;

use serde::Serialize;

use crate::admission::AdmissionRequest;
use crate::policy::{ActionKind, Guardrail, Mode};

pub use namespaces::{NamespaceIndex, NamespaceLabels};

/// A guardrail that matched a request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Hit {
    /// Index of the guardrail in the engine's snapshot.
    #[serde(skip)]
    pub index: usize,
    /// Guardrail name.
    pub name: String,
    /// Its action.
    pub action: ActionKind,
    /// Enforce or dry run.
    #[serde(skip)]
    pub mode: Mode,
    /// Message for the person behind the request.
    pub message: String,
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
}

impl Engine {
    /// An engine over these guardrails.
    pub fn new(guardrails: Vec<Guardrail>) -> Self {
        Self { guardrails }
    }

    /// The guardrails, in policy order.
    pub fn guardrails(&self) -> &[Guardrail] {
        &self.guardrails
    }

    /// Look a guardrail up by name.
    pub fn guardrail(&self, name: &str) -> Option<&Guardrail> {
        self.guardrails.iter().find(|g| g.name.as_str() == name)
    }

    /// Evaluate one request.
    pub fn evaluate(
        &self,
        request: &AdmissionRequest,
        namespaces: &dyn NamespaceLabels,
    ) -> Decision {
        let mut action = ActionKind::Allow;
        let mut hits = Vec::new();
        for (index, guardrail) in self.guardrails.iter().enumerate() {
            if !matching::matches(&guardrail.matcher, request, namespaces) {
                continue;
            }
            if guardrail.mode == Mode::Enforce {
                action = action.max(guardrail.action.kind);
            }
            hits.push(Hit {
                index,
                name: guardrail.name.to_string(),
                action: guardrail.action.kind,
                mode: guardrail.mode,
                message: guardrail
                    .message
                    .clone()
                    .unwrap_or_else(|| guardrail.description.clone()),
            });
        }
        Decision { action, hits }
    }
}

#[cfg(test)]
mod tests;
