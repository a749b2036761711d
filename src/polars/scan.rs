//! The scan itself: the table handle, query execution with pushdown, the Polars anonymous
//! scan and the batch iterator.

use std::any::Any;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use polars::prelude::*;
use polars_plan::utils::expr_to_leaf_column_names;

use super::args::{MultiColumn, ScanArgsHdfstream};
use super::fetch::{fetch_column, run_parallel};
use super::region::PositionInfo;
use super::rows::IndexInfo;
use super::source::{ColumnSpec, Shape, Table, expand_glob, is_glob, load_table, parse_location};
use super::to_polars;
use crate::ClientBuilder;
use crate::remote::{AttrValue, Backend};
use crate::selection::RowRanges;
use crate::table::{
    Region, RegionQuery, RegionRows, RegionSelection, ScanReport, TableCells, TableFile,
    late_fetch_pays,
};

/// A remote HDF5 group (over one or several files) as a table. Cheap to clone.
///
/// Built from metadata only; rows are fetched when a query runs ([`HdfstreamScan::lazy`]) or
/// batch by batch ([`HdfstreamScan::batches`]).
#[derive(Clone)]
pub struct HdfstreamScan {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Backend>,
    table: Table,
    args: ScanArgsHdfstream,
    schema: SchemaRef,
    total: u64,
    /// The `Cells/` indexes, loaded on the first query that needs them.
    cells: Mutex<Option<Arc<TableCells>>>,
    /// Global rows of [`ScanArgsHdfstream::region`], computed once.
    region_rows: Mutex<Option<RegionRows>>,
    /// Payload bytes fetched by the current query.
    fetched: AtomicU64,
    /// What the last query read.
    report: Mutex<Option<ScanReport>>,
}

impl std::fmt::Debug for HdfstreamScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdfstreamScan")
            .field("group", &self.inner.table.group)
            .field("files", &self.inner.table.files.len())
            .field("rows", &self.inner.total)
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

impl HdfstreamScan {
    /// Opens the table of `group` in the file (or glob of files) `url` names; see
    /// [`scan_hdfstream`](super::scan_hdfstream) for the URL forms.
    pub fn open(url: &str, group: &str, args: ScanArgsHdfstream) -> PolarsResult<Self> {
        let loc = parse_location(url, args.file.as_deref())?;
        let mut builder = ClientBuilder::new().with_url(loc.server.clone());
        match (&args.user, &args.password) {
            (Some(u), Some(p)) => builder = builder.with_credentials(u.clone(), p.clone()),
            (Some(u), None) => {
                return Err(PolarsError::InvalidOperation(
                    format!("user `{u}` given without a password").into(),
                ));
            }
            _ => {}
        }
        let conn = builder
            .build()
            .map_err(|e| to_polars(e, &format!("connecting to {}", loc.server)))?;
        Self::with_backend(Arc::new(conn), &loc.path, group, args)
    }

