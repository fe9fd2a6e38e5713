//! Reading guardrail YAML: raw shapes, then validation into the model with precise errors.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::*;
use super::{CelExpression, PolicyDuration};

/// A policy that cannot be loaded, naming the file, the document (1-based) and the field.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file or folder could not be read.
    #[error("{path}: {source}")]
    Read {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A document is not a valid guardrail.
    #[error("{file}:{line}:{column}: document {document}: {field}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line of the field in the file (or of the nearest enclosing key found).
        line: usize,
        /// 1-based column there.
        column: usize,
        /// 1-based document number in the file.
        document: usize,
        /// The field, as a path (`spec.action.type`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The same guardrail name appears twice.
    #[error("{file}: document {document}: metadata.name: guardrail `{name}` is defined twice (names and ids share one space)")]
    Duplicate {
        /// The file of the second definition.
        file: String,
        /// Its document number.
        document: usize,
        /// The name.
        name: String,
    },
}

/// Load every `.yaml`/`.yml` file under `path` (or the file itself), in name order.
pub fn load_path(path: &Path) -> Result<Vec<Guardrail>, PolicyError> {
    load_versioned(path).map(|(guardrails, _)| guardrails)
}

/// [`load_path`], with the version of what was loaded: the digest of the files' names (relative
/// to `path`) and texts, so every replica that loads the same files names the same version.
pub fn load_versioned(path: &Path) -> Result<(Vec<Guardrail>, String), PolicyError> {
    read_sources(path)?.parse()
}

/// The policy files under a folder (or one file), read but not yet parsed: enough to tell whether
/// anything changed (their version) without parsing them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySources {
    /// Each file: its path as shown in errors, its name relative to the folder, and its text.
    files: Vec<(String, String, String)>,
}

impl PolicySources {
    /// The version these sources would load as (see [`digest_version`]).
    pub fn version(&self) -> String {
        digest_version(self.files.iter().map(|(_, n, t)| (n.as_str(), t.as_str())))
    }

    /// Each file's path (as shown in errors) and text, in load order.
    pub fn texts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files
            .iter()
            .map(|(label, _, text)| (label.as_str(), text.as_str()))
    }

    /// Parse and validate every guardrail, refusing a name defined twice.
    pub fn parse(&self) -> Result<(Vec<Guardrail>, String), PolicyError> {
        let mut all = Vec::new();
        let mut seen = HashSet::new();
        for (label, _, text) in &self.files {
            for (index, guardrail) in parse_documents(label, text)?.into_iter().enumerate() {
                // A name and an id share one space: a renamed guardrail's id is its old name.
                if !seen.insert(guardrail.name.clone())
                    || (guardrail.id != guardrail.name && !seen.insert(guardrail.id.clone()))
                {
                    return Err(PolicyError::Duplicate {
                        file: label.clone(),
                        document: index + 1,
                        name: guardrail.name.to_string(),
                    });
                }
                all.push(guardrail);
            }
        }
        Ok((all, self.version()))
    }
}

/// Read every `.yaml`/`.yml` file under `path` (or the file itself), in name order. Hidden entries
/// are skipped: a ConfigMap mounted as a folder holds each file three times, twice under `..data`
/// and its timestamped target.
pub fn read_sources(path: &Path) -> Result<PolicySources, PolicyError> {
    let read_err = |source| PolicyError::Read {
        path: path.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    if path.is_dir() {
        collect_yaml(path, &mut paths).map_err(read_err)?;
        paths.sort();
    } else {
        paths.push(path.to_owned());
    }
    let mut files = Vec::with_capacity(paths.len());
    for file in paths {
        let text = std::fs::read_to_string(&file).map_err(|source| PolicyError::Read {
            path: file.clone(),
            source,
        })?;
        // Names relative to the folder (or the file's own name), so the version does not depend
        // on where the files were checked out.
        let relative = match file.strip_prefix(path) {
            Ok(r) if !r.as_os_str().is_empty() => r.display().to_string(),
            _ => file
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        };
        files.push((file.display().to_string(), relative, text));
    }
    Ok(PolicySources { files })
}

/// A version named by the digest of the policy sources it was loaded from (until guardrails carry
/// versions of their own): `sha256:` and the first 16 hex digits. Each source is its name and its
/// text, in load order.
pub fn digest_version<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut hash = Sha256::new();
    for (name, text) in sources {
        // Lengths first, so no two different lists of sources hash the same.
        hash.update((name.len() as u64).to_be_bytes());
        hash.update(name.as_bytes());
        hash.update((text.len() as u64).to_be_bytes());
        hash.update(text.as_bytes());
    }
    let digest = hex::encode(hash.finalize());
    format!("sha256:{}", &digest[..16])
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) && !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".test.yaml"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Parse every guardrail document in one YAML text; empty documents are skipped.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<Guardrail>, PolicyError> {
    let mut out = Vec::new();
    for (number, document) in GuardrailDocument::parse_numbered(file, text)? {
        let guardrail = document.validate_in(file, text, number)?;
        if out.iter().any(|g: &Guardrail| {
            [&g.name, &g.id].contains(&&guardrail.name) || [&g.name, &g.id].contains(&&guardrail.id)
        }) {
            return Err(PolicyError::Duplicate {
                file: file.to_owned(),
                document: number,
                name: guardrail.name.to_string(),
            });
        }
        out.push(guardrail);
    }
    Ok(out)
}

