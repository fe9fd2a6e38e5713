//! The storage contract, run against both backends: `storage::sqlite::*` and `storage::postgres::*`.

use std::collections::HashSet;

use anyhow::{ensure, Context};
use countersign::audit::{first_broken_link, AuditEvent, GENESIS_HASH};
use countersign::challenges::{
    new_code, AttemptedRequest, Challenge, ChallengeStatus, CHALLENGE_TTL_SECS,
};
use countersign::clock;
use countersign::grants::{Evidence, Grant};
use countersign::identity::setup::Invitation;
use countersign::identity::{Credential, Role, User};
use countersign::policy::GrantScope;
use countersign::store::StoreError;
use serde_json::json;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::SessionStore as _;

use crate::support::TestDb;

use crate::support::on_both_backends;

on_both_backends!(
    users,
    credentials,
    passkey_management,
    setup_tokens,
    challenges,
    expired_challenges,
    granted_challenges,
    single_use_grants,
    unlimited_and_expiring_grants,
    concurrent_consumption_takes_one_use,
    all_live_grants_and_revocation,
    audit_chain,
    concurrent_audit_appends,
    sessions,
    guardrail_trips,
);

/// Issue 18: decisions counted per guardrail their hits name, since a time (the JSON functions of
/// each backend).
async fn guardrail_trips(db: &TestDb) -> anyhow::Result<()> {
    use crate::support::decision;
    let store = &db.store;
    assert!(store.guardrail_trips(0).await?.is_empty());
    store
        .append_decisions(&[
            decision(100, &["a"]),
            decision(200, &["a", "b"]),
            decision(300, &["b"]),
            decision(400, &[]),
        ])
        .await?;
    let mut all = store.guardrail_trips(0).await?;
    all.sort();
    assert_eq!(all, [("a".to_owned(), 2), ("b".to_owned(), 2)]);
    let mut recent = store.guardrail_trips(200).await?;
    recent.sort();
    assert_eq!(recent, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
    assert!(store.guardrail_trips(401).await?.is_empty());
    Ok(())
}

fn user(id: &str, username: &str, role: Role) -> User {
    User {
        user_id: id.into(),
        username: username.into(),
        display_name: format!("{username} (test)"),
        role,
        created_at: 1_700_000_000,
        groups: Vec::new(),
    }
}

fn challenge(
    username: &str,
    digest: &str,
    guardrail: &str,
    now: i64,
    uses: Option<u32>,
) -> Challenge {
    Challenge {
        code: new_code(),
        digest: digest.into(),
        cluster: "it-cluster".into(),
        guardrail: guardrail.into(),
        message: "Workload changes in production need a fresh security-key touch.".into(),
        request: AttemptedRequest {
            username: username.into(),
            groups: vec!["developers".into(), "system:authenticated".into()],
            operation: "UPDATE".into(),
            api_group: "apps".into(),
            api_version: "v1".into(),
            resource: "deployments".into(),
            subresource: String::new(),
            kind: "Deployment".into(),
            namespace: "payments".into(),
            name: "payments-api".into(),
            object: Some(
                json!({"metadata": {"name": "payments-api"}, "spec": {"replicas": 2, "note": "ünïcødé ✓"}}),
            ),
            old_object: Some(
                json!({"metadata": {"name": "payments-api"}, "spec": {"replicas": 3}}),
            ),
            options: None,
        },
        scope: GrantScope::Request,
        grant_ttl_secs: 900,
        grant_uses: uses,
        freshness_secs: 300,
        created_at: now,
        expires_at: now + CHALLENGE_TTL_SECS,
        status: ChallengeStatus::Pending,
        grant_id: None,
        approval: None,
        seal: None,
        policy_version: String::new(),
    }
}

fn evidence(account: &str, now: i64) -> Evidence {
    Evidence {
        method: "webauthn".into(),
        account: account.into(),
        credential_id: Some("Y3JlZC0x".into()),
        user_verified: true,
        auth_time: now,
        client_address: Some("192.0.2.10".into()),
        user_agent: None,
        acr: None,
        amr: None,
        aaguid: None,
        ..Default::default()
    }
}

/// Insert a pending challenge and grant it; returns the stored grant.
async fn granted(
    db: &TestDb,
    username: &str,
    digest: &str,
    uses: Option<u32>,
    now: i64,
) -> anyhow::Result<Grant> {
    let c = challenge(username, digest, "prod-workloads", now, uses);
    ensure!(
        db.store.insert_challenge(&c).await?,
        "insert_challenge refused a fresh challenge"
    );
    let mut g = Grant::for_challenge(&c, evidence(username, now), now);
    g.token = format!("test-token-{}", g.id);
    crate::support::write_grant_rows(db.store.as_ref(), &g).await?;
    Ok(g)
}

async fn users(db: &TestDb) -> anyhow::Result<()> {
    let s = &db.store;
    assert_eq!(s.count_users().await?, 0);
    let alice = user(
        "9f1c0a52-0000-4000-8000-000000000001",
        "alice@example.com",
        Role::Admin,
    );
    s.create_user(&alice).await?;
    assert_eq!(s.count_users().await?, 1);
    assert_eq!(s.user_by_id(&alice.user_id).await?, Some(alice.clone()));
    assert_eq!(
        s.user_by_username("alice@example.com").await?,
        Some(alice.clone())
    );
    assert_eq!(
        s.user_by_username("ALICE@example.com").await?,
        None,
        "usernames are case-sensitive"
    );
    assert_eq!(s.user_by_username("nobody").await?, None);
    assert_eq!(s.user_by_id("no-such-id").await?, None);

    let impostor = user(
        "9f1c0a52-0000-4000-8000-000000000002",
        "alice@example.com",
        Role::Engineer,
    );
    match s.create_user(&impostor).await {
        Err(StoreError::Conflict(what)) => assert_eq!(what, "username"),
        other => panic!(
            "[{}] duplicate username: expected Conflict, got {other:?}",
            db.backend
        ),
    }
    assert_eq!(s.count_users().await?, 1);
    assert_eq!(s.user_by_id(&impostor.user_id).await?, None);

    let bob = user(
        "9f1c0a52-0000-4000-8000-000000000003",
        "bob",
        Role::Approver,
    );
    s.create_user(&bob).await?;
    assert_eq!(s.count_users().await?, 2);
    assert_eq!(
        s.user_by_username("bob").await?.map(|u| u.role),
        Some(Role::Approver)
    );
    Ok(())
}

async fn credentials(db: &TestDb) -> anyhow::Result<()> {
    let s = &db.store;
    let alice = user("u-alice", "alice", Role::Engineer);
    let bob = user("u-bob", "bob", Role::Engineer);
    s.create_user(&alice).await?;
    s.create_user(&bob).await?;
    let key = |id: &str, name: &str, created_at: i64| Credential {
        credential_id: id.into(),
        user_id: "u-alice".into(),
        name: name.into(),
        passkey: format!(r#"{{"cred":{{"cred_id":"{id}","counter":0}}}}"#),
        created_at,
        last_used_at: None,
        aaguid: None,
        blocked_at: None,
    };
    // Added newest first; listed oldest first.
    let yubikey = key("Y3JlZC0y", "YubiKey 5C", 2_000);
    let laptop = key("Y3JlZC0x", "laptop Touch ID", 1_000);
    s.add_credential(&yubikey).await?;
    s.add_credential(&laptop).await?;
    assert_eq!(
        s.credentials_of("u-alice").await?,
        vec![laptop.clone(), yubikey.clone()]
    );
    assert!(s.credentials_of("u-bob").await?.is_empty());

    let mut stolen = yubikey.clone();
    stolen.user_id = "u-bob".into();
    assert!(
        matches!(
            s.add_credential(&stolen).await,
            Err(StoreError::Conflict("credential"))
        ),
        "[{}] a credential id registered twice must conflict",
        db.backend
    );
    let mut orphan = key("b3JwaGFu", "orphan", 3_000);
    orphan.user_id = "u-nobody".into();
    assert!(
        s.add_credential(&orphan).await.is_err(),
        "[{}] a credential needs an existing account",
        db.backend
    );

    s.touch_credential("Y3JlZC0y", r#"{"cred":{"counter":7}}"#, 5_000)
        .await?;
    let listed = s.credentials_of("u-alice").await?;
    let touched = listed
        .iter()
        .find(|c| c.credential_id == "Y3JlZC0y")
        .context("touched credential is gone")?;
    assert_eq!(touched.passkey, r#"{"cred":{"counter":7}}"#);
    assert_eq!(touched.last_used_at, Some(5_000));
    assert_eq!(touched.created_at, 2_000);
    let untouched = listed
        .iter()
        .find(|c| c.credential_id == "Y3JlZC0x")
        .context("other credential is gone")?;
    assert_eq!(untouched, &laptop);
    Ok(())
}

/// Several named passkeys per account: look-up, rename, remove (never the last usable one), and a
/// block that sticks.
async fn passkey_management(db: &TestDb) -> anyhow::Result<()> {
    let s = &db.store;
    s.create_user(&user("u-alice", "alice", Role::Engineer))
        .await?;
    s.create_user(&user("u-bob", "bob", Role::Engineer)).await?;
    let key = |id: &str, owner: &str, created_at: i64| Credential {
        credential_id: id.into(),
        user_id: owner.into(),
        name: format!("key {id}"),
        passkey: r#"{"cred":{"counter":3}}"#.into(),
        created_at,
        last_used_at: None,
        aaguid: Some("cb69481e-8ff7-4039-93ec-0a2729a154a8".into()),
        blocked_at: None,
    };
    s.add_credential(&key("a1", "u-alice", 1_000)).await?;
    s.add_credential(&key("a2", "u-alice", 2_000)).await?;
    s.add_credential(&key("b1", "u-bob", 1_500)).await?;
    let a1 = s.credential("a1").await?.context("a1 is stored")?;
    assert_eq!(
        a1.aaguid.as_deref(),
        Some("cb69481e-8ff7-4039-93ec-0a2729a154a8")
    );
    assert_eq!(a1.user_id, "u-alice");
    assert!(s.credential("nope").await?.is_none());

    // Renaming: only one's own credential.
    assert!(s.rename_credential("u-alice", "a1", "YubiKey 5C").await?);
    assert!(
        !s.rename_credential("u-alice", "b1", "mine now").await?,
        "[{}] renamed someone else's key",
        db.backend
    );
    assert_eq!(
        s.credential("a1").await?.map(|c| c.name),
        Some("YubiKey 5C".into())
    );
    assert_eq!(
        s.credential("b1").await?.map(|c| c.name),
        Some("key b1".into())
    );

    // Removing: not someone else's, and never the last usable one.
    assert!(!s.remove_credential("u-alice", "b1").await?);
    assert!(
        !s.remove_credential("u-bob", "b1").await?,
        "[{}] removed bob's only key",
        db.backend
    );
    assert!(s.credential("b1").await?.is_some());
    assert!(s.remove_credential("u-alice", "a2").await?);
    assert!(
        !s.remove_credential("u-alice", "a1").await?,
        "[{}] removed alice's last key",
        db.backend
    );
    assert_eq!(s.credentials_of("u-alice").await?.len(), 1);

    // A blocked credential stays blocked, is not updated by use, and does not count as a spare.
    s.add_credential(&key("a3", "u-alice", 3_000)).await?;
    assert!(
        s.block_credential("a3", "counter_regression", 4_000)
            .await?
    );
    assert!(
        !s.block_credential("a3", "counter_regression", 5_000)
            .await?,
        "blocked twice"
    );
    s.touch_credential("a3", r#"{"cred":{"counter":9}}"#, 6_000)
        .await?;
    let a3 = s.credential("a3").await?.context("a3 is stored")?;
    assert_eq!(a3.blocked_at, Some(4_000));
    assert!(!a3.usable());
    assert_eq!(
        a3.passkey, r#"{"cred":{"counter":3}}"#,
        "[{}] a blocked key was updated",
        db.backend
    );
    assert_eq!(a3.last_used_at, None);
    assert!(
        !s.remove_credential("u-alice", "a1").await?,
        "[{}] only a blocked key would be left",
        db.backend
    );
    // The blocked one itself can go.
    assert!(s.remove_credential("u-alice", "a3").await?);
    assert_eq!(
        s.credentials_of("u-alice")
            .await?
            .iter()
            .map(|c| c.credential_id.as_str())
            .collect::<Vec<_>>(),
        vec!["a1"]
    );
    Ok(())
}

async fn setup_tokens(db: &TestDb) -> anyhow::Result<()> {
    let s = &db.store;
    let now = clock::now();
    let first_admin = Invitation::first_admin("root@example.com");
    let hash = countersign::identity::setup::token_hash(&countersign::identity::setup::new_token());
    s.put_invitation(&hash, now, now + 3600, &first_admin)
        .await?;
    assert!(s.invitation(&hash, now).await?.is_some());
    assert!(s.use_setup_token(&hash, now).await?, "first use");
    assert!(
        s.invitation(&hash, now).await?.is_none(),
        "a used token is no longer valid"
    );
    assert!(
        !s.use_setup_token(&hash, now + 1).await?,
        "second use must fail"
    );

    let expired = countersign::identity::setup::token_hash("expired");
    s.put_invitation(&expired, now - 7200, now - 3600, &first_admin)
        .await?;
    assert!(s.invitation(&expired, now).await?.is_none());
    assert!(!s.use_setup_token(&expired, now).await?);

    // Valid up to, not including, its expiry second.
    let edge = countersign::identity::setup::token_hash("edge");
    s.put_invitation(&edge, now, now + 60, &first_admin).await?;
    assert!(s.invitation(&edge, now + 59).await?.is_some());
    assert!(s.invitation(&edge, now + 60).await?.is_none());
    assert!(!s.use_setup_token(&edge, now + 60).await?);
    assert!(s.use_setup_token(&edge, now + 59).await?);

    assert!(s.invitation("unknown", now).await?.is_none());
    assert!(!s.use_setup_token("unknown", now).await?);

    // An invitation keeps its role and username until used.
    let invited = countersign::identity::setup::token_hash("invited");
    let bob = Invitation {
        role: Role::Approver,
        username: "bob".into(),
        groups: Vec::new(),
    };
    s.put_invitation(&invited, now, now + 60, &bob).await?;
    assert_eq!(s.invitation(&invited, now).await?, Some(bob));
    assert!(s.use_setup_token(&invited, now).await?);
    assert_eq!(s.invitation(&invited, now).await?, None);

    // Roles change by username; an unknown one changes nothing.
    let user = User {
        user_id: uuid::Uuid::new_v4().to_string(),
        username: "carol".into(),
        display_name: "Carol".into(),
        role: Role::Engineer,
        created_at: now,
        groups: Vec::new(),
    };
    s.create_user(&user).await?;
    assert!(s.set_role("carol", Role::Auditor).await?);
    assert_eq!(
        s.user_by_username("carol").await?.map(|u| u.role),
        Some(Role::Auditor)
    );
    assert!(!s.set_role("nobody", Role::Admin).await?);
    Ok(())
}

async fn challenges(db: &TestDb) -> anyhow::Result<()> {
    let s = &db.store;
    let now = clock::now();
    let first = challenge("alice", "digest-a", "prod-workloads", now, Some(1));
    assert!(s.insert_challenge(&first).await?);
    assert_eq!(
        s.challenge(&first.code).await?,
        Some(first.clone()),
        "challenge must round-trip exactly"
    );

    // The same digest and guardrail pending twice: the second insert loses.
    let twin = challenge("alice", "digest-a", "prod-workloads", now + 1, Some(1));
    assert!(
        !s.insert_challenge(&twin).await?,
        "[{}] a second pending challenge for one digest",
        db.backend
    );
    assert_eq!(s.challenge(&twin.code).await?, None);
    assert_eq!(
        s.pending_challenge("digest-a", "prod-workloads", now + 1)
            .await?,
        Some(first.clone())
    );

    // Another guardrail over the same request is a separate challenge.
    let other_guardrail = challenge("alice", "digest-a", "prod-exec", now + 2, Some(1));
    assert!(s.insert_challenge(&other_guardrail).await?);
    assert_eq!(
        s.pending_challenge("digest-a", "prod-exec", now + 2)
            .await?
            .map(|c| c.code),
        Some(other_guardrail.code.clone())
    );
    assert_eq!(
        s.pending_challenge("digest-b", "prod-workloads", now)
            .await?,
        None
    );

    // A code that is already taken is refused too (the webhook then draws a new one).
    let mut collision = challenge("bob", "digest-c", "prod-workloads", now, Some(1));
    collision.code = first.code.clone();
    assert!(
        !s.insert_challenge(&collision).await?,
        "[{}] duplicate code",
        db.backend
    );

    // Newest first, limited.
    let newest = challenge("alice", "digest-d", "prod-workloads", now + 10, None);
    assert!(s.insert_challenge(&newest).await?);
    let bobs = challenge("bob", "digest-e", "prod-workloads", now + 20, None);
    assert!(s.insert_challenge(&bobs).await?);
    let listed: Vec<String> = s
        .challenges_of("alice", 10)
        .await?
        .into_iter()
        .map(|c| c.code)
        .collect();
    assert_eq!(
        listed,
        vec![
            newest.code.clone(),
            other_guardrail.code.clone(),
            first.code.clone()
        ]
    );
    let limited: Vec<String> = s
        .challenges_of("alice", 1)
        .await?
        .into_iter()
        .map(|c| c.code)
        .collect();
    assert_eq!(limited, vec![newest.code.clone()]);
    assert_eq!(s.challenges_of("bob", 10).await?.len(), 1);
    assert!(s.challenges_of("carol", 10).await?.is_empty());
    Ok(())
}

async fn expired_challenges(db: &TestDb) -> anyhow::Result<()> {
    let s = &db.store;
    let now = clock::now();
    let mut stale = challenge(
        "alice",
        "digest-x",
        "prod-workloads",
        now - 2 * CHALLENGE_TTL_SECS,
        Some(1),
    );
    stale.expires_at = now - CHALLENGE_TTL_SECS;
    assert!(s.insert_challenge(&stale).await?);
    assert_eq!(
        s.pending_challenge("digest-x", "prod-workloads", now)
            .await?,
        None,
        "[{}] stale challenge returned",
        db.backend
    );
    let stored = s
        .challenge(&stale.code)
        .await?
        .context("stale challenge vanished")?;
    assert_eq!(
        stored.status,
        ChallengeStatus::Expired,
        "pending_challenge must mark it expired"
    );
    assert_eq!(stored.status_at(now), ChallengeStatus::Expired);

    // It no longer blocks a fresh challenge for the same request.
    let fresh = challenge("alice", "digest-x", "prod-workloads", now, Some(1));
    assert!(s.insert_challenge(&fresh).await?);
    assert_eq!(
        s.pending_challenge("digest-x", "prod-workloads", now)
            .await?
            .map(|c| c.code),
        Some(fresh.code.clone())
    );

    // Exactly at its expiry second a challenge is expired.
    let fresh_expiry = fresh.expires_at;
    assert_eq!(
        s.pending_challenge("digest-x", "prod-workloads", fresh_expiry)
            .await?,
        None
    );
    assert_eq!(
        s.challenge(&fresh.code).await?.map(|c| c.status),
        Some(ChallengeStatus::Expired)
    );
    Ok(())
}

/// A challenge granted through a unit of work (as the elevation layer does): the grant round-trips
/// exactly, the challenge is no longer pending, and the same request may be challenged afresh.
async fn granted_challenges(db: &TestDb) -> anyhow::Result<()> {
    let s = &db.store;
    let now = clock::now();
    let g = granted(db, "alice", "digest-g", Some(1), now).await?;
    let stored = s
        .challenge(&g.challenge_code)
        .await?
        .context("granted challenge vanished")?;
    assert_eq!(stored.status, ChallengeStatus::Granted);
    assert_eq!(stored.grant_id.as_deref(), Some(g.id.as_str()));
    assert_eq!(
        s.grant(&g.id).await?,
        Some(g.clone()),
        "grant must round-trip exactly"
    );
    assert_eq!(
        s.challenge_grants(&g.challenge_code).await?,
        vec![g.clone()]
    );
    assert_eq!(
        s.pending_challenge("digest-g", "prod-workloads", now)
            .await?,
        None
    );
    // Only grants issued by break glass are listed as such, newest first, without the objects.
    assert!(s.broken_glass_since(now - 60, 10).await?.is_empty());
    let c = challenge("carol", "digest-glass", "prod-workloads", now, Some(1));
    ensure!(s.insert_challenge(&c).await?);
    let mut glass = Grant::for_challenge(&c, evidence("carol", now), now);
    glass.evidence.break_glass = true;
    crate::support::write_grant_rows(s.as_ref(), &glass).await?;
    // The words in a reason are not the flag.
    let decoy = challenge("dave", "digest-decoy", "prod-workloads", now, Some(1));
    ensure!(s.insert_challenge(&decoy).await?);
    let mut words = Grant::for_challenge(&decoy, evidence("dave", now), now);
    words.evidence.reason = Some("\"breakGlass\":true".into());
    crate::support::write_grant_rows(s.as_ref(), &words).await?;
    let listed = s.broken_glass_since(now - 60, 10).await?;
    assert_eq!(
        listed.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(),
        [c.code.as_str()]
    );
    assert!(listed[0].request.object.is_none() && listed[0].request.old_object.is_none());
    assert!(s.broken_glass_since(now + 60, 10).await?.is_empty());
    assert!(
        s.insert_challenge(&challenge(
            "alice",
            "digest-g",
            "prod-workloads",
            now + 1,
            Some(1)
        ))
        .await?
    );
    Ok(())
}

async fn single_use_grants(db: &TestDb) -> anyhow::Result<()> {
    let s = &db.store;
    let now = clock::now();
    let g = granted(db, "alice", "digest-1", Some(1), now).await?;
    let live = s.live_grants("alice", "prod-workloads", now).await?;
    assert_eq!(live, vec![g.clone()]);
    assert!(
        s.live_grants("bob", "prod-workloads", now)
            .await?
            .is_empty(),
        "grants belong to their user"
    );
    assert!(
        s.live_grants("alice", "prod-exec", now).await?.is_empty(),
        "grants belong to their guardrail"
    );

    assert!(s.consume_grant(&g.id, now).await?, "first use");
    assert!(
        !s.consume_grant(&g.id, now).await?,
        "[{}] a single-use grant was used twice",
        db.backend
    );
    assert_eq!(s.grant(&g.id).await?.and_then(|g| g.uses_left), Some(0));
    assert!(
        s.live_grants("alice", "prod-workloads", now)
            .await?
            .is_empty(),
        "a spent grant is not live"
    );

    let three = granted(db, "alice", "digest-3", Some(3), now).await?;
    for i in 0..3 {
        assert!(s.consume_grant(&three.id, now).await?, "use {} of 3", i + 1);
    }
    assert!(!s.consume_grant(&three.id, now).await?, "use 4 of 3");
    assert!(!s.consume_grant("no-such-grant", now).await?);
    Ok(())
}

async fn unlimited_and_expiring_grants(db: &TestDb) -> anyhow::Result<()> {
    let s = &db.store;
    let now = clock::now();
    let older = granted(db, "alice", "digest-u1", None, now - 10).await?;
    let unlimited = granted(db, "alice", "digest-u2", None, now).await?;
    assert_eq!(unlimited.uses_left, None);
    for _ in 0..5 {
        assert!(s.consume_grant(&unlimited.id, now).await?);
    }
    assert_eq!(
        s.grant(&unlimited.id).await?.map(|g| g.uses_left),
        Some(None),
        "unlimited stays unlimited"
    );
    let live: Vec<String> = s
        .live_grants("alice", "prod-workloads", now)
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(
        live,
        vec![older.id.clone(), unlimited.id.clone()],
        "live grants, oldest first"
    );

    // Past its expiry a grant is neither live nor usable.
    let expiry = unlimited.expires_at;
    assert!(s
        .live_grants("alice", "prod-workloads", expiry)
        .await?
        .iter()
        .all(|g| g.id != unlimited.id));
    assert!(
        !s.consume_grant(&unlimited.id, expiry).await?,
        "[{}] expired grant consumed",
        db.backend
    );
    assert!(s.consume_grant(&unlimited.id, expiry - 1).await?);

    // Revocation (a timestamp in the row) takes effect at once.
    let revoked = db
        .execute(&format!(
            "update grants set revoked_at = {now} where grant_id = '{}'",
            older.id
        ))
        .await?;
    assert_eq!(revoked, 1);
    assert!(s
        .live_grants("alice", "prod-workloads", now)
        .await?
        .iter()
        .all(|g| g.id != older.id));
    assert!(
        !s.consume_grant(&older.id, now).await?,
        "[{}] revoked grant consumed",
        db.backend
    );
    assert_eq!(
        s.grant(&older.id).await?.and_then(|g| g.revoked_at),
        Some(now)
    );
    Ok(())
}

async fn all_live_grants_and_revocation(db: &TestDb) -> anyhow::Result<()> {
    let s = &db.store;
    let now = clock::now();
    assert!(s.all_live_grants(now).await?.is_empty());
    let single = granted(db, "alice", "digest-l1", Some(1), now - 2).await?;
    let unlimited = granted(db, "bob", "digest-l2", None, now - 1).await?;
    let spent = granted(db, "alice", "digest-l3", Some(1), now).await?;
    assert!(s.consume_grant(&spent.id, now).await?);
    let revoked = granted(db, "carol", "digest-l4", None, now).await?;

    assert!(s.revoke_grant(&revoked.id, now, "admin").await?);
    assert!(
        !s.revoke_grant(&revoked.id, now + 1, "mallory").await?,
        "[{}] revoked twice",
        db.backend
    );
    assert_eq!(
        s.grant(&revoked.id).await?.and_then(|g| g.revoked_by),
        Some("admin".to_owned()),
        "[{}] the first revoker is kept",
        db.backend
    );
    assert!(!s.revoke_grant("no-such-grant", now, "admin").await?);
    assert_eq!(
        s.grant(&revoked.id).await?.and_then(|g| g.revoked_at),
        Some(now)
    );
    assert!(!s.consume_grant(&revoked.id, now).await?);

    let live = s.all_live_grants(now).await?;
    assert_eq!(
        live,
        vec![
            countersign::grants::LiveGrant::from(&single),
            countersign::grants::LiveGrant::from(&unlimited),
        ],
        "[{}] live grants, oldest first, without spent or revoked ones",
        db.backend
    );
    // Past its expiry a grant is neither listed nor revocable.
    assert!(s
        .all_live_grants(single.expires_at)
        .await?
        .iter()
        .all(|g| g.id != single.id));
    assert!(
        !s.revoke_grant(&single.id, single.expires_at, "admin")
            .await?
    );
    Ok(())
}

async fn concurrent_consumption_takes_one_use(db: &TestDb) -> anyhow::Result<()> {
    let now = clock::now();
    let g = granted(db, "alice", "digest-race", Some(1), now).await?;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = db.store.clone();
        let id = g.id.clone();
        tasks.push(tokio::spawn(
            async move { store.consume_grant(&id, now).await },
        ));
    }
    let mut wins = 0;
    for task in tasks {
        if task.await?? {
            wins += 1;
        }
    }
    assert_eq!(
        wins, 1,
        "[{}] {wins} concurrent retries took the single use",
        db.backend
    );

    // Racing identical challenges: exactly one is inserted.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = db.store.clone();
        let c = challenge("alice", "digest-race-2", "prod-workloads", now + i, Some(1));
        tasks.push(tokio::spawn(
            async move { store.insert_challenge(&c).await },
        ));
    }
    let mut inserted = 0;
    for task in tasks {
        if task.await?? {
            inserted += 1;
        }
    }
    assert_eq!(
        inserted, 1,
        "[{}] {inserted} pending challenges for one digest",
        db.backend
    );
    Ok(())
}

fn event(i: i64, kind: &str) -> AuditEvent {
    AuditEvent {
        at: 1_700_000_000 + i,
        kind: kind.into(),
        actor: if i % 2 == 0 {
            "webhook".into()
        } else {
            "alice@example.com".into()
        },
        subject: format!("K7Q2M9X{}", (b'A' + (i as u8 % 26)) as char),
        detail: json!({"i": i, "uid": format!("uid-{i}"), "nested": {"list": [1, "two", null], "text": "quote \" and ünïcødé"}}),
    }
}

async fn audit_chain(db: &TestDb) -> anyhow::Result<()> {
    let s = &db.store;
    assert!(s.audit_records(0, 100).await?.is_empty());
    let kinds = [
        "challenge.created",
        "grant.issued",
        "grant.used",
        "login",
        "stepup.failed",
    ];
    let events: Vec<AuditEvent> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| event(i as i64, k))
        .collect();
    for e in &events {
        s.append_audit(e).await?;
    }
    let records = s.audit_records(0, 100).await?;
    assert_eq!(
        records.iter().map(|r| r.event.clone()).collect::<Vec<_>>(),
        events,
        "[{}] events in order",
        db.backend
    );
    assert!(
        records.windows(2).all(|w| w[0].seq < w[1].seq),
        "sequence numbers increase"
    );
    assert_eq!(records[0].prev_hash, GENESIS_HASH);
    for w in records.windows(2) {
        assert_eq!(
            w[1].prev_hash, w[0].hash,
            "each record chains to the one before"
        );
    }
    assert_eq!(
        first_broken_link(&records),
        None,
        "[{}] intact chain reported broken",
        db.backend
    );

    let page = s.audit_records(records[1].seq, 2).await?;
    assert_eq!(
        page.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![records[2].seq, records[3].seq]
    );

    // Rewrite one event's detail behind the store's back (past the append-only trigger).
    db.allow_audit_tampering().await?;
    let victim = records[2].seq;
    let changed = db
        .execute(&format!(r#"update audit_events set detail = '{{"i": 2, "tampered": true}}' where seq = {victim}"#))
        .await?;
    assert_eq!(changed, 1);
    let tampered = s.audit_records(0, 100).await?;
    assert_eq!(
        first_broken_link(&tampered),
        Some(victim),
        "[{}] tampering not detected",
        db.backend
    );
    Ok(())
}

async fn concurrent_audit_appends(db: &TestDb) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store.append_audit(&event(i, "grant.used")).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    let records = db.store.audit_records(0, 100).await?;
    assert_eq!(records.len(), 20);
    let distinct: HashSet<i64> = records.iter().map(|r| r.event.at).collect();
    assert_eq!(distinct.len(), 20, "every append landed once");
    assert_eq!(
        first_broken_link(&records),
        None,
        "[{}] concurrent appends forked the chain",
        db.backend
    );

    // Removing a record breaks the link of the one after it.
    db.allow_audit_tampering().await?;
    let removed = records[9].seq;
    assert_eq!(
        db.execute(&format!("delete from audit_events where seq = {removed}"))
            .await?,
        1
    );
    let after = db.store.audit_records(0, 100).await?;
    assert_eq!(first_broken_link(&after), Some(records[10].seq));
    Ok(())
}

async fn sessions(db: &TestDb) -> anyhow::Result<()> {
    let sessions = db.store.session_store();
    sessions
        .migrate()
        .await
        .with_context(|| format!("[{}] first migrate", db.backend))?;
    sessions
        .migrate()
        .await
        .with_context(|| format!("[{}] migrate is idempotent", db.backend))?;

    let mut record = Record {
        id: Id::default(),
        data: [
            ("user_id".to_owned(), json!("u-alice")),
            ("auth_time".to_owned(), json!(1_700_000_000)),
        ]
        .into(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    sessions.create(&mut record).await?;
    let loaded = sessions
        .load(&record.id)
        .await?
        .context("session not found after create")?;
    assert_eq!(loaded.data, record.data);
    sessions.delete(&record.id).await?;
    assert_eq!(sessions.load(&record.id).await?, None);
    Ok(())
}
