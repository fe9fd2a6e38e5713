//! The authenticator allow-list over HTTP, with software authenticators that attest like security
//! keys: a model registers only when its attestation chains to its vendor's listed root, a forged
//! or foreign attestation is refused by name, and step-ups need an approved key.

use std::sync::Arc;

use anyhow::Context;
use countersign::clock;
use countersign::identity::authenticators::AuthenticatorAllowList;
use countersign::identity::passkeys::{Approval, Passkeys};
use countersign::identity::{Credential, Role, User};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::portal::{Browser, Portal};
use crate::soft_key::{Batch, SoftKey, Vendor};
use crate::support::PUBLIC_URL;

const YUBIKEY_5_NFC: &str = "ee882879-721c-4913-9775-3dfcce97072a";
const OTHER_MODEL: &str = "2fc0579f-8113-47ea-b116-bb5a8db9202a";

/// An allow-list approving `models` (AAGUID, name) under `vendor`'s root.
fn allow_list(vendor: &Vendor, models: &[(&str, &str)]) -> anyhow::Result<AuthenticatorAllowList> {
    Ok(AuthenticatorAllowList::parse(
        &vendor.allow_list(models),
        std::path::Path::new("keys.yaml"),
    )?)
}

async fn portal_with(list: AuthenticatorAllowList) -> anyhow::Result<Portal> {
    let passkeys = Passkeys::new(&url::Url::parse(PUBLIC_URL)?)?.with_allowlist(list);
    Portal::spawn_with(PUBLIC_URL, |state| state.passkeys = Arc::new(passkeys)).await
}

