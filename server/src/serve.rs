//! `countersign serve`: open the store, load guardrails and keys, start the portal and the webhook.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use leptos::prelude::LeptosOptions;
use url::Url;

use crate::challenges::ChallengeCache;
use crate::cluster::{self, LiveNamespaces};
use crate::engine::{Engine, NamespaceIndex};
use crate::grants::{GrantCache, GrantSigner};
use crate::identity::mapping::IdentityMap;
use crate::identity::oidc::{Oidc, OidcArgs};
use crate::identity::passkeys::Passkeys;
use crate::identity::setup;
use crate::state::AppState;
use crate::webhook::decision_log::DecisionLog;
use crate::webhook::metrics::Metrics;
use crate::{clock, policy, portal, store, webhook};

/// Everything `serve` needs to know.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Portal address.
    #[arg(long, default_value = "127.0.0.1:3000", env = "COUNTERSIGN_LISTEN")]
    pub listen: SocketAddr,
    /// Webhook address (TLS).
    #[arg(
        long,
        default_value = "127.0.0.1:8443",
        env = "COUNTERSIGN_WEBHOOK_LISTEN"
    )]
    pub webhook_listen: SocketAddr,
    /// Database URL (sqlite:// or postgres://); default an SQLite file in the data dir.
    #[arg(long, env = "COUNTERSIGN_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where the SQLite file, keys and certificates live.
    #[arg(long, default_value = "./data", env = "COUNTERSIGN_DATA_DIR")]
    pub data_dir: PathBuf,
    /// URL people open; links in denials point here and WebAuthn uses its host as RP ID.
    #[arg(
        long,
        default_value = "http://localhost:3000",
        env = "COUNTERSIGN_PUBLIC_URL"
    )]
    pub public_url: Url,
    /// Guardrail YAML file or folder.
    #[arg(long, env = "COUNTERSIGN_POLICIES")]
    pub policies: Option<PathBuf>,
    /// Name of the guarded cluster (bound into every digest and grant).
    #[arg(long, default_value = "default", env = "COUNTERSIGN_CLUSTER")]
    pub cluster: String,
    /// Webhook certificate (PEM); with --tls-key. Without them a private CA is made in the data dir.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Webhook key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Extra DNS names or IPs for the self-made webhook certificate (e.g. countersign.countersign.svc).
    #[arg(long = "webhook-name")]
    pub webhook_names: Vec<String>,
    /// Kubeconfig of the guarded cluster, to watch Namespace labels for label selectors. Without it the
    /// in-cluster service account is used when running in a pod; otherwise (local mode) no cluster is read.
    #[arg(long, env = "COUNTERSIGN_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Without a cluster: Namespace objects (YAML or JSON list) whose labels label selectors use.
    #[arg(long, conflicts_with = "kubeconfig", env = "COUNTERSIGN_NAMESPACES")]
    pub namespaces: Option<PathBuf>,
    /// Identity mapping (YAML, `kind: IdentityMap`): other Kubernetes usernames people own and the
    /// owners of service accounts, whose challenges they confirm.
    #[arg(long, env = "COUNTERSIGN_IDENTITIES")]
    pub identities: Option<PathBuf>,
    /// Approved security keys (YAML, `kind: AuthenticatorAllowList`): vendor attestation roots and
    /// the models (AAGUIDs) each vouches for. Registration then needs a key proven by its vendor's
    /// attestation, and step-ups need such a key.
    #[arg(long, env = "COUNTERSIGN_AUTHENTICATOR_ALLOWLIST")]
    pub authenticator_allowlist: Option<PathBuf>,
    /// Built site (JS, WebAssembly, CSS) made by cargo-leptos.
    #[arg(long, default_value = "target/site", env = "LEPTOS_SITE_ROOT")]
    pub site_root: String,
    /// Sign-in and step-up through an OpenID Provider.
    #[command(flatten)]
    pub oidc: OidcArgs,
}

