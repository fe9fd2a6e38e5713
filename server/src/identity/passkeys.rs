//! WebAuthn ceremonies (webauthn-rs): registration, login and step-up, user verification required.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use url::Url;

use serde_json::Value;
use webauthn_rs::fake::{FakePasskeyDistribution, WebauthnFakeCredentialGenerator};
use webauthn_rs::prelude::{
    AttestationMetadata, AttestedPasskey, AttestedPasskeyRegistration, AuthenticationResult,
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};

use super::authenticators::AuthenticatorAllowList;
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
    /// The signature counter did not go up: two copies of the key may exist. The credential is blocked.
    #[error("this passkey was blocked: its signature counter went backwards, so it may have been cloned. Use another passkey and remove this one")]
    PossibleClone,
    /// The assertion names a credential or account this site does not know.
    #[error(
        "this passkey is not registered here; sign in with your username, or use another passkey"
    )]
    Unknown,
    /// The credential is blocked (it was flagged as a possible clone before).
    #[error("this passkey is blocked (possible cloned key); use another one")]
    Blocked,
    /// The attested authenticator model is not on the administrator's allow-list.
    #[error("this authenticator model ({0}) is not on this site's list of allowed security keys; use one your administrator approved")]
    NotAllowed(String),
    /// The authenticator claims an approved model, but its attestation is not signed by that
    /// vendor's root: a counterfeit or a software authenticator.
    #[error("this security key says it is a {model}, but it could not prove it: its attestation is not signed by an approved vendor. Use a genuine key from your administrator's list")]
    Unproven {
        /// The model it claimed.
        model: String,
    },
    /// A synced passkey (its key can leave the device) where only hardware-bound keys are allowed.
    #[error("synced passkeys (kept by a password manager or a cloud account) are not accepted here; use a security key from your administrator's list")]
    Synced,
    /// Step-up with an allow-list needs a key on it.
    #[error("confirming needs a security key from your administrator's approved list, and none of yours is on it. Add an approved key on your account page (/account), then confirm with it")]
    NoApprovedKey,
    /// A registration started under other settings (the allow-list changed meanwhile).
    #[error("the site's security-key settings changed while you were registering; start again")]
    Stale,
}

/// Registration ceremony state, kept server-side: any authenticator, or only attested models from
/// the allow-list (the state then carries the vendor roots it was started with).
#[derive(Serialize, Deserialize)]
pub enum RegistrationState {
    /// Any authenticator.
    Open(PasskeyRegistration),
    /// Only approved models, proven by their vendor's attestation.
    Attested(AttestedPasskeyRegistration),
}

/// What the allow-list says about a registered key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// There is no allow-list: every key may confirm step-ups.
    Unrestricted,
    /// On the allow-list, with the approved model's name.
    Approved(String),
    /// Not on it (registered before the list, or its vendor root was removed): signs in only.
    NotApproved,
}

impl Approval {
    /// Whether the key may confirm step-ups.
    pub fn allows_stepup(&self) -> bool {
        !matches!(self, Approval::NotApproved)
    }
}

/// A credential just registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// base64url credential id.
    pub credential_id: String,
    /// The webauthn-rs `Passkey` as JSON.
    pub passkey: String,
    /// AAGUID from the attested credential data, if the authenticator revealed one (not all zeros).
    pub aaguid: Option<String>,
}

