//! Where elevation events go: every page and notifier of this process, and, on PostgreSQL, every
//! other replica (`NOTIFY` on [`ELEVATION_CHANNEL`], relayed into their own bus).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use super::ElevationEvent;
use crate::store::AnyStore;

/// The PostgreSQL channel elevation events travel between replicas on.
pub const ELEVATION_CHANNEL: &str = "countersign_elevations";

/// One process's bus: cheap to clone, every clone the same bus.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<ElevationEvent>,
    /// Tells this bus's own events apart when the database echoes them back.
    origin: Arc<str>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

/// An event as it travels between replicas.
#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    origin: String,
    event: ElevationEvent,
}

impl EventBus {
    /// A new bus.
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(256).0,
            origin: uuid::Uuid::new_v4().to_string().into(),
        }
    }

    /// Changes as they happen (here and, once [`relay`] runs, on other replicas).
    pub fn subscribe(&self) -> broadcast::Receiver<ElevationEvent> {
        self.sender.subscribe()
    }

    /// Tell this process's listeners, and the other replicas through the store.
    pub(super) fn publish(&self, store: &Arc<dyn AnyStore>, event: ElevationEvent) {
        // Nobody listening is fine: pages and notifiers subscribe when they exist.
        let _ = self.sender.send(event.clone());
        let wire = Wire {
            origin: self.origin.to_string(),
            event,
        };
        if let Ok(payload) = serde_json::to_string(&wire) {
            let store = store.clone();
            tokio::spawn(async move { store.announce(ELEVATION_CHANNEL, &payload).await });
        }
    }
}

/// Relay the other replicas' events into `bus`, for as long as the server runs; reconnects after a
/// lost connection. Returns at once where the store cannot push (SQLite: one process).
pub async fn relay(store: Arc<dyn AnyStore>, bus: EventBus) {
    loop {
        let mut feed = match store.feed(ELEVATION_CHANNEL).await {
            Ok(Some(feed)) => feed,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other replicas' elevations; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        while let Some(payload) = feed.recv().await {
            match serde_json::from_str::<Wire>(&payload) {
                Ok(wire) if *wire.origin != *bus.origin => {
                    let mut event = wire.event;
                    event.relayed = true;
                    let _ = bus.sender.send(event);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "ignoring a malformed elevation event"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
