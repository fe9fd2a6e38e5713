//! The simulator's core: a draft of the guardrails against recorded traffic (or reviews given by
//! hand), beside the version in force. Pure: it takes the samples and both snapshots, and says what
//! each would decide, what would trip, whom it affects, what it projects per day, and which requests
//! change between allowed and held (needing a grant or denied).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::admission::{parse_review, AdmissionRequest};
use crate::engine::{Decision, NamespaceLabels, Snapshot};
use crate::policy::ActionKind;
use crate::traffic::ShapeSample;

/// One request to simulate, standing for `count` like it over `days`.
#[derive(Debug, Clone)]
pub struct Sample {
    /// A label for lists (`UPDATE apps/deployments shop/api by alice`).
    pub label: String,
    /// The request.
    pub request: AdmissionRequest,
    /// How many such requests it stands for.
    pub count: i64,
}

impl Sample {
    /// A recorded shape as a sample; `None` when it kept no example (it cannot be replayed).
    pub fn from_recorded(recorded: &ShapeSample) -> Option<Self> {
        if recorded.request.is_null() {
            return None;
        }
        let review = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": recorded.request,
        });
        let request = parse_review(review.to_string().as_bytes()).ok()?;
        Some(Self {
            label: label(&request),
            request,
            count: recorded.count,
        })
    }

    /// An AdmissionReview given by hand, counted once.
    pub fn from_review(body: &[u8]) -> Result<Self, String> {
        let request = parse_review(body).map_err(|e| e.to_string())?;
        Ok(Self {
            label: label(&request),
            request,
            count: 1,
        })
    }
}

fn label(r: &AdmissionRequest) -> String {
    let group = if r.resource.group.is_empty() {
        "core"
    } else {
        &r.resource.group
    };
    let sub = if r.sub_resource.is_empty() {
        String::new()
    } else {
        format!("/{}", r.sub_resource)
    };
    let place = match (r.namespace.as_str(), r.name.as_str()) {
        ("", name) => name.to_owned(),
        (ns, name) => format!("{ns}/{name}"),
    };
    format!(
        "{} {group}/{}{sub} {place} by {}",
        r.operation.as_str(),
        r.resource.resource,
        r.user_info.username
    )
}

/// What the draft does to one guardrail's share of the traffic.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tripped {
    /// Requests it matched (counted).
    pub requests: i64,
    /// Who sent them.
    pub people: BTreeSet<String>,
    /// Up to five of them.
    pub examples: Vec<String>,
}

/// A request whose outcome changes.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The request.
    pub label: String,
    /// How many like it.
    pub count: i64,
    /// What the version in force does.
    pub before: ActionKind,
    /// What the draft would do.
    pub after: ActionKind,
}

/// The simulation's report.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Requests simulated (counted).
    pub requests: i64,
    /// Recorded shapes that kept no example and were left out.
    pub skipped: usize,
    /// Over how many days the traffic was recorded (for the per-day projections).
    pub days: f64,
    /// Per guardrail of the draft that matched anything.
    pub guardrails: BTreeMap<String, Tripped>,
    /// Step-ups the draft would ask for per day.
    pub step_ups_per_day: f64,
    /// Approvals the draft would ask for per day.
    pub approvals_per_day: f64,
    /// Allowed today, held by the draft (a grant needed, or denied).
    pub newly_held: Vec<Change>,
    /// Held today, allowed by the draft.
    pub newly_allowed: Vec<Change>,
    /// Draft guardrails that match nothing of the traffic, or most of it: likely mistakes.
    pub warnings: Vec<String>,
}

/// A draft guardrail matching more than this share of the traffic is probably too broad.
const MOST: f64 = 0.5;

impl Report {
    /// Requests the draft would start holding that pass today.
    pub fn newly_held_requests(&self) -> i64 {
        self.newly_held.iter().map(|c| c.count).sum()
    }
}

/// Whether a decision lets the request through without a grant.
fn passes(decision: &Decision) -> bool {
    matches!(
        decision.action,
        ActionKind::Allow | ActionKind::Audit | ActionKind::Warn
    )
}

/// Run `samples` (recorded over `days`) through `in_force` and `draft`.
pub fn simulate(
    in_force: &Snapshot,
    draft: &Snapshot,
    samples: &[Sample],
    days: f64,
    labels: &dyn NamespaceLabels,
) -> Report {
    let mut report = Report {
        days,
        ..Report::default()
    };
    let (mut step_ups, mut approvals) = (0i64, 0i64);
    for sample in samples {
        report.requests += sample.count;
        let before = in_force.evaluate(&sample.request, labels);
        let after = draft.evaluate(&sample.request, labels);
        for hit in &after.hits {
            let tripped = report.guardrails.entry(hit.name.clone()).or_default();
            tripped.requests += sample.count;
            tripped
                .people
                .insert(sample.request.user_info.username.clone());
            if tripped.examples.len() < 5 {
                tripped.examples.push(sample.label.clone());
            }
        }
        match after.action {
            ActionKind::StepUp => step_ups += sample.count,
            ActionKind::Approval => approvals += sample.count,
            _ => {}
        }
        let change = || Change {
            label: sample.label.clone(),
            count: sample.count,
            before: before.action,
            after: after.action,
        };
        match (passes(&before), passes(&after)) {
            (true, false) => report.newly_held.push(change()),
            (false, true) => report.newly_allowed.push(change()),
            _ => {}
        }
    }
    if report.requests > 0 {
        for guardrail in draft.guardrails() {
            let name = guardrail.name.to_string();
            match report.guardrails.get(&name) {
                None => report.warnings.push(format!(
                    "{name} matches none of the {} requests: check its match clauses and condition",
                    report.requests
                )),
                Some(t) if t.requests as f64 > MOST * report.requests as f64 => {
                    report.warnings.push(format!(
                        "{name} matches most of the traffic ({} of {} requests): is it broader than meant?",
                        t.requests, report.requests
                    ))
                }
                Some(_) => {}
            }
        }
    }
    let days = days.max(1.0);
    report.step_ups_per_day = step_ups as f64 / days;
    report.approvals_per_day = approvals as f64 / days;
    for list in [&mut report.newly_held, &mut report.newly_allowed] {
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    }
    report
}

