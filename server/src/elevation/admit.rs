//! The admission half of an elevation: a described request that tripped guardrails needing a grant
//! gets either a covering grant (a use spent where uses are limited) or an open challenge.
//!
//! One function for every enforcement point: the admission webhook calls it for real and for
//! `--dry-run=server` requests, and the grant API and the authorization webhook are to call the same.
//! It takes the guardrail [`Snapshot`] that decided the request, never the one in force now, so a
//! swap during a review cannot give a challenge another version's terms.
//!
//! Grants come from the in-memory cache first; only a miss (a grant issued by another replica a
//! moment ago, or none at all) and spending a limited grant reach the store. An unlimited grant in
//! the cache admits with no store call, so it keeps working while the store is down; a request whose
//! challenge was handed out a moment ago is denied again from the challenge cache, also without one.

use crate::admission::{request_digest, AdmissionRequest};
use crate::audit::AuditEvent;
use crate::challenges::{guardrail_set, Challenge, Closed, LimitReached};
use crate::engine::{Decision, Hit, Snapshot};
use crate::grants::{object_key, CoveringGrant, GrantTarget, LiveGrant};
use crate::store::StoreError;

use super::{seal, Elevation, ElevationError};

/// How long after a rejection a retry of the same request is told about it.
const REJECTION_TOLD_SECS: i64 = 3600;

/// Tries at opening a challenge: a new code may collide with another one's.
const CREATE_TRIES: usize = 3;

/// What the elevation layer says about a request whose guardrails need grants.
#[derive(Debug)]
pub enum Admission {
    /// Every such guardrail has a grant covering the request.
    Admitted(Vec<Covered>),
    /// A challenge stands open for the guardrails without one.
    Challenged(OpenChallenge),
    /// No new challenge may be opened: one of the limits is reached.
    Limited {
        /// Which.
        limit: LimitReached,
        /// The ids of the guardrails that needed it.
        guardrails: Vec<String>,
    },
}

/// A guardrail and the grant that covers the request for it.
#[derive(Debug, Clone)]
pub struct Covered {
    /// Guardrail id.
    pub guardrail: String,
    /// The grant, as the cache knows it.
    pub grant: CoveringGrant,
}

/// The challenge a request is sent to.
#[derive(Debug, Clone)]
pub struct OpenChallenge {
    /// Code in its link.
    pub code: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The ids of the guardrails it stands for.
    pub guardrails: Vec<String>,
    /// Why the last request like it was rejected, when it was within the hour (told once, to the
    /// retry that opened this one).
    pub rejected: Option<Closed>,
}

