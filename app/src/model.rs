//! What the portal shows, shared by server and browser.

use serde::{Deserialize, Serialize};

/// The person signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// Username (their Kubernetes username).
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// engineer, approver, admin or auditor.
    pub role: String,
    /// Signed in through the identity provider (so steps up there too).
    #[serde(default)]
    pub oidc: bool,
    /// Groups the identity provider asserted (service-account ownership goes by them).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// One line of the object diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffLine {
    /// ' ' unchanged, '+' added, '-' removed, '@' a hunk header or a note between hunks.
    pub sign: char,
    /// The text.
    pub text: String,
}

/// Where a request stands, in one word a person understands: the same on the challenge page, the
/// home list and the grants page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Standing {
    /// Waiting for the requester's step-up.
    Waiting,
    /// The link expired before anyone confirmed it.
    Lapsed,
    /// A grant that can still admit the retry.
    Granted,
    /// The grant's uses are spent.
    Used,
    /// The grant's time ran out.
    GrantExpired,
    /// An administrator revoked the grant.
    Revoked,
    /// Confirmed by the requester, waiting for approvers.
    AwaitingApproval,
    /// An approver said no.
    Rejected,
    /// The requester took it back.
    Withdrawn,
}

impl Standing {
    /// The badge text.
    pub fn label(self) -> &'static str {
        match self {
            Standing::Waiting => "Waiting for step-up",
            Standing::Lapsed => "Link expired",
            Standing::Granted => "Granted",
            Standing::Used => "Used",
            Standing::GrantExpired => "Grant expired",
            Standing::Revoked => "Revoked",
            Standing::AwaitingApproval => "Waiting for approvers",
            Standing::Rejected => "Rejected",
            Standing::Withdrawn => "Withdrawn",
        }
    }

    /// A stable name for tests and styles (`data-standing`).
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Waiting => "waiting",
            Standing::Lapsed => "lapsed",
            Standing::Granted => "granted",
            Standing::Used => "used",
            Standing::GrantExpired => "grant-expired",
            Standing::Revoked => "revoked",
            Standing::AwaitingApproval => "awaiting",
            Standing::Rejected => "rejected",
            Standing::Withdrawn => "withdrawn",
        }
    }
}

/// One changed field, for the summary above the diff ("spec.replicas 3 → 1").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// `spec.replicas`, `spec.template.spec.containers[0].image`.
    pub path: String,
    /// The value before, shortened; `None` when the field is new.
    pub old: Option<String>,
    /// The value after, shortened; `None` when the field is removed.
    pub new: Option<String>,
}

/// Who revoked a grant, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// Username of the administrator (or `cli`).
    pub by: String,
    /// Unix seconds.
    pub at: i64,
}

/// A grant as its challenge page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    /// Grant id.
    pub id: String,
    /// Granted, used, expired or revoked.
    pub standing: Standing,
    /// request, object or namespace.
    pub scope: String,
    /// What the scope means in words.
    pub scope_text: String,
    /// Issued, unix seconds.
    pub created_at: i64,
    /// Expiry, unix seconds.
    pub expires_at: i64,
    /// Uses left; `None` is unlimited until expiry.
    pub uses_left: Option<i64>,
    /// Set once revoked.
    pub revoked: Option<Revoked>,
    /// The signed token (JWS).
    pub token: String,
    /// Issued by break glass, without approvers.
    #[serde(default)]
    pub break_glass: bool,
}

