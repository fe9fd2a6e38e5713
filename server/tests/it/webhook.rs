//! The webhook as the API server sees it: real AdmissionReviews over TLS, step-up, grants, deny, warn.

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use countersign::audit::first_broken_link;
use countersign::challenges::ChallengeStatus;
use countersign::clock;
use countersign::grants::GrantSigner;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{
    client_trusting, review, step_up_denial, wait_for_audit, TestApp, CLUSTER, PUBLIC_URL,
    TEST_VERSION,
};

/// The same request as the API server would send it on a retry: new request uid, new volatile metadata.
fn retried(original: &Value, attempt: u32) -> Value {
    let mut r = original.clone();
    r["request"]["uid"] = json!(format!("retry-{attempt}-{}", uuid::Uuid::new_v4()));
    for side in ["object", "oldObject"] {
        // `get_mut`, not indexing: indexing would turn a null object into `{}`.
        if let Some(meta) = r["request"]
            .get_mut(side)
            .and_then(|o| o.get_mut("metadata"))
            .filter(|m| m.is_object())
        {
            meta["resourceVersion"] = json!(format!("{}", 4_900_000 + attempt));
            meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
            meta["generation"] = json!(100 + attempt);
            meta["creationTimestamp"] = json!("2025-03-05T00:00:00Z");
            meta["managedFields"] = json!([{"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1",
                "time": format!("2025-03-05T00:00:{:02}Z", attempt % 60), "fieldsType": "FieldsV1", "fieldsV1": {}}]);
        }
    }
    if r["request"]["object"]["status"].is_object() {
        r["request"]["object"]["status"]["observedGeneration"] = json!(100 + attempt);
    }
    r
}

/// JSON text with every object's keys in reverse order (serde_json would sort or keep them).
fn reversed_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.reverse();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), reversed_json(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(reversed_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        scalar => scalar.to_string(),
    }
}

#[tokio::test]
async fn step_up_without_grant_is_denied_with_a_stable_link() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let update = review("deployment-update")?;
    let response = app.decide(&update).await?;
    let (code, expiry) = step_up_denial(&response, "prod-workloads")?;
    assert_eq!(response["status"]["reason"], "Forbidden");
    assert_eq!(
        response["auditAnnotations"],
        json!({"version": TEST_VERSION}),
        "no grant: only the version that decided"
    );

    let challenge = app
        .state
        .store
        .challenge(&code)
        .await?
        .context("the link's challenge is not stored")?;
    assert_eq!(
        expiry,
        clock::hhmm_utc(challenge.expires_at),
        "message shows the challenge's expiry"
    );
    assert_eq!(challenge.status, ChallengeStatus::Pending);
    assert_eq!(challenge.guardrail, "prod-workloads");
    assert_eq!(challenge.cluster, CLUSTER);
    assert_eq!(challenge.request.username, "alice@example.com");
    assert_eq!(
        challenge.request.groups,
        vec!["developers", "payments-team", "system:authenticated"]
    );
    assert_eq!(challenge.request.resource_label(), "deployments.apps");
    assert_eq!(challenge.request.namespace, "payments");
    assert_eq!(
        challenge
            .request
            .object
            .as_ref()
            .map(|o| o["spec"]["replicas"].clone()),
        Some(json!(2))
    );
    assert_eq!(
        challenge
            .request
            .old_object
            .as_ref()
            .map(|o| o["spec"]["replicas"].clone()),
        Some(json!(3))
    );
    assert_eq!(
        challenge.message,
        "Workload changes in production need a fresh security-key touch."
    );

    // The identical retry (new request uid, new resourceVersion/uid/managedFields) finds the same challenge.
    for attempt in 1..=2 {
        let again = retried(&update, attempt);
        let response = app.decide(&again).await?;
        let (again_code, again_expiry) = step_up_denial(&response, "prod-workloads")?;
        assert_eq!(
            again_code, code,
            "retry {attempt} got a different challenge"
        );
        assert_eq!(
            again_expiry, expiry,
            "a retry does not extend the challenge"
        );
    }
    // Key order in the body does not matter either: the file as written, then every object's keys reversed.
    for body in [
        std::fs::read(crate::support::fixture("reviews/deployment-update.json"))?,
        reversed_json(&retried(&update, 3)).into_bytes(),
    ] {
        let (status, answer) = app.admit_bytes(body).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            step_up_denial(&answer["response"], "prod-workloads")?.0,
            code,
            "key order changed the digest"
        );
    }
    assert_eq!(
        app.state
            .store
            .challenges_of("alice@example.com", 10)
            .await?
            .len(),
        1
    );

    // A different change is a different request.
    let mut scaled = update.clone();
    scaled["request"]["object"]["spec"]["replicas"] = json!(1);
    let (scaled_code, _) = step_up_denial(&app.decide(&scaled).await?, "prod-workloads")?;
    assert_ne!(
        scaled_code, code,
        "a changed spec must get its own challenge"
    );

    // So is the same change by someone else.
    let mut bob = update.clone();
    bob["request"]["userInfo"]["username"] = json!("bob@example.com");
    let (bob_code, _) = step_up_denial(&app.decide(&bob).await?, "prod-workloads")?;
    assert_ne!(bob_code, code);
    assert_ne!(bob_code, scaled_code);

    let records = wait_for_audit(app.state.store.as_ref(), &[("challenge.created", 3)]).await?;
    let created: Vec<&str> = records
        .iter()
        .filter(|r| r.event.kind == "challenge.created")
        .map(|r| r.event.subject.as_str())
        .collect();
    assert_eq!(
        created.len(),
        3,
        "one audit event per new challenge: {created:?}"
    );
    assert!(created.contains(&code.as_str()));
    Ok(())
}

