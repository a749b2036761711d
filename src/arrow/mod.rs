//! Arrow record batches from a remote HDF5 group (feature `arrow`).
//!
//! [`GroupReaderBuilder`] works like the `parquet` crate's record-batch reader builder: pick
//! the group (or the same group in every file a glob names), then a projection
//! ([`with_columns`](GroupReaderBuilder::with_columns)), a row selection
//! ([`with_row_ranges`](GroupReaderBuilder::with_row_ranges)) and a batch size, and
//! [`build`](GroupReaderBuilder::build) a [`GroupRecordBatchReader`], which implements
//! [`RecordBatchReader`].
//!
//! Every dataset of the group whose first dimension is the table's row count becomes a
//! column (see [Type mapping](self#type-mapping) below). The table's row
//! count is the most common first dimension among the group's datasets (ties: the first
//! seen); with an explicit projection every named dataset must have it.
//!
//! ```no_run
//! use hdfstream::arrow::GroupReaderBuilder;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let reader = GroupReaderBuilder::open("http://127.0.0.1:8080/hdfstream", "snap_0000.*.hdf5", "/PartType0")?
//!     .with_columns(["Coordinates", "Masses"])
//!     .with_rows(0..1_000_000)
//!     .with_batch_size(65_536)
//!     .build()?;
//! for batch in reader {
//!     let batch = batch?;
//!     println!("{} rows", batch.num_rows());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Type mapping
//!
//! `(N,)` numbers → the matching Arrow primitive type; `(N, k, …)` numbers and HDF5 ARRAY
//! element types → nested `FixedSizeList`; fixed and variable-length strings → `Utf8` with
//! the NUL padding stripped; 1-byte integers listed in
//! [`with_boolean_columns`](GroupReaderBuilder::with_boolean_columns) → `Boolean`. h5py
//! writes booleans as an HDF5 enum over `i1`, but the wire format carries only the base
//! integer type (PROTOCOL.md §6), so the caller names the boolean columns, as with the Polars
//! connector. Numeric values are streamed from the response straight into the vector that
//! becomes the Arrow value buffer (no copy).
//!
//! # Metadata
//!
//! Each dataset's HDF5 attributes are in its field's metadata, the group's attributes in the
//! schema metadata under their own names, the attributes of the file's `/Header` group (first
//! file) under `Header/<name>`, plus `hdfstream:group` (the group path) and `hdfstream:files`
//! (a JSON array of the virtual file paths). See [`attr_text`] for the text form.
//!
//! # Memory
//!
//! A background thread fetches the next batches while the caller works on the current one.
//! The last batch of a file, when it is at most a quarter of the batch size, is fetched
//! with the batch before it, one request per column (no small request for the rest of a
//! file that is a little over a batch). Besides the `prefetch` batches waiting for the
//! caller, the fetcher holds a few batches (enough for `concurrency` requests in flight),
//! whatever the table size.

mod metadata;
mod source;
mod types;

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use ::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, StringArray, UInt64Array};
use ::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use ::arrow::error::ArrowError;
use ::arrow::record_batch::RecordBatchReader;

pub use metadata::attr_text;

use crate::remote::memo::MetadataCache;
use crate::remote::{Attrs, Backend, Group, HasAttrs, OpenOptions};
use crate::selection::RowRanges;
use crate::table::{
    DEFAULT_PADDING, DEFAULT_POSITION_COLUMN, PlanOptions, Region, RegionQuery, RegionRows,
    TableCells, TableFile, TablePlan,
};
use crate::{Connection, Error, Result};
use types::{ColumnType, column_type, read_column};

/// Default rows per batch.
pub const DEFAULT_BATCH_SIZE: usize = 1 << 17;
/// Default number of batches fetched ahead of the caller.
pub const DEFAULT_PREFETCH: usize = 1;
/// Default number of column requests in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Most row runs fetched in one batch (keeps request bodies small).
const MAX_RUNS_PER_BATCH: usize = 4096;
/// Schema metadata key of the group path.
pub const GROUP_KEY: &str = "hdfstream:group";
/// Schema metadata key of the file list (JSON array of virtual paths).
pub const FILES_KEY: &str = "hdfstream:files";
/// Prefix of the schema metadata keys holding the file header's attributes.
pub const HEADER_PREFIX: &str = "Header/";