impl Elevation {
    /// Find a covering grant, with a use spent, for every guardrail of `decision` that needs one,
    /// or the open challenge for those without (opening it in one unit of work with its audit
    /// record, within the open-challenge limits). A server-side dry run spends no use.
    pub async fn admit(
        &self,
        snapshot: &Snapshot,
        request: &AdmissionRequest,
        decision: &Decision,
        now: i64,
    ) -> Result<Admission, ElevationError> {
        let digest = request_digest(&self.cluster, request);
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
                guardrail: &hit.id,
                cluster: &self.cluster,
                digest: &digest,
                namespace: &request.namespace,
                object_key: &object,
            };
            self.grants.find(&target, now)
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
            let set = guardrail_set(missing.iter().map(|h| h.id.as_str()));
            if let Some(open) = self.challenges.find(&digest, &set, now) {
                return Ok(Admission::Challenged(OpenChallenge {
                    code: open.code,
                    expires_at: open.expires_at,
                    guardrails: ids(&missing),
                    rejected: None,
                }));
            }
            let mut uncovered = Vec::new();
            for hit in missing {
                self.load_stored(snapshot, username, &hit.id, now).await?;
                match find(hit) {
                    Some(grant) => covering.push((hit, grant)),
                    None => uncovered.push(hit),
                }
            }
            // Every guardrail still short of a grant shares one challenge, so one step-up (and
            // one round of approvals) lets the retry through.
            if !uncovered.is_empty() {
                return self
                    .challenge(snapshot, request, &uncovered, &digest, now)
                    .await;
            }
        }

        if !request.dry_run {
            if let Some(short) = self.spend(request, &covering, &digest, now).await? {
                // Another retry (here or on another replica) took the last use first, or it was
                // revoked: this guardrail needs a new elevation.
                return self
                    .challenge(snapshot, request, &[short], &digest, now)
                    .await;
            }
        }
        Ok(Admission::Admitted(
            covering
                .into_iter()
                .map(|(hit, grant)| Covered {
                    guardrail: hit.id.clone(),
                    grant,
                })
                .collect(),
        ))
    }

    /// Spend one use of every limited grant in `covering`, all or none, in one unit with the
    /// `grant.used` record; the hit whose grant had none left, if any. With only unlimited grants
    /// the record is queued instead, so the store is not on the path.
    async fn spend<'h>(
        &self,
        request: &AdmissionRequest,
        covering: &[(&'h Hit, CoveringGrant)],
        digest: &str,
        now: i64,
    ) -> Result<Option<&'h Hit>, ElevationError> {
        let username = request.user_info.username.as_str();
        let ids: Vec<&str> = covering.iter().map(|(_, g)| g.id.as_str()).collect();
        let guardrails: Vec<&str> = covering.iter().map(|(h, _)| h.id.as_str()).collect();
        let event = AuditEvent::new(
            "grant.used",
            username,
            &ids.join(","),
            serde_json::json!({ "uid": request.uid, "guardrails": guardrails, "digest": digest }),
        );
        let limited: Vec<&(&Hit, CoveringGrant)> =
            covering.iter().filter(|(_, g)| g.is_limited()).collect();
        if limited.is_empty() {
            self.record_later(event).await;
            return Ok(None);
        }
        let mut unit = self.store.begin().await?;
        for (hit, grant) in &limited {
            // One statement each, so two replicas cannot both take the last use.
            if !unit.consume_grant(&grant.id, now).await? {
                drop(unit);
                self.grants.used(username, &hit.id, &grant.id, true);
                return Ok(Some(hit));
            }
        }
        unit.append_audit(&event).await?;
        unit.commit().await?;
        for (hit, grant) in limited {
            self.grants.used(username, &hit.id, &grant.id, false);
        }
        Ok(None)
    }

    /// Append `event` off the answer's path when this service has a queue for it, else now.
    async fn record_later(&self, event: AuditEvent) {
        match &self.audit {
            Some(queue) => queue.record(event),
            None => {
                if let Err(e) = self.store.append_audit(&event).await {
                    tracing::error!(error = %e, kind = %event.kind, "audit append failed");
                }
            }
        }
    }

    /// Bring this user's stored grants for `guardrail` into the cache: only a row its signed token
    /// vouches for, within the guardrail as `snapshot` has it, is honoured (the database is not
    /// trusted to say what a grant covers).
    async fn load_stored(
        &self,
        snapshot: &Snapshot,
        username: &str,
        guardrail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let stored = self.store.live_grants(username, guardrail, now).await?;
        for grant in &stored {
            let policy = snapshot
                .guardrail(&grant.guardrail)
                .map(|g| (g, self.identities.as_ref()));
            match self
                .signer
                .vouch(&LiveGrant::from(grant), &grant.token, &self.issuer, policy)
            {
                Ok(live) => {
                    self.grants.insert(&live, now);
                    // A grant exists for that challenge: it is not open any more.
                    self.challenges.granted(&grant.digest, &grant.guardrail);
                }
                Err(reason) => {
                    self.metrics.grant_rejected();
                    tracing::error!(grant = %grant.id, %reason, "stored grant not honoured");
                }
            }
        }
        Ok(())
    }

    /// The open challenge for this request and these guardrails, or a new one if the limits allow.
    async fn challenge(
        &self,
        snapshot: &Snapshot,
        request: &AdmissionRequest,
        hits: &[&Hit],
        digest: &str,
        now: i64,
    ) -> Result<Admission, ElevationError> {
        let (challenge, opened) = match self
            .find_or_create(snapshot, request, hits, digest, now)
            .await?
        {
            Ok(found) => found,
            Err(limit) => {
                self.metrics.challenge_limited();
                tracing::warn!(user = %request.user_info.username, %limit, "challenge limit reached; denied without a new challenge");
                return Ok(Admission::Limited {
                    limit,
                    guardrails: ids(hits),
                });
            }
        };
        self.challenges.insert(&challenge, now);
        // The retry that follows a rejection opens a new challenge: it is told why, once.
        let rejected = if opened && challenge.needs_approval() {
            let since = now - REJECTION_TOLD_SECS;
            self.store
                .recent_rejection(&challenge.digest, &challenge.guardrail, since)
                .await?
                .and_then(|c| c.approval)
                .and_then(|a| a.closed)
        } else {
            None
        };
        Ok(Admission::Challenged(OpenChallenge {
            guardrails: ids(hits),
            code: challenge.code,
            expires_at: challenge.expires_at,
            rejected,
        }))
    }

    /// The open challenge for this digest and these guardrails, or a new one with the terms
    /// `snapshot` gives them (`true` when opened now). Looking, checking the limits, inserting and
    /// the audit record are one unit that holds the challenge lock, so concurrent creates (here or
    /// on another replica) are taken one after the other and cannot pass a limit together.
    async fn find_or_create(
        &self,
        snapshot: &Snapshot,
        request: &AdmissionRequest,
        hits: &[&Hit],
        digest: &str,
        now: i64,
    ) -> Result<Result<(Challenge, bool), LimitReached>, ElevationError> {
        let set = guardrail_set(hits.iter().map(|h| h.id.as_str()));
        // The terms come from the snapshot that decided, found by id.
        let guardrails = hits
            .iter()
            .map(|h| {
                snapshot
                    .guardrail(&h.id)
                    .ok_or_else(|| ElevationError::UnknownGuardrail(h.id.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let messages: Vec<&str> = hits
            .iter()
            .map(|h| h.message.as_str())
            .filter(|m| !m.is_empty())
            .collect();
        for _ in 0..CREATE_TRIES {
            let mut unit = self.store.begin().await?;
            unit.lock_challenges().await?;
            if let Some(existing) = unit.pending_challenge(digest, &set, now).await? {
                unit.commit().await?;
                return Ok(Ok((existing, false)));
            }
            let mut fresh = Challenge::new(
                &self.cluster,
                digest.to_owned(),
                &guardrails,
                messages.join(" "),
                request,
                now,
            );
            snapshot.version().clone_into(&mut fresh.policy_version);
            // What policy decided is sealed with the grant key, outside the database.
            seal::seal_challenge(&self.signer, &mut fresh);
            // Its size as the store keeps it (the same JSON).
            let bytes = serde_json::to_vec(&fresh).map_or(0, |b| b.len()) as i64;
            let usage = unit
                .open_challenge_usage(&fresh.request.username, now)
                .await?;
            if let Err(limit) = self.limits.check(&usage, bytes) {
                return Ok(Err(limit));
            }
            if unit.insert_challenge(&fresh).await? {
                unit.append_audit(&AuditEvent::new(
                    "challenge.created",
                    &fresh.request.username,
                    &fresh.code,
                    serde_json::json!({
                        "guardrail": fresh.guardrail, "uid": request.uid, "dryRun": request.dry_run,
                        "version": fresh.policy_version,
                    }),
                ))
                .await?;
                unit.commit().await?;
                return Ok(Ok((fresh, true)));
            }
        }
        Err(StoreError::Conflict("challenge").into())
    }
}

/// The hits' guardrail ids, in the challenge's order.
fn ids(hits: &[&Hit]) -> Vec<String> {
    let mut ids: Vec<String> = hits.iter().map(|h| h.id.clone()).collect();
    ids.sort_unstable();
    ids
}
