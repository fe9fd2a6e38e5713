//! Store mode on both backends: versions saved on one replica put in force on another within a
//! second, a version edited in the database refused at load, the audit record in the same unit of
//! work, and the CLI round trip (apply, versions, export, diff, rollback) on the real binary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use countersign::clock;
use countersign::engine::{LiveGuardrails, NamespaceIndex};
use countersign::guardrails::store_mode::{self, Versions, VersionsError};
use countersign::guardrails::versions::{library, VersionError};

use crate::support::{on_both_backends, review, shared_signer, TestDb};

const EXTRA: &str = "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata:\n  name: no-configmap-updates\nspec:\n  match:\n    operations: [UPDATE]\n    resources:\n      - apiGroups: [\"\"]\n        resources: [configmaps]\n  action:\n    type: deny\n  message: frozen\n";

/// A second replica: its own connection to the same database, its own snapshot in force.
async fn replica(
    db: &TestDb,
) -> anyhow::Result<(Versions, Arc<LiveGuardrails>, tokio::task::JoinHandle<()>)> {
    let store = countersign::store::connect(&db.url).await?;
    let versions = Versions::new(store, shared_signer());
    let (number, snapshot) = versions.newest().await?.context("no version")?;
    let live = Arc::new(LiveGuardrails::new(snapshot));
    let follow = tokio::spawn(store_mode::keep_following(
        versions.clone(),
        live.clone(),
        number,
        store_mode::FOLLOW_EVERY,
        None,
    ));
    Ok((versions, live, follow))
}

