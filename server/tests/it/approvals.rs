//! The approval rules, run through the elevation service on both backends: peer AND manager,
//! count per group, no self-approval, one person counted once, rejection, timeout, withdrawal,
//! break glass, fresh step-ups, and two approvers racing for the last slot.

use std::sync::Arc;

use anyhow::{ensure, Context};
use countersign::admission::{parse_review, request_digest};
use countersign::audit::first_broken_link;
use countersign::challenges::{ApprovalDecision, Challenge, ChallengeCache, ChallengeStatus};
use countersign::clock;
use countersign::elevation::{
    Actor, Confirmed, Decided, Elevation, ElevationError, Happened, Refusal,
};
use countersign::grants::{Evidence, Grant, GrantCache};
use countersign::identity::mapping::IdentityMap;
use countersign::policy::Guardrail;

use crate::support::{evidence, fixture, on_both_backends, review, shared_signer, TestDb, CLUSTER};

on_both_backends!(
    peer_and_manager,
    count_per_group,
    no_self_approval,
    one_person_counts_once,
    rejection_ends_it,
    timeout,
    withdrawal,
    break_glass,
    fresh_step_up_every_time,
    race_for_the_last_slot,
    events_reach_other_replicas,
    review2_1a_no_self_approval_under_another_name,
    review2_1b_one_person_under_two_names_counts_once,
    review2_1c_owner_who_confirmed_approves_under_another_name,
    review2_3_database_writer_cannot_skip_approvals,
    review2_3_database_writer_cannot_widen_a_grant,
    review2_3_forged_approval_rows_never_count,
    review2_13_approvals_count_with_the_groups_held_now,
    review2_9_break_glass_never_outlives_the_grant_ttl,
    review2_14_a_forged_notify_posts_no_notice,
    review17_a_tightened_rule_applies_to_waiting_approvals_and_a_loosened_one_does_not,
);

const REASON: &str = "incident 4411: roll back the bad config";

fn guardrail() -> anyhow::Result<Guardrail> {
    let path = fixture("policies/approvals.yaml");
    let text = std::fs::read_to_string(&path)?;
    let mut all = countersign::policy::parse_documents(&path.display().to_string(), &text)?;
    all.pop().context("no guardrail in approvals.yaml")
}

struct Case {
    elevation: Elevation,
    bus: countersign::elevation::EventBus,
    grants: Arc<GrantCache>,
    guardrail: Guardrail,
}

impl Case {
    fn new(db: &TestDb) -> anyhow::Result<Self> {
        let grants = Arc::new(GrantCache::new(CLUSTER));
        let identities = IdentityMap::load(&fixture("fixtures/approvers.yaml"))?;
        let bus = countersign::elevation::EventBus::new();
        Ok(Self {
            bus: bus.clone(),
            elevation: Elevation::new(
                db.store.clone(),
                shared_signer(),
                grants.clone(),
                Arc::new(ChallengeCache::new()),
                Arc::new(identities),
                crate::support::PUBLIC_URL.to_owned(),
                bus,
            ),
            grants,
            guardrail: guardrail()?,
        })
    }

    /// A challenge for the review `name` under this case's guardrail, made at `now`.
    async fn open(&self, db: &TestDb, name: &str, now: i64) -> anyhow::Result<Challenge> {
        let body = serde_json::to_vec(&review(name)?)?;
        let request = parse_review(&body)?;
        let digest = request_digest(CLUSTER, &request);
        let mut challenge = Challenge::new(
            CLUSTER,
            digest,
            &[&self.guardrail],
            "Payments changes need a peer and a manager.".into(),
            &request,
            now,
        );
        // As the webhook does when it opens one.
        countersign::elevation::seal::seal_challenge(&shared_signer(), &mut challenge);
        ensure!(db.store.insert_challenge(&challenge).await?, "not inserted");
        Ok(challenge)
    }

    /// Alice's change to payments-api, confirmed by her with a reason: waiting for approvers.
    async fn awaiting(&self, db: &TestDb) -> anyhow::Result<Challenge> {
        let now = clock::now();
        let challenge = self.open(db, "deployment-update", now).await?;
        match self
            .elevation
            .confirm(
                &challenge.code,
                &actor("alice", &[]),
                evidence("alice", now),
                Some(REASON),
                now,
            )
            .await?
        {
            Confirmed::Awaiting(c) => Ok(*c),
            other => anyhow::bail!("expected it to wait for approvers, got {other:?}"),
        }
    }

    async fn approve(&self, code: &str, who: &Actor) -> Result<Decided, ElevationError> {
        let now = clock::now();
        self.elevation
            .decide(
                code,
                who,
                ApprovalDecision::Approve,
                "looks right",
                evidence(&who.account, now),
                now,
            )
            .await
    }
}

