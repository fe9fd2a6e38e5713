//! `POST /k8s/admit`: parse, evaluate, check grants or challenge, answer within budget.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::metrics::Outcome;
use super::stepup;
use super::WebhookState;
use crate::admission::{parse_review, AdmissionRequest, Verdict};
use crate::policy::ActionKind;

/// Time allowed for store work on one review; the API server's default webhook timeout is 10 s.
const STORE_BUDGET: Duration = Duration::from_secs(3);

pub(super) async fn admit(State(state): State<WebhookState>, body: Bytes) -> Response {
    let started = Instant::now();
    let request = match parse_review(&body) {
        Ok(r) => r,
        Err(e) => {
            state
                .metrics
                .record(Outcome::BadRequest, started.elapsed().as_micros() as u64);
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": e.to_string() })),
            )
                .into_response();
        }
    };
    let (verdict, outcome) = review(&state, &request).await;
    state
        .metrics
        .record(outcome, started.elapsed().as_micros() as u64);
    Json(verdict.to_review(&request.uid)).into_response()
}

/// Decide one parsed request.
pub async fn review(state: &WebhookState, request: &AdmissionRequest) -> (Verdict, Outcome) {
    // One snapshot of the guardrails for the whole review: evaluation, the grant or challenge and
    // the decision log all see the same version, whatever is published meanwhile. The labels as of
    // now; a watch may swap in new ones meanwhile without waiting for this review.
    let snapshot = state.guardrails.load();
    let decision = snapshot.evaluate(request, &**state.namespaces.load());
    let warnings = decision.warnings();
    let (mut verdict, outcome) = match decision.action {
        ActionKind::Allow | ActionKind::Audit | ActionKind::Warn => {
            (Verdict::allow(), Outcome::Allowed)
        }
        ActionKind::Deny => {
            let hit = decision.enforced(ActionKind::Deny).next();
            let message = hit.map_or_else(
                || "denied by a guardrail".to_owned(),
                |h| format!("denied by guardrail \"{}\": {}", h.name, h.message),
            );
            (Verdict::deny(message), Outcome::Denied)
        }
        ActionKind::StepUp | ActionKind::Approval => {
            let check = stepup::check(state, &snapshot, request, &decision);
            match tokio::time::timeout(STORE_BUDGET, check).await {
                Ok(Ok(result)) => result,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, uid = %request.uid, "step-up check failed");
                    state.metrics.store_failure();
                    (unavailable(&decision), Outcome::Denied)
                }
                Err(_) => {
                    tracing::error!(uid = %request.uid, "step-up check timed out");
                    state.metrics.store_failure();
                    (unavailable(&decision), Outcome::Denied)
                }
            }
        }
    };
    verdict.warnings.extend(warnings);
    // Which guardrail version decided, in the cluster's own audit log; only where one matched, so
    // the unmatched majority of reviews stays as small as it was.
    if !decision.hits.is_empty() {
        verdict
            .audit_annotations
            .insert("version".into(), snapshot.version().to_owned());
    }
    // A condition that could not be evaluated made its guardrail match (fail closed): record it.
    let failed: Vec<&str> = decision
        .hits
        .iter()
        .filter(|h| h.condition_error.is_some())
        .map(|h| h.name.as_str())
        .collect();
    if !failed.is_empty() {
        tracing::warn!(uid = %request.uid, guardrails = ?failed, "guardrail condition failed; treated as matched");
        verdict
            .audit_annotations
            .insert("condition-error".into(), failed.join(","));
    }
    state
        .decisions
        .record(request, &decision, outcome, &snapshot);
    state.traffic.observe(request, !decision.hits.is_empty());
    (verdict, outcome)
}

fn unavailable(decision: &crate::engine::Decision) -> Verdict {
    let hits: Vec<&crate::engine::Hit> = decision.needing_grants().collect();
    Verdict::deny(format!(
        "{} required by {}, but the step-up service is unavailable; retry in a minute",
        stepup::need(stepup::strictest(&hits)),
        stepup::named(&hits)
    ))
}

pub(super) async fn ready(State(state): State<WebhookState>) -> Response {
    if !state.namespaces.is_synced() {
        return (StatusCode::SERVICE_UNAVAILABLE, "namespaces not listed yet").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(2), state.store.count_users()).await {
        // Degraded, not down: the last good guardrails decide while newer ones are refused, and
        // what the cluster does not send is said.
        Ok(Ok(_)) => {
            let mut problems = Vec::new();
            if let Some(why) = state.guardrails.problem() {
                problems.push(format!(
                    "guardrails {} stay in force; newer ones were refused: {why}",
                    state.guardrails.load().version()
                ));
            }
            if let Some(why) = state.routing.problem() {
                problems.push(why.to_string());
            }
            if problems.is_empty() {
                (StatusCode::OK, "ready").into_response()
            } else {
                (
                    StatusCode::OK,
                    format!("ready, degraded: {}", problems.join("; ")),
                )
                    .into_response()
            }
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response(),
    }
}

pub(super) async fn metrics(State(state): State<WebhookState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render()
            + &state.guardrails.render()
            + &state.decisions.render()
            + &state.traffic.render()
            + &state.routing.render(),
    )
        .into_response()
}

pub(super) async fn jwks(State(state): State<WebhookState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.signer.jwks()),
    )
        .into_response()
}
