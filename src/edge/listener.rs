//! Accept loops and per-connection HTTP serving for the three listeners.
//!
//! Invariants: a connection permit is taken *before* `accept`, so at the cap the kernel's
//! backlog holds new clients instead of Roost accepting and dropping them; one client address
//! may hold only its share of the permits (`per_ip`), extra connections are closed right after
//! `accept`; every connection task is tracked so shutdown can wait for in-flight requests; TLS
//! handshakes, request heads, silent connections and connections that carry no request (an
//! HTTP/2 client that only pings) all have deadlines.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::dormant::dormant;
use super::idle::IdleIo;
use super::per_ip::PerIpLimit;

/// Deadlines applied to every connection of a listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub tls_handshake: Duration,
    pub header_read: Duration,
    pub idle: Duration,
}

/// How many connections a listener has open right now (read by `/status` and `/metrics`).
/// Clones share one count.
#[derive(Debug, Clone, Default)]
pub struct OpenConnections(Arc<AtomicUsize>);

impl OpenConnections {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one connection until the returned guard is dropped.
    fn track(&self) -> OpenGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        OpenGuard(self.0.clone())
    }
}

/// Decrements the count when a connection task ends, however it ends.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a listener serves: `api::Surface` in the daemon, a bare router in tests.
pub trait Serve: Clone + Send + Sync + 'static {
    /// The answer to `req`, which came over a connection from `peer`. The peer is an argument,
    /// not a request extension: each extension is an allocation and a hash-map insert per
    /// request, and only the edge's client-IP step reads it.
    fn serve(
        &self,
        peer: SocketAddr,
        req: http::Request<axum::body::Body>,
    ) -> impl Future<Output = axum::response::Response> + Send + 'static + use<Self>;
}

/// A bare router, for tests of the listener alone: the peer is not passed on.
impl Serve for axum::Router {
    fn serve(
        &self,
        _peer: SocketAddr,
        req: http::Request<axum::body::Body>,
    ) -> impl Future<Output = axum::response::Response> + Send + 'static + use<> {
        let answer = self.clone().oneshot(req);
        async move { answer.await.unwrap_or_else(|never| match never {}) }
    }
}

/// One listening socket and how to serve it.
pub struct Listener<S> {
    pub name: &'static str,
    pub tcp: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub router: S,
    pub limits: ConnLimits,
    /// Shared by listeners that share a connection budget.
    pub permits: Arc<Semaphore>,
    /// This listener's open-connection count.
    pub open: OpenConnections,
    /// How many of this listener's connections one client address may hold; `None`: no share
    /// (the loopback-only internal listener).
    pub per_ip: Option<Arc<PerIpLimit>>,
}

/// Binds a listening socket (SO_REUSEADDR so a restart does not wait for TIME_WAIT).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Connections the kernel completes and holds for `accept`: where clients wait while all
/// permits are taken, and what absorbs a burst (a Pi restarting with a thousand phones online,
/// all reconnecting within a second or two). Past it the kernel drops their SYNs and each
/// client waits 1 s, then 3 s, then 7 s... to try again. The kernel caps it at
/// `net.core.somaxconn` (4096 by default since Linux 5.4).
const LISTEN_BACKLOG: u32 = 4096;

