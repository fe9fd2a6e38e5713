//! The portal's listener: connections that stall are closed, so a client that stops reading (or
//! trickles a request) cannot hold a response and its memory for as long as it likes; request
//! headers must arrive within [`HEADER_TIMEOUT`]; and the connections held at once are capped.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tower::Layer;

/// A connection on which nothing moves for this long is closed (the browser reconnects).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests the portal works on at once; more wait for a slot (the webhook shares the process).
pub const MAX_CONCURRENT_REQUESTS: usize = 256;
/// Deadline for a response to start (a streamed body may take longer); answered 503 past it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A request's headers must all have arrived this long after it began (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections held at once (live-update streams included); past it new ones are closed at once,
/// so the process keeps descriptors for the webhook that shares it.
pub const MAX_CONNECTIONS: usize = 4096;

/// Serve the portal router on `listener`, with the client address as `ConnectInfo`, stalled
/// connections closed after `stall`, a header deadline and a connection cap.
pub async fn serve(listener: TcpListener, router: Router, stall: Duration) -> io::Result<()> {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors and the like: wait a little rather than spin.
            Err(e) => {
                tracing::warn!(error = %e, "portal accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%addr, "portal connection refused: {MAX_CONNECTIONS} are open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(StallGuard::new(stream, stall));
        let service = TowerToHyperService::new(Extension(ConnectInfo(addr)).layer(router.clone()));
        tokio::spawn(async move {
            let _slot = slot;
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
                tracing::debug!(error = %e, "portal connection ended");
            }
        });
    }
}

/// An IO stream that fails with `TimedOut` once a read or a write has waited `stall` with no
/// progress in either direction.
pub struct StallGuard<T> {
    inner: T,
    stall: Duration,
    read_wait: Option<Pin<Box<Sleep>>>,
    write_wait: Option<Pin<Box<Sleep>>>,
}

impl<T> StallGuard<T> {
    /// Guard `inner` with the given stall timeout.
    pub fn new(inner: T, stall: Duration) -> Self {
        Self {
            inner,
            stall,
            read_wait: None,
            write_wait: None,
        }
    }

    /// Something moved: a pending operation's clock starts again. The timers stay registered, so
    /// one that nobody polls any more (hyper waits on a read while it writes) still wakes the task.
    fn progressed(&mut self) {
        let deadline = tokio::time::Instant::now() + self.stall;
        for timer in [&mut self.read_wait, &mut self.write_wait]
            .into_iter()
            .flatten()
        {
            timer.as_mut().reset(deadline);
        }
    }
}

/// Poll the stall timer of a pending operation; `Ready(err)` once it ran out.
fn stalled(
    timer: &mut Option<Pin<Box<Sleep>>>,
    stall: Duration,
    cx: &mut Context<'_>,
) -> Poll<io::Error> {
    let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
    match sleep.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "portal connection stalled",
        )),
        Poll::Pending => Poll::Pending,
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => stalled(&mut this.read_wait, this.stall, cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => stalled(&mut this.write_wait, this.stall, cx).map(Err),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => stalled(&mut this.write_wait, this.stall, cx).map(Err),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => stalled(&mut this.write_wait, this.stall, cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn finding_15_a_reader_that_stops_reading_is_cut_off() {
        // A pipe with a small buffer nobody reads: the writer must give up, not wait forever.
        let (a, _b) = tokio::io::duplex(1024);
        let mut guarded = StallGuard::new(a, Duration::from_millis(200));
        let result = tokio::time::timeout(
            Duration::from_secs(5),
            guarded.write_all(&vec![0u8; 1 << 20]),
        )
        .await
        .expect("the stall timeout fired before the test's own");
        assert_eq!(result.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
    }
}
