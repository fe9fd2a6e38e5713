//! Keeping the in-memory grant cache in step with the store: load, periodic refresh, revocation.

use std::time::Duration;

use std::collections::{HashMap, HashSet};

use crate::audit::AuditEvent;
use crate::clock;
use crate::engine::Snapshot;
use crate::grants::{GrantCache, GrantRejected, GrantSigner};
use crate::identity::mapping::IdentityMap;
use crate::state::Core;
use crate::store::{RevocationFeed, Store, StoreError};

/// How often the cache is reloaded from the store, so replicas learn of each other's spent uses
/// (and of revocations, should a poll have missed one); grants issued elsewhere are found sooner, on
/// the first cache miss.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// How often the store is asked for grants revoked since the last look: the delay after which a
/// grant revoked by another process (the CLI, another replica) stops admitting here, when the
/// database cannot push revocations (SQLite, or a lost PostgreSQL `LISTEN`).
pub const REVOCATIONS_EVERY: Duration = Duration::from_millis(250);

/// Revocations are read again this far back from the newest one seen: `revoked_at` has a
/// resolution of one second and comes from the clock of whichever process revoked.
const REVOCATION_OVERLAP_SECS: i64 = 5;

/// What a refresh did.
#[derive(Debug, Default)]
pub struct Refreshed {
    /// Grants held now.
    pub held: usize,
    /// Rows whose token does not vouch for them (forged or edited in the database), by grant id.
    pub rejected: Vec<(String, GrantRejected)>,
}

/// Replace the cache with every live grant in the store whose signed token vouches for its row.
///
/// The database is not trusted to say what a grant covers: a row enters the cache only when its
/// JWS verifies against a trusted key and every claim matches. Rows the cache already holds as
/// verified are not verified again, so a refresh costs one signature check per new grant.
pub async fn refresh(
    store: &dyn Store,
    cache: &GrantCache,
    signer: &GrantSigner,
    issuer: &str,
    policy: (&Snapshot, &IdentityMap),
) -> Result<Refreshed, StoreError> {
    let (engine, identities) = policy;
    let now = clock::now();
    let mut rows = store.all_live_grants(now).await?;
    let mut known = Vec::with_capacity(rows.len());
    let mut new = HashMap::new();
    for mut row in rows.drain(..) {
        if cache.holds_verified(&mut row) {
            known.push(row);
        } else {
            new.insert(row.id.clone(), row);
        }
    }
    let mut rejected = Vec::new();
    if !new.is_empty() {
        let ids: Vec<String> = new.keys().cloned().collect();
        for (id, token) in store.grant_tokens(&ids).await? {
            let Some(row) = new.remove(&id) else { continue };
            let guardrail = engine.guardrail(&row.guardrail).map(|g| (g, identities));
            match signer.vouch(&row, &token, issuer, guardrail) {
                Ok(grant) => known.push(grant),
                Err(e) => rejected.push((id, e)),
            }
        }
        // A row without a token row (deleted meanwhile) is simply not honoured.
    }
    cache.replace_all(known, now);
    Ok(Refreshed {
        held: cache.len(),
        rejected,
    })
}

/// Log, count and audit (once per grant) rows the refresh refused to honour.
fn report_rejected(
    state: &Core,
    rejected: Vec<(String, GrantRejected)>,
    seen: &mut HashSet<String>,
) {
    for (id, reason) in rejected {
        state.metrics.grant_rejected();
        if !seen.insert(id.clone()) {
            continue;
        }
        tracing::error!(grant = %id, %reason, "stored grant not honoured: its signed token does not vouch for it");
        let event = AuditEvent::new(
            "grant.rejected",
            "webhook",
            &id,
            serde_json::json!({ "reason": reason.to_string() }),
        );
        state.audit.record(event);
    }
}