impl<S: Serve> Listener<S> {
    pub fn local_addr(&self) -> SocketAddr {
        self.tcp
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Accepts until `shutdown` fires. Connection tasks are spawned on `tracker`, and on
    /// shutdown each finishes its in-flight requests (graceful) before closing.
    pub async fn serve(self, shutdown: CancellationToken, tracker: TaskTracker) {
        let Listener {
            name,
            tcp,
            tls,
            router,
            limits,
            permits,
            open,
            per_ip,
        } = self;
        loop {
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
                _ = shutdown.cancelled() => break,
            };
            let (stream, peer) = tokio::select! {
                r = tcp.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(listener = name, error = %e, "accept failed");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                            _ = shutdown.cancelled() => break,
                        }
                    }
                },
                _ = shutdown.cancelled() => break,
            };
            // Over its address's share: close now, before any TLS work; the permit goes back.
            let per_ip_guard = match &per_ip {
                Some(limit) => match limit.try_acquire(peer.ip()) {
                    Some(guard) => guard,
                    None => {
                        tracing::debug!(listener = name, %peer, "too many connections from this address; closed");
                        continue;
                    }
                },
                None => None,
            };
            let _ = stream.set_nodelay(true);
            let router = router.clone();
            let tls = tls.clone();
            let shutdown = shutdown.clone();
            let counted = open.track();
            tracker.spawn(async move {
                let slot = Slot {
                    _permit: permit,
                    _counted: counted,
                    _per_ip: per_ip_guard,
                };
                match tls {
                    None => {
                        let io = Held::new(stream, slot);
                        serve_http(io, Protocol::Detect, peer, router, limits, shutdown).await
                    }
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(limits.tls_handshake, acceptor.accept(stream));
                        let stream = tokio::select! {
                            r = handshake => r,
                            _ = shutdown.cancelled() => return,
                        };
                        match stream {
                            Ok(Ok(s)) => {
                                let protocol = match s.get_ref().1.alpn_protocol() {
                                    Some(b"h2") => Protocol::Http2,
                                    _ => Protocol::Http1,
                                };
                                let io = Held::new(s, slot);
                                serve_http(io, protocol, peer, router, limits, shutdown).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }
        tracing::debug!(listener = name, "stopped accepting");
    }
}

/// A connection's place: its permit under `max_connections`, its count in `OpenConnections`,
/// its address's share. Dropped when the socket is: see [`Held`].
struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _counted: OpenGuard,
    _per_ip: Option<super::per_ip::PerIpGuard>,
}

/// A socket that owns its [`Slot`]. An upgraded connection (a gateway WebSocket, the LiveKit
/// signalling proxy) outlives hyper's connection task, which ends once it hands the socket
/// over; tying the slot to the socket keeps such a connection counted and within its
/// address's share until it closes.
struct Held<I> {
    io: I,
    _slot: Slot,
}

impl<I> Held<I> {
    fn new(io: I, slot: Slot) -> Held<I> {
        Held { io, _slot: slot }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Held<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Held<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Which HTTP a connection speaks. TLS connections know from ALPN (`h2`, else HTTP/1.1), so
/// they skip hyper's detection, which reads the first bytes and then passes every read of the
/// connection through a rewind buffer; plain connections are detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    Detect,
}

/// The body a [`Serve`] gets. A request without one (most GETs) gets the empty body, which
/// needs no allocation; `Body::new` boxes hyper's body even when there is nothing in it.
fn request_body(incoming: Incoming) -> axum::body::Body {
    if http_body::Body::is_end_stream(&incoming) {
        axum::body::Body::empty()
    } else {
        axum::body::Body::new(incoming)
    }
}

async fn serve_http<I, S: Serve>(
    io: I,
    protocol: Protocol,
    peer: SocketAddr,
    router: S,
    limits: ConnLimits,
    shutdown: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(IdleIo::new(io, limits.idle));
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: http::Request<Incoming>| {
            // Counted from the request head until its response body is finished or dropped.
            let in_flight = activity.start();
            let response = router.serve(peer, req.map(request_body));
            async move {
                let response = response.await;
                Ok::<_, Infallible>(response.map(move |body| Counted {
                    body,
                    _in_flight: in_flight,
                }))
            }
        })
    };
    let quiet = activity.quiet_for(limits.idle);
    match protocol {
        Protocol::Http1 => {
            let conn = http1_builder(limits)
                .serve_connection(io, service)
                .with_upgrades();
            drive(conn, quiet, peer, shutdown).await
        }
        Protocol::Http2 => {
            let conn = http2_builder().serve_connection(io, service);
            drive(conn, quiet, peer, shutdown).await
        }
        Protocol::Detect => {
            // The same settings as `http1_builder` and `http2_builder`, on the detecting builder.
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .max_buf_size(MAX_HEAD_BYTES);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(H2_MAX_STREAMS)
                .max_header_list_size(H2_MAX_HEADER_BYTES)
                .keep_alive_interval(Some(H2_PING_INTERVAL))
                .keep_alive_timeout(H2_PING_TIMEOUT);
            let conn = builder.serve_connection_with_upgrades(io, service);
            drive(conn, quiet, peer, shutdown).await
        }
    }
}

/// Bounds an HTTP/1 request head: larger heads get 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Bound an HTTP/2 client's concurrency and header memory per connection.
const H2_MAX_STREAMS: u32 = 128;
const H2_MAX_HEADER_BYTES: u32 = 64 * 1024;
/// HTTP/2 connections are pinged this often, and closed when a ping goes unanswered this long.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// HTTP/1.1 settings of every connection.
fn http1_builder(limits: ConnLimits) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
}

/// HTTP/2 settings of every connection.
fn http2_builder() -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_BYTES)
        .keep_alive_interval(Some(H2_PING_INTERVAL))
        .keep_alive_timeout(H2_PING_TIMEOUT);
    builder
}

/// A served connection that can be asked to finish its requests and close.
trait Graceful: std::future::Future<Output = Result<(), Self::Error>> {
    type Error: std::fmt::Display;
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Error = hyper::Error;
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        hyper::server::conn::http1::UpgradeableConnection::graceful_shutdown(self)
    }
}

