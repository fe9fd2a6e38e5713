//! The life of an elevation: a challenge is confirmed with a step-up, countersigned by approvers
//! where its guardrail says so, becomes a signed grant, is used and may be revoked.
//!
//! It knows neither HTTP nor sessions: the portal, the webhook and the CLI call it with who acts
//! and the proof of their step-up, and each turns its [`ElevationError`] into an answer. Every
//! step that changes an elevation is one unit of work in the store, its audit record included.

mod admit;
mod bus;
mod error;
pub mod rules;
pub mod seal;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::audit::queue::AuditQueue;
use crate::audit::AuditEvent;
use crate::challenges::{
    ApprovalCase, ApprovalDecision, ApprovalRecord, Challenge, ChallengeCache, ChallengeLimits,
    ChallengeStatus, Closed,
};
use crate::grants::{ApproverEvidence, Evidence, Grant, GrantCache, GrantClaims, GrantSigner};
use crate::identity::mapping::{Authority, IdentityMap};
use crate::policy::{ApprovalPolicy, ReasonRule, MAX_REASON_CHARS};
use crate::store::{AnyStore, Store, StoreError, UnitOfWork};

pub use admit::{Admission, Covered, OpenChallenge};
pub use bus::{relay, EventBus, ELEVATION_CHANNEL};
pub use error::ElevationError;
pub use rules::{Refusal, Tally};

/// Someone acting on an elevation, as the portal or the CLI established them.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Account username (local) or mapped Kubernetes username (identity provider).
    pub account: String,
    /// Groups their account or token carries.
    pub groups: Vec<String>,
}

/// What happened to an elevation, for live pages and notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Happened {
    /// The requester confirmed; approvers are asked.
    AwaitingApproval,
    /// One approver approved; more are needed.
    Approved,
    /// An approver rejected it.
    Rejected,
    /// The requester withdrew it.
    Withdrawn,
    /// Nobody decided in time.
    Expired,
    /// The grant was issued.
    Granted,
    /// The grant was issued by break glass.
    BrokeGlass,
    /// The grant was revoked.
    Revoked,
}

/// One change to one challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElevationEvent {
    /// Challenge code.
    pub code: String,
    /// What happened.
    pub happened: Happened,
    /// Who made it happen (empty for a timeout).
    pub by: String,
    /// Unix seconds.
    pub at: i64,
    /// Heard from another replica (PostgreSQL `NOTIFY`), not committed here: any database role can
    /// send one, so it is only a hint to read committed state again (pages), never a notice to
    /// post (the replica that committed the change posts it).
    #[serde(skip)]
    pub relayed: bool,
}

/// Where a confirmation left the challenge.
#[derive(Debug)]
pub enum Confirmed {
    /// A step-up guardrail: the grant is issued.
    Granted(Box<Grant>),
    /// An approval guardrail: it now waits for its approvers.
    Awaiting(Box<Challenge>),
}

/// Where a decision left the challenge.
#[derive(Debug)]
pub enum Decided {
    /// Approved, and more approvers are needed.
    Counted(Tally),
    /// Approved, and the threshold is met: the grant is issued.
    Granted(Box<Grant>),
    /// Rejected: it is over.
    Rejected,
}

/// The elevation service.
pub struct Elevation {
    store: Arc<dyn AnyStore>,
    signer: Arc<GrantSigner>,
    grants: Arc<GrantCache>,
    challenges: Arc<ChallengeCache>,
    identities: Arc<IdentityMap>,
    issuer: String,
    events: EventBus,
    metrics: Arc<crate::webhook::metrics::Metrics>,
    /// The cluster whose requests it admits (part of every digest and grant).
    cluster: String,
    /// How many open challenges one person and everyone may have.
    limits: ChallengeLimits,
    /// Where audit records that need not hold up an answer wait (none: appended at once).
    audit: Option<Arc<AuditQueue>>,
    /// The guardrails in force, whose approval rules, where tighter than a waiting challenge's
    /// sealed one, apply to it too (none: the sealed rule alone).
    guardrails: Option<Arc<crate::engine::LiveGuardrails>>,
}

