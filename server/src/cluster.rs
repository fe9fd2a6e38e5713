//! What Countersign reads from the Kubernetes API it guards: Namespace labels for label selectors,
//! kept current by a watch and held in memory; and the installed ValidatingWebhookConfiguration,
//! checked (and, managed, replaced) so that guardrails reloaded at run time see their requests.
//!
//! Only names and labels are kept (no `managedFields`, annotations, spec or status): on clusters with
//! many namespaces whole reflected objects are what runs policy servers out of memory. The engine reads
//! an immutable [`NamespaceIndex`]; the watch builds a new one on change and swaps it in, so a review
//! never waits for the watch and the watch never waits for a review.

use std::collections::BTreeMap;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use arc_swap::{ArcSwap, Guard};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use crate::engine::NamespaceIndex;

/// Namespace labels as currently known, swapped whole when the cluster changes.
#[derive(Debug, Default)]
pub struct LiveNamespaces {
    current: ArcSwap<NamespaceIndex>,
    synced: AtomicBool,
}

impl LiveNamespaces {
    /// Fixed labels (local mode, tests): nothing will update them, so they count as synced.
    pub fn fixed(index: NamespaceIndex) -> Self {
        Self {
            current: ArcSwap::from_pointee(index),
            synced: AtomicBool::new(true),
        }
    }

    /// Empty until a watch delivers the first complete list.
    pub fn awaiting_sync() -> Self {
        Self::default()
    }

    /// The index as of now; cheap, lock-free, and unaffected by later swaps.
    pub fn load(&self) -> Guard<Arc<NamespaceIndex>> {
        self.current.load()
    }

    /// The current labels as an owned snapshot.
    pub fn load_full(&self) -> Arc<NamespaceIndex> {
        self.current.load_full()
    }

    /// Publish a new index.
    pub fn replace(&self, index: NamespaceIndex) {
        self.current.store(Arc::new(index));
    }

    /// Whether a complete list has been seen (always true for fixed labels).
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    fn mark_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }
}

/// A client for the cluster: from a kubeconfig file when given, else the in-cluster service account
/// when running in a pod (`KUBERNETES_SERVICE_HOST` set); `None` in local mode.
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<Option<kube::Client>> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("using kubeconfig {}", path.display()))?
        }
        None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
            kube::Config::incluster().context("reading the in-cluster service account")?
        }
        None => return Ok(None),
    };
    Ok(Some(
        kube::Client::try_from(config).context("building the Kubernetes client")?,
    ))
}

/// Keep `live` current from the cluster's Namespaces until the task is dropped.
///
/// A metadata-only watch (`PartialObjectMetadata`), restarted with backoff on errors; events that
/// arrive together are applied as one swap.
pub async fn reflect_namespaces(client: kube::Client, live: Arc<LiveNamespaces>) {
    // `PartialObjectMeta` makes every list and watch metadata-only on the wire.
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    let events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .ready_chunks(256);
    let mut events = pin!(events);
    let mut reflection = Reflection::default();
    while let Some(batch) = events.next().await {
        let mut changed = false;
        for event in batch {
            match event {
                Ok(event) => changed |= reflection.apply(event),
                Err(e) => tracing::warn!(error = %e, "namespace watch failed; retrying"),
            }
        }
        if changed {
            live.replace(reflection.index());
            if reflection.synced {
                live.mark_synced();
            }
        }
    }
}

/// The watch's own view: name → labels, plus the list being received during a (re)start.
#[derive(Debug, Default)]
struct Reflection {
    known: BTreeMap<String, BTreeMap<String, String>>,
    listing: Option<BTreeMap<String, BTreeMap<String, String>>>,
    synced: bool,
}

