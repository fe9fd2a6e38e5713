//! The highest guardrail version this data dir has put in force, kept outside the database. A
//! database writer cannot forge a version (each is sealed), but could delete the newest ones so that
//! a restart loads an older, looser one; `serve` refuses to start on a store whose newest version
//! is older than what it has seen.

use std::path::{Path, PathBuf};

/// The file in the data dir.
pub const ANCHOR_FILE: &str = "guardrail-version.anchor";

/// A store whose newest version is older than one this data dir put in force.
#[derive(Debug, thiserror::Error)]
#[error("the store's newest guardrail version is v{newest}, but this data dir has put v{seen} in force: newer versions were deleted from the database. Restore them (or save a new version from a replica that has them); to accept v{newest}, remove {file}")]
pub struct RolledBack {
    /// The store's newest version.
    pub newest: i64,
    /// The highest this data dir has seen.
    pub seen: i64,
    /// The anchor file.
    pub file: String,
}

/// The anchor file of one data dir.
#[derive(Debug, Clone)]
pub struct VersionAnchor {
    path: PathBuf,
}

impl VersionAnchor {
    /// The anchor in `data_dir`.
    pub fn in_dir(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(ANCHOR_FILE),
        }
    }

    /// The highest version recorded, if any (an unreadable file counts as none: it only ever
    /// raises the bar).
    pub fn seen(&self) -> Option<i64> {
        std::fs::read_to_string(&self.path)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Refuse `newest` when this data dir has put a higher version in force.
    pub fn check(&self, newest: i64) -> Result<(), RolledBack> {
        match self.seen() {
            Some(seen) if seen > newest => Err(RolledBack {
                newest,
                seen,
                file: self.path.display().to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Record that `number` is in force, if it is higher than what was recorded.
    pub fn raise(&self, number: i64) {
        if self.seen().is_some_and(|seen| seen >= number) {
            return;
        }
        // Written whole and renamed, so a crash leaves the old number or the new one.
        let temp = self.path.with_extension("anchor.tmp");
        let written = std::fs::write(&temp, format!("{number}\n"))
            .and_then(|()| std::fs::rename(&temp, &self.path));
        if let Err(e) = written {
            tracing::warn!(error = %e, file = %self.path.display(), "the guardrail version anchor was not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_older_than_what_this_dir_has_seen_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let anchor = VersionAnchor::in_dir(dir.path());
        assert!(anchor.check(1).is_ok(), "nothing seen yet");
        anchor.raise(5);
        anchor.raise(3);
        assert_eq!(anchor.seen(), Some(5), "never lowered");
        assert!(anchor.check(5).is_ok());
        assert!(anchor.check(6).is_ok());
        let err = anchor.check(4).unwrap_err();
        assert_eq!((err.newest, err.seen), (4, 5));
        assert!(err.to_string().contains(ANCHOR_FILE), "{err}");
    }
}
