//! Storage by aggregate (accounts, elevations, audit, decisions) under one [`Store`], with one
//! implementation per backend (SQLite default, PostgreSQL for HA).

mod postgres;
mod queries;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::audit::checkpoint::AuditCheckpoint;
use crate::audit::{AuditEvent, AuditRecord};
pub use crate::challenges::ChallengeUsage;
use crate::challenges::{ApprovalRecord, Challenge};
use crate::decisions::DecisionRecord;
use crate::grants::{Grant, LiveGrant};
use crate::identity::setup::Invitation;
use crate::identity::{Credential, Role, User};

pub use postgres::PostgresStore;

/// Every part of the store in scope, for code that calls more than one: `use crate::store::prelude::*`.
pub mod prelude {
    pub use super::{
        AccountStore as _, AuditStore as _, DecisionStore as _, ElevationStore as _,
        GuardrailStore as _, Store as _, TrafficStore as _,
    };
}
pub use sqlite::SqliteStore;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused the statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A unique value (username, credential) is taken.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A stored JSON column could not be read back.
    #[error("stored {0} is corrupt: {1}")]
    Corrupt(&'static str, String),
    /// The URL names no backend we have.
    #[error("unsupported database URL (use sqlite:// or postgres://)")]
    UnsupportedUrl,
}

/// Local accounts, their passkeys, invitations and session epochs.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// How many local accounts exist.
    async fn count_users(&self) -> Result<i64, StoreError>;
    /// Create an account; `Conflict` if the username is taken.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    /// Account by id.
    async fn user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError>;
    /// Account by username.
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;
    /// Register a credential.
    async fn add_credential(&self, credential: &Credential) -> Result<(), StoreError>;
    /// Credentials of an account, oldest first.
    async fn credentials_of(&self, user_id: &str) -> Result<Vec<Credential>, StoreError>;
    /// Save a credential's updated state (counter) after use; a blocked credential is left as it is.
    async fn touch_credential(
        &self,
        credential_id: &str,
        passkey: &str,
        used_at: i64,
    ) -> Result<(), StoreError>;
    /// Credential by id, whoever owns it (discoverable sign-in names the credential first).
    async fn credential(&self, credential_id: &str) -> Result<Option<Credential>, StoreError>;
    /// Rename one of an account's credentials; false if the account has no such credential.
    async fn rename_credential(
        &self,
        user_id: &str,
        credential_id: &str,
        name: &str,
    ) -> Result<bool, StoreError>;
    /// Remove one of an account's credentials; false if it has no such credential or it is the
    /// account's last usable one.
    async fn remove_credential(
        &self,
        user_id: &str,
        credential_id: &str,
    ) -> Result<bool, StoreError>;
    /// Block a credential for good (possible clone); false if unknown or already blocked.
    async fn block_credential(
        &self,
        credential_id: &str,
        reason: &str,
        at: i64,
    ) -> Result<bool, StoreError>;
    /// Mark a setup token used; false if it was already used or expired.
    async fn use_setup_token(&self, token_hash: &str, now: i64) -> Result<bool, StoreError>;
    /// Remember a setup token (its hash) and what it invites to.
    async fn put_invitation(
        &self,
        token_hash: &str,
        created_at: i64,
        expires_at: i64,
        invitation: &Invitation,
    ) -> Result<(), StoreError>;
    /// What an unused, unexpired setup token invites to (the first-admin link: admin, any username).
    async fn invitation(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<Invitation>, StoreError>;
    /// Replace an account's groups; false if no account has this username.
    async fn set_groups(&self, username: &str, groups: &[String]) -> Result<bool, StoreError>;
    /// Invitations not used and not expired at `now`, newest first (at most 200), with when each
    /// was made and when it ends; links without a fixed username create nothing and are left out.
    async fn pending_invitations(
        &self,
        now: i64,
    ) -> Result<Vec<(Invitation, i64, i64)>, StoreError>;
    /// Every local account, by username.
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Give an account another role; false if no account has this username.
    async fn set_role(&self, username: &str, role: Role) -> Result<bool, StoreError>;
    /// Disable an account (`Some(at)`) or enable it again (`None`); false if no account has this
    /// username.
    async fn set_disabled(&self, username: &str, at: Option<i64>) -> Result<bool, StoreError>;
    /// When the account was disabled, if it is.
    async fn disabled_at(&self, user_id: &str) -> Result<Option<i64>, StoreError>;
    /// Record that the first-admin link was made and store its token, once per store: false (and
    /// nothing stored) when a first-admin link was made before.
    async fn put_first_admin_link(
        &self,
        token_hash: &str,
        created_at: i64,
        expires_at: i64,
        invitation: &Invitation,
    ) -> Result<bool, StoreError>;
    /// The "signed out everywhere" cut-off of a person (account id or OIDC user id), if any, in
    /// unix milliseconds.
    async fn session_epoch(&self, user_key: &str) -> Result<Option<i64>, StoreError>;
    /// Refuse from now on every session of a person signed in at or before `not_before` (ms).
    async fn set_session_epoch(&self, user_key: &str, not_before: i64) -> Result<(), StoreError>;
}

