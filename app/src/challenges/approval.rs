//! What an approval guardrail adds to a request's page: asking with a reason, who must approve
//! and who has, withdrawing, breaking the glass, and (for approvers) approving or rejecting.

use leptos::prelude::*;

use crate::auth::CeremonyStatus;
use crate::csrf::CsrfField;
use crate::model::{ApprovalView, ChallengeView, Standing};
use crate::ui::{self, ConfirmDialog, Field, RelativeTime};

fn reason_help(a: &ApprovalView) -> String {
    match (a.reason_required, a.reason_min) {
        (true, n) if n > 1 => {
            format!("Required, at least {n} characters. Approvers read it before they decide.")
        }
        (true, _) => "Required. Approvers read it before they decide.".to_owned(),
        _ => "Optional. Approvers read it before they decide.".to_owned(),
    }
}

/// The requester's first step: say why, and ask with a passkey step-up.
#[component]
pub fn AskStep(challenge: ChallengeView) -> impl IntoView {
    let c = challenge;
    let a = c.approval.clone().unwrap_or_default();
    let lists = a
        .lists
        .iter()
        .map(|l| l.groups_text())
        .collect::<Vec<_>>()
        .join(" and ");
    let min = (a.reason_min > 0).then(|| a.reason_min.to_string());
    let help = reason_help(&a);
    let glass = a.break_glass.clone().filter(|_| a.may_break_glass);
    let ttl_min = a.break_glass_ttl_secs / 60;
    let glass_code = c.code.clone();
    let earlier = a.previous_rejection.clone().map(|r| {
        view! {
            <div class="mb-4" data-previous-rejection>
                <ui::Alert tone=ui::Tone::Warn title="This change was rejected a little earlier">
                    <strong>{r.by}</strong> " rejected it " <RelativeTime at=r.at /> ": “" {r.reason} "”. "
                    "Asking again sends it to the approvers anew; say what changed."
                </ui::Alert>
            </div>
        }
    });
    view! {
        <section class="rounded-xl border-2 border-accent bg-surface p-5 shadow-sm sm:p-6" aria-labelledby="confirm-heading" data-confirm-step data-ask-step>
            {earlier}
            <h2 id="confirm-heading" class="text-base font-semibold text-fg">"This change needs approval: ask for it"</h2>
            <p class="mt-1 text-sm text-fg-soft">
                "Approvers from " <strong class="text-fg">{lists}</strong> " must each confirm with their own passkey. "
                "Once they have, the retry is let through once. The request stops waiting " <RelativeTime at=c.expires_at /> " (" {ui::utc_clock(c.expires_at)} ")."
            </p>
            {if c.confirm_with_idp {
                // Signed in through the identity provider: it vouches for the requester again
                // (with a second factor) and the request goes to its approvers on the way back.
                view! {
                    <form method="post" action="/auth/oidc/stepup" class="mt-4 space-y-3" data-ask-with-idp>
                        <input type="hidden" name="code" value=c.code.clone() />
                        <CsrfField />
                        <ReasonField help required=a.reason_required min />
                        <button type="submit" class=ui::PRIMARY>"Ask for approval with your identity provider"</button>
                    </form>
                }.into_any()
            } else {
                view! {
                    <form data-webauthn="confirm" data-code=c.code.clone() data-in-place="yes" class="mt-4 space-y-3">
                        <ReasonField help required=a.reason_required min />
                        <button type="submit" class=ui::PRIMARY>"Ask for approval with your passkey"</button>
                        <CeremonyStatus />
                    </form>
                }.into_any()
            }}
            {glass.map(|groups| view! { <BreakGlass code=glass_code groups ttl_min with_idp=c.confirm_with_idp /> })}
        </section>
    }
}

/// Why the requester asks, with the guardrail's rule for it.
#[component]
fn ReasonField(help: String, required: bool, min: Option<String>) -> impl IntoView {
    view! {
        <Field id="reason" label="Why do you need it?" help=help>
            <textarea id="reason" name="reason" rows="3" maxlength="1000" class=ui::INPUT
                required=required minlength=min aria-describedby="reason-help"
                placeholder="Incident, ticket or plan: what approvers need to know"></textarea>
        </Field>
    }
}

