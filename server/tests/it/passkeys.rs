//! Several named passkeys per account, driven over HTTP with a software authenticator: add, rename,
//! remove only with a fresh assertion and never the last one, every change audited; and sign-in
//! options that do not reveal whether a username exists.

use std::collections::BTreeSet;

use anyhow::{ensure, Context};
use countersign::clock;
use countersign::identity::{Role, User};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tower_sessions::cookie::time::{Duration as CookieDuration, OffsetDateTime};

use crate::portal::{Browser, Portal};
use crate::soft_key::SoftKey;
use crate::support::PUBLIC_URL;

/// The portal with one person signed in by a passkey a moment ago.
struct Account {
    portal: Portal,
    browser: Browser,
}

impl Account {
    async fn signed_in(user: &User) -> anyhow::Result<Self> {
        let portal = Portal::spawn().await?;
        portal.state().store.create_user(user).await?;
        let browser = portal
            .session_at(
                user,
                clock::now(),
                OffsetDateTime::now_utc() + CookieDuration::minutes(30),
            )
            .await?;
        Ok(Self { portal, browser })
    }

    fn store(&self) -> &dyn countersign::store::AnyStore {
        self.portal.state().store.as_ref()
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(StatusCode, Value)> {
        let response = self.portal.json(path, Some(&self.browser), body).await?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Register a new software key under `name` through the account page's ceremony.
    async fn add(&self, name: &str) -> anyhow::Result<SoftKey> {
        let mut key = SoftKey::new(PUBLIC_URL)?;
        let (status, options) = self
            .post("/account/passkeys/add/start", &json!({ "name": name }))
            .await?;
        ensure!(status == StatusCode::OK, "add/start: {status} {options}");
        let selection = &options["publicKey"]["authenticatorSelection"];
        ensure!(
            selection["residentKey"] == "required",
            "a discoverable key is asked for: {options}"
        );
        let (status, done) = self
            .post("/account/passkeys/add/finish", &key.register(&options)?)
            .await?;
        ensure!(status == StatusCode::OK, "add/finish: {status} {done}");
        ensure!(done["redirect"] == "/account?done=added", "{done}");
        Ok(key)
    }

    async fn names(&self, user: &User) -> anyhow::Result<Vec<(String, String)>> {
        Ok(self
            .store()
            .credentials_of(&user.user_id)
            .await?
            .into_iter()
            .map(|c| (c.credential_id, c.name))
            .collect())
    }

    async fn audit_kinds(&self) -> anyhow::Result<Vec<String>> {
        self.portal.audit_kinds().await
    }
}

fn alice() -> User {
    User {
        user_id: uuid::Uuid::new_v4().to_string(),
        username: "alice@example.com".into(),
        display_name: "Alice".into(),
        role: Role::Engineer,
        created_at: clock::now(),
        groups: Vec::new(),
    }
}

#[tokio::test]
async fn named_passkeys_are_added_renamed_and_removed_with_a_fresh_assertion() -> anyhow::Result<()>
{
    let user = alice();
    let portal = Account::signed_in(&user).await?;
    let mut laptop = portal.add("Laptop").await?;
    let _yubikey = portal.add("YubiKey 5C").await?;
    let keys = portal.names(&user).await?;
    let id_of = |name: &str| {
        keys.iter()
            .find(|k| k.1 == name)
            .map(|k| k.0.clone())
            .with_context(|| format!("{name} missing from {keys:?}"))
    };
    assert_eq!(keys.len(), 2);
    let (laptop_id, yubikey_id) = (id_of("Laptop")?, id_of("YubiKey 5C")?);

    // Names are checked.
    let (status, body) = portal
        .post("/account/passkeys/add/start", &json!({ "name": "  " }))
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Rename.
    let (status, body) = portal
        .post(
            "/account/passkeys/rename",
            &json!({ "credentialId": yubikey_id, "name": " Backup key " }),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(portal
        .names(&user)
        .await?
        .contains(&(yubikey_id.clone(), "Backup key".to_owned())));
    let (status, _) = portal
        .post(
            "/account/passkeys/rename",
            &json!({ "credentialId": "bm90LW1pbmU", "name": "x" }),
        )
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Removing needs the assertion of this very ceremony: no finish without a start.
    let (status, _) = portal
        .post("/account/passkeys/remove/finish", &json!({ "credentialId": yubikey_id, "credential": laptop.assert(&json!({"publicKey": {"challenge": "AAAA", "rpId": "localhost"}}))? }))
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(portal.names(&user).await?.len(), 2);
    // With it, the backup key goes (confirmed with the laptop).
    let (status, options) = portal
        .post(
            "/account/passkeys/remove/start",
            &json!({ "credentialId": yubikey_id }),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{options}");
    let assertion = laptop.assert(&options)?;
    let (status, body) = portal
        .post(
            "/account/passkeys/remove/finish",
            &json!({ "credentialId": yubikey_id, "credential": assertion }),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        portal.names(&user).await?,
        vec![(laptop_id.clone(), "Laptop".to_owned())]
    );

    // The last one stays.
    let (status, body) = portal
        .post(
            "/account/passkeys/remove/start",
            &json!({ "credentialId": laptop_id }),
        )
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("last usable passkey"),
        "{body}"
    );

    let kinds = portal.audit_kinds().await?;
    for kind in ["passkey.added", "passkey.renamed", "passkey.removed"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn sign_in_options_do_not_reveal_whether_a_username_exists() -> anyhow::Result<()> {
    let user = alice();
    let portal = Account::signed_in(&user).await?;
    portal.add("Laptop").await?;
    let shape = |v: &Value| -> BTreeSet<String> {
        v["publicKey"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (known_status, known) = portal
        .post("/auth/login/start", &json!({ "username": user.username }))
        .await?;
    let (unknown_status, unknown) = portal
        .post(
            "/auth/login/start",
            &json!({ "username": "mallory@example.com" }),
        )
        .await?;
    assert_eq!(
        (known_status, unknown_status),
        (StatusCode::OK, StatusCode::OK),
        "{known} {unknown}"
    );
    assert_eq!(shape(&known), shape(&unknown));
    let ids = |v: &Value| {
        v["publicKey"]["allowCredentials"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(!ids(&unknown).is_empty(), "{unknown}");
    // Asking again gives the same decoys, as a real account gives the same keys.
    let (_, again) = portal
        .post(
            "/auth/login/start",
            &json!({ "username": "mallory@example.com" }),
        )
        .await?;
    assert_eq!(ids(&unknown), ids(&again));
    ensure!(known.get("mediation").is_none() && unknown.get("mediation").is_none());
    let keys = portal.store().credentials_of(&user.user_id).await?;
    let first = keys.first().context("alice has a key")?;
    assert_eq!(
        ids(&known),
        vec![json!({"type": "public-key", "id": first.credential_id})]
    );

    // A blocked key (possible clone) is never offered again: the account now looks like any other
    // without a usable key.
    assert!(
        portal
            .store()
            .block_credential(&first.credential_id, "counter_regression", clock::now())
            .await?
    );
    let (status, blocked) = portal
        .post("/auth/login/start", &json!({ "username": user.username }))
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shape(&blocked), shape(&known));
    assert!(
        !ids(&blocked).contains(&json!({"type": "public-key", "id": first.credential_id})),
        "{blocked}"
    );
    Ok(())
}
