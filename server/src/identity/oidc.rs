//! Signing in and stepping up through an OpenID Provider (openidconnect 4): discovery, authorization
//! code with PKCE, `state` and `nonce`, and ID-token checks of `acr`, `amr` and `auth_time` with
//! RFC 9470 semantics (`acr_values` and `max_age` asked for, then verified on return — a provider may
//! ignore both, so the answer is what counts).
//!
//! Flow state never leaves the server: [`PendingFlow`] lives in the server-side session.

use std::collections::HashMap;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    reqwest, AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, Client,
    ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdTokenClaims, IdTokenFields, IdTokenVerifier, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use url::Url;

use super::authz::RoleMapping;
use super::{Role, User};

/// Path of the redirect URI on the portal.
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";

/// A flow not finished within this time is refused (the person can start again).
pub const FLOW_TTL_SECS: i64 = 10 * 60;

/// Provider metadata and keys are fetched again after this long (key rotation).
const REDISCOVER_AFTER_SECS: i64 = 15 * 60;

/// Clock skew tolerated between the provider and us for `auth_time`.
const SKEW_SECS: i64 = 5;

/// `countersign serve` flags for OIDC. All optional: without an issuer OIDC is off.
#[derive(Debug, Clone, clap::Args)]
pub struct OidcArgs {
    /// OpenID Provider issuer URL (exactly as in its discovery document). OIDC is off without it.
    #[arg(long, env = "COUNTERSIGN_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Client id registered at the provider (redirect URI: PUBLIC_URL/auth/oidc/callback).
    #[arg(long, env = "COUNTERSIGN_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// Client secret; omit for a public client (PKCE is used either way). Never printed.
    #[arg(long, env = "COUNTERSIGN_OIDC_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    pub oidc_client_secret: Option<SecretString>,
    /// Scopes to ask for besides `openid` (comma-separated or repeated).
    #[arg(
        long,
        env = "COUNTERSIGN_OIDC_SCOPES",
        value_delimiter = ',',
        default_value = "profile,email"
    )]
    pub oidc_scopes: Vec<String>,
    /// `acr` values that count as multi-factor; sent as `acr_values` on step-up (repeatable).
    #[arg(
        long = "oidc-mfa-acr",
        env = "COUNTERSIGN_OIDC_MFA_ACR",
        value_delimiter = ','
    )]
    pub oidc_mfa_acr: Vec<String>,
    /// ID-token claim holding the Kubernetes username (as the API server's --oidc-username-claim).
    #[arg(long, env = "COUNTERSIGN_OIDC_USERNAME_CLAIM", default_value = "sub")]
    pub oidc_username_claim: String,
    /// Prefix for usernames; default as the API server: none for `email`, else `ISSUER#`; `-` for none.
    #[arg(long, env = "COUNTERSIGN_OIDC_USERNAME_PREFIX")]
    pub oidc_username_prefix: Option<String>,
    /// ID-token claim holding the groups (a string or a list of strings).
    #[arg(long, env = "COUNTERSIGN_OIDC_GROUPS_CLAIM")]
    pub oidc_groups_claim: Option<String>,
    /// Prefix for group names.
    #[arg(long, env = "COUNTERSIGN_OIDC_GROUPS_PREFIX", default_value = "")]
    pub oidc_groups_prefix: String,
    /// Portal role for members of a group, `ROLE=GROUP` (repeatable; the group as mapped, prefix
    /// included). Roles: engineer, approver, admin, auditor; the strongest match wins.
    #[arg(
        long = "oidc-role-group",
        env = "COUNTERSIGN_OIDC_ROLE_GROUPS",
        value_delimiter = ','
    )]
    pub oidc_role_groups: Vec<String>,
    /// Portal role of identity-provider users in none of the mapped groups.
    #[arg(
        long,
        env = "COUNTERSIGN_OIDC_DEFAULT_ROLE",
        default_value = "engineer"
    )]
    pub oidc_default_role: String,
}

fn secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s.to_owned()))
}

/// How ID-token claims become a Kubernetes identity (the API server's `--oidc-*` knobs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    /// Claim with the username.
    pub username_claim: String,
    /// Prefix put before it (already resolved from the API server's defaults).
    pub username_prefix: String,
    /// Claim with the groups, if any.
    pub groups_claim: Option<String>,
    /// Prefix put before each group.
    pub groups_prefix: String,
    /// Portal roles by group.
    pub roles: RoleMapping,
}

