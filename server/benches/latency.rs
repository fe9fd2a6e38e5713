//! Per-review latency percentiles (p50, p99) of the engine and of regorus on one core.
//! Run: `cargo bench -p server --bench latency`. Criterion reports means; a webhook lives by its tail.

mod support;

use std::time::Instant;

use countersign::admission::parse_review;
use countersign::engine::{Engine, NamespaceIndex};
use countersign::policy::parse_documents;

const ROUNDS: usize = 20_000;

fn percentiles(mut samples: Vec<u64>) -> (f64, f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
    (at(0.5), at(0.99), at(0.999))
}

fn main() {
    // Same stack as the server's worker threads, so CEL evaluation runs as it does in the webhook.
    std::thread::Builder::new()
        .stack_size(countersign::policy::EVAL_STACK + (8 << 20))
        .spawn(measure)
        .expect("bench thread")
        .join()
        .expect("bench");
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
