//! Criterion: what the authenticator allow-list costs a step-up. Each key's stored attestation is
//! verified again against today's vendor roots when a step-up starts (off the webhook path).
//! Run: `cargo bench -p server --bench attestation`.

// The software security key of the integration tests, attesting under a vendor root made here.
#[allow(dead_code)]
#[path = "../tests/it/soft_key.rs"]
mod soft_key;

use countersign::identity::authenticators::AuthenticatorAllowList;
use countersign::identity::passkeys::{Approval, Passkeys};
use countersign::identity::{Credential, Role, User};
use criterion::{criterion_group, criterion_main, Criterion};
use soft_key::{SoftKey, Vendor};

const ORIGIN: &str = "http://localhost:3000";
const AAGUID: &str = "ee882879-721c-4913-9775-3dfcce97072a";

fn approval(c: &mut Criterion) {
    let vendor = Vendor::new("Bench Vendor Root").expect("vendor");
    let doc = vendor.allow_list(&[(AAGUID, "Bench Key")]);
    let list =
        AuthenticatorAllowList::parse(&doc, std::path::Path::new("bench.yaml")).expect("list");
    let passkeys = Passkeys::new(&url::Url::parse(ORIGIN).expect("url"))
        .expect("rp")
        .with_allowlist(list);
    let user = User {
        user_id: uuid::Uuid::new_v4().to_string(),
        username: "bench".into(),
        display_name: "Bench".into(),
        role: Role::Engineer,
        created_at: 0,
        groups: Vec::new(),
    };
    let (options, state) = passkeys.start_registration(&user, &[]).expect("start");
    let mut key =
        SoftKey::attested(ORIGIN, AAGUID, vendor.batch("Bench Key").expect("batch")).expect("key");
    let response = serde_json::from_value(key.register(&options).expect("register")).expect("json");
    let registered = passkeys
        .finish_registration(&response, &state)
        .expect("registered");
    let credential = Credential {
        credential_id: registered.credential_id,
        user_id: user.user_id,
        name: "Bench".into(),
        passkey: registered.passkey,
        created_at: 0,
        last_used_at: None,
        aaguid: registered.aaguid,
        blocked_at: None,
    };
    assert_eq!(
        passkeys.approval(&credential),
        Approval::Approved("Bench Key".into())
    );
    c.bench_function("approval of one attested key", |b| {
        b.iter(|| std::hint::black_box(passkeys.approval(&credential)))
    });
    let three = vec![credential.clone(), credential.clone(), credential];
    c.bench_function("step-up start, 3 attested keys", |b| {
        b.iter(|| std::hint::black_box(passkeys.start_stepup(&three).expect("start")))
    });
}

criterion_group!(benches, approval);
criterion_main!(benches);
