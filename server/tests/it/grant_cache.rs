//! Grants checked from memory: revoked at once on the replica that revokes, learned by other
//! processes within a revocation poll (or at once, pushed by PostgreSQL), spent atomically in the
//! store across replicas, and honoured from memory (unlimited ones only) while the store is down.

use std::time::Duration;

use anyhow::{ensure, Context};
use countersign::elevation::{self, Revocation};
use countersign::webhook::grant_cache;
use serde_json::{json, Value};
// Async, so the app under test (same runtime) can finish any write it has open while the CLI runs.
use tokio::process::Command;

use crate::support::{review, step_up_denial, wait_for_audit, TestApp, TestDb};

/// The same kind of request again, as a new API call (new uid).
fn attempt(original: &Value, n: u32) -> Value {
    let mut r = original.clone();
    r["request"]["uid"] = json!(format!(
        "{}-attempt-{n}",
        original["request"]["uid"].as_str().unwrap_or("uid")
    ));
    r
}

/// `kubectl exec` into the payments pod: guarded by `prod-exec`, whose grant is object-scoped and unlimited.
async fn exec_granted(app: &TestApp) -> anyhow::Result<(Value, String)> {
    let exec = review("pod-exec")?;
    let (code, _) = step_up_denial(&app.decide(&exec).await?, "prod-exec")?;
    let grant = app.confirm(&code).await?;
    ensure!(grant.uses_left.is_none(), "prod-exec grants are unlimited");
    let response = app.decide(&attempt(&exec, 1)).await?;
    ensure!(
        response["allowed"] == true,
        "granted exec denied: {response}"
    );
    ensure!(
        response["auditAnnotations"]["grant"] == grant.id.as_str(),
        "{response}"
    );
    Ok((exec, grant.id))
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_review() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let (exec, grant_id) = exec_granted(&app).await?;

    let store = app.state.store.as_ref();
    assert_eq!(
        elevation::revoke(store, Some(&app.state.grants), &grant_id, "it-admin").await?,
        Revocation::Revoked
    );
    let (code, _) = step_up_denial(&app.decide(&attempt(&exec, 2)).await?, "prod-exec")
        .context("a revoked grant still admitted")?;
    assert!(app.state.store.challenge(&code).await?.is_some());
    assert!(app
        .state
        .store
        .grant(&grant_id)
        .await?
        .is_some_and(|g| g.revoked_at.is_some()));

    assert_eq!(
        elevation::revoke(store, Some(&app.state.grants), &grant_id, "it-admin").await?,
        Revocation::NotLive
    );
    assert_eq!(
        elevation::revoke(store, Some(&app.state.grants), "no-such-grant", "it-admin").await?,
        Revocation::Unknown
    );
    let records = wait_for_audit(store, &[("grant.revoked", 1)]).await?;
    let revoked: Vec<_> = records
        .iter()
        .filter(|r| r.event.kind == "grant.revoked")
        .collect();
    assert_eq!(revoked.len(), 1, "only a real revocation is recorded");
    assert_eq!(revoked[0].event.actor, "it-admin");
    assert_eq!(revoked[0].event.subject, grant_id);
    Ok(())
}

#[tokio::test]
async fn revocation_from_the_cli_arrives_within_a_second() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let (exec, grant_id) = exec_granted(&app).await?;
    let url = app.db().context("no database")?.url.clone();

    // The webhook keeps its cache fresh, its first full reload done before the revocation.
    let refresher = tokio::spawn(grant_cache::keep_fresh(
        app.state.core.clone(),
        Duration::from_secs(600),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["grant", "revoke", &grant_id, "--database-url", &url])
        .env("RUST_LOG", "warn")
        .output()
        .await?;
    assert!(
        out.status.success(),
        "grant revoke failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("grant {grant_id} revoked")
    );
    let unknown = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["grant", "revoke", "no-such-grant", "--database-url", &url])
        .output()
        .await?;
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no grant has the id no-such-grant"));

    // The running webhook learns of it from its poll for revocations, well before its next full
    // reload (made rare here, so only the poll can explain a quick denial).
    let started = tokio::time::Instant::now();
    let mut n = 10;
    loop {
        n += 1;
        let response = app.decide(&attempt(&exec, n)).await?;
        if response["allowed"] == false {
            step_up_denial(&response, "prod-exec")?;
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(1),
            "revoked grant still admitted after {:?}: {response}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "CLI revocation seen by the webhook after {:?}",
        started.elapsed()
    );
    refresher.abort();
    Ok(())
}

