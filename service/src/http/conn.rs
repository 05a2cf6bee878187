//! Deadlines for one HTTP connection, kept from what moves on its socket
//! and what its handlers are doing, because hyper alone cannot tell an idle
//! keep-alive connection from a client slowly sending headers (its one
//! header timer starts when it begins waiting for a request), and has no
//! deadline at all on a response the client does not read.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

/// No request is being received (a timestamp field's "unset").
const NONE: u64 = u64::MAX;

/// The deadlines every connection is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// From a connection's opening, or a request's first byte, to the end
    /// of its headers.
    pub(crate) header: Duration,
    /// With no handler at work and no request arriving: no byte moved
    /// either way for this long (an idle keep-alive connection, or a
    /// response the client stopped reading).
    pub(crate) idle: Duration,
}

/// What one connection is doing, shared by its socket, its handlers and
/// the accept loop (which may evict it to make room).
pub(crate) struct ConnState {
    origin: Instant,
    /// Requests a handler is working on: no deadline runs meanwhile (a
    /// `stop?wait=true` takes as long as the job takes to drain).
    handling: AtomicU32,
    /// Responses not yet handed to the socket in full.
    responding: AtomicU32,
    /// When the request being received began, in ms since `origin`.
    headers_since: AtomicU64,
    /// Whether a byte of a request has arrived since the connection
    /// opened or its last request went to a handler.
    got_bytes: AtomicBool,
    /// When a byte last moved either way, in ms since `origin`.
    last_io: AtomicU64,
    /// Cancelled to close the connection at once.
    pub(crate) evict: CancellationToken,
}

impl ConnState {
    /// A connection just accepted: waiting for its first request's headers.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            handling: AtomicU32::new(0),
            responding: AtomicU32::new(0),
            headers_since: AtomicU64::new(0),
            got_bytes: AtomicBool::new(false),
            last_io: AtomicU64::new(0),
            evict: CancellationToken::new(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn read_some(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.handling.load(Ordering::Acquire) == 0
            && !self.got_bytes.swap(true, Ordering::AcqRel)
        {
            let _ =
                self.headers_since
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn wrote_some(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// A request's headers are in and a handler takes it.
    pub(crate) fn dispatch(self: &Arc<Self>) -> Handling {
        self.handling.fetch_add(1, Ordering::AcqRel);
        self.headers_since.store(NONE, Ordering::Release);
        self.got_bytes.store(false, Ordering::Release);
        Handling(self.clone())
    }

    /// Which deadline has passed, if any.
    pub(crate) fn expired(&self, d: &Deadlines) -> Option<&'static str> {
        if self.handling.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now();
        let since = self.headers_since.load(Ordering::Acquire);
        if since != NONE {
            let late = now.saturating_sub(since) >= millis(d.header);
            return late.then_some("the request's headers did not arrive in time");
        }
        let idle = now.saturating_sub(self.last_io.load(Ordering::Relaxed)) >= millis(d.idle);
        idle.then_some("idle")
    }

    /// Whether closing it loses nothing: no byte of a request received, no
    /// handler at work, no response on its way (what nginx closes first
    /// when it runs out of connections).
    pub(crate) fn evictable(&self) -> bool {
        self.handling.load(Ordering::Acquire) == 0
            && self.responding.load(Ordering::Acquire) == 0
            && !self.got_bytes.load(Ordering::Acquire)
            && !self.evict.is_cancelled()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(NONE - 1)
}

/// A handler at work on a request; dropped when its response is ready.
pub(crate) struct Handling(Arc<ConnState>);

impl Handling {
    /// The response is ready: the returned guard lives as long as its body.
    pub(crate) fn responded(self) -> Responding {
        self.0.responding.fetch_add(1, Ordering::AcqRel);
        self.0.wrote_some();
        Responding(self.0.clone())
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.handling.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response whose body is still being written.
pub(crate) struct Responding(Arc<ConnState>);

impl Drop for Responding {
    fn drop(&mut self) {
        self.0.responding.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's socket, noting every byte that moves.
pub(crate) struct Watched<T> {
    io: T,
    state: Arc<ConnState>,
}

impl<T> Watched<T> {
    pub(crate) fn new(io: T, state: Arc<ConnState>) -> Self {
        Self { io, state }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.read_some();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.state.wrote_some();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.state.wrote_some();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Deadlines = Deadlines {
        header: Duration::from_millis(40),
        idle: Duration::from_secs(30),
    };

    #[test]
    fn headers_idle_and_handlers_each_have_their_own_deadline() {
        let c = ConnState::new();
        assert!(c.evictable(), "a new connection has received nothing");
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            c.expired(&D).is_some(),
            "no headers within the header timeout"
        );

        let handling = c.dispatch();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.expired(&D), None, "a handler at work has no deadline");
        assert!(!c.evictable());
        let responding = handling.responded();
        assert!(!c.evictable(), "a response is on its way");
        drop(responding);
        assert!(c.evictable());
        assert_eq!(c.expired(&D), None, "idle only since the response");

        c.read_some();
        assert!(!c.evictable(), "a request has begun");
        std::thread::sleep(Duration::from_millis(60));
        c.read_some();
        assert!(
            c.expired(&D).is_some(),
            "a byte at a time does not reset the header deadline"
        );
    }
}
