//! JWS compact serialisation with EdDSA (Ed25519), and the JWKS that lets anyone verify it.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Evidence, Grant};

/// Why a signing key could not be loaded or a token not verified.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// Key file unreadable or unwritable.
    #[error("grant signing key {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Key file does not hold a key.
    #[error("grant signing key {0} is not a base64 Ed25519 seed")]
    BadKey(String),
    /// Token malformed, signed by another key, or claims unreadable.
    #[error("grant token is not valid: {0}")]
    BadToken(&'static str),
}

/// The claims inside a grant token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantClaims {
    /// Issuer: the portal's public URL.
    pub iss: String,
    /// Kubernetes username.
    pub sub: String,
    /// Grant id.
    pub jti: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Cluster.
    pub cluster: String,
    /// Guardrail.
    pub guardrail: String,
    /// `request`, `object` or `namespace`.
    pub scope: String,
    /// Request digest (scope request).
    pub digest: String,
    /// Namespace.
    pub namespace: String,
    /// Object key (scope object).
    pub object: String,
    /// Uses allowed; absent = unlimited within `exp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<i64>,
    /// Challenge code.
    pub challenge: String,
    /// Step-up evidence.
    pub evidence: Evidence,
}

impl GrantClaims {
    /// The claims for a grant.
    pub fn of(grant: &Grant, issuer: &str) -> Self {
        Self {
            iss: issuer.to_owned(),
            sub: grant.username.clone(),
            jti: grant.id.clone(),
            iat: grant.created_at,
            nbf: grant.created_at,
            exp: grant.expires_at,
            cluster: grant.cluster.clone(),
            guardrail: grant.guardrail.clone(),
            scope: grant.scope.as_str().to_owned(),
            digest: grant.digest.clone(),
            namespace: grant.namespace.clone(),
            object: grant.object_key.clone(),
            uses: grant.uses_left,
            challenge: grant.challenge_code.clone(),
            evidence: grant.evidence.clone(),
        }
    }
}

/// The Ed25519 key that signs grants, with its RFC 7638 thumbprint as `kid`.
pub struct GrantSigner {
    key: SigningKey,
    kid: String,
}

impl std::fmt::Debug for GrantSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("GrantSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl GrantSigner {
    /// A signer over a given key.
    pub fn new(key: SigningKey) -> Self {
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let thumbprint_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        Self { key, kid }
    }

    /// A fresh random key (tests, benchmarks).
    pub fn generate() -> Self {
        Self::new(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Load the key from `path`, creating it (mode 0600) on first start.
    pub fn load_or_create(path: &Path) -> Result<Self, SigningError> {
        let io = |source| SigningError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(io)?;
            let seed: [u8; 32] = STANDARD
                .decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| SigningError::BadKey(path.display().to_string()))?;
            return Ok(Self::new(SigningKey::from_bytes(&seed)));
        }
        let signer = Self::generate();
        write_private(path, &STANDARD.encode(signer.key.to_bytes())).map_err(io)?;
        Ok(signer)
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Sign claims as a compact JWS.
    pub fn sign(&self, claims: &GrantClaims) -> String {
        let header = serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default())
        );
        let signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }

    /// Verify a token signed by this key and return its claims (expiry is the caller's business).
    pub fn verify(&self, token: &str) -> Result<GrantClaims, SigningError> {
        verify_with(&self.key.verifying_key(), token)
    }

    /// The public key set, served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }]})
    }
}

fn verify_with(key: &VerifyingKey, token: &str) -> Result<GrantClaims, SigningError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SigningError::BadToken("not three parts"));
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(SigningError::BadToken("header"))?;
    if header["alg"] != "EdDSA" {
        return Err(SigningError::BadToken("algorithm"));
    }
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SigningError::BadToken("signature encoding"))?;
    let signing_input_len = token.len() - token.rsplit('.').next().map_or(0, str::len) - 1;
    key.verify(
        &token.as_bytes()[..signing_input_len],
        &Signature::from_bytes(&signature),
    )
    .map_err(|_| SigningError::BadToken("signature"))?;
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(SigningError::BadToken("claims"))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> GrantClaims {
        GrantClaims {
            iss: "http://localhost:3000".into(),
            sub: "alice".into(),
            jti: "g1".into(),
            iat: 1,
            nbf: 1,
            exp: 2,
            cluster: "c".into(),
            guardrail: "prod".into(),
            scope: "request".into(),
            digest: "d".into(),
            namespace: "ns".into(),
            object: "o".into(),
            uses: Some(1),
            challenge: "K7Q2M9XD".into(),
            evidence: Evidence {
                method: "webauthn".into(),
                account: "alice".into(),
                credential_id: None,
                user_verified: true,
                auth_time: 1,
                client_address: None,
                user_agent: None,
                acr: None,
                amr: None,
                aaguid: None,
            },
        }
    }

    #[test]
    fn signs_and_verifies() {
        let signer = GrantSigner::generate();
        let token = signer.sign(&claims());
        assert_eq!(signer.verify(&token).unwrap(), claims());
        assert_eq!(signer.jwks()["keys"][0]["kid"], signer.kid());
    }

    #[test]
    fn refuses_tampering_and_foreign_keys() {
        let signer = GrantSigner::generate();
        let token = signer.sign(&claims());
        let mut forged = claims();
        forged.sub = "mallory".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(signer.verify(&tampered).is_err());
        assert!(GrantSigner::generate().verify(&token).is_err());
        assert!(signer.verify("a.b").is_err());
    }

    #[test]
    fn key_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grant.key");
        let first = GrantSigner::load_or_create(&path).unwrap();
        let second = GrantSigner::load_or_create(&path).unwrap();
        assert_eq!(first.kid(), second.kid());
    }
}