/// A challenge as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeView {
    /// Code.
    pub code: String,
    /// Where it stands (the grant's state once there is one).
    pub standing: Standing,
    /// What is asked, in words: "Scale deployment api".
    pub title: String,
    /// "in namespace payments" or "cluster-wide".
    pub place: String,
    /// Guardrail name; several, joined by ", ", when one request tripped several.
    pub guardrail: String,
    /// Why the guardrail asks.
    pub message: String,
    /// Kubernetes username.
    pub username: String,
    /// Operation.
    pub operation: String,
    /// `deployments.apps`.
    pub resource: String,
    /// Kind.
    pub kind: String,
    /// Namespace or empty.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The name this Countersign gives the cluster (`--cluster-name`).
    pub cluster: String,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Link expiry, unix seconds.
    pub expires_at: i64,
    /// What the grant will cover.
    pub scope_text: String,
    /// The first changed fields.
    pub changes: Vec<FieldChange>,
    /// How many more fields changed.
    pub more_changes: usize,
    /// Object diff (old → new).
    pub diff: Vec<DiffLine>,
    /// The diff was cut at the page's bounds; the full objects are a download away.
    #[serde(default)]
    pub diff_truncated: bool,
    /// The request's options the grant binds (`propagationPolicy: Orphan`), one per line.
    #[serde(default)]
    pub options: Vec<String>,
    /// The grant, once issued.
    pub grant: Option<GrantView>,
    /// Confirm through the identity provider (an OIDC session) rather than a security key.
    #[serde(default)]
    pub confirm_with_idp: bool,
    /// Approvers and reasons, for an approval guardrail.
    #[serde(default)]
    pub approval: Option<ApprovalView>,
}

/// How an approval guardrail's request stands with its approvers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalView {
    /// The requester must say why.
    pub reason_required: bool,
    /// Fewest characters of that reason.
    pub reason_min: u32,
    /// What the requester said.
    pub reason: Option<String>,
    /// Who confirmed it (the requester, or an owner of its service account).
    pub confirmed_by: Option<String>,
    /// Each group list and who counted towards it.
    pub lists: Vec<ApproverList>,
    /// Every decision so far, in order.
    pub decisions: Vec<DecisionView>,
    /// Who ended it without a grant, when and why.
    pub closed: Option<ClosedView>,
    /// Groups that may break the glass, when the guardrail allows it.
    pub break_glass: Option<Vec<String>>,
    /// The viewer is in one of those groups.
    pub may_break_glass: bool,
    /// The break-glass grant's lifetime, in seconds.
    pub break_glass_ttl_secs: i64,
    /// The same change was asked for a little earlier and rejected: by whom, when and why.
    #[serde(default)]
    pub previous_rejection: Option<ClosedView>,
}

/// One inner group list of the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverList {
    /// Any of these groups satisfies it.
    pub groups: Vec<String>,
    /// Approvers it needs.
    pub needed: u32,
    /// Approvers counted towards it.
    pub approvers: Vec<String>,
}

impl ApproverList {
    /// Enough approvers counted.
    pub fn is_met(&self) -> bool {
        self.approvers.len() as u32 >= self.needed
    }

    /// "payments-oncall or sre".
    pub fn groups_text(&self) -> String {
        self.groups.join(" or ")
    }
}

/// One approver's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionView {
    /// Who.
    pub approver: String,
    /// Yes or no.
    pub approved: bool,
    /// What they said.
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
}

/// The end of a request that did not become a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedView {
    /// Who ended it.
    pub by: String,
    /// Unix seconds.
    pub at: i64,
    /// Why (empty for a withdrawal).
    pub reason: String,
}

/// A request in the approvers' queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueItem {
    /// Challenge code.
    pub code: String,
    /// Kubernetes username of the request.
    pub requester: String,
    /// What they said.
    pub reason: String,
    /// Guardrail.
    pub guardrail: String,
    /// "Change Deployment api".
    pub title: String,
    /// "in namespace payments".
    pub place: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: when it stops waiting.
    pub expires_at: i64,
    /// The viewer may decide it now.
    pub needs_me: bool,
    /// Why not, when they may not ("you confirmed it", "not your groups").
    pub not_mine: Option<String>,
    /// Group lists still short of approvers, in words.
    pub waiting_for: Vec<String>,
    /// Approvers so far.
    pub approved_by: Vec<String>,
}

/// What the approvals queue may show to this viewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueAccess {
    /// Not signed in.
    SignInRequired,
    /// Signed in without a role that reviews escalations.
    Forbidden,
    /// What waits, newest first, and what was let through by break glass lately.
    Queue {
        /// Requests waiting for approvers.
        waiting: Vec<QueueItem>,
        /// Requests of the viewer's groups granted by break glass in the last day, newest first.
        broken_glass: Vec<GlassItem>,
    },
}

