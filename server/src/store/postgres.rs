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

    /// `NOTIFY` the replicas listening; a failure only delays them until their next poll.
    async fn announce_revocation(&self, grant_id: &str) {
        if let Err(e) = sqlx::query("select pg_notify($1, $2)")
            .bind(super::REVOCATION_CHANNEL)
            .bind(grant_id)
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, grant = grant_id, "could not announce a revocation; replicas learn on their next poll");
        }
    }

    /// `LISTEN` on a connection of its own; the feed closes when that connection is lost (the
    /// caller polls meanwhile and may listen again).
    async fn listen_revocations(&self) -> Result<Option<super::RevocationFeed>, super::StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(super::REVOCATION_CHANNEL).await?;
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
                        tracing::warn!("revocation listener lost its connection");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "revocation listener failed");
                        break;
                    }
                }
            }
        });
        Ok(Some(rx))
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
