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
    audit_mutex: tokio::sync::Mutex<()>,
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
            audit_mutex: tokio::sync::Mutex::new(()),
        })
    }

    async fn lock_audit(
        &self,
        tx: &mut sqlx::Transaction<'_, Postgres>,
    ) -> Result<(), super::StoreError> {
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(AUDIT_LOCK_KEY)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

super::queries::impl_store!(PostgresStore, Postgres);

impl AnyStore for PostgresStore {
    fn session_store(&self) -> SessionBackend {
        SessionBackend::Postgres(tower_sessions_sqlx_store::PostgresStore::new(
            self.pool.clone(),
        ))
    }
}
