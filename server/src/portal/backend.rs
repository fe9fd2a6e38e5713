//! The portal's server side as the Leptos app sees it ([`app::backend::PortalBackend`]).

use app::backend::{session_keys, PortalBackend, PortalError};
use app::model::{
    AccountAccess, ChallengeAccess, ChallengeSummary, ChallengeView, ClosedView, GrantRow,
    GrantView, GuardrailsAccess, InvitationRow, KeyApproval, PasskeyView, QueueAccess,
    ReviewAccess, Revoked, SetupInvitation, Standing, UserRow, UsersAccess, VersionsAccess, Viewer,
};
use std::sync::Arc;

use tower_sessions::Session;

use super::describe::{object_key_title, place, Described};
use super::heavy::Heavy;
use crate::challenges::{is_code, Challenge, ChallengeStatus};
use crate::clock;
use crate::elevation::Revocation;
use crate::grants::Grant;
use crate::identity::authz::{authorize, Denied, Permission};
use crate::identity::models::known_model;
use crate::identity::oidc::OidcIdentity;
use crate::identity::passkeys::Approval;
use crate::identity::setup::token_hash;
use crate::identity::{Role, User};
use crate::policy::GrantScope;
use crate::state::AppState;
use crate::store::StoreError;

/// Absolute session lifetime, whatever the activity.
pub const ABSOLUTE_TIMEOUT_SECS: i64 = 12 * 3600;

/// How many recent challenges the home page lists.
const LIST_LIMIT: i64 = 50;

/// Implements the app's backend over the shared state, with the portal's heavy-work limits.
pub struct Backend(pub AppState, pub Arc<Heavy>);

pub(super) fn unavailable(e: StoreError) -> PortalError {
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
    let local = user_id.is_some();
    let user = match (user_id, oidc) {
        (Some(user_id), _) => state.store.user_by_id(&user_id).await?,
        (None, identity) => identity.map(|i| i.as_user()),
    };
    let Some(user) = user else {
        return Ok(None);
    };
    // "Sign out everywhere" ends every session that signed in at or before it (milliseconds;
    // a session from before they were kept counts from the start of its second).
    if let Some(not_before) = state.store.session_epoch(&user.user_id).await? {
        let login_ms = session
            .get::<i64>(session_keys::LOGIN_TIME_MS)
            .await
            .ok()
            .flatten()
            .unwrap_or(login_time.saturating_mul(1000));
        if login_ms <= not_before {
            let _ = session.flush().await;
            return Ok(None);
        }
    }
    // A disabled account's sessions end at once (finding 13).
    if local && state.store.disabled_at(&user.user_id).await?.is_some() {
        let _ = session.flush().await;
        return Ok(None);
    }
    Ok(Some(user))
}

/// Whether the person behind the session signed in or stepped up within
/// [`super::account::RECENT_SIGN_IN_SECS`].
pub(super) async fn proved_recently(session: &Session) -> bool {
    let mut latest = 0;
    for key in [session_keys::LOGIN_TIME, session_keys::AUTH_TIME] {
        if let Ok(Some(at)) = session.get::<i64>(key).await {
            latest = latest.max(at);
        }
    }
    clock::now() - latest <= super::account::RECENT_SIGN_IN_SECS
}

/// The signed-in person's role, or a refusal when `permission` is not theirs.
pub(super) async fn authorized(
    state: &AppState,
    session: &Session,
    permission: Permission,
) -> Result<User, PortalError> {
    let user = signed_in(state, session).await.map_err(unavailable)?;
    authorize(user.as_ref().map(|u| u.role), permission).map_err(denied)?;
    user.ok_or(PortalError::Unauthenticated)
}

fn denied(d: Denied) -> PortalError {
    match d {
        Denied::Unauthenticated => PortalError::Unauthenticated,
        Denied::Forbidden(..) => PortalError::Forbidden(d.to_string()),
    }
}

/// A challenge as one viewer may see it.
pub(super) enum Visible {
    /// Theirs to see (their own, or a service account's they own).
    Yours(Box<Challenge>),
    /// Somebody else's; `owner` says whose.
    NotYours { owner: String },
    /// No such challenge.
    NotFound,
}