/// The resolved table: the core's plan with Arrow column types, and the schema.
struct Table {
    schema: SchemaRef,
    plan: TablePlan<ColumnType>,
    file_rows: Vec<u64>,
    /// Global index of each file's first row.
    offsets: Vec<u64>,
    backend: Arc<dyn Backend>,
    /// The output columns, in schema order.
    layout: Vec<Out>,
}

/// One output column of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// Column `i` of the plan.
    Data(usize),
    /// The virtual row index, counting from this value.
    RowIndex(u64),
    /// The virtual file path.
    FilePath,
}

/// The rows of one batch: file-local ranges of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchPlan {
    part: usize,
    ranges: Vec<Range<u64>>,
    rows: usize,
}

/// Builds a [`GroupRecordBatchReader`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct GroupReaderBuilder {
    groups: Vec<Arc<Group>>,
    columns: Option<Vec<String>>,
    rows: Option<RowRanges>,
    batch_size: usize,
    boolean_columns: Vec<String>,
    prefetch: usize,
    concurrency: usize,
    region: Option<Region>,
    region_exact: bool,
    cell_padding: f64,
    position_column: String,
    row_index: Option<(String, u64)>,
    file_paths: Option<String>,
}

fn column_error(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::TypeMismatch {
        expected: "a dataset that can be a column".to_string(),
        found: format!("{name}: {reason}"),
    }
}

impl GroupReaderBuilder {
    /// A reader over one group.
    pub fn new(group: Arc<Group>) -> Self {
        Self {
            groups: vec![group],
            columns: None,
            rows: None,
            batch_size: DEFAULT_BATCH_SIZE,
            boolean_columns: Vec::new(),
            prefetch: DEFAULT_PREFETCH,
            concurrency: DEFAULT_CONCURRENCY,
            region: None,
            region_exact: false,
            cell_padding: DEFAULT_PADDING,
            position_column: DEFAULT_POSITION_COLUMN.to_string(),
            row_index: None,
            file_paths: None,
        }
    }

    /// A reader over the same group in several files, concatenated in the given order.
    pub fn from_groups(groups: Vec<Arc<Group>>) -> Result<Self> {
        let mut it = groups.into_iter();
        let first = it.next().ok_or_else(|| Error::InvalidPath {
            path: String::new(),
            reason: "no group to read".to_string(),
        })?;
        let mut b = Self::new(first);
        b.groups.extend(it);
        Ok(b)
    }

    /// Connects to `url_or_alias` and opens `group` in the file `file_or_glob` names, or in
    /// every file its glob (`*`, `?`, `[0-9]`, `[!a]` in the file name) matches, in natural
    /// order. Only the group's metadata is requested ([`OpenOptions::metadata_only`]).
    pub fn open(url_or_alias: &str, file_or_glob: &str, group: &str) -> Result<Self> {
        let backend: Arc<dyn Backend> = Arc::new(Connection::open(url_or_alias)?);
        Self::open_with(backend, file_or_glob, group, OpenOptions::metadata_only())
    }

    /// Like [`GroupReaderBuilder::open`] over an existing connection or backend, opening the
    /// files with `options` ([`OpenOptions::metadata_only`] requests the least).
    pub fn open_with(
        backend: Arc<dyn Backend>,
        file_or_glob: &str,
        group: &str,
        options: OpenOptions,
    ) -> Result<Self> {
        // The table's plan, schema metadata and cell index ask again for what opening the
        // groups already fetched; the server is asked once.
        let backend: Arc<dyn Backend> = Arc::new(MetadataCache::new(backend));
        Self::from_groups(source::open_groups(
            &backend,
            file_or_glob,
            group,
            options,
            crate::table::METADATA_CONCURRENCY,
        )?)
    }

    /// Reads only these datasets, as columns in this order. Default: every dataset that fits.
    pub fn with_columns<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.columns = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Reads only these rows (global row numbers over all files). Default: all rows.
    pub fn with_row_ranges(mut self, rows: RowRanges) -> Self {
        self.rows = Some(rows);
        self
    }

    /// Reads only the rows `start..end` (global over all files). Default: all rows.
    pub fn with_rows(self, rows: Range<u64>) -> Self {
        self.with_row_ranges(RowRanges::from_ranges(std::iter::once(rows)))
    }

