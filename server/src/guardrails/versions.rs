//! Store mode's versions: every change to the guardrails is a new, numbered, immutable version
//! with its author, time and reason, sealed with the grant key (which lives outside the database)
//! so that the database alone cannot change what is enforced.

use serde::Serialize;
use serde_json::json;

use crate::grants::GrantSigner;
use crate::policy::{self, Guardrail, PolicyError};

const SEAL_PURPOSE: &str = "guardrail-version";

/// One saved version of all the guardrails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailVersion {
    /// 1, 2, 3, ...: the order versions were saved in.
    pub number: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Who saved it (username, or `cli:USER` from the command line).
    pub author: String,
    /// Why.
    pub reason: String,
    /// Every guardrail as a YAML document, in policy order, separated by `---` lines.
    pub documents: String,
    /// The digest of `documents` (see [`policy::digest_version`]).
    pub digest: String,
    /// The grant key's seal over the fields above.
    #[serde(skip)]
    pub seal: String,
}

/// Why a stored version is not put in force, or a new one not saved.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The guardrails do not load.
    #[error(transparent)]
    Invalid(#[from] PolicyError),
    /// The row is not what this deployment's key sealed: it was written or edited in the database.
    #[error("guardrail version {0} is not sealed by this deployment's key: it was written or changed in the database, and is not enforced")]
    Forged(i64),
    /// A reason is required, and has a bounded length.
    #[error(
        "a reason is required (at most {} characters)",
        policy::MAX_REASON_CHARS
    )]
    Reason,
}

impl GuardrailVersion {
    /// A new version `number` of `documents`, sealed with `signer`.
    pub fn sealed(
        number: i64,
        created_at: i64,
        author: &str,
        reason: &str,
        documents: String,
        signer: &GrantSigner,
    ) -> Self {
        let mut version = Self {
            number,
            created_at,
            author: author.to_owned(),
            reason: reason.to_owned(),
            digest: digest(&documents),
            documents,
            seal: String::new(),
        };
        version.seal = signer.seal(SEAL_PURPOSE, &version.terms());
        version
    }

    /// What the snapshot of this version is called in challenges, grants and decisions: `v7`.
    pub fn name(&self) -> String {
        format!("v{}", self.number)
    }

    fn terms(&self) -> Vec<u8> {
        json!({
            "number": self.number, "createdAt": self.created_at, "author": self.author,
            "reason": self.reason, "digest": self.digest,
        })
        .to_string()
        .into_bytes()
    }

    /// The guardrails of this version, once its seal and digest are checked.
    pub fn verified(&self, signer: &GrantSigner) -> Result<Vec<Guardrail>, VersionError> {
        if self.digest != digest(&self.documents)
            || !signer.check_seal(SEAL_PURPOSE, &self.terms(), &self.seal)
        {
            return Err(VersionError::Forged(self.number));
        }
        Ok(policy::parse_documents(&self.name(), &self.documents)?)
    }

    /// Each guardrail's own YAML document, by name, in policy order.
    pub fn split(&self) -> Result<Vec<(String, String)>, VersionError> {
        split_documents(&self.name(), &self.documents)
    }
}

/// The digest a version's documents are known by.
fn digest(documents: &str) -> String {
    policy::digest_version([("guardrails.yaml", documents)])
}

/// Check a reason given for a change.
pub fn check_reason(reason: &str) -> Result<&str, VersionError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > policy::MAX_REASON_CHARS as usize {
        return Err(VersionError::Reason);
    }
    Ok(reason)
}

