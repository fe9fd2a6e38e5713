//! `/c/{code}`: what was attempted, and the step-up that turns it into a grant.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::auth::{oidc_problem, CeremonyStatus, LoginForm, PRIMARY_BUTTON};
use crate::csrf::CsrfField;
use crate::layout::{Card, ErrorNote, Loading, StatusBadge};
use crate::model::{ChallengeAccess, ChallengeView, DiffLine, GrantView};

/// The challenge as the signed-in person may see it.
#[server(input = GetUrl)]
pub async fn load_challenge(code: String) -> Result<ChallengeAccess, ServerFnError> {
    let viewer = crate::backend::viewer().await?;
    crate::backend::backend()?
        .challenge(viewer.as_ref(), &code)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// `/c/{code}`
#[component]
pub fn ChallengePage() -> impl IntoView {
    let params = use_params_map();
    let code = move || params.read().get("code").unwrap_or_default();
    let access = Resource::new(code, load_challenge);
    let query = use_query_map();
    // A refusal from the identity provider round trip, as a fixed reason code.
    let problem =
        move || {
            query.read().get("oidc").and_then(|r| oidc_problem(&r)).map(
                |m| view! { <div class="mb-6" data-oidc-problem><ErrorNote message=m /></div> },
            )
        };
    view! {
        {problem}
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match access.await {
                    Ok(ChallengeAccess::Owner(c)) => view! { <ChallengeDetail challenge=*c /> }.into_any(),
                    Ok(ChallengeAccess::SignInRequired) => view! {
                        <div class="mx-auto max-w-md">
                            <Card title="Sign in to review this request">
                                <p class="mb-4 text-sm text-slate-600">"Only the person who made the request (or, for a service account, its owners) can see and confirm it."</p>
                                <LoginForm next=format!("/c/{}", code()) />
                            </Card>
                        </div>
                    }.into_any(),
                    Ok(ChallengeAccess::NotYours { owner }) => view! {
                        <ErrorNote message=format!("Only {owner} can confirm this request. If that is you, sign out and sign in again as them.") />
                    }.into_any(),
                    Ok(ChallengeAccess::NotFound) => view! {
                        <ErrorNote message="No challenge has this code. Check the link kubectl printed; codes are 8 characters." />
                    }.into_any(),
                    Err(e) => view! { <ErrorNote message=e.to_string() /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Fact(#[prop(into)] label: String, #[prop(into)] value: String) -> impl IntoView {
    view! {
        <div class="min-w-0">
            <dt class="text-xs font-medium uppercase tracking-wide text-slate-600">{label}</dt>
            <dd class="mt-0.5 break-words font-mono text-sm text-slate-900">{if value.is_empty() { "—".to_owned() } else { value }}</dd>
        </div>
    }
}

#[component]
fn ChallengeDetail(challenge: ChallengeView) -> impl IntoView {
    let c = challenge;
    let pending = c.status == "pending";
    let title = format!("{} {}", c.operation, c.resource);
    let diff_code = c.code.clone();
    view! {
        <div class="space-y-6">
            <div class="flex flex-wrap items-start justify-between gap-3">
                <div>
                    <p class="text-sm font-medium text-indigo-700">"Guardrail " <span class="font-mono">{c.guardrail.clone()}</span></p>
                    <h1 class="mt-1 text-2xl font-semibold tracking-tight text-slate-900">{title}</h1>
                    <p class="mt-1 text-slate-700">{c.message.clone()}</p>
                </div>
                <StatusBadge status=c.status.clone() />
            </div>

            <Card title="What was attempted">
                <dl class="grid grid-cols-2 gap-4 sm:grid-cols-3">
                    <Fact label="Who" value=c.username.clone() />
                    <Fact label="Operation" value=c.operation.clone() />
                    <Fact label="Resource" value=c.resource.clone() />
                    <Fact label="Namespace" value=c.namespace.clone() />
                    <Fact label="Name" value=c.name.clone() />
                    <Fact label="Cluster" value=c.cluster.clone() />
                    {(!c.options.is_empty()).then(|| view! {
                        <Fact label="Options" value=c.options.join(", ") />
                    })}
                </dl>
                <Diff lines=c.diff.clone() truncated=c.diff_truncated code=diff_code />
            </Card>

            {match (c.grant.clone(), pending) {
                (Some(grant), _) => view! { <GrantIssued grant /> }.into_any(),
                (None, true) if c.confirm_with_idp => view! {
                    <Card title="Confirm it was you">
                        <p class="text-sm text-slate-700">
                            "Confirming issues a grant for " {c.scope_text.clone()} ". Your identity provider will ask you to sign in again with a second factor if your last sign-in is not strong or recent enough. "
                            "This link expires at " <strong>{c.expires_at.clone()}</strong> "."
                        </p>
                        <form method="post" action="/auth/oidc/stepup" class="mt-4">
                            <input type="hidden" name="code" value=c.code.clone() />
                            <CsrfField />
                            <button type="submit" class=PRIMARY_BUTTON>
                                <svg aria-hidden="true" viewBox="0 0 24 24" class="h-5 w-5" fill="none" stroke="currentColor" stroke-width="2">
                                    <path stroke-linecap="round" stroke-linejoin="round" d="M12 3l7 3v6c0 4.5-3 7.5-7 9-4-1.5-7-4.5-7-9V6l7-3z" />
                                </svg>
                                "Confirm with your identity provider"
                            </button>
                        </form>
                    </Card>
                }.into_any(),
                (None, true) => view! {
                    <Card title="Confirm it was you">
                        <p class="text-sm text-slate-700">
                            "Confirming issues a grant for " {c.scope_text.clone()} ". Your security key will ask for its PIN or your fingerprint. "
                            "This link expires at " <strong>{c.expires_at.clone()}</strong> "."
                        </p>
                        <form data-webauthn="confirm" data-code=c.code.clone() class="mt-4 space-y-3">
                            <button type="submit" class=PRIMARY_BUTTON>
                                <svg aria-hidden="true" viewBox="0 0 24 24" class="h-5 w-5" fill="none" stroke="currentColor" stroke-width="2">
                                    <path stroke-linecap="round" stroke-linejoin="round" d="M15 7a3 3 0 11-6 0 3 3 0 016 0zM12 10v11m0-5h3m-3 3h2" />
                                </svg>
                                "Confirm with security key"
                            </button>
                            <CeremonyStatus />
                        </form>
                    </Card>
                }.into_any(),
                (None, false) => view! {
                    <ErrorNote message="This challenge expired before it was confirmed. Retry the request to get a new link." />
                }.into_any(),
            }}
        </div>
    }
}

#[component]
fn Diff(lines: Vec<DiffLine>, truncated: bool, code: String) -> impl IntoView {
    if lines.is_empty() {
        return view! { <p class="mt-4 text-sm text-slate-600">"No object was sent with this request."</p> }.into_any();
    }
    view! {
        <details class="group mt-5" open>
            <summary class="cursor-pointer rounded text-sm font-medium text-slate-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600">
                "Change to the object"
            </summary>
            <pre class="mt-2 max-h-96 overflow-auto rounded-lg bg-slate-900 p-3 text-xs leading-5 text-slate-100" aria-label="Object diff, old to new">
                {lines.into_iter().map(|l| {
                    let class = match l.sign {
                        '+' => "block bg-emerald-900/60 text-emerald-100",
                        '-' => "block bg-red-900/60 text-red-100",
                        '@' => "block text-sky-300",
                        _ => "block text-slate-300",
                    };
                    let text = match l.sign {
                        '@' => l.text,
                        sign => format!("{sign} {}", l.text),
                    };
                    view! { <span class=class data-diff=l.sign.to_string()>{text}</span> }
                }).collect_view()}
            </pre>
            {truncated.then(|| view! {
                <p class="mt-2 text-sm font-medium text-amber-800" data-diff-truncated>
                    "Diff truncated: this change is too large to show here. Download the full objects to review all of it."
                </p>
            })}
            <p class="mt-2 text-sm">
                // A plain link: the browser downloads the objects as they stream.
                <a href=format!("/c/{code}/objects.json") download class="font-medium text-indigo-700 underline hover:text-indigo-900" data-objects-download>
                    "Download the full objects (JSON)"
                </a>
            </p>
        </details>
    }
    .into_any()
}

#[component]
fn GrantIssued(grant: GrantView) -> impl IntoView {
    view! {
        <section class="rounded-xl border border-emerald-300 bg-emerald-50 p-5 shadow-sm sm:p-6" aria-labelledby="grant-heading" data-grant-id=grant.id.clone()>
            <h2 id="grant-heading" class="flex items-center gap-2 text-base font-semibold text-emerald-900">
                <svg aria-hidden="true" viewBox="0 0 24 24" class="h-5 w-5" fill="none" stroke="currentColor" stroke-width="2.5">
                    <path stroke-linecap="round" stroke-linejoin="round" d="M5 13l4 4L19 7" />
                </svg>
                "Grant issued — retry your command"
            </h2>
            <p class="mt-2 text-sm text-emerald-900">
                "Run the same kubectl command again. The grant covers " {grant.scope_text.clone()} "."
            </p>
            <dl class="mt-4 grid grid-cols-1 gap-4 sm:grid-cols-3">
                <div><dt class="text-xs font-medium uppercase tracking-wide text-emerald-800">"Expires"</dt><dd class="mt-0.5 text-sm text-emerald-950" data-grant-expires>{grant.expires_at.clone()}</dd></div>
                <div><dt class="text-xs font-medium uppercase tracking-wide text-emerald-800">"Scope"</dt><dd class="mt-0.5 text-sm text-emerald-950" data-grant-scope>{grant.scope.clone()}</dd></div>
                <div><dt class="text-xs font-medium uppercase tracking-wide text-emerald-800">"Uses"</dt><dd class="mt-0.5 text-sm text-emerald-950">{grant.uses.clone()}</dd></div>
            </dl>
            <details class="mt-4">
                <summary class="cursor-pointer rounded text-sm font-medium text-emerald-900 focus:outline-none focus-visible:ring-2 focus-visible:ring-emerald-700">"Signed grant (JWS)"</summary>
                <p class="mt-2 text-xs text-emerald-900">"Verifiable by anyone against the JWKS at /.well-known/jwks.json on the webhook listener."</p>
                <code class="mt-2 block break-all rounded bg-white p-3 font-mono text-xs text-slate-800" data-grant-token>{grant.token.clone()}</code>
            </details>
        </section>
    }
}