fn actor(account: &str, groups: &[&str]) -> Actor {
    Actor {
        account: account.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn peer() -> Actor {
    actor("bob", &["payments-oncall"])
}

fn manager() -> Actor {
    actor("carol", &["payments-managers"])
}

fn granted(decided: Decided) -> anyhow::Result<Grant> {
    match decided {
        Decided::Granted(grant) => Ok(*grant),
        other => anyhow::bail!("expected a grant, got {other:?}"),
    }
}

async fn status(db: &TestDb, code: &str) -> anyhow::Result<ChallengeStatus> {
    Ok(db
        .store
        .challenge(code)
        .await?
        .context("challenge gone")?
        .status)
}

async fn peer_and_manager(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let mut events = case.elevation.subscribe();
    let challenge = case.awaiting(db).await?;
    assert_eq!(
        status(db, &challenge.code).await?,
        ChallengeStatus::Awaiting
    );
    assert_eq!(events.recv().await?.happened, Happened::AwaitingApproval);

    // The peer alone is not enough: the manager list is still unmet.
    match case.approve(&challenge.code, &peer()).await? {
        Decided::Counted(tally) => {
            let unmet: Vec<_> = tally.unmet().map(|l| l.groups.clone()).collect();
            assert_eq!(unmet, vec![vec!["payments-managers".to_string()]]);
        }
        other => anyhow::bail!("expected one more approver needed, got {other:?}"),
    }
    assert_eq!(events.recv().await?.happened, Happened::Approved);
    let before = clock::now();
    let grant = granted(case.approve(&challenge.code, &manager()).await?)?;
    assert_eq!(events.recv().await?.happened, Happened::Granted);

    // The grant's ttl starts at the final approval, and it carries every step-up and the reason.
    assert!(grant.expires_at >= before + 900 && grant.expires_at <= clock::now() + 900);
    assert_eq!(grant.username, "alice@example.com");
    assert_eq!(grant.evidence.account, "alice");
    assert_eq!(grant.evidence.reason.as_deref(), Some(REASON));
    let approvers: Vec<_> = grant
        .evidence
        .approvals
        .iter()
        .map(|a| a.approver.as_str())
        .collect();
    assert_eq!(approvers, vec!["bob", "carol"]);
    assert!(grant
        .evidence
        .approvals
        .iter()
        .all(|a| a.step_up.user_verified));
    assert_eq!(status(db, &challenge.code).await?, ChallengeStatus::Granted);
    let stored = db
        .store
        .grant(&grant.id)
        .await?
        .context("grant not stored")?;
    assert_eq!(stored.evidence, grant.evidence);
    // Live for this process's webhook at once.
    assert!(!case.grants.is_empty());

    // Every step is in the audit chain, and the chain holds.
    let records = db.store.audit_records(0, 1000).await?;
    let kinds: Vec<&str> = records.iter().map(|r| r.event.kind.as_str()).collect();
    for kind in ["approval.requested", "approval.approved", "grant.issued"] {
        ensure!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    assert_eq!(
        kinds.iter().filter(|k| **k == "approval.approved").count(),
        2
    );
    assert_eq!(first_broken_link(&records), None);
    Ok(())
}

async fn count_per_group(db: &TestDb) -> anyhow::Result<()> {
    let mut case = Case::new(db)?;
    let approval = case
        .guardrail
        .action
        .approval
        .as_mut()
        .context("no approval")?;
    approval.groups = vec![vec!["payments-oncall".into(), "sre".into()]];
    approval.count = 2;
    let challenge = case.awaiting(db).await?;
    assert!(matches!(
        case.approve(&challenge.code, &peer()).await?,
        Decided::Counted(_)
    ));
    granted(
        case.approve(&challenge.code, &actor("erin", &["sre"]))
            .await?,
    )?;
    Ok(())
}

async fn no_self_approval(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let challenge = case.awaiting(db).await?;
    // Alice owns alice@example.com: she may not approve it, even in an approving group.
    let alice = actor("alice", &["payments-oncall", "payments-managers"]);
    let refused = case.approve(&challenge.code, &alice).await;
    assert!(
        matches!(refused, Err(ElevationError::Refused(Refusal::OwnRequest))),
        "{refused:?}"
    );
    // Nor may the Kubernetes username itself, signed in as an account of that name.
    let direct = actor("alice@example.com", &["payments-oncall"]);
    let refused = case.approve(&challenge.code, &direct).await;
    assert!(
        matches!(refused, Err(ElevationError::Refused(Refusal::OwnRequest))),
        "{refused:?}"
    );
    // Someone in no approving group may not either.
    let outsider = case
        .approve(&challenge.code, &actor("mallory", &["developers"]))
        .await;
    assert!(matches!(
        outsider,
        Err(ElevationError::Refused(Refusal::NotAnApprover))
    ));

    // A service account's request: the owner who stepped up may not approve; another owner may.
    let now = clock::now();
    let ci = case.open(db, "secret-update-ci", now).await?;
    let olga = actor("olga", &["payments-oncall"]);
    case.elevation
        .confirm(&ci.code, &olga, evidence("olga", now), Some(REASON), now)
        .await?;
    let refused = case.approve(&ci.code, &olga).await;
    assert!(
        matches!(refused, Err(ElevationError::Refused(Refusal::ConfirmedIt))),
        "{refused:?}"
    );
    let oscar = actor("oscar", &["payments-oncall"]);
    assert!(matches!(
        case.approve(&ci.code, &oscar).await?,
        Decided::Counted(_)
    ));
    // Nothing refused was recorded: only oscar's approval counts.
    let approvals = db.store.approvals_of(&ci.code).await?;
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].approver, "oscar");
    assert!(db.store.approvals_of(&challenge.code).await?.is_empty());
    Ok(())
}

async fn one_person_counts_once(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let challenge = case.awaiting(db).await?;
    let dave = actor("dave", &["payments-oncall", "payments-managers"]);
    // In both groups, and still one person: peer AND manager takes two.
    assert!(matches!(
        case.approve(&challenge.code, &dave).await?,
        Decided::Counted(_)
    ));
    let again = case.approve(&challenge.code, &dave).await;
    assert!(
        matches!(again, Err(ElevationError::AlreadyDecided)),
        "{again:?}"
    );
    // A manager next: Dave moves to the peer slot and the threshold is met.
    let grant = granted(case.approve(&challenge.code, &manager()).await?)?;
    assert_eq!(grant.evidence.approvals.len(), 2);
    Ok(())
}

async fn rejection_ends_it(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let challenge = case.awaiting(db).await?;
    let now = clock::now();
    let no_reason = case
        .elevation
        .decide(
            &challenge.code,
            &peer(),
            ApprovalDecision::Reject,
            "  ",
            evidence("bob", now),
            now,
        )
        .await;
    assert!(
        matches!(no_reason, Err(ElevationError::BadReason(_))),
        "{no_reason:?}"
    );
    let decided = case
        .elevation
        .decide(
            &challenge.code,
            &peer(),
            ApprovalDecision::Reject,
            "not during the freeze",
            evidence("bob", now),
            now,
        )
        .await?;
    assert!(matches!(decided, Decided::Rejected));
    let stored = db.store.challenge(&challenge.code).await?.context("gone")?;
    assert_eq!(stored.status, ChallengeStatus::Rejected);
    let closed = stored
        .approval
        .and_then(|a| a.closed)
        .context("no closing")?;
    assert_eq!(
        (closed.by.as_str(), closed.reason.as_str()),
        ("bob", "not during the freeze")
    );
    // Any single rejection ends it: the manager's approval comes too late.
    let late = case.approve(&challenge.code, &manager()).await;
    assert!(
        matches!(late, Err(ElevationError::Closed("rejected"))),
        "{late:?}"
    );
    // A retry of the same request is told.
    let told = db
        .store
        .recent_rejection(&challenge.digest, &challenge.guardrail, now - 60)
        .await?;
    assert_eq!(told.map(|c| c.code), Some(challenge.code.clone()));
    Ok(())
}

async fn timeout(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    // Made two hours ago under a one-hour timeout, and confirmed back then.
    let then = clock::now() - 7200;
    let challenge = case.open(db, "deployment-update", then).await?;
    assert_eq!(challenge.expires_at, then + 3600);
    case.elevation
        .confirm(
            &challenge.code,
            &actor("alice", &[]),
            evidence("alice", then),
            Some(REASON),
            then,
        )
        .await?;
    let late = case.approve(&challenge.code, &peer()).await;
    assert!(
        matches!(late, Err(ElevationError::Closed("expired"))),
        "{late:?}"
    );
    let mut events = case.elevation.subscribe();
    assert!(case.elevation.expire(clock::now()).await? >= 1);
    assert_eq!(status(db, &challenge.code).await?, ChallengeStatus::Expired);
    let event = events.recv().await?;
    assert_eq!(
        (event.code.as_str(), event.happened),
        (challenge.code.as_str(), Happened::Expired)
    );
    Ok(())
}

async fn withdrawal(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let challenge = case.awaiting(db).await?;
    let now = clock::now();
    let not_hers = case.elevation.withdraw(&challenge.code, &peer(), now).await;
    assert!(
        matches!(not_hers, Err(ElevationError::NotYours { .. })),
        "{not_hers:?}"
    );
    case.elevation
        .withdraw(&challenge.code, &actor("alice", &[]), now)
        .await?;
    assert_eq!(
        status(db, &challenge.code).await?,
        ChallengeStatus::Withdrawn
    );
    let late = case.approve(&challenge.code, &peer()).await;
    assert!(
        matches!(late, Err(ElevationError::Closed("withdrawn"))),
        "{late:?}"
    );
    Ok(())
}

async fn break_glass(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let now = clock::now();
    let challenge = case.open(db, "deployment-update", now).await?;
    // Only the listed groups, and only with a reason.
    let plain = actor("alice", &["payments-oncall"]);
    let refused = case
        .elevation
        .break_glass(&challenge.code, &plain, REASON, evidence("alice", now), now)
        .await;
    assert!(
        matches!(refused, Err(ElevationError::NoBreakGlass(_))),
        "{refused:?}"
    );
    let lead = actor("alice", &["oncall-leads"]);
    let silent = case
        .elevation
        .break_glass(&challenge.code, &lead, "", evidence("alice", now), now)
        .await;
    assert!(
        matches!(silent, Err(ElevationError::BadReason(_))),
        "{silent:?}"
    );
    let mut events = case.elevation.subscribe();
    let grant = case
        .elevation
        .break_glass(&challenge.code, &lead, REASON, evidence("alice", now), now)
        .await?;
    assert!(grant.evidence.break_glass);
    assert_eq!(grant.evidence.reason.as_deref(), Some(REASON));
    // Short: the break-glass ttl (5m), not the guardrail's 15m.
    assert_eq!(grant.expires_at, now + 300);
    assert_eq!(events.recv().await?.happened, Happened::BrokeGlass);
    let records = db.store.audit_records(0, 1000).await?;
    ensure!(
        records
            .iter()
            .any(|r| r.event.kind == "grant.break_glass" && r.event.actor == "alice"),
        "no break-glass audit record"
    );

    // Without breakGlass in the guardrail there is no such path.
    let mut strict = Case::new(db)?;
    strict
        .guardrail
        .action
        .approval
        .as_mut()
        .context("no approval")?
        .break_glass = None;
    let other = strict.open(db, "deployment-create", now).await?;
    let bob = actor("bob@example.com", &["oncall-leads"]);
    let refused = strict
        .elevation
        .break_glass(
            &other.code,
            &bob,
            REASON,
            evidence("bob@example.com", now),
            now,
        )
        .await;
    assert!(
        matches!(refused, Err(ElevationError::NoBreakGlass(_))),
        "{refused:?}"
    );
    Ok(())
}

async fn fresh_step_up_every_time(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let now = clock::now();
    let challenge = case.open(db, "deployment-update", now).await?;
    // Approvers cannot act before the requester confirmed.
    let early = case.approve(&challenge.code, &peer()).await;
    assert!(matches!(early, Err(ElevationError::NotNow(_))), "{early:?}");
    // The requester's reason is required and long enough.
    let short = case
        .elevation
        .confirm(
            &challenge.code,
            &actor("alice", &[]),
            evidence("alice", now),
            Some("pls"),
            now,
        )
        .await;
    assert!(
        matches!(short, Err(ElevationError::BadReason(_))),
        "{short:?}"
    );
    case.elevation
        .confirm(
            &challenge.code,
            &actor("alice", &[]),
            evidence("alice", now),
            Some(REASON),
            now,
        )
        .await?;
    // A step-up older than the guardrail's 5 minutes, or one that did not verify the person,
    // counts for nothing.
    let stale = case
        .elevation
        .decide(
            &challenge.code,
            &peer(),
            ApprovalDecision::Approve,
            "",
            evidence("bob", now - 600),
            now,
        )
        .await;
    assert!(
        matches!(stale, Err(ElevationError::StaleStepUp(300))),
        "{stale:?}"
    );
    let unverified = Evidence {
        user_verified: false,
        ..evidence("bob", now)
    };
    let refused = case
        .elevation
        .decide(
            &challenge.code,
            &peer(),
            ApprovalDecision::Approve,
            "",
            unverified,
            now,
        )
        .await;
    assert!(
        matches!(refused, Err(ElevationError::StaleStepUp(_))),
        "{refused:?}"
    );
    assert!(db.store.approvals_of(&challenge.code).await?.is_empty());
    Ok(())
}

async fn race_for_the_last_slot(db: &TestDb) -> anyhow::Result<()> {
    let case = Arc::new(Case::new(db)?);
    let challenge = case.awaiting(db).await?;
    assert!(matches!(
        case.approve(&challenge.code, &peer()).await?,
        Decided::Counted(_)
    ));
    // Two managers at once for the one remaining slot.
    let racers = ["carol", "frank"].map(|name| {
        let case = case.clone();
        let code = challenge.code.clone();
        tokio::spawn(async move {
            case.approve(&code, &actor(name, &["payments-managers"]))
                .await
        })
    });
    let mut grants = 0;
    let mut late = 0;
    for racer in racers {
        match racer.await? {
            Ok(Decided::Granted(_)) => grants += 1,
            Err(ElevationError::Closed("granted already")) => late += 1,
            other => anyhow::bail!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((grants, late), (1, 1));
    let live = db
        .store
        .live_grants("alice@example.com", "payments-escalation", clock::now())
        .await?;
    assert_eq!(live.len(), 1, "exactly one grant");
    Ok(())
}

/// The code in an approval denial, after checking how it is worded.
fn approval_denial(response: &serde_json::Value) -> anyhow::Result<String> {
    ensure!(
        response["allowed"] == false,
        "expected a denial: {response}"
    );
    let message = response["status"]["message"]
        .as_str()
        .context("no message")?;
    let prefix = format!(
        "approval required by guardrail \"payments-escalation\": ask for it at {}/c/",
        crate::support::PUBLIC_URL
    );
    let rest = message
        .strip_prefix(&prefix)
        .with_context(|| format!("not an approval denial: {message}"))?;
    ensure!(
        rest.contains(", then retry once approved (expires "),
        "no retry hint: {message}"
    );
    Ok(rest.chars().take(8).collect())
}

/// The webhook with the approval guardrail and the approvers' identity map, on SQLite.
async fn approvals_webhook() -> anyhow::Result<crate::support::TestApp> {
    let db = TestDb::sqlite().await?;
    let store = db.store.clone();
    crate::support::TestApp::spawn_configured(
        store,
        Some(db),
        |state| {
            state.guardrails =
                crate::support::in_force(vec![guardrail().expect("approvals guardrail")]);
            state.identities = Arc::new(
                IdentityMap::load(&fixture("fixtures/approvers.yaml")).expect("approvers map"),
            );
        },
        None,
    )
    .await
}

/// Through the webhook: denied with a link, approved by a peer and a manager, the retry admitted
/// once; a rejection is told on the next retry, with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_denies_until_approved_and_tells_a_rejection() -> anyhow::Result<()> {
    let app = approvals_webhook().await?;
    let review = review("deployment-update")?;
    let code = approval_denial(&app.decide(&review).await?)?;
    // Asked again while it waits: the same link.
    assert_eq!(approval_denial(&app.decide(&review).await?)?, code);

    let elevation = app.state.elevation();
    let now = clock::now();
    elevation
        .confirm(
            &code,
            &actor("alice", &[]),
            evidence("alice", now),
            Some(REASON),
            now,
        )
        .await?;
    assert_eq!(approval_denial(&app.decide(&review).await?)?, code);
    let approve = |who: Actor| {
        let elevation = app.state.elevation();
        let code = code.clone();
        async move {
            let now = clock::now();
            elevation
                .decide(
                    &code,
                    &who,
                    ApprovalDecision::Approve,
                    "",
                    evidence(&who.account, now),
                    now,
                )
                .await
        }
    };
    assert!(matches!(approve(peer()).await?, Decided::Counted(_)));
    // One approval is not enough.
    assert_eq!(approval_denial(&app.decide(&review).await?)?, code);
    let grant = granted(approve(manager()).await?)?;

    let admitted = app.decide(&review).await?;
    assert_eq!(admitted["allowed"], true, "{admitted}");
    assert_eq!(admitted["auditAnnotations"]["grant"], grant.id.as_str());
    // One use: the next identical request starts over.
    let next = approval_denial(&app.decide(&review).await?)?;
    assert_ne!(next, code);

    elevation
        .confirm(
            &next,
            &actor("alice", &[]),
            evidence("alice", now),
            Some(REASON),
            now,
        )
        .await?;
    let now = clock::now();
    elevation
        .decide(
            &next,
            &peer(),
            ApprovalDecision::Reject,
            "not during the freeze",
            evidence("bob", now),
            now,
        )
        .await?;
    let told = app.decide(&review).await?;
    let again = approval_denial(&told)?;
    assert_ne!(again, next, "a rejected request is asked for anew");
    let message = told["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with("; the last request was rejected by bob: \"not during the freeze\""),
        "{message}"
    );
    Ok(())
}

/// A second guardrail on the same change: a step-up with its own, tighter terms.
const DEPLOYMENT_STEP_UP: &str = "apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: deployment-step-up}
spec:
  match: {operations: [UPDATE], resources: [{apiGroups: [apps], resources: [deployments]}]}
  action: {type: stepUp, freshness: 2m, grant: {scope: object, ttl: 10m, uses: 3}}
  message: Deployments need a fresh key touch.
";

/// Issue 15, item 15: a change two guardrails need a grant for gets one denial naming both and one
/// challenge; once approved, the first retry is admitted (both guardrails covered), once, with
/// the strictest of their terms; revoking the grant revokes the whole permission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_15_one_challenge_for_every_guardrail_a_request_trips() -> anyhow::Result<()> {
    let db = TestDb::sqlite().await?;
    let store = db.store.clone();
    let app = crate::support::TestApp::spawn_configured(
        store,
        Some(db),
        |state| {
            let mut both = vec![guardrail().expect("approvals guardrail")];
            both.extend(
                countersign::policy::parse_documents("step-up.yaml", DEPLOYMENT_STEP_UP)
                    .expect("step-up guardrail"),
            );
            state.guardrails = crate::support::in_force(both);
            state.identities = Arc::new(
                IdentityMap::load(&fixture("fixtures/approvers.yaml")).expect("approvers map"),
            );
        },
        None,
    )
    .await?;
    let review = review("deployment-update")?;
    let denied = app.decide(&review).await?;
    let message = denied["status"]["message"].as_str().unwrap_or_default();
    let prefix = format!(
        "approval required by guardrails \"deployment-step-up\", \"payments-escalation\": ask for it at {}/c/",
        crate::support::PUBLIC_URL
    );
    ensure!(message.starts_with(&prefix), "{denied}");
    let code: String = message[prefix.len()..].chars().take(8).collect();
    let warnings = denied["warnings"].to_string();
    ensure!(
        warnings.contains("Deployments need a fresh key touch.")
            && warnings.contains("Payments changes need a peer and a manager."),
        "each guardrail's words: {warnings}"
    );
    let store = app.state.store.clone();
    let challenge = store.challenge(&code).await?.context("challenge")?;
    assert_eq!(
        challenge.guardrail,
        "deployment-step-up,payments-escalation"
    );
    assert_eq!(
        (
            challenge.grant_ttl_secs,
            challenge.grant_uses,
            challenge.freshness_secs
        ),
        (600, Some(1), 120),
        "the strictest terms"
    );
    assert_eq!(challenge.scope, countersign::policy::GrantScope::Request);
    // Asked again while it waits: the same link, whichever guardrail is checked first.
    let again = app.decide(&review).await?;
    ensure!(again["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains(&code));

    let elevation = app.state.elevation();
    ask(&elevation, &code).await?;
    let counted = decide_as(&elevation, &code, peer()).await?;
    assert!(matches!(counted, Decided::Counted(_)));
    let grant = granted(decide_as(&elevation, &code, manager()).await?)?;
    ensure!(grant.expires_at - grant.created_at <= 600, "{grant:?}");

    // "Run your command again" is true: the first retry is admitted, under both guardrails.
    let admitted = app.decide(&review).await?;
    assert_eq!(admitted["allowed"], true, "{admitted}");
    assert_eq!(
        admitted["auditAnnotations"]["guardrail"], "payments-escalation,deployment-step-up",
        "{admitted}"
    );
    let together = store.challenge_grants(&code).await?;
    assert_eq!(together.len(), 2);
    // Once: both grants had one use.
    let next = app.decide(&review).await?;
    assert_eq!(next["allowed"], false, "{next}");

    // Revoking one grant of a challenge revokes the others with it.
    let code2: String = next["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .split("/c/")
        .nth(1)
        .context("link")?
        .chars()
        .take(8)
        .collect();
    ask(&elevation, &code2).await?;
    decide_as(&elevation, &code2, peer()).await?;
    let second = granted(decide_as(&elevation, &code2, manager()).await?)?;
    let revoked = elevation.revoke(&second.id, "carol").await?;
    assert_eq!(revoked, countersign::elevation::Revocation::Revoked);
    for g in store.challenge_grants(&code2).await? {
        ensure!(g.revoked_at.is_some(), "grant {} still live", g.guardrail);
    }
    let refused = app.decide(&review).await?;
    assert_eq!(refused["allowed"], false, "{refused}");
    Ok(())
}

/// Second review, finding 18 (kept, with a reason in `docs/security.md`): the approved grant admits
/// only the object the approvers saw as the result. When the object changed meanwhile (here another
/// image), the retry renders a different new object and is a new request, denied with a new link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_18_an_approval_admits_only_the_object_it_showed() -> anyhow::Result<()> {
    let app = approvals_webhook().await?;
    let review = review("deployment-update")?;
    let code = approval_denial(&app.decide(&review).await?)?;
    let elevation = app.state.elevation();
    ask(&elevation, &code).await?;
    decide_as(&elevation, &code, peer()).await?;
    granted(decide_as(&elevation, &code, manager()).await?)?;
    let mut moved = review.clone();
    moved["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] =
        "ghcr.io/example/payments-api:1.44.0-someone-elses".into();
    let other = approval_denial(&app.decide(&moved).await?)?;
    assert_ne!(other, code, "a different result is a different request");
    let admitted = app.decide(&review).await?;
    assert_eq!(admitted["allowed"], true, "{admitted}");
    Ok(())
}

/// Alice asks for approval of challenge `code`, with a fresh step-up and the reason.
async fn ask(elevation: &Elevation, code: &str) -> anyhow::Result<()> {
    let now = clock::now();
    elevation
        .confirm(
            code,
            &actor("alice", &[]),
            evidence("alice", now),
            Some(REASON),
            now,
        )
        .await?;
    Ok(())
}

async fn decide_as(elevation: &Elevation, code: &str, who: Actor) -> anyhow::Result<Decided> {
    let now = clock::now();
    Ok(elevation
        .decide(
            code,
            &who,
            ApprovalDecision::Approve,
            "",
            evidence(&who.account, now),
            now,
        )
        .await?)
}

/// A receiver of notifications: records what it is sent, refusing the first `failures` posts
/// (`usize::MAX`: every one).
async fn receiver(
    failures: usize,
) -> anyhow::Result<(url::Url, Arc<std::sync::Mutex<Vec<serde_json::Value>>>)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let kept = kept.clone();
            let refused = refused.clone();
            async move {
                if refused.fetch_add(1, Ordering::SeqCst) < failures {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                kept.lock().expect("receiver lock").push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = url::Url::parse(&format!("http://{}/hook", listener.local_addr()?))?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, bodies))
}

/// Wait (up to 5 s) until `bodies` holds `n`.
async fn received(
    bodies: &std::sync::Mutex<Vec<serde_json::Value>>,
    n: usize,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = bodies.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
        if now.len() >= n {
            return Ok(now);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} notifications arrived",
            now.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Notifications carry who, what, why, which groups, until when and the link; a receiver that
/// stumbles is retried; one that keeps failing is counted and audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_carry_a_link_and_are_retried() -> anyhow::Result<()> {
    use countersign::notify::{Format, Notifier, Receiver, Retry};
    let db = TestDb::sqlite().await?;
    let case = Case::new(&db)?;
    let (slack, slack_bodies) = receiver(0).await?;
    let (generic, generic_bodies) = receiver(2).await?;
    let (dead, _) = receiver(usize::MAX).await?;
    let metrics = Arc::new(countersign::webhook::metrics::Metrics::default());
    let receivers = vec![
        Receiver {
            url: slack,
            format: Format::Slack,
        },
        Receiver {
            url: generic,
            format: Format::Generic,
        },
        Receiver {
            url: dead.clone(),
            format: Format::Generic,
        },
    ];
    let notifier = Arc::new(Notifier::new(
        receivers,
        db.store.clone(),
        metrics.clone(),
        &url::Url::parse(crate::support::PUBLIC_URL)?,
        Retry {
            attempts: 3,
            first_wait: std::time::Duration::from_millis(10),
        },
    ));
    let _task = tokio::spawn(notifier.run(case.elevation.subscribe()));

    let challenge = case.awaiting(&db).await?;
    let link = format!(
        "{}/approvals/{}",
        crate::support::PUBLIC_URL,
        challenge.code
    );
    let slack_body = &received(&slack_bodies, 1).await?[0];
    let text = slack_body["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("alice@example.com asks for approval"),
        "{text}"
    );
    assert!(
        text.contains(REASON)
            && text.contains("payments-oncall")
            && text.contains("payments-managers"),
        "{text}"
    );
    assert!(
        text.contains(&format!("<{link}|Open in Countersign>")),
        "{text}"
    );
    assert!(slack_body["text"]
        .as_str()
        .unwrap_or_default()
        .ends_with(&link));
    // The generic receiver refused twice and got it on the third try.
    let body = &received(&generic_bodies, 1).await?[0];
    assert_eq!(body["event"], "approval.requested");
    assert_eq!(body["code"], challenge.code.as_str());
    assert_eq!(body["requester"], "alice@example.com");
    assert_eq!(body["reason"], REASON);
    assert_eq!(
        body["groups"],
        serde_json::json!(["payments-oncall", "payments-managers"])
    );
    assert_eq!(body["expiresAt"], challenge.expires_at);
    assert_eq!(body["link"], link.as_str());

    // A decision is told too, with who and why, linking to the request's page.
    let now = clock::now();
    case.elevation
        .decide(
            &challenge.code,
            &peer(),
            ApprovalDecision::Reject,
            "not during the freeze",
            evidence("bob", now),
            now,
        )
        .await?;
    let decided = &received(&generic_bodies, 2).await?[1];
    assert_eq!(decided["event"], "approval.rejected");
    assert_eq!(decided["by"], "bob");
    assert_eq!(decided["decisionReason"], "not during the freeze");
    assert_eq!(
        decided["link"],
        format!("{}/c/{}", crate::support::PUBLIC_URL, challenge.code)
    );

    // The receiver that never answers well: given up on, counted, audited without its address's path.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let records = db.store.audit_records(0, 1000).await?;
        let failed: Vec<_> = records
            .iter()
            .filter(|r| r.event.kind == "notification.failed")
            .collect();
        if failed.len() == 2 {
            assert_eq!(
                failed[0].event.detail["receiver"],
                dead.host_str().unwrap_or_default()
            );
            assert!(!failed[0].event.detail.to_string().contains("/hook"));
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "failures not audited: {}",
            failed.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let rendered = metrics.render();
    assert!(
        rendered.contains("countersign_notifications_failed_total 2"),
        "{rendered}"
    );
    assert!(
        rendered.contains("countersign_notifications_sent_total 4"),
        "{rendered}"
    );
    Ok(())
}

/// A decision on one replica reaches the pages of another (PostgreSQL `NOTIFY`); SQLite has one
/// process, and the relay stops at once.
async fn events_reach_other_replicas(db: &TestDb) -> anyhow::Result<()> {
    use countersign::elevation::{relay, EventBus};
    let here = Case::new(db)?;
    let there = EventBus::new();
    let mut heard = there.subscribe();
    let relaying = tokio::spawn(relay(db.store.clone(), there.clone()));
    if db.backend == "sqlite" {
        tokio::time::timeout(std::time::Duration::from_secs(2), relaying).await??;
        return Ok(());
    }
    // The other replica's listener is up before anything happens.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let challenge = here.awaiting(db).await?;
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), heard.recv()).await??;
    assert_eq!(
        (event.code.as_str(), event.happened),
        (challenge.code.as_str(), Happened::AwaitingApproval)
    );
    assert!(
        event.relayed,
        "another replica's event is marked as heard, not committed here"
    );
    // A replica's own events come back from the database too; its relay drops them, so its
    // pages hear each once.
    let echoing = tokio::spawn(relay(db.store.clone(), here.bus.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut own = here.elevation.subscribe();
    assert!(matches!(
        here.approve(&challenge.code, &peer()).await?,
        Decided::Counted(_)
    ));
    assert_eq!(own.recv().await?.happened, Happened::Approved);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(own.try_recv().is_err(), "an event came back twice");
    assert_eq!(heard.recv().await?.happened, Happened::Approved);
    relaying.abort();
    echoing.abort();
    Ok(())
}

// Second review, finding 1 (HIGH): one person is one person, whichever of their names they use.

async fn review2_1a_no_self_approval_under_another_name(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    // Requested as alice@example.com, confirmed by the local account alice...
    let challenge = case.awaiting(db).await?;
    // ...and approved through the identity provider as oidc:alice@corp.example: the same person.
    for name in ["oidc:alice@corp.example", "alice@example.com", "alice"] {
        let refused = case
            .approve(&challenge.code, &actor(name, &["payments-oncall"]))
            .await;
        assert!(
            matches!(refused, Err(ElevationError::Refused(Refusal::OwnRequest))),
            "{name}: {refused:?}"
        );
    }
    assert!(db.store.approvals_of(&challenge.code).await?.is_empty());
    Ok(())
}

async fn review2_1b_one_person_under_two_names_counts_once(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let challenge = case.awaiting(db).await?;
    // Dave as his local account (a peer), then as his identity-provider name (a manager).
    assert!(matches!(
        case.approve(&challenge.code, &actor("dave", &["payments-oncall"]))
            .await?,
        Decided::Counted(_)
    ));
    let twice = case
        .approve(
            &challenge.code,
            &actor("oidc:dave@corp.example", &["payments-managers"]),
        )
        .await;
    assert!(
        matches!(twice, Err(ElevationError::AlreadyDecided)),
        "{twice:?}"
    );
    let stored = db.store.approvals_of(&challenge.code).await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].person, "dave");
    // A real manager completes it, with two persons in the evidence.
    let grant = granted(case.approve(&challenge.code, &manager()).await?)?;
    assert_eq!(grant.evidence.approvals.len(), 2);
    // Finding 18 (privacy): the token the requester sees names approvers, not their addresses.
    let claims = shared_signer().verify(&grant.token)?;
    assert_eq!(claims.evidence.approvals.len(), 2);
    assert!(claims
        .evidence
        .approvals
        .iter()
        .all(|a| a.step_up.client_address.is_none() && a.step_up.user_agent.is_none()));
    assert!(grant.evidence.approvals[0].step_up.client_address.is_some());
    Ok(())
}

async fn review2_1c_owner_who_confirmed_approves_under_another_name(
    db: &TestDb,
) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let now = clock::now();
    let ci = case.open(db, "secret-update-ci", now).await?;
    case.elevation
        .confirm(
            &ci.code,
            &actor("olga", &[]),
            evidence("olga", now),
            Some(REASON),
            now,
        )
        .await?;
    let other_name = actor("oidc:olga@corp.example", &["payments-oncall"]);
    let refused = case.approve(&ci.code, &other_name).await;
    assert!(
        matches!(refused, Err(ElevationError::Refused(Refusal::ConfirmedIt))),
        "{refused:?}"
    );
    Ok(())
}

