//! The background task of `serve` that signs the chain's head whenever it moved, and keeps each
//! checkpoint twice: in the database and in the anchor file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::anchor::{AnchorError, AnchorWriter};
use super::checkpoint::{AuditCheckpoint, AuditSigner};
use crate::clock;
use crate::store::{AnyStore, Store, StoreError};

/// How often `serve` checkpoints by default (when the head moved).
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// Why a checkpoint was not made.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The anchor file failed.
    #[error(transparent)]
    Anchor(#[from] AnchorError),
    /// The head is below one already signed: rows were removed from the chain's end.
    #[error(
        "the audit chain's head went back from seq {signed} (signed earlier) to seq {head}: \
         records were removed; run `countersign audit verify`"
    )]
    HeadWentBack {
        /// Newest seq signed before.
        signed: i64,
        /// Head now.
        head: i64,
    },
    /// The record at the last signed position is not the one signed: the chain was cut and grown
    /// back (or rewritten) since.
    #[error(
        "the audit record at seq {seq} no longer has the hash signed there: the chain was rewritten; \
         run `countersign audit verify`"
    )]
    Rewritten {
        /// The last signed seq.
        seq: i64,
    },
}

/// Signs the head and records the checkpoint.
#[derive(Debug)]
pub struct Checkpointer {
    signer: AuditSigner,
    anchor: AnchorWriter,
    /// The last signed position and the hash signed there.
    signed: Option<(i64, String)>,
}

impl Checkpointer {
    /// Open (creating) the anchor file; the newest checkpoint in it is where signing resumes.
    pub fn open(signer: AuditSigner, anchor: &Path) -> Result<Self, AnchorError> {
        let (anchor, newest) = AnchorWriter::open(anchor)?;
        Ok(Self {
            signer,
            anchor,
            signed: newest.map(|c| (c.seq, c.hash)),
        })
    }

    /// The signing key.
    pub fn signer(&self) -> &AuditSigner {
        &self.signer
    }

    /// The anchor file.
    pub fn anchor_path(&self) -> &Path {
        self.anchor.path()
    }

    /// Sign the current head if it moved since the last checkpoint; `None` when there was nothing
    /// new. The file is written first: it is the anchor that matters when the database lies.
    pub async fn checkpoint(
        &mut self,
        store: &dyn Store,
    ) -> Result<Option<AuditCheckpoint>, CheckpointError> {
        let Some(head) = store.audit_head().await? else {
            return Ok(None);
        };
        if let Some((signed, hash)) = &self.signed {
            let signed = *signed;
            // Never sign a shortened chain: that would bless the cut.
            if head.seq < signed {
                return Err(CheckpointError::HeadWentBack {
                    signed,
                    head: head.seq,
                });
            }
            // Nor one grown back over a cut: the record at the signed position must be the one
            // signed, not just exist.
            let at_signed = if head.seq == signed {
                Some(head.clone())
            } else {
                store.audit_records(signed - 1, 1).await?.into_iter().next()
            };
            if at_signed.is_none_or(|r| r.seq != signed || r.hash != *hash) {
                return Err(CheckpointError::Rewritten { seq: signed });
            }
            if head.seq == signed {
                return Ok(None);
            }
        }
        let checkpoint = self.signer.checkpoint(head.seq, &head.hash, clock::now());
        self.anchor.append(&checkpoint)?;
        self.signed = Some((checkpoint.seq, checkpoint.hash.clone()));
        store.append_audit_checkpoint(&checkpoint).await?;
        Ok(Some(checkpoint))
    }
}

/// Checkpoint every `every` until the task is dropped, starting at once. Failures are logged and
/// retried on the next tick; a chain whose head went back is reported at every tick.
pub async fn keep_checkpointing(
    store: Arc<dyn AnyStore>,
    mut checkpointer: Checkpointer,
    every: Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        // The file write blocks briefly (fsync); once a minute that is cheaper than a thread hop.
        match checkpointer.checkpoint(store.as_ref()).await {
            Ok(Some(c)) => {
                if failing {
                    tracing::info!(seq = c.seq, "audit checkpoints work again");
                }
                failing = false;
                tracing::debug!(seq = c.seq, "audit checkpoint");
            }
            Ok(None) => failing = false,
            Err(e @ (CheckpointError::HeadWentBack { .. } | CheckpointError::Rewritten { .. })) => {
                tracing::error!(error = %e, "audit chain tampering suspected");
                failing = true;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "audit checkpoint failed; retrying");
                }
                failing = true;
            }
        }
    }
}
