//! `countersign webhook-config`: the ValidatingWebhookConfiguration that sends the API server's
//! requests to Countersign — only the operations and resources the loaded guardrails can match, and
//! never the requests of the system components that keep a cluster running (nodes, their leases,
//! the controller manager, the scheduler, kube-system controllers, Countersign itself). So while
//! Countersign is down, guarded changes fail closed and nothing else does.
//!
//! Two webhooks, so that each request reaches Countersign at most once:
//! - `guardrails.countersign.dev`, `failurePolicy: Fail`: the rules of enforcing `stepUp`,
//!   `approval` and `deny` guardrails;
//! - `records.countersign.dev`, `failurePolicy: Ignore`: the rules of guardrails that only record or
//!   warn (enforcing `audit`/`warn`, and every `dryRun` guardrail), minus what the first webhook
//!   already gets (a match condition skips those). Left out when there is nothing of that kind.
//!
//! No `objectSelector` (object labels belong to whoever writes the object, so a label would switch
//! Countersign off), and a `namespaceSelector` only on `kubernetes.io/metadata.name`, which the API
//! server sets itself, for namespaces every guardrail of the webhook excludes by name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, RuleWithOperations, ServiceReference, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as KubeSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::ByteString;

use super::model::*;

/// Why no configuration could be made.
#[derive(Debug, thiserror::Error)]
pub enum WebhookConfigError {
    /// No CA bundle was given and the data dir has none.
    #[error(
        "no CA bundle: {0} does not exist. Give --ca-bundle FILE (the CA that signed the webhook's \
         certificate), or --data-dir with the dir where `countersign serve` made its certificate, \
         or --ca-bundle-placeholder to fill it in later"
    )]
    NoCaBundle(PathBuf),
    /// The CA file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file holds no PEM certificate.
    #[error("{0}: not a PEM certificate (no -----BEGIN CERTIFICATE----- line)")]
    NotPem(PathBuf),
    /// `NAMESPACE/NAME` was expected.
    #[error("`{0}` is not NAMESPACE/NAME")]
    NotNamespacedName(String),
    /// The URL cannot be a webhook URL.
    #[error("`{0}` is not a webhook URL: the API server needs https://, without user, query or fragment")]
    BadUrl(String),
    /// `timeoutSeconds` out of range.
    #[error("timeoutSeconds must be between 1 and 30, not {0}")]
    Timeout(i32),
    /// No guardrail can match any request.
    #[error("no guardrail can match a request the API server sends to webhooks: nothing to route")]
    NothingToRoute,
    /// More match conditions than the API server accepts.
    #[error("{0} match conditions; the API server accepts at most {MAX_MATCH_CONDITIONS}")]
    TooManyConditions(usize),
    /// Writing YAML.
    #[error("writing YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// Most `matchConditions` a webhook may have (admissionregistration.k8s.io/v1).
pub const MAX_MATCH_CONDITIONS: usize = 64;

/// Where `serve` keeps its self-made CA, under the data dir (see `webhook/tls.rs`).
pub const DATA_DIR_CA: &str = "tls/ca.crt";

/// The CA bundle written by `--ca-bundle-placeholder`: valid base64 (so the file parses), and no
/// certificate (so a configuration applied without replacing it fails closed, loudly).
pub const CA_PLACEHOLDER: &str =
    "placeholder: run `countersign webhook-config --ca-bundle FILE` to fill in the CA\n";

/// Where the CA bundle comes from.
#[derive(Debug, Clone, Copy)]
pub enum CaSource<'a> {
    /// A PEM file.
    File(&'a Path),
    /// `tls/ca.crt` in `serve`'s data dir.
    DataDir(&'a Path),
    /// [`CA_PLACEHOLDER`].
    Placeholder,
}

/// The CA bundle's bytes (PEM; the YAML carries them base64-encoded).
pub fn ca_bundle(source: CaSource<'_>) -> Result<Vec<u8>, WebhookConfigError> {
    let path = match source {
        CaSource::Placeholder => return Ok(CA_PLACEHOLDER.as_bytes().to_vec()),
        CaSource::File(path) => path.to_owned(),
        CaSource::DataDir(dir) => {
            let path = dir.join(DATA_DIR_CA);
            if !path.exists() {
                return Err(WebhookConfigError::NoCaBundle(path));
            }
            path
        }
    };
    let pem = std::fs::read(&path).map_err(|source| WebhookConfigError::Read {
        path: path.clone(),
        source,
    })?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(WebhookConfigError::NotPem(path));
    }
    Ok(pem)
}

