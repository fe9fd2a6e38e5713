//! The `countersign` binary: `policy eval`, `policy check` and `policy test`.

use std::process::{Command, Output};

use anyhow::Context;
use serde_json::{json, Value};

use crate::support::fixture;

fn countersign(args: &[&str]) -> anyhow::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .with_context(|| format!("running countersign {args:?}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn eval(request: &str, namespaces: bool) -> anyhow::Result<Value> {
    let policies = fixture("policies/guardrails.yaml");
    let request = fixture(&format!("reviews/{request}.json"));
    let ns = fixture("fixtures/namespaces.yaml");
    let mut args = vec![
        "policy",
        "eval",
        "--policies",
        path(&policies),
        "--request",
        path(&request),
    ];
    if namespaces {
        args.extend(["--namespaces", path(&ns)]);
    }
    let out = countersign(&args)?;
    assert!(
        out.status.success(),
        "policy eval failed: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("stdout is not one JSON object: {}", text(&out.stdout)))
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_default()
}

#[test]
fn policy_eval_prints_the_decision() -> anyhow::Result<()> {
    let mut out = eval("deployment-update", true)?;
    // Why each guardrail matched or not; the contract fields are checked exactly below.
    let explanations = out
        .as_object_mut()
        .and_then(|o| o.remove("explanations"))
        .unwrap_or_default();
    let explained = explanations.as_array().cloned().unwrap_or_default();
    assert!(
        explained
            .iter()
            .any(|e| e["name"] == "prod-workloads" && e["matched"] == true),
        "{explanations}"
    );
    assert_eq!(
        out,
        json!({
            "allowed": false,
            "action": "stepUp",
            "guardrails": [{
                "name": "prod-workloads",
                "action": "stepUp",
                "mode": "enforce",
                "message": "Workload changes in production need a fresh security-key touch."
            }],
            "warnings": []
        })
    );

    let out = eval("clusterrolebinding-create", false)?;
    assert_eq!(out["allowed"], false);
    assert_eq!(out["action"], "deny");
    assert_eq!(out["guardrails"][0]["name"], "no-cluster-admin-bindings");
    assert_eq!(out["guardrails"][0]["action"], "deny");

    let out = eval("secret-update-ci", true)?;
    assert_eq!(out["allowed"], true);
    assert_eq!(out["action"], "warn");
    let names: Vec<&str> = out["guardrails"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(names, ["ci-secrets", "secrets-lockdown"]);
    assert_eq!(out["guardrails"][1]["action"], "deny");
    assert_eq!(out["guardrails"][1]["mode"], "dryRun");
    assert_eq!(
        out["warnings"],
        json!([
            "guardrail \"ci-secrets\": CI changed a Secret; rotate it through Vault instead.",
            "guardrail \"secrets-lockdown\" (dry run) would deny: Secrets in staging are about to become read-only."
        ])
    );

    let out = eval("widget-create", true)?;
    assert_eq!(
        (
            &out["allowed"],
            &out["action"],
            &out["guardrails"],
            &out["warnings"]
        ),
        (&json!(true), &json!("allow"), &json!([]), &json!([]))
    );
    assert!(out["explanations"].as_array().is_some_and(|e| e
        .iter()
        .all(|e| e["matched"] == false && e["failed"].is_string())));

    let out = eval("pod-exec", true)?;
    assert_eq!(
        (
            out["action"].as_str(),
            out["guardrails"][0]["name"].as_str()
        ),
        (Some("stepUp"), Some("prod-exec"))
    );
    Ok(())
}

#[test]
fn policy_eval_uses_namespace_labels() -> anyhow::Result<()> {
    // checkout is guarded by its `env: prod` label only.
    let out = eval("deployment-create", true)?;
    assert_eq!(out["action"], "stepUp");
    // Relabelled as staging, the same request is not guarded.
    let dir = tempfile::tempdir()?;
    let ns = dir.path().join("ns.json");
    std::fs::write(
        &ns,
        json!([{"metadata": {"name": "checkout", "labels": {"env": "staging"}}}]).to_string(),
    )?;
    let (policies, request) = (
        fixture("policies/guardrails.yaml"),
        fixture("reviews/deployment-create.json"),
    );
    let args = [
        "policy",
        "eval",
        "--policies",
        path(&policies),
        "--request",
        path(&request),
        "--namespaces",
        path(&ns),
    ];
    let out = countersign(&args)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(out["action"], "allow");
    Ok(())
}

#[test]
fn policy_check_names_file_document_and_field() -> anyhow::Result<()> {
    let bad = fixture("fixtures/invalid-guardrail.yaml");
    let out = countersign(&["policy", "check", path(&bad)])?;
    assert!(!out.status.success(), "an invalid policy passed the check");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(path(&bad)),
        "stderr does not name the file: {stderr}"
    );
    assert!(
        stderr.contains("document 2"),
        "stderr does not name the document: {stderr}"
    );
    assert!(
        stderr.contains("spec.action.type"),
        "stderr does not name the field: {stderr}"
    );
    assert!(
        stderr.contains("stepup"),
        "stderr does not quote the bad value: {stderr}"
    );
    assert!(
        text(&out.stdout).is_empty(),
        "nothing on stdout for a failed check"
    );

    let good = fixture("policies/guardrails.yaml");
    let out = countersign(&["policy", "check", path(&good)])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l == "6 guardrail(s) valid"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

#[test]
fn policy_eval_reports_a_bad_request_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let request = dir.path().join("review.json");
    std::fs::write(
        &request,
        r#"{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}"#,
    )?;
    let policies = fixture("policies/guardrails.yaml");
    let out = countersign(&[
        "policy",
        "eval",
        "--policies",
        path(&policies),
        "--request",
        path(&request),
    ])?;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(path(&request)) && stderr.contains("admission.k8s.io/v1beta1"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn policy_test_runs_the_suite() -> anyhow::Result<()> {
    let suite = fixture("policies/guardrails.test.yaml");
    let out = countersign(&["policy", "test", path(&suite)])?;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(
        stdout.lines().last(),
        Some("8 passed, 0 failed"),
        "{stdout}"
    );
    Ok(())
}

#[tokio::test]
async fn user_invite_and_set_role_work_on_the_store() -> anyhow::Result<()> {
    use countersign::identity::setup::token_hash;
    use countersign::identity::Role;

    let dir = tempfile::tempdir()?;
    let data = path(dir.path()).to_owned();
    let out = countersign(&[
        "user",
        "invite",
        "--role",
        "approver",
        "--username",
        "bob",
        "--data-dir",
        &data,
        "--public-url",
        "https://countersign.example.com/",
    ])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let link = text(&out.stdout).trim().to_owned();
    let token = link
        .strip_prefix("https://countersign.example.com/setup/")
        .with_context(|| format!("not a setup link: {link}"))?;
    assert!(text(&out.stderr).contains("new approver account, valid 72 hours"));

    let url = format!("sqlite://{}", dir.path().join("countersign.db").display());
    let store = countersign::store::connect(&url).await?;
    let invitation = store
        .invitation(&token_hash(token), countersign::clock::now())
        .await?
        .context("the printed link invites nobody")?;
    assert_eq!(invitation.role, Role::Approver);
    assert_eq!(invitation.username, "bob");
    // The admin always fixes the username (finding 2).
    let out = countersign(&["user", "invite", "--role", "engineer", "--data-dir", &data])?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--username"),
        "{}",
        text(&out.stderr)
    );

    // Wrong input is refused with the reason, and changes nothing.
    let out = countersign(&["user", "invite", "--role", "root", "--data-dir", &data])?;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("expected engineer, approver, admin or auditor"));
    let out = countersign(&["user", "set-role", "nobody", "admin", "--data-dir", &data])?;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no account is named nobody"));
    let out = countersign(&[
        "user",
        "invite",
        "--username",
        "system:admin",
        "--data-dir",
        &data,
    ])?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("system:"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn user_groups_from_the_invitation_and_set_groups() -> anyhow::Result<()> {
    use countersign::identity::setup::token_hash;

    let dir = tempfile::tempdir()?;
    let data = path(dir.path()).to_owned();
    let out = countersign(&[
        "user",
        "invite",
        "--role",
        "approver",
        "--username",
        "bob",
        "--group",
        "payments-oncall",
        "--group",
        "sre",
        "--data-dir",
        &data,
    ])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let link = text(&out.stdout).trim().to_owned();
    let token = link.rsplit('/').next().context("no token")?;
    let url = format!("sqlite://{}", dir.path().join("countersign.db").display());
    let store = countersign::store::connect(&url).await?;
    let invitation = store
        .invitation(&token_hash(token), countersign::clock::now())
        .await?
        .context("no invitation")?;
    assert_eq!(invitation.groups, vec!["payments-oncall", "sre"]);

    // On an account that exists: replaced, printed before and after, audited.
    store
        .create_user(&countersign::identity::User {
            user_id: "u-carol".into(),
            username: "carol".into(),
            display_name: "Carol".into(),
            role: countersign::identity::Role::Approver,
            groups: vec!["sre".into()],
            created_at: 0,
        })
        .await?;
    let out = countersign(&[
        "user",
        "set-groups",
        "carol",
        "payments-managers",
        "--data-dir",
        &data,
    ])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "carol: sre -> payments-managers");
    let carol = store.user_by_username("carol").await?.context("carol")?;
    assert_eq!(carol.groups, vec!["payments-managers"]);
    let out = countersign(&["user", "set-groups", "carol", "--data-dir", &data])?;
    assert_eq!(
        text(&out.stdout).trim(),
        "carol: payments-managers -> (none)"
    );
    let out = countersign(&[
        "user",
        "set-groups",
        "carol",
        "system:masters",
        "--data-dir",
        &data,
    ])?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Kubernetes' own"),
        "{}",
        text(&out.stderr)
    );
    let audited = store
        .audit_records(0, 100)
        .await?
        .iter()
        .filter(|r| r.event.kind == "account.groups_changed")
        .count();
    assert_eq!(audited, 2);
    Ok(())
}

/// Second review, finding 16: notify URLs and the database URL are secrets: `--help` shows no
/// value of them, and a refused value is not echoed.
#[test]
fn review2_16_secrets_never_show_in_help_or_errors() -> anyhow::Result<()> {
    const SECRET: &str = "T000/B000/SECRETSECRET";
    let run = |args: &[&str]| -> anyhow::Result<Output> {
        Ok(Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(args)
            .env(
                "COUNTERSIGN_NOTIFY_WEBHOOKS",
                format!("https://hooks.slack.com/services/{SECRET}"),
            )
            .env(
                "COUNTERSIGN_NOTIFY_WEBHOOKS_JSON",
                format!("not a url {SECRET}"),
            )
            .env(
                "COUNTERSIGN_DATABASE_URL",
                format!("postgres://app:{SECRET}@127.0.0.1:1/nothing"),
            )
            .output()?)
    };
    for args in [&["serve", "--help"][..], &["user", "disable", "--help"][..]] {
        let out = run(args)?;
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        anyhow::ensure!(!all.contains(SECRET), "{args:?} shows a secret:\n{all}");
    }
    // A bad receiver URL: refused, naming the flag, not the value.
    let dir = tempfile::tempdir()?;
    let out = run(&[
        "serve",
        "--data-dir",
        path(dir.path()),
        "--database-url",
        &format!("sqlite://{}/db", path(dir.path())),
    ])?;
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success());
    assert!(all.contains("--notify-webhook-json"), "{all}");
    anyhow::ensure!(!all.contains(SECRET), "the error shows a secret:\n{all}");
    Ok(())
}

/// Second review, finding 15: `serve` refuses a data dir inside the site root it publishes.
#[test]
fn review2_15_serve_refuses_a_data_dir_inside_the_site_root() -> anyhow::Result<()> {
    let site = tempfile::tempdir()?;
    let data = site.path().join("data");
    let out = countersign(&[
        "serve",
        "--site-root",
        path(site.path()),
        "--data-dir",
        path(&data),
    ])?;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("inside the site root"), "{err}");
    assert!(
        !data.join("grant-signing.key").exists(),
        "a key was written"
    );
    Ok(())
}

/// `user invite` without `--public-url` prints a link to the portal `serve` last ran with on the
/// same store, not to a default port.
#[tokio::test]
async fn review2_16_invite_links_reach_the_portal_serve_runs() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = path(dir.path()).to_owned();
    let url = format!("sqlite://{}", dir.path().join("countersign.db").display());
    let store = countersign::store::connect(&url).await?;
    store
        .put_setting(
            countersign::store::PUBLIC_URL_SETTING,
            "https://cs.example.com:8080",
        )
        .await?;
    drop(store);
    let out = countersign(&[
        "user",
        "invite",
        "--username",
        "erin",
        "--group",
        "platform-oncall",
        "--data-dir",
        &data,
    ])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let link = text(&out.stdout);
    assert!(
        link.starts_with("https://cs.example.com:8080/setup/"),
        "{link}"
    );
    Ok(())
}
