//! Secret values never leave the webhook: what is stored and shown of a Secret says which keys a
//! change touches, not what they hold.

use serde_json::{Map, Value};

use super::AdmissionRequest;

/// The annotation `kubectl apply` writes with the whole object as JSON, values included.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Shown in place of a value that the change leaves as it was.
pub const UNCHANGED: &str = "(redacted, unchanged)";
/// Shown in place of a value that the change sets or replaces.
pub const CHANGED: &str = "(redacted, changed)";
/// Shown in place of a value that only one side has (added or removed).
pub const REDACTED: &str = "(redacted)";

/// Whether the request is about a core `Secret`, whose values must not be kept.
pub fn is_secret(request: &AdmissionRequest) -> bool {
    request.kind.group.is_empty() && request.kind.kind == "Secret"
        || request.resource.group.is_empty() && request.resource.resource == "secrets"
}

/// The request's new and old object as they may be stored and shown: for a Secret every value
/// of `data` and `stringData` and the last-applied annotation is replaced by a marker saying
/// whether the change touches it. Other objects are returned as they are.
pub fn redacted_objects(request: &AdmissionRequest) -> (Option<Value>, Option<Value>) {
    let (new, old) = (request.object.clone(), request.old_object.clone());
    if !is_secret(request) {
        return (new, old);
    }
    let mut new = new.filter(|v| !v.is_null());
    let mut old = old.filter(|v| !v.is_null());
    for field in ["data", "stringData"] {
        let before = old.as_ref().and_then(|o| o.get(field)).cloned();
        let after = new.as_ref().and_then(|o| o.get(field)).cloned();
        if let Some(map) = new.as_mut().and_then(|o| o.get_mut(field)) {
            mark(map, before.as_ref());
        }
        if let Some(map) = old.as_mut().and_then(|o| o.get_mut(field)) {
            mark(map, after.as_ref());
        }
    }
    let applied_before = annotation(old.as_ref());
    let applied_after = annotation(new.as_ref());
    for (object, other) in [(&mut new, &applied_before), (&mut old, &applied_after)] {
        if let Some(value) = object
            .as_mut()
            .and_then(|o| o.pointer_mut("/metadata/annotations"))
            .and_then(Value::as_object_mut)
            .and_then(|a| a.get_mut(LAST_APPLIED))
        {
            *value = Value::String(marker(value, other.as_ref()).into());
        }
    }
    (new, old)
}

fn annotation(object: Option<&Value>) -> Option<Value> {
    object
        .and_then(|o| o.pointer("/metadata/annotations"))
        .and_then(|a| a.get(LAST_APPLIED))
        .cloned()
}

/// Replace every value of `map` (a Secret's `data`) by its marker against the other side's map;
/// anything but an object is replaced whole.
fn mark(map: &mut Value, other: Option<&Value>) {
    let other: Option<&Map<String, Value>> = other.and_then(Value::as_object);
    match map.as_object_mut() {
        Some(values) => {
            for (key, value) in values.iter_mut() {
                *value = Value::String(marker(value, other.and_then(|o| o.get(key))).into());
            }
        }
        None => *map = Value::String(REDACTED.into()),
    }
}

fn marker(value: &Value, other: Option<&Value>) -> &'static str {
    match other {
        Some(other) if other == value => UNCHANGED,
        Some(_) => CHANGED,
        None => REDACTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::parse_review;

    fn secret_update() -> AdmissionRequest {
        let applied = r#"{"apiVersion":"v1","kind":"Secret","data":{"password":"c2VjcmV0"}}"#;
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u", "operation": "UPDATE",
                "kind": {"group": "", "version": "v1", "kind": "Secret"},
                "resource": {"group": "", "version": "v1", "resource": "secrets"},
                "namespace": "payments", "name": "db", "userInfo": {"username": "alice"},
                "object": {"metadata": {"name": "db", "annotations": {LAST_APPLIED: applied, "team": "pay"}},
                           "data": {"password": "bmV3LXNlY3JldA==", "user": "YWRtaW4=", "extra": "eA=="},
                           "stringData": {"token": "plain-token"}},
                "oldObject": {"metadata": {"name": "db", "annotations": {LAST_APPLIED: applied}},
                              "data": {"password": "c2VjcmV0", "user": "YWRtaW4="}}
            }
        });
        parse_review(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn finding_11_no_secret_value_survives_and_changes_stay_visible() {
        let request = secret_update();
        let (new, old) = redacted_objects(&request);
        let (new, old) = (new.unwrap(), old.unwrap());
        let text = format!("{new}{old}");
        for secret in [
            "bmV3LXNlY3JldA==",
            "c2VjcmV0",
            "YWRtaW4=",
            "plain-token",
            "eA==",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(new["data"]["password"], CHANGED);
        assert_eq!(new["data"]["user"], UNCHANGED);
        assert_eq!(new["data"]["extra"], REDACTED);
        assert_eq!(new["stringData"]["token"], REDACTED);
        assert_eq!(old["data"]["password"], CHANGED);
        assert_eq!(new["metadata"]["annotations"][LAST_APPLIED], UNCHANGED);
        assert_eq!(new["metadata"]["annotations"]["team"], "pay");
    }

    #[test]
    fn other_objects_are_kept_whole() {
        let mut request = secret_update();
        request.kind.kind = "ConfigMap".into();
        request.resource.resource = "configmaps".into();
        let (new, _) = redacted_objects(&request);
        assert_eq!(new.unwrap()["data"]["password"], "bmV3LXNlY3JldA==");
    }
}
