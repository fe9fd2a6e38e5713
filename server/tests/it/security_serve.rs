//! `countersign serve` itself: the first-admin link is printed on the first start only (finding 2),
//! and secrets readable by others stop the start (finding 13).

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Start `serve` on `data_dir` and return everything it printed until `ready` (then stop it), or
/// until it exited by itself (then `exited` is its success).
struct Run {
    output: String,
    exited: Option<bool>,
}

fn serve(data_dir: &Path, extra: &[&str]) -> anyhow::Result<Run> {
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--webhook-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting countersign serve")?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out_tx = tx.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0
                || out_tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut output = String::new();
    loop {
        while let Ok(chunk) = rx.try_recv() {
            output.push_str(&chunk);
        }
        if output.lines().any(|l| l == "ready") {
            child.kill()?;
            child.wait()?;
            return Ok(Run {
                output,
                exited: None,
            });
        }
        if let Some(status) = child.try_wait()? {
            std::thread::sleep(Duration::from_millis(100));
            while let Ok(chunk) = rx.try_recv() {
                output.push_str(&chunk);
            }
            return Ok(Run {
                output,
                exited: Some(status.success()),
            });
        }
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            anyhow::bail!("serve neither got ready nor exited:\n{output}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn finding_2_serve_prints_the_first_admin_link_once_per_store() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let first = serve(dir.path(), &["--first-admin", "root@example.com"])?;
    assert_eq!(first.exited, None, "{}", first.output);
    assert!(first.output.contains("/setup/"), "{}", first.output);
    assert!(
        first.output.contains("root@example.com"),
        "{}",
        first.output
    );
    let second = serve(dir.path(), &["--first-admin", "root@example.com"])?;
    assert!(!second.output.contains("/setup/"), "{}", second.output);
    assert!(
        second
            .output
            .contains("countersign user invite --role admin --username"),
        "the banner names the recovery: {}",
        second.output
    );
    // Without an operator-given username no link is made at all.
    let other = tempfile::tempdir()?;
    let bare = serve(other.path(), &[])?;
    assert!(!bare.output.contains("/setup/"), "{}", bare.output);
    assert!(bare.output.contains("--first-admin"), "{}", bare.output);
    Ok(())
}

#[test]
fn finding_2_no_first_admin_link_when_the_identity_provider_makes_admins() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let run = serve(
        dir.path(),
        &[
            "--first-admin",
            "root@example.com",
            "--oidc-issuer",
            "https://idp.example.com",
            "--oidc-client-id",
            "countersign",
            "--oidc-role-group",
            "admin=platform-admins",
        ],
    )?;
    assert_eq!(run.exited, None, "{}", run.output);
    assert!(!run.output.contains("/setup/"), "{}", run.output);
    Ok(())
}

#[cfg(unix)]
#[test]
fn finding_13_serve_refuses_secrets_others_can_read_and_makes_new_ones_private(
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let run = serve(dir.path(), &[])?;
    assert_eq!(run.exited, None, "{}", run.output);
    let mode = |name: &str| -> anyhow::Result<u32> {
        Ok(std::fs::metadata(dir.path().join(name))?
            .permissions()
            .mode()
            & 0o777)
    };
    assert_eq!(mode("countersign.db")?, 0o600);
    assert_eq!(mode("grant-signing.key")?, 0o600);

    for name in ["grant-signing.key", "countersign.db"] {
        let path = dir.path().join(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        let run = serve(dir.path(), &[])?;
        assert_eq!(run.exited, Some(false), "{name}: {}", run.output);
        assert!(
            run.output.contains(name) && run.output.contains("chmod 600"),
            "{name}: {}",
            run.output
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    // The CLI makes a missing database owner-only too.
    let fresh = tempfile::tempdir()?;
    let out = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["user", "invite", "--role", "admin", "--username", "root"])
        .arg("--data-dir")
        .arg(fresh.path())
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made = std::fs::metadata(fresh.path().join("countersign.db"))?;
    assert_eq!(made.permissions().mode() & 0o777, 0o600);

    // The audit key (when checkpoints are signed) is held to the same rule.
    let audit_key = dir.path().join("audit-signing.key");
    std::fs::write(&audit_key, "not read")?;
    std::fs::set_permissions(&audit_key, std::fs::Permissions::from_mode(0o640))?;
    let run = serve(dir.path(), &[])?;
    assert_eq!(run.exited, Some(false), "{}", run.output);
    assert!(run.output.contains("audit-signing.key"), "{}", run.output);
    Ok(())
}
