use leptos::prelude::*;

/// A table on wide screens that becomes a stack of cards on a phone: the header row hides and
/// each cell shows its column's name beside its value. The scroll wrapper is `relative`, so
/// nothing inside it (visually hidden headers included) can widen the page.
#[component]
pub fn DataTable(
    /// Said to screen readers.
    #[prop(into)]
    caption: String,
    /// Column names (an empty one for the actions column).
    headers: Vec<&'static str>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="relative sm:overflow-x-auto">
            <table class="w-full text-left text-sm max-sm:block">
                <caption class="sr-only">{caption}</caption>
                <thead class="border-b border-line text-xs uppercase tracking-wide text-muted max-sm:hidden">
                    <tr>
                        {headers.into_iter().map(|h| view! {
                            <th scope="col" class="py-2 pr-4 font-semibold last:pr-0">
                                {if h.is_empty() { view! { <span class="sr-only">"Actions"</span> }.into_any() } else { h.into_any() }}
                            </th>
                        }).collect_view()}
                    </tr>
                </thead>
                <tbody class="divide-y divide-line max-sm:block max-sm:space-y-3 max-sm:divide-y-0">{children()}</tbody>
            </table>
        </div>
    }
}

/// Classes of a row (`<tr class=ROW>`): a card on a phone.
pub const ROW: &str = "align-top max-sm:block max-sm:rounded-lg max-sm:border max-sm:border-line max-sm:bg-surface max-sm:p-4";

/// A cell that names its column on a phone.
#[component]
pub fn Cell(
    /// The column's name, shown beside the value on a phone; empty for the actions cell.
    #[prop(into)]
    label: String,
    children: Children,
) -> impl IntoView {
    let class = if label.is_empty() {
        "py-3 pr-4 last:pr-0 max-sm:block max-sm:pt-3 max-sm:pb-0 max-sm:pr-0"
    } else {
        "py-3 pr-4 last:pr-0 max-sm:flex max-sm:gap-3 max-sm:py-1 max-sm:pr-0 max-sm:before:w-20 max-sm:before:shrink-0 max-sm:before:pt-0.5 max-sm:before:text-xs max-sm:before:font-medium max-sm:before:uppercase max-sm:before:tracking-wide max-sm:before:text-muted max-sm:before:content-[attr(data-label)]"
    };
    view! { <td data-label=label class=class><div class="min-w-0 break-words">{children()}</div></td> }
}
