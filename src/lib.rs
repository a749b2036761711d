//! Client for hdfstream servers.

#[cfg(feature = "arrow")]
pub mod arrow;
pub mod client;
pub mod config;
pub mod error;
#[cfg(feature = "parquet")]
pub mod export;
#[cfg(feature = "polars")]
pub mod polars;
pub mod progress;
pub mod remote;
pub mod selection;
pub mod table;

pub use client::{BackoffConfig, ClientBuilder, Connection, RetryConfig};
pub use config::Config;
pub use error::{Error, Result};
pub use progress::set_progress;
pub use remote::{
    AttrValue, Attrs, Dataset, Directory, Element, File, Group, HasAttrs, Link, Node, Object,
    OpenOptions, open, open_with,
};
pub use selection::{DimIndex, FancyIndex, RowRanges, Selection};
