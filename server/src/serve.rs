//! `countersign serve`: open the store, load guardrails and keys, start the portal and the webhook.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use leptos::prelude::LeptosOptions;
use url::Url;

use crate::audit::checkpoint::AuditSigner;
use crate::audit::checkpointer::Checkpointer;
use crate::challenges::{ChallengeCache, ChallengeLimits};
use crate::cluster::{self, LiveNamespaces};
use crate::engine::{LiveGuardrails, NamespaceIndex, Snapshot};
use crate::grants::{GrantCache, GrantSigner};
use crate::guardrails::files;
use crate::guardrails::store_mode::{self, Versions};
use crate::identity::mapping::IdentityMap;
use crate::identity::oidc::{Oidc, OidcArgs};
use crate::identity::passkeys::Passkeys;
use crate::identity::setup;
use crate::state::{AppState, Core, WebhookParts};
use crate::webhook::decision_log::DecisionLog;
use crate::webhook::metrics::Metrics;
use crate::{audit, policy, portal, store, webhook};

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
    /// Also serve `/healthz`, `/readyz` and `/metrics` over plain HTTP here, for kubelet probes and
    /// Prometheus when `--webhook-client-ca` makes the webhook port refuse them (e.g. 0.0.0.0:9090).
    #[arg(long, env = "COUNTERSIGN_PROBE_LISTEN")]
    pub probe_listen: Option<SocketAddr>,
    /// Database URL (sqlite:// or postgres://); default an SQLite file in the data dir. It may
    /// hold a password: never shown in `--help` or errors.
    #[arg(long, env = "COUNTERSIGN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the SQLite file, keys and certificates live.
    #[arg(long, default_value = "./data", env = "COUNTERSIGN_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Seconds between signed checkpoints of the audit chain (made only when it grew); kept in the
    /// database and in `audit-checkpoints.jsonl` in the data dir, signed with `audit-signing.key`.
    #[arg(
        long,
        default_value_t = audit::checkpointer::CHECKPOINT_EVERY.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..),
        env = "COUNTERSIGN_AUDIT_CHECKPOINT_SECS"
    )]
    pub audit_checkpoint_secs: u64,
    /// URL people open; links in denials point here and WebAuthn uses its host as RP ID.
    #[arg(
        long,
        default_value = "http://localhost:3000",
        env = "COUNTERSIGN_PUBLIC_URL"
    )]
    pub public_url: Url,
    /// Guardrail YAML file or folder (files mode: read again when it changes; a broken change keeps
    /// the last good guardrails in force).
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
    /// CA (PEM) whose client certificates the webhook requires: only the API server, given a
    /// kubeconfig with such a certificate in its AdmissionConfiguration, may then post reviews.
    #[arg(long, env = "COUNTERSIGN_WEBHOOK_CLIENT_CA")]
    pub webhook_client_ca: Option<PathBuf>,
    /// Open challenges one Kubernetes username may have; past it guarded requests are denied
    /// without a new challenge.
    #[arg(long, default_value_t = ChallengeLimits::default().open_per_subject, env = "COUNTERSIGN_MAX_OPEN_CHALLENGES")]
    pub max_open_challenges: i64,
    /// MiB the open challenges of one username may store.
    #[arg(long, default_value_t = ChallengeLimits::default().bytes_per_subject >> 20, env = "COUNTERSIGN_MAX_CHALLENGE_MIB_PER_USER")]
    pub max_challenge_mib_per_user: i64,
    /// MiB all open challenges may store.
    #[arg(long, default_value_t = ChallengeLimits::default().bytes_total >> 20, env = "COUNTERSIGN_MAX_CHALLENGE_MIB")]
    pub max_challenge_mib: i64,
    /// Days closed challenges, expired grants and decision-log entries are kept (the audit log is
    /// kept for good); expired sessions are deleted too.
    #[arg(long, default_value_t = crate::retention::DEFAULT_RETENTION_DAYS, env = "COUNTERSIGN_RETENTION_DAYS")]
    pub retention_days: u32,
    /// With a cluster: when the installed ValidatingWebhookConfiguration does not send what the
    /// guardrails in force need (after a reload), apply the regenerated one (needs RBAC to patch
    /// that one object); without it, the gap is only reported on `/readyz`, in metrics and the log.
    #[arg(long, env = "COUNTERSIGN_MANAGE_WEBHOOK_CONFIG")]
    pub manage_webhook_config: bool,
    /// The ValidatingWebhookConfiguration checked (and managed), as `webhook-config --name` made it.
    #[arg(
        long,
        default_value = "countersign.dev",
        env = "COUNTERSIGN_WEBHOOK_CONFIG_NAME"
    )]
    pub webhook_config_name: String,
    /// Countersign's own service account, NAMESPACE/NAME, as `webhook-config --service-account`.
    #[arg(
        long,
        default_value = "countersign/countersign",
        env = "COUNTERSIGN_SERVICE_ACCOUNT"
    )]
    pub service_account: String,
    /// Days recorded traffic (each request shape once, Secret values redacted) is kept for the
    /// simulator; 0 records none.
    #[arg(long, default_value_t = crate::retention::DEFAULT_TRAFFIC_DAYS, env = "COUNTERSIGN_TRAFFIC_DAYS")]
    pub traffic_days: u32,
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
    /// Grant signing key (base64 Ed25519 seed, mode 0600); default `grant-signing.key` in the data
    /// dir, made on first start. Replicas sharing one database share this file (e.g. one Secret).
    #[arg(long, env = "COUNTERSIGN_GRANT_SIGNING_KEY")]
    pub grant_signing_key: Option<PathBuf>,
    /// JWKS file of further Ed25519 keys whose grants are honoured (a key before rotation, or a
    /// replica with its own key); repeatable. Served in `/.well-known/jwks.json` too.
    #[arg(
        long = "trusted-grant-keys",
        env = "COUNTERSIGN_TRUSTED_GRANT_KEYS",
        value_delimiter = ','
    )]
    pub trusted_grant_keys: Vec<PathBuf>,
    /// Kubernetes username of the first admin: on first start (no accounts, no link made before,
    /// and no `--oidc-role-group admin=...`), a one-time link for that account is printed, once.
    #[arg(long, env = "COUNTERSIGN_FIRST_ADMIN")]
    pub first_admin: Option<String>,
    /// Proxy in front of the portal (CIDR, repeatable): from these peers only, the client address is
    /// taken from `X-Forwarded-For` (for rate limits and step-up evidence).
    #[arg(
        long = "trusted-proxy",
        env = "COUNTERSIGN_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Incoming webhook (Slack-compatible JSON) told of every request waiting for approvers and of
    /// every decision, with a link only; repeatable. The URL is a secret: it is never logged.
    #[arg(
        long = "notify-webhook",
        value_name = "URL",
        env = "COUNTERSIGN_NOTIFY_WEBHOOKS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    // Strings, parsed at start (`receivers`): a value clap refuses is echoed in its error.
    pub notify_webhooks: Vec<String>,
    /// The same, with a flat JSON body of every field, for receivers other than chat; repeatable.
    #[arg(
        long = "notify-webhook-json",
        value_name = "URL",
        env = "COUNTERSIGN_NOTIFY_WEBHOOKS_JSON",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub notify_webhooks_json: Vec<String>,
    /// Built site (JS, WebAssembly, CSS): `.ci/site` makes it.
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
    // Files mode: broken files stop the start (there is no last good version yet).
    let from_files = match &args.policies {
        Some(path) => {
            let (guardrails, version) = policy::load_versioned(path)?;
            Some(Snapshot::new(guardrails, version))
        }
        None => None,
    };
    let database_url = args.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            args.data_dir.join("countersign.db").display()
        )
    });
    refuse_data_under_site(&args.data_dir, std::path::Path::new(&args.site_root))?;
    // Before anything is opened or created: secrets readable by others are refused (finding 13).
    crate::private_files::check_all(&args.data_dir, &database_url)?;
    let trusted_proxies =
        portal::client::TrustedProxies::parse(&args.trusted_proxies).map_err(anyhow::Error::msg)?;
    let receivers = receivers(&args)?;
    let store = store::connect(&database_url)
        .await
        .context("opening the store")?;
    // Remembered for `user invite`, whose links must reach this portal.
    store
        .put_setting(
            store::PUBLIC_URL_SETTING,
            args.public_url.as_str().trim_end_matches('/'),
        )
        .await
        .context("remembering the public URL")?;
    let sessions = store.session_store();
    sessions
        .migrate()
        .await
        .context("creating the sessions table")?;
    let key_path = args
        .grant_signing_key
        .clone()
        .unwrap_or_else(|| args.data_dir.join("grant-signing.key"));
    let mut signer = GrantSigner::load_or_create(&key_path)?;
    for jwks in &args.trusted_grant_keys {
        signer = signer.trust_jwks_file(jwks)?;
    }
    let audit_signer =
        AuditSigner::load_or_create(&args.data_dir.join(audit::checkpoint::KEY_FILE))?;
    // Auditors verify with the public key alone.
    audit_signer.publish(&args.data_dir)?;
    let checkpointer = Checkpointer::open(
        audit_signer,
        &args.data_dir.join(audit::anchor::ANCHOR_FILE),
    )?;
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
    let signer = Arc::new(signer);
    // Store mode, without --policies: the newest sealed version, the shipped library on a new store.
    let versions = Versions::new(store.clone(), signer.clone());
    let anchor = crate::guardrails::anchor::VersionAnchor::in_dir(&args.data_dir);
    let (snapshot, stored_version) = match from_files {
        Some(snapshot) => (snapshot, None),
        None => {
            if let Some(seeded) = versions
                .seed()
                .await
                .context("saving the shipped guardrails")?
            {
                tracing::info!(version = %seeded.name(), "a new store: the shipped guardrail library is its first version");
            }
            let (number, snapshot) = versions
                .newest()
                .await
                .context("loading the guardrails in force")?
                .context("the store holds no guardrail version")?;
            // Newer versions deleted from the database would otherwise put older ones back.
            anchor.check(number)?;
            anchor.raise(number);
            (snapshot, Some(number))
        }
    };
    let grants = GrantCache::new(&args.cluster);
    let guardrails = Arc::new(LiveGuardrails::new(snapshot));
    let loaded = webhook::grant_cache::refresh(
        store.as_ref(),
        &grants,
        &signer,
        args.public_url.as_str().trim_end_matches('/'),
        (&guardrails.load(), &identities),
    )
    .await
    .context("loading live grants")?;
    for (id, reason) in &loaded.rejected {
        tracing::error!(grant = %id, %reason, "stored grant not honoured: its signed token does not vouch for it");
    }
    let held = loaded.held;

    let namespaces = Arc::new(namespaces);
    let (decisions, _decision_writer) =
        DecisionLog::start(store.clone(), namespaces.clone(), args.cluster.clone());
    let metrics = Arc::new(Metrics::default());
    let core = Core {
        store: store.clone(),
        guardrails,
        namespaces,
        grants: Arc::new(grants),
        challenges: Arc::new(ChallengeCache::new()),
        challenge_limits: ChallengeLimits {
            open_per_subject: args.max_open_challenges,
            bytes_per_subject: args.max_challenge_mib_per_user << 20,
            bytes_total: args.max_challenge_mib << 20,
        },
        signer,
        public_url: args.public_url.clone(),
        cluster: args.cluster.clone(),
        metrics: metrics.clone(),
        audit: Arc::new(crate::audit::queue::AuditQueue::start(
            store.clone(),
            metrics.clone(),
        )),
        identities: Arc::new(identities),
        events: crate::elevation::EventBus::new(),
    };
    let webhook_parts = WebhookParts {
        decisions: Arc::new(decisions),
        traffic: Arc::new(if args.traffic_days > 0 {
            crate::traffic::TrafficRecorder::enabled()
        } else {
            crate::traffic::TrafficRecorder::default()
        }),
        routing: Arc::default(),
    };
    let state = AppState {
        core: core.clone(),
        passkeys: Arc::new(passkeys),
        oidc: oidc.clone(),
        trusted_proxies: Arc::new(trusted_proxies),
        guardrail_files: args.policies.clone(),
    };

    println!("Countersign {}", env!("CARGO_PKG_VERSION"));
    println!(
        "  portal:     {} (listening on http://{})",
        args.public_url, args.listen
    );
    println!("  webhook:    https://{}/k8s/admit", args.webhook_listen);
    println!("  store:      {}", redact_url(&database_url));
    let in_force = state.guardrails.load();
    println!(
        "  guardrails: {} (version {}, {})",
        in_force.guardrails().len(),
        in_force.version(),
        match &args.policies {
            Some(path) => format!("files mode: {} is read again as it changes", path.display()),
            None => "in the store: `countersign policy versions` lists them".to_owned(),
        }
    );
    println!("  grants:     {held} live");
    println!(
        "  audit:      checkpoint every {}s to {} (key {})",
        args.audit_checkpoint_secs,
        checkpointer.anchor_path().display(),
        checkpointer.signer().public_key().kid()
    );
    if let Some(oidc) = &oidc {
        println!("  oidc:       {}", oidc.config().issuer.as_str());
    }
    match (&kube_client, &args.namespaces) {
        (Some(_), _) => println!("  namespaces: watched from the cluster"),
        (None, Some(file)) => println!(
            "  namespaces: labels from {} (no cluster watched; others are unknown and fail closed)",
            file.display()
        ),
        (None, None) => println!(
            "  namespaces: not watched (no cluster configured): selectors treat every namespace as unknown and fail closed"
        ),
    }
    match &args.webhook_client_ca {
        Some(ca) => println!(
            "  callers:    the webhook requires a client certificate from {}",
            ca.display()
        ),
        None => println!(
            "  callers:    anyone who reaches the webhook port (no --webhook-client-ca; see docs/security.md)"
        ),
    }
    if let Some(bundle) = tls.ca_bundle() {
        println!(
            "  webhook caBundle (base64 PEM, for the ValidatingWebhookConfiguration):\n{bundle}"
        );
    }
    let oidc_admins = oidc
        .as_ref()
        .is_some_and(|o| o.config().claims.roles.grants_admin());
    let base = args.public_url.as_str().trim_end_matches('/');
    let recovery =
        "`countersign user invite --role admin --username USERNAME` (same store) prints a new one";
    match setup::first_admin_link(store.as_ref(), args.first_admin.as_deref(), oidc_admins).await? {
        setup::FirstAdmin::NotNeeded => {}
        setup::FirstAdmin::ByIdentityProvider => println!(
            "\nNo local accounts: admins sign in through the identity provider (--oidc-role-group admin=...)."
        ),
        setup::FirstAdmin::NoUsername => println!(
            "\nNo accounts yet. Start with --first-admin USERNAME (your Kubernetes username) for a one-time\n\
             link that creates the first admin, or run {recovery}."
        ),
        setup::FirstAdmin::MadeBefore => println!(
            "\nNo accounts yet, and the first-admin link was printed on an earlier start (it is made once).\n\
             If it is lost or expired, {recovery}."
        ),
        setup::FirstAdmin::Made(token) => println!(
            "\nNo accounts yet. Open this one-time link (valid {} hours, printed only now) to create the first\n\
             admin, {}, with a passkey:\n  {base}/setup/{token}\nIf it is lost, {recovery}.\n",
            setup::SETUP_TTL_SECS / 3600,
            args.first_admin.as_deref().unwrap_or_default(),
        ),
    }

    let leptos_options = LeptosOptions::builder()
        .output_name("countersign")
        .site_root(args.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(args.listen)
        .build();
    let portal = portal::router(state.clone(), leptos_options, sessions);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rustls_config = webhook::tls::server_config(&tls, args.webhook_client_ca.as_deref())
        .context("loading the webhook certificate")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the portal to {}", args.listen))?;
    let webhook_listener = std::net::TcpListener::bind(args.webhook_listen)
        .with_context(|| format!("binding the webhook to {}", args.webhook_listen))?;
    webhook_listener.set_nonblocking(true)?;
    let probe_listener = match args.probe_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the probes to {addr}"))?,
        ),
        None => None,
    };
    println!("ready");

    let _refresh = AbortOnDrop(tokio::spawn(webhook::grant_cache::keep_fresh(
        core.clone(),
        webhook::grant_cache::REFRESH_EVERY,
    )));
    let _relay = AbortOnDrop(tokio::spawn(crate::elevation::relay(
        store.clone(),
        state.events.clone(),
    )));
    let _expire = AbortOnDrop(tokio::spawn(crate::elevation::keep_expiring(
        state.elevation(),
    )));
    if receivers.is_empty() {
        // Break glass is only as loud as the people who hear of it.
        for g in state.guardrails.load().guardrails() {
            if g.action
                .approval
                .as_ref()
                .is_some_and(|a| a.break_glass.is_some())
            {
                tracing::warn!(guardrail = %g.name, "this guardrail allows break glass, but no --notify-webhook is set: nobody will be told when someone breaks the glass");
            }
        }
    }
    let _notify = (!receivers.is_empty()).then(|| {
        let notifier = Arc::new(crate::notify::Notifier::new(
            receivers,
            store.clone(),
            state.metrics.clone(),
            &args.public_url,
            crate::notify::Retry::default(),
        ));
        AbortOnDrop(tokio::spawn(notifier.run(state.events.subscribe())))
    });
    let _traffic = (args.traffic_days > 0).then(|| {
        AbortOnDrop(tokio::spawn(crate::traffic::recorder::keep_writing(
            webhook_parts.traffic.clone(),
            store.clone(),
            crate::traffic::FLUSH_EVERY,
        )))
    });
    let _prune = AbortOnDrop(tokio::spawn(crate::retention::keep_pruning(
        store.clone(),
        args.retention_days,
        args.traffic_days,
    )));
    let _checkpoints = AbortOnDrop(tokio::spawn(audit::checkpointer::keep_checkpointing(
        store.clone(),
        checkpointer,
        std::time::Duration::from_secs(args.audit_checkpoint_secs),
    )));
    let _reload = match (&args.policies, stored_version) {
        (Some(path), _) => AbortOnDrop(tokio::spawn(files::keep_reloading(
            files::FileSource::new(path),
            state.guardrails.clone(),
            files::RELOAD_EVERY,
        ))),
        (None, number) => AbortOnDrop(tokio::spawn(store_mode::keep_following(
            versions,
            state.guardrails.clone(),
            number.unwrap_or_default(),
            store_mode::FOLLOW_EVERY,
            Some(anchor),
        ))),
    };
    let _routing = match &kube_client {
        Some(client) => {
            let mut options = crate::policy::webhook_config::WebhookOptions::new(Vec::new())
                .with_service_account(&args.service_account)?;
            options.name = args.webhook_config_name.clone();
            Some(AbortOnDrop(tokio::spawn(cluster::keep_routing(
                client.clone(),
                state.guardrails.clone(),
                webhook_parts.routing.clone(),
                options,
                args.manage_webhook_config,
            ))))
        }
        None => None,
    };
    let _watch = kube_client.map(|client| {
        AbortOnDrop(tokio::spawn(cluster::reflect_namespaces(
            client,
            state.namespaces.clone(),
        )))
    });
    // Stalled portal connections are closed, so a slow reader cannot hold a page (finding 15).
    let portal_task = tokio::spawn(portal::serve(listener, portal, portal::STALL_TIMEOUT));
    // One webhook state for both of its listeners (the elevation service is built once).
    let webhook_state = webhook::WebhookState::new(&core, &webhook_parts);
    let webhook_task = tokio::spawn(webhook::serve_tls(
        webhook_listener,
        webhook_state.clone(),
        rustls_config,
    ));
    let _probes = probe_listener.map(|listener| {
        let router = webhook::probe_router(webhook_state.clone());
        AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "probe listener stopped");
            }
        }))
    });
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