/// How the API server reaches the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// An in-cluster Service.
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its port.
        port: u16,
        /// The path, `/k8s/admit`.
        path: String,
    },
    /// A URL, with its path.
    Url(String),
}

impl Client {
    /// A Service given as `NAMESPACE/NAME`.
    pub fn service(namespaced: &str, port: u16, path: &str) -> Result<Self, WebhookConfigError> {
        let (namespace, name) = split_namespaced(namespaced)?;
        Ok(Client::Service {
            namespace,
            name,
            port,
            path: path.to_owned(),
        })
    }

    /// A URL the API server accepts for a webhook.
    pub fn url(text: &str) -> Result<Self, WebhookConfigError> {
        let bad = || WebhookConfigError::BadUrl(text.to_owned());
        let url = url::Url::parse(text).map_err(|_| bad())?;
        if url.scheme() != "https"
            || url.host().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(bad());
        }
        Ok(Client::Url(text.to_owned()))
    }
}

/// `NAMESPACE/NAME` split.
fn split_namespaced(text: &str) -> Result<(String, String), WebhookConfigError> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err(WebhookConfigError::NotNamespacedName(text.to_owned())),
    }
}

/// What the configuration is made with, besides the guardrails.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// `metadata.name`.
    pub name: String,
    /// Service or URL.
    pub client: Client,
    /// CA bundle (PEM bytes).
    pub ca_bundle: Vec<u8>,
    /// Countersign's own service account, as its username `system:serviceaccount:NS:NAME`.
    pub service_account: String,
    /// `timeoutSeconds`, 1 to 30.
    pub timeout_seconds: i32,
}

impl WebhookOptions {
    /// Options with the defaults `countersign webhook-config` uses: the Service and service account
    /// `countersign/countersign`, port 8443, `/k8s/admit`, 5 seconds.
    pub fn new(ca_bundle: Vec<u8>) -> Self {
        Self {
            name: "countersign.dev".into(),
            client: Client::Service {
                namespace: "countersign".into(),
                name: "countersign".into(),
                port: 8443,
                path: "/k8s/admit".into(),
            },
            ca_bundle,
            service_account: "system:serviceaccount:countersign:countersign".into(),
            timeout_seconds: 5,
        }
    }

    /// Set the service account from `NAMESPACE/NAME`.
    pub fn with_service_account(mut self, namespaced: &str) -> Result<Self, WebhookConfigError> {
        let (ns, name) = split_namespaced(namespaced)?;
        self.service_account = format!("system:serviceaccount:{ns}:{name}");
        Ok(self)
    }
}

/// A generated configuration.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The object.
    pub config: ValidatingWebhookConfiguration,
    /// What the operator should know (a skipped system identity let through because a guardrail
    /// names it, a resource the API server never sends to webhooks); also written into the YAML.
    pub warnings: Vec<String>,
    /// The YAML to apply, with a header comment.
    pub yaml: String,
}

/// Name of the webhook for guardrails that block (`failurePolicy: Fail`).
pub const ENFORCING_WEBHOOK: &str = "guardrails.countersign.dev";
/// Name of the webhook for guardrails that only record or warn (`failurePolicy: Ignore`).
pub const RECORDING_WEBHOOK: &str = "records.countersign.dev";

