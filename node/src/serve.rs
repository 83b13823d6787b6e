//! The node's HTTP server: hyper's HTTP/1.1 connections under limits a hostile client cannot
//! get around. Every connection is in one of three phases: **idle** (accepted, or its last answer
//! given, no byte of a new request yet), **head** (a request's first bytes read, its head not
//! complete) or **busy** (a request handed to the router). A watchdog closes connections idle for
//! longer than `idle_timeout` and those whose head is not complete `header_timeout` after its first
//! byte (slowloris); a request body must arrive within `body_timeout` of its head, else its
//! handler sees [`BodyTimeout`]. At most `max_connections` are open, kept below the open-file limit
//! (which the node raises to its hard maximum at start): a new connection beyond it takes the place
//! of the connection idle (or stalled in its head) for longest, or is closed at once when every
//! connection is busy, so silent connections can neither exhaust file descriptors nor lock real
//! clients out.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::metrics::{Metrics, ReasonLabel};

/// File descriptors kept out of the connection cap: the log, the federation's sockets, redb files.
const RESERVED_FDS: u64 = 256;
/// How often the watchdog looks at every connection.
const TICK: Duration = Duration::from_millis(200);

/// The server's limits (`[http]` in config.toml).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
}

/// Raises the soft open-file limit to the hard one (a common soft default of 1,024 is far below
/// what a node serving many clients needs) and returns the soft limit in force.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                tracing::info!(from = soft, to = hard, "raised the open-file limit");
                hard
            }
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "could not raise the open-file limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the open-file limit");
            1024
        }
    }
}

impl Limits {
    /// The cap actually applied: the configured one, kept below the open-file limit.
    pub fn within_fd_limit(mut self, fd_limit: u64) -> Limits {
        let room = usize::try_from(fd_limit.saturating_sub(RESERVED_FDS))
            .unwrap_or(usize::MAX)
            .max(16);
        if self.max_connections > room {
            tracing::warn!(
                configured = self.max_connections,
                applied = room,
                fd_limit,
                "http.max_connections lowered below the open-file limit"
            );
            self.max_connections = room;
        }
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle(Instant),
    Head(Instant),
    Busy,
}

/// One connection as the registry sees it.
struct Conn {
    phase: Mutex<Phase>,
    close: Notify,
}

impl Conn {
    fn set(&self, phase: Phase) {
        if let Ok(mut p) = self.phase.lock() {
            *p = phase;
        }
    }

    fn phase(&self) -> Phase {
        self.phase.lock().map_or(Phase::Busy, |p| *p)
    }

    /// The first bytes of a request after an idle spell start its head.
    fn read_some(&self) {
        if let Ok(mut p) = self.phase.lock()
            && matches!(*p, Phase::Idle(_))
        {
            *p = Phase::Head(Instant::now());
        }
    }
}

#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
    stopping: AtomicBool,
}

impl Registry {
    fn len(&self) -> usize {
        self.conns.lock().map_or(0, |c| c.len())
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            phase: Mutex::new(Phase::Idle(Instant::now())),
            close: Notify::new(),
        });
        if let Ok(mut conns) = self.conns.lock() {
            conns.insert(id, conn.clone());
        }
        (id, conn)
    }

    fn remove(&self, id: u64) {
        if let Ok(mut conns) = self.conns.lock() {
            conns.remove(&id);
        }
    }

    /// Closes the connection that has waited longest without a request being served (idle, or
    /// stalled in its head); false when every connection is busy. It leaves the registry at
    /// once, so a burst of new connections evicts as many old ones.
    fn evict_one(&self) -> bool {
        let Ok(mut conns) = self.conns.lock() else {
            return false;
        };
        let oldest = conns
            .iter()
            .filter_map(|(id, c)| match c.phase() {
                Phase::Idle(since) | Phase::Head(since) => Some((since, *id)),
                Phase::Busy => None,
            })
            .min();
        match oldest.and_then(|(_, id)| conns.remove(&id)) {
            Some(conn) => {
                // A stored permit: the connection's task closes it even if not waiting yet.
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Closes every connection past its idle or head deadline (all but busy ones when
    /// stopping); returns how many of each it closed.
    fn sweep(&self, limits: &Limits, now: Instant) -> (u64, u64) {
        let stopping = self.stopping.load(Ordering::Acquire);
        let (mut idle, mut head) = (0, 0);
        let Ok(mut conns) = self.conns.lock() else {
            return (0, 0);
        };
        conns.retain(|_, conn| {
            let close = match conn.phase() {
                Phase::Idle(since) => {
                    let expired = stopping || now.duration_since(since) >= limits.idle_timeout;
                    idle += u64::from(expired);
                    expired
                }
                Phase::Head(since) => {
                    let expired = stopping || now.duration_since(since) >= limits.header_timeout;
                    head += u64::from(expired);
                    expired
                }
                Phase::Busy => false,
            };
            if close {
                conn.close.notify_one();
            }
            !close
        });
        (idle, head)
    }
}

/// A TCP stream that tells its connection when a request's bytes start arriving.
struct Watched {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.read_some();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The error a request body gives when it did not arrive within the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// A request body with a deadline: past it, reading fails with [`BodyTimeout`].
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then closes idle connections and
/// waits (at most 10 s) for busy ones to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry::default());
    let watchdog = {
        let (registry, metrics) = (registry.clone(), metrics.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            loop {
                tick.tick().await;
                let (idle, head) = registry.sweep(&limits, Instant::now());
                closed(&metrics, "idle_timeout", idle);
                closed(&metrics, "header_timeout", head);
                metrics
                    .http_connections
                    .set(i64::try_from(registry.len()).unwrap_or(i64::MAX));
            }
        })
    };
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or a transient network error: accepting again at once
                // would spin.
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if registry.len() >= limits.max_connections {
            if registry.evict_one() {
                closed(&metrics, "evicted", 1);
            } else {
                closed(&metrics, "refused", 1);
                drop(stream);
                continue;
            }
        }
        let _ = stream.set_nodelay(true);
        spawn_connection(stream, router.clone(), limits, registry.clone());
    }
    registry.stopping.store(true, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(10);
    while registry.len() > 0 && Instant::now() < deadline {
        registry.sweep(&limits, Instant::now());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watchdog.abort();
}

fn closed(metrics: &Metrics, reason: &str, count: u64) {
    if count > 0 {
        metrics
            .http_closed
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc_by(count);
    }
}

fn spawn_connection(stream: TcpStream, router: Router, limits: Limits, registry: Arc<Registry>) {
    let (id, conn) = registry.add();
    let io = TokioIo::new(Watched {
        stream,
        conn: conn.clone(),
    });
    let served = conn.clone();
    let service = TowerToHyperService::new(tower::service_fn(move |request: Request<Incoming>| {
        let (router, conn) = (router.clone(), served.clone());
        conn.set(Phase::Busy);
        let request = request.map(|inner| {
            Body::new(Deadline {
                inner,
                sleep: Box::pin(tokio::time::sleep(limits.body_timeout)),
                limit: limits.body_timeout,
            })
        });
        async move {
            let response = router.oneshot(request).await;
            conn.set(Phase::Idle(Instant::now()));
            response
        }
    }));
    tokio::spawn(async move {
        let mut builder = hyper::server::conn::http1::Builder::new();
        // The watchdog keeps the head and idle deadlines (hyper's own head timer would also run
        // between requests, which is the idle deadline's to decide).
        builder.keep_alive(true).header_read_timeout(None);
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended");
                }
            }
            // Dropping the connection closes its socket.
            () = conn.close.notified() => {}
        }
        registry.remove(id);
    });
}
