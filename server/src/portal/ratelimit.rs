//! Rate limits on authentication (`/auth/login/*`, `/auth/stepup/*`, `/auth/decide/*`, `/auth/oidc/*`,
//! `/auth/setup/*`): failures are counted per client address and per account, in memory; past a
//! few free failures each further one doubles the wait (exponential backoff, capped). A blocked
//! client gets 429 with `Retry-After` and a message saying how long to wait; the first refusal of
//! each block is audited.
//!
//! A request fails when it is answered 4xx, or redirected to a portal page with an `oidc=` reason
//! (how the identity-provider routes report failures). A successful sign-in or step-up clears the
//! account's count; address counts only fade, so a valid account cannot reset a guessing spree.
//!
//! A signed-in person's step-up is counted apart, for that person only: failed sign-ins typed with
//! their name, or many failures from the address they share with others behind a proxy, do not
//! block it. The address is the client's (see [`super::client`]), not a proxy's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::backend::signed_in;
use super::ceremonies::audit;
use crate::state::AppState;

/// Limits: how many failures are free, and how long the backoff may grow.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Free failures per client address (several people may share one behind NAT).
    pub per_address: u32,
    /// Free failures per account.
    pub per_account: u32,
    /// First wait after the free failures; doubled with each further failure.
    pub base: Duration,
    /// Longest wait.
    pub max: Duration,
    /// A key with no failure for this long starts over.
    pub forget_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_address: 20,
            per_account: 5,
            base: Duration::from_secs(2),
            max: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(15 * 60),
        }
    }
}

/// Most keys remembered; beyond it, keys that are not blocked are forgotten first.
const MAX_KEYS: usize = 50_000;

/// Session key: the account a passkey sign-in was started for.
const ATTEMPTED_ACCOUNT: &str = "ratelimit.account";

/// Body bytes read to find the username of a sign-in attempt.
const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
    reported: bool,
}

/// Failure counts and blocks, shared by the portal's authentication routes.
#[derive(Debug)]
pub struct RateLimiter {
    limits: Limits,
    entries: Mutex<HashMap<String, Entry>>,
}

impl RateLimiter {
    /// A limiter with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A poisoned lock only means another request panicked mid-update; the counts stay usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `key` must still wait, and whether this is the first refusal of the block.
    fn blocked(&self, key: &str, now: Instant) -> Option<(Duration, bool)> {
        let mut entries = self.lock();
        let entry = entries.get_mut(key)?;
        let until = entry.blocked_until.filter(|u| *u > now)?;
        let first = !entry.reported;
        entry.reported = true;
        Some((until - now, first))
    }

    fn failed(&self, key: &str, free: u32, now: Instant) {
        let limits = self.limits;
        let mut entries = self.lock();
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, e| e.blocked_until.is_some_and(|u| u > now));
        }
        let entry = entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            last_failure: now,
            blocked_until: None,
            reported: false,
        });
        if now.duration_since(entry.last_failure) > limits.forget_after {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if entry.failures >= free {
            let doublings = (entry.failures - free).min(20);
            let wait = limits
                .base
                .saturating_mul(1u32 << doublings)
                .min(limits.max);
            entry.blocked_until = Some(now + wait);
            entry.reported = false;
        }
    }

    fn succeeded(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// The client's address: the socket peer, or the forwarded client behind a `--trusted-proxy`.
fn address_of(request: &Request) -> String {
    super::client::address_of(request.extensions())
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// Whose attempt a request is, for counting.
enum Attempt {
    /// Not signed in (or signing in anew): counted per address and per typed account name.
    Anonymous(Option<String>),
    /// A signed-in person's step-up: counted for that person alone, so neither failed sign-ins
    /// typed with their name nor a busy shared address (a proxy) can block it (finding 10).
    StepUp {
        /// Account id (or OIDC user id).
        user_key: String,
        /// For the audit log.
        username: String,
    },
}

/// Paths a signed-in person takes to confirm, decide or break glass (with a key or through the
/// identity provider, whose return is a step-up's when signed in): counted for that person alone.
fn is_stepup_path(path: &str) -> bool {
    path.starts_with("/auth/stepup/")
        || path.starts_with("/auth/decide/")
        || path.starts_with("/auth/oidc/")
}

/// A limiter key of bounded size: typed names may be long (16 KiB), so the map keeps a digest of
/// them, never the name itself.
fn key(kind: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}:{hex}")
}

/// The address a client is counted under: an IPv6 client by its /64 (one subscriber gets a whole
/// /64, so counting single addresses would give them unlimited tries).
fn address_bucket(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => address.to_owned(),
    }
}

