//! A signed grant checked against the guardrail in force: the token proves this service issued it,
//! this proves the guardrail would issue it now. A grant widened through the database before it
//! was signed, or issued under a weaker rule than the one loaded, is not honoured.

use crate::challenges::{ApprovalDecision, ApprovalRecord};
use crate::elevation::rules;
use crate::identity::mapping::IdentityMap;
use crate::policy::{GrantScope, Guardrail};

use super::GrantClaims;

/// Which term of the guardrail a grant's claims exceed, if any.
pub fn exceeds(
    claims: &GrantClaims,
    guardrail: &Guardrail,
    identities: &IdentityMap,
) -> Option<&'static str> {
    let action = &guardrail.action;
    if !action.kind.needs_grant() {
        return Some("guardrail needs no grant");
    }
    if claims.exp - claims.iat > action.grant.ttl.seconds() as i64 {
        return Some("ttl");
    }
    // A grant may always be narrower: a request grant where no object can be named, or the
    // narrowest scope of several guardrails one challenge stood for.
    if GrantScope::parse(&claims.scope).is_none_or(|scope| scope > action.grant.scope) {
        return Some("scope");
    }
    if let Some(allowed) = action.grant.uses {
        if claims.uses.is_none_or(|uses| uses > i64::from(allowed)) {
            return Some("uses");
        }
    }
    let Some(rule) = &action.approval else {
        return None;
    };
    let evidence = &claims.evidence;
    if evidence.break_glass {
        return rule.break_glass.is_none().then_some("break glass");
    }
    let requester = identities.person_of(&claims.sub);
    let confirmer = identities.person_of(&evidence.account);
    let approvals: Vec<ApprovalRecord> = evidence
        .approvals
        .iter()
        .map(|a| ApprovalRecord {
            challenge_code: claims.challenge.clone(),
            person: identities.person_of(&a.approver).to_owned(),
            approver: a.approver.clone(),
            decision: ApprovalDecision::Approve,
            reason: String::new(),
            groups: a.groups.clone(),
            evidence: a.step_up.clone(),
            decided_at: a.decided_at,
            seal: String::new(),
        })
        .collect();
    if approvals
        .iter()
        .any(|a| a.person == requester || a.person == confirmer)
    {
        return Some("approvals");
    }
    (!rules::tally(rule, &approvals).is_met()).then_some("approvals")
}
