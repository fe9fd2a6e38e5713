//! The portal's defences, driven over HTTP with explicit cookies: roles checked on the server for
//! server functions and routes (role escalation), the CSRF synchronizer token and origin check,
//! sign-out everywhere, idle and absolute timeouts, refusing to confirm someone else's challenge,
//! and rate limits on authentication.

use anyhow::{ensure, Context};
use countersign::clock;
use countersign::identity::{Role, User};
use reqwest::header::{ACCEPT, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tower_sessions::cookie::time::{Duration as CookieDuration, OffsetDateTime};

use crate::portal::{session_cookie, Browser, Portal, COOKIE_NAME};
use crate::support::{step_up_denial, TestDb, PUBLIC_URL};

/// The same request again, as a new API call.
fn again(original: &Value, n: u32) -> Value {
    let mut r = original.clone();
    r["request"]["uid"] = json!(format!("retry-{n}"));
    r
}

#[tokio::test]
async fn an_engineer_cannot_revoke_a_grant_through_the_server_function() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (exec, grant_id, _) = portal.live_grant().await?;
    let engineer = portal.user("mallory", Role::Engineer).await?;
    let browser = portal.signed_in(&engineer).await?;

    // Called directly, with a valid CSRF token and origin: only the role is missing.
    let response = portal
        .form(
            "/api/revoke_grant",
            Some(&browser),
            &[("id", &grant_id), ("csrf", &browser.csrf)],
        )
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = response.text().await?;
    assert!(body.contains("may not revoke grants"), "{body}");
    assert!(portal.is_live(&grant_id).await?, "the grant was revoked");
    let retry = portal.app.decide(&again(&exec, 1)).await?;
    assert_eq!(
        retry["allowed"], true,
        "the grant stopped admitting: {retry}"
    );

    // Listing is refused too; auditors may list but not revoke.
    let list = portal.get("/api/list_grants", Some(&browser)).await?;
    assert_eq!(list.status(), StatusCode::FORBIDDEN);
    let auditor = portal.user("audrey", Role::Auditor).await?;
    let auditor = portal.signed_in(&auditor).await?;
    let list = portal.get("/api/list_grants", Some(&auditor)).await?;
    assert_eq!(list.status(), StatusCode::OK);
    let rows: Value = list.json().await?;
    assert_eq!(rows[0]["id"], grant_id.as_str(), "{rows}");
    let response = portal
        .form(
            "/api/revoke_grant",
            Some(&auditor),
            &[("id", &grant_id), ("csrf", &auditor.csrf)],
        )
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(portal.is_live(&grant_id).await?);

    // Signed out: 401, nothing changes.
    let response = portal
        .form("/api/revoke_grant", None, &[("id", &grant_id)])
        .await?;
    assert!(response.status().is_client_error());
    assert!(portal.is_live(&grant_id).await?);
    Ok(())
}

#[tokio::test]
async fn an_admin_revokes_a_grant_and_the_webhook_refuses_it_at_once() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (exec, grant_id, _) = portal.live_grant().await?;
    let admin = portal.user("ada", Role::Admin).await?;
    let browser = portal.signed_in(&admin).await?;

    let response = portal
        .form(
            "/api/revoke_grant",
            Some(&browser),
            &[("id", &grant_id), ("csrf", &browser.csrf)],
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await?, json!(true));
    assert!(!portal.is_live(&grant_id).await?);
    // No store refresh in between: the in-memory cache dropped it.
    step_up_denial(&portal.app.decide(&again(&exec, 1)).await?, "prod-exec")
        .context("a revoked grant still admitted")?;
    let records = portal.state().store.audit_records(0, 10_000).await?;
    let revoked = records
        .iter()
        .find(|r| r.event.kind == "grant.revoked")
        .context("no grant.revoked event")?;
    assert_eq!(revoked.event.actor, "ada");
    assert_eq!(revoked.event.subject, grant_id);

    // The list is empty now.
    let rows: Value = portal
        .get("/api/list_grants", Some(&browser))
        .await?
        .json()
        .await?;
    assert_eq!(rows, json!([]));
    Ok(())
}

