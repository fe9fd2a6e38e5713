//! Finding 15: viewing one large challenge must not starve the webhook. Two 1 MiB objects that
//! differ in one value: the page highlights that value within a bounded size, the full objects
//! come as a download to the same people only, and the webhook in the same process keeps
//! answering while several such pages load at once.

use std::time::{Duration, Instant};

use anyhow::Context;
use countersign::identity::Role;
use reqwest::header::ACCEPT;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::portal::{Browser, Portal};
use crate::support::{review, step_up_denial};

/// Annotations per object: about 1 MiB of YAML each.
const ENTRIES: usize = 20_000;
/// The entry whose value changes.
const CHANGED: usize = 12_345;
/// What a challenge page may weigh at most, HTML and hydration data together.
const PAGE_BOUND: usize = 1024 * 1024;
/// The API server's webhook timeout as the shipped configuration sets it.
const WEBHOOK_BUDGET: Duration = Duration::from_secs(10);

fn annotations(variant: usize, changed: &str) -> Value {
    let map: serde_json::Map<String, Value> = (0..ENTRIES)
        .map(|i| {
            let value = if i == CHANGED {
                changed.to_owned()
            } else {
                format!("value {i:05} of a large object, variant {variant}")
            };
            (format!("example.com/note-{i:05}"), Value::String(value))
        })
        .collect();
    Value::Object(map)
}

/// A Deployment update in production whose old and new object (each ~1 MiB) differ in one value.
fn large_update(variant: usize) -> anyhow::Result<Value> {
    let mut r = review("deployment-update")?;
    r["request"]["uid"] = json!(format!("large-{variant}"));
    for (field, value) in [("oldObject", "before"), ("object", "after")] {
        r["request"][field]["metadata"]["annotations"] = annotations(variant, value);
    }
    let size = serde_json::to_vec(&r["request"]["object"])?.len();
    anyhow::ensure!(size > 1 << 20, "object is {size} bytes, not above 1 MiB");
    Ok(r)
}

async fn challenge_of(portal: &Portal, variant: usize) -> anyhow::Result<String> {
    let response = portal.app.decide(&large_update(variant)?).await?;
    Ok(step_up_denial(&response, "prod-workloads")?.0)
}

async fn page(portal: &Portal, code: &str, browser: &Browser) -> anyhow::Result<String> {
    let response = portal
        .client
        .get(format!("{}/c/{code}", portal.base))
        .header(ACCEPT, "text/html")
        .headers(portal.headers(Some(browser)))
        .send()
        .await?;
    anyhow::ensure!(response.status() == StatusCode::OK, "{}", response.status());
    Ok(response.text().await?)
}

