//! Files mode on a running `countersign serve`: a changed guardrail file decides the next review
//! within a second; a broken one keeps the last good guardrails in force and says so on `/readyz`
//! and in the metrics (degraded, not down). Store mode on two `serve` processes sharing one
//! PostgreSQL: a version applied from the command line is in force on both within a second.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::Value;

const DENY_NAMESPACE_DELETE: &str = "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata:\n  name: no-namespace-delete\nspec:\n  match:\n    operations: [DELETE]\n    resources:\n      - apiGroups: [\"\"]\n        resources: [namespaces]\n  action:\n    type: deny\n  message: namespaces stay\n";

const WARN_CONFIGMAPS: &str = "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata:\n  name: configmaps-noted\nspec:\n  match:\n    operations: [UPDATE]\n    resources:\n      - apiGroups: [\"\"]\n        resources: [configmaps]\n  action:\n    type: warn\n";

/// A `serve` process, stopped when dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Ports {
    webhook: u16,
    probe: u16,
}

fn serve(data: &Path, policies: &Path) -> anyhow::Result<(Serving, Ports)> {
    let policies = policies.to_str().context("path")?;
    serve_with(data, &["--policies", policies])
}

fn serve_with(data: &Path, extra: &[&str]) -> anyhow::Result<(Serving, Ports)> {
    let ports = Ports {
        webhook: free_port()?,
        probe: free_port()?,
    };
    let child = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--webhook-listen")
        .arg(format!("127.0.0.1:{}", ports.webhook))
        .arg("--probe-listen")
        .arg(format!("127.0.0.1:{}", ports.probe))
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .stdout(Stdio::null())
        // Kept beside the data, for a failing test to show.
        .stderr(std::fs::File::create(data.join("serve.log"))?)
        .spawn()
        .context("starting countersign serve")?;
    Ok((Serving(child), ports))
}