/// One guardrail as written: the YAML document's own shape, before validation. It parses and
/// serialises both ways (an editor changes it and writes it back); [`GuardrailDocument::validate`]
/// makes the [`Guardrail`] the engine runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GuardrailDocument(RawGuardrail);

impl GuardrailDocument {
    /// Every guardrail document in a YAML text (`file` names it in errors), empty ones skipped.
    pub fn parse(file: &str, text: &str) -> Result<Vec<Self>, PolicyError> {
        Ok(Self::parse_numbered(file, text)?
            .into_iter()
            .map(|(_, d)| d)
            .collect())
    }

    fn parse_numbered(file: &str, text: &str) -> Result<Vec<(usize, Self)>, PolicyError> {
        let mut out = Vec::new();
        for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let number = index + 1;
            let value = match serde_yaml::Value::deserialize(document) {
                Ok(v) => v,
                Err(e) => {
                    // A syntax error knows its own place.
                    let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                    return Err(PolicyError::Invalid {
                        file: file.to_owned(),
                        line,
                        column,
                        document: number,
                        field: "(document)".into(),
                        message: e.to_string(),
                    });
                }
            };
            if value.is_null() {
                continue;
            }
            let raw: RawGuardrail = serde_path_to_error::deserialize(value).map_err(|e| {
                let field = match e.path().to_string() {
                    f if f == "." => "(document)".to_owned(),
                    f => f,
                };
                invalid_at(file, text, number, field, e.into_inner().to_string())
            })?;
            out.push((number, Self(raw)));
        }
        Ok(out)
    }

    /// The document as YAML.
    pub fn to_yaml(&self) -> String {
        // Plain data with string keys: serialising it cannot fail.
        serde_yaml::to_string(self).unwrap_or_default()
    }

    /// Its `metadata.name`, as written.
    pub fn name(&self) -> &str {
        &self.0.metadata.name
    }

    /// The guardrail it describes, or the field that is wrong and why.
    pub fn validate(&self) -> Result<Guardrail, (String, String)> {
        self.0.clone().validate()
    }

    /// [`validate`](Self::validate), with the error placed in document `number` of `text`.
    fn validate_in(&self, file: &str, text: &str, number: usize) -> Result<Guardrail, PolicyError> {
        self.validate()
            .map_err(|(field, message)| invalid_at(file, text, number, field, message))
    }
}

/// An invalid field of document `number` in `text`, with its line and column.
fn invalid_at(
    file: &str,
    text: &str,
    number: usize,
    field: String,
    message: String,
) -> PolicyError {
    let (line, column) = super::locate::locate(text, number, &field);
    PolicyError::Invalid {
        file: file.to_owned(),
        line,
        column,
        document: number,
        field,
        message,
    }
}

type FieldError = (String, String);

