//! Our own CEL conformance suite, built from the upstream tests of the libraries Kubernetes
//! enables (`server/tests/cel_conformance/*.yaml`; each file names its source and commit).
//!
//! Every case goes through what a guardrail's condition goes through: the checker at load, then the
//! interpreter. A case passes when the value equals the expected one under CEL `==`, when evaluation
//! fails with the expected error, or when the checker refuses it with the expected error.
//! `known_gaps.yaml` lists the cases we do not meet yet, by library: the test fails if any other
//! case fails, and also if a listed case passes (so the list only ever shrinks, and the README's
//! pass rates stay true).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use serde::Deserialize;

use countersign::admission::{parse_review, AdmissionRequest};
use countersign::policy::{Activation, CelExpression, Inputs};

use crate::support::{fixture, review};

#[derive(Deserialize)]
struct Suite {
    library: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    expr: String,
    value: Option<String>,
    error: Option<String>,
    #[serde(rename = "compileError")]
    compile_error: Option<String>,
}

/// Whether `case` behaves as upstream says; the error says how it did not.
fn run(case: &Case, activation: &Activation<'_>) -> Result<(), String> {
    let compiled = CelExpression::compile(&case.expr);
    if let Some(expected) = &case.compile_error {
        return match compiled {
            Err(e) if contains(&e, expected) => Ok(()),
            Err(e) => Err(format!("refused with `{e}`, not `{expected}`")),
            Ok(_) => Err(format!("accepted; upstream refuses it: `{expected}`")),
        };
    }
    let compiled = compiled.map_err(|e| format!("refused at check: {e}"))?;
    if let Some(expected) = &case.error {
        return match compiled.evaluate(activation) {
            Err(e) if contains(&e, expected) => Ok(()),
            Err(e) => Err(format!("failed with `{e}`, not `{expected}`")),
            Ok(()) => Err(format!("evaluated; upstream fails with `{expected}`")),
        };
    }
    let value = case.value.as_deref().ok_or("the case expects nothing")?;
    let equal = CelExpression::compile(&format!("({}) == ({value})", case.expr))
        .map_err(|e| format!("comparison refused: {e}"))?;
    match equal.eval_bool(activation) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("not equal to {value}")),
        Err(e) => Err(format!("failed: {e}")),
    }
}

fn contains(message: &str, expected: &str) -> bool {
    message.to_lowercase().contains(&expected.to_lowercase())
}

/// Pass counts per library, as the README reports them.
#[derive(Default)]
struct Tally {
    passed: usize,
    total: usize,
}

#[test]
fn the_cel_conformance_suite_passes_but_for_its_known_gaps() -> anyhow::Result<()> {
    let dir = fixture("cel_conformance");
    let gaps: BTreeMap<String, BTreeSet<String>> =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("known_gaps.yaml"))?)?;
    let request: AdmissionRequest =
        parse_review(&serde_json::to_vec(&review("deployment-create")?)?)?;
    let inputs = Inputs::new(&request, None);
    let activation = Activation::new(&request, &inputs).map_err(anyhow::Error::msg)?;

    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n != "known_gaps.yaml"))
        .collect();
    files.sort();
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut surprises = Vec::new();
    for file in files {
        let suite: Suite = serde_yaml::from_str(&std::fs::read_to_string(&file)?)
            .with_context(|| format!("reading {}", file.display()))?;
        let known = gaps.get(&suite.library).cloned().unwrap_or_default();
        let tally = tallies.entry(suite.library.clone()).or_default();
        for case in &suite.cases {
            tally.total += 1;
            let outcome = run(case, &activation);
            let listed = known.contains(&case.name);
            match (&outcome, listed) {
                (Ok(()), false) => tally.passed += 1,
                (Err(_), true) => {}
                (Ok(()), true) => surprises.push(format!(
                    "{}/{}: passes now; take it out of known_gaps.yaml",
                    suite.library, case.name
                )),
                (Err(why), false) => surprises.push(format!(
                    "{}/{}: `{}`: {why}",
                    suite.library, case.name, case.expr
                )),
            }
        }
    }
    let (mut passed, mut total) = (0, 0);
    for (library, t) in &tallies {
        println!(
            "{library:>10}: {:>3} of {:>3} ({:.0}%)",
            t.passed,
            t.total,
            100.0 * t.passed as f64 / t.total.max(1) as f64
        );
        passed += t.passed;
        total += t.total;
    }
    println!("{:>10}: {passed:>3} of {total:>3}", "all");
    assert!(
        surprises.is_empty(),
        "{} cases differ from known_gaps.yaml:\n{}",
        surprises.len(),
        surprises.join("\n")
    );
    Ok(())
}
