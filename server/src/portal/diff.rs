//! A line diff of the old and new object, as the challenge page shows it.

use app::model::DiffLine;
use serde_json::Value;

use crate::admission::without_volatile_fields;

/// Objects larger than this many lines are shown without alignment (the LCS table would be too big).
const MAX_LINES: usize = 2000;

/// Both objects as YAML (what kubectl users read), without the fields the grant ignores and with
/// Secret values redacted, diffed line by line.
pub fn object_diff(kind: &str, old: Option<&Value>, new: Option<&Value>) -> Vec<DiffLine> {
    let render = |v: Option<&Value>| -> Vec<String> {
        v.filter(|v| !v.is_null())
            .map(|v| {
                let v = redact(kind, &without_volatile_fields(v));
                serde_yaml::to_string(&v)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (a, b) = (render(old), render(new));
    if a.len() > MAX_LINES || b.len() > MAX_LINES {
        let mut out: Vec<DiffLine> = a
            .into_iter()
            .map(|text| DiffLine { sign: '-', text })
            .collect();
        out.extend(b.into_iter().map(|text| DiffLine { sign: '+', text }));
        return out;
    }
    lcs_diff(&a, &b)
}

/// Secret values never reach a browser: only their keys.
fn redact(kind: &str, value: &Value) -> Value {
    let mut copy = value.clone();
    if kind == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(map) = copy.get_mut(field).and_then(Value::as_object_mut) {
                for v in map.values_mut() {
                    *v = Value::String("(redacted)".into());
                }
            }
        }
    }
    copy
}

fn lcs_diff(a: &[String], b: &[String]) -> Vec<DiffLine> {
    let (n, m) = (a.len(), b.len());
    let mut table = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if a[i] == b[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(n.max(m)));
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push(DiffLine {
                sign: ' ',
                text: a[i].clone(),
            });
            i += 1;
            j += 1;
        } else if i < n && (j == m || table[i + 1][j] >= table[i][j + 1]) {
            // Removed lines before added ones, as in every diff people read.
            out.push(DiffLine {
                sign: '-',
                text: a[i].clone(),
            });
            i += 1;
        } else {
            out.push(DiffLine {
                sign: '+',
                text: b[j].clone(),
            });
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shows_the_change() {
        let old = json!({"spec": {"replicas": 3}});
        let new = json!({"spec": {"replicas": 1}});
        let diff = object_diff("Deployment", Some(&old), Some(&new));
        assert!(
            diff.iter()
                .any(|l| l.sign == '-' && l.text == "  replicas: 3"),
            "{diff:?}"
        );
        assert!(
            diff.iter()
                .any(|l| l.sign == '+' && l.text == "  replicas: 1"),
            "{diff:?}"
        );
        assert!(
            diff.iter().any(|l| l.sign == ' ' && l.text == "spec:"),
            "{diff:?}"
        );
    }

    #[test]
    fn hides_what_the_api_server_changes_on_its_own() {
        let old = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "status": {"x": 1}});
        let new = json!({"metadata": {"name": "a", "resourceVersion": "2"}, "status": {"x": 2}});
        let diff = object_diff("Deployment", Some(&old), Some(&new));
        assert!(diff.iter().all(|l| l.sign == ' '), "{diff:?}");
    }

    #[test]
    fn never_shows_secret_values() {
        let new = json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="}});
        let diff = object_diff("Secret", None, Some(&new));
        assert!(diff.iter().all(|l| !l.text.contains("aHVudGVyMg==")));
        assert!(diff.iter().any(|l| l.text.contains("password")));
    }
}
