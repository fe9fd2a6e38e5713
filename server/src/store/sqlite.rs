//! SQLite: the embedded default, one file in the data dir.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Sqlite, SqlitePool};

use super::{AnyStore, SessionBackend};

/// The SQLite store.
pub struct SqliteStore {
    pool: SqlitePool,
    audit_mutex: std::sync::Arc<tokio::sync::Mutex<()>>,
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
            audit_mutex: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Open an existing file read-only, without migrating it.
    pub async fn connect_read_only(url: &str) -> Result<Self, super::StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            audit_mutex: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Nothing to take: every transaction that appends to the chain began `immediate`, so it holds
    /// SQLite's write lock before it reads the chain's last hash.
    async fn lock_audit(_tx: &mut sqlx::Transaction<'_, Sqlite>) -> Result<(), super::StoreError> {
        Ok(())
    }

    /// SQLite has one writer: a unit takes the write lock (and this process's turn) at `begin
    /// immediate`, before it reads, so what it read cannot change under it and its writes never
    /// wait to upgrade (a deferred transaction that reads first fails at once with "database is
    /// locked" when another writer committed meanwhile).
    async fn begin_unit(
        &self,
    ) -> Result<
        (
            sqlx::Transaction<'static, Sqlite>,
            Option<tokio::sync::OwnedMutexGuard<()>>,
        ),
        super::StoreError,
    > {
        let serial = self.audit_mutex.clone().lock_owned().await;
        let tx = self.pool.begin_with("begin immediate").await?;
        Ok((tx, Some(serial)))
    }

    /// Nothing to push: other processes on this file poll for revocations.
    async fn notify_channel(&self, _channel: &str, _payload: &str) {}

    /// SQLite cannot push: callers poll.
    async fn listen_channel(
        &self,
        _channel: &str,
    ) -> Result<Option<super::Feed>, super::StoreError> {
        Ok(None)
    }
}

super::queries::impl_store!(
    SqliteStore,
    Sqlite,
    "",
    "json_extract(body, '$.approval.rule.groups')",
    "json_remove(body, '$.request.object', '$.request.old_object')",
    "begin immediate",
    "select json_extract(h.value, '$.name') as guardrail, count(*) as trips
     from decisions, json_each(decisions.hits) h where decisions.at >= $1 group by 1"
);

impl AnyStore for SqliteStore {
    fn session_store(&self) -> SessionBackend {
        SessionBackend::Sqlite(tower_sessions_sqlx_store::SqliteStore::new(
            self.pool.clone(),
        ))
    }
}
