//! Shared fixtures: test databases on both backends, the webhook served over real TLS, the review corpus.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use countersign::challenges::ChallengeCache;
use countersign::clock;
use countersign::cluster::LiveNamespaces;
use countersign::engine::{Engine, LiveGuardrails, NamespaceIndex, Snapshot};
use countersign::grants::{Evidence, Grant, GrantCache, GrantSigner};
use countersign::identity::mapping::IdentityMap;
use countersign::identity::passkeys::Passkeys;
use countersign::state::{AppState, Core, WebhookParts};
use countersign::store::AnyStore;
use countersign::webhook::decision_log::DecisionLog;
use countersign::webhook::metrics::Metrics;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection as _, Executor as _};
use tempfile::TempDir;
use url::Url;

/// Where PostgreSQL listens (no database name); override with `COUNTERSIGN_TEST_POSTGRES_URL`.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

/// The public URL the test state links to.
pub const PUBLIC_URL: &str = "http://localhost:3000";

/// Cluster name bound into digests and grants.
pub const CLUSTER: &str = "it-cluster";

/// `server/tests/...`
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(relative)
}

/// A review from `tests/reviews/NAME.json`.
pub fn review(name: &str) -> anyhow::Result<Value> {
    let path = fixture(&format!("reviews/{name}.json"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// One test per case and backend; PostgreSQL cases fail when it is unreachable (unless skipped by env).
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    let db = crate::support::TestDb::sqlite().await?;
                    super::$case(&db).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    let Some(db) = crate::support::TestDb::postgres().await? else { return Ok(()) };
                    super::$case(&db).await
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// A fresh database on one backend, removed when dropped.
pub struct TestDb {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The URL the store was opened with.
    pub url: String,
    /// The store (migrated).
    pub store: Arc<dyn AnyStore>,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite { _dir: TempDir },
    Postgres(PgDropGuard),
}

impl TestDb {
    /// SQLite on a fresh temp file.
    pub async fn sqlite() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("countersign.db").display());
        let store = countersign::store::connect(&url)
            .await
            .with_context(|| format!("opening {url}"))?;
        Ok(Self {
            backend: "sqlite",
            url,
            store,
            cleanup: Cleanup::Sqlite { _dir: dir },
        })
    }

    /// PostgreSQL on a freshly created database with a random name.
    ///
    /// Fails (with a clear message) when PostgreSQL cannot be reached, unless `COUNTERSIGN_SKIP_POSTGRES=1`,
    /// in which case it prints a note and returns `None`.
    pub async fn postgres() -> anyhow::Result<Option<Self>> {
        if std::env::var("COUNTERSIGN_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
            eprintln!(
                "note: COUNTERSIGN_SKIP_POSTGRES=1, skipping the PostgreSQL half of this test"
            );
            return Ok(None);
        }
        let server = std::env::var("COUNTERSIGN_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
        let server = server.trim_end_matches('/').to_owned();
        let admin_url = format!("{server}/postgres");
        let name = format!("cs_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = match tokio::time::timeout(
            Duration::from_secs(10),
            sqlx::PgConnection::connect(&admin_url),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => bail!(
                "PostgreSQL is not reachable at {admin_url}: {e}\n\
                 (start PostgreSQL there, point COUNTERSIGN_TEST_POSTGRES_URL elsewhere, \
                 or set COUNTERSIGN_SKIP_POSTGRES=1 to skip the PostgreSQL half)"
            ),
            Err(_) => bail!(
                "PostgreSQL at {admin_url} did not answer within 10s \
                 (set COUNTERSIGN_SKIP_POSTGRES=1 to skip the PostgreSQL half)"
            ),
        };
        admin
            .execute(format!("create database \"{name}\"").as_str())
            .await
            .with_context(|| format!("creating {name}"))?;
        admin.close().await.ok();
        // From here on the database is dropped again, whatever happens.
        let guard = PgDropGuard {
            admin_url,
            name: name.clone(),
        };
        let url = format!("{server}/{name}");
        let store = countersign::store::connect(&url)
            .await
            .with_context(|| format!("opening {url}"))?;
        Ok(Some(Self {
            backend: "postgres",
            url,
            store,
            cleanup: Cleanup::Postgres(guard),
        }))
    }

    /// Run raw SQL on the same database, bypassing the store (to tamper with rows).
    pub async fn execute(&self, sql: &str) -> anyhow::Result<u64> {
        let done = match self.backend {
            "sqlite" => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await?;
                let done = conn.execute(sql).await?;
                conn.close().await?;
                done.rows_affected()
            }
            _ => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                let done = conn.execute(sql).await?;
                conn.close().await?;
                done.rows_affected()
            }
        };
        Ok(done)
    }

    /// Switch off the append-only triggers on the audit tables, as an attacker with database
    /// admin rights (or the SQLite file) can, so a test can tamper with the chain.
    pub async fn allow_audit_tampering(&self) -> anyhow::Result<()> {
        let statements: &[&str] = match self.backend {
            "sqlite" => &[
                "drop trigger audit_events_no_update",
                "drop trigger audit_events_no_delete",
                "drop trigger audit_checkpoints_no_update",
                "drop trigger audit_checkpoints_no_delete",
            ],
            _ => &[
                "alter table audit_events disable trigger user",
                "alter table audit_checkpoints disable trigger user",
            ],
        };
        for sql in statements {
            self.execute(sql).await.with_context(|| sql.to_string())?;
        }
        Ok(())
    }

    /// Drop a PostgreSQL database now, terminating the store's connections (the store is "down" afterwards).
    pub async fn drop_postgres_now(&self) -> anyhow::Result<()> {
        let Cleanup::Postgres(guard) = &self.cleanup else {
            bail!("not a PostgreSQL database")
        };
        let mut admin = sqlx::PgConnection::connect(&guard.admin_url).await?;
        admin
            .execute(format!("drop database if exists \"{}\" with (force)", guard.name).as_str())
            .await?;
        admin.close().await.ok();
        Ok(())
    }
}

