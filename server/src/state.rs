//! The state the listeners share, and each one's own: a [`Core`] both the portal and the webhook
//! use (store, guardrails, caches, keys), the portal's [`AppState`] over it (passkeys, OIDC,
//! proxies), and the webhook's parts beside it ([`WebhookParts`]: decision log, recorded traffic,
//! routing status), from which [`crate::webhook::WebhookState`] is built.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use url::Url;

use crate::audit::queue::AuditQueue;
use crate::challenges::{ChallengeCache, ChallengeLimits};
use crate::cluster::LiveNamespaces;
use crate::engine::LiveGuardrails;
use crate::grants::{GrantCache, GrantSigner};
use crate::identity::mapping::IdentityMap;
use crate::identity::passkeys::Passkeys;
use crate::store::AnyStore;
use crate::webhook::decision_log::DecisionLog;
use crate::webhook::metrics::Metrics;

/// The link to the challenge `code` on the portal at `public_url`: `https://host/c/CODE`.
pub fn challenge_link(public_url: &Url, code: &str) -> String {
    format!("{}/c/{code}", public_url.as_str().trim_end_matches('/'))
}

/// What every listener shares, cheaply cloned.
#[derive(Clone)]
pub struct Core {
    /// Storage.
    pub store: Arc<dyn AnyStore>,
    /// The guardrails in force, one snapshot per review (swapped whole when they change).
    pub guardrails: Arc<LiveGuardrails>,
    /// Namespace labels for selectors (swapped whole by the cluster watch, if any).
    pub namespaces: Arc<LiveNamespaces>,
    /// Live grants in memory, checked by the webhook without a database round trip.
    pub grants: Arc<GrantCache>,
    /// Open challenges in memory, so a repeated request is denied again without a database round trip.
    pub challenges: Arc<ChallengeCache>,
    /// How many open challenges (and bytes) one person and everyone may have.
    pub challenge_limits: ChallengeLimits,
    /// Grant signing key.
    pub signer: Arc<GrantSigner>,
    /// Public URL of the portal (links, WebAuthn origin, grant issuer).
    pub public_url: Url,
    /// Name of the cluster this instance guards (part of every digest and grant).
    pub cluster: String,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Where audit events that need not hold up an answer wait (bounded; never waited for).
    pub audit: Arc<AuditQueue>,
    /// Who may confirm challenges for which Kubernetes usernames, beyond their own.
    pub identities: Arc<IdentityMap>,
    /// Where elevation events go (live pages, notifications).
    pub events: crate::elevation::EventBus,
}

impl Core {
    /// `https://host/c/CODE`
    pub fn challenge_link(&self, code: &str) -> String {
        challenge_link(&self.public_url, code)
    }

    /// The elevation service over this state's store, key, caches and limits.
    pub fn elevation(&self) -> crate::elevation::Elevation {
        crate::elevation::Elevation::new(
            self.store.clone(),
            self.signer.clone(),
            self.grants.clone(),
            self.challenges.clone(),
            self.identities.clone(),
            self.issuer(),
            self.events.clone(),
        )
        .with_metrics(self.metrics.clone())
        .with_guardrails(self.guardrails.clone())
        .for_admission(&self.cluster, self.challenge_limits, self.audit.clone())
    }

    /// Issuer for grant tokens.
    pub fn issuer(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }
}

/// The portal's state: the shared core (reached through `Deref`), and what only the portal uses.
#[derive(Clone)]
pub struct AppState {
    /// What the listeners share.
    pub core: Core,
    /// WebAuthn relying party.
    pub passkeys: Arc<Passkeys>,
    /// OpenID Provider relying party, when OIDC is configured.
    pub oidc: Option<Arc<crate::identity::oidc::Oidc>>,
    /// Proxies whose `X-Forwarded-For` names the portal's client.
    pub trusted_proxies: Arc<crate::portal::client::TrustedProxies>,
    /// Files mode: the guardrail files `serve` reads (`--policies`); `None` in store mode.
    pub guardrail_files: Option<std::path::PathBuf>,
}

impl Deref for AppState {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

impl DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut Core {
        &mut self.core
    }
}

/// What only the webhook and probe listeners use, beside the core.
#[derive(Clone)]
pub struct WebhookParts {
    /// Where matched decisions go to be explained and stored.
    pub decisions: Arc<DecisionLog>,
    /// Where reviews are counted by shape, for the simulator (off unless recording).
    pub traffic: Arc<crate::traffic::TrafficRecorder>,
    /// Whether the cluster sends every request the guardrails in force need.
    pub routing: Arc<crate::guardrails::routing::RoutingStatus>,
}
