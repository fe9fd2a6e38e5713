//! Issue 8, the webhook's findings: who may call it (1), what the digest binds (4, 5), what a grant
//! covers (7), grants the database cannot forge (8), and Secret values kept out of the store (11).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use countersign::clock;
use countersign::engine::LiveGuardrails;
use countersign::grants::{Grant, GrantClaims, GrantSigner, ADMISSION_AUDIENCE};
use countersign::policy::GrantScope;
use countersign::webhook::grant_cache;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{evidence, review, step_up_denial, TestApp, TestDb};

/// Inline guardrail YAML in force.
fn engine(yaml: &str) -> anyhow::Result<Arc<LiveGuardrails>> {
    Ok(crate::support::in_force(
        countersign::policy::parse_documents("inline.yaml", yaml)?,
    ))
}

/// The webhook on SQLite with these guardrails.
async fn app_with(yaml: &str) -> anyhow::Result<TestApp> {
    let db = TestDb::sqlite().await?;
    let engine = engine(yaml)?;
    TestApp::spawn_configured(db.store.clone(), Some(db), |s| s.guardrails = engine, None).await
}

fn admission(request: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

fn with_uid(review: &Value, uid: &str) -> Value {
    let mut r = review.clone();
    r["request"]["uid"] = json!(uid);
    r
}

fn allowed(response: &Value) -> bool {
    response["allowed"] == true
}

// ---- Finding 1: callers of the webhook -------------------------------------------------------

/// A CA and a client certificate it issued, as PEM (the CA's, and the client's cert + key).
fn client_ca(name: &str) -> anyhow::Result<(String, String)> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} CA"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = client.signed_by(&key, &ca, &ca_key)?;
    Ok((ca.pem(), format!("{}{}", cert.pem(), key.serialize_pem())))
}

fn client_with(app: &TestApp, identity: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(app.ca_pem.as_bytes())?)
        .resolve("localhost", app.addr)
        .no_proxy()
        .timeout(Duration::from_secs(20));
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes())?);
    }
    Ok(builder.build()?)
}