/// Drops the test database when the test ends, even when it panicked.
struct PgDropGuard {
    admin_url: String,
    name: String,
}

impl Drop for PgDropGuard {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; do the async work on a thread with its own.
        let outcome = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                admin
                    .execute(format!("drop database if exists \"{name}\" with (force)").as_str())
                    .await?;
                admin.close().await?;
                Ok(())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e:#}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// One grant signing key for every test app, as replicas sharing a database share one key file.
pub fn shared_signer() -> Arc<GrantSigner> {
    static SIGNER: std::sync::OnceLock<Arc<GrantSigner>> = std::sync::OnceLock::new();
    SIGNER
        .get_or_init(|| Arc::new(GrantSigner::generate()))
        .clone()
}

/// The webhook router over real TLS on 127.0.0.1, with a client that trusts only its private CA.
pub struct TestApp {
    /// Shared state (store, signer, ...), as the handlers see it.
    pub state: AppState,
    /// The webhook's own parts (decision log, recorded traffic, routing status).
    pub webhook: WebhookParts,
    /// `https://localhost:PORT`
    pub base: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// Client trusting the generated CA only, resolving `localhost` to `addr`.
    pub client: reqwest::Client,
    /// CA certificate (PEM).
    pub ca_pem: String,
    server: tokio::task::JoinHandle<()>,
    _tls_dir: TempDir,
    db: Option<TestDb>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The version the tests' guardrail snapshots carry.
pub const TEST_VERSION: &str = "test-v1";

/// These guardrails in force, as the webhook holds them.
pub fn in_force(guardrails: Vec<countersign::policy::Guardrail>) -> Arc<LiveGuardrails> {
    Arc::new(LiveGuardrails::new(Snapshot::new(guardrails, TEST_VERSION)))
}

/// Guardrails from `tests/policies/guardrails.yaml`.
pub fn engine() -> anyhow::Result<Engine> {
    let path = fixture("policies/guardrails.yaml");
    let text = std::fs::read_to_string(&path)?;
    Ok(Engine::new(countersign::policy::parse_documents(
        &path.display().to_string(),
        &text,
    )?))
}

/// Namespaces from `tests/fixtures/namespaces.yaml` (payments and checkout are `env: prod`).
/// The identity mapping the tests run with.
pub fn identities() -> anyhow::Result<IdentityMap> {
    Ok(IdentityMap::load(&fixture("fixtures/identities.yaml"))?)
}

pub fn namespaces() -> anyhow::Result<NamespaceIndex> {
    let text = std::fs::read_to_string(fixture("fixtures/namespaces.yaml"))?;
    let list: Value = serde_yaml::from_str(&text)?;
    let items = list["items"]
        .as_array()
        .context("namespaces.yaml has no items")?;
    Ok(NamespaceIndex::from_objects(items))
}

impl TestApp {
    /// The webhook on an SQLite store in a temp dir.
    pub async fn spawn() -> anyhow::Result<Self> {
        let db = TestDb::sqlite().await?;
        let store = db.store.clone();
        Self::spawn_with(store, Some(db)).await
    }

