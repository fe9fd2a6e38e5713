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

/// Finding 6: guardrails on Namespace objects by label selector.
const NAMESPACE_POLICIES: &str = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: prod-namespace-changes}
spec:
  match:
    operations: [UPDATE, DELETE]
    resources: [{apiGroups: [""], resources: ["namespaces"]}]
    namespaces: {selector: {matchLabels: {env: prod}}}
  action: {type: stepUp}
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: prod-deployments}
spec:
  match:
    resources: [{apiGroups: ["apps"], resources: ["deployments"]}]
    namespaces: {selector: {matchExpressions: [{key: env, operator: In, values: [prod]}]}}
  action: {type: stepUp}
"#;

/// A request on Namespace `name`, with the labels it will have and the labels it had.
fn namespace_request(
    op: &str,
    name: &str,
    new: Option<serde_json::Value>,
    old: Option<serde_json::Value>,
) -> AdmissionRequest {
    let object = |labels: serde_json::Value| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u", "operation": op,
            "kind": {"group": "", "version": "v1", "kind": "Namespace"},
            "resource": {"group": "", "version": "v1", "resource": "namespaces"},
            "name": name, "namespace": name,
            "userInfo": {"username": "alice"},
            "object": new.map(object), "oldObject": old.map(object)
        }
    });
    parse_review(body.to_string().as_bytes()).unwrap()
}

fn namespace_hits(request: &AdmissionRequest, index: &NamespaceIndex) -> Vec<String> {
    Engine::new(parse_documents("ns", NAMESPACE_POLICIES).unwrap())
        .evaluate(request, index)
        .hits
        .into_iter()
        .map(|h| h.name)
        .collect()
}

#[test]
fn finding_6_relabelling_a_namespace_out_of_a_selector_is_judged_by_its_old_labels() {
    // `kubectl label ns shop env-`: the new labels leave the selector, the old ones are in it.
    let unlabel = namespace_request(
        "UPDATE",
        "shop",
        Some(json!({"kubernetes.io/metadata.name": "shop"})),
        Some(json!({"kubernetes.io/metadata.name": "shop", "env": "prod"})),
    );
    assert_eq!(
        namespace_hits(&unlabel, &namespaces()),
        ["prod-namespace-changes"]
    );
    // `kubectl label ns shop env=dev --overwrite`, and with no index at all: the request's own
    // objects decide, not what the index last saw.
    let overwrite = namespace_request(
        "UPDATE",
        "shop",
        Some(json!({"env": "dev"})),
        Some(json!({"env": "prod"})),
    );
    assert_eq!(
        namespace_hits(&overwrite, &NamespaceIndex::default()),
        ["prod-namespace-changes"]
    );
    // Into the selector: judged by the new labels, as before.
    let promote = namespace_request(
        "UPDATE",
        "dev",
        Some(json!({"env": "prod"})),
        Some(json!({"env": "dev"})),
    );
    assert_eq!(
        namespace_hits(&promote, &namespaces()),
        ["prod-namespace-changes"]
    );
    // Neither side in the selector: out of scope, even though the index says `shop` is prod
    // (the request is about the Namespace object, whose labels the request carries).
    let unrelated = namespace_request(
        "UPDATE",
        "shop",
        Some(json!({"env": "dev", "team": "a"})),
        Some(json!({"env": "dev"})),
    );
    assert!(namespace_hits(&unrelated, &namespaces()).is_empty());
}

#[test]
fn finding_6_namespace_delete_and_missing_objects() {
    // DELETE carries only the old object.
    let delete = namespace_request("DELETE", "shop", None, Some(json!({"env": "prod"})));
    assert_eq!(
        namespace_hits(&delete, &namespaces()),
        ["prod-namespace-changes"]
    );
    let delete_dev = namespace_request("DELETE", "dev", None, Some(json!({"env": "dev"})));
    assert!(namespace_hits(&delete_dev, &namespaces()).is_empty());
    // No object on either side: nothing to read labels from, so the guardrail applies.
    let bare = namespace_request("UPDATE", "dev", None, None);
    assert_eq!(
        namespace_hits(&bare, &namespaces()),
        ["prod-namespace-changes"]
    );
}