/// Make the configuration for these guardrails.
pub fn generate(
    guardrails: &[Guardrail],
    options: &WebhookOptions,
) -> Result<Generated, WebhookConfigError> {
    if !(1..=30).contains(&options.timeout_seconds) {
        return Err(WebhookConfigError::Timeout(options.timeout_seconds));
    }
    let mut warnings = Vec::new();
    let (enforcing, recording): (Vec<&Guardrail>, Vec<&Guardrail>) =
        guardrails.iter().partition(|g| blocks(g));

    let enforce_cells = simplify(cells_of(&enforcing, &mut warnings));
    let mut record_cells = cells_of(&recording, &mut warnings);
    // What the enforcing webhook gets already is not sent twice.
    for (cell, ops) in record_cells.iter_mut() {
        for (other, other_ops) in &enforce_cells {
            if covers(other, cell) {
                *ops &= !other_ops;
            }
        }
    }
    record_cells.retain(|_, ops| *ops != 0);
    let record_cells = simplify(record_cells);
    if enforce_cells.is_empty() && record_cells.is_empty() {
        return Err(WebhookConfigError::NothingToRoute);
    }

    let skips = skip_conditions(guardrails, &options.service_account, &mut warnings);
    let mut webhooks = Vec::new();
    if !enforce_cells.is_empty() {
        webhooks.push(webhook(
            ENFORCING_WEBHOOK,
            "Fail",
            &enforce_cells,
            skips.clone(),
            namespace_selector(&enforcing),
            options,
        )?);
    }
    if !record_cells.is_empty() {
        let mut conditions = skips;
        // A request the enforcing webhook also gets must not be evaluated twice (a single-use grant
        // would be spent by one call and missing in the other).
        let overlapping: Vec<&Cell> = enforce_cells
            .keys()
            .filter(|e| record_cells.keys().any(|r| intersects(e, r)))
            .collect();
        if !overlapping.is_empty() {
            let any = overlapping
                .iter()
                .map(|cell| cell_expr(cell, enforce_cells[*cell]))
                .collect::<Vec<_>>()
                .join(" || ");
            conditions.push(condition("not-for-guardrails-webhook", format!("!({any})")));
        }
        webhooks.push(webhook(
            RECORDING_WEBHOOK,
            "Ignore",
            &record_cells,
            conditions,
            namespace_selector(&recording),
            options,
        )?);
    }

    let config = ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(options.name.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "countersign".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        webhooks: Some(webhooks),
    };
    let yaml = header(guardrails.len(), options, &warnings) + &serde_yaml::to_string(&config)?;
    Ok(Generated {
        config,
        warnings,
        yaml,
    })
}

/// Whether a guardrail can refuse a request, so that Countersign being unreachable must refuse it too.
fn blocks(g: &Guardrail) -> bool {
    g.mode == Mode::Enforce
        && matches!(
            g.action.kind,
            ActionKind::StepUp | ActionKind::Approval | ActionKind::Deny
        )
}

fn header(guardrails: usize, options: &WebhookOptions, warnings: &[String]) -> String {
    let mut out = format!(
        "# Generated by `countersign webhook-config` from {guardrails} guardrail(s); regenerate it when\n\
         # they change. The API server sends only the requests listed in `rules`, and never those of the\n\
         # system components the `matchConditions` name, so nodes, leases and controllers keep working\n\
         # while Countersign is down (docs/security.md, finding 14).\n"
    );
    if options.ca_bundle == CA_PLACEHOLDER.as_bytes() {
        out.push_str(
            "# caBundle is a placeholder: make your own with `countersign webhook-config --policies DIR\n\
             # --ca-bundle CA.pem` (or --data-dir, for the CA `countersign serve` made in DIR/tls/ca.crt).\n",
        );
    }
    for warning in warnings {
        out.push_str(&format!("# warning: {warning}\n"));
    }
    out
}