#[tokio::test]
async fn finding_1_with_a_client_ca_only_its_certificates_may_post_reviews() -> anyhow::Result<()> {
    let (ca_pem, apiserver) = client_ca("apiserver")?;
    let (_, stranger) = client_ca("stranger")?;
    let dir = tempfile::tempdir()?;
    let ca_path = dir.path().join("client-ca.pem");
    std::fs::write(&ca_path, ca_pem)?;
    let db = TestDb::sqlite().await?;
    let app = TestApp::spawn_configured(db.store.clone(), Some(db), |_| {}, Some(&ca_path)).await?;
    let body = review("deployment-update")?;
    let url = format!("{}/k8s/admit", app.base);

    for (who, identity) in [("no certificate", None), ("another CA", Some(&stranger))] {
        let outcome = client_with(&app, identity.map(String::as_str))?
            .post(&url)
            .json(&body)
            .send()
            .await;
        assert!(
            outcome.is_err(),
            "{who}: the handshake must fail, got {outcome:?}"
        );
    }
    let response = client_with(&app, Some(&apiserver))?
        .post(&url)
        .json(&body)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await?;
    step_up_denial(&answer["response"], "prod-workloads")?;
    // Nothing a refused caller sent reached the store: one challenge, from the API server.
    assert_eq!(
        app.state
            .store
            .challenges_of("alice@example.com", 10)
            .await?
            .len(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn finding_1_open_challenges_are_bounded_per_user_and_in_bytes() -> anyhow::Result<()> {
    let db = TestDb::sqlite().await?;
    let app = TestApp::spawn_configured(
        db.store.clone(),
        Some(db),
        |s| {
            s.challenge_limits.open_per_subject = 2;
            s.challenge_limits.bytes_total = 256 * 1024;
        },
        None,
    )
    .await?;
    let base = review("deployment-update")?;
    let attempt = |user: &str, replicas: i64, note: &str| {
        let mut r = with_uid(&base, &format!("{user}-{replicas}"));
        r["request"]["userInfo"]["username"] = json!(user);
        r["request"]["object"]["spec"]["replicas"] = json!(replicas);
        r["request"]["object"]["metadata"]["annotations"] = json!({ "note": note });
        r
    };
    step_up_denial(
        &app.decide(&attempt("mallory", 1, "")).await?,
        "prod-workloads",
    )?;
    step_up_denial(
        &app.decide(&attempt("mallory", 2, "")).await?,
        "prod-workloads",
    )?;
    let refused = app.decide(&attempt("mallory", 3, "")).await?;
    assert_eq!(refused["allowed"], false);
    let message = refused["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no new challenge can be opened")
            && message.contains("2 challenges are already open"),
        "{message}"
    );
    // The same request as an open challenge still gets its link back.
    step_up_denial(
        &app.decide(&attempt("mallory", 1, "")).await?,
        "prod-workloads",
    )?;
    // Another person is not affected by mallory's count, but everyone shares the byte total.
    step_up_denial(&app.decide(&attempt("bob", 1, "")).await?, "prod-workloads")?;
    let big = "x".repeat(300 * 1024);
    let refused = app.decide(&attempt("carol", 1, &big)).await?;
    assert!(
        refused["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("in total")),
        "{refused}"
    );
    assert_eq!(app.state.store.challenges_of("mallory", 10).await?.len(), 2);
    assert!(app.state.store.challenges_of("carol", 10).await?.is_empty());
    let (_, metrics) = app.get("/metrics").await?;
    assert!(
        metrics.contains("countersign_challenges_limited_total 2"),
        "{metrics}"
    );
    Ok(())
}

// ---- Finding 4: status and options are bound -------------------------------------------------

const CSR_APPROVAL: &str = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: csr-approval}
spec:
  match:
    operations: [UPDATE]
    resources: [{apiGroups: ["certificates.k8s.io"], resources: ["certificatesigningrequests/approval"]}]
  action:
    type: stepUp
    grant: {scope: request, ttl: 10m, uses: 0}
---
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: namespace-delete}
spec:
  match:
    operations: [DELETE]
    resources: [{apiGroups: [""], resources: ["namespaces"]}]
  action:
    type: stepUp
    grant: {scope: request, ttl: 10m, uses: 0}
"#;

/// `kubectl certificate approve|deny csr-1`: an UPDATE of the approval subresource whose only
/// change is in `status.conditions`.
fn csr_decision(condition: &str, uid: &str) -> Value {
    let csr = |conditions: Value| {
        json!({
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": "csr-1", "resourceVersion": "42"},
            "spec": {"request": "LS0tLS1CRUdJTi...", "signerName": "kubernetes.io/kube-apiserver-client",
                     "usages": ["client auth"], "username": "mallory"},
            "status": {"conditions": conditions}
        })
    };
    admission(json!({
        "uid": uid,
        "kind": {"group": "certificates.k8s.io", "version": "v1", "kind": "CertificateSigningRequest"},
        "resource": {"group": "certificates.k8s.io", "version": "v1", "resource": "certificatesigningrequests"},
        "subResource": "approval", "name": "csr-1", "operation": "UPDATE",
        "userInfo": {"username": "alice@example.com", "groups": ["system:authenticated"]},
        "object": csr(json!([{"type": condition, "status": "True", "reason": "KubectlApprove"}])),
        "oldObject": csr(json!([])),
        "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-certificate"}
    }))
}

#[tokio::test]
async fn finding_4_a_grant_for_one_status_change_does_not_admit_another() -> anyhow::Result<()> {
    let app = app_with(CSR_APPROVAL).await?;
    let (code, _) = step_up_denial(
        &app.decide(&csr_decision("Denied", "d1")).await?,
        "csr-approval",
    )?;
    let challenge = app.state.store.challenge(&code).await?.context("stored")?;
    assert_eq!(
        challenge
            .request
            .object
            .as_ref()
            .map(|o| o["status"].clone()),
        Some(
            json!({"conditions": [{"type": "Denied", "status": "True", "reason": "KubectlApprove"}]})
        ),
        "the status the request writes is kept for the page"
    );
    app.confirm(&code).await?;
    assert!(allowed(&app.decide(&csr_decision("Denied", "d2")).await?));
    // Approving instead of denying is another request: a new challenge.
    let (other, _) = step_up_denial(
        &app.decide(&csr_decision("Approved", "a1")).await?,
        "csr-approval",
    )?;
    assert_ne!(other, code);
    Ok(())
}

