//! Finding 8: the audit chain gets signed checkpoints (in the database and in an anchor file outside
//! it), `countersign audit verify` names the first broken link, and the audit rows are append-only.
//! Each case runs on SQLite and on PostgreSQL: `audit_chain::sqlite::*`, `audit_chain::postgres::*`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{ensure, Context};
use countersign::audit::anchor::{AnchorReader, ANCHOR_FILE};
use countersign::audit::checkpoint::{AuditSigner, KEY_FILE};
use countersign::audit::checkpointer::{keep_checkpointing, CheckpointError, Checkpointer};
use countersign::audit::{chain_hash, first_broken_link, AuditEvent, AuditRecord, GENESIS_HASH};
use serde_json::json;
use tempfile::TempDir;

use crate::support::{on_both_backends, TestDb};

on_both_backends!(
    finding_8_audit_verify_passes_an_intact_chain_read_in_pages,
    finding_8_audit_verify_catches_an_edited_row,
    finding_8_audit_verify_catches_a_deleted_row,
    finding_8_audit_verify_catches_a_cut_off_tail,
    finding_8_audit_rows_cannot_be_updated_or_deleted,
    finding_8_serve_task_checkpoints_when_the_head_moves,
);

fn event(i: i64) -> AuditEvent {
    AuditEvent {
        at: 1_700_000_000 + i,
        kind: if i % 2 == 0 {
            "grant.used"
        } else {
            "challenge.created"
        }
        .into(),
        actor: "webhook".into(),
        subject: format!("K7Q2M9X{}", (b'A' + (i % 26) as u8) as char),
        detail: json!({ "i": i, "text": "quote \" and ünïcødé" }),
    }
}

/// A data dir with the audit key and anchor file, as `serve` keeps them.
struct DataDir {
    dir: TempDir,
    checkpointer: Checkpointer,
}

impl DataDir {
    fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let signer = AuditSigner::load_or_create(&dir.path().join(KEY_FILE))?;
        let checkpointer = Checkpointer::open(signer, &dir.path().join(ANCHOR_FILE))?;
        Ok(Self { dir, checkpointer })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `countersign audit verify` on this data dir and the test database.
    fn verify(&self, db: &TestDb, extra: &[&str]) -> anyhow::Result<Output> {
        let mut args = vec![
            "audit",
            "verify",
            "--database-url",
            db.url.as_str(),
            "--data-dir",
            self.path().to_str().context("temp path is not UTF-8")?,
        ];
        args.extend(extra);
        countersign(&args)
    }
}

