//! A line diff of the old and new object, as the challenge page shows it.
//!
//! Myers' algorithm in linear space (the `similar` crate), so a review of the maximum size still
//! gets its one changed value highlighted. What a page shows is bounded in lines and bytes: past
//! the bounds the diff says it was cut short, and the full objects are a download away.

use std::time::{Duration, Instant};

use app::model::{DiffLine, FieldChange};
use serde_json::Value;
use similar::{Algorithm, ChangeTag, DiffOp, TextDiff};

use super::changes::field_changes;
use crate::admission::digested_object;

/// Objects whose diff fits this many lines are shown whole; larger ones as hunks with context.
const MAX_LINES: usize = 2000;
/// Bytes of diff text a page shows at most (the page carries it twice: HTML and hydration data).
const MAX_BYTES: usize = 192 * 1024;
/// Hunks a page shows at most.
const MAX_HUNKS: usize = 100;
/// Unchanged lines shown around each change.
const CONTEXT: usize = 3;
/// Characters of one line shown at most; a changed line is cut around its first difference.
const MAX_LINE_CHARS: usize = 400;
/// Characters kept before the first difference of a long changed line.
const LEAD_CHARS: usize = 120;
/// Myers gives up refining after this long and returns a correct, coarser diff.
const DEADLINE: Duration = Duration::from_secs(2);

/// The diff as a page shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderedDiff {
    /// Lines, with '@' lines marking hunks and skipped unchanged lines.
    pub lines: Vec<DiffLine>,
    /// The bounds cut it short: the page says so and links the full objects.
    pub truncated: bool,
    /// The first changed fields, for the summary above the diff.
    pub changes: Vec<FieldChange>,
    /// How many more fields changed than `changes` lists.
    pub more_changes: usize,
}

impl RenderedDiff {
    /// Roughly the memory it holds, for the cache's byte bound.
    pub fn bytes(&self) -> usize {
        self.lines
            .iter()
            .map(|l| l.text.len() + std::mem::size_of::<DiffLine>())
            .chain(self.changes.iter().map(|c| {
                c.path.len()
                    + c.old.as_ref().map_or(0, String::len)
                    + c.new.as_ref().map_or(0, String::len)
            }))
            .sum()
    }
}

/// An object as the page shows it: YAML (what kubectl users read), as the grant binds it (without
/// the fields the API server changes on its own; `status` only where `subresource` writes it) and
/// with Secret values redacted.
pub fn shown_object(kind: &str, subresource: &str, value: Option<&Value>) -> Option<Value> {
    value
        .filter(|v| !v.is_null())
        .map(|v| redact(kind, &digested_object(v, subresource)))
}

/// Both objects diffed line by line, within the page's bounds.
pub fn object_diff(
    kind: &str,
    subresource: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) -> RenderedDiff {
    let (old, new) = (
        shown_object(kind, subresource, old),
        shown_object(kind, subresource, new),
    );
    let yaml = |v: Option<&Value>| -> String {
        v.and_then(|v| serde_yaml::to_string(v).ok())
            .unwrap_or_default()
    };
    let mut rendered = diff_text(&yaml(old.as_ref()), &yaml(new.as_ref()));
    (rendered.changes, rendered.more_changes) = field_changes(old.as_ref(), new.as_ref());
    rendered
}

