use leptos::html;
use leptos::prelude::*;

/// A confirmation before a destructive action: the trigger opens a small panel that says what will
/// happen, with the action (children, usually a form) and a way back. A `<details>` underneath, so it
/// opens without script; with script (an island), Cancel and Escape close it and focus returns to
/// the trigger. Its children stay the server's HTML: inside an island, use [`Dialog`], whose
/// children come alive with that island.
#[island]
pub fn ConfirmDialog(
    /// Unique id (for the heading).
    #[prop(into)]
    id: String,
    /// The trigger's label ("Revoke…").
    #[prop(into)]
    trigger: String,
    /// The trigger's style.
    #[prop(into)]
    trigger_class: String,
    /// The question ("Revoke this grant?").
    #[prop(into)]
    title: String,
    children: Children,
) -> impl IntoView {
    view! { <Dialog id trigger trigger_class title>{children()}</Dialog> }
}

/// [`ConfirmDialog`] as part of an island.
#[component]
pub fn Dialog(
    /// Unique id (for the heading).
    #[prop(into)]
    id: String,
    /// The trigger's label ("Revoke…").
    #[prop(into)]
    trigger: String,
    /// The trigger's style.
    #[prop(into)]
    trigger_class: String,
    /// The question ("Revoke this grant?").
    #[prop(into)]
    title: String,
    children: Children,
) -> impl IntoView {
    let details = NodeRef::<html::Details>::new();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let close = move || {
        if let Some(d) = details.get() {
            d.set_open(false);
            if let Ok(Some(summary)) = d.query_selector("summary") {
                if let Ok(summary) =
                    leptos::wasm_bindgen::JsCast::dyn_into::<leptos::web_sys::HtmlElement>(summary)
                {
                    let _ = summary.focus();
                }
            }
        }
    };
    let heading = format!("{id}-title");
    let labelled_by = heading.clone();
    // Over the page, not inside the element that holds the trigger: a table or a card that scrolls
    // or clips would cut the dialog off (it did in the grants table on a desktop).
    view! {
        <details node_ref=details class="group relative" data-dialog=id
            on:keydown=move |ev| if ev.key() == "Escape" { close() }>
            <summary class=format!("{trigger_class} cursor-pointer list-none [&::-webkit-details-marker]:hidden")>{trigger}</summary>
            <div role="dialog" aria-labelledby=labelled_by
                class="z-30 mt-2 w-full rounded-lg border border-line bg-surface p-4 text-left shadow-xl sm:fixed sm:left-1/2 sm:top-24 sm:mt-0 sm:w-96 sm:-translate-x-1/2">
                <h2 id=heading class="text-sm font-semibold text-fg">{title}</h2>
                <div class="mt-2 space-y-3 text-sm text-fg-soft">{children()}</div>
                {move || hydrated.get().then(|| view! {
                    <button type="button" class=format!("{} mt-3 w-full", super::SECONDARY_SMALL) on:click=move |_| close()>"Cancel"</button>
                })}
            </div>
        </details>
    }
}
