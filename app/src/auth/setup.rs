use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos_router::hooks::use_params_map;

use super::{CeremonyStatus, INPUT_CLASS, PRIMARY_BUTTON};
use crate::layout::{Card, ErrorNote, Loading};

/// Whether a setup link still works.
#[server(input = GetUrl)]
pub async fn setup_link_valid(token: String) -> Result<bool, ServerFnError> {
    crate::backend::backend()?
        .setup_link_valid(&token)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// `/setup/{token}`: create the first admin by registering a passkey.
#[component]
pub fn SetupPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let valid = Resource::new(token, setup_link_valid);
    view! {
        <div class="mx-auto max-w-md">
            <Suspense fallback=|| view! { <Loading /> }>
                {move || Suspend::new(async move {
                    match valid.await {
                        Ok(true) => view! {
                            <Card title="Create the first administrator">
                                <p class="mb-4 text-sm text-slate-600">
                                    "This one-time link sets up Countersign. Choose the username you use in Kubernetes, then register a passkey or security key. There are no passwords."
                                </p>
                                <form data-webauthn="setup" data-token=token() class="space-y-4" novalidate>
                                    <div>
                                        <label for="setup-username" class="block text-sm font-medium text-slate-800">"Kubernetes username"</label>
                                        <input id="setup-username" name="username" type="text" required autocomplete="username"
                                            autocapitalize="none" spellcheck="false" aria-describedby="setup-username-help" class=INPUT_CLASS />
                                        <p id="setup-username-help" class="mt-1 text-xs text-slate-600">"Must equal the user kubectl authenticates as, e.g. alice@example.com."</p>
                                    </div>
                                    <div>
                                        <label for="setup-display" class="block text-sm font-medium text-slate-800">"Display name"</label>
                                        <input id="setup-display" name="display_name" type="text" autocomplete="name" class=INPUT_CLASS />
                                    </div>
                                    <button type="submit" class=PRIMARY_BUTTON>"Register passkey"</button>
                                    <CeremonyStatus />
                                </form>
                            </Card>
                        }.into_any(),
                        Ok(false) => view! {
                            <ErrorNote message="This setup link has already been used or has expired. Restart Countersign with an empty data directory for a new one, or sign in." />
                        }.into_any(),
                        Err(e) => view! { <ErrorNote message=e.to_string() /> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}