#[tokio::test]
async fn grant_admits_the_identical_retry_once() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let update = review("deployment-update")?;
    let (code, _) = step_up_denial(&app.decide(&update).await?, "prod-workloads")?;
    let grant = app.confirm(&code).await?;
    assert_eq!(grant.uses_left, Some(1));

    // The token the portal would hand out verifies against the published key.
    let claims = app.state.signer.verify(&grant.token)?;
    assert_eq!(claims.jti, grant.id);
    assert_eq!(claims.sub, "alice@example.com");
    assert_eq!(claims.iss, PUBLIC_URL);

    let response = app.decide(&retried(&update, 1)).await?;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("status").is_none(), "{response}");
    assert_eq!(
        response["auditAnnotations"],
        json!({"grant": grant.id, "guardrail": "prod-workloads", "version": TEST_VERSION})
    );
    assert_eq!(
        app.state
            .store
            .grant(&grant.id)
            .await?
            .and_then(|g| g.uses_left),
        Some(0)
    );

    // Single use: the third attempt is challenged again, with a new code.
    let response = app.decide(&retried(&update, 2)).await?;
    let (new_code, _) = step_up_denial(&response, "prod-workloads")?;
    assert_ne!(
        new_code, code,
        "a spent grant's challenge must not be handed out again"
    );
    assert_eq!(
        app.state.store.challenge(&code).await?.map(|c| c.status),
        Some(ChallengeStatus::Granted)
    );

    let records = wait_for_audit(
        app.state.store.as_ref(),
        &[("challenge.created", 2), ("grant.used", 1)],
    )
    .await?;
    let used = records
        .iter()
        .find(|r| r.event.kind == "grant.used")
        .context("no grant.used event")?;
    assert_eq!(used.event.subject, grant.id);
    assert_eq!(used.event.actor, "alice@example.com");
    assert_eq!(used.event.detail["guardrails"], json!(["prod-workloads"]));
    assert_eq!(first_broken_link(&records), None);
    Ok(())
}

#[tokio::test]
async fn grant_is_bound_to_user_and_request() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let update = review("deployment-update")?;
    let (code, _) = step_up_denial(&app.decide(&update).await?, "prod-workloads")?;
    let grant = app.confirm(&code).await?;

    let mut bob = retried(&update, 1);
    bob["request"]["userInfo"]["username"] = json!("bob@example.com");
    step_up_denial(&app.decide(&bob).await?, "prod-workloads")
        .context("alice's grant admitted bob")?;

    let mut other_change = retried(&update, 2);
    other_change["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("ghcr.io/example/payments-api:1.44.0-rc1");
    step_up_denial(&app.decide(&other_change).await?, "prod-workloads")
        .context("grant admitted another change")?;

    assert_eq!(
        app.state
            .store
            .grant(&grant.id)
            .await?
            .and_then(|g| g.uses_left),
        Some(1),
        "refusals spend nothing"
    );
    let response = app.decide(&retried(&update, 3)).await?;
    assert_eq!(response["allowed"], true, "{response}");
    Ok(())
}