// Second review, finding 3: a database writer cannot skip a rule or widen a grant.

/// Edit the challenge's stored body directly (`sqlite` / `postgres` expressions of the new body).
async fn edit_body(db: &TestDb, code: &str, sqlite: &str, postgres: &str) -> anyhow::Result<()> {
    let body = if db.backend == "sqlite" {
        sqlite
    } else {
        postgres
    };
    let changed = db
        .execute(&format!(
            "update challenges set body = {body} where code = '{code}'"
        ))
        .await?;
    ensure!(changed == 1, "the edit changed {changed} rows");
    Ok(())
}

async fn tamper_audited(db: &TestDb, code: &str) -> anyhow::Result<()> {
    let records = db.store.audit_records(0, 1000).await?;
    ensure!(
        records
            .iter()
            .any(|r| r.event.kind == "elevation.tampered" && r.event.subject == code),
        "no elevation.tampered record for {code}"
    );
    Ok(())
}

async fn review2_3_database_writer_cannot_skip_approvals(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let now = clock::now();
    let challenge = case.open(db, "deployment-update", now).await?;
    // The approval rule dropped: confirming would issue a grant with no approver.
    edit_body(
        db,
        &challenge.code,
        "json_remove(body, '$.approval')",
        "(body::jsonb - 'approval')::text",
    )
    .await?;
    let refused = case
        .elevation
        .confirm(
            &challenge.code,
            &actor("alice", &[]),
            evidence("alice", now),
            Some(REASON),
            now,
        )
        .await;
    assert!(
        matches!(refused, Err(ElevationError::Tampered("challenge"))),
        "{refused:?}"
    );
    assert_eq!(case.elevation.tampered_total(), 1);
    assert_eq!(status(db, &challenge.code).await?, ChallengeStatus::Pending);
    ensure!(case.grants.is_empty(), "a grant went live");
    tamper_audited(db, &challenge.code).await
}

