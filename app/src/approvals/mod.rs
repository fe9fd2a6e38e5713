//! `/approvals`: what waits for the viewer's groups, and `/approvals/{code}`: one request under
//! review, approved or rejected with the approver's own security key.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::auth::LoginForm;
use crate::challenges::ChallengeDetail;
use crate::model::{GlassItem, QueueAccess, QueueItem, ReviewAccess};
use crate::ui::{
    self, error_text, Badge, Card, EmptyState, ErrorState, Loading, PageHeader, RelativeTime, Tone,
};

/// The viewer's approvals queue.
#[server(endpoint = "approval_queue", input = GetUrl)]
pub async fn approval_queue() -> Result<QueueAccess, ServerFnError> {
    use crate::backend::{backend, session};
    backend()?
        .approval_queue(&session().await?, true)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// One request under review.
#[server(endpoint = "approval_review", input = GetUrl)]
pub async fn approval_review(code: String) -> Result<ReviewAccess, ServerFnError> {
    use crate::backend::{backend, session};
    let viewer = crate::backend::viewer().await?;
    backend()?
        .approval_review(&session().await?, viewer.as_ref(), &code)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// How many requests wait for the viewer now (the header's badge).
#[server(endpoint = "approvals_waiting", input = GetUrl)]
pub async fn approvals_waiting() -> Result<usize, ServerFnError> {
    use crate::backend::{backend, session};
    // The badge on every page: the waiting requests only, not the day's break glass.
    let queue = backend()?
        .approval_queue(&session().await?, false)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    Ok(match queue {
        QueueAccess::Queue { waiting, .. } => waiting.iter().filter(|i| i.needs_me).count(),
        _ => 0,
    })
}

/// `/approvals`
#[component]
pub fn QueuePage() -> impl IntoView {
    let queue = Resource::new(|| (), |_| approval_queue());
    let query = use_query_map();
    let all = move || query.read().get("show").as_deref() == Some("all");
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match queue.await {
                    Ok(QueueAccess::Queue { waiting: items, broken_glass }) => {
                        let mine = items.iter().filter(|i| i.needs_me).count();
                        let total = items.len();
                        let shown: Vec<QueueItem> = if all() { items } else { items.into_iter().filter(|i| i.needs_me).collect() };
                        view! {
                            <PageHeader title="Approvals" lead="Requests waiting for a group you are in, newest first. Each decision takes your own passkey." />
                            <nav aria-label="Filter" class="mb-4 flex gap-2">
                                <a href="/approvals" aria-current=(!all()).then_some("page") class=FILTER>{format!("Needs me ({mine})")}</a>
                                <a href="/approvals?show=all" aria-current=all().then_some("page") class=FILTER>{format!("All waiting ({total})")}</a>
                            </nav>
                            {if shown.is_empty() {
                                view! {
                                    <Card>
                                        <EmptyState title=if all() { "Nothing is waiting for approval" } else { "Nothing needs you right now" }>
                                            <p>"When someone's change needs your group's approval, it appears here, and the badge in the header counts it."</p>
                                        </EmptyState>
                                    </Card>
                                }.into_any()
                            } else {
                                view! {
                                    <ul class="space-y-3" aria-label="Waiting requests" data-queue>
                                        {shown.into_iter().map(|item| view! { <QueueRow item /> }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                            {(!broken_glass.is_empty()).then(|| view! { <BrokenGlass items=broken_glass /> })}
                        }.into_any()
                    }
                    Ok(QueueAccess::SignInRequired) => view! {
                        <div class="mx-auto max-w-md">
                            <PageHeader title="Sign in to review requests" lead="Approvers and administrators review escalations here." />
                            <Card><LoginForm next="/approvals" /></Card>
                        </div>
                    }.into_any(),
                    Ok(QueueAccess::Forbidden) => view! {
                        <ErrorState title="Approvals are for approvers and administrators"
                            actions=view! { <a href="/" class=ui::PRIMARY>"Go to your requests"</a> }.into_any()>
                            <p>"Your role does not review other people's requests. Ask an administrator if it should."</p>
                        </ErrorState>
                    }.into_any(),
                    Err(e) => view! {
                        <ErrorState title="The queue could not be loaded"
                            actions=view! { <a href="/approvals" rel="external" class=ui::PRIMARY>"Try again"</a> }.into_any()>
                            <p>{error_text(&e)}</p>
                        </ErrorState>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

const FILTER: &str = "rounded-full border border-line px-3 py-1 text-sm font-medium text-fg-soft hover:bg-sunken aria-[current=page]:border-accent aria-[current=page]:bg-accent-soft aria-[current=page]:text-link focus:outline-none focus-visible:ring-2 focus-visible:ring-ring";

/// What was let through without approvers lately: loud, so approvers look at it afterwards.
#[component]
fn BrokenGlass(items: Vec<GlassItem>) -> impl IntoView {
    view! {
        <section class="mt-8" aria-labelledby="glass-heading" data-broken-glass>
            <h2 id="glass-heading" class="mb-3 text-base font-semibold text-fg">"Break glass in the last 24 hours"</h2>
            <ul class="space-y-3">
                {items.into_iter().map(|g| {
                    let href = format!("/approvals/{}", g.code);
                    let code = g.code.clone();
                    view! {
                        <li class="rounded-xl border border-bad-line bg-surface p-4 shadow-sm" data-glass-item=code>
                            <div class="flex flex-wrap items-center gap-2">
                                <Badge tone=Tone::Bad label="Break glass" />
                                <a href=href class="font-semibold text-link hover:underline">{g.title}</a>
                                <span class="text-sm text-muted">{g.place}</span>
                            </div>
                            <p class="mt-1 text-sm text-fg-soft">
                                <strong class="text-fg">{g.by.clone()}</strong>
                                {if g.by == g.requester { " approved their own request".to_owned() } else { format!(" approved {}'s request", g.requester) }}
                                " without approvers " <RelativeTime at=g.at /> ": “" {g.reason} "”"
                            </p>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}

#[component]
fn QueueRow(item: QueueItem) -> impl IntoView {
    let href = format!("/approvals/{}", item.code);
    view! {
        <li class="rounded-xl border border-line bg-surface p-4 shadow-sm sm:p-5" data-queue-item=item.code.clone()>
            <div class="flex flex-wrap items-start justify-between gap-2">
                <div class="min-w-0">
                    <a href=href.clone() class=format!("text-base font-semibold text-fg hover:underline {}", ui::FOCUS)>{item.title.clone()}</a>
                    <p class="text-sm text-fg-soft">
                        <strong class="font-medium text-fg">{item.requester.clone()}</strong> " · " {item.place.clone()} " · "
                        <RelativeTime at=item.created_at />
                    </p>
                </div>
                {if item.needs_me {
                    view! { <Badge tone=Tone::Warn label="Needs you" /> }.into_any()
                } else {
                    view! { <Badge tone=Tone::Neutral label="Waiting" /> }.into_any()
                }}
            </div>
            {(!item.reason.is_empty()).then(|| view! {
                <p class="mt-2 line-clamp-2 whitespace-pre-line text-sm text-fg">"“" {item.reason.clone()} "”"</p>
            })}
            <p class="mt-2 text-xs text-muted">
                "Guardrail " <code>{item.guardrail.clone()}</code>
                {(!item.waiting_for.is_empty()).then(|| format!(" · still needs {}", item.waiting_for.join(" and ")))}
                {(!item.approved_by.is_empty()).then(|| format!(" · approved by {}", item.approved_by.join(", ")))}
                " · stops waiting " <RelativeTime at=item.expires_at />
            </p>
            {item.not_mine.clone().map(|why| view! { <p class="mt-1 text-xs text-muted">{why}</p> })}
            <a href=href class=format!("mt-3 {}", if item.needs_me { ui::PRIMARY } else { ui::SECONDARY_SMALL })>
                {if item.needs_me { "Review" } else { "Open" }}
            </a>
        </li>
    }
}

/// `/approvals/{code}`
#[component]
pub fn ReviewPage() -> impl IntoView {
    let params = use_params_map();
    let code = move || params.read().get("code").unwrap_or_default();
    let review = Resource::new(code, approval_review);
    view! {
        <crate::auth::OidcProblem title="Your decision was not recorded" />
        <Transition fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match review.await {
                    Ok(ReviewAccess::Review { challenge, may_decide }) => view! {
                        <p class="mb-4"><a href="/approvals" class=ui::LINK>"← Approvals"</a></p>
                        <ChallengeDetail challenge=*challenge review=may_decide />
                    }.into_any(),
                    Ok(ReviewAccess::SignInRequired) => view! {
                        <div class="mx-auto max-w-md">
                            <PageHeader title="Sign in to review this request" lead="Approvers and administrators review escalations." />
                            <Card><LoginForm next=format!("/approvals/{}", code()) /></Card>
                        </div>
                    }.into_any(),
                    Ok(ReviewAccess::Forbidden) => view! {
                        <ErrorState title="Approvals are for approvers and administrators"
                            actions=view! { <a href="/" class=ui::PRIMARY>"Go to your requests"</a> }.into_any()>
                            <p>"Your role does not review other people's requests."</p>
                        </ErrorState>
                    }.into_any(),
                    Ok(ReviewAccess::NotFound) => view! {
                        <crate::layout::NotFoundStatus />
                        <ErrorState title="No request waits for your review here"
                            actions=view! { <a href="/approvals" class=ui::PRIMARY>"Go to approvals"</a> }.into_any()>
                            <p>"The code is wrong, the request needs no approval, or it is for groups you are not in."</p>
                        </ErrorState>
                    }.into_any(),
                    Err(e) => view! {
                        <ErrorState title="This request could not be loaded"
                            actions=view! { <a href=format!("/approvals/{}", code()) rel="external" class=ui::PRIMARY>"Try again"</a> }.into_any()>
                            <p>{error_text(&e)}</p>
                        </ErrorState>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
