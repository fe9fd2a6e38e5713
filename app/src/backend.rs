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
    /// The identity an OpenID Provider vouched for (OIDC sessions have no local account id).
    pub const OIDC_IDENTITY: &str = "oidc_identity";
}

#[cfg(feature = "ssr")]
mod ssr {
    use std::sync::Arc;

    use leptos::prelude::*;
    use tower_sessions::Session;

    use crate::model::{ChallengeAccess, ChallengeSummary, Viewer};

    /// What went wrong on the server; the text is safe to show.
    #[derive(Debug, thiserror::Error)]
    pub enum PortalError {
        /// The store failed (details are logged by the implementation).
        #[error("the portal could not reach its database; try again shortly")]
        Unavailable,
        /// Not allowed.
        #[error("{0}")]
        Forbidden(String),
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
        /// Whether a setup link still works.
        async fn setup_link_valid(&self, token: &str) -> Result<bool, PortalError>;
        /// Whether signing in through an OpenID Provider is configured.
        fn oidc_enabled(&self) -> bool {
            false
        }
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