/// A request its requester approved themselves, in an emergency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlassItem {
    /// Challenge code.
    pub code: String,
    /// Kubernetes username of the request.
    pub requester: String,
    /// Who broke the glass.
    pub by: String,
    /// The emergency, in their words.
    pub reason: String,
    /// "Change Deployment api".
    pub title: String,
    /// "in namespace payments".
    pub place: String,
    /// When, unix seconds.
    pub at: i64,
}

/// What the review page of one request may show to this viewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewAccess {
    /// Not signed in.
    SignInRequired,
    /// Signed in without a role that reviews escalations.
    Forbidden,
    /// No such request, or not one that approvers decide.
    NotFound,
    /// The request, and whether the viewer may decide it (`Err` says why not).
    Review {
        /// The request as its requester saw it.
        challenge: Box<ChallengeView>,
        /// `Ok` when the viewer may approve or reject it now.
        may_decide: Result<(), String>,
    },
}

/// What the challenge page may show to this viewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChallengeAccess {
    /// Not signed in.
    SignInRequired,
    /// Signed in as someone else.
    NotYours {
        /// Who may confirm it, in words: the requester, or a service account's owners.
        owner: String,
    },
    /// No such challenge.
    NotFound,
    /// The owner.
    Owner(Box<ChallengeView>),
}

/// What an unused setup link creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupInvitation {
    /// engineer, approver, admin or auditor.
    pub role: String,
    /// The username the account must have, when the admin fixed it.
    pub username: Option<String>,
}

/// A row in "your challenges".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeSummary {
    /// Code.
    pub code: String,
    /// Where it stands.
    pub standing: Standing,
    /// Guardrail.
    pub guardrail: String,
    /// "Scale deployment api".
    pub title: String,
    /// "in namespace payments".
    pub place: String,
    /// Created, unix seconds.
    pub created_at: i64,
}

/// A live grant as the admin "Grants" page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRow {
    /// Grant id.
    pub id: String,
    /// Kubernetes username it admits.
    pub username: String,
    /// Guardrail it satisfies.
    pub guardrail: String,
    /// request, object or namespace.
    pub scope: String,
    /// What it is for, in words: "Scale deployment api".
    pub title: String,
    /// "in namespace payments" or "cluster-wide".
    pub place: String,
    /// What the scope lets through, in words.
    pub scope_text: String,
    /// Expiry, unix seconds.
    pub expires_at: i64,
    /// Uses left; `None` is unlimited until expiry.
    pub uses_left: Option<i64>,
    /// Issued by break glass, without approvers.
    #[serde(default)]
    pub break_glass: bool,
}

/// A passkey as its owner sees it on the account page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyView {
    /// Credential id (base64url).
    pub id: String,
    /// Name given by the owner.
    pub name: String,
    /// Registered, unix seconds.
    pub created_at: i64,
    /// Last sign-in or step-up, unix seconds; `None` if never used.
    pub last_used_at: Option<i64>,
    /// When it was blocked as a possible clone, unix seconds; `None` while usable.
    pub blocked_at: Option<i64>,
    /// Authenticator model (AAGUID), when the authenticator disclosed it.
    pub aaguid: Option<String>,
    /// The model's name, when it is a well-known one.
    pub model: Option<String>,
    /// What the administrator's authenticator allow-list says about this key.
    pub approval: KeyApproval,
}

/// A key under the authenticator allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyApproval {
    /// There is no allow-list.
    Unrestricted,
    /// An approved model, proven by its vendor's attestation; the model's name.
    Approved(String),
    /// Not on the list: signs in, cannot confirm step-ups.
    NotApproved,
}

/// What the account page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountAccess {
    /// Not signed in.
    SignInRequired,
    /// Signed in through the identity provider: no local passkeys.
    IdentityProvider,
    /// A local account and its passkeys, oldest first.
    Local {
        /// The passkeys.
        keys: Vec<PasskeyView>,
        /// With an authenticator allow-list, the approved models' names.
        approved_models: Option<Vec<String>>,
    },
}