    /// Rows per batch (0 is taken as 1). Default [`DEFAULT_BATCH_SIZE`].
    pub fn with_batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// 1-byte integer datasets to read as `Boolean` (non-zero = true). Default: none.
    pub fn with_boolean_columns<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.boolean_columns = names.into_iter().map(Into::into).collect();
        self
    }

    /// Batches fetched ahead of the caller. Default [`DEFAULT_PREFETCH`].
    pub fn with_prefetch(mut self, batches: usize) -> Self {
        self.prefetch = batches;
        self
    }

    /// Column requests in flight at once (0 is taken as 1). Default [`DEFAULT_CONCURRENCY`].
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Reads only the rows of the SWIFT cells `region` touches (the selection swiftsimio's
    /// `constrain_spatial` makes), intersected with any row selection. Default: every row.
    pub fn with_region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }

    /// Keeps only rows whose position lies in the region, not every row of its cells.
    /// Default: false.
    pub fn with_region_exact(mut self, exact: bool) -> Self {
        self.region_exact = exact;
        self
    }

    /// Cell padding (in cell sizes) for files without `MinPositions`/`MaxPositions`.
    /// Default [`DEFAULT_PADDING`] (0.1).
    pub fn with_cell_padding(mut self, padding: f64) -> Self {
        self.cell_padding = padding;
        self
    }

    /// The `(N, 3)` position dataset a region applies to. Default `Coordinates`.
    pub fn with_position_column(mut self, name: impl Into<String>) -> Self {
        self.position_column = name.into();
        self
    }

    /// Adds a virtual `UInt64` column `name` after the datasets: the global row number plus
    /// `offset` (the same numbering row selections use). Default: none.
    pub fn with_row_index(mut self, name: impl Into<String>, offset: u64) -> Self {
        self.row_index = Some((name.into(), offset));
        self
    }

    /// Adds a `Utf8` column `name` (after the row index) holding each row's virtual file
    /// path. Default: none.
    pub fn with_include_file_paths(mut self, name: impl Into<String>) -> Self {
        self.file_paths = Some(name.into());
        self
    }

    /// The global rows the region selects (metadata, plus positions when filtering exactly);
    /// `None` without a region.
    pub fn region_rows(&self) -> Result<Option<RegionRows>> {
        self.region_rows_for(None)
    }

    /// [`region_rows`](Self::region_rows), checking each file's row count against the
    /// table's when given.
    fn region_rows_for(&self, table_rows: Option<&[u64]>) -> Result<Option<RegionRows>> {
        let Some(region) = &self.region else {
            return Ok(None);
        };
        let g0 = self.groups.first().ok_or_else(|| Error::InvalidPath {
            path: String::new(),
            reason: "no group to read".to_string(),
        })?;
        let position = format!(
            "{}/{}",
            g0.path().trim_end_matches('/'),
            self.position_column
        );
        let mut files = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            // Row counts come from the position dataset, the column a region is about.
            let ds = g.dataset(&self.position_column)?;
            if ds.shape().len() != 2 || ds.shape().get(1) != Some(&3) {
                return Err(column_error(
                    &position,
                    format!(
                        "a region needs an (N, 3) position dataset, not {:?}",
                        ds.shape()
                    ),
                ));
            }
            let rows = ds.shape().first().copied().unwrap_or(0);
            if let Some(expected) = table_rows.and_then(|t| t.get(files.len()))
                && *expected != rows
            {
                return Err(column_error(
                    &format!("{}:{position}", g.file_path()),
                    format!("it has {rows} rows where the table's columns have {expected}"),
                ));
            }
            files.push(TableFile {
                vpath: g.file_path().to_string(),
                rows,
            });
        }
        let backend = g0.backend();
        let cells = TableCells::load(backend.as_ref(), &files, g0.path(), self.concurrency)?;
        let q = RegionQuery {
            region,
            exact: self.region_exact,
            padding: self.cell_padding,
            position: &position,
            concurrency: self.concurrency,
        };
        cells.region_rows(backend.as_ref(), &files, &q).map(Some)
    }

    /// The groups read, one per file, in order.
    pub fn groups(&self) -> &[Arc<Group>] {
        &self.groups
    }

    /// Rows per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The schema the reader will produce (resolves the columns; no data request).
    pub fn schema(&self) -> Result<SchemaRef> {
        Ok(self.plan()?.schema)
    }

    fn plan(&self) -> Result<Table> {
        let g0 = self.groups.first().ok_or_else(|| Error::InvalidPath {
            path: String::new(),
            reason: "no group to read".to_string(),
        })?;
        let backend = g0.backend();
        let files: Vec<String> = self
            .groups
            .iter()
            .map(|g| g.file_path().to_string())
            .collect();
        let opts = PlanOptions {
            columns: self.columns.clone(),
            concurrency: self.concurrency,
            ..PlanOptions::default()
        };
        let plan = TablePlan::load(backend.as_ref(), &files, g0.path(), &opts, |name, d| {
            column_type(
                &d.dtype,
                &d.shape,
                self.boolean_columns.iter().any(|b| b == name),
            )
        })?;
        // Without a projection every boolean column must be a column (catches typos); with
        // one, booleans that are not projected are simply not read.
        if self.columns.is_none()
            && let Some(b) = self
                .boolean_columns
                .iter()
                .find(|b| plan.column(b).is_none())
        {
            return Err(column_error(
                b,
                "named as boolean but not a 1-byte integer dataset of the group",
            ));
        }
        let mut fields: Vec<Field> = plan
            .columns
            .iter()
            .map(|c| {
                let mut md = HashMap::new();
                metadata::add_attrs(&mut md, &Attrs::from_wire(c.info.attributes.clone()), "");
                Field::new(&c.name, c.mapped.data_type.clone(), false).with_metadata(md)
            })
            .collect();
        for virt in self.row_index.iter().map(|r| &r.0).chain(&self.file_paths) {
            if fields.iter().any(|f| f.name() == virt) {
                return Err(column_error(virt, "a dataset already has this column name"));
            }
        }
        if let Some((name, _)) = &self.row_index {
            fields.push(Field::new(name, DataType::UInt64, false));
        }
        if let Some(name) = &self.file_paths {
            fields.push(Field::new(name, DataType::Utf8, false));
        }
        let schema = Schema::new(fields).with_metadata(self.schema_metadata(g0)?);
        let (offsets, _) = plan.offsets()?;
        let mut layout: Vec<Out> = (0..plan.columns.len()).map(Out::Data).collect();
        layout.extend(self.row_index.as_ref().map(|r| Out::RowIndex(r.1)));
        layout.extend(self.file_paths.as_ref().map(|_| Out::FilePath));
        Ok(Table {
            schema: Arc::new(schema),
            file_rows: plan.files.iter().map(|f| f.rows).collect(),
            offsets,
            plan,
            backend,
            layout,
        })
    }

    fn schema_metadata(&self, g0: &Group) -> Result<HashMap<String, String>> {
        let mut md = HashMap::new();
        metadata::add_attrs(&mut md, g0.attrs(), "");
        if g0.path() != "/Header"
            && let Some(h) = g0.group_in_file("/Header")?
        {
            metadata::add_attrs(&mut md, h.attrs(), HEADER_PREFIX);
        }
        md.insert(GROUP_KEY.to_string(), g0.path().to_string());
        let files: Vec<String> = self
            .groups
            .iter()
            .map(|g| g.file_path().to_string())
            .collect();
        md.insert(FILES_KEY.to_string(), metadata::json_strings(&files));
        Ok(md)
    }

    /// Resolves the table (metadata only): schema, files and columns, from which readers
    /// over any rows can be made without asking the server again. The row selection and
    /// region of this builder are not applied (see [`build`](Self::build)).
    pub fn resolve(&self) -> Result<GroupTable> {
        Ok(GroupTable {
            table: Arc::new(self.plan()?),
            batch_size: self.batch_size,
            prefetch: self.prefetch,
            concurrency: self.concurrency,
        })
    }

    /// Resolves the table and starts the background fetcher.
    pub fn build(self) -> Result<GroupRecordBatchReader> {
        let table = self.resolve()?;
        let rows = match (
            self.region_rows_for(Some(&table.table.file_rows))?,
            &self.rows,
        ) {
            (Some(r), Some(sel)) => Some(r.rows.intersection(sel)),
            (Some(r), None) => Some(r.rows),
            (None, sel) => sel.clone(),
        };
        table.reader(rows.as_ref())
    }
}

