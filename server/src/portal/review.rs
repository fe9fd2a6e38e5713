//! The approvers' pages as the backend answers them: the queue, one request under review, and how
//! an approval guardrail's request stands (shown to requester and approvers alike).

use std::collections::HashMap;

use app::backend::PortalError;
use app::model::{
    ApprovalView, ApproverList, ClosedView, DecisionView, GlassItem, QueueAccess, QueueItem,
    ReviewAccess, Viewer,
};
use tower_sessions::Session;

use super::backend::{signed_in, unavailable, Backend};
use super::describe::{place, Described};
use crate::challenges::{ApprovalCase, ApprovalDecision, ApprovalRecord, Challenge};
use crate::clock;
use crate::elevation::{rules, Actor};
use crate::identity::authz::{allows, Permission};
use crate::identity::User;

/// Most requests the queue lists.
const QUEUE_LIMIT: i64 = 200;
/// How long a break glass stays on the approvers' queue after it happened.
const GLASS_SHOWN_SECS: i64 = 24 * 3600;

/// How the request stands with its approvers, for `viewer`.
pub(super) fn approval_view(
    case: &ApprovalCase,
    decisions: &[ApprovalRecord],
    viewer: &Viewer,
) -> ApprovalView {
    let tally = rules::tally(&case.rule, decisions);
    let glass = case.rule.break_glass.as_ref();
    ApprovalView {
        reason_required: case.rule.reason.required,
        reason_min: case.rule.reason.min_length,
        reason: case.reason.clone(),
        confirmed_by: case.confirmed_by.clone(),
        lists: tally
            .lists
            .into_iter()
            .map(|l| ApproverList {
                groups: l.groups,
                needed: l.needed,
                approvers: l.approvers,
            })
            .collect(),
        decisions: decisions
            .iter()
            .map(|d| DecisionView {
                approver: d.approver.clone(),
                approved: d.decision == ApprovalDecision::Approve,
                reason: d.reason.clone(),
                at: d.decided_at,
            })
            .collect(),
        closed: case.closed.as_ref().map(|c| ClosedView {
            by: c.by.clone(),
            at: c.at,
            reason: c.reason.clone(),
        }),
        break_glass: glass.map(|g| g.groups.clone()),
        may_break_glass: glass.is_some_and(|g| g.groups.iter().any(|x| viewer.groups.contains(x))),
        break_glass_ttl_secs: glass.map_or(0, |g| g.ttl_secs),
        previous_rejection: None,
    }
}

fn actor(user: &User) -> Actor {
    Actor {
        account: user.username.clone(),
        groups: user.groups.clone(),
    }
}

/// Whether `me` may decide `challenge` now, or why not in their words ("You approved it.").
fn may_decide(
    backend: &Backend,
    challenge: &Challenge,
    decisions: &[ApprovalRecord],
    me: &Actor,
    now: i64,
) -> Result<(), String> {
    let person = backend.0.identities.person_of(&me.account);
    if let Some(mine) = decisions.iter().find(|d| d.person == person) {
        return Err(match mine.decision {
            ApprovalDecision::Approve => "You approved it.".into(),
            ApprovalDecision::Reject => "You rejected it.".into(),
        });
    }
    let refusal = |e: crate::elevation::ElevationError| {
        let text = e.to_string();
        let mut chars = text.chars();
        chars.next().map_or(text.clone(), |f| {
            format!("{}{}.", f.to_uppercase(), chars.as_str())
        })
    };
    backend
        .0
        .elevation()
        .may_decide(challenge, me, now)
        .map_err(refusal)
}

/// Who is asking for an approvers' page.
enum Asker {
    SignedOut,
    /// Signed in with a role that does not review escalations.
    OtherRole,
    Reviewer(User),
}

async fn reviewer(backend: &Backend, session: &Session) -> Result<Asker, PortalError> {
    let user = signed_in(&backend.0, session).await.map_err(unavailable)?;
    Ok(match user {
        None => Asker::SignedOut,
        Some(u) if allows(u.role, Permission::ReviewEscalations) => Asker::Reviewer(u),
        Some(_) => Asker::OtherRole,
    })
}

