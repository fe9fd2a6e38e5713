//! Finding 13 (identity part): an unknown stored role grants nothing, and an admin can disable an
//! account (it cannot sign in, its sessions end at once, it confirms nothing; audited).

use anyhow::Context;
use countersign::identity::accounts;
use countersign::identity::setup::Invitation;
use countersign::identity::{Role, User};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::portal::{session_cookie, Browser, Portal};
use crate::soft_key::SoftKey;
use crate::support::TestDb;

#[tokio::test]
async fn finding_13_an_unknown_stored_role_grants_nothing() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let db = portal.app.db().context("no database")?;
    let user = portal.user("mystery", Role::Engineer).await?;
    // A role this version does not know (a typo in a hand edit, or a newer release's role).
    let pool = sqlx::SqlitePool::connect(&db.url).await?;
    sqlx::query("update users set role = 'superuser' where username = 'mystery'")
        .execute(&pool)
        .await?;
    let stored = portal
        .state()
        .store
        .user_by_username("mystery")
        .await?
        .context("gone")?;
    assert_eq!(stored.role, Role::Unknown);
    let browser = portal.signed_in(&user).await?;
    // Today's fallback (auditor) could list every grant and read the audit history.
    for path in ["/api/list_grants"] {
        let status = portal.get(path, Some(&browser)).await?.status();
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
            "{path}: {status}"
        );
    }
    let (_, code, _) = portal.exec_challenge().await?;
    let response = portal
        .json("/auth/stepup/start", Some(&browser), &json!({"code": code}))
        .await?;
    assert!(response.status().is_client_error(), "{}", response.status());
    Ok(())
}

/// An account with a software key; returns it, the key and a signed-in browser.
async fn account_with_key(
    portal: &Portal,
    username: &str,
) -> anyhow::Result<(User, SoftKey, Browser)> {
    let invitation = Invitation {
        role: Role::Admin,
        username: username.into(),
        groups: Vec::new(),
    };
    let token = accounts::invite(portal.state().store.as_ref(), &invitation, "it-admin").await?;
    let anonymous = portal.page(&format!("/setup/{token}"), None).await?;
    let (key, response) = portal
        .setup_with_key(&anonymous, &json!({"token": token}))
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response).context("no session")?;
    let browser = portal.page("/", Some(&cookie)).await?;
    let user = portal
        .state()
        .store
        .user_by_username(username)
        .await?
        .context("no account")?;
    Ok((user, key, browser))
}

/// A passkey sign-in as `username` with `key`: the finish's status.
async fn sign_in(portal: &Portal, username: &str, key: &mut SoftKey) -> anyhow::Result<StatusCode> {
    let browser = portal.page("/login", None).await?;
    let options: Value = portal
        .json(
            "/auth/login/start",
            Some(&browser),
            &json!({"username": username}),
        )
        .await?
        .json()
        .await?;
    let response = portal
        .json("/auth/login/finish", Some(&browser), &key.assert(&options)?)
        .await?;
    Ok(response.status())
}

#[tokio::test]
async fn finding_13_a_disabled_account_cannot_sign_in_and_its_sessions_end() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let store = portal.state().store.clone();
    let (_, mut key, browser) = account_with_key(&portal, "dana").await?;
    let requester_session = browser;
    assert_eq!(
        portal
            .get("/api/list_grants", Some(&requester_session))
            .await?
            .status(),
        StatusCode::OK
    );

    assert!(accounts::set_disabled(store.as_ref(), "dana", true, "it-admin").await?);
    assert!(
        !accounts::set_disabled(store.as_ref(), "dana", true, "it-admin").await?,
        "disabling twice changes nothing"
    );
    // The live session is refused at once.
    assert_eq!(
        portal
            .get("/api/list_grants", Some(&requester_session))
            .await?
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Signing in with the right key is refused.
    assert_eq!(
        sign_in(&portal, "dana", &mut key).await?,
        StatusCode::FORBIDDEN
    );

    // Enabled again, the key signs in.
    assert!(accounts::set_disabled(store.as_ref(), "dana", false, "it-admin").await?);
    assert_eq!(sign_in(&portal, "dana", &mut key).await?, StatusCode::OK);
    let kinds = portal.audit_kinds().await?;
    for kind in ["account.disabled", "login.refused", "account.enabled"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} not in {kinds:?}");
    }
    Ok(())
}

