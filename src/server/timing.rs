//! Time limits on a connection beyond the header read timeout: a connection with no
//! request in progress and no bytes moving is closed after the idle timeout (HTTP/2 has
//! no other such limit), and a request body that stops coming is given up after the body
//! timeout (`crate::body::Timed`).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When a connection last moved bytes, and how many of its requests are in progress.
pub(super) struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last read or write.
    last: AtomicU64,
    in_flight: AtomicUsize,
    /// The connection as the metrics count it, when they are recorded.
    pub(super) open: Option<crate::metrics::OpenConnection>,
}

impl Activity {
    pub(super) fn new(tls: bool) -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            open: crate::metrics::OpenConnection::open(tls),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// A request in progress until the guard is dropped.
    pub(super) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Completes once the connection has been idle for `timeout`.
    pub(super) async fn idle(&self, timeout: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let quiet = last.elapsed();
            if quiet >= timeout && self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            let wait = timeout
                .saturating_sub(quiet)
                .max(Duration::from_millis(100));
            tokio::time::sleep(wait).await;
        }
    }
}

pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket that records its activity, and counts its bytes when metrics are recorded.
pub(super) struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    traffic: Option<crate::metrics::Traffic>,
}

impl<S> Tracked<S> {
    pub(super) fn new(inner: S, activity: Arc<Activity>, tls: bool) -> Tracked<S> {
        activity.touch();
        Tracked {
            inner,
            activity,
            traffic: crate::metrics::Traffic::of(tls),
        }
    }

    fn wrote(&self, n: usize) {
        self.activity.touch();
        if let Some(t) = &self.traffic {
            t.sent(n);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        let n = buf.filled().len() - before;
        if n > 0 {
            self.activity.touch();
            if let Some(t) = &self.traffic {
                t.received(n);
            }
        }
        Poll::Ready(r)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, data))?;
        self.wrote(n);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        self.wrote(n);
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
