//! Identity mapping: which Kubernetes usernames a person may confirm challenges for.
//!
//! A person owns their own username, any other Kubernetes usernames listed for them (an OIDC-derived
//! name with a prefix, a client certificate's CN) and the service accounts whose owners name them or
//! one of their groups, so a CI pipeline's challenge reaches a human who can step up for it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::Deserialize;

use super::document::{self, DocumentError};

/// The Kubernetes username prefix of service accounts.
const SA_PREFIX: &str = "system:serviceaccount:";

/// Why a `system:` name cannot be a person's.
const RESERVED: &str =
    "names starting with `system:` belong to Kubernetes itself and are no person's";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    people: Vec<PersonEntry>,
    #[serde(default)]
    service_accounts: Vec<ServiceAccountEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PersonEntry {
    account: String,
    #[serde(default)]
    kubernetes_usernames: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceAccountEntry {
    service_account: String,
    #[serde(default)]
    owners: Owners,
}

/// Who answers for a service account.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Owners {
    /// Portal account usernames.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups (as Kubernetes sees them, after any OIDC prefix).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Why a person may confirm a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The request was theirs, under their own username.
    Subject,
    /// The request was made under another Kubernetes username that is theirs.
    Alias,
    /// The request was made by a service account they own (directly or through a group).
    Owner,
}

impl Authority {
    /// For evidence and audit.
    pub fn as_str(self) -> &'static str {
        match self {
            Authority::Subject => "subject",
            Authority::Alias => "alias",
            Authority::Owner => "owner",
        }
    }
}

/// The loaded mapping; empty means everyone confirms only their own username.
#[derive(Debug, Default)]
pub struct IdentityMap {
    /// Kubernetes username → the account that owns it.
    alias_owner: HashMap<String, String>,
    /// Account → groups given by the mapping (added to any the identity provider asserts).
    groups: HashMap<String, Vec<String>>,
    /// `system:serviceaccount:NS:NAME` → owners.
    service_accounts: HashMap<String, Owners>,
}

impl IdentityMap {
    /// Read a mapping file (YAML, `kind: IdentityMap`).
    pub fn load(path: &Path) -> Result<Self, DocumentError> {
        Self::parse(&document::read(path)?, &path.display().to_string())
    }