/// The report as people read it.
pub fn render(report: &Report, draft: &str, in_force: &str) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "draft {draft} against {in_force}: {} requests over {:.1} day(s){}\n",
        report.requests,
        report.days,
        if report.skipped > 0 {
            format!(
                " ({} recorded shapes kept no example and were left out)",
                report.skipped
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "projected per day: {:.1} step-up(s), {:.1} approval(s)",
        report.step_ups_per_day, report.approvals_per_day
    );
    for (name, t) in &report.guardrails {
        let _ = writeln!(
            out,
            "  {name}: {} request(s) from {} ({})",
            t.requests,
            t.people.iter().cloned().collect::<Vec<_>>().join(", "),
            t.examples.first().map(String::as_str).unwrap_or_default()
        );
    }
    let list = |out: &mut String, title: &str, changes: &[Change]| {
        let total: i64 = changes.iter().map(|c| c.count).sum();
        let _ = writeln!(out, "{title}: {total}");
        for c in changes.iter().take(20) {
            let _ = writeln!(
                out,
                "  {} x{}: {} -> {}",
                c.label,
                c.count,
                c.before.as_str(),
                c.after.as_str()
            );
        }
    };
    list(
        &mut out,
        "allowed today, held by the draft",
        &report.newly_held,
    );
    list(
        &mut out,
        "held today, allowed by the draft",
        &report.newly_allowed,
    );
    for w in &report.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::NamespaceIndex;

    const DENY_DELETE: &str = "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata: {name: keep-namespaces}\nspec:\n  match:\n    operations: [DELETE]\n    resources: [{apiGroups: [\"\"], resources: [namespaces]}]\n  action: {type: deny}\n";
    const STEP_UP_CONFIGMAPS: &str = "apiVersion: countersign.dev/v1alpha1\nkind: Guardrail\nmetadata: {name: configmaps}\nspec:\n  match:\n    operations: [UPDATE]\n    resources: [{apiGroups: [\"\"], resources: [configmaps]}]\n  action: {type: stepUp}\n";

    fn snapshot(version: &str, text: &str) -> Snapshot {
        Snapshot::new(
            crate::policy::parse_documents(version, text).unwrap(),
            version,
        )
    }

    fn sample(file: &str, count: i64) -> Sample {
        let path = format!("{}/tests/reviews/{file}.json", env!("CARGO_MANIFEST_DIR"));
        let mut s = Sample::from_review(&std::fs::read(path).unwrap()).unwrap();
        s.count = count;
        s
    }

    #[test]
    fn a_draft_is_compared_with_the_version_in_force_request_by_request() {
        let in_force = snapshot("v1", DENY_DELETE);
        let draft = snapshot("draft", STEP_UP_CONFIGMAPS);
        let samples = [
            sample("configmap-update-large", 14),
            sample("namespace-delete", 2),
        ];
        let report = simulate(&in_force, &draft, &samples, 7.0, &NamespaceIndex::default());
        assert_eq!(report.requests, 16);
        assert_eq!(report.guardrails["configmaps"].requests, 14);
        assert_eq!(report.step_ups_per_day, 2.0);
        assert_eq!(report.newly_held_requests(), 14);
        assert_eq!(report.newly_held[0].after, ActionKind::StepUp);
        assert_eq!(report.newly_allowed.len(), 1);
        assert_eq!(report.newly_allowed[0].before, ActionKind::Deny);
        assert!(
            report.newly_allowed[0]
                .label
                .starts_with("DELETE core/namespaces"),
            "{:?}",
            report.newly_allowed
        );
        let text = render(&report, "draft", "v1");
        assert!(
            text.contains("allowed today, held by the draft: 14"),
            "{text}"
        );
        // 14 of 16 requests: most of the traffic.
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(
            text.contains("warning: configmaps matches most of the traffic (14 of 16 requests)")
        );
    }

    #[test]
    fn a_draft_guardrail_matching_nothing_recorded_is_warned_about() {
        let none = snapshot("v1", "");
        let draft = snapshot("draft", &format!("{DENY_DELETE}---\n{STEP_UP_CONFIGMAPS}"));
        let samples = [sample("configmap-update-large", 1), sample("pod-exec", 3)];
        let report = simulate(&none, &draft, &samples, 1.0, &NamespaceIndex::default());
        assert_eq!(
            report.warnings,
            [
                "keep-namespaces matches none of the 4 requests: check its match clauses and condition"
            ]
        );
        // No traffic, no warnings: nothing is known.
        let report = simulate(&none, &draft, &[], 1.0, &NamespaceIndex::default());
        assert!(report.warnings.is_empty());
    }
}