/// `countersign policy apply` of the namespace-deletion guardrail alone, on the store `store` names.
fn apply_namespaces_only(store: &[&str]) -> anyhow::Result<()> {
    let policies = tempfile::tempdir()?;
    std::fs::write(
        policies.path().join("namespaces.yaml"),
        DENY_NAMESPACE_DELETE,
    )?;
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["policy", "apply"])
        .arg(policies.path())
        .args(["--reason", "only namespaces matter"])
        .args(store)
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<(u16, String)> {
    let response = client.get(url).send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// Poll `url` until `done` holds for its answer, for at most `within`.
async fn until(
    client: &reqwest::Client,
    url: &str,
    within: Duration,
    done: impl Fn(u16, &str) -> bool,
) -> anyhow::Result<(u16, String)> {
    let deadline = Instant::now() + within;
    loop {
        let last = get(client, url).await;
        if let Ok((status, body)) = &last {
            if done(*status, body) {
                return Ok((*status, body.clone()));
            }
        }
        ensure!(
            Instant::now() < deadline,
            "{url} never came to pass: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn decide(client: &reqwest::Client, port: u16, review: &Value) -> anyhow::Result<Value> {
    let answer: Value = client
        .post(format!("https://127.0.0.1:{port}/k8s/admit"))
        .json(review)
        .send()
        .await?
        .json()
        .await?;
    Ok(answer["response"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_mode_reloads_within_a_second_and_keeps_the_last_good_guardrails(
) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let policies = tempfile::tempdir()?;
    std::fs::write(policies.path().join("configmaps.yaml"), WARN_CONFIGMAPS)?;
    let (_serving, ports) = serve(data.path(), policies.path())?;
    let client = reqwest::Client::builder()
        // The webhook's certificate is the self-signed one `serve` made; what is under test is
        // which guardrails answer, not TLS (tested elsewhere).
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(5))
        .build()?;
    let ready = format!("http://127.0.0.1:{}/readyz", ports.probe);
    let metrics = format!("http://127.0.0.1:{}/metrics", ports.probe);
    until(&client, &ready, Duration::from_secs(60), |s, b| {
        s == 200 && b == "ready"
    })
    .await?;
    let delete = crate::support::review("namespace-delete")?;
    let first = decide(&client, ports.webhook, &delete).await?;
    assert_eq!(first["allowed"], true, "{first}");

    // A new file: the next review after at most a second is decided by it.
    std::fs::write(
        policies.path().join("namespaces.yaml"),
        DENY_NAMESPACE_DELETE,
    )?;
    let written = Instant::now();
    let denied = loop {
        let answer = decide(&client, ports.webhook, &delete).await?;
        if answer["allowed"] == false {
            break answer;
        }
        ensure!(
            written.elapsed() < Duration::from_secs(1),
            "the new guardrail did not decide within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        denied["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-namespace-delete")),
        "{denied}"
    );
    let (_, text) = get(&client, &metrics).await?;
    assert!(text.contains("countersign_guardrails 2\n"), "{text}");
    assert!(
        text.contains("countersign_guardrails_reloads_total 1\n"),
        "{text}"
    );

    // A broken edit: the last good guardrails stay in force, degraded but ready.
    std::fs::write(
        policies.path().join("namespaces.yaml"),
        DENY_NAMESPACE_DELETE.replace("type: deny", "type: refuse"),
    )?;
    let (status, body) = until(&client, &ready, Duration::from_secs(5), |_, b| {
        b.contains("degraded")
    })
    .await?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("namespaces.yaml"), "{body}");
    assert!(body.contains("spec.action.type"), "{body}");
    let still = decide(&client, ports.webhook, &delete).await?;
    assert_eq!(still["allowed"], false, "{still}");
    let (_, text) = get(&client, &metrics).await?;
    assert!(
        text.contains("countersign_guardrails_degraded 1\n"),
        "{text}"
    );
    assert!(
        text.contains("countersign_guardrails_reload_failures_total 1\n"),
        "{text}"
    );

    // Mended by removing the file: in force again, and no longer degraded.
    std::fs::remove_file(policies.path().join("namespaces.yaml"))?;
    until(&client, &ready, Duration::from_secs(5), |s, b| {
        s == 200 && b == "ready"
    })
    .await?;
    let again = decide(&client, ports.webhook, &delete).await?;
    assert_eq!(again["allowed"], true, "{again}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgresql_follow_a_version_applied_from_the_cli() -> anyhow::Result<()>
{
    let Some(db) = crate::support::TestDb::postgres().await? else {
        return Ok(());
    };
    let key_dir = tempfile::tempdir()?;
    let key = key_dir.path().join("grant-signing.key");
    countersign::grants::GrantSigner::load_or_create(&key)?;
    let key = key.to_str().context("path")?;
    let shared = [
        "--database-url",
        db.url.as_str(),
        "--grant-signing-key",
        key,
    ];
    let (data_a, data_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (_a, ports_a) = serve_with(data_a.path(), &shared)?;
    let (_b, ports_b) = serve_with(data_b.path(), &shared)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let metrics = |port: u16| format!("http://127.0.0.1:{port}/metrics");
    for (port, data) in [(ports_a.probe, &data_a), (ports_b.probe, &data_b)] {
        // Both start on the shipped library, saved once as v1 by whichever came first.
        until(&client, &metrics(port), Duration::from_secs(60), |s, b| {
            s == 200 && b.contains("countersign_guardrails_info{version=\"v1\"} 1")
        })
        .await
        .with_context(|| {
            std::fs::read_to_string(data.path().join("serve.log")).unwrap_or_default()
        })?;
    }
    apply_namespaces_only(&shared)?;
    let applied = Instant::now();
    for port in [ports_a.probe, ports_b.probe] {
        let (_, text) = until(&client, &metrics(port), Duration::from_secs(1), |_, b| {
            b.contains("countersign_guardrails_info{version=\"v2\"} 1")
        })
        .await?;
        assert!(text.contains("countersign_guardrails 1\n"), "{text}");
    }
    assert!(applied.elapsed() < Duration::from_secs(1));
    let insecure = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()?;
    let delete = crate::support::review("namespace-delete")?;
    for port in [ports_a.webhook, ports_b.webhook] {
        let answer = decide(&insecure, port, &delete).await?;
        assert_eq!(answer["allowed"], false, "{answer}");
    }
    Ok(())
}

/// Store mode on a real `serve`: a version applied from the command line is followed, and when the
/// newer versions are then deleted from the database, a restart refuses the older one left rather
/// than putting looser guardrails back in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_refuses_a_store_whose_newer_versions_were_deleted() -> anyhow::Result<()> {
    use sqlx::{Connection as _, Executor as _};
    let data = tempfile::tempdir()?;
    let d = data.path().to_str().context("path")?;
    let (serving, ports) = serve_with(data.path(), &[])?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let metrics = format!("http://127.0.0.1:{}/metrics", ports.probe);
    until(&client, &metrics, Duration::from_secs(60), |s, b| {
        s == 200 && b.contains("countersign_guardrails_info{version=\"v1\"} 1")
    })
    .await?;
    apply_namespaces_only(&["--data-dir", d])?;
    until(&client, &metrics, Duration::from_secs(2), |_, b| {
        b.contains("countersign_guardrails_info{version=\"v2\"} 1")
    })
    .await?;
    drop(serving);

    // Someone with the database deletes v2: the library (v1) would be in force again.
    let url = format!("sqlite://{}", data.path().join("countersign.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    db.execute("delete from guardrail_versions where number = 2")
        .await?;
    db.close().await?;
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--webhook-listen",
            "127.0.0.1:0",
        ])
        .args(["--data-dir", d])
        .env("RUST_LOG", "warn")
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .output()?;
    assert!(
        !out.status.success(),
        "serve started on a rolled-back store"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("newest guardrail version is v1, but this data dir has put v2 in force"),
        "{stderr}"
    );
    Ok(())
}