/// Split a YAML text into each guardrail's own document (name, text), validating every one
/// (`file` names the text in errors). Empty documents and comment-only ones are dropped.
pub fn split_documents(file: &str, text: &str) -> Result<Vec<(String, String)>, VersionError> {
    // Whole-text parse first, so an error names the document as the author numbered it.
    policy::parse_documents(file, text)?;
    let mut out = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String| -> Result<(), VersionError> {
        let document = std::mem::take(current);
        if let Some(guardrail) = policy::parse_documents(file, &document)?.into_iter().next() {
            out.push((
                guardrail.name.to_string(),
                document.trim_matches('\n').to_owned() + "\n",
            ));
        }
        Ok(())
    };
    for line in text.lines() {
        // A document marker starts a line at column 0; block scalars are indented under `spec`.
        if line.trim_end() == "---" || line.starts_with("--- ") {
            flush(&mut current)?;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    flush(&mut current)?;
    Ok(out)
}

/// Join guardrail documents into a version's text.
pub fn join_documents<'a>(documents: impl IntoIterator<Item = &'a str>) -> String {
    documents
        .into_iter()
        .map(|d| format!("---\n{}", d.trim_matches('\n')))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The shipped library, the first version of a new store.
pub fn library() -> String {
    join_documents(LIBRARY.iter().map(|(_, text)| *text))
}

/// The library's files, in name order (`policies/library`).
const LIBRARY: &[(&str, &str)] = &[
    (
        "exec-into-production.yaml",
        include_str!("../../../policies/library/exec-into-production.yaml"),
    ),
    (
        "images.yaml",
        include_str!("../../../policies/library/images.yaml"),
    ),
    (
        "namespace-and-crd-deletion.yaml",
        include_str!("../../../policies/library/namespace-and-crd-deletion.yaml"),
    ),
    (
        "namespace-labels.yaml",
        include_str!("../../../policies/library/namespace-labels.yaml"),
    ),
    (
        "network-policies.yaml",
        include_str!("../../../policies/library/network-policies.yaml"),
    ),
    (
        "pod-security.yaml",
        include_str!("../../../policies/library/pod-security.yaml"),
    ),
    (
        "production-secrets.yaml",
        include_str!("../../../policies/library/production-secrets.yaml"),
    ),
    (
        "production-workloads.yaml",
        include_str!("../../../policies/library/production-workloads.yaml"),
    ),
    (
        "rbac-escalation.yaml",
        include_str!("../../../policies/library/rbac-escalation.yaml"),
    ),
    (
        "scale-to-zero.yaml",
        include_str!("../../../policies/library/scale-to-zero.yaml"),
    ),
    (
        "webhook-configurations.yaml",
        include_str!("../../../policies/library/webhook-configurations.yaml"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_library_is_every_file_of_policies_library() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/library");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let embedded: Vec<&str> = LIBRARY.iter().map(|(n, _)| *n).collect();
        assert_eq!(files, embedded);
        let (from_files, _) = policy::load_versioned(std::path::Path::new(dir)).unwrap();
        let from_text = policy::parse_documents("library", &library()).unwrap();
        assert_eq!(from_text, from_files);
    }

    #[test]
    fn a_version_is_split_into_each_guardrails_own_document() {
        let documents = split_documents("library", &library()).unwrap();
        let (guardrails, _) = policy::load_versioned(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies/library"
        )))
        .unwrap();
        let names: Vec<String> = guardrails.iter().map(|g| g.name.to_string()).collect();
        let split: Vec<String> = documents.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(split, names);
        let rejoined = join_documents(documents.iter().map(|(_, d)| d.as_str()));
        assert_eq!(policy::parse_documents("x", &rejoined).unwrap(), guardrails);
    }

    #[test]
    fn a_version_edited_after_it_was_sealed_is_refused() {
        let signer = GrantSigner::generate();
        let version = GuardrailVersion::sealed(3, 100, "alice", "tighten", library(), &signer);
        assert!(version.verified(&signer).is_ok());
        let mut edited = version.clone();
        edited.documents = edited.documents.replace("type: stepUp", "type: audit");
        assert!(matches!(
            edited.verified(&signer),
            Err(VersionError::Forged(3))
        ));
        let mut blamed = version.clone();
        blamed.author = "mallory".into();
        assert!(matches!(
            blamed.verified(&signer),
            Err(VersionError::Forged(3))
        ));
        let other = GrantSigner::generate();
        assert!(matches!(
            version.verified(&other),
            Err(VersionError::Forged(3))
        ));
    }
}