#[tokio::test]
async fn state_changes_without_the_csrf_token_or_from_another_origin_are_refused(
) -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (_, grant_id, _) = portal.live_grant().await?;
    let admin = portal.user("ada", Role::Admin).await?;
    let browser = portal.signed_in(&admin).await?;

    // No token.
    let response = portal
        .form("/api/revoke_grant", Some(&browser), &[("id", &grant_id)])
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = response.text().await?;
    assert!(body.contains("CSRF"), "{body}");
    assert!(portal.is_live(&grant_id).await?);

    // Another session's token.
    let other = portal.signed_in(&admin).await?;
    let response = portal
        .form(
            "/api/revoke_grant",
            Some(&browser),
            &[("id", &grant_id), ("csrf", &other.csrf)],
        )
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(portal.is_live(&grant_id).await?);

    // The right token, from another origin.
    let response = portal
        .client
        .post(format!("{}/api/revoke_grant", portal.base))
        .header(COOKIE, &browser.cookie)
        .header(ORIGIN, "https://evil.example")
        .form(&[("id", grant_id.as_str()), ("csrf", browser.csrf.as_str())])
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(portal.is_live(&grant_id).await?);

    // JSON endpoints want the header: sign-out everywhere and sign-out without it change nothing.
    let response = portal
        .form("/auth/logout-everywhere", Some(&browser), &[])
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = portal
        .client
        .post(format!("{}/auth/stepup/start", portal.base))
        .header(COOKIE, &browser.cookie)
        .header(ORIGIN, PUBLIC_URL)
        .json(&json!({"code": "K7Q2M9XD"}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let still = portal.get("/api/list_grants", Some(&browser)).await?;
    assert_eq!(still.status(), StatusCode::OK, "the session ended");

    // With the token it works.
    let response = portal
        .form(
            "/api/revoke_grant",
            Some(&browser),
            &[("id", &grant_id), ("csrf", &browser.csrf)],
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!portal.is_live(&grant_id).await?);
    Ok(())
}

#[tokio::test]
async fn finding_9_an_anonymous_page_view_stores_no_session_and_its_token_still_works(
) -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let response = portal
        .client
        .get(format!("{}/login", portal.base))
        .header(ACCEPT, "text/html")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let set: Vec<String> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert!(
        !set.iter().any(|c| c.starts_with(COOKIE_NAME)),
        "an anonymous page view got a session: {set:?}"
    );
    let csrf_cookie = set
        .iter()
        .find(|c| c.starts_with("countersign_csrf="))
        .context("no CSRF cookie")?;
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"),
        "{csrf_cookie}"
    );
    let cookie = csrf_cookie.split(';').next().unwrap_or_default().to_owned();
    let db = portal.app.db().context("the portal owns its database")?;
    assert_eq!(
        db.execute("update tower_sessions set id = id").await?,
        0,
        "no session row for a page view"
    );
    let html = response.text().await?;
    let token = html
        .split("<meta name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("no csrf-token meta tag")?
        .to_owned();
    assert_eq!(token.len(), 43, "{token}");
    assert!(
        cookie.ends_with(&token),
        "the page embeds the cookie's token"
    );

    // The same visitor gets the same token on the next page.
    let html = portal
        .client
        .get(format!("{}/", portal.base))
        .header(ACCEPT, "text/html")
        .header(COOKIE, &cookie)
        .send()
        .await?
        .text()
        .await?;
    assert!(html.contains(&token));

    // Its token works on a form (sign-in through the identity provider, off here: a redirect).
    let browser = Browser::new(cookie.clone(), token.clone());
    let response = portal
        .form(
            "/auth/oidc/login",
            Some(&browser),
            &[("next", "/"), ("csrf", &token)],
        )
        .await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok()),
        Some("/login?oidc=off&next=%2F")
    );
    // Without its cookie the token is worth nothing.
    let bare = Browser::new(String::new(), token.clone());
    let response = portal
        .form(
            "/auth/oidc/login",
            Some(&bare),
            &[("next", "/"), ("csrf", &token)],
        )
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_of_that_person() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let admin = portal.user("ada", Role::Admin).await?;
    let other = portal.user("bea", Role::Admin).await?;
    let laptop = portal.signed_in(&admin).await?;
    let phone = portal.signed_in(&admin).await?;
    let someone_else = portal.signed_in(&other).await?;
    for b in [&laptop, &phone, &someone_else] {
        assert_eq!(
            portal.get("/api/list_grants", Some(b)).await?.status(),
            StatusCode::OK
        );
    }

    let response = portal
        .form(
            "/auth/logout-everywhere",
            Some(&laptop),
            &[("csrf", &laptop.csrf)],
        )
        .await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    for b in [&laptop, &phone] {
        assert_eq!(
            portal.get("/api/list_grants", Some(b)).await?.status(),
            StatusCode::UNAUTHORIZED,
            "a session survived signing out everywhere"
        );
    }
    assert_eq!(
        portal
            .get("/api/list_grants", Some(&someone_else))
            .await?
            .status(),
        StatusCode::OK,
        "someone else's session ended"
    );
    // A sign-in after it works.
    let fresh = portal
        .session_at(
            &admin,
            clock::now() + 1,
            OffsetDateTime::now_utc() + CookieDuration::minutes(30),
        )
        .await?;
    assert_eq!(
        portal.get("/api/list_grants", Some(&fresh)).await?.status(),
        StatusCode::OK
    );
    ensure!(portal
        .audit_kinds()
        .await?
        .contains(&"logout.everywhere".to_owned()));
    Ok(())
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_sessions() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let admin = portal.user("ada", Role::Admin).await?;
    let idle = portal
        .session_at(
            &admin,
            clock::now() - 60,
            OffsetDateTime::now_utc() - CookieDuration::seconds(1),
        )
        .await?;
    assert_eq!(
        portal.get("/api/list_grants", Some(&idle)).await?.status(),
        StatusCode::UNAUTHORIZED,
        "an idle-expired session still works"
    );
    let old = portal
        .session_at(
            &admin,
            clock::now() - 12 * 3600 - 1,
            OffsetDateTime::now_utc() + CookieDuration::minutes(30),
        )
        .await?;
    assert_eq!(
        portal.get("/api/list_grants", Some(&old)).await?.status(),
        StatusCode::UNAUTHORIZED,
        "a session past the absolute timeout still works"
    );
    let recent = portal
        .session_at(
            &admin,
            clock::now() - 12 * 3600 + 60,
            OffsetDateTime::now_utc() + CookieDuration::minutes(30),
        )
        .await?;
    assert_eq!(
        portal
            .get("/api/list_grants", Some(&recent))
            .await?
            .status(),
        StatusCode::OK
    );
    Ok(())
}