async fn post(
    portal: &Portal,
    browser: &Browser,
    path: &str,
    body: &Value,
) -> anyhow::Result<(StatusCode, Value)> {
    let response = portal.json(path, Some(browser), body).await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Register `key` on the account page; the answer to the finish.
async fn add(
    portal: &Portal,
    browser: &Browser,
    key: &mut SoftKey,
    name: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let (status, options) = post(
        portal,
        browser,
        "/account/passkeys/add/start",
        &json!({ "name": name }),
    )
    .await?;
    anyhow::ensure!(status == StatusCode::OK, "add/start: {status} {options}");
    anyhow::ensure!(
        options["publicKey"]["attestation"] == "direct",
        "attestation is asked for: {options}"
    );
    post(
        portal,
        browser,
        "/account/passkeys/add/finish",
        &key.register(&options)?,
    )
    .await
}

async fn stepup_start(
    portal: &Portal,
    browser: &Browser,
    code: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    post(
        portal,
        browser,
        "/auth/stepup/start",
        &json!({ "code": code }),
    )
    .await
}

/// Answer the step-up's options with `key`.
async fn stepup_finish(
    portal: &Portal,
    browser: &Browser,
    code: &str,
    key: &mut SoftKey,
    options: &Value,
) -> anyhow::Result<(StatusCode, Value)> {
    let credential = key.assert(options)?;
    post(
        portal,
        browser,
        "/auth/stepup/finish",
        &json!({ "code": code, "credential": credential }),
    )
    .await
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

/// The account page's data, as the browser fetches it.
async fn account_page(portal: &Portal, browser: &Browser) -> anyhow::Result<String> {
    Ok(portal
        .get("/api/my_passkeys", Some(browser))
        .await?
        .text()
        .await?)
}

#[tokio::test]
async fn only_models_proven_by_their_vendors_root_are_registered() -> anyhow::Result<()> {
    let vendor = Vendor::new("Yubico Test Root CA")?;
    let portal = portal_with(allow_list(&vendor, &[(YUBIKEY_5_NFC, "YubiKey 5 NFC")])?).await?;
    let alice = portal.user("alice", Role::Engineer).await?;
    let browser = portal.signed_in(&alice).await?;

    // A genuine key: its batch certificate is signed by the listed root.
    let mut genuine = SoftKey::attested(
        PUBLIC_URL,
        YUBIKEY_5_NFC,
        vendor.batch("YubiKey 5 NFC batch")?,
    )?;
    let (status, body) = add(&portal, &browser, &mut genuine, "YubiKey").await?;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The same claim, attested by a certificate nobody trusted signed: a forgery.
    let mut forged = SoftKey::attested(
        PUBLIC_URL,
        YUBIKEY_5_NFC,
        Batch::self_signed("YubiKey 5 NFC batch")?,
    )?;
    let (status, body) = add(&portal, &browser, &mut forged, "Forged").await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        error_of(&body).contains("says it is a YubiKey 5 NFC, but it could not prove it"),
        "{body}"
    );
    // Signed by a real CA, but not the listed vendor's.
    let stranger = Vendor::new("Some Other Vendor Root")?;
    let mut foreign = SoftKey::attested(PUBLIC_URL, YUBIKEY_5_NFC, stranger.batch("Clone")?)?;
    let (status, body) = add(&portal, &browser, &mut foreign, "Foreign").await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error_of(&body).contains("could not prove it"), "{body}");
    // The listed vendor's root, but a model the list does not approve.
    let mut unlisted = SoftKey::attested(PUBLIC_URL, OTHER_MODEL, vendor.batch("Other model")?)?;
    let (status, body) = add(&portal, &browser, &mut unlisted, "Unlisted").await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        error_of(&body).contains(&format!(
            "this authenticator model ({OTHER_MODEL}) is not on this site's list"
        )),
        "{body}"
    );
    // No attestation at all (most platform passkeys).
    let mut silent = SoftKey::new(PUBLIC_URL)?;
    let (status, body) = add(&portal, &browser, &mut silent, "Silent").await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error_of(&body).contains("(not disclosed)"), "{body}");

    let keys = portal.state().store.credentials_of(&alice.user_id).await?;
    assert_eq!(keys.len(), 1, "only the genuine key was kept");
    assert_eq!(keys[0].name, "YubiKey");
    assert_eq!(keys[0].aaguid.as_deref(), Some(YUBIKEY_5_NFC));
    let page = account_page(&portal, &browser).await?;
    assert!(page.contains(r#"{"Approved":"YubiKey 5 NFC"}"#), "{page}");
    assert!(
        page.contains(r#""approved_models":["YubiKey 5 NFC"]"#),
        "{page}"
    );

    let failures = portal
        .audit_kinds()
        .await?
        .into_iter()
        .filter(|k| k == "passkey.add_failed")
        .count();
    assert_eq!(failures, 4, "every refused key is audited");
    Ok(())
}

/// A credential registered before the allow-list existed, through the same ceremony without it.
async fn unattested_key(
    portal: &Portal,
    user: &User,
    name: &str,
) -> anyhow::Result<(SoftKey, Credential)> {
    let open = Passkeys::new(&url::Url::parse(PUBLIC_URL)?)?;
    let (options, state) = open.start_registration(user, &[])?;
    let mut key = SoftKey::new(PUBLIC_URL)?;
    let response: webauthn_rs::prelude::RegisterPublicKeyCredential =
        serde_json::from_value(key.register(&options)?)?;
    let registered = open.finish_registration(&response, &state)?;
    let credential = Credential {
        credential_id: registered.credential_id,
        user_id: user.user_id.clone(),
        name: name.to_owned(),
        passkey: registered.passkey,
        created_at: clock::now(),
        last_used_at: None,
        aaguid: registered.aaguid,
        blocked_at: None,
    };
    portal.state().store.add_credential(&credential).await?;
    Ok((key, credential))
}

#[tokio::test]
async fn step_ups_need_an_approved_key_and_a_removed_vendor_takes_its_keys_along(
) -> anyhow::Result<()> {
    let vendor = Vendor::new("Yubico Test Root CA")?;
    let list = allow_list(&vendor, &[(YUBIKEY_5_NFC, "YubiKey 5 NFC")])?;
    let portal = portal_with(list.clone()).await?;
    let (_, code, requester) = portal.exec_challenge().await?;
    let user = portal.user(&requester, Role::Engineer).await?;
    let (mut old, old_credential) = unattested_key(&portal, &user, "Old laptop").await?;
    let browser = portal.signed_in(&user).await?;

    // The old key signs in, but cannot confirm: none of the person's keys is approved.
    let (status, body) = stepup_start(&portal, &browser, &code).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        error_of(&body).contains("approved list") && error_of(&body).contains("/account"),
        "{body}"
    );
    assert!(
        account_page(&portal, &browser)
            .await?
            .contains(r#""approval":"NotApproved""#),
        "the account page shows the old key as not approved"
    );

    // With an approved key added, only that key is offered, and the old one is refused.
    let mut yubikey = SoftKey::attested(PUBLIC_URL, YUBIKEY_5_NFC, vendor.batch("YubiKey 5 NFC")?)?;
    let (status, body) = add(&portal, &browser, &mut yubikey, "YubiKey").await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, options) = stepup_start(&portal, &browser, &code).await?;
    assert_eq!(status, StatusCode::OK, "{options}");
    let offered: Vec<&str> = options["publicKey"]["allowCredentials"]
        .as_array()
        .context("no allowCredentials")?
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(offered.len(), 1, "{options}");
    assert_ne!(offered[0], old_credential.credential_id);
    let (status, body) = stepup_finish(&portal, &browser, &code, &mut old, &options).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        portal.grant_of(&code).await?.is_none(),
        "an unapproved key confirmed"
    );

    let (status, options) = stepup_start(&portal, &browser, &code).await?;
    assert_eq!(status, StatusCode::OK, "{options}");
    let (status, body) = stepup_finish(&portal, &browser, &code, &mut yubikey, &options).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let grant_id = portal
        .grant_of(&code)
        .await?
        .context("the approved key did not confirm")?;
    let grant = portal
        .state()
        .store
        .grant(&grant_id)
        .await?
        .context("no grant")?;
    assert_eq!(grant.evidence.aaguid.as_deref(), Some(YUBIKEY_5_NFC));

    // The stored attestation is checked against today's list: drop the vendor and its keys are
    // no longer approved; the list that names it approves them by model.
    let approved = portal
        .state()
        .store
        .credentials_of(&user.user_id)
        .await?
        .into_iter()
        .find(|c| c.name == "YubiKey")
        .context("approved key missing")?;
    let url = url::Url::parse(PUBLIC_URL)?;
    let same = Passkeys::new(&url)?.with_allowlist(list);
    assert_eq!(
        same.approval(&approved),
        Approval::Approved("YubiKey 5 NFC".into())
    );
    assert_eq!(same.approval(&old_credential), Approval::NotApproved);
    let elsewhere = allow_list(
        &Vendor::new("Another Vendor Root")?,
        &[(YUBIKEY_5_NFC, "YubiKey 5 NFC")],
    )?;
    let without = Passkeys::new(&url)?.with_allowlist(elsewhere);
    assert_eq!(without.approval(&approved), Approval::NotApproved);
    assert_eq!(
        Passkeys::new(&url)?.approval(&old_credential),
        Approval::Unrestricted
    );
    Ok(())
}
