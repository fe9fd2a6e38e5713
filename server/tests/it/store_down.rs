//! The store is down: step-up requests are refused with a clear reason, everything else still decides.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use countersign::audit::{AuditEvent, AuditRecord};
use countersign::challenges::{ApprovalRecord, Challenge};
use countersign::grants::{Grant, LiveGrant};
use countersign::identity::setup::Invitation;
use countersign::identity::{Credential, Role, User};
use countersign::store::{
    AccountStore, AnyStore, AuditStore, DecisionStore, ElevationStore, GuardrailStore,
    SessionBackend, Store, StoreError, TrafficStore, UnitOfWork,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{review, step_up_denial, TestApp, TestDb};

/// A store whose every call fails (or never returns).
struct BrokenStore {
    hang: bool,
    sessions: SessionBackend,
}

impl BrokenStore {
    fn new(hang: bool) -> anyhow::Result<Self> {
        let pool = sqlx::SqlitePool::connect_lazy("sqlite::memory:")?;
        Ok(Self {
            hang,
            sessions: SessionBackend::Sqlite(tower_sessions_sqlx_store::SqliteStore::new(pool)),
        })
    }

    async fn fail<T>(&self) -> Result<T, StoreError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        Err(StoreError::Database(sqlx::Error::PoolTimedOut))
    }
}

#[async_trait]
impl AccountStore for BrokenStore {
    async fn count_users(&self) -> Result<i64, StoreError> {
        self.fail().await
    }
    async fn set_groups(&self, _: &str, _: &[String]) -> Result<bool, StoreError> {
        self.fail().await
    }
    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.fail().await
    }
    async fn pending_invitations(
        &self,
        _: i64,
    ) -> Result<Vec<(countersign::identity::setup::Invitation, i64, i64)>, StoreError> {
        self.fail().await
    }
    async fn create_user(&self, _: &User) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn user_by_id(&self, _: &str) -> Result<Option<User>, StoreError> {
        self.fail().await
    }
    async fn user_by_username(&self, _: &str) -> Result<Option<User>, StoreError> {
        self.fail().await
    }
    async fn add_credential(&self, _: &Credential) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn credentials_of(&self, _: &str) -> Result<Vec<Credential>, StoreError> {
        self.fail().await
    }
    async fn touch_credential(&self, _: &str, _: &str, _: i64) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn credential(&self, _: &str) -> Result<Option<Credential>, StoreError> {
        self.fail().await
    }
    async fn rename_credential(&self, _: &str, _: &str, _: &str) -> Result<bool, StoreError> {
        self.fail().await
    }
    async fn remove_credential(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        self.fail().await
    }
    async fn block_credential(&self, _: &str, _: &str, _: i64) -> Result<bool, StoreError> {
        self.fail().await
    }
    async fn use_setup_token(&self, _: &str, _: i64) -> Result<bool, StoreError> {
        self.fail().await
    }
    async fn put_invitation(
        &self,
        _: &str,
        _: i64,
        _: i64,
        _: &Invitation,
    ) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn invitation(&self, _: &str, _: i64) -> Result<Option<Invitation>, StoreError> {
        self.fail().await
    }
    async fn set_role(&self, _: &str, _: Role) -> Result<bool, StoreError> {
        self.fail().await
    }
    async fn set_disabled(&self, _: &str, _: Option<i64>) -> Result<bool, StoreError> {
        self.fail().await
    }
    async fn disabled_at(&self, _: &str) -> Result<Option<i64>, StoreError> {
        self.fail().await
    }
    async fn put_first_admin_link(
        &self,
        _: &str,
        _: i64,
        _: i64,
        _: &Invitation,
    ) -> Result<bool, StoreError> {
        self.fail().await
    }
    async fn session_epoch(&self, _: &str) -> Result<Option<i64>, StoreError> {
        self.fail().await
    }
    async fn set_session_epoch(&self, _: &str, _: i64) -> Result<(), StoreError> {
        self.fail().await
    }
}

