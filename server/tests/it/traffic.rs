//! Recorded traffic through the webhook, on both backends: every answered review is counted by its
//! shape, matched or not, one example each with Secret values redacted, and retention forgets old
//! shapes.

use countersign::clock;

use crate::support::{on_both_backends, review, TestApp, TestDb};

on_both_backends!(reviews_are_recorded_by_shape_with_secrets_redacted);

async fn reviews_are_recorded_by_shape_with_secrets_redacted(db: &TestDb) -> anyhow::Result<()> {
    let app = TestApp::spawn_with(db.store.clone(), None).await?;
    let secret = review("secret-update-ci")?;
    let configmap = review("configmap-update-large")?;
    for _ in 0..3 {
        app.admit(&configmap).await?;
    }
    app.admit(&secret).await?;
    app.admit(&secret).await?;
    // What the writer does every few seconds.
    let counted = app.webhook.traffic.take();
    db.store.record_traffic(&counted, clock::now()).await?;
    app.admit(&configmap).await?;
    db.store
        .record_traffic(&app.webhook.traffic.take(), clock::now())
        .await?;

    let recorded = db.store.traffic(100).await?;
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let (top, next) = (&recorded[0], &recorded[1]);
    assert_eq!(top.shape.resource, "configmaps");
    assert_eq!(top.count, 4, "counts add up across writes");
    assert!(
        !top.matched,
        "no guardrail of the tests matches a dev ConfigMap"
    );
    assert_eq!(top.request["object"]["kind"], "ConfigMap");
    assert_eq!(next.shape.resource, "secrets");
    assert_eq!(next.shape.username, "system:serviceaccount:ci:deployer");
    assert_eq!(next.count, 2);
    let stored = next.request.to_string();
    for value in [
        "eyJhdXRocyI6eyJyZWdpc3RyeS5leGFtcGxlLmNvbSI6eyJhdXRoIjoiWTJrNmJtVjNJbk5sWTNKbGRBPT0ifX19",
        "WTJrNmIyeGsifX19",
    ] {
        assert!(
            !stored.contains(value),
            "a Secret value was recorded: {stored}"
        );
    }
    assert_eq!(
        next.request["object"]["data"][".dockerconfigjson"],
        "<redacted>"
    );

    // Retention: shapes last seen before the cut go.
    assert_eq!(db.store.prune_traffic(clock::now() - 60).await?, 0);
    assert_eq!(db.store.prune_traffic(clock::now() + 60).await?, 2);
    assert!(db.store.traffic(100).await?.is_empty());
    Ok(())
}