/// Whose attempt this is, when it can be told before the handler runs.
async fn attempt_of(state: &AppState, session: &Session, request: Request) -> (Request, Attempt) {
    let path = request.uri().path().to_owned();
    if path == "/auth/login/start" {
        // The username is in the JSON body; read it and put the body back.
        let (parts, body) = request.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
            return (
                Request::from_parts(parts, Body::empty()),
                Attempt::Anonymous(None),
            );
        };
        let name = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("username")?.as_str().map(|s| s.trim().to_lowercase()))
            .filter(|s| !s.is_empty());
        // Remembered for the finish, which names no account (whether or not it exists).
        let remembered = match &name {
            Some(n) => session.insert(ATTEMPTED_ACCOUNT, n).await,
            None => session.remove_value(ATTEMPTED_ACCOUNT).await.map(|_| ()),
        };
        if let Err(e) = remembered {
            tracing::warn!(error = %e, "could not remember the account of a sign-in attempt");
        }
        return (
            Request::from_parts(parts, Body::from(bytes)),
            Attempt::Anonymous(name),
        );
    }
    if path == "/auth/login/finish" {
        let name = session
            .get::<String>(ATTEMPTED_ACCOUNT)
            .await
            .ok()
            .flatten();
        return (request, Attempt::Anonymous(name));
    }
    let user = signed_in(state, session).await.ok().flatten();
    let attempt = match user {
        Some(u) if is_stepup_path(&path) => Attempt::StepUp {
            user_key: u.user_id,
            username: u.username,
        },
        other => Attempt::Anonymous(other.map(|u| u.username.to_lowercase())),
    };
    (request, attempt)
}

fn is_limited_path(path: &str) -> bool {
    [
        "/auth/login/",
        "/auth/stepup/",
        "/auth/decide/",
        "/auth/oidc/",
        "/auth/setup/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// Whether a response reports a failed attempt.
fn is_failure(response: &Response) -> bool {
    let status = response.status();
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        return true;
    }
    status.is_redirection()
        && response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| {
                l.starts_with('/')
                    && l.split_once('?').is_some_and(|(_, q)| {
                        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "oidc")
                    })
            })
}

/// Whether a response completes an authentication (sign-in or step-up done).
fn is_completion(path: &str, response: &Response) -> bool {
    (path.ends_with("/finish") || path == crate::identity::oidc::CALLBACK_PATH)
        && (response.status().is_success() || response.status().is_redirection())
        && !is_failure(response)
}