/// Break glass: a member of the guardrail's break-glass groups lets the request through without
/// approvers, in an emergency, with a reason and their own step-up; offered before asking and
/// while approvers are still deciding.
#[component]
fn BreakGlass(code: String, groups: Vec<String>, ttl_min: i64, with_idp: bool) -> impl IntoView {
    let reason = || {
        view! {
            <Field id="glass-reason" label="What is the emergency?" help="Required.">
                <textarea id="glass-reason" name="reason" rows="3" maxlength="1000" required class=ui::INPUT aria-describedby="glass-reason-help"></textarea>
            </Field>
        }
    };
    // Signed in through the identity provider: it vouches for the person again on the way.
    let form = if with_idp {
        view! {
            <form method="post" action="/auth/oidc/stepup" class="space-y-3" data-break-glass-with-idp>
                <input type="hidden" name="code" value=code />
                <input type="hidden" name="breakGlass" value="yes" />
                <CsrfField />
                {reason()}
                <button type="submit" class=format!("{} w-full", ui::DANGER)>"Break glass with your identity provider"</button>
            </form>
        }
        .into_any()
    } else {
        view! {
            <form data-webauthn="confirm" data-break-glass="yes" data-code=code class="space-y-3">
                {reason()}
                <button type="submit" class=format!("{} w-full", ui::DANGER)>"Break glass with your passkey"</button>
                <CeremonyStatus />
            </form>
        }
        .into_any()
    };
    view! {
        <div class="mt-5 border-t border-line pt-4" data-break-glass-offer>
            <ConfirmDialog id="break-glass" trigger="Break glass…" trigger_class=ui::DANGER_SMALL title="Approve it yourself, in an emergency?">
                <p>"As a member of " <strong>{groups.join(" or ")}</strong> " you may let this through without approvers. "
                   "It is marked as break glass on this page, in the approvers' queue, on the grants page and in the audit history; everyone notified of approvals hears of it at once, and the grant lives at most " {ttl_min} " minutes."</p>
                {form}
            </ConfirmDialog>
        </div>
    }
}

/// Who must approve, who has, and what was said: the same for requester and approvers.
#[component]
pub fn Approvers(approval: ApprovalView, standing: Standing) -> impl IntoView {
    let a = approval;
    view! {
        <div class="space-y-4" data-approvers>
            {a.reason.clone().map(|r| view! {
                <div>
                    <h3 class="text-xs font-medium uppercase tracking-wide text-muted">"Reason"</h3>
                    <p class="mt-1 whitespace-pre-line text-sm text-fg" data-reason>{r}</p>
                    {a.confirmed_by.clone().map(|by| view! { <p class="mt-1 text-xs text-muted">"Confirmed by " {by} " with a step-up"</p> })}
                </div>
            })}
            <ul class="grid gap-3 sm:grid-cols-2" aria-label="Approvals needed">
                {a.lists.iter().map(|l| {
                    let met = l.is_met();
                    let short = (l.needed as usize).saturating_sub(l.approvers.len());
                    let groups = l.groups_text();
                    let list_name = groups.clone();
                    let approvers = l.approvers.clone();
                    let open = standing == Standing::AwaitingApproval;
                    view! {
                        <li class=if met { "rounded-lg border border-ok-line bg-ok-soft p-3" } else { "rounded-lg border border-line bg-sunken p-3" }
                            data-list=list_name data-met=if met { "yes" } else { "no" }>
                            <p class="flex items-center gap-2 text-sm font-semibold text-fg">
                                {if met {
                                    view! { <svg aria-hidden="true" viewBox="0 0 24 24" class="h-4 w-4 text-ok" fill="none" stroke="currentColor" stroke-width="3"><path stroke-linecap="round" stroke-linejoin="round" d="M5 13l4 4L19 7" /></svg> }.into_any()
                                } else {
                                    view! { <svg aria-hidden="true" viewBox="0 0 24 24" class="h-4 w-4 text-warn" fill="none" stroke="currentColor" stroke-width="2.5"><circle cx="12" cy="12" r="9" /></svg> }.into_any()
                                }}
                                {groups}
                            </p>
                            <p class="mt-1 text-sm text-fg-soft">
                                {if approvers.is_empty() { "Nobody yet".to_owned() } else { format!("Approved by {}", approvers.join(", ")) }}
                                {(!met && open).then(|| format!(" · {short} more needed"))}
                            </p>
                        </li>
                    }
                }).collect_view()}
            </ul>
            {(!a.decisions.is_empty()).then(|| view! {
                <ol class="space-y-2 border-l-2 border-line pl-4" aria-label="Decisions">
                    {a.decisions.iter().map(|d| view! {
                        <li class="text-sm" data-decision=if d.approved { "approve" } else { "reject" }>
                            <span class="font-medium text-fg">{d.approver.clone()}</span>
                            {if d.approved { " approved " } else { " rejected " }}
                            <RelativeTime at=d.at />
                            {(!d.reason.is_empty()).then(|| view! { <span class="block text-fg-soft">"“" {d.reason.clone()} "”"</span> })}
                        </li>
                    }).collect_view()}
                </ol>
            })}
        </div>
    }
}