fn webhook(
    name: &str,
    failure_policy: &str,
    cells: &BTreeMap<Cell, u8>,
    conditions: Vec<MatchCondition>,
    namespace_selector: Option<KubeSelector>,
    options: &WebhookOptions,
) -> Result<ValidatingWebhook, WebhookConfigError> {
    if conditions.len() > MAX_MATCH_CONDITIONS {
        return Err(WebhookConfigError::TooManyConditions(conditions.len()));
    }
    let client_config = match &options.client {
        Client::Service {
            namespace,
            name,
            port,
            path,
        } => WebhookClientConfig {
            ca_bundle: Some(ByteString(options.ca_bundle.clone())),
            service: Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(path.clone()),
                port: Some(i32::from(*port)),
            }),
            url: None,
        },
        Client::Url(url) => WebhookClientConfig {
            ca_bundle: Some(ByteString(options.ca_bundle.clone())),
            service: None,
            url: Some(url.clone()),
        },
    };
    Ok(ValidatingWebhook {
        name: name.to_owned(),
        admission_review_versions: vec!["v1".to_owned()],
        client_config,
        failure_policy: Some(failure_policy.to_owned()),
        match_policy: Some("Equivalent".to_owned()),
        match_conditions: (!conditions.is_empty()).then_some(conditions),
        namespace_selector,
        object_selector: None,
        rules: Some(rules(cells)),
        // A dry run spends no grant use and writes no `grant.used`; what it does write (the open
        // challenge that lets a person confirm before the real run, and the decision record) is
        // Countersign's own record of the request, not a change anything has to undo
        // (docs/security.md, finding 14).
        side_effects: "NoneOnDryRun".to_owned(),
        timeout_seconds: Some(options.timeout_seconds),
    })
}

// --- Rules --------------------------------------------------------------------------------------

const CREATE: u8 = 1;
const UPDATE: u8 = 2;
const DELETE: u8 = 4;
const CONNECT: u8 = 8;
const ALL_OPS: u8 = CREATE | UPDATE | DELETE | CONNECT;

/// The rule scope a cell needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    /// `*`: explicit resources have a scope of their own, and guardrails without a namespace
    /// clause match everywhere.
    Any,
    /// Every resource in a namespace (a wildcard under a namespace clause).
    Namespaced,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Any => "*",
            Scope::Namespaced => "Namespaced",
        }
    }
}

/// The subresource half of a resource, as rules spell it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Sub {
    /// The main resource only.
    None,
    /// `/*`: every subresource, and the main resource too.
    Any,
    /// One subresource.
    Named(String),
}

/// One (scope, group, resource/subresource) the API server may send; `*` is the wildcard.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Cell {
    scope: Scope,
    group: String,
    resource: String,
    sub: Sub,
}

impl Cell {
    fn resource_text(&self) -> String {
        match &self.sub {
            Sub::None => self.resource.clone(),
            Sub::Any => format!("{}/*", self.resource),
            Sub::Named(s) => format!("{}/{s}", self.resource),
        }
    }
}

/// Resources the API server never sends to admission webhooks, so that a webhook cannot lock
/// itself in (k8s.io/apiserver `IsExemptAdmissionConfigurationResource`).
const EXEMPT: [&str; 4] = [
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
];

fn op_bits(ops: Option<&Vec<Operation>>) -> u8 {
    ops.map_or(ALL_OPS, |ops| {
        ops.iter().fold(0, |bits, op| {
            bits | match op {
                Operation::Create => CREATE,
                Operation::Update => UPDATE,
                Operation::Delete => DELETE,
                Operation::Connect => CONNECT,
            }
        })
    })
}

