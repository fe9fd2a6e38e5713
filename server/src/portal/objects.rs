//! `GET /c/{code}/objects.json`: the full old and new object of a challenge, for when the page's
//! diff is cut at its bounds. Streamed in chunks from the blocking pool, so a download holds the
//! objects once and a bounded buffer, however slowly it is read.

use std::io::Write;
use std::sync::Arc;

use app::backend::PortalError;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio::sync::mpsc;
use tower_sessions::Session;

use super::backend::{oidc_identity, signed_in, visible_challenge, Visible};
use super::diff::shown_object;
use super::heavy::Heavy;
use crate::state::AppState;

/// Bytes per streamed chunk.
const CHUNK: usize = 64 * 1024;
/// Chunks buffered ahead of a slow reader.
const AHEAD: usize = 4;

/// State of the download route.
#[derive(Clone)]
pub struct Objects {
    /// The portal's state.
    pub state: AppState,
    /// The heavy-work limits shared with the pages.
    pub heavy: Arc<Heavy>,
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// The route's handler; the same people may download as may see the page.
pub async fn download(
    State(objects): State<Objects>,
    Path(code): Path<String>,
    session: Session,
) -> Response {
    let state = &objects.state;
    let user = match signed_in(state, &session).await {
        Ok(Some(user)) => user,
        Ok(None) => return refusal(StatusCode::UNAUTHORIZED, "sign in first"),
        Err(_) => return refusal(StatusCode::SERVICE_UNAVAILABLE, "try again shortly"),
    };
    let groups = oidc_identity(&session)
        .await
        .map(|i| i.groups)
        .unwrap_or_default();
    let challenge = match visible_challenge(state, &user.username, &groups, user.role, &code).await
    {
        Ok(Visible::Yours(c)) => c,
        Ok(Visible::NotYours { .. }) => {
            return refusal(StatusCode::FORBIDDEN, "not your challenge")
        }
        Ok(Visible::NotFound) => return refusal(StatusCode::NOT_FOUND, "no such challenge"),
        Err(e) => return refusal(e.status(), &e.to_string()),
    };
    let slot = match objects.heavy.download_slot().await {
        Ok(slot) => slot,
        Err(_) => {
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                &PortalError::Busy.to_string(),
            )
        }
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(AHEAD);
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let r = &challenge.request;
        let body = serde_json::json!({
            "code": challenge.code,
            "kind": r.kind,
            "namespace": r.namespace,
            "name": r.name,
            "operation": r.operation,
            "oldObject": shown_object(&r.kind, &r.subresource, r.old_object.as_ref()),
            "object": shown_object(&r.kind, &r.subresource, r.object.as_ref()),
            "options": r.options,
        });
        let mut out = ChunkWriter {
            tx,
            buffer: Vec::with_capacity(CHUNK),
        };
        // A reader that went away ends the write with an error; nothing else to do.
        if serde_json::to_writer_pretty(&mut out, &body).is_ok() {
            let _ = out.flush();
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"challenge-{}.json\"",
        // `code` passed `is_code`, so it is safe in a header.
        code
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Writes into the response stream in chunks, waiting while the reader is behind.
struct ChunkWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}
