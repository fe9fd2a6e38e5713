//! Requests in people's words: "Scale deployment api", not "UPDATE deployments.apps/scale".

use crate::challenges::AttemptedRequest;

/// The parts of a request a description needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Described<'a> {
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: &'a str,
    /// Plural resource (`deployments`).
    pub resource: &'a str,
    /// Subresource (`scale`, `exec`) or empty.
    pub subresource: &'a str,
    /// Kind of the object sent (`Deployment`); empty when unknown.
    pub kind: &'a str,
    /// Object name; empty for an unnamed create.
    pub name: &'a str,
}

impl<'a> From<&'a AttemptedRequest> for Described<'a> {
    fn from(r: &'a AttemptedRequest) -> Self {
        Self {
            operation: &r.operation,
            resource: &r.resource,
            subresource: &r.subresource,
            kind: &r.kind,
            name: &r.name,
        }
    }
}

impl Described<'_> {
    /// What is asked, as a title: "Scale deployment api", "Delete Secret db-password".
    pub fn title(&self) -> String {
        capitalise(&self.action())
    }

    /// The action in lower case, for sentences: "scale deployment api".
    pub fn action(&self) -> String {
        let object = self.object();
        let verb = match self.operation {
            "CREATE" => "create",
            "UPDATE" => "change",
            "DELETE" => "delete",
            "CONNECT" => "connect to",
            other => return format!("{} {object}", other.to_lowercase()),
        };
        match self.subresource {
            "" => format!("{verb} {object}"),
            "scale" => format!("scale {object}"),
            "status" => format!("change the status of {object}"),
            "exec" => format!("run a command in {object}"),
            "attach" => format!("attach to {object}"),
            "portforward" => format!("forward a port to {object}"),
            "proxy" => format!("proxy to {object}"),
            "ephemeralcontainers" => format!("add a debug container to {object}"),
            "eviction" => format!("evict {object}"),
            "binding" => format!("bind {object} to a node"),
            "approval" => format!("approve or deny {object}"),
            sub => format!("{verb} the {sub} of {object}"),
        }
    }

    /// "deployment api": the kind (of the parent, for a subresource) and the name.
    fn object(&self) -> String {
        // A subresource's kind is the options or view object (`Scale`, `PodExecOptions`), so the
        // parent is named from its resource instead.
        let kind = if self.subresource.is_empty() && !self.kind.is_empty() {
            self.kind.to_owned()
        } else {
            singular(self.resource)
        };
        match self.name {
            "" => format!("a new {kind}"),
            name => format!("{kind} {name}"),
        }
    }
}

/// "in namespace payments", or "cluster-wide" for a cluster-scoped object.
pub fn place(namespace: &str) -> String {
    match namespace {
        "" => "cluster-wide".to_owned(),
        ns => format!("in namespace {ns}"),
    }
}

/// What an object key (`OPERATION group/resource/subresource namespace/name`) is for, in words; the
/// key itself when it has another shape (grants issued before keys carried the operation).
pub fn object_key_title(key: &str) -> String {
    let mut parts = key.splitn(3, ' ');
    let (Some(operation), Some(path), Some(place)) = (parts.next(), parts.next(), parts.next())
    else {
        return key.to_owned();
    };
    let mut path = path.splitn(3, '/');
    let (Some(_group), Some(resource), Some(subresource)) = (path.next(), path.next(), path.next())
    else {
        return key.to_owned();
    };
    let name = place.split_once('/').map(|(_, n)| n).unwrap_or(place);
    Described {
        operation,
        resource,
        subresource,
        kind: "",
        name,
    }
    .title()
}

/// `deployments` → `deployment`, `ingresses` → `ingress`, `networkpolicies` → `networkpolicy`.
fn singular(resource: &str) -> String {
    if let Some(stem) = resource.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for suffix in ["sses", "xes", "ches", "shes"] {
        if resource.ends_with(suffix) {
            return resource[..resource.len() - 2].to_owned();
        }
    }
    resource.strip_suffix('s').unwrap_or(resource).to_owned()
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described<'a>(
        op: &'a str,
        resource: &'a str,
        sub: &'a str,
        kind: &'a str,
        name: &'a str,
    ) -> String {
        Described {
            operation: op,
            resource,
            subresource: sub,
            kind,
            name,
        }
        .title()
    }

    #[test]
    fn requests_read_as_people_say_them() {
        assert_eq!(
            described("UPDATE", "deployments", "", "Deployment", "api"),
            "Change Deployment api"
        );
        assert_eq!(
            described("UPDATE", "deployments", "scale", "Scale", "api"),
            "Scale deployment api"
        );
        assert_eq!(
            described("CONNECT", "pods", "exec", "PodExecOptions", "web-0"),
            "Run a command in pod web-0"
        );
        assert_eq!(
            described("DELETE", "secrets", "", "Secret", "db"),
            "Delete Secret db"
        );
        assert_eq!(
            described("CREATE", "pods", "", "Pod", ""),
            "Create a new Pod"
        );
        assert_eq!(
            described("UPDATE", "ingresses", "status", "Ingress", "web"),
            "Change the status of ingress web"
        );
        assert_eq!(
            described("UPDATE", "networkpolicies", "", "", "deny"),
            "Change networkpolicy deny"
        );
    }

    #[test]
    fn object_keys_become_titles() {
        assert_eq!(
            object_key_title("UPDATE apps/deployments/ payments/api"),
            "Change deployment api"
        );
        assert_eq!(
            object_key_title("CONNECT /pods/exec payments/web-0"),
            "Run a command in pod web-0"
        );
        assert_eq!(object_key_title("legacy-key"), "legacy-key");
    }

    #[test]
    fn places() {
        assert_eq!(place("payments"), "in namespace payments");
        assert_eq!(place(""), "cluster-wide");
    }
}