#[test]
fn finding_6_objects_inside_a_namespace_are_judged_by_the_namespace_not_by_themselves() {
    // A Deployment labelled env=prod in `dev` is not in a prod namespace; one without labels in
    // `shop` is. The old-labels rule is for Namespace objects only.
    let mut in_dev = request("UPDATE", "apps", "deployments", "", "dev", "alice", &[]);
    in_dev.object = Some(json!({"metadata": {"name": "x", "labels": {"env": "prod"}}}));
    in_dev.old_object = in_dev.object.clone();
    assert!(namespace_hits(&in_dev, &namespaces()).is_empty());
    let in_shop = request("UPDATE", "apps", "deployments", "", "shop", "alice", &[]);
    assert_eq!(
        namespace_hits(&in_shop, &namespaces()),
        ["prod-deployments"]
    );
}

const CEL_POLICIES: &str = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: scale-down}
spec:
  match:
    operations: [UPDATE]
    resources: [{apiGroups: ["apps"], resources: ["deployments"]}]
  condition: "object.spec.replicas < oldObject.spec.replicas"
  action: {type: stepUp}
  message: Scaling down needs a second look.
  messageExpression: "'replicas ' + string(oldObject.spec.replicas) + ' -> ' + string(object.spec.replicas)"
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: prod-labelled}
spec:
  match:
    resources: [{apiGroups: ["apps"], resources: ["deployments"]}]
  condition: "namespaceObject.metadata.labels.env == 'prod'"
  action: {type: warn}
  message: Production namespace.
  messageExpression: "object.spec.replicas"
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: shell-exec}
spec:
  match:
    operations: [CONNECT]
    resources: [{apiGroups: [""], resources: ["pods/exec"]}]
  condition: "object.command.exists(c, c in ['sh', 'bash', '/bin/sh']) && object.container != 'debug'"
  action: {type: deny}
  message: Interactive shells are not allowed.
"#;

fn cel_engine() -> Engine {
    Engine::new(parse_documents("cel", CEL_POLICIES).unwrap())
}

fn deployment_update(ns: &str, replicas: i64, old: i64) -> AdmissionRequest {
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u", "operation": "UPDATE",
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": ns, "name": "api",
            "userInfo": {"username": "alice"},
            "object": {"metadata": {"name": "api"}, "spec": {"replicas": replicas}},
            "oldObject": {"metadata": {"name": "api"}, "spec": {"replicas": old}}
        }
    });
    parse_review(body.to_string().as_bytes()).unwrap()
}

fn exec(command: &[&str], container: &str) -> AdmissionRequest {
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u", "operation": "CONNECT",
            "kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "subResource": "exec", "namespace": "dev", "name": "api-1",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "v1", "kind": "PodExecOptions", "stdin": true, "tty": true,
                       "container": container, "command": command}
        }
    });
    parse_review(body.to_string().as_bytes()).unwrap()
}

#[test]
fn condition_must_be_true_to_match() {
    let d = cel_engine().evaluate(&deployment_update("dev", 1, 3), &namespaces());
    assert_eq!(d.action, ActionKind::StepUp);
    assert_eq!(d.hits[0].message, "replicas 3 -> 1");
    let d = cel_engine().evaluate(&deployment_update("dev", 3, 1), &namespaces());
    assert_eq!(d.action, ActionKind::Allow);
    assert!(d.hits.is_empty());
}

#[test]
fn message_expression_falls_back_to_message() {
    // `prod-labelled` matches in `shop` (env=prod); its messageExpression is an int, not a string.
    let d = cel_engine().evaluate(&deployment_update("shop", 3, 3), &namespaces());
    assert_eq!(d.action, ActionKind::Warn);
    assert_eq!(d.hits[0].name, "prod-labelled");
    assert_eq!(d.hits[0].message, "Production namespace.");
}

