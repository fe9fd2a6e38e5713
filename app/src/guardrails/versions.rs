//! `/admin/guardrails/versions`: every saved version with its author and reason, and any two
//! compared guardrail by guardrail (`?from=A&to=B`). Rendered on the server.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos_router::hooks::use_query_map;

use crate::auth::LoginForm;
use crate::model::{Comparison, VersionRow, VersionsAccess};
use crate::ui::{
    self, error_text, Alert, Badge, Card, Cell, DataTable, DiffBlock, EmptyState, ErrorState,
    Loading, PageHeader, RelativeTime, Tone, ROW,
};

/// The versions page's data; `from` and `to` name two versions to compare.
#[server(endpoint = "guardrail_versions_page", input = GetUrl)]
pub async fn versions_page(
    from: Option<i64>,
    to: Option<i64>,
) -> Result<VersionsAccess, ServerFnError> {
    use crate::backend::{backend, refused, session};
    backend()?
        .guardrail_versions(&session().await?, from.zip(to))
        .await
        .map_err(refused)
}

/// `/admin/guardrails/versions`
#[component]
pub fn VersionsPage() -> impl IntoView {
    let query = use_query_map();
    let asked = move || {
        let q = query.get();
        let number = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
        (number("from"), number("to"))
    };
    let page = Resource::new(asked, |(from, to)| versions_page(from, to));
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(VersionsAccess::Versions { list, comparison }) => view! {
                        <PageHeader title="Guardrail versions" lead="Every saved version, who saved it and why. Pick two to see what changed." />
                        <p class="mb-4 text-sm"><a class="font-semibold text-link hover:underline" href="/admin/guardrails">"← The guardrails in force"</a></p>
                        {comparison.map(|c| view! { <Compared comparison=c /> })}
                        <Card><VersionTable list /></Card>
                    }.into_any(),
                    Ok(VersionsAccess::Files) => view! {
                        <PageHeader title="Guardrail versions" lead="Every saved version, who saved it and why." />
                        <Alert tone=Tone::Info title="Files are the truth here">
                            <p>"The guardrails are read from files, so their history is your repository's. Versions are kept when Countersign runs without " <code>"--policies"</code> "."</p>
                        </Alert>
                    }.into_any(),
                    Ok(VersionsAccess::SignInRequired) => view! {
                        <div class="mx-auto max-w-md">
                            <PageHeader title="Sign in to see guardrail versions" lead="This page lists the saved guardrail versions for administrators, approvers and auditors." />
                            <Card><LoginForm next="/admin/guardrails/versions" /></Card>
                        </div>
                    }.into_any(),
                    Ok(VersionsAccess::Forbidden) => view! {
                        <ErrorState title="Guardrails are for administrators, approvers and auditors"
                            actions=view! { <a href="/" class=ui::PRIMARY>"Go to your requests"</a> }.into_any()>
                            <p>"Your role cannot read the guardrails' history."</p>
                        </ErrorState>
                    }.into_any(),
                    Err(e) => view! {
                        <ErrorState title="Versions could not be loaded"
                            actions=view! { <a href="/admin/guardrails/versions" rel="external" class=ui::PRIMARY>"Try again"</a> }.into_any()>
                            <p>{error_text(&e)}</p>
                        </ErrorState>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Two versions side by side, guardrail by guardrail.
#[component]
fn Compared(comparison: Comparison) -> impl IntoView {
    let Comparison {
        from,
        to,
        differences,
    } = comparison;
    let title = format!("v{} → v{}", from.number, to.number);
    let label = title.clone();
    let key = format!("{}-{}", from.number, to.number);
    view! {
        <section class="mb-6" aria-label=label data-comparison=key>
            <Card>
                <h2 class="text-base font-semibold text-fg">{title}</h2>
                <p class="mt-1 text-sm text-muted">"v" {to.number} " by " {to.author.clone()} ": " {to.reason.clone()}</p>
                {if differences.is_empty() {
                    view! { <p class="mt-3 text-sm text-muted" data-same>"Both versions hold the same guardrails."</p> }.into_any()
                } else {
                    differences.into_iter().map(|d| {
                        let (tone, label) = match d.kind.as_str() {
                            "added" => (Tone::Ok, "Added"),
                            "removed" => (Tone::Bad, "Removed"),
                            _ => (Tone::Warn, "Changed"),
                        };
                        let name = d.name.clone();
                        view! {
                            <div class="mt-4" data-difference=name.clone() data-kind=d.kind.clone()>
                                <p class="flex items-center gap-2 text-sm"><code class="font-medium text-fg">{d.name.clone()}</code><Badge tone label /></p>
                                <DiffBlock lines=d.lines label=format!("{name}: {label}") />
                            </div>
                        }
                    }).collect_view().into_any()
                }}
            </Card>
        </section>
    }
}

#[component]
fn VersionTable(list: Vec<VersionRow>) -> impl IntoView {
    if list.is_empty() {
        return view! {
            <EmptyState title="No versions saved yet">
                <p>"The first start saves the shipped library as v1; " <code>"countersign policy apply"</code> " saves the next."</p>
            </EmptyState>
        }
        .into_any();
    }
    view! {
        <DataTable caption="Saved versions" headers=vec!["Version", "Saved", "By", "Why", ""]>
            {list.into_iter().map(|v| {
                let compare = (v.number > 1).then(|| format!("/admin/guardrails/versions?from={}&to={}", v.number - 1, v.number));
                let key = v.number;
                view! {
                    <tr class=ROW data-version-row=key>
                        <Cell label="Version"><strong class="text-fg">"v" {v.number}</strong></Cell>
                        <Cell label="Saved"><RelativeTime at=v.at /></Cell>
                        <Cell label="By">{v.author.clone()}</Cell>
                        <Cell label="Why">{v.reason.clone()}</Cell>
                        <Cell label="">
                            {compare.map(|href| view! { <a class=ui::SECONDARY_SMALL href=href>"What changed"</a> })}
                        </Cell>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
    .into_any()
}
