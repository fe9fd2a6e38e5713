//! SQLite: the embedded default, one file in the data dir.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Sqlite, SqlitePool};

use super::{AnyStore, SessionBackend};

/// The SQLite store.
pub struct SqliteStore {
    pool: SqlitePool,
    audit_mutex: tokio::sync::Mutex<()>,
}

impl SqliteStore {
    /// Open (creating if missing) and migrate.
    pub async fn connect(url: &str) -> Result<Self, super::StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            audit_mutex: tokio::sync::Mutex::new(()),
        })
    }

    async fn lock_audit(
        &self,
        tx: &mut sqlx::Transaction<'_, Sqlite>,
    ) -> Result<(), super::StoreError> {
        // Take SQLite's write lock before reading the chain's last hash: a deferred transaction that
        // reads first cannot upgrade once another writer (the decision log) has committed meanwhile.
        sqlx::query("update audit_events set seq = seq where 0")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Nothing to push: other processes on this file poll for revocations.
    async fn announce_revocation(&self, _grant_id: &str) {}

    /// SQLite cannot push: callers poll.
    async fn listen_revocations(&self) -> Result<Option<super::RevocationFeed>, super::StoreError> {
        Ok(None)
    }
}

super::queries::impl_store!(SqliteStore, Sqlite);

impl AnyStore for SqliteStore {
    fn session_store(&self) -> SessionBackend {
        SessionBackend::Sqlite(tower_sessions_sqlx_store::SqliteStore::new(
            self.pool.clone(),
        ))
    }
}