impl Reflection {
    /// Apply one event; true when the published index must change.
    fn apply(&mut self, event: Event<PartialObjectMeta<Namespace>>) -> bool {
        match event {
            Event::Init => {
                self.listing = Some(BTreeMap::new());
                false
            }
            Event::InitApply(ns) => {
                if let (Some(listing), Some((name, labels))) = (self.listing.as_mut(), strip(ns)) {
                    listing.insert(name, labels);
                }
                false
            }
            Event::InitDone => {
                // Namespaces deleted while the watch was down vanish here, with the old list.
                self.known = self.listing.take().unwrap_or_default();
                self.synced = true;
                true
            }
            Event::Apply(ns) => match strip(ns) {
                Some((name, labels)) => self.known.insert(name, labels.clone()) != Some(labels),
                None => false,
            },
            Event::Delete(ns) => ns
                .metadata
                .name
                .is_some_and(|name| self.known.remove(&name).is_some()),
        }
    }

    fn index(&self) -> NamespaceIndex {
        let mut index = NamespaceIndex::default();
        for (name, labels) in &self.known {
            index.upsert(&serde_json::json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": { "name": name, "labels": labels },
            }));
        }
        index
    }
}

/// Name and labels; everything else of the object is dropped here.
fn strip(ns: PartialObjectMeta<Namespace>) -> Option<(String, BTreeMap<String, String>)> {
    let meta = ns.metadata;
    Some((meta.name?, meta.labels.unwrap_or_default()))
}

/// How often the installed ValidatingWebhookConfiguration is read again (and at once when the
/// guardrails in force change).
pub const ROUTING_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Keep checking that the installed ValidatingWebhookConfiguration `options.name` sends what the
/// guardrails in force need, into `status`, until the task is dropped. With `manage`, a
/// configuration that does not is replaced by the regenerated one (server-side apply, keeping the
/// installed `clientConfig`, CA bundle included, and timeout).
pub async fn keep_routing(
    client: kube::Client,
    guardrails: Arc<crate::engine::LiveGuardrails>,
    status: Arc<crate::guardrails::routing::RoutingStatus>,
    options: crate::policy::webhook_config::WebhookOptions,
    manage: bool,
) {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let mut checked_version = String::new();
    let mut last_check = tokio::time::Instant::now();
    let mut first = true;
    loop {
        let snapshot = guardrails.load();
        let due = first || last_check.elapsed() >= ROUTING_EVERY;
        if !due && snapshot.version() == checked_version {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        }
        first = false;
        last_check = tokio::time::Instant::now();
        snapshot.version().clone_into(&mut checked_version);
        match check_routes(&api, snapshot.guardrails(), &options, manage).await {
            Ok(None) => status.routed(),
            Ok(Some((missing, why))) => {
                if status.problem().as_deref() != Some(&why) {
                    tracing::warn!(%why, "the cluster does not send every request the guardrails need");
                }
                status.unrouted(missing, why);
            }
            Err(Applied) => {
                tracing::info!(name = %options.name, version = %checked_version, "applied the regenerated ValidatingWebhookConfiguration");
                status.applied();
                status.routed();
            }
        }
    }
}

/// The regenerated configuration was applied.
struct Applied;

/// `Ok(None)` when routed, `Ok(Some((missing, why)))` when not, `Err(Applied)` when mended.
async fn check_routes(
    api: &Api<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration>,
    guardrails: &[crate::policy::Guardrail],
    options: &crate::policy::webhook_config::WebhookOptions,
    manage: bool,
) -> Result<Option<(usize, String)>, Applied> {
    let name = &options.name;
    let installed = match api.get_opt(name).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Ok(Some((
                0,
                format!("the ValidatingWebhookConfiguration `{name}` is not installed: no request reaches Countersign"),
            )))
        }
        Err(e) => {
            return Ok(Some((
                0,
                format!("the ValidatingWebhookConfiguration `{name}` could not be read: {e}"),
            )))
        }
    };
    let missing = crate::guardrails::routing::unrouted(guardrails, options, &installed);
    if missing.is_empty() {
        return Ok(None);
    }
    let listed = missing.join(", ");
    if manage {
        match regenerated(guardrails, options, &installed) {
            Some(config) => {
                let params = kube::api::PatchParams::apply("countersign").force();
                match api.patch(name, &params, &kube::api::Patch::Apply(&config)).await {
                    Ok(_) => return Err(Applied),
                    Err(e) => {
                        return Ok(Some((
                            missing.len(),
                            format!("the ValidatingWebhookConfiguration `{name}` does not send {listed}, and applying the regenerated one failed: {e}"),
                        )))
                    }
                }
            }
            None => {
                return Ok(Some((
                    missing.len(),
                    format!("the ValidatingWebhookConfiguration `{name}` does not send {listed}, and it has no webhook whose clientConfig could be kept"),
                )))
            }
        }
    }
    Ok(Some((
        missing.len(),
        format!("the ValidatingWebhookConfiguration `{name}` does not send {listed}: guardrails needing them never see them; apply `countersign webhook-config` again or run with --manage-webhook-config"),
    )))
}

