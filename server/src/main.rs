//! The `countersign` binary: `serve`, and policy tooling that needs no server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use countersign::guardrails::cli as guardrails_cli;
use countersign::identity::setup::Invitation;
use countersign::identity::{accounts, Role};
use countersign::policy_cli;
use countersign::serve::{self, ServeArgs};

/// mimalloc: CEL evaluation allocates and frees small values by the thousand per review.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "countersign",
    version,
    about = "Step-up authentication behind Kubernetes guardrails"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal and the admission webhook.
    Serve(Box<ServeArgs>),
    /// Work with guardrail files without a server.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print the ValidatingWebhookConfiguration (YAML) that sends the API server only what the
    /// guardrails can match, and never the requests of nodes, controllers or Countersign itself.
    WebhookConfig(Box<WebhookConfigArgs>),
    /// Work with issued grants.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Check the audit log and its signed checkpoints.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage local accounts: invitations, roles, disabling.
    #[command(subcommand)]
    User(UserCommand),
}

/// Where the store is, for commands that work on it directly.
#[derive(clap::Args)]
struct StoreArgs {
    /// Database URL (sqlite:// or postgres://); default the SQLite file in the data dir. It may
    /// hold a password: never shown in `--help`.
    #[arg(long, env = "COUNTERSIGN_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Data dir of `serve`, for the default SQLite file.
    #[arg(long, default_value = "./data", env = "COUNTERSIGN_DATA_DIR")]
    data_dir: PathBuf,
}

impl StoreArgs {
    fn url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("countersign.db").display()
            )
        })
    }

    async fn connect(&self) -> anyhow::Result<std::sync::Arc<dyn countersign::store::AnyStore>> {
        let url = self.url();
        // A database file made here is owner-only, as `serve` makes it (`serve` also refuses an
        // open one; a one-off admin command does not stand in its way).
        if let Some(file) = countersign::private_files::sqlite_file(&url) {
            countersign::private_files::create_sqlite(&file)?;
        }
        Ok(countersign::store::connect(&url).await?)
    }
}