/// Every cell the guardrails can match, with the operations (bits) they can match there.
fn cells_of(guardrails: &[&Guardrail], warnings: &mut Vec<String>) -> BTreeMap<Cell, u8> {
    let mut cells = BTreeMap::new();
    let everything = [ResourceRule {
        api_groups: None,
        resources: vec![ResourcePattern {
            resource: None,
            subresource: SubresourcePattern::Any,
        }],
    }];
    for g in guardrails {
        let ops = op_bits(g.matcher.operations.as_ref());
        let in_namespaces = g.matcher.namespaces.is_some();
        let rules: &[ResourceRule] = if g.matcher.resources.is_empty() {
            &everything
        } else {
            &g.matcher.resources
        };
        let mut exempt = Vec::new();
        for rule in rules {
            let groups: Vec<&str> = match &rule.api_groups {
                None => vec!["*"],
                Some(list) => list.iter().map(String::as_str).collect(),
            };
            for group in groups {
                for pattern in &rule.resources {
                    let resource = pattern.resource.as_deref().unwrap_or("*");
                    let sub = match &pattern.subresource {
                        SubresourcePattern::None => Sub::None,
                        SubresourcePattern::Any => Sub::Any,
                        SubresourcePattern::Named(s) => Sub::Named(s.clone()),
                    };
                    if group == "admissionregistration.k8s.io" && EXEMPT.contains(&resource) {
                        exempt.push(resource);
                        continue;
                    }
                    let mut add = |scope, group: &str, resource: &str| {
                        let cell = Cell {
                            scope,
                            group: group.to_owned(),
                            resource: resource.to_owned(),
                            sub: sub.clone(),
                        };
                        *cells.entry(cell).or_insert(0) |= ops;
                    };
                    if in_namespaces && resource == "*" {
                        // A namespace clause matches what is in a namespace, and Namespace objects
                        // themselves (which are cluster-scoped).
                        add(Scope::Namespaced, group, "*");
                        if group == "*" || group.is_empty() {
                            add(Scope::Any, "", "namespaces");
                        }
                    } else {
                        add(Scope::Any, group, resource);
                    }
                }
            }
        }
        if !exempt.is_empty() {
            warnings.push(format!(
                "guardrail {} matches {}, which the API server never sends to admission webhooks: \
                 left out; guard them with RBAC",
                g.name,
                exempt.join(", ")
            ));
        }
    }
    cells
}

/// Whether every request `b` can match, `a` matches too (Kubernetes rule semantics: `*` is any
/// resource, `x/*` any subresource of x and x itself).
fn covers(a: &Cell, b: &Cell) -> bool {
    (a.scope == Scope::Any || a.scope == b.scope)
        && (a.group == "*" || a.group == b.group)
        && (a.resource == "*" || a.resource == b.resource)
        && (a.sub == Sub::Any || a.sub == b.sub)
}

/// Whether some request can match both.
fn intersects(a: &Cell, b: &Cell) -> bool {
    let either = |x: &str, y: &str| x == "*" || y == "*" || x == y;
    either(&a.group, &b.group)
        && either(&a.resource, &b.resource)
        && (a.sub == Sub::Any || b.sub == Sub::Any || a.sub == b.sub)
}

/// Take from each cell the operations a cell covering it has already, and drop cells left with
/// none. Covering is a partial order, so every request stays matched by the widest cell that has
/// its operation. This also keeps every rule valid (`*/*` alone, no `*` next to a plain resource, no
/// `x/*` next to `x/y`, no `*/y` next to `x/y`).
fn simplify(cells: BTreeMap<Cell, u8>) -> BTreeMap<Cell, u8> {
    cells
        .iter()
        .filter_map(|(cell, ops)| {
            let covered = cells
                .iter()
                .filter(|(other, _)| *other != cell && covers(other, cell))
                .fold(0, |bits, (_, other_ops)| bits | other_ops);
            let left = ops & !covered;
            (left != 0).then(|| (cell.clone(), left))
        })
        .collect()
}

fn op_names(ops: u8) -> Vec<String> {
    if ops == ALL_OPS {
        return vec!["*".to_owned()];
    }
    [
        (CREATE, "CREATE"),
        (UPDATE, "UPDATE"),
        (DELETE, "DELETE"),
        (CONNECT, "CONNECT"),
    ]
    .into_iter()
    .filter(|(bit, _)| ops & bit != 0)
    .map(|(_, name)| name.to_owned())
    .collect()
}

/// Cells as few rules: one per (scope, operations, resources), naming every group that has them.
fn rules(cells: &BTreeMap<Cell, u8>) -> Vec<RuleWithOperations> {
    let mut by_group: BTreeMap<(Scope, u8, &str), Vec<String>> = BTreeMap::new();
    for (cell, ops) in cells {
        by_group
            .entry((cell.scope, *ops, cell.group.as_str()))
            .or_default()
            .push(cell.resource_text());
    }
    let mut by_resources: BTreeMap<(Scope, u8, Vec<String>), BTreeSet<&str>> = BTreeMap::new();
    for ((scope, ops, group), resources) in by_group {
        by_resources
            .entry((scope, ops, resources))
            .or_default()
            .insert(group);
    }
    by_resources
        .into_iter()
        .map(|((scope, ops, resources), groups)| {
            let groups: Vec<String> = if groups.contains("*") {
                vec!["*".to_owned()]
            } else {
                groups.into_iter().map(str::to_owned).collect()
            };
            RuleWithOperations {
                api_groups: Some(groups),
                api_versions: Some(vec!["*".to_owned()]),
                operations: Some(op_names(ops)),
                resources: Some(resources),
                scope: Some(scope.as_str().to_owned()),
            }
        })
        .collect()
}

