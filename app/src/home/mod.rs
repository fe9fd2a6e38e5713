//! `/`: your challenges, or the way in.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::auth::LoginForm;
use crate::layout::{Card, ErrorNote, Loading, StatusBadge};
use crate::model::{ChallengeSummary, Viewer};

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
    let data = Resource::new(|| (), |_| my_challenges());
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(Some((viewer, list))) => view! { <Dashboard viewer list /> }.into_any(),
                    Ok(None) => view! { <Welcome /> }.into_any(),
                    Err(e) => view! { <ErrorNote message=e.to_string() /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Welcome() -> impl IntoView {
    view! {
        <div class="grid gap-8 md:grid-cols-2 md:items-start">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight text-slate-900 sm:text-3xl">"Trust on demand."</h1>
                <p class="mt-3 text-slate-700">
                    "When a kubectl, Helm or CI request trips a guardrail, Countersign denies it with a link. Open the link, touch your security key, and retry: the exact same request goes through, once."
                </p>
                <ol class="mt-5 space-y-2 text-sm text-slate-700">
                    <li><span class="font-semibold text-indigo-700">"1. "</span>"kubectl prints " <code class="rounded bg-slate-100 px-1">"step-up required … confirm at …/c/CODE"</code></li>
                    <li><span class="font-semibold text-indigo-700">"2. "</span>"You check what was attempted and confirm with your key."</li>
                    <li><span class="font-semibold text-indigo-700">"3. "</span>"You retry; a short-lived grant bound to that request lets it through."</li>
                </ol>
            </div>
            <Card title="Sign in">
                <LoginForm next="/" />
            </Card>
        </div>
    }
}

#[component]
fn Dashboard(viewer: Viewer, list: Vec<ChallengeSummary>) -> impl IntoView {
    let empty = list.is_empty();
    view! {
        <h1 class="text-2xl font-semibold tracking-tight text-slate-900">"Hello, " {viewer.display_name}</h1>
        <p class="mt-1 text-sm text-slate-600">"Requests of " <code class="rounded bg-slate-100 px-1">{viewer.username}</code> " that asked for a step-up."</p>
        <div class="mt-6">
            <Card title="Your challenges">
                {if empty {
                    view! {
                        <div class="rounded-lg border border-dashed border-slate-300 p-6 text-center">
                            <p class="font-medium text-slate-800">"Nothing is waiting for you."</p>
                            <p class="mt-1 text-sm text-slate-600">
                                "When a guardrail asks for a step-up, kubectl prints a link like " <code class="rounded bg-slate-100 px-1">"/c/K7Q2M9XD"</code> ". It will also show up here."
                            </p>
                        </div>
                    }.into_any()
                } else {
                    view! {
                        <ul class="divide-y divide-slate-200">
                            {list.into_iter().map(|c| view! {
                                <li class="flex flex-wrap items-center justify-between gap-2 py-3">
                                    <div class="min-w-0">
                                        <a href=format!("/c/{}", c.code) class="font-medium text-indigo-700 underline-offset-2 hover:underline focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600">{c.title}</a>
                                        <p class="text-xs text-slate-600">"guardrail " {c.guardrail} " · " {c.created_at} " · " <code>{c.code.clone()}</code></p>
                                    </div>
                                    <StatusBadge status=c.status />
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </Card>
        </div>
    }
}