impl Elevation {
    /// The service over a store, a signing key and this process's caches.
    pub fn new(
        store: Arc<dyn AnyStore>,
        signer: Arc<GrantSigner>,
        grants: Arc<GrantCache>,
        challenges: Arc<ChallengeCache>,
        identities: Arc<IdentityMap>,
        issuer: String,
        events: EventBus,
    ) -> Self {
        Self {
            store,
            signer,
            grants,
            challenges,
            identities,
            issuer,
            events,
            metrics: Arc::default(),
            cluster: String::new(),
            limits: ChallengeLimits::default(),
            audit: None,
            guardrails: None,
        }
    }

    /// Judge waiting approvals by the guardrails in force as well as by the rule sealed when each
    /// challenge opened: a rule tightened since (more approvers, a group removed, break glass
    /// removed) applies to them; one loosened since does not.
    pub fn with_guardrails(mut self, guardrails: Arc<crate::engine::LiveGuardrails>) -> Self {
        self.guardrails = Some(guardrails);
        self
    }

    /// The rule a waiting challenge must meet now: its sealed rule and the current rule of each of
    /// its guardrails still in force, all together (see [`ApprovalPolicy::all_of`]).
    fn rule_now(&self, challenge: &Challenge, sealed: &ApprovalPolicy) -> ApprovalPolicy {
        let Some(live) = &self.guardrails else {
            return sealed.clone();
        };
        let snapshot = live.load();
        let mut rules = vec![sealed];
        rules.extend(
            challenge
                .guardrails()
                .filter_map(|id| snapshot.guardrail(id)?.action.approval.as_ref()),
        );
        ApprovalPolicy::all_of(&rules).unwrap_or_else(|| sealed.clone())
    }

    /// Admit requests of `cluster`, within `limits`, queueing audit records that need not hold up
    /// an answer on `audit` (see [`Elevation::admit`]).
    pub fn for_admission(
        mut self,
        cluster: &str,
        limits: ChallengeLimits,
        audit: Arc<AuditQueue>,
    ) -> Self {
        cluster.clone_into(&mut self.cluster);
        self.limits = limits;
        self.audit = Some(audit);
        self
    }

