//! Finding 14 (issue 8): the webhook configuration sends only what guardrails can match, and never
//! the system components that keep the cluster running.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::admission::parse_review;
use crate::policy::{load_path, parse_documents, Activation, CelExpression, Inputs};

fn repo(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn library() -> Vec<Guardrail> {
    load_path(&repo("policies/library")).unwrap()
}

fn placeholder() -> WebhookOptions {
    WebhookOptions::new(ca_bundle(CaSource::Placeholder).unwrap())
}

fn webhooks(generated: &Generated) -> &[ValidatingWebhook] {
    generated.config.webhooks.as_deref().unwrap()
}

/// Whether the API server would call `webhook` for this request, judging by its match conditions
/// (evaluated with Countersign's own CEL, over the request as the webhook sees it).
fn sent(webhook: &ValidatingWebhook, review: serde_json::Value) -> bool {
    let body =
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": review});
    let request = parse_review(body.to_string().as_bytes()).unwrap();
    let inputs = Inputs::new(&request, None);
    let activation = Activation::new(&request, &inputs).unwrap();
    webhook.match_conditions.iter().flatten().all(|c| {
        let expression = CelExpression::compile(&c.expression)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", c.name, c.expression));
        expression
            .eval_bool(&activation)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name))
    })
}

fn request(
    op: &str,
    group: &str,
    resource: &str,
    sub: &str,
    namespace: &str,
    user: &str,
    groups: &[&str],
) -> serde_json::Value {
    json!({
        "uid": "u", "operation": op,
        "resource": {"group": group, "version": "v1", "resource": resource},
        "subResource": sub, "namespace": namespace, "name": "x",
        "userInfo": {"username": user, "groups": groups},
        "object": {"metadata": {"name": "x"}}
    })
}

/// Every `group resource` a rule of the webhook lists.
fn listed(webhook: &ValidatingWebhook) -> Vec<String> {
    let mut out = Vec::new();
    for rule in webhook.rules.iter().flatten() {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                out.push(format!("{group} {resource}"));
            }
        }
    }
    out.sort();
    out
}

/// The API server's own checks on a rule's resources (`validateResources` in
/// k8s.io/kubernetes/pkg/apis/admissionregistration/validation).
fn valid_resources(resources: &[String]) -> Result<(), String> {
    let (mut double, mut single, mut plain) = (false, false, false);
    let mut wildcard_sub = BTreeSet::new();
    let mut wildcard_res = BTreeSet::new();
    for r in resources {
        double |= r == "*/*";
        single |= r == "*";
        let Some((res, sub)) = r.split_once('/') else {
            plain |= r != "*";
            continue;
        };
        if wildcard_sub.contains(res) {
            return Err(format!("if '{res}/*' is present, must not specify {r}"));
        }
        if wildcard_res.contains(sub) {
            return Err(format!("if '*/{sub}' is present, must not specify {r}"));
        }
        if sub == "*" {
            wildcard_sub.insert(res.to_owned());
        }
        if res == "*" {
            wildcard_res.insert(sub.to_owned());
        }
    }
    if resources.len() > 1 && double {
        return Err("if '*/*' is present, must not specify other resources".into());
    }
    if single && plain {
        return Err(
            "if '*' is present, must not specify other resources without subresources".into(),
        );
    }
    Ok(())
}

fn assert_valid(generated: &Generated) {
    for webhook in webhooks(generated) {
        for rule in webhook.rules.iter().flatten() {
            let groups = rule.api_groups.as_deref().unwrap_or_default();
            assert!(
                groups.len() == 1 || !groups.iter().any(|g| g == "*"),
                "{groups:?}"
            );
            valid_resources(rule.resources.as_deref().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}: {rule:?}"));
        }
        let names: BTreeSet<&str> = webhook
            .match_conditions
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            names.len(),
            webhook.match_conditions.iter().flatten().count()
        );
    }
    // And the YAML reads back as the Kubernetes type.
    let back: ValidatingWebhookConfiguration = serde_yaml::from_str(&generated.yaml).unwrap();
    assert_eq!(back, generated.config);
}

