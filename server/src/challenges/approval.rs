//! What an approval guardrail adds to a challenge: the requester's reason and step-up, and each
//! approver's decision.

use serde::{Deserialize, Serialize};

use crate::grants::Evidence;
use crate::policy::ApprovalPolicy;

/// How a challenge of an approval guardrail stands with its requester and approvers (kept in
/// the challenge's body; each approver's decision is a row of its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalCase {
    /// The guardrail's rule as it was when the request came (later edits do not move it).
    pub rule: ApprovalPolicy,
    /// Why the requester needs it, once confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The account that stepped up for it (the requester, or an owner of its service account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<String>,
    /// That step-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_evidence: Option<Evidence>,
    /// Unix seconds of the confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<i64>,
    /// Who ended it without a grant (rejected, withdrawn), when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closed>,
}

/// The end of a challenge that did not become a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Closed {
    /// Account that ended it.
    pub by: String,
    /// Unix seconds.
    pub at: i64,
    /// What they said.
    pub reason: String,
}

/// Yes or no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalDecision {
    /// Countersigned.
    Approve,
    /// Refused: ends the challenge.
    Reject,
}

impl ApprovalDecision {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalDecision::Approve => "approve",
            ApprovalDecision::Reject => "reject",
        }
    }

    /// From storage; anything unknown reads as a rejection (it can never count towards a grant).
    pub fn parse(s: &str) -> Self {
        if s == "approve" {
            ApprovalDecision::Approve
        } else {
            ApprovalDecision::Reject
        }
    }
}

/// One approver's decision on one challenge, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    /// The challenge decided.
    pub challenge_code: String,
    /// The person behind that account (`IdentityMap::person_of`): one decision per person.
    pub person: String,
    /// Account that decided.
    pub approver: String,
    /// Yes or no.
    pub decision: ApprovalDecision,
    /// What they said.
    pub reason: String,
    /// Their groups when they decided.
    pub groups: Vec<String>,
    /// Their step-up.
    pub evidence: Evidence,
    /// Unix seconds.
    pub decided_at: i64,
    /// The grant key's seal over the decision (`elevation::seal`); an unsealed row never counts.
    pub seal: String,
}
