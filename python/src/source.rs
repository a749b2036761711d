//! An opened remote table and the readers of one scan: the Rust state behind the Python
//! `Table` (no Python types here).

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, SchemaRef};
use hdfstream::arrow::{GroupReaderBuilder, GroupRecordBatchReader, GroupTable};
use hdfstream::remote::Backend;
use hdfstream::table::{Bounds, DEFAULT_PADDING, Region, RegionBox, TableCells, parse_location};
use hdfstream::{ClientBuilder, Connection, Error, OpenOptions, Result, RowRanges};

use crate::plan::{Planned, TableInfo, plan_rows};
use crate::predicate::Pred;
use crate::stats::Counting;

/// The position dataset region filters and position bounds apply to.
const POSITION: &str = "Coordinates";

/// Bytes of the scanned columns per batch when no batch size is given: large enough that the
/// fixed cost of a request is small against its transfer, small enough to stream.
const BATCH_BYTES: u64 = 8 << 20;
/// Bounds of the default batch size, in rows.
const BATCH_ROWS: (u64, u64) = (1 << 16, 1 << 20);

/// The default rows per batch for columns costing `row_bytes` a row.
fn default_batch_rows(row_bytes: u64) -> usize {
    let rows = (BATCH_BYTES / row_bytes.max(1)).clamp(BATCH_ROWS.0, BATCH_ROWS.1);
    usize::try_from(rows).unwrap_or(usize::MAX)
}

/// One axis of a box: `(lo, hi)`, or `None` for no bound.
pub type Axis = Option<(f64, f64)>;

/// How to open a table.
#[derive(Debug, Clone, Default)]
pub struct OpenArgs {
    /// `http(s)://host/base/msgpack/<file or glob>`, a base URL with `file`, or `alias:<path>`.
    pub url: String,
    /// The file or glob, when `url` names only the server.
    pub file: Option<String>,
    /// The HDF5 group.
    pub group: String,
    /// Boxes of three axes each; the rows of the SWIFT cells they touch are the table.
    pub region: Option<Vec<Vec<Axis>>>,
    /// Name of the virtual row-index column.
    pub row_index: Option<String>,
    /// Name of the virtual file-path column.
    pub file_paths: Option<String>,
    /// Rows per batch.
    pub batch_size: Option<usize>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// HTTP Basic user.
    pub user: Option<String>,
    /// HTTP Basic password.
    pub password: Option<String>,
}

/// An opened table.
#[derive(Debug)]
pub struct Source {
    table: GroupTable,
    counting: Arc<Counting>,
    group: String,
    display: String,
    region_rows: Option<RowRanges>,
    cells: OnceLock<Option<Arc<TableCells>>>,
    row_index: Option<String>,
    position: Option<String>,
    concurrency: usize,
    batch_size: Option<usize>,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidSelection {
        reason: reason.into(),
    }
}

/// A connection to `server` with these credentials (both or neither; default: the
/// environment's), shared by every table of the process opened with the same options.
fn connect(server: &str, user: Option<&str>, password: Option<&str>) -> Result<Connection> {
    let mut client = ClientBuilder::from_env()
        .with_url(server)
        .with_progress(false);
    match (user, password) {
        (Some(u), Some(p)) => client = client.with_credentials(u, p),
        (None, None) => {}
        _ => {
            return Err(Error::Config {
                reason: "give both user and password, or neither".to_owned(),
                path: None,
            });
        }
    }
    client.build_shared()
}

/// The [`Region`] of boxes given as three `(lo, hi)` axes each.
pub fn region_of(boxes: &[Vec<Axis>]) -> Result<Region> {
    if boxes.is_empty() {
        return Err(invalid("a region needs at least one box"));
    }
    let mut region = Region::new();
    for (i, b) in boxes.iter().enumerate() {
        if b.len() != 3 {
            return Err(invalid(format!(
                "box {i} of the region has {} axes; give (lo, hi) or None for x, y and z",
                b.len()
            )));
        }
        let mut rb = RegionBox::default();
        for (axis, a) in b.iter().enumerate() {
            if let Some((lo, hi)) = a {
                rb = rb.with_axis(axis, *lo, *hi);
            }
        }
        region = region.with_box(rb);
    }
    Ok(region)
}