#[test]
fn finding_14_checked_in_webhook_configuration_is_generated_from_the_library() {
    let generated = generate(&library(), &placeholder()).unwrap();
    let shipped = std::fs::read_to_string(repo("deploy/validating-webhook.yaml")).unwrap();
    assert!(
        shipped == generated.yaml,
        "deploy/validating-webhook.yaml is stale; regenerate it with\n  cargo run -p server --bin \
         countersign -- webhook-config --policies policies/library --ca-bundle-placeholder \
         -o deploy/validating-webhook.yaml\n--- generated:\n{}",
        generated.yaml
    );
    // The shipped file is a ValidatingWebhookConfiguration as the API server reads it.
    let parsed: ValidatingWebhookConfiguration = serde_yaml::from_str(&shipped).unwrap();
    let hooks = parsed.webhooks.unwrap();
    assert_eq!(
        hooks.len(),
        1,
        "every library guardrail blocks: one webhook"
    );
    let hook = &hooks[0];
    assert_eq!(hook.name, ENFORCING_WEBHOOK);
    assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(hook.side_effects, "NoneOnDryRun");
    assert_eq!(hook.admission_review_versions, ["v1"]);
    assert_eq!(hook.timeout_seconds, Some(5));
    assert!(hook.object_selector.is_none());
    assert_eq!(
        hook.client_config
            .ca_bundle
            .as_ref()
            .map(|b| b.0.as_slice()),
        Some(CA_PLACEHOLDER.as_bytes())
    );
    let service = hook.client_config.service.as_ref().unwrap();
    assert_eq!(
        (service.namespace.as_str(), service.name.as_str()),
        ("countersign", "countersign")
    );
    assert_eq!(service.path.as_deref(), Some("/k8s/admit"));
    assert_valid(&generated);
}

#[test]
fn finding_14_only_resources_the_library_matches_are_listed() {
    let generated = generate(&library(), &placeholder()).unwrap();
    let hook = &webhooks(&generated)[0];
    let listed = listed(hook);
    for wanted in [
        " pods",
        " pods/ephemeralcontainers",
        " pods/exec",
        " pods/attach",
        " pods/portforward",
        " secrets",
        " namespaces",
        "apps deployments",
        "apps deployments/scale",
        "apps statefulsets/scale",
        "batch cronjobs",
        "apiextensions.k8s.io customresourcedefinitions",
        "rbac.authorization.k8s.io clusterrolebindings",
    ] {
        assert!(
            listed.contains(&wanted.to_owned()),
            "{wanted} missing: {listed:?}"
        );
    }
    for never in ["*", "*/*"] {
        assert!(
            !listed.iter().any(|l| l.ends_with(&format!(" {never}"))),
            "{listed:?}"
        );
    }
    assert!(
        !listed
            .iter()
            .any(|l| l.contains("leases") || l.contains("events") || l.contains("nodes")),
        "{listed:?}"
    );
    // The API server never sends webhook configurations to webhooks: left out, and said so.
    assert!(!listed
        .iter()
        .any(|l| l.starts_with("admissionregistration")));
    assert!(
        generated
            .warnings
            .iter()
            .any(|w| w.contains("webhook-configurations") && w.contains("RBAC")),
        "{:?}",
        generated.warnings
    );
    // Operations are the guardrails' own: namespaces only for UPDATE (labels, any subresource) and
    // DELETE.
    let namespaces_ops: Vec<String> = hook
        .rules
        .iter()
        .flatten()
        .filter(|r| {
            r.resources
                .iter()
                .flatten()
                .any(|x| x.starts_with("namespaces"))
        })
        .flat_map(|r| r.operations.clone().unwrap_or_default())
        .collect();
    assert_eq!(namespaces_ops, ["UPDATE", "DELETE"]);
}

