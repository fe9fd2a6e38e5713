//! What every handler shares.

use std::sync::Arc;

use url::Url;

use crate::engine::{Engine, NamespaceIndex};
use crate::grants::GrantSigner;
use crate::identity::passkeys::Passkeys;
use crate::store::AnyStore;
use crate::webhook::metrics::Metrics;

/// Shared, cheaply cloned application state.
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub store: Arc<dyn AnyStore>,
    /// Loaded guardrails.
    pub engine: Arc<Engine>,
    /// Namespace labels for selectors.
    pub namespaces: Arc<NamespaceIndex>,
    /// Grant signing key.
    pub signer: Arc<GrantSigner>,
    /// WebAuthn relying party.
    pub passkeys: Arc<Passkeys>,
    /// Public URL of the portal (links, WebAuthn origin, grant issuer).
    pub public_url: Url,
    /// Name of the cluster this instance guards (part of every digest and grant).
    pub cluster: String,
    /// Webhook counters.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// `https://host/c/CODE`
    pub fn challenge_link(&self, code: &str) -> String {
        format!(
            "{}/c/{code}",
            self.public_url.as_str().trim_end_matches('/')
        )
    }

    /// Issuer for grant tokens.
    pub fn issuer(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }
}