/// A resolved table: readers over any of its rows, sharing one plan; made by
/// [`GroupReaderBuilder::resolve`].
#[derive(Clone)]
pub struct GroupTable {
    table: Arc<Table>,
    batch_size: usize,
    prefetch: usize,
    concurrency: usize,
}

impl std::fmt::Debug for GroupTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupTable")
            .field("group", &self.table.plan.group)
            .field("files", &self.table.plan.files.len())
            .field("columns", &self.table.plan.columns.len())
            .finish_non_exhaustive()
    }
}

impl GroupTable {
    /// The schema every reader produces.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.table.schema)
    }

    /// The files in table order, with their row counts.
    pub fn files(&self) -> &[TableFile] {
        &self.table.plan.files
    }

    /// Total rows over all files.
    pub fn num_rows(&self) -> u64 {
        self.table.plan.total_rows()
    }

    /// Wire bytes one row of the table's data columns costs (see [`crate::table::row_bytes`]).
    pub fn row_bytes(&self) -> u64 {
        self.table
            .plan
            .columns
            .iter()
            .map(|c| crate::table::row_bytes(&c.info))
            .fold(0, u64::saturating_add)
    }

    /// The batch size of its readers, in rows.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The same table with readers of `rows` rows per batch (0 is taken as 1). Default: the
    /// builder's [`with_batch_size`](GroupReaderBuilder::with_batch_size).
    pub fn with_batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// The same table with only the schema's fields `indices`, in that order (each at
    /// most once); columns left out are not fetched.
    pub fn project(&self, indices: &[usize]) -> Result<GroupTable> {
        let t = &self.table;
        let mut seen = vec![false; t.layout.len()];
        let mut outs = Vec::with_capacity(indices.len());
        for &i in indices {
            match (t.layout.get(i), seen.get_mut(i)) {
                (Some(out), Some(s)) if !*s => {
                    *s = true;
                    outs.push(*out);
                }
                _ => {
                    return Err(Error::InvalidSelection {
                        reason: format!(
                            "field {i} of {} is not in the schema, or repeated",
                            t.layout.len()
                        ),
                    });
                }
            }
        }
        // Plan columns in the new order; data outputs renumbered to match.
        let mut columns = Vec::new();
        let layout: Vec<Out> = outs
            .iter()
            .map(|o| match *o {
                Out::Data(i) => {
                    columns.push(i);
                    Out::Data(columns.len() - 1)
                }
                other => other,
            })
            .collect();
        let schema = t
            .schema
            .project(indices)
            .map_err(|e| Error::InvalidSelection {
                reason: e.to_string(),
            })?;
        let plan = TablePlan {
            group: t.plan.group.clone(),
            files: t.plan.files.clone(),
            columns: columns
                .iter()
                .filter_map(|&i| t.plan.columns.get(i).cloned())
                .collect(),
        };
        let table = Table {
            schema: Arc::new(schema),
            plan,
            file_rows: t.file_rows.clone(),
            offsets: t.offsets.clone(),
            backend: Arc::clone(&t.backend),
            layout,
        };
        Ok(GroupTable {
            table: Arc::new(table),
            ..self.clone()
        })
    }

    /// Starts a reader over `rows` (global row numbers; `None`: every row).
    pub fn reader(&self, rows: Option<&RowRanges>) -> Result<GroupRecordBatchReader> {
        let table = Arc::clone(&self.table);
        let plans = plan_batches(&table.file_rows, rows, self.batch_size);
        let num_rows = plans.iter().map(|p| p.rows as u64).sum();
        let schema = Arc::clone(&table.schema);
        let (tx, rx) = sync_channel(self.prefetch);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let (batch_size, concurrency) = (self.batch_size, self.concurrency);
        let worker = std::thread::Builder::new()
            .name("hdfstream-arrow".to_string())
            .spawn(move || produce(&table, plans, batch_size, concurrency, &tx, &stop2))
            .map_err(|e| Error::Io {
                context: "starting the batch fetcher thread".to_string(),
                source: e,
            })?;
        Ok(GroupRecordBatchReader {
            schema,
            rx: Some(rx),
            stop,
            worker: Some(worker),
            num_rows,
        })
    }
}