impl Source {
    /// Connects, opens the group in every file (metadata only) and resolves the table.
    pub fn open(args: &OpenArgs) -> Result<Self> {
        let loc = parse_location(&args.url, args.file.as_deref())?;
        let inner: Arc<dyn Backend> = Arc::new(connect(
            &loc.server,
            args.user.as_deref(),
            args.password.as_deref(),
        )?);
        let counting = Arc::new(Counting::new(inner));
        let backend: Arc<dyn Backend> = counting.clone();
        let concurrency = args.concurrency.max(1);
        let mut b = GroupReaderBuilder::open_with(
            backend,
            &loc.path,
            &args.group,
            OpenOptions::metadata_only(),
        )?
        .with_concurrency(concurrency);
        if let Some(n) = args.batch_size {
            b = b.with_batch_size(n);
        }
        if let Some(name) = &args.row_index {
            b = b.with_row_index(name.clone(), 0);
        }
        if let Some(name) = &args.file_paths {
            b = b.with_include_file_paths(name.clone());
        }
        if let Some(boxes) = &args.region {
            b = b.with_region(region_of(boxes)?);
        }
        let table = b.resolve()?;
        let region_rows = b.region_rows()?.map(|r| r.rows);
        let group = b
            .groups()
            .first()
            .map(|g| g.path().to_owned())
            .unwrap_or_else(|| args.group.clone());
        let position = table
            .schema()
            .field_with_name(POSITION)
            .ok()
            .filter(|f| {
                matches!(f.data_type(), DataType::FixedSizeList(inner, 3)
                    if inner.data_type() == &DataType::Float64 || inner.data_type() == &DataType::Float32)
            })
            .map(|f| f.name().clone());
        Ok(Self {
            table,
            counting,
            group,
            display: format!("{}/msgpack/{}", loc.server.trim_end_matches('/'), loc.path),
            region_rows,
            cells: OnceLock::new(),
            row_index: args.row_index.clone(),
            position,
            concurrency,
            batch_size: args.batch_size,
        })
    }

    /// The full schema (datasets, then the row index and file path columns).
    pub fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    /// Rows of the table (before any region).
    pub fn num_rows(&self) -> u64 {
        self.table.num_rows()
    }

    /// The files with their row counts.
    pub fn files(&self) -> Vec<(String, u64)> {
        self.table
            .files()
            .iter()
            .map(|f| (f.vpath.clone(), f.rows))
            .collect()
    }

    /// The group path.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Server URL and path, for messages and `explain`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The request counter.
    pub fn counting(&self) -> &Counting {
        &self.counting
    }

    /// The rows the region selects (`None`: every row).
    pub fn region_rows(&self) -> Option<&RowRanges> {
        self.region_rows.as_ref()
    }

    fn all_rows(&self) -> RowRanges {
        self.region_rows
            .clone()
            .unwrap_or_else(|| RowRanges::from_ranges(std::iter::once(0..self.num_rows())))
    }

    /// The cell indexes (loaded on first use; `None` without `Cells/`).
    fn cells(&self) -> Option<Arc<TableCells>> {
        self.cells
            .get_or_init(|| {
                let files = self.table.files();
                match TableCells::load(self.counting.as_ref(), files, &self.group, self.concurrency)
                {
                    Ok(c) if c.has_index() => Some(Arc::new(c)),
                    Ok(_) => None,
                    Err(e) => {
                        // Pruning is an optimisation: without the index every row is read.
                        warn_no_pruning(&self.group, &e);
                        None
                    }
                }
            })
            .clone()
    }

    /// The global rows of the cells that may hold positions within `bounds`.
    fn cell_rows(&self, bounds: &[Bounds]) -> Option<RowRanges> {
        let cells = self.cells()?;
        let sel = cells.select_bounds(bounds, DEFAULT_PADDING);
        Some(sel.global_rows(self.table.files()))
    }

