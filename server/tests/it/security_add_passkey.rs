//! Finding 3: adding a passkey needed no fresh authentication, so a stolen session could add the
//! thief's key for good. A key is now added only within minutes of signing in, or after a fresh
//! user-verified assertion with one of the person's own keys; the audit log says which.

use anyhow::Context;
use countersign::clock;
use countersign::identity::accounts;
use countersign::identity::setup::Invitation;
use countersign::identity::{Role, User};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tower_sessions::cookie::time::{Duration as CookieDuration, OffsetDateTime};

use crate::portal::{Browser, Portal};
use crate::soft_key::SoftKey;
use crate::support::PUBLIC_URL;

/// Alice with one software key, registered through an invitation.
async fn alice_with_key(portal: &Portal) -> anyhow::Result<(User, SoftKey)> {
    let invitation = Invitation {
        role: Role::Engineer,
        username: "alice".into(),
        groups: Vec::new(),
    };
    let token = accounts::invite(portal.state().store.as_ref(), &invitation, "it-admin").await?;
    let browser = portal.page(&format!("/setup/{token}"), None).await?;
    let (key, response) = portal
        .setup_with_key(&browser, &json!({"token": token}))
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let user = portal
        .state()
        .store
        .user_by_username("alice")
        .await?
        .context("no account")?;
    Ok((user, key))
}

/// A session that signed in an hour ago (a stolen cookie, say).
async fn old_session(portal: &Portal, user: &User) -> anyhow::Result<Browser> {
    portal
        .session_at(
            user,
            clock::now() - 3600,
            OffsetDateTime::now_utc() + CookieDuration::minutes(30),
        )
        .await
}

async fn key_count(portal: &Portal, user: &User) -> anyhow::Result<usize> {
    Ok(portal
        .state()
        .store
        .credentials_of(&user.user_id)
        .await?
        .len())
}

async fn added_events(portal: &Portal) -> anyhow::Result<Vec<Value>> {
    Ok(portal
        .state()
        .store
        .audit_records(0, 10_000)
        .await?
        .into_iter()
        .filter(|r| r.event.kind == "passkey.added")
        .map(|r| r.event.detail)
        .collect())
}

