//! Server configuration: the [`ServeConfig`] struct and its command-line form [`ServeArgs`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::ServerError;

/// Default base path under which the endpoints are mounted.
pub const DEFAULT_BASE_PATH: &str = "/hdfstream";
/// Default bind address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// Resource limits. Requests beyond them get a 4xx answer, never unbounded memory use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest POST body accepted, in bytes (413 beyond). The default, 320 MiB, admits a
    /// slice with the protocol maximum of 2^24 runs in the widest integer encoding
    /// (2 × 2^24 × 9 bytes); the body is held in memory while it is decoded, so lower it on
    /// small machines.
    pub max_body_bytes: usize,
    /// Requests one client (user name, else IP address) may have in flight, counting
    /// streaming bodies until they end; more get 429 with `Retry-After`.
    pub max_requests_per_client: usize,
    /// Size of the pieces a streamed response is cut into (memory per response is a few of these).
    pub chunk_bytes: usize,
    /// Deepest directory expansion honoured for `max_depth` in directory listings.
    pub max_listing_depth: u32,
    /// Chunks one request may have decoding at once on the shared decode pool; 0 (the
    /// default) allows as many as the pool has threads. Lower it so that concurrent
    /// clients share the cores instead of one large read taking all of them.
    pub decode_jobs_per_request: usize,
    /// Wrong credentials one IP address may send in a minute; after that, its requests that
    /// carry credentials get 429 with `Retry-After` until the minute is over, without the
    /// (slow) password check. 0: no limit.
    pub max_failed_logins: u32,
    /// Time a connection has to deliver a complete request head (request line and
    /// headers), counted from when the server starts waiting for one: the opening of the
    /// connection (the TLS handshake included) or the end of the previous response. A
    /// connection that takes longer is closed without an answer, so this is also how long
    /// an idle keep-alive connection stays open. Default 30 s.
    pub header_timeout: Duration,
    /// Time a request body has to arrive, counted from the end of its head and extended by
    /// one second per `min_body_rate` bytes received; beyond, the request gets 408 and the
    /// connection is closed. Default 30 s.
    pub body_timeout: Duration,
    /// Bytes per second of request body that extend `body_timeout` (so a large body sent
    /// at least this fast is never cut); 0: the whole body must arrive within
    /// `body_timeout`. Default 64 KiB/s.
    pub min_body_rate: u64,
    /// Time a response may wait for the client to accept more bytes; beyond, the connection
    /// is closed (the body ends early). It frees the server's resources held for clients
    /// that stop reading. Default 60 s.
    pub send_timeout: Duration,
    /// Connections open at once (at least 1). At the cap, the connection that has waited
    /// longest (a second or more) for its next request is closed to make room for a new
    /// one; when every connection is busy with a request, new connections wait in the
    /// operating system's listen backlog, unanswered, until one closes. Keep it below the
    /// process's open-file limit (`ulimit -n`), which must also cover the open HDF5 files.
    /// Default 512.
    pub max_connections: usize,
    /// Most elements one h5grove request (`<base>/h5grove/data/`, `stats/`, `attr/`) reads;
    /// larger selections get 413, so that a browser never asks for gigabytes. Elements wider
    /// than 16 bytes count as several (a dataset selection reads at most 16 bytes per
    /// allowed element). The answer is built in memory: about this many times 8 bytes for
    /// `bin`, and up to 25 bytes per number as JSON. Default 2^24 (a 4096 x 4096 image).
    pub max_h5grove_elements: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 320 << 20,
            max_requests_per_client: 8,
            chunk_bytes: 1 << 20,
            max_listing_depth: 16,
            decode_jobs_per_request: 0,
            max_failed_logins: 20,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            min_body_rate: 64 << 10,
            send_timeout: Duration::from_secs(60),
            max_connections: 512,
            max_h5grove_elements: 1 << 24,
        }
    }
}

/// A content coding the server may compress `/msgpack` responses with (`--compress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ContentCoding {
    /// Zstandard (RFC 8878) at level 1: fast, preferred when a client accepts several.
    Zstd,
    /// gzip at level 1: understood by every HTTP client, but several times slower.
    Gzip,
}

