//! PostgreSQL: for replicas sharing one database.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};

use super::{AnyStore, SessionBackend};

/// Advisory lock key that serialises audit appends across replicas ("cs-audit").
const AUDIT_LOCK_KEY: i64 = 0x6373_2d61_7564_6974;

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
    audit_mutex: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl PostgresStore {
    /// Connect and migrate.
    pub async fn connect(url: &str) -> Result<Self, super::StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            audit_mutex: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Connect with every transaction read-only, without migrating.
    pub async fn connect_read_only(url: &str) -> Result<Self, super::StoreError> {
        use std::str::FromStr as _;
        let options = sqlx::postgres::PgConnectOptions::from_str(url)?
            .options([("default_transaction_read_only", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            audit_mutex: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    async fn lock_audit(tx: &mut sqlx::Transaction<'_, Postgres>) -> Result<(), super::StoreError> {
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(AUDIT_LOCK_KEY)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// PostgreSQL: a plain transaction; the rows a unit reads are locked `for update`, and the
    /// audit lock is taken when it first appends.
    async fn begin_unit(
        &self,
    ) -> Result<
        (
            sqlx::Transaction<'static, Postgres>,
            Option<tokio::sync::OwnedMutexGuard<()>>,
        ),
        super::StoreError,
    > {
        Ok((self.pool.begin().await?, None))
    }

    /// `NOTIFY` the replicas listening on `channel`; a failure only delays them (revocations until
    /// their next poll, live pages until their next refetch).
    async fn notify_channel(&self, channel: &str, payload: &str) {
        if let Err(e) = sqlx::query("select pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, channel, "could not notify the other replicas");
        }
    }

    /// `LISTEN` on a connection of its own; the feed closes when that connection is lost (the
    /// caller polls meanwhile and may listen again).
    async fn listen_channel(
        &self,
        channel: &str,
    ) -> Result<Option<super::Feed>, super::StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(channel).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                // `try_recv` reports a lost connection (instead of reconnecting silently and
                // dropping what was sent meanwhile), so the feed closes and the caller catches up.
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        if tx.send(n.payload().to_owned()).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => {
                        tracing::warn!("listener lost its connection");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "listener failed");
                        break;
                    }
                }
            }
        });
        Ok(Some(rx))
    }
}

super::queries::impl_store!(
    PostgresStore,
    Postgres,
    " for update",
    "(body::jsonb #>> '{approval,rule,groups}')",
    "(body::jsonb #- '{request,object}' #- '{request,old_object}')::text",
    "begin",
    "select h->>'name' as guardrail, count(*) as trips
     from decisions, jsonb_array_elements(decisions.hits::jsonb) h where decisions.at >= $1 group by 1"
);

impl AnyStore for PostgresStore {
    fn session_store(&self) -> SessionBackend {
        SessionBackend::Postgres(tower_sessions_sqlx_store::PostgresStore::new(
            self.pool.clone(),
        ))
    }
}
