//! The compiled programs against the interpreter, which is what they must mean.

use serde_json::{json, Value as Json};

use super::super::{Activation, CelExpression, Inputs};
use crate::admission::{parse_review, AdmissionRequest};

/// The compiled answer (when there is one) and the interpreter's, for one expression.
fn both(
    expression: &CelExpression,
    request: &AdmissionRequest,
) -> (Option<bool>, Result<bool, String>) {
    let inputs = Inputs::new(request, None);
    let activation = Activation::new(request, &inputs).unwrap();
    let compiled = expression
        .compiled
        .as_ref()
        .and_then(|p| p.eval_bool(request));
    (compiled, expression.interpret_bool(&activation))
}

fn root() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/..").to_owned()
}

fn fixtures() -> Vec<(String, AdmissionRequest)> {
    let mut out = Vec::new();
    for dir in ["server/tests/reviews", "policies/reviews"] {
        for entry in std::fs::read_dir(format!("{}/{dir}", root())).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Ok(request) = parse_review(&std::fs::read(&path).unwrap()) {
                    out.push((path.display().to_string(), request));
                }
            }
        }
    }
    assert!(out.len() > 20, "review fixtures found: {}", out.len());
    out
}

#[test]
fn every_library_condition_compiles_and_agrees_with_the_interpreter_on_every_fixture() {
    let library = crate::policy::load_path(std::path::Path::new(&format!(
        "{}/policies/library",
        root()
    )))
    .unwrap();
    let conditions: Vec<_> = library
        .iter()
        .filter_map(|g| g.condition.as_ref().map(|c| (g.name.to_string(), c)))
        .collect();
    assert!(conditions.len() >= 10);
    for (name, condition) in &conditions {
        assert!(condition.is_compiled(), "{name} is not compiled");
    }
    let (mut answered, mut total) = (0, 0);
    for (file, request) in fixtures() {
        for (name, condition) in &conditions {
            let (compiled, interpreted) = both(condition, &request);
            if let Some(b) = compiled {
                assert_eq!(Ok(b), interpreted, "{name} on {file}");
            }
            // Where the interpreter fails (a pod's fields asked of a ConfigMap) the program must
            // hand over; where it answers, so should the program, nearly always.
            if interpreted.is_ok() {
                total += 1;
                answered += usize::from(compiled.is_some());
                if compiled.is_none() {
                    eprintln!("handed over: {name} on {file}");
                }
            }
        }
    }
    assert!(
        answered * 10 >= total * 9,
        "{answered} of {total} answered compiled"
    );
}

fn request() -> AdmissionRequest {
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u1", "operation": "UPDATE",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "subResource": "", "name": "api", "namespace": "shop",
            "userInfo": {"username": "alice", "uid": "42", "groups": ["dev", "system:authenticated"]},
            "object": {
                "metadata": {"name": "api", "labels": {"app": "api", "env": "prod"},
                             "annotations": {"note": "héllo wörld"}},
                "spec": {"replicas": 3, "ratio": 0.5, "big": 18446744073709551615u64,
                         "paused": false, "nothing": null, "tags": ["a", "b", "c"],
                         "nested": [[1, 2], {"k": "v"}], "empty": {}, "list": [],
                         "containers": [{"name": "app", "image": "r.io/app:1", "ports": [{"hostPort": 80}]},
                                        {"name": "side", "image": "nginx:latest"}]}
            },
            "oldObject": {"metadata": {"name": "api", "labels": {"app": "api"}}, "spec": {"replicas": 1}},
            "dryRun": false
        }
    });
    parse_review(body.to_string().as_bytes()).unwrap()
}