    /// Opens the table of `group` in the file or glob `path` through an existing backend
    /// (e.g. a configured [`crate::Connection`]).
    pub fn with_backend(
        backend: Arc<dyn Backend>,
        path: &str,
        group: &str,
        args: ScanArgsHdfstream,
    ) -> PolarsResult<Self> {
        let path = path.trim_start_matches('/');
        let files = if is_glob(path) {
            expand_glob(backend.as_ref(), path)?
        } else {
            vec![path.to_owned()]
        };
        let table = load_table(&backend, files, group, &args)?;
        let mut schema = Schema::default();
        if let Some(ri) = &args.row_index {
            schema.insert(ri.name.clone(), DataType::UInt64);
        }
        for c in &table.columns {
            if schema.insert(c.name.clone(), c.polars.clone()).is_some() {
                return Err(PolarsError::Duplicate(
                    format!("column name `{}` occurs twice", c.name).into(),
                ));
            }
        }
        if let Some(p) = &args.include_file_paths
            && schema.insert(p.clone(), DataType::String).is_some()
        {
            return Err(PolarsError::Duplicate(
                format!("file path column `{p}` clashes with a dataset").into(),
            ));
        }
        let total = table.files.iter().map(|f| f.rows).sum();
        tracing::debug!(
            group = table.group,
            files = table.files.len(),
            rows = total,
            "table opened"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                table,
                args,
                schema: Arc::new(schema),
                total,
                cells: Mutex::new(None),
                region_rows: Mutex::new(None),
                fetched: AtomicU64::new(0),
                report: Mutex::new(None),
            }),
        })
    }

    /// The table's schema: row index (if any), dataset columns in member order, file path
    /// column (if any).
    pub fn schema(&self) -> SchemaRef {
        self.inner.schema.clone()
    }

    /// Total rows over all files.
    pub fn row_count(&self) -> u64 {
        self.inner.total
    }

    /// What the last query (collect, batch) read: the cells kept by a region or position
    /// filter, the row ranges fetched and the payload bytes; `None` before the first query.
    pub fn last_report(&self) -> Option<ScanReport> {
        lock(&self.inner.report).clone()
    }

    /// The cells and file-local rows `region` touches, from the `Cells/` metadata only.
    pub fn region_selection(&self, region: &Region) -> PolarsResult<RegionSelection> {
        self.inner
            .cells()?
            .select(region, self.inner.args.cell_padding)
            .map_err(|e| to_polars(e, "selecting the region's cells"))
    }

    /// Virtual paths of the files, in table order, with their row counts.
    pub fn files(&self) -> Vec<(String, u64)> {
        self.inner
            .table
            .files
            .iter()
            .map(|f| (f.vpath.clone(), f.rows))
            .collect()
    }

    /// A lazy frame over the table; projections, row-index predicates and limits are pushed
    /// into the requests.
    pub fn lazy(&self) -> PolarsResult<LazyFrame> {
        LazyFrame::anonymous_scan(
            Arc::new(AnonScan(self.inner.clone())),
            ScanArgsAnonymous {
                schema: Some(self.inner.schema.clone()),
                name: "hdfstream",
                ..Default::default()
            },
        )
    }

    /// The HDF5 attributes of every column's dataset (first file), one row per attribute:
    /// `column`, `dataset`, `attribute`, `value` (text form) and `value_f64` (numeric scalars).
    pub fn column_attributes(&self) -> PolarsResult<DataFrame> {
        let (mut col, mut ds, mut attr, mut text, mut num) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for c in &self.inner.table.columns {
            for (name, value) in &c.attrs {
                let v = AttrValue::new(value.clone());
                col.push(c.name.to_string());
                ds.push(c.object.clone());
                attr.push(name.clone());
                num.push(if v.is_scalar() { v.as_f64() } else { None });
                text.push(attr_text(&v));
            }
        }
        let height = col.len();
        DataFrame::new(
            height,
            vec![
                Column::new("column".into(), col),
                Column::new("dataset".into(), ds),
                Column::new("attribute".into(), attr),
                Column::new("value".into(), text),
                Column::new("value_f64".into(), num),
            ],
        )
    }

    /// Runs the scan batch by batch (`batch_size` rows of the table per batch, before
    /// filtering), so memory stays bounded by one batch. `columns`: `None` = all.
    pub fn batches(
        &self,
        columns: Option<Vec<String>>,
        predicate: Option<Expr>,
    ) -> PolarsResult<HdfstreamBatches> {
        let names: Vec<PlSmallStr> = match columns {
            Some(c) => c.into_iter().map(PlSmallStr::from).collect(),
            None => self.inner.schema.iter_names().cloned().collect(),
        };
        for n in &names {
            if !self.inner.schema.contains(n) {
                return Err(PolarsError::ColumnNotFound(
                    format!("`{n}` is not a column").into(),
                ));
            }
        }
        Ok(HdfstreamBatches {
            inner: self.inner.clone(),
            names,
            predicate,
            next_row: 0,
        })
    }

    /// Executes one query directly (what the lazy frame's scan does): the columns `names` in
    /// that order, rows matching `predicate`, at most `limit` of them.
    pub fn collect(
        &self,
        names: &[PlSmallStr],
        predicate: Option<&Expr>,
        limit: Option<usize>,
    ) -> PolarsResult<DataFrame> {
        self.inner.execute(names, predicate, limit, None)
    }
}

fn attr_text(v: &AttrValue) -> String {
    if let Some(s) = v.as_string() {
        return s;
    }
    if let Ok(s) = v.to_strings() {
        return format!("{s:?}");
    }
    if v.is_scalar() {
        if let Some(i) = v.as_i64() {
            return i.to_string();
        }
        if let Some(f) = v.as_f64() {
            return f.to_string();
        }
    }
    if let Ok(x) = v.to_vec::<i64>() {
        return format!("{x:?}");
    }
    if let Ok(x) = v.to_vec::<f64>() {
        return format!("{x:?}");
    }
    format!("<{} values>", v.len())
}

