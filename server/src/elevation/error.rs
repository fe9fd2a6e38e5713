//! Why an elevation step was refused; the portal, the webhook and the CLI each turn these into
//! their own answers.

use super::rules::Refusal;
use crate::store::StoreError;

/// A refused or failed elevation step.
#[derive(Debug, thiserror::Error)]
pub enum ElevationError {
    /// No challenge (or grant) has this id.
    #[error("no challenge has this code")]
    NotFound,
    /// The person may not act for the request's subject.
    #[error("this request was made by {subject}; only {confirmers} can confirm it")]
    NotYours {
        /// Kubernetes username of the request.
        subject: String,
        /// Who may, in words.
        confirmers: String,
    },
    /// It was decided, withdrawn or has expired.
    #[error("this request is {0}; nothing more can be done with it")]
    Closed(&'static str),
    /// It is not waiting for what was asked (approving before the requester confirmed, say).
    #[error("{0}")]
    NotNow(&'static str),
    /// The step-up is older than the guardrail allows, or did not verify the person.
    #[error("your confirmation is older than this guardrail allows ({0}s); confirm again")]
    StaleStepUp(i64),
    /// A reason was missing or out of bounds (the text says what to do, in words).
    #[error("{0}")]
    BadReason(String),
    /// The approver may not decide this one.
    #[error("{}", refusal_text(.0))]
    Refused(Refusal),
    /// This approver has decided it already.
    #[error("you have decided this request already")]
    AlreadyDecided,
    /// The guardrail allows no break glass, or not for this person.
    #[error("{0}")]
    NoBreakGlass(&'static str),
    /// What the store holds for this challenge is not what this service sealed: someone wrote
    /// the database. Nothing is done with it.
    #[error("this request's stored record was changed outside Countersign; it cannot be used (ask for a new link by retrying)")]
    Tampered(&'static str),
    /// A hit names a guardrail the snapshot that decided it does not hold (a bug, never input).
    #[error("guardrail \"{0}\" is not in the version that decided this request")]
    UnknownGuardrail(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refusal_text(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::OwnRequest => "nobody approves their own request, under any of their names",
        Refusal::ConfirmedIt => {
            "you confirmed this request for its service account; another approver must decide"
        }
        Refusal::NotAnApprover => "none of your groups approves for this guardrail",
    }
}