/// Elevations: challenges, their approvals and the grants they yield.
#[async_trait]
pub trait ElevationStore: Send + Sync + 'static {
    /// The open challenge for this digest and guardrail, expiring stale ones on the way.
    async fn pending_challenge(
        &self,
        digest: &str,
        guardrail: &str,
        now: i64,
    ) -> Result<Option<Challenge>, StoreError>;
    /// Insert a challenge; false if another pending one for the same digest and guardrail won the race.
    async fn insert_challenge(&self, challenge: &Challenge) -> Result<bool, StoreError>;
    /// Open (pending, unexpired) challenges of a Kubernetes username and their stored bytes, and
    /// the stored bytes of every open challenge: what challenge limits are checked against.
    async fn open_challenge_usage(
        &self,
        username: &str,
        now: i64,
    ) -> Result<ChallengeUsage, StoreError>;
    /// Challenge by code.
    async fn challenge(&self, code: &str) -> Result<Option<Challenge>, StoreError>;
    /// Who may hear of a challenge (its subject and approval groups), read without its body.
    async fn challenge_audience(
        &self,
        code: &str,
    ) -> Result<Option<crate::challenges::Audience>, StoreError>;
    /// Recent challenges of a Kubernetes username, newest first.
    async fn challenges_of(&self, username: &str, limit: i64)
        -> Result<Vec<Challenge>, StoreError>;
    /// Challenges waiting for approvers (unexpired), newest first, without the request's objects
    /// (`object`, `old_object` read as absent): lists never show them.
    async fn awaiting_challenges(&self, now: i64, limit: i64)
        -> Result<Vec<Challenge>, StoreError>;
    /// Challenges granted by break glass at or after `since`, newest first, without the request's
    /// objects: what the approvers' queue shows as let through without them.
    async fn broken_glass_since(
        &self,
        since: i64,
        limit: i64,
    ) -> Result<Vec<Challenge>, StoreError>;
    /// The newest rejected challenge for this digest and guardrail closed at or after `since`: what
    /// a retry is told.
    async fn recent_rejection(
        &self,
        digest: &str,
        guardrail: &str,
        since: i64,
    ) -> Result<Option<Challenge>, StoreError>;
    /// The approvers' decisions on a challenge, in the order they came.
    async fn approvals_of(&self, code: &str) -> Result<Vec<ApprovalRecord>, StoreError>;
    /// Every decision on challenges that wait for approvers now (the queue's, in one read).
    async fn awaiting_approvals(&self, now: i64) -> Result<Vec<ApprovalRecord>, StoreError>;
    /// Grant by id.
    async fn grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError>;
    /// Every grant issued for a challenge (one per guardrail it stood for), oldest first.
    async fn challenge_grants(&self, code: &str) -> Result<Vec<Grant>, StoreError>;
    /// Unexpired, unrevoked grants with uses left for a user and guardrail.
    async fn live_grants(
        &self,
        username: &str,
        guardrail: &str,
        now: i64,
    ) -> Result<Vec<Grant>, StoreError>;
    /// Take one use of a grant; false if none was left, it expired or was revoked.
    async fn consume_grant(&self, grant_id: &str, now: i64) -> Result<bool, StoreError>;
    /// Every unexpired, unrevoked grant with uses left, without tokens or evidence (what the grant
    /// cache holds).
    async fn all_live_grants(&self, now: i64) -> Result<Vec<LiveGrant>, StoreError>;
    /// The signed tokens of these grants, as `(grant id, token)`; unknown ids are left out.
    async fn grant_tokens(&self, ids: &[String]) -> Result<Vec<(String, String)>, StoreError>;
    /// Revoke a grant; false if it was unknown, expired or already revoked.
    async fn revoke_grant(&self, grant_id: &str, now: i64, actor: &str)
        -> Result<bool, StoreError>;
    /// Grants revoked at or after `after` (unix seconds), oldest first: what another process's
    /// grant cache must drop, without reloading every grant. A store that cannot tell returns none
    /// (the periodic full reload still catches up).
    async fn revoked_since(&self, _after: i64) -> Result<Vec<RevokedGrant>, StoreError> {
        Ok(Vec::new())
    }
    /// Grant ids as other processes revoke them, pushed by the database (PostgreSQL `LISTEN`);
    /// `None` where the backend cannot push, and callers poll [`Store::revoked_since`].
    async fn revocation_feed(&self) -> Result<Option<RevocationFeed>, StoreError> {
        Ok(None)
    }
}