    /// The webhook on a given store (kept alive with `db`, if any).
    pub async fn spawn_with(store: Arc<dyn AnyStore>, db: Option<TestDb>) -> anyhow::Result<Self> {
        Self::spawn_configured(store, db, |_| {}, None).await
    }

    /// The webhook on a given store, with its state changed by `configure` first (guardrails,
    /// limits) and, with `client_ca`, requiring callers to present a certificate from that CA.
    pub async fn spawn_configured(
        store: Arc<dyn AnyStore>,
        db: Option<TestDb>,
        configure: impl FnOnce(&mut AppState),
        client_ca: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let public_url = Url::parse(PUBLIC_URL)?;
        let guardrails = in_force(engine()?.guardrails().to_vec());
        let namespaces = Arc::new(LiveNamespaces::fixed(namespaces()?));
        let (decisions, _writer) =
            DecisionLog::start(store.clone(), namespaces.clone(), CLUSTER.to_owned());
        let metrics = Arc::new(Metrics::default());
        let audit = Arc::new(countersign::audit::queue::AuditQueue::start(
            store.clone(),
            metrics.clone(),
        ));
        let mut state = AppState {
            core: Core {
                store,
                guardrails,
                namespaces,
                grants: Arc::new(GrantCache::new(CLUSTER)),
                challenges: Arc::new(ChallengeCache::new()),
                challenge_limits: Default::default(),
                signer: shared_signer(),
                public_url: public_url.clone(),
                cluster: CLUSTER.to_owned(),
                metrics,
                audit,
                identities: Arc::new(identities()?),
                events: countersign::elevation::EventBus::new(),
            },
            passkeys: Arc::new(Passkeys::new(&public_url)?),
            oidc: None,
            trusted_proxies: Arc::default(),
            guardrail_files: None,
        };
        configure(&mut state);

        let tls_dir = tempfile::tempdir()?;
        let tls = countersign::webhook::tls::load_or_create(
            tls_dir.path(),
            &["localhost".into(), "127.0.0.1".into()],
        )?;
        let ca_pem = tls
            .ca_pem
            .clone()
            .context("a self-made certificate comes with its CA")?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = countersign::webhook::tls::server_config(&tls, client_ca)?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let webhook = WebhookParts {
            decisions: Arc::new(decisions),
            traffic: Arc::new(countersign::traffic::TrafficRecorder::enabled()),
            routing: Arc::default(),
        };
        let served = countersign::webhook::WebhookState::new(&state.core, &webhook);
        let server = tokio::spawn(async move {
            if let Err(e) = countersign::webhook::serve_tls(listener, served, config).await {
                eprintln!("webhook server stopped: {e}");
            }
        });

        let client = client_trusting(Some(&ca_pem), addr)?;
        Ok(Self {
            state,
            webhook,
            base: format!("https://localhost:{}", addr.port()),
            addr,
            client,
            ca_pem,
            server,
            _tls_dir: tls_dir,
            db,
        })
    }