/// Iterator of [`HdfstreamScan::batches`]: one DataFrame per window of rows (empty results
/// are skipped).
pub struct HdfstreamBatches {
    inner: Arc<Inner>,
    names: Vec<PlSmallStr>,
    predicate: Option<Expr>,
    next_row: u64,
}

impl std::fmt::Debug for HdfstreamBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdfstreamBatches")
            .field("names", &self.names)
            .field("next_row", &self.next_row)
            .finish_non_exhaustive()
    }
}

impl Iterator for HdfstreamBatches {
    type Item = PolarsResult<DataFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        let size = u64::try_from(self.inner.args.batch_size.max(1)).unwrap_or(u64::MAX);
        let end_all = match self.inner.args.n_rows {
            Some(n) => self.inner.total.min(u64::try_from(n).unwrap_or(u64::MAX)),
            None => self.inner.total,
        };
        while self.next_row < end_all {
            let start = self.next_row;
            let end = start.saturating_add(size).min(end_all);
            self.next_row = end;
            match self
                .inner
                .execute(&self.names, self.predicate.as_ref(), None, Some(start..end))
            {
                Ok(df) if df.height() == 0 => continue,
                other => return Some(other),
            }
        }
        None
    }
}

/// The Polars side of the scan.
struct AnonScan(Arc<Inner>);

impl AnonymousScan for AnonScan {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn scan(&self, a: AnonymousScanArgs) -> PolarsResult<DataFrame> {
        let names: Vec<PlSmallStr> = match (&a.output_schema, &a.with_columns) {
            (Some(s), _) => s.iter_names().cloned().collect(),
            (None, Some(c)) => c.iter().cloned().collect(),
            (None, None) => a.schema.iter_names().cloned().collect(),
        };
        self.0.execute(&names, a.predicate.as_ref(), a.n_rows, None)
    }

    fn schema(&self, _infer_schema_length: Option<usize>) -> PolarsResult<SchemaRef> {
        Ok(self.0.schema.clone())
    }

    fn allows_predicate_pushdown(&self) -> bool {
        true
    }

    fn allows_projection_pushdown(&self) -> bool {
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn table_files(&self) -> Vec<TableFile> {
        self.table
            .files
            .iter()
            .map(|f| TableFile {
                vpath: f.vpath.clone(),
                rows: f.rows,
            })
            .collect()
    }

    /// The cell indexes of every file (loaded once).
    fn cells(&self) -> PolarsResult<Arc<TableCells>> {
        if let Some(c) = lock(&self.cells).as_ref() {
            return Ok(c.clone());
        }
        let loaded = TableCells::load(
            self.backend.as_ref(),
            &self.table_files(),
            &self.table.group,
            self.args.concurrency,
        )
        .map_err(|e| to_polars(e, "reading the Cells/ index"))?;
        let loaded = Arc::new(loaded);
        *lock(&self.cells) = Some(loaded.clone());
        Ok(loaded)
    }

    /// Absolute path of the position dataset.
    fn position_object(&self) -> String {
        format!(
            "{}/{}",
            self.table.group.trim_end_matches('/'),
            self.args.position_column
        )
    }

    /// Whether the table has the position dataset as a column (either mapping).
    fn has_positions(&self) -> bool {
        let object = self.position_object();
        self.table
            .columns
            .iter()
            .any(|c| c.object == object && matches!(c.shape, Shape::Array(3) | Shape::Split(_)))
    }

    /// Global rows of the scan's region: the touched cells' rows, filtered by position where
    /// the region is exact or a file has no cell index (computed once).
    fn region_rows(&self, region: &Region) -> PolarsResult<RegionRows> {
        if let Some(r) = lock(&self.region_rows).as_ref() {
            return Ok(r.clone());
        }
        let position = self.position_object();
        let cells = self.cells()?;
        let q = RegionQuery {
            region,
            exact: self.args.region_exact,
            padding: self.args.cell_padding,
            position: &position,
            concurrency: self.args.concurrency,
        };
        let needs_positions = q.exact || !cells.has_index();
        if needs_positions && !self.has_positions() {
            return Err(PolarsError::ColumnNotFound(
                format!(
                    "filtering the region needs the (N, 3) position dataset {position} \
                     (ScanArgsHdfstream::position_column)"
                )
                .into(),
            ));
        }
        let out = cells
            .region_rows(self.backend.as_ref(), &self.table_files(), &q)
            .map_err(|e| to_polars(e, "selecting the region's rows"))?;
        self.fetched
            .fetch_add(out.position_bytes, Ordering::Relaxed);
        *lock(&self.region_rows) = Some(out.clone());
        Ok(out)
    }

    /// Rows of the cells a filter's position conditions may match, with the cell counts;
    /// `None` when the filter has none, pruning is off or there is no cell index.
    fn predicate_cells(&self, predicate: &Expr) -> PolarsResult<Option<RegionSelection>> {
        if !self.args.region_pruning || !self.has_positions() {
            return Ok(None);
        }
        let info = PositionInfo {
            name: &self.args.position_column,
            split: self.args.multi_column == MultiColumn::Split,
        };
        let Some(bounds) = info.bounds(predicate) else {
            return Ok(None);
        };
        let cells = self.cells()?;
        if !cells.has_index() {
            return Ok(None);
        }
        Ok(Some(cells.select_bounds(&bounds, self.args.cell_padding)))
    }

    fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.table.columns.iter().find(|c| c.name.as_str() == name)
    }