#[tokio::test]
async fn dry_run_is_admitted_without_spending_the_grant() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let dry = review("deployment-update-dryrun")?;
    assert_eq!(dry["request"]["dryRun"], true);
    // Without a grant a dry run is challenged like the real thing, with the same link.
    let (dry_code, _) = step_up_denial(&app.decide(&dry).await?, "prod-workloads")?;
    let update = review("deployment-update")?;
    let (code, _) = step_up_denial(&app.decide(&update).await?, "prod-workloads")?;
    assert_eq!(dry_code, code, "dryRun is not part of the request digest");

    let grant = app.confirm(&code).await?;
    for attempt in 1..=2 {
        let response = app.decide(&retried(&dry, attempt)).await?;
        assert_eq!(response["allowed"], true, "dry run {attempt}: {response}");
        assert_eq!(response["auditAnnotations"]["grant"], json!(grant.id));
    }
    assert_eq!(
        app.state
            .store
            .grant(&grant.id)
            .await?
            .and_then(|g| g.uses_left),
        Some(1),
        "dry runs spent a use"
    );

    let response = app.decide(&retried(&update, 3)).await?;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(
        app.state
            .store
            .grant(&grant.id)
            .await?
            .and_then(|g| g.uses_left),
        Some(0)
    );
    step_up_denial(&app.decide(&retried(&dry, 4)).await?, "prod-workloads")
        .context("spent grant admitted a dry run")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_requests_share_one_challenge_and_one_use() -> anyhow::Result<()> {
    let app = std::sync::Arc::new(TestApp::spawn().await?);
    let update = review("deployment-update")?;

    let answers = race(&app, &update, 8).await?;
    let codes: std::collections::HashSet<String> = answers
        .iter()
        .map(|r| step_up_denial(r, "prod-workloads").map(|(c, _)| c))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        codes.len(),
        1,
        "concurrent identical requests got several challenges: {codes:?}"
    );
    let code = codes.into_iter().next().context("no code")?;

    let grant = app.confirm(&code).await?;
    let answers = race(&app, &update, 8).await?;
    let admitted = answers.iter().filter(|r| r["allowed"] == true).count();
    assert_eq!(
        admitted, 1,
        "a single-use grant admitted {admitted} concurrent retries"
    );
    let denied: std::collections::HashSet<String> = answers
        .iter()
        .filter(|r| r["allowed"] == false)
        .map(|r| step_up_denial(r, "prod-workloads").map(|(c, _)| c))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        denied.len(),
        1,
        "the losers must share one new challenge: {denied:?}"
    );
    assert!(!denied.contains(&code));
    assert_eq!(
        app.state
            .store
            .grant(&grant.id)
            .await?
            .and_then(|g| g.uses_left),
        Some(0)
    );
    Ok(())
}

async fn race(
    app: &std::sync::Arc<TestApp>,
    original: &Value,
    n: u32,
) -> anyhow::Result<Vec<Value>> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let app = app.clone();
        let r = retried(original, 1000 + i);
        tasks.push(tokio::spawn(async move { app.decide(&r).await }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await??);
    }
    Ok(out)
}

