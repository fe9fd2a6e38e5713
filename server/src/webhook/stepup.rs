//! A guardrail that needs a grant matched: ask the elevation layer, and answer in kubectl's words.

use super::WebhookState;
use crate::admission::{AdmissionRequest, Verdict};
use crate::clock;
use crate::elevation::{Admission, ElevationError, OpenChallenge};
use crate::engine::{Decision, Hit, Snapshot};
use crate::policy::ActionKind;

use super::metrics::Outcome;

/// Admit with grants that cover the request, or deny with the challenge to confirm.
pub(super) async fn check(
    state: &WebhookState,
    snapshot: &Snapshot,
    request: &AdmissionRequest,
    decision: &Decision,
) -> Result<(Verdict, Outcome), ElevationError> {
    let admission = state
        .elevation
        .admit(snapshot, request, decision, clock::now())
        .await?;
    Ok(match admission {
        Admission::Admitted(covered) => {
            let mut verdict = Verdict::allow();
            let ids: Vec<&str> = covered.iter().map(|c| c.grant.id.as_str()).collect();
            // Named as the guardrails in force call them (a grant records the id).
            let names: Vec<&str> = covered
                .iter()
                .map(|c| {
                    decision
                        .hits
                        .iter()
                        .find(|h| h.id == c.guardrail)
                        .map_or(c.guardrail.as_str(), |h| h.name.as_str())
                })
                .collect();
            let notes = &mut verdict.audit_annotations;
            notes.insert("grant".into(), ids.join(","));
            notes.insert("guardrail".into(), names.join(","));
            // Break glass is loud everywhere, the cluster's own audit log included.
            let glass: Vec<&str> = covered
                .iter()
                .filter(|c| c.grant.break_glass)
                .map(|c| c.grant.id.as_str())
                .collect();
            if !glass.is_empty() {
                notes.insert("break-glass".into(), glass.join(","));
            }
            (verdict, Outcome::Granted)
        }
        Admission::Challenged(open) => deny(state, &hits_named(decision, &open.guardrails), &open),
        Admission::Limited { limit, guardrails } => {
            let hits = hits_named(decision, &guardrails);
            let message = format!(
                "{} required by {}: no new challenge can be opened ({limit}); confirm or let the open ones expire, then retry",
                need(strictest(&hits)),
                named(&hits)
            );
            (Verdict::deny(message), Outcome::Denied)
        }
    })
}

/// The decision's hits for these guardrails (by id).
fn hits_named<'d>(decision: &'d Decision, ids: &[String]) -> Vec<&'d Hit> {
    decision
        .needing_grants()
        .filter(|h| ids.contains(&h.id))
        .collect()
}

/// What a guardrail of this action asks for, in a denial's first words.
pub(super) fn need(action: ActionKind) -> &'static str {
    if action == ActionKind::Approval {
        "approval"
    } else {
        "step-up"
    }
}

/// Approval if any of `hits` needs it, else step-up.
pub(super) fn strictest(hits: &[&Hit]) -> ActionKind {
    if hits.iter().any(|h| h.action == ActionKind::Approval) {
        ActionKind::Approval
    } else {
        ActionKind::StepUp
    }
}

/// `guardrail "a"`, or `guardrails "a", "b"`: every guardrail the challenge stands for, in the
/// challenge's order.
pub(super) fn named(hits: &[&Hit]) -> String {
    let mut names: Vec<String> = hits.iter().map(|h| format!("\"{}\"", h.name)).collect();
    names.sort_unstable();
    let noun = if names.len() == 1 {
        "guardrail"
    } else {
        "guardrails"
    };
    format!("{noun} {}", names.join(", "))
}

/// The denial that links to the open challenge.
fn deny(state: &WebhookState, hits: &[&Hit], open: &OpenChallenge) -> (Verdict, Outcome) {
    let link = state.challenge_link(&open.code);
    let until = clock::hhmm_utc(open.expires_at);
    let mut message = if strictest(hits) == ActionKind::Approval {
        format!(
            "approval required by {}: ask for it at {link}, then retry once approved (expires {until})",
            named(hits),
        )
    } else {
        format!(
            "step-up required by {}: confirm at {link}, then retry (expires {until})",
            named(hits),
        )
    };
    if let Some(closed) = &open.rejected {
        message.push_str(&format!(
            "; the last request was rejected by {}: \"{}\"",
            closed.by, closed.reason
        ));
    }
    let mut verdict = Verdict::deny(message);
    // The guardrails' own words, which kubectl prints as warnings above the denial (the denial
    // keeps its fixed shape for scripts).
    for hit in hits.iter().filter(|h| !h.message.is_empty()) {
        verdict
            .warnings
            .push(format!("guardrail \"{}\": {}", hit.name, hit.message));
    }
    (verdict, Outcome::Challenged)
}
