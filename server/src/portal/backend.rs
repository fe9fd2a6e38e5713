//! The portal's server side as the Leptos app sees it ([`app::backend::PortalBackend`]).

use app::backend::{session_keys, PortalBackend, PortalError};
use app::model::{ChallengeAccess, ChallengeSummary, ChallengeView, GrantView, Viewer};
use tower_sessions::Session;

use super::diff::object_diff;
use crate::challenges::{is_code, Challenge};
use crate::clock;
use crate::grants::Grant;
use crate::identity::oidc::OidcIdentity;
use crate::identity::setup::token_hash;
use crate::identity::User;
use crate::policy::GrantScope;
use crate::state::AppState;
use crate::store::StoreError;

/// Absolute session lifetime, whatever the activity.
pub const ABSOLUTE_TIMEOUT_SECS: i64 = 12 * 3600;

/// Implements the app's backend over the shared state.
pub struct Backend(pub AppState);

fn unavailable(e: StoreError) -> PortalError {
    tracing::error!(error = %e, "portal store error");
    PortalError::Unavailable
}

/// The signed-in person behind a session, honouring the absolute timeout: a local account, or the
/// identity an OpenID Provider vouched for (as a [`User`] that exists only in the session).
pub async fn signed_in(state: &AppState, session: &Session) -> Result<Option<User>, StoreError> {
    let user_id = session
        .get::<String>(session_keys::USER_ID)
        .await
        .ok()
        .flatten();
    let oidc = match (&user_id, &state.oidc) {
        (None, Some(_)) => oidc_identity(session).await,
        _ => None,
    };
    let login_time = session
        .get::<i64>(session_keys::LOGIN_TIME)
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    if user_id.is_none() && oidc.is_none() {
        return Ok(None);
    }
    if clock::now() - login_time > ABSOLUTE_TIMEOUT_SECS {
        let _ = session.flush().await;
        return Ok(None);
    }
    match (user_id, oidc) {
        (Some(user_id), _) => state.store.user_by_id(&user_id).await,
        (None, identity) => Ok(identity.map(|i| i.as_user())),
    }
}

/// The OIDC identity of this session, if it was signed in through the identity provider.
pub async fn oidc_identity(session: &Session) -> Option<OidcIdentity> {
    session
        .get::<OidcIdentity>(session_keys::OIDC_IDENTITY)
        .await
        .ok()
        .flatten()
}

/// What a grant of this scope covers, in words.
pub fn scope_text(scope: GrantScope) -> &'static str {
    match scope {
        GrantScope::Request => "exactly this request",
        GrantScope::Object => "changes to this object",
        GrantScope::Namespace => "changes in this namespace",
    }
}

fn grant_view(grant: &Grant) -> GrantView {
    GrantView {
        id: grant.id.clone(),
        scope: grant.scope.as_str().to_owned(),
        scope_text: scope_text(grant.scope).to_owned(),
        expires_at: clock::timestamp_utc(grant.expires_at),
        uses: match grant.uses_left {
            None => "unlimited until expiry".to_owned(),
            Some(0) => "used".to_owned(),
            Some(1) => "1 use left".to_owned(),
            Some(n) => format!("{n} uses left"),
        },
        token: grant.token.clone(),
    }
}

fn title(c: &Challenge) -> String {
    let r = &c.request;
    let place = match (r.namespace.is_empty(), r.name.is_empty()) {
        (true, _) => r.name.clone(),
        (false, true) => r.namespace.clone(),
        (false, false) => format!("{}/{}", r.namespace, r.name),
    };
    format!("{} {} {place}", r.operation, r.resource_label())
}

#[async_trait::async_trait]
impl PortalBackend for Backend {
    async fn viewer(&self, session: &Session) -> Result<Option<Viewer>, PortalError> {
        let user = signed_in(&self.0, session).await.map_err(unavailable)?;
        let oidc = user.is_some() && oidc_identity(session).await.is_some();
        Ok(user.map(|u| Viewer {
            username: u.username,
            display_name: u.display_name,
            role: u.role.as_str().to_owned(),
            oidc,
        }))
    }

    async fn challenge(
        &self,
        viewer: Option<&Viewer>,
        code: &str,
    ) -> Result<ChallengeAccess, PortalError> {
        if !is_code(code) {
            return Ok(ChallengeAccess::NotFound);
        }
        let Some(viewer) = viewer else {
            return Ok(ChallengeAccess::SignInRequired);
        };
        let Some(c) = self.0.store.challenge(code).await.map_err(unavailable)? else {
            return Ok(ChallengeAccess::NotFound);
        };
        if c.request.username != viewer.username {
            return Ok(ChallengeAccess::NotYours {
                owner: c.request.username,
            });
        }
        let grant = match &c.grant_id {
            Some(id) => self.0.store.grant(id).await.map_err(unavailable)?,
            None => None,
        };
        let now = clock::now();
        let r = &c.request;
        Ok(ChallengeAccess::Owner(Box::new(ChallengeView {
            code: c.code.clone(),
            status: c.status_at(now).as_str().to_owned(),
            guardrail: c.guardrail.clone(),
            message: c.message.clone(),
            username: r.username.clone(),
            operation: r.operation.clone(),
            resource: r.resource_label(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            cluster: c.cluster.clone(),
            created_at: clock::timestamp_utc(c.created_at),
            expires_at: clock::hhmm_utc(c.expires_at),
            scope_text: scope_text(c.scope).to_owned(),
            diff: object_diff(&r.kind, r.old_object.as_ref(), r.object.as_ref()),
            grant: grant.as_ref().map(grant_view),
            confirm_with_idp: viewer.oidc && self.0.oidc.is_some(),
        })))
    }

    async fn challenges_of(&self, viewer: &Viewer) -> Result<Vec<ChallengeSummary>, PortalError> {
        let list = self
            .0
            .store
            .challenges_of(&viewer.username, 50)
            .await
            .map_err(unavailable)?;
        let now = clock::now();
        Ok(list
            .iter()
            .map(|c| ChallengeSummary {
                code: c.code.clone(),
                status: c.status_at(now).as_str().to_owned(),
                guardrail: c.guardrail.clone(),
                title: title(c),
                created_at: clock::timestamp_utc(c.created_at),
            })
            .collect())
    }

    async fn setup_link_valid(&self, token: &str) -> Result<bool, PortalError> {
        self.0
            .store
            .setup_token_valid(&token_hash(token), clock::now())
            .await
            .map_err(unavailable)
    }

    fn oidc_enabled(&self) -> bool {
        self.0.oidc.is_some()
    }
}
