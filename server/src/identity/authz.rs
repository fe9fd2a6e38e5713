//! Who may do what: the one place roles turn into permissions, free of HTTP. Every portal route and
//! server function that reads or changes data asks [`authorize`] first.

use super::Role;

/// Something a person may be allowed to do in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See their own challenges.
    ViewOwnChallenges,
    /// Step up to confirm their own challenge (it issues a grant).
    ConfirmOwnChallenge,
    /// Review and countersign other people's escalations.
    ReviewEscalations,
    /// List every live grant.
    ViewGrants,
    /// Revoke someone's grant.
    RevokeGrant,
    /// Read the audit history.
    ViewAudit,
    /// Change local accounts (their groups).
    ManageAccounts,
    /// Read the guardrails in force and their history.
    ViewGuardrails,
}

impl Permission {
    /// In words, for refusals.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::ViewOwnChallenges => "see your challenges",
            Permission::ConfirmOwnChallenge => "confirm challenges",
            Permission::ReviewEscalations => "review escalations",
            Permission::ViewGrants => "list grants",
            Permission::RevokeGrant => "revoke grants",
            Permission::ViewAudit => "read the audit history",
            Permission::ManageAccounts => "manage accounts",
            Permission::ViewGuardrails => "read the guardrails",
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Nobody is signed in.
    #[error("sign in first")]
    Unauthenticated,
    /// Signed in with a role that lacks the permission.
    #[error("your role ({}) may not {}", .0.as_str(), .1.describe())]
    Forbidden(Role, Permission),
}

/// Whether `role` grants `permission`.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Admin => true,
        Role::Approver => matches!(
            permission,
            ViewOwnChallenges | ConfirmOwnChallenge | ReviewEscalations | ViewGuardrails
        ),
        Role::Engineer => matches!(permission, ViewOwnChallenges | ConfirmOwnChallenge),
        // Read-only: reading is allowed, nothing that issues or revokes anything.
        Role::Auditor => matches!(
            permission,
            ViewOwnChallenges | ViewGrants | ViewAudit | ViewGuardrails
        ),
        Role::Unknown => false,
    }
}

/// Allow or refuse `permission` to whoever is signed in (`None`: nobody).
pub fn authorize(role: Option<Role>, permission: Permission) -> Result<(), Denied> {
    match role {
        None => Err(Denied::Unauthenticated),
        Some(role) if allows(role, permission) => Ok(()),
        Some(role) => Err(Denied::Forbidden(role, permission)),
    }
}

/// Roles given to identity-provider users by group (`--oidc-role-group admin=platform-admins`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMapping {
    /// (role, group) pairs; a person in several mapped groups gets the strongest role.
    pub rules: Vec<(Role, String)>,
    /// Role of someone in none of the mapped groups.
    pub default: Role,
}

impl Default for RoleMapping {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            default: Role::Engineer,
        }
    }
}

impl RoleMapping {
    /// Parse `ROLE=GROUP` rules.
    pub fn parse(rules: &[String], default: &str) -> Result<Self, String> {
        let default = parse_role(default)
            .ok_or_else(|| format!("--oidc-default-role {default}: unknown role"))?;
        let rules = rules
            .iter()
            .map(|rule| {
                let (role, group) = rule.split_once('=').ok_or_else(|| {
                    format!("--oidc-role-group {rule}: expected ROLE=GROUP, e.g. admin=platform-admins")
                })?;
                let role = parse_role(role.trim())
                    .ok_or_else(|| format!("--oidc-role-group {rule}: unknown role (use engineer, approver, admin or auditor)"))?;
                let group = group.trim();
                if group.is_empty() {
                    return Err(format!("--oidc-role-group {rule}: the group is empty"));
                }
                Ok((role, group.to_owned()))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { rules, default })
    }

    /// Whether anyone signing in through the identity provider can be an admin.
    pub fn grants_admin(&self) -> bool {
        self.default == Role::Admin || self.rules.iter().any(|(role, _)| *role == Role::Admin)
    }

    /// The role of someone in `groups`.
    pub fn role_for(&self, groups: &[String]) -> Role {
        self.rules
            .iter()
            .filter(|(_, group)| groups.iter().any(|g| g == group))
            .map(|(role, _)| *role)
            .max_by_key(|role| strength(*role))
            .unwrap_or(self.default)
    }
}

/// Strict role names (storage's `Role::parse` falls back instead; configuration must not).
fn parse_role(s: &str) -> Option<Role> {
    match s {
        "admin" => Some(Role::Admin),
        "approver" => Some(Role::Approver),
        "engineer" => Some(Role::Engineer),
        "auditor" => Some(Role::Auditor),
        _ => None,
    }
}

/// Which role wins when groups map to several.
fn strength(role: Role) -> u8 {
    match role {
        Role::Unknown | Role::Auditor => 0,
        Role::Engineer => 1,
        Role::Approver => 2,
        Role::Admin => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_revoke_and_auditors_only_read() {
        assert!(allows(Role::Admin, Permission::RevokeGrant));
        for role in [Role::Engineer, Role::Approver, Role::Auditor] {
            assert!(!allows(role, Permission::RevokeGrant), "{role:?}");
        }
        assert!(allows(Role::Auditor, Permission::ViewGrants));
        assert!(!allows(Role::Auditor, Permission::ConfirmOwnChallenge));
        assert!(!allows(Role::Engineer, Permission::ViewGrants));
        assert_eq!(
            authorize(None, Permission::ViewOwnChallenges),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            authorize(Some(Role::Engineer), Permission::RevokeGrant),
            Err(Denied::Forbidden(Role::Engineer, Permission::RevokeGrant))
        );
    }

    #[test]
    fn finding_13_an_unknown_stored_role_grants_nothing() {
        let role = Role::parse("superuser");
        assert_eq!(role, Role::Unknown);
        for p in [
            Permission::ViewOwnChallenges,
            Permission::ConfirmOwnChallenge,
            Permission::ReviewEscalations,
            Permission::ViewGrants,
            Permission::RevokeGrant,
            Permission::ViewAudit,
        ] {
            assert!(!allows(role, p), "{p:?}");
        }
        assert_eq!(
            Role::from_name("unknown"),
            None,
            "not a role anyone can be given"
        );
    }

    #[test]
    fn groups_map_to_the_strongest_role() {
        let m = RoleMapping::parse(
            &[
                "admin=platform-admins".into(),
                "auditor=security".into(),
                "approver=sre-leads".into(),
            ],
            "engineer",
        )
        .unwrap();
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(m.role_for(&g(&["dev"])), Role::Engineer);
        assert_eq!(m.role_for(&g(&["security"])), Role::Auditor);
        assert_eq!(
            m.role_for(&g(&["security", "platform-admins"])),
            Role::Admin
        );
        assert_eq!(m.role_for(&g(&["sre-leads", "security"])), Role::Approver);
        assert!(RoleMapping::parse(&["root=x".into()], "engineer").is_err());
        assert!(RoleMapping::parse(&["admin".into()], "engineer").is_err());
        assert!(RoleMapping::parse(&[], "nobody").is_err());
        let strict = RoleMapping::parse(&[], "auditor").unwrap();
        assert_eq!(strict.role_for(&g(&["dev"])), Role::Auditor);
    }
}
