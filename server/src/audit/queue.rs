//! The webhook's audit events go through one bounded queue to a writer task, so answering the API
//! server never waits for an audit append and a flood cannot pile up appends without bound. When
//! the queue is full (in events or in bytes) the event is dropped and counted, and the writer puts
//! an `audit.dropped` event with the count into the chain as soon as it catches up: the record
//! itself says that something is missing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::audit::AuditEvent;
use crate::store::Store;
use crate::webhook::byte_budget::ByteBudget;
use crate::webhook::metrics::Metrics;

/// Events waiting to be appended before new ones are dropped.
pub const QUEUE_EVENTS: usize = 10_000;
/// Bytes of waiting events before new ones are dropped.
pub const QUEUE_BYTES: usize = 16 << 20;

struct Queued {
    event: AuditEvent,
    bytes: usize,
}

/// Where the webhook hands its audit events to the writer.
pub struct AuditQueue {
    tx: mpsc::Sender<Queued>,
    queued_bytes: Arc<ByteBudget>,
    dropped: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

impl AuditQueue {
    /// Start the writer task on `store` with the default bounds, counting drops into `metrics`.
    pub fn start(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self::with_bounds(store, metrics, QUEUE_EVENTS, QUEUE_BYTES)
    }

    /// Start the writer with other bounds (tests).
    pub fn with_bounds(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        events: usize,
        bytes: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(events.max(1));
        let queued_bytes = Arc::new(ByteBudget::new(bytes));
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(write(
            rx,
            store,
            queued_bytes.clone(),
            dropped.clone(),
            metrics.clone(),
        ));
        Self {
            tx,
            queued_bytes,
            dropped,
            metrics,
        }
    }

    /// Queue an event; never waits.
    pub fn record(&self, event: AuditEvent) {
        let bytes = event.kind.len()
            + event.actor.len()
            + event.subject.len()
            + event.detail.to_string().len();
        if !self.queued_bytes.try_hold(bytes) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.metrics.audit_dropped(1);
            return;
        }
        if self.tx.try_send(Queued { event, bytes }).is_err() {
            self.queued_bytes.release(bytes);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.metrics.audit_dropped(1);
        }
    }

    /// Events dropped so far and not yet recorded as dropped in the chain.
    pub fn pending_drops(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// How often the writer, when idle, tries again to record drops it could not record yet.
const MARKER_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

async fn write(
    mut rx: mpsc::Receiver<Queued>,
    store: Arc<dyn Store>,
    queued_bytes: Arc<ByteBudget>,
    dropped: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
) {
    let mut retry = tokio::time::interval(MARKER_RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            next = rx.recv() => next,
            _ = retry.tick() => {
                record_drops(store.as_ref(), &dropped).await;
                continue;
            }
        };
        let Some(Queued { event, bytes }) = next else {
            break;
        };
        queued_bytes.release(bytes);
        record_drops(store.as_ref(), &dropped).await;
        if let Err(e) = store.append_audit(&event).await {
            // Lost too: counted, so the chain says so once the store answers again.
            dropped.fetch_add(1, Ordering::Relaxed);
            metrics.audit_dropped(1);
            tracing::error!(error = %e, kind = %event.kind, "audit append failed; counted as dropped");
        }
    }
    // The queue is closed (shutdown): one last try to say what is missing.
    record_drops(store.as_ref(), &dropped).await;
}

/// Put an `audit.dropped` marker with the count of events lost since the last one into the chain;
/// if that fails too, the count is kept for the next try.
async fn record_drops(store: &dyn Store, dropped: &AtomicU64) {
    let lost = dropped.swap(0, Ordering::Relaxed);
    if lost == 0 {
        return;
    }
    tracing::error!(
        lost,
        "audit events were dropped (queue full or store failing)"
    );
    let marker = AuditEvent::new(
        "audit.dropped",
        "webhook",
        "",
        serde_json::json!({ "events": lost }),
    );
    if let Err(e) = store.append_audit(&marker).await {
        dropped.fetch_add(lost, Ordering::Relaxed);
        tracing::error!(error = %e, "audit append failed for the dropped-events marker; will try again");
    }
}