    fn is_row_index(&self, name: &str) -> bool {
        self.args
            .row_index
            .as_ref()
            .is_some_and(|r| r.name.as_str() == name)
    }

    fn is_path(&self, name: &str) -> bool {
        self.args
            .include_file_paths
            .as_ref()
            .is_some_and(|p| p.as_str() == name)
    }

    /// Global row set → per-file local row sets.
    fn split(&self, g: &RowRanges) -> Vec<RowRanges> {
        let rows: Vec<u64> = self.table.files.iter().map(|f| f.rows).collect();
        g.split_by_files(&rows)
    }

    /// Fetches `cols` over per-file `local` rows, concurrently; one Series per column.
    fn fetch(&self, cols: &[&ColumnSpec], local: &[RowRanges]) -> PolarsResult<Vec<Series>> {
        let nf = self.table.files.len();
        let rows: u64 = local.iter().map(RowRanges::row_count).sum();
        let row_bytes: u64 = cols.iter().map(|c| c.row_bytes).sum();
        self.fetched
            .fetch_add(rows.saturating_mul(row_bytes), Ordering::Relaxed);
        let parts = run_parallel(cols.len() * nf, self.args.concurrency, |t| {
            let (c, f) = (t / nf, t % nf);
            match (cols.get(c), self.table.files.get(f), local.get(f)) {
                (Some(col), Some(file), Some(rows)) => {
                    fetch_column(self.backend.as_ref(), &file.vpath, col, rows)
                }
                _ => Err(PolarsError::ComputeError("fetch task out of range".into())),
            }
        })?;
        let mut out = Vec::with_capacity(cols.len());
        let mut it = parts.into_iter();
        for _ in cols {
            let mut s: Option<Series> = None;
            for _ in 0..nf {
                let Some(part) = it.next() else { break };
                match &mut s {
                    None => s = Some(part),
                    Some(acc) => {
                        acc.append(&part)?;
                    }
                }
            }
            out.push(s.ok_or_else(|| PolarsError::NoData("no file to read".into()))?);
        }
        Ok(out)
    }

    fn row_index_column(&self, name: &PlSmallStr, local: &[RowRanges]) -> Series {
        let base = self.args.row_index.as_ref().map_or(0, |r| r.offset);
        let n: u64 = local.iter().map(RowRanges::row_count).sum();
        let mut v = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        for (f, rows) in self.table.files.iter().zip(local) {
            for r in rows {
                let shift = base.saturating_add(f.offset);
                v.extend((r.start..r.end).map(|i| i.saturating_add(shift)));
            }
        }
        UInt64Chunked::from_vec(name.clone(), v).into_series()
    }

    fn path_column(&self, name: &PlSmallStr, local: &[RowRanges]) -> Series {
        let mut ca = StringChunkedBuilder::new(name.clone(), 0);
        for (f, rows) in self.table.files.iter().zip(local) {
            for _ in 0..rows.row_count() {
                ca.append_value(&f.vpath);
            }
        }
        ca.finish().into_series()
    }

