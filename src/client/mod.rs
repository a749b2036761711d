//! HTTP connection to an hdfstream server: auth, configuration, retries, progress.
//!
//! ```no_run
//! use std::time::Duration;
//! use hdfstream::{ClientBuilder, RetryConfig};
//! use hdfstream_protocol::{DimSelection, PathInfo, SliceSpec};
//!
//! let conn = ClientBuilder::new()
//!     .with_url("cosma") // an alias from ~/.config/hdfstream/config.yml, or a URL
//!     .with_timeout(Duration::from_secs(120))
//!     .with_retry(RetryConfig { max_retries: 3, ..RetryConfig::default() })
//!     .build()?; // sends the `GET <base>/msgpack/` probe
//! if let PathInfo::Directory(d) = conn.request_path("EAGLE")? {
//!     println!("{} subdirectories", d.directories.len());
//! }
//! let rows = SliceSpec::new(vec![DimSelection::new(0, 1000)], vec![DimSelection::new(0, 3)]);
//! let coords = conn.request_slice("EAGLE/snap.hdf5", "/PartType1/Coordinates", &rows)?;
//! println!("{:?}", coords.shape());
//! # Ok::<(), hdfstream::Error>(())
//! ```
//!
//! Contract used by `crate::remote` (kept stable while layers are built in parallel):
//! ```text
//! Connection::request_path(&self, vpath: &str) -> Result<PathInfo>
//! Connection::request_object(&self, file: &str, object: &str, max_depth: u32, data_size_limit: u64) -> Result<Member>
//! Connection::request_slice(&self, file: &str, object: &str, slice: &SliceSpec) -> Result<ArrayData>
//! Connection::request_slice_into(&self, file: &str, object: &str, slice: &SliceSpec, dtype: &Dtype, dest: &mut [u8]) -> Result<()>
//! Connection::download(&self, vpath: &str, out: &mut dyn std::io::Write) -> Result<u64>
//! ```

mod builder;
mod codec;
mod requests;
mod retry;
mod transport;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use reqwest::Method;

pub use builder::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, ENV_PASSWORD, ENV_URL, ENV_USER,
};
pub use retry::{BackoffConfig, RetryConfig};

use crate::error::{Error, Result};
use crate::progress::Progress;
use transport::Call;

/// Key of the [`Connection::open`] cache: the server argument and the user.
type CacheKey = (String, Option<String>);

/// Size of the reads used to stream response bodies.
const READ_CHUNK: usize = 1 << 20;

/// A connection to one hdfstream server; cheap to clone (shared HTTP client and
/// keep-alive pool). Build one with [`ClientBuilder`].
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

/// Shared state of a [`Connection`].
struct Inner {
    http: reqwest::blocking::Client,
    /// Base URL without trailing slash.
    base_url: String,
    /// User and password for pre-emptive Basic auth.
    auth: Option<(String, String)>,
    retry: RetryConfig,
    progress: Option<bool>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = &self.inner;
        f.debug_struct("Connection")
            .field("base_url", &i.base_url)
            .field("user", &i.auth.as_ref().map(|(u, _)| u))
            .field("retry", &i.retry)
            .field("progress", &i.progress)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A shared connection to a server given by URL or alias, with default options and
    /// credentials from `HDFSTREAM_USER` / `HDFSTREAM_PASSWORD` if set.
    ///
    /// Like the Python client, connections are cached per process: the first call builds
    /// one (probing the server), later calls with the same argument and user return a
    /// clone of it. A failed build is not cached.
    pub fn open(url_or_alias: &str) -> Result<Connection> {
        static CACHE: OnceLock<Mutex<HashMap<CacheKey, Connection>>> = OnceLock::new();
        let builder = ClientBuilder::from_env().with_url(url_or_alias);
        let user = std::env::var(ENV_USER).ok().filter(|u| !u.is_empty());
        let key = (url_or_alias.to_string(), user);
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(c) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let conn = builder.build()?;
        if let Ok(mut m) = cache.lock() {
            m.entry(key).or_insert_with(|| conn.clone());
        }
        Ok(conn)
    }

