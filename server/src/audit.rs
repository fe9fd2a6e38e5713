//! The audit log: append-only events, each hash chained to the one before it, with signed
//! checkpoints of the chain's head kept in the database and in an anchor file outside it.

pub mod anchor;
pub mod checkpoint;
pub mod checkpointer;
pub mod queue;
pub mod verify;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash the first event chains to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Something worth keeping a record of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unix seconds.
    pub at: i64,
    /// `challenge.created`, `grant.issued`, `grant.used`, `login`, `stepup.failed`, ...
    pub kind: String,
    /// Who did it (username, or `webhook`).
    pub actor: String,
    /// What it was about (challenge code, grant id, username).
    pub subject: String,
    /// Free-form JSON detail; never holds secrets.
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// An event now.
    pub fn new(kind: &str, actor: &str, subject: &str, detail: serde_json::Value) -> Self {
        Self {
            at: crate::clock::now(),
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            subject: subject.to_owned(),
            detail,
        }
    }
}

/// A stored event with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Sequence number.
    pub seq: i64,
    /// The event.
    pub event: AuditEvent,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// SHA-256 over the previous hash and the event's canonical fields.
pub fn chain_hash(prev_hash: &str, event: &AuditEvent) -> String {
    let mut hasher = Sha256::new();
    for part in [
        prev_hash,
        &event.at.to_string(),
        &event.kind,
        &event.actor,
        &event.subject,
        &event.detail.to_string(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The first record (in order) whose hash does not follow from its predecessor, if any.
pub fn first_broken_link(records: &[AuditRecord]) -> Option<i64> {
    let mut prev = GENESIS_HASH.to_owned();
    for record in records {
        if record.prev_hash != prev || chain_hash(&prev, &record.event) != record.hash {
            return Some(record.seq);
        }
        prev = record.hash.clone();
    }
    None
}