// --- Match conditions -----------------------------------------------------------------------------
//
// CEL over the AdmissionRequest the API server would send. Fields it leaves out when empty
// (`namespace`, `subResource`, `userInfo.username`, `userInfo.groups`) are tested with `has()`
// first: an expression that fails would, under `failurePolicy: Fail`, refuse the request.

const USER: &str = "request.userInfo.username";
const GROUPS: &str = "request.userInfo.groups";

/// A CEL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn list(items: &BTreeSet<String>) -> String {
    let items: Vec<String> = items.iter().map(|s| lit(s)).collect();
    format!("[{}]", items.join(", "))
}

fn condition(name: &str, expression: String) -> MatchCondition {
    MatchCondition {
        name: name.to_owned(),
        expression,
    }
}

/// Users and groups the guardrails name in `match.subjects` (not in `exclude`).
struct Targeted {
    users: BTreeSet<String>,
    groups: BTreeSet<String>,
}

impl Targeted {
    fn of(guardrails: &[Guardrail]) -> Self {
        let mut users = BTreeSet::new();
        let mut groups = BTreeSet::new();
        for g in guardrails {
            let include = &g.matcher.subjects.include;
            users.extend(include.users.iter().cloned());
            users.extend(include.service_accounts.iter().cloned());
            groups.extend(include.groups.iter().cloned());
        }
        Self { users, groups }
    }
}

