use leptos::prelude::*;
use leptos_meta::Title;

/// The page's `h1`, with an eyebrow line above and a lead below; also the document `<title>`, so
/// every page has its own.
#[component]
pub fn PageHeader(
    /// The heading.
    #[prop(into)]
    title: String,
    /// A short line above the heading (the guardrail, the section).
    #[prop(optional, into)]
    eyebrow: Option<String>,
    /// One or two sentences below it.
    #[prop(optional, into)]
    lead: Option<String>,
    /// Shown at the right of the heading (a badge, an action).
    #[prop(optional)]
    aside: Option<AnyView>,
    /// More under the lead (a summary with links or times).
    #[prop(optional)]
    children: Option<Children>,
) -> impl IntoView {
    view! {
        <Title text=format!("{title} · Countersign") />
        <div class="mb-6 flex flex-wrap items-start justify-between gap-3">
            <div class="min-w-0">
                {eyebrow.map(|e| view! { <p class="text-sm font-medium text-link">{e}</p> })}
                <h1 class="mt-0.5 text-2xl font-semibold tracking-tight text-fg break-words">{title}</h1>
                {lead.map(|l| view! { <p class="mt-1 max-w-2xl text-sm text-muted">{l}</p> })}
                {children.map(|c| c())}
            </div>
            {aside}
        </div>
    }
}
