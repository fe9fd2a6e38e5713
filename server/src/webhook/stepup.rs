//! A step-up guardrail matched: admit with a grant that covers the request, or hand out a challenge.

use crate::admission::{request_digest, AdmissionRequest, Verdict};
use crate::audit::AuditEvent;
use crate::challenges::{guardrail_set, Challenge, LimitReached};
use crate::clock;
use crate::engine::{Decision, Hit};
use crate::grants::{object_key, CoveringGrant, GrantTarget, LiveGrant};
use crate::policy::ActionKind;
use crate::state::AppState;
use crate::store::StoreError;

use super::metrics::Outcome;

/// Check every enforcing step-up and approval guardrail; all must be covered before any grant use
/// is taken.
///
/// Grants come from the in-memory cache first; only a miss (a grant issued by another replica a
/// moment ago, or none at all) and spending a limited grant reach the store. An unlimited grant in
/// the cache admits with no store call, so it keeps working while the store is down; a request whose
/// challenge was handed out a moment ago is denied again from the challenge cache, also without one.
pub(super) async fn check(
    state: &AppState,
    request: &AdmissionRequest,
    decision: &Decision,
) -> Result<(Verdict, Outcome), StoreError> {
    let now = clock::now();
    let digest = request_digest(&state.cluster, request);
    let object = object_key(
        request.operation.as_str(),
        &request.resource.group,
        &request.resource.resource,
        &request.sub_resource,
        &request.namespace,
        &request.name,
    );
    let username = request.user_info.username.as_str();

    let find = |hit: &Hit| {
        let target = GrantTarget {
            username,
            guardrail: &hit.name,
            cluster: &state.cluster,
            digest: &digest,
            namespace: &request.namespace,
            object_key: &object,
        };
        state.grants.find(&target, now)
    };
    let mut covering: Vec<(&Hit, CoveringGrant)> = Vec::new();
    let mut missing: Vec<&Hit> = Vec::new();
    for hit in decision.needing_grants() {
        match find(hit) {
            Some(grant) => covering.push((hit, grant)),
            None => missing.push(hit),
        }
    }
    if !missing.is_empty() {
        // Denied a moment ago with a challenge still open: deny again from memory. A grant
        // issued for it on another replica is seen once the entry's trust window ends.
        let set = guardrail_set(missing.iter().map(|h| h.name.as_str()));
        if let Some(open) = state.challenges.find(&digest, &set, now) {
            return Ok(deny(state, &missing, &open.code, open.expires_at));
        }
        let mut uncovered = Vec::new();
        for hit in missing {
            load_stored(state, username, &hit.name, now).await?;
            match find(hit) {
                Some(grant) => covering.push((hit, grant)),
                None => uncovered.push(hit),
            }
        }
        // Every guardrail still short of a grant shares one challenge, so one step-up (and one
        // round of approvals) lets the retry through.
        if !uncovered.is_empty() {
            return challenge(state, request, &uncovered, digest, now).await;
        }
    }

    // A dry run (`kubectl --dry-run=server`) is admitted without spending a use; an unlimited grant
    // has no uses to spend.
    if !request.dry_run {
        for (hit, grant) in covering.iter().filter(|(_, g)| g.is_limited()) {
            // One statement in the store, so two replicas cannot both take the last use.
            let taken = state.store.consume_grant(&grant.id, now).await?;
            state.grants.used(username, &hit.name, &grant.id, !taken);
            if !taken {
                // Another retry (here or on another replica) took the last use first, or it was revoked.
                return challenge(state, request, &[hit], digest, now).await;
            }
        }
    }
    let mut verdict = Verdict::allow();
    let ids: Vec<&str> = covering.iter().map(|(_, g)| g.id.as_str()).collect();
    let names: Vec<&str> = covering.iter().map(|(h, _)| h.name.as_str()).collect();
    verdict
        .audit_annotations
        .insert("grant".into(), ids.join(","));
    verdict
        .audit_annotations
        .insert("guardrail".into(), names.join(","));
    // Break glass is loud everywhere, the cluster's own audit log included.
    let glass: Vec<&str> = covering
        .iter()
        .filter(|(_, g)| g.break_glass)
        .map(|(_, g)| g.id.as_str())
        .collect();
    if !glass.is_empty() {
        verdict
            .audit_annotations
            .insert("break-glass".into(), glass.join(","));
    }
    if !request.dry_run {
        audit(
            state,
            AuditEvent::new(
                "grant.used",
                username,
                &ids.join(","),
                serde_json::json!({ "uid": request.uid, "guardrails": names, "digest": digest }),
            ),
        );
    }
    Ok((verdict, Outcome::Granted))
}

