//! DataFusion over remote HDF5: SQL, streaming joins and bounded-memory Parquet on the
//! groups an hdfstream server publishes.
//!
//! [`HdfstreamTable`] is a [`TableProvider`](datafusion::catalog::TableProvider) over one
//! group of one file or of every file a glob names, built on the table core of the
//! `hdfstream` crate (its Arrow reader). It provides:
//!
//! * the datasets whose first dimension is the row count as columns (units and other HDF5
//!   attributes in the field metadata), then a virtual `row_index` column and, on request, a
//!   file-path column;
//! * projection, and `LIMIT` when every filter is applied exactly;
//! * filters on the row index (comparisons, `BETWEEN`, `IN`, `AND`/`OR`/`NOT` of these)
//!   applied exactly as row ranges; bounds on the position column's components
//!   (`"Coordinates"[1] BETWEEN 10 AND 12`) pruned by the SWIFT `Cells/` index (inexact:
//!   DataFusion checks every row again);
//! * late materialization of other filters over the table's columns (deterministic, no
//!   subqueries): the scan fetches the columns they read, evaluates them, and fetches the
//!   other columns only for the rows that passed when that moves fewer bytes (inexact too:
//!   DataFusion checks every row again);
//! * partitions of about equal row counts, each streaming record batches from its own
//!   fetch thread (the blocking HTTP client never runs on tokio's workers);
//! * exact row counts, so `SELECT count(*)` reads no data.
//!
//! [`register`] adds to a [`SessionContext`] the table
//! function `read_hdfstream('url', 'group' [, key => value ...])` (an option may also be
//! given as a `'key=value'` string) and `CREATE EXTERNAL TABLE t STORED AS HDFSTREAM
//! LOCATION 'url' OPTIONS ('group' 'g')`. Option keys are those of [`HdfstreamOptions::set`].
//!
//! ```no_run
//! use datafusion::prelude::SessionContext;
//!
//! # async fn run() -> datafusion::common::Result<()> {
//! let ctx = SessionContext::new();
//! hdfstream_datafusion::register(&ctx);
//! let df = ctx
//!     .sql(
//!         "SELECT \"HaloID\", sum(\"Masses\") AS mass \
//!          FROM read_hdfstream('http://127.0.0.1:8080/hdfstream/msgpack/snap_0000.hdf5', 'PartType0') \
//!          WHERE \"HaloID\" > 0 GROUP BY \"HaloID\" ORDER BY mass DESC LIMIT 5",
//!     )
//!     .await?;
//! df.show().await?;
//! # Ok(())
//! # }
//! ```

/// The repository's README, whose Rust snippets run as doctests here: this crate's tests
/// see every engine (Polars, Arrow, Parquet export and DataFusion).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

mod exec;
mod filters;
mod function;
mod late;
mod named;
mod options;
mod provider;
pub mod wire;

pub use exec::{HdfstreamExec, row_range_schema};
pub use function::{HdfstreamTableFactory, ReadHdfstream};
pub use options::{
    DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, DEFAULT_MIN_PARTITION_ROWS, DEFAULT_ROW_INDEX,
    HdfstreamOptions,
};
pub use provider::HdfstreamTable;

use std::sync::Arc;

use datafusion::common::DataFusionError;
use datafusion::prelude::SessionContext;

/// Name of the table function [`register`] adds.
pub const TABLE_FUNCTION: &str = "read_hdfstream";
/// The `STORED AS` name of `CREATE EXTERNAL TABLE` that [`register`] adds.
pub const FILE_TYPE: &str = "HDFSTREAM";

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum HdfstreamError {
    /// From the client, the remote objects or the table core (kind kept).
    #[error(transparent)]
    Client(#[from] hdfstream::Error),
    /// A table option that cannot be used.
    #[error("option `{key}`: {reason}")]
    Option {
        /// The option's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Bad arguments of the table function or `CREATE EXTERNAL TABLE`.
    #[error("{0}")]
    Usage(String),
    /// A blocking task ended without an answer (it panicked).
    #[error("a background task failed: {0}")]
    Task(String),
}

impl From<HdfstreamError> for DataFusionError {
    fn from(e: HdfstreamError) -> Self {
        match e {
            HdfstreamError::Option { .. } | HdfstreamError::Usage(_) => {
                DataFusionError::Plan(e.to_string())
            }
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = HdfstreamError> = std::result::Result<T, E>;

/// Runs blocking work (HTTP requests) on a thread of its own, so that it never blocks or
/// panics inside a tokio worker; on a multi-threaded runtime the worker is handed over with
/// `block_in_place` while it waits.
pub(crate) fn off_runtime<T, F>(f: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> Result<T> + Send,
{
    let run = || {
        std::thread::scope(|s| {
            s.spawn(f)
                .join()
                .unwrap_or_else(|_| Err(HdfstreamError::Task("metadata request panicked".into())))
        })
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    }
}

/// Adds the `read_hdfstream` table function and the `HDFSTREAM` external-table format to
/// `ctx`.
pub fn register(ctx: &SessionContext) {
    register_with(ctx, ReadHdfstream::default());
}

/// Like [`register`], with a configured table function (default server, options).
pub fn register_with(ctx: &SessionContext, function: ReadHdfstream) {
    ctx.register_udtf(TABLE_FUNCTION, Arc::new(function));
    let state = ctx.state_ref();
    let mut state = state.write();
    state
        .table_factories_mut()
        .insert(FILE_TYPE.to_owned(), Arc::new(HdfstreamTableFactory));
    // Infallible in DataFusion 55 (it only inserts); named arguments are the only loss.
    if let Err(e) = state.register_relation_planner(Arc::new(named::NamedArguments)) {
        tracing::warn!("named arguments of {TABLE_FUNCTION} are not available: {e}");
    }
}
