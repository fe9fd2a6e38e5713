//! Finding 12: no open redirect after sign-in. `next` is resolved against the portal's origin and
//! kept only as a same-origin path, by the one rule every sign-in path uses (the browser half,
//! where the browser follows the redirect, is in end2end/tests/security.spec.ts).

use reqwest::header::{ACCEPT, LOCATION};
use reqwest::StatusCode;

use crate::portal::Portal;

/// `next` values that leave the portal once a browser resolves them.
const NASTY: &[&str] = &[
    "//evil.example",
    "/\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/.//evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
];

#[tokio::test]
async fn finding_12_identity_provider_sign_in_keeps_next_on_the_portal() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let browser = portal.page("/login", None).await?;
    for next in NASTY {
        let response = portal
            .form(
                "/auth/oidc/login",
                Some(&browser),
                &[("next", next), ("csrf", &browser.csrf)],
            )
            .await?;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(
            response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok()),
            Some("/login?oidc=off&next=%2F"),
            "{next:?} was kept"
        );
    }
    // A real path on the portal is kept.
    let response = portal
        .form(
            "/auth/oidc/login",
            Some(&browser),
            &[("next", "/c/K7Q2M9XD"), ("csrf", &browser.csrf)],
        )
        .await?;
    assert_eq!(
        response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok()),
        Some("/login?oidc=off&next=%2Fc%2FK7Q2M9XD")
    );
    Ok(())
}

#[tokio::test]
async fn finding_12_the_sign_in_page_hands_the_passkey_script_only_same_origin_paths(
) -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    for next in NASTY {
        let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let html = portal
            .client
            .get(format!("{}/login?next={encoded}", portal.base))
            .header(ACCEPT, "text/html")
            .send()
            .await?
            .text()
            .await?;
        let forms: Vec<&str> = html
            .split("data-next=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(forms, ["/", "/"], "{next:?} reached the page");
    }
    let html = portal
        .client
        .get(format!("{}/login?next=%2Fc%2FK7Q2M9XD", portal.base))
        .header(ACCEPT, "text/html")
        .send()
        .await?
        .text()
        .await?;
    assert!(html.contains("data-next=\"/c/K7Q2M9XD\""));
    Ok(())
}
