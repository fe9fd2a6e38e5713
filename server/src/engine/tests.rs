use serde_json::json;

use super::*;
use crate::admission::parse_review;
use crate::policy::parse_documents;

const POLICIES: &str = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: prod-workloads}
spec:
  match:
    operations: [CREATE, UPDATE, DELETE]
    resources: [{apiGroups: ["apps"], resources: ["deployments", "deployments/scale"]}]
    namespaces: {names: ["payments", "prod-*"], selector: {matchLabels: {env: prod}}, exclude: ["prod-sandbox"]}
    subjects: {exclude: {groups: ["system:masters"]}}
  action: {type: stepUp}
  message: Production workloads need a security-key touch.
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: no-exec-prod}
spec:
  match:
    operations: [CONNECT]
    resources: [{apiGroups: [""], resources: ["pods/exec", "pods/attach"]}]
    namespaces: {selector: {matchExpressions: [{key: env, operator: In, values: [prod]}]}}
  action: {type: deny}
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: cluster-admin-bindings}
spec:
  match:
    resources: [{apiGroups: ["rbac.authorization.k8s.io"], resources: ["clusterrolebindings"]}]
  action: {type: warn}
  message: Cluster-wide bindings are reviewed weekly.
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: ci-secrets}
spec:
  mode: dryRun
  match:
    resources: [{apiGroups: [""], resources: ["secrets"]}]
    subjects: {serviceAccounts: ["ci/deployer"]}
  action: {type: deny}
  message: CI should not write Secrets.
"#;

fn engine() -> Engine {
    Engine::new(parse_documents("test", POLICIES).unwrap())
}

fn namespaces() -> NamespaceIndex {
    NamespaceIndex::from_objects(&[
        json!({"metadata": {"name": "shop", "labels": {"env": "prod"}}}),
        json!({"metadata": {"name": "dev", "labels": {"env": "dev"}}}),
    ])
}

fn request(
    op: &str,
    group: &str,
    resource: &str,
    sub: &str,
    ns: &str,
    user: &str,
    groups: &[&str],
) -> AdmissionRequest {
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u", "operation": op,
            "resource": {"group": group, "version": "v1", "resource": resource},
            "subResource": sub, "namespace": ns, "name": "x",
            "userInfo": {"username": user, "groups": groups},
            "object": {"metadata": {"name": "x"}}
        }
    });
    parse_review(body.to_string().as_bytes()).unwrap()
}

fn action_of(
    op: &str,
    group: &str,
    resource: &str,
    sub: &str,
    ns: &str,
    user: &str,
    groups: &[&str],
) -> ActionKind {
    engine()
        .evaluate(
            &request(op, group, resource, sub, ns, user, groups),
            &namespaces(),
        )
        .action
}

#[test]
fn step_up_on_guarded_namespaces_by_name_glob_and_selector() {
    assert_eq!(
        action_of(
            "UPDATE",
            "apps",
            "deployments",
            "",
            "payments",
            "alice",
            &[]
        ),
        ActionKind::StepUp
    );
    assert_eq!(
        action_of("UPDATE", "apps", "deployments", "", "prod-eu", "alice", &[]),
        ActionKind::StepUp
    );
    assert_eq!(
        action_of("UPDATE", "apps", "deployments", "", "shop", "alice", &[]),
        ActionKind::StepUp
    );
    assert_eq!(
        action_of(
            "UPDATE",
            "apps",
            "deployments",
            "scale",
            "shop",
            "alice",
            &[]
        ),
        ActionKind::StepUp
    );
}

#[test]
fn outside_scope_is_allowed() {
    assert_eq!(
        action_of("UPDATE", "apps", "deployments", "", "dev", "alice", &[]),
        ActionKind::Allow
    );
    assert_eq!(
        action_of(
            "UPDATE",
            "apps",
            "deployments",
            "",
            "prod-sandbox",
            "alice",
            &[]
        ),
        ActionKind::Allow
    );
    assert_eq!(
        action_of(
            "UPDATE",
            "apps",
            "deployments",
            "status",
            "payments",
            "alice",
            &[]
        ),
        ActionKind::Allow
    );
    assert_eq!(
        action_of(
            "UPDATE",
            "apps",
            "replicasets",
            "",
            "payments",
            "alice",
            &[]
        ),
        ActionKind::Allow
    );
    assert_eq!(
        action_of(
            "UPDATE",
            "apps",
            "deployments",
            "",
            "payments",
            "root",
            &["system:masters"]
        ),
        ActionKind::Allow
    );
    assert_eq!(
        action_of(
            "UPDATE",
            "example.com",
            "widgets",
            "",
            "payments",
            "alice",
            &[]
        ),
        ActionKind::Allow
    );
}

#[test]
fn connect_to_exec_in_prod_is_denied() {
    assert_eq!(
        action_of("CONNECT", "", "pods", "exec", "shop", "alice", &[]),
        ActionKind::Deny
    );
    assert_eq!(
        action_of("CONNECT", "", "pods", "exec", "dev", "alice", &[]),
        ActionKind::Allow
    );
    assert_eq!(
        action_of("CONNECT", "", "pods", "portforward", "shop", "alice", &[]),
        ActionKind::Allow
    );
}

#[test]
fn cluster_scoped_resources_match_only_guardrails_without_namespace_clause() {
    let decision = engine().evaluate(
        &request(
            "CREATE",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            "",
            "alice",
            &[],
        ),
        &namespaces(),
    );
    assert_eq!(decision.action, ActionKind::Warn);
    assert_eq!(
        decision.warnings(),
        vec!["guardrail \"cluster-admin-bindings\": Cluster-wide bindings are reviewed weekly."]
    );
}

#[test]
fn dry_run_guardrails_record_but_do_not_decide() {
    let decision = engine().evaluate(
        &request(
            "CREATE",
            "",
            "secrets",
            "",
            "ci",
            "system:serviceaccount:ci:deployer",
            &[],
        ),
        &namespaces(),
    );
    assert_eq!(decision.action, ActionKind::Allow);
    assert_eq!(decision.hits.len(), 1);
    assert!(decision.warnings()[0].contains("(dry run) would deny"));
    let other = request(
        "CREATE",
        "",
        "secrets",
        "",
        "ci",
        "system:serviceaccount:ci:other",
        &[],
    );
    assert!(engine().evaluate(&other, &namespaces()).hits.is_empty());
}

#[test]
fn strictest_action_wins() {
    let policies = format!(
        "{POLICIES}\n---\n{}",
        r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: freeze-payments}
spec:
  match: {namespaces: {names: [payments]}}
  action: {type: deny}
"#
    );
    let engine = Engine::new(parse_documents("t", &policies).unwrap());
    let decision = engine.evaluate(
        &request(
            "UPDATE",
            "apps",
            "deployments",
            "",
            "payments",
            "alice",
            &[],
        ),
        &namespaces(),
    );
    assert_eq!(decision.action, ActionKind::Deny);
    assert_eq!(decision.hits.len(), 2);
}

#[test]
fn unknown_namespace_labels_fail_closed_for_selectors() {
    assert_eq!(
        action_of("CONNECT", "", "pods", "exec", "never-seen", "alice", &[]),
        ActionKind::Deny
    );
}
