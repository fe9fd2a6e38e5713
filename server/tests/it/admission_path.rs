//! The one admission path (issue 16): the webhook asks the elevation layer, which opens challenges
//! within the limits in one unit of work, and every challenge, grant and decision records the
//! guardrail version that decided it.

use anyhow::Context as _;
use serde_json::json;

use countersign::admission::parse_review;
use countersign::elevation::Admission;
use countersign::engine::Snapshot;

use crate::support::{review, step_up_denial, TestApp, TestDb, TEST_VERSION};

/// `deployment-update` as `user`, made distinct by `replicas` (so each is its own request).
fn attempt(user: &str, replicas: i64) -> anyhow::Result<serde_json::Value> {
    let mut r = review("deployment-update")?;
    r["request"]["uid"] = json!(format!("{user}-{replicas}"));
    r["request"]["userInfo"]["username"] = json!(user);
    r["request"]["object"]["spec"]["replicas"] = json!(replicas);
    Ok(r)
}

/// Both backends (PostgreSQL when reachable, as the storage suite decides).
async fn databases() -> anyhow::Result<Vec<TestDb>> {
    let mut dbs = vec![TestDb::sqlite().await?];
    dbs.extend(TestDb::postgres().await?);
    Ok(dbs)
}

#[tokio::test]
async fn concurrent_creates_cannot_pass_the_open_challenge_limits() -> anyhow::Result<()> {
    for db in databases().await? {
        let store = db.store.clone();
        // Two replicas on one store: each has its own caches, so only the store can hold the line.
        let limit = |s: &mut countersign::state::AppState| s.challenge_limits.open_per_subject = 3;
        let a = TestApp::spawn_configured(store.clone(), Some(db), limit, None).await?;
        let b = TestApp::spawn_configured(store.clone(), None, limit, None).await?;
        let reviews: Vec<serde_json::Value> = (1..=12)
            .map(|n| attempt("mallory", n))
            .collect::<Result<_, _>>()?;
        let answers = futures_util::future::join_all(reviews.iter().enumerate().map(|(i, r)| {
            if i % 2 == 0 {
                a.decide(r)
            } else {
                b.decide(r)
            }
        }))
        .await;
        let mut challenged = 0;
        let mut limited = 0;
        for answer in answers {
            let answer = answer?;
            let message = answer["status"]["message"].as_str().unwrap_or_default();
            if message.contains("no new challenge can be opened") {
                limited += 1;
            } else {
                step_up_denial(&answer, "prod-workloads")?;
                challenged += 1;
            }
        }
        assert_eq!((challenged, limited), (3, 9), "12 at once, 3 allowed");
        assert_eq!(store.challenges_of("mallory", 50).await?.len(), 3);
        // Each opened challenge has its audit record, written with it.
        let created = store
            .audit_records(0, 1000)
            .await?
            .into_iter()
            .filter(|r| r.event.kind == "challenge.created")
            .count();
        assert_eq!(created, 3);
    }
    Ok(())
}

