//! The HTTP layer: router, serving loop, embedding helpers.
//!
//! * [`app`] builds the axum [`Router`] (usable without a socket);
//! * [`serve`] runs it on a bound listener until a shutdown future resolves (HTTP or HTTPS);
//! * [`spawn`] / [`ServerHandle`] start a server on `127.0.0.1:0` for tests and embedding,
//!   with [`RequestLog`] accounting of every request served;
//! * [`run`] is `hdfstream serve`: prints the base URL and the viewer's, stops on Ctrl-C.

mod compress;
mod gate;
mod h5grove;
mod handlers;
mod listen;
mod respond;
mod status;
mod stream;
mod tarball;
mod timeouts;
mod viewer;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use compress::MIN_COMPRESSED_BYTES;
pub use gate::{
    LOGGED_RUNS, REQUEST_LOG_BYTES, REQUEST_LOG_CAPACITY, RequestLog, RequestRecord,
    TIMED_REQUESTS, TimedRequest,
};
pub use status::SLOWEST_SHOWN;

use crate::auth::{AccessRules, Users};
use crate::config::{ContentCoding, Limits, ServeArgs, ServeConfig, TlsConfig};
use crate::error::ServerError;
use crate::hdf5::Hdf5Files;
use crate::vfs::Vfs;

/// How long a shutdown waits for responses still streaming.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything the handlers share.
pub(crate) struct Shared {
    pub(crate) vfs: Vfs,
    pub(crate) users: Option<Arc<Users>>,
    pub(crate) limits: Limits,
    pub(crate) log: Arc<RequestLog>,
    pub(crate) clients: Arc<gate::ClientLimiter>,
    pub(crate) logins: gate::FailedLogins,
    pub(crate) hdf5: Hdf5Files,
    pub(crate) compression: Vec<ContentCoding>,
    pub(crate) status_allow: Vec<std::net::IpAddr>,
    pub(crate) started: Instant,
    pub(crate) started_at: std::time::SystemTime,
}

/// Server state: the served tree, users, limits, request log. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
    base_path: String,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("root", &self.shared.vfs.root())
            .field("base_path", &self.base_path)
            .field("users", &self.shared.users)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Load the root, users and access files named by `config`.
    pub fn new(config: &ServeConfig) -> Result<Self, ServerError> {
        let base_path = config.normalized_base_path()?;
        let access = match &config.access {
            Some(path) => AccessRules::load(path)?,
            None => AccessRules::default(),
        };
        let users = match &config.users {
            Some(path) => Some(Arc::new(Users::load(path)?)),
            None => None,
        };
        let shared = Shared {
            vfs: Vfs::new(&config.root, access)?,
            users,
            limits: config.limits.clone(),
            log: Arc::new(RequestLog::default()),
            clients: Arc::new(gate::ClientLimiter::new(
                config.limits.max_requests_per_client,
            )),
            logins: gate::FailedLogins::new(config.limits.max_failed_logins),
            hdf5: Hdf5Files::default()
                .with_decode_jobs_per_request(config.limits.decode_jobs_per_request),
            compression: config.compression.clone(),
            status_allow: config.status_allow.clone(),
            started: Instant::now(),
            started_at: std::time::SystemTime::now(),
        };
        Ok(Self {
            shared: Arc::new(shared),
            base_path,
        })
    }

    /// The log of requests served.
    pub fn request_log(&self) -> Arc<RequestLog> {
        Arc::clone(&self.shared.log)
    }

    /// The normalised base path (`""` or `/a/b`).
    pub fn base_path(&self) -> &str {
        &self.base_path
    }
}

