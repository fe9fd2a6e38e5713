//! Files mode: with `--policies DIR` the files are the truth. They are read again every
//! [`RELOAD_EVERY`]; a change that loads is put in force for the next review, and a change that does
//! not keeps the last good guardrails in force, says why on `/readyz` and in the metrics, and is
//! logged once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{LiveGuardrails, Snapshot};
use crate::policy;

/// How often the files are read again: a change decides reviews within about this long.
pub const RELOAD_EVERY: Duration = Duration::from_millis(500);

/// What one look at the files did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The files are the version in force (or the one already refused).
    Unchanged,
    /// A new version is in force.
    Published {
        /// Its version.
        version: String,
        /// How many guardrails it holds.
        guardrails: usize,
    },
    /// The files changed but do not load; the version in force stays.
    Refused(String),
}

/// Watches one folder (or file) of guardrails.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    /// The version of the sources last refused, so a broken file is parsed and logged once.
    refused: Option<String>,
}

impl FileSource {
    /// Watch `path`, whose guardrails are already in force.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            refused: None,
        }
    }

    /// Read the files; put a changed version in force in `live`, or refuse it.
    pub fn reload(&mut self, live: &LiveGuardrails) -> Reload {
        // A folder that cannot be read (a ConfigMap mount in the middle of its swap) is refused too.
        let sources = match policy::read_sources(&self.path) {
            Ok(s) => s,
            Err(e) => return self.refuse(live, None, e.to_string()),
        };
        let version = sources.version();
        if version == live.load().version() || self.refused.as_deref() == Some(&version) {
            return Reload::Unchanged;
        }
        match sources.parse() {
            Ok((guardrails, version)) => {
                let count = guardrails.len();
                live.publish(Snapshot::new(guardrails, version.clone()));
                self.refused = None;
                tracing::info!(%version, guardrails = count, path = %self.path.display(), "guardrails reloaded");
                Reload::Published {
                    version,
                    guardrails: count,
                }
            }
            Err(e) => self.refuse(live, Some(version), e.to_string()),
        }
    }

    fn refuse(&mut self, live: &LiveGuardrails, version: Option<String>, why: String) -> Reload {
        let kept = live.load();
        // The same unreadable folder is not logged every half second.
        if live.problem().as_deref() != Some(&why) {
            tracing::error!(error = %why, in_force = %kept.version(), "guardrail files refused; the last good guardrails stay in force");
            live.refuse(why.clone());
        }
        self.refused = version;
        Reload::Refused(why)
    }
}

/// Reload `source` into `live` every `every`, until the task is dropped.
pub async fn keep_reloading(mut source: FileSource, live: Arc<LiveGuardrails>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Reading a folder of YAML is blocking file I/O: off the runtime's workers.
        let live = live.clone();
        source = match tokio::task::spawn_blocking(move || {
            source.reload(&live);
            source
        })
        .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "guardrail reload stopped");
                return;
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUARDRAIL: &str = "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata:\n  name: NAME\nspec:\n  match:\n    operations: [DELETE]\n    resources:\n      - apiGroups: [\"\"]\n        resources: [namespaces]\n  action:\n    type: deny\n";

    fn write(dir: &Path, file: &str, name: &str) {
        std::fs::write(dir.join(file), GUARDRAIL.replace("NAME", name)).unwrap();
    }

    fn live_from(dir: &Path) -> LiveGuardrails {
        let (guardrails, version) = policy::load_versioned(dir).unwrap();
        LiveGuardrails::new(Snapshot::new(guardrails, version))
    }

    #[test]
    fn a_changed_file_is_put_in_force_and_an_unchanged_one_is_not_parsed_again() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", "first");
        let live = live_from(dir.path());
        let mut source = FileSource::new(dir.path());
        assert_eq!(source.reload(&live), Reload::Unchanged);
        write(dir.path(), "b.yaml", "second");
        let Reload::Published {
            version,
            guardrails,
        } = source.reload(&live)
        else {
            panic!("not published");
        };
        assert_eq!(guardrails, 2);
        assert_eq!(live.load().version(), version);
        assert!(live.load().guardrail("second").is_some());
        assert_eq!(source.reload(&live), Reload::Unchanged);
    }

    #[test]
    fn a_broken_file_keeps_the_last_good_guardrails_and_says_why_until_mended() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", "first");
        let live = live_from(dir.path());
        let good = live.load().version().to_owned();
        let mut source = FileSource::new(dir.path());
        std::fs::write(dir.path().join("b.yaml"), "kind: Guardrail\nspec: [").unwrap();
        let Reload::Refused(why) = source.reload(&live) else {
            panic!("not refused");
        };
        assert!(why.contains("b.yaml"), "{why}");
        assert_eq!(live.load().version(), good);
        assert!(live.load().guardrail("first").is_some());
        assert_eq!(live.problem().as_deref(), Some(&why));
        // Refused once, not again every look.
        assert_eq!(source.reload(&live), Reload::Unchanged);
        write(dir.path(), "b.yaml", "second");
        assert!(matches!(source.reload(&live), Reload::Published { .. }));
        assert!(live.problem().is_none());
        assert!(live.load().guardrail("second").is_some());
    }

    #[test]
    fn a_configmap_mount_is_read_once_not_through_its_hidden_folders() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("..2026_12_07_19_00_00.1");
        std::fs::create_dir(&data).unwrap();
        write(&data, "a.yaml", "first");
        std::os::unix::fs::symlink(&data, dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("..data/a.yaml"), dir.path().join("a.yaml"))
            .unwrap();
        let (guardrails, _) = policy::load_versioned(dir.path()).unwrap();
        assert_eq!(guardrails.len(), 1);
    }
}
