//! `/admin/grants`: every live grant, and revoking one (admins; auditors may look); and
//! `/admin/users` ([`users`]).

pub mod users;

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::auth::LoginForm;
use crate::csrf::CsrfField;
use crate::model::{GrantRow, GrantsAccess};
use crate::ui::{
    self, error_text, Card, Cell, DataTable, Dialog, EmptyState, ErrorState, Loading, PageHeader,
    RelativeTime, Toast, Tone, ROW,
};

/// Every live grant; refused (403) unless the viewer may list grants.
#[server(endpoint = "list_grants", input = GetUrl)]
pub async fn list_grants() -> Result<Vec<GrantRow>, ServerFnError> {
    use crate::backend::{backend, refused, session};
    backend()?
        .live_grants(&session().await?)
        .await
        .map_err(refused)
}

/// The grants page's data: the list, or why it cannot be shown.
#[server(endpoint = "grants_page", input = GetUrl)]
pub async fn grants_page() -> Result<GrantsAccess, ServerFnError> {
    use crate::backend::{backend, session, PortalError};
    let Some(viewer) = crate::backend::viewer().await? else {
        return Ok(GrantsAccess::SignInRequired);
    };
    match backend()?.live_grants(&session().await?).await {
        Ok(list) => Ok(GrantsAccess::Grants {
            list,
            can_revoke: viewer.role == "admin",
        }),
        Err(PortalError::Forbidden(_)) => Ok(GrantsAccess::Forbidden),
        Err(PortalError::Unauthenticated) => Ok(GrantsAccess::SignInRequired),
        Err(e) => Err(ServerFnError::new(e.to_string())),
    }
}

/// Revoke a grant at once; refused (403) unless the viewer is an admin. `csrf` is checked by the
/// server before this runs; it is an argument so that the form field reaches the server.
#[server(endpoint = "revoke_grant")]
pub async fn revoke_grant(id: String, csrf: String) -> Result<bool, ServerFnError> {
    use crate::backend::{backend, refused, session};
    let _ = csrf;
    backend()?
        .revoke_grant(&session().await?, &id)
        .await
        .map_err(refused)
}

/// `/admin/grants`
#[component]
pub fn GrantsPage() -> impl IntoView {
    let grants = Resource::new(|| (), |_| grants_page());
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match grants.await {
                    Ok(GrantsAccess::Grants { list, can_revoke }) => view! {
                        <PageHeader title="Grants" lead="Every grant that can still admit a request. Revoking one takes effect on the next admission." />
                        <LiveGrants list can_revoke />
                    }.into_any(),
                    Ok(GrantsAccess::SignInRequired) => view! {
                        <div class="mx-auto max-w-md">
                            <PageHeader title="Sign in to see grants" lead="This page lists live grants for administrators and auditors." />
                            <Card><LoginForm next="/admin/grants" /></Card>
                        </div>
                    }.into_any(),
                    Ok(GrantsAccess::Forbidden) => view! {
                        <ErrorState title="Grants are for administrators and auditors"
                            actions=view! { <a href="/" class=ui::PRIMARY>"Go to your requests"</a> }.into_any()>
                            <p>"Your role cannot list other people's grants. Your own grants are on the pages of your requests."</p>
                        </ErrorState>
                    }.into_any(),
                    Err(e) => view! {
                        <ErrorState title="Grants could not be loaded"
                            actions=view! { <a href="/admin/grants" rel="external" class=ui::PRIMARY>"Try again"</a> }.into_any()>
                            <p>{error_text(&e)}</p>
                        </ErrorState>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The live grants (an island): a revoke runs in place, says how it went, and the list then shows
/// what the server has.
#[island]
fn LiveGrants(list: Vec<GrantRow>, can_revoke: bool) -> impl IntoView {
    let revoke = ServerAction::<RevokeGrant>::new();
    let rows = RwSignal::new(list);
    Effect::new(move |_| {
        if revoke.version().get() > 0 {
            leptos::task::spawn_local(async move {
                if let Ok(GrantsAccess::Grants { list, .. }) = grants_page().await {
                    rows.set(list);
                }
            });
        }
    });
    let outcome = move || {
        revoke.value().get().map(|r| {
            let (tone, message) = match r {
                Ok(true) => (
                    Tone::Ok,
                    "Grant revoked. The webhook refuses it from the next request on.".to_owned(),
                ),
                Ok(false) => (
                    Tone::Neutral,
                    "That grant was no longer live: it had expired, been used up or been revoked."
                        .to_owned(),
                ),
                Err(e) => (Tone::Bad, format!("Not revoked: {}", error_text(&e))),
            };
            view! { <Toast tone message /> }
        })
    };
    view! {
        {outcome}
        <Card>
            {move || {
                let list = rows.get();
                if list.is_empty() {
                    leptos::either::Either::Left(view! {
                        <EmptyState title="No live grants">
                            <p>"Grants appear here when someone steps up, until they expire, are used up or are revoked."</p>
                        </EmptyState>
                    })
                } else {
                    leptos::either::Either::Right(view! { <GrantTable list revoke can_revoke /> })
                }
            }}
        </Card>
    }
}

#[component]
fn GrantTable(
    list: Vec<GrantRow>,
    revoke: ServerAction<RevokeGrant>,
    can_revoke: bool,
) -> impl IntoView {
    let headers = if can_revoke {
        vec!["Who", "For", "Expires", "Uses", ""]
    } else {
        vec!["Who", "For", "Expires", "Uses"]
    };
    view! {
        <DataTable caption="Live grants" headers>
            {list.into_iter().map(|g| {
                let id = g.id.clone();
                let what = format!("{} {}", ui::lowercase_first(&g.title), g.place);
                let who = g.username.clone();
                view! {
                    <tr class=ROW data-grant-row=g.id.clone()>
                        <Cell label="Who">
                            <span class="font-medium text-fg">{g.username.clone()}</span>
                            {g.break_glass.then(|| view! { <span class="ml-2" data-break-glass><ui::Badge tone=ui::Tone::Bad label="Break glass" /></span> })}
                        </Cell>
                        <Cell label="For">
                            <span class="text-fg">{g.title.clone()}</span>
                            <span class="block text-xs text-muted">{g.place.clone()} " · " {g.scope_text.clone()}</span>
                            <span class="block text-xs text-muted">"guardrail " <code>{g.guardrail.clone()}</code></span>
                        </Cell>
                        <Cell label="Expires"><RelativeTime at=g.expires_at /></Cell>
                        <Cell label="Uses">{ui::uses_left(g.uses_left)}</Cell>
                        {can_revoke.then(|| view! {
                            <Cell label="">
                                <Dialog id=format!("revoke-{id}") trigger="Revoke…" trigger_class=ui::DANGER_SMALL title="Revoke this grant?">
                                    <p>"The next request using it is denied. " <strong>{who.clone()}</strong> " asked to " {what} "."</p>
                                    <ActionForm action=revoke>
                                        <input type="hidden" name="id" value=id.clone() />
                                        <CsrfField />
                                        <button type="submit" class=format!("{} w-full", ui::DANGER)>"Revoke grant"</button>
                                    </ActionForm>
                                </Dialog>
                            </Cell>
                        })}
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
}