async fn review2_3_database_writer_cannot_widen_a_grant(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let challenge = case.awaiting(db).await?;
    // A year-long, namespace-wide grant with unlimited uses, once approved.
    edit_body(
        db,
        &challenge.code,
        "json_set(body, '$.grant_ttl_secs', 31536000, '$.scope', 'namespace', '$.grant_uses', json('null'))",
        "jsonb_set(jsonb_set(jsonb_set(body::jsonb, '{grant_ttl_secs}', '31536000'), '{scope}', '\"namespace\"'), '{grant_uses}', 'null')::text",
    )
    .await?;
    let refused = case.approve(&challenge.code, &peer()).await;
    assert!(
        matches!(refused, Err(ElevationError::Tampered("challenge"))),
        "{refused:?}"
    );
    assert!(db.store.approvals_of(&challenge.code).await?.is_empty());
    tamper_audited(db, &challenge.code).await
}

async fn review2_3_forged_approval_rows_never_count(db: &TestDb) -> anyhow::Result<()> {
    let case = Case::new(db)?;
    let challenge = case.awaiting(db).await?;
    // A manager's approval inserted by hand: peer AND manager would be met by the real peer.
    let forged = format!(
        "insert into approvals (challenge_code, person, approver, decision, reason, groups, evidence, decided_at, seal) \
         values ('{}', 'carol', 'carol', 'approve', '', '[\"payments-managers\"]', \
         '{{\"method\":\"webauthn\",\"account\":\"carol\",\"userVerified\":true,\"authTime\":0}}', 0, '')",
        challenge.code
    );
    ensure!(db.execute(&forged).await? == 1);
    let refused = case.approve(&challenge.code, &peer()).await;
    assert!(
        matches!(refused, Err(ElevationError::Tampered("approval"))),
        "{refused:?}"
    );
    assert_eq!(
        status(db, &challenge.code).await?,
        ChallengeStatus::Awaiting
    );
    ensure!(case.grants.is_empty(), "a grant went live");
    tamper_audited(db, &challenge.code).await
}