    /// Count into these metrics (the process's, served at `/metrics`) rather than its own.
    pub fn with_metrics(mut self, metrics: Arc<crate::webhook::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// How many times a challenge or approval whose seal did not hold (someone wrote the
    /// database) was refused.
    pub fn tampered_total(&self) -> u64 {
        self.metrics.elevations_tampered()
    }

    /// The unit back when what it read is as this service sealed it (`intact`); otherwise the unit
    /// is abandoned and the refusal counted and audited outside it (it holds the write lock).
    async fn sealed(
        &self,
        unit: Box<dyn UnitOfWork>,
        intact: bool,
        code: &str,
        what: &'static str,
    ) -> Result<Box<dyn UnitOfWork>, ElevationError> {
        if intact {
            return Ok(unit);
        }
        drop(unit);
        self.metrics.elevation_tampered();
        tracing::error!(challenge = %code, what, "stored elevation state does not match its seal; refused");
        let event = AuditEvent::new(
            "elevation.tampered",
            "countersign",
            code,
            serde_json::json!({ "what": what }),
        );
        if let Err(e) = self.store.append_audit(&event).await {
            tracing::error!(error = %e, "audit append failed for a tampered elevation");
        }
        Err(ElevationError::Tampered(what))
    }

    /// The person behind a name (see [`IdentityMap::person_of`]).
    fn person<'a>(&'a self, name: &'a str) -> &'a str {
        self.identities.person_of(name)
    }

    /// Changes as they happen in this process.
    pub fn subscribe(&self) -> broadcast::Receiver<ElevationEvent> {
        self.events.subscribe()
    }

    /// Why `actor` may act for the challenge's subject, or why not.
    fn authority_of(
        &self,
        actor: &Actor,
        challenge: &Challenge,
    ) -> Result<Authority, ElevationError> {
        let subject = &challenge.request.username;
        self.identities
            .authority(&actor.account, &actor.groups, subject)
            .ok_or_else(|| ElevationError::NotYours {
                subject: subject.clone(),
                confirmers: self.identities.confirmers_of(subject),
            })
    }

    /// The actor's groups with those the identity mapping adds.
    fn groups_of(&self, actor: &Actor) -> Vec<String> {
        let mut groups = actor.groups.clone();
        for g in self.identities.groups_of(&actor.account) {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
        groups
    }

    /// The requester (or an owner of the requesting service account) confirms with a fresh step-up:
    /// a step-up guardrail's grant is issued; an approval guardrail's challenge goes to its
    /// approvers, with the reason given.
    pub async fn confirm(
        &self,
        code: &str,
        actor: &Actor,
        step_up: Evidence,
        reason: Option<&str>,
        now: i64,
    ) -> Result<Confirmed, ElevationError> {
        let mut unit = self.store.begin().await?;
        let mut challenge = held(&mut *unit, code).await?;
        self.authority_of(actor, &challenge)?;
        if !challenge.is_open(now) {
            return Err(closed(&challenge, now));
        }
        fresh(&challenge, &step_up, now)?;
        let intact = seal::challenge_intact(&self.signer, &challenge);
        let mut unit = self
            .sealed(unit, intact, &challenge.code, "challenge")
            .await?;
        let Some(mut case) = challenge.approval.take() else {
            let grants = self
                .issue(&mut *unit, &mut challenge, step_up, None, now)
                .await?;
            unit.commit().await?;
            self.granted(&challenge, &grants, Happened::Granted, &actor.account, now);
            return Ok(Confirmed::Granted(Box::new(grants[0].clone())));
        };
        let reason = checked_reason(reason, case.rule.reason)?;
        case.reason = reason.clone();
        case.confirmed_by = Some(actor.account.clone());
        case.requester_evidence = Some(step_up.clone());
        case.confirmed_at = Some(now);
        let (groups, count) = (case.rule.groups.clone(), case.rule.count);
        challenge.approval = Some(case);
        challenge.status = ChallengeStatus::Awaiting;
        unit.update_challenge(&challenge).await?;
        unit.append_audit(&AuditEvent::new(
            "approval.requested",
            &actor.account,
            &challenge.code,
            serde_json::json!({
                "guardrail": challenge.guardrail, "subject": challenge.request.username,
                "reason": reason, "groups": groups, "count": count,
                "expiresAt": challenge.expires_at, "evidence": step_up,
            }),
        ))
        .await?;
        unit.commit().await?;
        self.announce(
            &challenge.code,
            Happened::AwaitingApproval,
            &actor.account,
            now,
        );
        Ok(Confirmed::Awaiting(Box::new(challenge)))
    }

    /// An approver approves or rejects, each time with their own fresh step-up. Any rejection
    /// ends the challenge; the approval that meets the threshold issues the grant, whose ttl
    /// starts then.
    pub async fn decide(
        &self,
        code: &str,
        approver: &Actor,
        decision: ApprovalDecision,
        reason: &str,
        step_up: Evidence,
        now: i64,
    ) -> Result<Decided, ElevationError> {
        let mut unit = self.store.begin().await?;
        let mut challenge = held(&mut *unit, code).await?;
        let (groups, case) = self.decider_groups(&challenge, approver, now)?;
        fresh(&challenge, &step_up, now)?;
        let intact = seal::challenge_intact(&self.signer, &challenge);
        let mut unit = self
            .sealed(unit, intact, &challenge.code, "challenge")
            .await?;
        let reason = match decision {
            // A rejection is explained to the requester; an approval may speak for itself.
            ApprovalDecision::Reject => checked_reason(
                Some(reason),
                ReasonRule {
                    required: true,
                    min_length: 1,
                },
            )?,
            ApprovalDecision::Approve => checked_reason(Some(reason), ReasonRule::default())?,
        }
        .unwrap_or_default();
        let mut record = ApprovalRecord {
            challenge_code: challenge.code.clone(),
            person: self.person(&approver.account).to_owned(),
            approver: approver.account.clone(),
            decision,
            reason: reason.clone(),
            groups: groups.clone(),
            evidence: step_up.clone(),
            decided_at: now,
            seal: String::new(),
        };
        seal::seal_approval(&self.signer, &mut record);
        if !unit.put_approval(&record).await? {
            return Err(ElevationError::AlreadyDecided);
        }
        let kind = match decision {
            ApprovalDecision::Approve => "approval.approved",
            ApprovalDecision::Reject => "approval.rejected",
        };
        unit.append_audit(&AuditEvent::new(
            kind,
            &approver.account,
            &challenge.code,
            serde_json::json!({
                "guardrail": challenge.guardrail, "subject": challenge.request.username,
                "reason": reason, "groups": groups, "evidence": step_up,
            }),
        ))
        .await?;
        if decision == ApprovalDecision::Reject {
            challenge.status = ChallengeStatus::Rejected;
            if let Some(case) = challenge.approval.as_mut() {
                case.closed = Some(Closed {
                    by: approver.account.clone(),
                    at: now,
                    reason,
                });
            }
            unit.update_challenge(&challenge).await?;
            unit.commit().await?;
            self.challenges
                .granted(&challenge.digest, &challenge.guardrail);
            self.announce(&challenge.code, Happened::Rejected, &approver.account, now);
            return Ok(Decided::Rejected);
        }
        let stored = unit.approvals(&challenge.code).await?;
        let intact = stored
            .iter()
            .all(|a| seal::approval_intact(&self.signer, a));
        let mut unit = self
            .sealed(unit, intact, &challenge.code, "approval")
            .await?;
        let approvals = self.as_they_stand(stored).await?;
        let tally = rules::tally(&self.rule_now(&challenge, &case.rule), &approvals);
        if !tally.is_met() {
            unit.commit().await?;
            self.announce(&challenge.code, Happened::Approved, &approver.account, now);
            return Ok(Decided::Counted(tally));
        }
        let mut evidence = case.requester_evidence.clone().unwrap_or_default();
        evidence.reason = case.reason.clone();
        evidence.approvals = approvals
            .iter()
            .filter(|a| a.decision == ApprovalDecision::Approve)
            .map(|a| ApproverEvidence {
                approver: a.approver.clone(),
                groups: a.groups.clone(),
                reason: a.reason.clone(),
                decided_at: a.decided_at,
                step_up: a.evidence.clone(),
            })
            .collect();
        let grants = self
            .issue(&mut *unit, &mut challenge, evidence, None, now)
            .await?;
        unit.commit().await?;
        self.granted(
            &challenge,
            &grants,
            Happened::Granted,
            &approver.account,
            now,
        );
        Ok(Decided::Granted(Box::new(grants[0].clone())))
    }

    /// The approvals as they count now: an approver whose local account has since been disabled
    /// no longer counts, and one whose groups changed counts with the groups they hold now (an
    /// identity-provider approver's groups are those of the sign-in they decided with).
    async fn as_they_stand(
        &self,
        approvals: Vec<ApprovalRecord>,
    ) -> Result<Vec<ApprovalRecord>, ElevationError> {
        let mut standing = Vec::with_capacity(approvals.len());
        for mut approval in approvals {
            if approval.decision == ApprovalDecision::Approve {
                if let Some(user) = self.store.user_by_username(&approval.approver).await? {
                    if self.store.disabled_at(&user.user_id).await?.is_some() {
                        continue;
                    }
                    let mut now_held = user.groups;
                    now_held.extend(self.identities.groups_of(&user.username).iter().cloned());
                    approval.groups.retain(|g| now_held.contains(g));
                }
            }
            standing.push(approval);
        }
        Ok(standing)
    }

    /// Whether `approver` may decide the challenge `code` now (before they are asked to step up).
    pub async fn check_decider(
        &self,
        code: &str,
        approver: &Actor,
        now: i64,
    ) -> Result<Challenge, ElevationError> {
        if !crate::challenges::is_code(code) {
            return Err(ElevationError::NotFound);
        }
        let challenge = self
            .store
            .challenge(code)
            .await?
            .ok_or(ElevationError::NotFound)?;
        self.decider_groups(&challenge, approver, now)?;
        Ok(challenge)
    }

    /// Whether `approver` may decide `challenge` at `now` (for pages; the decision checks again).
    pub fn may_decide(
        &self,
        challenge: &Challenge,
        approver: &Actor,
        now: i64,
    ) -> Result<(), ElevationError> {
        self.decider_groups(challenge, approver, now).map(|_| ())
    }

    /// Whether an approver's groups name any group of the rule (who sees it in their queue).
    pub fn concerns(&self, challenge: &Challenge, approver: &Actor) -> bool {
        let groups = self.groups_of(approver);
        challenge.approval.as_ref().is_some_and(|case| {
            case.rule
                .groups
                .iter()
                .flatten()
                .any(|g| groups.contains(g))
        })
    }

    /// The approver's groups (and the challenge's approval case), if they may decide `challenge`
    /// at `now`.
    fn decider_groups(
        &self,
        challenge: &Challenge,
        approver: &Actor,
        now: i64,
    ) -> Result<(Vec<String>, ApprovalCase), ElevationError> {
        let Some(case) = &challenge.approval else {
            return Err(ElevationError::NotNow("this request needs no approval"));
        };
        if challenge.status == ChallengeStatus::Pending && challenge.expires_at > now {
            return Err(ElevationError::NotNow(
                "the requester has not confirmed this request yet",
            ));
        }
        if !challenge.is_awaiting(now) {
            return Err(closed(challenge, now));
        }
        let groups = self.groups_of(approver);
        let authority =
            self.identities
                .authority(&approver.account, &groups, &challenge.request.username);
        rules::may_decide(
            &case.rule,
            self.person(&challenge.request.username),
            self.person(&approver.account),
            &groups,
            authority,
            case.confirmed_by.as_deref().map(|c| self.person(c)),
        )
        .map_err(ElevationError::Refused)?;
        Ok((groups, case.clone()))
    }

    /// The requester takes an open request back; approvers can no longer decide it.
    pub async fn withdraw(
        &self,
        code: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<(), ElevationError> {
        let mut unit = self.store.begin().await?;
        let mut challenge = held(&mut *unit, code).await?;
        self.authority_of(actor, &challenge)?;
        if !(challenge.is_open(now) || challenge.is_awaiting(now)) {
            return Err(closed(&challenge, now));
        }
        challenge.status = ChallengeStatus::Withdrawn;
        if let Some(case) = challenge.approval.as_mut() {
            case.closed = Some(Closed {
                by: actor.account.clone(),
                at: now,
                reason: String::new(),
            });
        }
        unit.update_challenge(&challenge).await?;
        unit.append_audit(&AuditEvent::new(
            "approval.withdrawn",
            &actor.account,
            &challenge.code,
            serde_json::json!({ "guardrail": challenge.guardrail, "subject": challenge.request.username }),
        ))
        .await?;
        unit.commit().await?;
        self.challenges
            .granted(&challenge.digest, &challenge.guardrail);
        self.announce(&challenge.code, Happened::Withdrawn, &actor.account, now);
        Ok(())
    }

    /// Break glass: a member of the guardrail's break-glass groups approves their own request,
    /// with a reason and a fresh step-up. The grant is short-lived and marked for every reader.
    pub async fn break_glass(
        &self,
        code: &str,
        actor: &Actor,
        reason: &str,
        step_up: Evidence,
        now: i64,
    ) -> Result<Grant, ElevationError> {
        let mut unit = self.store.begin().await?;
        let mut challenge = held(&mut *unit, code).await?;
        self.authority_of(actor, &challenge)?;
        if !(challenge.is_open(now) || challenge.is_awaiting(now)) {
            return Err(closed(&challenge, now));
        }
        let Some(case) = challenge.approval.clone() else {
            return Err(ElevationError::NoBreakGlass(
                "this request needs no approval",
            ));
        };
        let Some(glass) = self.rule_now(&challenge, &case.rule).break_glass else {
            return Err(ElevationError::NoBreakGlass(
                "this guardrail allows no break glass",
            ));
        };
        let groups = self.groups_of(actor);
        if !glass.groups.iter().any(|g| groups.contains(g)) {
            return Err(ElevationError::NoBreakGlass(
                "none of your groups may break the glass for this guardrail",
            ));
        }
        fresh(&challenge, &step_up, now)?;
        let intact = seal::challenge_intact(&self.signer, &challenge);
        let mut unit = self
            .sealed(unit, intact, &challenge.code, "challenge")
            .await?;
        let reason = checked_reason(
            Some(reason),
            ReasonRule {
                required: true,
                min_length: case.rule.reason.min_length.max(1),
            },
        )?;
        let mut evidence = step_up;
        evidence.reason = reason.clone();
        evidence.break_glass = true;
        if let Some(case) = challenge.approval.as_mut() {
            case.reason = reason.clone();
            case.confirmed_by = Some(actor.account.clone());
            case.confirmed_at = Some(now);
        }
        // Never longer than an approved grant would live.
        let ttl = glass.ttl_secs.min(challenge.grant_ttl_secs);
        let grants = self
            .issue(&mut *unit, &mut challenge, evidence, Some(ttl), now)
            .await?;
        let grant = grants[0].clone();
        unit.append_audit(&AuditEvent::new(
            "grant.break_glass",
            &actor.account,
            &grant.id,
            serde_json::json!({
                "challenge": challenge.code, "guardrail": challenge.guardrail,
                "subject": challenge.request.username, "reason": reason, "groups": groups,
                "expiresAt": grant.expires_at,
            }),
        ))
        .await?;
        unit.commit().await?;
        self.granted(
            &challenge,
            &grants,
            Happened::BrokeGlass,
            &actor.account,
            now,
        );
        Ok(grant)
    }

    /// Mark open challenges past their time as expired, audit the ones approvers were waiting
    /// on and announce them (run periodically). The expiry and its records are one unit.
    pub async fn expire(&self, now: i64) -> Result<usize, ElevationError> {
        let mut unit = self.store.begin().await?;
        let expired = unit.expire_due(now).await?;
        for challenge in expired.iter().filter(|c| c.needs_approval()) {
            unit.append_audit(&AuditEvent::new(
                "approval.expired",
                "countersign",
                &challenge.code,
                serde_json::json!({ "guardrail": challenge.guardrail, "subject": challenge.request.username }),
            ))
            .await?;
        }
        unit.commit().await?;
        for challenge in expired.iter().filter(|c| c.needs_approval()) {
            self.announce(&challenge.code, Happened::Expired, "", now);
        }
        Ok(expired.len())
    }

    /// Revoke a grant, by `actor`; see [`revoke`].
    /// Announced like any other elevation event, so the requester's open page shows it at once.
    pub async fn revoke(&self, grant_id: &str, actor: &str) -> Result<Revocation, StoreError> {
        let (revocation, grant) =
            revoke_read(self.store.as_ref(), Some(&self.grants), grant_id, actor).await?;
        if let (Revocation::Revoked, Some(grant)) = (revocation, grant) {
            self.announce(
                &grant.challenge_code,
                Happened::Revoked,
                actor,
                crate::clock::now(),
            );
        }
        Ok(revocation)
    }

    /// Sign and store the grants for `challenge`, one per guardrail it stands for (all with its
    /// terms, so each is checked against its own guardrail where it is used), and audit them, in
    /// `unit`. The first is the one the challenge names.
    async fn issue(
        &self,
        unit: &mut dyn UnitOfWork,
        challenge: &mut Challenge,
        evidence: Evidence,
        ttl_secs: Option<i64>,
        now: i64,
    ) -> Result<Vec<Grant>, ElevationError> {
        let mut grants = Vec::new();
        for guardrail in challenge.guardrails() {
            let mut grant = Grant::for_challenge(challenge, evidence.clone(), now);
            guardrail.clone_into(&mut grant.guardrail);
            if let Some(ttl) = ttl_secs {
                grant.expires_at = now + ttl;
            }
            grant.token = self.signer.sign(&GrantClaims::of(&grant, &self.issuer));
            grants.push(grant);
        }
        challenge.status = ChallengeStatus::Granted;
        challenge.grant_id = grants.first().map(|g| g.id.clone());
        unit.update_challenge(challenge).await?;
        for grant in &grants {
            unit.insert_grant(grant).await?;
            unit.append_audit(&AuditEvent::new(
                "grant.issued",
                &grant.evidence.account,
                &grant.id,
                serde_json::json!({
                    "challenge": challenge.code, "guardrail": grant.guardrail, "scope": grant.scope.as_str(),
                    "expiresAt": grant.expires_at, "evidence": grant.evidence,
                }),
            ))
            .await?;
        }
        Ok(grants)
    }

    /// Committed grants go live for this process's webhook at once.
    fn granted(
        &self,
        challenge: &Challenge,
        grants: &[Grant],
        happened: Happened,
        by: &str,
        now: i64,
    ) {
        for grant in grants {
            self.grants
                .insert(&crate::grants::LiveGrant::from(grant), now);
        }
        self.challenges
            .granted(&challenge.digest, &challenge.guardrail);
        self.announce(&challenge.code, happened, by, now);
    }

    fn announce(&self, code: &str, happened: Happened, by: &str, at: i64) {
        let event = ElevationEvent {
            code: code.to_owned(),
            happened,
            by: by.to_owned(),
            at,
            relayed: false,
        };
        self.events.publish(&self.store, event);
    }
}

/// How often open challenges past their time are closed and announced.
pub const EXPIRE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Close expired challenges every [`EXPIRE_EVERY`], so waiting pages and approvers learn when
/// time ran out (run for the life of the server).
pub async fn keep_expiring(elevation: Elevation) {
    let mut every = tokio::time::interval(EXPIRE_EVERY);
    loop {
        every.tick().await;
        if let Err(e) = elevation.expire(crate::clock::now()).await {
            tracing::warn!(error = %e, "could not expire challenges; trying again shortly");
        }
    }
}

/// The challenge, held for the unit.
async fn held(unit: &mut dyn UnitOfWork, code: &str) -> Result<Challenge, ElevationError> {
    if !crate::challenges::is_code(code) {
        return Err(ElevationError::NotFound);
    }
    unit.challenge(code).await?.ok_or(ElevationError::NotFound)
}

/// Why a challenge cannot go further, in words.
fn closed(challenge: &Challenge, now: i64) -> ElevationError {
    ElevationError::Closed(match challenge.status_at(now) {
        ChallengeStatus::Granted => "granted already",
        ChallengeStatus::Rejected => "rejected",
        ChallengeStatus::Withdrawn => "withdrawn",
        ChallengeStatus::Awaiting => "waiting for approvers",
        ChallengeStatus::Pending => "waiting for its requester",
        ChallengeStatus::Expired => "expired",
    })
}

/// A step-up counts only when the person was verified, recently enough for the guardrail.
fn fresh(challenge: &Challenge, step_up: &Evidence, now: i64) -> Result<(), ElevationError> {
    if !step_up.user_verified || now - step_up.auth_time > challenge.freshness_secs {
        return Err(ElevationError::StaleStepUp(challenge.freshness_secs));
    }
    Ok(())
}

/// A reason trimmed and checked against `rule`; `None` when none was given and none is needed.
pub fn checked_reason(
    reason: Option<&str>,
    rule: ReasonRule,
) -> Result<Option<String>, ElevationError> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let Some(reason) = reason else {
        return if rule.required {
            Err(ElevationError::BadReason(
                "Please say why this is needed.".into(),
            ))
        } else {
            Ok(None)
        };
    };
    let chars = reason.chars().count() as u32;
    if chars < rule.min_length {
        return Err(ElevationError::BadReason(format!(
            "Please give a reason of at least {} characters, so approvers know what this is for.",
            rule.min_length
        )));
    }
    if chars > MAX_REASON_CHARS || reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ElevationError::BadReason(format!(
            "A reason can be at most {MAX_REASON_CHARS} characters long, without control characters."
        )));
    }
    Ok(Some(reason.to_owned()))
}

