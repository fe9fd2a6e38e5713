//! Finding 14 (issue 8): `countersign webhook-config` prints the ValidatingWebhookConfiguration for
//! the loaded guardrails; the shipped `deploy/validating-webhook.yaml` is its output for the library.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::Context;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn countersign(args: &[&str]) -> anyhow::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("COUNTERSIGN_DATA_DIR")
        .output()
        .with_context(|| format!("running countersign {args:?}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn finding_14_shipped_webhook_configuration_is_the_generated_one() -> anyhow::Result<()> {
    let library = repo("policies/library");
    let out = countersign(&[
        "webhook-config",
        "--policies",
        library.to_str().unwrap_or_default(),
        "--ca-bundle-placeholder",
    ])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shipped = std::fs::read_to_string(repo("deploy/validating-webhook.yaml"))?;
    assert_eq!(
        text(&out.stdout),
        shipped,
        "deploy/validating-webhook.yaml is stale: regenerate it with `countersign webhook-config \
         --policies policies/library --ca-bundle-placeholder -o deploy/validating-webhook.yaml`"
    );
    // What the operator should know goes to standard error too.
    assert!(
        text(&out.stderr).contains("warning: guardrail webhook-configurations matches"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[test]
fn finding_14_ca_bundle_comes_from_the_data_dir_or_the_command_says_why_not() -> anyhow::Result<()>
{
    let library = repo("policies/library");
    let library = library.to_str().unwrap_or_default();
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().to_str().unwrap_or_default();

    // No CA anywhere: a clear error, no YAML.
    let out = countersign(&[
        "webhook-config",
        "--policies",
        library,
        "--data-dir",
        data_dir,
    ])?;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no CA bundle")
            && stderr.contains("tls/ca.crt")
            && stderr.contains("--ca-bundle"),
        "{stderr}"
    );

    // The CA `serve` makes in its data dir is found there.
    let tls =
        countersign::webhook::tls::load_or_create(&dir.path().join("tls"), &["localhost".into()])?;
    let ca = tls.ca_pem.context("a self-made certificate has a CA")?;
    let out = countersign(&[
        "webhook-config",
        "--policies",
        library,
        "--data-dir",
        data_dir,
        "--url",
        "https://countersign.example.com:8443/k8s/admit",
    ])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config: ValidatingWebhookConfiguration = serde_yaml::from_slice(&out.stdout)?;
    let hooks = config.webhooks.unwrap_or_default();
    assert!(!hooks.is_empty());
    for hook in &hooks {
        assert_eq!(
            hook.client_config.ca_bundle.as_ref().map(|b| b.0.clone()),
            Some(ca.clone().into_bytes())
        );
        assert_eq!(
            hook.client_config.url.as_deref(),
            Some("https://countersign.example.com:8443/k8s/admit")
        );
    }

    // An explicit file, written with -o.
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca)?;
    let output = dir.path().join("webhook.yaml");
    let out = countersign(&[
        "webhook-config",
        "--policies",
        library,
        "--ca-bundle",
        ca_file.to_str().unwrap_or_default(),
        "--service",
        "security/countersign-webhook",
        "--port",
        "443",
        "-o",
        output.to_str().unwrap_or_default(),
    ])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config: ValidatingWebhookConfiguration =
        serde_yaml::from_str(&std::fs::read_to_string(&output)?)?;
    let hook = &config.webhooks.unwrap_or_default()[0];
    let service = hook.client_config.service.as_ref().context("a service")?;
    assert_eq!(
        (
            service.namespace.as_str(),
            service.name.as_str(),
            service.port
        ),
        ("security", "countersign-webhook", Some(443))
    );
    Ok(())
}