/// The one check of who may see a challenge, for the page and the download alike.
pub(super) async fn visible_challenge(
    state: &AppState,
    username: &str,
    groups: &[String],
    role: Role,
    code: &str,
) -> Result<Visible, PortalError> {
    if !is_code(code) {
        return Ok(Visible::NotFound);
    }
    authorize(Some(role), Permission::ViewOwnChallenges).map_err(denied)?;
    let Some(c) = state.store.challenge(code).await.map_err(unavailable)? else {
        return Ok(Visible::NotFound);
    };
    let identities = &state.identities;
    let subject = &c.request.username;
    if identities.authority(username, groups, subject).is_none() {
        return Ok(Visible::NotYours {
            owner: identities.confirmers_of(subject),
        });
    }
    Ok(Visible::Yours(Box::new(c)))
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

/// Where a grant stands at `now`.
pub fn grant_standing(grant: &Grant, now: i64) -> Standing {
    if grant.revoked_at.is_some() {
        Standing::Revoked
    } else if grant.uses_left == Some(0) {
        Standing::Used
    } else if now >= grant.expires_at {
        Standing::GrantExpired
    } else {
        Standing::Granted
    }
}

/// Where a challenge stands at `now`, given its grant (if the store still has it).
pub(super) fn challenge_standing(c: &Challenge, grant: Option<&Grant>, now: i64) -> Standing {
    match (grant, c.status_at(now)) {
        (Some(g), _) => grant_standing(g, now),
        (None, ChallengeStatus::Pending) => Standing::Waiting,
        (None, ChallengeStatus::Awaiting) => Standing::AwaitingApproval,
        (None, ChallengeStatus::Rejected) => Standing::Rejected,
        (None, ChallengeStatus::Withdrawn) => Standing::Withdrawn,
        // Granted, but retention has let the grant go: it expired long ago.
        (None, ChallengeStatus::Granted) => Standing::GrantExpired,
        (None, _) => Standing::Lapsed,
    }
}

fn grant_view(grant: &Grant, now: i64) -> GrantView {
    GrantView {
        id: grant.id.clone(),
        standing: grant_standing(grant, now),
        scope: grant.scope.as_str().to_owned(),
        scope_text: scope_text(grant.scope).to_owned(),
        created_at: grant.created_at,
        expires_at: grant.expires_at,
        uses_left: grant.uses_left,
        revoked: grant.revoked_at.map(|at| Revoked {
            by: grant
                .revoked_by
                .clone()
                .unwrap_or_else(|| "an administrator".to_owned()),
            at,
        }),
        token: grant.token.clone(),
        break_glass: grant.evidence.break_glass,
    }
}

/// How long before a request was asked again an earlier rejection of it is shown on its page.
const REJECTION_SHOWN_SECS: i64 = 3600;

impl Backend {
    /// A challenge as its page shows it to `viewer` (the requester's page and the approvers'
    /// review show the same).
    pub(super) async fn challenge_view(
        &self,
        mut c: Challenge,
        viewer: &Viewer,
    ) -> Result<ChallengeView, PortalError> {
        let grant = match &c.grant_id {
            Some(id) => self.0.store.grant(id).await.map_err(unavailable)?,
            None => None,
        };
        let now = clock::now();
        let standing = challenge_standing(&c, grant.as_ref(), now);
        let approval = match &c.approval {
            Some(case) => {
                let decisions = self
                    .0
                    .store
                    .approvals_of(&c.code)
                    .await
                    .map_err(unavailable)?;
                let mut view = super::review::approval_view(case, &decisions, viewer);
                // A request asked again after a rejection: its page says so, as the denial did.
                if c.status == ChallengeStatus::Pending {
                    let since = c.created_at - REJECTION_SHOWN_SECS;
                    let store = &self.0.store;
                    let earlier = store
                        .recent_rejection(&c.digest, &c.guardrail, since)
                        .await
                        .map_err(unavailable)?;
                    view.previous_rejection = earlier
                        .and_then(|e| e.approval)
                        .and_then(|a| a.closed)
                        .map(|closed| ClosedView {
                            by: closed.by,
                            at: closed.at,
                            reason: closed.reason,
                        });
                }
                Some(view)
            }
            None => None,
        };
        // Computed once per challenge, a few at a time, off the request threads.
        let (old, new) = (c.request.old_object.take(), c.request.object.take());
        let diff = self
            .1
            .diff(&c.code, &c.request.kind, &c.request.subresource, old, new)
            .await
            .map_err(|_| PortalError::Busy)?;
        let r = &c.request;
        Ok(ChallengeView {
            code: c.code.clone(),
            standing,
            title: Described::from(r).title(),
            place: place(&r.namespace),
            guardrail: c.guardrails_label(),
            message: c.message.clone(),
            username: r.username.clone(),
            operation: r.operation.clone(),
            resource: r.resource_label(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            cluster: c.cluster.clone(),
            created_at: c.created_at,
            expires_at: c.expires_at,
            scope_text: scope_text(c.scope).to_owned(),
            changes: diff.changes.clone(),
            more_changes: diff.more_changes,
            diff: diff.lines.clone(),
            diff_truncated: diff.truncated,
            options: option_lines(r.options.as_ref()),
            grant: grant.as_ref().map(|g| grant_view(g, now)),
            confirm_with_idp: viewer.oidc && self.0.oidc.is_some(),
            approval,
        })
    }
}

#[async_trait::async_trait]
impl PortalBackend for Backend {
    async fn viewer(&self, session: &Session) -> Result<Option<Viewer>, PortalError> {
        let user = signed_in(&self.0, session).await.map_err(unavailable)?;
        let identity = match &user {
            Some(_) => oidc_identity(session).await,
            None => None,
        };
        Ok(user.map(|u| Viewer {
            username: u.username,
            display_name: u.display_name,
            role: u.role.as_str().to_owned(),
            oidc: identity.is_some(),
            // A local account's groups, or those the identity provider asserted.
            groups: identity.map(|i| i.groups).unwrap_or(u.groups),
        }))
    }

    async fn challenge(
        &self,
        viewer: Option<&Viewer>,
        code: &str,
    ) -> Result<ChallengeAccess, PortalError> {
        let Some(viewer) = viewer else {
            if !is_code(code) {
                return Ok(ChallengeAccess::NotFound);
            }
            return Ok(ChallengeAccess::SignInRequired);
        };
        let role = Role::parse(&viewer.role);
        let c =
            match visible_challenge(&self.0, &viewer.username, &viewer.groups, role, code).await? {
                Visible::Yours(c) => c,
                Visible::NotYours { owner } => return Ok(ChallengeAccess::NotYours { owner }),
                Visible::NotFound => return Ok(ChallengeAccess::NotFound),
            };
        let view = self.challenge_view(*c, viewer).await?;
        Ok(ChallengeAccess::Owner(Box::new(view)))
    }

    async fn challenges_of(&self, viewer: &Viewer) -> Result<Vec<ChallengeSummary>, PortalError> {
        authorize(
            Some(Role::parse(&viewer.role)),
            Permission::ViewOwnChallenges,
        )
        .map_err(denied)?;
        // Their own, those under their other usernames and those of service accounts they own.
        let mut list = Vec::new();
        for subject in self
            .0
            .identities
            .subjects_of(&viewer.username, &viewer.groups)
        {
            let found = self.0.store.challenges_of(&subject, LIST_LIMIT).await;
            list.extend(found.map_err(unavailable)?);
        }
        list.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        list.truncate(LIST_LIMIT as usize);
        let now = clock::now();
        let mut rows = Vec::with_capacity(list.len());
        for c in &list {
            let grant = match &c.grant_id {
                Some(id) => self.0.store.grant(id).await.map_err(unavailable)?,
                None => None,
            };
            rows.push(ChallengeSummary {
                code: c.code.clone(),
                standing: challenge_standing(c, grant.as_ref(), now),
                guardrail: c.guardrails_label(),
                title: Described::from(&c.request).title(),
                place: place(&c.request.namespace),
                created_at: c.created_at,
            });
        }
        Ok(rows)
    }

    async fn setup_invitation(&self, token: &str) -> Result<Option<SetupInvitation>, PortalError> {
        let invitation = self
            .0
            .store
            .invitation(&token_hash(token), clock::now())
            .await
            .map_err(unavailable)?;
        Ok(invitation.map(|i| SetupInvitation {
            role: i.role.as_str().to_owned(),
            username: Some(i.username),
        }))
    }

    async fn passkeys(&self, session: &Session) -> Result<AccountAccess, PortalError> {
        let Some(user) = signed_in(&self.0, session).await.map_err(unavailable)? else {
            return Ok(AccountAccess::SignInRequired);
        };
        if oidc_identity(session).await.is_some() {
            return Ok(AccountAccess::IdentityProvider);
        }
        let list = self
            .0
            .store
            .credentials_of(&user.user_id)
            .await
            .map_err(unavailable)?;
        let passkeys = &self.0.passkeys;
        Ok(AccountAccess::Local {
            keys: list
                .into_iter()
                .map(|c| PasskeyView {
                    approval: match passkeys.approval(&c) {
                        Approval::Unrestricted => KeyApproval::Unrestricted,
                        Approval::Approved(model) => KeyApproval::Approved(model),
                        Approval::NotApproved => KeyApproval::NotApproved,
                    },
                    id: c.credential_id,
                    name: c.name,
                    created_at: c.created_at,
                    last_used_at: c.last_used_at,
                    blocked_at: c.blocked_at,
                    model: c.aaguid.as_deref().and_then(known_model).map(str::to_owned),
                    aaguid: c.aaguid,
                })
                .collect(),
            approved_models: passkeys.allowlist().map(|l| l.model_names()),
        })
    }

    fn oidc_enabled(&self) -> bool {
        self.0.oidc.is_some()
    }

    async fn live_grants(&self, session: &Session) -> Result<Vec<GrantRow>, PortalError> {
        authorized(&self.0, session, Permission::ViewGrants).await?;
        let now = clock::now();
        let mut list = self
            .0
            .store
            .all_live_grants(now)
            .await
            .map_err(unavailable)?;
        list.sort_by_key(|g| g.expires_at);
        // Which were issued by break glass, as their tokens said when this process verified them
        // (the grant cache keeps it; a row's own word is not taken).
        for row in &mut list {
            self.0.grants.holds_verified(row);
        }
        Ok(list
            .iter()
            .map(|g| GrantRow {
                break_glass: g.break_glass,
                id: g.id.clone(),
                username: g.username.clone(),
                guardrail: g.guardrail.clone(),
                scope: g.scope.as_str().to_owned(),
                title: object_key_title(&g.object_key),
                place: place(&g.namespace),
                scope_text: scope_text(g.scope).to_owned(),
                expires_at: g.expires_at,
                uses_left: g.uses_left,
            })
            .collect())
    }

    async fn users(&self, session: &Session) -> Result<UsersAccess, PortalError> {
        let admin = match authorized(&self.0, session, Permission::ManageAccounts).await {
            Ok(admin) => admin,
            Err(PortalError::Unauthenticated) => return Ok(UsersAccess::SignInRequired),
            Err(PortalError::Forbidden(_)) => return Ok(UsersAccess::Forbidden),
            Err(e) => return Err(e),
        };
        let store = self.0.store.as_ref();
        let users = store.users().await.map_err(unavailable)?;
        let identities = &self.0.identities;
        let me = identities.person_of(&admin.username);
        let mut accounts = Vec::with_capacity(users.len());
        for u in users {
            // Few accounts on an admin's page: one indexed read each.
            let disabled = store
                .disabled_at(&u.user_id)
                .await
                .map_err(unavailable)?
                .is_some();
            accounts.push(UserRow {
                is_you: identities.person_of(&u.username) == me,
                username: u.username,
                display_name: u.display_name,
                role: u.role.as_str().to_owned(),
                groups: u.groups,
                created_at: u.created_at,
                disabled,
            });
        }
        let invitations = store
            .pending_invitations(clock::now())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|(i, created_at, expires_at)| InvitationRow {
                username: i.username,
                role: i.role.as_str().to_owned(),
                groups: i.groups,
                created_at,
                expires_at,
            })
            .collect();
        Ok(UsersAccess::Users {
            accounts,
            invitations,
        })
    }

    async fn set_groups(
        &self,
        session: &Session,
        username: &str,
        groups: Vec<String>,
    ) -> Result<Vec<String>, PortalError> {
        use crate::identity::accounts;
        let admin = account_admin(&self.0, session, username, "groups").await?;
        let store = self.0.store.as_ref();
        accounts::set_groups(store, username, &groups, &admin.username)
            .await
            .map_err(account_refused)?;
        accounts::clean_groups(&groups).map_err(account_refused)
    }

    async fn invite(
        &self,
        session: &Session,
        username: &str,
        role: &str,
        groups: Vec<String>,
    ) -> Result<String, PortalError> {
        use crate::identity::accounts;
        use crate::identity::setup::Invitation;
        // Inviting hands out a role (admin among them): the same fresh proof as any change.
        let admin = authorized(&self.0, session, Permission::ManageAccounts).await?;
        if !proved_recently(session).await {
            return Err(stale_proof("Inviting someone"));
        }
        let role = known_role(role)?;
        let invitation = Invitation {
            role,
            username: username.trim().to_owned(),
            groups,
        };
        let token = accounts::invite(self.0.store.as_ref(), &invitation, &admin.username)
            .await
            .map_err(account_refused)?;
        Ok(format!(
            "{}/setup/{token}",
            self.0.public_url.as_str().trim_end_matches('/')
        ))
    }

    async fn set_role(
        &self,
        session: &Session,
        username: &str,
        role: &str,
    ) -> Result<(), PortalError> {
        use crate::identity::accounts;
        let admin = account_admin(&self.0, session, username, "role").await?;
        let role = known_role(role)?;
        accounts::set_role(self.0.store.as_ref(), username, role, &admin.username)
            .await
            .map_err(account_refused)?;
        Ok(())
    }

    async fn set_disabled(
        &self,
        session: &Session,
        username: &str,
        disabled: bool,
    ) -> Result<bool, PortalError> {
        use crate::identity::accounts;
        let admin = account_admin(&self.0, session, username, "account").await?;
        accounts::set_disabled(self.0.store.as_ref(), username, disabled, &admin.username)
            .await
            .map_err(account_refused)
    }

    async fn approval_queue(
        &self,
        session: &Session,
        with_break_glass: bool,
    ) -> Result<QueueAccess, PortalError> {
        super::review::queue(self, session, with_break_glass).await
    }

    async fn approval_review(
        &self,
        session: &Session,
        viewer: Option<&Viewer>,
        code: &str,
    ) -> Result<ReviewAccess, PortalError> {
        super::review::review(self, session, viewer, code).await
    }

    async fn guardrails(&self, session: &Session) -> Result<GuardrailsAccess, PortalError> {
        super::guardrails::list(&self.0, session).await
    }

    async fn guardrail_versions(
        &self,
        session: &Session,
        compare: Option<(i64, i64)>,
    ) -> Result<VersionsAccess, PortalError> {
        super::guardrails::versions(&self.0, session, compare).await
    }

    async fn revoke_grant(&self, session: &Session, grant_id: &str) -> Result<bool, PortalError> {
        let admin = authorized(&self.0, session, Permission::RevokeGrant).await?;
        let outcome = self
            .0
            .elevation()
            .revoke(grant_id, &admin.username)
            .await
            .map_err(unavailable)?;
        Ok(outcome == Revocation::Revoked)
    }
}

/// The admin changing `username`'s `what` (groups, role, account): roles, groups and accounts
/// make approvers, break-glass holders and service-account owners, so nobody changes their own,
/// under any of their names (a second admin does), and a session alone is not enough: the admin
/// proved who they are a moment ago.
async fn account_admin(
    state: &AppState,
    session: &Session,
    username: &str,
    what: &str,
) -> Result<User, PortalError> {
    let admin = authorized(state, session, Permission::ManageAccounts).await?;
    let identities = &state.identities;
    if identities.person_of(username) == identities.person_of(&admin.username) {
        return Err(PortalError::Invalid(format!(
            "You cannot change your own {what}; ask another admin."
        )));
    }
    if !proved_recently(session).await {
        return Err(stale_proof(&format!("Changing {what}")));
    }
    Ok(admin)
}

/// What an admin is told when their last sign-in or step-up is too old for an account change.
fn stale_proof(doing: &str) -> PortalError {
    PortalError::Invalid(format!(
        "{doing} needs a fresh sign-in: sign out and in again, then try within {} minutes.",
        super::account::RECENT_SIGN_IN_SECS / 60
    ))
}

/// A role as the portal's forms name it.
fn known_role(role: &str) -> Result<Role, PortalError> {
    Role::from_name(role).ok_or_else(|| {
        PortalError::Invalid(format!(
            "{role:?} is not a role: choose engineer, approver, admin or auditor."
        ))
    })
}

/// An account change refused, in the admin's words (a store failure stays a 503).
fn account_refused(e: crate::identity::accounts::AccountError) -> PortalError {
    match e {
        crate::identity::accounts::AccountError::Store(e) => unavailable(e),
        e => PortalError::Invalid(sentence(&e.to_string())),
    }
}

/// `an account named x exists already` → `An account named x exists already.`
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// The request's options as the grant binds them, one `field: value` each (`propagationPolicy:
/// Orphan`), without the envelope.
fn option_lines(options: Option<&serde_json::Value>) -> Vec<String> {
    let Some(serde_json::Value::Object(bound)) = options.map(crate::admission::digested_options)
    else {
        return Vec::new();
    };
    bound
        .iter()
        .filter(|(k, _)| *k != "kind")
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect()
}