#[tokio::test]
async fn finding_13_a_disabled_account_confirms_nothing() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (_, code, requester) = portal.exec_challenge().await?;
    let (_, mut key, browser) = account_with_key(&portal, &requester).await?;
    let browser = portal
        .page(&format!("/c/{code}"), Some(&browser.cookie))
        .await?;
    let options: Value = portal
        .json("/auth/stepup/start", Some(&browser), &json!({"code": code}))
        .await?
        .json()
        .await?;
    accounts::set_disabled(portal.state().store.as_ref(), &requester, true, "it-admin").await?;
    let response = portal
        .json(
            "/auth/stepup/finish",
            Some(&browser),
            &json!({"code": code, "credential": key.assert(&options)?}),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        portal.grant_of(&code).await?.is_none(),
        "a grant was issued"
    );
    Ok(())
}

#[tokio::test]
async fn finding_13_disabling_is_kept_on_both_backends() -> anyhow::Result<()> {
    for db in [Some(TestDb::sqlite().await?), TestDb::postgres().await?]
        .into_iter()
        .flatten()
    {
        let store = db.store.as_ref();
        let b = db.backend;
        let user = User {
            user_id: uuid::Uuid::new_v4().to_string(),
            username: "erin".into(),
            display_name: "Erin".into(),
            role: Role::Engineer,
            created_at: countersign::clock::now(),
            groups: Vec::new(),
        };
        store.create_user(&user).await?;
        assert_eq!(store.disabled_at(&user.user_id).await?, None, "{b}");
        assert!(store.set_disabled("erin", Some(42)).await?, "{b}");
        assert_eq!(store.disabled_at(&user.user_id).await?, Some(42), "{b}");
        assert!(store.set_disabled("erin", None).await?, "{b}");
        assert_eq!(store.disabled_at(&user.user_id).await?, None, "{b}");
        assert!(!store.set_disabled("nobody", Some(1)).await?, "{b}");
        let missing = accounts::set_disabled(store, "nobody", true, "it").await;
        assert!(
            matches!(missing, Err(accounts::AccountError::Unknown(_))),
            "{b}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn finding_13_user_disable_and_enable_on_the_command_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("countersign.db");
    // Owner-only, as `serve` and the CLI make it (they refuse a database others can read).
    countersign::private_files::prepare_sqlite(&file)?;
    let url = format!("sqlite://{}", file.display());
    let store = countersign::store::connect(&url).await?;
    let user = User {
        user_id: uuid::Uuid::new_v4().to_string(),
        username: "frank".into(),
        display_name: "Frank".into(),
        role: Role::Engineer,
        created_at: countersign::clock::now(),
        groups: Vec::new(),
    };
    store.create_user(&user).await?;
    let run = |args: &[&str]| -> anyhow::Result<std::process::Output> {
        Ok(
            std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
                .args(args)
                .arg("--data-dir")
                .arg(dir.path())
                .env("RUST_LOG", "warn")
                .env_remove("COUNTERSIGN_DATABASE_URL")
                .output()?,
        )
    };
    let out = run(&["user", "disable", "frank"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("frank: disabled"));
    assert!(store.disabled_at(&user.user_id).await?.is_some());
    let out = run(&["user", "enable", "frank"])?;
    assert!(out.status.success());
    assert!(store.disabled_at(&user.user_id).await?.is_none());
    let out = run(&["user", "disable", "nobody"])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account is named nobody"));
    let kinds: Vec<String> = store
        .audit_records(0, 100)
        .await?
        .into_iter()
        .map(|r| r.event.kind)
        .collect();
    assert_eq!(kinds, ["account.disabled", "account.enabled"]);
    Ok(())
}