/// The conditions that keep system components away from the webhook. An identity a guardrail
/// names explicitly is let through (with a warning): a guardrail written for it is never skipped.
fn skip_conditions(
    guardrails: &[Guardrail],
    service_account: &str,
    warnings: &mut Vec<String>,
) -> Vec<MatchCondition> {
    let targeted = Targeted::of(guardrails);
    let mut out = Vec::new();
    let mut let_through = |what: &str, names: &[&String]| {
        for name in names {
            warnings.push(format!(
                "a guardrail names {name}, so its requests are sent although {what} are skipped \
                 otherwise; while Countersign is down they fail"
            ));
        }
    };

    // Prefix skips: `!(skipped) || named`.
    let prefixed = |prefix: &str, group: &str| {
        let users: BTreeSet<String> = targeted
            .users
            .iter()
            .filter(|u| u.starts_with(prefix))
            .cloned()
            .collect();
        let group_named = targeted.groups.contains(group);
        (users, group_named)
    };
    let (node_users, nodes_group) = prefixed("system:node:", "system:nodes");
    let named: Vec<&String> = node_users.iter().collect();
    let_through("nodes", &named);
    if nodes_group {
        let_through("nodes", &[&"group system:nodes".to_owned()]);
    }
    out.push(condition(
        "skip-nodes",
        with_carve_out(
            format!(
                "!((has({USER}) && {USER}.startsWith('system:node:')) || (has({GROUPS}) && 'system:nodes' in {GROUPS}))"
            ),
            &node_users,
            nodes_group.then_some("system:nodes"),
        ),
    ));

    let control_plane: BTreeSet<String> = [
        "system:apiserver",
        "system:kube-controller-manager",
        "system:kube-scheduler",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let named: Vec<&String> = control_plane.intersection(&targeted.users).collect();
    let_through("the control plane's own users", &named);
    let skipped: BTreeSet<String> = control_plane.difference(&targeted.users).cloned().collect();
    if !skipped.is_empty() {
        out.push(condition(
            "skip-control-plane",
            format!("!(has({USER}) && {USER} in {})", list(&skipped)),
        ));
    }

    let (kube_system_users, kube_system_group) = prefixed(
        "system:serviceaccount:kube-system:",
        "system:serviceaccounts:kube-system",
    );
    let named: Vec<&String> = kube_system_users.iter().collect();
    let_through("kube-system service accounts", &named);
    if kube_system_group {
        let_through(
            "kube-system service accounts",
            &[&"group system:serviceaccounts:kube-system".to_owned()],
        );
    }
    out.push(condition(
        "skip-kube-system-controllers",
        with_carve_out(
            format!("!(has({USER}) && {USER}.startsWith('system:serviceaccount:kube-system:'))"),
            &kube_system_users,
            kube_system_group.then_some("system:serviceaccounts:kube-system"),
        ),
    ));

    out.push(condition(
        "skip-node-leases",
        "!(has(request.namespace) && request.namespace == 'kube-node-lease' \
         && has(request.resource.group) && request.resource.group == 'coordination.k8s.io' \
         && request.resource.resource == 'leases')"
            .to_owned(),
    ));

    if targeted.users.contains(service_account) {
        let_through(
            "Countersign's own service account",
            &[&service_account.to_owned()],
        );
    } else {
        out.push(condition(
            "skip-countersign",
            format!("!(has({USER}) && {USER} == {})", lit(service_account)),
        ));
    }
    out
}

/// `skip || named users || named group`.
fn with_carve_out(skip: String, users: &BTreeSet<String>, group: Option<&str>) -> String {
    let mut parts = vec![skip];
    if !users.is_empty() {
        parts.push(format!("(has({USER}) && {USER} in {})", list(users)));
    }
    if let Some(group) = group {
        parts.push(format!("(has({GROUPS}) && {} in {GROUPS})", lit(group)));
    }
    parts.join(" || ")
}

/// CEL that is true for every request the cell (with these operations) matches, and possibly a
/// few more (scope is read from `request.namespace`); used to keep such requests away from the
/// recording webhook, where a few more is the safe side.
fn cell_expr(cell: &Cell, ops: u8) -> String {
    let mut terms = Vec::new();
    if ops != ALL_OPS {
        let names: BTreeSet<String> = op_names(ops).into_iter().collect();
        terms.push(format!("request.operation in {}", list(&names)));
    }
    match cell.group.as_str() {
        "*" => {}
        "" => {
            terms.push("(!has(request.resource.group) || request.resource.group == '')".to_owned())
        }
        group => terms.push(format!(
            "(has(request.resource.group) && request.resource.group == {})",
            lit(group)
        )),
    }
    if cell.resource != "*" {
        terms.push(format!(
            "request.resource.resource == {}",
            lit(&cell.resource)
        ));
    }
    match &cell.sub {
        Sub::Any => {}
        Sub::None => terms.push("(!has(request.subResource) || request.subResource == '')".into()),
        Sub::Named(s) => terms.push(format!(
            "(has(request.subResource) && request.subResource == {})",
            lit(s)
        )),
    }
    if cell.scope == Scope::Namespaced {
        terms.push("(has(request.namespace) && request.namespace != '')".into());
    }
    if terms.is_empty() {
        "true".to_owned()
    } else {
        format!("({})", terms.join(" && "))
    }
}

/// `kubernetes.io/metadata.name NotIn [...]` for the namespaces every guardrail excludes by exact
/// name, when all of them have a namespace clause. The API server sets that label to the
/// namespace's name itself, so relabelling cannot move a namespace in or out.
fn namespace_selector(guardrails: &[&Guardrail]) -> Option<KubeSelector> {
    let mut common: Option<BTreeSet<String>> = None;
    for g in guardrails {
        let ns = g.matcher.namespaces.as_ref()?;
        let exact: BTreeSet<String> = ns
            .exclude
            .iter()
            .filter_map(|glob| match glob {
                Glob::Exact(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        common = Some(match common {
            None => exact,
            Some(c) => c.intersection(&exact).cloned().collect(),
        });
    }
    let names = common.filter(|c| !c.is_empty())?;
    Some(KubeSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".to_owned(),
            operator: "NotIn".to_owned(),
            values: Some(names.into_iter().collect()),
        }]),
        match_labels: None,
    })
}

#[cfg(test)]
mod tests;
