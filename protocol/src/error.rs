//! Errors of the codec.

/// A response body that does not follow the protocol.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body ended before the value was complete.
    #[error("response body is truncated (expected {expected} more bytes)")]
    Truncated {
        /// Bytes still missing, when known.
        expected: u64,
    },
    /// Bytes follow the complete value.
    #[error("unexpected {extra} bytes after the end of the response value")]
    TrailingBytes {
        /// How many extra bytes were seen.
        extra: u64,
    },
    /// The value is well-formed msgpack but not the message that was expected.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which message or field.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The array does not fit the caller-supplied destination (type or size differ).
    #[error("array does not match the destination buffer: {detail}")]
    DestinationMismatch {
        /// What differs.
        detail: String,
    },
    /// The consumer of a forwarded payload failed (e.g. writing it out).
    #[error("passing the payload on failed: {detail}")]
    Forward {
        /// The consumer's error.
        detail: String,
    },
    /// A type descriptor this crate does not understand.
    #[error("unsupported type descriptor {descriptor}")]
    UnsupportedType {
        /// The descriptor as text.
        descriptor: String,
    },
}

/// A request the server refuses, with the status code and message the reference server uses.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{message}")]
pub struct RequestError {
    /// HTTP status (400, 404, 415 ...).
    pub status: u16,
    /// Message for the `{"error": ...}` body.
    pub message: String,
}

/// Failure of a decode that reads its input from a [`std::io::Read`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The reader failed.
    #[error("reading the response body failed: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes read are not a valid response.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}
