//! One version of the guardrails, and the holder that swaps versions atomically.
//!
//! A review takes one [`Snapshot`] when it starts and carries it through evaluation, the
//! challenge, the grant check and the decision log, so a swap in the middle of a review cannot
//! mix two versions: a review in flight finishes on the snapshot it started with.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::admission::AdmissionRequest;
use crate::policy::Guardrail;

use super::{Decision, Engine, Explanation, NamespaceLabels};

/// The guardrails of one version, with the engine that evaluates them.
#[derive(Debug, Default)]
pub struct Snapshot {
    version: String,
    engine: Engine,
}

impl Snapshot {
    /// A snapshot of `guardrails` known as `version`.
    pub fn new(guardrails: Vec<Guardrail>, version: impl Into<String>) -> Self {
        Self {
            version: version.into(),
            engine: Engine::new(guardrails),
        }
    }

    /// Which version this is: what challenges, grants and decisions record.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The guardrails, in policy order.
    pub fn guardrails(&self) -> &[Guardrail] {
        self.engine.guardrails()
    }

    /// The guardrail called `name` in this version.
    pub fn guardrail(&self, name: &str) -> Option<&Guardrail> {
        self.engine.guardrail(name)
    }

    /// Evaluate one request (see [`Engine::evaluate`]).
    pub fn evaluate(
        &self,
        request: &AdmissionRequest,
        namespaces: &dyn NamespaceLabels,
    ) -> Decision {
        self.engine.evaluate(request, namespaces)
    }

    /// Evaluate one request and say why each guardrail matched or not (see [`Engine::explain`]).
    pub fn explain(
        &self,
        request: &AdmissionRequest,
        namespaces: &dyn NamespaceLabels,
    ) -> (Decision, Vec<Explanation>) {
        self.engine.explain(request, namespaces)
    }
}

/// The snapshot in force, swapped whole when guardrails change.
#[derive(Debug)]
pub struct LiveGuardrails {
    current: ArcSwap<Snapshot>,
}

impl LiveGuardrails {
    /// Start with `snapshot` in force.
    pub fn new(snapshot: Snapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The snapshot in force now; a review holds it to its end.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Put `snapshot` in force for the reviews that start from now on.
    pub fn publish(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_keeps_the_snapshot_it_took_across_a_swap() {
        let live = LiveGuardrails::new(Snapshot::new(Vec::new(), "v1"));
        let held = live.load();
        live.publish(Snapshot::new(Vec::new(), "v2"));
        assert_eq!(held.version(), "v1");
        assert_eq!(live.load().version(), "v2");
    }
}