#[tokio::test]
async fn nobody_confirms_someone_elses_challenge() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (_, code, requester) = portal.exec_challenge().await?;
    // Even an admin may not confirm a challenge that is not theirs.
    let admin = portal.user("ada", Role::Admin).await?;
    assert_ne!(admin.username, requester);
    let browser = portal.signed_in(&admin).await?;
    let response = portal
        .json("/auth/stepup/start", Some(&browser), &json!({"code": code}))
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await?;
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains(&requester), "{body}");
    assert!(
        portal.grant_of(&code).await?.is_none(),
        "someone else's challenge was granted"
    );

    // An auditor (read-only) may not confirm even their own.
    let auditor = User {
        user_id: uuid::Uuid::new_v4().to_string(),
        username: requester.clone(),
        display_name: "Requester".into(),
        role: Role::Auditor,
        created_at: clock::now(),
        groups: Vec::new(),
    };
    portal.state().store.create_user(&auditor).await?;
    let browser = portal.signed_in(&auditor).await?;
    let response = portal
        .json("/auth/stepup/start", Some(&browser), &json!({"code": code}))
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await?;
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("may not confirm challenges")),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_slowed_down_and_audited() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    // A page view gives the anonymous browser its session and token.
    let browser = portal.page("/login", None).await?;

    // Each attempt starts a ceremony for one account and fails to finish it; the account's free
    // failures run out before the address's.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = portal
            .json(
                "/auth/login/start",
                Some(&browser),
                &json!({"username": "victim"}),
            )
            .await?;
        statuses.push(response.status());
        if response.status().is_success() {
            let finish = portal
                .json(
                    "/auth/login/finish",
                    Some(&browser),
                    &json!({"id": "bm90LWEta2V5", "type": "public-key"}),
                )
                .await?;
            assert!(finish.status().is_client_error(), "{}", finish.status());
        }
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .context("no Retry-After")?;
            assert!((1..=900).contains(&retry), "{retry}");
            let body: Value = response.json().await?;
            assert!(
                body["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("too many failed attempts")),
                "{body}"
            );
        }
    }
    assert_eq!(
        statuses[..5],
        [StatusCode::OK; 5],
        "the first five attempts are answered normally: {statuses:?}"
    );
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Another account from the same address is not blocked yet (per-address allows more).
    let response = portal
        .json(
            "/auth/login/start",
            Some(&browser),
            &json!({"username": "someone-else"}),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let kinds = portal.audit_kinds().await?;
    assert_eq!(
        kinds.iter().filter(|k| *k == "auth.rate_limited").count(),
        1,
        "one audit event per block: {kinds:?}"
    );
    Ok(())
}