/// PEM files for HTTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM, PKCS#8 or PKCS#1).
    pub key: PathBuf,
}

/// Everything needed to run a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    /// Directory whose tree is served.
    pub root: PathBuf,
    /// Address to listen on (used by [`crate::spawn`]; [`crate::serve`] takes a bound listener).
    pub bind: SocketAddr,
    /// URL prefix of all endpoints: `""` or `/segment[/segment...]`, no trailing slash.
    pub base_path: String,
    /// Users file enabling HTTP Basic authentication (format in [`crate::auth`]).
    pub users: Option<PathBuf>,
    /// Per-directory access rules (format in [`crate::auth`]).
    pub access: Option<PathBuf>,
    /// Resource limits.
    pub limits: Limits,
    /// Serve HTTPS with these PEM files.
    pub tls: Option<TlsConfig>,
    /// Codings `/msgpack` responses may be compressed with, when the request's
    /// `Accept-Encoding` asks for one of them (zstd preferred). Default: empty, every
    /// response goes out uncompressed, as from the reference server. Responses under
    /// [`crate::http::MIN_COMPRESSED_BYTES`] and `/download` bodies are never compressed.
    pub compression: Vec<ContentCoding>,
    /// Client addresses `<base>/status` answers (others get 403); empty: the page is off
    /// (404). Default: [`LOOPBACK`], as the reference server. Behind a reverse proxy on the
    /// same machine every client looks local, so leave it empty there.
    pub status_allow: Vec<IpAddr>,
}

/// The addresses `/status` answers by default: 127.0.0.1 and ::1.
pub const LOOPBACK: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

impl ServeConfig {
    /// Defaults for serving `root`: bind 127.0.0.1:8080, base path `/hdfstream`, no auth, no TLS.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_path: DEFAULT_BASE_PATH.to_owned(),
            users: None,
            access: None,
            limits: Limits::default(),
            tls: None,
            compression: Vec::new(),
            status_allow: LOOPBACK.to_vec(),
        }
    }

    /// The base path normalised to `""` or `/a/b` (no trailing slash), or an error.
    pub fn normalized_base_path(&self) -> Result<String, ServerError> {
        let trimmed = self.base_path.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(String::new());
        }
        let valid = trimmed.starts_with('/')
            && trimmed[1..].split('/').all(|s| {
                !s.is_empty() && s != "." && s != ".." && !s.contains(['{', '}', '*', '%'])
            });
        if valid {
            Ok(trimmed.to_owned())
        } else {
            Err(ServerError::BasePath {
                base: self.base_path.clone(),
            })
        }
    }
}

