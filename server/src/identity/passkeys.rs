//! WebAuthn ceremonies (webauthn-rs): registration, login and step-up, user verification required.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use url::Url;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use super::{Credential, User};

/// Why a ceremony failed; the message is safe to show to the person.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The public URL cannot be a WebAuthn relying party.
    #[error("the public URL {0} cannot be used for WebAuthn: {1}")]
    RelyingParty(String, String),
    /// The authenticator's answer did not verify.
    #[error("the security key's answer was not accepted: {0}")]
    Rejected(#[from] WebauthnError),
    /// The authenticator did not verify the user (no PIN or biometric).
    #[error("the security key did not verify you (PIN or biometric required)")]
    NotVerified,
    /// A stored credential could not be read.
    #[error("a stored passkey is unreadable")]
    Corrupt,
}

/// The relying party.
pub struct Passkeys {
    webauthn: Webauthn,
}

impl Passkeys {
    /// A relying party for the portal at `public_url` (its host is the RP ID, so it must be a domain name).
    pub fn new(public_url: &Url) -> Result<Self, PasskeyError> {
        let bad = |why: &str| PasskeyError::RelyingParty(public_url.to_string(), why.to_owned());
        let host = public_url.host_str().ok_or_else(|| bad("it has no host"))?;
        if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            return Err(bad(
                "an RP ID must be a domain name, not an IP address; use http://localhost:PORT",
            ));
        }
        let webauthn = WebauthnBuilder::new(host, public_url)
            .map_err(|e| bad(&e.to_string()))?
            .rp_name("Countersign")
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Self { webauthn })
    }

    /// Begin registering a credential for `user`, excluding those already registered.
    pub fn start_registration(
        &self,
        user: &User,
        existing: &[Credential],
    ) -> Result<(CreationChallengeResponse, PasskeyRegistration), PasskeyError> {
        let user_id = Uuid::parse_str(&user.user_id).map_err(|_| PasskeyError::Corrupt)?;
        let exclude = existing
            .iter()
            .filter_map(|c| URL_SAFE_NO_PAD.decode(&c.credential_id).ok())
            .collect::<Vec<_>>();
        Ok(self.webauthn.start_passkey_registration(
            user_id,
            &user.username,
            &user.display_name,
            (!exclude.is_empty()).then_some(exclude),
        )?)
    }

    /// Finish registration; returns the credential id (base64url) and the passkey to store (JSON).
    pub fn finish_registration(
        &self,
        response: &RegisterPublicKeyCredential,
        state: &PasskeyRegistration,
    ) -> Result<(String, String), PasskeyError> {
        let passkey = self.webauthn.finish_passkey_registration(response, state)?;
        let id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
        let json = serde_json::to_string(&passkey).map_err(|_| PasskeyError::Corrupt)?;
        Ok((id, json))
    }

    /// Begin an assertion against these credentials (user verification required).
    pub fn start_authentication(
        &self,
        credentials: &[Credential],
    ) -> Result<(RequestChallengeResponse, PasskeyAuthentication), PasskeyError> {
        let passkeys = credentials
            .iter()
            .map(|c| serde_json::from_str::<Passkey>(&c.passkey).map_err(|_| PasskeyError::Corrupt))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.webauthn.start_passkey_authentication(&passkeys)?)
    }

    /// Finish an assertion. Refuses UV=0 even though webauthn-rs already does, because step-up depends on it.
    pub fn finish_authentication(
        &self,
        response: &PublicKeyCredential,
        state: &PasskeyAuthentication,
    ) -> Result<AuthenticationResult, PasskeyError> {
        let result = self
            .webauthn
            .finish_passkey_authentication(response, state)
            .map_err(|e| match e {
                WebauthnError::UserNotVerified => PasskeyError::NotVerified,
                other => PasskeyError::Rejected(other),
            })?;
        if !result.user_verified() {
            return Err(PasskeyError::NotVerified);
        }
        Ok(result)
    }

    /// The credential's stored state after a successful assertion (counter), if it changed.
    pub fn updated_passkey(
        credential: &Credential,
        result: &AuthenticationResult,
    ) -> Option<String> {
        let mut passkey: Passkey = serde_json::from_str(&credential.passkey).ok()?;
        passkey.update_credential(result)?;
        serde_json::to_string(&passkey).ok()
    }

    /// base64url of an assertion's credential id.
    pub fn credential_id(result: &AuthenticationResult) -> String {
        URL_SAFE_NO_PAD.encode(result.cred_id())
    }
}
