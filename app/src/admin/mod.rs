//! `/admin/grants`: every live grant, and revoking one (admins; auditors may look).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::csrf::CsrfField;
use crate::layout::{Card, ErrorNote, Loading};
use crate::model::GrantRow;

/// Every live grant; refused (403) unless the viewer may list grants.
#[server(endpoint = "list_grants", input = GetUrl)]
pub async fn list_grants() -> Result<Vec<GrantRow>, ServerFnError> {
    use crate::backend::{backend, refused, session};
    backend()?
        .live_grants(&session().await?)
        .await
        .map_err(refused)
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
    let revoke = ServerAction::<RevokeGrant>::new();
    let grants = Resource::new(move || revoke.version().get(), |_| list_grants());
    let outcome = move || {
        revoke.value().get().map(|r| match r {
            Ok(true) => view! { <p role="status" class="mb-4 rounded-lg border border-emerald-200 bg-emerald-50 p-3 text-sm text-emerald-900">"Grant revoked. The webhook refuses it from the next request on."</p> }.into_any(),
            Ok(false) => view! { <p role="status" class="mb-4 rounded-lg border border-slate-200 bg-slate-50 p-3 text-sm text-slate-700">"That grant was no longer live."</p> }.into_any(),
            Err(e) => view! { <div class="mb-4"><ErrorNote message=e.to_string() /></div> }.into_any(),
        })
    };
    view! {
        <h1 class="text-2xl font-semibold tracking-tight text-slate-900">"Grants"</h1>
        <p class="mt-1 mb-6 text-sm text-slate-600">"Every grant that can still admit a request. Revoking one takes effect on the next admission."</p>
        {outcome}
        <Card title="Live grants">
            <Suspense fallback=|| view! { <Loading /> }>
                {move || Suspend::new(async move {
                    match grants.await {
                        Ok(list) if list.is_empty() => view! {
                            <div class="rounded-lg border border-dashed border-slate-300 p-6 text-center" data-grants-empty>
                                <p class="font-medium text-slate-800">"No live grants."</p>
                                <p class="mt-1 text-sm text-slate-600">"Grants appear here when someone steps up, until they expire, are used up or are revoked."</p>
                            </div>
                        }.into_any(),
                        Ok(list) => view! { <GrantTable list revoke /> }.into_any(),
                        Err(e) => view! { <ErrorNote message=e.to_string() /> }.into_any(),
                    }
                })}
            </Suspense>
        </Card>
    }
}

#[component]
fn GrantTable(list: Vec<GrantRow>, revoke: ServerAction<RevokeGrant>) -> impl IntoView {
    view! {
        <div class="overflow-x-auto">
            <table class="min-w-full text-left text-sm">
                <thead class="text-xs uppercase tracking-wide text-slate-600">
                    <tr>
                        <th scope="col" class="py-2 pr-4">"Grant"</th>
                        <th scope="col" class="py-2 pr-4">"User"</th>
                        <th scope="col" class="py-2 pr-4">"Guardrail"</th>
                        <th scope="col" class="py-2 pr-4">"Scope"</th>
                        <th scope="col" class="py-2 pr-4">"Expires"</th>
                        <th scope="col" class="py-2"><span class="sr-only">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-200">
                    {list.into_iter().map(|g| {
                        let id = g.id.clone();
                        view! {
                        <tr data-grant-row=g.id.clone()>
                            <td class="py-2 pr-4 font-mono text-xs">{g.id.clone()}</td>
                            <td class="py-2 pr-4">{g.username}</td>
                            <td class="py-2 pr-4 font-mono text-xs">{g.guardrail}</td>
                            <td class="py-2 pr-4"><span class="font-medium">{g.scope}</span><span class="block break-all text-xs text-slate-600">{g.target}</span></td>
                            <td class="py-2 pr-4">{g.expires_at}<span class="block text-xs text-slate-600">{g.uses}</span></td>
                            <td class="py-2">
                                // A disclosure asks for confirmation without relying on script.
                                <details>
                                    <summary class="cursor-pointer rounded px-2 py-1 font-medium text-red-700 hover:bg-red-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-red-600">"Revoke…"</summary>
                                    <ActionForm action=revoke attr:class="mt-2 space-y-2">
                                        <input type="hidden" name="id" value=id />
                                        <CsrfField />
                                        <p class="text-xs text-slate-700">"The next request using this grant is denied."</p>
                                        <button type="submit" class="rounded-md bg-red-700 px-3 py-1.5 text-xs font-semibold text-white hover:bg-red-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-red-600 focus-visible:ring-offset-2">"Confirm revoke"</button>
                                    </ActionForm>
                                </details>
                            </td>
                        </tr>
                    }}).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