/// Options of `hdfstream serve` (embed with `#[command(flatten)]` or as a subcommand).
#[derive(Clone, Debug, clap::Args)]
#[command(about = "Serve a directory of HDF5 files over the hdfstream protocol")]
pub struct ServeArgs {
    /// Directory to serve; every file below it becomes visible (hidden names starting with
    /// '.' and symlinks leaving the directory are not).
    #[arg(required_unless_present = "hash_password")]
    pub dir: Option<PathBuf>,
    /// Address and port to listen on; port 0 picks a free port. The base URL is printed on
    /// stdout once the server accepts connections, and the browser viewer's URL
    /// (`<base URL>/viewer/`) on the next line.
    #[arg(long, default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// URL prefix of the endpoints (`<base>/msgpack/...`, `<base>/download/...`); "" for none.
    #[arg(long, default_value = DEFAULT_BASE_PATH)]
    pub base_path: String,
    /// Users file enabling HTTP Basic auth: one `name:hash[:role,role]` per line, hash made
    /// with --hash-password. Wrong credentials on any request get 401.
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Access rules file: one `dir_prefix role[,role]` per line; a directory needs all the
    /// roles of all rules on it and its ancestors; forbidden directories are hidden.
    #[arg(long, value_name = "FILE")]
    pub access: Option<PathBuf>,
    /// Largest POST body in bytes (413 beyond); held in memory while decoded.
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Requests one client (user, else IP) may have in flight; more get 429 + Retry-After.
    #[arg(long, default_value_t = Limits::default().max_requests_per_client)]
    pub max_requests_per_client: usize,
    /// Chunks one request may have decoding at once (0: as many as there are cores); lower
    /// it to share the cores fairly between many concurrent clients.
    #[arg(long, default_value_t = Limits::default().decode_jobs_per_request)]
    pub decode_jobs_per_request: usize,
    /// Wrong credentials one IP address may send per minute; beyond, its requests with
    /// credentials get 429 + Retry-After until the minute is over (0: no limit).
    #[arg(long, default_value_t = Limits::default().max_failed_logins)]
    pub max_failed_logins: u32,
    /// Seconds a connection has to send a whole request head, from its opening (TLS
    /// handshake included) or the end of the previous response; slower connections, and
    /// keep-alive connections idle that long, are closed.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_seconds)]
    pub header_timeout: Duration,
    /// Seconds a request body has to arrive after its head, plus one per --min-body-rate
    /// bytes received; beyond, 408 and the connection is closed.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_seconds)]
    pub body_timeout: Duration,
    /// Request-body bytes per second that extend --body-timeout (0: no extension).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().min_body_rate)]
    pub min_body_rate: u64,
    /// Seconds a response may wait for the client to accept more bytes; beyond, the
    /// connection is closed.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_seconds)]
    pub send_timeout: Duration,
    /// Connections open at once; at the cap, the one waiting longest for a request is closed
    /// to make room, and while all are busy new ones wait in the listen backlog. Keep it
    /// below the open-file limit (ulimit -n).
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Most elements one h5grove request (data, stats, attributes) reads; larger
    /// selections get 413.
    #[arg(long, default_value_t = Limits::default().max_h5grove_elements)]
    pub max_h5grove_elements: u64,
    /// Certificate chain (PEM) to serve HTTPS; needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Compress /msgpack responses with these codings when a client's Accept-Encoding asks
    /// for one (comma-separated: zstd, gzip; zstd preferred). Default: none (as the reference
    /// server). Pays on slow links for compressible data (integer IDs, sorted coordinates),
    /// costs CPU on fast ones. Small responses and /download bodies are never compressed.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CODINGS")]
    pub compress: Vec<ContentCoding>,
    /// Client addresses the admin page <base>/status answers (comma-separated; others get
    /// 403); "none" turns the page off. Behind a reverse proxy every client looks local.
    #[arg(long, value_name = "ADDRS", default_value = "127.0.0.1,::1", value_parser = parse_allow)]
    pub status_allow: AllowList,
    /// Read a password from stdin, print its hash for the users file, and exit.
    #[arg(long)]
    pub hash_password: bool,
}

impl ServeArgs {
    /// The configuration these options describe (`None` in --hash-password mode).
    pub fn to_config(&self) -> Option<ServeConfig> {
        let root = self.dir.clone()?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        Some(ServeConfig {
            root,
            bind: self.bind,
            base_path: self.base_path.clone(),
            users: self.users.clone(),
            access: self.access.clone(),
            limits: Limits {
                max_body_bytes: self.max_body_bytes,
                max_requests_per_client: self.max_requests_per_client.max(1),
                decode_jobs_per_request: self.decode_jobs_per_request,
                max_failed_logins: self.max_failed_logins,
                header_timeout: self.header_timeout,
                body_timeout: self.body_timeout,
                min_body_rate: self.min_body_rate,
                send_timeout: self.send_timeout,
                max_connections: self.max_connections.max(1),
                max_h5grove_elements: self.max_h5grove_elements,
                ..Limits::default()
            },
            tls,
            compression: self.compress.clone(),
            status_allow: self.status_allow.0.clone(),
        })
    }
}

/// A list of client addresses (`--status-allow`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList(pub Vec<IpAddr>);

/// `none`, or comma-separated IP addresses.
fn parse_allow(text: &str) -> Result<AllowList, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(AllowList(Vec::new()));
    }
    text.split(',')
        .map(|part| {
            let part = part.trim();
            part.parse::<IpAddr>()
                .map_err(|_| format!("not an IP address: {part:?} (or give \"none\")"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(AllowList)
}

/// A duration given in seconds (decimals allowed), greater than zero.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("not a number of seconds: {text:?}"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!(
            "seconds must be above 0 and at most 1e9, got {text:?}"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}
