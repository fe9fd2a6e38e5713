//! One version of the guardrails, and the holder that swaps versions atomically.
//!
//! A review takes one [`Snapshot`] when it starts and carries it through evaluation, the
//! challenge, the grant check and the decision log, so a swap in the middle of a review cannot
//! mix two versions: a review in flight finishes on the snapshot it started with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

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

    /// The guardrail with this id in this version (see [`Engine::guardrail`]).
    pub fn guardrail(&self, id: &str) -> Option<&Guardrail> {
        self.engine.guardrail(id)
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

/// The snapshot in force, swapped whole when guardrails change, and why the newest guardrails are
/// not in force when they could not be loaded.
#[derive(Debug)]
pub struct LiveGuardrails {
    current: ArcSwap<Snapshot>,
    problem: ArcSwapOption<String>,
    published: AtomicU64,
    refused: AtomicU64,
}

impl LiveGuardrails {
    /// Start with `snapshot` in force.
    pub fn new(snapshot: Snapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(snapshot),
            problem: ArcSwapOption::empty(),
            published: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The snapshot in force now; a review holds it to its end.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Put `snapshot` in force for the reviews that start from now on; any earlier problem is over.
    pub fn publish(&self, snapshot: Snapshot) {
        // The problem goes first, so whoever sees the new snapshot sees no stale problem with it.
        self.problem.store(None);
        self.current.store(Arc::new(snapshot));
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Newer guardrails could not be put in force, for this reason: the snapshot in force stays
    /// (degraded, not down) until [`publish`](Self::publish) succeeds.
    pub fn refuse(&self, why: String) {
        self.problem.store(Some(Arc::new(why)));
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Why the guardrails in force are not the newest, if they are not.
    pub fn problem(&self) -> Option<Arc<String>> {
        self.problem.load_full()
    }

    /// Prometheus lines: how many guardrails are in force, swaps, refusals and whether degraded.
    pub fn render(&self) -> String {
        let snapshot = self.load();
        format!(
            "# HELP countersign_guardrails Guardrails in force.\n\
             # TYPE countersign_guardrails gauge\n\
             countersign_guardrails {}\n\
             # HELP countersign_guardrails_info The version of the guardrails in force.\n\
             # TYPE countersign_guardrails_info gauge\n\
             countersign_guardrails_info{{version=\"{}\"}} 1\n\
             # HELP countersign_guardrails_reloads_total Guardrail versions put in force after start.\n\
             # TYPE countersign_guardrails_reloads_total counter\n\
             countersign_guardrails_reloads_total {}\n\
             # HELP countersign_guardrails_reload_failures_total Newer guardrails refused (the last good ones stay in force).\n\
             # TYPE countersign_guardrails_reload_failures_total counter\n\
             countersign_guardrails_reload_failures_total {}\n\
             # HELP countersign_guardrails_degraded 1 while newer guardrails could not be put in force.\n\
             # TYPE countersign_guardrails_degraded gauge\n\
             countersign_guardrails_degraded {}\n",
            snapshot.guardrails().len(),
            snapshot.version(),
            self.published.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            u8::from(self.problem.load().is_some()),
        )
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

    #[test]
    fn a_refused_version_keeps_the_last_good_one_until_the_next_publish() {
        let live = LiveGuardrails::new(Snapshot::new(Vec::new(), "v1"));
        live.refuse("a.yaml: document 1: spec: missing field `action`".into());
        assert_eq!(live.load().version(), "v1");
        assert!(live.problem().is_some_and(|p| p.contains("a.yaml")));
        assert!(live
            .render()
            .contains("countersign_guardrails_degraded 1\n"));
        live.publish(Snapshot::new(Vec::new(), "v2"));
        assert!(live.problem().is_none());
        let metrics = live.render();
        assert!(metrics.contains("countersign_guardrails_degraded 0\n"));
        assert!(metrics.contains("countersign_guardrails_reload_failures_total 1\n"));
        assert!(metrics.contains("countersign_guardrails_info{version=\"v2\"} 1\n"));
    }
}
