//! The portal's built assets (finding 11): linked under a content-hashed prefix, served from memory
//! compressed as the client accepts, cached forever at hashed URLs and revalidated at legacy ones.

use std::io::Read as _;

use anyhow::Context;
use reqwest::header::{
    ACCEPT, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, SET_COOKIE, VARY,
};
use reqwest::StatusCode;

use crate::portal::Portal;
use crate::support::PUBLIC_URL;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A fake wasm module: compressible, as the real one is.
fn wasm(seed: u8) -> Vec<u8> {
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    for i in 0..20_000u32 {
        bytes.push((i % 251) as u8 ^ seed);
    }
    bytes
}

const JS: &str = "export default function init() { return 'countersign hydration'; }\n";
const CSS: &str = "body { margin: 0; color: #0f172a; } .btn { padding: 0.5rem 1rem; }\n";
const WEBAUTHN: &str = "window.countersignWebauthn = { start() { return 'passkey'; } };\n";

/// A site root as cargo-leptos leaves it: `pkg/` and the public files.
fn site(wasm_seed: u8) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let pkg = dir.path().join("pkg");
    std::fs::create_dir(&pkg)?;
    std::fs::write(pkg.join("countersign.wasm"), wasm(wasm_seed))?;
    // Both names: a build from cargo-leptos links `countersign.wasm`, a plain cargo one `_bg`.
    std::fs::write(pkg.join("countersign_bg.wasm"), wasm(wasm_seed))?;
    std::fs::write(pkg.join("countersign.js"), JS)?;
    std::fs::write(pkg.join("countersign.css"), CSS)?;
    std::fs::write(dir.path().join("webauthn.js"), WEBAUTHN)?;
    std::fs::write(dir.path().join("live.js"), "window.countersignLive = {};\n")?;
    std::fs::write(dir.path().join("favicon.svg"), "<svg/>")?;
    Ok(dir)
}

async fn portal_in(site: tempfile::TempDir) -> anyhow::Result<Portal> {
    Portal::spawn_in_site(PUBLIC_URL, |_| {}, site).await
}

async fn html(portal: &Portal, path: &str) -> anyhow::Result<(reqwest::header::HeaderMap, String)> {
    let response = portal
        .client
        .get(format!("{}{path}", portal.base))
        .header(ACCEPT, "text/html")
        .send()
        .await?;
    let headers = response.headers().clone();
    Ok((headers, response.text().await?))
}

/// The `/assets/{hash}` prefix the page links its stylesheet under.
fn asset_base(html: &str) -> anyhow::Result<String> {
    let start = html
        .find("/assets/")
        .context("no /assets/ URL in the page")?;
    let rest = &html[start + "/assets/".len()..];
    let hash = rest.split('/').next().context("no hash")?;
    anyhow::ensure!(
        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "not a hash: {hash}"
    );
    Ok(format!("/assets/{hash}"))
}

