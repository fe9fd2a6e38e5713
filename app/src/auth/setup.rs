use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos_router::hooks::use_params_map;

use super::{CeremonyStatus, INPUT_CLASS, PRIMARY_BUTTON};
use crate::layout::{Card, ErrorNote, Loading};
use crate::model::SetupInvitation;

/// What a setup link creates, if it still works.
#[server(input = GetUrl)]
pub async fn setup_link(token: String) -> Result<Option<SetupInvitation>, ServerFnError> {
    crate::backend::backend()?
        .setup_invitation(&token)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// `/setup/{token}`: create an account (the first admin, or an invited person) by registering a passkey.
#[component]
pub fn SetupPage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let invitation = Resource::new(token, setup_link);
    view! {
        <div class="mx-auto max-w-md">
            <Suspense fallback=|| view! { <Loading /> }>
                {move || Suspend::new(async move {
                    match invitation.await {
                        Ok(Some(invitation)) => {
                            let fixed = invitation.username.clone();
                            let title = if fixed.is_none() && invitation.role == "admin" {
                                "Create the first administrator"
                            } else {
                                "Create your account"
                            };
                            view! {
                            <Card title=title>
                                <p class="mb-4 text-sm text-slate-600">
                                    "This one-time link creates a Countersign account with the role "
                                    <strong class="font-semibold text-slate-900">{invitation.role.clone()}</strong>
                                    ". Register a passkey or security key; there are no passwords."
                                </p>
                                <form data-webauthn="setup" data-token=token() class="space-y-4" novalidate>
                                    <div>
                                        <label for="setup-username" class="block text-sm font-medium text-slate-800">"Kubernetes username"</label>
                                        <input id="setup-username" name="username" type="text" required autocomplete="username"
                                            autocapitalize="none" spellcheck="false" aria-describedby="setup-username-help" class=INPUT_CLASS
                                            value=fixed.clone().unwrap_or_default() readonly=fixed.is_some() />
                                        <p id="setup-username-help" class="mt-1 text-xs text-slate-600">
                                            {if fixed.is_some() {
                                                "Chosen by the administrator who invited you."
                                            } else {
                                                "Must equal the user kubectl authenticates as, e.g. alice@example.com."
                                            }}
                                        </p>
                                    </div>
                                    <div>
                                        <label for="setup-display" class="block text-sm font-medium text-slate-800">"Display name"</label>
                                        <input id="setup-display" name="display_name" type="text" autocomplete="name" class=INPUT_CLASS />
                                    </div>
                                    <button type="submit" class=PRIMARY_BUTTON>"Register passkey"</button>
                                    <CeremonyStatus />
                                </form>
                            </Card>
                            }.into_any()
                        }
                        Ok(None) => view! {
                            <ErrorNote message="This setup link has already been used or has expired. Ask an administrator for a new invitation, or sign in." />
                        }.into_any(),
                        Err(e) => view! { <ErrorNote message=e.to_string() /> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}