/// The signed audit chain and its checkpoints.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Append to the audit chain.
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// The audit chain in order, from `after_seq`.
    async fn audit_records(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// The newest audit record (the chain's head), if any. A store that keeps no chain has none.
    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
        Ok(None)
    }
    /// Keep a signed checkpoint of the chain; one already kept for the same seq and key stays.
    /// A store that keeps no checkpoints drops it (the anchor file still has it).
    async fn append_audit_checkpoint(
        &self,
        _checkpoint: &AuditCheckpoint,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// Checkpoints with `after_seq < seq <= through_seq`, by seq then key id (at most one per seq
    /// and key, so a page of records bounds the answer).
    async fn audit_checkpoints(
        &self,
        _after_seq: i64,
        _through_seq: i64,
    ) -> Result<Vec<AuditCheckpoint>, StoreError> {
        Ok(Vec::new())
    }
}

/// The decision log.
#[async_trait]
pub trait DecisionStore: Send + Sync + 'static {
    /// Append decisions to the decision log, in one transaction.
    async fn append_decisions(&self, records: &[DecisionRecord]) -> Result<(), StoreError>;
    /// The most recent decisions, newest first.
    async fn recent_decisions(&self, limit: i64) -> Result<Vec<DecisionRecord>, StoreError>;
    /// How many decisions since `since` (unix seconds) each guardrail matched, by name.
    async fn guardrail_trips(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError>;
}

/// Store mode's guardrail versions (written only through a [`UnitOfWork`], with their audit record).
#[async_trait]
pub trait GuardrailStore: Send + Sync + 'static {
    /// The newest version's number, if any version was saved.
    async fn latest_guardrail_version(&self) -> Result<Option<i64>, StoreError>;
    /// Version `number`.
    async fn guardrail_version(
        &self,
        number: i64,
    ) -> Result<Option<crate::guardrails::versions::GuardrailVersion>, StoreError>;
    /// The newest versions, newest first.
    async fn guardrail_versions(
        &self,
        limit: i64,
    ) -> Result<Vec<crate::guardrails::versions::GuardrailVersion>, StoreError>;
}

/// Recorded traffic: request shapes with their counts and one redacted example each.
#[async_trait]
pub trait TrafficStore: Send + Sync + 'static {
    /// Add these counts (seen up to `now`), keeping each shape's first example.
    async fn record_traffic(
        &self,
        counts: &[crate::traffic::recorder::ShapeCount],
        now: i64,
    ) -> Result<(), StoreError>;
    /// The recorded shapes, most often seen first.
    async fn traffic(&self, limit: i64) -> Result<Vec<crate::traffic::ShapeSample>, StoreError>;
    /// Forget shapes last seen before `before`, and all but the [`MAX_STORED_SHAPES`] most
    /// recently seen; returns how many went.
    ///
    /// [`MAX_STORED_SHAPES`]: crate::traffic::recorder::MAX_STORED_SHAPES
    async fn prune_traffic(&self, before: i64) -> Result<u64, StoreError>;
}