#[derive(Subcommand)]
enum UserCommand {
    /// Print a one-time link (valid 72 hours) that creates a local account with a role.
    Invite {
        /// engineer, approver, admin or auditor.
        #[arg(long, default_value = "engineer", value_parser = parse_role)]
        role: Role,
        /// The account's Kubernetes username (the invitee cannot choose another).
        #[arg(long)]
        username: String,
        /// A group the account is in, for approvals (repeat for several).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// The portal's public URL, for the link; default the one `serve` last ran with on this
        /// store (else http://localhost:3000).
        #[arg(long, env = "COUNTERSIGN_PUBLIC_URL")]
        public_url: Option<url::Url>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a local account: it cannot sign in, its sessions end at once, it confirms nothing.
    Disable {
        /// The account's username.
        username: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enable a disabled local account again.
    Enable {
        /// The account's username.
        username: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Give an existing local account another role (takes effect on its next request).
    SetRole {
        /// The account's username.
        username: String,
        /// engineer, approver, admin or auditor.
        #[arg(value_parser = parse_role)]
        role: Role,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace the groups of an existing local account (for approvals); none empties them.
    SetGroups {
        /// The account's username.
        username: String,
        /// Its groups from now on.
        groups: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::from_name(s).ok_or_else(|| "expected engineer, approver, admin or auditor".to_owned())
}

/// Who ran a CLI command, for the audit log.
fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

#[derive(Subcommand)]
enum GrantCommand {
    /// Revoke a grant in the store; running webhooks stop honouring it on their next refresh (seconds).
    Revoke {
        /// Grant id (the token's `jti`, shown in the audit log and in `auditAnnotations`).
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the audit chain from its first record and check every signed checkpoint (in the
    /// database and in the anchor file); exit 1 naming the first broken link's sequence number.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Public key of the checkpoint signer (as `audit public-key` prints it); repeat for
        /// replicas with keys of their own. Default: the data dir's audit-signing.key.
        #[arg(long = "public-key")]
        public_keys: Vec<PathBuf>,
        /// Anchor file to check; repeat for each replica's. Default: the data dir's
        /// audit-checkpoints.jsonl.
        #[arg(long = "checkpoints")]
        anchors: Vec<PathBuf>,
    },
    /// Print the public key that verifies this data dir's checkpoints (keep a copy elsewhere).
    PublicKey {
        /// Data dir of `serve`.
        #[arg(long, default_value = "./data", env = "COUNTERSIGN_DATA_DIR")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Evaluate one AdmissionReview against guardrails and print the decision as JSON.
    Eval {
        /// Guardrail file or folder.
        #[arg(long)]
        policies: PathBuf,
        /// AdmissionReview JSON file.
        #[arg(long)]
        request: PathBuf,
        /// Namespace objects (YAML or JSON list) for label selectors.
        #[arg(long)]
        namespaces: Option<PathBuf>,
    },
    /// Validate guardrail files.
    Check {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run policy test suites (`*.test.yaml`).
    Test {
        /// Suite file or folder.
        path: PathBuf,
    },
    /// Write guardrails in another format (deny, warn and audit guardrails as ValidatingAdmissionPolicy),
    /// or with --to the store's guardrails as files, one per guardrail.
    Export {
        /// Guardrail file or folder (not with --to).
        #[arg(required_unless_present = "to")]
        path: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "vap")]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Write the store's guardrails into this folder, `NAME.yaml` each.
        #[arg(long, conflicts_with_all = ["path", "output"])]
        to: Option<PathBuf>,
        /// With --to: this version (`v3` or `3`) instead of the newest.
        #[arg(long = "version", requires = "to", value_parser = parse_version)]
        of_version: Option<i64>,
        #[command(flatten)]
        store: VersionArgs,
    },
    /// List the store's guardrail versions, newest first, with whether each one's seal holds.
    Versions {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        store: VersionArgs,
    },
    /// Show what changed from version A to version B, guardrail by guardrail.
    Diff {
        /// The older version (`v3` or `3`).
        #[arg(value_parser = parse_version)]
        a: i64,
        /// The newer version.
        #[arg(value_parser = parse_version)]
        b: i64,
        #[command(flatten)]
        store: VersionArgs,
    },
    /// Put the guardrails of version N in force again, as a new version.
    Rollback {
        /// The version to go back to (`v3` or `3`).
        #[arg(value_parser = parse_version)]
        number: i64,
        /// Why (recorded with the version and in the audit log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        store: VersionArgs,
    },
    /// Run a draft of the guardrails against recorded traffic (a store) or AdmissionReviews (a
    /// file or folder of them), beside the guardrails in force; exit 1 when the draft would hold
    /// (need a grant for, or deny) requests that pass today.
    Simulate {
        /// The draft: guardrail file or folder.
        path: PathBuf,
        /// `sqlite://…` or `postgres://…` (its recorded traffic, and its newest version in force), or
        /// an AdmissionReview JSON file or a folder of them.
        #[arg(long)]
        against: String,
        /// The guardrails in force to compare with (default: the store's newest version; none for
        /// reviews given as files).
        #[arg(long)]
        in_force: Option<PathBuf>,
        /// Recorded traffic seen within this long (`7d`, `12h`).
        #[arg(long, default_value = "7d")]
        since: String,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
        /// Namespace objects (YAML or JSON list) for label selectors.
        #[arg(long)]
        namespaces: Option<PathBuf>,
    },
    /// Save the guardrails in a folder (or file) as one new version.
    Apply {
        /// Guardrail file or folder.
        path: PathBuf,
        /// Why (recorded with the version and in the audit log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        store: VersionArgs,
    },
}

/// The store and the key that seals its guardrail versions, for the `policy` commands on versions.
#[derive(clap::Args)]
struct VersionArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// `serve`'s grant signing key, which seals versions; default `grant-signing.key` in the data dir.
    #[arg(long, env = "COUNTERSIGN_GRANT_SIGNING_KEY")]
    grant_signing_key: Option<PathBuf>,
}

impl VersionArgs {
    async fn versions(
        &self,
    ) -> anyhow::Result<(
        countersign::guardrails::store_mode::Versions,
        std::sync::Arc<countersign::grants::GrantSigner>,
    )> {
        let key = self
            .grant_signing_key
            .clone()
            .unwrap_or_else(|| self.store.data_dir.join("grant-signing.key"));
        // Never made here: a version sealed with a key `serve` does not hold would not be enforced.
        let signer =
            std::sync::Arc::new(countersign::grants::GrantSigner::load(&key).with_context(
                || "the grant signing key (run `serve` once, or pass --grant-signing-key)",
            )?);
        let store = self.store.connect().await?;
        Ok((
            countersign::guardrails::store_mode::Versions::new(store, signer.clone()),
            signer,
        ))
    }
}

/// `v3` or `3`.
fn parse_version(s: &str) -> Result<i64, String> {
    s.strip_prefix('v')
        .unwrap_or(s)
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{s}` is not a version (v1, v2, ... or 1, 2, ...)"))
}

#[derive(clap::Args)]
struct WebhookConfigArgs {
    /// Guardrail file or folder.
    #[arg(long)]
    policies: PathBuf,
    /// The webhook's Service, NAMESPACE/NAME.
    #[arg(
        long,
        default_value = "countersign/countersign",
        conflicts_with = "url"
    )]
    service: String,
    /// The Service's port.
    #[arg(long, default_value_t = 8443, conflicts_with = "url")]
    port: u16,
    /// The path on the Service.
    #[arg(long, default_value = "/k8s/admit", conflicts_with = "url")]
    path: String,
    /// Instead of a Service: the webhook's https:// URL, path included.
    #[arg(long)]
    url: Option<String>,
    /// CA certificate (PEM) that signed the webhook's certificate; default the data dir's tls/ca.crt.
    #[arg(long, conflicts_with = "ca_bundle_placeholder")]
    ca_bundle: Option<PathBuf>,
    /// Write a placeholder instead of the CA bundle (for a file kept in Git; replace it to apply).
    #[arg(long)]
    ca_bundle_placeholder: bool,
    /// Data dir of `serve`, whose self-made CA (tls/ca.crt) is the default CA bundle.
    #[arg(long, default_value = "./data", env = "COUNTERSIGN_DATA_DIR")]
    data_dir: PathBuf,
    /// Countersign's own service account, NAMESPACE/NAME: its requests are never sent.
    #[arg(long, default_value = "countersign/countersign")]
    service_account: String,
    /// How long the API server waits for an answer (1 to 30 seconds).
    #[arg(long, default_value_t = 5)]
    timeout_seconds: i32,
    /// The configuration's metadata.name.
    #[arg(long, default_value = "countersign.dev")]
    name: String,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// `webhook-config`: the YAML, with warnings on standard error.
fn webhook_config(args: &WebhookConfigArgs) -> anyhow::Result<String> {
    use countersign::policy::webhook_config::{self as config, CaSource, Client};
    let source = match (&args.ca_bundle, args.ca_bundle_placeholder) {
        (Some(file), _) => CaSource::File(file),
        (None, true) => CaSource::Placeholder,
        (None, false) => CaSource::DataDir(&args.data_dir),
    };
    let mut options = config::WebhookOptions::new(config::ca_bundle(source)?)
        .with_service_account(&args.service_account)?;
    options.client = match &args.url {
        Some(url) => Client::url(url)?,
        None => Client::service(&args.service, args.port, &args.path)?,
    };
    options.timeout_seconds = args.timeout_seconds;
    options.name = args.name.clone();
    let generated = config::generate(&countersign::policy::load_path(&args.policies)?, &options)?;
    for warning in &generated.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(generated.yaml)
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// ValidatingAdmissionPolicy + ValidatingAdmissionPolicyBinding YAML.
    Vap,
}

fn main() -> ExitCode {
    // Worker threads big enough that CEL evaluation never has to grow a fresh stack segment
    // (an mmap per evaluation); the memory is virtual until an expression actually recurses.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(countersign::policy::EVAL_STACK + (8 << 20))
        .build();
    match runtime {
        Ok(runtime) => {
            let code = runtime.block_on(run_cli());
            // Work still running in the blocking pool (compressing assets for the portal, seconds
            // per megabyte) must not hold up a stop.
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            code
        }
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_cli() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(*args).await.map(|()| ExitCode::SUCCESS),
        Command::Policy(PolicyCommand::Eval {
            policies,
            request,
            namespaces,
        }) => {
            let out = policy_cli::eval(&policies, &request, namespaces.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::WebhookConfig(args) => {
            let yaml = webhook_config(&args)?;
            match &args.output {
                Some(file) => std::fs::write(file, yaml)
                    .with_context(|| format!("writing {}", file.display()))?,
                None => print!("{yaml}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Grant(GrantCommand::Revoke { id, store }) => revoke_grant(&id, &store).await,
        Command::Audit(AuditCommand::Verify {
            store,
            public_keys,
            anchors,
        }) => verify_audit(&store, &public_keys, anchors).await,
        Command::Audit(AuditCommand::PublicKey { data_dir }) => {
            let path = data_dir.join(countersign::audit::checkpoint::KEY_FILE);
            let signer = countersign::audit::checkpoint::AuditSigner::load(&path)?;
            println!("{}", signer.public_key().encode());
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Invite {
            role,
            username,
            groups,
            public_url,
            store,
        }) => {
            let invitation = Invitation {
                role,
                username,
                groups,
            };
            let store = store.connect().await?;
            let token = accounts::invite(store.as_ref(), &invitation, &cli_actor()).await?;
            let base = match public_url {
                Some(url) => url.as_str().trim_end_matches('/').to_owned(),
                None => store
                    .setting(countersign::store::PUBLIC_URL_SETTING)
                    .await?
                    .unwrap_or_else(|| "http://localhost:3000".to_owned()),
            };
            println!("{base}/setup/{token}");
            eprintln!(
                "One-time link for a new {} account, valid {} hours.",
                role.as_str(),
                accounts::INVITATION_TTL_SECS / 3600
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Disable { username, store }) => {
            set_disabled(&username, true, &store).await
        }
        Command::User(UserCommand::Enable { username, store }) => {
            set_disabled(&username, false, &store).await
        }
        Command::User(UserCommand::SetRole {
            username,
            role,
            store,
        }) => {
            let before = accounts::set_role(
                store.connect().await?.as_ref(),
                &username,
                role,
                &cli_actor(),
            )
            .await?;
            println!("{username}: {} -> {}", before.as_str(), role.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::SetGroups {
            username,
            groups,
            store,
        }) => {
            let before = accounts::set_groups(
                store.connect().await?.as_ref(),
                &username,
                &groups,
                &cli_actor(),
            )
            .await?;
            let list = |g: &[String]| match g {
                [] => "(none)".to_owned(),
                g => g.join(", "),
            };
            let after = accounts::clean_groups(&groups)?;
            println!("{username}: {} -> {}", list(&before), list(&after));
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Export {
            to: Some(dir),
            of_version,
            store,
            ..
        }) => {
            let (versions, _) = store.versions().await?;
            let number = match of_version {
                Some(n) => n,
                None => versions
                    .list(1)
                    .await?
                    .first()
                    .map(|v| v.number)
                    .context("the store holds no guardrail version")?,
            };
            let version = versions.verified(number).await?;
            let written = guardrails_cli::export_to(&version, &dir)?;
            println!(
                "{}: {written} guardrail(s) written to {}",
                version.name(),
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Export {
            path,
            format: ExportFormat::Vap,
            output,
            ..
        }) => {
            let path = path.context("a guardrail file or folder is required")?;
            let yaml = countersign::policy::export_vap(&countersign::policy::load_path(&path)?)?;
            match output {
                Some(file) => std::fs::write(&file, yaml)
                    .with_context(|| format!("writing {}", file.display()))?,
                None => print!("{yaml}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Versions { limit, store }) => {
            let (versions, signer) = store.versions().await?;
            print!(
                "{}",
                guardrails_cli::versions_table(&versions.list(limit).await?, &signer)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Diff { a, b, store }) => {
            let (versions, _) = store.versions().await?;
            let (a, b) = (versions.verified(a).await?, versions.verified(b).await?);
            print!("{}", guardrails_cli::diff(&a, &b)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Rollback {
            number,
            reason,
            store,
        }) => {
            let (versions, _) = store.versions().await?;
            let saved = versions.rollback(number, &cli_actor(), &reason).await?;
            println!(
                "{}: the guardrails of v{number} are in force again (replicas follow within a second)",
                saved.name()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Simulate {
            path,
            against,
            in_force,
            since,
            json,
            namespaces,
        }) => {
            let since = countersign::policy::PolicyDuration::parse(&since)
                .map_err(anyhow::Error::msg)
                .context("--since")?;
            let labels = match &namespaces {
                Some(file) => policy_cli::read_namespaces(file)?,
                None => countersign::engine::NamespaceIndex::default(),
            };
            let run =
                guardrails_cli::simulation(&path, &against, in_force.as_deref(), since.seconds())
                    .await?;
            let report = countersign::guardrails::simulate::simulate(
                &run.in_force,
                &run.draft,
                &run.samples,
                run.days,
                &labels,
            );
            let report = countersign::guardrails::simulate::Report {
                skipped: run.skipped,
                ..report
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!(
                    "{}",
                    countersign::guardrails::simulate::render(
                        &report,
                        run.draft.version(),
                        run.in_force.version()
                    )
                );
            }
            Ok(if report.newly_held_requests() > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Policy(PolicyCommand::Apply {
            path,
            reason,
            store,
        }) => {
            let documents = guardrails_cli::read_folder(&path)?;
            let (versions, _) = store.versions().await?;
            let saved = versions.save(&documents, &cli_actor(), &reason).await?;
            println!(
                "{}: saved from {} (replicas follow within a second)",
                saved.name(),
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Check { paths }) => {
            let n = policy_cli::check(&paths)?;
            println!("{n} guardrail(s) valid");
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Test { path }) => {
            let results = policy_cli::test(&path)?;
            let width = results
                .iter()
                .map(|r| r.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            println!("{:<6}  {:<width$}  SUITE / DETAIL", "RESULT", "CASE");
            for r in &results {
                let status = if r.passed { "pass" } else { "FAIL" };
                let detail = if r.passed {
                    r.suite.clone()
                } else {
                    format!("{}: {}", r.suite, r.detail)
                };
                println!("{status:<6}  {:<width$}  {detail}", r.name);
            }
            let passed = results.iter().filter(|r| r.passed).count();
            let failed = results.len() - passed;
            println!("{passed} passed, {failed} failed");
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn set_disabled(
    username: &str,
    disabled: bool,
    store: &StoreArgs,
) -> anyhow::Result<ExitCode> {
    let changed = accounts::set_disabled(
        store.connect().await?.as_ref(),
        username,
        disabled,
        &cli_actor(),
    )
    .await?;
    let state = if disabled { "disabled" } else { "enabled" };
    if changed {
        println!("{username}: {state}");
    } else {
        println!("{username} was already {state}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify_audit(
    store: &StoreArgs,
    public_keys: &[PathBuf],
    mut anchors: Vec<PathBuf>,
) -> anyhow::Result<ExitCode> {
    use countersign::audit::verify::{trusted_keys, verify, Outcome};
    let database = store.data_dir.join("countersign.db");
    if store.database_url.is_none() && !database.exists() {
        // Opening it would create an empty database, which verifies trivially.
        anyhow::bail!(
            "no database at {} (pass --database-url or --data-dir)",
            database.display()
        );
    }
    let keys = trusted_keys(&store.data_dir, public_keys)?;
    if anchors.is_empty() {
        anchors.push(store.data_dir.join(countersign::audit::anchor::ANCHOR_FILE));
    }
    // Read-only and without migrations: the verifier must not write to what it checks.
    let url = store.url();
    let checked = countersign::store::connect_read_only(&url).await?;
    match verify(checked.as_ref(), &keys, &anchors).await? {
        Outcome::Intact(summary) => {
            print!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Broken(broken) => {
            eprintln!("error: {broken}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn revoke_grant(id: &str, store: &StoreArgs) -> anyhow::Result<ExitCode> {
    use countersign::elevation::{revoke, Revocation};
    let store = store.connect().await?;
    match revoke(store.as_ref(), None, id, &cli_actor()).await? {
        Revocation::Revoked => {
            println!("grant {id} revoked");
            Ok(ExitCode::SUCCESS)
        }
        Revocation::NotLive => {
            println!("grant {id} had already expired or been revoked");
            Ok(ExitCode::SUCCESS)
        }
        Revocation::Unknown => {
            eprintln!("error: no grant has the id {id}");
            Ok(ExitCode::FAILURE)
        }
    }
}