/// Bring this user's stored grants for `guardrail` into the cache: only a row its signed token
/// vouches for is honoured (the database is not trusted to say what a grant covers).
async fn load_stored(
    state: &AppState,
    username: &str,
    guardrail: &str,
    now: i64,
) -> Result<(), StoreError> {
    let stored = state.store.live_grants(username, guardrail, now).await?;
    for grant in &stored {
        let policy = state
            .engine
            .guardrail(&grant.guardrail)
            .map(|g| (g, state.identities.as_ref()));
        match state.signer.vouch(
            &LiveGrant::from(grant),
            &grant.token,
            &state.issuer(),
            policy,
        ) {
            Ok(live) => {
                state.grants.insert(&live, now);
                // A grant exists for that challenge: it is not open any more.
                state.challenges.granted(&grant.digest, &grant.guardrail);
            }
            Err(reason) => {
                state.metrics.grant_rejected();
                tracing::error!(grant = %grant.id, %reason, "stored grant not honoured");
            }
        }
    }
    Ok(())
}

/// How long after a rejection a retry of the same request is told about it.
const REJECTION_TOLD_SECS: i64 = 3600;

/// Find the open challenge for this request and these guardrails, or create one, and deny with
/// its link.
async fn challenge(
    state: &AppState,
    request: &AdmissionRequest,
    hits: &[&Hit],
    digest: String,
    now: i64,
) -> Result<(Verdict, Outcome), StoreError> {
    match find_or_create(state, request, hits, digest, now).await? {
        Ok((challenge, opened)) => {
            state.challenges.insert(&challenge, now);
            // The retry that follows a rejection opens a new challenge: it is told why, once.
            let rejected = if opened && challenge.needs_approval() {
                let since = now - REJECTION_TOLD_SECS;
                let store = &state.store;
                store
                    .recent_rejection(&challenge.digest, &challenge.guardrail, since)
                    .await?
            } else {
                None
            };
            let (mut verdict, outcome) = deny(state, hits, &challenge.code, challenge.expires_at);
            if let Some(closed) = rejected.and_then(|c| c.approval).and_then(|a| a.closed) {
                verdict.message = verdict.message.map(|m| {
                    format!(
                        "{m}; the last request was rejected by {}: \"{}\"",
                        closed.by, closed.reason
                    )
                });
            }
            Ok((verdict, outcome))
        }
        Err(limit) => {
            state.metrics.challenge_limited();
            tracing::warn!(user = %request.user_info.username, %limit, "challenge limit reached; denied without a new challenge");
            let message = format!(
                "{} required by {}: no new challenge can be opened ({limit}); confirm or let the open ones expire, then retry",
                need(strictest(hits)),
                named(hits)
            );
            Ok((Verdict::deny(message), Outcome::Denied))
        }
    }
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

/// The denial that links to challenge `code`.
fn deny(state: &AppState, hits: &[&Hit], code: &str, expires_at: i64) -> (Verdict, Outcome) {
    let link = state.challenge_link(code);
    let until = clock::hhmm_utc(expires_at);
    let message = if strictest(hits) == ActionKind::Approval {
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

/// The open challenge for this digest and these guardrails, or a new one if the limits allow it
/// (`true` when it was opened now).
async fn find_or_create(
    state: &AppState,
    request: &AdmissionRequest,
    hits: &[&Hit],
    digest: String,
    now: i64,
) -> Result<Result<(Challenge, bool), LimitReached>, StoreError> {
    let set = guardrail_set(hits.iter().map(|h| h.name.as_str()));
    // Two tries: a concurrent identical request may insert first; a code may collide.
    for _ in 0..3 {
        if let Some(existing) = state.store.pending_challenge(&digest, &set, now).await? {
            return Ok(Ok((existing, false)));
        }
        let loaded = state.engine.guardrails();
        let Some(guardrails) = hits
            .iter()
            .map(|h| loaded.get(h.index))
            .collect::<Option<Vec<_>>>()
        else {
            break;
        };
        let messages: Vec<&str> = hits
            .iter()
            .map(|h| h.message.as_str())
            .filter(|m| !m.is_empty())
            .collect();
        let mut fresh = Challenge::new(
            &state.cluster,
            digest.clone(),
            &guardrails,
            messages.join(" "),
            request,
            now,
        );
        // What policy decided is sealed with the grant key, outside the database.
        crate::elevation::seal::seal_challenge(&state.signer, &mut fresh);
        // Its size as the store keeps it (the same JSON). Checked before the insert, not with it:
        // concurrent creates can pass a limit by a few, which still bounds the store.
        let bytes = serde_json::to_vec(&fresh).map_or(0, |b| b.len()) as i64;
        let usage = state
            .store
            .open_challenge_usage(&fresh.request.username, now)
            .await?;
        if let Err(limit) = state.challenge_limits.check(&usage, bytes) {
            return Ok(Err(limit));
        }
        if state.store.insert_challenge(&fresh).await? {
            audit(
                state,
                AuditEvent::new(
                    "challenge.created",
                    &fresh.request.username,
                    &fresh.code,
                    serde_json::json!({ "guardrail": fresh.guardrail, "uid": request.uid, "dryRun": request.dry_run }),
                ),
            );
            return Ok(Ok((fresh, true)));
        }
    }
    Err(StoreError::Conflict("challenge"))
}

/// Record an event without holding up the answer to the API server.
fn audit(state: &AppState, event: AuditEvent) {
    state.audit.record(event);
}
