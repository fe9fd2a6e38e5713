//! The one navigation: which entries a viewer sees. The server still checks every page and call;
//! this only keeps people from links they cannot use, and lists a page only once it exists.

use crate::model::Viewer;

/// An entry of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NavEntry {
    /// Where it goes.
    pub href: &'static str,
    /// What it says.
    pub label: &'static str,
}

/// Who sees an entry.
#[derive(Debug, Clone, Copy)]
enum Audience {
    /// Everyone signed in.
    Everyone,
    /// These roles.
    Roles(&'static [&'static str]),
    /// Local accounts (passkeys are managed here, not at the identity provider).
    LocalAccounts,
}

/// Every page in the navigation, in order. History, overview and guardrails join here when their
/// pages land.
const ENTRIES: &[(NavEntry, Audience)] = &[
    (
        NavEntry {
            href: "/",
            label: "Requests",
        },
        Audience::Everyone,
    ),
    (
        NavEntry {
            href: "/approvals",
            label: "Approvals",
        },
        Audience::Roles(&["approver", "admin"]),
    ),
    (
        NavEntry {
            href: "/admin/grants",
            label: "Grants",
        },
        Audience::Roles(&["admin", "auditor"]),
    ),
    (
        NavEntry {
            href: "/admin/guardrails",
            label: "Guardrails",
        },
        Audience::Roles(&["admin", "approver", "auditor"]),
    ),
    (
        NavEntry {
            href: "/admin/users",
            label: "Users",
        },
        Audience::Roles(&["admin"]),
    ),
    (
        NavEntry {
            href: "/account",
            label: "Passkeys",
        },
        Audience::LocalAccounts,
    ),
];

/// The entries `viewer` sees.
pub fn entries_for(viewer: &Viewer) -> Vec<NavEntry> {
    ENTRIES
        .iter()
        .filter(|(_, audience)| match audience {
            Audience::Everyone => true,
            Audience::Roles(roles) => roles.contains(&viewer.role.as_str()),
            Audience::LocalAccounts => !viewer.oidc,
        })
        .map(|(entry, _)| *entry)
        .collect()
}

/// Whether `entry` is the current page (`path`), for `aria-current`.
pub fn is_current(entry: &NavEntry, path: &str) -> bool {
    match entry.href {
        "/" => path == "/" || path.starts_with("/c/"),
        href => path == href || path.starts_with(&format!("{href}/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(role: &str, oidc: bool) -> Viewer {
        Viewer {
            username: "u".into(),
            display_name: "U".into(),
            role: role.into(),
            oidc,
            groups: vec![],
        }
    }

    fn labels(v: &Viewer) -> Vec<&'static str> {
        entries_for(v).iter().map(|e| e.label).collect()
    }

    #[test]
    fn each_role_sees_what_it_may_use() {
        assert_eq!(labels(&viewer("engineer", false)), ["Requests", "Passkeys"]);
        assert_eq!(
            labels(&viewer("admin", false)),
            [
                "Requests",
                "Approvals",
                "Grants",
                "Guardrails",
                "Users",
                "Passkeys"
            ]
        );
        assert_eq!(
            labels(&viewer("auditor", true)),
            ["Requests", "Grants", "Guardrails"]
        );
        assert_eq!(
            labels(&viewer("approver", true)),
            ["Requests", "Approvals", "Guardrails"]
        );
    }

    #[test]
    fn the_current_page_is_marked() {
        let home = ENTRIES[0].0;
        assert!(is_current(&home, "/c/K7Q2M9XD"));
        assert!(!is_current(&home, "/admin/grants"));
        assert!(is_current(&ENTRIES[1].0, "/approvals/K7Q2M9XD"));
        assert!(is_current(&ENTRIES[2].0, "/admin/grants"));
    }
}
