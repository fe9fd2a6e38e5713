//! Open challenges answered from memory: a repeated request gets the same code without the store,
//! and an expired or granted challenge is never handed out again.

use std::time::Duration;

use anyhow::Context;
use countersign::clock;
use serde_json::{json, Value};

use crate::support::{review, step_up_denial, TestApp};

/// The same request again, as a new API call (new uid).
fn attempt(original: &Value, n: u32) -> Value {
    let mut r = original.clone();
    r["request"]["uid"] = json!(format!("challenge-cache-{n}"));
    r
}

const UNAVAILABLE: &str = "step-up required by guardrail \"prod-workloads\", but the step-up service is unavailable; retry in a minute";

#[tokio::test]
async fn a_repeated_request_is_denied_from_memory_without_the_store() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    // Long enough that the machine's load cannot make the second call miss.
    app.state.challenges.set_trust_for(Duration::from_secs(60));
    let update = review("deployment-update")?;
    let (code, expiry) = step_up_denial(&app.decide(&update).await?, "prod-workloads")?;
    assert_eq!(app.state.challenges.len(), 1);

    // Every store statement the step-up path makes now fails.
    let db = app.db().context("no database")?;
    db.execute("alter table challenges rename to challenges_away")
        .await?;
    db.execute("alter table grants rename to grants_away")
        .await?;

    let (again, again_expiry) =
        step_up_denial(&app.decide(&attempt(&update, 1)).await?, "prod-workloads")
            .context("the repeated request reached the store")?;
    assert_eq!(again, code);
    assert_eq!(again_expiry, expiry);

    // Past the trust window the store is asked again (and is unreachable here).
    app.state.challenges.set_trust_for(Duration::ZERO);
    let response = app.decide(&attempt(&update, 2)).await?;
    assert_eq!(response["status"]["message"], UNAVAILABLE, "{response}");

    // Back: the store still holds the same open challenge.
    db.execute("alter table challenges_away rename to challenges")
        .await?;
    db.execute("alter table grants_away rename to grants")
        .await?;
    let (back, _) = step_up_denial(&app.decide(&attempt(&update, 3)).await?, "prod-workloads")?;
    assert_eq!(back, code);
    Ok(())
}

#[tokio::test]
async fn an_expired_challenge_is_not_served_from_memory() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.state.challenges.set_trust_for(Duration::from_secs(60));
    let update = review("deployment-update")?;
    let (code, _) = step_up_denial(&app.decide(&update).await?, "prod-workloads")?;

    // The challenge runs out a second from now, in the store and in memory.
    let now = clock::now();
    let mut challenge = app
        .state
        .store
        .challenge(&code)
        .await?
        .context("no challenge")?;
    challenge.expires_at = now + 1;
    let db = app.db().context("no database")?;
    db.execute(&format!(
        "update challenges set expires_at = {} where code = '{code}'",
        now + 1
    ))
    .await?;
    app.state.challenges.insert(&challenge, now);
    assert!(app
        .state
        .challenges
        .find(&challenge.digest, "prod-workloads", now)
        .is_some());
    while clock::now() <= now + 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (next, _) = step_up_denial(&app.decide(&attempt(&update, 1)).await?, "prod-workloads")?;
    assert_ne!(next, code, "an expired challenge was handed out again");
    Ok(())
}

#[tokio::test]
async fn a_granted_challenge_is_not_served_from_memory() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.state.challenges.set_trust_for(Duration::from_secs(60));
    let update = review("deployment-update")?;
    let (code, _) = step_up_denial(&app.decide(&update).await?, "prod-workloads")?;

    // Confirmed as the portal does it (which drops the open challenge from memory); the grant
    // has a single use, which the retry spends.
    let grant = app.confirm(&code).await?;
    assert_eq!(grant.uses_left, Some(1));
    assert!(app.state.challenges.is_empty());
    let response = app.decide(&attempt(&update, 1)).await?;
    assert_eq!(response["allowed"], true, "{response}");

    // The next identical request needs a new step-up: a new challenge, not the granted one.
    let (next, _) = step_up_denial(&app.decide(&attempt(&update, 2)).await?, "prod-workloads")?;
    assert_ne!(next, code, "a granted challenge was handed out again");
    let (same, _) = step_up_denial(&app.decide(&attempt(&update, 3)).await?, "prod-workloads")?;
    assert_eq!(same, next);
    Ok(())
}
