//! Issue 9: pages render their content on the server (no "Loading…" without script), say the
//! truth about a grant, name requests in people's words, and remember the colour scheme.

use countersign::elevation;
use countersign::identity::Role;
use reqwest::header::{ACCEPT, COOKIE, LOCATION, REFERER, SET_COOKIE};
use reqwest::StatusCode;

use crate::portal::{Browser, Portal};
use crate::support::PUBLIC_URL;

async fn html(portal: &Portal, path: &str, browser: &Browser) -> anyhow::Result<String> {
    let response = portal
        .client
        .get(format!("{}{path}", portal.base))
        .header(ACCEPT, "text/html")
        .header(COOKIE, browser.cookie_header())
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    Ok(response.text().await?)
}

#[tokio::test]
async fn a_challenge_page_renders_whole_on_the_server_and_tells_the_truth_about_its_grant(
) -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (_, code, requester) = portal.exec_challenge().await?;
    let alice = portal.user(&requester, Role::Engineer).await?;
    let browser = portal.signed_in(&alice).await?;

    let page = html(&portal, &format!("/c/{code}"), &browser).await?;
    assert!(!page.contains("Loading…"), "the page waited for script");
    assert!(
        page.contains(
            "<title>Run a command in pod payments-api-7d9c5b6f4-x2k7q · Countersign</title>"
        ),
        "{page:.3000}"
    );
    assert!(page.contains("in namespace payments on cluster "));
    assert!(page.contains(r#"data-standing="waiting""#));
    assert!(page.contains("Confirm with passkey"));

    let grant = portal.app.confirm(&code).await?;
    let page = html(&portal, &format!("/c/{code}"), &browser).await?;
    assert!(page.contains(r#"data-outcome="granted""#));
    assert!(page.contains("Granted — run your command again"));

    let revoked = elevation::revoke(
        portal.state().store.as_ref(),
        Some(&portal.state().grants),
        &grant.id,
        "root-admin",
    )
    .await?;
    assert_eq!(revoked, elevation::Revocation::Revoked);
    let page = html(&portal, &format!("/c/{code}"), &browser).await?;
    assert!(page.contains(r#"data-outcome="revoked""#));
    assert!(page.contains("Revoked by root-admin"));
    assert!(
        !page.contains("Granted — run your command again"),
        "a revoked grant still reads as granted"
    );

    let home = html(&portal, "/", &browser).await?;
    assert!(home.contains("Run a command in pod payments-api-7d9c5b6f4-x2k7q"));
    assert!(
        home.contains(r#"data-standing="revoked""#),
        "the list keeps an old badge"
    );
    Ok(())
}

#[tokio::test]
async fn the_grants_page_names_what_each_grant_is_for() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let (_, grant_id, requester) = portal.live_grant().await?;
    let admin = portal.user("root-admin", Role::Admin).await?;
    let browser = portal.signed_in(&admin).await?;
    let page = html(&portal, "/admin/grants", &browser).await?;
    let row = page
        .split(&format!(r#"data-grant-row="{grant_id}""#))
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("the grant's row");
    assert!(row.contains(&requester));
    assert!(
        row.contains("Run a command in pod payments-api-7d9c5b6f4-x2k7q"),
        "{row}"
    );
    assert!(row.contains("in namespace payments"));
    assert!(row.contains("Revoke…"));

    // Signed out, the page asks for sign-in instead of showing a server-function error.
    let anonymous = portal.page("/admin/grants", None).await?;
    let page = html(&portal, "/admin/grants", &anonymous).await?;
    assert!(page.contains("Sign in to see grants"));
    assert!(!page.contains("error running server function"));
    Ok(())
}

#[tokio::test]
async fn the_colour_scheme_is_remembered_and_rendered_from_the_first_byte() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let visitor = portal.page("/", None).await?;
    let system = html(&portal, "/", &visitor).await?;
    assert!(
        system.contains(r#"<html lang="en" class="">"#) || system.contains(r#"<html lang="en">"#),
        "{system:.300}"
    );

    let response = portal
        .client
        .post(format!("{}/theme", portal.base))
        .headers(portal.headers(Some(&visitor)))
        .header(REFERER, format!("{PUBLIC_URL}/login?next=%2F"))
        .form(&[("theme", "dark"), ("csrf", visitor.csrf.as_str())])
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login?next=%2F");
    let cookie = response.headers()[SET_COOKIE].to_str()?.to_owned();
    assert!(cookie.starts_with("countersign_theme=dark;"), "{cookie}");

    let dark = Browser::new(
        format!("{}; countersign_theme=dark", visitor.cookie_header()),
        visitor.csrf.clone(),
    );
    assert!(html(&portal, "/", &dark)
        .await?
        .contains(r#"<html lang="en" class="dark">"#));

    // Another site as the referrer sends the browser home, not there; without the token, nothing.
    let response = portal
        .client
        .post(format!("{}/theme", portal.base))
        .headers(portal.headers(Some(&visitor)))
        .header(REFERER, "https://evil.example/phish")
        .form(&[("theme", "light"), ("csrf", visitor.csrf.as_str())])
        .send()
        .await?;
    assert_eq!(response.headers()[LOCATION], "/");
    let refused = portal
        .form("/theme", Some(&visitor), &[("theme", "light")])
        .await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    Ok(())
}

/// Item 16: the not-found page knows who is signed in (it offered "Sign in" to a signed-in person).
#[tokio::test]
async fn the_not_found_page_knows_who_is_signed_in() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let user = portal.user("nora", Role::Engineer).await?;
    let browser = portal.signed_in(&user).await?;
    let response = portal
        .client
        .get(format!("{}/no/such/page", portal.base))
        .headers(portal.headers(Some(&browser)))
        .header(ACCEPT, "text/html")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let page = response.text().await?;
    assert!(page.contains("Page not found"), "{page}");
    assert!(
        page.contains("data-account-menu"),
        "no account menu on the 404 page"
    );
    assert!(
        !page.contains(">Sign in<"),
        "the 404 page offers a signed-in person to sign in"
    );
    Ok(())
}
