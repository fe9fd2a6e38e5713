//! Keeping the in-memory grant cache in step with the store: load, periodic refresh, revocation.

use std::time::Duration;

use crate::audit::AuditEvent;
use crate::clock;
use crate::grants::GrantCache;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// How often the cache is reloaded from the store, so replicas learn of each other's revocations
/// and spent uses; grants issued elsewhere are found sooner, on the first cache miss.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// Replace the cache with every live grant in the store; returns how many are held.
pub async fn refresh(store: &dyn Store, cache: &GrantCache) -> Result<usize, StoreError> {
    let now = clock::now();
    let grants = store.all_live_grants(now).await?;
    cache.replace_all(grants, now);
    Ok(cache.len())
}

/// Refresh every `every` until the task is dropped; while the store is down the last snapshot stays.
pub async fn keep_fresh(state: AppState, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        match tokio::time::timeout(
            every.max(Duration::from_secs(5)),
            refresh(state.store.as_ref(), &state.grants),
        )
        .await
        {
            Ok(Ok(_)) => {
                if failing {
                    tracing::info!("grant cache refreshed from the store again");
                }
                failing = false;
            }
            Ok(Err(e)) => {
                if !failing {
                    tracing::warn!(error = %e, "grant cache refresh failed; keeping the last snapshot");
                }
                failing = true;
            }
            Err(_) => {
                if !failing {
                    tracing::warn!("grant cache refresh timed out; keeping the last snapshot");
                }
                failing = true;
            }
        }
    }
}

/// What revoking a grant did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// It was live and is revoked now.
    Revoked,
    /// It exists but had already expired or been revoked.
    NotLive,
    /// No grant has this id.
    Unknown,
}

/// Revoke a grant in the store, by `actor`, and drop it from this process's cache (if any) at once.
/// Other replicas drop it on their next refresh; a limited grant can no longer be spent anywhere from
/// now on, since spending checks `revoked_at` in the store.
pub async fn revoke(
    store: &dyn Store,
    cache: Option<&GrantCache>,
    grant_id: &str,
    actor: &str,
) -> Result<Revocation, StoreError> {
    let now = clock::now();
    let Some(grant) = store.grant(grant_id).await? else {
        return Ok(Revocation::Unknown);
    };
    let revoked = store.revoke_grant(grant_id, now).await?;
    if let Some(cache) = cache {
        // Dropped whatever the store said: a revoked or expired grant must not admit anything.
        cache.revoke(
            &grant.username,
            &grant.guardrail,
            &grant.id,
            grant.expires_at,
        );
    }
    if !revoked {
        return Ok(Revocation::NotLive);
    }
    let event = AuditEvent::new(
        "grant.revoked",
        actor,
        &grant.id,
        serde_json::json!({
            "username": grant.username, "guardrail": grant.guardrail, "challenge": grant.challenge_code,
        }),
    );
    if let Err(e) = store.append_audit(&event).await {
        tracing::error!(error = %e, "audit append failed for a revocation");
    }
    Ok(Revocation::Revoked)
}
