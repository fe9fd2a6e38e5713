//! The baseline for webhook throughput: a bare axum handler over the same TLS stack that only parses
//! the AdmissionReview and echoes an allow. `countersign serve` is measured against it in one run.
//! Run: `cargo run --release -p server --example bare_webhook -- 127.0.0.1:9443 DATA_DIR/tls`.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use countersign::admission::{parse_review, Verdict};

async fn admit(body: Bytes) -> Response {
    match parse_review(&body) {
        Ok(request) => Json(Verdict::allow().to_review(&request.uid)).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: std::net::SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:9443".into())
        .parse()?;
    let tls_dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "data/tls".into()));
    let tls = countersign::webhook::tls::load_or_create(
        &tls_dir,
        &["localhost".into(), "127.0.0.1".into()],
    )?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(
        tls.cert_pem.into_bytes(),
        tls.key_pem.into_bytes(),
    )
    .await?;
    let app = Router::new().route("/k8s/admit", post(admit));
    println!("bare webhook on https://{addr}/k8s/admit");
    axum_server::bind_rustls(addr, config)
        .serve(app.into_make_service())
        .await?;
    Ok(())
}
