//! Polars connector: remote HDF5 groups as lazy tables (feature `polars`).
//!
//! [`scan_hdfstream`] turns a group of a file on an hdfstream server (or of every file a glob
//! matches) into a [`LazyFrame`]:
//!
//! * **Schema from metadata only**: one column per dataset whose first dimension is the row
//!   count (the most common first dimension in the group). `(N, k)` datasets become
//!   `Array(dtype, k)` columns, or `k` scalar columns with [`MultiColumn::Split`]; integer and
//!   float widths map exactly; fixed and variable-length strings become `String` (NUL padding
//!   stripped); integer datasets named in [`ScanArgsHdfstream::boolean_columns`] become
//!   `Boolean` (the wire format does not carry enum names). Other datasets are left out with a
//!   `tracing` warning, or fail the scan with [`OnUnsupported::Error`]. Column order is the
//!   server's member order, after the virtual row-index column and before the optional file
//!   path column.
//! * **Nested groups**: with [`ScanArgsHdfstream::recursive`], row-aligned datasets of
//!   subgroups become columns named by their relative path (`Sub/Name`), depth-first in
//!   member order; soft links are not followed.
//! * **Pushdown**: only projected datasets are fetched; predicates on the row-index column
//!   (`<`, `<=`, `>`, `>=`, `==`, `!=`, `is_between`, `is_in`, `&`, `|`, `!`, value-keeping
//!   casts) become the minimal sorted set of row ranges, fetched with one multi-slice request
//!   per column and file (split at 2^24 runs). The rest of the predicate is evaluated on the
//!   fetched rows (Polars does not filter again after an anonymous scan). When the predicate
//!   reads data columns, those are fetched first and the other columns only for the matching
//!   runs whenever that moves fewer bytes (late materialization). `head`/`limit` fetch only
//!   the first rows.
//! * **Speed**: requests for different columns and files run concurrently
//!   ([`ScanArgsHdfstream::concurrency`], default 4); numeric payloads are streamed straight
//!   into the vector that becomes the Series, without a copy.
//!
//! [`scan_group`] and [`scan_file`] do the same for an already opened [`Group`] or [`File`],
//! reusing its connection.
//!
//! URL forms (`url` argument):
//!
//! | form | example |
//! |---|---|
//! | endpoint URL of a file | `http://host:8080/hdfstream/msgpack/sim/snap_028.0.hdf5` |
//! | glob over one directory's files (numeric order) | `http://host/hdfstream/msgpack/sim/snap_028.*.hdf5` |
//! | alias and path | `cosma:sim/snap_028.0.hdf5` |
//! | server URL or alias + [`ScanArgsHdfstream::file`] | `http://host/hdfstream` with `file = "sim/x.hdf5"` |
//!
//! A server URL without `/msgpack/` and without `file` is refused with an explanation, and so
//! is a URL that names a file while `file` names another.
//!
//! Limits: Polars 0.55 cannot run an anonymous scan in its streaming engine (`sink_*`), so a
//! collected query holds its whole result in memory. [`HdfstreamScan::batches`] runs the same
//! scan window by window with bounded memory instead.

mod args;
mod fetch;
mod region;
mod rows;
mod scan;
mod source;

use std::sync::Arc;

use polars::prelude::{LazyFrame, PolarsError, PolarsResult};

pub use args::{
    DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, DEFAULT_ROW_INDEX, MultiColumn, OnUnsupported,
    RowIndexSpec, ScanArgsHdfstream,
};
pub use scan::{HdfstreamBatches, HdfstreamScan};

use crate::remote::{Backend, File, Group};

/// A lazy table over `group` of the file(s) `url` names (see the module docs for URL forms).
pub fn scan_hdfstream(url: &str, group: &str, args: ScanArgsHdfstream) -> PolarsResult<LazyFrame> {
    HdfstreamScan::open(url, group, args)?.lazy()
}

/// Same as [`scan_hdfstream`] through an existing backend, with `path` a file's virtual path
/// or a glob over one directory's files.
pub fn scan_hdfstream_with(
    backend: Arc<dyn Backend>,
    path: &str,
    group: &str,
    args: ScanArgsHdfstream,
) -> PolarsResult<LazyFrame> {
    HdfstreamScan::with_backend(backend, path, group, args)?.lazy()
}

/// A lazy table over an opened remote group, through the connection its file was opened with.
pub fn scan_group(group: &Group, args: ScanArgsHdfstream) -> PolarsResult<LazyFrame> {
    scan_hdfstream_with(group.backend(), group.file_path(), group.path(), args)
}

/// A lazy table over the group at `group` of an opened remote file, through its connection.
pub fn scan_file(file: &File, group: &str, args: ScanArgsHdfstream) -> PolarsResult<LazyFrame> {
    scan_hdfstream_with(file.backend(), file.path(), group, args)
}

/// Maps a client error to a Polars error, naming what was being read.
pub(crate) fn to_polars(e: crate::Error, context: &str) -> PolarsError {
    match e {
        crate::Error::NotFound { .. } => PolarsError::IO {
            error: Arc::new(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{context}: {e}"),
            )),
            msg: None,
        },
        crate::Error::TypeMismatch { .. } => {
            PolarsError::SchemaMismatch(format!("{context}: {e}").into())
        }
        crate::Error::InvalidSelection { .. }
        | crate::Error::InvalidPath { .. }
        | crate::Error::Config { .. } => {
            PolarsError::InvalidOperation(format!("{context}: {e}").into())
        }
        other => PolarsError::ComputeError(format!("{context}: {other}").into()),
    }
}