/// The relying party.
pub struct Passkeys {
    webauthn: Webauthn,
    // Decoy credential ids for unknown usernames; the key lives for the process (a restart lets a
    // patient prober compare answers before and after, a far weaker oracle than a plain error).
    decoys: WebauthnFakeCredentialGenerator<FakePasskeyDistribution>,
    allowlist: Option<AuthenticatorAllowList>,
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
        let key = WebauthnFakeCredentialGenerator::<FakePasskeyDistribution>::new_hmac_key()
            .map_err(|e| bad(&e.to_string()))?;
        let decoys = WebauthnFakeCredentialGenerator::new(key.as_slice())
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            webauthn,
            decoys,
            allowlist: None,
        })
    }

    /// Register only models on `allowed`, proven by an attestation that chains to their vendor's
    /// root, and confirm step-ups only with such keys.
    pub fn with_allowlist(mut self, allowed: AuthenticatorAllowList) -> Self {
        self.allowlist = Some(allowed);
        self
    }

    /// The allow-list, if the administrator set one.
    pub fn allowlist(&self) -> Option<&AuthenticatorAllowList> {
        self.allowlist.as_ref()
    }

    /// What the allow-list says about `credential`. Its stored attestation is verified again
    /// against today's roots, so removing a vendor from the list withdraws its keys.
    pub fn approval(&self, credential: &Credential) -> Approval {
        let Some(list) = &self.allowlist else {
            return Approval::Unrestricted;
        };
        // A Passkey and an AttestedPasskey are stored in the same shape (the credential with
        // the attestation it was registered with).
        let Ok(key) = serde_json::from_str::<AttestedPasskey>(&credential.passkey) else {
            return Approval::NotApproved;
        };
        let aaguid = match &key.attestation().metadata {
            AttestationMetadata::Packed { aaguid } | AttestationMetadata::Tpm { aaguid, .. } => {
                *aaguid
            }
            _ => return Approval::NotApproved,
        };
        match key.verify_attestation(list.cas()) {
            Ok(ca) if ca.aaguids().contains_key(&aaguid) => list
                .model(&aaguid)
                .map_or(Approval::NotApproved, |m| Approval::Approved(m.to_owned())),
            _ => Approval::NotApproved,
        }
    }

    /// Begin registering a credential for `user`, excluding those already registered. The options
    /// ask for a discoverable credential (usernameless sign-in) and, with an allow-list, for
    /// direct attestation verified against the vendors' roots.
    pub fn start_registration(
        &self,
        user: &User,
        existing: &[Credential],
    ) -> Result<(Value, RegistrationState), PasskeyError> {
        let user_id = Uuid::parse_str(&user.user_id).map_err(|_| PasskeyError::Corrupt)?;
        let exclude = existing
            .iter()
            .filter_map(|c| URL_SAFE_NO_PAD.decode(&c.credential_id).ok())
            .collect::<Vec<_>>();
        let exclude = (!exclude.is_empty()).then_some(exclude);
        let (mut options, state) = match &self.allowlist {
            None => {
                let (options, state) = self.webauthn.start_passkey_registration(
                    user_id,
                    &user.username,
                    &user.display_name,
                    exclude,
                )?;
                (json(&options)?, RegistrationState::Open(state))
            }
            Some(list) => {
                let (options, state) = self.webauthn.start_attested_passkey_registration(
                    user_id,
                    &user.username,
                    &user.display_name,
                    exclude,
                    list.cas().clone(),
                    None,
                )?;
                let mut options = json(&options)?;
                // webauthn-rs makes the browser refuse authenticators without credProtect (the
                // "UV required" credential policy); some FIDO2 keys lack it. The server refuses
                // every assertion without user verification anyway, so ask but do not insist.
                if let Some(extensions) = options.pointer_mut("/publicKey/extensions") {
                    extensions["enforceCredentialProtectionPolicy"] = Value::from(false);
                }
                (options, RegistrationState::Attested(state))
            }
        };
        // webauthn-rs asks for a non-resident key; a discoverable one is what lets people sign in
        // without typing a username. The server does not depend on it (old keys still work).
        if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
            selection["residentKey"] = Value::from("required");
            selection["requireResidentKey"] = Value::from(true);
        }
        Ok((options, state))
    }

    /// Finish registration. With an allow-list the attestation must chain to a listed vendor root
    /// that lists the attested model.
    pub fn finish_registration(
        &self,
        response: &RegisterPublicKeyCredential,
        state: &RegistrationState,
    ) -> Result<Registered, PasskeyError> {
        let aaguid = aaguid_of(&response.response.attestation_object);
        let passkey = match (state, &self.allowlist) {
            // Started before the allow-list was set: it would skip the attestation check.
            (RegistrationState::Open(_), Some(_)) => return Err(PasskeyError::Stale),
            (RegistrationState::Open(state), None) => {
                self.webauthn.finish_passkey_registration(response, state)?
            }
            (RegistrationState::Attested(state), list) => Passkey::from(
                self.webauthn
                    .finish_attested_passkey_registration(response, state)
                    .map_err(|e| attestation_error(e, aaguid, list.as_ref()))?,
            ),
        };
        Ok(Registered {
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
            passkey: serde_json::to_string(&passkey).map_err(|_| PasskeyError::Corrupt)?,
            aaguid: aaguid.map(|a| a.hyphenated().to_string()),
        })
    }

    /// Begin an assertion against these credentials (user verification required). Blocked
    /// credentials are left out, so the browser never offers them.
    pub fn start_authentication(
        &self,
        credentials: &[Credential],
    ) -> Result<(Value, PasskeyAuthentication), PasskeyError> {
        let passkeys = credentials
            .iter()
            .filter(|c| c.usable())
            .map(|c| serde_json::from_str::<Passkey>(&c.passkey).map_err(|_| PasskeyError::Corrupt))
            .collect::<Result<Vec<_>, _>>()?;
        let (options, state) = self.webauthn.start_passkey_authentication(&passkeys)?;
        let options = serde_json::to_value(options).map_err(|_| PasskeyError::Corrupt)?;
        Ok((uniform(options), state))
    }

    /// Begin a step-up assertion: as [`Self::start_authentication`], offering only keys the
    /// allow-list approves, so a grant is never backed by an unapproved key.
    pub fn start_stepup(
        &self,
        credentials: &[Credential],
    ) -> Result<(Value, PasskeyAuthentication), PasskeyError> {
        let approved = credentials
            .iter()
            .filter(|c| c.usable() && self.approval(c).allows_stepup())
            .cloned()
            .collect::<Vec<_>>();
        if approved.is_empty() {
            return Err(PasskeyError::NoApprovedKey);
        }
        self.start_authentication(&approved)
    }

    /// Options for a username that has no usable passkey: shaped like [`Self::start_authentication`]'s,
    /// with decoy credential ids that are stable per username, so the answer does not reveal
    /// whether the account exists. No authenticator holds them, so the ceremony cannot finish.
    pub fn decoy_authentication(&self, username: &str) -> Result<Value, PasskeyError> {
        let (options, _) = self.webauthn.start_discoverable_authentication()?;
        let mut options = serde_json::to_value(options).map_err(|_| PasskeyError::Corrupt)?;
        // The generator sometimes mimics an account without keys (an empty list); an account that
        // can sign in always has one, so draw again, still deterministically per username.
        let mut seed = username.as_bytes().to_vec();
        let mut ids = self.decoys.generate(&seed)?;
        while ids.is_empty() {
            seed.push(0);
            ids = self.decoys.generate(&seed)?;
        }
        options["publicKey"]["allowCredentials"] = ids
            .iter()
            .map(|id| serde_json::json!({"type": "public-key", "id": URL_SAFE_NO_PAD.encode(id)}))
            .collect();
        Ok(uniform(options))
    }

    /// Begin a usernameless sign-in: the browser offers any discoverable credential for this site.
    pub fn start_discoverable(&self) -> Result<(Value, DiscoverableAuthentication), PasskeyError> {
        let (options, state) = self.webauthn.start_discoverable_authentication()?;
        let mut options = serde_json::to_value(options).map_err(|_| PasskeyError::Corrupt)?;
        // webauthn-rs forces conditional mediation (autofill); a button press wants the modal prompt.
        if let Some(map) = options.as_object_mut() {
            map.remove("mediation");
        }
        Ok((options, state))
    }

    /// Who a usernameless assertion claims to be: the user handle (account id) and credential id.
    pub fn identify_discoverable(
        &self,
        response: &PublicKeyCredential,
    ) -> Result<(String, String), PasskeyError> {
        let (user, cred) = self
            .webauthn
            .identify_discoverable_authentication(response)?;
        Ok((user.hyphenated().to_string(), URL_SAFE_NO_PAD.encode(cred)))
    }

    /// Finish a usernameless sign-in against the credential it named (user verification required).
    pub fn finish_discoverable(
        &self,
        response: &PublicKeyCredential,
        state: DiscoverableAuthentication,
        credential: &Credential,
    ) -> Result<AuthenticationResult, PasskeyError> {
        if !credential.usable() {
            return Err(PasskeyError::Blocked);
        }
        let passkey: Passkey =
            serde_json::from_str(&credential.passkey).map_err(|_| PasskeyError::Corrupt)?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(response, state, &passkey)
            .map_err(assertion_error)?;
        if !result.user_verified() {
            return Err(PasskeyError::NotVerified);
        }
        Ok(result)
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
            .map_err(assertion_error)?;
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

    /// base64url of the credential id an assertion claims (before it is verified).
    pub fn claimed_credential_id(response: &PublicKeyCredential) -> String {
        URL_SAFE_NO_PAD.encode(response.get_credential_id())
    }
}

