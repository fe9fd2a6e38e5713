use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::next::{after_sign_in, ANY_ORIGIN};
use super::{oidc_problem, LoginForm};
use crate::layout::{Card, ErrorNote};

/// `/login`
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    // Only same-origin paths: an open redirect here would make a fine phishing link.
    let next = move || after_sign_in(query.read().get("next").as_deref(), ANY_ORIGIN);
    let problem = move || {
        query
            .read()
            .get("oidc")
            .and_then(|r| oidc_problem(&r))
            .map(|m| view! { <div class="mb-4"><ErrorNote message=m /></div> })
    };
    view! {
        <div class="mx-auto max-w-md">
            {problem}
            <Card title="Sign in">
                <p class="mb-4 text-sm text-slate-600">
                    "Sign in with the passkey or security key registered to your account, or through your identity provider when one is set up."
                </p>
                <LoginForm next=next() />
            </Card>
        </div>
    }
}