#[async_trait]
impl ElevationStore for BrokenStore {
    async fn awaiting_challenges(&self, _: i64, _: i64) -> Result<Vec<Challenge>, StoreError> {
        self.fail().await
    }
    async fn broken_glass_since(&self, _: i64, _: i64) -> Result<Vec<Challenge>, StoreError> {
        self.fail().await
    }
    async fn recent_rejection(
        &self,
        _: &str,
        _: &str,
        _: i64,
    ) -> Result<Option<Challenge>, StoreError> {
        self.fail().await
    }
    async fn approvals_of(&self, _: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.fail().await
    }
    async fn awaiting_approvals(&self, _: i64) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.fail().await
    }
    async fn pending_challenge(
        &self,
        _: &str,
        _: &str,
        _: i64,
    ) -> Result<Option<Challenge>, StoreError> {
        self.fail().await
    }
    async fn insert_challenge(&self, _: &Challenge) -> Result<bool, StoreError> {
        self.fail().await
    }
    async fn challenge(&self, _: &str) -> Result<Option<Challenge>, StoreError> {
        self.fail().await
    }
    async fn challenge_audience(
        &self,
        _: &str,
    ) -> Result<Option<countersign::challenges::Audience>, StoreError> {
        self.fail().await
    }
    async fn challenges_of(&self, _: &str, _: i64) -> Result<Vec<Challenge>, StoreError> {
        self.fail().await
    }
    async fn grant(&self, _: &str) -> Result<Option<Grant>, StoreError> {
        self.fail().await
    }
    async fn challenge_grants(&self, _: &str) -> Result<Vec<Grant>, StoreError> {
        self.fail().await
    }
    async fn live_grants(&self, _: &str, _: &str, _: i64) -> Result<Vec<Grant>, StoreError> {
        self.fail().await
    }
    async fn consume_grant(&self, _: &str, _: i64) -> Result<bool, StoreError> {
        self.fail().await
    }
    async fn all_live_grants(&self, _: i64) -> Result<Vec<LiveGrant>, StoreError> {
        self.fail().await
    }
    async fn grant_tokens(&self, _: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        self.fail().await
    }
    async fn open_challenge_usage(
        &self,
        _: &str,
        _: i64,
    ) -> Result<countersign::store::ChallengeUsage, StoreError> {
        self.fail().await
    }
    async fn revoke_grant(&self, _: &str, _: i64, _: &str) -> Result<bool, StoreError> {
        self.fail().await
    }
}

#[async_trait]
impl AuditStore for BrokenStore {
    async fn append_audit(&self, _: &AuditEvent) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn audit_records(&self, _: i64, _: i64) -> Result<Vec<AuditRecord>, StoreError> {
        self.fail().await
    }
}

#[async_trait]
impl DecisionStore for BrokenStore {
    async fn append_decisions(
        &self,
        _: &[countersign::decisions::DecisionRecord],
    ) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn recent_decisions(
        &self,
        _: i64,
    ) -> Result<Vec<countersign::decisions::DecisionRecord>, StoreError> {
        self.fail().await
    }
    async fn guardrail_trips(&self, _: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.fail().await
    }
}

#[async_trait]
impl GuardrailStore for BrokenStore {
    async fn latest_guardrail_version(&self) -> Result<Option<i64>, StoreError> {
        self.fail().await
    }
    async fn guardrail_version(
        &self,
        _: i64,
    ) -> Result<Option<countersign::guardrails::versions::GuardrailVersion>, StoreError> {
        self.fail().await
    }
    async fn guardrail_versions(
        &self,
        _: i64,
    ) -> Result<Vec<countersign::guardrails::versions::GuardrailVersion>, StoreError> {
        self.fail().await
    }
}