fn peak_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_15_a_large_challenge_shows_its_one_change_on_a_bounded_page() -> anyhow::Result<()>
{
    let portal = Portal::spawn().await?;
    let code = challenge_of(&portal, 0).await?;
    let alice = portal.user("alice@example.com", Role::Engineer).await?;
    let browser = portal.signed_in(&alice).await?;

    let html = page(&portal, &code, &browser).await?;
    assert!(
        html.len() < PAGE_BOUND,
        "the page is {} bytes, above {PAGE_BOUND}",
        html.len()
    );
    // The one change, as a removed and an added line.
    for (sign, value) in [("-", "before"), ("\\+", "after")] {
        let line = regex::Regex::new(&format!(
            r#"<span [^>]*data-diff="{sign}"[^>]*>{sign} +example\.com/note-12345: {value}</span>"#
        ))?;
        assert!(
            line.is_match(&html),
            "no {sign} line with {value:?} on the page"
        );
    }
    // Unchanged lines far from the change are not on the page.
    assert!(
        !html.contains("note-00001"),
        "the whole object was rendered"
    );
    assert!(html.contains(&format!("/c/{code}/objects.json")));

    // The full objects, for the same person.
    let response = portal
        .get(&format!("/c/{code}/objects.json"), Some(&browser))
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let objects: Value = response.json().await?;
    let notes = |field: &str| objects[field]["metadata"]["annotations"].clone();
    assert_eq!(notes("object")["example.com/note-12345"], "after");
    assert_eq!(notes("oldObject")["example.com/note-12345"], "before");
    assert_eq!(notes("object").as_object().map(|m| m.len()), Some(ENTRIES));

    // Nobody else gets them: not signed in, or signed in as someone else.
    let anonymous = portal.get(&format!("/c/{code}/objects.json"), None).await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let mallory = portal.user("mallory", Role::Engineer).await?;
    let other = portal.signed_in(&mallory).await?;
    let refused = portal
        .get(&format!("/c/{code}/objects.json"), Some(&other))
        .await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body = refused.text().await?;
    assert!(!body.contains("note-12345"), "{body:.200}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_15_the_webhook_keeps_answering_while_large_pages_load() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let alice = portal.user("alice@example.com", Role::Engineer).await?;
    let browser = portal.signed_in(&alice).await?;
    let mut codes = Vec::new();
    for variant in 0..4 {
        codes.push(challenge_of(&portal, variant).await?);
    }
    let before = peak_rss_kib();

    // Eight page loads at once (each challenge twice), and the webhook probed meanwhile.
    let started = Instant::now();
    let loading = std::sync::atomic::AtomicBool::new(true);
    let pages = async {
        let pages = futures_util::future::join_all(
            codes
                .iter()
                .chain(codes.iter())
                .map(|code| page(&portal, code, &browser)),
        )
        .await;
        loading.store(false, std::sync::atomic::Ordering::SeqCst);
        pages
    };
    let probes = async {
        let small = review("deployment-create")?;
        let mut slowest = Duration::ZERO;
        let mut answered = 0;
        while loading.load(std::sync::atomic::Ordering::SeqCst) || answered < 3 {
            let t = Instant::now();
            let (status, _) = tokio::time::timeout(WEBHOOK_BUDGET, portal.app.get("/healthz"))
                .await
                .context("/healthz did not answer within the webhook's budget")??;
            assert_eq!(status, StatusCode::OK);
            let mut r = small.clone();
            r["request"]["uid"] = json!(format!("probe-{answered}"));
            let decided = tokio::time::timeout(WEBHOOK_BUDGET, portal.app.decide(&r))
                .await
                .context("/k8s/admit did not answer within the webhook's budget")??;
            assert_eq!(decided["uid"], r["request"]["uid"]);
            slowest = slowest.max(t.elapsed());
            answered += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::Ok((answered, slowest))
    };
    let (pages, probes) = tokio::join!(pages, probes);
    let (answered, slowest) = probes?;
    for html in pages {
        let html = html?;
        assert!(html.len() < PAGE_BOUND, "a page is {} bytes", html.len());
        assert!(html.contains("note-12345: after"));
    }
    eprintln!(
        "finding 15: 8 large pages in {:?}; webhook answered {answered} probes, slowest {slowest:?}; \
         peak RSS {before:?} KiB before the pages, {:?} KiB after",
        started.elapsed(),
        peak_rss_kib()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_15_a_client_that_stops_reading_is_disconnected() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let portal = Portal::spawn().await?;
    let code = challenge_of(&portal, 0).await?;
    let alice = portal.user("alice@example.com", Role::Engineer).await?;
    let browser = portal.signed_in(&alice).await?;
    // The same portal on a listener with a short stall timeout.
    let site = tempfile::tempdir()?;
    let options = leptos::prelude::LeptosOptions::builder()
        .output_name("countersign")
        .site_root(site.path().display().to_string())
        .site_pkg_dir("pkg")
        .build();
    let router =
        countersign::portal::router(portal.state().clone(), options, portal.sessions.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(countersign::portal::serve(
        listener,
        router,
        Duration::from_secs(1),
    ));

    // Ask for the full objects (over 2 MiB), then read nothing.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let mut stream = socket.connect(addr).await?;
    stream
        .write_all(
            format!(
                "GET /c/{code}/objects.json HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\n\r\n",
                browser.cookie
            )
            .as_bytes(),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Now read: what was buffered arrives, then the connection ends (the server gave up).
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    server.abort();
    assert!(
        read.is_ok(),
        "the stalled connection was still open after 20 s"
    );
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&received[..received.len().min(200)])
    );
    eprintln!(
        "finding 15: the server closed the stalled connection after sending {} bytes",
        received.len()
    );
    Ok(())
}

#[tokio::test]
async fn finding_4_the_page_shows_the_options_the_grant_binds() -> anyhow::Result<()> {
    let portal = Portal::spawn().await?;
    let alice = portal.user("alice@example.com", Role::Engineer).await?;
    let browser = portal.signed_in(&alice).await?;
    let mut delete = review("namespace-delete")?;
    delete["request"]["options"] = json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1",
        "propagationPolicy": "Orphan", "gracePeriodSeconds": 0, "dryRun": ["All"]});
    let (code, _) = step_up_denial(
        &portal.app.decide(&delete).await?,
        "protect-prod-namespaces",
    )?;
    let html = page(&portal, &code, &browser).await?;
    assert!(html.contains("Options"), "no options on the page");
    assert!(html.contains("propagationPolicy: Orphan"), "{html:.2000}");
    assert!(html.contains("gracePeriodSeconds: 0"));
    // How it was sent is not part of what the grant binds, and is not shown as such.
    assert!(!html.contains("dryRun: "));
    Ok(())
}