fn field_err(field: &str, message: impl Into<String>) -> FieldError {
    (field.to_owned(), message.into())
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawGuardrail {
    api_version: String,
    kind: String,
    metadata: RawMetadata,
    spec: RawSpec,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<Mode>,
    #[serde(rename = "match")]
    matcher: RawMatch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    condition: Option<String>,
    action: RawAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_expression: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMatch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    operations: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    resources: Vec<RawResourceRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespaces: Option<RawNamespaces>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subjects: Option<RawSubjects>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawResourceRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    api_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    resources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawNamespaces {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    selector: Option<RawSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    match_expressions: Vec<RawRequirement>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    key: String,
    operator: SelectorOperator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSubjectList {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    service_accounts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSubjects {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    service_accounts: Vec<String>,
    #[serde(default, skip_serializing_if = "RawSubjectList::is_empty")]
    exclude: RawSubjectList,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAction {
    #[serde(rename = "type")]
    kind: ActionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    freshness: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grant: Option<RawGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approval: Option<RawApproval>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawGrant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<GrantScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uses: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawApproval {
    groups: Vec<RawApproverList>,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<RawReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    break_glass: Option<RawBreakGlass>,
}

/// One list of approver groups: `["sre"]`, or `{groups: ["sre"], count: 2}` with its own count.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
enum RawApproverList {
    Groups(Vec<String>),
    Counted(RawCountedList),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawCountedList {
    groups: Vec<String>,
    count: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawReason {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    required: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    min_length: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawBreakGlass {
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<String>,
}

/// How long an approval may wait when the guardrail does not say.
const DEFAULT_APPROVAL_TIMEOUT: PolicyDuration = PolicyDuration::minutes(60);
/// The longest reason a requester or approver may give (and so the longest minimum).
pub const MAX_REASON_CHARS: u32 = 1000;
/// How long a break-glass grant lives when the guardrail does not say.
const DEFAULT_BREAK_GLASS_TTL: PolicyDuration = PolicyDuration::minutes(15);

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl RawSubjectList {
    fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.service_accounts.is_empty()
    }
}

impl RawGuardrail {
    fn validate(self) -> Result<Guardrail, FieldError> {
        if self.api_version != "countersign.dev/v1alpha1" {
            return Err(field_err(
                "apiVersion",
                format!(
                    "expected `countersign.dev/v1alpha1`, found `{}`",
                    self.api_version
                ),
            ));
        }
        if self.kind != "Guardrail" {
            return Err(field_err(
                "kind",
                format!("expected `Guardrail`, found `{}`", self.kind),
            ));
        }
        let _ = (&self.metadata.labels, &self.metadata.annotations);
        let name =
            GuardrailName::parse(&self.metadata.name).map_err(|m| field_err("metadata.name", m))?;
        let id = match &self.metadata.id {
            Some(id) => GuardrailName::parse(id).map_err(|m| field_err("metadata.id", m))?,
            None => name.clone(),
        };
        let spec = self.spec;
        let compile = |field: &str, source: Option<String>| {
            source
                .map(|text| CelExpression::compile(&text).map_err(|m| field_err(field, m)))
                .transpose()
        };
        let condition = compile("spec.condition", spec.condition)?;
        let message_expression = compile("spec.messageExpression", spec.message_expression)?;
        Ok(Guardrail {
            name,
            id,
            description: spec.description,
            mode: spec.mode.unwrap_or(Mode::Enforce),
            matcher: spec.matcher.validate()?,
            action: spec.action.validate()?,
            message: spec.message.filter(|m| !m.trim().is_empty()),
            condition,
            message_expression,
        })
    }
}

impl RawMatch {
    fn validate(self) -> Result<Match, FieldError> {
        let operations = if self.operations.is_empty() || self.operations.iter().any(|o| o == "*") {
            None
        } else {
            let mut ops = Vec::new();
            for (i, op) in self.operations.iter().enumerate() {
                let parsed = match op.as_str() {
                    "CREATE" => Operation::Create,
                    "UPDATE" => Operation::Update,
                    "DELETE" => Operation::Delete,
                    "CONNECT" => Operation::Connect,
                    other => {
                        return Err(field_err(
                            &format!("spec.match.operations[{i}]"),
                            format!(
                            "`{other}` is not an operation (CREATE, UPDATE, DELETE, CONNECT or *)"
                        ),
                        ))
                    }
                };
                ops.push(parsed);
            }
            Some(ops)
        };
        let mut resources = Vec::new();
        for (i, rule) in self.resources.into_iter().enumerate() {
            let api_groups = if rule.api_groups.iter().any(|g| g == "*") {
                None
            } else if rule.api_groups.is_empty() {
                return Err(field_err(
                    &format!("spec.match.resources[{i}].apiGroups"),
                    "list at least one group (\"\" is core, \"*\" all)",
                ));
            } else {
                Some(rule.api_groups)
            };
            if rule.resources.is_empty() {
                return Err(field_err(
                    &format!("spec.match.resources[{i}].resources"),
                    "list at least one resource (\"*\" for all)",
                ));
            }
            let patterns = rule
                .resources
                .iter()
                .enumerate()
                .map(|(j, r)| {
                    ResourcePattern::parse(r).map_err(|m| {
                        field_err(&format!("spec.match.resources[{i}].resources[{j}]"), m)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            resources.push(ResourceRule {
                api_groups,
                resources: patterns,
            });
        }
        let namespaces = self.namespaces.map(RawNamespaces::validate).transpose()?;
        let subjects = match self.subjects {
            None => SubjectMatch::default(),
            Some(s) => SubjectMatch {
                include: subject_list(
                    "spec.match.subjects",
                    s.users,
                    s.groups,
                    s.service_accounts,
                )?,
                exclude: subject_list(
                    "spec.match.subjects.exclude",
                    s.exclude.users,
                    s.exclude.groups,
                    s.exclude.service_accounts,
                )?,
            },
        };
        Ok(Match {
            operations,
            resources,
            namespaces,
            subjects,
        })
    }
}

fn subject_list(
    field: &str,
    users: Vec<String>,
    groups: Vec<String>,
    sas: Vec<String>,
) -> Result<SubjectList, FieldError> {
    let service_accounts = sas
        .iter()
        .enumerate()
        .map(|(i, sa)| match sa.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(format!("system:serviceaccount:{ns}:{name}"))
            }
            _ => Err(field_err(
                &format!("{field}.serviceAccounts[{i}]"),
                format!("`{sa}` is not `namespace/name`"),
            )),
        })
        .collect::<Result<_, _>>()?;
    Ok(SubjectList {
        users,
        groups,
        service_accounts,
    })
}

impl RawNamespaces {
    fn validate(self) -> Result<NamespaceMatch, FieldError> {
        let globs = |field: &str, list: Vec<String>| {
            list.iter()
                .enumerate()
                .map(|(i, g)| {
                    Glob::parse(g)
                        .map_err(|m| field_err(&format!("spec.match.namespaces.{field}[{i}]"), m))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let selector = match self.selector {
            None => None,
            Some(s) => {
                for (i, req) in s.match_expressions.iter().enumerate() {
                    let needs_values =
                        matches!(req.operator, SelectorOperator::In | SelectorOperator::NotIn);
                    if needs_values == req.values.is_empty() {
                        return Err(field_err(
                            &format!("spec.match.namespaces.selector.matchExpressions[{i}].values"),
                            if needs_values {
                                "In and NotIn need values"
                            } else {
                                "Exists and DoesNotExist take no values"
                            },
                        ));
                    }
                }
                Some(LabelSelector {
                    match_labels: s.match_labels,
                    match_expressions: s
                        .match_expressions
                        .into_iter()
                        .map(|r| SelectorRequirement {
                            key: r.key,
                            operator: r.operator,
                            values: r.values,
                        })
                        .collect(),
                })
            }
        };
        Ok(NamespaceMatch {
            names: globs("names", self.names)?,
            selector,
            exclude: globs("exclude", self.exclude)?,
        })
    }
}

impl RawAction {
    fn validate(self) -> Result<Action, FieldError> {
        let duration = |field: &str, text: Option<String>, default: PolicyDuration| match text {
            None => Ok(default),
            Some(t) => PolicyDuration::parse(&t).map_err(|m| field_err(field, m)),
        };
        let freshness = duration(
            "spec.action.freshness",
            self.freshness,
            PolicyDuration::minutes(5),
        )?;
        let grant = match self.grant {
            None => GrantPolicy::default(),
            Some(g) => {
                let defaults = GrantPolicy::default();
                let ttl = duration("spec.action.grant.ttl", g.ttl, defaults.ttl)?;
                if ttl.seconds() == 0 {
                    return Err(field_err(
                        "spec.action.grant.ttl",
                        "a grant must live longer than 0s",
                    ));
                }
                GrantPolicy {
                    scope: g.scope.unwrap_or(defaults.scope),
                    ttl,
                    // `uses: 0` reads as "no limit within the ttl".
                    uses: match g.uses {
                        None => defaults.uses,
                        Some(0) => None,
                        Some(n) => Some(n),
                    },
                }
            }
        };
        let approval = match (self.kind, self.approval) {
            (ActionKind::Approval, None) => {
                return Err(field_err(
                    "spec.action.approval",
                    "an approval guardrail must say who approves",
                ))
            }
            (ActionKind::Approval, Some(a)) => {
                if a.count == 0 {
                    return Err(field_err(
                        "spec.action.approval.count",
                        "at least one approver is needed",
                    ));
                }
                let (mut groups, mut counts) = (Vec::new(), Vec::new());
                for (i, list) in a.groups.into_iter().enumerate() {
                    let (list, count) = match list {
                        RawApproverList::Groups(list) => (list, a.count),
                        RawApproverList::Counted(c) => (c.groups, c.count),
                    };
                    if count == 0 {
                        return Err(field_err(
                            &format!("spec.action.approval.groups[{i}].count"),
                            "at least one approver is needed",
                        ));
                    }
                    groups.push(list);
                    counts.push(count);
                }
                if groups.is_empty() || groups.iter().any(|g| g.is_empty()) {
                    return Err(field_err(
                        "spec.action.approval.groups",
                        "list at least one non-empty group list",
                    ));
                }
                // Rules where every list takes `count` keep the form they were sealed in.
                if counts.iter().all(|&c| c == a.count) {
                    counts.clear();
                }
                let timeout = duration(
                    "spec.action.approval.timeout",
                    a.timeout,
                    DEFAULT_APPROVAL_TIMEOUT,
                )?;
                if timeout.seconds() == 0 {
                    return Err(field_err(
                        "spec.action.approval.timeout",
                        "approvers need longer than 0s",
                    ));
                }
                let reason = a.reason.map_or(ReasonRule::default(), |r| ReasonRule {
                    required: r.required || r.min_length > 0,
                    min_length: r.min_length,
                });
                if reason.min_length > MAX_REASON_CHARS {
                    return Err(field_err(
                        "spec.action.approval.reason.minLength",
                        format!("at most {MAX_REASON_CHARS} characters"),
                    ));
                }
                let break_glass = match a.break_glass {
                    None => None,
                    Some(b) => {
                        if b.groups.is_empty() {
                            return Err(field_err(
                                "spec.action.approval.breakGlass.groups",
                                "name the groups that may break the glass",
                            ));
                        }
                        let explicit = b.ttl.is_some();
                        let ttl = duration(
                            "spec.action.approval.breakGlass.ttl",
                            b.ttl,
                            DEFAULT_BREAK_GLASS_TTL,
                        )?;
                        if ttl.seconds() == 0 {
                            return Err(field_err(
                                "spec.action.approval.breakGlass.ttl",
                                "a grant must live longer than 0s",
                            ));
                        }
                        // Never longer than an approved grant would live: refused when written
                        // so, and the default shortened to it.
                        if explicit && ttl.seconds() > grant.ttl.seconds() {
                            return Err(field_err(
                                "spec.action.approval.breakGlass.ttl",
                                format!(
                                    "a break-glass grant cannot outlive an approved one: at most the grant's ttl ({}s)",
                                    grant.ttl.seconds()
                                ),
                            ));
                        }
                        let ttl = if ttl.seconds() > grant.ttl.seconds() {
                            grant.ttl
                        } else {
                            ttl
                        };
                        Some(BreakGlass {
                            groups: b.groups,
                            ttl_secs: ttl.seconds() as i64,
                        })
                    }
                };
                Some(ApprovalPolicy {
                    groups,
                    count: a.count,
                    counts,
                    timeout_secs: timeout.seconds() as i64,
                    reason,
                    break_glass,
                })
            }
            (_, Some(_)) => {
                return Err(field_err(
                    "spec.action.approval",
                    "only an `approval` action takes approvers",
                ))
            }
            (_, None) => None,
        };
        if self.kind == ActionKind::Allow {
            return Err(field_err(
                "spec.action.type",
                "`allow` is not an action (use deny, warn, audit, stepUp or approval)",
            ));
        }
        Ok(Action {
            kind: self.kind,
            freshness,
            grant,
            approval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_library_document_round_trips_through_yaml() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/library");
        let sources = read_sources(Path::new(dir)).unwrap();
        let mut checked = 0;
        for (file, text) in sources.texts() {
            let guardrails = parse_documents(file, text).unwrap();
            let documents = GuardrailDocument::parse(file, text).unwrap();
            assert_eq!(documents.len(), guardrails.len());
            for (document, guardrail) in documents.iter().zip(&guardrails) {
                let yaml = document.to_yaml();
                let again = GuardrailDocument::parse("again", &yaml).unwrap().remove(0);
                assert_eq!(&again, document, "{yaml}");
                assert_eq!(&again.validate().unwrap(), guardrail);
                assert_eq!(again.name(), guardrail.name.as_str());
                checked += 1;
            }
        }
        assert!(checked >= 15, "{checked}");
    }

    #[test]
    fn an_error_names_the_line_and_column_of_its_field() {
        let bad = GOOD.replace("    type: stepUp", "    type: stepup");
        let err = parse_documents("a.yaml", &bad).unwrap_err();
        let PolicyError::Invalid {
            line,
            column,
            ref field,
            ..
        } = err
        else {
            panic!("{err}");
        };
        assert_eq!(field, "spec.action.type");
        let at = bad.lines().position(|l| l == "    type: stepup").unwrap() + 1;
        assert_eq!((line, column), (at, 5));
        assert!(
            err.to_string()
                .starts_with(&format!("a.yaml:{at}:5: document 1: spec.action.type: ")),
            "{err}"
        );
        // A validation error (not serde's) is placed too.
        let bad = GOOD.replace(
            "operations: [CREATE, UPDATE, DELETE]",
            "operations:\n      - CREATE\n      - REMOVE",
        );
        let err = parse_documents("a.yaml", &bad).unwrap_err();
        let at = bad.lines().position(|l| l == "      - REMOVE").unwrap() + 1;
        assert!(
            err.to_string().starts_with(&format!(
                "a.yaml:{at}:7: document 1: spec.match.operations[1]: "
            )),
            "{err}"
        );
    }

    #[test]
    fn an_id_defaults_to_the_name_and_shares_its_space() {
        let g = parse_documents("a.yaml", GOOD).unwrap().remove(0);
        assert_eq!(g.id, g.name);
        let renamed = GOOD.replace(
            "  name: prod-workloads",
            "  name: production-workloads\n  id: prod-workloads",
        );
        let g = parse_documents("a.yaml", &renamed).unwrap().remove(0);
        assert_eq!(
            (g.name.as_str(), g.id.as_str()),
            ("production-workloads", "prod-workloads")
        );
        // Another guardrail may not take the renamed one's id as its name.
        let both = format!("{renamed}\n---\n{GOOD}");
        let err = parse_documents("a.yaml", &both).unwrap_err().to_string();
        assert!(err.contains("defined twice"), "{err}");
        let bad = GOOD.replace("  name: prod-workloads", "  name: p\n  id: Not_An_Id");
        let err = parse_documents("a.yaml", &bad).unwrap_err().to_string();
        assert!(err.contains("metadata.id"), "{err}");
    }

    #[test]
    fn a_version_changes_with_any_byte_of_any_source() {
        let a = digest_version([("a.yaml", "x: 1"), ("b.yaml", "y: 2")]);
        assert_eq!(a, digest_version([("a.yaml", "x: 1"), ("b.yaml", "y: 2")]));
        assert_ne!(a, digest_version([("a.yaml", "x: 1"), ("b.yaml", "y: 3")]));
        assert_ne!(a, digest_version([("a.yaml", "x: 1b.yaml"), ("", "y: 2")]));
        assert!(a.starts_with("sha256:") && a.len() == 7 + 16);
    }

    const GOOD: &str = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata:
  name: prod-workloads
spec:
  description: Workload changes in production need a fresh security-key touch.
  match:
    operations: [CREATE, UPDATE, DELETE]
    resources:
      - apiGroups: ["apps"]
        resources: ["deployments", "statefulsets"]
    namespaces:
      names: ["payments", "prod-*"]
      exclude: ["kube-system"]
    subjects:
      groups: ["developers"]
      serviceAccounts: ["ci/deployer"]
      exclude: {groups: ["system:masters"]}
  action:
    type: stepUp
    freshness: 5m
    grant: {scope: request, ttl: 15m, uses: 1}
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: no-exec}
spec:
  match: {operations: [CONNECT], resources: [{apiGroups: [""], resources: ["pods/exec"]}]}
  action: {type: deny}
"#;

    #[test]
    fn loads_the_contract_example() {
        let g = parse_documents("g.yaml", GOOD).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].name.as_str(), "prod-workloads");
        assert_eq!(g[0].action.kind, ActionKind::StepUp);
        assert_eq!(g[0].action.grant.ttl.seconds(), 900);
        assert_eq!(
            g[0].matcher.subjects.include.service_accounts,
            vec!["system:serviceaccount:ci:deployer"]
        );
        assert_eq!(g[1].action.kind, ActionKind::Deny);
    }

    #[test]
    fn each_approver_list_may_carry_its_own_count() {
        let doc = |groups: &str| {
            format!(
                "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata: {{name: two-peers}}\n\
                 spec:\n  match: {{operations: [DELETE]}}\n  action:\n    type: approval\n    \
                 approval:\n      groups: {groups}\n"
            )
        };
        let g = parse_documents(
            "g.yaml",
            &doc(r#"[{groups: [oncall], count: 2}, [managers]]"#),
        )
        .unwrap();
        let rule = g[0].action.approval.as_ref().unwrap();
        assert_eq!((rule.needed(0), rule.needed(1)), (2, 1));
        assert_eq!(rule.groups, vec![vec!["oncall"], vec!["managers"]]);
        // Lists that all take `count` keep the old form.
        let g = parse_documents("g.yaml", &doc("[[oncall], [managers]]")).unwrap();
        assert!(g[0].action.approval.as_ref().unwrap().counts.is_empty());
        let err = parse_documents("g.yaml", &doc("[{groups: [oncall], count: 0}]"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("spec.action.approval.groups[0].count"),
            "{err}"
        );
    }

    #[test]
    fn break_glass_never_outlives_an_approved_grant() {
        let doc = |glass: &str| {
            format!(
                "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata: {{name: g}}\n\
                 spec:\n  match: {{operations: [DELETE]}}\n  action:\n    type: approval\n    \
                 grant: {{ttl: 5m}}\n    approval:\n      groups: [[oncall]]\n      breakGlass: {glass}\n"
            )
        };
        let err = parse_documents("g.yaml", &doc("{groups: [leads], ttl: 1h}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("spec.action.approval.breakGlass.ttl"), "{err}");
        // The default (15 minutes) is shortened to the grant's.
        let g = parse_documents("g.yaml", &doc("{groups: [leads]}")).unwrap();
        let glass = g[0]
            .action
            .approval
            .as_ref()
            .unwrap()
            .break_glass
            .as_ref()
            .unwrap();
        assert_eq!(glass.ttl_secs, 300);
    }

    #[test]
    fn names_file_document_and_field() {
        let bad = GOOD.replace("type: deny", "type: denyy");
        let err = parse_documents("g.yaml", &bad).unwrap_err().to_string();
        assert!(
            err.starts_with("g.yaml:") && err.contains(": document 2: spec.action.type:"),
            "{err}"
        );

        let bad = GOOD.replace("ttl: 15m", "ttl: fifteen");
        let err = parse_documents("g.yaml", &bad).unwrap_err().to_string();
        assert!(
            err.starts_with("g.yaml:") && err.contains(": document 1: spec.action.grant.ttl:"),
            "{err}"
        );

        let bad = GOOD.replace("operations: [CONNECT]", "operations: [CONECT]");
        let err = parse_documents("g.yaml", &bad).unwrap_err().to_string();
        assert!(
            err.starts_with("g.yaml:") && err.contains(": document 2: spec.match.operations[0]:"),
            "{err}"
        );

        let bad = GOOD.replace("freshness: 5m", "freshnes: 5m");
        let err = parse_documents("g.yaml", &bad).unwrap_err().to_string();
        assert!(
            err.contains("document 1: spec.action") && err.contains("freshnes"),
            "{err}"
        );
    }

    #[test]
    fn compiles_cel_and_names_bad_expressions() {
        let with = GOOD.replace(
            "  action:\n    type: stepUp",
            "  condition: \"object.spec.replicas < oldObject.spec.replicas\"\n  messageExpression: \"'scaled to ' + string(object.spec.replicas)\"\n  action:\n    type: stepUp",
        );
        let g = parse_documents("g.yaml", &with).unwrap();
        assert_eq!(
            g[0].condition.as_ref().unwrap().source(),
            "object.spec.replicas < oldObject.spec.replicas"
        );
        assert!(g[0].message_expression.is_some());

        let bad = with.replace("oldObject.spec.replicas\"", "oldObject.spec.replicas +\"");
        let err = parse_documents("g.yaml", &bad).unwrap_err().to_string();
        assert!(
            err.starts_with("g.yaml:") && err.contains(": document 1: spec.condition: at 1:"),
            "{err}"
        );
        let bad = with.replace("'scaled to '", "'scaled to ");
        let err = parse_documents("g.yaml", &bad).unwrap_err().to_string();
        assert!(
            err.starts_with("g.yaml:")
                && err.contains(": document 1: spec.messageExpression: at 1:"),
            "{err}"
        );
        let bad = with.replace("object.spec.replicas <", "obj.spec.replicas <");
        let err = parse_documents("g.yaml", &bad).unwrap_err().to_string();
        assert!(
            err.contains("spec.condition: undeclared reference to `obj`"),
            "{err}"
        );
        // An unknown function or a wrong argument count is refused when the guardrail loads, not
        // found at evaluation, where it would block every request the guardrail matches.
        for (condition, expected) in [
            (
                "frobnicate(object.spec.replicas)",
                "undeclared reference to 'frobnicate'",
            ),
            (
                "object.metadata.name.startsWith('a', 'b')",
                "found no matching overload for 'startsWith' applied to 2 arguments",
            ),
            (
                "sets.contains([1])",
                "found no matching overload for 'sets.contains' applied to 1 argument",
            ),
        ] {
            let bad = with.replace("object.spec.replicas < oldObject.spec.replicas", condition);
            let err = parse_documents("g.yaml", &bad).unwrap_err().to_string();
            assert!(
                err.contains("spec.condition") && err.contains(expected),
                "{condition}: {err}"
            );
        }
    }

    #[test]
    fn refuses_bad_globs_and_service_accounts() {
        let bad = GOOD.replace("\"prod-*\"", "\"pr*od\"");
        assert!(parse_documents("g", &bad)
            .unwrap_err()
            .to_string()
            .contains("spec.match.namespaces.names[1]"));
        let bad = GOOD.replace("ci/deployer", "deployer");
        assert!(parse_documents("g", &bad)
            .unwrap_err()
            .to_string()
            .contains("spec.match.subjects.serviceAccounts[0]"));
    }

    #[test]
    fn globs_match_as_documented() {
        assert!(Glob::parse("prod-*").unwrap().matches("prod-eu"));
        assert!(!Glob::parse("prod-*").unwrap().matches("staging"));
        assert!(Glob::parse("*-prod").unwrap().matches("eu-prod"));
        assert!(Glob::parse("*pay*").unwrap().matches("epayments"));
        assert!(Glob::parse("payments").unwrap().matches("payments"));
        assert!(!Glob::parse("payments").unwrap().matches("payments2"));
        assert!(Glob::parse("a*b").is_err());
    }

    #[test]
    fn resource_patterns_follow_kubernetes_rules() {
        let p = |s| ResourcePattern::parse(s).unwrap();
        assert!(p("pods").matches("pods", ""));
        assert!(!p("pods").matches("pods", "exec"));
        assert!(p("pods/exec").matches("pods", "exec"));
        assert!(p("pods/*").matches("pods", "log"));
        assert!(p("*/scale").matches("deployments", "scale"));
        assert!(!p("*").matches("deployments", "scale"));
        assert!(p("*/*").matches("deployments", "scale"));
    }
}