/// Validated OIDC configuration.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Issuer.
    pub issuer: IssuerUrl,
    /// Client id.
    pub client_id: String,
    /// Client secret (confidential client) — its `Debug` is redacted.
    pub client_secret: Option<SecretString>,
    /// Scopes besides `openid`.
    pub scopes: Vec<String>,
    /// `acr` values counted as multi-factor.
    pub mfa_acr: Vec<String>,
    /// Claim mapping.
    pub claims: ClaimMapping,
}

impl OidcArgs {
    /// The configuration, `None` when no issuer is set.
    pub fn config(&self) -> Result<Option<OidcConfig>, String> {
        let Some(issuer) = self.oidc_issuer.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let issuer = IssuerUrl::new(issuer.to_owned())
            .map_err(|e| format!("--oidc-issuer {issuer}: {e}"))?;
        let client_id = self
            .oidc_client_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or("--oidc-issuer needs --oidc-client-id")?;
        let username_prefix = match self.oidc_username_prefix.as_deref() {
            Some("-") => String::new(),
            Some(p) => p.to_owned(),
            None if self.oidc_username_claim == "email" => String::new(),
            None => format!("{}#", issuer.as_str()),
        };
        Ok(Some(OidcConfig {
            issuer,
            client_id,
            client_secret: self.oidc_client_secret.clone(),
            scopes: self
                .oidc_scopes
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty() && s != "openid")
                .collect(),
            mfa_acr: self.oidc_mfa_acr.clone(),
            claims: ClaimMapping {
                username_claim: self.oidc_username_claim.clone(),
                username_prefix,
                groups_claim: self.oidc_groups_claim.clone().filter(|s| !s.is_empty()),
                groups_prefix: self.oidc_groups_prefix.clone(),
                roles: RoleMapping::parse(&self.oidc_role_groups, &self.oidc_default_role)?,
            },
        }))
    }
}

/// Why an OIDC round trip failed. The message is safe to show and to audit (it never holds tokens).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Discovery or key download failed.
    #[error("the identity provider could not be reached: {0}")]
    Unavailable(String),
    /// The provider answered the authorization request with an error.
    #[error("the identity provider refused: {0}")]
    Provider(String),
    /// The `state` did not match the flow this session started.
    #[error("the sign-in response does not belong to this browser's request (state mismatch)")]
    State,
    /// No flow in the session, or it is too old.
    #[error("no sign-in was in progress in this browser, or it took too long")]
    NoFlow,
    /// The code exchange failed.
    #[error("the authorization code was not accepted by the identity provider: {0}")]
    Exchange(String),
    /// The token response had no ID token.
    #[error("the identity provider sent no ID token")]
    NoIdToken,
    /// Nonce mismatch.
    #[error("the ID token's nonce does not match this sign-in: {0}")]
    Nonce(String),
    /// Issuer mismatch.
    #[error("the ID token was issued by another provider: {0}")]
    Issuer(String),
    /// Not multi-factor.
    #[error("the identity provider did not confirm a second factor: {0}")]
    NotMultiFactor(String),
    /// `auth_time` missing, in the future or older than the freshness asked for.
    #[error("the authentication is not fresh enough: {0}")]
    Stale(String),
    /// Signature, audience, expiry and the like.
    #[error("the ID token was not accepted: {0}")]
    Token(String),
    /// The mapped username is missing or unusable.
    #[error("the ID token has no usable `{0}` claim for the Kubernetes username")]
    Username(String),
}

impl OidcError {
    /// A short, fixed reason code the portal turns into a message (never free text in a URL).
    pub fn reason(&self) -> &'static str {
        match self {
            OidcError::Unavailable(_) => "unavailable",
            OidcError::Provider(_) => "provider",
            OidcError::State => "state",
            OidcError::NoFlow => "flow",
            OidcError::Exchange(_) | OidcError::NoIdToken | OidcError::Token(_) => "token",
            OidcError::Nonce(_) => "nonce",
            OidcError::Issuer(_) => "issuer",
            OidcError::NotMultiFactor(_) => "not_mfa",
            OidcError::Stale(_) => "stale",
            OidcError::Username(_) => "username",
        }
    }
}

