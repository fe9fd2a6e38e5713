//! Live grants held in memory, so the webhook checks a guarded request without a database round trip
//! and keeps admitting requests covered by unlimited grants while the store is down.
//!
//! The store stays the truth. This cache is filled from it at start and every few seconds (so replicas
//! sharing one database converge), and is told directly when this process issues, spends or revokes a
//! grant. A grant it does not hold is looked up in the store by the caller, since another replica may
//! have issued it a moment ago; a grant it holds with limited uses is still spent in the store, whose
//! single-statement update keeps two replicas from both taking the last use.
//!
//! Locking: the map is split in shards, each behind a `std::sync::RwLock` whose critical sections are
//! a hash lookup or a pointer swap and never await, so a slow database write cannot hold up a lookup.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError, RwLock};

use super::{Grant, GrantTarget};
use crate::policy::GrantScope;

/// Shards of the map; a power of two well above the cores a webhook replica gets.
const SHARDS: usize = 16;

/// What the cache needs of a live grant: no token, no evidence (those stay in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGrant {
    /// Unique id (`jti`).
    pub id: String,
    /// Kubernetes username it admits.
    pub username: String,
    /// Guardrail it satisfies.
    pub guardrail: String,
    /// Cluster it was issued for.
    pub cluster: String,
    /// What it covers.
    pub scope: GrantScope,
    /// Request digest (scope `request`).
    pub digest: String,
    /// Namespace (scope `namespace`).
    pub namespace: String,
    /// `group/resource/namespace/name` (scope `object`).
    pub object_key: String,
    /// Uses left; `None` is unlimited within the ttl.
    pub uses_left: Option<i64>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Issued by break glass (as its verified token says; a row read from the store says `false`
    /// until its token is checked).
    pub break_glass: bool,
}

impl From<&Grant> for LiveGrant {
    fn from(g: &Grant) -> Self {
        Self {
            id: g.id.clone(),
            username: g.username.clone(),
            guardrail: g.guardrail.clone(),
            cluster: g.cluster.clone(),
            scope: g.scope,
            digest: g.digest.clone(),
            namespace: g.namespace.clone(),
            object_key: g.object_key.clone(),
            uses_left: g.uses_left,
            expires_at: g.expires_at,
            break_glass: g.evidence.break_glass,
        }
    }
}

/// A cached grant that covers a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoveringGrant {
    /// Grant id.
    pub id: String,
    /// Issued by break glass: the admitted request says so in its audit annotations.
    pub break_glass: bool,
    /// Uses left as last known here; `None` is unlimited (admitted without touching the store).
    pub uses_left: Option<i64>,
}

impl CoveringGrant {
    /// Whether admitting with it must take a use in the store first.
    pub fn is_limited(&self) -> bool {
        self.uses_left.is_some()
    }
}

/// What a grant reaches, in the fewest bytes: a request digest is kept as its 32 raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reach {
    Digest([u8; 32]),
    DigestText(Box<str>),
    Object(Box<str>),
    Namespace(Box<str>),
}

impl Reach {
    fn of(grant: &LiveGrant) -> Self {
        match grant.scope {
            GrantScope::Request => match decode_digest(&grant.digest) {
                Some(bytes) => Reach::Digest(bytes),
                None => Reach::DigestText(grant.digest.as_str().into()),
            },
            GrantScope::Object => Reach::Object(grant.object_key.as_str().into()),
            GrantScope::Namespace => Reach::Namespace(grant.namespace.as_str().into()),
        }
    }

    fn covers(&self, target: &GrantTarget<'_>, digest: Option<&[u8; 32]>) -> bool {
        match self {
            Reach::Digest(bytes) => digest == Some(bytes),
            Reach::DigestText(text) => **text == *target.digest,
            Reach::Object(key) => **key == *target.object_key,
            Reach::Namespace(ns) => !ns.is_empty() && **ns == *target.namespace,
        }
    }
}

fn decode_digest(hex_digest: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut bytes).ok()?;
    Some(bytes)
}

#[derive(Debug, Clone)]
struct Entry {
    id: Box<str>,
    reach: Reach,
    expires_at: i64,
    /// Uses left (a policy's uses fit in 32 bits): half an `Option<i64>`, room for the flag.
    uses_left: Option<i32>,
    break_glass: bool,
}