#[tokio::test]
async fn finding_4_delete_options_are_bound() -> anyhow::Result<()> {
    let app = app_with(CSR_APPROVAL).await?;
    let delete = |policy: &str, uid: &str, dry_run: bool| {
        let mut r = with_uid(&review("namespace-delete").expect("fixture"), uid);
        r["request"]["dryRun"] = json!(dry_run);
        let mut options = json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1",
                                 "propagationPolicy": policy});
        if dry_run {
            options["dryRun"] = json!(["All"]);
        }
        r["request"]["options"] = options;
        r
    };
    let (code, _) = step_up_denial(
        &app.decide(&delete("Orphan", "o1", false)).await?,
        "namespace-delete",
    )?;
    let challenge = app.state.store.challenge(&code).await?.context("stored")?;
    assert_eq!(
        challenge
            .request
            .options
            .as_ref()
            .map(|o| o["propagationPolicy"].clone()),
        Some(json!("Orphan")),
        "the options are kept for the page"
    );
    app.confirm(&code).await?;
    // The server-side dry run of the same delete is covered; a cascading delete is not.
    assert!(allowed(&app.decide(&delete("Orphan", "o2", true)).await?));
    assert!(allowed(&app.decide(&delete("Orphan", "o3", false)).await?));
    let (other, _) = step_up_denial(
        &app.decide(&delete("Background", "b1", false)).await?,
        "namespace-delete",
    )?;
    assert_ne!(other, code);
    Ok(())
}

// ---- Finding 5 and 7: generateName creates, and what an object grant covers ------------------

const JOBS: &str = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: prod-jobs}
spec:
  match:
    operations: [CREATE]
    resources: [{apiGroups: ["batch"], resources: ["jobs"]}]
    namespaces: {names: ["payments"]}
  action:
    type: stepUp
    grant: {scope: object, ttl: 10m, uses: 0}
"#;

/// `kubectl create -f job.yaml` with `generateName: migrate-`, as validating admission sees it:
/// the request names nothing, the object carries the name the API server generated.
fn generated_job(generated: &str, image: &str, uid: &str) -> Value {
    admission(json!({
        "uid": uid,
        "kind": {"group": "batch", "version": "v1", "kind": "Job"},
        "resource": {"group": "batch", "version": "v1", "resource": "jobs"},
        "name": "", "namespace": "payments", "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:ci:deployer", "groups": ["system:serviceaccounts"]},
        "object": {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"generateName": "migrate-", "name": generated, "namespace": "payments",
                         "uid": format!("uid-{generated}"), "creationTimestamp": "2026-12-01T16:00:00Z"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                     "containers": [{"name": "migrate", "image": image}]}}}
        },
        "oldObject": null,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    }))
}

#[tokio::test]
async fn finding_5_generate_name_retries_meet_the_same_challenge() -> anyhow::Result<()> {
    let app = app_with(JOBS).await?;
    let (code, _) = step_up_denial(
        &app.decide(&generated_job("migrate-x7k2p", "registry/app:1", "j1"))
            .await?,
        "prod-jobs",
    )?;
    let (again, _) = step_up_denial(
        &app.decide(&generated_job("migrate-q9z4m", "registry/app:1", "j2"))
            .await?,
        "prod-jobs",
    )?;
    assert_eq!(
        again, code,
        "a retry with another generated name is the same request"
    );
    app.confirm(&code).await?;
    assert!(allowed(
        &app.decide(&generated_job("migrate-h3v8w", "registry/app:1", "j3"))
            .await?
    ));
    Ok(())
}

#[tokio::test]
async fn finding_7_an_object_grant_for_an_unnamed_create_covers_that_request_only(
) -> anyhow::Result<()> {
    let app = app_with(JOBS).await?;
    let (code, _) = step_up_denial(
        &app.decide(&generated_job("migrate-x7k2p", "registry/app:1", "j1"))
            .await?,
        "prod-jobs",
    )?;
    let challenge = app.state.store.challenge(&code).await?.context("stored")?;
    assert_eq!(
        challenge.scope,
        GrantScope::Request,
        "object scope falls back"
    );
    app.confirm(&code).await?;
    // Another Job in the same namespace is not "the same object".
    step_up_denial(
        &app.decide(&generated_job("migrate-q9z4m", "registry/evil:1", "j2"))
            .await?,
        "prod-jobs",
    )?;
    Ok(())
}

