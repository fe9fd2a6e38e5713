use std::collections::{BTreeMap, HashMap};

/// Where the engine finds a Namespace's labels for label selectors.
pub trait NamespaceLabels: Send + Sync {
    /// Labels of the namespace, or `None` when it is not known.
    fn labels(&self, namespace: &str) -> Option<&BTreeMap<String, String>>;

    /// The Namespace object CEL sees as `namespaceObject`, built from what is kept: name and labels
    /// only (no annotations, no managedFields). A namespace not yet seen has a name and no labels,
    /// so an expression reading its labels fails, and a guarded request fails closed.
    fn namespace_object(&self, namespace: &str) -> serde_json::Value {
        let mut metadata = serde_json::json!({ "name": namespace });
        if let Some(labels) = self.labels(namespace) {
            metadata["labels"] = serde_json::json!(labels);
        }
        serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": metadata })
    }
}

/// Namespace labels held in memory, keeping only what selectors need (not whole objects).
#[derive(Debug, Clone, Default)]
pub struct NamespaceIndex {
    labels: HashMap<String, BTreeMap<String, String>>,
}

impl NamespaceIndex {
    /// Build from Namespace objects (as JSON); entries without a name are skipped.
    pub fn from_objects(objects: &[serde_json::Value]) -> Self {
        let mut index = Self::default();
        for object in objects {
            index.upsert(object);
        }
        index
    }

    /// Insert or replace one Namespace object.
    pub fn upsert(&mut self, object: &serde_json::Value) {
        let meta = &object["metadata"];
        let Some(name) = meta["name"].as_str() else {
            return;
        };
        self.labels.insert(name.to_owned(), labels_of(object));
    }

    /// How many namespaces are known.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether none are known.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

impl NamespaceLabels for NamespaceIndex {
    fn labels(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.labels.get(namespace)
    }
}

/// The string labels of an object's metadata (empty when it has none).
pub fn labels_of(object: &serde_json::Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}
