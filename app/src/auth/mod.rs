//! Signing in with a passkey, and the one-time setup of the first admin.

mod login;
mod setup;

pub use login::LoginPage;
pub use setup::SetupPage;

use leptos::prelude::*;

use crate::model::Viewer;

/// The signed-in person, if any.
#[server]
pub async fn current_viewer() -> Result<Option<Viewer>, ServerFnError> {
    crate::backend::viewer().await
}

/// A status line the WebAuthn script writes progress and errors into.
#[component]
pub fn CeremonyStatus() -> impl IntoView {
    view! { <p data-status role="status" aria-live="polite" class="min-h-5 text-sm text-slate-600"></p> }
}

/// Shared input styling.
pub const INPUT_CLASS: &str = "mt-1 block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-slate-900 shadow-sm placeholder:text-slate-400 focus:border-indigo-600 focus:outline-none focus:ring-2 focus:ring-indigo-600";

/// Shared primary button styling.
pub const PRIMARY_BUTTON: &str = "inline-flex items-center justify-center gap-2 rounded-md bg-indigo-700 px-4 py-2.5 text-sm font-semibold text-white shadow-sm hover:bg-indigo-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 focus-visible:ring-offset-2 disabled:cursor-wait disabled:opacity-70";

/// The sign-in form; `next` is where to go afterwards.
#[component]
pub fn LoginForm(#[prop(into)] next: String) -> impl IntoView {
    view! {
        <form data-webauthn="login" data-next=next class="space-y-4" novalidate>
            <div>
                <label for="login-username" class="block text-sm font-medium text-slate-800">"Username"</label>
                <input id="login-username" name="username" type="text" required autocomplete="username webauthn"
                    autocapitalize="none" spellcheck="false" class=INPUT_CLASS />
            </div>
            <button type="submit" class=PRIMARY_BUTTON>"Sign in with passkey"</button>
            <CeremonyStatus />
            <noscript><p class="text-sm text-red-800">"Passkeys need JavaScript in this browser."</p></noscript>
        </form>
    }
}