    /// The database behind the store, when the app owns one.
    pub fn db(&self) -> Option<&TestDb> {
        self.db.as_ref()
    }

    /// POST an AdmissionReview; returns the status and the JSON body.
    pub async fn admit(&self, review: &Value) -> anyhow::Result<(StatusCode, Value)> {
        self.admit_bytes(serde_json::to_vec(review)?).await
    }

    /// POST raw bytes to `/k8s/admit`; returns the status and the JSON body.
    pub async fn admit_bytes(&self, body: Vec<u8>) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .client
            .post(format!("{}/k8s/admit", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        let json = serde_json::from_str(&text)
            .with_context(|| format!("HTTP {status}, body is not JSON: {text:.200}"))?;
        Ok((status, json))
    }

    /// POST and expect HTTP 200 with an AdmissionReview response; returns `response`.
    pub async fn decide(&self, review: &Value) -> anyhow::Result<Value> {
        let (status, body) = self.admit(review).await?;
        ensure!(
            status == StatusCode::OK,
            "expected 200, got {status}: {body}"
        );
        ensure!(
            body["apiVersion"] == "admission.k8s.io/v1" && body["kind"] == "AdmissionReview",
            "not a review: {body}"
        );
        ensure!(
            body["response"]["uid"] == review["request"]["uid"],
            "uid not echoed: sent {}, got {}",
            review["request"]["uid"],
            body["response"]["uid"]
        );
        Ok(body["response"].clone())
    }

    /// GET a path; returns status and text.
    pub async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, String)> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await?;
        Ok((response.status(), response.text().await?))
    }

    /// Do what the portal does once the requester stepped up: the elevation layer confirms the
    /// challenge for its requester (the person behind the username) and issues the signed grant.
    pub async fn confirm(&self, code: &str) -> anyhow::Result<Grant> {
        let challenge = self
            .state
            .store
            .challenge(code)
            .await?
            .with_context(|| format!("no challenge {code}"))?;
        let now = clock::now();
        let requester = self
            .state
            .identities
            .person_of(&challenge.request.username)
            .to_owned();
        let actor = countersign::elevation::Actor {
            account: requester.clone(),
            groups: Vec::new(),
        };
        match self
            .state
            .elevation()
            .confirm(code, &actor, evidence(&requester, now), None, now)
            .await?
        {
            countersign::elevation::Confirmed::Granted(grant) => Ok(*grant),
            other => anyhow::bail!("challenge {code} was not granted: {other:?}"),
        }
    }
}

/// Store `grant` as the grant of its challenge, bypassing the elevation layer's checks (a unit of
/// work writes the rows directly): how tests plant grants the service itself would never issue.
pub async fn write_grant_rows(
    store: &dyn countersign::store::Store,
    grant: &Grant,
) -> anyhow::Result<()> {
    let mut challenge = store
        .challenge(&grant.challenge_code)
        .await?
        .context("no challenge for the grant")?;
    challenge.status = countersign::challenges::ChallengeStatus::Granted;
    challenge.grant_id = Some(grant.id.clone());
    let mut unit = store.begin().await?;
    unit.update_challenge(&challenge).await?;
    unit.insert_grant(grant).await?;
    unit.commit().await?;
    Ok(())
}

/// The evidence of a WebAuthn step-up by `account` at `now`, as the portal records it.
pub fn evidence(account: &str, now: i64) -> Evidence {
    Evidence {
        method: "webauthn".into(),
        account: account.to_owned(),
        credential_id: Some("dGVzdC1jcmVkZW50aWFs".into()),
        user_verified: true,
        auth_time: now,
        client_address: Some("127.0.0.1".into()),
        user_agent: Some("countersign-it".into()),
        acr: None,
        amr: None,
        aaguid: None,
        ..Default::default()
    }
}

/// A reqwest client for the webhook: rustls, no built-in roots, only `ca_pem` (if any), `localhost` → `addr`.
pub fn client_trusting(ca_pem: Option<&str>, addr: SocketAddr) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .resolve("localhost", addr)
        .no_proxy()
        .timeout(Duration::from_secs(60));
    if let Some(pem) = ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
    }
    Ok(builder.build()?)
}

