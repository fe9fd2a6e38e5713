//! What became of a challenge once it stopped waiting: the truth about its grant, and what to do next.

use leptos::prelude::*;

use crate::model::{ChallengeView, GrantView, Standing};
use crate::ui::{self, RelativeTime, Tone};

/// The outcome panel; its heading takes focus after a step-up on this page (`live.js`).
#[component]
pub fn Outcome(challenge: ChallengeView) -> impl IntoView {
    let c = challenge;
    let grant = c.grant.clone();
    let (tone, title, body): (Tone, String, AnyView) = match (c.standing, grant.clone()) {
        (Standing::Granted, Some(g)) => (
            Tone::Ok,
            "Granted — run your command again".to_owned(),
            view! {
                <p>"Run the same kubectl command again: the grant lets " {g.scope_text.clone()} " through."</p>
                <GrantFacts grant=g />
            }
            .into_any(),
        ),
        (Standing::Used, g) => (
            Tone::Neutral,
            "Used — this grant has let its request through".to_owned(),
            view! {
                <p>"Nothing is left to use. To make this change again, run the command again: kubectl prints a new link, and you confirm it here."</p>
                {g.map(|g| view! { <GrantFacts grant=g /> })}
            }
            .into_any(),
        ),
        (Standing::GrantExpired, g) => (
            Tone::Neutral,
            "The grant expired before it was used up".to_owned(),
            view! {
                <p>
                    {g.as_ref().map(|g| view! { "It expired " <RelativeTime at=g.expires_at /> ". " })}
                    "Run the command again to get a new link, and confirm it here."
                </p>
            }
            .into_any(),
        ),
        (Standing::Revoked, g) => {
            let revoked = g.as_ref().and_then(|g| g.revoked.clone());
            let by = revoked.as_ref().map(|r| r.by.clone()).unwrap_or_else(|| "an administrator".into());
            (
                Tone::Bad,
                format!("Revoked by {by}"),
                view! {
                    <p>
                        {revoked.map(|r| view! { "Revoked " <RelativeTime at=r.at /> ". " })}
                        "The webhook refuses this grant now, so a retry is denied with a new link. If you still need the change, confirm the new link, or ask "
                        <strong>{by}</strong> " why it was revoked."
                    </p>
                }
                .into_any(),
            )
        }
        (Standing::Rejected, _) => {
            let closed = c.approval.as_ref().and_then(|a| a.closed.clone());
            let by = closed.as_ref().map_or_else(|| "an approver".to_owned(), |x| x.by.clone());
            (
                Tone::Bad,
                format!("Rejected by {by}"),
                view! {
                    {closed.map(|x| view! {
                        <p>"Rejected " <RelativeTime at=x.at /> ": " <strong>"“" {x.reason} "”"</strong></p>
                    })}
                    <p>"Nothing was granted, and a retry is denied. If the change is still needed, talk to "
                        <strong>{by}</strong> ", then run the command again to ask anew."</p>
                }
                .into_any(),
            )
        }
        (Standing::Withdrawn, _) => (
            Tone::Neutral,
            "You withdrew this request".to_owned(),
            view! {
                <p>"Approvers can no longer decide it. Run the command again to ask anew."</p>
            }
            .into_any(),
        ),
        (Standing::Lapsed, _) if c.approval.as_ref().is_some_and(|a| a.confirmed_by.is_some()) => (
            Tone::Neutral,
            "Nobody approved it in time".to_owned(),
            view! {
                <p>"The request waited as long as its guardrail allows. Run the command again to ask anew, and tell the approvers it is coming."</p>
            }
            .into_any(),
        ),
        _ => (
            Tone::Neutral,
            "This link expired before it was confirmed".to_owned(),
            view! {
                <p>"Nothing was granted. Run the command again to get a new link, and confirm it within its time."</p>
            }
            .into_any(),
        ),
    };
    let jws = grant.filter(|g| g.standing == Standing::Granted).map(|g| view! {
        <details class="mt-4">
            <summary class="cursor-pointer rounded text-sm font-medium focus:outline-none focus-visible:ring-2 focus-visible:ring-ring">"Signed grant (JWS)"</summary>
            <p class="mt-2 text-xs">"Verifiable by anyone against the JWKS at /.well-known/jwks.json on the webhook listener."</p>
            <code class="mt-2 block break-all rounded bg-surface p-3 font-mono text-xs text-fg" data-grant-token>{g.token}</code>
        </details>
    });
    let grant_id = c.grant.as_ref().map(|g| g.id.clone());
    // Break glass is marked wherever the grant shows.
    let glass = c.grant.as_ref().is_some_and(|g| g.break_glass).then(|| view! {
        <p class="mt-3 flex flex-wrap items-center gap-2 text-sm text-fg-soft" data-break-glass>
            <ui::Badge tone=Tone::Bad label="Break glass" />
            "Issued without approvers, in an emergency. It is marked here, on the grants page, in the cluster's audit log and in Countersign's, and everyone notified of approvals is told."
        </p>
    });
    view! {
        <section class=format!("rounded-xl border p-5 shadow-sm sm:p-6 {}", tone.panel())
            aria-labelledby="outcome-heading" data-outcome=c.standing.as_str() data-grant-id=grant_id>
            <h2 id="outcome-heading" data-result-heading tabindex="-1" class="flex items-center gap-2 text-base font-semibold focus:outline-none">
                <OutcomeIcon standing=c.standing />
                {title}
            </h2>
            {glass}
            <div class="mt-2 space-y-3 text-sm text-fg-soft [&_strong]:text-fg">{body}</div>
            {jws}
        </section>
    }
}

#[component]
fn GrantFacts(grant: GrantView) -> impl IntoView {
    // A spent grant's expiry says nothing useful; when it was issued does.
    let (label, at) = match grant.standing {
        Standing::Granted => ("Expires", grant.expires_at),
        Standing::GrantExpired => ("Expired", grant.expires_at),
        _ => ("Issued", grant.created_at),
    };
    view! {
        <dl class="grid grid-cols-1 gap-3 sm:grid-cols-3">
            <div>
                <dt class="text-xs font-medium uppercase tracking-wide">{label}</dt>
                <dd class="mt-0.5 text-fg" data-grant-expires><RelativeTime at /></dd>
            </div>
            <div>
                <dt class="text-xs font-medium uppercase tracking-wide">"Uses"</dt>
                <dd class="mt-0.5 text-fg" data-grant-uses>{ui::uses_left(grant.uses_left)}</dd>
            </div>
            <div>
                <dt class="text-xs font-medium uppercase tracking-wide">"Covers"</dt>
                <dd class="mt-0.5 text-fg" data-grant-scope=grant.scope.clone()>{grant.scope_text.clone()}</dd>
            </div>
        </dl>
    }
}

#[component]
fn OutcomeIcon(standing: Standing) -> impl IntoView {
    let d = match standing {
        Standing::Granted => "M5 13l4 4L19 7",
        Standing::Revoked => "M18.4 5.6L5.6 18.4M5.6 5.6l12.8 12.8",
        _ => "M12 8v4l3 3M21 12a9 9 0 11-18 0 9 9 0 0118 0z",
    };
    view! {
        <svg aria-hidden="true" viewBox="0 0 24 24" class="h-5 w-5 shrink-0" fill="none" stroke="currentColor" stroke-width="2.5">
            <path stroke-linecap="round" stroke-linejoin="round" d=d />
        </svg>
    }
}