/// Why a flow was started, and where it returns to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Purpose {
    /// Sign in, then go to this same-site path.
    SignIn {
        /// Same-site path.
        next: String,
    },
    /// Step up for this challenge.
    StepUp {
        /// Challenge code.
        code: String,
        /// Why, for an approval guardrail (checked before the redirect).
        #[serde(default)]
        reason: Option<String>,
        /// Break the glass instead of asking approvers.
        #[serde(default)]
        break_glass: bool,
    },
    /// An approver's decision on this challenge, made once the provider vouched for them again.
    Decide {
        /// Challenge code.
        code: String,
        /// Approve or reject.
        decision: crate::challenges::ApprovalDecision,
        /// What they said.
        reason: String,
    },
}

/// What a step-up asks the provider for (RFC 9470).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepUpDemand {
    /// `max_age`: the guardrail's freshness.
    pub max_age_secs: u64,
    /// Send `prompt=login`: the current sign-in lacks the level, and `acr_values` is only a wish.
    pub force_login: bool,
}

/// A flow in progress, kept in the server-side session between the redirect and the callback.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingFlow {
    /// `state` sent.
    pub state: String,
    nonce: String,
    pkce_verifier: String,
    /// Why.
    pub purpose: Purpose,
    /// `max_age` asked for (step-up).
    pub max_age_secs: Option<u64>,
    /// Unix seconds.
    pub started_at: i64,
}

impl PendingFlow {
    /// Whether the `state` returned to the callback is the one this flow sent (constant time).
    pub fn state_matches(&self, returned: Option<&str>) -> bool {
        returned.is_some_and(|r| constant_time_eq(r.as_bytes(), self.state.as_bytes()))
    }
}

impl std::fmt::Debug for PendingFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingFlow")
            .field("purpose", &self.purpose)
            .field("max_age_secs", &self.max_age_secs)
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

/// Who the provider says signed in, mapped to Kubernetes, and how they authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcIdentity {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// Mapped Kubernetes username (what challenges are matched against).
    pub username: String,
    /// Mapped Kubernetes groups.
    pub groups: Vec<String>,
    /// `name`, else the username.
    pub display_name: String,
    /// `auth_time` (unix seconds; the time of the code exchange when the provider sent none).
    pub auth_time: i64,
    /// `acr`.
    pub acr: Option<String>,
    /// `amr`.
    pub amr: Vec<String>,
    /// Portal role, from the groups by `--oidc-role-group`.
    #[serde(default = "engineer")]
    pub role: Role,
}

fn engineer() -> Role {
    Role::Engineer
}

impl OidcIdentity {
    /// The portal's view of this person. OIDC users are not local accounts: their id is derived
    /// from issuer and subject, and their role comes from their groups.
    pub fn as_user(&self) -> User {
        User {
            user_id: format!("oidc:{}#{}", self.issuer, self.subject),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            groups: self.groups.clone(),
            created_at: self.auth_time,
        }
    }

    /// Whether this authentication counts as multi-factor.
    pub fn multi_factor(&self, mfa_acr: &[String]) -> bool {
        is_multi_factor(self.acr.as_deref(), &self.amr, mfa_acr)
    }
}

/// `amr` values (RFC 8176) proving possession of something.
const POSSESSION_AMR: &[&str] = &["hwk", "swk", "otp", "sms", "tel", "sc", "pop"];
/// `amr` values proving knowledge or inherence.
const OTHER_FACTOR_AMR: &[&str] = &[
    "pwd", "pin", "kba", "fpt", "face", "iris", "retina", "vbm", "user",
];

/// Multi-factor: an `acr` from the configured set, or an `amr` that says so (`mfa`, `mca`) or
/// names a possession factor together with a knowledge or inherence one (`pwd` + `hwk`).
pub fn is_multi_factor(acr: Option<&str>, amr: &[String], mfa_acr: &[String]) -> bool {
    if acr.is_some_and(|a| mfa_acr.iter().any(|m| m == a)) {
        return true;
    }
    let has = |set: &[&str]| amr.iter().any(|m| set.contains(&m.as_str()));
    has(&["mfa", "mca"]) || (has(POSSESSION_AMR) && has(OTHER_FACTOR_AMR))
}

