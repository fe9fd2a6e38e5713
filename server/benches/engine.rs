//! Criterion: the guardrail engine against regorus (Rego) on the same reviews and equivalent rules.
//! Run: `cargo bench -p server --bench engine`.

mod support;

use countersign::admission::parse_review;
use countersign::engine::{Engine, NamespaceIndex};
use countersign::policy::parse_documents;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn engines(c: &mut Criterion) {
    let reviews = support::reviews();
    let parsed: Vec<_> = reviews
        .iter()
        .map(|(_, body)| parse_review(body.as_bytes()).expect("review"))
        .collect();
    let namespaces_json = support::namespaces_json();
    let index = NamespaceIndex::from_objects(namespaces_json.as_array().expect("list"));
    let mut group = c.benchmark_group("evaluate 6 reviews");
    for n in [1usize, 10, 100, 1000] {
        let (yaml, rego) = support::guardrails(n, support::WITH_CEL);
        let engine = Engine::new(parse_documents("bench", &yaml).expect("guardrails"));
        group.bench_with_input(BenchmarkId::new("countersign", n), &n, |b, _| {
            b.iter(|| {
                for r in &parsed {
                    std::hint::black_box(engine.evaluate(r, &index));
                }
            })
        });

        let mut rego_engine = support::rego_engine(rego, &namespaces_json);
        let inputs = support::rego_inputs(&reviews);
        group.bench_with_input(BenchmarkId::new("regorus", n), &n, |b, _| {
            b.iter(|| {
                for input in &inputs {
                    rego_engine.set_input(input.clone());
                    std::hint::black_box(
                        rego_engine
                            .eval_rule("data.countersign.hits".into())
                            .expect("eval"),
                    );
                }
            })
        });
    }
    group.finish();

    let (yaml, _) = support::guardrails(100, support::WITH_CEL);
    let engine = Engine::new(parse_documents("bench", &yaml).expect("guardrails"));
    c.bench_function("parse + evaluate deployment-update, 100 guardrails", |b| {
        let body = reviews[0].1.as_bytes();
        b.iter(|| {
            let r = parse_review(body).expect("review");
            std::hint::black_box(engine.evaluate(&r, &index));
        })
    });
}

criterion_group!(benches, engines);
criterion_main!(benches);