#[test]
fn finding_14_system_components_are_not_sent() {
    let generated = generate(&library(), &placeholder()).unwrap();
    let hook = &webhooks(&generated)[0];
    let node = ["system:nodes", "system:authenticated"];
    // The kubelet renewing its lease, and a lease in kube-node-lease by anyone.
    assert!(!sent(
        hook,
        request(
            "UPDATE",
            "coordination.k8s.io",
            "leases",
            "",
            "kube-node-lease",
            "system:node:worker-1",
            &node
        )
    ));
    assert!(!sent(
        hook,
        request(
            "UPDATE",
            "coordination.k8s.io",
            "leases",
            "",
            "kube-node-lease",
            "alice",
            &[]
        )
    ));
    // The kubelet's mirror pods and status, by user name or by group alone.
    assert!(!sent(
        hook,
        request(
            "CREATE",
            "",
            "pods",
            "",
            "kube-system",
            "system:node:worker-1",
            &node
        )
    ));
    assert!(!sent(
        hook,
        request(
            "UPDATE",
            "",
            "pods",
            "",
            "dev",
            "kubelet",
            &["system:nodes"]
        )
    ));
    // Control plane and kube-system controllers.
    assert!(!sent(
        hook,
        request(
            "CREATE",
            "",
            "pods",
            "binding",
            "dev",
            "system:kube-scheduler",
            &[]
        )
    ));
    assert!(!sent(
        hook,
        request(
            "UPDATE",
            "apps",
            "deployments",
            "",
            "dev",
            "system:kube-controller-manager",
            &[]
        )
    ));
    assert!(!sent(
        hook,
        request(
            "UPDATE",
            "rbac.authorization.k8s.io",
            "clusterroles",
            "",
            "",
            "system:apiserver",
            &["system:masters"]
        )
    ));
    assert!(!sent(
        hook,
        request(
            "CREATE",
            "",
            "pods",
            "",
            "dev",
            "system:serviceaccount:kube-system:replicaset-controller",
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system"
            ]
        )
    ));
    // Countersign itself.
    assert!(!sent(
        hook,
        request(
            "UPDATE",
            "",
            "secrets",
            "",
            "countersign",
            "system:serviceaccount:countersign:countersign",
            &[]
        )
    ));
    // People and other service accounts are sent, including cluster admins (guardrails decide).
    assert!(sent(
        hook,
        request(
            "CONNECT",
            "",
            "pods",
            "exec",
            "payments",
            "alice",
            &["developers"]
        )
    ));
    assert!(sent(
        hook,
        request(
            "UPDATE",
            "",
            "namespaces",
            "",
            "payments",
            "root",
            &["system:masters"]
        )
    ));
    assert!(sent(
        hook,
        request(
            "UPDATE",
            "apps",
            "deployments",
            "",
            "payments",
            "system:serviceaccount:ci:deployer",
            &["system:serviceaccounts"]
        )
    ));
    // A lease elsewhere is a lease like any other resource (not listed by the library anyway).
    assert!(sent(
        hook,
        request(
            "UPDATE",
            "coordination.k8s.io",
            "leases",
            "",
            "dev",
            "alice",
            &[]
        )
    ));
}

#[test]
fn finding_14_our_service_account_is_the_one_given() {
    let options = placeholder()
        .with_service_account("security/countersign-webhook")
        .unwrap();
    let generated = generate(&library(), &options).unwrap();
    let hook = &webhooks(&generated)[0];
    assert!(!sent(
        hook,
        request(
            "UPDATE",
            "",
            "secrets",
            "",
            "security",
            "system:serviceaccount:security:countersign-webhook",
            &[]
        )
    ));
    assert!(sent(
        hook,
        request(
            "UPDATE",
            "",
            "secrets",
            "",
            "countersign",
            "system:serviceaccount:countersign:countersign",
            &[]
        )
    ));
    assert!(placeholder().with_service_account("no-slash").is_err());
}

const TARGETING: &str = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: gc-deletes}
spec:
  match:
    operations: [DELETE]
    resources: [{apiGroups: ["apps"], resources: ["deployments"]}]
    subjects: {serviceAccounts: ["kube-system/generic-garbage-collector"], users: ["system:kube-scheduler"]}
  action: {type: deny}
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: node-secrets}
spec:
  match:
    resources: [{apiGroups: [""], resources: ["secrets"]}]
    subjects: {groups: ["system:nodes"], serviceAccounts: ["countersign/countersign"]}
  action: {type: stepUp}
"#;