async fn fetch(
    portal: &Portal,
    path: &str,
    headers: &[(reqwest::header::HeaderName, &str)],
) -> anyhow::Result<reqwest::Response> {
    let mut request = portal.client.get(format!("{}{path}", portal.base));
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    Ok(request.send().await?)
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn page_links_every_asset_under_the_hashed_prefix_with_the_nonce_kept() -> anyhow::Result<()>
{
    let portal = portal_in(site(0)?).await?;
    let (headers, html) = html(&portal, "/").await?;
    let base = asset_base(&html)?;
    for linked in [
        format!("href=\"{base}/pkg/countersign.css\""),
        format!("src=\"{base}/webauthn.js\""),
        format!("src=\"{base}/live.js\""),
        format!("href=\"{base}/pkg/countersign.js\""),
        format!("{base}/pkg/countersign"),
    ] {
        assert!(html.contains(&linked), "{linked} not in the page:\n{html}");
    }
    assert!(
        html.contains(&format!("{base}/pkg/countersign_bg.wasm"))
            || html.contains(&format!("{base}/pkg/countersign.wasm"))
    );
    assert!(
        !html.contains("\"/pkg/"),
        "an unhashed pkg URL is linked:\n{html}"
    );
    assert!(
        !html.contains("\"/webauthn.js\""),
        "unhashed webauthn.js:\n{html}"
    );
    // The inline hydration script still carries this response's nonce, and the CSP allows it.
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .context("no CSP")?;
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .context("no nonce in the CSP")?;
    let script = html
        .split(&format!("<script type=\"module\" nonce=\"{nonce}\">"))
        .nth(1)
        .and_then(|r| r.split("</script>").next())
        .context("no hydration script with the nonce")?;
    assert!(
        script.contains(&format!("(\"{base}\", \"pkg\"")),
        "{script}"
    );
    Ok(())
}

#[tokio::test]
async fn hashed_wasm_comes_in_brotli_gzip_or_identity_cached_forever() -> anyhow::Result<()> {
    let portal = portal_in(site(0)?).await?;
    let base = asset_base(&html(&portal, "/").await?.1)?;
    let path = format!("{base}/pkg/countersign.wasm");
    let file = wasm(0);

    let br = fetch(&portal, &path, &[(ACCEPT_ENCODING, "gzip, deflate, br")]).await?;
    assert_eq!(br.status(), StatusCode::OK);
    assert_eq!(header(&br, CONTENT_ENCODING), "br");
    assert_eq!(header(&br, CONTENT_TYPE), "application/wasm");
    assert_eq!(header(&br, CACHE_CONTROL), IMMUTABLE);
    assert_eq!(header(&br, VARY), "accept-encoding");
    assert!(
        br.headers().get(SET_COOKIE).is_none(),
        "an asset sets a cookie"
    );
    let length: usize = header(&br, CONTENT_LENGTH).parse()?;
    let body = br.bytes().await?;
    assert_eq!(length, body.len());
    assert!(
        body.len() < file.len() / 2,
        "brotli body is {} bytes",
        body.len()
    );
    let mut plain = Vec::new();
    brotli::Decompressor::new(&body[..], 4096).read_to_end(&mut plain)?;
    assert_eq!(plain, file);

    let gz = fetch(&portal, &path, &[(ACCEPT_ENCODING, "gzip, br;q=0")]).await?;
    assert_eq!(header(&gz, CONTENT_ENCODING), "gzip");
    assert_eq!(header(&gz, CONTENT_TYPE), "application/wasm");
    assert_eq!(header(&gz, CACHE_CONTROL), IMMUTABLE);
    let length: usize = header(&gz, CONTENT_LENGTH).parse()?;
    let body = gz.bytes().await?;
    assert_eq!(length, body.len());
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain)?;
    assert_eq!(plain, file);

    let identity = fetch(&portal, &path, &[]).await?;
    assert_eq!(identity.status(), StatusCode::OK);
    assert!(identity.headers().get(CONTENT_ENCODING).is_none());
    assert_eq!(header(&identity, CONTENT_TYPE), "application/wasm");
    assert_eq!(header(&identity, VARY), "accept-encoding");
    assert_eq!(header(&identity, CONTENT_LENGTH), file.len().to_string());
    assert_eq!(identity.bytes().await?.as_ref(), file.as_slice());

    let js = fetch(&portal, &format!("{base}/pkg/countersign.js"), &[]).await?;
    assert_eq!(header(&js, CONTENT_TYPE), "text/javascript; charset=utf-8");
    let css = fetch(&portal, &format!("{base}/pkg/countersign.css"), &[]).await?;
    assert_eq!(header(&css, CONTENT_TYPE), "text/css; charset=utf-8");
    assert_eq!(css.text().await?, CSS);
    Ok(())
}