/// What waits for approvers, as this viewer's queue shows it: requests for a group they are in
/// (every request, for an admin), newest first; `with_break_glass` adds the day's break glass
/// (the queue page wants it, the header's badge on every page does not).
pub(super) async fn queue(
    backend: &Backend,
    session: &Session,
    with_break_glass: bool,
) -> Result<QueueAccess, PortalError> {
    let user = match reviewer(backend, session).await? {
        Asker::SignedOut => return Ok(QueueAccess::SignInRequired),
        Asker::OtherRole => return Ok(QueueAccess::Forbidden),
        Asker::Reviewer(u) => u,
    };
    let state = &backend.0;
    let now = clock::now();
    let elevation = state.elevation();
    let me = actor(&user);
    // Two reads whatever the queue's length, and no request objects: every page of an approver
    // or admin draws its badge from this (second review, finding 5).
    let waiting = state
        .store
        .awaiting_challenges(now, QUEUE_LIMIT)
        .await
        .map_err(unavailable)?;
    let mut decisions: HashMap<String, Vec<ApprovalRecord>> = HashMap::new();
    for d in state
        .store
        .awaiting_approvals(now)
        .await
        .map_err(unavailable)?
    {
        decisions
            .entry(d.challenge_code.clone())
            .or_default()
            .push(d);
    }
    let admin = user.role == crate::identity::Role::Admin;
    let broken = if with_break_glass {
        state
            .store
            .broken_glass_since(now - GLASS_SHOWN_SECS, QUEUE_LIMIT)
            .await
            .map_err(unavailable)?
    } else {
        Vec::new()
    };
    let broken_glass = broken
        .iter()
        .filter(|c| admin || elevation.concerns(c, &me))
        .filter_map(|c| {
            let case = c.approval.as_ref()?;
            Some(GlassItem {
                code: c.code.clone(),
                requester: c.request.username.clone(),
                by: case.confirmed_by.clone().unwrap_or_default(),
                reason: case.reason.clone().unwrap_or_default(),
                title: Described::from(&c.request).title(),
                place: place(&c.request.namespace),
                at: case.confirmed_at.unwrap_or(c.created_at),
            })
        })
        .collect();
    let items = waiting
        .iter()
        .filter(|c| admin || elevation.concerns(c, &me))
        .map(|c| {
            let none = Vec::new();
            queue_item(
                backend,
                c,
                decisions.get(&c.code).unwrap_or(&none),
                &me,
                now,
            )
        })
        .collect();
    Ok(QueueAccess::Queue {
        waiting: items,
        broken_glass,
    })
}

fn queue_item(
    backend: &Backend,
    c: &Challenge,
    decisions: &[ApprovalRecord],
    me: &Actor,
    now: i64,
) -> QueueItem {
    let verdict = may_decide(backend, c, decisions, me, now);
    let case = c.approval.as_ref();
    let tally = case.map(|case| rules::tally(&case.rule, decisions));
    QueueItem {
        code: c.code.clone(),
        requester: c.request.username.clone(),
        reason: case.and_then(|a| a.reason.clone()).unwrap_or_default(),
        guardrail: c.guardrails_label(),
        title: Described::from(&c.request).title(),
        place: place(&c.request.namespace),
        created_at: c.created_at,
        expires_at: c.expires_at,
        needs_me: verdict.is_ok(),
        not_mine: verdict.err(),
        waiting_for: tally
            .as_ref()
            .map(|t| {
                t.unmet()
                    .map(|l| {
                        let short = l.needed as usize - l.approvers.len();
                        format!("{short} from {}", l.groups.join(" or "))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        approved_by: decisions
            .iter()
            .filter(|d| d.decision == ApprovalDecision::Approve)
            .map(|d| d.approver.clone())
            .collect(),
    }
}

/// One request under review: the same page its requester saw, and whether this viewer may decide.
pub(super) async fn review(
    backend: &Backend,
    session: &Session,
    viewer: Option<&Viewer>,
    code: &str,
) -> Result<ReviewAccess, PortalError> {
    let user = match reviewer(backend, session).await? {
        Asker::SignedOut => return Ok(ReviewAccess::SignInRequired),
        Asker::OtherRole => return Ok(ReviewAccess::Forbidden),
        Asker::Reviewer(u) => u,
    };
    let (Some(viewer), true) = (viewer, crate::challenges::is_code(code)) else {
        return Ok(ReviewAccess::NotFound);
    };
    let state = &backend.0;
    let Some(c) = state.store.challenge(code).await.map_err(unavailable)? else {
        return Ok(ReviewAccess::NotFound);
    };
    let me = actor(&user);
    let admin = user.role == crate::identity::Role::Admin;
    if c.approval.is_none() || !(admin || state.elevation().concerns(&c, &me)) {
        return Ok(ReviewAccess::NotFound);
    }
    let now = clock::now();
    let decisions = state.store.approvals_of(code).await.map_err(unavailable)?;
    let may_decide = may_decide(backend, &c, &decisions, &me, now);
    let challenge = backend.challenge_view(c, viewer).await?;
    Ok(ReviewAccess::Review {
        challenge: Box::new(challenge),
        may_decide,
    })
}