    /// A frame of the virtual and data columns in `names` (all must be known) over `local`.
    fn frame(
        &self,
        names: &[PlSmallStr],
        local: &[RowRanges],
        fetched: &[(PlSmallStr, Series)],
    ) -> PolarsResult<DataFrame> {
        let height = usize::try_from(local.iter().map(RowRanges::row_count).sum::<u64>())
            .map_err(|_| PolarsError::ComputeError("too many rows".into()))?;
        let mut cols = Vec::with_capacity(names.len());
        for n in names {
            let s = if self.is_row_index(n) {
                self.row_index_column(n, local)
            } else if self.is_path(n) {
                self.path_column(n, local)
            } else {
                fetched
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, s)| s.clone())
                    .ok_or_else(|| PolarsError::ColumnNotFound(format!("`{n}`").into()))?
            };
            cols.push(s.into_column());
        }
        DataFrame::new(height, cols)
    }

    fn execute(
        &self,
        names: &[PlSmallStr],
        predicate: Option<&Expr>,
        limit: Option<usize>,
        window: Option<Range<u64>>,
    ) -> PolarsResult<DataFrame> {
        for n in names {
            if !self.schema.contains(n) {
                return Err(PolarsError::ColumnNotFound(
                    format!("`{n}` is not a column").into(),
                ));
            }
        }
        let mut g = RowRanges::from_ranges(std::iter::once(0..self.total));
        if let Some(w) = window {
            g = g.intersection(&RowRanges::from_ranges(std::iter::once(w)));
        }
        self.fetched.store(0, Ordering::Relaxed);
        let (mut cells_kept, mut cells_total) = (0, 0);
        if let Some(region) = &self.args.region {
            let r = self.region_rows(region)?;
            g = g.intersection(&r.rows);
            (cells_kept, cells_total) = (r.cells_kept, r.cells_total);
        }
        if let Some(n) = self.args.n_rows {
            g = g.first(u64::try_from(n).unwrap_or(u64::MAX));
        }
        let mut exact = true;
        if let Some(p) = predicate {
            match &self.args.row_index {
                Some(ri) => {
                    let info = IndexInfo {
                        name: ri.name.as_str(),
                        offset: ri.offset,
                        total: self.total,
                    };
                    let set = info.analyze(p);
                    g = g.intersection(&set.ranges);
                    exact = set.exact;
                }
                None => exact = false,
            }
        }
        if let Some(p) = predicate
            && !exact
            && let Some(sel) = self.predicate_cells(p)?
        {
            g = g.intersection(&sel.global_rows(&self.table_files()));
            (cells_kept, cells_total) = (sel.cells_kept(), sel.cells_total());
        }
        let limit = limit.map(|n| u64::try_from(n).unwrap_or(u64::MAX));
        if exact && let Some(n) = limit {
            g = g.first(n);
        }
        tracing::debug!(
            rows = g.row_count(),
            runs = g.run_count(),
            exact,
            "scan row set"
        );
        *lock(&self.report) = Some(ScanReport {
            cells_kept,
            cells_total,
            row_ranges: g.clone(),
            bytes_fetched: 0,
        });
        let out = self.execute_rows(names, predicate, limit, exact, &g);
        if let Some(r) = lock(&self.report).as_mut() {
            r.bytes_fetched = self.fetched.load(Ordering::Relaxed);
        }
        out
    }

    /// Runs a query over the candidate global rows `g`.
    fn execute_rows(
        &self,
        names: &[PlSmallStr],
        predicate: Option<&Expr>,
        limit: Option<u64>,
        exact: bool,
        g: &RowRanges,
    ) -> PolarsResult<DataFrame> {
        let data_cols: Vec<&ColumnSpec> = names.iter().filter_map(|n| self.column(n)).collect();
        let local = self.split(g);
        let predicate = match predicate {
            Some(p) if !exact => p,
            _ => {
                let fetched = self.fetch(&data_cols, &local)?;
                let pairs: Vec<(PlSmallStr, Series)> = data_cols
                    .iter()
                    .map(|c| c.name.clone())
                    .zip(fetched)
                    .collect();
                return self.frame(names, &local, &pairs);
            }
        };
        // Stage 1: the columns the predicate reads, over the candidate rows.
        let leaves: Vec<PlSmallStr> = expr_to_leaf_column_names(predicate);
        let mut pred_names: Vec<PlSmallStr> = Vec::new();
        for l in &leaves {
            if !pred_names.contains(l) {
                pred_names.push(l.clone());
            }
        }
        let pred_cols: Vec<&ColumnSpec> =
            pred_names.iter().filter_map(|n| self.column(n)).collect();
        let fetched = self.fetch(&pred_cols, &local)?;
        let pairs: Vec<(PlSmallStr, Series)> = pred_cols
            .iter()
            .map(|c| c.name.clone())
            .zip(fetched)
            .collect();
        let stage1 = self.frame(&pred_names, &local, &pairs)?;
        let mask = evaluate_mask(&stage1, predicate, limit)?;
        let matches = self.matches(&local, &mask)?;
        // Stage 2: the other columns, for the matching runs only when that moves fewer bytes.
        let rest: Vec<&ColumnSpec> = data_cols
            .iter()
            .copied()
            .filter(|c| !pred_names.contains(&c.name))
            .collect();
        let row_bytes: u64 = rest.iter().map(|c| c.row_bytes).sum();
        let all_rows: u64 = local.iter().map(RowRanges::row_count).sum();
        let hit_rows: u64 = matches.iter().map(RowRanges::row_count).sum();
        let hit_runs: u64 = matches.iter().map(|m| m.run_count() as u64).sum();
        let late = late_fetch_pays(all_rows, hit_rows, hit_runs, row_bytes, rest.len() as u64);
        tracing::debug!(
            all_rows,
            hit_rows,
            hit_runs,
            late,
            "late materialization decision"
        );
        let mut pairs: Vec<(PlSmallStr, Series)> = stage1
            .filter(&mask)?
            .columns()
            .iter()
            .filter(|c| self.column(c.name()).is_some())
            .map(|c| (c.name().clone(), c.as_materialized_series().clone()))
            .collect();
        let rest_series = if late {
            self.fetch(&rest, &matches)?
        } else {
            self.fetch(&rest, &local)?
                .into_iter()
                .map(|s| s.filter(&mask))
                .collect::<PolarsResult<Vec<_>>>()?
        };
        pairs.extend(rest.iter().map(|c| c.name.clone()).zip(rest_series));
        self.frame(names, &matches, &pairs)
    }

    /// Local row sets of the rows whose mask value is true (mask in `local` order).
    fn matches(&self, local: &[RowRanges], mask: &BooleanChunked) -> PolarsResult<Vec<RowRanges>> {
        let total: u64 = local.iter().map(RowRanges::row_count).sum();
        if u64::try_from(mask.len()).ok() != Some(total) {
            return Err(PolarsError::ShapeMismatch(
                format!("predicate mask has {} values for {total} rows", mask.len()).into(),
            ));
        }
        let hits = true_positions(mask);
        let mut out = Vec::with_capacity(local.len());
        // Mask positions of the current file's first row, and of the next file's.
        let (mut from, mut i) = (0u64, 0usize);
        for rows in local {
            let to = from + rows.row_count();
            let start = i;
            while hits.get(i).is_some_and(|&p| (p as u64) < to) {
                i += 1;
            }
            let mine = hits.get(start..i).unwrap_or_default();
            out.push(rows.take_positions(mine.iter().map(|&p| p as u64 - from)));
            from = to;
        }
        Ok(out)
    }
}