fn too_many(request: &Request, wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let message = format!(
        "too many failed attempts; wait {secs} second{} before trying again",
        if secs == 1 { "" } else { "s" }
    );
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut response = if json {
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response()
    } else {
        (StatusCode::TOO_MANY_REQUESTS, message).into_response()
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// Shared by the middleware: the app state (for audit and the session's user) and the limiter.
#[derive(Clone)]
pub struct Limited {
    /// App state.
    pub state: AppState,
    /// Counts.
    pub limiter: std::sync::Arc<RateLimiter>,
}

/// Refuse blocked clients and accounts; count the outcome of every other attempt.
pub async fn limit_authentication(
    State(Limited { state, limiter }): State<Limited>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if !is_limited_path(&path) {
        return next.run(request).await;
    }
    let address = address_of(&request);
    let (request, attempt) = attempt_of(&state, &session, request).await;
    let limits = limiter.limits;
    // (key, free failures); the key a completion clears; who it is, for the audit log.
    let (keys, clears, actor) = match &attempt {
        Attempt::Anonymous(account) => {
            let mut keys = vec![(
                format!("address:{}", address_bucket(&address)),
                limits.per_address,
            )];
            let account_key = account.as_ref().map(|a| key("account", a));
            keys.extend(account_key.clone().map(|k| (k, limits.per_account)));
            let actor = account.clone().unwrap_or_else(|| "anonymous".to_owned());
            (keys, account_key, actor)
        }
        Attempt::StepUp { user_key, username } => {
            let key = key("stepup", user_key);
            (
                vec![(key.clone(), limits.per_account)],
                Some(key),
                username.clone(),
            )
        }
    };
    let now = Instant::now();
    let block = keys
        .iter()
        .filter_map(|(k, _)| limiter.blocked(k, now))
        .max_by_key(|(wait, _)| *wait);
    if let Some((wait, first)) = block {
        if first {
            audit(
                &state,
                "auth.rate_limited",
                &actor,
                &actor,
                serde_json::json!({
                    "path": path, "address": address, "retryAfter": wait.as_secs().max(1),
                }),
            )
            .await;
        }
        return too_many(&request, wait);
    }
    let response = next.run(request).await;
    if is_failure(&response) {
        for (key, free) in &keys {
            limiter.failed(key, *free, now);
        }
    } else if is_completion(&path, &response) {
        if let Some(key) = &clears {
            limiter.succeeded(key);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            per_address: 3,
            per_account: 2,
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
            forget_after: Duration::from_secs(600),
        }
    }

    #[test]
    fn backoff_doubles_after_the_free_failures_and_is_capped() {
        let l = RateLimiter::new(limits());
        let t = Instant::now();
        l.failed("k", 2, t);
        assert!(l.blocked("k", t).is_none(), "one failure is free");
        l.failed("k", 2, t);
        assert_eq!(l.blocked("k", t), Some((Duration::from_secs(2), true)));
        assert_eq!(
            l.blocked("k", t),
            Some((Duration::from_secs(2), false)),
            "only the first refusal is reported"
        );
        l.failed("k", 2, t);
        assert_eq!(l.blocked("k", t).map(|b| b.0), Some(Duration::from_secs(4)));
        for _ in 0..10 {
            l.failed("k", 2, t);
        }
        assert_eq!(
            l.blocked("k", t).map(|b| b.0),
            Some(Duration::from_secs(60))
        );
        assert!(l.blocked("k", t + Duration::from_secs(61)).is_none());
        l.succeeded("k");
        assert!(l.blocked("k", t).is_none());
    }

    #[test]
    fn keys_are_bounded_and_ipv6_counts_by_64() {
        let long = "x".repeat(16 * 1024);
        assert_eq!(key("account", &long).len(), "account:".len() + 32);
        assert_ne!(key("account", "bob"), key("account", "bobby"));
        assert_eq!(
            address_bucket("2001:db8:1:2:aaaa::1"),
            address_bucket("2001:db8:1:2:ffff::9")
        );
        assert_ne!(
            address_bucket("2001:db8:1:2::1"),
            address_bucket("2001:db8:1:3::1")
        );
        assert_eq!(address_bucket("192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn every_route_that_ends_in_a_confirm_or_a_decision_is_a_persons() {
        for path in [
            "/auth/stepup/start",
            "/auth/stepup/finish",
            "/auth/decide/start",
            "/auth/decide/finish",
            "/auth/oidc/stepup",
            "/auth/oidc/decide",
            crate::identity::oidc::CALLBACK_PATH,
        ] {
            assert!(is_stepup_path(path), "{path}");
        }
        assert!(!is_stepup_path("/auth/login/finish"));
    }

    #[test]
    fn old_failures_are_forgotten() {
        let l = RateLimiter::new(limits());
        let t = Instant::now();
        l.failed("k", 2, t);
        l.failed("k", 2, t + Duration::from_secs(601));
        assert!(
            l.blocked("k", t + Duration::from_secs(601)).is_none(),
            "the first failure was too long ago to count"
        );
    }

    #[test]
    fn failures_are_recognised() {
        let redirect = |to: &str| {
            Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, to)
                .body(Body::empty())
                .unwrap()
        };
        let status = |s: StatusCode| Response::builder().status(s).body(Body::empty()).unwrap();
        assert!(is_failure(&status(StatusCode::FORBIDDEN)));
        assert!(is_failure(&redirect("/login?oidc=state&next=%2F")));
        assert!(is_failure(&redirect("/c/K7Q2M9XD?oidc=not_mfa")));
        assert!(!is_failure(&redirect("/c/K7Q2M9XD")));
        assert!(!is_failure(&redirect(
            "https://idp.example.com/auth?redirect_uri=x&oidc=1"
        )));
        assert!(!is_failure(&status(StatusCode::TOO_MANY_REQUESTS)));
        assert!(!is_failure(&status(StatusCode::OK)));
        assert!(is_completion("/auth/login/finish", &status(StatusCode::OK)));
        assert!(!is_completion("/auth/login/start", &status(StatusCode::OK)));
    }
}
