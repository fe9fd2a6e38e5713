//! The webhook counts each review by its shape in memory (a hash and a map update; a new shape
//! also keeps one redacted example) and a background task writes the counts every [`FLUSH_EVERY`].
//! Bounded: at most [`MAX_SHAPES`] shapes wait between writes (more are counted as dropped), and
//! the store keeps at most [`MAX_STORED_SHAPES`] shapes for a configurable number of days.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::admission::AdmissionRequest;
use crate::clock;
use crate::store::AnyStore;

use super::redact::redacted_request;
use super::shape::Shape;

/// How often the counts are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);
/// Distinct shapes waiting between two writes.
pub const MAX_SHAPES: usize = 10_000;
/// Distinct shapes the store keeps (the least recently seen go first).
pub const MAX_STORED_SHAPES: i64 = 50_000;
/// Shapes this process remembers having written an example of (forgotten all at once when full).
const MAX_KNOWN: usize = 100_000;

/// One shape's count since the last write, with its example when this process has not written one.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeCount {
    /// The shape.
    pub shape: Shape,
    /// Reviews counted.
    pub count: i64,
    /// Whether a guardrail matched the example.
    pub matched: bool,
    /// The redacted example, for a shape new to this process.
    pub example: Option<serde_json::Value>,
}

#[derive(Default)]
struct Window {
    counts: HashMap<u64, ShapeCount>,
    /// Shapes whose example was handed to the store.
    known: HashSet<u64>,
}

/// Where the webhook counts reviews by shape; off when recording is disabled.
#[derive(Default)]
pub struct TrafficRecorder {
    enabled: bool,
    window: Mutex<Window>,
    dropped: AtomicU64,
}

impl TrafficRecorder {
    /// A recorder that keeps what it is shown.
    pub fn enabled() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }

    /// Count one answered review (`matched`: whether a guardrail matched it). Never waits on I/O.
    pub fn observe(&self, request: &AdmissionRequest, matched: bool) {
        if !self.enabled {
            return;
        }
        let key = Shape::key_of(request);
        {
            let Ok(mut window) = self.window.lock() else {
                return;
            };
            if let Some(counted) = window.counts.get_mut(&key) {
                counted.count += 1;
                return;
            }
            if window.counts.len() >= MAX_SHAPES {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        // A shape new to this window: its example is made outside the lock.
        let example = {
            let known = self
                .window
                .lock()
                .map(|w| w.known.contains(&key))
                .unwrap_or(true);
            (!known).then(|| redacted_request(request))
        };
        let Ok(mut window) = self.window.lock() else {
            return;
        };
        window
            .counts
            .entry(key)
            .and_modify(|c| c.count += 1)
            .or_insert_with(|| ShapeCount {
                shape: Shape::of(request),
                count: 1,
                matched,
                example,
            });
    }

    /// Take what was counted since the last call.
    pub fn take(&self) -> Vec<ShapeCount> {
        let Ok(mut window) = self.window.lock() else {
            return Vec::new();
        };
        let taken: Vec<(u64, ShapeCount)> = window.counts.drain().collect();
        if window.known.len() + taken.len() > MAX_KNOWN {
            window.known.clear();
        }
        let mut out = Vec::with_capacity(taken.len());
        for (key, counted) in taken {
            if counted.example.is_some() {
                window.known.insert(key);
            }
            out.push(counted);
        }
        out
    }

    /// Forget that these shapes' examples were written (the write failed).
    fn forget(&self, shapes: &[ShapeCount]) {
        if let Ok(mut window) = self.window.lock() {
            for counted in shapes.iter().filter(|c| c.example.is_some()) {
                window.known.remove(&counted.shape.key());
            }
        }
    }

    /// Prometheus lines: shapes dropped because too many waited.
    pub fn render(&self) -> String {
        format!(
            "# HELP countersign_traffic_dropped_total Reviews not counted in the recorded traffic because too many shapes waited to be written.\n\
             # TYPE countersign_traffic_dropped_total counter\n\
             countersign_traffic_dropped_total {}\n",
            self.dropped.load(Ordering::Relaxed)
        )
    }
}

/// Write the counts every `every` until the task is dropped (a stop loses at most one window of
/// counts, which a sample can afford).
pub async fn keep_writing(
    recorder: Arc<TrafficRecorder>,
    store: Arc<dyn AnyStore>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let counted = recorder.take();
        if counted.is_empty() {
            continue;
        }
        if let Err(e) = store.record_traffic(&counted, clock::now()).await {
            tracing::warn!(error = %e, shapes = counted.len(), "recorded traffic not written");
            recorder.forget(&counted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(namespace: &str, username: &str) -> AdmissionRequest {
        let review = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Secret"},
                "resource": {"group": "", "version": "v1", "resource": "secrets"},
                "name": "db", "namespace": namespace, "operation": "UPDATE",
                "userInfo": {"username": username},
                "object": {"apiVersion": "v1", "kind": "Secret", "data": {"password": "aHVudGVyMg=="}},
                "oldObject": {"apiVersion": "v1", "kind": "Secret", "data": {"password": "b2xk"}},
            }
        });
        crate::admission::parse_review(review.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn reviews_are_counted_by_shape_with_one_redacted_example_each() {
        let recorder = TrafficRecorder::enabled();
        for _ in 0..3 {
            recorder.observe(&request("shop", "alice"), false);
        }
        recorder.observe(&request("shop", "bob"), true);
        let mut taken = recorder.take();
        taken.sort_by_key(|c| c.count);
        assert_eq!(taken.len(), 2);
        assert_eq!((taken[0].count, taken[0].matched), (1, true));
        assert_eq!(taken[1].count, 3);
        assert_eq!(taken[1].shape.username, "alice");
        let example = taken[1].example.as_ref().unwrap().to_string();
        assert!(
            !example.contains("aHVudGVyMg==") && !example.contains("b2xk"),
            "{example}"
        );
        // The next window counts again, without a second example of a shape already handed over.
        recorder.observe(&request("shop", "alice"), false);
        let again = recorder.take();
        assert_eq!(again.len(), 1);
        assert!(again[0].example.is_none());
    }

    #[test]
    fn a_disabled_recorder_keeps_nothing() {
        let recorder = TrafficRecorder::default();
        recorder.observe(&request("shop", "alice"), false);
        assert!(recorder.take().is_empty());
    }

    #[test]
    fn the_hot_path_key_and_the_stored_shape_agree() {
        let r = request("shop", "alice");
        assert_eq!(Shape::key_of(&r), Shape::of(&r).key());
    }
}