#[test]
fn finding_14_a_skipped_identity_a_guardrail_names_is_sent_with_a_warning() {
    let generated = generate(&parse_documents("t", TARGETING).unwrap(), &placeholder()).unwrap();
    let hook = &webhooks(&generated)[0];
    let gc = "system:serviceaccount:kube-system:generic-garbage-collector";
    assert!(sent(
        hook,
        request("DELETE", "apps", "deployments", "", "dev", gc, &[])
    ));
    assert!(!sent(
        hook,
        request(
            "DELETE",
            "apps",
            "deployments",
            "",
            "dev",
            "system:serviceaccount:kube-system:other",
            &[]
        )
    ));
    assert!(sent(
        hook,
        request(
            "CREATE",
            "",
            "pods",
            "binding",
            "dev",
            "system:kube-scheduler",
            &[]
        )
    ));
    assert!(!sent(
        hook,
        request(
            "UPDATE",
            "apps",
            "deployments",
            "",
            "dev",
            "system:kube-controller-manager",
            &[]
        )
    ));
    assert!(sent(
        hook,
        request(
            "UPDATE",
            "",
            "secrets",
            "",
            "dev",
            "system:node:worker-1",
            &["system:nodes"]
        )
    ));
    assert!(sent(
        hook,
        request(
            "UPDATE",
            "",
            "secrets",
            "",
            "countersign",
            "system:serviceaccount:countersign:countersign",
            &[]
        )
    ));
    let warnings = generated.warnings.join("\n");
    for named in [
        gc,
        "system:kube-scheduler",
        "group system:nodes",
        "system:serviceaccount:countersign:countersign",
    ] {
        assert!(warnings.contains(named), "{named}: {warnings}");
        assert!(generated
            .yaml
            .contains(&format!("# warning: a guardrail names {named}")));
    }
}

const MIXED: &str = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: no-exec}
spec:
  match:
    operations: [CONNECT]
    resources: [{apiGroups: [""], resources: ["pods/exec"]}]
  action: {type: deny}
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: record-connects}
spec:
  match:
    operations: [CONNECT]
    resources: [{apiGroups: [""], resources: ["pods/*"]}]
  action: {type: audit}
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: exec-warning}
spec:
  match:
    operations: [CONNECT]
    resources: [{apiGroups: [""], resources: ["pods/exec"]}]
  action: {type: warn}
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: secrets-trial}
spec:
  mode: dryRun
  match:
    resources: [{apiGroups: [""], resources: ["secrets", "configmaps"]}]
  action: {type: deny}
"#;

#[test]
fn finding_14_guardrails_that_only_record_go_to_a_webhook_that_fails_open() {
    let generated = generate(&parse_documents("t", MIXED).unwrap(), &placeholder()).unwrap();
    assert_valid(&generated);
    let hooks = webhooks(&generated);
    assert_eq!(hooks.len(), 2);
    let (enforcing, recording) = (&hooks[0], &hooks[1]);
    assert_eq!(enforcing.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(listed(enforcing), [" pods/exec"]);
    assert_eq!(recording.name, RECORDING_WEBHOOK);
    assert_eq!(recording.failure_policy.as_deref(), Some("Ignore"));
    // exec-warning adds nothing the enforcing webhook does not get already.
    assert_eq!(listed(recording), [" configmaps", " pods/*", " secrets"]);
    // Each request reaches Countersign once: exec only through the enforcing webhook.
    let exec = request("CONNECT", "", "pods", "exec", "dev", "alice", &[]);
    let attach = request("CONNECT", "", "pods", "attach", "dev", "alice", &[]);
    assert!(sent(enforcing, exec.clone()));
    assert!(!sent(recording, exec));
    assert!(sent(recording, attach));
    assert!(sent(
        recording,
        request("UPDATE", "", "secrets", "", "dev", "alice", &[])
    ));
    // Only blocking guardrails: one webhook; only recording ones: one (that fails open).
    let only_audit = parse_documents("t", MIXED)
        .unwrap()
        .into_iter()
        .filter(|g| g.name.as_str() == "secrets-trial")
        .collect::<Vec<_>>();
    let generated = generate(&only_audit, &placeholder()).unwrap();
    assert_eq!(webhooks(&generated).len(), 1);
    assert_eq!(
        webhooks(&generated)[0].failure_policy.as_deref(),
        Some("Ignore")
    );
    assert!(matches!(
        generate(&[], &placeholder()),
        Err(WebhookConfigError::NothingToRoute)
    ));
}

const WILDCARDS: &str = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: prod-anything}
spec:
  match:
    operations: [CREATE, UPDATE, DELETE]
    namespaces: {names: ["prod-*"], exclude: ["kube-system", "prod-sandbox"]}
  action: {type: stepUp}
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: prod-pods}
spec:
  match:
    resources: [{apiGroups: [""], resources: ["pods", "pods/*"]}, {apiGroups: ["*"], resources: ["*"]}]
    namespaces: {names: ["prod-*"], exclude: ["kube-system", "ephemeral-*"]}
  action: {type: deny}
