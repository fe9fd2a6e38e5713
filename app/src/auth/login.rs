use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::next::{after_sign_in, ANY_ORIGIN};
use super::{oidc_problem, LoginForm};
use crate::ui::{Alert, Card, PageHeader, Tone};

/// What just happened before landing here, from a fixed code (`?done=ended`), so a crafted link
/// cannot put words on the page.
pub fn done_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "signed-out" => "You are signed out.",
        "ended" => "Every session of yours has ended, in every browser. Sign in again to continue.",
        _ => return None,
    })
}

/// `/login`
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    // Only same-origin paths: an open redirect here would make a fine phishing link.
    let next = move || after_sign_in(query.read().get("next").as_deref(), ANY_ORIGIN);
    let problem = move || {
        query.read().get("oidc").and_then(|r| oidc_problem(&r)).map(|m| {
            view! { <div class="mb-4"><Alert tone=Tone::Bad title="Not signed in">{m}</Alert></div> }
        })
    };
    let done = move || {
        query
            .read()
            .get("done")
            .and_then(|d| done_message(&d))
            .map(|m| {
                view! { <div class="mb-4" data-done><Alert tone=Tone::Ok>{m}</Alert></div> }
            })
    };
    view! {
        <div class="mx-auto max-w-md">
            <PageHeader title="Sign in"
                lead="With the passkey or security key registered to your account, or through your identity provider when one is set up." />
            {done}
            {problem}
            <Card><LoginForm next=next() /></Card>
            <p class="mt-4 text-sm text-muted">
                "No account? Ask your Countersign administrator for a setup link."
            </p>
        </div>
    }
}
