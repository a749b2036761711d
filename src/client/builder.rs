//! [`ClientBuilder`]: configuration of a [`Connection`], validated in [`ClientBuilder::build`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::retry::RetryConfig;
use super::{Connection, Inner};
use crate::config::{Config, is_http_url};
use crate::error::{Error, Result};

/// Environment variable holding the server URL or alias ([`ClientBuilder::from_env`]).
pub const ENV_URL: &str = "HDFSTREAM_URL";
/// Environment variable holding the user name.
pub const ENV_USER: &str = "HDFSTREAM_USER";
/// Environment variable holding the password.
pub const ENV_PASSWORD: &str = "HDFSTREAM_PASSWORD";

/// Default time allowed until response headers arrive, and the longest stall between
/// two reads of a response body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time allowed to establish a TCP/TLS connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default size from which a read gets a connection of its own, read on the calling thread
/// ([`ClientBuilder::with_direct_reads_from`]): 64 MiB.
pub const DEFAULT_DIRECT_READS_FROM: u64 = 64 << 20;

/// The `User-Agent` of both HTTP clients.
const USER_AGENT: &str = concat!("hdfstream-rust/", env!("CARGO_PKG_VERSION"));

/// Builds a [`Connection`] (object_store style: `new()`, `with_*` by value, then `build()`).
#[derive(Clone, Default)]
pub struct ClientBuilder {
    server: Option<String>,
    user: Option<String>,
    password: Option<String>,
    config: Option<Config>,
    config_path: Option<PathBuf>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry: Option<RetryConfig>,
    allow_invalid_certificates: bool,
    progress: Option<bool>,
    no_probe: bool,
    no_compression: bool,
    direct_reads_from: Option<u64>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("config_path", &self.config_path)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field(
                "allow_invalid_certificates",
                &self.allow_invalid_certificates,
            )
            .field("progress", &self.progress)
            .field("probe", &!self.no_probe)
            .field("compression", &!self.no_compression)
            .field("direct_reads_from", &self.direct_reads_from)
            .finish_non_exhaustive()
    }
}

/// Key of [`ClientBuilder::build_shared`]'s cache: the options as `Debug` shows them
/// (password redacted), and the password.
type SharedKey = (String, Option<String>);

