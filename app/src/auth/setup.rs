use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos_router::hooks::use_params_map;

use super::CeremonyStatus;
use crate::model::SetupInvitation;
use crate::ui::{self, error_text, Card, ErrorState, Field, Loading, PageHeader};

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
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match invitation.await {
                    Ok(Some(invitation)) => view! { <SetupForm invitation token=token() /> }.into_any(),
                    Ok(None) => view! {
                        <ErrorState title="This setup link no longer works"
                            actions=view! { <a href="/login" class=ui::PRIMARY>"Sign in"</a> }.into_any()>
                            <p>"It has already been used or has expired. If you created your account with it, sign in with your passkey. Otherwise ask an administrator for a new invitation."</p>
                        </ErrorState>
                    }.into_any(),
                    Err(e) => view! {
                        <ErrorState title="This setup link could not be checked"
                            actions=view! { <a href=format!("/setup/{}", token()) rel="external" class=ui::PRIMARY>"Try again"</a> }.into_any()>
                            <p>{error_text(&e)}</p>
                        </ErrorState>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SetupForm(invitation: SetupInvitation, token: String) -> impl IntoView {
    let fixed = invitation.username.clone();
    let title = if invitation.role == "admin" {
        "Create your administrator account"
    } else {
        "Create your account"
    };
    view! {
        <div class="mx-auto max-w-md">
            <PageHeader title=title lead=format!(
                "This one-time link creates a Countersign account with the role {}. Register a passkey or security key; there are no passwords.",
                invitation.role
            ) />
            <Card>
                <form data-webauthn="setup" data-token=token class="space-y-4" novalidate>
                    <Field id="setup-username" label="Kubernetes username" help=if fixed.is_some() {
                        "Chosen by the administrator who invited you."
                    } else {
                        "Must equal the user kubectl authenticates as, e.g. alice@example.com."
                    }>
                        <input id="setup-username" name="username" type="text" required autocomplete="username"
                            autocapitalize="none" spellcheck="false" aria-describedby="setup-username-help" class=ui::INPUT
                            value=fixed.clone().unwrap_or_default() readonly=fixed.is_some() />
                    </Field>
                    <Field id="setup-display" label="Display name" help="How the portal greets you and names you to others.">
                        <input id="setup-display" name="display_name" type="text" autocomplete="name" aria-describedby="setup-display-help" class=ui::INPUT />
                    </Field>
                    <Field id="setup-passkey-name" label="Name for this passkey" help="So you can tell your keys apart later, e.g. “YubiKey on keyring”.">
                        <input id="setup-passkey-name" name="passkey_name" type="text" maxlength="60" autocomplete="off"
                            placeholder="First passkey" aria-describedby="setup-passkey-name-help" class=ui::INPUT />
                    </Field>
                    <button type="submit" class=format!("{} w-full", ui::PRIMARY)>"Register passkey"</button>
                    <CeremonyStatus />
                    <noscript><p class="text-sm text-bad">"Registering a passkey needs JavaScript in this browser."</p></noscript>
                </form>
            </Card>
        </div>
    }
}
