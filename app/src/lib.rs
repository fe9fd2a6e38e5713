//! Countersign portal: the Leptos application, rendered on the server (`ssr`); in the browser
//! (`hydrate`) only its islands come alive (`#[island]`: the theme switch, times, dialogs, the
//! grants and users tables), and `live.js` refreshes a page in place. Grouped by feature; each
//! feature keeps its page, components and server functions.
#![recursion_limit = "256"]

pub mod account;
pub mod admin;
pub mod approvals;
pub mod assets;
pub mod auth;
pub mod backend;
pub mod challenges;
pub mod csp;
pub mod csrf;
pub mod guardrails;
pub mod home;
pub mod layout;
pub mod model;
pub mod nav;
pub mod theme;
pub mod ui;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{ParamSegment, SsrMode, StaticSegment};

/// The HTML document around the app (server only renders it).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    csp::set_page_policy();
    let theme = theme::current_theme();
    view! {
        <!DOCTYPE html>
        <html lang="en" class=theme.html_class()>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <meta name="csrf-token" content=csrf::csrf_token() />
                <script src=assets::url("webauthn.js") defer></script>
                <script src=assets::url("live.js") defer></script>
                <HydrationScripts options islands=true root=assets::base() />
                <MetaTags />
            </head>
            <body class="flex min-h-screen flex-col bg-canvas text-fg antialiased">
                <App />
            </body>
        </html>
    }
}

/// The application: routes and layout.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Every route renders whole on the server (SsrMode::Async: its data included), so a page reads
    // without script and paints at once; hydration only adds behaviour.
    view! {
        <Stylesheet id="leptos" href=assets::url("pkg/countersign.css") />
        <Title text="Countersign" />
        <Router>
            <layout::Frame>
                <Routes fallback=|| view! { <layout::NotFound /> }>
                    <Route path=StaticSegment("") view=home::HomePage ssr=SsrMode::Async />
                    <Route path=StaticSegment("login") view=auth::LoginPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("account") view=account::AccountPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("setup"), ParamSegment("token")) view=auth::SetupPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("c"), ParamSegment("code")) view=challenges::ChallengePage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("grants")) view=admin::GrantsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("users")) view=admin::users::UsersPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("guardrails")) view=guardrails::GuardrailsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("guardrails"), StaticSegment("versions")) view=guardrails::versions::VersionsPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("approvals") view=approvals::QueuePage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("approvals"), ParamSegment("code")) view=approvals::ReviewPage ssr=SsrMode::Async />
                </Routes>
            </layout::Frame>
        </Router>
    }
}

/// Browser entry point: the islands script then hydrates each `<leptos-island>`.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