// Second review, finding 13: an approver removed from the group, or disabled, no longer counts.

async fn review2_13_approvals_count_with_the_groups_held_now(db: &TestDb) -> anyhow::Result<()> {
    use countersign::identity::{Role, User};
    let case = Case::new(db)?;
    for (name, groups) in [("bob", "payments-oncall"), ("carol", "payments-managers")] {
        db.store
            .create_user(&User {
                user_id: uuid::Uuid::new_v4().to_string(),
                username: name.into(),
                display_name: name.into(),
                role: Role::Approver,
                groups: vec![groups.into()],
                created_at: 0,
            })
            .await?;
    }
    let challenge = case.awaiting(db).await?;
    assert!(matches!(
        case.approve(&challenge.code, &peer()).await?,
        Decided::Counted(_)
    ));
    // Bob leaves on-call after approving: his approval no longer fills the peer slot.
    ensure!(db.store.set_groups("bob", &[]).await?);
    match case.approve(&challenge.code, &manager()).await? {
        Decided::Counted(tally) => {
            let unmet: Vec<_> = tally.unmet().map(|l| l.groups.clone()).collect();
            assert_eq!(unmet, vec![vec!["payments-oncall".to_string()]]);
        }
        other => anyhow::bail!("expected the peer slot open again, got {other:?}"),
    }
    // A disabled approver does not count either (a CI request, confirmed by its owner).
    let other = case.open(db, "secret-update-ci", clock::now()).await?;
    let now = clock::now();
    case.elevation
        .confirm(
            &other.code,
            &actor("olga", &[]),
            evidence("olga", now),
            Some(REASON),
            now,
        )
        .await?;
    ensure!(
        db.store
            .set_groups("bob", &["payments-oncall".into()])
            .await?
    );
    assert!(matches!(
        case.approve(&other.code, &peer()).await?,
        Decided::Counted(_)
    ));
    ensure!(db.store.set_disabled("bob", Some(now)).await?);
    assert!(matches!(
        case.approve(&other.code, &manager()).await?,
        Decided::Counted(_)
    ));
    Ok(())
}

