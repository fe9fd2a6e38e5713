//! What a recorded review must not keep: Secret values. A Secret's `data` and `stringData` values
//! are replaced, and so is its `last-applied-configuration` annotation, which `kubectl apply`
//! fills with the whole Secret, values included.

use serde_json::Value;

/// What a redacted value reads.
pub const REDACTED: &str = "<redacted>";

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The review's `request` as JSON to keep, with Secret values redacted in both objects.
pub fn redacted_request(request: &crate::admission::AdmissionRequest) -> Value {
    let mut value = serde_json::json!({
        "uid": request.uid,
        "kind": request.kind,
        "resource": request.resource,
        "subResource": request.sub_resource,
        "name": request.name,
        "namespace": request.namespace,
        "operation": request.operation.as_str(),
        "userInfo": request.user_info,
        "object": request.object,
        "oldObject": request.old_object,
        "dryRun": request.dry_run,
        "options": request.options,
    });
    let secret = request.resource.group.is_empty() && request.resource.resource == "secrets";
    for field in ["object", "oldObject"] {
        if let Some(object) = value.get_mut(field) {
            if secret || is_secret(object) {
                redact_secret(object);
            }
        }
    }
    value
}

fn is_secret(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Secret")
        && object
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v == "v1")
}

/// Replace every value of a Secret object, keeping its keys (the simulator may match on them).
pub fn redact_secret(object: &mut Value) {
    for field in ["data", "stringData"] {
        if let Some(Value::Object(values)) = object.get_mut(field) {
            for value in values.values_mut() {
                *value = Value::String(REDACTED.to_owned());
            }
        }
    }
    if let Some(Value::Object(annotations)) = object
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    {
        if let Some(applied) = annotations.get_mut(LAST_APPLIED) {
            *applied = Value::String(REDACTED.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_and_their_last_applied_copy_are_redacted_but_keys_kept() {
        let mut secret = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "annotations": {
                LAST_APPLIED: "{\"data\":{\"password\":\"aHVudGVyMg==\"}}", "team": "payments"}},
            "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="},
            "stringData": {"token": "s3cr3t"},
        });
        redact_secret(&mut secret);
        let text = secret.to_string();
        for value in ["aHVudGVyMg==", "YWRtaW4=", "s3cr3t"] {
            assert!(!text.contains(value), "{text}");
        }
        assert_eq!(secret["data"]["password"], REDACTED);
        assert_eq!(secret["stringData"]["token"], REDACTED);
        assert_eq!(secret["metadata"]["annotations"]["team"], "payments");
    }
}
