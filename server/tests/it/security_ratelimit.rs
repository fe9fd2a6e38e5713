//! Finding 10: the rate limiter could lock people out. Behind an ingress every client shared the
//! proxy's address, and failed sign-ins typed with someone's name blocked that person's step-up.
//! Now the client address comes from `X-Forwarded-For` only from `--trusted-proxy` peers, and a
//! signed-in person's step-ups are counted apart from anonymous sign-in attempts.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use countersign::portal::client::TrustedProxies;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::portal::{session_cookie, Browser, Portal};
use crate::soft_key::SoftKey;
use crate::support::PUBLIC_URL;

/// A JSON post from a browser behind a proxy that forwards `forwarded_for`.
async fn json_from(
    portal: &Portal,
    path: &str,
    browser: &Browser,
    forwarded_for: Option<&str>,
    body: &Value,
) -> anyhow::Result<reqwest::Response> {
    let mut request = portal
        .client
        .post(format!("{}{path}", portal.base))
        .headers(portal.headers(Some(browser)))
        .header("x-csrf-token", &browser.csrf)
        .json(body);
    if let Some(f) = forwarded_for {
        request = request.header("x-forwarded-for", f);
    }
    let response = request.send().await?;
    browser.absorb(&response);
    Ok(response)
}

/// One failed passkey sign-in typed as `username`.
async fn failed_sign_in(
    portal: &Portal,
    browser: &Browser,
    forwarded_for: Option<&str>,
    username: &str,
) -> anyhow::Result<StatusCode> {
    let start = json_from(
        portal,
        "/auth/login/start",
        browser,
        forwarded_for,
        &json!({"username": username}),
    )
    .await?;
    if !start.status().is_success() {
        return Ok(start.status());
    }
    let finish = json_from(
        portal,
        "/auth/login/finish",
        browser,
        forwarded_for,
        &json!({"id": "bm90LWEta2V5", "type": "public-key"}),
    )
    .await?;
    assert!(finish.status().is_client_error(), "{}", finish.status());
    Ok(finish.status())
}

/// The requester of an exec challenge, signed in with a software key: the challenge code, the key
/// and the signed-in browser.
async fn requester_signed_in(
    portal: &Portal,
) -> anyhow::Result<(String, String, SoftKey, Browser)> {
    let (_, code, requester) = portal.exec_challenge().await?;
    let token = portal.first_admin_link(&requester).await?;
    let anonymous = portal.page(&format!("/setup/{token}"), None).await?;
    let (key, response) = portal
        .setup_with_key(&anonymous, &json!({"token": token}))
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response).context("no session after setup")?;
    let browser = portal.page(&format!("/c/{code}"), Some(&cookie)).await?;
    Ok((code, requester, key, browser))
}

/// Step up for `code` with `key`; returns the finish's status.
async fn step_up(
    portal: &Portal,
    browser: &Browser,
    forwarded_for: Option<&str>,
    code: &str,
    key: &mut SoftKey,
) -> anyhow::Result<StatusCode> {
    let start = json_from(
        portal,
        "/auth/stepup/start",
        browser,
        forwarded_for,
        &json!({"code": code}),
    )
    .await?;
    if start.status() != StatusCode::OK {
        return Ok(start.status());
    }
    let options: Value = start.json().await?;
    let finish = json_from(
        portal,
        "/auth/stepup/finish",
        browser,
        forwarded_for,
        &json!({"code": code, "credential": key.assert(&options)?}),
    )
    .await?;
    Ok(finish.status())
}

#[tokio::test]
async fn finding_10_failed_sign_ins_typed_as_someone_do_not_block_their_step_up(
) -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (code, requester, mut key, browser) = requester_signed_in(&portal).await?;

    // Someone else types the requester's name until the account is blocked for sign-in.
    let attacker = portal.page("/login", None).await?;
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        last = failed_sign_in(&portal, &attacker, None, &requester).await?;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS, "sign-in not blocked");

    // The requester, signed in, still confirms.
    assert_eq!(
        step_up(&portal, &browser, None, &code, &mut key).await?,
        StatusCode::OK
    );
    assert!(portal.grant_of(&code).await?.is_some());
    Ok(())
}

#[tokio::test]
async fn finding_10_a_blocked_shared_address_does_not_block_a_signed_in_step_up(
) -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (code, _, mut key, browser) = requester_signed_in(&portal).await?;

    // 20 bad sign-ins from the same address (as behind a proxy without --trusted-proxy).
    let noisy = portal.page("/login", None).await?;
    for i in 0..20 {
        failed_sign_in(&portal, &noisy, None, &format!("guess-{i}")).await?;
    }
    assert_eq!(
        failed_sign_in(&portal, &noisy, None, "one-more").await?,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is not blocked"
    );
    assert_eq!(
        step_up(&portal, &browser, None, &code, &mut key).await?,
        StatusCode::OK
    );
    Ok(())
}