/// The router: `<base>/msgpack[/<vpath>]` (GET, HEAD, POST), `<base>/download/<vpath>`
/// (GET, HEAD), the h5grove-compatible API `<base>/h5grove/{meta,attr,data,stats,paths}/`
/// (GET, HEAD), the browser viewer `<base>/viewer/[<vpath>]` (GET, HEAD) and the admin page
/// `<base>/status` (GET), behind the accounting/auth/limit middleware (which counts the bytes
/// sent, compressed when `ServeConfig::compression` allows it).
pub fn app(state: AppState) -> Router {
    let endpoints = Router::new()
        .route("/msgpack", get(handlers::msgpack).post(handlers::msgpack))
        .route("/msgpack/", get(handlers::msgpack).post(handlers::msgpack))
        .route(
            "/msgpack/{*vpath}",
            get(handlers::msgpack).post(handlers::msgpack),
        )
        .route("/download", get(handlers::download))
        .route("/download/", get(handlers::download))
        .route("/download/{*vpath}", get(handlers::download))
        .route("/status", get(status::status))
        .route("/h5grove", get(h5grove::root))
        .route("/h5grove/", get(h5grove::root))
        .route("/h5grove/meta", get(h5grove::meta))
        .route("/h5grove/meta/", get(h5grove::meta))
        .route("/h5grove/attr", get(h5grove::attr))
        .route("/h5grove/attr/", get(h5grove::attr))
        .route("/h5grove/data", get(h5grove::data))
        .route("/h5grove/data/", get(h5grove::data))
        .route("/h5grove/stats", get(h5grove::stats))
        .route("/h5grove/stats/", get(h5grove::stats))
        .route("/h5grove/paths", get(h5grove::paths))
        .route("/h5grove/paths/", get(h5grove::paths))
        .route("/viewer", get(viewer::redirect))
        .route("/viewer/", get(viewer::page))
        .route("/viewer/{*rest}", get(viewer::page))
        .layer(DefaultBodyLimit::max(state.shared.limits.max_body_bytes));
    let mut routed = if state.base_path.is_empty() {
        endpoints
    } else {
        Router::new().nest(&state.base_path, endpoints)
    };
    if !state.shared.compression.is_empty() {
        routed = routed.layer(axum::middleware::from_fn_with_state(
            state.shared.compression.clone(),
            compress::compress,
        ));
    }
    routed
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::gate,
        ))
        .with_state(state)
}

/// The TLS settings for `tls`: its certificate chain and key, HTTP/1.1 only in ALPN.
async fn load_tls(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    // Several crypto providers may be compiled in; pick ring explicitly (first call wins).
    let _ = rustls::crypto::ring::default_provider().install_default();
    for path in [&tls.cert, &tls.key] {
        std::fs::metadata(path).map_err(|source| ServerError::Tls {
            path: path.clone(),
            source,
        })?;
    }
    let loaded = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|source| ServerError::Tls {
            path: tls.cert.clone(),
            source,
        })?;
    let mut config = rustls::ServerConfig::clone(&loaded.get_inner());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serve `state` on `listener` (HTTPS when `tls` is given) until `shutdown` resolves, then
/// finish the requests in flight (at most [`SHUTDOWN_GRACE`]). Connections are limited and
/// timed as `state`'s [`Limits`] say (see their fields).
pub async fn serve_state(
    listener: TcpListener,
    state: AppState,
    tls: Option<&TlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let tls = match tls {
        Some(tls) => Some(load_tls(tls).await?),
        None => None,
    };
    let limits = state.shared.limits.clone();
    listen::serve_connections(listener, app(state), tls, &limits, shutdown).await;
    Ok(())
}

/// Serve `config` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let state = AppState::new(&config)?;
    serve_state(listener, state, config.tls.as_ref(), shutdown).await
}

fn base_url(addr: SocketAddr, tls: bool, base_path: &str) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}{base_path}")
}

/// A server running as a task of the current tokio runtime (see [`spawn`]).
#[derive(Debug)]
pub struct RunningServer {
    base_url: String,
    addr: SocketAddr,
    log: Arc<RequestLog>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    /// Base URL, e.g. `http://127.0.0.1:40123/hdfstream`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The request log.
    pub fn request_log(&self) -> Arc<RequestLog> {
        Arc::clone(&self.log)
    }

    /// Stop accepting, finish requests in flight (at most [`SHUTDOWN_GRACE`], then drop
    /// the remaining connections), and wait for the server to end.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(ServerError::Runtime {
                source: std::io::Error::other(join.to_string()),
            }),
            Err(_) => {
                tracing::warn!("requests still in flight after the grace period; dropping them");
                self.task.abort();
                Ok(())
            }
        }
    }
}

