//! The serving loop: accepts TCP connections, runs the TLS handshake if configured, and
//! serves each connection with hyper's HTTP/1.1 server under the limits of [`Limits`]:
//!
//! * at most `max_connections` connections are open at once. At the cap, the connection
//!   that has waited longest for its next request (at least [`EVICT_AFTER`]) is closed to
//!   make room; when every connection is busy with a request, the loop stops accepting and
//!   new connections wait in the kernel's listen backlog until one closes. So idle or
//!   slow-header connections, however many, cannot keep a client with a request out;
//! * `header_timeout` bounds the TLS handshake and the wait for each complete request head
//!   (hyper's header-read timer, which also runs while a keep-alive connection is idle);
//! * `body_timeout` and `min_body_rate` bound the arrival of a request body
//!   ([`TimedBody`]; the gate turns an expired body into 408);
//! * `send_timeout` bounds how long a write may wait for the client ([`SendTimeout`]).
//!
//! Only HTTP/1.1 is spoken (TLS offers only `http/1.1` in ALPN): every timeout above is
//! defined for it, and the clients of this protocol use it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use super::SHUTDOWN_GRACE;
use super::timeouts::{BodyTimer, SendTimeout, TimedBody};
use crate::config::Limits;

/// Pause after an `accept` failure such as "too many open files", before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At the connection cap, a connection becomes a candidate for closing once it has waited
/// this long for its next request (so one that just opened gets time to send it).
pub(crate) const EVICT_AFTER: Duration = Duration::from_secs(1);

/// What every connection task needs.
#[derive(Clone)]
struct ConnSetup {
    router: Router,
    http: http1::Builder,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Arc<Limits>,
    stop: watch::Receiver<bool>,
    registry: Arc<Registry>,
}

/// Serve `router` on `listener` (TLS with `tls`) until `shutdown` resolves; then stop
/// accepting, let the requests in flight finish (at most [`SHUTDOWN_GRACE`]) and close the
/// remaining connections.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let (stop_tx, stop) = watch::channel(false);
    let registry = Arc::new(Registry::default());
    let setup = ConnSetup {
        router,
        http,
        tls: tls.map(tokio_rustls::TlsAcceptor::from),
        limits: Arc::new(limits.clone()),
        stop,
        registry: Arc::clone(&registry),
    };
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut tasks = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = make_room(&permits, &registry) => permit,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(error) = tcp.set_nodelay(true) {
            // Without TCP_NODELAY a response written in two parts (the header, then a
            // short payload) waits for the client's delayed ACK: about 40 ms per read.
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let conn = registry.register();
        let setup = setup.clone();
        tasks.spawn(async move {
            serve_connection(tcp, peer, setup, &conn).await;
            drop(conn);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "requests still in flight after the grace period; closing their connections"
        );
    }
    tasks.shutdown().await;
}

