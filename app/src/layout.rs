//! The frame around every page: header, who is signed in, main landmark.

use leptos::prelude::*;

use crate::auth::current_viewer;
use crate::csrf::CsrfField;

/// Header and main area.
#[component]
pub fn Frame(children: Children) -> impl IntoView {
    let viewer = Resource::new(|| (), |_| current_viewer());
    view! {
        <a href="#main" class="sr-only focus:not-sr-only focus:absolute focus:left-4 focus:top-4 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2 focus:shadow">
            "Skip to content"
        </a>
        <header class="border-b border-slate-200 bg-white">
            <div class="mx-auto flex max-w-4xl flex-wrap items-center justify-between gap-x-4 gap-y-2 px-4 py-3 sm:px-6">
                <a href="/" class="flex items-center gap-2 rounded font-semibold tracking-tight text-slate-900 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600">
                    <svg aria-hidden="true" viewBox="0 0 24 24" class="h-6 w-6 text-indigo-600" fill="none" stroke="currentColor" stroke-width="2">
                        <path stroke-linecap="round" stroke-linejoin="round" d="M12 3l7 3v6c0 4.5-3 7.5-7 9-4-1.5-7-4.5-7-9V6l7-3z" />
                        <path stroke-linecap="round" stroke-linejoin="round" d="M9 12l2 2 4-4" />
                    </svg>
                    "Countersign"
                </a>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        match viewer.await {
                            Ok(Some(v)) => view! {
                                <div class="flex flex-wrap items-center justify-end gap-x-1 gap-y-2 text-sm sm:gap-x-3">
                                    {matches!(v.role.as_str(), "admin" | "auditor").then(|| view! {
                                        <a href="/admin/grants" class="rounded-md px-2 py-1.5 font-medium text-indigo-700 hover:bg-indigo-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 sm:px-3">"Grants"</a>
                                    })}
                                    {(!v.oidc).then(|| view! {
                                        <a href="/account" class="rounded-md px-2 py-1.5 font-medium text-indigo-700 hover:bg-indigo-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 sm:px-3">"Passkeys"</a>
                                    })}
                                    <span class="hidden text-slate-600 sm:inline">
                                        "Signed in as " <strong class="font-medium text-slate-900">{v.display_name.clone()}</strong>
                                        <span class="ml-2 rounded-full bg-slate-100 px-2 py-0.5 text-xs font-medium text-slate-700">{v.role.clone()}</span>
                                    </span>
                                    <form method="post" action="/auth/logout">
                                        <CsrfField />
                                        <button type="submit" class="rounded-md border border-slate-300 px-2 py-1.5 font-medium text-slate-700 hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 sm:px-3">
                                            "Sign out"
                                        </button>
                                    </form>
                                    <form method="post" action="/auth/logout-everywhere">
                                        <CsrfField />
                                        // On a phone the short label keeps the header to two lines; the name stays whole.
                                        <button type="submit" aria-label="End all sessions" title="End every session of yours, in every browser" class="rounded-md px-2 py-1.5 font-medium text-slate-700 underline-offset-2 hover:underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 sm:px-3">
                                            "End all"<span class="hidden sm:inline">" sessions"</span>
                                        </button>
                                    </form>
                                </div>
                            }.into_any(),
                            _ => view! {
                                <a href="/login" class="rounded-md px-3 py-1.5 text-sm font-medium text-indigo-700 hover:bg-indigo-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600">"Sign in"</a>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            </div>
        </header>
        <main id="main" class="mx-auto max-w-4xl px-4 py-8 sm:px-6">{children()}</main>
    }
}

/// A card with a heading.
#[component]
pub fn Card(#[prop(into)] title: String, children: Children) -> impl IntoView {
    view! {
        <section class="rounded-xl border border-slate-200 bg-white p-5 shadow-sm sm:p-6">
            <h2 class="text-base font-semibold text-slate-900">{title}</h2>
            <div class="mt-3">{children()}</div>
        </section>
    }
}

/// A status badge.
#[component]
pub fn StatusBadge(#[prop(into)] status: String) -> impl IntoView {
    let (class, label) = match status.as_str() {
        "pending" => (
            "bg-amber-100 text-amber-900 ring-amber-300",
            "Waiting for step-up",
        ),
        "granted" => (
            "bg-emerald-100 text-emerald-900 ring-emerald-300",
            "Granted",
        ),
        _ => ("bg-slate-100 text-slate-700 ring-slate-300", "Expired"),
    };
    view! {
        <span class=format!("inline-flex items-center rounded-full px-2.5 py-0.5 text-xs font-semibold ring-1 ring-inset {class}")>
            {label}
        </span>
    }
}

/// An error box.
#[component]
pub fn ErrorNote(#[prop(into)] message: String) -> impl IntoView {
    view! {
        <div role="alert" class="rounded-lg border border-red-200 bg-red-50 p-4 text-sm text-red-800">{message}</div>
    }
}

/// Placeholder while data loads.
#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="text-sm text-slate-600" role="status">"Loading…"</p> }
}

/// 404.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Card title="Page not found">
            <p class="text-sm text-slate-600">"There is nothing here. " <a class="font-medium text-indigo-700 underline" href="/">"Go to the start page"</a>"."</p>
        </Card>
    }
}