    /// Server base URL (alias resolved, no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// User name sent with every request, if any.
    pub fn user(&self) -> Option<&str> {
        self.inner.auth.as_ref().map(|(u, _)| u.as_str())
    }

    /// The connection probe `GET <base>/msgpack/`: checks that the server answers with a
    /// directory listing (and that the credentials are accepted).
    pub fn probe(&self) -> Result<()> {
        let call = Call {
            method: Method::GET,
            url: format!("{}/msgpack/", self.inner.base_url),
            body: None,
            what: "/",
        };
        let body = self.read_msgpack(&call, "Path: /")?;
        match hdfstream_protocol::decode_path(&body).map_err(codec::decode_err(&call.url))? {
            hdfstream_protocol::PathInfo::Directory(_) => Ok(()),
            hdfstream_protocol::PathInfo::File(_) => Err(Error::UnexpectedResponse {
                url: call.url,
                reason: "the server root is a file, not a directory".into(),
            }),
        }
    }

    /// Streams the raw bytes of a file (`GET /download/<vpath>`) into `out`; returns the
    /// number of bytes written. Not retried once bytes have been written.
    pub fn download(&self, vpath: &str, out: &mut dyn Write) -> Result<u64> {
        let call = Call {
            method: Method::GET,
            url: self.inner.url("download", vpath),
            body: None,
            what: vpath,
        };
        let mut resp = self.inner.send(&call)?;
        let expected = resp.content_length();
        let mut progress = Progress::new(self.inner.progress, format!("Download: {vpath}"));
        if let Some(n) = expected {
            progress.set_total(n);
        }
        let mut buf = vec![0u8; READ_CHUNK];
        let mut total = 0u64;
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Io {
                        context: format!("reading {}", call.url),
                        source,
                    });
                }
            };
            let chunk = buf.get(..n).unwrap_or_default();
            out.write_all(chunk).map_err(|source| Error::Io {
                context: format!("writing download of {vpath}"),
                source,
            })?;
            total += n as u64;
            progress.inc(n as u64);
        }
        if let Some(n) = expected
            && n != total
        {
            return Err(Error::Io {
                context: format!("reading {}", call.url),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("download ended after {total} of {n} bytes"),
                ),
            });
        }
        tracing::debug!(url = %call.url, bytes = total, "download complete");
        Ok(total)
    }

    /// Sends `call` and reads the whole msgpack body (metadata responses).
    fn read_msgpack(&self, call: &Call<'_>, description: &str) -> Result<Vec<u8>> {
        let t0 = Instant::now();
        let mut resp = self.inner.send(call)?;
        check_msgpack(&resp, &call.url)?;
        let hint = resp.content_length().unwrap_or(0).min(64 << 20);
        let mut body = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
        let mut progress = Progress::new(self.inner.progress, description.to_string());
        let mut buf = vec![0u8; READ_CHUNK.min(64 * 1024)];
        loop {
            match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    body.extend_from_slice(buf.get(..n).unwrap_or_default());
                    progress.inc(n as u64);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Io {
                        context: format!("reading {}", call.url),
                        source,
                    });
                }
            }
        }
        tracing::debug!(
            url = %call.url, bytes = body.len(), elapsed_ms = t0.elapsed().as_millis() as u64,
            "read response body"
        );
        Ok(body)
    }
}

/// Requires a 2xx `/msgpack` response to be msgpack (a proxy's HTML page is not).
fn check_msgpack(resp: &reqwest::blocking::Response, url: &str) -> Result<()> {
    match transport::media_type(resp.headers()) {
        Some(m) if m == transport::MSGPACK => Ok(()),
        other => Err(Error::UnexpectedResponse {
            url: url.to_string(),
            reason: format!(
                "expected content type {}, got {}",
                transport::MSGPACK,
                other.as_deref().unwrap_or("none")
            ),
        }),
    }
}