#[tokio::test]
async fn finding_10_behind_a_trusted_proxy_each_client_is_counted_and_recorded_apart(
) -> anyhow::Result<()> {
    let proxies = TrustedProxies::parse(&["127.0.0.0/8".into()]).map_err(anyhow::Error::msg)?;
    let portal = Portal::spawn_with(PUBLIC_URL, |s| s.trusted_proxies = Arc::new(proxies)).await?;
    let (code, _, mut key, browser) = requester_signed_in(&portal).await?;

    // One client behind the ingress guesses until it is blocked...
    let noisy = portal.page("/login", None).await?;
    let bad = Some("203.0.113.5");
    for i in 0..20 {
        failed_sign_in(&portal, &noisy, bad, &format!("guess-{i}")).await?;
    }
    assert_eq!(
        failed_sign_in(&portal, &noisy, bad, "one-more").await?,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...and cannot escape by claiming another address to the left of the proxy's entry.
    assert_eq!(
        failed_sign_in(&portal, &noisy, Some("198.51.100.99, 203.0.113.5"), "x").await?,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same ingress signs in as usual.
    let other = portal.page("/login", None).await?;
    let response = json_from(
        &portal,
        "/auth/login/start",
        &other,
        Some("198.51.100.7"),
        &json!({"username": "someone"}),
    )
    .await?;
    assert_eq!(response.status(), StatusCode::OK);

    // The step-up evidence names the client, not the proxy.
    assert_eq!(
        step_up(&portal, &browser, Some("198.51.100.7"), &code, &mut key).await?,
        StatusCode::OK
    );
    let grant_id = portal.grant_of(&code).await?.context("no grant")?;
    let grant = portal
        .state()
        .store
        .grant(&grant_id)
        .await?
        .context("grant gone")?;
    assert_eq!(
        grant.evidence.client_address.as_deref(),
        Some("198.51.100.7")
    );
    Ok(())
}

#[tokio::test]
async fn finding_10_forwarded_addresses_from_untrusted_peers_are_ignored() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let noisy = portal.page("/login", None).await?;
    // Without --trusted-proxy a made-up X-Forwarded-For per attempt does not spread the count.
    for i in 0..20 {
        let spoofed = format!("198.51.100.{i}");
        failed_sign_in(&portal, &noisy, Some(&spoofed), &format!("guess-{i}")).await?;
    }
    assert_eq!(
        failed_sign_in(&portal, &noisy, Some("192.0.2.1"), "one-more").await?,
        StatusCode::TOO_MANY_REQUESTS
    );
    Ok(())
}

/// Second review, finding 7: every route that ends in a confirm or a decision is counted for the
/// signed-in person, so failed sign-ins typed with their name never lock them out of any of them
/// (`/auth/oidc/decide` was counted like an anonymous sign-in).
#[tokio::test]
async fn review2_7_failed_sign_ins_typed_as_someone_block_none_of_their_decisions(
) -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (code, requester, _key, browser) = requester_signed_in(&portal).await?;
    let attacker = portal.page("/login", None).await?;
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        last = failed_sign_in(&portal, &attacker, None, &requester).await?;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS, "sign-in not blocked");
    for path in [
        "/auth/stepup/start",
        "/auth/decide/start",
        "/auth/oidc/stepup",
        "/auth/oidc/decide",
    ] {
        let body = json!({"code": code, "decision": "approve"});
        let response = json_from(&portal, path, &browser, None, &body).await?;
        assert_ne!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{path} refused by the sign-in block"
        );
    }
    Ok(())
}

/// Second review, finding 6: one client trickling request bodies holds at most
/// `MAX_PER_CLIENT` requests, each for at most `BODY_DEADLINE`; meanwhile another client's
/// step-up goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_6_slow_clients_cannot_starve_a_step_up() -> anyhow::Result<()> {
    use countersign::portal::bounds::{BODY_DEADLINE, MAX_PER_CLIENT};
    use futures_util::StreamExt as _;
    let proxies = TrustedProxies::parse(&["127.0.0.0/8".into()]).map_err(anyhow::Error::msg)?;
    let portal = Portal::spawn_with(PUBLIC_URL, |s| s.trusted_proxies = Arc::new(proxies)).await?;
    let (code, _, mut key, browser) = requester_signed_in(&portal).await?;
    let started = std::time::Instant::now();
    let mut slow = Vec::new();
    for _ in 0..MAX_PER_CLIENT + 8 {
        let drip = futures_util::stream::iter(0..1_000).then(|_| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, std::io::Error>(vec![b' '])
        });
        let request = portal
            .client
            .post(format!("{}/auth/stepup/finish", portal.base))
            .headers(portal.headers(Some(&browser)))
            .header("x-csrf-token", &browser.csrf)
            .header("x-forwarded-for", "203.0.113.9")
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(drip));
        slow.push(tokio::spawn(async move { request.send().await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another client confirms meanwhile.
    assert_eq!(
        step_up(&portal, &browser, Some("198.51.100.7"), &code, &mut key).await?,
        StatusCode::OK
    );
    assert!(portal.grant_of(&code).await?.is_some());
    // The greedy client: the places beyond its share refused at once, the rest cut off at the
    // body deadline (or their connection closed under the body still being sent).
    let (mut refused, mut cut_off) = (0, 0);
    for task in slow {
        match tokio::time::timeout(Duration::from_secs(20), task).await?? {
            Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            Ok(r) if r.status() == StatusCode::REQUEST_TIMEOUT => cut_off += 1,
            Ok(r) => anyhow::bail!("a trickled body was answered {}", r.status()),
            Err(e) => {
                anyhow::ensure!(!e.is_timeout(), "{e}");
                cut_off += 1;
            }
        }
    }
    assert_eq!((refused, cut_off), (8, MAX_PER_CLIENT));
    assert!(
        started.elapsed() < BODY_DEADLINE * 4,
        "the slow requests were held {:?}",
        started.elapsed()
    );
    Ok(())
}
