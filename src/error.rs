//! The crate's single public error type.
//!
//! Every variant says in its documentation whether the client retries the request that
//! produced it (see [`crate::RetryConfig`]). Errors never contain a password: URLs are stored
//! without user info and credentials are kept out of every message.

use std::path::PathBuf;
use std::time::Duration;

use hdfstream_protocol::DecodeError;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Boxed lower-level cause (transport errors, YAML errors).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong when talking to an hdfstream server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// HTTP 401: wrong or missing credentials. Not retried.
    #[error("Not authorized. Incorrect user name or password? ({url})")]
    Unauthorized {
        /// Request URL.
        url: String,
    },

    /// HTTP 429: the server (or a proxy in front of it) limits the request rate.
    /// Retried (honouring `Retry-After`) until the retry budget is spent.
    #[error("Request rate limit exceeded ({url}{})", after(*attempts))]
    RateLimited {
        /// Delay the server asked for, from the `Retry-After` header (seconds or HTTP-date).
        retry_after: Option<Duration>,
        /// Request URL.
        url: String,
        /// Requests made before giving up (1 when not retried).
        attempts: u32,
    },

    /// A virtual path, HDF5 object or download target does not exist or is not visible
    /// to the caller (HTTP 404). Not retried.
    #[error("not found: {path} ({message})")]
    NotFound {
        /// The virtual path (for object requests `<file>:<object>`).
        path: String,
        /// Message of the server, or the HTTP reason when it sent none.
        message: String,
    },

    /// The server answered a non-success status with a msgpack `{"error": msg}` body.
    /// Retried only for 5xx statuses.
    #[error("server error {status}: {message} ({url}{})", after(*attempts))]
    Server {
        /// HTTP status code.
        status: u16,
        /// The server's message.
        message: String,
        /// Request URL.
        url: String,
        /// Requests made before giving up (1 when not retried).
        attempts: u32,
    },

    /// Non-success status whose body is not a msgpack error (HTML page, plain text ...).
    /// Retried only for 5xx statuses.
    #[error("HTTP error {status}: {text} ({url}{})", after(*attempts))]
    Http {
        /// HTTP status code.
        status: u16,
        /// First ~200 characters of the body with HTML tags stripped.
        text: String,
        /// Request URL.
        url: String,
        /// Requests made before giving up (1 when not retried).
        attempts: u32,
    },

    /// A complete response body that does not follow the protocol: malformed or unexpected
    /// msgpack, bytes after the value, or an array header that does not match the request
    /// (shape of the selection, element type of the dataset). Every request is a read, so
    /// it is requested again until the retry budget is spent.
    #[error("cannot decode response from {url} for {what} ({}): {source}", count(*attempts))]
    Decode {
        /// Request URL.
        url: String,
        /// What was requested: a virtual path, or `<file>:<object>`.
        what: String,
        /// Requests made before giving up.
        attempts: u32,
        /// What the codec found wrong.
        #[source]
        source: DecodeError,
    },

    /// A response body that broke off: the connection was cut or reset (or timed out)
    /// mid-body, or the body ended before the message was complete (fewer bytes than
    /// `Content-Length`, or than the message's own header announced). Transient: requested
    /// again until the retry budget is spent (a download into a caller's writer is not, once
    /// bytes were written).
    #[error(
        "incomplete response from {url} for {what}: {} ({}): {}",
        received_text(*received, *expected), count(*attempts), chain(source.as_ref())
    )]
    Incomplete {
        /// Request URL.
        url: String,
        /// What was requested: a virtual path, or `<file>:<object>`.
        what: String,
        /// Body bytes the last attempt received.
        received: u64,
        /// Body bytes the response should have had, when known (`Content-Length`, or what
        /// an array header announced).
        expected: Option<u64>,
        /// Requests made before giving up.
        attempts: u32,
        /// Why the body ended: the transport error, or the codec's truncation report.
        #[source]
        source: BoxError,
    },

    /// A compressed response body (`Content-Encoding`) that does not decompress: bytes
    /// changed on the way (a proxy, a bad link) or a compressed stream that ends early.
    /// Requested again until the retry budget is spent, like [`Error::Decode`].
    #[error(
        "cannot decompress the {encoding} response from {url} for {what} after {received} bytes ({}): {}",
        count(*attempts), chain(source.as_ref())
    )]
    Decompress {
        /// Request URL.
        url: String,
        /// What was requested: a virtual path, or `<file>:<object>`.
        what: String,
        /// The coding (`zstd`, `gzip`, `deflate`).
        encoding: String,
        /// Decompressed bytes the last attempt produced before the failure.
        received: u64,
        /// Requests made before giving up.
        attempts: u32,
        /// The decoder's error.
        #[source]
        source: BoxError,
    },

    /// The response is not what the request asked for (e.g. a file where a directory
    /// listing was expected, or a non-msgpack content type). Not retried.
    #[error("unexpected response from {url}: {reason}")]
    UnexpectedResponse {
        /// Request URL.
        url: String,
        /// What was wrong.
        reason: String,
    },

    /// Reading or writing a local file or the caller's writer failed (download targets,
    /// export destinations). Not retried; failures of response bodies are
    /// [`Error::Incomplete`].
    #[error("I/O error during {context}: {source}")]
    Io {
        /// What was being done (request URL or destination).
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The request could not be sent or no response arrived (DNS, refused connection,
    /// TLS failure, timeout, connection closed before the headers). Retried until the retry
    /// budget is spent.
    #[error("connection to {url} failed{}: {}", after_text(*attempts), chain(source.as_ref()))]
    Connection {
        /// Request URL.
        url: String,
        /// Requests made before giving up (1 when not retried).
        attempts: u32,
        /// Transport error.
        #[source]
        source: BoxError,
    },

    /// A selection that does not fit the dataset (out of bounds, wrong rank, step, size
    /// mismatch with a destination buffer). Detected before any request; not retried.
    #[error("invalid selection: {reason}")]
    InvalidSelection {
        /// What is wrong with it.
        reason: String,
    },

    /// A virtual or HDF5 path that cannot be used (empty component, leading `..` above the
    /// root, wrong kind of object). Not retried.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The element type of the data differs from what the caller asked for. Not retried.
    #[error("type mismatch: expected {expected}, found {found}")]
    TypeMismatch {
        /// Type the caller asked for.
        expected: String,
        /// Type the server reported.
        found: String,
    },

    /// Invalid client configuration: bad URL, unknown alias, unreadable or malformed
    /// config file, invalid builder option. Not retried.
    #[error("configuration error: {reason}{}", path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Config {
        /// What is wrong.
        reason: String,
        /// The config file involved, if any.
        path: Option<PathBuf>,
    },

    /// A worker thread of the client failed (a bug, reported instead of ending the data
    /// early). Not retried.
    #[error("internal error: {reason}")]
    Internal {
        /// What failed.
        reason: String,
    },
}