fn countersign(args: &[&str]) -> anyhow::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .env_remove("COUNTERSIGN_DATA_DIR")
        .output()
        .with_context(|| format!("running countersign {args:?}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Verify passed; returns stdout.
fn intact(out: &Output, backend: &str) -> anyhow::Result<String> {
    ensure!(
        out.status.success(),
        "[{backend}] verify failed on an intact chain: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    Ok(text(&out.stdout))
}

/// Verify failed naming `seq` (and `why`); returns stderr.
fn broken_at(out: &Output, seq: i64, why: &str, backend: &str) -> anyhow::Result<String> {
    let stderr = text(&out.stderr);
    ensure!(
        !out.status.success(),
        "[{backend}] verify passed a tampered chain: {}",
        text(&out.stdout)
    );
    ensure!(
        stderr.contains(&format!("audit chain broken at seq {seq}:")) && stderr.contains(why),
        "[{backend}] expected a break at seq {seq} ({why}), got: {stderr}"
    );
    Ok(stderr)
}

/// Append `n` events through the store; returns the chain.
async fn append(db: &TestDb, from: i64, n: i64) -> anyhow::Result<Vec<AuditRecord>> {
    for i in from..from + n {
        db.store.append_audit(&event(i)).await?;
    }
    Ok(db.store.audit_records(0, 10_000).await?)
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Recompute every hash from `from_seq` on, as an attacker who edited or removed a row would to
/// make the unkeyed chain hold again.
async fn rechain(db: &TestDb) -> anyhow::Result<()> {
    let records = db.store.audit_records(0, 10_000).await?;
    let mut prev = GENESIS_HASH.to_owned();
    for r in &records {
        let hash = chain_hash(&prev, &r.event);
        if r.prev_hash != prev || r.hash != hash {
            db.execute(&format!(
                "update audit_events set prev_hash = {}, hash = {} where seq = {}",
                quote(&prev),
                quote(&hash),
                r.seq
            ))
            .await?;
        }
        prev = hash;
    }
    let records = db.store.audit_records(0, 10_000).await?;
    ensure!(first_broken_link(&records).is_none(), "rechaining failed");
    Ok(())
}

async fn finding_8_audit_verify_passes_an_intact_chain_read_in_pages(
    db: &TestDb,
) -> anyhow::Result<()> {
    let mut data = DataDir::new()?;
    // Empty chain: nothing to verify, nothing to sign.
    let out = data.verify(db, &[])?;
    assert!(intact(&out, db.backend)?.contains("no events yet"));
    assert!(data
        .checkpointer
        .checkpoint(db.store.as_ref())
        .await?
        .is_none());

    // More than two pages (1,000 records each), written in one statement to stay quick.
    let mut prev = GENESIS_HASH.to_owned();
    let mut rows = Vec::new();
    for i in 1..=2_100 {
        let e = event(i);
        let hash = chain_hash(&prev, &e);
        rows.push(format!(
            "({}, {}, {}, {}, {}, {}, {})",
            e.at,
            quote(&e.kind),
            quote(&e.actor),
            quote(&e.subject),
            quote(&e.detail.to_string()),
            quote(&prev),
            quote(&hash)
        ));
        prev = hash;
        if i == 1_000 || i == 1_001 {
            db.execute(&format!(
                "insert into audit_events (at, kind, actor, subject, detail, prev_hash, hash) values {}",
                rows.join(", ")
            ))
            .await?;
            rows.clear();
            // A checkpoint on each side of the first page boundary.
            data.checkpointer
                .checkpoint(db.store.as_ref())
                .await?
                .context("the head moved, a checkpoint is due")?;
        }
    }
    db.execute(&format!(
        "insert into audit_events (at, kind, actor, subject, detail, prev_hash, hash) values {}",
        rows.join(", ")
    ))
    .await?;
    let head = data
        .checkpointer
        .checkpoint(db.store.as_ref())
        .await?
        .context("checkpoint at the head")?;
    assert!(
        data.checkpointer
            .checkpoint(db.store.as_ref())
            .await?
            .is_none(),
        "a head that did not move is not signed again"
    );
    append(db, 2_101, 3).await?;

    let out = data.verify(db, &[])?;
    let stdout = intact(&out, db.backend)?;
    assert!(
        stdout.contains(&format!(
            "audit chain intact: 2103 events, head seq {}",
            head.seq + 3
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("checkpoints: 3 in the database, 3 in ")
            && stdout.contains(&format!(
                "newest at seq {} (3 newer events not yet checkpointed)",
                head.seq
            )),
        "{stdout}"
    );

    // The public key on its own (kept away from the host) verifies too; another key does not.
    let out = countersign(&[
        "audit",
        "public-key",
        "--data-dir",
        data.path().to_str().context("UTF-8")?,
    ])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let elsewhere = tempfile::tempdir()?;
    let public = elsewhere.path().join("audit.pub");
    std::fs::write(&public, &out.stdout)?;
    let public = public.to_str().context("UTF-8")?;
    intact(&data.verify(db, &["--public-key", public])?, db.backend)?;
    let other = elsewhere.path().join("other.pub");
    std::fs::write(
        &other,
        AuditSigner::generate().public_key().encode().as_bytes(),
    )?;
    broken_at(
        &data.verify(db, &["--public-key", other.to_str().context("UTF-8")?])?,
        1_000,
        "not trusted",
        db.backend,
    )?;
    Ok(())
}

async fn finding_8_audit_verify_catches_an_edited_row(db: &TestDb) -> anyhow::Result<()> {
    let mut data = DataDir::new()?;
    append(db, 1, 10).await?;
    let checkpoint = data
        .checkpointer
        .checkpoint(db.store.as_ref())
        .await?
        .context("checkpoint")?;
    intact(&data.verify(db, &[])?, db.backend)?;

    db.allow_audit_tampering().await?;
    let victim = checkpoint.seq - 6;
    assert_eq!(
        db.execute(&format!(
            r#"update audit_events set actor = 'mallory' where seq = {victim}"#
        ))
        .await?,
        1
    );
    broken_at(&data.verify(db, &[])?, victim, "edited", db.backend)?;

    // Recomputing the unkeyed hashes does not help: the signed checkpoint names the old head.
    rechain(db).await?;
    broken_at(
        &data.verify(db, &[])?,
        checkpoint.seq,
        "rewritten",
        db.backend,
    )?;
    Ok(())
}

async fn finding_8_audit_verify_catches_a_deleted_row(db: &TestDb) -> anyhow::Result<()> {
    let mut data = DataDir::new()?;
    let records = append(db, 1, 10).await?;
    let checkpoint = data
        .checkpointer
        .checkpoint(db.store.as_ref())
        .await?
        .context("checkpoint")?;

    db.allow_audit_tampering().await?;
    let removed = records[4].seq;
    assert_eq!(
        db.execute(&format!("delete from audit_events where seq = {removed}"))
            .await?,
        1
    );
    broken_at(
        &data.verify(db, &[])?,
        records[5].seq,
        "deleted",
        db.backend,
    )?;

    rechain(db).await?;
    broken_at(
        &data.verify(db, &[])?,
        checkpoint.seq,
        "rewritten",
        db.backend,
    )?;
    Ok(())
}

async fn finding_8_audit_verify_catches_a_cut_off_tail(db: &TestDb) -> anyhow::Result<()> {
    let mut data = DataDir::new()?;
    append(db, 1, 6).await?;
    data.checkpointer
        .checkpoint(db.store.as_ref())
        .await?
        .context("first checkpoint")?;
    let records = append(db, 7, 4).await?;
    let head = data
        .checkpointer
        .checkpoint(db.store.as_ref())
        .await?
        .context("checkpoint at the head")?;
    assert_eq!(head.seq, records[9].seq);

    // The attacker removes the last three records and every checkpoint that names them.
    db.allow_audit_tampering().await?;
    let cut = records[6].seq;
    db.execute(&format!("delete from audit_events where seq >= {cut}"))
        .await?;
    db.execute(&format!("delete from audit_checkpoints where seq >= {cut}"))
        .await?;
    let left = db.store.audit_records(0, 100).await?;
    assert_eq!(left.len(), 6);
    assert_eq!(
        first_broken_link(&left),
        None,
        "the chain alone cannot tell"
    );

    // The anchor file outside the database still names the old head.
    let stderr = broken_at(&data.verify(db, &[])?, head.seq, "cut off", db.backend)?;
    assert!(stderr.contains(ANCHOR_FILE), "{stderr}");
    // Without it, verify refuses to call the chain intact.
    let missing = data.path().join("elsewhere.jsonl");
    let out = data.verify(db, &["--checkpoints", missing.to_str().context("UTF-8")?])?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );

    // The running checkpointer does not sign the shortened chain.
    assert!(matches!(
        data.checkpointer.checkpoint(db.store.as_ref()).await,
        Err(CheckpointError::HeadWentBack { .. })
    ));

    // New events appended after the cut do not cover it up.
    append(db, 11, 5).await?;
    broken_at(&data.verify(db, &[])?, head.seq, "deleted", db.backend)?;
    // Second review, finding 12: nor does the running checkpointer sign the regrown chain once
    // its head is past the signed position again: the hash there is not the one it signed.
    let regrown = db.store.audit_head().await?.context("head")?;
    assert!(
        regrown.seq >= head.seq,
        "the chain did not grow back past the signed head"
    );
    assert!(
        matches!(
            data.checkpointer.checkpoint(db.store.as_ref()).await,
            Err(CheckpointError::Rewritten { seq }) if seq == head.seq
        ),
        "[{}] the checkpointer signed a rewritten chain",
        db.backend
    );
    Ok(())
}

async fn finding_8_audit_rows_cannot_be_updated_or_deleted(db: &TestDb) -> anyhow::Result<()> {
    let mut data = DataDir::new()?;
    let records = append(db, 1, 3).await?;
    data.checkpointer
        .checkpoint(db.store.as_ref())
        .await?
        .context("checkpoint")?;
    let seq = records[1].seq;
    let mut statements = vec![
        format!("update audit_events set actor = 'mallory' where seq = {seq}"),
        format!("delete from audit_events where seq = {seq}"),
        "delete from audit_events".to_owned(),
        "update audit_checkpoints set hash = 'x'".to_owned(),
        "delete from audit_checkpoints".to_owned(),
    ];
    if db.backend == "postgres" {
        statements.push("truncate audit_events".to_owned());
        statements.push("truncate audit_checkpoints".to_owned());
    }
    for sql in &statements {
        let refused = db.execute(sql).await;
        let error = match refused {
            Ok(n) => anyhow::bail!("[{}] `{sql}` was allowed ({n} rows)", db.backend),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            error.contains("append-only"),
            "[{}] `{sql}` failed for another reason: {error}",
            db.backend
        );
    }
    assert_eq!(db.store.audit_records(0, 100).await?, records);
    // Appending still works.
    db.store.append_audit(&event(4)).await?;
    intact(&data.verify(db, &[])?, db.backend)?;
    Ok(())
}

async fn finding_8_serve_task_checkpoints_when_the_head_moves(db: &TestDb) -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let public = data.checkpointer.signer().public_key().clone();
    let anchor = data.path().join(ANCHOR_FILE);
    let dir = data.dir;
    let task = tokio::spawn(keep_checkpointing(
        db.store.clone(),
        data.checkpointer,
        Duration::from_millis(50),
    ));
    let read_file = || -> anyhow::Result<Vec<_>> {
        let mut reader = AnchorReader::open(&anchor)?;
        let mut out = Vec::new();
        while let Some((_, c)) = reader.next_checkpoint()? {
            out.push(c);
        }
        Ok(out)
    };
    let wait_for = |seq: i64| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let in_file = read_file()?;
            let in_db = db.store.audit_checkpoints(0, i64::MAX).await?;
            if in_file.last().is_some_and(|c| c.seq == seq)
                && in_db.last().is_some_and(|c| c.seq == seq)
            {
                return anyhow::Ok((in_file, in_db));
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "no checkpoint of seq {seq}: file {in_file:?}, database {in_db:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };

    let records = append(db, 1, 2).await?;
    let (in_file, in_db) = wait_for(records[1].seq).await?;
    let records = append(db, 3, 1).await?;
    // Several ticks pass with the head still: nothing new is signed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (in_file, in_db) = {
        let (f, d) = wait_for(records[2].seq).await?;
        assert_eq!(f.len(), in_file.len() + 1, "{f:?}");
        assert_eq!(d.len(), in_db.len() + 1, "{d:?}");
        (f, d)
    };
    task.abort();
    assert_eq!(in_file, in_db, "the file and the database hold the same");
    for c in &in_file {
        assert!(public.verifies(c), "{c:?}");
        let record = records
            .iter()
            .find(|r| r.seq == c.seq)
            .context("checkpoint of an unknown record")?;
        assert_eq!(c.hash, record.hash);
    }
    drop(dir);
    Ok(())
}

/// Second review, finding 12: an auditor verifies with the public key `serve` wrote at first start
/// (no private key needed), and `audit verify` opens the store read-only without migrating it.
#[tokio::test]
async fn review2_12_audit_verify_needs_no_private_key_and_writes_nothing() -> anyhow::Result<()> {
    let db = TestDb::sqlite().await?;
    let mut data = DataDir::new()?;
    AuditSigner::load(&data.path().join(KEY_FILE))?.publish(data.path())?;
    append(&db, 1, 4).await?;
    data.checkpointer
        .checkpoint(db.store.as_ref())
        .await?
        .context("checkpoint")?;
    // The private key is not there: the public file is enough.
    std::fs::remove_file(data.path().join(KEY_FILE))?;
    intact(&data.verify(&db, &[])?, db.backend)?;

    // A database that was never migrated stays so: verify fails on it and creates no table.
    let empty_dir = tempfile::tempdir()?;
    let empty = empty_dir.path().join("countersign.db");
    std::fs::File::create(&empty)?;
    let url = format!("sqlite://{}", empty.display());
    let out = countersign(&[
        "audit",
        "verify",
        "--database-url",
        &url,
        "--data-dir",
        data.path().to_str().context("UTF-8")?,
    ])?;
    assert!(!out.status.success());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await?;
    let tables: i64 = sqlx::query_scalar("select count(*) from sqlite_master")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(tables, 0, "verify migrated the database it checked");
    Ok(())
}