/// The configuration for `guardrails`, with the installed one's client (CA bundle included) and timeout.
fn regenerated(
    guardrails: &[crate::policy::Guardrail],
    options: &crate::policy::webhook_config::WebhookOptions,
    installed: &k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
) -> Option<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration> {
    let model = installed.webhooks.as_ref()?.first()?;
    let mut config = crate::policy::webhook_config::generate(guardrails, options)
        .ok()?
        .config;
    for webhook in config.webhooks.iter_mut().flatten() {
        webhook.client_config = model.client_config.clone();
        webhook.timeout_seconds = model.timeout_seconds;
    }
    config.metadata.resource_version = None;
    Some(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::NamespaceLabels;
    use kube::api::ObjectMeta;

    fn ns(name: &str, labels: &[(&str, &str)]) -> PartialObjectMeta<Namespace> {
        PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                annotations: Some(BTreeMap::from([("big".into(), "x".repeat(4096))])),
                ..ObjectMeta::default()
            },
            _phantom: std::marker::PhantomData,
        }
    }

    fn label(index: &NamespaceIndex, ns: &str, key: &str) -> Option<String> {
        index.labels(ns).and_then(|l| l.get(key).cloned())
    }

    #[test]
    fn list_then_changes() {
        let mut r = Reflection::default();
        assert!(!r.apply(Event::Init));
        assert!(!r.apply(Event::InitApply(ns("payments", &[("env", "prod")]))));
        assert!(!r.apply(Event::InitApply(ns("dev", &[]))));
        // Nothing is published before the list is complete.
        assert!(r.index().is_empty());
        assert!(r.apply(Event::InitDone));
        let index = r.index();
        assert_eq!(index.len(), 2);
        assert_eq!(label(&index, "payments", "env").as_deref(), Some("prod"));

        assert!(r.apply(Event::Apply(ns("dev", &[("env", "prod")]))));
        assert!(
            !r.apply(Event::Apply(ns("dev", &[("env", "prod")]))),
            "no change"
        );
        assert!(r.apply(Event::Delete(ns("payments", &[]))));
        let index = r.index();
        assert_eq!(label(&index, "dev", "env").as_deref(), Some("prod"));
        assert!(index.labels("payments").is_none());

        // A restart's list replaces everything, dropping what was deleted meanwhile.
        r.apply(Event::Init);
        r.apply(Event::InitApply(ns("checkout", &[("env", "prod")])));
        r.apply(Event::InitDone);
        let index = r.index();
        assert_eq!(index.len(), 1);
        assert!(index.labels("dev").is_none());
    }

    #[test]
    fn live_namespaces_swap_without_disturbing_readers() {
        let live = LiveNamespaces::awaiting_sync();
        assert!(!live.is_synced());
        let before = live.load();
        let mut r = Reflection::default();
        r.apply(Event::Init);
        r.apply(Event::InitApply(ns("payments", &[("env", "prod")])));
        r.apply(Event::InitDone);
        live.replace(r.index());
        live.mark_synced();
        assert!(
            before.is_empty(),
            "a loaded snapshot never changes under its reader"
        );
        assert_eq!(
            label(&live.load(), "payments", "env").as_deref(),
            Some("prod")
        );
        assert!(live.is_synced());
    }
}