#[tokio::test]
async fn finding_7_an_exec_grant_does_not_allow_attach_and_a_delete_grant_not_an_update(
) -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let exec = review("pod-exec")?;
    let (code, _) = step_up_denial(&app.decide(&exec).await?, "prod-exec")?;
    app.confirm(&code).await?;
    assert!(allowed(&app.decide(&with_uid(&exec, "again")).await?));
    let mut attach = with_uid(&exec, "attach");
    attach["request"]["subResource"] = json!("attach");
    attach["request"]["kind"]["kind"] = json!("PodAttachOptions");
    attach["request"]["object"] =
        json!({"kind": "PodAttachOptions", "apiVersion": "v1", "stdin": true, "container": "api"});
    let (attach_code, _) = step_up_denial(&app.decide(&attach).await?, "prod-exec")?;
    assert_ne!(attach_code, code);
    Ok(())
}

// ---- Finding 8: the database alone cannot make a grant ---------------------------------------

/// Store a grant for challenge `code` as someone with write access to the database would: signed
/// by `signer` (not necessarily the webhook's key), then changed by `edit`, never announced to the
/// webhook's cache.
async fn plant_grant(
    app: &TestApp,
    code: &str,
    signer: &GrantSigner,
    edit: impl FnOnce(&mut Grant),
) -> anyhow::Result<Grant> {
    let challenge = app.state.store.challenge(code).await?.context("stored")?;
    let now = clock::now();
    let mut grant =
        Grant::for_challenge(&challenge, evidence(&challenge.request.username, now), now);
    grant.token = signer.sign(&GrantClaims::of(&grant, &app.state.issuer()));
    edit(&mut grant);
    crate::support::write_grant_rows(app.state.store.as_ref(), &grant).await?;
    Ok(grant)
}

async fn rejected_count(app: &TestApp) -> anyhow::Result<String> {
    let (_, metrics) = app.get("/metrics").await?;
    Ok(metrics
        .lines()
        .find(|l| l.starts_with("countersign_grants_rejected_total "))
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test]
async fn finding_8_a_grant_signed_by_another_key_is_not_honoured() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let request = review("deployment-update")?;
    let (code, _) = step_up_denial(&app.decide(&request).await?, "prod-workloads")?;
    plant_grant(&app, &code, &GrantSigner::generate(), |_| {}).await?;
    // Past the open challenge's trust window in memory, so the store is asked.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let response = app.decide(&with_uid(&request, "retry")).await?;
    step_up_denial(&response, "prod-workloads").context("a forged grant admitted the retry")?;
    assert_eq!(
        rejected_count(&app).await?,
        "countersign_grants_rejected_total 1"
    );
    Ok(())
}

#[tokio::test]
async fn finding_8_a_grant_row_widened_in_the_database_is_not_honoured() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let request = review("deployment-update")?;
    let (code, _) = step_up_denial(&app.decide(&request).await?, "prod-workloads")?;
    // A genuine token, but the row says "the whole namespace, unlimited".
    let grant = plant_grant(&app, &code, &app.state.signer, |g| {
        g.scope = GrantScope::Namespace;
        g.uses_left = None;
    })
    .await?;
    let claims = app.state.signer.verify(&grant.token)?;
    assert_eq!(claims.aud, ADMISSION_AUDIENCE);
    assert_eq!(claims.scope, "request");

    // Both ways in: the periodic refresh, and the lookup on a cache miss.
    let refreshed = grant_cache::refresh(
        app.state.store.as_ref(),
        &app.state.grants,
        &app.state.signer,
        &app.state.issuer(),
        (&app.state.guardrails.load(), &app.state.identities),
    )
    .await?;
    assert_eq!(refreshed.held, 0);
    assert_eq!(refreshed.rejected.len(), 1);
    assert!(
        refreshed.rejected[0].1.to_string().contains("scope"),
        "{}",
        refreshed.rejected[0].1
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut other = with_uid(&request, "other-deployment");
    other["request"]["name"] = json!("payments-worker");
    other["request"]["object"]["metadata"]["name"] = json!("payments-worker");
    step_up_denial(&app.decide(&other).await?, "prod-workloads")
        .context("the widened row admitted another deployment")?;
    step_up_denial(
        &app.decide(&with_uid(&request, "retry")).await?,
        "prod-workloads",
    )
    .context("the edited row was honoured for the original request")?;
    Ok(())
}

