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

/// What `policy simulate` runs: the draft, the guardrails in force, and the requests.
pub struct Simulation {
    /// The draft.
    pub draft: crate::engine::Snapshot,
    /// What it is compared with.
    pub in_force: crate::engine::Snapshot,
    /// The requests.
    pub samples: Vec<super::simulate::Sample>,
    /// Recorded shapes that kept no example.
    pub skipped: usize,
    /// Over how many days the requests were seen.
    pub days: f64,
}

/// Load what `policy simulate DRAFT --against AGAINST [--in-force DIR] --since SECS` runs.
pub async fn simulation(
    draft: &Path,
    against: &str,
    in_force: Option<&Path>,
    since_secs: u64,
) -> Result<Simulation, SimulateError> {
    use super::simulate::Sample;
    use crate::engine::Snapshot;
    let (guardrails, version) = policy::load_versioned(draft)?;
    let draft = Snapshot::new(guardrails, format!("draft {version}"));
    let from_files = |dir: &Path| -> Result<Snapshot, SimulateError> {
        let (guardrails, version) = policy::load_versioned(dir)?;
        Ok(Snapshot::new(guardrails, version))
    };
    let is_store = ["sqlite://", "postgres://", "postgresql://"]
        .iter()
        .any(|p| against.starts_with(p));
    if !is_store {
        let path = Path::new(against);
        let mut files = Vec::new();
        if path.is_dir() {
            let read = |e| SimulateError::Read(against.to_owned(), e);
            for entry in std::fs::read_dir(path).map_err(read)? {
                let file = entry.map_err(read)?.path();
                if file.extension().is_some_and(|e| e == "json") {
                    files.push(file);
                }
            }
            files.sort();
        } else {
            files.push(path.to_owned());
        }
        let mut samples = Vec::with_capacity(files.len());
        for file in files {
            let name = file.display().to_string();
            let body = std::fs::read(&file).map_err(|e| SimulateError::Read(name.clone(), e))?;
            samples.push(Sample::from_review(&body).map_err(|e| SimulateError::Review(name, e))?);
        }
        let in_force = match in_force {
            Some(dir) => from_files(dir)?,
            None => Snapshot::new(Vec::new(), "no guardrails"),
        };
        return Ok(Simulation {
            draft,
            in_force,
            samples,
            skipped: 0,
            days: 1.0,
        });
    }
    // A store: its recorded traffic, and (unless told otherwise) its newest version. Read as it is:
    // a simulation enforces nothing, and `policy versions` is where a broken seal shows.
    let store = crate::store::connect_read_only(against).await?;
    let now = crate::clock::now();
    let cutoff = now - since_secs as i64;
    let recorded = store
        .traffic(crate::traffic::recorder::MAX_STORED_SHAPES)
        .await?;
    let mut samples = Vec::new();
    let mut skipped = 0;
    let mut first = now;
    for shape in recorded.iter().filter(|s| s.last_seen >= cutoff) {
        first = first.min(shape.first_seen.max(cutoff));
        match Sample::from_recorded(shape) {
            Some(sample) => samples.push(sample),
            None => skipped += 1,
        }
    }
    let in_force = match in_force {
        Some(dir) => from_files(dir)?,
        None => match store.latest_guardrail_version().await? {
            Some(n) => {
                let v = store
                    .guardrail_version(n)
                    .await?
                    .ok_or(SimulateError::Missing(n))?;
                Snapshot::new(policy::parse_documents(&v.name(), &v.documents)?, v.name())
            }
            None => Snapshot::new(Vec::new(), "no guardrails"),
        },
    };
    Ok(Simulation {
        draft,
        in_force,
        samples,
        skipped,
        days: ((now - first) as f64 / 86_400.0).max(1.0 / 24.0),
    })
}

/// Why `policy simulate` could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The draft or the guardrails in force do not load.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A review file could not be read.
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
    /// A review file is not an AdmissionReview.
    #[error("{0}: {1}")]
    Review(String, String),
    /// The newest version was listed but is gone.
    #[error("guardrail version {0} went missing")]
    Missing(i64),
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