#[async_trait]
impl TrafficStore for BrokenStore {
    async fn record_traffic(
        &self,
        _: &[countersign::traffic::recorder::ShapeCount],
        _: i64,
    ) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn traffic(&self, _: i64) -> Result<Vec<countersign::traffic::ShapeSample>, StoreError> {
        self.fail().await
    }
    async fn prune_traffic(&self, _: i64) -> Result<u64, StoreError> {
        self.fail().await
    }
}

#[async_trait]
impl Store for BrokenStore {
    async fn setting(&self, _: &str) -> Result<Option<String>, StoreError> {
        self.fail().await
    }
    async fn put_setting(&self, _: &str, _: &str) -> Result<(), StoreError> {
        self.fail().await
    }
    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        self.fail().await
    }
    async fn prune(&self, _: i64) -> Result<countersign::store::Pruned, StoreError> {
        self.fail().await
    }
}

impl AnyStore for BrokenStore {
    fn session_store(&self) -> SessionBackend {
        self.sessions.clone()
    }
}

fn unavailable(response: &Value, guardrail: &str) -> anyhow::Result<()> {
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403, "{response}");
    let message = response["status"]["message"]
        .as_str()
        .context("no message")?;
    assert_eq!(
        message,
        format!(
            "step-up required by guardrail \"{guardrail}\", but the step-up service is unavailable; retry in a minute"
        )
    );
    Ok(())
}

/// What must keep working without a store.
async fn everything_but_step_up_still_decides(app: &TestApp) -> anyhow::Result<()> {
    let widget = review("widget-create")?;
    assert_eq!(
        app.decide(&widget).await?["allowed"],
        true,
        "unguarded requests are still allowed"
    );
    let deny = app.decide(&review("clusterrolebinding-create")?).await?;
    assert_eq!(deny["allowed"], false);
    assert!(
        deny["status"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("denied by guardrail")),
        "{deny}"
    );
    let warn = app.decide(&review("secret-update-ci")?).await?;
    assert_eq!(warn["allowed"], true);
    assert_eq!(warn["warnings"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        app.get("/healthz").await?,
        (StatusCode::OK, "ok".to_owned())
    );
    let (status, _) = app.get("/readyz").await?;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "readyz must report the store"
    );
    Ok(())
}

#[tokio::test]
async fn failing_store_denies_step_up_with_a_clear_reason() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Arc::new(BrokenStore::new(false)?), None).await?;
    let response = app.decide(&review("deployment-update")?).await?;
    unavailable(&response, "prod-workloads")?;
    unavailable(&app.decide(&review("pod-exec")?).await?, "prod-exec")?;
    everything_but_step_up_still_decides(&app).await?;
    let (_, metrics) = app.get("/metrics").await?;
    assert!(
        metrics
            .lines()
            .any(|l| l == "countersign_store_failures_total 2"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn hanging_store_is_cut_off_within_the_budget() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Arc::new(BrokenStore::new(true)?), None).await?;
    let started = Instant::now();
    let response = app.decide(&review("deployment-update")?).await?;
    let took = started.elapsed();
    unavailable(&response, "prod-workloads")?;
    // The API server's default webhook timeout is 10 s; the answer must come well before.
    assert!(took < Duration::from_secs(6), "answer took {took:?}");
    everything_but_step_up_still_decides(&app).await
}

#[tokio::test]
async fn dropped_postgres_database_denies_step_up_with_a_clear_reason() -> anyhow::Result<()> {
    let Some(db) = TestDb::postgres().await? else {
        return Ok(());
    };
    let store = db.store.clone();
    let app = TestApp::spawn_with(store, Some(db)).await?;
    // Working first: a real challenge.
    step_up_denial(
        &app.decide(&review("deployment-update")?).await?,
        "prod-workloads",
    )?;

    // The database disappears under the running webhook (its connections are terminated).
    app.db().context("no database")?.drop_postgres_now().await?;
    let started = Instant::now();
    let response = app.decide(&review("namespace-delete")?).await?;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answer took {:?}",
        started.elapsed()
    );
    unavailable(&response, "protect-prod-namespaces")?;
    everything_but_step_up_still_decides(&app).await
}