/// A connection slot: at once if one is free; otherwise once the connection waiting
/// longest for a request (at least [`EVICT_AFTER`]) was told to close, or any closed.
async fn make_room(permits: &Arc<Semaphore>, registry: &Registry) -> OwnedSemaphorePermit {
    loop {
        if let Ok(permit) = Arc::clone(permits).try_acquire_owned() {
            return permit;
        }
        // Re-examine when the oldest waiting connection becomes a candidate, or after a
        // while (a connection told to close is normally gone long before).
        let wake = match registry.evict_oldest_waiting(Instant::now()) {
            Eviction::NotBefore(when) => when,
            Eviction::Evicted | Eviction::NoneWaiting => Instant::now() + EVICT_AFTER,
        };
        tokio::select! {
            permit = Arc::clone(permits).acquire_owned() => if let Ok(permit) = permit {
                return permit;
            },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// Logs an `accept` failure; waits a little when the process is out of descriptors or
/// memory, so the loop does not spin.
async fn accept_failed(error: &io::Error) {
    use io::ErrorKind as K;
    // Failures of the one connection being accepted; the next accept is fine.
    if matches!(
        error.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::ConnectionRefused | K::Interrupted
    ) {
        tracing::debug!(%error, "accept failed");
        return;
    }
    tracing::warn!(%error, "accept failed; retrying shortly");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// One connection: TLS handshake (bounded by the header timeout), then HTTP/1.1 until the
/// client or the server closes it, or it is evicted while waiting for a request.
async fn serve_connection(tcp: TcpStream, peer: SocketAddr, setup: ConnSetup, conn: &Conn) {
    let io = SendTimeout::new(tcp, setup.limits.send_timeout);
    match &setup.tls {
        None => serve_http(io, peer, &setup, conn).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(setup.limits.header_timeout, acceptor.accept(io));
            let mut stop = setup.stop.clone();
            tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => serve_http(tls, peer, &setup, conn).await,
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
                () = conn.evict.notified() => tracing::debug!(%peer, "evicted during the TLS handshake"),
                _ = stop.changed() => {}
            }
        }
    }
}

async fn serve_http<I>(io: I, peer: SocketAddr, setup: &ConnSetup, conn: &Conn)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let router = setup.router.clone();
    let limits = Arc::clone(&setup.limits);
    let registry = Arc::clone(&setup.registry);
    let id = conn.id;
    // Whether a request head ever arrived: hyper's graceful shutdown waits for the first
    // request of a connection, so one that never sent any is simply dropped instead.
    let used = Arc::new(AtomicBool::new(false));
    let service = {
        let used = Arc::clone(&used);
        hyper::service::service_fn(move |req: Request<Incoming>| {
            used.store(true, Ordering::Relaxed);
            let router = router.clone();
            let limits = Arc::clone(&limits);
            let busy = Busy::start(Arc::clone(&registry), id);
            async move { Ok::<Response, Infallible>(route(router, req, peer, &limits, busy).await) }
        })
    };
    let mut stop = setup.stop.clone();
    let mut http = pin!(setup.http.serve_connection(TokioIo::new(io), service));
    let mut closing = false;
    loop {
        let why = tokio::select! {
            result = http.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if !closing => "the server stops",
            () = conn.evict.notified(), if !closing => "making room for a new connection",
        };
        if !used.load(Ordering::Relaxed) {
            tracing::debug!(%peer, why, "closing a connection that sent no request");
            return;
        }
        // Finish the request in flight, then close (at once if none is).
        tracing::debug!(%peer, why, "closing the connection after its request");
        closing = true;
        http.as_mut().graceful_shutdown();
    }
}

/// One request: the peer address for the gate, the request-body clock, then the router;
/// the connection counts as busy until the response body is done.
async fn route(
    router: Router,
    req: Request<Incoming>,
    peer: SocketAddr,
    limits: &Limits,
    busy: Busy,
) -> Response {
    let timer = BodyTimer::default();
    let (mut parts, incoming) = req.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    parts.extensions.insert(timer.clone());
    let body = TimedBody::new(incoming, limits.body_timeout, limits.min_body_rate, timer);
    let resp = match router
        .oneshot(Request::from_parts(parts, Body::new(body)))
        .await
    {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    resp.map(|inner| Body::new(BusyBody { inner, _busy: busy }))
}

/// Open connections and since when each has been waiting for a request.
#[derive(Default)]
struct Registry {
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Entry>>,
}

struct Entry {
    /// Since when the connection waits for a request (`None` while one is served, or once
    /// it was told to close).
    waiting_since: Option<Instant>,
    evict: Arc<Notify>,
}

enum Eviction {
    /// A connection was told to close.
    Evicted,
    /// The longest-waiting connection becomes a candidate at this time.
    NotBefore(Instant),
    /// Every connection is busy with a request.
    NoneWaiting,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // Entries are inserted and removed whole: a panic cannot leave one half-made.
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn register(self: &Arc<Self>) -> Conn {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evict = Arc::new(Notify::new());
        self.lock().insert(
            id,
            Entry {
                waiting_since: Some(Instant::now()),
                evict: Arc::clone(&evict),
            },
        );
        Conn {
            id,
            evict,
            registry: Arc::clone(self),
        }
    }

    fn set_waiting(&self, id: u64, since: Option<Instant>) {
        if let Some(entry) = self.lock().get_mut(&id) {
            entry.waiting_since = since;
        }
    }

    fn evict_oldest_waiting(&self, now: Instant) -> Eviction {
        let mut conns = self.lock();
        let oldest = conns
            .iter_mut()
            .filter_map(|(_, e)| e.waiting_since.map(|since| (since, e)))
            .min_by_key(|(since, _)| *since);
        match oldest {
            None => Eviction::NoneWaiting,
            Some((since, entry)) if now.saturating_duration_since(since) >= EVICT_AFTER => {
                entry.waiting_since = None;
                entry.evict.notify_one();
                Eviction::Evicted
            }
            Some((since, _)) => Eviction::NotBefore(since + EVICT_AFTER),
        }
    }
}

/// A registered connection (removed from the registry when dropped).
struct Conn {
    id: u64,
    evict: Arc<Notify>,
    registry: Arc<Registry>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

/// A request being served on a connection (waiting again once dropped).
struct Busy {
    registry: Arc<Registry>,
    id: u64,
}

impl Busy {
    fn start(registry: Arc<Registry>, id: u64) -> Self {
        registry.set_waiting(id, None);
        Self { registry, id }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.registry.set_waiting(self.id, Some(Instant::now()));
    }
}

/// A response body that keeps its connection marked busy until it is done.
struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl HttpBody for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
