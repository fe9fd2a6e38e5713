use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::policy::Operation;

/// Why an AdmissionReview body was refused; the message goes back to the API server as HTTP 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReviewError {
    /// Not JSON, or the wrong shape.
    #[error("malformed AdmissionReview: {0}")]
    Malformed(String),
    /// Wrong apiVersion.
    #[error("unsupported apiVersion `{0}`: expected admission.k8s.io/v1")]
    ApiVersion(String),
    /// Wrong kind.
    #[error("unsupported kind `{0}`: expected AdmissionReview")]
    Kind(String),
    /// No `request`.
    #[error("AdmissionReview has no request")]
    MissingRequest,
}

/// group/version/kind or group/version/resource as the review spells them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    /// API group, empty for core.
    #[serde(default)]
    pub group: String,
    /// Version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
}

/// The resource half of a review.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct GroupVersionResource {
    /// API group, empty for core.
    #[serde(default)]
    pub group: String,
    /// Version.
    #[serde(default)]
    pub version: String,
    /// Plural resource name.
    #[serde(default)]
    pub resource: String,
}

/// Who sent the request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct UserInfo {
    /// Kubernetes username.
    #[serde(default)]
    pub username: String,
    /// Kubernetes uid of the user.
    #[serde(default)]
    pub uid: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Extra attributes.
    #[serde(default)]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The request inside an AdmissionReview.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Echoed in the response.
    pub uid: String,
    /// Kind of the object.
    #[serde(default)]
    pub kind: GroupVersionKind,
    /// Resource being changed.
    #[serde(default)]
    pub resource: GroupVersionResource,
    /// Subresource, empty if none.
    #[serde(default)]
    pub sub_resource: String,
    /// Object name (may be empty on CREATE with generateName).
    #[serde(default)]
    pub name: String,
    /// Namespace, empty for cluster-scoped resources.
    #[serde(default)]
    pub namespace: String,
    /// Operation.
    pub operation: Operation,
    /// Requesting user.
    #[serde(default)]
    pub user_info: UserInfo,
    /// New object (CREATE, UPDATE, CONNECT options).
    #[serde(default)]
    pub object: Option<Value>,
    /// Old object (UPDATE, DELETE).
    #[serde(default)]
    pub old_object: Option<Value>,
    /// Whether nothing will be persisted.
    #[serde(default)]
    pub dry_run: bool,
    /// The operation's options (CreateOptions, UpdateOptions, DeleteOptions), when sent.
    #[serde(default)]
    pub options: Option<Value>,
    /// Size of the review it came in, in bytes (what queues holding it are bounded by).
    #[serde(skip)]
    pub wire_bytes: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    request: Option<AdmissionRequest>,
}

/// The envelope without its request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

fn check_head(api_version: String, kind: String) -> Result<(), ReviewError> {
    if api_version != "admission.k8s.io/v1" {
        return Err(ReviewError::ApiVersion(api_version));
    }
    if kind != "AdmissionReview" {
        return Err(ReviewError::Kind(kind));
    }
    Ok(())
}

/// Parse an AdmissionReview v1 body into its request.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest, ReviewError> {
    // One pass straight from the bytes: building a JSON tree of the whole review first and then
    // the request from it parsed the objects twice, the costliest part of a large review.
    let mut json = serde_json::Deserializer::from_slice(body);
    let envelope: Envelope = match serde_path_to_error::deserialize(&mut json) {
        Ok(envelope) => envelope,
        Err(e) => {
            // A review of another version or kind is told so, not what its request lacks: read
            // the envelope alone (the request skipped unparsed) to say which.
            if let Ok(head) = serde_json::from_slice::<Head>(body) {
                check_head(head.api_version, head.kind)?;
            }
            return Err(ReviewError::Malformed(e.to_string()));
        }
    };
    json.end()
        .map_err(|e| ReviewError::Malformed(e.to_string()))?;
    check_head(envelope.api_version, envelope.kind)?;
    let mut request = envelope.request.ok_or(ReviewError::MissingRequest)?;
    request.wire_bytes = body.len();
    if request.uid.is_empty() {
        return Err(ReviewError::Malformed("request.uid is empty".into()));
    }
    Ok(request)
}

/// The verdict to send back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// HTTP-style status code for refusals (403).
    pub code: Option<u16>,
    /// Message for refusals.
    pub message: Option<String>,
    /// Warnings shown by kubectl.
    pub warnings: Vec<String>,
    /// Annotations added to the Kubernetes audit event.
    pub audit_annotations: BTreeMap<String, String>,
}

impl Verdict {
    /// Admit.
    pub fn allow() -> Self {
        Self {
            allowed: true,
            ..Self::default()
        }
    }

    /// Refuse with 403 and a message.
    pub fn deny(message: impl Into<String>) -> Self {
        Self {
            allowed: false,
            code: Some(403),
            message: Some(message.into()),
            ..Self::default()
        }
    }

    /// The AdmissionReview v1 response body for the request `uid`.
    pub fn to_review(&self, uid: &str) -> Value {
        let mut response = serde_json::json!({ "uid": uid, "allowed": self.allowed });
        if let Some(code) = self.code {
            response["status"] = serde_json::json!({
                "code": code,
                "message": self.message.clone().unwrap_or_default(),
                "reason": "Forbidden",
            });
        }
        if !self.warnings.is_empty() {
            response["warnings"] = serde_json::json!(self.warnings);
        }
        if !self.audit_annotations.is_empty() {
            response["auditAnnotations"] = serde_json::json!(self.audit_annotations);
        }
        serde_json::json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_envelopes_clearly() {
        assert!(matches!(
            parse_review(b"{not json"),
            Err(ReviewError::Malformed(_))
        ));
        assert_eq!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#)
                .unwrap_err(),
            ReviewError::ApiVersion("admission.k8s.io/v1beta1".into())
        );
        // The envelope is judged before the request inside it.
        assert_eq!(
            parse_review(
                br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}"#
            )
            .unwrap_err(),
            ReviewError::ApiVersion("admission.k8s.io/v1beta1".into())
        );
        assert_eq!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{}}"#)
                .unwrap_err(),
            ReviewError::Kind("Pod".into())
        );
        assert!(matches!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"} x"#),
            Err(ReviewError::Malformed(_))
        ));
        assert_eq!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#).unwrap_err(),
            ReviewError::Kind("Pod".into())
        );
        assert_eq!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#)
                .unwrap_err(),
            ReviewError::MissingRequest
        );
        let err = parse_review(
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"PATCH"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("request.operation"), "{err}");
    }

    #[test]
    fn response_echoes_uid_and_status() {
        let v = Verdict::deny("no").to_review("abc");
        assert_eq!(v["response"]["uid"], "abc");
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 403);
    }
}