async fn review2_9_break_glass_never_outlives_the_grant_ttl(db: &TestDb) -> anyhow::Result<()> {
    let mut case = Case::new(db)?;
    case.guardrail
        .action
        .approval
        .as_mut()
        .context("no approval")?
        .break_glass
        .as_mut()
        .context("no break glass")?
        .ttl_secs = 3600;
    let now = clock::now();
    let challenge = case.open(db, "deployment-update", now).await?;
    let grant = case
        .elevation
        .break_glass(
            &challenge.code,
            &actor("alice", &["oncall-leads"]),
            REASON,
            evidence("alice", now),
            now,
        )
        .await?;
    // The guardrail's grant ttl is 15 minutes: break glass gets no more.
    assert_eq!(grant.expires_at, now + 900);
    Ok(())
}

/// Second review, finding 14: any database role can `NOTIFY`; a forged "break glass" event for a
/// real challenge reaches pages as a hint to refetch, and posts no notice (the replica that
/// committed a change posts its notice, from its own bus).
async fn review2_14_a_forged_notify_posts_no_notice(db: &TestDb) -> anyhow::Result<()> {
    use countersign::elevation::relay;
    use countersign::notify::{Format, Notifier, Receiver, Retry};
    if db.backend == "sqlite" {
        return Ok(()); // one process: nothing to relay, nothing to forge
    }
    let case = Case::new(db)?;
    let (slack, bodies) = receiver(0).await?;
    let notifier = Arc::new(Notifier::new(
        vec![Receiver {
            url: slack,
            format: Format::Slack,
        }],
        db.store.clone(),
        Arc::default(),
        &url::Url::parse(crate::support::PUBLIC_URL)?,
        Retry::default(),
    ));
    let _notify = tokio::spawn(notifier.run(case.elevation.subscribe()));
    let relaying = tokio::spawn(relay(db.store.clone(), case.bus.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let challenge = case.awaiting(db).await?;
    assert_eq!(received(&bodies, 1).await?.len(), 1);
    let mut pages = case.elevation.subscribe();
    let forged = serde_json::json!({
        "origin": "mallory",
        "event": {"code": challenge.code, "happened": "brokeGlass", "by": "mallory", "at": 0},
    });
    db.execute(&format!(
        "select pg_notify('{}', '{}')",
        countersign::elevation::ELEVATION_CHANNEL,
        forged
    ))
    .await?;
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), pages.recv()).await??;
    assert!(heard.relayed, "{heard:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        bodies.lock().map_err(|_| anyhow::anyhow!("lock"))?.len(),
        1,
        "a forged event was posted"
    );
    relaying.abort();
    Ok(())
}