/// Drop from the cache every grant revoked at or after `*watermark`, and move the watermark up
/// (keeping an overlap); returns how many revocations were read.
pub async fn apply_revocations(
    store: &dyn Store,
    cache: &GrantCache,
    watermark: &mut i64,
) -> Result<usize, StoreError> {
    let revoked = store.revoked_since(*watermark).await?;
    for grant in &revoked {
        cache.revoke(
            &grant.username,
            &grant.guardrail,
            &grant.id,
            grant.expires_at,
        );
    }
    let newest = revoked.iter().map(|g| g.revoked_at).max();
    if let Some(newest) = newest {
        *watermark = (*watermark).max(newest - REVOCATION_OVERLAP_SECS);
    }
    Ok(revoked.len())
}

/// Keep the cache in step with the store until the task is dropped: reload everything every
/// `every`, and drop revoked grants as soon as they are seen — pushed by the database where it can
/// (PostgreSQL `LISTEN`), otherwise polled every [`REVOCATIONS_EVERY`]. While the store is down the
/// last snapshot stays.
pub async fn keep_fresh(state: Core, every: Duration) {
    let store = state.store.as_ref();
    let mut watermark = clock::now() - REVOCATION_OVERLAP_SECS;
    let mut reloads = tokio::time::interval(every);
    reloads.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut polls = tokio::time::interval(REVOCATIONS_EVERY.min(every));
    polls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut feed = listen(store).await;
    let mut failing = false;
    let mut rejected_seen = HashSet::new();
    let issuer = state.issuer();
    loop {
        let pushed = tokio::select! {
            _ = reloads.tick() => {
                state.challenges.sweep(clock::now());
                let outcome = tokio::time::timeout(
                    every.max(Duration::from_secs(5)),
                    refresh(store, &state.grants, &state.signer, &issuer, (&state.guardrails.load(), &state.identities)),
                )
                .await;
                let outcome = outcome.map(|r| {
                    r.map(|refreshed| report_rejected(&state, refreshed.rejected, &mut rejected_seen))
                });
                failing = report(outcome, failing, "grant cache refresh");
                if feed.is_none() && !failing {
                    // Listening failed or was lost earlier: try again while the store answers.
                    feed = listen(store).await;
                }
                continue;
            }
            _ = polls.tick(), if feed.is_none() => false,
            id = next_pushed(&mut feed) => match id {
                Some(_) => true,
                None => {
                    tracing::warn!("revocation feed closed; polling for revocations until it is back");
                    feed = None;
                    false
                }
            },
        };
        // A pushed id names the grant only: read it (and anything else revoked meanwhile) from the
        // store, which also says whom and which guardrail it was for.
        let outcome = tokio::time::timeout(
            Duration::from_secs(5),
            apply_revocations(store, &state.grants, &mut watermark),
        )
        .await;
        failing = report(
            outcome.map(|r| r.map(drop)),
            failing,
            if pushed {
                "pushed revocation"
            } else {
                "revocation poll"
            },
        );
    }
}

/// Start listening for pushed revocations; `None` (and a warning) when the store cannot.
async fn listen(store: &dyn Store) -> Option<RevocationFeed> {
    match tokio::time::timeout(Duration::from_secs(5), store.revocation_feed()).await {
        Ok(Ok(feed)) => feed,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot listen for revocations; polling every {REVOCATIONS_EVERY:?}");
            None
        }
        Err(_) => {
            tracing::warn!(
                "listening for revocations timed out; polling every {REVOCATIONS_EVERY:?}"
            );
            None
        }
    }
}

async fn next_pushed(feed: &mut Option<RevocationFeed>) -> Option<String> {
    match feed {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Log a failing store once per outage, and its recovery; returns whether it is failing now.
fn report(
    outcome: Result<Result<(), StoreError>, tokio::time::error::Elapsed>,
    was_failing: bool,
    what: &str,
) -> bool {
    match outcome {
        Ok(Ok(())) => {
            if was_failing {
                tracing::info!("{what}: the store answers again");
            }
            false
        }
        Ok(Err(e)) => {
            if !was_failing {
                tracing::warn!(error = %e, "{what} failed; keeping the last snapshot");
            }
            true
        }
        Err(_) => {
            if !was_failing {
                tracing::warn!("{what} timed out; keeping the last snapshot");
            }
            true
        }
    }
}