#[tokio::test]
async fn finding_8_replicas_sharing_a_trusted_key_set_honour_each_others_grants(
) -> anyhow::Result<()> {
    let other_replica = GrantSigner::generate();
    let dir = tempfile::tempdir()?;
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, other_replica.jwks().to_string())?;
    let trusting = Arc::new(GrantSigner::generate().trust_jwks_file(&jwks)?);
    assert_eq!(
        trusting.jwks()["keys"].as_array().map(Vec::len),
        Some(2),
        "both keys are published"
    );
    let db = TestDb::sqlite().await?;
    let app = TestApp::spawn_configured(db.store.clone(), Some(db), |s| s.signer = trusting, None)
        .await?;
    let request = review("deployment-update")?;
    let (code, _) = step_up_denial(&app.decide(&request).await?, "prod-workloads")?;
    plant_grant(&app, &code, &other_replica, |_| {}).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(allowed(&app.decide(&with_uid(&request, "retry")).await?));
    Ok(())
}

// ---- Finding 11: Secret values never reach the store -----------------------------------------

const SECRETS: &str = r#"
apiVersion: countersign.dev/v1alpha1
kind: Guardrail
metadata: {name: prod-secrets}
spec:
  match:
    operations: [UPDATE]
    resources: [{apiGroups: [""], resources: ["secrets"]}]
  action:
    type: stepUp
    grant: {scope: request, ttl: 10m, uses: 1}
"#;

fn secret_update(password_b64: &str, uid: &str) -> Value {
    let applied = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "payments"},
        "data": {"password": password_b64}})
    .to_string();
    admission(json!({
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Secret"},
        "resource": {"group": "", "version": "v1", "resource": "secrets"},
        "name": "db", "namespace": "payments", "operation": "UPDATE",
        "userInfo": {"username": "alice@example.com"},
        "object": {"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "db", "namespace": "payments", "annotations": {
                       "kubectl.kubernetes.io/last-applied-configuration": applied}},
                   "data": {"password": password_b64, "user": "YWRtaW4="},
                   "stringData": {"token": "plain-text-token"}},
        "oldObject": {"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "db", "namespace": "payments"},
                      "data": {"password": "b2xkLXBhc3N3b3Jk", "user": "YWRtaW4="}}
    }))
}

#[tokio::test]
async fn finding_11_the_stored_challenge_holds_no_secret_value() -> anyhow::Result<()> {
    let app = app_with(SECRETS).await?;
    let (code, _) = step_up_denial(
        &app.decide(&secret_update("bmV3LXBhc3N3b3Jk", "s1")).await?,
        "prod-secrets",
    )?;
    let stored = app.state.store.challenge(&code).await?.context("stored")?;
    let body = serde_json::to_string(&stored)?;
    for value in [
        "bmV3LXBhc3N3b3Jk",
        "b2xkLXBhc3N3b3Jk",
        "YWRtaW4=",
        "plain-text-token",
    ] {
        assert!(
            !body.contains(value),
            "{value} is in the stored challenge: {body}"
        );
    }
    let object = stored.request.object.context("object kept")?;
    assert_eq!(object["data"]["password"], "(redacted, changed)");
    assert_eq!(object["data"]["user"], "(redacted, unchanged)");
    // The digest is the request's: another password is another challenge.
    let (other, _) = step_up_denial(
        &app.decide(&secret_update("YW5vdGhlcg==", "s2")).await?,
        "prod-secrets",
    )?;
    assert_ne!(other, code);
    Ok(())
}