#[tokio::test]
async fn a_challenge_its_grant_and_the_decision_record_the_version_that_decided(
) -> anyhow::Result<()> {
    for db in databases().await? {
        let app = TestApp::spawn_with(db.store.clone(), Some(db)).await?;
        let (code, _) = step_up_denial(
            &app.decide(&attempt("alice@example.com", 4)?).await?,
            "prod-workloads",
        )?;
        let challenge = app.state.store.challenge(&code).await?.context("stored")?;
        assert_eq!(challenge.policy_version, TEST_VERSION);
        // The version is sealed with the terms: a database writer cannot move it.
        assert!(countersign::elevation::seal::challenge_intact(
            &app.state.signer,
            &challenge
        ));
        let mut moved = challenge.clone();
        moved.policy_version = "sha256:0000000000000000".into();
        assert!(!countersign::elevation::seal::challenge_intact(
            &app.state.signer,
            &moved
        ));

        let grant = app.confirm(&code).await?;
        assert_eq!(grant.policy_version, TEST_VERSION);
        let stored = app.state.store.grant(&grant.id).await?.context("grant")?;
        assert_eq!(stored.policy_version, TEST_VERSION);
        let claims = app.state.signer.verify(&stored.token)?;
        assert_eq!(claims.version, TEST_VERSION, "signed into the token");

        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let logged = loop {
            let logged = app.state.store.recent_decisions(10).await?;
            if !logged.is_empty() || tokio::time::Instant::now() > deadline {
                break logged;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let record = logged.first().context("the challenged review was logged")?;
        assert_eq!(record.policy_version, TEST_VERSION);
    }
    Ok(())
}

#[tokio::test]
async fn a_challenge_takes_its_terms_from_the_snapshot_that_decided_not_the_one_in_force(
) -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let decided = app.state.guardrails.load();
    let request = parse_review(&serde_json::to_vec(&attempt("alice@example.com", 5)?)?)?;
    let decision = decided.evaluate(&request, &**app.state.namespaces.load());
    assert!(decision
        .needing_grants()
        .any(|h| h.name == "prod-workloads"));

    // A new version is published while the review is in flight: the guardrails in another order
    // (a position would now name another guardrail) and prod-workloads with a longer grant.
    let mut changed: Vec<_> = decided.guardrails().to_vec();
    changed.reverse();
    for g in &mut changed {
        if g.name.as_str() == "prod-workloads" {
            g.action.grant.ttl =
                countersign::policy::PolicyDuration::parse("1h").map_err(anyhow::Error::msg)?;
        }
    }
    app.state
        .guardrails
        .publish(Snapshot::new(changed, "test-v2"));

    let admission = app
        .state
        .elevation()
        .admit(&decided, &request, &decision, countersign::clock::now())
        .await?;
    let Admission::Challenged(open) = admission else {
        anyhow::bail!("expected a challenge, got {admission:?}");
    };
    assert_eq!(open.guardrails, ["prod-workloads"]);
    let challenge = app
        .state
        .store
        .challenge(&open.code)
        .await?
        .context("stored")?;
    assert_eq!(challenge.policy_version, TEST_VERSION);
    assert_eq!(challenge.guardrail, "prod-workloads");
    assert_eq!(challenge.grant_ttl_secs, 15 * 60, "v1's ttl, not v2's");
    assert_eq!(challenge.grant_uses, Some(1));

    // The next review takes the new snapshot.
    let (code, _) = step_up_denial(
        &app.decide(&attempt("alice@example.com", 6)?).await?,
        "prod-workloads",
    )?;
    let next = app.state.store.challenge(&code).await?.context("stored")?;
    assert_eq!(next.policy_version, "test-v2");
    assert_eq!(next.grant_ttl_secs, 3600);
    Ok(())
}

#[tokio::test]
async fn a_server_side_dry_run_goes_the_same_path_and_spends_no_use() -> anyhow::Result<()> {
    let db = TestDb::sqlite().await?;
    let app = TestApp::spawn_with(db.store.clone(), Some(db)).await?;
    let mut dry = attempt("alice@example.com", 7)?;
    dry["request"]["dryRun"] = json!(true);
    let (code, _) = step_up_denial(&app.decide(&dry).await?, "prod-workloads")?;
    let grant = app.confirm(&code).await?;
    assert_eq!(grant.uses_left, Some(1));
    // The dry run is admitted by the grant and leaves its one use for the real request.
    for _ in 0..3 {
        let answer = app.decide(&dry).await?;
        assert_eq!(answer["allowed"], true, "{answer}");
    }
    let stored = app.state.store.grant(&grant.id).await?.context("grant")?;
    assert_eq!(stored.uses_left, Some(1));
    let mut real = dry.clone();
    real["request"]["dryRun"] = json!(false);
    assert_eq!(app.decide(&real).await?["allowed"], true);
    let stored = app.state.store.grant(&grant.id).await?.context("grant")?;
    assert_eq!(stored.uses_left, Some(0));
    // The use and its record were written together.
    let used = app
        .state
        .store
        .audit_records(0, 1000)
        .await?
        .into_iter()
        .filter(|r| r.event.kind == "grant.used")
        .count();
    assert_eq!(used, 1);
    // Spent: the next real request is challenged again.
    let answer = app.decide(&real).await?;
    step_up_denial(&answer, "prod-workloads")?;
    Ok(())
}

/// Issue 17: a guardrail renamed but keeping its id keeps its grants; one deleted (or replaced by
/// another with a new id) no longer has its grants honoured for what the guardrails in force ask.
#[tokio::test]
async fn a_renamed_guardrail_keeps_its_grants_and_a_replaced_ones_stop_counting(
) -> anyhow::Result<()> {
    use countersign::policy::GuardrailName;
    for db in databases().await? {
        let app = TestApp::spawn_with(db.store.clone(), Some(db)).await?;
        let first = attempt("alice@example.com", 5)?;
        let (code, _) = step_up_denial(&app.decide(&first).await?, "prod-workloads")?;
        let grant = app.confirm(&code).await?;
        assert_eq!(grant.guardrail, "prod-workloads");

        let original = app.state.guardrails.load().guardrails().to_vec();
        let mut renamed = original.clone();
        let g = renamed
            .iter_mut()
            .find(|g| g.name.as_str() == "prod-workloads")
            .context("prod-workloads")?;
        g.name = GuardrailName::parse("production-workloads").map_err(anyhow::Error::msg)?;
        assert_eq!(g.id.as_str(), "prod-workloads", "the id stays");
        app.state
            .guardrails
            .publish(Snapshot::new(renamed.clone(), "renamed"));
        let admitted = app.decide(&first).await?;
        assert_eq!(admitted["allowed"], true, "{admitted}");
        assert_eq!(admitted["auditAnnotations"]["grant"], grant.id.as_str());
        assert_eq!(
            admitted["auditAnnotations"]["guardrail"], "production-workloads",
            "named as in force now"
        );

        // A second grant, then the guardrail is replaced by one with the same terms and a new id:
        // what the old one granted does not answer for the new one.
        let second = attempt("alice@example.com", 6)?;
        let (code, _) = step_up_denial(&app.decide(&second).await?, "production-workloads")?;
        let unspent = app.confirm(&code).await?;
        let mut replaced = renamed.clone();
        let g = replaced
            .iter_mut()
            .find(|g| g.name.as_str() == "production-workloads")
            .context("renamed")?;
        g.id = g.name.clone();
        app.state
            .guardrails
            .publish(Snapshot::new(replaced, "replaced"));
        let asked = app.decide(&second).await?;
        step_up_denial(&asked, "production-workloads")?;
        assert!(asked["auditAnnotations"]["grant"].is_null(), "{asked}");
        // Deleted: nothing asks for a grant, and none is spent.
        let without: Vec<_> = renamed
            .into_iter()
            .filter(|g| g.name.as_str() != "production-workloads")
            .collect();
        app.state
            .guardrails
            .publish(Snapshot::new(without, "deleted"));
        let free = app.decide(&second).await?;
        assert_eq!(free["allowed"], true, "{free}");
        assert!(free["auditAnnotations"]["grant"].is_null(), "{free}");
        // Back to the original: the unspent grant answers again (it was never used meanwhile).
        app.state
            .guardrails
            .publish(Snapshot::new(original, "original"));
        let back = app.decide(&second).await?;
        assert_eq!(
            back["auditAnnotations"]["grant"],
            unspent.id.as_str(),
            "{back}"
        );
    }
    Ok(())
}
