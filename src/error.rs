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
    #[error("Request rate limit exceeded ({url})")]
    RateLimited {
        /// Delay the server asked for, from the `Retry-After` header (seconds or HTTP-date).
        retry_after: Option<Duration>,
        /// Request URL.
        url: String,
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
    #[error("server error {status}: {message} ({url})")]
    Server {
        /// HTTP status code.
        status: u16,
        /// The server's message.
        message: String,
        /// Request URL.
        url: String,
    },

    /// Non-success status whose body is not a msgpack error (HTML page, plain text ...).
    /// Retried only for 5xx statuses.
    #[error("HTTP error {status}: {text} ({url})")]
    Http {
        /// HTTP status code.
        status: u16,
        /// First ~200 characters of the body with HTML tags stripped.
        text: String,
        /// Request URL.
        url: String,
    },

    /// A response body that does not follow the protocol (truncated, trailing bytes,
    /// unexpected message). Not retried.
    #[error("cannot decode response from {url}: {source}")]
    Decode {
        /// Request URL.
        url: String,
        /// What the codec found wrong.
        #[source]
        source: DecodeError,
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

    /// Reading the response body or writing to the caller's sink failed. Slice reads are
    /// requested again within the retry budget; downloads are not retried.
    #[error("I/O error during {context}: {source}")]
    Io {
        /// What was being done (request URL or destination).
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The request could not be sent or no response arrived (DNS, refused connection,
    /// TLS failure, timeout). Retried until the retry budget is spent.
    #[error("connection to {url} failed: {}", chain(source.as_ref()))]
    Connection {
        /// Request URL.
        url: String,
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

    /// Whether this error is transient: the client retries it (an [`Error::Io`] only for
    /// slice reads, whose output can be rewritten).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Connection { .. } | Error::Io { .. } => true,
            Error::Server { status, .. } | Error::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Error::Config {
            reason: reason.into(),
            path: None,
        }
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