/// The `auth_time` rule: present, not in the future, and when a freshness applies, within it.
pub fn check_auth_time(
    auth_time: Option<i64>,
    max_age: Option<u64>,
    now: i64,
) -> Result<(), String> {
    let Some(at) = auth_time else {
        return match max_age {
            Some(_) => Err("the ID token has no auth_time although max_age was asked for".into()),
            None => Ok(()),
        };
    };
    if at > now + SKEW_SECS {
        return Err(format!("auth_time {at} is in the future (now {now})"));
    }
    if let Some(max) = max_age {
        let age = now - at;
        if age > max as i64 + SKEW_SECS {
            return Err(format!(
                "the last authentication was {age}s ago; this guardrail needs one within {max}s"
            ));
        }
    }
    Ok(())
}

/// The `acr` rule of a step-up: the level must be one of the configured multi-factor values.
pub fn check_acr(acr: Option<&str>, mfa_acr: &[String]) -> Result<(), String> {
    match acr {
        Some(a) if mfa_acr.iter().any(|m| m == a) => Ok(()),
        Some(a) => Err(format!("acr `{a}` is not a multi-factor level")),
        None => Err("the ID token has no acr".into()),
    }
}

/// Claims beyond the standard ones (custom username and groups claims).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExtraClaims(HashMap<String, serde_json::Value>);

impl openidconnect::AdditionalClaims for ExtraClaims {}

type Claims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;
type TokenFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<TokenFields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The relying party.
pub struct Oidc {
    config: OidcConfig,
    redirect: RedirectUrl,
    http: reqwest::Client,
    /// Discovered lazily (the portal starts even when the provider is down) and refreshed.
    provider: Mutex<Option<(std::sync::Arc<OidcClient>, i64)>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Oidc {
    /// A relying party whose redirect URI is on `public_url`.
    pub fn new(config: OidcConfig, public_url: &Url) -> Result<Self, String> {
        let redirect = RedirectUrl::new(format!(
            "{}{CALLBACK_PATH}",
            public_url.as_str().trim_end_matches('/')
        ))
        .map_err(|e| format!("redirect URI: {e}"))?;
        // No redirects: a provider's endpoint answering with a redirect must not send the code or
        // client credentials elsewhere (SSRF).
        let http = reqwest::ClientBuilder::new()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            config,
            redirect,
            http,
            provider: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    async fn client(&self, now: i64) -> Result<std::sync::Arc<OidcClient>, OidcError> {
        let mut cached = self.provider.lock().await;
        if let Some((client, at)) = cached.as_ref() {
            if now - at < REDISCOVER_AFTER_SECS {
                return Ok(client.clone());
            }
        }
        // discover_async checks that the document's `issuer` equals the configured one.
        let metadata = CoreProviderMetadata::discover_async(self.config.issuer.clone(), &self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %error_chain(&e), "OIDC discovery failed");
                OidcError::Unavailable(error_chain(&e))
            })?;
        let client = OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            self.config
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(self.redirect.clone());
        let client = std::sync::Arc::new(client);
        *cached = Some((client.clone(), now));
        Ok(client)
    }

    /// The authorization URL to send the browser to, and the flow to keep in the session.
    pub async fn begin(
        &self,
        purpose: Purpose,
        step_up: Option<StepUpDemand>,
        now: i64,
    ) -> Result<(Url, PendingFlow), OidcError> {
        let client = self.client(now).await?;
        let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(self.config.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(pkce_challenge);
        if let Some(demand) = step_up {
            for acr in &self.config.mfa_acr {
                request =
                    request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
            }
            request = request.set_max_age(Duration::from_secs(demand.max_age_secs));
            if demand.force_login {
                request = request.add_prompt(CoreAuthPrompt::Login);
            }
        }
        let (url, state, nonce) = request.url();
        Ok((
            url,
            PendingFlow {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: pkce_verifier.secret().clone(),
                purpose,
                max_age_secs: step_up.map(|d| d.max_age_secs),
                started_at: now,
            },
        ))
    }

    /// Finish a flow: check `state`, exchange the code (with the PKCE verifier), verify the ID token
    /// (signature, issuer, audience, expiry, nonce, and — for a step-up — `acr`/`amr` and
    /// `auth_time` within `max_age`), and map the claims.
    pub async fn finish(
        &self,
        flow: &PendingFlow,
        returned_state: &str,
        code: &str,
        now: i64,
    ) -> Result<OidcIdentity, OidcError> {
        if now - flow.started_at > FLOW_TTL_SECS {
            return Err(OidcError::NoFlow);
        }
        if !flow.state_matches(Some(returned_state)) {
            return Err(OidcError::State);
        }
        let client = self.client(now).await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Exchange(error_chain(&e)))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(error_chain(&e)))?;
        let id_token = token.id_token().ok_or(OidcError::NoIdToken)?;
        let nonce = Nonce::new(flow.nonce.clone());
        let step_up = matches!(
            flow.purpose,
            Purpose::StepUp { .. } | Purpose::Decide { .. }
        );
        let max_age = flow.max_age_secs;
        let mfa_acr = &self.config.mfa_acr;