/// Cuts the selected rows of every file into batches of at most `batch_size` rows.
fn plan_batches(file_rows: &[u64], sel: Option<&RowRanges>, batch_size: usize) -> Vec<BatchPlan> {
    let mut plans = Vec::new();
    let split = sel.map(|s| s.split_by_files(file_rows));
    for (part, &n) in file_rows.iter().enumerate() {
        let local: Vec<Range<u64>> = match split.as_ref().and_then(|s| s.get(part)) {
            None => std::iter::once(0..n).collect(),
            Some(s) => s.iter().collect(),
        };
        let mut cur = BatchPlan {
            part,
            ranges: Vec::new(),
            rows: 0,
        };
        for r in local {
            let mut start = r.start;
            while start < r.end {
                let room = (batch_size - cur.rows) as u64;
                let end = r.end.min(start.saturating_add(room));
                cur.ranges.push(start..end);
                cur.rows += (end - start) as usize;
                start = end;
                if cur.rows == batch_size || cur.ranges.len() == MAX_RUNS_PER_BATCH {
                    plans.push(std::mem::replace(
                        &mut cur,
                        BatchPlan {
                            part,
                            ranges: Vec::new(),
                            rows: 0,
                        },
                    ));
                }
            }
        }
        if cur.rows > 0 {
            plans.push(cur);
        }
    }
    plans
}