/// Expressions written to probe the edges: kinds compared across, optional chains through
/// non-maps, sizes of non-ASCII strings, `has`, `in` over maps and lists, indexing, the macros.
const PROBES: &[&str] = &[
    "object.spec.replicas == 3",
    "object.spec.replicas == 3.0",
    "object.spec.replicas == 3u",
    "object.spec.big == 18446744073709551615u",
    "object.spec.ratio == 0.5",
    "object.spec.ratio < 1.0",
    "object.spec.replicas > oldObject.spec.replicas",
    "object.spec.replicas == 'three'",
    "'a' == 1",
    "null == null",
    "object.spec.nothing == null",
    "oldObject == null",
    "object.metadata == null",
    "null == object.metadata",
    "object.spec.tags == ['a', 'b', 'c']",
    "object.spec.tags == ['a', 'b']",
    "object.spec.tags != ['c', 'b', 'a']",
    "object.spec.empty == {}",
    "object.spec.list == []",
    "object.spec.empty == []",
    "object.metadata.labels == {'app': 'api', 'env': 'prod'}",
    "object.metadata.labels == {'env': 'prod', 'app': 'api'}",
    "object.metadata.labels != oldObject.metadata.labels",
    "object.spec.nested == [[1, 2], {'k': 'v'}]",
    "[1, 2] in object.spec.nested",
    "'b' in object.spec.tags",
    "'z' in object.spec.tags",
    "'app' in object.metadata.labels",
    "'nope' in object.metadata.labels",
    "'dev' in request.userInfo.groups",
    "request.userInfo.username == 'alice' && request.operation == 'UPDATE'",
    "request.kind.kind == 'Deployment' && request.resource.group == 'apps'",
    "request.subResource == '' && request.name == 'api' && request.namespace == 'shop'",
    "request.dryRun == false",
    "request.uid == 'u1' && request.userInfo.uid == '42'",
    "object.metadata.annotations.note.size() == 11",
    "size(object.metadata.annotations.note) == 11",
    "object.spec.tags.size() == 3 && size(object.metadata.labels) == 2",
    "has(object.spec.replicas)",
    "has(object.spec.missing)",
    "has(object.spec.nothing)",
    "object.spec.?missing.orValue(7) == 7",
    "object.spec.?replicas.orValue(7) == 3",
    "object.spec.?nothing.orValue(7) == null",
    "object.spec.tags.?first.orValue('x') == 'x'",
    "object.spec.replicas.?x.orValue('y') == 'y'",
    "object.?spec.?containers.orValue([]).size() == 2",
    "object.spec.?template.?spec.?containers.orValue([]).size() == 0",
    "object.spec.?missing.?deeper.orValue({}) == {}",
    "{'a': 1}.?a.orValue(2) == 1",
    "{'a': 1}.?b.orValue(2) == 2",
    "object.spec.?missing.hasValue()",
    "object.metadata.labels['env'] == 'prod'",
    "object.spec.tags[1] == 'b'",
    "object.spec.tags[5] == 'b'",
    "object.metadata.labels['nope'] == 'x'",
    "object.spec.missing == 1",
    "object.spec.containers.exists(c, c.image.endsWith(':latest'))",
    "object.spec.containers.all(c, c.image.contains('/'))",
    "object.spec.containers.exists_one(c, c.name.startsWith('s'))",
    "object.spec.containers.exists(c, c.?ports.orValue([]).exists(p, p.?hostPort.orValue(0) != 0))",
    "object.spec.containers.map(c, c.name) == ['app', 'side']",
    "object.spec.containers.filter(c, c.name == 'side').size() == 1",
    "object.spec.tags.map(t, t + 'x') == ['ax', 'bx', 'cx']",
    "object.metadata.labels.exists(k, k.startsWith('e') && object.metadata.labels[k] == 'prod')",
    "object.metadata.labels.all(k, k.size() == 3)",
    "object.spec.containers.exists(c, c.image.matches('^r\\\\.io/'))",
    "object.spec.containers.exists(c, c.ports.exists(p, p.hostPort > 0))",
    "object.spec.tags.exists(t, t == 1)",
    "[object.spec.tags, object.spec.list].exists(l, l.exists(t, t == 'c'))",
    "object.spec.replicas > 2 ? object.spec.paused == false : true",
    "!(object.spec.paused) && !('x' in object.spec.tags)",
    "object.spec.paused || object.spec.replicas == 3",
    "object.spec.replicas || true",
    "true || object.spec.replicas",
    "false && object.spec.missing",
    "object.spec.missing && false",
    "object.spec.tags.exists(t, t.size() > 5) || 'a' < 'b'",
    "'abc' < 'abd' && 'b' > 'a' && 'é' > 'z'",
    "object.spec.replicas >= 3 && object.spec.replicas <= 3",
    "object.spec.ratio > 0",
    "object.spec.containers.exists(c, c.?securityContext.?privileged.orValue(false) == true)",
    "request.userInfo.extra == {}",
    "request.options == null",
    "request.?userInfo.?username.orValue('') == 'alice'",
    "has(request.userInfo)",
    "object.spec.tags.exists(t, t in ['a', 'q'])",
    "!(object.spec.tags[0] in ['AUDIT_WRITE', 'CHOWN'])",
    "object.spec.containers.exists(c, c.image.endsWith(':latest') || !c.image.matches(':[^/]+$'))",
    // Errors that `||`, `&&` and the macros absorb, and those they do not.
    "object.spec.missing == 1 || true",
    "object.spec.missing == 1 && false",
    "true && object.spec.missing == 1",
    "false || object.spec.missing == 1",
    "object.spec.containers.exists(c, c.ports[0].hostPort == 80)",
    "object.spec.containers.exists(c, c.ports[0].hostPort == 81)",
    "object.spec.containers.all(c, c.ports[0].hostPort == 81)",
    "object.spec.containers.all(c, c.ports[0].hostPort == 80)",
    "object.spec.tags[7] == 'x' || object.spec.tags[0] == 'a'",
    "object.spec.tags[-1] == 'x' || false",
    "object.spec.containers.map(c, c.ports[0]).size() == 2 || true",
    "object.spec.containers.map(c, c.ports[0]).size() == 2",
    "object.spec.containers.filter(c, c.ports[0].hostPort == 80).size() == 1",
    "object.spec.containers.exists_one(c, c.ports[0].hostPort == 80)",
    "!(object.spec.missing == 1) || true",
    "(object.spec.missing ? 1 : 2) == 1 || true",
    "object.metadata.labels.missing == 'x' || 'a' in object.spec.tags",
    "object.spec.replicas.x == 1 || object.spec.tags.x == 1 || object.spec.nothing.x == 1 || true",
    "object.spec.missing.?x.orValue(1) == 1 || true",
    "{'a': object.spec.missing}.?a.orValue(1) == 1 || true",
    "[object.spec.missing].size() == 1 || true",
];

