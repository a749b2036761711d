//! hdfstream server over local HDF5 files.
//!
//! Serves a directory tree over the hdfstream protocol (`PROTOCOL.md`): directory listings,
//! file metadata, HDF5 objects and slices as msgpack, and raw or tar downloads.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hdfstream_server::ServerError> {
//! let mut config = hdfstream_server::ServeConfig::new("/data");
//! config.bind = "127.0.0.1:0".parse().expect("literal address");
//! let server = hdfstream_server::spawn(config).await?;
//! println!("{}", server.base_url());
//! server.shutdown().await
//! # }
//! ```

pub mod auth;
pub mod config;
pub mod error;
pub mod hdf5;
pub mod http;
pub mod sample;
mod stamp;
pub mod vfs;

pub use auth::{Identity, hash_password};
pub use config::{ContentCoding, Limits, ServeArgs, ServeConfig, TlsConfig};
pub use error::ServerError;
pub use http::{
    AppState, RequestLog, RequestRecord, RunningServer, ServerHandle, TimedRequest, app, run,
    serve, serve_state, spawn,
};
