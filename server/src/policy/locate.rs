//! Where a field is in a YAML text: the line and column of `spec.match.resources[0].apiGroups` in
//! the Nth document, so an error (from serde or from validation) can point at it. Block style is
//! followed key by key; a field inside flow style (`{type: x}`) is shown at the nearest enclosing
//! key that could be found.

/// 1-based line and column.
pub type Position = (usize, usize);

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(n) = rest[1..close].parse() {
                out.push(Segment::Index(n));
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

/// A line's content start: its key column and key (after a `- ` item marker), if it has content.
struct Line<'a> {
    indent: usize,
    dash: bool,
    key_col: usize,
    rest: &'a str,
}

fn line(text: &str) -> Option<Line<'_>> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let indent = text.len() - trimmed.len();
    match trimmed.strip_prefix("- ") {
        Some(after) => {
            let inner = after.trim_start();
            Some(Line {
                indent,
                dash: true,
                key_col: indent + 2 + (after.len() - inner.len()),
                rest: inner,
            })
        }
        None => Some(Line {
            indent,
            dash: trimmed == "-",
            key_col: indent,
            rest: trimmed,
        }),
    }
}

#[derive(Clone, Copy)]
enum Outer {
    Key(usize),
    Item(usize),
}

fn is_marker(l: &str) -> bool {
    l.trim_end() == "---" || l.starts_with("--- ")
}

/// The 0-based line range of document `document` (1-based, as serde_yaml counts them).
fn document_lines(lines: &[&str], document: usize) -> (usize, usize) {
    let mut starts = Vec::new();
    // Content before the first marker is a document of its own only when there is any.
    let first_marker = lines.iter().position(|l| is_marker(l));
    let lead_has_content = lines[..first_marker.unwrap_or(lines.len())]
        .iter()
        .any(|l| line(l).is_some());
    if first_marker.is_none() || lead_has_content {
        starts.push(0);
    }
    starts.extend(
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| is_marker(l))
            .map(|(i, _)| i + 1),
    );
    let start = starts.get(document.saturating_sub(1)).copied().unwrap_or(0);
    let end = lines[start..]
        .iter()
        .position(|l| is_marker(l))
        .map_or(lines.len(), |n| start + n);
    (start, end)
}

/// Where `field` (a path such as `spec.action.type`) is in document `document` of `text`.
pub fn locate(text: &str, document: usize, field: &str) -> Position {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return (1, 1);
    }
    let (start, end) = document_lines(&lines, document);
    let first = (start..end).find(|&i| line(lines[i]).is_some());
    let mut at = first.map_or((start.min(lines.len() - 1) + 1, 1), |i| {
        (i + 1, line(lines[i]).map_or(1, |l| l.key_col + 1))
    });
    // The block being searched: lines [from, to) inside `outer`, the key column (or the item
    // marker's column, for an item) of the last segment found.
    let (mut from, mut to, mut outer): (usize, usize, Option<Outer>) = (start, end, None);
    for segment in segments(field) {
        let inside = |l: &Line| match outer {
            None => true,
            // A key's block: deeper lines, and sequence items written at the key's own column.
            Some(Outer::Key(c)) => l.key_col > c || (l.dash && l.indent == c),
            // An item's block: deeper lines other than the next item.
            Some(Outer::Item(d)) => l.key_col > d && !(l.dash && l.indent == d),
        };
        let item = matches!(outer, Some(Outer::Item(_)));
        let block_end = (from..to)
            .find(|&i| !(item && i == from) && line(lines[i]).is_some_and(|l| !inside(&l)))
            .unwrap_or(to);
        let found = match segment {
            Segment::Key(key) => {
                // An item's first key shares the item's line, which is inside its own block.
                let own = |i: usize, l: &Line| (item && i == from) || inside(l);
                let child = (from..block_end).find_map(|i| line(lines[i]).filter(|l| own(i, l)));
                let Some(child_col) = child.map(|l| l.key_col) else {
                    break;
                };
                (from..block_end).find_map(|i| {
                    let l = line(lines[i]).filter(|l| own(i, l))?;
                    let named = l.rest.strip_prefix(key).is_some_and(|r| r.starts_with(':'));
                    (l.key_col == child_col && named).then_some((
                        i,
                        l.key_col,
                        Outer::Key(l.key_col),
                    ))
                })
            }
            Segment::Index(n) => {
                let items: Vec<(usize, Line)> = (from..block_end)
                    .filter_map(|i| line(lines[i]).map(|l| (i, l)))
                    .filter(|(_, l)| l.dash)
                    .collect();
                let item_indent = items.first().map(|(_, l)| l.indent);
                items
                    .into_iter()
                    .filter(|(_, l)| Some(l.indent) == item_indent)
                    .nth(n)
                    .map(|(i, l)| (i, l.indent, Outer::Item(l.indent)))
            }
        };
        let Some((i, col, next)) = found else {
            break;
        };
        at = (i + 1, col + 1);
        from = if matches!(next, Outer::Item(_)) {
            i
        } else {
            i + 1
        };
        to = block_end;
        outer = Some(next);
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# a comment\n---\napiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata:\n  name: a\nspec:\n  action:\n    type: deny\n---\nkind: Guardrail\nmetadata:\n  name: b\nspec:\n  match:\n    operations: [CREATE]\n    resources:\n      - apiGroups: [\"\"]\n        resources: [pods]\n      - apiGroups: [apps]\n        resources: [deployments]\n  action: {type: nope}\n";

    #[test]
    fn fields_are_found_key_by_key_and_item_by_item() {
        assert_eq!(locate(TEXT, 1, "spec.action.type"), (9, 5));
        assert_eq!(locate(TEXT, 1, "metadata.name"), (6, 3));
        assert_eq!(locate(TEXT, 2, "metadata.name"), (13, 3));
        assert_eq!(locate(TEXT, 2, "spec.match.operations[0]"), (16, 5));
        assert_eq!(
            locate(TEXT, 2, "spec.match.resources[1].resources"),
            (21, 9)
        );
        assert_eq!(locate(TEXT, 2, "spec.match.resources[1]"), (20, 7));
        assert_eq!(
            locate(TEXT, 2, "spec.match.resources[0].apiGroups"),
            (18, 9)
        );
    }

    #[test]
    fn a_field_inside_flow_style_is_shown_at_its_nearest_key() {
        assert_eq!(locate(TEXT, 2, "spec.action.type"), (22, 3));
        assert_eq!(locate(TEXT, 2, "(document)"), (11, 1));
        assert_eq!(locate(TEXT, 2, "spec.nothing.here"), (14, 1));
    }
}
