//! Heavy portal work kept in its place: a challenge's diff is computed once (then served from a
//! cache bounded in bytes), on the blocking pool, a few at a time, so the webhook in the same
//! process keeps its share of the machine however many people open large challenges.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::diff::{object_diff, RenderedDiff};

/// Bytes of rendered diffs kept in memory at most.
const CACHE_BYTES: usize = 32 * 1024 * 1024;
/// How long a page waits for a diff slot before the portal answers that it is busy.
const QUEUE_WAIT: Duration = Duration::from_secs(15);
/// Object downloads streamed at the same time at most.
const DOWNLOADS: usize = 4;

/// The portal is too busy with heavy work; try again shortly.
#[derive(Debug, thiserror::Error)]
#[error("the portal is busy; try again in a moment")]
pub struct Busy;

/// Limits and cache for the portal's heavy work, one per portal.
pub struct Heavy {
    diffs: Semaphore,
    downloads: Arc<Semaphore>,
    cache: Mutex<Cache>,
}

impl Default for Heavy {
    fn default() -> Self {
        // Half the cores at most: the other half stays with the webhook.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new((cores / 2).max(1), CACHE_BYTES)
    }
}

impl Heavy {
    /// At most `concurrency` diffs computed at once, `cache_bytes` of them kept.
    pub fn new(concurrency: usize, cache_bytes: usize) -> Self {
        Self {
            diffs: Semaphore::new(concurrency),
            downloads: Arc::new(Semaphore::new(DOWNLOADS)),
            cache: Mutex::new(Cache {
                max_bytes: cache_bytes,
                ..Cache::default()
            }),
        }
    }

    /// The diff of challenge `code`, computed at most once while it stays cached.
    pub async fn diff(
        &self,
        code: &str,
        kind: &str,
        subresource: &str,
        old: Option<Value>,
        new: Option<Value>,
    ) -> Result<Arc<RenderedDiff>, Busy> {
        if let Some(hit) = self.cached(code) {
            return Ok(hit);
        }
        let _permit = tokio::time::timeout(QUEUE_WAIT, self.diffs.acquire())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        // Someone else may have computed it while this one waited.
        if let Some(hit) = self.cached(code) {
            return Ok(hit);
        }
        let (kind, subresource) = (kind.to_owned(), subresource.to_owned());
        let rendered = tokio::task::spawn_blocking(move || {
            object_diff(&kind, &subresource, old.as_ref(), new.as_ref())
        })
        .await
        .map_err(|_| Busy)?;
        let rendered = Arc::new(rendered);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(code, rendered.clone());
        }
        Ok(rendered)
    }

    /// A download slot, held while the objects stream.
    pub async fn download_slot(&self) -> Result<OwnedSemaphorePermit, Busy> {
        tokio::time::timeout(QUEUE_WAIT, self.downloads.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)
    }

    fn cached(&self, code: &str) -> Option<Arc<RenderedDiff>> {
        self.cache.lock().ok()?.entries.get(code).cloned()
    }
}

/// Rendered diffs by challenge code, oldest evicted first past the byte bound. A challenge's
/// objects never change, so an entry never goes stale.
#[derive(Default)]
struct Cache {
    entries: HashMap<String, Arc<RenderedDiff>>,
    order: VecDeque<String>,
    bytes: usize,
    max_bytes: usize,
}

impl Cache {
    fn insert(&mut self, code: &str, diff: Arc<RenderedDiff>) {
        let size = diff.bytes() + code.len();
        if size > self.max_bytes || self.entries.contains_key(code) {
            return;
        }
        while self.bytes + size > self.max_bytes {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.entries.remove(&oldest) {
                self.bytes -= gone.bytes() + oldest.len();
            }
        }
        self.bytes += size;
        self.order.push_back(code.to_owned());
        self.entries.insert(code.to_owned(), diff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::DiffLine;

    fn diff_of(bytes: usize) -> Arc<RenderedDiff> {
        Arc::new(RenderedDiff {
            lines: vec![DiffLine {
                sign: '+',
                text: "x".repeat(bytes),
            }],
            ..RenderedDiff::default()
        })
    }

    #[test]
    fn finding_15_the_cache_stays_within_its_bytes() {
        let mut cache = Cache {
            max_bytes: 10_000,
            ..Cache::default()
        };
        for i in 0..100 {
            cache.insert(&format!("code{i:04}"), diff_of(1_000));
            assert!(cache.bytes <= 10_000);
        }
        assert!(cache.entries.contains_key("code0099"));
        assert!(!cache.entries.contains_key("code0000"));
        assert_eq!(cache.entries.len(), cache.order.len());
    }

    #[tokio::test]
    async fn finding_15_a_diff_is_computed_once() {
        let heavy = Heavy::new(1, 1 << 20);
        let old = serde_json::json!({"spec": {"replicas": 1}});
        let new = serde_json::json!({"spec": {"replicas": 2}});
        let first = heavy
            .diff("ABCD2345", "Deployment", "", Some(old), Some(new))
            .await
            .expect("diff");
        // The second view brings no objects: it must come from the cache.
        let second = heavy
            .diff("ABCD2345", "Deployment", "", None, None)
            .await
            .expect("diff");
        assert!(Arc::ptr_eq(&first, &second));
    }
}