#[tokio::test]
async fn exec_create_and_namespace_delete_are_challenged() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;

    // kubectl exec into a payments pod (CONNECT pods/exec with PodExecOptions); its grant covers the pod.
    let exec = review("pod-exec")?;
    let (code, _) = step_up_denial(&app.decide(&exec).await?, "prod-exec")?;
    let challenge = app
        .state
        .store
        .challenge(&code)
        .await?
        .context("exec challenge not stored")?;
    assert_eq!(challenge.request.operation, "CONNECT");
    assert_eq!(challenge.request.resource_label(), "pods/exec");
    assert_eq!(challenge.request.kind, "PodExecOptions");
    assert_eq!(
        challenge
            .request
            .object
            .as_ref()
            .map(|o| o["command"].clone()),
        Some(json!(["/bin/sh"]))
    );
    let grant = app.confirm(&code).await?;
    assert_eq!(
        grant.uses_left, None,
        "`uses: 0` is unlimited within the ttl"
    );
    let mut other_shell = exec.clone();
    other_shell["request"]["object"]["command"] = json!(["bash", "-c", "env"]);
    for attempt in 0..3 {
        let mut r = other_shell.clone();
        r["request"]["uid"] = json!(format!("exec-{attempt}"));
        let response = app.decide(&r).await?;
        assert_eq!(
            response["allowed"], true,
            "object-scoped grant, attempt {attempt}: {response}"
        );
        assert_eq!(response["auditAnnotations"]["guardrail"], "prod-exec");
    }
    let mut other_pod = exec.clone();
    other_pod["request"]["name"] = json!("payments-worker-0");
    step_up_denial(&app.decide(&other_pod).await?, "prod-exec")
        .context("object grant admitted another pod")?;

    // CREATE in a namespace that is guarded by label (checkout has env=prod), not by name.
    let create = review("deployment-create")?;
    let (create_code, _) = step_up_denial(&app.decide(&create).await?, "prod-workloads")?;
    let (again, _) = step_up_denial(&app.decide(&retried(&create, 1)).await?, "prod-workloads")?;
    assert_eq!(again, create_code);
    // The same CREATE in staging is not guarded at all.
    let mut staging = create.clone();
    staging["request"]["namespace"] = json!("staging");
    staging["request"]["object"]["metadata"]["namespace"] = json!("staging");
    let response = app.decide(&staging).await?;
    assert_eq!(
        response,
        json!({"uid": staging["request"]["uid"], "allowed": true})
    );
    // A namespace the webhook has no labels for fails closed.
    let mut unknown = staging.clone();
    unknown["request"]["namespace"] = json!("brand-new");
    step_up_denial(&app.decide(&unknown).await?, "prod-workloads")
        .context("unknown namespace admitted")?;

    // DELETE of a prod namespace: no object, the digest comes from oldObject.
    let delete = review("namespace-delete")?;
    let (delete_code, _) = step_up_denial(&app.decide(&delete).await?, "protect-prod-namespaces")?;
    let (again, _) = step_up_denial(
        &app.decide(&retried(&delete, 7)).await?,
        "protect-prod-namespaces",
    )?;
    assert_eq!(again, delete_code);
    let mut relabelled = delete.clone();
    relabelled["request"]["oldObject"]["metadata"]["labels"]["team"] = json!("platform");
    let (other, _) = step_up_denial(&app.decide(&relabelled).await?, "protect-prod-namespaces")?;
    assert_ne!(
        other, delete_code,
        "a different namespace object is a different request"
    );
    Ok(())
}

#[tokio::test]
async fn deny_and_warn_guardrails() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;

    let binding = review("clusterrolebinding-create")?;
    let response = app.decide(&binding).await?;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        response["status"]["message"],
        "denied by guardrail \"no-cluster-admin-bindings\": \
         cluster-wide bindings (cluster-admin above all) are managed by the platform team through Git."
    );
    // Deny needs no store: no challenge is made.
    assert!(app
        .state
        .store
        .challenges_of("mallory@example.com", 10)
        .await?
        .is_empty());
    // system:masters is excluded from that guardrail.
    let mut admin = binding.clone();
    admin["request"]["userInfo"]["groups"] = json!(["system:masters", "system:authenticated"]);
    assert_eq!(app.decide(&admin).await?["allowed"], true);

    let secret = review("secret-update-ci")?;
    let response = app.decide(&secret).await?;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("status").is_none());
    assert_eq!(
        response["warnings"],
        json!([
            "guardrail \"ci-secrets\": CI changed a Secret; rotate it through Vault instead.",
            "guardrail \"secrets-lockdown\" (dry run) would deny: Secrets in staging are about to become read-only."
        ])
    );
    // Another user's update of the same secret only gets the dry-run note.
    let mut human = secret.clone();
    human["request"]["userInfo"] =
        json!({"username": "alice@example.com", "groups": ["developers"]});
    let response = app.decide(&human).await?;
    assert_eq!(
        response["warnings"].as_array().map(Vec::len),
        Some(1),
        "{response}"
    );
    Ok(())
}

