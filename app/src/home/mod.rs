//! `/`: your requests, a first-run guide for a new administrator, or the way in.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::auth::LoginForm;
use crate::model::{ChallengeSummary, Standing, Viewer};
use crate::ui::{
    self, error_text, Card, EmptyState, ErrorState, Loading, PageHeader, RelativeTime,
    StandingBadge,
};

/// The viewer and their recent challenges (`None` when signed out).
#[server(input = GetUrl)]
pub async fn my_challenges() -> Result<Option<(Viewer, Vec<ChallengeSummary>)>, ServerFnError> {
    let Some(viewer) = crate::backend::viewer().await? else {
        return Ok(None);
    };
    let list = crate::backend::backend()?
        .challenges_of(&viewer)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    Ok(Some((viewer, list)))
}

/// `/`
#[component]
pub fn HomePage() -> impl IntoView {
    // Refetched when an approver decides one of them, without a reload.
    let data = Resource::new(|| (), |_| my_challenges());
    // What waits for the viewer's approval: the same count as the header's badge.
    let waiting = Resource::new(|| (), |_| crate::approvals::approvals_waiting());
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                let to_approve = waiting.await.unwrap_or(0);
                match data.await {
                    Ok(Some((viewer, list))) => view! { <Dashboard viewer list to_approve /> }.into_any(),
                    Ok(None) => view! { <Welcome /> }.into_any(),
                    Err(e) => view! {
                        <ErrorState title="Your requests could not be loaded"
                            actions=view! { <a href="/" rel="external" class=ui::PRIMARY>"Try again"</a> }.into_any()>
                            <p>{error_text(&e)}</p>
                        </ErrorState>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Welcome() -> impl IntoView {
    view! {
        <leptos_meta::Title text="Countersign" />
        <div class="grid gap-8 md:grid-cols-2 md:items-start">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight text-fg sm:text-3xl">"Trust on demand."</h1>
                <p class="mt-3 text-fg-soft">
                    "When a kubectl, Helm or CI request trips a guardrail, Countersign denies it with a link. Open the link, confirm with your passkey, and retry: the exact same request goes through, once."
                </p>
                <ol class="mt-5 space-y-2 text-sm text-fg-soft">
                    <li><span class="font-semibold text-link">"1. "</span>"kubectl prints " <code class="rounded bg-sunken px-1">"step-up required … confirm at …/c/CODE"</code></li>
                    <li><span class="font-semibold text-link">"2. "</span>"You check what was attempted and confirm with your key."</li>
                    <li><span class="font-semibold text-link">"3. "</span>"You retry; a short-lived grant bound to that request lets it through."</li>
                </ol>
                <div class="mt-6 rounded-lg border border-line bg-surface p-4 text-sm text-fg-soft" data-no-account>
                    <h2 class="font-semibold text-fg">"No account yet?"</h2>
                    <p class="mt-1">
                        "Accounts are made by invitation: ask your Countersign administrator for a setup link (they run "
                        <code class="rounded bg-sunken px-1">"countersign user invite"</code>
                        "). If your organisation signs in through its identity provider, use that button instead."
                    </p>
                </div>
            </div>
            <Card title="Sign in">
                <LoginForm next="/" />
            </Card>
        </div>
    }
}

#[component]
fn Dashboard(viewer: Viewer, list: Vec<ChallengeSummary>, to_approve: usize) -> impl IntoView {
    let empty = list.is_empty();
    let admin = viewer.role == "admin";
    let waiting = list
        .iter()
        .filter(|c| c.standing == Standing::Waiting)
        .count();
    let lead = match waiting {
        0 => "Requests that asked you for a step-up, newest first.".to_owned(),
        1 => "1 request is waiting for your step-up.".to_owned(),
        n => format!("{n} requests are waiting for your step-up."),
    };
    view! {
        <PageHeader title=format!("Hello, {}", viewer.display_name) lead />
        <div class="space-y-6">
            {(admin && empty).then(|| view! { <FirstRun /> })}
            {(to_approve > 0).then(|| view! {
                <div class="flex flex-wrap items-center justify-between gap-3 rounded-xl border-2 border-warn-line bg-surface p-4 shadow-sm" data-to-approve=to_approve.to_string()>
                    <p class="text-sm font-medium text-fg">
                        {if to_approve == 1 { "1 request waits for your approval.".to_owned() } else { format!("{to_approve} requests wait for your approval.") }}
                    </p>
                    <a href="/approvals" class=ui::PRIMARY>"Review"</a>
                </div>
            })}
            <Card title="Your requests">
                {if empty {
                    view! {
                        <EmptyState title="You have no requests of your own">
                            <p>
                                "When a guardrail asks " <code class="rounded bg-sunken px-1">{viewer.username.clone()}</code>
                                " for a step-up, kubectl prints a link like " <code class="rounded bg-sunken px-1">"/c/K7Q2M9XD"</code>
                                ". The request also shows up here."
                            </p>
                        </EmptyState>
                    }.into_any()
                } else {
                    view! {
                        <ul class="divide-y divide-line" aria-label="Your requests" data-requests>
                            {list.into_iter().map(|c| view! { <RequestRow c /> }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </Card>
        </div>
    }
}

#[component]
fn RequestRow(c: ChallengeSummary) -> impl IntoView {
    view! {
        <li class="relative flex flex-wrap items-center justify-between gap-x-4 gap-y-1 py-3 first:pt-0 last:pb-0" data-request=c.code.clone()>
            <div class="min-w-0">
                <a href=format!("/c/{}", c.code) class=format!("font-medium text-fg hover:text-link {}", ui::FOCUS)>
                    {c.title}
                </a>
                <p class="mt-0.5 text-xs text-muted">
                    {c.place} " · " <RelativeTime at=c.created_at /> " · guardrail " {c.guardrail}
                    " · " <code>{c.code.clone()}</code>
                </p>
            </div>
            <StandingBadge standing=c.standing />
        </li>
    }
}

/// What a new administrator does next.
#[component]
fn FirstRun() -> impl IntoView {
    let steps: [(&str, &str, &str); 3] = [
        (
            "Connect the cluster",
            "Send the API server the requests your guardrails match. The configuration carries this Countersign's CA bundle:",
            "countersign webhook-config --policies policies | kubectl apply -f -",
        ),
        (
            "Invite people",
            "Each invitation prints a one-time setup link for one Kubernetes username; groups make approvers (the library's cluster-admin guardrail asks platform-oncall and platform-leads):",
            "countersign user invite --role approver --username bob@example.com --group platform-oncall",
        ),
        (
            "Look at the guardrails",
            "They are YAML files in the policies folder; check them and run their test suites:",
            "countersign policy check policies && countersign policy test policies",
        ),
    ];
    view! {
        <Card title="Get started" class="border-accent">
            <p class="text-sm text-fg-soft">"Your account is ready. Three steps put Countersign in front of your cluster:"</p>
            <ol class="mt-4 space-y-4" data-first-run>
                {steps.into_iter().enumerate().map(|(i, (title, text, command))| view! {
                    <li class="flex gap-3">
                        <span aria-hidden="true" class="flex h-7 w-7 shrink-0 items-center justify-center rounded-full bg-accent-soft text-sm font-semibold text-link">{i + 1}</span>
                        <div class="min-w-0">
                            <h3 class="text-sm font-semibold text-fg">{title}</h3>
                            <p class="mt-0.5 text-sm text-muted">{text}</p>
                            <pre tabindex="0" class="mt-2 overflow-x-auto rounded-md bg-code px-3 py-2 text-xs text-code-fg focus:outline-none focus-visible:ring-2 focus-visible:ring-ring"><code>{command}</code></pre>
                        </div>
                    </li>
                }).collect_view()}
            </ol>
        </Card>
    }
}
