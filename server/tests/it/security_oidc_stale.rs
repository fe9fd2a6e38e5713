//! Finding 13 (portal): after the identity provider answers a step-up with a sign-in older than the
//! guardrail's freshness (it ignored `max_age`), the next attempt sends `prompt=login`, so the
//! person is not sent round the same loop again. Driven against a small fake OpenID Provider.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use countersign::clock;
use countersign::identity::oidc::{Oidc, OidcArgs, OidcIdentity};
use countersign::identity::Role;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, AuthenticationContextClass, EmptyAdditionalClaims, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use reqwest::header::LOCATION;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tower_sessions::cookie::time::{Duration as CookieDuration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::SessionStore;

use crate::portal::{Browser, Portal, COOKIE_NAME};
use crate::support::PUBLIC_URL as PUBLIC;

const CLIENT: &str = "countersign";
const MFA: &str = "urn:countersign:mfa";

/// What the fake provider puts in its next ID token.
#[derive(Default)]
struct Plan {
    nonce: String,
    auth_time: i64,
}

#[derive(Clone)]
struct Op {
    issuer: String,
    key: Arc<CoreRsaPrivateSigningKey>,
    plan: Arc<Mutex<Plan>>,
}

async fn discovery(State(op): State<Op>) -> Json<Value> {
    let iss = &op.issuer;
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(State(op): State<Op>) -> Json<CoreJsonWebKeySet> {
    Json(CoreJsonWebKeySet::new(vec![op.key.as_verification_key()]))
}

async fn token(State(op): State<Op>) -> Json<Value> {
    let (nonce, auth_time) = {
        let plan = op.plan.lock().unwrap_or_else(|p| p.into_inner());
        (plan.nonce.clone(), plan.auth_time)
    };
    let now = chrono::Utc::now();
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(op.issuer.clone()).expect("issuer"),
        vec![Audience::new(CLIENT.into())],
        now + chrono::Duration::minutes(5),
        now,
        StandardClaims::new(SubjectIdentifier::new("jane".into())),
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(nonce)))
    .set_auth_time(chrono::DateTime::from_timestamp(auth_time, 0))
    .set_auth_context_ref(Some(AuthenticationContextClass::new(MFA.into())));
    let id_token = CoreIdToken::new(
        claims,
        op.key.as_ref(),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    )
    .expect("signing the ID token");
    Json(json!({
        "access_token": "fake-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
}

/// The fake provider on loopback; its issuer URL.
async fn start_op() -> anyhow::Result<Op> {
    let pem = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-op-key.pem"),
    )?;
    let pem = pem
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let key = CoreRsaPrivateSigningKey::from_pem(&pem, Some(JsonWebKeyId::new("k1".into())))
        .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let op = Op {
        issuer: format!("http://127.0.0.1:{}", listener.local_addr()?.port()),
        key: Arc::new(key),
        plan: Arc::default(),
    };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .with_state(op.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(op)
}

/// A session as an identity-provider sign-in an hour ago leaves it.
async fn signed_in_an_hour_ago(
    portal: &Portal,
    identity: &OidcIdentity,
) -> anyhow::Result<Browser> {
    let csrf = format!("csrf-{}", uuid::Uuid::new_v4().simple());
    let mut record = Record {
        id: Id::default(),
        data: [
            ("oidc_identity", serde_json::to_value(identity)?),
            ("login_time", json!(clock::now() - 3600)),
            ("auth_time", json!(clock::now() - 3600)),
            ("csrf_token", json!(csrf)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        expiry_date: OffsetDateTime::now_utc() + CookieDuration::minutes(30),
    };
    portal.sessions.create(&mut record).await?;
    Ok(Browser::new(format!("{COOKIE_NAME}={}", record.id), csrf))
}

fn query(location: &str, key: &str) -> Option<String> {
    url::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn finding_13_a_stale_step_up_makes_the_next_attempt_ask_for_a_new_login(
) -> anyhow::Result<()> {
    let op = start_op().await?;
    let args = OidcArgs {
        oidc_issuer: Some(op.issuer.clone()),
        oidc_client_id: Some(CLIENT.into()),
        oidc_client_secret: Some("fake-secret".to_owned().into()),
        oidc_scopes: vec![],
        oidc_mfa_acr: vec![MFA.into()],
        oidc_username_claim: "sub".into(),
        oidc_username_prefix: Some("-".into()),
        oidc_groups_claim: None,
        oidc_groups_prefix: String::new(),
        oidc_role_groups: vec![],
        oidc_default_role: "engineer".into(),
    };
    let config = args
        .config()
        .map_err(anyhow::Error::msg)?
        .context("OIDC off")?;
    let oidc = Oidc::new(config, &url::Url::parse(PUBLIC)?).map_err(anyhow::Error::msg)?;
    let portal = Portal::spawn_with(PUBLIC, |state| state.oidc = Some(Arc::new(oidc))).await?;
    let (_, code, requester) = portal.exec_challenge().await?;

    // The requester is signed in through the provider, with a second factor.
    let identity = OidcIdentity {
        issuer: op.issuer.clone(),
        subject: "jane".into(),
        username: requester.clone(),
        groups: vec![],
        display_name: "Jane".into(),
        auth_time: clock::now() - 3600,
        acr: Some(MFA.into()),
        amr: vec![],
        role: Role::Engineer,
    };
    let browser = signed_in_an_hour_ago(&portal, &identity).await?;
    let csrf = browser.csrf.clone();

    // First attempt: max_age, and no reason yet to insist on a login.
    let first = portal
        .form(
            "/auth/oidc/stepup",
            Some(&browser),
            &[("code", &code), ("csrf", &csrf)],
        )
        .await?;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let to_provider = first
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .context("no redirect")?
        .to_owned();
    assert!(
        to_provider.starts_with(&format!("{}/authorize", op.issuer)),
        "{to_provider}"
    );
    assert!(query(&to_provider, "max_age").is_some(), "{to_provider}");
    assert_eq!(query(&to_provider, "prompt"), None, "{to_provider}");

    // The provider ignores max_age and vouches for the hour-old sign-in.
    {
        let mut plan = op.plan.lock().unwrap_or_else(|p| p.into_inner());
        plan.nonce = query(&to_provider, "nonce").context("no nonce")?;
        plan.auth_time = clock::now() - 3600;
    }
    let state = query(&to_provider, "state").context("no state")?;
    let back = portal
        .get(
            &format!("/auth/oidc/callback?code=fake-code&state={state}"),
            Some(&browser),
        )
        .await?;
    assert_eq!(
        back.headers().get(LOCATION).and_then(|l| l.to_str().ok()),
        Some(format!("/c/{code}?oidc=stale").as_str()),
        "the stale answer was not refused as stale"
    );
    assert!(portal.grant_of(&code).await?.is_none());

    // The next attempt insists on a new login.
    let second = portal
        .form(
            "/auth/oidc/stepup",
            Some(&browser),
            &[("code", &code), ("csrf", &csrf)],
        )
        .await?;
    let again = second
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .context("no redirect")?;
    assert_eq!(
        query(again, "prompt").as_deref(),
        Some("login"),
        "after a stale answer the step-up did not ask for a new login: {again}"
    );
    Ok(())
}

/// An approver signed in through the provider decides only after it vouches for them again,
/// recently and with a second factor: a stale answer records nothing; a fresh one counts, with the
/// provider's acr in the evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_approver_decides_after_a_fresh_multi_factor_step_up() -> anyhow::Result<()> {
    use countersign::challenges::{ApprovalDecision, ChallengeStatus};
    use countersign::elevation::{Actor, Confirmed};

    let op = start_op().await?;
    let args = OidcArgs {
        oidc_issuer: Some(op.issuer.clone()),
        oidc_client_id: Some(CLIENT.into()),
        oidc_client_secret: Some("fake-secret".to_owned().into()),
        oidc_scopes: vec![],
        oidc_mfa_acr: vec![MFA.into()],
        oidc_username_claim: "sub".into(),
        oidc_username_prefix: Some("-".into()),
        oidc_groups_claim: None,
        oidc_groups_prefix: String::new(),
        oidc_role_groups: vec![],
        oidc_default_role: "approver".into(),
    };
    let config = args
        .config()
        .map_err(anyhow::Error::msg)?
        .context("OIDC off")?;
    let oidc = Oidc::new(config, &url::Url::parse(PUBLIC)?).map_err(anyhow::Error::msg)?;
    let path = crate::support::fixture("policies/approvals.yaml");
    let guardrails = countersign::policy::parse_documents(
        &path.display().to_string(),
        &std::fs::read_to_string(&path)?,
    )?;
    // Jane's groups come from the mapping (this provider sends none).
    let identities = countersign::identity::mapping::IdentityMap::parse(
        "apiVersion: countersign.dev/v1alpha1\nkind: IdentityMap\nspec:\n  people:\n    - account: alice\n      kubernetesUsernames: [\"alice@example.com\"]\n    - account: jane\n      groups: [payments-managers]\n",
        "inline",
    )?;
    let portal = Portal::spawn_with(PUBLIC, move |state| {
        state.oidc = Some(Arc::new(oidc));
        state.guardrails = crate::support::in_force(guardrails);
        state.identities = Arc::new(identities);
    })
    .await?;
    let (_, denial) = portal
        .app
        .admit(&crate::support::review("deployment-update")?)
        .await?;
    let message = denial["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    let code: String = message
        .split("/c/")
        .nth(1)
        .context("no link")?
        .chars()
        .take(8)
        .collect();
    let elevation = portal.state().elevation();
    let now = clock::now();
    let alice = Actor {
        account: "alice".into(),
        groups: vec![],
    };
    let asked = elevation
        .confirm(
            &code,
            &alice,
            crate::support::evidence("alice", now),
            Some("incident 4411 rollback"),
            now,
        )
        .await?;
    assert!(matches!(asked, Confirmed::Awaiting(_)));
    let bob = Actor {
        account: "bob".into(),
        groups: vec!["payments-oncall".into()],
    };
    elevation
        .decide(
            &code,
            &bob,
            ApprovalDecision::Approve,
            "",
            crate::support::evidence("bob", now),
            now,
        )
        .await?;

    let identity = OidcIdentity {
        issuer: op.issuer.clone(),
        subject: "jane".into(),
        username: "jane".into(),
        groups: vec![],
        display_name: "Jane".into(),
        auth_time: clock::now() - 3600,
        acr: Some(MFA.into()),
        amr: vec![],
        role: Role::Approver,
    };
    let browser = signed_in_an_hour_ago(&portal, &identity).await?;
    let csrf = browser.csrf.clone();

    let round_trip = |auth_time: i64| {
        let (portal, browser, op, code, csrf) =
            (&portal, &browser, &op, code.clone(), csrf.clone());
        async move {
            let asked = portal
                .form(
                    "/auth/oidc/decide",
                    Some(browser),
                    &[
                        ("code", code.as_str()),
                        ("decision", "approve"),
                        ("reason", "ok for the failover"),
                        ("csrf", csrf.as_str()),
                    ],
                )
                .await?;
            anyhow::ensure!(
                asked.status() == StatusCode::SEE_OTHER,
                "{}",
                asked.status()
            );
            let to_provider = asked
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .context("no redirect")?
                .to_owned();
            anyhow::ensure!(query(&to_provider, "max_age").is_some(), "{to_provider}");
            {
                let mut plan = op.plan.lock().unwrap_or_else(|p| p.into_inner());
                plan.nonce = query(&to_provider, "nonce").context("no nonce")?;
                plan.auth_time = auth_time;
            }
            let state = query(&to_provider, "state").context("no state")?;
            let back = portal
                .get(
                    &format!("/auth/oidc/callback?code=fake-code&state={state}"),
                    Some(browser),
                )
                .await?;
            Ok::<_, anyhow::Error>(
                back.headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    };
    // The provider vouches for an hour-old sign-in: refused, nothing counted.
    assert_eq!(
        round_trip(clock::now() - 3600).await?,
        format!("/approvals/{code}?oidc=stale")
    );
    assert_eq!(portal.state().store.approvals_of(&code).await?.len(), 1);
    // A fresh one counts, and meets the threshold.
    assert_eq!(
        round_trip(clock::now()).await?,
        format!("/approvals/{code}")
    );
    let challenge = portal
        .state()
        .store
        .challenge(&code)
        .await?
        .context("gone")?;
    assert_eq!(challenge.status, ChallengeStatus::Granted);
    let grant = portal
        .state()
        .store
        .grant(challenge.grant_id.as_deref().context("no grant")?)
        .await?
        .context("grant gone")?;
    let jane = grant
        .evidence
        .approvals
        .iter()
        .find(|a| a.approver == "jane")
        .context("jane missing")?;
    assert_eq!(jane.step_up.method, "oidc");
    assert_eq!(jane.step_up.acr.as_deref(), Some(MFA));
    assert_eq!(jane.groups, vec!["payments-managers"]);
    Ok(())
}