#[test]
fn condition_errors_fail_closed_and_are_recorded() {
    // No oldObject on this UPDATE: `oldObject.spec` fails, so the guardrail applies.
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u", "operation": "UPDATE",
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "dev", "name": "api", "userInfo": {"username": "alice"},
            "object": {"spec": {"replicas": 1}}
        }
    });
    let request = parse_review(body.to_string().as_bytes()).unwrap();
    let d = cel_engine().evaluate(&request, &namespaces());
    assert_eq!(d.action, ActionKind::StepUp);
    let hit = &d.hits[0];
    assert!(hit.condition_error.is_some());
    assert!(
        hit.message
            .starts_with("Scaling down needs a second look. (condition could not be evaluated:"),
        "{}",
        hit.message
    );
    // A namespace never seen has no labels: reading them fails, and the guardrail applies.
    let d = cel_engine().evaluate(&deployment_update("never-seen", 3, 3), &namespaces());
    assert_eq!(d.action, ActionKind::Warn);
    assert!(d.hits[0].condition_error.is_some());
}

#[test]
fn list_function_errors_fail_closed() {
    // Conditions that fail in the lists extension (mixed types to sort, a bad slice, a range over
    // the budget) make their guardrail apply, as every evaluation error does.
    for condition in [
        "[object.spec.replicas, 'x'].sort()[0] == 1",
        "[object.spec.replicas].slice(0, 2).size() == 1",
        "lists.range(object.spec.replicas * 100000000).size() == 0",
        "[object.spec.replicas].flatten(-1).size() == 1",
    ] {
        let yaml = format!(
            r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {{name: lists}}
spec:
  match:
    operations: [UPDATE]
    resources: [{{apiGroups: ["apps"], resources: ["deployments"]}}]
  condition: "{condition}"
  action: {{type: stepUp}}
"#
        );
        let engine = Engine::new(parse_documents("lists", &yaml).unwrap());
        let d = engine.evaluate(&deployment_update("dev", 3, 3), &namespaces());
        assert_eq!(d.action, ActionKind::StepUp, "{condition}");
        assert!(d.hits[0].condition_error.is_some(), "{condition}");
    }
    // The same functions evaluating cleanly decide as written.
    let yaml = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: lists}
spec:
  match:
    operations: [UPDATE]
    resources: [{apiGroups: ["apps"], resources: ["deployments"]}]
  condition: "[object.spec.replicas, 1].sort()[0] == 0"
  action: {type: stepUp}
"#;
    let engine = Engine::new(parse_documents("lists", yaml).unwrap());
    let d = engine.evaluate(&deployment_update("dev", 3, 3), &namespaces());
    assert_eq!(d.action, ActionKind::Allow);
}

#[test]
fn connect_conditions_see_pod_exec_options() {
    let engine = cel_engine();
    assert_eq!(
        engine
            .evaluate(&exec(&["bash"], "app"), &namespaces())
            .action,
        ActionKind::Deny
    );
    assert_eq!(
        engine
            .evaluate(&exec(&["ls", "/"], "app"), &namespaces())
            .action,
        ActionKind::Allow
    );
    assert_eq!(
        engine
            .evaluate(&exec(&["sh"], "debug"), &namespaces())
            .action,
        ActionKind::Allow
    );
}

#[test]
fn explain_says_why_for_every_guardrail() {
    let (decision, explanations) =
        cel_engine().explain(&deployment_update("shop", 3, 5), &namespaces());
    assert_eq!(
        decision,
        cel_engine().evaluate(&deployment_update("shop", 3, 5), &namespaces())
    );
    assert_eq!(explanations.len(), 3);
    let scale = &explanations[0];
    assert!(scale.matched);
    assert_eq!(scale.condition.as_ref().unwrap().result, Some(true));
    assert!(explanations[1].matched);
    let shell = &explanations[2];
    assert!(!shell.matched);
    assert_eq!(shell.failed, Some("operation"));
    assert!(shell.condition.is_none());

    let (_, explanations) = cel_engine().explain(&deployment_update("dev", 5, 3), &namespaces());
    assert_eq!(explanations[0].failed, Some("condition"));
    assert_eq!(
        explanations[0].condition.as_ref().unwrap().result,
        Some(false)
    );
    let json = serde_json::to_value(&explanations[0]).unwrap();
    assert_eq!(json["matched"], false);
    assert_eq!(json["condition"]["result"], false);
}

