//! The decision log writer: reviews a guardrail matched go through a bounded queue to a background
//! task that explains them against the snapshot of guardrails that decided them (carried with each
//! entry, so a swap meanwhile changes nothing) and writes them in batches. The webhook only
//! enqueues; when the queue is full (in entries or in bytes: each entry holds its whole review) the
//! entry is dropped and counted, never waited for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::admission::AdmissionRequest;
use crate::challenges::resource_label;
use crate::cluster::LiveNamespaces;
use crate::decisions::DecisionRecord;
use crate::engine::{Decision, Snapshot};
use crate::store::Store;

use super::byte_budget::ByteBudget;
use super::metrics::Outcome;

/// Entries waiting to be written before new ones are dropped.
const QUEUE: usize = 10_000;
/// Review bytes waiting to be written before new entries are dropped.
pub const QUEUE_BYTES: usize = 32 << 20;
/// Decisions written per transaction.
const BATCH: usize = 256;

struct Entry {
    /// Counted against [`QUEUE_BYTES`] until the writer takes it.
    bytes: usize,
    at: i64,
    request: AdmissionRequest,
    action: &'static str,
    outcome: Outcome,
    hits: serde_json::Value,
    snapshot: Arc<Snapshot>,
}

/// Where the webhook hands decisions to the writer.
#[derive(Default)]
pub struct DecisionLog {
    queue: Option<mpsc::Sender<Entry>>,
    queued_bytes: Arc<ByteBudget>,
    dropped: AtomicU64,
    unmatched: AtomicU64,
}

impl DecisionLog {
    /// A log that records nothing (tests, tools).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Start the writer task; it ends when the log is dropped.
    pub fn start(
        store: Arc<dyn Store>,
        namespaces: Arc<LiveNamespaces>,
        cluster: String,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let queued_bytes = Arc::new(ByteBudget::new(QUEUE_BYTES));
        let task = tokio::spawn(write_batches(
            rx,
            queued_bytes.clone(),
            store,
            namespaces,
            cluster,
        ));
        (
            Self {
                queue: Some(tx),
                queued_bytes,
                dropped: AtomicU64::new(0),
                unmatched: AtomicU64::new(0),
            },
            task,
        )
    }

    /// Record a decision `snapshot` made, if any guardrail matched; never waits.
    pub fn record(
        &self,
        request: &AdmissionRequest,
        decision: &Decision,
        outcome: Outcome,
        snapshot: &Arc<Snapshot>,
    ) {
        if decision.hits.is_empty() {
            self.unmatched.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(queue) = &self.queue else { return };
        let bytes = request.wire_bytes;
        if !self.queued_bytes.try_hold(bytes) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let entry = Entry {
            bytes,
            at: crate::clock::now(),
            request: request.clone(),
            action: decision.action.as_str(),
            outcome,
            hits: serde_json::to_value(&decision.hits).unwrap_or_default(),
            snapshot: Arc::clone(snapshot),
        };
        if queue.try_send(entry).is_err() {
            self.queued_bytes.release(bytes);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reviews no guardrail matched (not logged: nothing to explain).
    pub fn unmatched(&self) -> u64 {
        self.unmatched.load(Ordering::Relaxed)
    }

    /// Prometheus lines for the log: what it dropped and what it had no reason to keep.
    pub fn render(&self) -> String {
        format!(
            "# HELP countersign_decisions_dropped_total Decision-log entries dropped because its writer fell behind.\n\
             # TYPE countersign_decisions_dropped_total counter\n\
             countersign_decisions_dropped_total {}\n\
             # HELP countersign_admission_reviews_unmatched_total Reviews no guardrail matched (admitted, not logged).\n\
             # TYPE countersign_admission_reviews_unmatched_total counter\n\
             countersign_admission_reviews_unmatched_total {}\n",
            self.dropped(),
            self.unmatched()
        )
    }

    /// Entries dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write_batches(
    mut rx: mpsc::Receiver<Entry>,
    queued_bytes: Arc<ByteBudget>,
    store: Arc<dyn Store>,
    namespaces: Arc<LiveNamespaces>,
    cluster: String,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let labels = namespaces.load_full();
        let records: Vec<DecisionRecord> = batch
            .drain(..)
            .map(|e| {
                // Explaining every guardrail is the expensive part; it happens here, off the hot path.
                let (_, explanations) = e.snapshot.explain(&e.request, labels.as_ref());
                queued_bytes.release(e.bytes);
                let r = e.request;
                DecisionRecord {
                    at: e.at,
                    resource: resource_label(
                        &r.resource.group,
                        &r.resource.resource,
                        &r.sub_resource,
                    ),
                    uid: r.uid,
                    cluster: cluster.clone(),
                    username: r.user_info.username,
                    operation: r.operation.as_str().to_owned(),
                    namespace: r.namespace,
                    name: r.name,
                    dry_run: r.dry_run,
                    action: e.action.to_owned(),
                    outcome: e.outcome.as_str().to_owned(),
                    hits: e.hits,
                    explanations: serde_json::to_value(&explanations).unwrap_or_default(),
                    policy_version: e.snapshot.version().to_owned(),
                }
            })
            .collect();
        if let Err(e) = store.append_decisions(&records).await {
            tracing::error!(error = %e, lost = records.len(), "decision log write failed");
            // Back off a little so a dead store is not hammered.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
