//! HTTP/2 answers gathered into fewer system calls. A stream is first run where its
//! connection accepts it, and only becomes a task of its own if it must wait (most
//! answers from memory never do), so the answers to a batch of streams are all queued
//! before the connection writes. The socket under the connection gathers writes: a flush
//! first lets other ready tasks run (one `yield_now`), so answers they finish meanwhile
//! leave in the same system call.

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes gathered at most before they are written without waiting for a flush.
const GATHERED: usize = 256 * 1024;

type Yield = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs a spawned future once where it is handed over, and as a task only if it is not
/// done by then.
#[derive(Clone, Copy, Default)]
pub(super) struct InlineFirst;

impl<F> hyper::rt::Executor<F> for InlineFirst
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        let mut fut = Box::pin(fut);
        // a future that waits registers the waker of its next poll, which the task makes
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if fut.as_mut().poll(&mut cx).is_pending() {
            tokio::spawn(fut);
        }
    }
}

pub(super) struct Batched<S> {
    inner: S,
    /// Whether writes are gathered; until then they pass straight through.
    gathering: bool,
    buf: Vec<u8>,
    sent: usize,
    /// The yield a flush waits for before it writes, and whether it is over.
    pending: Option<Yield>,
    yielded: bool,
}

impl<S> Batched<S> {
    pub(super) fn new(inner: S) -> Batched<S> {
        Batched {
            inner,
            gathering: false,
            buf: Vec::new(),
            sent: 0,
            pending: None,
            yielded: false,
        }
    }

    /// Gathers writes from now on (once the connection turns out to speak HTTP/2).
    pub(super) fn gather(&mut self) {
        self.gathering = true;
    }
}

impl<S: AsyncWrite + Unpin> Batched<S> {
    /// Writes out everything gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.buf.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Batched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Batched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(data)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if !this.gathering {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        if this.buf.len() >= GATHERED {
            ready!(this.poll_drain(cx))?;
        }
        let mut n = 0;
        for b in bufs {
            this.buf.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.gathering && this.sent < this.buf.len() {
            if !this.yielded {
                let wait = this
                    .pending
                    .get_or_insert_with(|| Box::pin(tokio::task::yield_now()));
                ready!(wait.as_mut().poll(cx));
                this.pending = None;
                this.yielded = true;
            }
            ready!(this.poll_drain(cx))?;
            this.yielded = false;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_stream_runs_where_it_is_handed_over_and_waits_as_a_task() {
        use hyper::rt::Executor;
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        InlineFirst.execute(async move { flag.store(true, std::sync::atomic::Ordering::SeqCst) });
        assert!(
            ran.load(std::sync::atomic::Ordering::SeqCst),
            "done before execute returned"
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        InlineFirst.execute(async move {
            let _ = rx.await;
            let _ = done_tx.send(());
        });
        tx.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), done_rx)
            .await
            .expect("the waiting stream was woken as a task")
            .unwrap();
    }

    #[tokio::test]
    async fn gathered_writes_leave_in_order_at_flush_and_shutdown() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let mut b = Batched::new(near);
        b.write_all(b"before ").await.unwrap();
        b.gather();
        b.write_all(b"one ").await.unwrap();
        b.write_all(&vec![b'x'; GATHERED + 10]).await.unwrap();
        b.write_all(b" two").await.unwrap();
        b.flush().await.unwrap();
        let mut got = vec![0; 7 + 4 + GATHERED + 10 + 4];
        far.read_exact(&mut got).await.unwrap();
        assert!(got.starts_with(b"before one xx"));
        assert!(got.ends_with(b"xx two"));
        b.write_all(b"last").await.unwrap();
        b.shutdown().await.unwrap();
        let mut rest = Vec::new();
        far.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"last");
    }
}
