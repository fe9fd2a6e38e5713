//! Identity configuration files: YAML documents with `apiVersion: countersign.dev/v1alpha1`, a
//! `kind` and a `spec`, and the errors that name the file and the entry.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A configuration file that cannot be used; names the file and the entry.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The YAML does not have the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: String,
        /// What serde said, with the position.
        message: String,
    },
    /// An entry is wrong.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// File.
        path: String,
        /// Where, e.g. `spec.people[1].kubernetesUsernames[0]`.
        field: String,
        /// Why.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "S: DeserializeOwned + Default")
)]
struct Document<S> {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    #[serde(default)]
    spec: S,
}

/// The file's text, or an error naming it.
pub fn read(path: &Path) -> Result<String, DocumentError> {
    std::fs::read_to_string(path).map_err(|source| DocumentError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The `spec` of a document of this `kind` (empty if absent); `path` only names it in errors, and
/// `hint` follows a YAML error (what the document should look like).
pub fn parse<S: DeserializeOwned + Default>(
    text: &str,
    path: &str,
    kind: &str,
    hint: &str,
) -> Result<S, DocumentError> {
    let doc: Document<S> = serde_yaml::from_str(text).map_err(|e| DocumentError::Parse {
        path: path.to_owned(),
        message: format!("{e}{hint}"),
    })?;
    if doc.api_version != "countersign.dev/v1alpha1" {
        return Err(invalid(
            path,
            "apiVersion",
            "expected countersign.dev/v1alpha1",
        ));
    }
    if doc.kind != kind {
        return Err(invalid(path, "kind", &format!("expected {kind}")));
    }
    Ok(doc.spec)
}

/// An entry of the document at `path` is wrong.
pub fn invalid(path: &str, field: impl Into<String>, message: &str) -> DocumentError {
    DocumentError::Invalid {
        path: path.to_owned(),
        field: field.into(),
        message: message.to_owned(),
    }
}