/// Everything Countersign keeps: each aggregate's part, plus units of work across them, settings
/// and the feeds between replicas.
#[async_trait]
pub trait Store:
    AccountStore + ElevationStore + AuditStore + DecisionStore + GuardrailStore + TrafficStore
{
    /// A value `serve` left for the other commands (see [`PUBLIC_URL_SETTING`]).
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Leave a value for the other commands.
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Start a unit of work: what is done through it is committed together or not at all.
    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError>;
    /// Delete what retention lets go of: grants expired (or revoked) before `before`, challenges
    /// created before it that are closed and have no grant left, and decisions logged before it.
    /// The audit log is never pruned.
    async fn prune(&self, before: i64) -> Result<Pruned, StoreError>;
    /// Tell other processes on this database `payload` on `channel` (PostgreSQL `NOTIFY`); a
    /// no-op where the backend cannot push. A failure only delays them.
    async fn announce(&self, _channel: &str, _payload: &str) {}
    /// What other processes announce on `channel` (PostgreSQL `LISTEN`); `None` where the backend
    /// cannot push.
    async fn feed(&self, _channel: &str) -> Result<Option<Feed>, StoreError> {
        Ok(None)
    }
}

/// Writes that stand or fall together: dropped without [`UnitOfWork::commit`], nothing happened.
///
/// A unit holds the challenge it read for itself until it ends (`for update` on PostgreSQL; the
/// database's one writer on SQLite), so two approvers deciding at once are taken one after the other.
#[async_trait]
pub trait UnitOfWork: Send {
    /// Challenge by code, held for this unit.
    async fn challenge(&mut self, code: &str) -> Result<Option<Challenge>, StoreError>;
    /// Store a challenge's new state (status, grant, body).
    async fn update_challenge(&mut self, challenge: &Challenge) -> Result<(), StoreError>;
    /// The decisions on a challenge so far.
    async fn approvals(&mut self, code: &str) -> Result<Vec<ApprovalRecord>, StoreError>;
    /// Record a decision; false if this approver decided this challenge before.
    async fn put_approval(&mut self, approval: &ApprovalRecord) -> Result<bool, StoreError>;
    /// Revoke a live grant (see [`Store::revoke_grant`]); the caller announces it after commit.
    async fn revoke_grant(
        &mut self,
        grant_id: &str,
        now: i64,
        actor: &str,
    ) -> Result<bool, StoreError>;
    /// Open challenges past their expiry, marked expired now and returned: only those this unit
    /// expired, so each is recorded and announced once across replicas.
    async fn expire_due(&mut self, now: i64) -> Result<Vec<Challenge>, StoreError>;
    /// Replace an account's groups; the groups it had, or `None` when no account has the name.
    async fn set_groups(
        &mut self,
        username: &str,
        groups: &[String],
    ) -> Result<Option<Vec<String>>, StoreError>;
    /// Give an account another role; the role it had, or `None` when no account has the name.
    async fn set_role(&mut self, username: &str, role: Role) -> Result<Option<Role>, StoreError>;
    /// Block a credential (`reason`, at `at`); false if it was unknown or already blocked.
    async fn block_credential(
        &mut self,
        credential_id: &str,
        reason: &str,
        at: i64,
    ) -> Result<bool, StoreError>;
    /// Disable an account (`Some(at)`) or enable it (`None`); when it was disabled before (itself
    /// `None` when it was enabled), or `None` when no account has the name.
    async fn set_disabled(
        &mut self,
        username: &str,
        at: Option<i64>,
    ) -> Result<Option<Option<i64>>, StoreError>;
    /// Serialise challenge creation with every other creator (replicas included) until the unit
    /// ends, so the open-challenge limits read in it still hold when it inserts.
    async fn lock_challenges(&mut self) -> Result<(), StoreError>;
    /// The open challenge for a request digest and guardrail set, expiring stale ones first.
    async fn pending_challenge(
        &mut self,
        digest: &str,
        guardrail: &str,
        now: i64,
    ) -> Result<Option<Challenge>, StoreError>;
    /// What one person's open challenges, and everyone's, take now.
    async fn open_challenge_usage(
        &mut self,
        username: &str,
        now: i64,
    ) -> Result<ChallengeUsage, StoreError>;
    /// Insert a new challenge; `false` if its code is taken.
    async fn insert_challenge(&mut self, challenge: &Challenge) -> Result<bool, StoreError>;
    /// Take one use of a live grant; `false` if none is left, or it expired or was revoked.
    async fn consume_grant(&mut self, grant_id: &str, now: i64) -> Result<bool, StoreError>;
    /// Store a new grant.
    async fn insert_grant(&mut self, grant: &Grant) -> Result<(), StoreError>;
    /// Mark a setup token used; false if it was already used or expired.
    async fn use_setup_token(&mut self, token_hash: &str, now: i64) -> Result<bool, StoreError>;
    /// Create an account; `Conflict` if the username is taken.
    async fn create_user(&mut self, user: &User) -> Result<(), StoreError>;
    /// Register a credential.
    async fn add_credential(&mut self, credential: &Credential) -> Result<(), StoreError>;
    /// Append to the audit chain, in this unit.
    async fn append_audit(&mut self, event: &AuditEvent) -> Result<(), StoreError>;
    /// The newest guardrail version's number, read under the unit's write order (so the next
    /// number is this plus one until it ends).
    async fn latest_guardrail_version(&mut self) -> Result<Option<i64>, StoreError>;
    /// Save a new guardrail version; `false` if its number is taken (another replica saved first).
    async fn insert_guardrail_version(
        &mut self,
        version: &crate::guardrails::versions::GuardrailVersion,
    ) -> Result<bool, StoreError>;
    /// Make it all stick.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// What one pruning pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Grants.
    pub grants: u64,
    /// Challenges.
    pub challenges: u64,
    /// Decision-log entries.
    pub decisions: u64,
}