fn to_arrow(e: Error) -> ArrowError {
    ArrowError::ExternalError(Box::new(e))
}

/// Reads column `i` of the batch `plan`.
fn read_one(table: &Table, plan: &BatchPlan, i: usize) -> Result<ArrayRef> {
    let col = table
        .plan
        .columns
        .get(i)
        .ok_or_else(|| Error::InvalidSelection {
            reason: format!("no column {i} in the table"),
        })?;
    match table.plan.files.get(plan.part) {
        Some(f) => read_column(
            table.backend.as_ref(),
            &f.vpath,
            col,
            &plan.ranges,
            plan.rows,
        ),
        None => Err(Error::InvalidSelection {
            reason: format!("no file {} in the table", plan.part),
        }),
    }
}

/// Consecutive batches of one file whose columns are fetched together (one request each).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unit {
    /// All rows of `batches`, in order.
    fetch: BatchPlan,
    batches: Vec<BatchPlan>,
}

/// Groups `plans` (batches of at most `batch_size` rows) into units: a batch of at most a
/// quarter of `batch_size` rows joins the single batch before it when both are of one file.
fn plan_units(plans: Vec<BatchPlan>, batch_size: usize) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for plan in plans {
        match units.last_mut() {
            Some(u)
                if u.fetch.part == plan.part
                    && u.batches.len() == 1
                    && plan.rows <= batch_size / 4 =>
            {
                u.fetch.ranges.extend(plan.ranges.iter().cloned());
                u.fetch.rows += plan.rows;
                u.batches.push(plan);
            }
            _ => units.push(Unit {
                fetch: plan.clone(),
                batches: vec![plan],
            }),
        }
    }
    units
}

/// The columns of a unit once every fetch succeeded: the first error otherwise.
fn unit_columns(slots: Vec<Option<Result<ArrayRef>>>) -> Result<Vec<ArrayRef>> {
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                Err(Error::InvalidSelection {
                    reason: "a column fetch did not run".to_string(),
                })
            })
        })
        .collect()
}

/// The record batches of a unit: each batch's rows of the unit's columns (zero-copy slices).
fn unit_batches(table: &Table, unit: &Unit, columns: &[ArrayRef]) -> Vec<Result<RecordBatch>> {
    let mut offset = 0usize;
    unit.batches
        .iter()
        .map(|plan| {
            let data = columns
                .iter()
                .map(|c| {
                    if offset + plan.rows > c.len() {
                        return Err(Error::Internal {
                            reason: format!(
                                "a column of {} rows has no rows {offset}..{}",
                                c.len(),
                                offset + plan.rows
                            ),
                        });
                    }
                    Ok(c.slice(offset, plan.rows))
                })
                .collect::<Result<Vec<_>>>();
            offset += plan.rows;
            data.and_then(|d| assemble(table, plan, d))
        })
        .collect()
}

