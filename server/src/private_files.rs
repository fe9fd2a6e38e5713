//! Files only Countersign may read: the signing keys and the SQLite database. `serve` refuses to
//! start when one of them is open to group or others (anyone who reads a signing key mints grants or
//! forges checkpoints; anyone who reads the database reads sessions and challenges), and new ones are
//! created owner-only.

use std::path::{Path, PathBuf};

/// Key files in the data dir that must stay private (the audit key exists once checkpoints do).
pub const KEY_FILES: &[&str] = &["grant-signing.key", "audit-signing.key"];

/// Why a private file is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// Group or others may read or write it.
    #[error(
        "{path} is open to group or others (mode {mode:03o}) and holds secrets; \
         run `chmod 600 {path}` and start again"
    )]
    TooOpen {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// It could not be inspected or created.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrivateFileError + '_ {
    move |source| PrivateFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Refuse a file that group or others may access; a missing file is fine (it is made private).
pub fn check(path: &Path) -> Result<(), PrivateFileError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(PrivateFileError::TooOpen {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

/// The database file of an SQLite URL (`sqlite://path?…`), unless it is in memory.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    (!file.is_empty() && file != ":memory:").then(|| PathBuf::from(file))
}

/// Create a new file only its owner may read or write; fails if it exists.
pub fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Write `contents` to a new owner-only file (a signing key); fails if it exists.
pub fn write_new(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    create_new(path)?.write_all(contents.as_bytes())
}

/// Why an Ed25519 seed file (a signing key) could not be read.
#[derive(Debug)]
pub enum SeedFileError {
    /// It could not be read.
    Io(std::io::Error),
    /// It does not hold a base64 32-byte seed.
    NotASeed,
}

/// Read the base64 Ed25519 seed a signing key file holds (grant and audit keys share the format).
pub fn read_seed(path: &Path) -> Result<[u8; 32], SeedFileError> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(path).map_err(SeedFileError::Io)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SeedFileError::NotASeed)
}

/// Write a seed to a new owner-only key file; fails if it exists.
pub fn write_seed(path: &Path, seed: &[u8; 32]) -> std::io::Result<()> {
    use base64::Engine as _;
    write_new(
        path,
        &base64::engine::general_purpose::STANDARD.encode(seed),
    )
}

/// Create the database file owner-only when it is missing, so SQLite never makes it with the
/// default umask (it gives its `-wal`/`-shm` companions the file's own mode).
pub fn create_sqlite(path: &Path) -> Result<(), PrivateFileError> {
    if !path.exists() {
        match create_new(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(path)(e)),
        }
    }
    Ok(())
}

/// Check the database file and its companions, creating it owner-only when missing.
pub fn prepare_sqlite(path: &Path) -> Result<(), PrivateFileError> {
    create_sqlite(path)?;
    check(path)?;
    for suffix in ["-wal", "-shm"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        check(Path::new(&companion))?;
    }
    Ok(())
}

/// Check every private file `serve` uses in `data_dir` and, for SQLite, the database.
pub fn check_all(data_dir: &Path, database_url: &str) -> Result<(), PrivateFileError> {
    for name in KEY_FILES {
        check(&data_dir.join(name))?;
    }
    match sqlite_file(database_url) {
        Some(file) => prepare_sqlite(&file),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/cs/countersign.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/cs/countersign.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://data/countersign.db"),
            Some(PathBuf::from("data/countersign.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://db/cs"), None);
    }

    #[cfg(unix)]
    #[test]
    fn finding_13_open_files_are_refused_and_new_ones_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("countersign.db");
        prepare_sqlite(&db).unwrap();
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = prepare_sqlite(&db).unwrap_err().to_string();
        assert!(
            err.contains("chmod 600") && err.contains("countersign.db"),
            "{err}"
        );
        let key = dir.path().join("grant-signing.key");
        std::fs::write(&key, "x").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = check_all(dir.path(), "postgres://x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("grant-signing.key") && err.contains("640"),
            "{err}"
        );
    }
}