#[test]
fn clauses_are_named_when_they_do_not_fit() {
    let (_, explanations) = engine().explain(
        &request("UPDATE", "apps", "deployments", "", "dev", "alice", &[]),
        &namespaces(),
    );
    let prod = explanations
        .iter()
        .find(|e| e.name == "prod-workloads")
        .unwrap();
    assert_eq!(prod.failed, Some("namespace"));
    let secrets = explanations
        .iter()
        .find(|e| e.name == "ci-secrets")
        .unwrap();
    assert_eq!(secrets.failed, Some("resource"));
    let (_, explanations) = engine().explain(
        &request("CREATE", "", "secrets", "", "ci", "bob", &[]),
        &namespaces(),
    );
    let secrets = explanations
        .iter()
        .find(|e| e.name == "ci-secrets")
        .unwrap();
    assert_eq!(secrets.failed, Some("subject"));
}

#[test]
fn failing_message_expression_falls_back_and_does_not_change_the_match() {
    let policy = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: msg}
spec:
  match: {operations: [UPDATE]}
  condition: "object.spec.replicas == 1"
  action: {type: deny}
  message: Fallback message.
  messageExpression: "'paused: ' + string(object.spec.paused)"
"#;
    let engine = Engine::new(parse_documents("m", policy).unwrap());
    let d = engine.evaluate(&deployment_update("dev", 1, 3), &namespaces());
    assert_eq!(d.action, ActionKind::Deny);
    assert_eq!(d.hits[0].message, "Fallback message.");
    assert!(d.hits[0].condition_error.is_none());
}

/// The resource index only skips guardrails that could not match: on every review fixture, the
/// indexed walk decides exactly as the walk over every guardrail (what `explain` does).
#[test]
fn the_resource_index_decides_as_the_full_walk_on_every_fixture() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut guardrails =
        crate::policy::load_path(std::path::Path::new(&format!("{root}/policies/library")))
            .unwrap();
    let tests =
        std::fs::read_to_string(format!("{root}/server/tests/policies/guardrails.yaml")).unwrap();
    guardrails.extend(parse_documents("guardrails.yaml", &tests).unwrap());
    // A wildcard guardrail and one on a subresource, so both halves of the index are walked.
    let extra = "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata: {name: any-delete}\nspec:\n  match: {operations: [DELETE]}\n  action: {type: audit}\n---\napiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata: {name: any-scale}\nspec:\n  match:\n    resources: [{apiGroups: [\"*\"], resources: [\"*/scale\"]}]\n  action: {type: warn}\n";
    guardrails.extend(parse_documents("extra.yaml", extra).unwrap());
    let engine = Engine::new(guardrails);
    let ns: serde_json::Value = serde_yaml::from_str(
        &std::fs::read_to_string(format!("{root}/deploy/local-namespaces.yaml")).unwrap(),
    )
    .unwrap();
    let labels = NamespaceIndex::from_objects(ns.as_array().unwrap());
    let mut compared = 0;
    for dir in ["server/tests/reviews", "policies/reviews"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            let Ok(request) = parse_review(&std::fs::read(&path).unwrap()) else {
                continue;
            };
            let indexed = engine.evaluate(&request, &labels);
            let (full, _) = engine.explain(&request, &labels);
            assert_eq!(indexed, full, "{}", path.display());
            compared += 1;
        }
    }
    assert!(compared >= 20, "{compared}");
}
