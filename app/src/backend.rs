//! The server side of the portal as the app sees it. The `server` crate implements [`PortalBackend`]
//! and provides it as context, so pages reach the store without the app depending on the server crate.

#[cfg(feature = "ssr")]
pub use ssr::*;

/// Session keys shared by the app and the server.
pub mod session_keys {
    /// Signed-in account id.
    pub const USER_ID: &str = "user_id";
    /// Unix seconds of the last authentication (login or step-up).
    pub const AUTH_TIME: &str = "auth_time";
    /// Unix seconds the session was created at login (absolute timeout).
    pub const LOGIN_TIME: &str = "login_time";
    /// Unix milliseconds of the same login, against the "end all sessions" cut-off.
    pub const LOGIN_TIME_MS: &str = "login_time_ms";
    /// The identity an OpenID Provider vouched for (OIDC sessions have no local account id).
    pub const OIDC_IDENTITY: &str = "oidc_identity";
    /// Synchronizer token every state-changing request must present (rotated with the session id).
    pub const CSRF_TOKEN: &str = "csrf_token";
}

/// Name of the hidden form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// Header that carries the CSRF token on `fetch` calls.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[cfg(feature = "ssr")]
mod ssr {
    use std::sync::Arc;

    use leptos::prelude::*;
    use tower_sessions::Session;

    use crate::model::{
        AccountAccess, ChallengeAccess, ChallengeSummary, GrantRow, GuardrailsAccess, QueueAccess,
        ReviewAccess, SetupInvitation, UsersAccess, VersionsAccess, Viewer,
    };

    /// This request's CSRF token, put in the request extensions by the server for the page to embed.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CsrfToken(pub String);

    /// What went wrong on the server; the text is safe to show.
    #[derive(Debug, thiserror::Error)]
    pub enum PortalError {
        /// The store failed (details are logged by the implementation).
        #[error("the portal could not reach its database; try again shortly")]
        Unavailable,
        /// Not allowed.
        #[error("{0}")]
        Forbidden(String),
        /// Nobody is signed in.
        #[error("sign in first")]
        Unauthenticated,
        /// Input the person can fix.
        #[error("{0}")]
        Invalid(String),
        /// Heavy work (a large diff) is queued past its wait; the page can be reloaded.
        #[error("the portal is busy; try again in a moment")]
        Busy,
    }

    impl PortalError {
        /// The HTTP status a server function answers with.
        pub fn status(&self) -> http::StatusCode {
            match self {
                PortalError::Unavailable | PortalError::Busy => {
                    http::StatusCode::SERVICE_UNAVAILABLE
                }
                PortalError::Forbidden(_) => http::StatusCode::FORBIDDEN,
                PortalError::Invalid(_) => http::StatusCode::BAD_REQUEST,
                PortalError::Unauthenticated => http::StatusCode::UNAUTHORIZED,
            }
        }
    }

    /// Turn a backend refusal into a server-function error, with the matching HTTP status (so a
    /// forbidden call answers 403, not 500).
    pub fn refused(e: PortalError) -> ServerFnError {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(e.status());
        }
        ServerFnError::new(e.to_string())
    }

    /// Server-side operations behind the pages.
    #[async_trait::async_trait]
    pub trait PortalBackend: Send + Sync {
        /// The signed-in person, if any (checks idle and absolute timeouts).
        async fn viewer(&self, session: &Session) -> Result<Option<Viewer>, PortalError>;
        /// A challenge as this viewer may see it.
        async fn challenge(
            &self,
            viewer: Option<&Viewer>,
            code: &str,
        ) -> Result<ChallengeAccess, PortalError>;
        /// The viewer's recent challenges.
        async fn challenges_of(
            &self,
            viewer: &Viewer,
        ) -> Result<Vec<ChallengeSummary>, PortalError>;
        /// What a setup link creates, if it still works.
        async fn setup_invitation(
            &self,
            token: &str,
        ) -> Result<Option<SetupInvitation>, PortalError>;
        /// The signed-in person's own passkeys (account page).
        async fn passkeys(&self, session: &Session) -> Result<AccountAccess, PortalError>;
        /// Whether signing in through an OpenID Provider is configured.
        fn oidc_enabled(&self) -> bool {
            false
        }
        /// Every live grant (admins and auditors).
        async fn live_grants(&self, session: &Session) -> Result<Vec<GrantRow>, PortalError>;
        /// What waits for approvers, as this viewer's queue shows it.
        async fn approval_queue(
            &self,
            session: &Session,
            with_break_glass: bool,
        ) -> Result<QueueAccess, PortalError>;
        /// One request under review by this viewer.
        async fn approval_review(
            &self,
            session: &Session,
            viewer: Option<&Viewer>,
            code: &str,
        ) -> Result<ReviewAccess, PortalError>;
        /// Every local account (admins only).
        async fn users(&self, session: &Session) -> Result<UsersAccess, PortalError>;
        /// Replace an account's groups (admins only); audited. Returns the groups as stored.
        async fn set_groups(
            &self,
            session: &Session,
            username: &str,
            groups: Vec<String>,
        ) -> Result<Vec<String>, PortalError>;
        /// Invite someone to a new local account (admins only); audited. Returns the one-time link.
        async fn invite(
            &self,
            session: &Session,
            username: &str,
            role: &str,
            groups: Vec<String>,
        ) -> Result<String, PortalError>;
        /// Give an account another role (admins only, never their own); audited.
        async fn set_role(
            &self,
            session: &Session,
            username: &str,
            role: &str,
        ) -> Result<(), PortalError>;
        /// Disable or enable an account (admins only, never their own); audited. `Ok(false)`
        /// when it already was.
        async fn set_disabled(
            &self,
            session: &Session,
            username: &str,
            disabled: bool,
        ) -> Result<bool, PortalError>;
        /// The guardrails in force with their last change and trip counts (admins, approvers and
        /// auditors).
        async fn guardrails(&self, session: &Session) -> Result<GuardrailsAccess, PortalError>;
        /// The saved guardrail versions, newest first, and versions `from` and `to` compared when
        /// both are given (same readers as [`PortalBackend::guardrails`]).
        async fn guardrail_versions(
            &self,
            session: &Session,
            compare: Option<(i64, i64)>,
        ) -> Result<VersionsAccess, PortalError>;
        /// Revoke a grant (admins only); `Ok(false)` when it was no longer live.
        async fn revoke_grant(
            &self,
            session: &Session,
            grant_id: &str,
        ) -> Result<bool, PortalError>;
    }

    /// The backend from context.
    pub fn backend() -> Result<Arc<dyn PortalBackend>, ServerFnError> {
        use_context::<Arc<dyn PortalBackend>>()
            .ok_or_else(|| ServerFnError::new("portal backend missing"))
    }

    /// The request's session.
    pub async fn session() -> Result<Session, ServerFnError> {
        leptos_axum::extract::<Session>()
            .await
            .map_err(|e| ServerFnError::new(e.to_string()))
    }

    /// The signed-in person for this request.
    pub async fn viewer() -> Result<Option<Viewer>, ServerFnError> {
        backend()?
            .viewer(&session().await?)
            .await
            .map_err(|e| ServerFnError::new(e.to_string()))
    }
}