/// The notification receivers of `--notify-webhook` and `--notify-webhook-json`. Their URLs are
/// secrets (a Slack webhook URL is a bearer token), so an error names the flag, never the value.
fn receivers(args: &ServeArgs) -> anyhow::Result<Vec<crate::notify::Receiver>> {
    let slack = args
        .notify_webhooks
        .iter()
        .map(|u| ("--notify-webhook", u, crate::notify::Format::Slack));
    let generic = args
        .notify_webhooks_json
        .iter()
        .map(|u| ("--notify-webhook-json", u, crate::notify::Format::Generic));
    slack
        .chain(generic)
        .enumerate()
        .map(|(i, (flag, text, format))| {
            let url = url::Url::parse(text.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{flag} (receiver {}): not an absolute http(s) URL (the value is a secret and is not shown)",
                        i + 1
                    )
                })?;
            Ok(crate::notify::Receiver { url, format })
        })
        .collect()
}

/// The site root is published to anyone: the data dir (keys, database, certificates) must not be
/// inside it (second review, finding 15).
fn refuse_data_under_site(
    data_dir: &std::path::Path,
    site_root: &std::path::Path,
) -> anyhow::Result<()> {
    let absolute = |p: &std::path::Path| {
        std::fs::canonicalize(p)
            .unwrap_or_else(|_| std::path::absolute(p).unwrap_or_else(|_| p.to_owned()))
    };
    let (data, site) = (absolute(data_dir), absolute(site_root));
    if data.starts_with(&site) {
        anyhow::bail!(
            "the data dir {} is inside the site root {}, which the portal publishes: put the data dir elsewhere",
            data_dir.display(),
            site_root.display()
        );
    }
    Ok(())
}