"#;

#[test]
fn finding_14_wildcards_stay_valid_and_namespace_scoped() {
    let guardrails = parse_documents("t", WILDCARDS).unwrap();
    let generated = generate(&guardrails, &placeholder()).unwrap();
    assert_valid(&generated);
    let hook = &webhooks(&generated)[0];
    let rules = hook.rules.as_deref().unwrap();
    // Everything in a namespace, and the Namespace objects themselves; nothing else cluster-scoped.
    assert!(rules
        .iter()
        .any(|r| r.scope.as_deref() == Some("Namespaced")
            && r.resources.as_deref() == Some(&["*/*".to_owned()][..])
            && r.operations.as_deref()
                == Some(
                    &[
                        "CREATE".to_owned(),
                        "UPDATE".to_owned(),
                        "DELETE".to_owned()
                    ][..]
                )));
    // A wildcard is never cluster-wide: only named resources (Namespace objects, pods) are not
    // limited to namespaces.
    assert!(rules
        .iter()
        .all(|r| r.scope.as_deref() == Some("Namespaced")
            || r.resources.iter().flatten().all(|x| !x.starts_with('*'))));
    // Both exclude kube-system by name: the API server need not send it.
    let selector = hook.namespace_selector.as_ref().unwrap();
    let requirement = &selector.match_expressions.as_deref().unwrap()[0];
    assert_eq!(requirement.key, "kubernetes.io/metadata.name");
    assert_eq!(requirement.operator, "NotIn");
    assert_eq!(
        requirement.values.as_deref(),
        Some(&["kube-system".to_owned()][..])
    );
    // A guardrail without a namespace clause applies everywhere: no selector, and `*/*` alone.
    let mut everywhere = guardrails;
    everywhere[0].matcher.namespaces = None;
    let generated = generate(&everywhere, &placeholder()).unwrap();
    assert_valid(&generated);
    let hook = &webhooks(&generated)[0];
    assert!(hook.namespace_selector.is_none());
    assert!(
        listed(hook).contains(&"* */*".to_owned()),
        "{:?}",
        listed(hook)
    );
}

#[test]
fn finding_14_ca_bundle_is_filled_in_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, pem).unwrap();
    let bundle = ca_bundle(CaSource::File(&file)).unwrap();
    let mut options = WebhookOptions::new(bundle);
    options.client = Client::url("https://countersign.example.com:8443/k8s/admit").unwrap();
    let generated = generate(&library(), &options).unwrap();
    let config = &webhooks(&generated)[0].client_config;
    assert_eq!(config.ca_bundle.as_ref().unwrap().0, pem.as_bytes());
    assert_eq!(
        config.url.as_deref(),
        Some("https://countersign.example.com:8443/k8s/admit")
    );
    assert!(config.service.is_none());
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(pem);
    assert!(generated.yaml.contains(&encoded));
    assert!(!generated.yaml.contains("placeholder"));

    // The data dir `serve` made its CA in.
    let missing = ca_bundle(CaSource::DataDir(dir.path())).unwrap_err();
    assert!(matches!(missing, WebhookConfigError::NoCaBundle(_)));
    assert!(
        missing.to_string().contains("tls/ca.crt") && missing.to_string().contains("--ca-bundle")
    );
    std::fs::create_dir(dir.path().join("tls")).unwrap();
    std::fs::write(dir.path().join("tls/ca.crt"), pem).unwrap();
    assert_eq!(
        ca_bundle(CaSource::DataDir(dir.path())).unwrap(),
        pem.as_bytes()
    );
    // Something that is not a certificate is refused.
    std::fs::write(&file, "hello").unwrap();
    assert!(matches!(
        ca_bundle(CaSource::File(&file)),
        Err(WebhookConfigError::NotPem(_))
    ));
    assert!(Client::url("http://countersign:8443/k8s/admit").is_err());
    assert!(Client::url("https://countersign:8443/k8s/admit?x=1").is_err());
}
