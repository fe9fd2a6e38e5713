//! The object diff: the changed lines with a little context first, the whole object one click away.

use leptos::prelude::*;

use crate::model::DiffLine;

/// Unchanged lines kept around each change in the compact view.
const CONTEXT: usize = 3;

/// The changed lines of `lines` with [`CONTEXT`] lines around them; each run of other unchanged
/// lines becomes one note line ('@') that says how many were left out.
pub fn compact(lines: &[DiffLine]) -> Vec<DiffLine> {
    let changed: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l.sign, '+' | '-'))
        .map(|(i, _)| i)
        .collect();
    if changed.is_empty() {
        return lines.to_vec();
    }
    let keep = |i: usize| {
        lines[i].sign == '@'
            || changed
                .binary_search_by(|c| {
                    if c + CONTEXT < i {
                        std::cmp::Ordering::Less
                    } else if *c > i + CONTEXT {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                })
                .is_ok()
    };
    let mut out = Vec::new();
    let mut skipped = 0;
    for (i, line) in lines.iter().enumerate() {
        if keep(i) {
            if skipped > 0 {
                out.push(skipped_note(skipped));
                skipped = 0;
            }
            out.push(line.clone());
        } else {
            skipped += 1;
        }
    }
    if skipped > 0 {
        out.push(skipped_note(skipped));
    }
    out
}

fn skipped_note(n: usize) -> DiffLine {
    DiffLine {
        sign: '@',
        text: match n {
            1 => "⋯ 1 unchanged line".to_owned(),
            n => format!("⋯ {n} unchanged lines"),
        },
    }
}

/// Lines in a scrollable code block, reachable by keyboard (it scrolls).
#[component]
pub fn DiffBlock(lines: Vec<DiffLine>, #[prop(into)] label: String) -> impl IntoView {
    view! {
        <pre tabindex="0" role="region" aria-label=label
            class="mt-2 max-h-96 overflow-auto rounded-lg bg-code p-3 text-xs leading-5 text-code-fg focus:outline-none focus-visible:ring-2 focus-visible:ring-ring">
            {lines.into_iter().map(|l| {
                let class = match l.sign {
                    '+' => "block bg-emerald-900/70 text-emerald-100",
                    '-' => "block bg-red-900/70 text-red-100",
                    '@' => "block text-sky-300",
                    _ => "block text-slate-300",
                };
                let text = match l.sign {
                    '@' => l.text,
                    sign => format!("{sign} {}", l.text),
                };
                view! { <span class=class data-diff=l.sign.to_string()>{text}</span> }
            }).collect_view()}
        </pre>
    }
}

/// The diff of a challenge's objects, compact first.
#[component]
pub fn Diff(lines: Vec<DiffLine>, truncated: bool, #[prop(into)] code: String) -> impl IntoView {
    if lines.is_empty() {
        return view! { <p class="text-sm text-muted">"No object was sent with this request."</p> }
            .into_any();
    }
    let short = compact(&lines);
    let whole = (short.len() != lines.len()).then(|| {
        let count = lines.iter().filter(|l| l.sign != '@').count();
        view! {
            <details class="mt-3">
                <summary class="cursor-pointer rounded text-sm font-medium text-link focus:outline-none focus-visible:ring-2 focus-visible:ring-ring">
                    {format!("Show the whole object ({count} lines)")}
                </summary>
                <DiffBlock lines label="The whole object, old to new" />
            </details>
        }
    });
    view! {
        <div data-diff-view>
            <DiffBlock lines=short label="Changed lines, old to new" />
            {whole}
            {truncated.then(|| view! {
                <p class="mt-2 text-sm font-medium text-warn" data-diff-truncated>
                    "Diff truncated: this change is too large to show here. Download the full objects to review all of it."
                </p>
            })}
            <p class="mt-3 text-sm">
                // A plain link: the browser downloads the objects as they stream.
                <a href=format!("/c/{code}/objects.json") download class=super::LINK data-objects-download>
                    "Download the full objects (JSON)"
                </a>
            </p>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(signs: &str) -> Vec<DiffLine> {
        signs
            .chars()
            .enumerate()
            .map(|(i, sign)| DiffLine {
                sign,
                text: format!("line {i}"),
            })
            .collect()
    }

    #[test]
    fn compact_keeps_changes_with_context_and_counts_the_rest() {
        let all = lines("          -+          ");
        let short = compact(&all);
        let signs: String = short.iter().map(|l| l.sign).collect();
        assert_eq!(signs, "@   -+   @");
        assert_eq!(short[0].text, "⋯ 7 unchanged lines");
        assert_eq!(short[4].text, "line 10");
        assert_eq!(short.last().unwrap().text, "⋯ 7 unchanged lines");
    }

    #[test]
    fn small_or_unchanged_diffs_stay_whole() {
        let all = lines("  + ");
        assert_eq!(compact(&all), all);
        let same = lines("     ");
        assert_eq!(compact(&same), same);
    }
}
