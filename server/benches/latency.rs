//! Per-review latency percentiles (p50, p99) of the engine and of regorus on one core.
//! Run: `cargo bench -p server --bench latency`. Criterion reports means; a webhook lives by its tail.

mod support;

use std::time::Instant;

use countersign::admission::parse_review;
use countersign::engine::{Engine, NamespaceIndex};
use countersign::policy::parse_documents;

const ROUNDS: usize = 20_000;

/// The server binary's allocator, so the numbers are the webhook's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn percentiles(mut samples: Vec<u64>) -> (f64, f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
    (at(0.5), at(0.99), at(0.999))
}

fn main() {
    let library_only = std::env::args().any(|a| a == "library");
    // Same stack as the server's worker threads, so CEL evaluation runs as it does in the webhook.
    std::thread::Builder::new()
        .stack_size(countersign::policy::EVAL_STACK + (8 << 20))
        .spawn(move || {
            library();
            if !library_only {
                measure();
            }
        })
        .expect("bench thread")
        .join()
        .expect("bench");
}

/// Realistic objects against the shipped library (`policies/library`): a Deployment as Helm
/// renders it (update with `oldObject`, and as a create without one) and a Pod with several
/// containers, each against the whole library and against one of its CEL conditions alone.
/// `cargo bench -p server --bench latency -- library` runs only this part; `LATENCY_ROUNDS` sets
/// how many times each pair is measured (fewer under callgrind).
fn library() {
    let rounds: usize = std::env::var("LATENCY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let guardrails =
        countersign::policy::load_path(std::path::Path::new(&format!("{root}/policies/library")))
            .expect("library");
    let ns: serde_json::Value = serde_yaml::from_str(
        &std::fs::read_to_string(format!("{root}/deploy/local-namespaces.yaml")).expect("ns"),
    )
    .expect("namespaces yaml");
    let index = NamespaceIndex::from_objects(ns.as_array().expect("list"));
    let helm: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{root}/server/tests/reviews/deployment-update-helm.json"
        ))
        .expect("helm review"),
    )
    .expect("json");
    let mut create = helm.clone();
    create["request"]["operation"] = "CREATE".into();
    create["request"]["oldObject"] = serde_json::Value::Null;
    let mut pod = create.clone();
    let template = helm["request"]["object"]["spec"]["template"].clone();
    pod["request"]["kind"] = serde_json::json!({"group": "", "version": "v1", "kind": "Pod"});
    pod["request"]["resource"] =
        serde_json::json!({"group": "", "version": "v1", "resource": "pods"});
    pod["request"]["object"] = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": template["metadata"], "spec": template["spec"],
    });
    let cases = [
        ("Deployment update (Helm, with oldObject)", helm),
        ("Deployment create (Helm, no oldObject)", create),
        ("Pod create (3 containers)", pod),
    ];
    let one: Vec<_> = guardrails
        .iter()
        .filter(|g| g.name.as_str() == "container-escapes")
        .cloned()
        .collect();
    assert_eq!(one.len(), 1, "the library has container-escapes");
    let engines = [
        (
            format!("library ({})", guardrails.len()),
            Engine::new(guardrails),
        ),
        ("container-escapes alone".to_owned(), Engine::new(one)),
    ];
    println!(
        "{:<44} {:>26} {:>9} {:>9} {:>9}",
        "review (KB)", "guardrails", "p50 µs", "p99 µs", "p99.9 µs"
    );
    for (label, review) in &cases {
        let body = review.to_string();
        let parsed = parse_review(body.as_bytes()).expect("review");
        for (name, engine) in &engines {
            let mut samples = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let t = Instant::now();
                std::hint::black_box(engine.evaluate(&parsed, &index));
                samples.push(t.elapsed().as_nanos() as u64);
            }
            let (p50, p99, p999) = percentiles(samples);
            println!(
                "{:<44} {:>26} {:>9.2} {:>9.2} {:>9.2}",
                format!("{label} ({:.1})", body.len() as f64 / 1024.0),
                name,
                p50,
                p99,
                p999
            );
        }
    }
}

fn measure() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let reviews = support::reviews();
    let parsed: Vec<_> = reviews
        .iter()
        .map(|(_, b)| parse_review(b.as_bytes()).expect("review"))
        .collect();
    let ns = support::namespaces_json();
    let index = NamespaceIndex::from_objects(ns.as_array().expect("list"));
    println!(
        "{:<10} {:>7} {:>10} {:>10} {:>10}",
        "engine", "rules", "p50 µs", "p99 µs", "p99.9 µs"
    );
    for n in [1usize, 10, 100, 1000] {
        let (yaml, rego) = support::guardrails(n, support::WITH_CEL);
        let engine = Engine::new(parse_documents("bench", &yaml).expect("guardrails"));
        let rounds = if n >= 1000 { ROUNDS / 10 } else { ROUNDS };
        let mut samples = Vec::with_capacity(rounds * parsed.len());
        for _ in 0..rounds {
            for r in &parsed {
                let t = Instant::now();
                std::hint::black_box(engine.evaluate(r, &index));
                samples.push(t.elapsed().as_nanos() as u64);
            }
        }
        let (p50, p99, p999) = percentiles(samples);
        println!(
            "{:<10} {:>7} {:>10.2} {:>10.2} {:>10.2}",
            "countersign", n, p50, p99, p999
        );

        let mut rego_engine = support::rego_engine(rego, &ns);
        let inputs = support::rego_inputs(&reviews);
        let rounds = (rounds / 20).max(50);
        let mut samples = Vec::with_capacity(rounds * inputs.len());
        for _ in 0..rounds {
            for input in &inputs {
                let t = Instant::now();
                rego_engine.set_input(input.clone());
                std::hint::black_box(
                    rego_engine
                        .eval_rule("data.countersign.hits".into())
                        .expect("eval"),
                );
                samples.push(t.elapsed().as_nanos() as u64);
            }
        }
        let (p50, p99, p999) = percentiles(samples);
        println!(
            "{:<10} {:>7} {:>10.2} {:>10.2} {:>10.2}",
            "regorus", n, p50, p99, p999
        );
    }
}