fn json(options: &impl Serialize) -> Result<Value, PasskeyError> {
    serde_json::to_value(options).map_err(|_| PasskeyError::Corrupt)
}

/// Why an attested registration failed, in the words of the allow-list.
fn attestation_error(
    e: WebauthnError,
    aaguid: Option<Uuid>,
    list: Option<&AuthenticatorAllowList>,
) -> PasskeyError {
    let claimed = aaguid.map_or_else(
        || "not disclosed".to_owned(),
        |a| a.hyphenated().to_string(),
    );
    let listed = aaguid.and_then(|a| list.and_then(|l| l.model(&a)));
    match e {
        // The chain is a listed vendor's, but that vendor's entry does not list this model.
        WebauthnError::AttestationUntrustedAaguid => PasskeyError::NotAllowed(claimed),
        WebauthnError::CredentialMayNotBeHardwareBound => PasskeyError::Synced,
        WebauthnError::AttestationChainNotTrusted(_)
        | WebauthnError::AttestationNotVerifiable
        | WebauthnError::AttestationFormatMissingAaguid
        | WebauthnError::AttestationCertificateTrustStoreEmpty => match listed {
            Some(model) => PasskeyError::Unproven {
                model: model.to_owned(),
            },
            None => PasskeyError::NotAllowed(claimed),
        },
        other => PasskeyError::Rejected(other),
    }
}

