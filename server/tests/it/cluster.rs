//! Namespace labels from a cluster: the reflector against kube's own test double (a `tower_test` mock
//! service behind a real `kube::Client`) answering with Namespace list and watch JSON as the API
//! server sends it.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use countersign::cluster::{reflect_namespaces, LiveNamespaces};
use countersign::engine::{NamespaceIndex, NamespaceLabels};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};
use tower_test::mock;

use crate::support::{review, step_up_denial, TestApp};

type Handle = mock::Handle<Request<Body>, Response<Body>>;

/// A Namespace as `PartialObjectMetadata`, carrying the bulk the reflector must drop.
fn namespace(name: &str, labels: Value, resource_version: &str) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "resourceVersion": resource_version,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": labels,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x".repeat(2048)},
            "managedFields": [{
                "manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {}}}
            }]
        }
    })
}

/// Answer the next request, checking it is a Namespace list (`watch: false`) or watch (`true`).
async fn answer(
    handle: &mut std::pin::Pin<&mut Handle>,
    watch: bool,
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let (request, send) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .context("the reflector sent no request")?
        .context("the client went away")?;
    let uri = request.uri().to_string();
    ensure!(request.method() == http::Method::GET, "{uri}");
    ensure!(
        uri.starts_with("/api/v1/namespaces?"),
        "not a cluster-wide Namespace call: {uri}"
    );
    ensure!(
        uri.contains("watch=true") == watch,
        "expected watch={watch}: {uri}"
    );
    let accept = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(
        accept.contains("as=PartialObjectMetadata"),
        "whole Namespace objects requested (Accept: {accept})"
    );
    send.send_response(
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(body))?,
    );
    Ok(())
}

fn watch_events(events: &[(&str, Value)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, object) in events {
        body.extend(
            json!({"type": kind, "object": object})
                .to_string()
                .into_bytes(),
        );
        body.push(b'\n');
    }
    body
}

fn label(index: &NamespaceIndex, ns: &str, key: &str) -> Option<String> {
    index.labels(ns).and_then(|l| l.get(key).cloned())
}

/// Wait (up to 5 s) until `ok` holds for the published index.
async fn until(
    live: &LiveNamespaces,
    what: &str,
    ok: impl Fn(&NamespaceIndex) -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if ok(&live.load()) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "never saw {what}; index has {} namespaces",
                live.load().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn reflector_keeps_namespace_labels_current() -> anyhow::Result<()> {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let live = Arc::new(LiveNamespaces::awaiting_sync());
    let reflector = tokio::spawn(reflect_namespaces(client, live.clone()));
    let mut handle = pin!(handle);

    answer(
        &mut handle,
        false,
        serde_json::to_vec(&json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadataList",
            "metadata": {"resourceVersion": "100"},
            "items": [
                namespace("payments", json!({"env": "prod", "team": "payments"}), "90"),
                namespace("dev", json!({}), "91"),
            ]
        }))?,
    )
    .await?;
    until(&live, "the initial list", |index| {
        index.len() == 2 && label(index, "payments", "env").as_deref() == Some("prod")
    })
    .await?;
    assert!(live.is_synced());
    assert_eq!(
        live.load().labels("payments").map(|l| l.len()),
        Some(2),
        "labels only, nothing else of the object"
    );

    answer(
        &mut handle,
        true,
        watch_events(&[
            ("MODIFIED", namespace("dev", json!({"env": "prod"}), "101")),
            (
                "ADDED",
                namespace("checkout", json!({"env": "prod"}), "102"),
            ),
            (
                "DELETED",
                namespace("payments", json!({"env": "prod"}), "103"),
            ),
        ]),
    )
    .await?;
    until(&live, "the watched changes", |index| {
        index.len() == 2
            && label(index, "dev", "env").as_deref() == Some("prod")
            && label(index, "checkout", "env").as_deref() == Some("prod")
            && index.labels("payments").is_none()
    })
    .await?;

    reflector.abort();
    Ok(())
}

