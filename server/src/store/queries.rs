//! The SQL both backends share. Each backend instantiates it for its own pool type, so the
//! statements are written once while each implementation stays concrete (no `Any` driver).

/// Implement [`crate::store::Store`] for a struct with `pool: sqlx::Pool<$db>`, an
/// `async fn lock_audit(tx: &mut sqlx::Transaction<'_, $db>)` that serialises audit appends, a
/// `begin_unit` that opens a transaction holding the database's write order for a unit of work,
/// `$for_update` the clause that locks a row read in it, `$rule_groups` the expression that reads a
/// challenge's approval groups (JSON text) out of its body in the database, `$light_body` the
/// body without the request's objects (for lists, which never show them), `$begin_write` the
/// statement that opens a transaction that will write (SQLite's `BEGIN IMMEDIATE` takes the write
/// lock at once, waiting its busy timeout, instead of failing at the first write after a read),
/// `$trips` the statement that counts, per guardrail name, the decisions since `$1` whose hits
/// name it (the JSON functions differ), plus `notify_channel` and `listen_channel` (pushing
/// revocations and elevations to other replicas, where the backend can).
macro_rules! impl_store {
    ($store:ty, $db:ty, $for_update:literal, $rule_groups:literal, $light_body:literal, $begin_write:literal, $trips:literal) => {
        use sqlx::Row as _;

        use $crate::audit::checkpoint::AuditCheckpoint;
        use $crate::audit::{chain_hash, AuditEvent, AuditRecord, GENESIS_HASH};
        use $crate::challenges::{ApprovalDecision, ApprovalRecord, Challenge, ChallengeStatus};
        use $crate::grants::{Grant, LiveGrant};
        use $crate::identity::setup::Invitation;
        use $crate::identity::{Credential, Role, User};
        use $crate::policy::GrantScope;
        use $crate::store::StoreError;

        type Row = <$db as sqlx::Database>::Row;
        type Conn = <$db as sqlx::Database>::Connection;

        fn corrupt(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
            move |e| StoreError::Corrupt(what, e.to_string())
        }

        fn is_unique_violation(e: &sqlx::Error) -> bool {
            matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
        }

        fn user_from(row: &Row) -> Result<User, StoreError> {
            Ok(User {
                user_id: row.try_get("user_id")?,
                username: row.try_get("username")?,
                display_name: row.try_get("display_name")?,
                role: Role::parse(row.try_get::<&str, _>("role")?),
                groups: serde_json::from_str(row.try_get::<&str, _>("groups")?).map_err(corrupt("account groups"))?,
                created_at: row.try_get("created_at")?,
            })
        }

        fn credential_from(row: &Row) -> Result<Credential, StoreError> {
            Ok(Credential {
                credential_id: row.try_get("credential_id")?,
                user_id: row.try_get("user_id")?,
                name: row.try_get("name")?,
                passkey: row.try_get("passkey")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
                aaguid: row.try_get("aaguid")?,
                blocked_at: row.try_get("blocked_at")?,
            })
        }

        fn challenge_from(row: &Row) -> Result<Challenge, StoreError> {
            let body: &str = row.try_get("body")?;
            let mut challenge: Challenge =
                serde_json::from_str(body).map_err(|e| StoreError::Corrupt("challenge", e.to_string()))?;
            // Status and grant live in their own columns; they are the truth.
            challenge.status = ChallengeStatus::parse(row.try_get::<&str, _>("status")?);
            challenge.grant_id = row.try_get("grant_id")?;
            Ok(challenge)
        }

        fn grant_from(row: &Row) -> Result<Grant, StoreError> {
            let evidence: &str = row.try_get("evidence")?;
            let scope: &str = row.try_get("scope")?;
            Ok(Grant {
                id: row.try_get("grant_id")?,
                challenge_code: row.try_get("challenge_code")?,
                username: row.try_get("username")?,
                guardrail: row.try_get("guardrail")?,
                cluster: row.try_get("cluster")?,
                scope: GrantScope::parse(scope).ok_or_else(|| StoreError::Corrupt("grant scope", scope.to_owned()))?,
                digest: row.try_get("digest")?,
                namespace: row.try_get("namespace")?,
                object_key: row.try_get("object_key")?,
                uses_left: row.try_get("uses_left")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
                revoked_by: row.try_get("revoked_by")?,
                token: row.try_get("token")?,
                evidence: serde_json::from_str(evidence).map_err(|e| StoreError::Corrupt("grant evidence", e.to_string()))?,
                policy_version: row.try_get("policy_version")?,
            })
        }

        fn audit_record_from(row: &Row) -> Result<AuditRecord, StoreError> {
            let detail: &str = row.try_get("detail")?;
            Ok(AuditRecord {
                seq: row.try_get("seq")?,
                event: AuditEvent {
                    at: row.try_get("at")?,
                    kind: row.try_get("kind")?,
                    actor: row.try_get("actor")?,
                    subject: row.try_get("subject")?,
                    detail: serde_json::from_str(detail)
                        .map_err(|e| StoreError::Corrupt("audit detail", e.to_string()))?,
                },
                prev_hash: row.try_get("prev_hash")?,
                hash: row.try_get("hash")?,
            })
        }


        fn approval_from(row: &Row) -> Result<ApprovalRecord, StoreError> {
            Ok(ApprovalRecord {
                challenge_code: row.try_get("challenge_code")?,
                person: row.try_get("person")?,
                approver: row.try_get("approver")?,
                decision: ApprovalDecision::parse(row.try_get::<&str, _>("decision")?),
                reason: row.try_get("reason")?,
                groups: serde_json::from_str(row.try_get::<&str, _>("groups")?).map_err(corrupt("approval groups"))?,
                evidence: serde_json::from_str(row.try_get::<&str, _>("evidence")?).map_err(corrupt("approval evidence"))?,
                decided_at: row.try_get("decided_at")?,
                seal: row.try_get("seal")?,
            })
        }

        // Statements shared by the pool's methods and a unit of work's: written once, run on
        // whichever connection holds them.

        /// The account `username`, locked for the rest of the transaction (where the backend locks
        /// rows; SQLite's unit holds the whole database).
        async fn locked_user(conn: &mut Conn, username: &str) -> Result<Option<User>, StoreError> {
            let row = sqlx::query(concat!("select * from users where username = $1", $for_update))
                .bind(username)
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(user_from).transpose()
        }

        async fn insert_user(conn: &mut Conn, user: &User) -> Result<(), StoreError> {
            let groups = serde_json::to_string(&user.groups).map_err(corrupt("account groups"))?;
            sqlx::query(
                "insert into users (user_id, username, display_name, role, created_at, groups) values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&user.user_id)
            .bind(&user.username)
            .bind(&user.display_name)
            .bind(user.role.as_str())
            .bind(user.created_at)
            .bind(groups)
            .execute(&mut *conn)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("username") } else { e.into() })?;
            Ok(())
        }

        async fn insert_credential(conn: &mut Conn, c: &Credential) -> Result<(), StoreError> {
            sqlx::query(
                "insert into credentials (credential_id, user_id, name, passkey, created_at, last_used_at, aaguid, blocked_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&c.credential_id)
            .bind(&c.user_id)
            .bind(&c.name)
            .bind(&c.passkey)
            .bind(c.created_at)
            .bind(c.last_used_at)
            .bind(&c.aaguid)
            .bind(c.blocked_at)
            .execute(&mut *conn)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("credential") } else { e.into() })?;
            Ok(())
        }

        async fn take_setup_token(conn: &mut Conn, token_hash: &str, now: i64) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "update setup_tokens set used_at = $1 where token_hash = $2 and used_at is null and expires_at > $1",
            )
            .bind(now)
            .bind(token_hash)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn insert_grant_row(conn: &mut Conn, g: &Grant) -> Result<(), StoreError> {
            let evidence = serde_json::to_string(&g.evidence).map_err(corrupt("grant evidence"))?;
            sqlx::query(
                "insert into grants (grant_id, challenge_code, username, guardrail, cluster, scope, digest, namespace,
                                     object_key, uses_left, created_at, expires_at, revoked_at, token, evidence, policy_version)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(&g.id)
            .bind(&g.challenge_code)
            .bind(&g.username)
            .bind(&g.guardrail)
            .bind(&g.cluster)
            .bind(g.scope.as_str())
            .bind(&g.digest)
            .bind(&g.namespace)
            .bind(&g.object_key)
            .bind(g.uses_left)
            .bind(g.created_at)
            .bind(g.expires_at)
            .bind(g.revoked_at)
            .bind(&g.token)
            .bind(evidence)
            .bind(&g.policy_version)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Append one audit record; the caller holds the audit lock in the same transaction.
        async fn append_audit_row(conn: &mut Conn, event: &AuditEvent) -> Result<(), StoreError> {
            let prev: Option<String> = sqlx::query_scalar("select hash from audit_events order by seq desc limit 1")
                .fetch_optional(&mut *conn)
                .await?;
            let prev = prev.unwrap_or_else(|| GENESIS_HASH.to_owned());
            let hash = chain_hash(&prev, event);
            sqlx::query(
                "insert into audit_events (at, kind, actor, subject, detail, prev_hash, hash) values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(event.at)
            .bind(&event.kind)
            .bind(&event.actor)
            .bind(&event.subject)
            .bind(event.detail.to_string())
            .bind(&prev)
            .bind(&hash)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn pending_on(conn: &mut Conn, digest: &str, guardrail: &str, now: i64) -> Result<Option<Challenge>, StoreError> {
            sqlx::query(
                "update challenges set status = 'expired'
                 where digest = $1 and guardrail = $2 and status in ('pending', 'awaiting') and expires_at <= $3",
            )
            .bind(digest)
            .bind(guardrail)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            let row = sqlx::query("select * from challenges where digest = $1 and guardrail = $2 and status in ('pending', 'awaiting')")
                .bind(digest)
                .bind(guardrail)
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(challenge_from).transpose()
        }

        async fn insert_challenge_row(conn: &mut Conn, c: &Challenge) -> Result<bool, StoreError> {
            let body = serde_json::to_string(c).map_err(|e| StoreError::Corrupt("challenge", e.to_string()))?;
            let done = sqlx::query(
                "insert into challenges (code, digest, guardrail, username, status, created_at, expires_at, grant_id, body, body_bytes, policy_version)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) on conflict do nothing",
            )
            .bind(&c.code)
            .bind(&c.digest)
            .bind(&c.guardrail)
            .bind(&c.request.username)
            .bind(c.status.as_str())
            .bind(c.created_at)
            .bind(c.expires_at)
            .bind(&c.grant_id)
            .bind(&body)
            .bind(body.len() as i64)
            .bind(&c.policy_version)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn usage_on(conn: &mut Conn, username: &str, now: i64) -> Result<$crate::store::ChallengeUsage, StoreError> {
            let row = sqlx::query(
                "select cast(coalesce(sum(case when username = $1 then 1 else 0 end), 0) as bigint) as subject_open,
                        cast(coalesce(sum(case when username = $1 then body_bytes else 0 end), 0) as bigint) as subject_bytes,
                        cast(coalesce(sum(body_bytes), 0) as bigint) as total_bytes
                 from challenges where status in ('pending', 'awaiting') and expires_at > $2",
            )
            .bind(username)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
            Ok($crate::store::ChallengeUsage {
                subject_open: row.try_get("subject_open")?,
                subject_bytes: row.try_get("subject_bytes")?,
                total_bytes: row.try_get("total_bytes")?,
            })
        }

        async fn consume_on(conn: &mut Conn, grant_id: &str, now: i64) -> Result<bool, StoreError> {
            // One statement, so two concurrent retries cannot both take the last use.
            let done = sqlx::query(
                "update grants set uses_left = uses_left - 1
                 where grant_id = $1 and expires_at > $2 and revoked_at is null and (uses_left is null or uses_left > 0)",
            )
            .bind(grant_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn approvals_on(conn: &mut Conn, code: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
            let rows = sqlx::query("select * from approvals where challenge_code = $1 order by decided_at, approver")
                .bind(code)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(approval_from).collect()
        }

        async fn revoke_on(conn: &mut Conn, grant_id: &str, now: i64, actor: &str) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "update grants set revoked_at = $1, revoked_by = $3 where grant_id = $2 and revoked_at is null and expires_at > $1",
            )
            .bind(now)
            .bind(grant_id)
            .bind(actor)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        /// A unit of work on this backend.
        pub struct Unit {
            tx: sqlx::Transaction<'static, $db>,
            /// Held to the end where the backend serialises writers in-process (SQLite).
            _serial: Option<tokio::sync::OwnedMutexGuard<()>>,
            audit_locked: bool,
        }

        #[async_trait::async_trait]
        impl $crate::store::UnitOfWork for Unit {
            async fn challenge(&mut self, code: &str) -> Result<Option<Challenge>, StoreError> {
                let row = sqlx::query(concat!("select * from challenges where code = $1", $for_update))
                    .bind(code)
                    .fetch_optional(&mut *self.tx)
                    .await?;
                row.as_ref().map(challenge_from).transpose()
            }

            async fn update_challenge(&mut self, c: &Challenge) -> Result<(), StoreError> {
                let body = serde_json::to_string(c).map_err(corrupt("challenge"))?;
                sqlx::query("update challenges set status = $1, grant_id = $2, expires_at = $3, body = $4, body_bytes = $5 where code = $6")
                    .bind(c.status.as_str())
                    .bind(&c.grant_id)
                    .bind(c.expires_at)
                    .bind(&body)
                    .bind(body.len() as i64)
                    .bind(&c.code)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn approvals(&mut self, code: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
                approvals_on(&mut self.tx, code).await
            }

            async fn put_approval(&mut self, a: &ApprovalRecord) -> Result<bool, StoreError> {
                let groups = serde_json::to_string(&a.groups).map_err(corrupt("approval groups"))?;
                let evidence = serde_json::to_string(&a.evidence).map_err(corrupt("approval evidence"))?;
                let done = sqlx::query(
                    "insert into approvals (challenge_code, person, approver, decision, reason, groups, evidence, decided_at, seal)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9) on conflict do nothing",
                )
                .bind(&a.challenge_code)
                .bind(&a.person)
                .bind(&a.approver)
                .bind(a.decision.as_str())
                .bind(&a.reason)
                .bind(groups)
                .bind(evidence)
                .bind(a.decided_at)
                .bind(&a.seal)
                .execute(&mut *self.tx)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn lock_challenges(&mut self) -> Result<(), StoreError> {
                if !self.audit_locked {
                    <$store>::lock_audit(&mut self.tx).await?;
                    self.audit_locked = true;
                }
                Ok(())
            }

            async fn pending_challenge(&mut self, digest: &str, guardrail: &str, now: i64) -> Result<Option<Challenge>, StoreError> {
                pending_on(&mut *self.tx, digest, guardrail, now).await
            }

            async fn open_challenge_usage(&mut self, username: &str, now: i64) -> Result<$crate::store::ChallengeUsage, StoreError> {
                usage_on(&mut *self.tx, username, now).await
            }

            async fn insert_challenge(&mut self, c: &Challenge) -> Result<bool, StoreError> {
                insert_challenge_row(&mut *self.tx, c).await
            }

            async fn consume_grant(&mut self, grant_id: &str, now: i64) -> Result<bool, StoreError> {
                consume_on(&mut *self.tx, grant_id, now).await
            }

            async fn insert_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
                insert_grant_row(&mut self.tx, grant).await
            }

            async fn revoke_grant(&mut self, grant_id: &str, now: i64, actor: &str) -> Result<bool, StoreError> {
                revoke_on(&mut self.tx, grant_id, now, actor).await
            }

            async fn expire_due(&mut self, now: i64) -> Result<Vec<Challenge>, StoreError> {
                // `returning`: each row is reported by the one process that expired it, so every
                // expiry is recorded and announced once, however many replicas run this.
                let rows = sqlx::query(
                    "update challenges set status = 'expired' where status in ('pending', 'awaiting') and expires_at <= $1 returning *",
                )
                .bind(now)
                .fetch_all(&mut *self.tx)
                .await?;
                rows.iter().map(challenge_from).collect()
            }

            async fn set_groups(&mut self, username: &str, groups: &[String]) -> Result<Option<Vec<String>>, StoreError> {
                let Some(before) = locked_user(&mut self.tx, username).await? else {
                    return Ok(None);
                };
                let groups = serde_json::to_string(groups).map_err(corrupt("account groups"))?;
                sqlx::query("update users set groups = $1 where username = $2")
                    .bind(groups)
                    .bind(username)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(Some(before.groups))
            }

            async fn use_setup_token(&mut self, token_hash: &str, now: i64) -> Result<bool, StoreError> {
                take_setup_token(&mut self.tx, token_hash, now).await
            }

            async fn set_role(&mut self, username: &str, role: Role) -> Result<Option<Role>, StoreError> {
                let Some(before) = locked_user(&mut self.tx, username).await? else {
                    return Ok(None);
                };
                sqlx::query("update users set role = $1 where username = $2")
                    .bind(role.as_str())
                    .bind(username)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(Some(before.role))
            }

            async fn block_credential(&mut self, credential_id: &str, reason: &str, at: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "update credentials set blocked_at = $1, blocked_reason = $2 where credential_id = $3 and blocked_at is null",
                )
                .bind(at)
                .bind(reason)
                .bind(credential_id)
                .execute(&mut *self.tx)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_disabled(&mut self, username: &str, at: Option<i64>) -> Result<Option<Option<i64>>, StoreError> {
                let row = sqlx::query(concat!("select disabled_at from users where username = $1", $for_update))
                    .bind(username)
                    .fetch_optional(&mut *self.tx)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let before: Option<i64> = row.try_get("disabled_at")?;
                sqlx::query("update users set disabled_at = $1 where username = $2")
                    .bind(at)
                    .bind(username)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(Some(before))
            }

            async fn create_user(&mut self, user: &User) -> Result<(), StoreError> {
                insert_user(&mut self.tx, user).await
            }

            async fn add_credential(&mut self, credential: &Credential) -> Result<(), StoreError> {
                insert_credential(&mut self.tx, credential).await
            }

            async fn append_audit(&mut self, event: &AuditEvent) -> Result<(), StoreError> {
                if !self.audit_locked {
                    <$store>::lock_audit(&mut self.tx).await?;
                    self.audit_locked = true;
                }
                append_audit_row(&mut self.tx, event).await
            }

            async fn latest_guardrail_version(&mut self) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::query_scalar("select max(number) from guardrail_versions")
                    .fetch_one(&mut *self.tx)
                    .await?)
            }

            async fn insert_guardrail_version(&mut self, v: &$crate::guardrails::versions::GuardrailVersion) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "insert into guardrail_versions (number, created_at, author, reason, documents, digest, seal)
                     values ($1, $2, $3, $4, $5, $6, $7) on conflict (number) do nothing",
                )
                .bind(v.number)
                .bind(v.created_at)
                .bind(&v.author)
                .bind(&v.reason)
                .bind(&v.documents)
                .bind(&v.digest)
                .bind(&v.seal)
                .execute(&mut *self.tx)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn commit(self: Box<Self>) -> Result<(), StoreError> {
                self.tx.commit().await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::AccountStore for $store {
            async fn count_users(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar::<_, i64>("select count(*) from users").fetch_one(&self.pool).await?)
            }
            async fn create_user(&self, user: &User) -> Result<(), StoreError> {
                insert_user(&mut *self.pool.acquire().await?, user).await
            }
            async fn user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
                let row = sqlx::query("select * from users where user_id = $1").bind(user_id).fetch_optional(&self.pool).await?;
                row.as_ref().map(user_from).transpose()
            }
            async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
                let row =
                    sqlx::query("select * from users where username = $1").bind(username).fetch_optional(&self.pool).await?;
                row.as_ref().map(user_from).transpose()
            }
            async fn add_credential(&self, c: &Credential) -> Result<(), StoreError> {
                insert_credential(&mut *self.pool.acquire().await?, c).await
            }
            async fn credentials_of(&self, user_id: &str) -> Result<Vec<Credential>, StoreError> {
                let rows = sqlx::query("select * from credentials where user_id = $1 order by created_at, credential_id")
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(credential_from).collect()
            }
            async fn touch_credential(&self, credential_id: &str, passkey: &str, used_at: i64) -> Result<(), StoreError> {
                sqlx::query("update credentials set passkey = $1, last_used_at = $2 where credential_id = $3 and blocked_at is null")
                    .bind(passkey)
                    .bind(used_at)
                    .bind(credential_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            async fn credential(&self, credential_id: &str) -> Result<Option<Credential>, StoreError> {
                let row = sqlx::query("select * from credentials where credential_id = $1")
                    .bind(credential_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(credential_from).transpose()
            }
            async fn rename_credential(&self, user_id: &str, credential_id: &str, name: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("update credentials set name = $1 where credential_id = $2 and user_id = $3")
                    .bind(name)
                    .bind(credential_id)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
            async fn remove_credential(&self, user_id: &str, credential_id: &str) -> Result<bool, StoreError> {
                // One statement: the account must keep another usable credential, so nobody locks
                // themselves out (a blocked key does not count, it can never sign in again).
                let done = sqlx::query(
                    "delete from credentials where credential_id = $1 and user_id = $2
                     and exists (select 1 from credentials o where o.user_id = $2 and o.credential_id <> $1
                                 and o.blocked_at is null)",
                )
                .bind(credential_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }
            async fn block_credential(&self, credential_id: &str, reason: &str, at: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "update credentials set blocked_at = $1, blocked_reason = $2 where credential_id = $3 and blocked_at is null",
                )
                .bind(at)
                .bind(reason)
                .bind(credential_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }
            async fn use_setup_token(&self, token_hash: &str, now: i64) -> Result<bool, StoreError> {
                take_setup_token(&mut *self.pool.acquire().await?, token_hash, now).await
            }
            async fn put_invitation(&self, token_hash: &str, created_at: i64, expires_at: i64, invitation: &Invitation) -> Result<(), StoreError> {
                sqlx::query("insert into setup_tokens (token_hash, created_at, expires_at, role, username, groups) values ($1, $2, $3, $4, $5, $6)")
                    .bind(token_hash)
                    .bind(created_at)
                    .bind(expires_at)
                    .bind(invitation.role.as_str())
                    .bind(&invitation.username)
                    .bind(serde_json::to_string(&invitation.groups).map_err(corrupt("invitation groups"))?)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            async fn invitation(&self, token_hash: &str, now: i64) -> Result<Option<Invitation>, StoreError> {
                let row = sqlx::query(
                    "select role, username, groups from setup_tokens where token_hash = $1 and used_at is null and expires_at > $2",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let role: String = row.try_get("role")?;
                // A link without a fixed username (made before admins fixed every one) creates nothing.
                let Some(username) = row.try_get::<Option<String>, _>("username")? else { return Ok(None) };
                Ok(Some(Invitation {
                    role: Role::from_name(&role).ok_or(StoreError::Corrupt("invitation role", role))?,
                    username,
                    groups: serde_json::from_str(row.try_get::<&str, _>("groups")?).map_err(corrupt("invitation groups"))?,
                }))
            }
            async fn pending_invitations(&self, now: i64) -> Result<Vec<(Invitation, i64, i64)>, StoreError> {
                let rows = sqlx::query(
                    "select role, username, groups, created_at, expires_at from setup_tokens
                     where used_at is null and expires_at > $1 and username is not null
                     order by created_at desc limit 200",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        let role: String = row.try_get("role")?;
                        let invitation = Invitation {
                            role: Role::from_name(&role).ok_or(StoreError::Corrupt("invitation role", role))?,
                            username: row.try_get("username")?,
                            groups: serde_json::from_str(row.try_get::<&str, _>("groups")?).map_err(corrupt("invitation groups"))?,
                        };
                        Ok((invitation, row.try_get("created_at")?, row.try_get("expires_at")?))
                    })
                    .collect()
            }
            async fn set_role(&self, username: &str, role: Role) -> Result<bool, StoreError> {
                let done = sqlx::query("update users set role = $1 where username = $2")
                    .bind(role.as_str())
                    .bind(username)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
            async fn set_disabled(&self, username: &str, at: Option<i64>) -> Result<bool, StoreError> {
                let done = sqlx::query("update users set disabled_at = $1 where username = $2")
                    .bind(at)
                    .bind(username)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
            async fn disabled_at(&self, user_id: &str) -> Result<Option<i64>, StoreError> {
                let at: Option<Option<i64>> = sqlx::query_scalar("select disabled_at from users where user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(at.flatten())
            }
            async fn put_first_admin_link(&self, token_hash: &str, created_at: i64, expires_at: i64, invitation: &Invitation) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin_with($begin_write).await?;
                let marked = sqlx::query(
                    "insert into first_admin_link (singleton, username, created_at) values (1, $1, $2) on conflict (singleton) do nothing",
                )
                .bind(&invitation.username)
                .bind(created_at)
                .execute(&mut *tx)
                .await?;
                if marked.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query("insert into setup_tokens (token_hash, created_at, expires_at, role, username, groups) values ($1, $2, $3, $4, $5, $6)")
                    .bind(token_hash)
                    .bind(created_at)
                    .bind(expires_at)
                    .bind(invitation.role.as_str())
                    .bind(&invitation.username)
                    .bind(serde_json::to_string(&invitation.groups).map_err(corrupt("invitation groups"))?)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
            async fn set_groups(&self, username: &str, groups: &[String]) -> Result<bool, StoreError> {
                let groups = serde_json::to_string(groups).map_err(corrupt("account groups"))?;
                let done = sqlx::query("update users set groups = $1 where username = $2")
                    .bind(groups)
                    .bind(username)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
            async fn users(&self) -> Result<Vec<User>, StoreError> {
                let rows = sqlx::query("select * from users order by username").fetch_all(&self.pool).await?;
                rows.iter().map(user_from).collect()
            }
            async fn session_epoch(&self, user_key: &str) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::query_scalar("select not_before from session_epochs where user_key = $1")
                    .bind(user_key)
                    .fetch_optional(&self.pool)
                    .await?)
            }
            async fn set_session_epoch(&self, user_key: &str, not_before: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "insert into session_epochs (user_key, not_before) values ($1, $2) \
                     on conflict (user_key) do update set not_before = excluded.not_before",
                )
                .bind(user_key)
                .bind(not_before)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ElevationStore for $store {
            async fn pending_challenge(&self, digest: &str, guardrail: &str, now: i64) -> Result<Option<Challenge>, StoreError> {
                pending_on(&mut *self.pool.acquire().await?, digest, guardrail, now).await
            }
            async fn insert_challenge(&self, c: &Challenge) -> Result<bool, StoreError> {
                insert_challenge_row(&mut *self.pool.acquire().await?, c).await
            }
            async fn open_challenge_usage(&self, username: &str, now: i64) -> Result<$crate::store::ChallengeUsage, StoreError> {
                usage_on(&mut *self.pool.acquire().await?, username, now).await
            }
            async fn challenge(&self, code: &str) -> Result<Option<Challenge>, StoreError> {
                let row = sqlx::query("select * from challenges where code = $1").bind(code).fetch_optional(&self.pool).await?;
                row.as_ref().map(challenge_from).transpose()
            }
            async fn challenge_audience(&self, code: &str) -> Result<Option<$crate::challenges::Audience>, StoreError> {
                let row = sqlx::query(concat!("select username, ", $rule_groups, " as rule_groups from challenges where code = $1"))
                    .bind(code)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let groups: Option<String> = row.try_get("rule_groups")?;
                Ok(Some($crate::challenges::Audience {
                    subject: row.try_get("username")?,
                    rule_groups: match groups {
                        Some(text) => serde_json::from_str(&text).map_err(corrupt("challenge rule groups"))?,
                        None => Vec::new(),
                    },
                }))
            }
            async fn challenges_of(&self, username: &str, limit: i64) -> Result<Vec<Challenge>, StoreError> {
                let rows = sqlx::query("select * from challenges where username = $1 order by created_at desc, code limit $2")
                    .bind(username)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(challenge_from).collect()
            }
            async fn awaiting_challenges(&self, now: i64, limit: i64) -> Result<Vec<Challenge>, StoreError> {
                // Without the objects (up to megabytes each): the queue never shows them.
                let rows = sqlx::query(concat!(
                    "select code, status, grant_id, ", $light_body, " as body from challenges \
                     where status = 'awaiting' and expires_at > $1 order by created_at desc, code limit $2",
                ))
                .bind(now)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(challenge_from).collect()
            }
            async fn broken_glass_since(&self, since: i64, limit: i64) -> Result<Vec<Challenge>, StoreError> {
                // The flag is in the grant's evidence (JSON text, written by this service).
                let rows = sqlx::query(concat!(
                    "select code, status, grant_id, ", $light_body, " as body from challenges \
                     where grant_id in (select grant_id from grants \
                       where created_at >= $1 and evidence like '%\"breakGlass\":true%') \
                     order by created_at desc, code limit $2",
                ))
                .bind(since)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(challenge_from).collect()
            }
            async fn recent_rejection(&self, digest: &str, guardrail: &str, since: i64) -> Result<Option<Challenge>, StoreError> {
                let row = sqlx::query(
                    "select c.* from challenges c
                     where c.digest = $1 and c.guardrail = $2 and c.status = 'rejected'
                       and exists (select 1 from approvals a where a.challenge_code = c.code and a.decided_at >= $3)
                     order by c.created_at desc limit 1",
                )
                .bind(digest)
                .bind(guardrail)
                .bind(since)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(challenge_from).transpose()
            }
            async fn awaiting_approvals(&self, now: i64) -> Result<Vec<ApprovalRecord>, StoreError> {
                let rows = sqlx::query(
                    "select a.* from approvals a join challenges c on c.code = a.challenge_code \
                     where c.status = 'awaiting' and c.expires_at > $1 order by a.decided_at, a.person",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(approval_from).collect()
            }
            async fn approvals_of(&self, code: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
                approvals_on(&mut *self.pool.acquire().await?, code).await
            }
            async fn grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
                let row = sqlx::query("select * from grants where grant_id = $1").bind(grant_id).fetch_optional(&self.pool).await?;
                row.as_ref().map(grant_from).transpose()
            }
            async fn challenge_grants(&self, code: &str) -> Result<Vec<Grant>, StoreError> {
                let rows = sqlx::query("select * from grants where challenge_code = $1 order by created_at, grant_id")
                    .bind(code)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(grant_from).collect()
            }
            async fn live_grants(&self, username: &str, guardrail: &str, now: i64) -> Result<Vec<Grant>, StoreError> {
                let rows = sqlx::query(
                    "select * from grants where username = $1 and guardrail = $2 and expires_at > $3
                     and revoked_at is null and (uses_left is null or uses_left > 0) order by created_at",
                )
                .bind(username)
                .bind(guardrail)
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(grant_from).collect()
            }
            async fn consume_grant(&self, grant_id: &str, now: i64) -> Result<bool, StoreError> {
                consume_on(&mut *self.pool.acquire().await?, grant_id, now).await
            }
            async fn all_live_grants(&self, now: i64) -> Result<Vec<LiveGrant>, StoreError> {
                let rows = sqlx::query(
                    "select grant_id, username, guardrail, cluster, scope, digest, namespace, object_key,
                            uses_left, expires_at
                     from grants where expires_at > $1 and revoked_at is null and (uses_left is null or uses_left > 0)
                     order by created_at, grant_id",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        let scope: &str = row.try_get("scope")?;
                        Ok(LiveGrant {
                            id: row.try_get("grant_id")?,
                            username: row.try_get("username")?,
                            guardrail: row.try_get("guardrail")?,
                            cluster: row.try_get("cluster")?,
                            scope: GrantScope::parse(scope)
                                .ok_or_else(|| StoreError::Corrupt("grant scope", scope.to_owned()))?,
                            digest: row.try_get("digest")?,
                            namespace: row.try_get("namespace")?,
                            object_key: row.try_get("object_key")?,
                            uses_left: row.try_get("uses_left")?,
                            expires_at: row.try_get("expires_at")?,
                            // Not trusted from the row: set from the token when it is vouched for.
                            break_glass: false,
                        })
                    })
                    .collect()
            }
            async fn grant_tokens(&self, ids: &[String]) -> Result<Vec<(String, String)>, StoreError> {
                let mut out = Vec::with_capacity(ids.len());
                // Chunks keep the statement under both backends' bind-parameter limits.
                for chunk in ids.chunks(500) {
                    let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "select grant_id, token from grants where grant_id in ({})",
                        placeholders.join(",")
                    );
                    let mut query = sqlx::query(&sql);
                    for id in chunk {
                        query = query.bind(id);
                    }
                    for row in query.fetch_all(&self.pool).await? {
                        out.push((row.try_get("grant_id")?, row.try_get("token")?));
                    }
                }
                Ok(out)
            }
            async fn revoke_grant(&self, grant_id: &str, now: i64, actor: &str) -> Result<bool, StoreError> {
                let revoked = revoke_on(&mut *self.pool.acquire().await?, grant_id, now, actor).await?;
                if revoked {
                    // Other replicas listening drop it at once (PostgreSQL; a no-op on SQLite).
                    self.notify_channel($crate::store::REVOCATION_CHANNEL, grant_id).await;
                }
                Ok(revoked)
            }
            async fn revoked_since(&self, after: i64) -> Result<Vec<$crate::store::RevokedGrant>, StoreError> {
                let rows = sqlx::query(
                    "select grant_id, username, guardrail, expires_at, revoked_at
                     from grants where revoked_at >= $1 order by revoked_at, grant_id",
                )
                .bind(after)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::store::RevokedGrant {
                            id: row.try_get("grant_id")?,
                            username: row.try_get("username")?,
                            guardrail: row.try_get("guardrail")?,
                            expires_at: row.try_get("expires_at")?,
                            revoked_at: row.try_get("revoked_at")?,
                        })
                    })
                    .collect()
            }
            async fn revocation_feed(&self) -> Result<Option<$crate::store::RevocationFeed>, StoreError> {
                self.listen_channel($crate::store::REVOCATION_CHANNEL).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::AuditStore for $store {
            async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
                let _serial = self.audit_mutex.lock().await;
                let mut tx = self.pool.begin_with($begin_write).await?;
                Self::lock_audit(&mut tx).await?;
                append_audit_row(&mut tx, event).await?;
                tx.commit().await?;
                Ok(())
            }
            async fn audit_records(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
                let rows = sqlx::query("select * from audit_events where seq > $1 order by seq limit $2")
                    .bind(after_seq)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(audit_record_from).collect()
            }
            async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
                let row = sqlx::query("select * from audit_events order by seq desc limit 1")
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(audit_record_from).transpose()
            }
            async fn append_audit_checkpoint(&self, c: &AuditCheckpoint) -> Result<(), StoreError> {
                // Replicas sharing a key may sign the same head; one copy of that is enough.
                sqlx::query(
                    "insert into audit_checkpoints (seq, hash, at, kid, signature) values ($1, $2, $3, $4, $5)
                     on conflict (seq, kid) do nothing",
                )
                .bind(c.seq)
                .bind(&c.hash)
                .bind(c.at)
                .bind(&c.kid)
                .bind(&c.sig)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
            async fn audit_checkpoints(&self, after_seq: i64, through_seq: i64) -> Result<Vec<AuditCheckpoint>, StoreError> {
                let rows = sqlx::query(
                    "select seq, hash, at, kid, signature from audit_checkpoints
                     where seq > $1 and seq <= $2 order by seq, kid",
                )
                .bind(after_seq)
                .bind(through_seq)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(AuditCheckpoint {
                            seq: row.try_get("seq")?,
                            hash: row.try_get("hash")?,
                            at: row.try_get("at")?,
                            kid: row.try_get("kid")?,
                            sig: row.try_get("signature")?,
                        })
                    })
                    .collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::DecisionStore for $store {
            async fn append_decisions(&self, records: &[$crate::decisions::DecisionRecord]) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin_write).await?;
                for r in records {
                    sqlx::query(
                        "insert into decisions (at, uid, cluster, username, operation, resource, namespace, name,
                                                dry_run, action, outcome, hits, explanations, policy_version)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    )
                    .bind(r.at)
                    .bind(&r.uid)
                    .bind(&r.cluster)
                    .bind(&r.username)
                    .bind(&r.operation)
                    .bind(&r.resource)
                    .bind(&r.namespace)
                    .bind(&r.name)
                    .bind(i64::from(r.dry_run))
                    .bind(&r.action)
                    .bind(&r.outcome)
                    .bind(r.hits.to_string())
                    .bind(r.explanations.to_string())
                    .bind(&r.policy_version)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }
            async fn recent_decisions(&self, limit: i64) -> Result<Vec<$crate::decisions::DecisionRecord>, StoreError> {
                let rows = sqlx::query("select * from decisions order by decision_id desc limit $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                let json = |row: &Row, column: &str| -> Result<serde_json::Value, StoreError> {
                    let text: &str = row.try_get(column)?;
                    serde_json::from_str(text).map_err(|e| StoreError::Corrupt("decision", e.to_string()))
                };
                rows.iter()
                    .map(|row| {
                        Ok($crate::decisions::DecisionRecord {
                            at: row.try_get("at")?,
                            uid: row.try_get("uid")?,
                            cluster: row.try_get("cluster")?,
                            username: row.try_get("username")?,
                            operation: row.try_get("operation")?,
                            resource: row.try_get("resource")?,
                            namespace: row.try_get("namespace")?,
                            name: row.try_get("name")?,
                            dry_run: row.try_get::<i64, _>("dry_run")? != 0,
                            action: row.try_get("action")?,
                            outcome: row.try_get("outcome")?,
                            hits: json(row, "hits")?,
                            explanations: json(row, "explanations")?,
                            policy_version: row.try_get("policy_version")?,
                        })
                    })
                    .collect()
            }
            async fn guardrail_trips(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
                let rows = sqlx::query($trips).bind(since).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|row| Ok((row.try_get::<Option<String>, _>("guardrail")?.unwrap_or_default(), row.try_get("trips")?)))
                    .collect()
            }
        }

        fn guardrail_version_from(row: &Row) -> Result<$crate::guardrails::versions::GuardrailVersion, StoreError> {
            Ok($crate::guardrails::versions::GuardrailVersion {
                number: row.try_get("number")?,
                created_at: row.try_get("created_at")?,
                author: row.try_get("author")?,
                reason: row.try_get("reason")?,
                documents: row.try_get("documents")?,
                digest: row.try_get("digest")?,
                seal: row.try_get("seal")?,
            })
        }

        #[async_trait::async_trait]
        impl $crate::store::GuardrailStore for $store {
            async fn latest_guardrail_version(&self) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::query_scalar("select max(number) from guardrail_versions")
                    .fetch_one(&self.pool)
                    .await?)
            }
            async fn guardrail_version(&self, number: i64) -> Result<Option<$crate::guardrails::versions::GuardrailVersion>, StoreError> {
                sqlx::query("select * from guardrail_versions where number = $1")
                    .bind(number)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(guardrail_version_from)
                    .transpose()
            }
            async fn guardrail_versions(&self, limit: i64) -> Result<Vec<$crate::guardrails::versions::GuardrailVersion>, StoreError> {
                sqlx::query("select * from guardrail_versions order by number desc limit $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(guardrail_version_from)
                    .collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::TrafficStore for $store {
            async fn record_traffic(&self, counts: &[$crate::traffic::recorder::ShapeCount], now: i64) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin_write).await?;
                for c in counts {
                    let s = &c.shape;
                    sqlx::query(
                        "insert into traffic_shapes (shape_id, operation, api_group, resource, subresource, namespace,
                                                     username, count, first_seen, last_seen, matched, request)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)
                         on conflict (shape_id) do update set count = traffic_shapes.count + excluded.count,
                             last_seen = excluded.last_seen,
                             request = coalesce(traffic_shapes.request, excluded.request),
                             matched = case when traffic_shapes.request is null then excluded.matched else traffic_shapes.matched end",
                    )
                    .bind(s.id())
                    .bind(&s.operation)
                    .bind(&s.group)
                    .bind(&s.resource)
                    .bind(&s.subresource)
                    .bind(&s.namespace)
                    .bind(&s.username)
                    .bind(c.count)
                    .bind(now)
                    .bind(i32::from(c.matched))
                    .bind(c.example.as_ref().map(|e| e.to_string()))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }
            async fn traffic(&self, limit: i64) -> Result<Vec<$crate::traffic::ShapeSample>, StoreError> {
                let rows = sqlx::query("select * from traffic_shapes order by count desc, shape_id limit $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        let request: Option<&str> = row.try_get("request")?;
                        Ok($crate::traffic::ShapeSample {
                            shape: $crate::traffic::Shape {
                                operation: row.try_get("operation")?,
                                group: row.try_get("api_group")?,
                                resource: row.try_get("resource")?,
                                subresource: row.try_get("subresource")?,
                                namespace: row.try_get("namespace")?,
                                username: row.try_get("username")?,
                            },
                            count: row.try_get("count")?,
                            first_seen: row.try_get("first_seen")?,
                            last_seen: row.try_get("last_seen")?,
                            matched: row.try_get::<i32, _>("matched")? != 0,
                            request: match request {
                                Some(text) => serde_json::from_str(text).map_err(corrupt("recorded traffic"))?,
                                None => serde_json::Value::Null,
                            },
                        })
                    })
                    .collect()
            }
            async fn prune_traffic(&self, before: i64) -> Result<u64, StoreError> {
                let mut tx = self.pool.begin_with($begin_write).await?;
                let old = sqlx::query("delete from traffic_shapes where last_seen < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                // Past the bound, the least recently seen go (ties at the cut go with them).
                let over = sqlx::query(
                    "delete from traffic_shapes where last_seen <=
                         (select last_seen from traffic_shapes order by last_seen desc limit 1 offset $1)",
                )
                .bind($crate::traffic::recorder::MAX_STORED_SHAPES)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(old + over)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar("select value from settings where key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?)
            }
            async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
                sqlx::query("insert into settings (key, value) values ($1, $2) on conflict (key) do update set value = excluded.value")
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            async fn begin(&self) -> Result<Box<dyn $crate::store::UnitOfWork>, StoreError> {
                let (tx, serial) = self.begin_unit().await?;
                Ok(Box::new(Unit { tx, _serial: serial, audit_locked: false }))
            }
            async fn prune(&self, before: i64) -> Result<$crate::store::Pruned, StoreError> {
                let mut tx = self.pool.begin_with($begin_write).await?;
                let grants = sqlx::query(
                    "delete from grants where expires_at < $1 or (revoked_at is not null and revoked_at < $1)",
                )
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let challenges = sqlx::query(
                    "delete from challenges where created_at < $1 and (status not in ('pending', 'awaiting') or expires_at < $1)
                     and not exists (select 1 from grants where grants.challenge_code = challenges.code)",
                )
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let decisions = sqlx::query("delete from decisions where at < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok($crate::store::Pruned { grants, challenges, decisions })
            }
            async fn announce(&self, channel: &str, payload: &str) {
                self.notify_channel(channel, payload).await
            }
            async fn feed(&self, channel: &str) -> Result<Option<$crate::store::Feed>, StoreError> {
                self.listen_channel(channel).await
            }
        }
    };
}

pub(crate) use impl_store;
