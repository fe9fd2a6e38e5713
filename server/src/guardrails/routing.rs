//! The cluster follows: guardrails reloaded at run time only see the requests the installed
//! ValidatingWebhookConfiguration sends. This compares what the guardrails in force need routed
//! with what the installed configuration routes, and holds the answer for `/readyz` and metrics.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhookConfiguration,
};

use crate::policy::webhook_config::{self, WebhookOptions};
use crate::policy::Guardrail;

/// Routes (`OPERATION group/resource`) the guardrails need and `installed` does not send.
pub fn unrouted(
    guardrails: &[Guardrail],
    options: &WebhookOptions,
    installed: &ValidatingWebhookConfiguration,
) -> Vec<String> {
    let Ok(wanted) = webhook_config::generate(guardrails, options) else {
        // Nothing to route: nothing can be missing.
        return Vec::new();
    };
    let have: Vec<&RuleWithOperations> = rules_of(installed).collect();
    let mut missing = BTreeSet::new();
    for rule in rules_of(&wanted.config) {
        for op in rule.operations.iter().flatten() {
            for group in rule.api_groups.iter().flatten() {
                for resource in rule.resources.iter().flatten() {
                    if !have.iter().any(|r| covers(r, op, group, resource)) {
                        let group = if group.is_empty() { "core" } else { group };
                        missing.insert(format!("{op} {group}/{resource}"));
                    }
                }
            }
        }
    }
    missing.into_iter().collect()
}

fn rules_of(config: &ValidatingWebhookConfiguration) -> impl Iterator<Item = &RuleWithOperations> {
    config
        .webhooks
        .iter()
        .flatten()
        .flat_map(|w| w.rules.iter().flatten())
}

/// Whether `rule` sends `op` on `group`/`resource` (a resource may carry its subresource).
fn covers(rule: &RuleWithOperations, op: &str, group: &str, resource: &str) -> bool {
    let any = |list: &Option<Vec<String>>, want: &str| {
        list.iter().flatten().any(|v| v == "*" || v == want)
    };
    let resource_ok = rule.resources.iter().flatten().any(|have| {
        if have == "*" || have == resource {
            return true;
        }
        // `pods/*` sends every subresource of pods, `*/scale` that subresource of everything.
        match (have.split_once('/'), resource.split_once('/')) {
            (Some((hb, hs)), Some((b, s))) => (hb == "*" || hb == b) && (hs == "*" || hs == s),
            _ => false,
        }
    });
    any(&rule.operations, op) && any(&rule.api_groups, group) && resource_ok
}

/// What the last check of the installed configuration found.
#[derive(Debug, Default)]
pub struct RoutingStatus {
    problem: ArcSwapOption<String>,
    missing: AtomicU64,
    applied: AtomicU64,
}

impl RoutingStatus {
    /// The configuration routes what the guardrails need.
    pub fn routed(&self) {
        self.problem.store(None);
        self.missing.store(0, Ordering::Relaxed);
    }

    /// It does not: `missing` routes, said in `why`.
    pub fn unrouted(&self, missing: usize, why: String) {
        self.missing.store(missing as u64, Ordering::Relaxed);
        self.problem.store(Some(Arc::new(why)));
    }

    /// A regenerated configuration was applied to the cluster.
    pub fn applied(&self) {
        self.applied.fetch_add(1, Ordering::Relaxed);
    }

    /// Why the cluster does not send every request the guardrails need, if it does not.
    pub fn problem(&self) -> Option<Arc<String>> {
        self.problem.load_full()
    }

    /// Prometheus lines.
    pub fn render(&self) -> String {
        format!(
            "# HELP countersign_webhook_config_unrouted Routes the guardrails in force need that the installed ValidatingWebhookConfiguration does not send.\n\
             # TYPE countersign_webhook_config_unrouted gauge\n\
             countersign_webhook_config_unrouted {}\n\
             # HELP countersign_webhook_config_applied_total Regenerated configurations applied (--manage-webhook-config).\n\
             # TYPE countersign_webhook_config_applied_total counter\n\
             countersign_webhook_config_applied_total {}\n",
            self.missing.load(Ordering::Relaxed),
            self.applied.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library() -> Vec<Guardrail> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/library");
        crate::policy::load_path(std::path::Path::new(dir)).unwrap()
    }

    #[test]
    fn a_configuration_made_from_the_guardrails_routes_them_and_one_made_from_fewer_does_not() {
        let all = library();
        let options = WebhookOptions::new(Vec::new());
        let full = webhook_config::generate(&all, &options).unwrap().config;
        assert!(unrouted(&all, &options, &full).is_empty());
        let exec_only: Vec<Guardrail> = all
            .iter()
            .filter(|g| g.name.as_str() == "prod-exec")
            .cloned()
            .collect();
        let partial = webhook_config::generate(&exec_only, &options)
            .unwrap()
            .config;
        let missing = unrouted(&all, &options, &partial);
        assert!(
            missing.contains(&"DELETE core/namespaces".to_owned()),
            "{missing:?}"
        );
        assert!(
            missing.iter().all(|m| !m.contains("pods/exec")),
            "{missing:?}"
        );
        // A wildcard configuration routes everything.
        let wildcard: ValidatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "countersign.dev"},
            "webhooks": [{"name": "all.countersign.dev", "admissionReviewVersions": ["v1"],
                "sideEffects": "None", "clientConfig": {},
                "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*", "*/*"]}]}]
        }))
        .unwrap();
        assert!(unrouted(&all, &options, &wildcard).is_empty());
    }
}
