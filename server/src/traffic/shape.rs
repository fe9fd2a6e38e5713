//! A request's shape: what the simulator needs to tell requests apart (operation, resource,
//! namespace, who), without the objects. Requests of one shape are counted together and kept once.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::admission::AdmissionRequest;

/// The fields that make two reviews the same for the sample.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub operation: String,
    /// API group (`""` for the core group).
    pub group: String,
    /// Resource, plural.
    pub resource: String,
    /// Subresource, if any.
    pub subresource: String,
    /// Namespace (`""` for cluster-scoped objects).
    pub namespace: String,
    /// Who sent it.
    pub username: String,
}

impl Shape {
    /// The shape of `request`.
    pub fn of(request: &AdmissionRequest) -> Self {
        Self {
            operation: request.operation.as_str().to_owned(),
            group: request.resource.group.clone(),
            resource: request.resource.resource.clone(),
            subresource: request.sub_resource.clone(),
            namespace: request.namespace.clone(),
            username: request.user_info.username.clone(),
        }
    }

    /// A 64-bit key for `request`'s shape, computed without allocating (the hot path counts by it).
    pub fn key_of(request: &AdmissionRequest) -> u64 {
        key([
            request.operation.as_str(),
            &request.resource.group,
            &request.resource.resource,
            &request.sub_resource,
            &request.namespace,
            &request.user_info.username,
        ])
    }

    /// The same key as [`Shape::key_of`] gives the request of this shape.
    pub fn key(&self) -> u64 {
        key(self.parts())
    }

    fn parts(&self) -> [&str; 6] {
        [
            &self.operation,
            &self.group,
            &self.resource,
            &self.subresource,
            &self.namespace,
            &self.username,
        ]
    }

    /// A stable id for storage: the same on every replica and every release.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in self.parts() {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hex::encode(&hash.finalize()[..16])
    }
}

fn key(parts: [&str; 6]) -> u64 {
    let mut hash = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut hash);
    hash.finish()
}

/// One shape as stored: how often and when it was seen, and one redacted example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShapeSample {
    /// The shape.
    pub shape: Shape,
    /// Reviews of this shape seen.
    pub count: i64,
    /// Unix seconds, first seen.
    pub first_seen: i64,
    /// Unix seconds, last seen.
    pub last_seen: i64,
    /// Whether a guardrail matched the example when it was recorded.
    pub matched: bool,
    /// The example: the AdmissionReview's `request`, Secret values redacted.
    pub request: serde_json::Value,
}