impl Entry {
    fn alive(&self, now: i64) -> bool {
        now < self.expires_at && self.uses_left.is_none_or(|n| n > 0)
    }
}

/// Uses as an entry keeps them (more than 2^31 is as good as that many).
fn narrow(uses: Option<i64>) -> Option<i32> {
    uses.map(|n| i32::try_from(n.max(0)).unwrap_or(i32::MAX))
}

/// username → guardrail → grants, oldest first.
type Shard = HashMap<Box<str>, HashMap<Box<str>, Vec<Entry>>>;

/// The live grants of one cluster, in memory.
#[derive(Debug)]
pub struct GrantCache {
    cluster: Box<str>,
    hasher: RandomState,
    shards: Box<[RwLock<Shard>]>,
    /// Grants revoked here, until they expire: a refresh that read the store before the revocation
    /// landed must not bring them back.
    revoked: Mutex<HashMap<Box<str>, i64>>,
}

impl GrantCache {
    /// An empty cache for grants issued for `cluster` (others are ignored).
    pub fn new(cluster: &str) -> Self {
        Self {
            cluster: cluster.into(),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::new())).collect(),
            revoked: Mutex::new(HashMap::new()),
        }
    }

    fn shard(&self, username: &str) -> &RwLock<Shard> {
        let i = (self.hasher.hash_one(username) as usize) % self.shards.len();
        &self.shards[i]
    }

    /// A live grant that covers `target` at `now`, preferring one that needs no store write.
    pub fn find(&self, target: &GrantTarget<'_>, now: i64) -> Option<CoveringGrant> {
        if *self.cluster != *target.cluster {
            return None;
        }
        let digest = decode_digest(target.digest);
        let shard = self
            .shard(target.username)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let entries = shard.get(target.username)?.get(target.guardrail)?;
        let mut covering = entries
            .iter()
            .filter(|e| e.alive(now) && e.reach.covers(target, digest.as_ref()));
        let first = covering.clone().find(|e| e.uses_left.is_none());
        first.or_else(|| covering.next()).map(|e| CoveringGrant {
            id: e.id.to_string(),
            break_glass: e.break_glass,
            uses_left: e.uses_left.map(i64::from),
        })
    }

    /// Add (or refresh) one grant, e.g. just issued or just read from the store; false if it is not
    /// for this cluster, already dead, or was revoked here.
    pub fn insert(&self, grant: &LiveGrant, now: i64) -> bool {
        if *grant.cluster != *self.cluster || now >= grant.expires_at {
            return false;
        }
        if self.is_revoked(&grant.id) {
            return false;
        }
        let entry = Entry {
            id: grant.id.as_str().into(),
            reach: Reach::of(grant),
            expires_at: grant.expires_at,
            uses_left: narrow(grant.uses_left),
            break_glass: grant.break_glass,
        };
        let mut shard = self
            .shard(&grant.username)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let entries = shard
            .entry(grant.username.as_str().into())
            .or_default()
            .entry(grant.guardrail.as_str().into())
            .or_default();
        entries.retain(|e| e.alive(now) || *e.id == *grant.id);
        match entries.iter_mut().find(|e| *e.id == *grant.id) {
            // The store only ever lowers uses; keep the lower count if a stale read arrives.
            Some(existing) => {
                existing.uses_left = match (existing.uses_left, entry.uses_left) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            None => entries.push(entry),
        }
        true
    }

    /// Whether this cache already holds `row` as it was verified (same id, reach, expiry and kind
    /// of use limit), so a refresh need not verify its token again; the row's uses are lowered to
    /// the held count if they grew (the store only ever lowers them).
    pub fn holds_verified(&self, row: &mut LiveGrant) -> bool {
        let shard = self
            .shard(&row.username)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = shard
            .get(row.username.as_str())
            .and_then(|g| g.get(row.guardrail.as_str()))
            .and_then(|entries| entries.iter().find(|e| *e.id == *row.id))
        else {
            return false;
        };
        let same = entry.reach == Reach::of(row)
            && entry.expires_at == row.expires_at
            && entry.uses_left.is_some() == row.uses_left.is_some()
            && *row.cluster == *self.cluster;
        if same {
            if let (Some(held), Some(left)) = (entry.uses_left, row.uses_left.as_mut()) {
                *left = (*left).min(i64::from(held));
            }
            // What its token said when it was verified, not what the row says.
            row.break_glass = entry.break_glass;
        }
        same
    }

    /// One use was taken in the store; `spent` when the store said none was left.
    pub fn used(&self, username: &str, guardrail: &str, id: &str, spent: bool) {
        self.update(username, guardrail, id, |entry| {
            if spent {
                entry.uses_left = Some(0);
            } else if let Some(n) = entry.uses_left.as_mut() {
                *n = (*n - 1).max(0);
            }
        });
    }

    /// Forget a revoked grant now, and keep it out of later refreshes until `expires_at`.
    pub fn revoke(&self, username: &str, guardrail: &str, id: &str, expires_at: i64) {
        self.revoked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.into(), expires_at);
        let mut shard = self
            .shard(username)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(by_guardrail) = shard.get_mut(username) {
            if let Some(entries) = by_guardrail.get_mut(guardrail) {
                entries.retain(|e| *e.id != *id);
                if entries.is_empty() {
                    by_guardrail.remove(guardrail);
                }
            }
            if by_guardrail.is_empty() {
                shard.remove(username);
            }
        }
    }

    /// Replace everything with what the store holds now (every live grant), e.g. every few seconds.
    ///
    /// The new maps are built outside the locks; each shard is then swapped in one short write.
    pub fn replace_all(&self, grants: impl IntoIterator<Item = LiveGrant>, now: i64) {
        let revoked = {
            let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
            revoked.retain(|_, expires_at| now < *expires_at);
            revoked.clone()
        };
        let mut fresh: Vec<Shard> = (0..self.shards.len()).map(|_| Shard::new()).collect();
        for grant in grants {
            if *grant.cluster != *self.cluster
                || now >= grant.expires_at
                || grant.uses_left.is_some_and(|n| n <= 0)
                || revoked.contains_key(grant.id.as_str())
            {
                continue;
            }
            let i = (self.hasher.hash_one(grant.username.as_str()) as usize) % fresh.len();
            let reach = Reach::of(&grant);
            let LiveGrant {
                id,
                username,
                guardrail,
                expires_at,
                uses_left,
                break_glass,
                ..
            } = grant;
            fresh[i]
                .entry(username.into_boxed_str())
                .or_default()
                .entry(guardrail.into_boxed_str())
                .or_default()
                .push(Entry {
                    id: id.into_boxed_str(),
                    reach,
                    expires_at,
                    uses_left: narrow(uses_left),
                    break_glass,
                });
        }
        for (shard, mut new) in self.shards.iter().zip(fresh) {
            for entries in new.values_mut().flat_map(HashMap::values_mut) {
                entries.shrink_to_fit();
            }
            let old = std::mem::replace(
                &mut *shard.write().unwrap_or_else(PoisonError::into_inner),
                new,
            );
            // Freed after the lock is released.
            drop(old);
        }
    }

    /// How many grants are held (live or not yet pruned).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                    .flat_map(HashMap::values)
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum()
    }

    /// Whether no grant is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_revoked(&self, id: &str) -> bool {
        self.revoked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(id)
    }

    fn update(&self, username: &str, guardrail: &str, id: &str, change: impl FnOnce(&mut Entry)) {
        let mut shard = self
            .shard(username)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = shard
            .get_mut(username)
            .and_then(|g| g.get_mut(guardrail))
            .and_then(|entries| entries.iter_mut().find(|e| *e.id == *id))
        {
            change(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "prod-eu";
    const NOW: i64 = 1_800_000_000;

    fn digest_of(i: usize) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(i.to_le_bytes()))
    }

    fn grant(id: &str, user: &str, guardrail: &str, scope: GrantScope) -> LiveGrant {
        LiveGrant {
            id: id.into(),
            username: user.into(),
            guardrail: guardrail.into(),
            cluster: CLUSTER.into(),
            scope,
            digest: digest_of(0),
            namespace: "payments".into(),
            object_key: "apps/deployments/payments/api".into(),
            uses_left: Some(1),
            expires_at: NOW + 900,
            break_glass: false,
        }
    }

    fn target<'a>(user: &'a str, guardrail: &'a str, digest: &'a str) -> GrantTarget<'a> {
        GrantTarget {
            username: user,
            guardrail,
            cluster: CLUSTER,
            digest,
            namespace: "payments",
            object_key: "apps/deployments/payments/api",
        }
    }

    #[test]
    fn finds_by_user_guardrail_and_scope() {
        let cache = GrantCache::new(CLUSTER);
        let d0 = digest_of(0);
        let d1 = digest_of(1);
        assert!(cache.insert(&grant("g1", "alice", "prod", GrantScope::Request), NOW));
        assert_eq!(
            cache.find(&target("alice", "prod", &d0), NOW).map(|g| g.id),
            Some("g1".into())
        );
        assert!(cache.find(&target("alice", "prod", &d1), NOW).is_none());
        assert!(cache.find(&target("bob", "prod", &d0), NOW).is_none());
        assert!(cache.find(&target("alice", "other", &d0), NOW).is_none());
        let mut elsewhere = target("alice", "prod", &d0);
        elsewhere.cluster = "staging";
        assert!(cache.find(&elsewhere, NOW).is_none());
        // Dead at its expiry.
        assert!(cache
            .find(&target("alice", "prod", &d0), NOW + 900)
            .is_none());

        let mut ns = grant("g2", "bob", "prod", GrantScope::Namespace);
        ns.uses_left = None;
        cache.insert(&ns, NOW);
        let found = cache.find(&target("bob", "prod", &d1), NOW);
        assert_eq!(found.as_ref().map(|g| g.id.as_str()), Some("g2"));
        assert!(found.is_some_and(|g| !g.is_limited()));
    }

    #[test]
    fn other_clusters_and_dead_grants_are_not_held() {
        let cache = GrantCache::new(CLUSTER);
        let mut other = grant("g1", "alice", "prod", GrantScope::Request);
        other.cluster = "staging".into();
        assert!(!cache.insert(&other, NOW));
        let mut expired = grant("g2", "alice", "prod", GrantScope::Request);
        expired.expires_at = NOW;
        assert!(!cache.insert(&expired, NOW));
        assert!(cache.is_empty());
    }

    #[test]
    fn prefers_an_unlimited_grant() {
        let cache = GrantCache::new(CLUSTER);
        let d0 = digest_of(0);
        cache.insert(&grant("limited", "alice", "prod", GrantScope::Request), NOW);
        let mut unlimited = grant("unlimited", "alice", "prod", GrantScope::Object);
        unlimited.uses_left = None;
        cache.insert(&unlimited, NOW);
        assert_eq!(
            cache.find(&target("alice", "prod", &d0), NOW).map(|g| g.id),
            Some("unlimited".into())
        );
    }

    #[test]
    fn uses_and_revocation() {
        let cache = GrantCache::new(CLUSTER);
        let d0 = digest_of(0);
        let mut two = grant("g1", "alice", "prod", GrantScope::Request);
        two.uses_left = Some(2);
        cache.insert(&two, NOW);
        cache.used("alice", "prod", "g1", false);
        assert_eq!(
            cache
                .find(&target("alice", "prod", &d0), NOW)
                .and_then(|g| g.uses_left),
            Some(1)
        );
        cache.used("alice", "prod", "g1", false);
        assert!(cache.find(&target("alice", "prod", &d0), NOW).is_none());

        let mut other = grant("g2", "alice", "prod", GrantScope::Request);
        other.uses_left = None;
        cache.insert(&other, NOW);
        cache.used("alice", "prod", "g2", true);
        assert!(cache.find(&target("alice", "prod", &d0), NOW).is_none());

        let mut forever = grant("g3", "alice", "prod", GrantScope::Namespace);
        forever.uses_left = None;
        cache.insert(&forever, NOW);
        assert!(cache.find(&target("alice", "prod", &d0), NOW).is_some());
        cache.revoke("alice", "prod", "g3", forever.expires_at);
        assert!(cache.find(&target("alice", "prod", &d0), NOW).is_none());
        // A refresh that read the store before the revocation landed does not bring it back ...
        cache.replace_all(vec![forever.clone()], NOW);
        assert!(cache.find(&target("alice", "prod", &d0), NOW).is_none());
        assert!(!cache.insert(&forever, NOW));
        // ... and the tombstone goes once the grant would have expired anyway.
        cache.replace_all(Vec::new(), forever.expires_at);
        assert!(cache.revoked.lock().unwrap().is_empty());
    }

    #[test]
    fn a_stale_read_never_raises_uses() {
        let cache = GrantCache::new(CLUSTER);
        let d0 = digest_of(0);
        let mut g = grant("g1", "alice", "prod", GrantScope::Request);
        g.uses_left = Some(3);
        cache.insert(&g, NOW);
        cache.used("alice", "prod", "g1", false);
        cache.insert(&g, NOW);
        assert_eq!(
            cache
                .find(&target("alice", "prod", &d0), NOW)
                .and_then(|g| g.uses_left),
            Some(2)
        );
    }

    #[test]
    fn refresh_replaces_everything() {
        let cache = GrantCache::new(CLUSTER);
        let d0 = digest_of(0);
        cache.insert(&grant("gone", "alice", "prod", GrantScope::Request), NOW);
        let mut spent = grant("spent", "bob", "prod", GrantScope::Request);
        spent.uses_left = Some(0);
        cache.replace_all(
            vec![grant("kept", "carol", "prod", GrantScope::Request), spent],
            NOW,
        );
        assert_eq!(cache.len(), 1);
        assert!(cache.find(&target("alice", "prod", &d0), NOW).is_none());
        assert!(cache.find(&target("bob", "prod", &d0), NOW).is_none());
        assert!(cache.find(&target("carol", "prod", &d0), NOW).is_some());
    }

    #[test]
    fn a_hundred_thousand_grants_stay_correct() {
        const USERS: usize = 2_000;
        const GUARDRAILS: [&str; 5] = ["prod-workloads", "prod-exec", "rbac", "secrets", "ns"];
        const N: usize = 100_000;
        let cache = GrantCache::new(CLUSTER);
        let grants = (0..N).map(|i| LiveGrant {
            id: format!("grant-{i}"),
            username: format!("user-{}", i % USERS),
            guardrail: GUARDRAILS[(i / USERS) % GUARDRAILS.len()].into(),
            cluster: CLUSTER.into(),
            scope: GrantScope::Request,
            digest: digest_of(i),
            namespace: String::new(),
            object_key: String::new(),
            uses_left: if i % 2 == 0 { Some(1) } else { None },
            expires_at: NOW + 900,
            break_glass: false,
        });
        cache.replace_all(grants, NOW);
        assert_eq!(cache.len(), N);
        for i in (0..N).step_by(7) {
            let user = format!("user-{}", i % USERS);
            let guardrail = GUARDRAILS[(i / USERS) % GUARDRAILS.len()];
            let digest = digest_of(i);
            let found = cache
                .find(&target(&user, guardrail, &digest), NOW)
                .unwrap_or_else(|| panic!("grant-{i} not found"));
            assert_eq!(found.id, format!("grant-{i}"));
            assert_eq!(found.is_limited(), i % 2 == 0);
            // The same request under another guardrail, or by the next user, is not covered.
            let other_guardrail = GUARDRAILS[((i / USERS) + 1) % GUARDRAILS.len()];
            assert!(cache
                .find(&target(&user, other_guardrail, &digest), NOW)
                .is_none());
            let other_user = format!("user-{}", (i + 1) % USERS);
            assert!(cache
                .find(&target(&other_user, guardrail, &digest), NOW)
                .is_none());
        }
        // An unknown request of a known user.
        let stranger = digest_of(N + 1);
        assert!(cache
            .find(&target("user-1", "prod-exec", &stranger), NOW)
            .is_none());
    }

    #[test]
    fn entries_stay_small() {
        // Kept well under a kilobyte per grant: no token, no evidence, digests as raw bytes.
        assert!(
            std::mem::size_of::<Entry>() <= 80,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }
}
