//! Client for hdfstream servers: remote HDF5 files read over HTTP, as h5py reads local ones.
//!
//! An hdfstream server publishes directories of HDF5 files (the EAGLE, SWIFT and FLAMINGO
//! snapshots at Durham's COSMA, or any directory served by `hdfstream serve`). This crate
//! opens them lazily: [`open`] gives a [`Directory`] or a [`File`], whose [`Group`]s,
//! [`Dataset`]s and attributes are fetched as they are used, and whose dataset reads
//! ([`Selection`]s, multi-slices, fancy indexing) send only the rows asked for. It has no C
//! HDF5 dependency. See `docs/protocol.md` in the repository for the wire protocol.
//!
//! ```no_run
//! use hdfstream::{HasAttrs, OpenOptions, Selection};
//!
//! # fn main() -> hdfstream::Result<()> {
//! let file = hdfstream::open(
//!     "http://127.0.0.1:8080/hdfstream",
//!     "snap_0000.hdf5",
//!     OpenOptions::default(),
//! )?
//! .into_file()?;
//! let masses = file.dataset("PartType0/Masses")?;
//! let first = masses.read_slice::<f32>(&Selection::new().dim(0..1000))?;
//! println!("{} masses, units {:?}", first.len(), masses.attrs().keys().collect::<Vec<_>>());
//! # Ok(())
//! # }
//! ```
//!
//! Engines over a group as a table (one file or a glob of files), each behind a feature:
//! `polars` ([`polars::scan_hdfstream`], a lazy Polars table), `arrow`
//! ([`arrow::GroupReaderBuilder`], a `RecordBatchReader`) and `parquet` ([`export::to_parquet`],
//! streaming export to files and object stores). They share the [`table`] core: the plan of
//! a group, row ranges, region pruning by SWIFT `Cells/`, and one bounded concurrent fetcher.
//! DataFusion (SQL) lives in the `hdfstream-datafusion` crate.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "arrow")]
#[cfg_attr(docsrs, doc(cfg(feature = "arrow")))]
pub mod arrow;
pub mod client;
pub mod config;
pub mod error;
#[cfg(feature = "parquet")]
#[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
pub mod export;
#[cfg(feature = "polars")]
#[cfg_attr(docsrs, doc(cfg(feature = "polars")))]
pub mod polars;
pub mod progress;
pub mod remote;
pub mod selection;
pub mod table;

pub use client::{BackoffConfig, ClientBuilder, Connection, ForwardSink, RetryConfig};
pub use config::Config;
pub use error::{Error, Result};
pub use progress::set_progress;
pub use remote::{
    AttrValue, Attrs, Dataset, Directory, Element, File, Group, HasAttrs, Link, Node, Object,
    OpenOptions, open, open_object_with, open_with,
};
pub use selection::{DimIndex, FancyIndex, RowRanges, Selection};