/// A denial as the step-up path words it: checks the whole message and returns (code, "HH:MM UTC").
pub fn step_up_denial(response: &Value, guardrail: &str) -> anyhow::Result<(String, String)> {
    ensure!(
        response["allowed"] == false,
        "expected a denial: {response}"
    );
    ensure!(
        response["status"]["code"] == 403,
        "expected status.code 403: {response}"
    );
    let message = response["status"]["message"]
        .as_str()
        .context("no status.message")?;
    let prefix =
        format!("step-up required by guardrail \"{guardrail}\": confirm at {PUBLIC_URL}/c/");
    let rest = message
        .strip_prefix(&prefix)
        .with_context(|| format!("message does not start with `{prefix}`: {message}"))?;
    let code: String = rest.chars().take(8).collect();
    ensure!(
        countersign::challenges::is_code(&code),
        "`{code}` is not a challenge code in: {message}"
    );
    let tail = &rest[code.len()..];
    let expiry = tail
        .strip_prefix(", then retry (expires ")
        .and_then(|t| t.strip_suffix(')'))
        .with_context(|| {
            format!("message does not end with `, then retry (expires HH:MM UTC)`: {message}")
        })?;
    let b = expiry.as_bytes();
    ensure!(
        b.len() == 9
            && b[0].is_ascii_digit()
            && b[1].is_ascii_digit()
            && b[2] == b':'
            && b[3].is_ascii_digit()
            && b[4].is_ascii_digit()
            && &expiry[5..] == " UTC",
        "expiry `{expiry}` is not HH:MM UTC in: {message}"
    );
    Ok((code, expiry.to_owned()))
}

/// Wait (up to 5 s) until the audit log holds at least `n` events of each `(kind, n)`; returns the records.
///
/// The webhook appends audit events in the background, after it answered.
pub async fn wait_for_audit(
    store: &dyn AnyStore,
    kinds: &[(&str, usize)],
) -> anyhow::Result<Vec<countersign::audit::AuditRecord>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let records = store.audit_records(0, 1000).await?;
        if kinds
            .iter()
            .all(|(k, n)| records.iter().filter(|r| r.event.kind == *k).count() >= *n)
        {
            return Ok(records);
        }
        if tokio::time::Instant::now() > deadline {
            let seen: Vec<&str> = records.iter().map(|r| r.event.kind.as_str()).collect();
            bail!("audit log never held {kinds:?}; it has {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A decision at `at` whose hits name `hits` (the decision log's rows for the guardrails page and the storage tests).
pub(crate) fn decision(at: i64, hits: &[&str]) -> countersign::decisions::DecisionRecord {
    countersign::decisions::DecisionRecord {
        at,
        resource: "deployments.apps".into(),
        uid: format!("uid-{at}"),
        cluster: "test".into(),
        username: "alice".into(),
        operation: "UPDATE".into(),
        namespace: "payments".into(),
        name: "api".into(),
        dry_run: false,
        action: "stepUp".into(),
        outcome: "challenged".into(),
        hits: serde_json::Value::Array(
            hits.iter()
                .map(|h| serde_json::json!({"name": h, "action": "stepUp", "message": "m"}))
                .collect(),
        ),
        explanations: serde_json::json!([]),
        policy_version: "v1".into(),
    }
}
