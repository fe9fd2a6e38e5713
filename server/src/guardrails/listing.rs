//! The guardrail list as people read it: each guardrail in force, the version that last changed it
//! and by whom, and how often it tripped. Pure: the portal gathers the versions and the counts.

use std::collections::HashMap;

use super::versions::GuardrailVersion;

/// The version that last changed one guardrail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastChange {
    /// The version's number.
    pub number: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who saved it.
    pub author: String,
    /// Why.
    pub reason: String,
}

/// For each guardrail of the newest of `versions` (any order), the newest version in which its
/// document differs from the version before, or in which it appeared. A guardrail unchanged over
/// every version given gets the oldest of them: the history may be cut short by `limit`.
pub fn last_changes(versions: &[GuardrailVersion]) -> HashMap<String, LastChange> {
    let mut sorted: Vec<&GuardrailVersion> = versions.iter().collect();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.number));
    let documents: Vec<HashMap<String, String>> = sorted
        .iter()
        .map(|v| v.split().unwrap_or_default().into_iter().collect())
        .collect();
    let change = |v: &GuardrailVersion| LastChange {
        number: v.number,
        at: v.created_at,
        author: v.author.clone(),
        reason: v.reason.clone(),
    };
    let mut out = HashMap::new();
    let Some(newest) = documents.first() else {
        return out;
    };
    for (name, text) in newest {
        // Walk back while the document is the same as in the newest version.
        let mut at = 0;
        while at + 1 < sorted.len() && documents[at + 1].get(name) == Some(text) {
            at += 1;
        }
        out.insert(name.clone(), change(sorted[at]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(number: i64, author: &str, documents: &[&str]) -> GuardrailVersion {
        GuardrailVersion {
            number,
            created_at: 1_000 * number,
            author: author.into(),
            reason: format!("change {number}"),
            documents: super::super::versions::join_documents(documents.iter().copied()),
            digest: String::new(),
            seal: String::new(),
        }
    }

    fn guardrail(name: &str, message: &str) -> String {
        format!(
            "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata:\n  name: {name}\nspec:\n  description: d\n  match:\n    operations: [DELETE]\n    resources: [{{apiGroups: [\"\"], resources: [\"namespaces\"]}}]\n  action: {{type: stepUp}}\n  message: {message}\n"
        )
    }

    #[test]
    fn each_guardrail_is_dated_by_the_version_that_last_changed_it() {
        let (a1, a2, b1) = (
            guardrail("a", "one"),
            guardrail("a", "two"),
            guardrail("b", "x"),
        );
        let versions = [
            version(1, "seed", &[&a1]),
            version(3, "carol", &[&a2, &b1]),
            version(2, "bob", &[&a1, &b1]),
            version(4, "dave", &[&a2, &b1]),
        ];
        let changes = last_changes(&versions);
        assert_eq!(changes["a"].number, 3);
        assert_eq!(changes["a"].author, "carol");
        assert_eq!(changes["b"].number, 2);
        assert_eq!(changes["b"].at, 2_000);
        assert_eq!(changes.len(), 2);
        assert!(last_changes(&[]).is_empty());
        // Unchanged over the history given: its oldest version.
        assert_eq!(last_changes(&versions[2..])["b"].number, 2);
    }
}