#[tokio::test]
async fn legacy_urls_revalidate_with_a_strong_etag() -> anyhow::Result<()> {
    let portal = portal_in(site(0)?).await?;
    for (path, content) in [
        ("/pkg/countersign.js", JS),
        ("/webauthn.js", WEBAUTHN),
        ("/favicon.svg", "<svg/>"),
    ] {
        let first = fetch(&portal, path, &[]).await?;
        assert_eq!(first.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&first, CACHE_CONTROL), "no-cache", "{path}");
        let etag = header(&first, ETAG).to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
            "{path}: ETag {etag:?}"
        );
        assert_eq!(first.text().await?, content);

        let again = fetch(&portal, path, &[(IF_NONE_MATCH, &etag)]).await?;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(header(&again, ETAG), etag);
        assert!(again.bytes().await?.is_empty());

        let stale = fetch(&portal, path, &[(IF_NONE_MATCH, "\"0000\"")]).await?;
        assert_eq!(stale.status(), StatusCode::OK, "{path}");
        assert_eq!(stale.text().await?, content);
    }
    // The compressed representation has its own tag: a gzip copy's tag does not answer identity.
    let gz = fetch(
        &portal,
        "/pkg/countersign.wasm",
        &[(ACCEPT_ENCODING, "gzip")],
    )
    .await?;
    assert_eq!(header(&gz, CONTENT_ENCODING), "gzip");
    assert_eq!(header(&gz, CACHE_CONTROL), "no-cache");
    let gz_tag = header(&gz, ETAG).to_owned();
    let plain = fetch(
        &portal,
        "/pkg/countersign.wasm",
        &[(IF_NONE_MATCH, &gz_tag)],
    )
    .await?;
    assert_eq!(plain.status(), StatusCode::OK);
    assert_ne!(header(&plain, ETAG), gz_tag);
    let gz_again = fetch(
        &portal,
        "/pkg/countersign.wasm",
        &[(ACCEPT_ENCODING, "gzip"), (IF_NONE_MATCH, &gz_tag)],
    )
    .await?;
    assert_eq!(gz_again.status(), StatusCode::NOT_MODIFIED);
    Ok(())
}

#[tokio::test]
async fn unknown_hash_or_file_is_404_not_a_file() -> anyhow::Result<()> {
    let portal = portal_in(site(0)?).await?;
    let base = asset_base(&html(&portal, "/").await?.1)?;
    for path in [
        "/assets/0000000000000000/pkg/countersign.wasm".to_owned(),
        format!("{base}/pkg/nothing.wasm"),
        format!("{base}/../pkg/countersign.wasm"),
        format!("{base}/pkg"),
        base.clone(),
        "/assets/".to_owned(),
    ] {
        let response = fetch(&portal, &path, &[(ACCEPT, "text/html")]).await?;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = response.bytes().await?;
        assert!(!body.starts_with(b"\0asm"), "{path} served the wasm");
    }
    Ok(())
}

#[tokio::test]
async fn a_changed_file_changes_the_hash() -> anyhow::Result<()> {
    let one = portal_in(site(0)?).await?;
    let same = portal_in(site(0)?).await?;
    let other = portal_in(site(1)?).await?;
    let one_base = asset_base(&html(&one, "/").await?.1)?;
    assert_eq!(asset_base(&html(&same, "/").await?.1)?, one_base);
    let other_base = asset_base(&html(&other, "/").await?.1)?;
    assert_ne!(other_base, one_base);
    // Each portal serves only its own build's hash.
    let old = fetch(&other, &format!("{one_base}/pkg/countersign.wasm"), &[]).await?;
    assert_eq!(old.status(), StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn without_a_built_site_pages_link_the_unhashed_paths() -> anyhow::Result<()> {
    let portal = portal_in(tempfile::tempdir()?).await?;
    let (_, html) = html(&portal, "/").await?;
    assert!(html.contains("href=\"/pkg/countersign.css\""), "{html}");
    assert!(html.contains("src=\"/webauthn.js\""), "{html}");
    assert!(!html.contains("/assets/"), "{html}");
    Ok(())
}