impl ClientBuilder {
    /// An empty builder: no server, no credentials, default timeouts and retries,
    /// TLS verification on, progress automatic, connection probe on, compression offered.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder filled from `HDFSTREAM_URL`, `HDFSTREAM_USER` and `HDFSTREAM_PASSWORD`
    /// (unset or empty variables are ignored).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        ClientBuilder {
            server: var(ENV_URL),
            user: var(ENV_USER),
            password: var(ENV_PASSWORD),
            ..Self::default()
        }
    }

    /// Server base URL (`https://host:8443/hdfstream`) or the name of an alias from the
    /// configuration file. No default.
    pub fn with_url(mut self, url_or_alias: impl Into<String>) -> Self {
        self.server = Some(url_or_alias.into());
        self
    }

    /// Same as [`ClientBuilder::with_url`], named for alias use.
    pub fn with_alias(self, alias: impl Into<String>) -> Self {
        self.with_url(alias)
    }

    /// HTTP Basic credentials, sent pre-emptively on every request; they override an
    /// alias's user. Default: none (anonymous).
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.user = Some(user.into());
        self.password = Some(password.into());
        self
    }

    /// Uses this alias configuration instead of reading the configuration file.
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Reads aliases from this file (created with the default alias if missing) instead of
    /// [`Config::default_path`]. Only consulted when the server is not a URL.
    pub fn with_config_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_path = Some(path.into());
        self
    }

    /// Time allowed until response headers arrive, and the longest stall between two reads
    /// of a body. Default [`DEFAULT_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Time allowed to establish a connection. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Retry policy. Default [`RetryConfig::default`].
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Accept any TLS certificate (self-signed test servers). Default false: certificates
    /// are verified.
    pub fn with_allow_invalid_certificates(mut self, allow: bool) -> Self {
        self.allow_invalid_certificates = allow;
        self
    }

    /// Progress bars for this connection: `true` always, `false` never. Default: follow
    /// [`crate::set_progress`] (on a terminal only, unless it was called).
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Whether [`ClientBuilder::build`] checks the server with `GET <base>/msgpack/`.
    /// Default true, like the Python client.
    pub fn with_probe(mut self, probe: bool) -> Self {
        self.no_probe = !probe;
        self
    }

    /// Whether responses may come compressed: `true` sends `Accept-Encoding: zstd, gzip, deflate`
    /// (a server started with `--compress zstd,...` answers zstd) and the body is
    /// decompressed as it streams into its destination; `false` asks for none (identity
    /// bodies, as on loopback where compressing costs more than it saves). Default true; the
    /// server decides, and compresses nothing unless configured to.
    pub fn with_compression(mut self, compression: bool) -> Self {
        self.no_compression = !compression;
        self
    }

    /// Slice reads expected to carry at least `bytes` bytes go over a connection of their
    /// own, read by the calling thread, instead of the shared keep-alive pool, whose
    /// connections are read by a thread of their own (a hand-over per piece of the body,
    /// which slows large transfers). Costs one connection set-up per such read. Not inside
    /// an async runtime, where the pool is used. Default [`DEFAULT_DIRECT_READS_FROM`].
    pub fn with_direct_reads_from(mut self, bytes: u64) -> Self {
        self.direct_reads_from = Some(bytes);
        self
    }

    /// Every read through the shared keep-alive pool (see
    /// [`with_direct_reads_from`](Self::with_direct_reads_from)).
    pub fn without_direct_reads(mut self) -> Self {
        self.direct_reads_from = Some(u64::MAX);
        self
    }

    /// Like [`build`](Self::build), but made once per process for each set of options: a
    /// later call with the same options (server, credentials, timeouts, retries, ...)
    /// returns a clone of the first connection, sharing its HTTP client and pooled
    /// connections, without a new probe. A failed build is not kept. A builder given an
    /// in-memory [`Config`] is always built anew.
    pub fn build_shared(self) -> Result<Connection> {
        static CACHE: OnceLock<Mutex<HashMap<SharedKey, Connection>>> = OnceLock::new();
        if self.config.is_some() {
            return self.build();
        }
        // Debug shows every option but the password (redacted), which is keyed apart.
        let key = (format!("{self:?}"), self.password.clone());
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = lock().get(&key) {
            return Ok(c.clone());
        }
        let conn = self.build()?;
        lock().entry(key).or_insert_with(|| conn.clone());
        Ok(conn)
    }

    /// Validates the options, resolves an alias, creates the HTTP client and (unless
    /// disabled) probes the server.
    ///
    /// Must not be called from inside an async runtime (the blocking HTTP client runs its
    /// own).
    pub fn build(self) -> Result<Connection> {
        let server = self.server.clone().ok_or_else(|| {
            Error::config(format!("no server given: call with_url or set {ENV_URL}"))
        })?;
        let resolved = if is_http_url(&server) {
            Config::default().resolve(&server)?
        } else {
            let config = match (&self.config, &self.config_path) {
                (Some(c), _) => c.clone(),
                (None, Some(p)) => Config::load_or_create(p)?,
                (None, None) => {
                    let path = Config::default_path().ok_or_else(|| {
                        Error::config("no configuration directory to look up aliases in")
                    })?;
                    Config::load_or_create(&path)?
                }
            };
            config.resolve(&server)?
        };
        if has_userinfo(&resolved.url) {
            return Err(Error::config(
                "the server URL must not contain credentials: use with_credentials",
            ));
        }
        let user = self.user.clone().or(resolved.user.clone());
        let auth = match (user, self.password.clone()) {
            (None, None) => None,
            (Some(u), Some(p)) => Some((u, p)),
            (None, Some(_)) => {
                return Err(Error::config("a password was given without a user name"));
            }
            (Some(u), None) => {
                return Err(Error::config(format!(
                    "user {u:?} has no password (keyrings and prompts are not supported): \
                     use with_credentials or set {ENV_PASSWORD}"
                )));
            }
        };
        if let Some((u, _)) = &auth
            && (u.is_empty() || u.contains(':'))
        {
            return Err(Error::config(
                "user names must be non-empty and must not contain ':'",
            ));
        }
        if auth.is_some() && resolved.url.starts_with("http://") {
            tracing::warn!(
                url = %resolved.url,
                "credentials will be sent unencrypted over plain HTTP"
            );
        }
        let retry = self.retry.clone().unwrap_or_default();
        retry.validate().map_err(Error::config)?;
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let connect_timeout = self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        if timeout.is_zero() || connect_timeout.is_zero() {
            return Err(Error::config("timeouts must be greater than zero"));
        }
        // reqwest takes the process-wide rustls provider; ring unless the program chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .user_agent(USER_AGENT)
            .tls_danger_accept_invalid_certs(self.allow_invalid_certificates)
            .build()
            .map_err(|e| Error::config(format!("cannot create HTTP client: {e}")))?;
        // The same settings; `read_timeout` is the blocking client's per-read `timeout`. No
        // pool: a connection lives on the runtime of the one read that opened it.
        let direct = reqwest::Client::builder()
            .read_timeout(timeout)
            .connect_timeout(connect_timeout)
            .user_agent(USER_AGENT)
            .tls_danger_accept_invalid_certs(self.allow_invalid_certificates)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| Error::config(format!("cannot create HTTP client: {e}")))?;
        let connection = Connection {
            inner: Arc::new(Inner {
                http,
                direct,
                direct_from: self.direct_reads_from.unwrap_or(DEFAULT_DIRECT_READS_FROM),
                base_url: resolved.url,
                auth,
                retry,
                progress: self.progress,
                compression: !self.no_compression,
            }),
        };
        if !self.no_probe {
            connection.probe()?;
        }
        Ok(connection)
    }
}

/// Whether the authority part of `url` has `user@` / `user:password@`.
fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    authority.contains('@')
}