/// The message of a panic's payload (`"unknown panic"` when it is not text).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

impl Error {
    /// HTTP status code of the response that caused this error, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unauthorized { .. } => Some(401),
            Error::RateLimited { .. } => Some(429),
            Error::NotFound { .. } => Some(404),
            Error::Server { status, .. } | Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether this error is transient: the client retries the request that produced it
    /// (a download into a caller's writer only until bytes were written).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. }
            | Error::Connection { .. }
            | Error::Incomplete { .. }
            | Error::Decompress { .. }
            | Error::Decode { .. } => true,
            Error::Server { status, .. } | Error::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Requests made before this error was returned, for the errors of requests (1 when
    /// not retried); `None` for errors that are not about a response.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::RateLimited { attempts, .. }
            | Error::Server { attempts, .. }
            | Error::Http { attempts, .. }
            | Error::Decode { attempts, .. }
            | Error::Decompress { attempts, .. }
            | Error::Incomplete { attempts, .. }
            | Error::Connection { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }

    /// Records how many requests were made (see [`Error::attempts`]).
    pub(crate) fn with_attempts(mut self, n: u32) -> Self {
        if let Error::RateLimited { attempts, .. }
        | Error::Server { attempts, .. }
        | Error::Http { attempts, .. }
        | Error::Decode { attempts, .. }
        | Error::Decompress { attempts, .. }
        | Error::Incomplete { attempts, .. }
        | Error::Connection { attempts, .. } = &mut self
        {
            *attempts = n;
        }
        self
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Error::Config {
            reason: reason.into(),
            path: None,
        }
    }
}

/// `", 3 attempts"` after more than one attempt, nothing otherwise.
fn after(attempts: u32) -> String {
    if attempts > 1 {
        format!(", {attempts} attempts")
    } else {
        String::new()
    }
}

/// `" after 3 attempts"` after more than one attempt, nothing otherwise.
fn after_text(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

/// `"1 attempt"`, `"3 attempts"`.
fn count(attempts: u32) -> String {
    match attempts {
        1 => "1 attempt".to_string(),
        n => format!("{n} attempts"),
    }
}

/// `"received 10 of 96 bytes"`, or `"received 10 bytes"` when the length is unknown.
fn received_text(received: u64, expected: Option<u64>) -> String {
    match expected {
        Some(n) => format!("received {received} of {n} bytes"),
        None => format!("received {received} bytes (length unknown)"),
    }
}

/// `error: cause: cause ...`, skipping causes whose text is already included.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = e.source();
    }
    out
}
