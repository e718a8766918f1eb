//! Connection limits for the Firehose HTTP endpoint, below HTTP: a cap on open connections,
//! a header-read timeout and an idle keep-alive timeout. (The whole-request timeout, body
//! included, is the handler's.) An axum-server acceptor wraps each accepted TCP stream and its
//! service, which share one small state: whether a request is being handled, when the bytes of
//! the next request began, when the connection last did anything.
//!
//! - Over `max_connections`, a new connection is closed at once.
//! - Once a request's first byte arrives, its headers must be complete (the service called)
//!   within `header_read_timeout`, else the connection is closed.
//! - With no request in flight, a connection silent for `idle_timeout` is closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

/// The acceptor: wraps another (plain or TLS-inner) acceptor's output.
#[derive(Clone)]
pub struct Guard<A> {
    inner: A,
    limits: Limits,
    permits: Arc<Semaphore>,
}

impl<A> Guard<A> {
    pub fn new(inner: A, limits: Limits) -> Guard<A> {
        Guard {
            inner,
            limits,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        }
    }
}

/// What a connection's stream and service share.
struct Shared {
    start: Instant,
    in_flight: AtomicUsize,
    /// Millis since `start` (+1) when the next request's first byte arrived; 0 when none.
    head_began: AtomicU64,
    /// Millis since `start` of the last byte either way, or of the last answer.
    last_active: AtomicU64,
    /// The reader waiting with no timer (a request was in flight): woken when it ends, so
    /// the idle timer starts.
    reader: std::sync::Mutex<Option<std::task::Waker>>,
}

impl Shared {
    fn millis(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
    fn touch(&self) {
        self.last_active.store(self.millis(), Ordering::Relaxed);
    }
}

impl<I, S, A> axum_server::accept::Accept<I, S> for Guard<A>
where
    A: axum_server::accept::Accept<I, S> + Clone + Send + 'static,
    A::Future: Send,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = Timed<A::Stream>;
    type Service = Tracked<A::Service>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let permit = self.permits.clone().try_acquire_owned();
        let (inner, limits) = (self.inner.clone(), self.limits);
        Box::pin(async move {
            let Ok(permit) = permit else {
                metrics::counter!(crate::metric::FIREHOSE_CONNECTIONS_REFUSED_TOTAL).increment(1);
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "too many open connections: a new one is closed"
                );
                return Err(io::Error::other("too many open connections"));
            };
            let shared = Arc::new(Shared {
                start: Instant::now(),
                in_flight: AtomicUsize::new(0),
                head_began: AtomicU64::new(0),
                last_active: AtomicU64::new(0),
                reader: std::sync::Mutex::new(None),
            });
            let (stream, service) = inner.accept(stream, service).await?;
            metrics::gauge!(crate::metric::FIREHOSE_CONNECTIONS_OPEN).increment(1.0);
            Ok((
                Timed {
                    inner: stream,
                    shared: shared.clone(),
                    limits,
                    timer: None,
                    _permit: permit,
                },
                Tracked {
                    inner: service,
                    shared,
                },
            ))
        })
    }
}

/// A stream that closes itself on the header-read and idle timeouts.
pub struct Timed<T> {
    inner: T,
    shared: Arc<Shared>,
    limits: Limits,
    timer: Option<Pin<Box<Sleep>>>,
    _permit: OwnedSemaphorePermit,
}

impl<T> Drop for Timed<T> {
    fn drop(&mut self) {
        metrics::gauge!(crate::metric::FIREHOSE_CONNECTIONS_OPEN).decrement(1.0);
    }
}

impl<T> Timed<T> {
    /// When no request is in flight: the deadline, and which timeout it is.
    fn deadline(&self) -> Option<(u64, &'static str)> {
        let s = &self.shared;
        if s.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let began = s.head_began.load(Ordering::Relaxed);
        Some(if began > 0 {
            (
                began - 1 + self.limits.header_read_timeout.as_millis() as u64,
                "header_read_timeout",
            )
        } else {
            (
                s.last_active.load(Ordering::Relaxed) + self.limits.idle_timeout.as_millis() as u64,
                "idle_timeout",
            )
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Timed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let s = &self.shared;
                    let now = s.millis();
                    s.last_active.store(now, Ordering::Relaxed);
                    if s.in_flight.load(Ordering::Relaxed) == 0 {
                        let _ = s.head_began.compare_exchange(
                            0,
                            now + 1,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let Some((at, which)) = self.deadline() else {
                    self.timer = None;
                    if let Ok(mut w) = self.shared.reader.lock() {
                        *w = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                };
                let when = self.shared.start + Duration::from_millis(at);
                let this = &mut *self;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(when)));
                if timer.deadline() != when {
                    timer.as_mut().reset(when);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    metrics::counter!(crate::metric::FIREHOSE_CONNECTIONS_TIMED_OUT_TOTAL, "timeout" => which)
                        .increment(1);
                    tracing::info!(
                        timeout = which,
                        "connection closed: the client sent nothing in time"
                    );
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, which)));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Timed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.shared.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A service that marks its connection busy while it handles a request.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, Req> tower_service::Service<Req> for Tracked<S>
where
    S: tower_service::Service<Req>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let shared = self.shared.clone();
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        shared.head_began.store(0, Ordering::Relaxed);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let out = fut.await;
            shared.touch();
            shared.in_flight.fetch_sub(1, Ordering::Relaxed);
            if let Some(w) = shared.reader.lock().ok().and_then(|mut w| w.take()) {
                w.wake();
            }
            out
        })
    }
}