/// Second review, finding 9 / item 7: break glass is loud where the cluster looks too: the admitted
/// request's audit annotations name the break-glass grant (from its verified token), and break
/// glass is offered while approvers are still deciding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_9_break_glass_while_waiting_marks_the_admitted_request() -> anyhow::Result<()> {
    let app = approvals_webhook().await?;
    let review = review("deployment-update")?;
    let code = approval_denial(&app.decide(&review).await?)?;
    let elevation = app.state.elevation();
    let now = clock::now();
    let lead = actor("alice", &["oncall-leads"]);
    elevation
        .confirm(&code, &lead, evidence("alice", now), Some(REASON), now)
        .await?;
    // Waiting for approvers, and the glass is still there to break.
    let grant = elevation
        .break_glass(&code, &lead, REASON, evidence("alice", now), now)
        .await?;
    let admitted = app.decide(&review).await?;
    assert_eq!(admitted["allowed"], true, "{admitted}");
    assert_eq!(
        admitted["auditAnnotations"]["break-glass"],
        grant.id.as_str()
    );
    // An approved grant carries no such mark.
    let next = approval_denial(&app.decide(&review).await?)?;
    elevation
        .confirm(
            &next,
            &actor("alice", &[]),
            evidence("alice", now),
            Some(REASON),
            now,
        )
        .await?;
    for who in [peer(), manager()] {
        let now = clock::now();
        elevation
            .decide(
                &next,
                &who,
                ApprovalDecision::Approve,
                "",
                evidence(&who.account, now),
                now,
            )
            .await?;
    }
    let approved = app.decide(&review).await?;
    assert_eq!(approved["allowed"], true, "{approved}");
    assert!(
        approved["auditAnnotations"].get("break-glass").is_none(),
        "{approved}"
    );
    Ok(())
}

