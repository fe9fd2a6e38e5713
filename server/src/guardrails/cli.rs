//! What `countersign policy versions | diff | rollback | export --to | apply` print and read: the
//! text is made here, the store work is [`super::store_mode::Versions`]'.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::grants::GrantSigner;
use crate::policy::{self, PolicyError};

use super::versions::{join_documents, split_documents, GuardrailVersion, VersionError};

/// `policy versions`: newest first, one line each, with whether its seal holds.
pub fn versions_table(versions: &[GuardrailVersion], signer: &GrantSigner) -> String {
    let mut out = String::new();
    for v in versions {
        let (count, seal) = match v.verified(signer) {
            Ok(guardrails) => (guardrails.len().to_string(), ""),
            Err(VersionError::Forged(_)) => ("?".into(), "  FORGED: not enforced"),
            Err(_) => ("?".into(), "  INVALID"),
        };
        let _ = writeln!(
            out,
            "{:<6} {}  {:<20} {:>3} guardrails  {}{seal}",
            v.name(),
            crate::clock::timestamp_utc(v.created_at),
            v.author,
            count,
            v.reason.replace('\n', " "),
        );
    }
    if out.is_empty() {
        out.push_str(
            "no guardrail versions in this store (`serve` saves the shipped library as v1)\n",
        );
    }
    out
}

/// `policy diff A B`: per guardrail, added, removed, or its changed lines.
pub fn diff(a: &GuardrailVersion, b: &GuardrailVersion) -> Result<String, VersionError> {
    let before: BTreeMap<String, String> = a.split()?.into_iter().collect();
    let after: BTreeMap<String, String> = b.split()?.into_iter().collect();
    let mut out = String::new();
    for (name, text) in &before {
        match after.get(name) {
            None => {
                let _ = writeln!(out, "removed: {name}");
            }
            Some(new) if new != text => {
                let _ = writeln!(out, "changed: {name}");
                let diff = similar::TextDiff::from_lines(text.as_str(), new.as_str());
                let _ = write!(
                    out,
                    "{}",
                    diff.unified_diff().context_radius(2).header(
                        &format!("{}/{name}", a.name()),
                        &format!("{}/{name}", b.name())
                    )
                );
            }
            Some(_) => {}
        }
    }
    for name in after.keys().filter(|n| !before.contains_key(*n)) {
        let _ = writeln!(out, "added: {name}");
    }
    if out.is_empty() {
        out = format!("{} and {} hold the same guardrails\n", a.name(), b.name());
    }
    Ok(out)
}

/// `policy export --to DIR`: one file per guardrail, `NAME.yaml`; returns how many were written.
pub fn export_to(version: &GuardrailVersion, dir: &Path) -> Result<usize, ExportError> {
    std::fs::create_dir_all(dir).map_err(|e| ExportError::Write(dir.display().to_string(), e))?;
    let documents = version.split()?;
    for (name, text) in &documents {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, text)
            .map_err(|e| ExportError::Write(file.display().to_string(), e))?;
    }
    Ok(documents.len())
}

/// `policy apply DIR`: every guardrail in the folder's files, as one version's text.
pub fn read_folder(dir: &Path) -> Result<String, VersionError> {
    let sources = policy::read_sources(dir)?;
    // Refuses what loading refuses (a name twice across files included).
    sources.parse()?;
    let mut documents = Vec::new();
    for (label, text) in sources.texts() {
        documents.extend(split_documents(label, text)?.into_iter().map(|(_, d)| d));
    }
    Ok(join_documents(documents.iter().map(String::as_str)))
}

/// Why `policy export --to` failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The version does not split into guardrails.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// A file could not be written.
    #[error("{0}: {1}")]
    Write(String, std::io::Error),
}

impl From<PolicyError> for ExportError {
    fn from(e: PolicyError) -> Self {
        Self::Version(e.into())
    }
}
