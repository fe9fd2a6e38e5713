//! What the webhook listener needs: the admission half of elevations, and the guardrails, labels,
//! counters and decision log it answers with. Nothing of the portal's (sessions, passkeys, OIDC).

use std::sync::Arc;

use url::Url;

use crate::cluster::LiveNamespaces;
use crate::elevation::Elevation;
use crate::engine::LiveGuardrails;
use crate::grants::GrantSigner;
use crate::state::{Core, WebhookParts};
use crate::store::AnyStore;

use super::decision_log::DecisionLog;
use super::metrics::Metrics;

/// The webhook and probe listeners' state, built once from the shared [`Core`] and the webhook's
/// own [`WebhookParts`].
#[derive(Clone)]
pub struct WebhookState {
    /// Grants and challenges for requests that need them (built once, not per review).
    pub elevation: Arc<Elevation>,
    /// The guardrails in force, one snapshot per review.
    pub guardrails: Arc<LiveGuardrails>,
    /// Namespace labels for selectors.
    pub namespaces: Arc<LiveNamespaces>,
    /// Webhook counters.
    pub metrics: Arc<Metrics>,
    /// Where matched decisions go to be explained and stored.
    pub decisions: Arc<DecisionLog>,
    /// Storage, for the readiness probe only.
    pub store: Arc<dyn AnyStore>,
    /// The grant key, whose public half `/.well-known/jwks.json` serves.
    pub signer: Arc<GrantSigner>,
    /// The portal's public URL, for challenge links.
    pub public_url: Url,
    /// Where reviews are counted by shape, for the simulator.
    pub traffic: Arc<crate::traffic::TrafficRecorder>,
    /// Whether the cluster sends every request the guardrails need (readiness, metrics).
    pub routing: Arc<crate::guardrails::routing::RoutingStatus>,
}

impl WebhookState {
    /// The parts of `core` the webhook uses, with its own `parts`.
    pub fn new(core: &Core, parts: &WebhookParts) -> Self {
        Self {
            elevation: Arc::new(core.elevation()),
            guardrails: core.guardrails.clone(),
            namespaces: core.namespaces.clone(),
            metrics: core.metrics.clone(),
            decisions: parts.decisions.clone(),
            store: core.store.clone(),
            signer: core.signer.clone(),
            public_url: core.public_url.clone(),
            traffic: parts.traffic.clone(),
            routing: parts.routing.clone(),
        }
    }

    /// `https://host/c/CODE`
    pub fn challenge_link(&self, code: &str) -> String {
        crate::state::challenge_link(&self.public_url, code)
    }
}
