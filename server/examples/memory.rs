//! Resident memory of the webhook's in-memory state: 1,000 guardrails, 100,000 live grants and
//! 10,000 namespaces' labels. Run: `cargo run --release -p server --example memory`.

#[path = "../benches/support/mod.rs"]
mod support;

use countersign::engine::{Engine, NamespaceIndex};
use countersign::grants::{GrantCache, LiveGrant};
use countersign::policy::{parse_documents, GrantScope};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let base = rss_kib();
    let (yaml, _) = support::guardrails(1000, support::WITH_CEL);
    let engine = Engine::new(parse_documents("memory", &yaml)?);
    let after_guardrails = rss_kib();

    // One object at a time, as the reflector sees them: no large temporary inflates the reading.
    let mut index = NamespaceIndex::default();
    for i in 0..10_000 {
        index.upsert(&serde_json::json!({"metadata": {"name": format!("team-{i}"), "labels": {
            "env": "prod", "team": format!("t{i}"), "kubernetes.io/metadata.name": format!("team-{i}")}}}));
    }
    let after_namespaces = rss_kib();

    let cache = GrantCache::new("default");
    let now = countersign::clock::now();
    for i in 0..100_000u32 {
        let grant = LiveGrant {
            id: uuid::Uuid::new_v4().to_string(),
            username: format!("user{}@example.com", i % 5000),
            guardrail: format!("g{}", i % 1000),
            cluster: "default".into(),
            scope: GrantScope::Request,
            digest: format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15),
            namespace: format!("team-{}", i % 10_000),
            object_key: format!("apps/deployments/team-{}/api-{i}", i % 10_000),
            uses_left: Some(1),
            expires_at: now + 900,
            break_glass: false,
        };
        cache.insert(&grant, now);
    }
    let after_grants = rss_kib();

    println!("baseline                        {:>8} KiB", base);
    println!(
        "+ 1,000 guardrails              {:>8} KiB  (+{} KiB)",
        after_guardrails,
        after_guardrails - base
    );
    println!(
        "+ 10,000 namespaces' labels     {:>8} KiB  (+{} KiB)",
        after_namespaces,
        after_namespaces - after_guardrails
    );
    println!(
        "+ 100,000 live grants           {:>8} KiB  (+{} KiB)",
        after_grants,
        after_grants - after_namespaces
    );
    println!(
        "total state: {} guardrails, {} namespaces, {} grants",
        engine.guardrails().len(),
        index.len(),
        cache.len()
    );
    Ok(())
}
