//! What a change does, field by field, for the challenge page's summary ("spec.replicas 3 → 1").

use app::model::FieldChange;
use serde_json::Value;

/// Changed fields a summary lists at most; the rest are counted.
pub const SHOWN: usize = 5;
/// Characters of one value shown at most.
const VALUE_CHARS: usize = 60;
/// Fields compared at most, so a huge object cannot make the summary slow.
const VISITED: usize = 20_000;

/// The first [`SHOWN`] changed fields between `old` and `new`, and how many more changed.
pub fn field_changes(old: Option<&Value>, new: Option<&Value>) -> (Vec<FieldChange>, usize) {
    let mut walk = Walk::default();
    // A create or a delete changes the whole object; the title says so already.
    if let (Some(a), Some(b)) = (old, new) {
        walk.compare(String::new(), a, b);
    }
    let more = walk.count.saturating_sub(walk.changes.len());
    (walk.changes, more)
}

#[derive(Default)]
struct Walk {
    changes: Vec<FieldChange>,
    count: usize,
    visited: usize,
}

impl Walk {
    fn compare(&mut self, path: String, a: &Value, b: &Value) {
        self.visited += 1;
        if self.visited > VISITED || a == b {
            return;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (key, av) in x {
                    let at = join(&path, key);
                    match y.get(key) {
                        Some(bv) => self.compare(at, av, bv),
                        None => self.record(at, Some(av), None),
                    }
                }
                for (key, bv) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                    self.record(join(&path, key), None, Some(bv));
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (av, bv)) in x.iter().zip(y).enumerate() {
                    self.compare(format!("{path}[{i}]"), av, bv);
                }
            }
            _ => self.record(path, Some(a), Some(b)),
        }
    }

    fn record(&mut self, path: String, old: Option<&Value>, new: Option<&Value>) {
        self.count += 1;
        if self.changes.len() < SHOWN {
            self.changes.push(FieldChange {
                path,
                old: old.map(short),
                new: new.map(short),
            });
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A value in a few characters: scalars as written, containers by their size.
fn short(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => match a.len() {
            1 => "1 item".to_owned(),
            n => format!("{n} items"),
        },
        Value::Object(o) => match o.len() {
            1 => "1 field".to_owned(),
            n => format!("{n} fields"),
        },
        other => other.to_string(),
    };
    if text.chars().count() <= VALUE_CHARS {
        return text;
    }
    let cut: String = text.chars().take(VALUE_CHARS).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_scale_down_reads_as_one_change() {
        let old = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "api:1"}]}}}});
        let new = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": "api:1"}]}}}});
        let (changes, more) = field_changes(Some(&old), Some(&new));
        assert_eq!(more, 0);
        assert_eq!(
            changes,
            vec![FieldChange {
                path: "spec.replicas".into(),
                old: Some("3".into()),
                new: Some("1".into())
            }]
        );
    }

    #[test]
    fn added_removed_and_counted() {
        let old = json!({"metadata": {"labels": {"a": "1", "gone": "x"}}, "data": [1, 2]});
        let new = json!({"metadata": {"labels": {"a": "2", "new": "y"}}, "data": [1, 2, 3]});
        let (changes, more) = field_changes(Some(&old), Some(&new));
        let paths: Vec<_> = changes.iter().map(|c| c.path.as_str()).collect();
        // Keys in order: serde_json keeps objects sorted.
        assert_eq!(
            paths,
            [
                "data",
                "metadata.labels.a",
                "metadata.labels.gone",
                "metadata.labels.new"
            ]
        );
        assert_eq!(changes[0].new.as_deref(), Some("3 items"));
        assert_eq!(changes[2].new, None);
        assert_eq!(changes[3].old, None);
        assert_eq!(more, 0);

        let many_old = json!((0..12)
            .map(|i| (format!("k{i:02}"), json!(i)))
            .collect::<serde_json::Map<_, _>>());
        let many_new = json!((0..12)
            .map(|i| (format!("k{i:02}"), json!(i + 1)))
            .collect::<serde_json::Map<_, _>>());
        let (changes, more) = field_changes(Some(&many_old), Some(&many_new));
        assert_eq!((changes.len(), more), (SHOWN, 12 - SHOWN));
    }

    #[test]
    fn long_values_are_cut_and_creates_have_no_field_list() {
        let old = json!({"a": "x".repeat(500)});
        let new = json!({"a": "y"});
        let (changes, _) = field_changes(Some(&old), Some(&new));
        assert!(changes[0].old.as_ref().unwrap().chars().count() <= VALUE_CHARS + 1);
        assert_eq!(field_changes(None, Some(&new)), (vec![], 0));
    }
}
