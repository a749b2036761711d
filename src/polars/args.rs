//! Arguments of [`scan_hdfstream`](super::scan_hdfstream), shaped like Polars' own scan args.

use polars::prelude::PlSmallStr;

use crate::table::{DEFAULT_PADDING, DEFAULT_POSITION_COLUMN, Region};

/// Default name of the virtual row-index column.
pub const DEFAULT_ROW_INDEX: &str = "row_index";
/// Default number of requests in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Default rows per batch of [`HdfstreamScan::batches`](super::HdfstreamScan::batches).
pub const DEFAULT_BATCH_SIZE: usize = 1 << 20;

/// How a two-dimensional `(N, k)` dataset becomes columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiColumn {
    /// One `Array(dtype, k)` column named like the dataset (default).
    #[default]
    Array,
    /// `k` scalar columns `<name>_0` … `<name>_{k-1}`; each is fetched on its own
    /// (the request selects just that column of the dataset).
    Split,
}

pub use crate::table::OnUnsupported;

/// The virtual row-index column: name and the value of the first row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowIndexSpec {
    /// Column name.
    pub name: PlSmallStr,
    /// Value of the first row of the first file.
    pub offset: u64,
}

/// Options of a scan. Every field has a documented default; build with
/// `ScanArgsHdfstream::default()` and the `with_*` methods.
#[derive(Clone, PartialEq)]
pub struct ScanArgsHdfstream {
    /// Virtual row-index column (global across files, `UInt64`). Default: `row_index`, offset 0.
    /// Predicates on it become row ranges fetched from the server. `None`: no such column.
    pub row_index: Option<RowIndexSpec>,
    /// Adds a `String` column with the file's virtual path under this name. Default: none.
    pub include_file_paths: Option<PlSmallStr>,
    /// Reads at most this many rows (before any filter is applied). Default: all.
    pub n_rows: Option<usize>,
    /// Requests in flight at once, over columns and files. Default 4; 0 is taken as 1.
    pub concurrency: usize,
    /// Rows per batch of the batch iterator. Default 2^20.
    pub batch_size: usize,
    /// File path on the server when the URL names only the server. Default: none.
    pub file: Option<String>,
    /// How `(N, k)` datasets are mapped. Default [`MultiColumn::Array`].
    pub multi_column: MultiColumn,
    /// What to do with datasets that cannot be columns. Default [`OnUnsupported::Skip`].
    pub on_unsupported: OnUnsupported,
    /// Integer datasets (by name) to present as `Boolean` (non-zero = true), e.g. h5py
    /// boolean enums, whose enum names the wire format does not carry. Default: none.
    pub boolean_columns: Vec<String>,
    /// User for HTTP Basic authentication. Default: none (or the alias's user).
    pub user: Option<String>,
    /// Password for `user`. Default: none.
    pub password: Option<String>,
    /// Also turns row-aligned datasets of nested subgroups into columns named by their path
    /// relative to the scanned group (`Sub/Name`), depth-first in server member order; soft
    /// links are not followed. Default: false.
    pub recursive: bool,
    /// Only the rows of the SWIFT cells this region touches (the selection swiftsimio's
    /// `constrain_spatial` makes), or with [`region_exact`](Self::region_exact) only the
    /// rows whose position lies in it. Default: none (every row).
    pub region: Option<Region>,
    /// Keeps only the rows whose position lies in [`region`](Self::region), not every row
    /// of the touched cells. Default: false.
    pub region_exact: bool,
    /// Padding of the cell extents, in cell sizes, for files without
    /// `Cells/MinPositions`/`MaxPositions`. Default [`DEFAULT_PADDING`] (0.1, as swiftsimio).
    pub cell_padding: f64,
    /// The `(N, 3)` position dataset regions and position filters apply to. Default
    /// `Coordinates`.
    pub position_column: String,
    /// Turns range conditions on the position column's components in a filter into the
    /// rows of the cells they touch (the filter is still evaluated exactly). Default: true.
    pub region_pruning: bool,
}

impl std::fmt::Debug for ScanArgsHdfstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanArgsHdfstream")
            .field("row_index", &self.row_index)
            .field("include_file_paths", &self.include_file_paths)
            .field("n_rows", &self.n_rows)
            .field("concurrency", &self.concurrency)
            .field("batch_size", &self.batch_size)
            .field("file", &self.file)
            .field("multi_column", &self.multi_column)
            .field("on_unsupported", &self.on_unsupported)
            .field("boolean_columns", &self.boolean_columns)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("recursive", &self.recursive)
            .field("region", &self.region)
            .field("region_exact", &self.region_exact)
            .field("cell_padding", &self.cell_padding)
            .field("position_column", &self.position_column)
            .field("region_pruning", &self.region_pruning)
            .finish()
    }
}