fn assertion_error(e: WebauthnError) -> PasskeyError {
    match e {
        WebauthnError::UserNotVerified => PasskeyError::NotVerified,
        // webauthn-rs refuses a counter that did not increase (for keys that keep one).
        WebauthnError::CredentialPossibleCompromise => PasskeyError::PossibleClone,
        other => PasskeyError::Rejected(other),
    }
}

/// Request options in one shape whoever asks: no extensions, no mediation, no transport hints
/// (a decoy cannot know them, and their absence only makes the browser offer every transport).
fn uniform(mut options: Value) -> Value {
    if let Some(map) = options.as_object_mut() {
        map.remove("mediation");
    }
    if let Some(pk) = options.get_mut("publicKey").and_then(Value::as_object_mut) {
        pk.remove("extensions");
        pk.remove("hints");
        if let Some(list) = pk.get_mut("allowCredentials").and_then(Value::as_array_mut) {
            for c in list.iter_mut().filter_map(Value::as_object_mut) {
                c.remove("transports");
            }
        }
    }
    options
}

/// The AAGUID in an attestation object's attested credential data; `None` when absent or all zeros
/// (browsers zero it when no attestation is asked for).
pub fn aaguid_of(attestation_object: &[u8]) -> Option<Uuid> {
    let auth_data = cbor_map_bytes(attestation_object, "authData")?;
    // rpIdHash (32) | flags (1) | signCount (4) | AAGUID (16) | ...; AT flag (0x40) says it is there.
    let flags = *auth_data.get(32)?;
    if flags & 0x40 == 0 {
        return None;
    }
    let bytes: [u8; 16] = auth_data.get(37..53)?.try_into().ok()?;
    let aaguid = Uuid::from_bytes(bytes);
    (!aaguid.is_nil()).then_some(aaguid)
}