#[tokio::test]
async fn signing_in_replaces_a_planted_session_id_and_its_csrf_token() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let token = portal.first_admin_link("ada").await?;

    // An attacker's session id, planted in the victim's browser before they sign in.
    let planted = portal.page(&format!("/setup/{token}"), None).await?;
    let (mut key, response) = portal
        .setup_with_key(
            &planted,
            &json!({"token": token, "username": "ada", "displayName": "Ada"}),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let signed_in = session_cookie(&response).context("sign-in set no new session cookie")?;
    assert_ne!(signed_in, planted.cookie, "the session id survived sign-in");
    assert_eq!(
        portal
            .get("/api/list_grants", Some(&planted))
            .await?
            .status(),
        StatusCode::UNAUTHORIZED,
        "the planted session id is signed in"
    );
    let after = portal.page("/", Some(&signed_in)).await?;
    assert_eq!(
        portal.get("/api/list_grants", Some(&after)).await?.status(),
        StatusCode::OK
    );
    assert_ne!(after.csrf, planted.csrf, "the CSRF token survived sign-in");
    let stale = Browser::new(after.cookie.clone(), planted.csrf.clone());
    let response = portal
        .form("/auth/logout", Some(&stale), &[("csrf", &stale.csrf)])
        .await?;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "the old token still works"
    );

    // Sign out, then sign in with the passkey from another planted session.
    let response = portal
        .form("/auth/logout", Some(&after), &[("csrf", &after.csrf)])
        .await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let planted = portal.page("/login", None).await?;
    let options: Value = portal
        .json(
            "/auth/login/start",
            Some(&planted),
            &json!({"username": "ada"}),
        )
        .await?
        .json()
        .await?;
    let response = portal
        .json("/auth/login/finish", Some(&planted), &key.assert(&options)?)
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let signed_in = session_cookie(&response).context("sign-in set no new session cookie")?;
    assert_ne!(signed_in, planted.cookie);
    assert_eq!(
        portal
            .get("/api/list_grants", Some(&planted))
            .await?
            .status(),
        StatusCode::UNAUTHORIZED,
        "the planted session id is signed in"
    );
    let after = portal.page("/", Some(&signed_in)).await?;
    assert_eq!(
        portal.get("/api/list_grants", Some(&after)).await?.status(),
        StatusCode::OK
    );
    let kinds = portal.audit_kinds().await?;
    for kind in ["account.created", "logout", "login"] {
        assert!(kinds.contains(&kind.to_owned()), "no {kind} in {kinds:?}");
    }
    Ok(())
}

#[tokio::test]
async fn the_portals_cookies_are_secure_when_the_portal_is_https() -> anyhow::Result<()> {
    // The CSRF cookie an anonymous visitor gets, and the HSTS header, if any.
    let flags = |portal: Portal| async move {
        let response = portal
            .client
            .get(format!("{}/login", portal.base))
            .header(ACCEPT, "text/html")
            .send()
            .await?;
        let hsts = response
            .headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.contains("countersign_csrf="))
            .context("no CSRF cookie")?
            .to_owned();
        anyhow::Ok((cookie, hsts))
    };
    // Second review, finding 17: over https the cookies are `__Host-` (no sibling subdomain can
    // set or shadow them) and every response carries HSTS.
    let (https, hsts) = flags(Portal::spawn_at("https://countersign.example.com").await?).await?;
    assert!(https.starts_with("__Host-countersign_csrf="), "{https}");
    assert!(
        https.contains("; Secure") && https.contains("Path=/"),
        "{https}"
    );
    assert!(https.contains("HttpOnly"), "{https}");
    assert!(
        hsts.as_deref()
            .is_some_and(|h| h.starts_with("max-age=31536000")),
        "{hsts:?}"
    );
    let (http, hsts) = flags(Portal::spawn_at("http://localhost:3000").await?).await?;
    assert!(http.starts_with("countersign_csrf="), "{http}");
    assert!(!http.contains("Secure"), "{http}");
    assert_eq!(hsts, None);
    Ok(())
}