/// Positions of the true (and valid) values of a mask, ascending.
fn true_positions(mask: &BooleanChunked) -> Vec<usize> {
    let mut out = Vec::new();
    let mut base = 0usize;
    for arr in mask.downcast_iter() {
        let bits = match arr.validity() {
            Some(valid) => arr.values() & valid,
            None => arr.values().clone(),
        };
        out.extend(bits.true_idx_iter().map(|i| base + i));
        base += arr.len();
    }
    out
}

/// Evaluates `predicate` on `df` as a boolean mask (nulls are false); with `limit`, only the
/// first `limit` true values are kept.
fn evaluate_mask(
    df: &DataFrame,
    predicate: &Expr,
    limit: Option<u64>,
) -> PolarsResult<BooleanChunked> {
    const MASK: &str = "__hdfstream_mask";
    let height = df.height();
    let out = df
        .clone()
        .lazy()
        .select([predicate.clone().alias(MASK)])
        .collect()?;
    let col = out.column(MASK)?.as_materialized_series().clone();
    let col = if col.len() == 1 && height != 1 {
        col.new_from_index(0, height)
    } else {
        col
    };
    let mask = col.bool()?.clone();
    if mask.len() != height {
        return Err(PolarsError::ShapeMismatch(
            format!("predicate gave {} values for {height} rows", mask.len()).into(),
        ));
    }
    let Some(limit) = limit else {
        return Ok(mask);
    };
    let mut left = limit;
    let values: Vec<bool> = mask
        .iter()
        .map(|m| {
            let keep = m == Some(true) && left > 0;
            if keep {
                left -= 1;
            }
            keep
        })
        .collect();
    Ok(BooleanChunked::from_slice(mask.name().clone(), &values))
}