/// Assembles the columns of one batch into a record batch.
fn assemble(table: &Table, plan: &BatchPlan, data: Vec<ArrayRef>) -> Result<RecordBatch> {
    let mut data: Vec<Option<ArrayRef>> = data.into_iter().map(Some).collect();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(table.layout.len());
    for out in &table.layout {
        arrays.push(match *out {
            Out::Data(i) => {
                data.get_mut(i)
                    .and_then(Option::take)
                    .ok_or_else(|| Error::InvalidSelection {
                        reason: format!("column {i} fetched for no output"),
                    })?
            }
            Out::RowIndex(base) => {
                let shift = table
                    .offsets
                    .get(plan.part)
                    .copied()
                    .unwrap_or(0)
                    .saturating_add(base);
                let v: Vec<u64> = plan
                    .ranges
                    .iter()
                    .flat_map(|r| r.clone())
                    .map(|i| i.saturating_add(shift))
                    .collect();
                Arc::new(UInt64Array::from(v))
            }
            Out::FilePath => {
                let vpath = table
                    .plan
                    .files
                    .get(plan.part)
                    .map_or("", |f| f.vpath.as_str());
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    vpath, plan.rows,
                )))
            }
        });
    }
    let opts = RecordBatchOptions::new().with_row_count(Some(plan.rows));
    RecordBatch::try_new_with_options(Arc::clone(&table.schema), arrays, &opts).map_err(|e| {
        Error::TypeMismatch {
            expected: "arrays matching the schema".to_string(),
            found: e.to_string(),
        }
    })
}

/// A column job for the fetch workers: the unit's sequence number, the unit and the
/// column index.
type Job = (usize, Arc<Unit>, usize);

/// A unit whose column jobs were handed out, waiting for its results.
struct Pending {
    unit: Arc<Unit>,
    slots: Vec<Option<Result<ArrayRef>>>,
    missing: usize,
}

/// Units that may wait in the fetcher at once, so that `concurrency` column jobs can be in
/// flight even when a unit has fewer columns than that (a one-column scan).
fn batch_window(concurrency: usize, columns: usize) -> usize {
    concurrency.div_ceil(columns.max(1)).max(1) + 1
}

/// The background fetcher: batches into the bounded channel, in order. Up to `concurrency`
/// column jobs (a column of a [`Unit`]) run at once on long-lived workers (threads are not
/// re-created per unit, which keeps the allocator's per-thread arenas few and reused); the
/// jobs of later units start while earlier ones finish, up to [`batch_window`] units.
fn produce(
    table: &Table,
    plans: Vec<BatchPlan>,
    batch_size: usize,
    concurrency: usize,
    tx: &SyncSender<std::result::Result<RecordBatch, ArrowError>>,
    stop: &AtomicBool,
) {
    let n = table.plan.columns.len();
    let units = plan_units(plans, batch_size);
    let workers = concurrency.max(1).min(n.saturating_mul(units.len())).max(1);
    let window = batch_window(concurrency, n);
    let (job_tx, job_rx) = channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (res_tx, res_rx) = channel::<(usize, usize, Result<ArrayRef>)>();
    // Set when the fetcher stops early: queued jobs are then skipped.
    let quit = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let res_tx = res_tx.clone();
            let (job_rx, quit) = (&job_rx, &quit);
            s.spawn(move || {
                loop {
                    let job = job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((seq, unit, i)) = job else {
                        return;
                    };
                    if quit.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if res_tx
                        .send((seq, i, read_one(table, &unit.fetch, i)))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        drop(res_tx);
        let mut units = units.into_iter();
        let mut pending: VecDeque<Pending> = VecDeque::new();
        // Sequence number of `pending[0]` (the others follow it in order).
        let mut front = 0usize;
        // Columns of the newest pending unit not yet handed out.
        let mut to_send = 0..0;
        let mut in_flight = 0usize;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            // Hand out jobs while a worker may be idle.
            while in_flight < workers {
                if to_send.is_empty() {
                    if pending.len() >= window {
                        break;
                    }
                    let Some(unit) = units.next() else { break };
                    pending.push_back(Pending {
                        unit: Arc::new(unit),
                        slots: (0..n).map(|_| None).collect(),
                        missing: n,
                    });
                    to_send = 0..n;
                    continue;
                }
                let (Some(i), Some(p)) = (to_send.next(), pending.back()) else {
                    break;
                };
                let seq = front + pending.len() - 1;
                if job_tx.send((seq, Arc::clone(&p.unit), i)).is_err() {
                    break;
                }
                in_flight += 1;
            }
            // Hand on the batches of the oldest unit once all its columns are in.
            if pending.front().is_some_and(|p| p.missing == 0) {
                let Some(p) = pending.pop_front() else { break };
                front += 1;
                let batches = match unit_columns(p.slots) {
                    Ok(columns) => unit_batches(table, &p.unit, &columns),
                    Err(e) => vec![Err(e)],
                };
                // Stops at the first error, or when the reader is gone.
                let ended = batches.into_iter().any(|r| {
                    let failed = r.is_err();
                    tx.send(r.map_err(to_arrow)).is_err() || failed
                });
                if ended {
                    break;
                }
                continue;
            }
            if pending.is_empty() || in_flight == 0 {
                // Nothing left, or nothing that can complete (a job could not be sent).
                if !pending.is_empty() {
                    let r = Err(to_arrow(Error::Internal {
                        reason: "a column fetch did not run".to_string(),
                    }));
                    let _ = tx.send(r);
                }
                break;
            }
            let Ok((seq, i, r)) = res_rx.recv() else {
                break;
            };
            in_flight -= 1;
            if let Some(p) = seq.checked_sub(front).and_then(|k| pending.get_mut(k))
                && let Some(slot) = p.slots.get_mut(i)
                && slot.is_none()
            {
                *slot = Some(r);
                p.missing -= 1;
            }
        }
        quit.store(true, Ordering::Relaxed);
        // Closing the job channel ends the workers; the scope then joins them.
        drop(job_tx);
    });
}