#[tokio::test]
async fn finding_3_an_old_session_cannot_add_a_key_without_an_assertion() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (alice, _key) = alice_with_key(&portal).await?;
    let stolen = old_session(&portal, &alice).await?;

    let started: Value = portal
        .json(
            "/account/passkeys/add/start",
            Some(&stolen),
            &json!({"name": "thief"}),
        )
        .await?
        .json()
        .await?;
    assert!(
        started.get("reauthenticate").is_some() && started.get("publicKey").is_none(),
        "an hour-old session got registration options: {started}"
    );

    // Registering anyway (no ceremony was started) is refused.
    let mut thief = SoftKey::new(PUBLIC_URL)?;
    let forged = json!({"publicKey": {
        "challenge": "AAAA", "rp": {"id": "localhost", "name": "x"},
        "user": {"id": "AAAA", "name": "alice", "displayName": "alice"},
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}]
    }});
    let response = portal
        .json(
            "/account/passkeys/add/finish",
            Some(&stolen),
            &thief.register(&forged)?,
        )
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // An assertion by a key that is not alice's does not count.
    let response = portal
        .json(
            "/account/passkeys/add/confirm",
            Some(&stolen),
            &json!({"credential": thief.assert(&started["reauthenticate"])?}),
        )
        .await?;
    assert!(response.status().is_client_error(), "{}", response.status());
    assert_eq!(
        key_count(&portal, &alice).await?,
        1,
        "the thief's key was added"
    );
    assert!(added_events(&portal).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn finding_3_an_old_session_adds_a_key_after_touching_an_existing_one() -> anyhow::Result<()>
{
    let portal = Portal::spawn().await?;
    let (alice, mut key) = alice_with_key(&portal).await?;
    let first_key = portal.state().store.credentials_of(&alice.user_id).await?[0]
        .credential_id
        .clone();
    let session = old_session(&portal, &alice).await?;

    let started: Value = portal
        .json(
            "/account/passkeys/add/start",
            Some(&session),
            &json!({"name": "YubiKey backup"}),
        )
        .await?
        .json()
        .await?;
    let assertion = key.assert(&started["reauthenticate"])?;
    let response = portal
        .json(
            "/account/passkeys/add/confirm",
            Some(&session),
            &json!({"credential": assertion}),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let options: Value = response.json().await?;
    assert!(options["publicKey"]["user"].is_object(), "{options}");
    let mut backup = SoftKey::new(PUBLIC_URL)?;
    let response = portal
        .json(
            "/account/passkeys/add/finish",
            Some(&session),
            &backup.register(&options)?,
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(key_count(&portal, &alice).await?, 2);
    let events = added_events(&portal).await?;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["authenticated"]["via"], "assertion",
        "{}",
        events[0]
    );
    assert_eq!(
        events[0]["authenticated"]["credentialId"],
        first_key.as_str()
    );
    Ok(())
}

#[tokio::test]
async fn finding_3_a_recent_sign_in_adds_a_key_directly_and_says_so() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (alice, _key) = alice_with_key(&portal).await?;
    let fresh = portal.signed_in(&alice).await?;
    let options: Value = portal
        .json(
            "/account/passkeys/add/start",
            Some(&fresh),
            &json!({"name": "laptop"}),
        )
        .await?
        .json()
        .await?;
    assert!(options["publicKey"]["user"].is_object(), "{options}");
    let mut laptop = SoftKey::new(PUBLIC_URL)?;
    let response = portal
        .json(
            "/account/passkeys/add/finish",
            Some(&fresh),
            &laptop.register(&options)?,
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let events = added_events(&portal).await?;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["authenticated"]["via"], "recentSignIn",
        "{}",
        events[0]
    );
    Ok(())
}

#[tokio::test]
async fn finding_3_a_sign_in_only_key_confirms_adding_an_approved_one() -> anyhow::Result<()> {
    use countersign::identity::authenticators::AuthenticatorAllowList;
    use countersign::identity::passkeys::Passkeys;
    use countersign::identity::Credential;
    use std::sync::Arc;

    const YUBIKEY_5_NFC: &str = "ee882879-721c-4913-9775-3dfcce97072a";
    let vendor = crate::soft_key::Vendor::new("Yubico Test Root CA")?;
    let list = AuthenticatorAllowList::parse(
        &vendor.allow_list(&[(YUBIKEY_5_NFC, "YubiKey 5 NFC")]),
        std::path::Path::new("keys.yaml"),
    )?;
    let strict = Passkeys::new(&url::Url::parse(PUBLIC_URL)?)?.with_allowlist(list);
    let portal = Portal::spawn_with(PUBLIC_URL, |s| s.passkeys = Arc::new(strict)).await?;
    let user = portal.user("grace", Role::Engineer).await?;

    // Grace's only key was registered before the allow-list: it signs in but cannot step up.
    let open = Passkeys::new(&url::Url::parse(PUBLIC_URL)?)?;
    let (options, state) = open.start_registration(&user, &[])?;
    let mut old = SoftKey::new(PUBLIC_URL)?;
    let response = serde_json::from_value(old.register(&options)?)?;
    let registered = open.finish_registration(&response, &state)?;
    portal
        .state()
        .store
        .add_credential(&Credential {
            credential_id: registered.credential_id,
            user_id: user.user_id.clone(),
            name: "Old laptop".into(),
            passkey: registered.passkey,
            created_at: clock::now(),
            last_used_at: None,
            aaguid: registered.aaguid,
            blocked_at: None,
        })
        .await?;

    // An hour after signing in, that key still vouches for adding an approved one.
    let session = old_session(&portal, &user).await?;
    let started: Value = portal
        .json(
            "/account/passkeys/add/start",
            Some(&session),
            &json!({"name": "YubiKey"}),
        )
        .await?
        .json()
        .await?;
    let response = portal
        .json(
            "/account/passkeys/add/confirm",
            Some(&session),
            &json!({"credential": old.assert(&started["reauthenticate"])?}),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let options: Value = response.json().await?;
    let mut yubikey = SoftKey::attested(PUBLIC_URL, YUBIKEY_5_NFC, vendor.batch("YubiKey 5 NFC")?)?;
    let response = portal
        .json(
            "/account/passkeys/add/finish",
            Some(&session),
            &yubikey.register(&options)?,
        )
        .await?;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await?
    );
    assert_eq!(key_count(&portal, &user).await?, 2);
    Ok(())
}