/// Run until interrupted.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let guardrails = match &args.policies {
        Some(path) => policy::load_path(path)?,
        None => Vec::new(),
    };
    let database_url = args.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            args.data_dir.join("countersign.db").display()
        )
    });
    let store = store::connect(&database_url)
        .await
        .context("opening the store")?;
    let sessions = store.session_store();
    sessions
        .migrate()
        .await
        .context("creating the sessions table")?;
    let signer = GrantSigner::load_or_create(&args.data_dir.join("grant-signing.key"))?;
    let passkeys = match &args.authenticator_allowlist {
        None => Passkeys::new(&args.public_url)?,
        Some(path) => {
            let allowed = crate::identity::authenticators::AuthenticatorAllowList::load(path)?;
            tracing::info!(
                file = %path.display(),
                roots = allowed.cas().len(),
                models = allowed.model_names().len(),
                "authenticator allow-list: only attested, approved security keys register and confirm"
            );
            Passkeys::new(&args.public_url)?.with_allowlist(allowed)
        }
    };
    let oidc = match args.oidc.config().map_err(anyhow::Error::msg)? {
        Some(config) => Some(Arc::new(
            Oidc::new(config, &args.public_url).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => webhook::tls::load(cert, key)?,
        _ => {
            let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            names.extend(args.webhook_names.iter().cloned());
            webhook::tls::load_or_create(&args.data_dir.join("tls"), &names)?
        }
    };

    let kube_client = cluster::client(args.kubeconfig.as_deref()).await?;
    let namespaces = match &kube_client {
        Some(_) => LiveNamespaces::awaiting_sync(),
        None => LiveNamespaces::fixed(match &args.namespaces {
            Some(file) => crate::policy_cli::read_namespaces(file)?,
            None => NamespaceIndex::default(),
        }),
    };
    let identities = match &args.identities {
        Some(file) => IdentityMap::load(file)?,
        None => IdentityMap::default(),
    };
    let grants = GrantCache::new(&args.cluster);
    let held = webhook::grant_cache::refresh(store.as_ref(), &grants)
        .await
        .context("loading live grants")?;

    let engine = Arc::new(Engine::new(guardrails));
    let namespaces = Arc::new(namespaces);
    let (decisions, _decision_writer) = DecisionLog::start(
        store.clone(),
        engine.clone(),
        namespaces.clone(),
        args.cluster.clone(),
    );
    let state = AppState {
        store: store.clone(),
        engine,
        namespaces,
        grants: Arc::new(grants),
        challenges: Arc::new(ChallengeCache::new()),
        signer: Arc::new(signer),
        passkeys: Arc::new(passkeys),
        oidc: oidc.clone(),
        public_url: args.public_url.clone(),
        cluster: args.cluster.clone(),
        metrics: Arc::new(Metrics::default()),
        decisions: Arc::new(decisions),
        identities: Arc::new(identities),
    };

    println!("Countersign {}", env!("CARGO_PKG_VERSION"));
    println!(
        "  portal:     {} (listening on http://{})",
        args.public_url, args.listen
    );
    println!("  webhook:    https://{}/k8s/admit", args.webhook_listen);
    println!("  store:      {}", redact_url(&database_url));
    println!("  guardrails: {}", state.engine.guardrails().len());
    println!("  grants:     {held} live");
    if let Some(oidc) = &oidc {
        println!("  oidc:       {}", oidc.config().issuer.as_str());
    }
    println!(
        "  namespaces: {}",
        if kube_client.is_some() {
            "watched from the cluster"
        } else {
            "not watched (no cluster configured): selectors treat every namespace as unknown and fail closed"
        }
    );
    if let Some(bundle) = tls.ca_bundle() {
        println!(
            "  webhook caBundle (base64 PEM, for the ValidatingWebhookConfiguration):\n{bundle}"
        );
    }
    if store.count_users().await? == 0 {
        let token = setup::new_token();
        let now = clock::now();
        store
            .put_invitation(
                &setup::token_hash(&token),
                now,
                now + setup::SETUP_TTL_SECS,
                &setup::Invitation::first_admin(),
            )
            .await?;
        println!(
            "\nNo accounts yet. Open this one-time link to create the first admin with a passkey:\n  {}/setup/{token}\n",
            args.public_url.as_str().trim_end_matches('/')
        );
    }

    let leptos_options = LeptosOptions::builder()
        .output_name("countersign")
        .site_root(args.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(args.listen)
        .build();
    let portal = portal::router(state.clone(), leptos_options, sessions);
    let webhook_app = webhook::router(state.clone());

    let _ = rustls::crypto::ring::default_provider().install_default();
    let rustls_config = axum_server::tls_rustls::RustlsConfig::from_pem(
        tls.cert_pem.into_bytes(),
        tls.key_pem.into_bytes(),
    )
    .await
    .context("loading the webhook certificate")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the portal to {}", args.listen))?;
    let webhook_listener = std::net::TcpListener::bind(args.webhook_listen)
        .with_context(|| format!("binding the webhook to {}", args.webhook_listen))?;
    webhook_listener.set_nonblocking(true)?;
    println!("ready");

    let _refresh = AbortOnDrop(tokio::spawn(webhook::grant_cache::keep_fresh(
        state.clone(),
        webhook::grant_cache::REFRESH_EVERY,
    )));
    let _watch = kube_client.map(|client| {
        AbortOnDrop(tokio::spawn(cluster::reflect_namespaces(
            client,
            state.namespaces.clone(),
        )))
    });
    // Stalled portal connections are closed, so a slow reader cannot hold a page (finding 15).
    let portal_task = tokio::spawn(portal::serve(listener, portal, portal::STALL_TIMEOUT));
    let webhook_task = tokio::spawn(
        axum_server::from_tcp_rustls(webhook_listener, rustls_config)
            .serve(webhook_app.into_make_service()),
    );
    tokio::select! {
        r = portal_task => r?.context("portal stopped")?,
        r = webhook_task => r?.context("webhook stopped")?,
        _ = tokio::signal::ctrl_c() => println!("shutting down"),
    }
    Ok(())
}

/// Stops a background task when `serve` returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Hide a password in a database URL before printing it.
fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
