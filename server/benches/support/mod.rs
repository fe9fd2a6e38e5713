//! Synthetic guardrail sets, the same rules in Rego for regorus, and the review corpus.

#![allow(dead_code)]

use std::fmt::Write as _;

/// Whether the synthetic guardrails carry CEL conditions (every fourth one).
pub const WITH_CEL: bool = true;

/// Realistic AdmissionReviews from the integration-test corpus.
pub fn reviews() -> Vec<(&'static str, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reviews");
    [
        "deployment-update",
        "pod-exec",
        "clusterrolebinding-create",
        "secret-update-ci",
        "namespace-delete",
        "widget-create",
    ]
    .into_iter()
    .map(|name| {
        (
            name,
            std::fs::read_to_string(format!("{dir}/{name}.json")).expect("review corpus"),
        )
    })
    .collect()
}

/// Namespace objects the selectors look at.
pub fn namespaces_json() -> serde_json::Value {
    let mut items = Vec::new();
    for i in 0..200 {
        items.push(serde_json::json!({"metadata": {"name": format!("ns-{i}"), "labels": {"env": if i % 2 == 0 { "prod" } else { "dev" }, "team": format!("t{i}")}}}));
    }
    items.push(serde_json::json!({"metadata": {"name": "payments", "labels": {"env": "prod", "team": "t1"}}}));
    serde_json::Value::Array(items)
}

/// A regorus engine over the Rego rules, with the Namespace labels as `data.namespaces`.
pub fn rego_engine(rego: String, namespaces: &serde_json::Value) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine.add_policy("bench.rego".into(), rego).expect("rego");
    let by_name: serde_json::Map<String, serde_json::Value> = namespaces
        .as_array()
        .expect("list")
        .iter()
        .map(|o| {
            (
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                o["metadata"].clone(),
            )
        })
        .collect();
    let data = serde_json::json!({ "namespaces": by_name });
    engine
        .add_data(regorus::Value::from_json_str(&data.to_string()).expect("data"))
        .expect("data");
    engine
}