#[test]
fn probes_agree_with_the_interpreter_wherever_they_answer() {
    let request = request();
    let mut answered = Vec::new();
    for source in PROBES {
        let expression = CelExpression::compile(source).unwrap();
        let (compiled, interpreted) = both(&expression, &request);
        if let Some(b) = compiled {
            assert_eq!(Ok(b), interpreted, "{source}");
            answered.push(*source);
        }
    }
    // The subset answers what it claims to (a program that always hands over would pass above).
    for source in [
        "object.spec.replicas == 3",
        "object.metadata.labels != oldObject.metadata.labels",
        "'dev' in request.userInfo.groups",
        "object.spec.containers.map(c, c.name) == ['app', 'side']",
        "object.spec.?template.?spec.?containers.orValue([]).size() == 0",
        "object.spec.containers.exists(c, c.image.matches('^r\\\\.io/'))",
        "oldObject == null",
        "object.spec.missing == 1 || true",
        "object.spec.containers.exists(c, c.ports[0].hostPort == 80)",
        "object.spec.containers.all(c, c.ports[0].hostPort == 81)",
        "object.spec.tags[7] == 'x' || object.spec.tags[0] == 'a'",
    ] {
        assert!(
            answered.contains(&source),
            "not answered compiled: {source}"
        );
    }
}

#[test]
fn out_of_subset_expressions_and_heavy_loops_go_to_the_interpreter() {
    let request = request();
    for source in [
        "object.spec.tags.join(',') == 'a,b,c'",
        "namespaceObject == null",
        "string(object.spec.replicas) == '3'",
        "object.spec.replicas + 1 == 4 || object.spec.tags.sortBy(t, t) == []",
    ] {
        let expression = CelExpression::compile(source).unwrap();
        assert!(!expression.is_compiled(), "{source}");
    }
    // A loop over more than the compiled budget allows hands over; the interpreter fails it.
    let heavy = "object.spec.tags.all(a, object.spec.tags.all(b, object.spec.tags.all(c, true)))";
    let expression = CelExpression::compile(heavy).unwrap();
    assert!(expression.is_compiled());
    let (compiled, _) = both(&expression, &request);
    assert_eq!(compiled, Some(true));
    let mut big = request.clone();
    big.object.as_mut().unwrap()["spec"]["tags"] = Json::Array(vec![json!("x"); 200]);
    let (compiled, interpreted) = both(&expression, &big);
    assert_eq!(compiled, None);
    assert!(interpreted.unwrap_err().contains("cost budget exceeded"));
}
