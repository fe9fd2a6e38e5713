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

/// SHA-256 (hex) over canonical JSON of who asked for what, on which cluster, with which object.
///
/// The object loses volatile fields first, so the identical retry of a denied request digests equal.
pub fn request_digest(cluster: &str, request: &AdmissionRequest) -> String {
    let object = request
        .object
        .as_ref()
        .or(request.old_object.as_ref())
        .map(without_volatile_fields);
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
    });
    let mut canonical = String::new();
    write_canonical(&subject, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// A copy of an object without the fields the API server changes on its own (and without `status`).
pub fn without_volatile_fields(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in VOLATILE_METADATA {
                meta.remove(field);
            }
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
}