        let verifier = |strict_acr: bool| -> IdTokenVerifier<'_, CoreJsonWebKey> {
            client
                .id_token_verifier()
                // The crate's default accepts any acr: a step-up demands a multi-factor level
                // (or, checked after, an amr that proves one). Sign-in needs no particular level;
                // its acr is recorded and weighed at step-up time.
                .set_auth_context_verifier_fn(move |acr| {
                    if step_up && strict_acr {
                        check_acr(acr.map(|a| a.as_str()), mfa_acr)
                    } else {
                        Ok(())
                    }
                })
                // The crate's default accepts any auth_time: it must not be in the future, and
                // within max_age when one was asked for.
                .set_auth_time_verifier_fn(move |at| {
                    check_auth_time(at.map(|t| t.timestamp()), max_age, now)
                })
        };
        let claims: &Claims = match id_token.claims(&verifier(true), &nonce) {
            Ok(claims) => claims,
            Err(ClaimsVerificationError::InvalidAuthContext(why)) => {
                // Every other check runs again; only the acr rule is swapped for the amr one.
                let claims = id_token
                    .claims(&verifier(false), &nonce)
                    .map_err(claims_error)?;
                if !is_multi_factor(None, &amr_of(claims), mfa_acr) {
                    return Err(OidcError::NotMultiFactor(format!(
                        "{why}, and amr {:?} names no second factor",
                        amr_of(claims)
                    )));
                }
                claims
            }
            Err(e) => return Err(claims_error(e)),
        };
        map_claims(claims, &self.config.claims, now)
    }
}

fn claims_error(e: ClaimsVerificationError) -> OidcError {
    match e {
        ClaimsVerificationError::InvalidNonce(why) => OidcError::Nonce(why),
        ClaimsVerificationError::InvalidIssuer(why) => OidcError::Issuer(why),
        ClaimsVerificationError::InvalidAuthContext(why) => OidcError::NotMultiFactor(why),
        ClaimsVerificationError::InvalidAuthTime(why) => OidcError::Stale(why),
        other => OidcError::Token(error_chain(&other)),
    }
}

