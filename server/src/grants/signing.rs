//! JWS compact serialisation with EdDSA (Ed25519), and the JWKS that lets anyone verify it.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Evidence, Grant, LiveGrant};

/// The audience of grants the admission webhook honours; other enforcement points get their own.
pub const ADMISSION_AUDIENCE: &str = "countersign:admission";

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
    /// A trusted key set (JWKS) could not be read.
    #[error("trusted grant keys {path}: {reason}")]
    BadKeySet {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Why a stored grant is not honoured: its token does not vouch for the row.
#[derive(Debug, thiserror::Error)]
pub enum GrantRejected {
    /// The token is not signed by a trusted key, or is malformed.
    #[error(transparent)]
    Token(#[from] SigningError),
    /// A claim differs from the stored row (someone wrote the database).
    #[error("claim `{0}` does not match the stored grant")]
    Mismatch(&'static str),
    /// The grant is wider than the guardrail in force allows (its `{0}`).
    #[error("the grant's {0} exceeds what its guardrail allows now")]
    Policy(&'static str),
}

/// The claims inside a grant token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantClaims {
    /// Issuer: the portal's public URL.
    pub iss: String,
    /// Audience: the enforcement point that honours it ([`ADMISSION_AUDIENCE`]).
    #[serde(default)]
    pub aud: String,
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
    /// The guardrail version that decided its challenge, signed so the database alone cannot
    /// rewrite which version an auditor is told.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

impl GrantClaims {
    /// The claims for a grant.
    pub fn of(grant: &Grant, issuer: &str) -> Self {
        Self {
            iss: issuer.to_owned(),
            aud: ADMISSION_AUDIENCE.to_owned(),
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
            evidence: shareable(&grant.evidence),
            version: grant.policy_version.clone(),
        }
    }
}

/// The evidence as the token carries it: the requester and everyone who holds the token sees it,
/// so approvers' client addresses and user agents stay in the store and the audit record only.
fn shareable(evidence: &Evidence) -> Evidence {
    let mut evidence = evidence.clone();
    for approval in &mut evidence.approvals {
        approval.step_up.client_address = None;
        approval.step_up.user_agent = None;
    }
    evidence
}

/// The Ed25519 key that signs grants, with its RFC 7638 thumbprint as `kid`, and the public keys
/// of other replicas (or of a rotated key) whose grants are honoured too.
pub struct GrantSigner {
    key: SigningKey,
    public: VerifyingKey,
    kid: String,
    trusted: Vec<(String, VerifyingKey)>,
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
        let public = key.verifying_key();
        let kid = thumbprint(&public);
        Self {
            key,
            public,
            kid,
            trusted: Vec::new(),
        }
    }

    /// Also honour grants signed by the Ed25519 keys of a JWKS file (another replica's
    /// `/.well-known/jwks.json`, or the key before a rotation).
    pub fn trust_jwks_file(mut self, path: &Path) -> Result<Self, SigningError> {
        let bad = |reason: String| SigningError::BadKeySet {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let set: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let keys = set["keys"]
            .as_array()
            .ok_or_else(|| bad("no `keys` array".into()))?;
        for (i, jwk) in keys.iter().enumerate() {
            if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" {
                return Err(bad(format!("keys[{i}] is not an Ed25519 key (OKP)")));
            }
            let key = jwk["x"]
                .as_str()
                .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .and_then(|b| VerifyingKey::from_bytes(&b).ok())
                .ok_or_else(|| bad(format!("keys[{i}].x is not an Ed25519 public key")))?;
            let kid = thumbprint(&key);
            if kid != self.kid && !self.trusted.iter().any(|(k, _)| *k == kid) {
                self.trusted.push((kid, key));
            }
        }
        Ok(self)
    }

    /// A fresh random key (tests, benchmarks).
    pub fn generate() -> Self {
        Self::new(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Load the key from `path`, which must exist (commands that seal what `serve` checks).
    pub fn load(path: &Path) -> Result<Self, SigningError> {
        use crate::private_files::{read_seed, SeedFileError};
        let seed = read_seed(path).map_err(|e| match e {
            SeedFileError::Io(source) => SigningError::KeyFile {
                path: path.display().to_string(),
                source,
            },
            SeedFileError::NotASeed => SigningError::BadKey(path.display().to_string()),
        })?;
        Ok(Self::new(SigningKey::from_bytes(&seed)))
    }

    /// Load the key from `path`, creating it (mode 0600) on first start.
    pub fn load_or_create(path: &Path) -> Result<Self, SigningError> {
        let io = |source| SigningError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        if path.exists() {
            return Self::load(path);
        }
        let signer = Self::generate();
        crate::private_files::write_seed(path, &signer.key.to_bytes()).map_err(io)?;
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

    /// Seal `bytes` for `purpose` with this key, as `kid.signature`: state the database keeps
    /// but must not be able to change (what policy decided about a challenge, an approval). The
    /// purpose is signed too, so a seal made for one thing never passes for another, nor for a JWS.
    pub fn seal(&self, purpose: &str, bytes: &[u8]) -> String {
        let signature = self.key.sign(&seal_input(purpose, bytes));
        format!(
            "{}.{}",
            self.kid,
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }

    /// Whether `seal` is this key's or a trusted key's seal of `bytes` for `purpose`.
    pub fn check_seal(&self, purpose: &str, bytes: &[u8], seal: &str) -> bool {
        let Some((kid, signature)) = seal.split_once('.') else {
            return false;
        };
        let key = if kid == self.kid {
            Some(self.public)
        } else {
            self.trusted
                .iter()
                .find(|(k, _)| k == kid)
                .map(|(_, key)| *key)
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b));
        match (key, signature) {
            (Some(key), Some(signature)) => key
                .verify_strict(&seal_input(purpose, bytes), &signature)
                .is_ok(),
            _ => false,
        }
    }

    /// Verify a token signed by this key or a trusted one and return its claims (expiry is the
    /// caller's business).
    pub fn verify(&self, token: &str) -> Result<GrantClaims, SigningError> {
        verify_with(
            |kid| {
                if kid == self.kid {
                    return Some(self.public);
                }
                self.trusted
                    .iter()
                    .find(|(k, _)| k == kid)
                    .map(|(_, key)| *key)
            },
            token,
        )
    }

    /// The cache's view of a stored grant, from its verified token: honoured only when the token
    /// is signed by a trusted key, is for the admission webhook and `issuer`, and every claim
    /// agrees with the row. The row may only lower the uses the token allows. With `policy`
    /// (the guardrail in force and the identity map), the claims must also stay within it.
    pub fn vouch(
        &self,
        row: &LiveGrant,
        token: &str,
        issuer: &str,
        policy: Option<(
            &crate::policy::Guardrail,
            &crate::identity::mapping::IdentityMap,
        )>,
    ) -> Result<LiveGrant, GrantRejected> {
        let claims = self.verify(token)?;
        if let Some((guardrail, identities)) = policy {
            if let Some(term) = super::in_force::exceeds(&claims, guardrail, identities) {
                return Err(GrantRejected::Policy(term));
            }
        }
        let checks = [
            ("iss", claims.iss == issuer),
            ("aud", claims.aud == ADMISSION_AUDIENCE),
            ("jti", claims.jti == row.id),
            ("sub", claims.sub == row.username),
            ("guardrail", claims.guardrail == row.guardrail),
            ("cluster", claims.cluster == row.cluster),
            ("scope", claims.scope == row.scope.as_str()),
            ("digest", claims.digest == row.digest),
            ("namespace", claims.namespace == row.namespace),
            ("object", claims.object == row.object_key),
            ("exp", claims.exp == row.expires_at),
            (
                "uses",
                match (claims.uses, row.uses_left) {
                    (None, None) => true,
                    (Some(allowed), Some(left)) => left <= allowed,
                    _ => false,
                },
            ),
        ];
        if let Some((claim, _)) = checks.iter().find(|(_, ok)| !ok) {
            return Err(GrantRejected::Mismatch(claim));
        }
        Ok(LiveGrant {
            break_glass: claims.evidence.break_glass,
            ..row.clone()
        })
    }

    /// The public key set, served at `/.well-known/jwks.json`: this key and the trusted ones.
    pub fn jwks(&self) -> serde_json::Value {
        let jwk = |kid: &str, key: &VerifyingKey| {
            serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
                "kid": kid,
                "alg": "EdDSA",
                "use": "sig",
            })
        };
        let mut keys = vec![jwk(&self.kid, &self.public)];
        keys.extend(self.trusted.iter().map(|(kid, key)| jwk(kid, key)));
        serde_json::json!({ "keys": keys })
    }
}

/// What a seal signs: a fixed prefix no JWS signing input can start with, the purpose, the bytes.
fn seal_input(purpose: &str, bytes: &[u8]) -> Vec<u8> {
    let mut input = format!("countersign-seal-v1\0{purpose}\0").into_bytes();
    input.extend_from_slice(bytes);
    input
}

/// RFC 7638 thumbprint of an Ed25519 public key.
fn thumbprint(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    let thumbprint_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()))
}

fn verify_with(
    key_for: impl Fn(&str) -> Option<VerifyingKey>,
    token: &str,
) -> Result<GrantClaims, SigningError> {
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
    let key = header["kid"]
        .as_str()
        .and_then(key_for)
        .ok_or(SigningError::BadToken(
            "signed by a key that is not trusted",
        ))?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SigningError::BadToken("signature encoding"))?;
    let signing_input_len = token.len() - token.rsplit('.').next().map_or(0, str::len) - 1;
    key.verify_strict(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> GrantClaims {
        GrantClaims {
            iss: "http://localhost:3000".into(),
            aud: ADMISSION_AUDIENCE.into(),
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
                ..Default::default()
            },
            version: String::new(),
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