/// The byte-string value under a text key of a top-level CBOR map (just enough CBOR for an
/// attestation object, so no CBOR crate is needed).
fn cbor_map_bytes<'a>(data: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let (major, entries, mut at) = cbor_head(data, 0)?;
    if major != 5 {
        return None;
    }
    for _ in 0..entries {
        let (kmajor, klen, kat) = cbor_head(data, at)?;
        let kend = kat.checked_add(usize::try_from(klen).ok()?)?;
        let is_key = kmajor == 3 && data.get(kat..kend)? == key.as_bytes();
        at = if kmajor == 3 {
            kend
        } else {
            cbor_skip(data, at, 0)?
        };
        if is_key {
            let (vmajor, vlen, vat) = cbor_head(data, at)?;
            let vend = vat.checked_add(usize::try_from(vlen).ok()?)?;
            return (vmajor == 2).then(|| data.get(vat..vend)).flatten();
        }
        at = cbor_skip(data, at, 0)?;
    }
    None
}

/// Major type, argument and the offset after the head of the item at `at` (definite lengths only).
fn cbor_head(data: &[u8], at: usize) -> Option<(u8, u64, usize)> {
    let first = *data.get(at)?;
    let (major, info) = (first >> 5, first & 0x1f);
    let width = match info {
        0..=23 => return Some((major, u64::from(info), at + 1)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return None,
    };
    let bytes = data.get(at + 1..at + 1 + width)?;
    let value = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    Some((major, value, at + 1 + width))
}

/// The offset after the whole item at `at`.
fn cbor_skip(data: &[u8], at: usize, depth: u8) -> Option<usize> {
    if depth > 16 {
        return None;
    }
    let (major, arg, mut next) = cbor_head(data, at)?;
    match major {
        0 | 1 | 7 => Some(next),
        2 | 3 => next.checked_add(usize::try_from(arg).ok()?),
        4 | 5 => {
            let items = if major == 5 { arg.checked_mul(2)? } else { arg };
            for _ in 0..items {
                next = cbor_skip(data, next, depth + 1)?;
            }
            Some(next)
        }
        6 => cbor_skip(data, next, depth + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attestation_object(flags: u8, aaguid: [u8; 16]) -> Vec<u8> {
        let mut auth = vec![0u8; 32];
        auth.push(flags);
        auth.extend([0, 0, 0, 1]);
        auth.extend(aaguid);
        auth.extend([0, 16]);
        auth.extend([7u8; 16]);
        // {"fmt": "none", "attStmt": {"x": [1, h'00']}, "authData": h'...'}
        let mut out = vec![0xa3, 0x63];
        out.extend(b"fmt");
        out.push(0x64);
        out.extend(b"none");
        out.push(0x67);
        out.extend(b"attStmt");
        out.extend([0xa1, 0x61, b'x', 0x82, 0x01, 0x41, 0x00]);
        out.push(0x68);
        out.extend(b"authData");
        out.push(0x58);
        out.push(u8::try_from(auth.len()).unwrap_or(0));
        out.extend(auth);
        out
    }

    #[test]
    fn reads_the_aaguid_from_attested_credential_data() {
        let id = [
            0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1,
            0x54, 0xa8,
        ];
        assert_eq!(
            aaguid_of(&attestation_object(0x45, id)).map(|u| u.hyphenated().to_string()),
            Some("cb69481e-8ff7-4039-93ec-0a2729a154a8".to_owned())
        );
        // All zeros (attestation "none" in most browsers) is "not disclosed".
        assert_eq!(aaguid_of(&attestation_object(0x45, [0; 16])), None);
        // Without the AT flag there is no attested credential data to read.
        assert_eq!(aaguid_of(&attestation_object(0x05, id)), None);
        // Garbage and truncation are refused, not panicked on.
        assert_eq!(aaguid_of(&[0xa1, 0x68]), None);
        let whole = attestation_object(0x45, id);
        assert_eq!(aaguid_of(&whole[..whole.len() - 30]), None);
    }

    #[test]
    fn registration_asks_for_a_discoverable_key_and_direct_attestation_with_an_allowlist() {
        let url = Url::parse("http://localhost:3000").unwrap();
        let user = User {
            user_id: Uuid::new_v4().to_string(),
            username: "alice".into(),
            display_name: "Alice".into(),
            role: crate::identity::Role::Engineer,
            created_at: 0,
            groups: Vec::new(),
        };
        let (plain, state) = Passkeys::new(&url)
            .unwrap()
            .start_registration(&user, &[])
            .unwrap();
        let selection = &plain["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["residentKey"], "required");
        assert_eq!(selection["requireResidentKey"], true);
        assert_eq!(selection["userVerification"], "required");
        assert_ne!(plain["publicKey"]["attestation"], "direct");
        assert!(matches!(state, RegistrationState::Open(_)));
        let strict = Passkeys::new(&url)
            .unwrap()
            .with_allowlist(crate::identity::authenticators::tests::yubikey_list());
        let (direct, state) = strict.start_registration(&user, &[]).unwrap();
        assert_eq!(direct["publicKey"]["attestation"], "direct");
        assert!(matches!(state, RegistrationState::Attested(_)));
        // Asked for, not insisted on: keys without credProtect still register (UV is checked).
        assert_eq!(
            direct["publicKey"]["extensions"]["enforceCredentialProtectionPolicy"],
            false
        );
        assert_eq!(
            direct["publicKey"]["authenticatorSelection"]["residentKey"],
            "required"
        );
    }

    #[test]
    fn unknown_usernames_get_options_shaped_like_real_ones() {
        let passkeys = Passkeys::new(&Url::parse("http://localhost:3000").unwrap()).unwrap();
        // Many usernames: the generator's empty draws must never show.
        for n in 0..200 {
            let d = passkeys.decoy_authentication(&format!("user{n}")).unwrap();
            assert!(
                !d["publicKey"]["allowCredentials"]
                    .as_array()
                    .unwrap()
                    .is_empty(),
                "user{n}: {d}"
            );
        }
        let decoy = passkeys.decoy_authentication("nobody@example.com").unwrap();
        let again = passkeys.decoy_authentication("nobody@example.com").unwrap();
        let (real, _) = passkeys.start_authentication(&[]).unwrap();
        let keys = |v: &Value| {
            let mut k = v["publicKey"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            k.sort();
            (k, v.as_object().map(|m| m.len()))
        };
        assert_eq!(keys(&decoy), keys(&real));
        assert_eq!(decoy["publicKey"]["userVerification"], "required");
        let list = decoy["publicKey"]["allowCredentials"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!list.is_empty(), "a decoy names credentials: {decoy}");
        assert_eq!(
            list,
            again["publicKey"]["allowCredentials"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            "stable per username"
        );
        assert_ne!(
            decoy["publicKey"]["challenge"],
            again["publicKey"]["challenge"]
        );
    }
}
