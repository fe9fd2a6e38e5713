//! Open challenges held in memory, so a request repeated while its challenge is open (a retry loop,
//! a controller reconciling, a pipeline polling) is answered with the same code without a store
//! round trip.
//!
//! The store stays the truth: this only remembers what the store said a moment ago. An entry is
//! served while the challenge is unexpired and for at most [`TRUST_FOR`] after the store last
//! confirmed it; after that the next identical request goes to the store again, as does any request
//! on a replica that never saw the challenge (the store's unique index still picks one challenge per
//! request across replicas). Entries are dropped when this process grants the challenge or finds a
//! grant made for it elsewhere. [`TRUST_FOR`] bounds how long a replica may still deny a request
//! whose challenge was just granted on another replica: shorter than a person takes to go from the
//! browser back to the terminal, long enough that a client retrying in a loop costs one store round
//! trip per window instead of one per request.
//!
//! Locking: as the grant cache, shards behind `std::sync::RwLock`s whose critical sections are a
//! hash lookup and never await.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::Challenge;

/// Shards of the map; a power of two well above the cores a webhook replica gets.
const SHARDS: usize = 16;

/// Most open challenges held; beyond that, expired ones are swept and then an arbitrary one goes.
pub const CAPACITY: usize = 65_536;

/// How long an entry is served after the store last confirmed it.
pub const TRUST_FOR: Duration = Duration::from_millis(250);

/// What a denial needs of an open challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenChallenge {
    /// Code in the link.
    pub code: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
struct Entry {
    guardrail: Box<str>,
    code: Box<str>,
    expires_at: i64,
    confirmed: Instant,
}

type Shard = HashMap<Box<str>, Vec<Entry>>;

/// Open challenges by (request digest, guardrail).
#[derive(Debug)]
pub struct ChallengeCache {
    shards: Vec<RwLock<Shard>>,
    hasher: RandomState,
    /// [`TRUST_FOR`] unless changed, in microseconds.
    trust_micros: AtomicU64,
}

impl Default for ChallengeCache {
    fn default() -> Self {
        Self::new()
    }
}

impl ChallengeCache {
    /// An empty cache trusting entries for [`TRUST_FOR`].
    pub fn new() -> Self {
        Self::trusting_for(TRUST_FOR)
    }