async fn a_version_saved_on_one_replica_decides_the_next_review_on_the_other(
    db: &TestDb,
) -> anyhow::Result<()> {
    let here = Versions::new(db.store.clone(), shared_signer());
    let seeded = here.seed().await?.context("a new store is seeded")?;
    assert_eq!(seeded.number, 1);
    assert!(here.seed().await?.is_none(), "seeded once");
    let (_, there, follow) = replica(db).await?;
    assert_eq!(there.load().version(), "v1");
    let update = countersign::admission::parse_review(&serde_json::to_vec(&review(
        "configmap-update-large",
    )?)?)?;
    let labels = NamespaceIndex::default();
    assert!(there.load().evaluate(&update, &labels).hits.is_empty());

    let saved = here
        .save(
            &format!("{}---\n{EXTRA}", library()),
            "alice",
            "freeze config",
        )
        .await?;
    assert_eq!(saved.name(), "v2");
    let started = Instant::now();
    while there.load().version() != "v2" {
        ensure!(
            started.elapsed() < Duration::from_secs(1),
            "v2 not in force on the other replica within a second ({})",
            db.backend
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let decision = there.load().evaluate(&update, &labels);
    assert_eq!(decision.hits[0].name, "no-configmap-updates");

    // Saved with its audit record, in the same unit of work.
    let audit = db.store.audit_records(0, 1000).await?;
    let record = audit
        .iter()
        .find(|r| r.event.kind == "guardrails.saved" && r.event.subject == "v2")
        .context("no audit record for v2")?;
    assert_eq!(record.event.actor, "alice");
    assert_eq!(record.event.detail["reason"], "freeze config");
    assert_eq!(record.event.detail["previous"], 1);

    // The same guardrails again are no new version; no reason is refused.
    assert!(matches!(
        here.save(&saved.documents, "alice", "again").await,
        Err(VersionsError::Unchanged(2))
    ));
    assert!(matches!(
        here.save(&library(), "alice", "  ").await,
        Err(VersionsError::Version(VersionError::Reason))
    ));
    // A rollback is a new version holding the old guardrails.
    let back = here.rollback(1, "bob", "thaw").await?;
    assert_eq!(back.number, 3);
    assert_eq!(back.documents, seeded.documents);
    follow.abort();
    Ok(())
}

async fn a_version_edited_in_the_database_is_refused_and_the_last_good_one_stays(
    db: &TestDb,
) -> anyhow::Result<()> {
    let versions = Versions::new(db.store.clone(), shared_signer());
    versions.seed().await?;
    let (_, live, follow) = replica(db).await?;
    // Someone with the database but not the key writes a version that drops every guardrail's
    // step-up, and edits the sealed library in place.
    let v1 = db.store.guardrail_version(1).await?.context("v1")?;
    let weakened = v1.documents.replace("type: stepUp", "type: audit");
    db.execute(&format!(
        "insert into guardrail_versions (number, created_at, author, reason, documents, digest, seal) \
         values (2, {}, 'alice', 'routine', '{}', '{}', '{}')",
        v1.created_at + 1,
        weakened.replace('\'', "''"),
        v1.digest,
        v1.seal
    ))
    .await?;
    let started = Instant::now();
    while live.problem().is_none() {
        ensure!(
            started.elapsed() < Duration::from_secs(2),
            "the forged v2 was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        live.load().version(),
        "v1",
        "the forged version must not be in force"
    );
    assert!(live
        .problem()
        .is_some_and(|p| p.contains("version 2 is not sealed")));
    assert!(matches!(
        versions.newest().await,
        Err(VersionsError::Version(VersionError::Forged(2)))
    ));
    db.execute(&format!(
        "update guardrail_versions set documents = '{}' where number = 1",
        weakened.replace('\'', "''")
    ))
    .await?;
    assert!(matches!(
        versions.snapshot(1).await,
        Err(VersionsError::Version(VersionError::Forged(1)))
    ));
    // An admin with the key can still save over the forgery.
    let mended = versions
        .save(&library(), "admin", "replace the forged versions")
        .await?;
    assert_eq!(mended.number, 3);
    let started = Instant::now();
    while live.load().version() != "v3" {
        ensure!(
            started.elapsed() < Duration::from_secs(1),
            "v3 not followed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(live.problem().is_none());
    follow.abort();
    Ok(())
}

async fn concurrent_saves_make_distinct_versions_or_say_they_raced(
    db: &TestDb,
) -> anyhow::Result<()> {
    let versions = Versions::new(db.store.clone(), shared_signer());
    versions.seed().await?;
    let saves = (0..4).map(|i| {
        let versions = versions.clone();
        let text = format!(
            "{}---\n{}",
            library(),
            EXTRA.replace("frozen", &format!("frozen {i}"))
        );
        tokio::spawn(async move { versions.save(&text, "alice", "race").await })
    });
    let mut numbers = Vec::new();
    for save in saves {
        match save.await? {
            Ok(v) => numbers.push(v.number),
            Err(VersionsError::Raced) => {}
            Err(e) => return Err(e.into()),
        }
    }
    numbers.sort_unstable();
    numbers.dedup();
    ensure!(!numbers.is_empty());
    let stored = versions.list(100).await?;
    assert_eq!(stored.len(), numbers.len() + 1, "{numbers:?}");
    Ok(())
}

on_both_backends!(
    a_version_saved_on_one_replica_decides_the_next_review_on_the_other,
    a_version_edited_in_the_database_is_refused_and_the_last_good_one_stays,
    concurrent_saves_make_distinct_versions_or_say_they_raced,
);

fn countersign(args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .output()
        .with_context(|| format!("running countersign {args:?}"))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn the_cli_round_trip_apply_versions_export_diff_rollback() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let d = data.path().to_str().context("path")?;
    let library_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/library");
    // Without serve's key nothing is sealed (a version sealed with another key is never enforced).
    let (ok, _, err) = countersign(&[
        "policy",
        "apply",
        library_dir,
        "--reason",
        "x",
        "--data-dir",
        d,
    ])?;
    assert!(!ok);
    assert!(err.contains("grant signing key"), "{err}");
    countersign::grants::GrantSigner::load_or_create(&data.path().join("grant-signing.key"))?;

    let (ok, out, err) = countersign(&[
        "policy",
        "apply",
        library_dir,
        "--reason",
        "start",
        "--data-dir",
        d,
    ])?;
    assert!(ok, "{err}");
    assert!(out.starts_with("v1: saved"), "{out}");
    let exported = data.path().join("exported");
    let e = exported.to_str().context("path")?;
    let (ok, out, err) = countersign(&["policy", "export", "--to", e, "--data-dir", d])?;
    assert!(ok, "{err}");
    assert!(out.contains("guardrail(s) written"), "{out}");
    let file = exported.join("prod-exec.yaml");
    let text = std::fs::read_to_string(&file)?;
    ensure!(text.contains("freshness: 5m"), "{text}");
    std::fs::write(&file, text.replacen("freshness: 5m", "freshness: 2m", 1))?;
    // A broken folder is refused with the file and field, and saves nothing.
    std::fs::write(exported.join("broken.yaml"), "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata: {name: b}\nspec: {match: {}, action: {type: nope}}\n")?;
    let (ok, _, err) = countersign(&["policy", "apply", e, "--reason", "bad", "--data-dir", d])?;
    assert!(!ok);
    assert!(
        err.contains("broken.yaml") && err.contains("spec.action.type"),
        "{err}"
    );
    std::fs::remove_file(exported.join("broken.yaml"))?;
    let (ok, out, err) = countersign(&[
        "policy",
        "apply",
        e,
        "--reason",
        "shorter freshness",
        "--data-dir",
        d,
    ])?;
    assert!(ok, "{err}");
    assert!(out.starts_with("v2: saved"), "{out}");

    let (ok, out, err) = countersign(&["policy", "diff", "v1", "v2", "--data-dir", d])?;
    assert!(ok, "{err}");
    assert!(out.starts_with("changed: prod-exec\n"), "{out}");
    assert!(
        out.contains("-    freshness: 5m") && out.contains("+    freshness: 2m"),
        "{out}"
    );
    assert_eq!(out.matches("changed:").count(), 1, "{out}");

    let (ok, out, err) = countersign(&[
        "policy",
        "rollback",
        "1",
        "--reason",
        "too strict",
        "--data-dir",
        d,
    ])?;
    assert!(ok, "{err}");
    assert!(out.starts_with("v3:"), "{out}");
    let (ok, out, _) = countersign(&["policy", "diff", "1", "3", "--data-dir", d])?;
    assert!(ok);
    assert_eq!(out, "v1 and v3 hold the same guardrails\n");

    let (ok, out, err) = countersign(&["policy", "versions", "--data-dir", d])?;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("v3 ") && lines[0].contains("too strict"),
        "{out}"
    );
    assert!(lines[1].contains("shorter freshness"), "{out}");
    assert!(!out.contains("FORGED"), "{out}");
    Ok(())
}

const V1_DENIES: &str = "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata:\n  name: v1-keeps-namespaces\nspec:\n  match:\n    operations: [DELETE]\n    resources:\n      - apiGroups: [\"\"]\n        resources: [namespaces]\n  action:\n    type: deny\n";
const V2_WARNS: &str = "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata:\n  name: v2-notes-namespaces\nspec:\n  match:\n    operations: [DELETE]\n    resources:\n      - apiGroups: [\"\"]\n        resources: [namespaces]\n  action:\n    type: warn\n  message: noted\n";

/// Guardrails swapped back and forth while reviews run: every review is answered, by exactly one
/// version (what it says and the version it names agree), and both versions answered some.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_under_load_answers_every_review_by_exactly_one_version() -> anyhow::Result<()> {
    use countersign::engine::Snapshot;
    let snapshot = |version: &str, text: &str| -> anyhow::Result<Snapshot> {
        Ok(Snapshot::new(
            countersign::policy::parse_documents(version, text)?,
            version,
        ))
    };
    let v1 = snapshot("v1", V1_DENIES)?;
    let app = Arc::new(
        crate::support::TestApp::spawn_configured(
            TestDb::sqlite().await?.store.clone(),
            None,
            |state| state.guardrails = Arc::new(LiveGuardrails::new(v1)),
            None,
        )
        .await?,
    );
    let live = app.state.guardrails.clone();
    let swapper = tokio::spawn(async move {
        for i in 0..200 {
            let (version, text) = if i % 2 == 0 {
                ("v2", V2_WARNS)
            } else {
                ("v1", V1_DENIES)
            };
            if let Ok(s) = snapshot(version, text) {
                live.publish(s);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let delete = review("namespace-delete")?;
    let clients = (0..4).map(|_| {
        let (app, delete) = (app.clone(), delete.clone());
        tokio::spawn(async move {
            let mut seen = (0, 0);
            for _ in 0..100 {
                let (status, body) = app.admit(&delete).await?;
                ensure!(status == 200, "HTTP {status}: {body}");
                let response = &body["response"];
                match response["auditAnnotations"]["version"].as_str() {
                    Some("v1") => {
                        ensure!(response["allowed"] == false, "v1 denies: {response}");
                        ensure!(
                            response["status"]["message"]
                                .as_str()
                                .is_some_and(|m| m.contains("v1-keeps-namespaces")),
                            "{response}"
                        );
                        seen.0 += 1;
                    }
                    Some("v2") => {
                        ensure!(response["allowed"] == true, "v2 warns: {response}");
                        ensure!(
                            response["warnings"]
                                .to_string()
                                .contains("v2-notes-namespaces"),
                            "{response}"
                        );
                        seen.1 += 1;
                    }
                    other => anyhow::bail!("answered by no known version ({other:?}): {response}"),
                }
            }
            anyhow::Ok(seen)
        })
    });
    let mut total = (0, 0);
    for client in clients {
        let (a, b) = client.await??;
        total = (total.0 + a, total.1 + b);
    }
    swapper.await?;
    assert_eq!(total.0 + total.1, 400);
    assert!(
        total.0 > 0 && total.1 > 0,
        "both versions answered: {total:?}"
    );
    Ok(())
}

/// `policy simulate` on seeded traffic: a draft that would hold requests passing today exits 1 and
/// lists them with their counts; one that holds nothing new exits 0. Reviews given as files too.
#[tokio::test]
async fn policy_simulate_compares_a_draft_with_the_version_in_force_on_recorded_traffic(
) -> anyhow::Result<()> {
    use countersign::traffic::recorder::ShapeCount;
    use countersign::traffic::{redact::redacted_request, Shape};
    let db = TestDb::sqlite().await?;
    let data = tempfile::tempdir()?;
    // In force: only namespace deletions are denied.
    let versions = Versions::new(db.store.clone(), shared_signer());
    versions.save(V1_DENIES, "alice", "start").await?;
    let seed = |name: &str, count: i64| -> anyhow::Result<ShapeCount> {
        let request = countersign::admission::parse_review(&serde_json::to_vec(&review(name)?)?)?;
        Ok(ShapeCount {
            shape: Shape::of(&request),
            count,
            matched: false,
            example: Some(redacted_request(&request)),
        })
    };
    db.store
        .record_traffic(
            &[
                seed("configmap-update-large", 14)?,
                seed("namespace-delete", 2)?,
            ],
            clock::now(),
        )
        .await?;
    // The draft: ConfigMap updates need a step-up, and namespace deletions only warn.
    let draft = data.path().join("draft");
    std::fs::create_dir(&draft)?;
    std::fs::write(
        draft.join("a.yaml"),
        format!("{EXTRA_STEP_UP}---\n{V2_WARNS}"),
    )?;
    let d = draft.to_str().context("path")?;
    let (ok, out, err) = countersign(&[
        "policy",
        "simulate",
        d,
        "--against",
        &db.url,
        "--since",
        "7d",
    ])?;
    assert!(
        !ok,
        "a draft holding 14 requests that pass today must fail: {out}{err}"
    );
    assert!(out.contains("against v1: 16 requests"), "{out}");
    assert!(
        out.contains("allowed today, held by the draft: 14"),
        "{out}"
    );
    assert!(out.contains("UPDATE core/configmaps dev/"), "{out}");
    assert!(out.contains("held today, allowed by the draft: 2"), "{out}");
    assert!(out.contains("configmaps-step-up: 14 request(s)"), "{out}");

    // JSON, for scripts and the portal.
    let (_, out, _) = countersign(&["policy", "simulate", d, "--against", &db.url, "--json"])?;
    let report: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(report["newlyHeld"][0]["count"], 14);
    assert_eq!(report["newlyHeld"][0]["after"], "stepUp");

    // A draft that only loosens holds nothing new: exit 0.
    std::fs::write(draft.join("a.yaml"), V2_WARNS)?;
    let (ok, out, err) = countersign(&["policy", "simulate", d, "--against", &db.url])?;
    assert!(ok, "{out}{err}");
    assert!(out.contains("allowed today, held by the draft: 0"), "{out}");

    // Reviews given as a file, against guardrails in force given as files.
    let in_force = data.path().join("in-force.yaml");
    std::fs::write(&in_force, V2_WARNS)?;
    std::fs::write(draft.join("a.yaml"), V1_DENIES)?;
    let file = crate::support::fixture("reviews/namespace-delete.json");
    let (ok, out, _) = countersign(&[
        "policy",
        "simulate",
        d,
        "--against",
        file.to_str().context("path")?,
        "--in-force",
        in_force.to_str().context("path")?,
    ])?;
    assert!(!ok, "{out}");
    assert!(
        out.contains("DELETE core/namespaces") && out.contains("warn -> deny"),
        "{out}"
    );
    Ok(())
}

const EXTRA_STEP_UP: &str = "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata:\n  name: configmaps-step-up\nspec:\n  match:\n    operations: [UPDATE]\n    resources:\n      - apiGroups: [\"\"]\n        resources: [configmaps]\n  action:\n    type: stepUp\n";