    /// Schema indices of `names`, in the order given.
    fn indices(&self, names: &[String]) -> Result<Vec<usize>> {
        let schema = self.table.schema();
        let mut idx = Vec::with_capacity(names.len());
        for n in names {
            let i = schema.index_of(n).map_err(|_| {
                invalid(format!(
                    "no column `{n}` in {} {} (columns: {})",
                    self.display,
                    self.group,
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            idx.push(i);
        }
        Ok(idx)
    }

    /// The table with only `columns` (`None`: all of them), in the order given, or in
    /// schema order (each column once) with `schema_order`; without a batch size given at
    /// open, its batches hold about [`BATCH_BYTES`] of those columns.
    fn projected(&self, columns: Option<&[String]>, schema_order: bool) -> Result<GroupTable> {
        let table = match columns {
            None => self.table.clone(),
            Some(names) => {
                let mut idx = self.indices(names)?;
                if schema_order {
                    idx.sort_unstable();
                    idx.dedup();
                }
                self.table.project(&idx)?
            }
        };
        if self.batch_size.is_some() {
            return Ok(table);
        }
        let rows = default_batch_rows(table.row_bytes());
        Ok(table.with_batch_size(rows))
    }

    /// The rows a scan with `n_rows` and `predicate` reads.
    pub fn plan(&self, n_rows: Option<u64>, predicate: Option<&Pred>) -> Planned {
        let info = TableInfo {
            total: self.num_rows(),
            row_index: self.row_index.as_deref(),
            position: self.position.as_deref(),
        };
        plan_rows(info, self.all_rows(), n_rows, predicate, |b| {
            self.cell_rows(b)
        })
    }

    /// A reader for one scan: the columns `columns` (schema order; `None`: all) of the rows
    /// [`plan`](Self::plan) picks.
    pub fn scan(
        &self,
        columns: Option<&[String]>,
        n_rows: Option<u64>,
        predicate: Option<&Pred>,
    ) -> Result<GroupRecordBatchReader> {
        let table = self.projected(columns, true)?;
        let planned = self.plan(n_rows, predicate);
        table.reader(Some(&planned.rows))
    }

    /// A reader over `columns` (in that order) of `rows` (global `[start, stop)` ranges,
    /// within the region when there is one; `None`: every row).
    pub fn stream(
        &self,
        columns: Option<&[String]>,
        rows: Option<&[(u64, u64)]>,
    ) -> Result<GroupRecordBatchReader> {
        let table = self.projected(columns, false)?;
        let mut sel = self.all_rows();
        if let Some(r) = rows {
            let total = self.num_rows();
            if let Some(&(a, b)) = r.iter().find(|&&(a, b)| a > b || b > total) {
                return Err(invalid(format!(
                    "rows {a}..{b} are not within the table's {total} rows"
                )));
            }
            sel = sel.intersection(&RowRanges::from_ranges(r.iter().map(|&(a, b)| a..b)));
        }
        table.reader(Some(&sel))
    }
}

fn warn_no_pruning(group: &str, e: &Error) {
    // The extension has no log subscriber of its own; stderr keeps the reason visible.
    eprintln!("polars_hdfstream: no Cells/ pruning for {group}: {e}");
}

#[cfg(test)]
mod tests {
    use super::default_batch_rows;

    #[test]
    fn default_batch_is_about_8_mib_within_bounds() {
        // Three columns of 4, 4 and 8 bytes a row: 512 Ki rows is 8 MiB.
        assert_eq!(default_batch_rows(16), 1 << 19);
        // 52 bytes a row (5 columns): 8 MiB / 52.
        assert_eq!(default_batch_rows(52), (8 << 20) / 52);
        // A narrow column stops at the upper bound, a wide one at the lower.
        assert_eq!(default_batch_rows(1), 1 << 20);
        assert_eq!(default_batch_rows(4096), 1 << 16);
        // No data column (a row index only) is taken as one byte a row.
        assert_eq!(default_batch_rows(0), 1 << 20);
    }
}
