//! The error type of the server crate (startup, configuration and serving failures).
//!
//! Per-request failures are not errors of this type: they become HTTP responses
//! (`hdfstream_protocol::RequestError` for msgpack endpoints, HTML pages for the rest).

use std::path::PathBuf;

/// Everything that can stop the server from starting or serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The directory to serve is missing or unreadable.
    #[error("cannot serve directory {path}: {source}")]
    Root {
        /// The directory given.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The directory to serve is not a directory.
    #[error("{path} is not a directory")]
    RootNotDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// A configuration file (users, access rules, TLS material) could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A line of the users file is malformed.
    #[error("{path}:{line}: bad users entry: {reason}")]
    UsersFile {
        /// The users file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it (never contains the hash).
        reason: &'static str,
    },
    /// A line of the access rules file is malformed.
    #[error("{path}:{line}: bad access rule: {reason}")]
    AccessFile {
        /// The access rules file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The base path is not of the form `/segment[/segment...]` (or empty).
    #[error(
        "invalid base path {base:?}: it must start with '/' and contain no empty, '.' or '..' segment"
    )]
    BasePath {
        /// The base path given.
        base: String,
    },
    /// Hashing a password failed.
    #[error("password hashing failed: {detail}")]
    PasswordHash {
        /// The hasher's message.
        detail: String,
    },
    /// TLS certificate or key could not be loaded.
    #[error("TLS setup failed for {path}: {source}")]
    Tls {
        /// Certificate or key file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Binding or accepting on the listening socket failed.
    #[error("network error on {addr}: {source}")]
    Net {
        /// Address being bound or served.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The tokio runtime of an embedded server could not be created.
    #[error("cannot start the server runtime: {source}")]
    Runtime {
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing the sample data set failed (`hdfstream sample`).
    #[error("cannot write sample file {path}: {detail}")]
    Sample {
        /// The file being written.
        path: PathBuf,
        /// The libhdf5 or I/O message.
        detail: String,
    },
}
