//! `/admin/users`: local accounts, their roles and groups, and the invitations still pending. An
//! admin invites people, changes roles and groups (which approvals count), and disables or enables
//! accounts here or with `countersign user …`; never their own account, and only with a fresh
//! sign-in.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::auth::LoginForm;
use crate::csrf::CsrfField;
use crate::model::{InvitationRow, UserRow, UsersAccess};
use crate::ui::{
    self, error_text, Alert, Badge, Card, Cell, DataTable, Dialog, EmptyState, ErrorState, Field,
    Loading, PageHeader, RelativeTime, Toast, Tone, ROW,
};

/// The roles an account may have, as forms name them, with what each may do.
const ROLES: [(&str, &str); 4] = [
    ("engineer", "Engineer"),
    ("approver", "Approver"),
    ("admin", "Admin"),
    ("auditor", "Auditor"),
];

/// What the roles may do, under every role choice.
const ROLES_HELP: &str = "Engineers confirm their own requests; approvers also review others'; admins also manage accounts and grants; auditors only read.";

/// The users page's data.
#[server(endpoint = "users_page", input = GetUrl)]
pub async fn users_page() -> Result<UsersAccess, ServerFnError> {
    use crate::backend::{backend, session};
    backend()?
        .users(&session().await?)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// Groups as typed: comma-, space- or line-separated.
#[cfg(feature = "ssr")]
fn group_list(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n'])
        .filter(|g| !g.trim().is_empty())
        .map(|g| g.trim().to_owned())
        .collect()
}

/// Replace an account's groups; admins only, audited. `csrf` is checked by the server before this
/// runs.
#[server(endpoint = "set_groups")]
pub async fn set_groups(
    username: String,
    groups: String,
    csrf: String,
) -> Result<Vec<String>, ServerFnError> {
    use crate::backend::{backend, refused, session};
    let _ = csrf;
    backend()?
        .set_groups(&session().await?, &username, group_list(&groups))
        .await
        .map_err(refused)
}

/// Make a one-time setup link for a new account; admins only, audited. Returns the link.
#[server(endpoint = "invite_account")]
pub async fn invite_account(
    username: String,
    role: String,
    groups: String,
    csrf: String,
) -> Result<(String, String), ServerFnError> {
    use crate::backend::{backend, refused, session};
    let _ = csrf;
    let link = backend()?
        .invite(&session().await?, &username, &role, group_list(&groups))
        .await
        .map_err(refused)?;
    Ok((username.trim().to_owned(), link))
}

/// Give an account another role; admins only, audited.
#[server(endpoint = "set_account_role")]
pub async fn set_account_role(
    username: String,
    role: String,
    csrf: String,
) -> Result<String, ServerFnError> {
    use crate::backend::{backend, refused, session};
    let _ = csrf;
    backend()?
        .set_role(&session().await?, &username, &role)
        .await
        .map_err(refused)?;
    Ok(format!("{username} is now {role}."))
}

/// Disable (`disable` = "yes") or enable an account; admins only, audited.
#[server(endpoint = "set_account_disabled")]
pub async fn set_account_disabled(
    username: String,
    disable: String,
    csrf: String,
) -> Result<String, ServerFnError> {
    use crate::backend::{backend, refused, session};
    let _ = csrf;
    let disable = disable == "yes";
    let changed = backend()?
        .set_disabled(&session().await?, &username, disable)
        .await
        .map_err(refused)?;
    Ok(match (changed, disable) {
        (true, true) => format!("{username} is disabled: signed out everywhere, confirms nothing."),
        (true, false) => format!("{username} is enabled again."),
        (false, true) => format!("{username} was already disabled."),
        (false, false) => format!("{username} was already enabled."),
    })
}

/// `/admin/users`
#[component]
pub fn UsersPage() -> impl IntoView {
    let users = Resource::new(|| (), |_| users_page());
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match users.await {
                    Ok(UsersAccess::Users { accounts, invitations }) => view! {
                        <PageHeader title="Users" lead="Local accounts, their roles and the groups approvals count. Identity-provider accounts bring their groups in the token. Changes need a sign-in from the last few minutes, and another admin changes yours." />
                        <LiveUsers accounts invitations />
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

/// Every action on the page, so the table can offer them.
#[derive(Clone, Copy)]
struct Actions {
    groups: ServerAction<SetGroups>,
    role: ServerAction<SetAccountRole>,
    access: ServerAction<SetAccountDisabled>,
}

/// The accounts and invitations (an island): every change runs in place, says how it went, and
/// the tables then show what the server has.
#[island]
fn LiveUsers(accounts: Vec<UserRow>, invitations: Vec<InvitationRow>) -> impl IntoView {
    let actions = Actions {
        groups: ServerAction::<SetGroups>::new(),
        role: ServerAction::<SetAccountRole>::new(),
        access: ServerAction::<SetAccountDisabled>::new(),
    };
    let invite = ServerAction::<InviteAccount>::new();
    let rows = RwSignal::new(accounts);
    let pending = RwSignal::new(invitations);
    Effect::new(move |_| {
        let changes = actions.groups.version().get()
            + actions.role.version().get()
            + actions.access.version().get()
            + invite.version().get();
        if changes > 0 {
            leptos::task::spawn_local(async move {
                if let Ok(UsersAccess::Users {
                    accounts,
                    invitations,
                }) = users_page().await
                {
                    rows.set(accounts);
                    pending.set(invitations);
                }
            });
        }
    });
    // The newest outcome of any change, as a toast.
    let last = RwSignal::new(None::<(Tone, String)>);
    Effect::new(move |_| {
        if let Some(r) = actions.groups.value().get() {
            last.set(Some(match r {
                Ok(groups) if groups.is_empty() => (Tone::Ok, "Groups removed.".to_owned()),
                Ok(groups) => (Tone::Ok, format!("Groups saved: {}.", groups.join(", "))),
                Err(e) => (Tone::Bad, format!("Not saved: {}", error_text(&e))),
            }));
        }
    });
    Effect::new(move |_| {
        if let Some(r) = actions.role.value().get() {
            last.set(Some(said(r)));
        }
    });
    Effect::new(move |_| {
        if let Some(r) = actions.access.value().get() {
            last.set(Some(said(r)));
        }
    });
    let toast = move || {
        last.get()
            .map(|(tone, message)| view! { <Toast tone message /> })
    };
    view! {
        {toast}
        <div class="space-y-6">
            <InviteForm invite />
            <Card title="Accounts">
                {move || {
                    let list = rows.get();
                    if list.is_empty() {
                        leptos::either::Either::Left(view! {
                            <EmptyState title="No local accounts"><p>"Invite someone above: they get a one-time link to register a passkey."</p></EmptyState>
                        })
                    } else {
                        leptos::either::Either::Right(view! { <UserTable list actions /> })
                    }
                }}
            </Card>
            <Card title="Pending invitations">
                {move || {
                    let list = pending.get();
                    if list.is_empty() {
                        leptos::either::Either::Left(view! {
                            <p class="text-sm text-muted" data-no-invitations>"No invitation is waiting: every link sent has been used or has expired."</p>
                        })
                    } else {
                        leptos::either::Either::Right(view! { <InvitationTable list /> })
                    }
                }}
            </Card>
        </div>
    }
}

/// A change's outcome as a toast says it.
fn said(r: Result<String, ServerFnError>) -> (Tone, String) {
    match r {
        Ok(m) => (Tone::Ok, m),
        Err(e) => (Tone::Bad, format!("Not saved: {}", error_text(&e))),
    }
}

/// Invite someone: username, role and groups; the link appears once made.
#[component]
fn InviteForm(invite: ServerAction<InviteAccount>) -> impl IntoView {
    let made = move || {
        invite.value().get().map(|r| match r {
            Ok((username, link)) => view! {
                <div class="mt-4" data-invite-link>
                    <Alert tone=Tone::Ok title=format!("Invitation for {username} made")>
                        <p>"Send this one-time link to them; it works for 72 hours and creates the account with the role and groups you chose."</p>
                        <label for="invite-link" class="mt-2 block text-xs font-medium text-fg">"Setup link"</label>
                        <input id="invite-link" readonly class=format!("{} font-mono text-xs", ui::INPUT) value=link
                            onfocus="this.select()" />
                    </Alert>
                </div>
            }.into_any(),
            Err(e) => view! {
                <div class="mt-4"><Alert tone=Tone::Bad title="No invitation made">{error_text(&e)}</Alert></div>
            }.into_any(),
        })
    };
    view! {
        <Card title="Invite someone">
            <ActionForm action=invite attr:class="grid gap-4 sm:grid-cols-3 sm:items-start" attr:data-invite-form="yes">
                <CsrfField />
                <Field id="invite-username" label="Kubernetes username" help="The account confirms requests made as this user.">
                    <input id="invite-username" name="username" required class=ui::INPUT autocomplete="off"
                        aria-describedby="invite-username-help" placeholder="jane@example.com" />
                </Field>
                <Field id="invite-role" label="Role" help=ROLES_HELP>
                    <select id="invite-role" name="role" class=ui::INPUT aria-describedby="invite-role-help">
                        {ROLES.iter().map(|(value, label)| view! {
                            <option value=*value selected=*value == "engineer">{*label}</option>
                        }).collect_view()}
                    </select>
                </Field>
                <Field id="invite-groups" label="Groups (optional)" help="Comma-separated; approvals count them.">
                    <input id="invite-groups" name="groups" class=ui::INPUT autocomplete="off"
                        aria-describedby="invite-groups-help" placeholder="payments-oncall, sre" />
                </Field>
                <div class="sm:col-span-3">
                    <button type="submit" class=ui::PRIMARY disabled=move || invite.pending().get()>
                        {move || if invite.pending().get() { "Making the link…" } else { "Make invitation link" }}
                    </button>
                </div>
            </ActionForm>
            {made}
        </Card>
    }
}

/// A DOM id from a username.
fn slug(username: &str) -> String {
    username.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
}

#[component]
fn UserTable(list: Vec<UserRow>, actions: Actions) -> impl IntoView {
    view! {
        <DataTable caption="Local accounts" headers=vec!["Account", "Role", "Groups", "Status", ""]>
            {list.into_iter().map(|u| {
                let groups = if u.groups.is_empty() { "none".to_owned() } else { u.groups.join(", ") };
                let status = if u.disabled {
                    view! { <Badge tone=Tone::Bad label="Disabled" /> }
                } else {
                    view! { <Badge tone=Tone::Ok label="Active" /> }
                };
                let manage = if u.is_you {
                    view! { <p class="text-xs text-muted">"Your account: another admin changes it."</p> }.into_any()
                } else {
                    view! { <Manage user=u.clone() actions /> }.into_any()
                };
                let (row_name, shown_name) = (u.username.clone(), u.username.clone());
                view! {
                    <tr class=ROW data-user-row=row_name data-disabled=u.disabled.then_some("yes")>
                        <Cell label="Account">
                            <span class="font-medium text-fg">{u.display_name.clone()}</span>
                            {u.is_you.then(|| view! { <span class="ml-2 text-xs text-muted">"(you)"</span> })}
                            <span class="block text-xs text-muted"><code>{shown_name}</code> " · since " <RelativeTime at=u.created_at /></span>
                        </Cell>
                        <Cell label="Role"><span data-user-role><Badge tone=Tone::Info label=u.role.clone() /></span></Cell>
                        <Cell label="Groups"><span data-user-groups>{groups}</span></Cell>
                        <Cell label="Status">{status}</Cell>
                        <Cell label="">{manage}</Cell>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
}

/// What an admin may change of another account: groups, role, and whether it may sign in.
#[component]
fn Manage(user: UserRow, actions: Actions) -> impl IntoView {
    let id = slug(&user.username);
    let name = user.username.clone();
    let (groups_field, role_field) = (format!("groups-{id}"), format!("role-{id}"));
    let current_role = user.role.clone();
    let access = if user.disabled {
        let name = name.clone();
        view! {
            <ActionForm action=actions.access>
                <input type="hidden" name="username" value=name />
                <input type="hidden" name="disable" value="no" />
                <CsrfField />
                <button type="submit" class=ui::SECONDARY_SMALL>"Enable"</button>
            </ActionForm>
        }
        .into_any()
    } else {
        let name = name.clone();
        view! {
            <Dialog id=format!("disable-{id}") trigger="Disable…" trigger_class=ui::DANGER_SMALL
                title=format!("Disable {name}?")>
                <p class="text-sm text-fg-soft">"They are signed out everywhere, cannot sign in, and confirm or approve nothing until enabled again. Their grants stay until they expire; revoke them on the grants page."</p>
                <ActionForm action=actions.access attr:class="mt-4">
                    <input type="hidden" name="username" value=name.clone() />
                    <input type="hidden" name="disable" value="yes" />
                    <CsrfField />
                    <button type="submit" class=ui::DANGER>"Disable account"</button>
                </ActionForm>
            </Dialog>
        }
        .into_any()
    };
    let (groups_name, role_name) = (name.clone(), name.clone());
    let (groups_label, role_label) = (format!("Groups of {name}"), format!("Role of {name}"));
    view! {
        <div class="flex flex-wrap items-start gap-2">
            <details class="relative">
                <summary class=format!("cursor-pointer list-none {}", ui::SECONDARY_SMALL)>"Edit groups…"</summary>
                <ActionForm action=actions.groups attr:class="mt-2 space-y-2">
                    <input type="hidden" name="username" value=groups_name />
                    <CsrfField />
                    <label for=groups_field.clone() class="block text-sm font-medium text-fg">{groups_label}</label>
                    <input id=groups_field name="groups" class=ui::INPUT value=user.groups.join(", ")
                        placeholder="payments-oncall, sre" />
                    <button type="submit" class=ui::PRIMARY>"Save groups"</button>
                </ActionForm>
            </details>
            <details class="relative">
                <summary class=format!("cursor-pointer list-none {}", ui::SECONDARY_SMALL)>"Change role…"</summary>
                <ActionForm action=actions.role attr:class="mt-2 space-y-2">
                    <input type="hidden" name="username" value=role_name />
                    <CsrfField />
                    <label for=role_field.clone() class="block text-sm font-medium text-fg">{role_label}</label>
                    <select id=role_field name="role" class=ui::INPUT title=ROLES_HELP>
                        {ROLES.iter().map(|(value, label)| view! {
                            <option value=*value selected=*value == current_role>{*label}</option>
                        }).collect_view()}
                    </select>
                    <button type="submit" class=ui::PRIMARY>"Save role"</button>
                </ActionForm>
            </details>
            {access}
        </div>
    }
}

#[component]
fn InvitationTable(list: Vec<InvitationRow>) -> impl IntoView {
    view! {
        <DataTable caption="Invitations not used yet" headers=vec!["For", "Role", "Groups", "Link works until"]>
            {list.into_iter().map(|i| {
                let groups = if i.groups.is_empty() { "none".to_owned() } else { i.groups.join(", ") };
                let row_name = i.username.clone();
                view! {
                    <tr class=ROW data-invitation-row=row_name>
                        <Cell label="For">
                            <code class="text-fg">{i.username}</code>
                            <span class="block text-xs text-muted">"sent " <RelativeTime at=i.created_at /></span>
                        </Cell>
                        <Cell label="Role"><Badge tone=Tone::Info label=i.role /></Cell>
                        <Cell label="Groups">{groups}</Cell>
                        <Cell label="Link works until">
                            <RelativeTime at=i.expires_at />
                            <span class="block text-xs text-muted">{ui::utc(i.expires_at)}</span>
                        </Cell>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
}
