use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::LoginForm;
use crate::layout::Card;

/// `/login`
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    // Only same-site paths: an open redirect here would make a fine phishing link.
    let next = move || {
        query
            .read()
            .get("next")
            .filter(|n| n.starts_with('/') && !n.starts_with("//"))
            .unwrap_or_else(|| "/".to_owned())
    };
    view! {
        <div class="mx-auto max-w-md">
            <Card title="Sign in">
                <p class="mb-4 text-sm text-slate-600">
                    "Use the passkey or security key registered to your account. Your key will ask for its PIN or your fingerprint."
                </p>
                <LoginForm next=next() />
            </Card>
        </div>
    }
}