/// Issue 17: the guardrails change while a challenge waits for its approvers. A rule tightened
/// since (a second manager, break glass removed) applies to it; one loosened since (the manager
/// list dropped) does not, since the requester asked under the stricter terms.
async fn review17_a_tightened_rule_applies_to_waiting_approvals_and_a_loosened_one_does_not(
    db: &TestDb,
) -> anyhow::Result<()> {
    use countersign::engine::{LiveGuardrails, Snapshot};
    let case = Case::new(db)?;
    let mut tightened = case.guardrail.clone();
    let rule = tightened
        .action
        .approval
        .as_mut()
        .context("an approval rule")?;
    rule.counts = vec![1, 2];
    rule.break_glass = None;
    let live = Arc::new(LiveGuardrails::new(Snapshot::new(vec![tightened], "v2")));
    let case = Case {
        elevation: case.elevation.with_guardrails(live.clone()),
        ..case
    };
    let challenge = case.awaiting(db).await?;
    assert!(matches!(
        case.approve(&challenge.code, &peer()).await?,
        Decided::Counted(_)
    ));
    // Under the sealed rule the manager would have been the last approver needed.
    match case.approve(&challenge.code, &manager()).await? {
        Decided::Counted(tally) => {
            let unmet: Vec<_> = tally
                .unmet()
                .map(|l| (l.groups.clone(), l.needed))
                .collect();
            assert_eq!(unmet, vec![(vec!["payments-managers".to_string()], 2)]);
        }
        other => anyhow::bail!("the tightened rule was not applied: {other:?}"),
    }
    let dan = actor("dan", &["payments-managers"]);
    granted(case.approve(&challenge.code, &dan).await?)?;

    // Break glass removed: refused on a challenge opened while it was allowed.
    let now = clock::now();
    let other = case.open(db, "deployment-update-dryrun", now).await?;
    let lead = actor("alice", &["oncall-leads"]);
    let refused = case
        .elevation
        .break_glass(&other.code, &lead, REASON, evidence("alice", now), now)
        .await;
    assert!(
        matches!(refused, Err(ElevationError::NoBreakGlass(_))),
        "{refused:?}"
    );

    // Loosened to the peer alone: the challenge that asked for a manager still needs one.
    let mut loosened = case.guardrail.clone();
    let rule = loosened
        .action
        .approval
        .as_mut()
        .context("an approval rule")?;
    rule.groups = vec![vec!["payments-oncall".to_string()]];
    live.publish(Snapshot::new(vec![loosened], "v3"));
    let confirmed = case
        .elevation
        .confirm(
            &other.code,
            &actor("alice", &[]),
            evidence("alice", now),
            Some(REASON),
            now,
        )
        .await?;
    assert!(matches!(confirmed, Confirmed::Awaiting(_)), "{confirmed:?}");
    match case.approve(&other.code, &peer()).await? {
        Decided::Counted(tally) => assert_eq!(tally.unmet().count(), 1),
        other => anyhow::bail!("a loosened rule let the peer alone through: {other:?}"),
    }
    Ok(())
}