/// Second review, finding 18: with a client CA on the webhook port, kubelet and Prometheus reach
/// health, readiness and metrics on the probe listener, and nothing else is served there.
#[tokio::test]
async fn review2_18_probes_and_metrics_have_a_listener_without_client_certificates(
) -> anyhow::Result<()> {
    use tower::ServiceExt as _;
    let app = TestApp::spawn().await?;
    let get = |path: &'static str| {
        let router = countersign::webhook::probe_router(countersign::webhook::WebhookState::new(
            &app.state.core,
            &app.webhook,
        ));
        async move {
            let response = router
                .oneshot(
                    axum::http::Request::get(path)
                        .body(axum::body::Body::empty())
                        .expect("request"),
                )
                .await
                .expect("infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
            anyhow::Ok((status, String::from_utf8_lossy(&body).into_owned()))
        }
    };
    assert_eq!(get("/healthz").await?, (StatusCode::OK, "ok".into()));
    assert_eq!(get("/readyz").await?.0, StatusCode::OK);
    let (status, metrics) = get("/metrics").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.contains("countersign_admission_reviews_total"));
    // What the README promises /metrics counts.
    for line in [
        "countersign_decisions_dropped_total 0",
        "countersign_admission_reviews_unmatched_total 0",
        "countersign_audit_dropped_total 0",
        "countersign_elevations_tampered_total 0",
    ] {
        assert!(metrics.contains(line), "no `{line}` in\n{metrics}");
    }
    assert_eq!(get("/k8s/admit").await?.0, StatusCode::NOT_FOUND);
    assert_eq!(
        get("/.well-known/jwks.json").await?.0,
        StatusCode::NOT_FOUND
    );
    Ok(())
}

/// Second review, finding 3: a grant signed by our own key is still checked against the guardrail
/// in force. A challenge row widened in the database before its grant was signed (a year's ttl, a
/// namespace scope, unlimited uses) yields a token the webhook refuses, and counts.
#[tokio::test]
async fn review2_3_a_signed_grant_wider_than_its_guardrail_is_not_honoured() -> anyhow::Result<()> {
    for (what, widen) in [
        (
            "ttl",
            (|g: &mut Grant| g.expires_at = g.created_at + 365 * 86_400) as fn(&mut Grant),
        ),
        ("uses", |g: &mut Grant| g.uses_left = None),
        ("scope", |g: &mut Grant| g.scope = GrantScope::Namespace),
    ] {
        let app = TestApp::spawn().await?;
        let request = review("deployment-update")?;
        let (code, _) = step_up_denial(&app.decide(&request).await?, "prod-workloads")?;
        let challenge = app.state.store.challenge(&code).await?.context("stored")?;
        let now = clock::now();
        let mut grant =
            Grant::for_challenge(&challenge, evidence(&challenge.request.username, now), now);
        widen(&mut grant);
        // Signed as the server would have signed what the edited row said.
        grant.token = app
            .state
            .signer
            .sign(&GrantClaims::of(&grant, &app.state.issuer()));
        crate::support::write_grant_rows(app.state.store.as_ref(), &grant).await?;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let response = app.decide(&with_uid(&request, "retry")).await?;
        step_up_denial(&response, "prod-workloads")
            .with_context(|| format!("a grant with a widened {what} admitted the retry"))?;
        assert_eq!(
            rejected_count(&app).await?,
            "countersign_grants_rejected_total 1",
            "{what}"
        );
    }
    Ok(())
}

/// Second review, finding 8: reviews that trickle their bodies hold neither the budget of small
/// reviews nor the large lane for long; a real 2 KiB review is answered while four of them wait,
/// well inside the API server's 5 s timeout, and the trickling ones are cut off (408).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_8_slow_reviews_do_not_starve_small_ones() -> anyhow::Result<()> {
    use futures_util::StreamExt as _;
    let app = TestApp::spawn().await?;
    let mut slow = Vec::new();
    for _ in 0..4 {
        // One byte a second, chunked: the webhook assumes the largest review.
        let drip = futures_util::stream::iter(0..10_000).then(|_| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, std::io::Error>(vec![b' '])
        });
        let request = app
            .client
            .post(format!("{}/k8s/admit", app.base))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(drip));
        slow.push(tokio::spawn(async move { request.send().await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let answer = app.decide(&review("deployment-update")?).await?;
    let waited = started.elapsed();
    step_up_denial(&answer, "prod-workloads")?;
    assert!(
        waited < Duration::from_secs(5),
        "a small review waited {waited:?} behind trickling ones"
    );
    // Each is cut off after the few seconds its size allows, not held to the 9 s deadline: a
    // 408, or the connection closed under a body still being sent.
    for task in slow {
        match tokio::time::timeout(Duration::from_secs(15), task).await?? {
            Ok(response) => assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT),
            Err(e) => assert!(!e.is_timeout(), "{e}"),
        }
    }
    Ok(())
}
