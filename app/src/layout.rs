//! The frame around every page: skip link, header with the navigation and the account menu, the
//! main landmark and the footer.

use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::auth::current_viewer;
use crate::csrf::CsrfField;
use crate::model::Viewer;
use crate::nav::{entries_for, is_current};
use crate::theme::ThemeSwitch;
use crate::ui::{self, ConfirmDialog, ErrorState};

/// Header, main area and footer. `live.js` swaps the `data-live-region`s for fresh copies when
/// something changes (an event from `/events`, a ceremony finished on the page).
#[component]
pub fn Frame(children: Children) -> impl IntoView {
    let viewer = Resource::new(|| (), |_| current_viewer());
    // What waits for the viewer's approval (the badge beside "Approvals").
    let waiting = Resource::new(|| (), |_| crate::approvals::approvals_waiting());
    view! {
        // A plain fragment link: `main` has tabindex -1, so the browser moves focus there.
        <a href="#main" data-skip-link
            class="sr-only focus:not-sr-only focus:absolute focus:left-4 focus:top-3 focus:z-50 focus:rounded-md focus:bg-surface focus:px-3 focus:py-2 focus:text-fg focus:shadow-lg focus:ring-2 focus:ring-ring">
            "Skip to content"
        </a>
        <header class="border-b border-line bg-surface">
            <div data-live-region="header" class="mx-auto flex max-w-5xl flex-wrap items-center gap-x-6 gap-y-1 px-4 py-2.5 sm:px-6">
                <a href="/" class=format!("flex items-center gap-2 rounded py-1 font-semibold tracking-tight text-fg {}", ui::FOCUS)>
                    <svg aria-hidden="true" viewBox="0 0 24 24" class="h-6 w-6 text-link" fill="none" stroke="currentColor" stroke-width="2">
                        <path stroke-linecap="round" stroke-linejoin="round" d="M12 3l7 3v6c0 4.5-3 7.5-7 9-4-1.5-7-4.5-7-9V6l7-3z" />
                        <path stroke-linecap="round" stroke-linejoin="round" d="M9 12l2 2 4-4" />
                    </svg>
                    "Countersign"
                </a>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let waiting = waiting.await.unwrap_or(0);
                        match viewer.await {
                            Ok(Some(v)) => view! { <Navigation viewer=v.clone() waiting /> <AccountMenu viewer=v /> }.into_any(),
                            _ => view! {
                                <a href="/login" class=format!("ml-auto {}", ui::GHOST)>"Sign in"</a>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            </div>
        </header>
        <main id="main" data-live-region="main" tabindex="-1" class="mx-auto w-full max-w-5xl px-4 py-8 focus:outline-none sm:px-6">
            {children()}
        </main>
        <footer class="mx-auto flex w-full max-w-5xl flex-wrap items-center justify-between gap-3 border-t border-line px-4 py-5 text-xs text-muted sm:px-6">
            <p>"Countersign · step-up for Kubernetes guardrails"</p>
            <ThemeSwitch />
        </footer>
        <PageReady />
    }
}

/// Marks the page live (`data-hydrated` on `<html>`) for tests and styles. The last island in
/// the document: the islands script hydrates in document order, so the others are live by then.
#[island]
fn PageReady() -> impl IntoView {
    Effect::new(move |_| {
        if let Some(html) = document().document_element() {
            let _ = html.set_attribute("data-hydrated", "yes");
        }
    });
}

/// The pages this viewer may use; a row of its own on a phone. `data-live-events`: a signed-in
/// page, so `live.js` listens to `/events`.
#[component]
fn Navigation(viewer: Viewer, waiting: usize) -> impl IntoView {
    let location = use_location();
    view! {
        <nav aria-label="Main" data-live-events class="order-last -mx-2 flex w-full gap-1 overflow-x-auto sm:order-none sm:mx-0 sm:w-auto">
            {entries_for(&viewer).into_iter().map(|entry| {
                let current = move || is_current(&entry, &location.pathname.get());
                view! {
                    <a href=entry.href
                        aria-current=move || current().then_some("page")
                        class=format!("whitespace-nowrap rounded-md px-3 py-1.5 text-sm font-medium text-fg-soft hover:bg-sunken hover:text-fg aria-[current=page]:bg-accent-soft aria-[current=page]:text-link {}", ui::FOCUS)>
                        {entry.label}
                        {(entry.href == "/approvals" && waiting > 0).then(|| view! {
                            <span data-approvals-badge=waiting.to_string()
                                class="ml-1.5 inline-flex min-w-5 items-center justify-center rounded-full border border-warn-line bg-warn-soft px-1.5 text-xs font-semibold text-warn">
                                {waiting}<span class="sr-only">" waiting for you"</span>
                            </span>
                        })}
                    </a>
                }
            }).collect_view()}
        </nav>
    }
}

/// Who is signed in, and signing out (here or everywhere).
#[component]
fn AccountMenu(viewer: Viewer) -> impl IntoView {
    let initial = viewer
        .display_name
        .chars()
        .next()
        .unwrap_or('?')
        .to_uppercase()
        .to_string();
    view! {
        <details class="relative ml-auto" data-account-menu>
            // The visible name first: the accessible name starts with what sighted people read.
            <summary aria-label=format!("{}, account menu", viewer.display_name)
                class=format!("flex cursor-pointer list-none items-center gap-2 rounded-full py-1 pl-1 pr-2 text-sm font-medium text-fg-soft hover:bg-sunken [&::-webkit-details-marker]:hidden {}", ui::FOCUS)>
                <span aria-hidden="true" class="flex h-7 w-7 items-center justify-center rounded-full bg-accent text-xs font-semibold text-accent-fg">{initial}</span>
                <span class="hidden max-w-48 truncate sm:inline">{viewer.display_name.clone()}</span>
                <svg aria-hidden="true" viewBox="0 0 20 20" class="h-4 w-4" fill="currentColor"><path d="M5.3 7.3a1 1 0 011.4 0L10 10.6l3.3-3.3a1 1 0 111.4 1.4l-4 4a1 1 0 01-1.4 0l-4-4a1 1 0 010-1.4z" /></svg>
            </summary>
            <div class="absolute right-0 z-40 mt-2 w-72 max-w-[calc(100vw-2rem)] rounded-xl border border-line bg-surface p-4 shadow-xl">
                <p class="text-sm text-muted break-words">"Signed in as " <strong class="font-semibold text-fg">{viewer.display_name.clone()}</strong></p>
                <p class="mt-0.5 text-xs text-muted break-all">
                    <code>{viewer.username.clone()}</code>
                </p>
                <p class="mt-2"><ui::Badge tone=ui::Tone::Info label=viewer.role.clone() /></p>
                <div class="mt-4 space-y-2 border-t border-line pt-3">
                    <form method="post" action="/auth/logout">
                        <CsrfField />
                        <button type="submit" class=format!("{} w-full", ui::SECONDARY_SMALL)>"Sign out"</button>
                    </form>
                    <ConfirmDialog id="end-all" trigger="End all sessions…" trigger_class=ui::GHOST title="End every session of yours?">
                        <p>"You will be signed out here and in every other browser where you are signed in. Grants already issued stay valid."</p>
                        <form method="post" action="/auth/logout-everywhere">
                            <CsrfField />
                            <button type="submit" class=format!("{} w-full", ui::DANGER)>"End all sessions"</button>
                        </form>
                    </ConfirmDialog>
                </div>
            </div>
        </details>
    }
}

/// Answers the page with 404 (renders nothing).
#[component]
pub fn NotFoundStatus() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
}

/// 404.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <NotFoundStatus />
        <ErrorState title="Page not found" actions=view! { <a href="/" class=ui::PRIMARY>"Go to your requests"</a> }.into_any()>
            <p>"There is nothing at this address. If someone sent you this link, check it was copied whole."</p>
        </ErrorState>
    }
}
