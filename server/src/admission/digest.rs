use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::AdmissionRequest;

/// Metadata fields the API server changes on its own; they must not change the digest of a retry.
const VOLATILE_METADATA: [&str; 5] = [
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "managedFields",
];

/// Subresources whose requests write `status`: there it is the change itself, not noise
/// (`*/status` updates, `certificatesigningrequests/approval` writing `status.conditions`).
const STATUS_WRITING_SUBRESOURCES: [&str; 2] = ["status", "approval"];

/// Option fields that say how a request is sent rather than what it does: `kubectl
/// --dry-run=server` followed by the real command, or another client, must digest equal.
const VOLATILE_OPTIONS: [&str; 4] = ["dryRun", "fieldManager", "fieldValidation", "apiVersion"];

/// SHA-256 (hex) over canonical JSON of who asked for what, on which cluster, with which object
/// and with which options.
///
/// The object loses volatile fields first, so the identical retry of a denied request digests equal.
/// For a create by `generateName` the API server has already generated `metadata.name` (it differs
/// on every retry), so it is left out; the request's own name is empty there.
pub fn request_digest(cluster: &str, request: &AdmissionRequest) -> String {
    let mut object = request
        .object
        .as_ref()
        .or(request.old_object.as_ref())
        .map(|o| digested_object(o, &request.sub_resource));
    if request.name.is_empty() {
        if let Some(meta) = object
            .as_mut()
            .and_then(|o| o.get_mut("metadata"))
            .and_then(Value::as_object_mut)
        {
            if meta.contains_key("generateName") {
                meta.remove("name");
            }
        }
    }
    let options = request.options.as_ref().map(digested_options);
    let subject = serde_json::json!({
        "cluster": cluster,
        "username": request.user_info.username,
        "operation": request.operation.as_str(),
        "group": request.resource.group,
        "version": request.resource.version,
        "resource": request.resource.resource,
        "subresource": request.sub_resource,
        "namespace": request.namespace,
        "name": request.name,
        "object": object.unwrap_or(Value::Null),
        "options": options.unwrap_or(Value::Null),
    });
    let mut canonical = String::new();
    write_canonical(&subject, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The object as the digest binds it: without volatile fields, and with `status` only where the
/// request writes it.
pub fn digested_object(object: &Value, subresource: &str) -> Value {
    if STATUS_WRITING_SUBRESOURCES.contains(&subresource) {
        without_volatile_metadata(object)
    } else {
        without_volatile_fields(object)
    }
}

/// Whether requests on this subresource change `status` (so it is bound and shown).
pub fn writes_status(subresource: &str) -> bool {
    STATUS_WRITING_SUBRESOURCES.contains(&subresource)
}

/// The operation's options as the digest binds them: `propagationPolicy`, `gracePeriodSeconds`,
/// `preconditions.uid` and the like stay; how the request was sent goes.
pub fn digested_options(options: &Value) -> Value {
    let mut copy = options.clone();
    if let Some(map) = copy.as_object_mut() {
        for field in VOLATILE_OPTIONS {
            map.remove(field);
        }
        if let Some(pre) = map.get_mut("preconditions").and_then(Value::as_object_mut) {
            // A resourceVersion precondition changes with every read of the object.
            pre.remove("resourceVersion");
        }
    }
    copy
}

/// A copy of an object without the fields the API server changes on its own (and without `status`).
pub fn without_volatile_fields(object: &Value) -> Value {
    let mut copy = without_volatile_metadata(object);
    if let Some(map) = copy.as_object_mut() {
        map.remove("status");
    }
    copy
}

fn without_volatile_metadata(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in VOLATILE_METADATA {
            meta.remove(field);
        }
    }
    copy
}

/// Sorted keys, no whitespace: the same value always gives the same bytes.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        write_canonical(&map[key], out);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::parse_review;

    fn review(replicas: u32, resource_version: &str) -> AdmissionRequest {
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": format!("uid-{resource_version}"), "operation": "UPDATE",
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "namespace": "payments", "name": "api",
                "userInfo": {"username": "alice"},
                "object": {"metadata": {"name": "api", "resourceVersion": resource_version, "managedFields": []},
                           "spec": {"replicas": replicas}, "status": {"readyReplicas": 1}}
            }
        });
        parse_review(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn volatile_fields_do_not_change_the_digest() {
        assert_eq!(
            request_digest("c", &review(3, "1")),
            request_digest("c", &review(3, "2"))
        );
    }

    #[test]
    fn the_change_and_the_cluster_do() {
        assert_ne!(
            request_digest("c", &review(3, "1")),
            request_digest("c", &review(4, "1"))
        );
        assert_ne!(
            request_digest("c", &review(3, "1")),
            request_digest("d", &review(3, "1"))
        );
    }

    fn parse(request: serde_json::Value) -> AdmissionRequest {
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request
        });
        parse_review(body.to_string().as_bytes()).unwrap()
    }

    fn status_update(subresource: &str, ready: u32) -> AdmissionRequest {
        parse(serde_json::json!({
            "uid": "u", "operation": "UPDATE", "subResource": subresource,
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "payments", "name": "api", "userInfo": {"username": "alice"},
            "object": {"metadata": {"name": "api"}, "spec": {"replicas": 3},
                       "status": {"readyReplicas": ready}}
        }))
    }

    #[test]
    fn finding_4_status_is_bound_where_the_subresource_writes_it() {
        assert_ne!(
            request_digest("c", &status_update("status", 1)),
            request_digest("c", &status_update("status", 2))
        );
        // Elsewhere status stays noise the API server changes on its own.
        assert_eq!(
            request_digest("c", &status_update("", 1)),
            request_digest("c", &status_update("", 2))
        );
    }

    fn delete_with(options: serde_json::Value) -> AdmissionRequest {
        parse(serde_json::json!({
            "uid": "u", "operation": "DELETE",
            "resource": {"group": "", "version": "v1", "resource": "namespaces"},
            "name": "payments", "userInfo": {"username": "alice"},
            "oldObject": {"metadata": {"name": "payments"}},
            "options": options
        }))
    }

    #[test]
    fn finding_4_options_are_bound_but_not_how_they_were_sent() {
        let orphan = serde_json::json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1",
            "propagationPolicy": "Orphan"});
        let background = serde_json::json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1",
            "propagationPolicy": "Background"});
        assert_ne!(
            request_digest("c", &delete_with(orphan.clone())),
            request_digest("c", &delete_with(background))
        );
        let mut dry = orphan.clone();
        dry["dryRun"] = serde_json::json!(["All"]);
        assert_eq!(
            request_digest("c", &delete_with(orphan)),
            request_digest("c", &delete_with(dry))
        );
        let grace = |s: i64| serde_json::json!({"gracePeriodSeconds": s});
        assert_ne!(
            request_digest("c", &delete_with(grace(0))),
            request_digest("c", &delete_with(grace(30)))
        );
    }

    fn generated(name: &str, image: &str) -> AdmissionRequest {
        parse(serde_json::json!({
            "uid": "u", "operation": "CREATE",
            "resource": {"group": "batch", "version": "v1", "resource": "jobs"},
            "namespace": "payments", "name": "", "userInfo": {"username": "ci"},
            "object": {"metadata": {"name": name, "generateName": "migrate-", "namespace": "payments"},
                       "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}
        }))
    }

    #[test]
    fn finding_5_generated_names_do_not_change_the_digest() {
        assert_eq!(
            request_digest("c", &generated("migrate-x7k2p", "app:1")),
            request_digest("c", &generated("migrate-q9z4m", "app:1"))
        );
        assert_ne!(
            request_digest("c", &generated("migrate-x7k2p", "app:1")),
            request_digest("c", &generated("migrate-x7k2p", "app:2"))
        );
    }
}
