//! Retention: what the store lets go of, so it does not grow with time. Closed challenges, expired
//! grants and decision-log entries older than the retention period are deleted, and so are
//! expired sessions; the audit log is never pruned (it is the record of what happened).

use std::time::Duration;

use tower_sessions::ExpiredDeletion;

use crate::clock;
use crate::store::{AnyStore, Pruned, StoreError};

/// Default retention of challenges, grants and decisions: 90 days.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// Default days recorded traffic is kept: 14.
pub const DEFAULT_TRAFFIC_DAYS: u32 = 14;

/// How often a pass runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One pass: delete what is older than `days` (grants by expiry, challenges and decisions by
/// creation), and every expired session.
pub async fn prune_once(store: &dyn AnyStore, days: u32) -> Result<Pruned, StoreError> {
    let before = clock::now() - i64::from(days) * 86_400;
    let pruned = store.prune(before).await?;
    if let Err(e) = store.session_store().delete_expired().await {
        tracing::warn!(error = %e, "expired sessions could not be deleted");
    }
    Ok(pruned)
}

/// Forget recorded traffic last seen more than `days` ago (all of it when `days` is 0: recording
/// is off), and past the store's bound on shapes.
pub async fn prune_traffic_once(store: &dyn AnyStore, days: u32) -> Result<u64, StoreError> {
    let before = match days {
        0 => i64::MAX,
        days => clock::now() - i64::from(days) * 86_400,
    };
    store.prune_traffic(before).await
}

/// Prune every [`PRUNE_EVERY`] until the task is dropped (the first pass a minute after start):
/// records after `days`, recorded traffic after `traffic_days`.
pub async fn keep_pruning(store: std::sync::Arc<dyn AnyStore>, days: u32, traffic_days: u32) {
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mut every = tokio::time::interval(PRUNE_EVERY);
    loop {
        every.tick().await;
        match prune_once(store.as_ref(), days).await {
            Ok(p) if p != Pruned::default() => tracing::info!(
                grants = p.grants,
                challenges = p.challenges,
                decisions = p.decisions,
                "retention: pruned records older than {days} days"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention pass failed; trying again later"),
        }
        if let Err(e) = prune_traffic_once(store.as_ref(), traffic_days).await {
            tracing::warn!(error = %e, "recorded traffic not pruned; trying again later");
        }
    }
}
