//! Signed checkpoints of the audit chain: Ed25519 over its head (seq, hash, time, key id), with a key
//! that lives in the data dir and never in the database, so a database writer cannot sign a chain
//! they rewrote.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The key file's name in the data dir.
pub const KEY_FILE: &str = "audit-signing.key";

/// The public key's file in the data dir, written at first start: what an auditor verifies with,
/// without the private key.
pub const PUBLIC_KEY_FILE: &str = "audit-signing.pub";

/// Why an audit key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Key file unreadable or unwritable.
    #[error("audit signing key {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Key file does not hold a private key.
    #[error("audit signing key {0} is not a base64 Ed25519 seed")]
    BadKey(String),
    /// Public key file does not hold a public key.
    #[error("audit public key {0} is not a base64 Ed25519 public key")]
    BadPublicKey(String),
}

/// A signed statement that the chain's record `seq` had hash `hash` at time `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    /// Sequence number of the head record.
    pub seq: i64,
    /// Its chain hash.
    pub hash: String,
    /// Unix seconds when the checkpoint was made.
    pub at: i64,
    /// Key id (RFC 7638 thumbprint) of the signing key.
    pub kid: String,
    /// Ed25519 signature over [`signing_input`], base64url.
    pub sig: String,
}

/// The bytes a checkpoint's signature covers: a domain tag, then each field length-prefixed (as
/// the chain hash does), so no other signed message of ours can be read as a checkpoint.
pub fn signing_input(seq: i64, hash: &str, at: i64, kid: &str) -> Vec<u8> {
    let mut out = b"countersign audit checkpoint v1\n".to_vec();
    for part in [seq.to_string().as_str(), hash, &at.to_string(), kid] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// RFC 7638 thumbprint of an Ed25519 public key, as grant keys are named.
fn kid_of(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    let thumbprint_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()))
}

/// The private key that signs checkpoints.
pub struct AuditSigner {
    key: SigningKey,
    public: AuditPublicKey,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("AuditSigner")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl AuditSigner {
    /// A signer over a given key.
    pub fn new(key: SigningKey) -> Self {
        let public = AuditPublicKey::new(key.verifying_key());
        Self { key, public }
    }

    /// A fresh random key (tests).
    pub fn generate() -> Self {
        Self::new(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Load the key from `path`, creating it (mode 0600) on first start.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            return Self::load(path);
        }
        let signer = Self::generate();
        crate::private_files::write_seed(path, &signer.key.to_bytes()).map_err(|source| {
            KeyError::KeyFile {
                path: path.display().to_string(),
                source,
            }
        })?;
        Ok(signer)
    }

    /// Write the public key beside the private one (`PUBLIC_KEY_FILE`), if it is not there yet.
    pub fn publish(&self, dir: &Path) -> Result<(), KeyError> {
        let path = dir.join(PUBLIC_KEY_FILE);
        if path.exists() {
            return Ok(());
        }
        std::fs::write(&path, format!("{}\n", self.public.encode())).map_err(|source| {
            KeyError::KeyFile {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// Load an existing key; never creates one (verification must not invent a key).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        use crate::private_files::{read_seed, SeedFileError};
        let seed = read_seed(path).map_err(|e| match e {
            SeedFileError::Io(source) => KeyError::KeyFile {
                path: path.display().to_string(),
                source,
            },
            SeedFileError::NotASeed => KeyError::BadKey(path.display().to_string()),
        })?;
        Ok(Self::new(SigningKey::from_bytes(&seed)))
    }

    /// The key that verifies this signer's checkpoints.
    pub fn public_key(&self) -> &AuditPublicKey {
        &self.public
    }

    /// Sign the chain head `(seq, hash)` as of `at`.
    pub fn checkpoint(&self, seq: i64, hash: &str, at: i64) -> AuditCheckpoint {
        let kid = self.public.kid.clone();
        let signature = self.key.sign(&signing_input(seq, hash, at, &kid));
        AuditCheckpoint {
            seq,
            hash: hash.to_owned(),
            at,
            kid,
            sig: URL_SAFE_NO_PAD.encode(signature.to_bytes()),
        }
    }
}

/// A public key that verifies checkpoints, with its key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPublicKey {
    key: VerifyingKey,
    kid: String,
}

impl AuditPublicKey {
    /// Wrap a verifying key.
    pub fn new(key: VerifyingKey) -> Self {
        let kid = kid_of(&key);
        Self { key, kid }
    }

    /// Read the form [`AuditPublicKey::encode`] writes (base64 of the 32 key bytes).
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = STANDARD.decode(text.trim()).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok().map(Self::new)
    }

    /// Load a public key file (what `countersign audit public-key` prints).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::KeyFile {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).ok_or_else(|| KeyError::BadPublicKey(path.display().to_string()))
    }

    /// Base64 of the 32 key bytes.
    pub fn encode(&self) -> String {
        STANDARD.encode(self.key.as_bytes())
    }

    /// The key id checkpoints carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Whether this key signed exactly this checkpoint.
    pub fn verifies(&self, checkpoint: &AuditCheckpoint) -> bool {
        let Some(signature) = URL_SAFE_NO_PAD
            .decode(&checkpoint.sig)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        checkpoint.kid == self.kid
            && self
                .key
                .verify(
                    &signing_input(
                        checkpoint.seq,
                        &checkpoint.hash,
                        checkpoint.at,
                        &checkpoint.kid,
                    ),
                    &Signature::from_bytes(&signature),
                )
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_8_checkpoint_signs_and_verifies() {
        let signer = AuditSigner::generate();
        let checkpoint = signer.checkpoint(7, &"ab".repeat(32), 1_700_000_000);
        assert!(signer.public_key().verifies(&checkpoint));
        assert_eq!(checkpoint.kid, signer.public_key().kid());
    }

    #[test]
    fn finding_8_checkpoint_refuses_any_changed_field_and_foreign_keys() {
        let signer = AuditSigner::generate();
        let good = signer.checkpoint(7, &"ab".repeat(32), 1_700_000_000);
        let key = signer.public_key();
        for bad in [
            AuditCheckpoint {
                seq: 8,
                ..good.clone()
            },
            AuditCheckpoint {
                hash: "cd".repeat(32),
                ..good.clone()
            },
            AuditCheckpoint {
                at: good.at + 1,
                ..good.clone()
            },
            AuditCheckpoint {
                kid: "other".into(),
                ..good.clone()
            },
            AuditCheckpoint {
                sig: "not base64!".into(),
                ..good.clone()
            },
        ] {
            assert!(!key.verifies(&bad), "{bad:?} verified");
        }
        assert!(!AuditSigner::generate().public_key().verifies(&good));
    }

    #[test]
    fn finding_8_audit_key_is_created_private_and_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        assert!(matches!(
            AuditSigner::load(&path),
            Err(KeyError::KeyFile { .. })
        ));
        let first = AuditSigner::load_or_create(&path).unwrap();
        let second = AuditSigner::load_or_create(&path).unwrap();
        assert_eq!(first.public_key(), second.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let encoded = first.public_key().encode();
        assert_eq!(
            AuditPublicKey::parse(&encoded).as_ref(),
            Some(first.public_key())
        );
        assert_eq!(AuditPublicKey::parse("dGVzdA=="), None);
    }
}
