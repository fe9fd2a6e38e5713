//! `/account`: the signed-in person's passkeys and security keys — list, add, rename, remove.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos_router::hooks::use_query_map;

use crate::auth::{CeremonyStatus, LoginForm};
use crate::model::{AccountAccess, KeyApproval, PasskeyView};
use crate::ui::{
    self, error_text, Alert, Badge, Card, EmptyState, ErrorState, Field, Loading, PageHeader,
    RelativeTime, Tone,
};

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
    let done =
        move || {
            query.read().get("done").and_then(|d| done_message(&d)).map(
                |m| view! { <div class="mb-6" data-done><Alert tone=Tone::Ok>{m}</Alert></div> },
            )
        };
    view! {
        <PageHeader title="Your passkeys"
            lead="Passkeys and security keys that sign you in and confirm step-ups. Keep at least two, so a lost key does not lock you out." />
        <div>
            {done}
            <YourAccess />
            <Suspense fallback=|| view! { <Loading /> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(AccountAccess::Local { keys, approved_models }) => view! { <Passkeys keys approved_models /> }.into_any(),
                        Ok(AccountAccess::IdentityProvider) => view! {
                            <Card title="Managed by your identity provider">
                                <p class="text-sm text-muted">"You signed in through your organisation's identity provider; your keys and second factors are managed there."</p>
                            </Card>
                        }.into_any(),
                        Ok(AccountAccess::SignInRequired) => view! {
                            <div class="max-w-md">
                                <Card title="Sign in to manage your passkeys">
                                    <LoginForm next="/account" />
                                </Card>
                            </div>
                        }.into_any(),
                        Err(e) => view! {
                            <ErrorState title="Your passkeys could not be loaded"
                                actions=view! { <a href="/account" rel="external" class=ui::PRIMARY>"Try again"</a> }.into_any()>
                                <p>{error_text(&e)}</p>
                            </ErrorState>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

/// The signed-in person's role and groups: what they may do and which approvals they count for.
#[component]
fn YourAccess() -> impl IntoView {
    let viewer = Resource::new(|| (), |_| crate::auth::current_viewer());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                viewer.await.ok().flatten().map(|v| {
                    let source = if v.oidc { "as your identity provider says" } else { "as an admin set them" };
                    let groups = if v.groups.is_empty() {
                        "none: you approve nobody's requests".to_owned()
                    } else {
                        v.groups.join(", ")
                    };
                    view! {
                        <div class="mb-6 rounded-xl border border-line bg-surface p-4 text-sm shadow-sm sm:p-5" data-your-access>
                            <p class="text-fg">"You are signed in as " <strong>{v.username.clone()}</strong> " with the role " <strong>{v.role.clone()}</strong> "."</p>
                            <p class="mt-1 text-fg-soft">"Your groups (" {source} "): " <span data-your-groups class="font-medium text-fg">{groups}</span></p>
                        </div>
                    }
                })
            })}
        </Suspense>
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
                            <EmptyState title="No passkeys yet">
                                <p>"Add one to sign in and to confirm step-ups."</p>
                            </EmptyState>
                        }.into_any()
                    } else {
                        view! {
                            <ul class="divide-y divide-line" aria-label="Your passkeys">
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
    let (tone, label) = if blocked {
        (Tone::Bad, "Blocked — possible cloned key")
    } else if !approved {
        (Tone::Warn, "Sign-in only")
    } else {
        (Tone::Ok, "Active")
    };
    view! { <span data-passkey-status><Badge tone label /></span> }
}

#[component]
fn PasskeyRow(key: PasskeyView, only: bool) -> impl IntoView {
    let rename_id = format!("rename-{}", key.id);
    let remove_help = format!("remove-help-{}", key.id);
    let blocked = key.blocked_at;
    let approved = key.approval != KeyApproval::NotApproved;
    let unapproved_note = (!approved && blocked.is_none()).then(|| view! {
        <p class="mt-2 rounded-md bg-warn-soft p-3 text-sm text-warn">
            "This key has not proven it is an approved security key: it was added before your organisation required one, or its model is not on the list. It signs you in but cannot confirm step-ups. Add an approved key, then remove this one."
        </p>
    });
    view! {
        <li class="py-4 first:pt-0 last:pb-0" data-passkey-row=key.id.clone()>
            <div class="flex flex-col items-start gap-2 sm:flex-row sm:justify-between sm:gap-3">
                <div class="min-w-0">
                    <p class="break-words font-semibold text-fg" data-passkey-name>{key.name.clone()}</p>
                    <p class="mt-0.5 text-xs text-muted">
                        "Added " <RelativeTime at=key.created_at /> " · "
                        {match key.last_used_at {
                            Some(t) => view! { "last used " <RelativeTime at=t /> }.into_any(),
                            None => "never used".into_any(),
                        }}
                    </p>
                    <p class="mt-0.5 text-xs text-muted">
                        {match (key.approval.clone(), key.model.clone(), key.aaguid.clone()) {
                            (KeyApproval::Approved(model), ..) => view! {
                                <span data-passkey-model>{model}</span> " · approved model, attested by its vendor"
                            }.into_any(),
                            (_, Some(model), aaguid) => view! {
                                <span data-passkey-model title=aaguid.map(|a| format!("AAGUID {a}"))>{model}</span>
                            }.into_any(),
                            (_, None, Some(a)) if a.chars().all(|c| c == '0' || c == '-') => view! { "Model not disclosed by the authenticator" }.into_any(),
                            (_, None, Some(a)) => view! { "Unknown model " <code class="whitespace-nowrap rounded bg-sunken px-1">{a}</code> }.into_any(),
                            (_, None, None) => view! { "Model not disclosed by the authenticator" }.into_any(),
                        }}
                    </p>
                </div>
                <PasskeyStatus blocked=blocked.is_some() approved />
            </div>
            {unapproved_note}
            {blocked.map(|at| view! {
                <p class="mt-2 rounded-md bg-bad-soft p-3 text-sm text-bad">
                    <RelativeTime at /> " this key answered with a signature counter lower than before, which happens when a key has been copied. It can no longer sign in or confirm anything. Remove it, and tell your security team."
                </p>
            })}
            <div class="mt-3 flex flex-col gap-3 sm:flex-row sm:items-start">
                <form data-webauthn="rename" data-credential-id=key.id.clone() class="min-w-0 flex-1" novalidate>
                    <label for=rename_id.clone() class="block text-xs font-medium text-fg-soft">"Name"</label>
                    <div class="mt-1 flex gap-2">
                        <input id=rename_id name="name" type="text" required maxlength="60" value=key.name.clone()
                            class="block w-full min-w-0 flex-1 rounded-md border border-line-strong bg-surface px-3 py-1.5 text-sm text-fg shadow-sm focus:border-ring focus:outline-none focus:ring-2 focus:ring-ring" />
                        <button type="submit" class=ui::SECONDARY_SMALL>"Rename"</button>
                    </div>
                    <CeremonyStatus />
                </form>
                <form data-webauthn="remove" data-credential-id=key.id.clone() class="shrink-0 sm:w-52 sm:pt-5" novalidate>
                    <button type="submit" class=ui::DANGER_SMALL disabled=only aria-describedby=remove_help.clone()>"Remove…"</button>
                    <p id=remove_help class="mt-1 text-xs text-muted">
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
        <div class="rounded-md bg-accent-soft p-3 text-sm text-fg" data-approved-models>
            <p class="font-medium">"Only approved security keys can be added:"</p>
            <ul class="mt-1 list-disc pl-5">
                {models.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}
            </ul>
            <p class="mt-1 text-xs text-fg-soft">"Your browser will ask to share the key's make and model; allow it, so the key can prove what it is."</p>
        </div>
    });
    view! {
        <Card title="Add a passkey">
            <form data-webauthn="add" class="space-y-4" novalidate>
                {allowlist}
                <Field id="add-passkey-name" label="Name" help="So you can tell your keys apart, e.g. “YubiKey on keyring” or “work laptop”.">
                    <input id="add-passkey-name" name="name" type="text" required maxlength="60" autocomplete="off"
                        aria-describedby="add-passkey-name-help" class=ui::INPUT />
                </Field>
                <button type="submit" class=format!("{} w-full", ui::PRIMARY)>"Add passkey"</button>
                <CeremonyStatus />
                <noscript><p class="text-sm text-bad">"Passkeys need JavaScript in this browser."</p></noscript>
            </form>
        </Card>
    }
}
