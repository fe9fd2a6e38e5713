//! `countersign policy eval | check | test`: guardrails evaluated with no store and no cluster.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::admission::parse_review;
use crate::engine::{Decision, Engine, Explanation, NamespaceIndex};
use crate::policy::{self, ActionKind, Mode};

/// Read Namespace objects from a YAML or JSON list (or a `kind: List` with `items`).
pub fn read_namespaces(path: &Path) -> anyhow::Result<NamespaceIndex> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value = serde_yaml::from_str(&text)
        .with_context(|| format!("{}: not YAML or JSON", path.display()))?;
    namespaces_from_value(&value)
        .with_context(|| format!("{}: expected a list of Namespace objects", path.display()))
}

fn namespaces_from_value(value: &Value) -> Option<NamespaceIndex> {
    let items = value
        .as_array()
        .or_else(|| value.get("items")?.as_array())?;
    Some(NamespaceIndex::from_objects(items))
}

/// The JSON `policy eval` prints for a decision.
pub fn decision_json(decision: &Decision) -> Value {
    let verdict_allows = matches!(
        decision.action,
        ActionKind::Allow | ActionKind::Audit | ActionKind::Warn
    );
    json!({
        "allowed": verdict_allows,
        "action": decision.action.as_str(),
        "guardrails": decision.hits.iter().map(|h| json!({
            "name": h.name,
            "action": h.action.as_str(),
            "mode": if h.mode == Mode::Enforce { "enforce" } else { "dryRun" },
            "message": h.message,
        })).collect::<Vec<_>>(),
        "warnings": decision.warnings(),
    })
}

/// The `policy eval` JSON with, per guardrail, whether it matched and why.
pub fn explained_json(decision: &Decision, explanations: &[Explanation]) -> Value {
    let mut out = decision_json(decision);
    out["explanations"] = json!(explanations);
    out
}

/// `policy eval`
pub fn eval(policies: &Path, request: &Path, namespaces: Option<&Path>) -> anyhow::Result<Value> {
    let engine = Engine::new(policy::load_path(policies)?);
    let body = std::fs::read(request).with_context(|| format!("reading {}", request.display()))?;
    let review = parse_review(&body).with_context(|| format!("{}", request.display()))?;
    let index = match namespaces {
        Some(p) => read_namespaces(p)?,
        None => NamespaceIndex::default(),
    };
    let (decision, explanations) = engine.explain(&review, &index);
    Ok(explained_json(&decision, &explanations))
}

/// `policy check`: load every path, print a count per path.
pub fn check(paths: &[PathBuf]) -> anyhow::Result<usize> {
    let mut total = 0;
    for path in paths {
        let loaded = policy::load_path(path)?;
        println!("{}: {} guardrail(s) OK", path.display(), loaded.len());
        total += loaded.len();
    }
    Ok(total)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Suite {
    /// Guardrail file or folder, relative to the suite file.
    policies: PathBuf,
    /// Namespace objects for selectors.
    #[serde(default)]
    namespaces: Option<Value>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// AdmissionReview file, relative to the suite file.
    #[serde(default)]
    request: Option<PathBuf>,
    /// Or the AdmissionReview inline.
    #[serde(default)]
    review: Option<Value>,
    /// Expected action: allow, audit, warn, stepUp, approval, deny.
    expect: ActionKind,
    /// Guardrails expected to match (all of them, in any order), when given.
    #[serde(default)]
    guardrails: Option<Vec<String>>,
}

/// One row of `policy test` output.
pub struct CaseResult {
    /// Suite file.
    pub suite: String,
    /// Case name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What happened, when it failed.
    pub detail: String,
}

/// `policy test`: run every `*.test.yaml` under `path`.
pub fn test(path: &Path) -> anyhow::Result<Vec<CaseResult>> {
    let mut suites = Vec::new();
    collect_suites(path, &mut suites)?;
    suites.sort();
    if suites.is_empty() {
        bail!("{}: no *.test.yaml suites found", path.display());
    }
    let mut results = Vec::new();
    for suite_path in suites {
        let label = suite_path.display().to_string();
        let text =
            std::fs::read_to_string(&suite_path).with_context(|| format!("reading {label}"))?;
        let suite: Suite =
            serde_yaml::from_str(&text).with_context(|| format!("{label}: not a test suite"))?;
        let base = suite_path.parent().unwrap_or(Path::new("."));
        let engine = Engine::new(policy::load_path(&base.join(&suite.policies))?);
        let index = match &suite.namespaces {
            Some(v) => namespaces_from_value(v)
                .with_context(|| format!("{label}: namespaces must be a list"))?,
            None => NamespaceIndex::default(),
        };
        for case in suite.cases {
            let body = match (&case.request, &case.review) {
                (Some(file), None) => std::fs::read(base.join(file)).with_context(|| {
                    format!("{label}: case `{}`: reading {}", case.name, file.display())
                })?,
                (None, Some(review)) => serde_json::to_vec(review)?,
                _ => bail!(
                    "{label}: case `{}`: give exactly one of `request` (file) or `review` (inline)",
                    case.name
                ),
            };
            let review =
                parse_review(&body).with_context(|| format!("{label}: case `{}`", case.name))?;
            let decision = engine.evaluate(&review, &index);
            let mut problems = Vec::new();
            if decision.action != case.expect {
                problems.push(format!(
                    "expected {}, got {}",
                    case.expect.as_str(),
                    decision.action.as_str()
                ));
            }
            if let Some(expected) = &case.guardrails {
                let mut got: Vec<&str> = decision.hits.iter().map(|h| h.name.as_str()).collect();
                let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
                got.sort_unstable();
                want.sort_unstable();
                if got != want {
                    problems.push(format!("expected guardrails {want:?}, got {got:?}"));
                }
            }
            if !problems.is_empty() {
                let (_, explanations) = engine.explain(&review, &index);
                let why: Vec<String> = explanations
                    .iter()
                    .filter(|e| {
                        e.failed == Some("condition")
                            || case
                                .guardrails
                                .as_ref()
                                .is_some_and(|g| !e.matched && g.contains(&e.name))
                    })
                    .map(|e| format!("{}: {}", e.name, e.reason))
                    .collect();
                if !why.is_empty() {
                    problems.push(format!("why: {}", why.join("; ")));
                }
            }
            results.push(CaseResult {
                suite: label.clone(),
                name: case.name,
                passed: problems.is_empty(),
                detail: problems.join("; "),
            });
        }
    }
    Ok(results)
}

fn collect_suites(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_file() {
        out.push(path.to_owned());
        return Ok(());
    }
    for entry in std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
        let p = entry?.path();
        if p.is_dir() {
            collect_suites(&p, out)?;
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".test.yaml"))
        {
            out.push(p);
        }
    }
    Ok(())
}
