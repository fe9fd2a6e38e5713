//! The `countersign` binary: `serve`, and policy tooling that needs no server.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use countersign::policy_cli;
use countersign::serve::{self, ServeArgs};

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
}

#[tokio::main]
async fn main() -> ExitCode {
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