/// A revoked grant, as much of it as a cache needs to drop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedGrant {
    /// Grant id.
    pub id: String,
    /// Kubernetes username it admitted.
    pub username: String,
    /// Guardrail it satisfied.
    pub guardrail: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds.
    pub revoked_at: i64,
}

/// What other processes announce on one channel, as the database pushes it; closed when the
/// connection behind it is lost.
pub type Feed = tokio::sync::mpsc::Receiver<String>;

/// Ids of grants revoked elsewhere (a [`Feed`] on [`REVOCATION_CHANNEL`]).
pub type RevocationFeed = Feed;

/// The channel PostgreSQL announces revocations on (payload: the grant id).
pub const REVOCATION_CHANNEL: &str = "countersign_revocations";

/// The channel PostgreSQL announces new guardrail versions on (payload: the version number).
pub const GUARDRAIL_CHANNEL: &str = "countersign_guardrails";

/// Connect to the store named by a URL read-only, without running migrations (for `audit verify`:
/// the verifier must not change what it checks). A missing SQLite file is an error, not created.
pub async fn connect_read_only(url: &str) -> Result<Arc<dyn AnyStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect_read_only(url).await?))
    } else {
        Ok(Arc::new(PostgresStore::connect_read_only(url).await?))
    }
}

/// Connect to the store named by a URL (`sqlite://…` or `postgres://…`) and run its migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn AnyStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// A store that also provides a session store on the same database.
pub trait AnyStore: Store {
    /// The tower-sessions store on the same database.
    fn session_store(&self) -> SessionBackend;
}

/// Session storage on the same database as everything else.
#[derive(Clone, Debug)]
pub enum SessionBackend {
    /// SQLite.
    Sqlite(tower_sessions_sqlx_store::SqliteStore),
    /// PostgreSQL.
    Postgres(tower_sessions_sqlx_store::PostgresStore),
}

/// The setting in which `serve` keeps the portal's public URL, so `user invite` prints links that
/// open (the default port may not be the portal's).
pub const PUBLIC_URL_SETTING: &str = "public_url";
