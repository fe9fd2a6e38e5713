//! `/admin/guardrails`: the guardrails in force, what each asks for, when it last changed and by
//! whom, and how often it tripped (admins, approvers and auditors); and its versions
//! ([`versions`]). Rendered on the server.

pub mod versions;

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::auth::LoginForm;
use crate::model::{GuardrailRow, GuardrailSource, GuardrailsAccess};
use crate::ui::{
    self, error_text, Alert, Badge, Card, Cell, DataTable, EmptyState, ErrorState, Loading,
    PageHeader, RelativeTime, Tone, ROW,
};

/// The guardrails page's data: the list, or why it cannot be shown.
#[server(endpoint = "guardrails_page", input = GetUrl)]
pub async fn guardrails_page() -> Result<GuardrailsAccess, ServerFnError> {
    use crate::backend::{backend, refused, session};
    backend()?
        .guardrails(&session().await?)
        .await
        .map_err(refused)
}

/// `/admin/guardrails`
#[component]
pub fn GuardrailsPage() -> impl IntoView {
    let page = Resource::new(|| (), |_| guardrails_page());
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(GuardrailsAccess::Guardrails { list, version, source }) => {
                        let files = matches!(source, GuardrailSource::Files { .. });
                        view! {
                            <PageHeader title="Guardrails" lead="What each guardrail in force asks for, when it last changed, and how often it tripped." />
                            <Source source version />
                            <Card><GuardrailTable list files /></Card>
                        }.into_any()
                    }
                    Ok(GuardrailsAccess::SignInRequired) => view! {
                        <div class="mx-auto max-w-md">
                            <PageHeader title="Sign in to see guardrails" lead="This page lists the guardrails in force for administrators, approvers and auditors." />
                            <Card><LoginForm next="/admin/guardrails" /></Card>
                        </div>
                    }.into_any(),
                    Ok(GuardrailsAccess::Forbidden) => view! {
                        <ErrorState title="Guardrails are for administrators, approvers and auditors"
                            actions=view! { <a href="/" class=ui::PRIMARY>"Go to your requests"</a> }.into_any()>
                            <p>"Your role cannot read the guardrails. When one trips on your request, its page says what it asks for."</p>
                        </ErrorState>
                    }.into_any(),
                    Err(e) => view! {
                        <ErrorState title="Guardrails could not be loaded"
                            actions=view! { <a href="/admin/guardrails" rel="external" class=ui::PRIMARY>"Try again"</a> }.into_any()>
                            <p>{error_text(&e)}</p>
                        </ErrorState>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Where the guardrails come from, and the version in force.
#[component]
fn Source(source: GuardrailSource, version: String) -> impl IntoView {
    let body = match source {
        GuardrailSource::Files { path } => view! {
            <Alert tone=Tone::Info title="Files are the truth here">
                <p>"These guardrails are read from " <code class="break-all">{path}</code> " and reloaded when the files change. Change them by committing the files (GitOps); the portal does not save over them. In force: " <code class="break-all">{version}</code> "."</p>
            </Alert>
        }.into_any(),
        GuardrailSource::Store => {
            let shown = version.clone();
            view! {
                <p class="mb-4 text-sm text-muted" data-version=version>"Version in force: " <strong class="text-fg">{shown}</strong> ". Every change is a new version, with its author and reason: " <a class="font-semibold text-link hover:underline" href="/admin/guardrails/versions">"see the versions"</a> "."</p>
            }.into_any()
        }
    };
    view! { <div class="mb-4" data-source>{body}</div> }
}

#[component]
fn GuardrailTable(list: Vec<GuardrailRow>, files: bool) -> impl IntoView {
    if list.is_empty() {
        return view! {
            <EmptyState title="No guardrails in force">
                <p>"Every request is admitted. Guardrails appear here once they are in force, from files or a saved version."</p>
            </EmptyState>
        }
        .into_any();
    }
    // Bars are scaled to the busiest guardrail of the week.
    let busiest = list.iter().map(|g| g.trips_week).max().unwrap_or(0).max(1);
    view! {
        <DataTable caption="Guardrails in force" headers=vec!["Guardrail", "Mode", "Asks for", "Last change", "Tripped"]>
            {list.into_iter().map(|g| {
                // A bar in SVG attributes: the portal's CSP allows no inline styles.
                let width = (g.trips_week * 100 / busiest).max(i64::from(g.trips_week > 0)).to_string();
                let key = g.name.clone();
                view! {
                    <tr class=ROW data-guardrail-row=key>
                        <Cell label="Guardrail">
                            <code class="font-medium text-fg">{g.name.clone()}</code>
                            <span class="block text-xs text-muted">{g.description.clone()}</span>
                        </Cell>
                        <Cell label="Mode">{mode_badge(&g.mode)}</Cell>
                        <Cell label="Asks for"><Badge tone=action_tone(&g.action) label=action_label(&g.action) /></Cell>
                        <Cell label="Last change">
                            {match g.changed.clone() {
                                Some(c) => view! {
                                    <span class="text-fg" title=c.reason.clone() data-changed-in=c.number data-changed-by=c.author.clone()>"v" {c.number} " · " <RelativeTime at=c.at /></span>
                                    <span class="block text-xs text-muted">"by " {c.author} " — " {c.reason}</span>
                                }.into_any(),
                                None if files => view! { <span class="text-muted">"in the files"</span> }.into_any(),
                                None => view! { <span class="text-muted">"before the history kept"</span> }.into_any(),
                            }}
                        </Cell>
                        <Cell label="Tripped">
                            <span class="text-fg" data-trips-day=g.trips_day>{g.trips_day} " in 24 h"</span>
                            <span class="block text-xs text-muted" data-trips-week=g.trips_week>{g.trips_week} " in 7 days"</span>
                            <svg class="mt-1 block h-1.5 w-24" viewBox="0 0 100 6" preserveAspectRatio="none" aria-hidden="true">
                                <rect width="100" height="6" rx="3" class="fill-line" />
                                <rect width=width height="6" rx="3" class="fill-accent" data-bar />
                            </svg>
                        </Cell>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
    .into_any()
}

fn mode_badge(mode: &str) -> impl IntoView {
    match mode {
        "enforce" => view! { <Badge tone=Tone::Ok label="Enforced" /> },
        _ => view! { <Badge tone=Tone::Neutral label="Dry run" /> },
    }
}

fn action_label(action: &str) -> &'static str {
    match action {
        "deny" => "Refused",
        "warn" => "Warning",
        "audit" => "Recorded",
        "stepUp" => "Step-up",
        "approval" => "Approval",
        _ => "Other",
    }
}

fn action_tone(action: &str) -> Tone {
    match action {
        "deny" => Tone::Bad,
        "approval" | "stepUp" => Tone::Warn,
        _ => Tone::Info,
    }
}
