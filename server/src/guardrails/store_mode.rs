//! Store mode, the embedded default: the guardrails in force are the newest sealed version in the
//! store. A change is a new version, saved with its audit record in one unit of work and announced
//! to the other replicas, which put it in force within a second (pushed on PostgreSQL, polled
//! everywhere).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::audit::AuditEvent;
use crate::clock;
use crate::engine::{LiveGuardrails, Snapshot};
use crate::grants::GrantSigner;
use crate::store::{Store, StoreError, GUARDRAIL_CHANNEL};

use super::versions::{
    check_reason, join_documents, library, split_documents, GuardrailVersion, VersionError,
};

/// How often replicas look for a newer version when nothing was pushed.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// The author of the first version, the shipped library.
pub const SEED_AUTHOR: &str = "countersign";

/// Why a version could not be saved or read.
#[derive(Debug, thiserror::Error)]
pub enum VersionsError {
    /// The guardrails or the reason are refused, or a stored version is forged.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another version was saved between reading the newest and saving this one.
    #[error("another guardrail version was saved meanwhile; look at it and try again")]
    Raced,
    /// No such version.
    #[error("there is no guardrail version {0}")]
    NotFound(i64),
    /// Nothing would change.
    #[error("version {0} already holds exactly these guardrails")]
    Unchanged(i64),
}

/// The versions kept in one store, sealed and checked with one key.
#[derive(Clone)]
pub struct Versions {
    store: Arc<dyn Store>,
    signer: Arc<GrantSigner>,
}

impl Versions {
    /// Versions in `store`, sealed and checked with `signer`.
    pub fn new(store: Arc<dyn Store>, signer: Arc<GrantSigner>) -> Self {
        Self { store, signer }
    }

    /// Save `documents` (YAML guardrails) as the next version, by `author` for `reason`.
    pub async fn save(
        &self,
        documents: &str,
        author: &str,
        reason: &str,
    ) -> Result<GuardrailVersion, VersionsError> {
        self.save_as(documents, author, reason, None).await
    }

    /// Save the guardrails of version `number` again as the next version.
    pub async fn rollback(
        &self,
        number: i64,
        author: &str,
        reason: &str,
    ) -> Result<GuardrailVersion, VersionsError> {
        let old = self.verified(number).await?;
        self.save_as(&old.documents, author, reason, Some(number))
            .await
    }

    /// Save the shipped library as version 1 if the store has no version yet.
    pub async fn seed(&self) -> Result<Option<GuardrailVersion>, VersionsError> {
        if self.store.latest_guardrail_version().await?.is_some() {
            return Ok(None);
        }
        match self
            .save(&library(), SEED_AUTHOR, "the shipped guardrail library")
            .await
        {
            Ok(v) => Ok(Some(v)),
            // Another replica seeded first (saving, or saved before this one read the newest).
            Err(VersionsError::Raced | VersionsError::Unchanged(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn save_as(
        &self,
        documents: &str,
        author: &str,
        reason: &str,
        rollback_of: Option<i64>,
    ) -> Result<GuardrailVersion, VersionsError> {
        let reason = check_reason(reason)?;
        let parts = split_documents("guardrails", documents)?;
        let text = join_documents(parts.iter().map(|(_, d)| d.as_str()));
        let mut unit = self.store.begin().await?;
        let latest = unit.latest_guardrail_version().await?;
        if let Some(latest) = latest {
            // A forged newest version must not stop the change that replaces it.
            match self.verified(latest).await {
                Ok(current) if current.documents == text => {
                    return Err(VersionsError::Unchanged(latest))
                }
                Ok(_) | Err(VersionsError::Version(VersionError::Forged(_))) => {}
                Err(e) => return Err(e),
            }
        }
        let number = latest.unwrap_or(0) + 1;
        let version =
            GuardrailVersion::sealed(number, clock::now(), author, reason, text, &self.signer);
        if !unit.insert_guardrail_version(&version).await? {
            return Err(VersionsError::Raced);
        }
        let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
        unit.append_audit(&AuditEvent::new(
            "guardrails.saved",
            author,
            &version.name(),
            json!({
                "number": number, "digest": version.digest, "reason": reason,
                "previous": latest, "rollbackOf": rollback_of, "guardrails": names,
            }),
        ))
        .await?;
        unit.commit().await?;
        self.store
            .announce(GUARDRAIL_CHANNEL, &number.to_string())
            .await;
        Ok(version)
    }

    /// Version `number`, its seal checked.
    pub async fn verified(&self, number: i64) -> Result<GuardrailVersion, VersionsError> {
        let version = self
            .store
            .guardrail_version(number)
            .await?
            .ok_or(VersionsError::NotFound(number))?;
        version.verified(&self.signer)?;
        Ok(version)
    }

    /// The newest versions, newest first (seals not checked: for listing).
    pub async fn list(&self, limit: i64) -> Result<Vec<GuardrailVersion>, VersionsError> {
        Ok(self.store.guardrail_versions(limit).await?)
    }

    /// The newest version as a snapshot to put in force, its seal checked; `None` if none is saved.
    pub async fn newest(&self) -> Result<Option<(i64, Snapshot)>, VersionsError> {
        let Some(number) = self.store.latest_guardrail_version().await? else {
            return Ok(None);
        };
        self.snapshot(number).await.map(|s| Some((number, s)))
    }

    /// Version `number` as a snapshot, its seal checked.
    pub async fn snapshot(&self, number: i64) -> Result<Snapshot, VersionsError> {
        let version = self
            .store
            .guardrail_version(number)
            .await?
            .ok_or(VersionsError::NotFound(number))?;
        let guardrails = version.verified(&self.signer)?;
        Ok(Snapshot::new(guardrails, version.name()))
    }
}

/// Put every newer version in force in `live` as it is saved, here or on another replica, until the
/// task is dropped. `in_force` is the number of the version `live` holds; `anchor`, if any, records
/// each one put in force. A version that fails its seal is refused (the one in force stays,
/// degraded) and not tried again.
pub async fn keep_following(
    versions: Versions,
    live: Arc<LiveGuardrails>,
    mut in_force: i64,
    every: Duration,
    anchor: Option<super::anchor::VersionAnchor>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut feed = versions.store.feed(GUARDRAIL_CHANNEL).await.ok().flatten();
    let mut refused = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            pushed = async {
                match feed.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if pushed.is_none() {
                    // The feed is gone; polling carries on alone.
                    feed = None;
                }
            }
        }
        let newest = match versions.store.latest_guardrail_version().await {
            Ok(Some(n)) if n > in_force && refused != Some(n) => n,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "looking for a newer guardrail version failed");
                continue;
            }
        };
        match versions.snapshot(newest).await {
            Ok(snapshot) => {
                tracing::info!(version = %snapshot.version(), guardrails = snapshot.guardrails().len(), "guardrail version put in force");
                live.publish(snapshot);
                in_force = newest;
                refused = None;
                if let Some(anchor) = &anchor {
                    anchor.raise(newest);
                }
            }
            Err(VersionsError::Store(e)) => {
                tracing::debug!(error = %e, "reading guardrail version {newest} failed");
            }
            Err(e) => {
                tracing::error!(error = %e, in_force = %live.load().version(), "guardrail version refused; the one in force stays");
                live.refuse(e.to_string());
                refused = Some(newest);
            }
        }
    }
}
