//! Signing in with a passkey, and the one-time setup of the first admin.

mod login;
pub mod next;
mod setup;

pub use login::LoginPage;
pub use setup::SetupPage;

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::csrf::CsrfField;
use crate::model::Viewer;
use crate::ui;

/// The signed-in person, if any.
#[server(input = GetUrl)]
pub async fn current_viewer() -> Result<Option<Viewer>, ServerFnError> {
    crate::backend::viewer().await
}

/// A status line the WebAuthn script writes progress and errors into. The script marks an error
/// with `data-tone="error"`, which outranks the quiet colour (an attribute selector beats a class).
#[component]
pub fn CeremonyStatus() -> impl IntoView {
    view! {
        <p data-status role="status" aria-live="polite"
            class="min-h-5 text-sm text-muted data-[tone=error]:font-medium data-[tone=error]:text-bad data-[tone=busy]:text-fg-soft"></p>
    }
}

/// Whether signing in through an OpenID Provider is configured.
#[server(input = GetUrl)]
pub async fn oidc_enabled() -> Result<bool, ServerFnError> {
    Ok(crate::backend::backend()?.oidc_enabled())
}

/// What went wrong in a round trip to the identity provider, from the fixed reason code the server
/// puts in the URL (`?oidc=not_mfa`). Unknown codes show nothing, so a crafted link cannot put
/// words on the page.
pub fn oidc_problem(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "not_mfa" => "Your identity provider confirmed you with one factor only. This guardrail needs a second factor: confirm again and use your security key or one-time code at the provider.",
        "stale" => "Your identity provider reported a sign-in older than this guardrail allows. Confirm again and sign in at the provider.",
        "state" => "The answer from the identity provider does not belong to a sign-in started in this browser (state mismatch), so it was refused. Start again.",
        "nonce" => "The identity provider's ID token does not belong to this sign-in (nonce mismatch), so it was refused. Start again.",
        "issuer" => "The ID token was issued by a different identity provider than the one configured, so it was refused.",
        "token" => "The identity provider's ID token was not accepted. Start again; if it keeps happening, ask an administrator to check the OIDC configuration.",
        "provider" => "The identity provider did not sign you in (it refused or the sign-in was cancelled).",
        "flow" => "No sign-in through the identity provider was in progress in this browser, or it took too long. Start again.",
        "session" => "Your session could not be saved. Try again.",
        "unavailable" => "The identity provider could not be reached. Try again shortly.",
        "username" => "The identity provider did not send a usable username claim for your Kubernetes username. Ask an administrator to check the claim mapping.",
        "mismatch" => "The identity provider confirmed a different account than the one signed in here. Sign out and sign in as the person who made the request.",
        "challenge" => "This challenge cannot be confirmed any more (it was confirmed already, expired, or belongs to someone else).",
        "not_oidc" => "You signed in with a passkey; confirm with your passkey instead.",
        "signin" => "Sign in first.",
        "reason" => "The reason is missing or too short for this guardrail. Say why, then confirm again.",
        "off" => "Signing in through an identity provider is not configured here.",
        _ => return None,
    })
}

/// A refusal from a round trip to the identity provider (`?oidc=REASON`), under `title`.
#[component]
pub fn OidcProblem(#[prop(into)] title: String) -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    move || {
        query
            .read()
            .get("oidc")
            .and_then(|r| oidc_problem(&r))
            .map(|m| {
                view! {
                    <div class="mb-6" data-oidc-problem>
                        <crate::ui::Alert tone=crate::ui::Tone::Bad title=title.clone()>{m}</crate::ui::Alert>
                    </div>
                }
            })
    }
}

/// The sign-in options; `next` is where to go afterwards.
#[component]
pub fn LoginForm(#[prop(into)] next: String) -> impl IntoView {
    let next = next::after_sign_in(Some(&next), next::ANY_ORIGIN);
    let oidc = Resource::new(|| (), |_| oidc_enabled());
    let idp_next = next.clone();
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let idp_next = idp_next.clone();
                Suspend::new(async move {
                    matches!(oidc.await, Ok(true)).then(|| view! { <IdpSignIn next=idp_next /> })
                })
            }}
        </Suspense>
        <PasskeySignIn next />
    }
}

/// A plain form (works before hydration) that sends the browser to the identity provider.
#[component]
fn IdpSignIn(next: String) -> impl IntoView {
    view! {
        <form method="post" action="/auth/oidc/login" class="mb-5 space-y-3">
            <input type="hidden" name="next" value=next />
            <CsrfField />
            <button type="submit" class=format!("{} w-full", ui::SECONDARY) aria-describedby="idp-help">
                <svg aria-hidden="true" viewBox="0 0 24 24" class="h-5 w-5" fill="none" stroke="currentColor" stroke-width="2">
                    <path stroke-linecap="round" stroke-linejoin="round" d="M15 3h4a2 2 0 012 2v14a2 2 0 01-2 2h-4M10 17l5-5-5-5M15 12H3" />
                </svg>
                "Sign in with your identity provider"
            </button>
            <p id="idp-help" class="text-xs text-muted">"Your organisation's single sign-on. Steps up there too."</p>
            <div class="flex items-center gap-3 pt-2 text-xs font-medium uppercase tracking-wide text-muted" aria-hidden="true">
                <span class="h-px flex-1 bg-line"></span>"or"<span class="h-px flex-1 bg-line"></span>
            </div>
        </form>
    }
}

/// Passkey sign-in (the WebAuthn script runs it).
#[component]
fn PasskeySignIn(next: String) -> impl IntoView {
    let next_discoverable = next.clone();
    view! {
        <form data-webauthn="login" data-next=next class="space-y-4" novalidate>
            <div>
                <label for="login-username" class="block text-sm font-medium text-fg">"Username"</label>
                <input id="login-username" name="username" type="text" required autocomplete="username webauthn"
                    autocapitalize="none" spellcheck="false" class=ui::INPUT />
            </div>
            <button type="submit" class=format!("{} w-full", ui::PRIMARY)>"Sign in with username"</button>
            <CeremonyStatus />
            <noscript><p class="text-sm text-bad">"Passkeys need JavaScript in this browser."</p></noscript>
        </form>
        <div class="my-5 flex items-center gap-3 text-xs font-medium uppercase tracking-wide text-muted" aria-hidden="true">
            <span class="h-px flex-1 bg-line"></span>"or"<span class="h-px flex-1 bg-line"></span>
        </div>
        <form data-webauthn="passkey" data-next=next_discoverable class="space-y-3" novalidate>
            <button type="submit" class=format!("{} w-full", ui::SECONDARY) aria-describedby="passkey-help">
                <svg aria-hidden="true" viewBox="0 0 24 24" class="h-5 w-5" fill="none" stroke="currentColor" stroke-width="2">
                    <path stroke-linecap="round" stroke-linejoin="round" d="M15 7a2 2 0 012 2m4 0a6 6 0 01-7.743 5.743L11 17H9v2H7v2H4a1 1 0 01-1-1v-2.586a1 1 0 01.293-.707l5.964-5.964A6 6 0 1121 9z" />
                </svg>
                "Sign in with a passkey"
            </button>
            <p id="passkey-help" class="text-xs text-muted">"No username needed: pick one of the passkeys saved on this device or security key."</p>
            <CeremonyStatus />
        </form>
    }
}
