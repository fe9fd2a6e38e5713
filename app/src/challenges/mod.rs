//! `/c/{code}`: what was attempted, the decision first, and the step-up that turns it into a grant.

mod approval;
mod outcome;

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos_router::hooks::use_params_map;

use crate::auth::{CeremonyStatus, LoginForm, OidcProblem};
use crate::csrf::CsrfField;
use crate::model::{ChallengeAccess, ChallengeView, FieldChange, Standing};
use crate::ui::{
    self, error_text, Card, Diff, ErrorState, Loading, PageHeader, RelativeTime, StandingBadge,
};
use outcome::Outcome;

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
    // `live.js` refreshes the page in place when an approver decides or time runs out.
    let access = Resource::new(code, load_challenge);
    view! {
        <OidcProblem title="The identity provider did not confirm it" />
        <Transition fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match access.await {
                    Ok(ChallengeAccess::Owner(c)) => view! { <ChallengeDetail challenge=*c /> }.into_any(),
                    Ok(ChallengeAccess::SignInRequired) => view! {
                        <div class="mx-auto max-w-md">
                            <PageHeader title="Sign in to review this request"
                                lead="Only the person who made the request (or, for a service account, its owners) can see and confirm it." />
                            <Card><LoginForm next=format!("/c/{}", code()) /></Card>
                        </div>
                    }.into_any(),
                    Ok(ChallengeAccess::NotYours { owner }) => view! {
                        <ErrorState title="This request is someone else's"
                            actions=view! {
                                <form method="post" action="/auth/logout">
                                    <CsrfField />
                                    <button type="submit" class=ui::SECONDARY>"Sign out"</button>
                                </form>
                                <a href="/" class=ui::PRIMARY>"Go to your requests"</a>
                            }.into_any()>
                            <p>{format!("Only {owner} can confirm this request.")} " If that is you, sign out and sign in as them; otherwise send them the link."</p>
                        </ErrorState>
                    }.into_any(),
                    Ok(ChallengeAccess::NotFound) => view! {
                        <crate::layout::NotFoundStatus />
                        <ErrorState title="No request has this code"
                            actions=view! { <a href="/" class=ui::PRIMARY>"Go to your requests"</a> }.into_any()>
                            <p>"Check the link kubectl printed: codes are 8 letters and digits, like K7Q2M9XD. Old requests are deleted after the retention period."</p>
                        </ErrorState>
                    }.into_any(),
                    Err(e) => view! {
                        <ErrorState title="This request could not be loaded"
                            actions=view! { <a href=format!("/c/{}", code()) rel="external" class=ui::PRIMARY>"Try again"</a> }.into_any()>
                            <p>{error_text(&e)}</p>
                        </ErrorState>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A request's page: what was asked, the step that comes next, and the request in full. With
/// `review`, an approver's view of it (`Err` says why they may not decide).
#[component]
pub fn ChallengeDetail(
    challenge: ChallengeView,
    #[prop(optional)] review: Option<Result<(), String>>,
) -> impl IntoView {
    let c = challenge;
    let action = ui::lowercase_first(&c.title);
    // Children are closures that take what they use: they get their own copies.
    let (who, place, cluster, message) = (
        c.username.clone(),
        c.place.clone(),
        c.cluster.clone(),
        c.message.clone(),
    );
    let (changes, more, operation) = (c.changes.clone(), c.more_changes, c.operation.clone());
    let details = c.clone();
    view! {
        <div class="space-y-6" data-challenge=c.code.clone() data-standing=c.standing.as_str()>
            <PageHeader title=c.title.clone() eyebrow=guardrails_label(&c.guardrail)
                aside=view! { <StandingBadge standing=c.standing /> }.into_any()>
                <p class="mt-2 max-w-2xl text-fg-soft" data-summary>
                    <strong class="font-semibold text-fg">{who}</strong>
                    {format!(" asked to {action} {place} on cluster ")}
                    <strong class="font-semibold text-fg">{cluster}</strong>
                    ", " <RelativeTime at=c.created_at /> "."
                </p>
                <Changes changes more operation />
                <p class="mt-3 max-w-2xl text-sm text-muted">
                    <span class="font-medium text-fg-soft">"Why it asks: "</span>{message}
                </p>
            </PageHeader>

            {match (review, c.standing, c.approval.is_some()) {
                (Some(may_decide), _, _) => view! { <approval::DecideStep challenge=c.clone() may_decide /> }.into_any(),
                (None, Standing::Waiting, true) => view! { <approval::AskStep challenge=c.clone() /> }.into_any(),
                (None, Standing::Waiting, false) => view! { <ConfirmStep challenge=c.clone() /> }.into_any(),
                (None, Standing::AwaitingApproval, _) => view! { <approval::WaitingStep challenge=c.clone() /> }.into_any(),
                (None, _, _) => view! {
                    <Outcome challenge=c.clone() />
                    {c.approval.clone().map(|a| view! {
                        <ui::Card title="Approvals"><approval::Approvers approval=a standing=c.standing /></ui::Card>
                    })}
                }.into_any(),
            }}

            <Card title="The request in full">
                <dl class="grid grid-cols-2 gap-4 sm:grid-cols-3">
                    <Fact label="Kubernetes user" value=details.username.clone() />
                    <Fact label="Operation" value=details.operation.clone() />
                    <Fact label="Resource" value=details.resource.clone() />
                    <Fact label="Namespace" value=details.namespace.clone() />
                    <Fact label="Name" value=details.name.clone() />
                    <Fact label="Cluster name" value=details.cluster.clone() />
                    {(!details.options.is_empty()).then(|| view! {
                        <Fact label="Options" value=details.options.join(", ") />
                    })}
                    <Fact label="Code" value=details.code.clone() />
                </dl>
                <h3 class="mt-6 text-sm font-semibold text-fg">"Change to the object"</h3>
                <Diff lines=details.diff.clone() truncated=details.diff_truncated code=details.code.clone() />
            </Card>
        </div>
    }
}

/// `Guardrail a`, or `Guardrails a, b` when one request tripped several.
fn guardrails_label(names: &str) -> String {
    if names.contains(',') {
        format!("Guardrails {names}")
    } else {
        format!("Guardrail {names}")
    }
}

/// The changed fields, as "path old → new".

#[component]
fn Changes(changes: Vec<FieldChange>, more: usize, operation: String) -> impl IntoView {
    if changes.is_empty() {
        let text = match operation.as_str() {
            "CREATE" => "Creates the object shown below.",
            "DELETE" => "Deletes the object.",
            "CONNECT" => "Opens a connection; no object changes.",
            _ => "No field of the object changes.",
        };
        return view! { <p class="mt-3 text-sm text-fg-soft" data-changes>{text}</p> }.into_any();
    }
    view! {
        <ul class="mt-3 flex flex-wrap gap-2" aria-label="What changes" data-changes>
            {changes.into_iter().map(|f| {
                let path = f.path.clone();
                view! {
                <li class="max-w-full rounded-md border border-line bg-surface px-2.5 py-1 font-mono text-xs text-fg-soft break-all" data-change=path>
                    <span class="text-muted">{f.path}</span>" "
                    {match (f.old, f.new) {
                        (Some(o), Some(n)) => view! {
                            <span class="text-bad line-through decoration-1">{o}</span>
                            <span aria-label="becomes">" → "</span>
                            <span class="font-semibold text-ok">{n}</span>
                        }.into_any(),
                        (None, Some(n)) => view! { <span class="text-ok">"added: " <span class="font-semibold">{n}</span></span> }.into_any(),
                        (Some(o), None) => view! { <span class="text-bad">"removed (was " {o} ")"</span> }.into_any(),
                        (None, None) => ().into_any(),
                    }}
                </li>
            }}).collect_view()}
            {(more > 0).then(|| view! {
                <li class="px-1 py-1 text-xs text-muted">{format!("and {more} more (see the diff)")}</li>
            })}
        </ul>
    }
    .into_any()
}

#[component]
fn Fact(#[prop(into)] label: String, #[prop(into)] value: String) -> impl IntoView {
    view! {
        <div class="min-w-0">
            <dt class="text-xs font-medium uppercase tracking-wide text-muted">{label}</dt>
            <dd class="mt-0.5 break-words font-mono text-sm text-fg">{if value.is_empty() { "—".to_owned() } else { value }}</dd>
        </div>
    }
}

/// The step-up, placed before the details so it is on the first screen.
#[component]
fn ConfirmStep(challenge: ChallengeView) -> impl IntoView {
    let c = challenge;
    let icon = view! {
        <svg aria-hidden="true" viewBox="0 0 24 24" class="h-5 w-5" fill="none" stroke="currentColor" stroke-width="2">
            <path stroke-linecap="round" stroke-linejoin="round" d="M12 3l7 3v6c0 4.5-3 7.5-7 9-4-1.5-7-4.5-7-9V6l7-3z" />
        </svg>
    };
    let form = if c.confirm_with_idp {
        view! {
            <form method="post" action="/auth/oidc/stepup" class="mt-4">
                <input type="hidden" name="code" value=c.code.clone() />
                <CsrfField />
                <button type="submit" class=ui::PRIMARY>{icon}"Confirm with your identity provider"</button>
            </form>
        }
        .into_any()
    } else {
        view! {
            <form data-webauthn="confirm" data-code=c.code.clone() data-in-place="yes" class="mt-4 space-y-3">
                <button type="submit" class=ui::PRIMARY>{icon}"Confirm with passkey"</button>
                <CeremonyStatus />
            </form>
        }
        .into_any()
    };
    let how = if c.confirm_with_idp {
        "Your identity provider will ask you to sign in again with a second factor if your last sign-in is not strong or recent enough."
    } else {
        "Your passkey or security key will ask for its PIN, your fingerprint or your face."
    };
    view! {
        <section class="rounded-xl border-2 border-accent bg-surface p-5 shadow-sm sm:p-6" aria-labelledby="confirm-heading" data-confirm-step>
            <h2 id="confirm-heading" class="text-base font-semibold text-fg">"Was this you? Confirm to let the retry through"</h2>
            <p class="mt-1 text-sm text-fg-soft">
                "Confirming issues a short-lived grant for " {c.scope_text.clone()} ". " {how}
                " The link expires " <RelativeTime at=c.expires_at /> "."
            </p>
            {form}
        </section>
    }
}
