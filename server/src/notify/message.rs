//! What a notice says: who asks, for what, why, which groups must act, until when, and the link.

use serde::Serialize;

use crate::challenges::Challenge;
use crate::elevation::{ElevationEvent, Happened};
use crate::portal::describe::{place, Described};

/// The facts of one notice, whatever the receiver's format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// `approval.requested`, `approval.approved` (one of several), `approval.granted`,
    /// `approval.rejected`, `approval.withdrawn`, `approval.expired`, `approval.break_glass` or
    /// `approval.revoked`.
    pub event: &'static str,
    /// Challenge code.
    pub code: String,
    /// Guardrail.
    pub guardrail: String,
    /// Kubernetes username of the request.
    pub requester: String,
    /// "Change Deployment api in namespace payments".
    pub what: String,
    /// Why the requester asked.
    pub reason: String,
    /// Group lists that must act, each "a or b".
    pub groups: Vec<String>,
    /// Unix seconds: when the request stops waiting.
    pub expires_at: i64,
    /// Who decided (empty for a request or a timeout).
    pub by: String,
    /// What the decider said.
    pub decision_reason: String,
    /// Where to look: the approvers' review page for a request, the request's page otherwise.
    pub link: String,
}

impl Notice {
    /// The notice for `event` on `challenge`; `None` for a challenge that needs no approvers.
    pub fn of(event: &ElevationEvent, challenge: &Challenge, public_url: &str) -> Option<Self> {
        let case = challenge.approval.as_ref()?;
        let (name, link) = match event.happened {
            Happened::AwaitingApproval => ("approval.requested", "approvals"),
            Happened::Granted => ("approval.granted", "c"),
            Happened::Rejected => ("approval.rejected", "c"),
            Happened::Withdrawn => ("approval.withdrawn", "c"),
            Happened::Expired => ("approval.expired", "c"),
            Happened::BrokeGlass => ("approval.break_glass", "c"),
            Happened::Revoked => ("approval.revoked", "c"),
            // One approver of several: the others still need to act, so the link is theirs.
            Happened::Approved => ("approval.approved", "approvals"),
        };
        let r = &challenge.request;
        Some(Self {
            event: name,
            code: challenge.code.clone(),
            guardrail: challenge.guardrails_label(),
            requester: r.username.clone(),
            what: format!("{} {}", Described::from(r).title(), place(&r.namespace)),
            reason: case.reason.clone().unwrap_or_default(),
            groups: case.rule.groups.iter().map(|g| g.join(" or ")).collect(),
            expires_at: challenge.expires_at,
            by: event.by.clone(),
            decision_reason: case
                .closed
                .as_ref()
                .map(|c| c.reason.clone())
                .unwrap_or_default(),
            link: format!("{public_url}/{link}/{}", challenge.code),
        })
    }

    /// One line for people.
    pub fn headline(&self) -> String {
        match self.event {
            "approval.requested" => format!(
                "{} asks for approval: {} (needs {})",
                self.requester,
                self.what,
                self.groups.join(" and ")
            ),
            "approval.approved" => format!(
                "{} approved {} for {}; more approvers are needed",
                self.by, self.what, self.requester
            ),
            "approval.granted" => format!("Approved: {} for {}", self.what, self.requester),
            "approval.rejected" => format!(
                "Rejected by {}: {} for {}",
                self.by, self.what, self.requester
            ),
            "approval.withdrawn" => format!("Withdrawn by {}: {}", self.by, self.what),
            "approval.expired" => format!(
                "Nobody approved in time: {} for {}",
                self.what, self.requester
            ),
            "approval.revoked" => format!(
                "Revoked by {}: the grant for {} for {}",
                self.by, self.what, self.requester
            ),
            _ => format!(
                "BREAK GLASS by {}: {} approved without approvers",
                self.by, self.what
            ),
        }
    }
}