impl Default for ScanArgsHdfstream {
    fn default() -> Self {
        Self {
            row_index: Some(RowIndexSpec {
                name: PlSmallStr::from_static(DEFAULT_ROW_INDEX),
                offset: 0,
            }),
            include_file_paths: None,
            n_rows: None,
            concurrency: DEFAULT_CONCURRENCY,
            batch_size: DEFAULT_BATCH_SIZE,
            file: None,
            multi_column: MultiColumn::default(),
            on_unsupported: OnUnsupported::default(),
            boolean_columns: Vec::new(),
            user: None,
            password: None,
            recursive: false,
            region: None,
            region_exact: false,
            cell_padding: DEFAULT_PADDING,
            position_column: DEFAULT_POSITION_COLUMN.to_owned(),
            region_pruning: true,
        }
    }
}

impl ScanArgsHdfstream {
    /// Names the row-index column and its first value. Default `row_index`, offset 0.
    pub fn with_row_index(mut self, name: &str, offset: u64) -> Self {
        self.row_index = Some(RowIndexSpec {
            name: name.into(),
            offset,
        });
        self
    }

    /// Leaves out the row-index column. Default: it is included (`row_index`).
    pub fn without_row_index(mut self) -> Self {
        self.row_index = None;
        self
    }

    /// Adds a column `name` with each row's file path. Default: none.
    pub fn with_include_file_paths(mut self, name: &str) -> Self {
        self.include_file_paths = Some(PlSmallStr::from(name));
        self
    }

    /// Reads at most `n` rows. Default: all.
    pub fn with_n_rows(mut self, n: usize) -> Self {
        self.n_rows = Some(n);
        self
    }

    /// Requests in flight at once. Default 4.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Rows per batch of the batch iterator. Default 2^20.
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// File path on the server, for a URL naming only the server. Default: none.
    pub fn with_file(mut self, path: &str) -> Self {
        self.file = Some(path.to_owned());
        self
    }

    /// How `(N, k)` datasets are mapped. Default [`MultiColumn::Array`].
    pub fn with_multi_column(mut self, mode: MultiColumn) -> Self {
        self.multi_column = mode;
        self
    }

    /// What to do with datasets that cannot be columns. Default [`OnUnsupported::Skip`].
    pub fn with_on_unsupported(mut self, policy: OnUnsupported) -> Self {
        self.on_unsupported = policy;
        self
    }

    /// Integer datasets to present as `Boolean`. Default: none.
    pub fn with_boolean_columns<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.boolean_columns = names.into_iter().map(Into::into).collect();
        self
    }

    /// HTTP Basic credentials. Default: none (or the alias's).
    pub fn with_credentials(mut self, user: &str, password: &str) -> Self {
        self.user = Some(user.to_owned());
        self.password = Some(password.to_owned());
        self
    }

    /// Includes datasets of nested subgroups (see [`ScanArgsHdfstream::recursive`]). Default: false.
    pub fn with_recursive(mut self, recursive: bool) -> Self {
        self.recursive = recursive;
        self
    }

    /// Reads only the rows of the cells `region` touches. Default: every row.
    pub fn with_region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }

    /// Reads every row again (removes the region). Default.
    pub fn without_region(mut self) -> Self {
        self.region = None;
        self
    }

    /// Keeps only rows whose position lies in the region (not every row of its cells).
    /// Default: false.
    pub fn with_region_exact(mut self, exact: bool) -> Self {
        self.region_exact = exact;
        self
    }

    /// Cell padding (in cell sizes) for files without `MinPositions`/`MaxPositions`.
    /// Default 0.1.
    pub fn with_cell_padding(mut self, padding: f64) -> Self {
        self.cell_padding = padding;
        self
    }

    /// The position dataset regions apply to. Default `Coordinates`.
    pub fn with_position_column(mut self, name: &str) -> Self {
        self.position_column = name.to_owned();
        self
    }

    /// Stops turning position filters into cell ranges (every row is read and filtered).
    /// Default: pruning on.
    pub fn without_region_pruning(mut self) -> Self {
        self.region_pruning = false;
        self
    }
}