/// Record batches of a remote group; built by [`GroupReaderBuilder`].
#[derive(Debug)]
pub struct GroupRecordBatchReader {
    schema: SchemaRef,
    rx: Option<Receiver<std::result::Result<RecordBatch, ArrowError>>>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    num_rows: u64,
}

impl GroupRecordBatchReader {
    /// Total rows the reader yields (after the row selection).
    pub fn num_rows(&self) -> u64 {
        self.num_rows
    }
}

impl Iterator for GroupRecordBatchReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.as_ref()?.recv() {
            Ok(item) => Some(item),
            Err(_) => {
                // The fetcher ended: normally after its last batch, but a panic must not
                // look like the end of the data.
                self.rx = None;
                let worker = self.worker.take()?;
                worker.join().err().map(|p| {
                    Err(ArrowError::ExternalError(Box::new(Error::Internal {
                        reason: format!(
                            "the batch fetcher failed: {}",
                            crate::error::panic_message(p.as_ref())
                        ),
                    })))
                })
            }
        }
    }
}

impl RecordBatchReader for GroupRecordBatchReader {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

impl Drop for GroupRecordBatchReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receiver makes a blocked `send` fail, so the fetcher ends promptly.
        self.rx.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BatchPlan, batch_window, plan_batches, plan_units};

    #[test]
    fn a_small_last_batch_of_a_file_joins_the_batch_before_it() {
        // Files of 110, 150, 20 and 100 rows in batches of 100.
        let plans = plan_batches(&[110, 150, 20, 100], None, 100);
        let units = plan_units(plans, 100);
        type Fetch = (usize, Vec<std::ops::Range<u64>>, usize);
        let fetch: Vec<Fetch> = units
            .iter()
            .map(|u| (u.fetch.part, u.fetch.ranges.clone(), u.fetch.rows))
            .collect();
        let one = |r: std::ops::Range<u64>| std::iter::once(r).collect::<Vec<_>>();
        assert_eq!(
            fetch,
            vec![
                // 100 + 10: the 10 join.
                (0, [0..100, 100..110].to_vec(), 110),
                // 100 + 50: too many to join.
                (1, one(0..100), 100),
                (1, one(100..150), 50),
                // A file of one small batch stays alone, as does a full one.
                (2, one(0..20), 20),
                (3, one(0..100), 100),
            ]
        );
        let sizes: Vec<Vec<usize>> = units
            .iter()
            .map(|u| u.batches.iter().map(|b: &BatchPlan| b.rows).collect())
            .collect();
        assert_eq!(
            sizes,
            vec![vec![100, 10], vec![100], vec![50], vec![20], vec![100]]
        );
    }

    #[test]
    fn batch_window_keeps_concurrency_jobs_available() {
        // One column and 4 workers: 4 batches in flight and one more being handed out.
        assert_eq!(batch_window(4, 1), 5);
        assert_eq!(batch_window(4, 3), 3);
        assert_eq!(batch_window(4, 4), 2);
        assert_eq!(batch_window(1, 10), 2);
        // No data column (a row index only): taken as one.
        assert_eq!(batch_window(4, 0), 5);
    }
}
