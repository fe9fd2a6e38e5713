//! Bad and unusual input: every body gets a clear answer and the server keeps serving.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{review, step_up_denial, TestApp};

/// POST and expect HTTP 400 with exactly `{"error": "..."}`; returns the message.
async fn refused(app: &TestApp, body: Vec<u8>) -> anyhow::Result<String> {
    let (status, json) = app.admit_bytes(body).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    let object = json
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>());
    assert_eq!(
        object,
        Some(vec!["error".to_owned()]),
        "400 body must be {{\"error\": ...}}: {json}"
    );
    Ok(json["error"].as_str().unwrap_or_default().to_owned())
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

async fn still_healthy(app: &TestApp) -> anyhow::Result<()> {
    assert_eq!(
        app.get("/healthz").await?,
        (StatusCode::OK, "ok".to_owned()),
        "server stopped answering"
    );
    Ok(())
}

#[tokio::test]
async fn malformed_envelopes_get_a_400_naming_the_problem() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let good = review("deployment-update")?;

    let message = refused(
        &app,
        br#"{"apiVersion": "admission.k8s.io/v1", "kind": "#.to_vec(),
    )
    .await?;
    assert!(
        message.starts_with("malformed AdmissionReview: "),
        "{message}"
    );
    assert!(refused(&app, Vec::new())
        .await?
        .starts_with("malformed AdmissionReview"));
    assert!(refused(&app, b"[1, 2, 3]".to_vec())
        .await?
        .starts_with("malformed AdmissionReview"));
    assert!(refused(&app, vec![0xff, 0xfe, b'{', 0x80])
        .await?
        .starts_with("malformed AdmissionReview"));

    let mut beta = good.clone();
    beta["apiVersion"] = json!("admission.k8s.io/v1beta1");
    assert_eq!(
        refused(&app, bytes(&beta)).await?,
        "unsupported apiVersion `admission.k8s.io/v1beta1`: expected admission.k8s.io/v1"
    );

    let mut pod = good.clone();
    pod["kind"] = json!("Pod");
    assert_eq!(
        refused(&app, bytes(&pod)).await?,
        "unsupported kind `Pod`: expected AdmissionReview"
    );

    let mut missing = good.clone();
    missing.as_object_mut().map(|o| o.remove("request"));
    assert_eq!(
        refused(&app, bytes(&missing)).await?,
        "AdmissionReview has no request"
    );
    let mut null = good.clone();
    null["request"] = Value::Null;
    assert_eq!(
        refused(&app, bytes(&null)).await?,
        "AdmissionReview has no request"
    );

    let mut patch = good.clone();
    patch["request"]["operation"] = json!("PATCH");
    let message = refused(&app, bytes(&patch)).await?;
    assert!(message.contains("request.operation"), "{message}");

    let mut no_uid = good.clone();
    no_uid["request"].as_object_mut().map(|o| o.remove("uid"));
    let message = refused(&app, bytes(&no_uid)).await?;
    assert!(message.contains("uid"), "{message}");
    let mut empty_uid = good.clone();
    empty_uid["request"]["uid"] = json!("");
    assert_eq!(
        refused(&app, bytes(&empty_uid)).await?,
        "malformed AdmissionReview: request.uid is empty"
    );

    let mut groups = good.clone();
    groups["request"]["userInfo"]["groups"] = json!("developers");
    let message = refused(&app, bytes(&groups)).await?;
    assert!(message.contains("request.userInfo.groups"), "{message}");

    // None of that was a review: nothing was challenged, and the server is fine.
    assert!(app
        .state
        .store
        .challenges_of("alice@example.com", 10)
        .await?
        .is_empty());
    still_healthy(&app).await
}

#[tokio::test]
async fn unknown_resources_are_allowed() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let widget = review("widget-create")?;
    let response = app.decide(&widget).await?;
    assert_eq!(
        response,
        json!({"uid": widget["request"]["uid"], "allowed": true})
    );
    Ok(())
}

#[tokio::test]
async fn huge_objects_are_answered() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let mut big = review("deployment-update")?;
    big["request"]["object"]["metadata"]["annotations"]["example.com/blob"] =
        json!("x".repeat(3 * 1024 * 1024));
    let body = bytes(&big);
    assert!(body.len() > 3 * 1024 * 1024);
    let (status, answer) = app.admit_bytes(body).await?;
    assert_eq!(status, StatusCode::OK);
    let (code, _) = step_up_denial(&answer["response"], "prod-workloads")?;
    let stored = app.state.store.challenge(&code).await?;
    assert!(stored.is_some(), "the big request's challenge is stored");

    // Larger than any review the API server can send: refused before parsing.
    let mut bigger = review("deployment-update")?;
    bigger["request"]["object"]["metadata"]["annotations"]["example.com/blob"] =
        json!("x".repeat(9 * 1024 * 1024));
    let response = app
        .client
        .post(format!("{}/k8s/admit", app.base))
        .header("content-type", "application/json")
        .body(bytes(&bigger))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    still_healthy(&app).await
}

#[tokio::test]
async fn deep_nesting_is_refused_cleanly() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let template = bytes(&{
        let mut r = review("deployment-update")?;
        r["request"]["object"]["spec"]["template"] = json!("__DEEP__");
        r
    });
    let template = String::from_utf8(template)?;
    let depth = 10_000;
    for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
        let deep = format!("{}0{}", open.repeat(depth), close.repeat(depth));
        let body = template.replace("\"__DEEP__\"", &deep);
        let message = refused(&app, body.into_bytes()).await?;
        assert!(
            message.starts_with("malformed AdmissionReview"),
            "{message}"
        );
        assert!(message.contains("recursion limit exceeded"), "{message}");
        still_healthy(&app).await?;
    }

    // Nesting within serde_json's limit goes all the way through the digest and the store.
    let deep = format!("{}0{}", "[".repeat(100), "]".repeat(100));
    let body = template.replace("\"__DEEP__\"", &deep);
    let (status, answer) = app.admit_bytes(body.into_bytes()).await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    step_up_denial(&answer["response"], "prod-workloads")?;
    still_healthy(&app).await
}
