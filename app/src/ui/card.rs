use leptos::prelude::*;

/// A surface with an optional heading (`h2`).
#[component]
pub fn Card(
    /// The heading; none for a plain surface.
    #[prop(optional, into)]
    title: Option<String>,
    /// Extra classes (e.g. a tone's border).
    #[prop(optional, into)]
    class: String,
    children: Children,
) -> impl IntoView {
    view! {
        <section class=format!("rounded-xl border border-line bg-surface p-5 shadow-sm sm:p-6 {class}")>
            {title.map(|t| view! { <h2 class="mb-3 text-base font-semibold text-fg">{t}</h2> })}
            {children()}
        </section>
    }
}
