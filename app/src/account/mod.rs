//! `/account`: the signed-in person's passkeys and security keys — list, add, rename, remove.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos_router::hooks::use_query_map;

use crate::auth::{CeremonyStatus, LoginForm, INPUT_CLASS, PRIMARY_BUTTON};
use crate::layout::{Card, ErrorNote, Loading};
use crate::model::{AccountAccess, KeyApproval, PasskeyView};

/// The viewer's passkeys.
#[server(endpoint = "my_passkeys", input = GetUrl)]
pub async fn my_passkeys() -> Result<AccountAccess, ServerFnError> {
    let session = crate::backend::session().await?;
    crate::backend::backend()?
        .passkeys(&session)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// What just happened, from the fixed code the WebAuthn script puts in the URL (`?done=added`), so a
/// crafted link cannot put words on the page.
pub fn done_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "added" => "Passkey added. You can use it to sign in and to confirm step-ups.",
        "renamed" => "Passkey renamed.",
        "removed" => "Passkey removed. It can no longer sign in or confirm anything.",
        _ => return None,
    })
}

/// `/account`
#[component]
pub fn AccountPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| my_passkeys());
    let query = use_query_map();
    let done = move || {
        query
            .read()
            .get("done")
            .and_then(|d| done_message(&d))
            .map(|m| view! {
                <div role="status" class="mb-6 rounded-lg border border-emerald-200 bg-emerald-50 p-4 text-sm font-medium text-emerald-900">{m}</div>
            })
    };
    view! {
        <h1 class="text-2xl font-semibold tracking-tight text-slate-900">"Your passkeys"</h1>
        <p class="mt-1 max-w-2xl text-sm text-slate-600">
            "Passkeys and security keys that sign you in and confirm step-ups. Keep at least two, so a lost key does not lock you out."
        </p>
        <div class="mt-6">
            {done}
            <Suspense fallback=|| view! { <Loading /> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(AccountAccess::Local { keys, approved_models }) => view! { <Passkeys keys approved_models /> }.into_any(),
                        Ok(AccountAccess::IdentityProvider) => view! {
                            <Card title="Managed by your identity provider">
                                <p class="text-sm text-slate-600">"You signed in through your organisation's identity provider; your keys and second factors are managed there."</p>
                            </Card>
                        }.into_any(),
                        Ok(AccountAccess::SignInRequired) => view! {
                            <div class="max-w-md">
                                <Card title="Sign in to manage your passkeys">
                                    <LoginForm next="/account" />
                                </Card>
                            </div>
                        }.into_any(),
                        Err(e) => view! { <ErrorNote message=e.to_string() /> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

#[component]
fn Passkeys(keys: Vec<PasskeyView>, approved_models: Option<Vec<String>>) -> impl IntoView {
    let usable = keys.iter().filter(|k| k.blocked_at.is_none()).count();
    let empty = keys.is_empty();
    view! {
        <div class="grid gap-6 lg:grid-cols-3 lg:items-start">
            <div class="lg:col-span-2">
                <Card title=format!("Registered ({})", keys.len())>
                    {if empty {
                        view! {
                            <div class="rounded-lg border border-dashed border-slate-300 p-6 text-center">
                                <p class="font-medium text-slate-800">"No passkeys yet."</p>
                                <p class="mt-1 text-sm text-slate-600">"Add one to sign in and to confirm step-ups."</p>
                            </div>
                        }.into_any()
                    } else {
                        view! {
                            <ul class="divide-y divide-slate-200" aria-label="Your passkeys">
                                {keys.into_iter().map(|k| {
                                    let only = usable <= 1 && k.blocked_at.is_none();
                                    view! { <PasskeyRow key=k only /> }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                </Card>
            </div>
            <AddPasskey approved_models />
        </div>
    }
}

/// Badge for a passkey's state.
#[component]
fn PasskeyStatus(blocked: bool, approved: bool) -> impl IntoView {
    let (class, label) = if blocked {
        (
            "bg-red-100 text-red-900 ring-red-300",
            "Blocked — possible cloned key",
        )
    } else if !approved {
        ("bg-amber-100 text-amber-900 ring-amber-300", "Sign-in only")
    } else {
        ("bg-emerald-100 text-emerald-900 ring-emerald-300", "Active")
    };
    view! {
        <span data-passkey-status class=format!("inline-flex shrink-0 items-center rounded-full px-2.5 py-0.5 text-xs font-semibold ring-1 ring-inset {class}")>{label}</span>
    }
}

#[component]
fn PasskeyRow(key: PasskeyView, only: bool) -> impl IntoView {
    let rename_id = format!("rename-{}", key.id);
    let remove_help = format!("remove-help-{}", key.id);
    let blocked = key.blocked_at.clone();
    let approved = key.approval != KeyApproval::NotApproved;
    let unapproved_note = (!approved && blocked.is_none()).then(|| view! {
        <p class="mt-2 rounded-md bg-amber-50 p-3 text-sm text-amber-900">
            "This key has not proven it is an approved security key: it was added before your organisation required one, or its model is not on the list. It signs you in but cannot confirm step-ups. Add an approved key, then remove this one."
        </p>
    });
    view! {
        <li class="py-4 first:pt-0 last:pb-0" data-passkey-row=key.id.clone()>
            <div class="flex flex-col items-start gap-2 sm:flex-row sm:justify-between sm:gap-3">
                <div class="min-w-0">
                    <p class="break-words font-semibold text-slate-900" data-passkey-name>{key.name.clone()}</p>
                    <p class="mt-0.5 text-xs text-slate-600">
                        "Added " {key.created_at.clone()} " · "
                        {match key.last_used_at.clone() {
                            Some(t) => format!("last used {t}"),
                            None => "never used".to_owned(),
                        }}
                    </p>
                    <p class="mt-0.5 text-xs text-slate-600">
                        {match (key.approval.clone(), key.aaguid.clone()) {
                            (KeyApproval::Approved(model), _) => view! {
                                <span data-passkey-model>{model}</span> " · approved model, attested by its vendor"
                            }.into_any(),
                            (_, Some(a)) => view! { "Authenticator model " <code class="whitespace-nowrap rounded bg-slate-100 px-1">{a}</code> }.into_any(),
                            (_, None) => view! { "Model not disclosed by the authenticator" }.into_any(),
                        }}
                    </p>
                </div>
                <PasskeyStatus blocked=blocked.is_some() approved />
            </div>
            {unapproved_note}
            {blocked.map(|at| view! {
                <p class="mt-2 rounded-md bg-red-50 p-3 text-sm text-red-900">
                    "On " {at} " this key answered with a signature counter lower than before, which happens when a key has been copied. It can no longer sign in or confirm anything. Remove it, and tell your security team."
                </p>
            })}
            <div class="mt-3 flex flex-col gap-3 sm:flex-row sm:items-start">
                <form data-webauthn="rename" data-credential-id=key.id.clone() class="min-w-0 flex-1" novalidate>
                    <label for=rename_id.clone() class="block text-xs font-medium text-slate-700">"Name"</label>
                    <div class="mt-1 flex gap-2">
                        <input id=rename_id name="name" type="text" required maxlength="60" value=key.name.clone()
                            class="block w-full min-w-0 flex-1 rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm text-slate-900 shadow-sm focus:border-indigo-600 focus:outline-none focus:ring-2 focus:ring-indigo-600" />
                        <button type="submit" class=SMALL_BUTTON>"Rename"</button>
                    </div>
                    <CeremonyStatus />
                </form>
                <form data-webauthn="remove" data-credential-id=key.id.clone() class="shrink-0 sm:w-52 sm:pt-5" novalidate>
                    <button type="submit" class=REMOVE_BUTTON disabled=only aria-describedby=remove_help.clone()>"Remove…"</button>
                    <p id=remove_help class="mt-1 text-xs text-slate-600">
                        {if only {
                            "Your only usable passkey cannot be removed; add another first."
                        } else {
                            "You will confirm with a passkey."
                        }}
                    </p>
                    <CeremonyStatus />
                </form>
            </div>
        </li>
    }
}

/// Register another passkey for the signed-in account.
#[component]
fn AddPasskey(approved_models: Option<Vec<String>>) -> impl IntoView {
    let allowlist = approved_models.map(|models| view! {
        <div class="rounded-md bg-indigo-50 p-3 text-sm text-indigo-950" data-approved-models>
            <p class="font-medium">"Only approved security keys can be added:"</p>
            <ul class="mt-1 list-disc pl-5">
                {models.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}
            </ul>
            <p class="mt-1 text-xs text-indigo-900">"Your browser will ask to share the key's make and model; allow it, so the key can prove what it is."</p>
        </div>
    });
    view! {
        <Card title="Add a passkey">
            <form data-webauthn="add" class="space-y-4" novalidate>
                {allowlist}
                <div>
                    <label for="add-passkey-name" class="block text-sm font-medium text-slate-800">"Name"</label>
                    <input id="add-passkey-name" name="name" type="text" required maxlength="60" autocomplete="off"
                        aria-describedby="add-passkey-help" class=INPUT_CLASS />
                    <p id="add-passkey-help" class="mt-1 text-xs text-slate-600">"So you can tell your keys apart, e.g. “YubiKey on keyring” or “work laptop”."</p>
                </div>
                <button type="submit" class=format!("{PRIMARY_BUTTON} w-full")>"Add passkey"</button>
                <CeremonyStatus />
                <noscript><p class="text-sm text-red-800">"Passkeys need JavaScript in this browser."</p></noscript>
            </form>
        </Card>
    }
}

/// Compact secondary button.
const SMALL_BUTTON: &str = "inline-flex items-center justify-center rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-semibold text-slate-800 shadow-sm hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 focus-visible:ring-offset-2 disabled:cursor-wait disabled:opacity-70";

/// Compact destructive button.
const REMOVE_BUTTON: &str = "inline-flex items-center justify-center rounded-md border border-red-300 bg-white px-3 py-1.5 text-sm font-semibold text-red-800 shadow-sm hover:bg-red-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-red-600 focus-visible:ring-offset-2 disabled:cursor-not-allowed disabled:border-slate-200 disabled:text-slate-500 disabled:hover:bg-white";