fn amr_of(claims: &Claims) -> Vec<String> {
    claims
        .auth_method_refs()
        .map(|v| v.iter().map(|m| m.as_str().to_owned()).collect())
        .unwrap_or_default()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A claim as text: the standard ones through their accessors, others from the extra claims.
fn claim_text(claims: &Claims, name: &str) -> Option<String> {
    match name {
        "sub" => Some(claims.subject().as_str().to_owned()),
        "email" => claims.email().map(|e| e.as_str().to_owned()),
        "preferred_username" => claims.preferred_username().map(|u| u.as_str().to_owned()),
        "name" => claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
        other => match claims.additional_claims().0.get(other)? {
            serde_json::Value::String(s) => Some(s.clone()),
            _ => None,
        },
    }
}

fn map_claims(
    claims: &Claims,
    mapping: &ClaimMapping,
    now: i64,
) -> Result<OidcIdentity, OidcError> {
    let claim = mapping.username_claim.as_str();
    // The API server refuses an unverified email as a username; so do we.
    if claim == "email" && claims.email_verified() == Some(false) {
        return Err(OidcError::Username("email (not verified)".into()));
    }
    let raw = claim_text(claims, claim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OidcError::Username(claim.to_owned()))?;
    let username = format!("{}{raw}", mapping.username_prefix);
    // Kubernetes' own identities are nobody's to confirm for, whatever the identity provider says.
    if super::is_reserved(&username) {
        return Err(OidcError::Username(format!(
            "{claim} (a reserved `system:` name)"
        )));
    }
    let groups = match &mapping.groups_claim {
        None => Vec::new(),
        Some(name) => match claims.additional_claims().0.get(name) {
            Some(serde_json::Value::String(g)) => vec![g.clone()],
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
        .into_iter()
        .map(|g| format!("{}{g}", mapping.groups_prefix))
        // Kubernetes' own groups (`system:masters`) are nobody's to be given by a token, as for
        // local accounts: such a group never makes an approver, a break-glass holder or an owner.
        .filter(|g| {
            let reserved = super::is_reserved(g);
            if reserved {
                tracing::warn!(group = %g, "identity-provider group starting with `system:` ignored");
            }
            !reserved
        })
        .collect(),
    };
    let role = mapping.roles.role_for(&groups);
    let display_name = claim_text(claims, "name")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| username.clone())
        .chars()
        .take(100)
        .collect();
    Ok(OidcIdentity {
        issuer: claims.issuer().as_str().to_owned(),
        subject: claims.subject().as_str().to_owned(),
        username,
        groups,
        display_name,
        auth_time: claims.auth_time().map_or(now, |t| t.timestamp()),
        acr: claims.auth_context_ref().map(|a| a.as_str().to_owned()),
        amr: amr_of(claims),
        role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn multi_factor_by_acr_or_amr() {
        let mfa = s(&["urn:countersign:mfa"]);
        assert!(is_multi_factor(Some("urn:countersign:mfa"), &[], &mfa));
        assert!(!is_multi_factor(
            Some("urn:countersign:pwd"),
            &s(&["pwd"]),
            &mfa
        ));
        assert!(is_multi_factor(
            Some("urn:countersign:pwd"),
            &s(&["pwd", "hwk"]),
            &mfa
        ));
        assert!(is_multi_factor(None, &s(&["mfa"]), &mfa));
        assert!(is_multi_factor(None, &s(&["pin", "otp"]), &mfa));
        assert!(!is_multi_factor(None, &s(&["hwk"]), &mfa));
        assert!(!is_multi_factor(None, &s(&["pwd", "kba"]), &mfa));
        assert!(!is_multi_factor(None, &[], &[]));
    }

    #[test]
    fn auth_time_rules() {
        let now = 1_000_000;
        assert!(check_auth_time(None, None, now).is_ok());
        assert!(check_auth_time(None, Some(300), now).is_err());
        assert!(check_auth_time(Some(now - 299), Some(300), now).is_ok());
        assert!(check_auth_time(Some(now - 400), Some(300), now).is_err());
        assert!(check_auth_time(Some(now + 60), None, now).is_err());
        assert!(check_auth_time(Some(now - 86_400), None, now).is_ok());
    }

    #[test]
    fn acr_rule() {
        let mfa = s(&["urn:countersign:mfa", "phr"]);
        assert!(check_acr(Some("phr"), &mfa).is_ok());
        assert!(check_acr(Some("urn:countersign:pwd"), &mfa).is_err());
        assert!(check_acr(None, &mfa).is_err());
    }

    fn args() -> OidcArgs {
        OidcArgs {
            oidc_issuer: Some("https://idp.example.com".into()),
            oidc_client_id: Some("countersign".into()),
            oidc_client_secret: Some(SecretString::from("hunter2".to_owned())),
            oidc_scopes: s(&["openid", "email"]),
            oidc_mfa_acr: s(&["urn:countersign:mfa"]),
            oidc_username_claim: "sub".into(),
            oidc_username_prefix: None,
            oidc_groups_claim: None,
            oidc_groups_prefix: String::new(),
            oidc_role_groups: Vec::new(),
            oidc_default_role: "engineer".into(),
        }
    }

    #[test]
    fn prefixes_follow_the_api_server() {
        let c = args().config().unwrap().unwrap();
        assert_eq!(c.claims.username_prefix, "https://idp.example.com#");
        assert_eq!(c.scopes, s(&["email"]));
        let mut a = args();
        a.oidc_username_claim = "email".into();
        assert_eq!(a.config().unwrap().unwrap().claims.username_prefix, "");
        a.oidc_username_prefix = Some("-".into());
        a.oidc_username_claim = "preferred_username".into();
        assert_eq!(a.config().unwrap().unwrap().claims.username_prefix, "");
        a.oidc_client_id = None;
        assert!(a.config().is_err());
        a.oidc_issuer = None;
        assert!(a.config().unwrap().is_none());
    }

    fn claims(extra: serde_json::Value, email_verified: Option<bool>) -> Claims {
        let mut json = serde_json::json!({
            "iss": "https://idp.example.com", "aud": "countersign", "exp": 2_000_000_000i64,
            "iat": 1_700_000_000i64, "sub": "alice-sub", "email": "alice@example.com",
            "preferred_username": "alice", "name": "Alice Example",
        });
        if let Some(v) = email_verified {
            json["email_verified"] = v.into();
        }
        if let (Some(map), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
            map.extend(extra.clone());
        }
        serde_json::from_value(json).unwrap()
    }

    fn mapping(claim: &str, prefix: &str, groups: Option<&str>) -> ClaimMapping {
        ClaimMapping {
            username_claim: claim.into(),
            username_prefix: prefix.into(),
            groups_claim: groups.map(str::to_owned),
            groups_prefix: "oidc:".into(),
            roles: RoleMapping::parse(&["admin=oidc:ops".into()], "engineer").unwrap(),
        }
    }

    #[test]
    fn claims_map_to_a_kubernetes_identity() {
        let c = claims(
            serde_json::json!({"groups": ["dev", "ops"], "upn": "a@corp"}),
            Some(true),
        );
        let id = map_claims(&c, &mapping("email", "", Some("groups")), 7).unwrap();
        assert_eq!(id.username, "alice@example.com");
        assert_eq!(id.groups, s(&["oidc:dev", "oidc:ops"]));
        assert_eq!(id.display_name, "Alice Example");
        assert_eq!(id.auth_time, 7, "no auth_time: the time of the exchange");
        assert_eq!(id.role, Role::Admin, "member of the mapped group oidc:ops");
        assert_eq!(id.as_user().role, Role::Admin);
        let id = map_claims(&c, &mapping("sub", "https://idp.example.com#", None), 7).unwrap();
        assert_eq!(id.username, "https://idp.example.com#alice-sub");
        assert!(id.groups.is_empty());
        assert_eq!(id.role, Role::Engineer, "no mapped group: the default role");
        let id = map_claims(&c, &mapping("upn", "", None), 7).unwrap();
        assert_eq!(id.username, "a@corp");
        assert!(matches!(
            map_claims(&c, &mapping("missing", "", None), 7),
            Err(OidcError::Username(_))
        ));
        let single = claims(serde_json::json!({"groups": "dev"}), None);
        let id = map_claims(
            &single,
            &mapping("preferred_username", "", Some("groups")),
            7,
        )
        .unwrap();
        assert_eq!(
            (id.username.as_str(), id.groups),
            ("alice", s(&["oidc:dev"]))
        );
        // An unverified email is no username (as the API server).
        let unverified = claims(serde_json::json!({}), Some(false));
        assert!(map_claims(&unverified, &mapping("email", "", None), 7).is_err());
    }

    #[test]
    fn review2_18_system_groups_from_the_identity_provider_count_for_nothing() {
        let c = claims(
            serde_json::json!({"groups": ["system:masters", "dev"]}),
            None,
        );
        let mut m = mapping("preferred_username", "", Some("groups"));
        m.groups_prefix = String::new();
        let id = map_claims(&c, &m, 7).unwrap();
        assert_eq!(id.groups, s(&["dev"]));
    }

    #[test]
    fn finding_2_a_system_name_from_the_identity_provider_is_refused() {
        let c = claims(
            serde_json::json!({"upn": "system:kube-controller-manager"}),
            None,
        );
        assert!(matches!(
            map_claims(&c, &mapping("upn", "", None), 7),
            Err(OidcError::Username(_))
        ));
        // A prefix that makes it `system:...` is refused as well.
        let c = claims(serde_json::json!({"upn": "node:n1"}), None);
        assert!(map_claims(&c, &mapping("upn", "system:", None), 7).is_err());
    }

    #[test]
    fn the_client_secret_is_not_in_debug_output() {
        let a = args();
        assert!(!format!("{a:?}").contains("hunter2"));
        let c = a.config().unwrap().unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
