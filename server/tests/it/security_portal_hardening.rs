//! Finding 13 (portal part): a Content-Security-Policy with `frame-ancestors 'none'` on every
//! portal response (pages with the nonce of their inline scripts), the "end all sessions" cut-off
//! in milliseconds, and a local sign-in on top of an identity-provider session drops the
//! provider's identity. (The `prompt=login` after a stale step-up is a unit test in
//! `portal/oidc.rs`.)

use std::str::FromStr;

use anyhow::Context;
use countersign::clock;
use countersign::identity::oidc::OidcIdentity;
use countersign::identity::{Role, User};
use reqwest::header::{ACCEPT, CONTENT_SECURITY_POLICY, X_FRAME_OPTIONS};
use reqwest::StatusCode;
use serde_json::json;
use tower_sessions::cookie::time::{Duration as CookieDuration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::SessionStore;

use crate::portal::{session_cookie, Browser, Portal, COOKIE_NAME};

fn policy(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn finding_13_every_portal_response_forbids_framing() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;

    // A page: its inline scripts carry the nonce the policy names.
    let response = portal
        .client
        .get(format!("{}/login", portal.base))
        .header(ACCEPT, "text/html")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let csp = policy(&response);
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .context("the page's policy has no nonce")?
        .to_owned();
    let html = response.text().await?;
    let inline: Vec<&str> = html
        .split("<script")
        .skip(1)
        .filter(|tag| !tag.trim_start().starts_with("src="))
        .collect();
    assert!(!inline.is_empty(), "no inline script to check");
    for tag in inline {
        let head = tag.split('>').next().unwrap_or_default();
        assert!(
            head.contains(&format!("nonce=\"{nonce}\"")),
            "an inline script without the nonce: <script{head}>"
        );
    }

    // Everything else: JSON, redirects, unknown paths, server functions.
    let browser = portal.page("/login", None).await?;
    let responses = [
        portal
            .json(
                "/auth/login/start",
                Some(&browser),
                &json!({"username": "x"}),
            )
            .await?,
        portal
            .form("/auth/logout", Some(&browser), &[("csrf", &browser.csrf)])
            .await?,
        portal.get("/no/such/page", None).await?,
        portal.get("/api/list_grants", None).await?,
        portal.get("/c/K7Q2M9XD/objects.json", None).await?,
    ];
    for response in responses {
        let csp = policy(&response);
        assert!(
            csp.contains("frame-ancestors 'none'"),
            "{} {}: {csp:?}",
            response.status(),
            response.url()
        );
        assert_eq!(
            response
                .headers()
                .get(X_FRAME_OPTIONS)
                .and_then(|v| v.to_str().ok()),
            Some("DENY")
        );
    }
    Ok(())
}

/// A session as a passkey sign-in at `login_ms` (unix milliseconds) leaves it today.
async fn signed_in_at_ms(portal: &Portal, user: &User, login_ms: i64) -> anyhow::Result<Browser> {
    let csrf = format!("csrf-{}", uuid::Uuid::new_v4().simple());
    let data = [
        ("user_id", json!(user.user_id)),
        ("login_time", json!(login_ms / 1000)),
        ("login_time_ms", json!(login_ms)),
        ("auth_time", json!(login_ms / 1000)),
        ("csrf_token", json!(csrf)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut record = Record {
        id: Id::default(),
        data,
        expiry_date: OffsetDateTime::now_utc() + CookieDuration::minutes(30),
    };
    portal.sessions.create(&mut record).await?;
    Ok(Browser::new(format!("{COOKIE_NAME}={}", record.id), csrf))
}

#[tokio::test]
async fn finding_13_ending_all_sessions_cuts_off_to_the_millisecond() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let ada = portal.user("ada", Role::Admin).await?;
    // Start early in a second, so all of what follows shares it.
    while clock::now_ms() % 1000 > 100 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let second = clock::now();
    let before = signed_in_at_ms(&portal, &ada, clock::now_ms() - 1).await?;
    let response = portal
        .form(
            "/auth/logout-everywhere",
            Some(&before),
            &[("csrf", &before.csrf)],
        )
        .await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    // Signed in again right away, in the same second as the cut-off.
    let after = signed_in_at_ms(&portal, &ada, clock::now_ms()).await?;
    anyhow::ensure!(
        clock::now() == second,
        "the second passed; the test proves nothing"
    );

    assert_eq!(
        portal
            .get("/api/list_grants", Some(&before))
            .await?
            .status(),
        StatusCode::UNAUTHORIZED,
        "the session that ended them all survived"
    );
    assert_eq!(
        portal.get("/api/list_grants", Some(&after)).await?.status(),
        StatusCode::OK,
        "signing in right after ending all sessions does not work"
    );
    let earlier = signed_in_at_ms(&portal, &ada, clock::now_ms() - 5_000).await?;
    assert_eq!(
        portal
            .get("/api/list_grants", Some(&earlier))
            .await?
            .status(),
        StatusCode::UNAUTHORIZED,
        "a session from before the cut-off survived"
    );
    Ok(())
}

#[tokio::test]
async fn finding_13_a_local_sign_in_drops_the_identity_providers_identity() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let token = portal.first_admin_link("ada").await?;

    // The browser carries an identity-provider sign-in (whose groups own service accounts).
    let identity = OidcIdentity {
        issuer: "https://idp.example".into(),
        subject: "jane".into(),
        username: "oidc:jane@example.com".into(),
        groups: vec!["platform".into()],
        display_name: "Jane".into(),
        auth_time: clock::now(),
        acr: None,
        amr: vec![],
        role: Role::Engineer,
    };
    let id = |cookie: &str| -> anyhow::Result<Id> {
        let value = cookie
            .strip_prefix(&format!("{COOKIE_NAME}="))
            .context("not a session cookie")?;
        Ok(Id::from_str(value)?)
    };
    let csrf = format!("csrf-{}", uuid::Uuid::new_v4().simple());
    let mut record = Record {
        id: Id::default(),
        data: [
            ("oidc_identity".to_owned(), serde_json::to_value(&identity)?),
            ("csrf_token".to_owned(), json!(csrf)),
        ]
        .into_iter()
        .collect(),
        expiry_date: OffsetDateTime::now_utc() + CookieDuration::minutes(30),
    };
    portal.sessions.create(&mut record).await?;
    let anonymous = Browser::new(format!("{COOKIE_NAME}={}", record.id), csrf);

    // Then someone signs in locally in the same browser.
    let (_, response) = portal
        .setup_with_key(
            &anonymous,
            &json!({"token": token, "username": "ada", "displayName": "Ada"}),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response).context("no session cookie")?;
    let record = portal
        .sessions
        .load(&id(&cookie)?)
        .await?
        .context("no session after sign-in")?;
    assert!(record.data.contains_key("user_id"));
    assert!(
        !record.data.contains_key("oidc_identity"),
        "the provider's identity stayed with the local account: {:?}",
        record.data.keys().collect::<Vec<_>>()
    );
    Ok(())
}