/// Bind `config.bind` and serve in a background task of the current runtime.
pub async fn spawn(config: ServeConfig) -> Result<RunningServer, ServerError> {
    let state = AppState::new(&config)?;
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| ServerError::Net {
            addr: config.bind.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Net {
        addr: config.bind.to_string(),
        source,
    })?;
    if let Some(tls) = &config.tls {
        load_tls(tls).await?;
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let log = state.request_log();
    let url = base_url(addr, config.tls.is_some(), state.base_path());
    let tls = config.tls.clone();
    let task = tokio::spawn(async move {
        serve_state(listener, state, tls.as_ref(), async move {
            let _ = stopped.await;
        })
        .await
    });
    Ok(RunningServer {
        base_url: url,
        addr,
        log,
        stop: Some(stop),
        task,
    })
}

/// A server on its own thread and tokio runtime, stopped when dropped. For tests and
/// blocking programs.
#[derive(Debug)]
pub struct ServerHandle {
    base_url: String,
    log: Arc<RequestLog>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// Serve `root` with default settings on `127.0.0.1:<free port>`.
    pub fn start(root: impl AsRef<Path>) -> Result<Self, ServerError> {
        let mut config = ServeConfig::new(root.as_ref());
        config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_with(config)
    }

    /// Serve `config` (its `bind` address is used as given; port 0 picks a free port).
    pub fn start_with(config: ServeConfig) -> Result<Self, ServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| ServerError::Runtime { source })?;
        let running = runtime.block_on(spawn(config))?;
        let base_url = running.base_url.clone();
        let log = running.request_log();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hdfstream-server".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = stopped.await;
                    if let Err(error) = running.shutdown().await {
                        tracing::warn!(%error, "embedded server ended with an error");
                    }
                });
            })
            .map_err(|source| ServerError::Runtime { source })?;
        Ok(Self {
            base_url,
            log,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123/hdfstream`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Records of the requests served so far, once their bodies have finished (waits up to
    /// 2 s for responses still in flight, so a client that just read a body sees its record).
    pub fn request_log(&self) -> Vec<RequestRecord> {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.log.in_flight() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.log.snapshot()
    }

    /// Forget the records so far.
    pub fn clear_request_log(&self) {
        self.log.clear();
    }

    /// The live log (counters and records).
    pub fn log(&self) -> Arc<RequestLog> {
        Arc::clone(&self.log)
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `hdfstream serve`: hash a password (`--hash-password`), or serve until Ctrl-C, printing
/// the base URL on stdout once listening (first line) and the viewer's URL (second line).
pub async fn run(args: &ServeArgs) -> Result<(), ServerError> {
    if args.hash_password {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|source| ServerError::ReadFile {
                path: "<stdin>".into(),
                source,
            })?;
        let password = line.trim_end_matches(['\r', '\n']);
        println!("{}", crate::auth::hash_password(password)?);
        return Ok(());
    }
    let Some(config) = args.to_config() else {
        return Ok(());
    };
    let signal = shutdown_signal();
    let running = spawn(config).await?;
    announce(running.base_url());
    tracing::info!(url = running.base_url(), "serving");
    let signal = signal.await;
    tracing::info!(signal, "shutting down");
    running.shutdown().await
}

/// Print the base URL and, on the next line, the viewer's, in one write: a reader that takes
/// the first line and closes the pipe (`| head -1`) does not stop the server, whose later
/// writes would fail with EPIPE (so no `println!`, which panics on it).
fn announce(base_url: &str) {
    use std::io::Write;
    let text = format!("{base_url}\nviewer: {base_url}/viewer/\n");
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!(%error, "cannot print the URLs on stdout");
    }
}

/// A future that ends at Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `kill`, systemd and
/// container runtimes send), naming the one that came. The SIGTERM handler is installed
/// before this returns, so a signal sent right after the server announces its URL is seen.
fn shutdown_signal() -> impl std::future::Future<Output = &'static str> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .inspect_err(|e| {
            tracing::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops the server");
        })
        .ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