    /// An empty cache trusting entries for `trust_for`.
    pub fn trusting_for(trust_for: Duration) -> Self {
        let cache = Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            trust_micros: AtomicU64::new(0),
        };
        cache.set_trust_for(trust_for);
        cache
    }

    /// Change how long entries are served after the store confirmed them (tests lengthen it to
    /// take timing out of the picture).
    pub fn set_trust_for(&self, trust_for: Duration) {
        let micros = u64::try_from(trust_for.as_micros()).unwrap_or(u64::MAX);
        self.trust_micros.store(micros, Ordering::Relaxed);
    }

    fn trust_for(&self) -> Duration {
        Duration::from_micros(self.trust_micros.load(Ordering::Relaxed))
    }

    fn shard(&self, digest: &str) -> &RwLock<Shard> {
        let i = (self.hasher.hash_one(digest) as usize) % SHARDS;
        &self.shards[i]
    }

    /// The open challenge for this request and guardrail, if the store confirmed it recently and it
    /// is unexpired at `now`.
    ///
    /// When the entry is past its trust window, this caller gets `None` (and asks the store, whose
    /// answer it inserts) while the entry is marked confirmed again, so the concurrent identical
    /// requests keep being answered from memory instead of all asking the store at once.
    pub fn find(&self, digest: &str, guardrail: &str, now: i64) -> Option<OpenChallenge> {
        let trust_for = self.trust_for();
        {
            let shard = self
                .shard(digest)
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let entry = shard
                .get(digest)?
                .iter()
                .find(|e| &*e.guardrail == guardrail)?;
            if now >= entry.expires_at {
                return None;
            }
            if entry.confirmed.elapsed() < trust_for {
                return Some(OpenChallenge {
                    code: entry.code.to_string(),
                    expires_at: entry.expires_at,
                });
            }
        }
        let mut shard = self
            .shard(digest)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard
            .get_mut(digest)?
            .iter_mut()
            .find(|e| &*e.guardrail == guardrail)?;
        if entry.confirmed.elapsed() < trust_for {
            // Another caller claimed the revalidation meanwhile.
            return Some(OpenChallenge {
                code: entry.code.to_string(),
                expires_at: entry.expires_at,
            });
        }
        entry.confirmed = Instant::now();
        None
    }

    /// Remember `challenge` as open, as the store just said (found or created).
    pub fn insert(&self, challenge: &Challenge, now: i64) {
        if challenge.expires_at <= now {
            return;
        }
        let entry = Entry {
            guardrail: challenge.guardrail.as_str().into(),
            code: challenge.code.as_str().into(),
            expires_at: challenge.expires_at,
            confirmed: Instant::now(),
        };
        let mut shard = self
            .shard(&challenge.digest)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entries) = shard.get_mut(challenge.digest.as_str()) {
            entries.retain(|e| e.guardrail != entry.guardrail && e.expires_at > now);
            entries.push(entry);
            return;
        }
        let full = CAPACITY / SHARDS;
        if shard.len() >= full {
            sweep(&mut shard, now);
            // Still mostly open ones: forget an eighth, any; their requests fall back to the
            // store. Freeing a batch keeps the sweep from running on every insert.
            let keep = full - full / 8;
            if shard.len() > keep {
                let drop: Vec<Box<str>> = shard.keys().take(shard.len() - keep).cloned().collect();
                for key in drop {
                    shard.remove(&key);
                }
            }
        }
        shard.insert(challenge.digest.as_str().into(), vec![entry]);
    }

    /// Forget the challenges for this request that stand for any of `guardrails` (one name, or a
    /// challenge's set): a grant for it was issued (here or elsewhere).
    pub fn granted(&self, digest: &str, guardrails: &str) {
        let granted: Vec<&str> = guardrails.split(',').collect();
        let mut shard = self
            .shard(digest)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entries) = shard.get_mut(digest) {
            entries.retain(|e| !e.guardrail.split(',').any(|g| granted.contains(&g)));
            if entries.is_empty() {
                shard.remove(digest);
            }
        }
    }

    /// Drop every entry expired at `now`.
    pub fn sweep(&self, now: i64) {
        for shard in &self.shards {
            sweep(
                &mut shard.write().unwrap_or_else(PoisonError::into_inner),
                now,
            );
        }
    }

    /// Entries held (open or not yet swept).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn sweep(shard: &mut Shard, now: i64) {
    shard.retain(|_, entries| {
        entries.retain(|e| e.expires_at > now);
        !entries.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenges::{AttemptedRequest, ChallengeStatus};
    use crate::policy::GrantScope;

    fn challenge(digest: &str, guardrail: &str, code: &str, expires_at: i64) -> Challenge {
        Challenge {
            code: code.into(),
            digest: digest.into(),
            cluster: "c".into(),
            guardrail: guardrail.into(),
            message: String::new(),
            request: AttemptedRequest {
                username: "alice".into(),
                groups: Vec::new(),
                operation: "UPDATE".into(),
                api_group: "apps".into(),
                api_version: "v1".into(),
                resource: "deployments".into(),
                subresource: String::new(),
                kind: "Deployment".into(),
                namespace: "shop".into(),
                name: "api".into(),
                object: None,
                old_object: None,
                options: None,
            },
            scope: GrantScope::Request,
            grant_ttl_secs: 900,
            grant_uses: Some(1),
            freshness_secs: 300,
            created_at: expires_at - 900,
            expires_at,
            status: ChallengeStatus::Pending,
            grant_id: None,
            approval: None,
            seal: None,
            policy_version: String::new(),
        }
    }

    #[test]
    fn serves_open_challenges_by_digest_and_guardrail() {
        let cache = ChallengeCache::new();
        let now = 1_000;
        cache.insert(&challenge("d1", "g1", "AAAAAAAA", now + 900), now);
        cache.insert(&challenge("d1", "g2", "BBBBBBBB", now + 900), now);
        assert_eq!(
            cache.find("d1", "g1", now),
            Some(OpenChallenge {
                code: "AAAAAAAA".into(),
                expires_at: now + 900
            })
        );
        assert_eq!(
            cache.find("d1", "g2", now).map(|c| c.code),
            Some("BBBBBBBB".into())
        );
        assert_eq!(cache.find("d2", "g1", now), None);
        assert_eq!(cache.find("d1", "g3", now), None);
        // A newer challenge for the same pair replaces the old one.
        cache.insert(&challenge("d1", "g1", "CCCCCCCC", now + 900), now);
        assert_eq!(
            cache.find("d1", "g1", now).map(|c| c.code),
            Some("CCCCCCCC".into())
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn expired_granted_and_stale_entries_are_not_served() {
        let cache = ChallengeCache::new();
        let now = 1_000;
        cache.insert(&challenge("d1", "g1", "AAAAAAAA", now + 10), now);
        assert!(cache.find("d1", "g1", now + 9).is_some());
        assert_eq!(cache.find("d1", "g1", now + 10), None);
        cache.sweep(now + 10);
        assert!(cache.is_empty());
        // Already expired when offered: not held at all.
        cache.insert(&challenge("d1", "g1", "AAAAAAAA", now), now);
        assert!(cache.is_empty());

        cache.insert(&challenge("d1", "g1", "AAAAAAAA", now + 900), now);
        cache.insert(&challenge("d1", "g2", "BBBBBBBB", now + 900), now);
        cache.granted("d1", "g1");
        assert_eq!(cache.find("d1", "g1", now), None);
        assert!(
            cache.find("d1", "g2", now).is_some(),
            "only that guardrail's"
        );

        // Past the trust window one caller is sent to the store; the others are still answered
        // from memory meanwhile.
        let short = ChallengeCache::trusting_for(Duration::from_millis(200));
        short.insert(&challenge("d1", "g1", "AAAAAAAA", now + 900), now);
        assert!(short.find("d1", "g1", now).is_some());
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(short.find("d1", "g1", now), None);
        assert!(short.find("d1", "g1", now).is_some());
        // Trusting nothing: every caller asks the store.
        short.set_trust_for(Duration::ZERO);
        assert_eq!(short.find("d1", "g1", now), None);
        assert_eq!(short.find("d1", "g1", now), None);
    }

    #[test]
    fn holds_at_most_its_capacity() {
        let cache = ChallengeCache::new();
        let now = 1_000;
        for i in 0..CAPACITY * 2 {
            cache.insert(
                &challenge(&format!("d{i}"), "g", "AAAAAAAA", now + 900),
                now,
            );
        }
        assert!(cache.len() <= CAPACITY, "{}", cache.len());
        assert!(cache.len() >= CAPACITY / 2, "{}", cache.len());
    }
}
