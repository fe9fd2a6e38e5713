//! Telling people what happened: notices, empty and error states, progress, toasts.

use leptos::prelude::*;

use super::badge::Tone;

/// A notice inside a page.
#[component]
pub fn Alert(
    tone: Tone,
    /// Bold first line.
    #[prop(optional, into)]
    title: Option<String>,
    children: Children,
) -> impl IntoView {
    // Errors interrupt; everything else is announced politely.
    let role = if tone == Tone::Bad { "alert" } else { "status" };
    view! {
        <div role=role class=format!("rounded-lg border p-4 text-sm {}", tone.panel())>
            {title.map(|t| view! { <p class="font-semibold">{t}</p> })}
            <div class="mt-0.5 text-fg-soft [&_strong]:text-fg">{children()}</div>
        </div>
    }
}

/// Nothing to show yet: what will appear here and how.
#[component]
pub fn EmptyState(#[prop(into)] title: String, children: Children) -> impl IntoView {
    view! {
        <div class="rounded-lg border border-dashed border-line-strong p-6 text-center" data-empty>
            <p class="font-medium text-fg">{title}</p>
            <div class="mx-auto mt-1 max-w-prose text-sm text-muted">{children()}</div>
        </div>
    }
}

/// A page that cannot show what was asked: a heading (the page's `h1`), a plain explanation and
/// the next step.
#[component]
pub fn ErrorState(
    #[prop(into)] title: String,
    /// What to do next (links or buttons).
    #[prop(optional)]
    actions: Option<AnyView>,
    children: Children,
) -> impl IntoView {
    view! {
        <leptos_meta::Title text=format!("{title} · Countersign") />
        <section role="alert" class="mx-auto max-w-lg rounded-xl border border-line bg-surface p-6 text-center shadow-sm sm:p-8" data-error-state>
            <div aria-hidden="true" class="mx-auto mb-4 flex h-12 w-12 items-center justify-center rounded-full bg-warn-soft text-warn">
                <svg viewBox="0 0 24 24" class="h-6 w-6" fill="none" stroke="currentColor" stroke-width="2">
                    <path stroke-linecap="round" stroke-linejoin="round" d="M12 9v4m0 4h.01M10.3 3.9L1.8 18a2 2 0 001.7 3h17a2 2 0 001.7-3L13.7 3.9a2 2 0 00-3.4 0z" />
                </svg>
            </div>
            <h1 class="text-xl font-semibold tracking-tight text-fg">{title}</h1>
            <div class="mt-2 text-sm text-muted">{children()}</div>
            {actions.map(|a| view! { <div class="mt-5 flex flex-wrap justify-center gap-3">{a}</div> })}
        </section>
    }
}

/// Placeholder while data loads: a fallback the reader should not see, since every page renders whole
/// on the server and refreshes in place by swapping whole regions (`live.js`).
#[component]
pub fn Loading() -> impl IntoView {
    view! {
        <p class="flex items-center gap-2 text-sm text-muted" role="status">
            <span aria-hidden="true" class="h-4 w-4 animate-spin rounded-full border-2 border-line-strong border-t-accent"></span>
            "Loading…"
        </p>
    }
}

/// The result of an action, announced and shown at the bottom of the screen.
#[component]
pub fn Toast(tone: Tone, #[prop(into)] message: String) -> impl IntoView {
    view! {
        <div class="pointer-events-none fixed inset-x-0 bottom-4 z-40 flex justify-center px-4">
            <p role="status" data-toast class=format!("pointer-events-auto max-w-md rounded-lg border px-4 py-3 text-sm font-medium shadow-lg {}", tone.panel())>
                {message}
            </p>
        </div>
    }
}

/// A server function's error as a sentence (without Leptos' "error running server function" prefix).
pub fn error_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m.clone(),
        ServerFnError::Request(_) | ServerFnError::Response(_) => {
            "The portal could not be reached. Check your connection and try again.".to_owned()
        }
        other => other.to_string(),
    }
}