    /// Parse a mapping document; `path` only names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, DocumentError> {
        let invalid = |field: String, message: &str| document::invalid(path, field, message);
        let spec: Spec = document::parse(text, path, "IdentityMap", "")?;
        let mut map = IdentityMap::default();
        for (i, person) in spec.people.into_iter().enumerate() {
            let at = format!("spec.people[{i}]");
            if person.account.trim().is_empty() {
                return Err(invalid(format!("{at}.account"), "must not be empty"));
            }
            if super::is_reserved(&person.account) {
                return Err(invalid(format!("{at}.account"), RESERVED));
            }
            if map.groups.contains_key(&person.account) {
                return Err(invalid(
                    format!("{at}.account"),
                    "this account is listed twice; merge the entries",
                ));
            }
            for (j, name) in person.kubernetes_usernames.iter().enumerate() {
                let field = format!("{at}.kubernetesUsernames[{j}]");
                if name.trim().is_empty() {
                    return Err(invalid(field, "must not be empty"));
                }
                if name.starts_with(SA_PREFIX) {
                    return Err(invalid(
                        field,
                        "service accounts are owned through spec.serviceAccounts, not claimed as a username",
                    ));
                }
                if super::is_reserved(name) {
                    return Err(invalid(field, RESERVED));
                }
                let taken = map.alias_owner.get(name).filter(|o| **o != person.account);
                if let Some(other) = taken {
                    return Err(invalid(
                        field,
                        &format!("{name} already belongs to {other}; a username has one owner"),
                    ));
                }
                map.alias_owner.insert(name.clone(), person.account.clone());
            }
            map.groups.insert(person.account, person.groups);
        }
        for (i, entry) in spec.service_accounts.into_iter().enumerate() {
            let at = format!("spec.serviceAccounts[{i}]");
            let username = service_account_username(&entry.service_account).ok_or_else(|| {
                invalid(
                    format!("{at}.serviceAccount"),
                    "expected namespace/name, e.g. ci/deployer",
                )
            })?;
            if entry.owners.users.is_empty() && entry.owners.groups.is_empty() {
                return Err(invalid(
                    format!("{at}.owners"),
                    "name at least one user or group, or its challenges reach nobody",
                ));
            }
            if map.service_accounts.contains_key(&username) {
                return Err(invalid(
                    format!("{at}.serviceAccount"),
                    "this service account is listed twice; merge the entries",
                ));
            }
            map.service_accounts.insert(username, entry.owners);
        }
        Ok(map)
    }

    /// The person behind a name: the account that owns it in the map, or the name itself. Every
    /// approval rule compares these keys, never raw names, so one human under two names (a local
    /// account and an identity-provider sign-in, a certificate CN) is one person.
    pub fn person_of<'a>(&'a self, name: &'a str) -> &'a str {
        self.alias_owner.get(name).map_or(name, String::as_str)
    }

    /// The groups the mapping gives an account.
    pub fn groups_of(&self, account: &str) -> &[String] {
        self.groups.get(account).map_or(&[], Vec::as_slice)
    }

    /// Whether the person (`account`, with the groups their identity provider asserts) may confirm a
    /// challenge raised for the Kubernetes username `subject`, and why.
    pub fn authority(&self, account: &str, groups: &[String], subject: &str) -> Option<Authority> {
        if subject == account {
            // A username claimed by someone else in the mapping is theirs, even if an account of the
            // same name exists.
            return match self.alias_owner.get(subject) {
                Some(owner) if owner != account => None,
                _ => Some(Authority::Subject),
            };
        }
        if self.alias_owner.get(subject).is_some_and(|o| o == account) {
            return Some(Authority::Alias);
        }
        let owners = self.service_accounts.get(subject)?;
        let mapped = self.groups_of(account);
        let in_group = owners
            .groups
            .iter()
            .any(|g| groups.contains(g) || mapped.contains(g));
        (owners.users.iter().any(|u| u == account) || in_group).then_some(Authority::Owner)
    }

    /// Every Kubernetes username this person may confirm for, their own first.
    pub fn subjects_of(&self, account: &str, groups: &[String]) -> Vec<String> {
        let mut others: BTreeSet<&str> = self
            .alias_owner
            .iter()
            .filter(|(_, owner)| *owner == account)
            .map(|(name, _)| name.as_str())
            .collect();
        others.extend(
            self.service_accounts
                .keys()
                .filter(|sa| self.authority(account, groups, sa) == Some(Authority::Owner))
                .map(String::as_str),
        );
        others.remove(account);
        let own = self
            .authority(account, groups, account)
            .map(|_| account.to_owned());
        own.into_iter()
            .chain(others.into_iter().map(str::to_owned))
            .collect()
    }

    /// Who may confirm for `subject`, in words, for a page that turns someone else away.
    pub fn confirmers_of(&self, subject: &str) -> String {
        if let Some(owner) = self.alias_owner.get(subject) {
            return owner.clone();
        }
        match self.service_accounts.get(subject) {
            Some(owners) => {
                let mut parts: Vec<String> = owners.users.clone();
                parts.extend(owners.groups.iter().map(|g| format!("members of {g}")));
                parts.join(", ")
            }
            None => subject.to_owned(),
        }
    }
}