/// What the grants page may show to this viewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantsAccess {
    /// Not signed in.
    SignInRequired,
    /// Signed in without a role that may list grants.
    Forbidden,
    /// Every live grant, soonest expiry first.
    Grants {
        /// The grants.
        list: Vec<GrantRow>,
        /// The viewer may revoke (admins; auditors only look).
        can_revoke: bool,
    },
}

/// A local account as the admin's users page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// Username (their Kubernetes username).
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// engineer, approver, admin or auditor.
    pub role: String,
    /// Groups, for approvals.
    pub groups: Vec<String>,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Disabled: cannot sign in or confirm anything.
    #[serde(default)]
    pub disabled: bool,
    /// The viewer's own account (which they cannot change here).
    #[serde(default)]
    pub is_you: bool,
}

/// A setup link sent and not used yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRow {
    /// The username the account will have.
    pub username: String,
    /// Its role.
    pub role: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// Sent, unix seconds.
    pub created_at: i64,
    /// The link stops working, unix seconds.
    pub expires_at: i64,
}

/// What the users page may show to this viewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UsersAccess {
    /// Not signed in.
    SignInRequired,
    /// Not an admin.
    Forbidden,
    /// Every local account, by username, and the invitations still pending.
    Users {
        /// The accounts.
        accounts: Vec<UserRow>,
        /// Setup links not used yet, newest first.
        invitations: Vec<InvitationRow>,
    },
}

/// A guardrail in force as the guardrails page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailRow {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// `enforce` or `dryRun`.
    pub mode: String,
    /// What it asks for: `deny`, `warn`, `stepUp`, `approval`.
    pub action: String,
    /// Store mode: the version that last changed it (`v3`), its time, author and reason.
    pub changed: Option<GuardrailChange>,
    /// Reviews it matched in the last 24 hours and the last 7 days (dry runs included).
    pub trips_day: i64,
    /// See `trips_day`.
    pub trips_week: i64,
}

/// The version that last changed a guardrail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailChange {
    /// Version number.
    pub number: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who saved it.
    pub author: String,
    /// Why.
    pub reason: String,
}

/// Where the guardrails in force come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuardrailSource {
    /// Files (`--policies PATH`): they are the truth, changed by committing them.
    Files {
        /// The path `serve` reads.
        path: String,
    },
    /// Versions in the store.
    Store,
}

/// What the guardrails page may show to this viewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuardrailsAccess {
    /// Not signed in.
    SignInRequired,
    /// Signed in without a role that may read guardrails.
    Forbidden,
    /// The guardrails in force, in policy order.
    Guardrails {
        /// The rows.
        list: Vec<GuardrailRow>,
        /// The version in force (`v3`, or a digest in files mode).
        version: String,
        /// Files or store.
        source: GuardrailSource,
    },
}

/// A saved guardrail version as the versions page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRow {
    /// 1, 2, 3, ...
    pub number: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who saved it.
    pub author: String,
    /// Why.
    pub reason: String,
}

/// One guardrail's difference between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailDifference {
    /// The guardrail.
    pub name: String,
    /// `added`, `removed` or `changed`.
    pub kind: String,
    /// Its document's lines.
    pub lines: Vec<DiffLine>,
}

/// Two versions compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// The older side.
    pub from: VersionRow,
    /// The newer side.
    pub to: VersionRow,
    /// Every guardrail that differs.
    pub differences: Vec<GuardrailDifference>,
}

/// What the versions page may show to this viewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionsAccess {
    /// Not signed in.
    SignInRequired,
    /// Signed in without a role that may read guardrails.
    Forbidden,
    /// Files mode: the history is the files' (git).
    Files,
    /// The newest versions first, and the comparison asked for, if any.
    Versions {
        /// The versions.
        list: Vec<VersionRow>,
        /// The comparison, when two versions were named and both exist.
        comparison: Option<Comparison>,
    },
}
