//! Two versions side by side, guardrail by guardrail: what was added, removed, or which lines of
//! its document changed. Pure; the portal's version comparison shows it.

use std::collections::BTreeMap;

use super::versions::{GuardrailVersion, VersionError};

/// How one guardrail differs between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The guardrail.
    pub name: String,
    /// `added`, `removed` or `changed`.
    pub kind: &'static str,
    /// Its document's lines: ' ' kept, '+' added, '-' removed, '@' between hunks.
    pub lines: Vec<(char, String)>,
}

/// Lines of context kept around each changed hunk.
const CONTEXT: usize = 2;

/// Every guardrail that differs from `a` to `b`, in `b`'s policy order then the removed ones.
pub fn compare(
    a: &GuardrailVersion,
    b: &GuardrailVersion,
) -> Result<Vec<Difference>, VersionError> {
    let before: BTreeMap<String, String> = a.split()?.into_iter().collect();
    let after = b.split()?;
    let whole = |sign: char, text: &str| text.lines().map(|l| (sign, l.to_owned())).collect();
    let mut out = Vec::new();
    for (name, text) in &after {
        match before.get(name) {
            None => out.push(Difference {
                name: name.clone(),
                kind: "added",
                lines: whole('+', text),
            }),
            Some(old) if old != text => out.push(Difference {
                name: name.clone(),
                kind: "changed",
                lines: hunks(old, text),
            }),
            Some(_) => {}
        }
    }
    let kept: std::collections::HashSet<&str> = after.iter().map(|(n, _)| n.as_str()).collect();
    for (name, text) in &before {
        if !kept.contains(name.as_str()) {
            out.push(Difference {
                name: name.clone(),
                kind: "removed",
                lines: whole('-', text),
            });
        }
    }
    Ok(out)
}

/// The changed lines of `old` → `new` with [`CONTEXT`] lines around them.
fn hunks(old: &str, new: &str) -> Vec<(char, String)> {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut lines = Vec::new();
    for (i, group) in diff.grouped_ops(CONTEXT).iter().enumerate() {
        if i > 0 {
            lines.push(('@', "⋯".to_owned()));
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                lines.push((sign, change.value().trim_end_matches('\n').to_owned()));
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::versions::join_documents;

    fn version(number: i64, documents: &[&str]) -> GuardrailVersion {
        GuardrailVersion {
            number,
            created_at: number,
            author: "a".into(),
            reason: "r".into(),
            documents: join_documents(documents.iter().copied()),
            digest: String::new(),
            seal: String::new(),
        }
    }

    fn guardrail(name: &str, action: &str) -> String {
        format!(
            "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata:\n  name: {name}\nspec:\n  description: d\n  match:\n    operations: [DELETE]\n    resources: [{{apiGroups: [\"\"], resources: [\"namespaces\"]}}]\n  action: {{type: {action}}}\n"
        )
    }

    #[test]
    fn added_removed_and_changed_guardrails_are_told_apart() {
        let a = version(
            1,
            &[
                &guardrail("keep", "deny"),
                &guardrail("gone", "deny"),
                &guardrail("edit", "warn"),
            ],
        );
        let b = version(
            2,
            &[
                &guardrail("edit", "stepUp"),
                &guardrail("keep", "deny"),
                &guardrail("new", "warn"),
            ],
        );
        let diff = compare(&a, &b).unwrap();
        let kinds: Vec<_> = diff.iter().map(|d| (d.name.as_str(), d.kind)).collect();
        assert_eq!(
            kinds,
            [("edit", "changed"), ("new", "added"), ("gone", "removed")]
        );
        let edit = &diff[0].lines;
        assert!(
            edit.contains(&('-', "  action: {type: warn}".to_owned())),
            "{edit:?}"
        );
        assert!(
            edit.contains(&('+', "  action: {type: stepUp}".to_owned())),
            "{edit:?}"
        );
        assert!(edit.len() < 8, "context is cut: {edit:?}");
        assert!(diff[1].lines.iter().all(|(s, _)| *s == '+'));
        assert!(compare(&a, &a).unwrap().is_empty());
    }
}