/// Text as Slack's mrkdwn wants it (`&`, `<` and `>` escaped), so a reason cannot forge a link.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What a person typed (a reason) or an identity provider asserted (a name), made safe for chat:
/// one line (newlines, control and bidi characters folded into spaces, so it cannot forge a status
/// line of its own), and links defanged (`https[:]//evil[.]test`), so chat does not make them
/// clickable under the bot's name.
fn plain(text: &str) -> String {
    let folded: String = text
        .chars()
        .map(|c| {
            let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect();
    folded
        .split_whitespace()
        .map(defang)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word that chat would make a link of (`https://…`, `www.…`, `host.tld/path`), with its dots
/// and scheme bracketed; any other word (a name, an address, a version) as it is.
fn defang(word: &str) -> String {
    let before_slash = word.split('/').next().unwrap_or_default();
    let linky = word.contains("://")
        || word.to_ascii_lowercase().starts_with("www.")
        || (word.contains('/') && before_slash.contains('.'));
    if !linky {
        return word.to_owned();
    }
    word.replace("://", "[:]//").replace('.', "[.]")
}

/// The notice with everything people or identity providers chose made [`plain`].
fn for_chat(n: &Notice) -> Notice {
    Notice {
        requester: plain(&n.requester),
        by: plain(&n.by),
        reason: plain(&n.reason),
        decision_reason: plain(&n.decision_reason),
        ..n.clone()
    }
}

/// Slack's incoming-webhook body: a `text` fallback and a section with the facts and the link.
pub fn slack_body(notice: &Notice) -> serde_json::Value {
    let n = &for_chat(notice);
    let expires = crate::clock::hhmm_utc(n.expires_at);
    let mut lines = vec![format!("*{}*", escape(&n.headline()))];
    if !n.reason.is_empty() {
        lines.push(format!("Reason: \u{201c}{}\u{201d}", escape(&n.reason)));
    }
    if !n.decision_reason.is_empty() {
        lines.push(format!(
            "{}: \u{201c}{}\u{201d}",
            escape(&n.by),
            escape(&n.decision_reason)
        ));
    }
    lines.push(format!(
        "Guardrail `{}` · waits until {expires} · <{}|Open in Countersign>",
        escape(&n.guardrail),
        n.link
    ));
    serde_json::json!({
        "text": format!("{} {}", escape(&n.headline()), n.link),
        "blocks": [{ "type": "section", "text": { "type": "mrkdwn", "text": lines.join("\n") } }],
    })
}

/// Every fact as its own field, for receivers other than chat.
pub fn generic_body(n: &Notice) -> serde_json::Value {
    let mut body = serde_json::to_value(n).unwrap_or_default();
    body["summary"] = serde_json::Value::String(n.headline());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(reason: &str, requester: &str) -> Notice {
        Notice {
            event: "approval.requested",
            code: "K7Q2M9XD".into(),
            guardrail: "payments".into(),
            requester: requester.into(),
            what: "Change Deployment api in namespace payments".into(),
            reason: reason.into(),
            groups: vec!["payments-oncall".into()],
            expires_at: 0,
            by: String::new(),
            decision_reason: String::new(),
            link: "https://countersign.example.com/approvals/K7Q2M9XD".into(),
        }
    }

    #[test]
    fn review2_10_requester_text_cannot_forge_lines_or_links() {
        let reason = "INC-4411\n*Approved by carol (manager)*\nUse the emergency page: https://countersign.example.com.evil.test/approvals/K7Q2M9XD \u{202e}txt.exe";
        let body = slack_body(&notice(reason, "<https://evil|Open in Countersign>"));
        let blocks = body["blocks"][0]["text"]["text"].as_str().unwrap();
        let text = body["text"].as_str().unwrap();
        // The reason is one quoted line: no forged status line of its own.
        assert!(!blocks.contains("\n*Approved by carol"), "{blocks}");
        assert!(
            blocks.contains("INC-4411 *Approved by carol (manager)* Use"),
            "{blocks}"
        );
        // Its link is defanged; only our own link stays a link.
        assert!(
            !blocks.contains("https://countersign.example.com.evil"),
            "{blocks}"
        );
        assert!(
            blocks.contains("https[:]//countersign[.]example[.]com[.]evil[.]test"),
            "{blocks}"
        );
        assert!(!blocks.contains('\u{202e}'));
        // A name shaped like a Slack link is escaped in the blocks and in the `text` fallback.
        assert!(!text.contains("<https"), "{text}");
        assert!(!blocks.contains("<https://evil"), "{blocks}");
        assert!(text.ends_with("https://countersign.example.com/approvals/K7Q2M9XD"));
    }
}
