//! Any bytes as an AdmissionReview body: parsing and evaluation must never panic.
#![no_main]

use std::sync::OnceLock;

use countersign::admission::{parse_review, Verdict};
use countersign::engine::{Engine, NamespaceIndex};
use libfuzzer_sys::fuzz_target;

const GUARDRAILS: &str = include_str!("../../server/tests/policies/guardrails.yaml");

fn engine() -> &'static (Engine, NamespaceIndex) {
    static ENGINE: OnceLock<(Engine, NamespaceIndex)> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let guardrails = countersign::policy::parse_documents("fuzz", GUARDRAILS).unwrap_or_default();
        let namespaces = serde_json::json!([
            {"metadata": {"name": "payments", "labels": {"env": "prod"}}},
            {"metadata": {"name": "dev", "labels": {"env": "dev"}}}
        ]);
        (Engine::new(guardrails), NamespaceIndex::from_objects(namespaces.as_array().map(Vec::as_slice).unwrap_or(&[])))
    })
}

fuzz_target!(|data: &[u8]| {
    let (engine, namespaces) = engine();
    if let Ok(request) = parse_review(data) {
        let decision = engine.evaluate(&request, namespaces);
        let _ = decision.warnings();
        let _ = countersign::admission::request_digest("fuzz", &request);
        let _ = Verdict::allow().to_review(&request.uid);
    }
});