impl<I, S, B> Graceful for hyper::server::conn::http2::Connection<I, S, TokioExecutor>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Error = hyper::Error;
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        hyper::server::conn::http2::Connection::graceful_shutdown(self)
    }
}

impl<I, S, B> Graceful for auto::UpgradeableConnection<'_, I, S, TokioExecutor>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Error = Box<dyn std::error::Error + Send + Sync>;
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        auto::UpgradeableConnection::graceful_shutdown(self)
    }
}

/// Serves `conn` until it ends; closes it gracefully once it has carried no request for the
/// idle timeout (`quiet`) or at shutdown.
async fn drive<C: Graceful>(
    conn: C,
    quiet: impl std::future::Future<Output = ()>,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    tokio::pin!(conn);
    // Polled only when their own timer or token fires, not at every wake-up of the connection.
    let mut quiet = dormant(quiet);
    let mut cancelled = dormant(shutdown.cancelled_owned());
    let result = tokio::select! {
        // The connection first: it is what wakes this task nearly every time.
        biased;
        r = conn.as_mut() => r,
        _ = &mut quiet => {
            // No request for `idle`: close as an idle keep-alive connection is closed. IdleIo
            // alone would not, when the client keeps the bytes flowing with HTTP/2 pings.
            tracing::debug!(%peer, "no request for the idle timeout; closing");
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        _ = &mut cancelled => {
            // Finish requests already in flight, take no new ones; the daemon bounds how long.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// A response body that holds its request's [`InFlight`] until it is finished or dropped.
struct Counted {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Requests in flight on one connection, and since when there has been none.
struct Activity {
    in_flight: AtomicUsize,
    /// When the connection opened: the origin of `last_done`.
    opened: Instant,
    /// When the last request ended, in nanoseconds after `opened` (an atomic, not a lock:
    /// it is written at the end of every request).
    last_done: AtomicU64,
}

/// One request in flight; dropping it (response finished, or abandoned) ends it.
struct InFlight(Arc<Activity>);

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            opened: Instant::now(),
            last_done: AtomicU64::new(0),
        }
    }

    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// `None` while a request is in flight, else when the last one ended (or the connection
    /// opened).
    fn quiet_since(&self) -> Option<Instant> {
        // The count first: a request's end is stored before its count drops, so a count of
        // zero seen here comes with that end time (never an earlier one).
        let idle = self.in_flight.load(Ordering::SeqCst) == 0;
        let last = self.opened + Duration::from_nanos(self.last_done.load(Ordering::SeqCst));
        idle.then_some(last)
    }

    /// Resolves once no request has been in flight for `idle`.
    async fn quiet_for(&self, idle: Duration) {
        loop {
            match self.quiet_since() {
                Some(since) if since + idle <= Instant::now() => return,
                Some(since) => tokio::time::sleep_until(since + idle).await,
                // Busy: look again after a while (a request ending re-arms from its end).
                None => tokio::time::sleep(idle).await,
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // u64 nanoseconds cover 584 years of a connection.
        let since_open = u64::try_from(self.0.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.0.last_done.store(since_open, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{oneshot, Notify};

    #[tokio::test]
    async fn shutdown_lets_in_flight_requests_finish_and_stops_accepting() {
        let started = Arc::new(Notify::new());
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let release = Arc::new(std::sync::Mutex::new(Some(release_rx)));
        let router = axum::Router::new().route(
            "/slow",
            get({
                let started = started.clone();
                move || async move {
                    started.notify_one();
                    let rx = release.lock().unwrap().take().unwrap();
                    rx.await.unwrap();
                    "done"
                }
            }),
        );
        let tcp = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = tcp.local_addr().unwrap();
        let limits = ConnLimits {
            tls_handshake: Duration::from_secs(5),
            header_read: Duration::from_secs(5),
            idle: Duration::from_secs(30),
        };
        let listener = Listener {
            name: "test",
            tcp,
            tls: None,
            router,
            limits,
            permits: Arc::new(Semaphore::new(8)),
            open: OpenConnections::default(),
            per_ip: None,
        };
        let open = listener.open.clone();
        let (shutdown, connections) = (CancellationToken::new(), TaskTracker::new());
        let accept_loop = tokio::spawn(listener.serve(shutdown.clone(), connections.clone()));

        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        started.notified().await;
        assert_eq!(open.get(), 1, "the connection in flight is counted");

        shutdown.cancel();
        accept_loop.await.unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "still accepting after shutdown"
        );

        release_tx.send(()).unwrap();
        let mut response = String::new();
        client.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("done"), "{response}");
        connections.close();
        tokio::time::timeout(Duration::from_secs(5), connections.wait())
            .await
            .expect("connection task ended");
        assert_eq!(open.get(), 0, "a closed connection is no longer counted");
    }
}
