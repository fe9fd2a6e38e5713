use leptos::prelude::*;

/// A labelled form field: the label, the input (children, whose `id` must be `id`), help and an error.
#[component]
pub fn Field(
    #[prop(into)] id: String,
    #[prop(into)] label: String,
    /// Help under the input (`{id}-help`; point the input's `aria-describedby` at it).
    #[prop(optional, into)]
    help: Option<String>,
    children: Children,
) -> impl IntoView {
    let help_id = format!("{id}-help");
    view! {
        <div>
            <label for=id class="block text-sm font-medium text-fg">{label}</label>
            {children()}
            {help.map(|h| view! { <p id=help_id class="mt-1 text-xs text-muted">{h}</p> })}
        </div>
    }
}