#[tokio::test]
async fn jwks_health_ready_and_metrics() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;

    let response = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.base))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let jwks: Value = response.json().await?;
    let keys = jwks["keys"].as_array().context("no keys array")?;
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["kid"], app.state.signer.kid());
    assert_ne!(
        key["kid"],
        GrantSigner::generate().kid(),
        "kid is derived from the key"
    );
    let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().context("no x")?)?;
    assert_eq!(x.len(), 32, "an Ed25519 public key is 32 bytes");
    assert!(
        key.get("d").is_none(),
        "the private key must never be published"
    );

    assert_eq!(
        app.get("/healthz").await?,
        (StatusCode::OK, "ok".to_owned())
    );
    assert_eq!(
        app.get("/readyz").await?,
        (StatusCode::OK, "ready".to_owned())
    );

    // One review of each outcome, then the counters.
    app.decide(&review("widget-create")?).await?;
    app.decide(&review("clusterrolebinding-create")?).await?;
    let (code, _) = step_up_denial(
        &app.decide(&review("deployment-update")?).await?,
        "prod-workloads",
    )?;
    let (status, _) = app.admit_bytes(b"{".to_vec()).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, metrics) = app.get("/metrics").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains("# TYPE countersign_admission_reviews_total counter"),
        "{metrics}"
    );
    for line in [
        "countersign_admission_reviews_total{outcome=\"allowed\"} 1",
        "countersign_admission_reviews_total{outcome=\"denied\"} 1",
        "countersign_admission_reviews_total{outcome=\"challenged\"} 1",
        "countersign_admission_reviews_total{outcome=\"granted\"} 0",
        "countersign_admission_reviews_total{outcome=\"bad_request\"} 1",
        "countersign_store_failures_total 0",
        "countersign_guardrails 6",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing `{line}` in\n{metrics}"
        );
    }

    // Grant tokens name the published key.
    let grant = app.confirm(&code).await?;
    let header = grant.token.split('.').next().context("empty token")?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header)?)?;
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], key["kid"]);
    Ok(())
}

#[tokio::test]
async fn tls_is_verified_against_the_generated_ca() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    // Without the CA the handshake fails; with it, both names in the certificate work.
    let stranger = client_trusting(None, app.addr)?;
    let err = stranger.get(format!("{}/healthz", app.base)).send().await;
    assert!(err.is_err(), "a client without the CA connected");

    let other_ca = tempfile::tempdir()?;
    let other = countersign::webhook::tls::load_or_create(other_ca.path(), &["localhost".into()])?;
    let wrong = client_trusting(other.ca_pem.as_deref(), app.addr)?;
    assert!(
        wrong
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .is_err(),
        "another CA was accepted"
    );

    let by_ip = client_trusting(Some(&app.ca_pem), app.addr)?;
    let response = by_ip
        .get(format!("https://127.0.0.1:{}/healthz", app.addr.port()))
        .send()
        .await?;
    assert_eq!(response.text().await?, "ok");
    Ok(())
}

#[tokio::test]
async fn matched_decisions_are_logged_with_every_guardrails_explanation() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let update = review("deployment-update")?;
    step_up_denial(&app.decide(&update).await?, "prod-workloads")?;
    // An unguarded review leaves no record.
    app.decide(&review("widget-create")?).await?;

    let mut logged = Vec::new();
    for _ in 0..100 {
        logged = app.state.store.recent_decisions(10).await?;
        if !logged.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(logged.len(), 1, "{logged:?}");
    let record = &logged[0];
    assert_eq!(
        record.uid,
        update["request"]["uid"].as_str().context("uid")?
    );
    assert_eq!(record.username, "alice@example.com");
    assert_eq!(record.resource, "deployments.apps");
    assert_eq!(
        (record.action.as_str(), record.outcome.as_str()),
        ("stepUp", "challenged")
    );
    assert_eq!(record.hits[0]["name"], "prod-workloads");
    let explanations = record.explanations.as_array().context("explanations")?;
    assert_eq!(
        explanations.len(),
        app.state.guardrails.load().guardrails().len()
    );
    let matched: Vec<&str> = explanations
        .iter()
        .filter(|e| e["matched"] == true)
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(matched.contains(&"prod-workloads"), "{explanations:?}");
    // Every guardrail that did not match says which clause failed.
    assert!(explanations
        .iter()
        .filter(|e| e["matched"] == false)
        .all(|e| e["failed"].is_string() && e["reason"].is_string()));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(app.state.store.recent_decisions(10).await?.len(), 1);
    Ok(())
}