/// How a revocation went.
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
/// Other processes drop it when it is pushed to them (PostgreSQL) or on their next revocation poll;
/// a limited grant can no longer be spent anywhere from now on, since spending checks `revoked_at`
/// in the store.
pub async fn revoke(
    store: &dyn Store,
    cache: Option<&GrantCache>,
    grant_id: &str,
    actor: &str,
) -> Result<Revocation, StoreError> {
    Ok(revoke_read(store, cache, grant_id, actor).await?.0)
}

/// [`revoke`], with the grant it read (for the announcement that names its challenge). The other
/// grants issued for the same challenge (one per guardrail the request tripped) are revoked with
/// it: together they were one permission.
async fn revoke_read(
    store: &dyn Store,
    cache: Option<&GrantCache>,
    grant_id: &str,
    actor: &str,
) -> Result<(Revocation, Option<Grant>), StoreError> {
    let now = crate::clock::now();
    let Some(grant) = store.grant(grant_id).await? else {
        return Ok((Revocation::Unknown, None));
    };
    let mut together = store.challenge_grants(&grant.challenge_code).await?;
    together.retain(|g| g.id != grant.id);
    together.insert(0, grant.clone());
    // The revocations and their records are one unit: none lands without the others.
    let mut unit = store.begin().await?;
    let mut revoked = Vec::new();
    for g in &together {
        if unit.revoke_grant(&g.id, now, actor).await? {
            unit.append_audit(&AuditEvent::new(
                "grant.revoked",
                actor,
                &g.id,
                serde_json::json!({
                    "username": g.username, "guardrail": g.guardrail, "challenge": g.challenge_code,
                }),
            ))
            .await?;
            revoked.push(g);
        }
    }
    unit.commit().await?;
    if let Some(cache) = cache {
        // Dropped whatever the store said: a revoked or expired grant must not admit anything.
        for g in &together {
            cache.revoke(&g.username, &g.guardrail, &g.id, g.expires_at);
        }
    }
    if !revoked.iter().any(|g| g.id == grant.id) {
        return Ok((Revocation::NotLive, Some(grant)));
    }
    // Other replicas listening drop them at once (PostgreSQL; they poll on SQLite).
    for g in revoked {
        store
            .announce(crate::store::REVOCATION_CHANNEL, &g.id)
            .await;
    }
    Ok((Revocation::Revoked, Some(grant)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_trimmed_and_bounded() {
        let need10 = ReasonRule {
            required: true,
            min_length: 10,
        };
        assert!(matches!(
            checked_reason(None, need10),
            Err(ElevationError::BadReason(_))
        ));
        assert!(matches!(
            checked_reason(Some("  short  "), need10),
            Err(ElevationError::BadReason(_))
        ));
        assert_eq!(
            checked_reason(Some("  incident 4411 rollback "), need10).unwrap(),
            Some("incident 4411 rollback".into())
        );
        assert_eq!(
            checked_reason(Some("   "), ReasonRule::default()).unwrap(),
            None
        );
        let long = "x".repeat(MAX_REASON_CHARS as usize + 1);
        assert!(checked_reason(Some(&long), ReasonRule::default()).is_err());
    }
}
