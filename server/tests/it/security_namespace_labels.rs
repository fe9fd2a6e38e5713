//! Finding 6 (issue 8): relabelling a namespace out of a guarded selector no longer switches its
//! guardrails off. The webhook judges a Namespace UPDATE by its old labels too.

use serde_json::json;

use crate::support::{review, step_up_denial, TestApp};

#[tokio::test]
async fn finding_6_kubectl_label_ns_env_minus_needs_a_step_up() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    // `kubectl label ns payments env-`: the new labels no longer say env=prod, the old ones do.
    let unlabel = review("namespace-unlabel")?;
    assert!(unlabel["request"]["object"]["metadata"]["labels"]
        .get("env")
        .is_none());
    step_up_denial(&app.decide(&unlabel).await?, "protect-prod-namespaces")?;

    // The same change on a namespace that was never production is admitted.
    let mut staging = unlabel.clone();
    staging["request"]["uid"] = json!("relabel-staging");
    staging["request"]["name"] = json!("staging");
    staging["request"]["namespace"] = json!("staging");
    for side in ["object", "oldObject"] {
        let meta = &mut staging["request"][side]["metadata"];
        meta["name"] = json!("staging");
        meta["labels"]["kubernetes.io/metadata.name"] = json!("staging");
    }
    staging["request"]["oldObject"]["metadata"]["labels"]["env"] = json!("staging");
    let response = app.decide(&staging).await?;
    assert_eq!(response["allowed"], true, "{response}");

    // Leaving the labels as they are (an annotation) on the prod namespace is admitted too.
    let mut annotate = unlabel.clone();
    annotate["request"]["uid"] = json!("annotate-payments");
    annotate["request"]["object"]["metadata"]["labels"] =
        unlabel["request"]["oldObject"]["metadata"]["labels"].clone();
    annotate["request"]["object"]["metadata"]["annotations"] = json!({"owner": "platform"});
    let response = app.decide(&annotate).await?;
    assert_eq!(response["allowed"], true, "{response}");
    Ok(())
}
