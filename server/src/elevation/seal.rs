//! Seals: what policy decided about a challenge, and each approver's decision, signed when they are
//! made with the grant key (which lives outside the database). The elevation layer checks a seal
//! before it acts on the row, so a database writer cannot drop an approval rule, widen a grant's
//! scope, ttl or uses, move it to another namespace, or insert an approver.

use serde_json::json;

use crate::challenges::{ApprovalRecord, Challenge};
use crate::grants::GrantSigner;

const CHALLENGE: &str = "challenge";
const APPROVAL: &str = "approval";

/// The terms of a challenge that decide what its grant may do, as they were when it opened.
fn challenge_terms(c: &Challenge) -> Vec<u8> {
    let r = &c.request;
    let mut terms = json!({
        "code": c.code, "digest": c.digest, "cluster": c.cluster, "guardrail": c.guardrail,
        "username": r.username, "operation": r.operation, "group": r.api_group,
        "resource": r.resource, "subresource": r.subresource, "namespace": r.namespace,
        "name": r.name, "scope": c.scope.as_str(), "ttl": c.grant_ttl_secs, "uses": c.grant_uses,
        "freshness": c.freshness_secs, "createdAt": c.created_at, "expiresAt": c.expires_at,
        "approval": c.approval.as_ref().map(|a| &a.rule),
    });
    // Only when there is one, so the seals of challenges opened before versions still hold.
    if !c.policy_version.is_empty() {
        terms["version"] = json!(c.policy_version);
    }
    terms.to_string().into_bytes()
}

/// One approver's decision, as it counts.
fn approval_terms(a: &ApprovalRecord) -> Vec<u8> {
    json!({
        "challenge": a.challenge_code, "person": a.person, "approver": a.approver,
        "decision": a.decision.as_str(), "groups": a.groups, "decidedAt": a.decided_at,
        "credential": a.evidence.credential_id, "method": a.evidence.method,
        "authTime": a.evidence.auth_time,
    })
    .to_string()
    .into_bytes()
}

/// Seal a challenge as it opens.
pub fn seal_challenge(signer: &GrantSigner, challenge: &mut Challenge) {
    challenge.seal = Some(signer.seal(CHALLENGE, &challenge_terms(challenge)));
}

/// Whether the challenge's policy terms are still the ones sealed when it opened.
pub fn challenge_intact(signer: &GrantSigner, challenge: &Challenge) -> bool {
    challenge
        .seal
        .as_deref()
        .is_some_and(|seal| signer.check_seal(CHALLENGE, &challenge_terms(challenge), seal))
}

/// Seal an approver's decision as it is recorded.
pub fn seal_approval(signer: &GrantSigner, record: &mut ApprovalRecord) {
    record.seal = signer.seal(APPROVAL, &approval_terms(record));
}

/// Whether a stored decision is one this service recorded.
pub fn approval_intact(signer: &GrantSigner, record: &ApprovalRecord) -> bool {
    signer.check_seal(APPROVAL, &approval_terms(record), &record.seal)
}