/// The reviews as regorus input values.
pub fn rego_inputs(reviews: &[(&'static str, String)]) -> Vec<regorus::Value> {
    reviews
        .iter()
        .map(|(_, body)| regorus::Value::from_json_str(body).expect("input"))
        .collect()
}

/// `n` guardrails of five shapes (every fourth with a CEL condition when `cel` is set), as YAML and as
/// equivalent Rego rules producing the set `data.countersign.hits`.
pub fn guardrails(n: usize, cel: bool) -> (String, String) {
    let mut yaml = String::new();
    let mut rego = String::from(
        "package countersign\n\nimport rego.v1\n\nsub := object.get(input.request, \"subResource\", \"\")\nns := object.get(input.request, \"namespace\", \"\")\ngroups := object.get(input.request.userInfo, \"groups\", [])\nlabels := object.get(object.get(data.namespaces, ns, {}), \"labels\", {})\n\n",
    );
    for i in 0..n {
        let name = format!("g{i}");
        let with_cel = cel && i % 4 == 0;
        let _ = writeln!(yaml, "---\napiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata: {{name: {name}}}\nspec:");
        match i % 5 {
            0 => {
                let _ = writeln!(yaml, "  match:\n    operations: [CREATE, UPDATE, DELETE]\n    resources: [{{apiGroups: [apps], resources: [deployments, statefulsets]}}]\n    namespaces: {{names: [\"prod-{i}*\", \"team{i}-prod\", \"payments\"]}}\n    subjects: {{exclude: {{groups: [\"system:masters\"]}}}}\n  action: {{type: stepUp}}");
                let cond_rego = if with_cel {
                    let _ = writeln!(
                        yaml,
                        "  condition: \"object.spec.replicas < oldObject.spec.replicas\""
                    );
                    "\n  input.request.object.spec.replicas < input.request.oldObject.spec.replicas"
                } else {
                    ""
                };
                let _ = writeln!(rego, "hits contains \"{name}\" if {{\n  input.request.operation in {{\"CREATE\", \"UPDATE\", \"DELETE\"}}\n  input.request.resource.group == \"apps\"\n  input.request.resource.resource in {{\"deployments\", \"statefulsets\"}}\n  sub == \"\"\n  ns_{name}\n  not \"system:masters\" in groups{cond_rego}\n}}\n\nns_{name} if startswith(ns, \"prod-{i}\")\n\nns_{name} if ns in {{\"team{i}-prod\", \"payments\"}}\n");
            }
            1 => {
                let _ = writeln!(yaml, "  match:\n    operations: [CONNECT]\n    resources: [{{apiGroups: [\"\"], resources: [pods/exec, pods/attach]}}]\n    namespaces: {{selector: {{matchLabels: {{env: prod, team: t{}}}}}}}\n  action: {{type: deny}}", i % 3);
                let cond_rego = if with_cel {
                    let _ = writeln!(
                        yaml,
                        "  condition: \"object.command.exists(c, c.contains('sh'))\""
                    );
                    "\n  some c in input.request.object.command\n  contains(c, \"sh\")"
                } else {
                    ""
                };
                let _ = writeln!(rego, "hits contains \"{name}\" if {{\n  input.request.operation == \"CONNECT\"\n  input.request.resource.group == \"\"\n  input.request.resource.resource == \"pods\"\n  sub in {{\"exec\", \"attach\"}}\n  labels.env == \"prod\"\n  labels.team == \"t{}\"{cond_rego}\n}}\n", i % 3);
            }
            2 => {
                let _ = writeln!(yaml, "  match:\n    resources: [{{apiGroups: [rbac.authorization.k8s.io], resources: [clusterrolebindings]}}]\n    subjects: {{users: [\"user{i}@example.com\", \"alice@example.com\"]}}\n  action: {{type: warn}}\n  message: bindings are reviewed");
                let cond_rego = if with_cel {
                    let _ = writeln!(
                        yaml,
                        "  condition: \"object.roleRef.name == 'cluster-admin'\""
                    );
                    "\n  input.request.object.roleRef.name == \"cluster-admin\""
                } else {
                    ""
                };
                let _ = writeln!(rego, "hits contains \"{name}\" if {{\n  input.request.resource.group == \"rbac.authorization.k8s.io\"\n  input.request.resource.resource == \"clusterrolebindings\"\n  sub == \"\"\n  input.request.userInfo.username in {{\"user{i}@example.com\", \"alice@example.com\"}}{cond_rego}\n}}\n");
            }
            3 => {
                let _ = writeln!(yaml, "  match:\n    resources: [{{apiGroups: [\"\"], resources: [secrets]}}]\n    namespaces: {{names: [\"ns-{i}\", \"payments\"]}}\n    subjects: {{serviceAccounts: [\"ci/deployer{i}\", \"ci/deployer\"]}}\n  action: {{type: audit}}");
                let cond_rego = if with_cel {
                    let _ = writeln!(
                        yaml,
                        "  condition: \"has(object.data) && size(object.data) > 0\""
                    );
                    "\n  count(input.request.object.data) > 0"
                } else {
                    ""
                };
                let _ = writeln!(rego, "hits contains \"{name}\" if {{\n  input.request.resource.group == \"\"\n  input.request.resource.resource == \"secrets\"\n  sub == \"\"\n  ns in {{\"ns-{i}\", \"payments\"}}\n  input.request.userInfo.username in {{\"system:serviceaccount:ci:deployer{i}\", \"system:serviceaccount:ci:deployer\"}}{cond_rego}\n}}\n");
            }
            _ => {
                let _ = writeln!(yaml, "  match:\n    resources: [{{apiGroups: [\"example{i}.com\"], resources: [\"*\"]}}]\n  action: {{type: stepUp}}");
                let _ = writeln!(rego, "hits contains \"{name}\" if {{\n  input.request.resource.group == \"example{i}.com\"\n  sub == \"\"\n}}\n");
            }
        }
    }
    (yaml, rego)
}