/// The bounded diff of two texts.
fn diff_text(a: &str, b: &str) -> RenderedDiff {
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .deadline(Instant::now() + DEADLINE)
        .diff_lines(a, b);
    let ops = diff.ops();
    let (old, new) = (diff.old_slices(), diff.new_slices());
    let mut out = Page::default();
    let whole: usize = ops
        .iter()
        .map(|op| match op {
            DiffOp::Equal { len, .. } => *len,
            _ => op.old_range().len() + op.new_range().len(),
        })
        .sum();
    if whole <= MAX_LINES {
        // Small enough to read whole, as before: every line, changed or not.
        for op in ops {
            if !out.op(op, old, new) {
                break;
            }
        }
        return out.done();
    }
    let hunks = diff.grouped_ops(CONTEXT);
    if hunks.is_empty() {
        out.marker(format!("@@ no change in {} lines @@", old.len()));
    }
    for (i, hunk) in hunks.iter().enumerate() {
        if i == MAX_HUNKS {
            out.truncated = true;
            break;
        }
        let (Some(first), Some(last)) = (hunk.first(), hunk.last()) else {
            continue;
        };
        let (o, n) = (first.old_range().start, first.new_range().start);
        let (oe, ne) = (last.old_range().end, last.new_range().end);
        if !out.marker(format!("@@ -{},{} +{},{} @@", o + 1, oe - o, n + 1, ne - n)) {
            break;
        }
        if !hunk.iter().all(|op| out.op(op, old, new)) {
            break;
        }
    }
    out.done()
}

/// The lines collected so far, against the bounds.
#[derive(Default)]
struct Page {
    lines: Vec<DiffLine>,
    bytes: usize,
    truncated: bool,
}

impl Page {
    /// Add a line; false once the bounds are reached (and the page marked truncated).
    fn push(&mut self, sign: char, text: String) -> bool {
        if self.truncated || self.lines.len() >= MAX_LINES || self.bytes + text.len() > MAX_BYTES {
            self.truncated = true;
            return false;
        }
        self.bytes += text.len();
        self.lines.push(DiffLine { sign, text });
        true
    }

    fn marker(&mut self, text: String) -> bool {
        self.push('@', text)
    }

    /// The lines of one operation; a replaced line is cut around where it differs from its pair.
    fn op(&mut self, op: &DiffOp, old: &[&str], new: &[&str]) -> bool {
        let (ours, theirs) = (&old[op.old_range()], &new[op.new_range()]);
        for (tag, slice) in [(ChangeTag::Delete, ours), (ChangeTag::Insert, theirs)] {
            for (i, line) in slice.iter().enumerate() {
                let line = line.trim_end_matches(['\n', '\r']);
                let (sign, text) = match (op, tag) {
                    (DiffOp::Equal { .. }, ChangeTag::Insert) => break,
                    (DiffOp::Equal { .. }, _) => (' ', clip(line, 0)),
                    (_, ChangeTag::Delete) => {
                        ('-', clip(line, first_difference(line, theirs.get(i))))
                    }
                    (_, _) => ('+', clip(line, first_difference(line, ours.get(i)))),
                };
                if !self.push(sign, text) {
                    return false;
                }
            }
        }
        true
    }

    fn done(self) -> RenderedDiff {
        RenderedDiff {
            lines: self.lines,
            truncated: self.truncated,
            ..RenderedDiff::default()
        }
    }
}

/// Byte offset where `line` first differs from its counterpart (0 without one).
fn first_difference(line: &str, other: Option<&&str>) -> usize {
    let Some(other) = other else { return 0 };
    line.char_indices()
        .zip(other.chars())
        .find(|((_, a), b)| a != b)
        .map_or_else(|| line.len().min(other.len()), |((at, _), _)| at)
}

