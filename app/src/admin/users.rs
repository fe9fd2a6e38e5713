//! `/admin/users`: local accounts, their roles and groups; an admin changes the groups (which
//! approvals count) here or with `countersign user set-groups`.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::auth::LoginForm;
use crate::csrf::CsrfField;
use crate::model::{UserRow, UsersAccess};
use crate::ui::{
    self, error_text, Badge, Card, Cell, DataTable, EmptyState, ErrorState, Loading, PageHeader,
    RelativeTime, Toast, Tone, ROW,
};

/// The users page's data.
#[server(endpoint = "users_page", input = GetUrl)]
pub async fn users_page() -> Result<UsersAccess, ServerFnError> {
    use crate::backend::{backend, session};
    backend()?
        .users(&session().await?)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// Replace an account's groups (comma- or space-separated); admins only, audited. `csrf` is
/// checked by the server before this runs.
#[server(endpoint = "set_groups")]
pub async fn set_groups(
    username: String,
    groups: String,
    csrf: String,
) -> Result<Vec<String>, ServerFnError> {
    use crate::backend::{backend, refused, session};
    let _ = csrf;
    let groups: Vec<String> = groups
        .split([',', ' ', '\n'])
        .filter(|g| !g.trim().is_empty())
        .map(|g| g.trim().to_owned())
        .collect();
    backend()?
        .set_groups(&session().await?, &username, groups)
        .await
        .map_err(refused)
}

/// `/admin/users`
#[component]
pub fn UsersPage() -> impl IntoView {
    let users = Resource::new(|| (), |_| users_page());
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match users.await {
                    Ok(UsersAccess::Users(list)) => view! {
                        <PageHeader title="Users" lead="Local accounts, their roles and the groups approvals count. Identity-provider accounts bring their groups in the token." />
                        <LiveUsers list />
                    }.into_any(),
                    Ok(UsersAccess::SignInRequired) => view! {
                        <div class="mx-auto max-w-md">
                            <PageHeader title="Sign in to manage users" lead="Administrators manage local accounts here." />
                            <Card><LoginForm next="/admin/users" /></Card>
                        </div>
                    }.into_any(),
                    Ok(UsersAccess::Forbidden) => view! {
                        <ErrorState title="Users are for administrators"
                            actions=view! { <a href="/" class=ui::PRIMARY>"Go to your requests"</a> }.into_any()>
                            <p>"Your role cannot change accounts."</p>
                        </ErrorState>
                    }.into_any(),
                    Err(e) => view! {
                        <ErrorState title="Users could not be loaded"
                            actions=view! { <a href="/admin/users" rel="external" class=ui::PRIMARY>"Try again"</a> }.into_any()>
                            <p>{error_text(&e)}</p>
                        </ErrorState>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The accounts (an island): saving groups runs in place, says how it went, and the table then
/// shows what the server has.
#[island]
fn LiveUsers(list: Vec<UserRow>) -> impl IntoView {
    let save = ServerAction::<SetGroups>::new();
    let rows = RwSignal::new(list);
    Effect::new(move |_| {
        if save.version().get() > 0 {
            leptos::task::spawn_local(async move {
                if let Ok(UsersAccess::Users(list)) = users_page().await {
                    rows.set(list);
                }
            });
        }
    });
    let outcome = move || {
        save.value().get().map(|r| {
            let (tone, message) = match r {
                Ok(groups) if groups.is_empty() => (Tone::Ok, "Groups removed.".to_owned()),
                Ok(groups) => (Tone::Ok, format!("Groups saved: {}.", groups.join(", "))),
                Err(e) => (Tone::Bad, format!("Not saved: {}", error_text(&e))),
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
                        <EmptyState title="No local accounts"><p>"Invite one with countersign user invite."</p></EmptyState>
                    })
                } else {
                    leptos::either::Either::Right(view! { <UserTable list save /> })
                }
            }}
        </Card>
    }
}

#[component]
fn UserTable(list: Vec<UserRow>, save: ServerAction<SetGroups>) -> impl IntoView {
    view! {
        <DataTable caption="Local accounts" headers=vec!["Account", "Role", "Groups", ""]>
            {list.into_iter().map(|u| {
                let field = format!("groups-{}", u.username.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
                let label = format!("Groups of {}", u.username);
                let (name, shown_name, role) = (u.username.clone(), u.username.clone(), u.role.clone());
                let (form_name, form_groups) = (u.username.clone(), u.groups.join(", "));
                let groups = if u.groups.is_empty() { "none".to_owned() } else { u.groups.join(", ") };
                view! {
                    <tr class=ROW data-user-row=name>
                        <Cell label="Account">
                            <span class="font-medium text-fg">{u.display_name.clone()}</span>
                            <span class="block text-xs text-muted"><code>{shown_name}</code> " · since " <RelativeTime at=u.created_at /></span>
                        </Cell>
                        <Cell label="Role"><Badge tone=Tone::Info label=role /></Cell>
                        <Cell label="Groups">
                            <span data-user-groups>{groups}</span>
                        </Cell>
                        <Cell label="">
                            <details class="relative">
                                <summary class=format!("cursor-pointer list-none {}", ui::SECONDARY_SMALL)>"Edit groups…"</summary>
                                <ActionForm action=save attr:class="mt-2 space-y-2">
                                    <input type="hidden" name="username" value=form_name />
                                    <CsrfField />
                                    <label for=field.clone() class="block text-sm font-medium text-fg">{label}</label>
                                    <input id=field name="groups" class=ui::INPUT value=form_groups
                                        placeholder="payments-oncall, sre" />
                                    <button type="submit" class=ui::PRIMARY>"Save groups"</button>
                                </ActionForm>
                            </details>
                        </Cell>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
}
