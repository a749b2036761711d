//! Client for hdfstream servers.

pub mod client;
pub mod config;
pub mod error;
pub mod progress;

pub use client::{BackoffConfig, ClientBuilder, Connection, RetryConfig};
pub use config::Config;
pub use error::{Error, Result};
pub use progress::set_progress;
