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
//! Connection::download_to_path(&self, vpath: &str, dest: &std::path::Path) -> Result<u64>
//! ```

mod builder;
mod codec;
mod coding;
#[cfg(feature = "fuzzing")]
#[cfg_attr(docsrs, doc(cfg(feature = "fuzzing")))]
pub mod fuzzing;
mod part;
mod reply;
mod requests;
pub use requests::ForwardSink;
mod retry;
mod transport;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use reqwest::Method;

pub use builder::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DIRECT_READS_FROM, DEFAULT_TIMEOUT,
    ENV_PASSWORD, ENV_URL, ENV_USER,
};
pub use retry::{BackoffConfig, RetryConfig};

use crate::error::{Error, Result};
use crate::progress::Progress;
use codec::Body;
pub(crate) use codec::{check_array, selection_shape};
pub(crate) use part::PartFile;
use transport::Call;

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
    /// The client of large reads: no pool, each read on its own connection and runtime.
    direct: reqwest::Client,
    /// Responses expected to be at least this large use `direct`.
    direct_from: u64,
    /// Base URL without trailing slash.
    base_url: String,
    /// User and password for pre-emptive Basic auth.
    auth: Option<(String, String)>,
    retry: RetryConfig,
    progress: Option<bool>,
    /// Send `Accept-Encoding` ([`ClientBuilder::with_compression`]).
    compression: bool,
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
    /// Like the Python client, connections are cached per process
    /// ([`ClientBuilder::build_shared`]): the first call builds one (probing the server),
    /// later calls with the same argument and credentials return a clone of it.
    pub fn open(url_or_alias: &str) -> Result<Connection> {
        ClientBuilder::from_env()
            .with_url(url_or_alias)
            .build_shared()
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
            expected: 0,
        };
        match self.read_msgpack(&call, "Path: /", hdfstream_protocol::decode_path)? {
            hdfstream_protocol::PathInfo::Directory(_) => Ok(()),
            hdfstream_protocol::PathInfo::File(_) => Err(Error::UnexpectedResponse {
                url: call.url,
                reason: "the server root is a file, not a directory".into(),
            }),
        }
    }

    /// Streams the raw bytes of a file (`GET /download/<vpath>`) into `out`; returns the
    /// number of bytes written. Failures before the body are retried; a body that breaks
    /// off is an [`Error::Incomplete`] (not retried: `out` cannot be rewound). To a local
    /// file, [`Connection::download_to_path`] retries and never leaves a partial file.
    pub fn download(&self, vpath: &str, out: &mut dyn Write) -> Result<u64> {
        let call = download_call(self, vpath);
        let (resp, attempts) = self.inner.send(&call)?;
        let written = self
            .stream_download(resp, &call, out)
            .map_err(|e| e.with_attempts(attempts))?;
        tracing::debug!(url = %call.url, bytes = written, "download complete");
        Ok(written)
    }

    /// Downloads a file (`GET /download/<vpath>`) to the local path `dest`; returns its
    /// size. The bytes go to a temporary file next to `dest` (`.<name>.<pid>-<n>.part`),
    /// which is renamed onto `dest` once complete and removed on failure, so `dest` is
    /// either the whole file or untouched. A body that breaks off is downloaded again from
    /// the start within the retry budget (the server has no `Range` support).
    pub fn download_to_path(&self, vpath: &str, dest: &Path) -> Result<u64> {
        let call = download_call(self, vpath);
        let mut part = PartFile::create(dest)?;
        let written = self.inner.request(&call, |resp, attempt| {
            if attempt > 1 {
                part.truncate()?;
            }
            self.stream_download(resp, &call, part.writer())
        })?;
        part.persist()?;
        tracing::debug!(url = %call.url, bytes = written, dest = %dest.display(), "download complete");
        Ok(written)
    }

    /// Copies a download body into `out` (decompressed, if it came compressed), checking
    /// its length against `Content-Length`.
    fn stream_download(
        &self,
        resp: reply::Reply,
        call: &Call<'_>,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let (mut resp, content_length, coding) = coding::decode(resp, &call.url)?;
        let body = Body {
            url: &call.url,
            what: call.what,
            content_length,
            array: false,
            coding,
        };
        let mut progress = Progress::new(self.inner.progress, format!("Download: {}", call.what));
        if let Some(n) = body.content_length {
            progress.set_total(n);
        }
        let mut buf = vec![0u8; READ_CHUNK];
        let mut total = 0u64;
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(body.read_error(total, None, source)),
            };
            let chunk = buf.get(..n).unwrap_or_default();
            out.write_all(chunk).map_err(|source| Error::Io {
                context: format!("writing download of {}", call.what),
                source,
            })?;
            total += n as u64;
            progress.inc(n as u64);
        }
        match body.content_length {
            Some(n) if n != total => Err(body.incomplete(
                total,
                Some(n),
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("download ended after {total} of {n} bytes"),
                ),
            )),
            _ => Ok(total),
        }
    }

    /// Sends `call` and decodes its whole msgpack body with `decode` (metadata responses);
    /// a body that breaks off or does not decode is requested again within the retry budget.
    fn read_msgpack<T>(
        &self,
        call: &Call<'_>,
        description: &str,
        decode: impl Fn(&[u8]) -> std::result::Result<T, hdfstream_protocol::DecodeError>,
    ) -> Result<T> {
        self.inner.request(call, |resp, _| {
            let t0 = Instant::now();
            check_msgpack(&resp, &call.url)?;
            let (resp, content_length, coding) = coding::decode(resp, &call.url)?;
            let body = Body {
                url: &call.url,
                what: call.what,
                content_length,
                array: false,
                coding,
            };
            let mut progress = Progress::new(self.inner.progress, description.to_string());
            let bytes = codec::read_body(resp, &body, &mut progress)?;
            tracing::debug!(
                url = %call.url, bytes = bytes.len(), elapsed_ms = t0.elapsed().as_millis() as u64,
                "read response body"
            );
            decode(&bytes).map_err(|e| body.decode_error(bytes.len() as u64, e))
        })
    }
}

fn download_call<'a>(conn: &Connection, vpath: &'a str) -> Call<'a> {
    Call {
        method: Method::GET,
        url: conn.inner.url("download", vpath),
        body: None,
        what: vpath,
        expected: 0,
    }
}

/// Requires a 2xx `/msgpack` response to be msgpack (a proxy's HTML page is not).
fn check_msgpack(resp: &reply::Reply, url: &str) -> Result<()> {
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