#[tokio::test]
async fn stepping_up_replaces_the_session_id_again() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (exec, code, requester) = portal.exec_challenge().await?;

    // The requester registers a passkey through the setup link and is signed in.
    let token = portal.first_admin_link(&requester).await?;
    let anonymous = portal.page(&format!("/setup/{token}"), None).await?;
    let (mut key, response) = portal
        .setup_with_key(&anonymous, &json!({"token": token, "username": requester}))
        .await?;
    let cookie = session_cookie(&response).context("no session after setup")?;
    let signed_in = portal.page(&format!("/c/{code}"), Some(&cookie)).await?;

    let options: Value = portal
        .json(
            "/auth/stepup/start",
            Some(&signed_in),
            &json!({"code": code}),
        )
        .await?
        .json()
        .await?;
    let response = portal
        .json(
            "/auth/stepup/finish",
            Some(&signed_in),
            &json!({"code": code, "credential": key.assert(&options)?}),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let stepped_up = session_cookie(&response).context("step-up set no new session cookie")?;
    assert_ne!(
        stepped_up, signed_in.cookie,
        "the session id survived step-up"
    );
    assert_eq!(
        portal
            .get("/api/list_grants", Some(&signed_in))
            .await?
            .status(),
        StatusCode::UNAUTHORIZED,
        "the pre-step-up session id still works"
    );
    let after = portal.page("/", Some(&stepped_up)).await?;
    assert_ne!(
        after.csrf, signed_in.csrf,
        "the CSRF token survived step-up"
    );
    assert!(
        portal.grant_of(&code).await?.is_some(),
        "the challenge was not granted"
    );
    let retry = portal.app.decide(&again(&exec, 1)).await?;
    assert_eq!(retry["allowed"], true, "{retry}");
    Ok(())
}

#[tokio::test]
async fn sign_out_everywhere_cut_offs_are_kept_on_both_backends() -> anyhow::Result<()> {
    for db in [Some(TestDb::sqlite().await?), TestDb::postgres().await?]
        .into_iter()
        .flatten()
    {
        let store = &db.store;
        assert_eq!(store.session_epoch("user-1").await?, None, "{}", db.backend);
        store.set_session_epoch("user-1", 10).await?;
        store.set_session_epoch("user-1", 20).await?;
        assert_eq!(
            store.session_epoch("user-1").await?,
            Some(20),
            "{}",
            db.backend
        );
        assert_eq!(store.session_epoch("user-2").await?, None, "{}", db.backend);
    }
    Ok(())
}

#[tokio::test]
async fn an_invitation_creates_one_account_with_its_role_and_username() -> anyhow::Result<()> {
    use countersign::identity::accounts;
    use countersign::identity::setup::{token_hash, Invitation};

    let portal = Portal::spawn().await?;
    let store = &portal.state().store;
    let invitation = Invitation {
        role: Role::Approver,
        username: "bob".into(),
        groups: Vec::new(),
    };
    let token = accounts::invite(store.as_ref(), &invitation, "it-admin").await?;
    let browser = portal.page(&format!("/setup/{token}"), None).await?;

    // The link is bob's: another username is refused before any key is asked for.
    let response = portal
        .json(
            "/auth/setup/start",
            Some(&browser),
            &json!({"token": token, "username": "mallory"}),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response
        .text()
        .await?
        .contains("this invitation is for bob"));
    assert!(store.user_by_username("mallory").await?.is_none());

    let (_, response) = portal
        .setup_with_key(
            &browser,
            &json!({"token": token, "username": "bob", "displayName": "Bob"}),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let bob = store.user_by_username("bob").await?.context("no account")?;
    assert_eq!(bob.role, Role::Approver, "the invitation's role");
    assert!(
        store
            .invitation(&token_hash(&token), clock::now())
            .await?
            .is_none(),
        "the link works once"
    );

    // An admin changes the role later; inviting an existing name is refused.
    assert_eq!(
        accounts::set_role(store.as_ref(), "bob", Role::Auditor, "it-admin").await?,
        Role::Approver
    );
    assert_eq!(
        store.user_by_username("bob").await?.map(|u| u.role),
        Some(Role::Auditor)
    );
    let again = accounts::invite(store.as_ref(), &invitation, "it-admin").await;
    assert!(matches!(again, Err(accounts::AccountError::Exists(_))));
    let kinds = portal.audit_kinds().await?;
    for kind in ["account.invited", "account.created", "account.role_changed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} not in {kinds:?}");
    }
    Ok(())
}