/// The requester's page while approvers decide: where it stands, and taking it back.
#[component]
pub fn WaitingStep(challenge: ChallengeView) -> impl IntoView {
    let c = challenge;
    let a = c.approval.clone().unwrap_or_default();
    let glass = a.break_glass.clone().filter(|_| a.may_break_glass);
    let ttl_min = a.break_glass_ttl_secs / 60;
    let glass_code = c.code.clone();
    view! {
        <section class="rounded-xl border-2 border-warn-line bg-surface p-5 shadow-sm sm:p-6" aria-labelledby="outcome-heading" data-outcome="awaiting">
            <h2 id="outcome-heading" data-result-heading tabindex="-1" class="text-base font-semibold text-fg focus:outline-none">"Waiting for approvers"</h2>
            <p class="mt-1 text-sm text-fg-soft" role="status">
                "Approvers have been asked. This page updates when they decide; the request stops waiting "
                <RelativeTime at=c.expires_at /> " (" {ui::utc_clock(c.expires_at)} ")."
            </p>
            <div class="mt-4"><Approvers approval=a standing=c.standing /></div>
            <div class="mt-5 flex flex-wrap items-center gap-3 border-t border-line pt-4">
                <ConfirmDialog id="withdraw" trigger="Withdraw request…" trigger_class=ui::SECONDARY_SMALL title="Withdraw this request?">
                    <p>"Approvers can no longer decide it, and a retry of the command opens a new request."</p>
                    <form data-webauthn="withdraw" data-code=c.code.clone() data-in-place="yes" class="mt-3 space-y-3">
                        <button type="submit" class=format!("{} w-full", ui::DANGER)>"Withdraw request"</button>
                        <CeremonyStatus />
                    </form>
                </ConfirmDialog>
            </div>
            {glass.map(|groups| view! { <BreakGlass code=glass_code groups ttl_min with_idp=c.confirm_with_idp /> })}
        </section>
    }
}

/// An approver's decision: a reason, then approve or reject, each with their own security key.
#[component]
pub fn DecideStep(challenge: ChallengeView, may_decide: Result<(), String>) -> impl IntoView {
    let c = challenge;
    let a = c.approval.clone().unwrap_or_default();
    let standing = c.standing;
    let form = match may_decide {
        // Signed in through the identity provider: it vouches for the approver again, with a
        // second factor, before the decision counts.
        Ok(()) if c.confirm_with_idp => view! {
            <form method="post" action="/auth/oidc/decide" class="mt-4 space-y-3">
                <input type="hidden" name="code" value=c.code.clone() />
                <CsrfField />
                <Field id="decision-reason" label="Your reason" help="Required to reject; the requester reads it.">
                    <textarea id="decision-reason" name="reason" rows="2" maxlength="1000" class=ui::INPUT aria-describedby="decision-reason-help"></textarea>
                </Field>
                <div class="flex flex-wrap gap-3">
                    <button type="submit" name="decision" value="approve" class=ui::PRIMARY>"Approve with your identity provider"</button>
                    <button type="submit" name="decision" value="reject" class=ui::DANGER>"Reject with your identity provider"</button>
                </div>
            </form>
        }
        .into_any(),
        Ok(()) => view! {
            <form data-webauthn="decide" data-code=c.code.clone() data-in-place="yes" class="mt-4 space-y-3">
                <Field id="decision-reason" label="Your reason" help="Required to reject; the requester reads it.">
                    <textarea id="decision-reason" name="reason" rows="2" maxlength="1000" class=ui::INPUT aria-describedby="decision-reason-help"></textarea>
                </Field>
                <div class="flex flex-wrap gap-3">
                    <button type="submit" name="decision" value="approve" class=ui::PRIMARY>"Approve with passkey"</button>
                    <button type="submit" name="decision" value="reject" class=ui::DANGER>"Reject with passkey"</button>
                </div>
                <CeremonyStatus />
            </form>
        }
        .into_any(),
        Err(why) => view! {
            <p class="mt-3 rounded-md bg-sunken px-3 py-2 text-sm text-fg-soft" data-cannot-decide>{why}</p>
        }
        .into_any(),
    };
    view! {
        <section class="rounded-xl border-2 border-accent bg-surface p-5 shadow-sm sm:p-6" aria-labelledby="decide-heading" data-decide-step>
            <h2 id="decide-heading" data-result-heading tabindex="-1" class="text-base font-semibold text-fg focus:outline-none">
                {match standing {
                    Standing::AwaitingApproval => "Approve or reject this request",
                    Standing::Granted | Standing::Used | Standing::GrantExpired | Standing::Revoked => "Approved",
                    Standing::Rejected => "Rejected",
                    Standing::Withdrawn => "Withdrawn by the requester",
                    _ => "Not waiting for approvers",
                }}
            </h2>
            {(standing == Standing::AwaitingApproval).then(|| view! {
                <p class="mt-1 text-sm text-fg-soft">
                    "Your own step-up is recorded with your decision. The request stops waiting " <RelativeTime at=c.expires_at /> " (" {ui::utc_clock(c.expires_at)} ")."
                </p>
            })}
            {(c.kind == "Secret" && standing == Standing::AwaitingApproval).then(|| view! {
                <p class="mt-3 rounded-md border border-warn-line bg-warn-soft px-3 py-2 text-sm text-fg" data-redacted-notice>
                    "The values of this Secret are redacted: nobody sees them here. Approving lets through the values the requester set, unseen; ask them what they are if it matters."
                </p>
            })}
            <div class="mt-4"><Approvers approval=a standing /></div>
            {form}
        </section>
    }
}