/// Decide `review` on `app` until it is denied; fails after `within`. Returns how long it took.
async fn denied_within(
    app: &TestApp,
    review: &Value,
    within: Duration,
) -> anyhow::Result<Duration> {
    let started = tokio::time::Instant::now();
    for n in 100.. {
        let response = app.decide(&attempt(review, n)).await?;
        if response["allowed"] == false {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < within,
            "still admitted after {:?}: {response}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("ran out of attempts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_grants_through_the_store() -> anyhow::Result<()> {
    let Some(db) = TestDb::postgres().await? else {
        return Ok(());
    };
    let url = db.url.clone();
    let a = TestApp::spawn_with(db.store.clone(), Some(db)).await?;
    let b = TestApp::spawn_with(countersign::store::connect(&url).await?, None).await?;

    // Both replicas hand out the same challenge for the same request.
    let update = review("deployment-update")?;
    let (code, _) = step_up_denial(&a.decide(&update).await?, "prod-workloads")?;
    let (same, _) = step_up_denial(&b.decide(&attempt(&update, 1)).await?, "prod-workloads")?;
    assert_eq!(same, code);

    // Issued on A; the retry lands on B, which has not refreshed yet: found in the store on the miss
    // (once B stops answering from the challenge it saw open a moment ago).
    let grant = a.confirm(&code).await?;
    assert_eq!(grant.uses_left, Some(1));
    assert!(b.state.grants.is_empty());
    tokio::time::sleep(countersign::challenges::cache::TRUST_FOR + Duration::from_millis(50)).await;
    let response = b.decide(&attempt(&update, 2)).await?;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["auditAnnotations"]["grant"], grant.id.as_str());

    // A still remembers one use left, but the store says none: the use is not spent twice.
    let (next, _) = step_up_denial(&a.decide(&attempt(&update, 3)).await?, "prod-workloads")
        .context("the last use was spent twice across replicas")?;
    assert_ne!(next, code);

    // A fresh single-use grant known to both; two simultaneous retries, one per replica: one wins.
    let grant = a.confirm(&next).await?;
    grant_cache::refresh(
        b.state.store.as_ref(),
        &b.state.grants,
        &b.state.signer,
        &b.state.issuer(),
        (&b.state.guardrails.load(), &b.state.identities),
    )
    .await?;
    assert_eq!(b.state.grants.len(), 1);
    let (on_a, on_b) = (attempt(&update, 4), attempt(&update, 5));
    let (ra, rb) = tokio::join!(a.decide(&on_a), b.decide(&on_b));
    let allowed = [ra?, rb?].iter().filter(|r| r["allowed"] == true).count();
    assert_eq!(allowed, 1, "exactly one replica spends the single use");
    assert_eq!(
        a.state
            .store
            .grant(&grant.id)
            .await?
            .and_then(|g| g.uses_left),
        Some(0)
    );

    // An unlimited grant revoked on A: A denies at once; B, keeping its cache fresh (with a full
    // reload far off), as soon as PostgreSQL pushes the revocation to it.
    let (exec, exec_grant) = exec_granted(&a).await?;
    let response = b.decide(&attempt(&exec, 2)).await?;
    assert_eq!(response["allowed"], true, "{response}");
    let mut feed = b
        .state
        .store
        .revocation_feed()
        .await?
        .context("PostgreSQL pushes revocations")?;
    let refresher = tokio::spawn(grant_cache::keep_fresh(
        b.state.core.clone(),
        Duration::from_secs(600),
    ));
    // Let B's first reload and its LISTEN start before revoking.
    tokio::time::sleep(Duration::from_millis(300)).await;
    elevation::revoke(
        a.state.store.as_ref(),
        Some(&a.state.grants),
        &exec_grant,
        "it",
    )
    .await?;
    step_up_denial(&a.decide(&attempt(&exec, 3)).await?, "prod-exec")?;
    let pushed = tokio::time::timeout(Duration::from_secs(2), feed.recv())
        .await
        .context("no revocation pushed within 2 s")?;
    assert_eq!(pushed.as_deref(), Some(exec_grant.as_str()));
    let took = denied_within(&b, &exec, Duration::from_secs(1)).await?;
    eprintln!("revocation on A seen by B after {took:?}");
    step_up_denial(&b.decide(&attempt(&exec, 4)).await?, "prod-exec")?;
    refresher.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_unlimited_grant_admits_while_the_store_is_down() -> anyhow::Result<()> {
    let Some(db) = TestDb::postgres().await? else {
        return Ok(());
    };
    let app = TestApp::spawn_with(db.store.clone(), Some(db)).await?;
    let (exec, exec_grant) = exec_granted(&app).await?;
    // A single-use grant, issued but not used yet.
    let update = review("deployment-update")?;
    let (code, _) = step_up_denial(&app.decide(&update).await?, "prod-workloads")?;
    app.confirm(&code).await?;

    app.db().context("no database")?.drop_postgres_now().await?;

    // Unlimited: decided from memory, no store write needed.
    let mut other_shell = attempt(&exec, 7);
    other_shell["request"]["object"]["command"] = json!(["bash", "-c", "env"]);
    let response = app.decide(&other_shell).await?;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["auditAnnotations"]["grant"], exec_grant.as_str());

    // A failed refresh keeps the last snapshot.
    assert!(grant_cache::refresh(
        app.state.store.as_ref(),
        &app.state.grants,
        &app.state.signer,
        &app.state.issuer(),
        (&app.state.guardrails.load(), &app.state.identities),
    )
    .await
    .is_err());
    let response = app.decide(&attempt(&other_shell, 8)).await?;
    assert_eq!(response["allowed"], true, "{response}");

    // Limited: its use must be taken in the store, which is gone: fail closed, clearly.
    let response = app.decide(&attempt(&update, 9)).await?;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["status"]["message"],
        "step-up required by guardrail \"prod-workloads\", but the step-up service is unavailable; retry in a minute"
    );
    // No grant at all (another pod): a challenge cannot be made either.
    let mut other_pod = attempt(&exec, 10);
    other_pod["request"]["name"] = json!("payments-worker-0");
    let response = app.decide(&other_pod).await?;
    assert_eq!(
        response["status"]["message"],
        "step-up required by guardrail \"prod-exec\", but the step-up service is unavailable; retry in a minute"
    );
    Ok(())
}

/// `revoked_since` on both backends: revocations from a watermark on, none before it.
#[tokio::test]
async fn revocations_are_read_from_a_watermark() -> anyhow::Result<()> {
    let mut apps = vec![TestApp::spawn().await?];
    if let Some(db) = TestDb::postgres().await? {
        apps.push(TestApp::spawn_with(db.store.clone(), Some(db)).await?);
    }
    for app in &apps {
        let (_, grant_id) = exec_granted(app).await?;
        let store = app.state.store.as_ref();
        let before = countersign::clock::now();
        assert!(store.revoked_since(before - 60).await?.is_empty());
        elevation::revoke(store, None, &grant_id, "it").await?;
        let revoked = store.revoked_since(before).await?;
        assert_eq!(revoked.len(), 1, "{revoked:?}");
        assert_eq!(revoked[0].id, grant_id);
        assert_eq!(revoked[0].username, "alice@example.com");
        assert_eq!(revoked[0].guardrail, "prod-exec");
        assert!(revoked[0].revoked_at >= before);
        assert!(store
            .revoked_since(revoked[0].revoked_at + 1)
            .await?
            .is_empty());

        // Applying them drops the grant from a cache that still held it, and moves the watermark.
        assert!(!app.state.grants.is_empty());
        let mut watermark = before - 60;
        let read = grant_cache::apply_revocations(store, &app.state.grants, &mut watermark).await?;
        assert_eq!(read, 1);
        assert!(app.state.grants.is_empty());
        assert!(watermark > before - 60 && watermark <= revoked[0].revoked_at);
    }
    Ok(())
}