#[tokio::test]
async fn watched_labels_reach_the_webhook() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    // staging carries no prod label in the fixtures: this CREATE is not guarded.
    let mut create = review("deployment-create")?;
    create["request"]["namespace"] = json!("staging");
    create["request"]["object"]["metadata"]["namespace"] = json!("staging");
    assert_eq!(app.decide(&create).await?["allowed"], true);

    // The cluster says staging is now production.
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let reflector = tokio::spawn(reflect_namespaces(
        kube::Client::new(service, "default"),
        app.state.namespaces.clone(),
    ));
    let mut handle = pin!(handle);
    answer(
        &mut handle,
        false,
        serde_json::to_vec(&json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadataList",
            "metadata": {"resourceVersion": "7"},
            "items": [namespace("staging", json!({"env": "prod"}), "5")]
        }))?,
    )
    .await?;
    until(&app.state.namespaces, "staging as prod", |index| {
        label(index, "staging", "env").as_deref() == Some("prod")
    })
    .await?;
    let mut retry = create.clone();
    retry["request"]["uid"] = json!("staging-after-relabel");
    step_up_denial(&app.decide(&retry).await?, "prod-workloads")
        .context("a label from the cluster did not reach the selector")?;
    reflector.abort();
    Ok(())
}

/// Issue 17, the cluster follows: guardrails reloaded to need more than the installed
/// ValidatingWebhookConfiguration sends are reported (readiness, metrics); with
/// `--manage-webhook-config` the regenerated configuration is applied, keeping the installed
/// client and CA bundle. Against kube's test double answering as the API server does.
#[tokio::test]
async fn a_configuration_that_misses_routes_is_reported_and_applied_when_managed(
) -> anyhow::Result<()> {
    use countersign::engine::{LiveGuardrails, Snapshot};
    use countersign::guardrails::routing::RoutingStatus;
    use countersign::policy::webhook_config::{generate, WebhookOptions};

    let library =
        countersign::policy::load_path(&crate::support::fixture("../../policies/library"))?;
    let exec_only: Vec<_> = library
        .iter()
        .filter(|g| g.name.as_str() == "prod-exec")
        .cloned()
        .collect();
    let options = WebhookOptions::new(Vec::new());
    let mut installed = serde_json::to_value(generate(&exec_only, &options)?.config)?;
    let client_config =
        json!({"url": "https://countersign.example:8443/k8s/admit", "caBundle": "Q0EgYnVuZGxl"});
    for webhook in installed["webhooks"].as_array_mut().context("webhooks")? {
        webhook["clientConfig"] = client_config.clone();
    }
    installed["metadata"]["resourceVersion"] = json!("7");
    let path =
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/countersign.dev";

    for manage in [false, true] {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let live = Arc::new(LiveGuardrails::new(Snapshot::new(library.clone(), "v2")));
        let status = Arc::new(RoutingStatus::default());
        let task = tokio::spawn(countersign::cluster::keep_routing(
            client,
            live,
            status.clone(),
            options.clone(),
            manage,
        ));
        let mut handle = pin!(handle);
        let (request, send) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
            .await?
            .context("no request")?;
        ensure!(request.method() == http::Method::GET, "{}", request.uri());
        ensure!(request.uri().path() == path, "{}", request.uri());
        send.send_response(
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&installed)?))?,
        );
        if manage {
            let (request, send) =
                tokio::time::timeout(Duration::from_secs(10), handle.next_request())
                    .await?
                    .context("no apply")?;
            ensure!(request.method() == http::Method::PATCH, "{}", request.uri());
            let query = request.uri().query().unwrap_or_default().to_owned();
            ensure!(
                query.contains("fieldManager=countersign") && query.contains("force=true"),
                "{query}"
            );
            ensure!(
                request.headers()[http::header::CONTENT_TYPE] == "application/apply-patch+yaml",
                "{:?}",
                request.headers()
            );
            let body = request.into_body().collect_bytes().await?;
            let applied: Value = serde_json::from_slice(&body)?;
            assert_eq!(applied["kind"], "ValidatingWebhookConfiguration");
            let text = applied.to_string();
            assert!(
                text.contains("\"namespaces\""),
                "the missing routes are in: {text}"
            );
            for webhook in applied["webhooks"].as_array().context("webhooks")? {
                assert_eq!(
                    webhook["clientConfig"], client_config,
                    "the installed client is kept"
                );
            }
            send.send_response(
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_vec()))?,
            );
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while !status
                .render()
                .contains("countersign_webhook_config_applied_total 1\n")
            {
                ensure!(tokio::time::Instant::now() < deadline, "never applied");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(status.problem().is_none());
        } else {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while status.problem().is_none() {
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the gap was not reported"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let why = status.problem().context("problem")?;
            assert!(
                why.contains("does not send") && why.contains("DELETE core/namespaces"),
                "{why}"
            );
            assert!(!status
                .render()
                .contains("countersign_webhook_config_unrouted 0\n"));
        }
        task.abort();
    }
    Ok(())
}