/// At most [`MAX_LINE_CHARS`] of `line`, starting a little before byte offset `focus`.
fn clip(line: &str, focus: usize) -> String {
    if line.chars().count() <= MAX_LINE_CHARS {
        return line.to_owned();
    }
    let lead_bytes = line[..focus.min(line.len())]
        .char_indices()
        .rev()
        .nth(LEAD_CHARS)
        .map_or(0, |(at, _)| at);
    let start = if focus > 0 { lead_bytes } else { 0 };
    let shown: String = line[start..].chars().take(MAX_LINE_CHARS).collect();
    let hidden = line.chars().count() - shown.chars().count();
    let before = if start > 0 { "…" } else { "" };
    format!("{before}{shown}… ({hidden} more characters in the full object)")
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shows_the_change() {
        let old = json!({"spec": {"replicas": 3}});
        let new = json!({"spec": {"replicas": 1}});
        let diff = object_diff("Deployment", "", Some(&old), Some(&new)).lines;
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
        let diff = object_diff("Deployment", "", Some(&old), Some(&new)).lines;
        assert!(diff.iter().all(|l| l.sign == ' '), "{diff:?}");
    }

    #[test]
    fn never_shows_secret_values() {
        let new = json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="}});
        let diff = object_diff("Secret", "", None, Some(&new)).lines;
        assert!(diff.iter().all(|l| !l.text.contains("aHVudGVyMg==")));
        assert!(diff.iter().any(|l| l.text.contains("password")));
    }

    fn big_config(changed: &str) -> Value {
        let data: serde_json::Map<String, Value> = (0..20_000)
            .map(|i| {
                let v = if i == 12_345 {
                    changed.to_owned()
                } else {
                    format!("value-{i}")
                };
                (format!("key-{i:05}"), Value::String(v))
            })
            .collect();
        json!({"kind": "ConfigMap", "metadata": {"name": "big"}, "data": data})
    }

    #[test]
    fn finding_15_one_change_in_a_large_object_is_a_small_hunk() {
        let diff = object_diff(
            "ConfigMap",
            "",
            Some(&big_config("before")),
            Some(&big_config("after")),
        );
        let changed: Vec<_> = diff
            .lines
            .iter()
            .filter(|l| l.sign != ' ' && l.sign != '@')
            .collect();
        assert_eq!(
            changed
                .iter()
                .map(|l| (l.sign, l.text.as_str()))
                .collect::<Vec<_>>(),
            [('-', "  key-12345: before"), ('+', "  key-12345: after")]
        );
        assert!(diff.lines.len() <= 2 + 2 * CONTEXT + 1, "{:?}", diff.lines);
        assert!(!diff.truncated);
    }

    #[test]
    fn finding_15_a_long_changed_line_is_cut_around_the_change() {
        let long = |tail: &str| json!({"metadata": {"annotations": {"big": format!("{}{tail}", "x".repeat(1 << 20))}}});
        let diff = object_diff("ConfigMap", "", Some(&long("old")), Some(&long("new")));
        let plus = diff
            .lines
            .iter()
            .find(|l| l.sign == '+')
            .expect("an added line");
        assert!(plus.text.contains("xnew"), "{}", &plus.text[..200]);
        assert!(plus.text.len() < 2 * MAX_LINE_CHARS, "{}", plus.text.len());
    }

    #[test]
    fn finding_15_many_changes_stop_at_the_bounds() {
        let a: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        let b: String = (0..50_000)
            .map(|i| {
                if i % 10 == 0 {
                    format!("changed {i}\n")
                } else {
                    format!("line {i}\n")
                }
            })
            .collect();
        let diff = diff_text(&a, &b);
        assert!(diff.truncated);
        assert!(diff.lines.len() <= MAX_LINES);
        assert!(diff.lines.iter().map(|l| l.text.len()).sum::<usize>() <= MAX_BYTES);
    }

    #[test]
    fn finding_4_status_is_shown_where_the_request_writes_it() {
        let csr = |condition: &str| {
            json!({"kind": "CertificateSigningRequest", "metadata": {"name": "csr-1"},
                   "status": {"conditions": [{"type": condition}]}})
        };
        let lines = |subresource: &str| {
            object_diff(
                "CertificateSigningRequest",
                subresource,
                Some(&csr("Pending")),
                Some(&csr("Approved")),
            )
            .lines
        };
        assert!(lines("approval")
            .iter()
            .any(|l| l.sign == '+' && l.text.contains("Approved")));
        assert!(!lines("").iter().any(|l| l.text.contains("Approved")));
    }
}