/// `ns/name` → `system:serviceaccount:ns:name`.
fn service_account_username(short: &str) -> Option<String> {
    let (ns, name) = short.split_once('/')?;
    let ok = |s: &str| !s.is_empty() && !s.contains(['/', ':']);
    (ok(ns) && ok(name)).then(|| format!("{SA_PREFIX}{ns}:{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = r#"
apiVersion: countersign.dev/v1alpha1
kind: IdentityMap
spec:
  people:
    - account: alice
      kubernetesUsernames: ["oidc:alice@example.com", "alice-admin"]
      groups: [sre]
    - account: bob
  serviceAccounts:
    - serviceAccount: ci/deployer
      owners: {users: [bob]}
    - serviceAccount: ci/release
      owners: {groups: [sre]}
"#;

    fn map() -> IdentityMap {
        IdentityMap::parse(MAP, "ids.yaml").unwrap()
    }

    const DEPLOYER: &str = "system:serviceaccount:ci:deployer";
    const RELEASE: &str = "system:serviceaccount:ci:release";

    #[test]
    fn a_person_confirms_their_own_and_their_other_usernames() {
        let m = map();
        assert_eq!(m.authority("alice", &[], "alice"), Some(Authority::Subject));
        assert_eq!(
            m.authority("alice", &[], "alice-admin"),
            Some(Authority::Alias)
        );
        assert_eq!(m.authority("bob", &[], "alice-admin"), None);
        assert_eq!(m.authority("bob", &[], "alice"), None);
    }

    #[test]
    fn every_name_of_a_person_resolves_to_their_account() {
        let m = map();
        assert_eq!(m.person_of("alice"), "alice");
        assert_eq!(m.person_of("oidc:alice@example.com"), "alice");
        assert_eq!(m.person_of("alice-admin"), "alice");
        assert_eq!(m.person_of("bob"), "bob");
        assert_eq!(m.person_of("nobody-listed"), "nobody-listed");
    }

    #[test]
    fn a_claimed_username_is_not_confirmed_by_a_same_named_account() {
        // An account literally named "alice-admin" must not confirm for alice's claimed username.
        assert_eq!(map().authority("alice-admin", &[], "alice-admin"), None);
    }

    #[test]
    fn service_account_owners_by_user_and_by_group() {
        let m = map();
        assert_eq!(m.authority("bob", &[], DEPLOYER), Some(Authority::Owner));
        assert_eq!(m.authority("alice", &[], DEPLOYER), None);
        // alice is in sre through the mapping; carol through her identity provider.
        assert_eq!(m.authority("alice", &[], RELEASE), Some(Authority::Owner));
        assert_eq!(
            m.authority("carol", &["sre".into()], RELEASE),
            Some(Authority::Owner)
        );
        assert_eq!(m.authority("carol", &["dev".into()], RELEASE), None);
        // A service account nobody listed is confirmed by nobody.
        assert_eq!(
            m.authority("bob", &[], "system:serviceaccount:ci:other"),
            None
        );
    }

    #[test]
    fn subjects_list_everything_a_person_answers_for() {
        let m = map();
        assert_eq!(
            m.subjects_of("alice", &[]),
            vec!["alice", "alice-admin", "oidc:alice@example.com", RELEASE]
        );
        assert_eq!(m.subjects_of("bob", &[]), vec!["bob", DEPLOYER]);
        assert_eq!(m.subjects_of("dave", &[]), vec!["dave"]);
        assert_eq!(m.confirmers_of(RELEASE), "members of sre");
        assert_eq!(m.confirmers_of("alice-admin"), "alice");
    }

    #[test]
    fn an_empty_map_means_own_username_only() {
        let m = IdentityMap::default();
        assert_eq!(m.authority("x", &[], "x"), Some(Authority::Subject));
        assert_eq!(m.authority("x", &[], "y"), None);
    }

    #[test]
    fn bad_files_name_the_field() {
        let err = |text: &str| {
            IdentityMap::parse(text, "ids.yaml")
                .unwrap_err()
                .to_string()
        };
        let head = "apiVersion: countersign.dev/v1alpha1\nkind: IdentityMap\nspec:\n";
        assert_eq!(
            err(&format!("{head}  people:\n    - account: a\n      kubernetesUsernames: [x]\n    - account: b\n      kubernetesUsernames: [x]\n")),
            "ids.yaml: spec.people[1].kubernetesUsernames[0]: x already belongs to a; a username has one owner"
        );
        assert!(err(&format!(
            "{head}  serviceAccounts:\n    - serviceAccount: deployer\n      owners: {{users: [a]}}\n"
        ))
        .contains("spec.serviceAccounts[0].serviceAccount: expected namespace/name"));
        assert!(err(&format!(
            "{head}  serviceAccounts:\n    - serviceAccount: ci/deployer\n"
        ))
        .contains("spec.serviceAccounts[0].owners"));
        assert!(err(&format!(
            "{head}  people:\n    - account: a\n      kubernetesUsernames: ['system:serviceaccount:ci:x']\n"
        ))
        .contains("owned through spec.serviceAccounts"));
        assert!(err(&format!(
            "{head}  people:\n    - account: a\n      kubernetesUsernames: ['system:kube-controller-manager']\n"
        ))
        .contains("spec.people[0].kubernetesUsernames[0]: names starting with `system:`"));
        assert!(err(&format!(
            "{head}  people:\n    - account: 'system:node:n1'\n"
        ))
        .contains("spec.people[0].account: names starting with `system:`"));
        assert!(err("apiVersion: v1\nkind: IdentityMap\n").contains("apiVersion"));
        assert!(err(&format!("{head}  peeple: []\n")).contains("unknown field"));
    }
}
