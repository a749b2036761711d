//! [`HdfstreamTable`]: a remote group (over one file or a glob) as a DataFusion table.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::catalog::TableProvider;
use datafusion::common::stats::Precision;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use hdfstream::arrow::{GroupReaderBuilder, GroupTable};
use hdfstream::remote::Backend;
use hdfstream::table::{TableCells, parse_location};
use hdfstream::{ClientBuilder, OpenOptions, RowRanges};

use crate::exec::{HdfstreamExec, ScanSummary};
use crate::filters::{FilterContext, intersect};
use crate::late::{LatePlan, can_evaluate};
use crate::{HdfstreamError, HdfstreamOptions, off_runtime};

/// A remote HDF5 group as a DataFusion table: one file, or the same group in every file a
/// glob names. Every dataset whose first dimension is the row count is a column (the Arrow
/// reader's type mapping), followed by the row-index and file-path columns.
#[derive(Debug)]
pub struct HdfstreamTable {
    url: String,
    table: GroupTable,
    backend: Arc<dyn Backend>,
    /// The group's resolved path.
    group_path: String,
    /// The group argument of `open`.
    group: String,
    options: HdfstreamOptions,
    /// Rows of the configured region (`None`: every row).
    region_rows: Option<RowRanges>,
    /// The `Cells/` indexes, loaded on the first filter that bounds positions.
    cells: OnceLock<Option<Arc<TableCells>>>,
    filters: FilterContext,
}

impl HdfstreamTable {
    /// Opens `group` in the file (or glob) that `url` names:
    /// `http(s)://host/base/msgpack/<path>` or `alias:<path>`. Metadata requests only; they
    /// run off the async runtime, so this may be called from async code.
    pub fn open(url: &str, group: &str, options: HdfstreamOptions) -> crate::Result<Self> {
        let (url, group) = (url.to_owned(), group.to_owned());
        off_runtime(move || Self::open_blocking(&url, &group, options))
    }

    fn open_blocking(url: &str, group: &str, options: HdfstreamOptions) -> crate::Result<Self> {
        let loc = parse_location(url, None)?;
        let mut client = ClientBuilder::new().with_url(loc.server.clone());
        if let Some((user, password)) = &options.credentials {
            client = client.with_credentials(user.clone(), password.clone());
        }
        let backend: Arc<dyn Backend> = Arc::new(client.build()?);
        Self::with_backend(backend, &loc.path, group, options, url)
    }

    /// Like [`open`](Self::open) over an existing connection or backend, with the file or
    /// glob `path` on it. Blocking: call it off the async runtime.
    pub fn with_backend(
        backend: Arc<dyn Backend>,
        path: &str,
        group: &str,
        options: HdfstreamOptions,
        display_url: &str,
    ) -> crate::Result<Self> {
        let mut b = GroupReaderBuilder::open_with(
            Arc::clone(&backend),
            path,
            group,
            OpenOptions::metadata_only(),
        )?
        .with_batch_size(options.batch_size)
        .with_concurrency(options.concurrency)
        .with_boolean_columns(options.boolean_columns.clone())
        .with_cell_padding(options.cell_padding)
        .with_position_column(options.position_column.clone())
        .with_region_exact(options.region_exact);
        if let Some(cols) = &options.columns {
            b = b.with_columns(cols.clone());
        }
        if let Some((name, offset)) = &options.row_index {
            b = b.with_row_index(name.clone(), *offset);
        }
        if let Some(name) = &options.file_paths {
            b = b.with_include_file_paths(name.clone());
        }
        if let Some(region) = &options.region {
            b = b.with_region(region.clone());
        }
        let table = b.resolve()?;
        let region_rows = b.region_rows()?.map(|r| r.rows);
        let group_path = b
            .groups()
            .first()
            .map(|g| g.path().to_owned())
            .unwrap_or_default();
        let schema = table.schema();
        let position = schema
            .field_with_name(&options.position_column)
            .ok()
            .filter(|_| options.pruning)
            .map(|f| f.name().clone());
        let filters = FilterContext {
            row_index: options.row_index.clone(),
            position,
            total: table.num_rows(),
        };
        Ok(Self {
            url: display_url.to_owned(),
            table,
            backend,
            group_path,
            group: group.to_owned(),
            options,
            region_rows,
            cells: OnceLock::new(),
            filters,
        })
    }

    /// The URL the table was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The group as it was asked for.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The options the table was opened with.
    pub fn options(&self) -> &HdfstreamOptions {
        &self.options
    }

    /// The table core's table (every column).
    pub(crate) fn group_table(&self) -> &GroupTable {
        &self.table
    }

    /// Total rows of the table (before any region).
    pub fn num_rows(&self) -> u64 {
        self.table.num_rows()
    }

    /// The cell indexes of the table's files (loaded once; `None` without `Cells/`).
    fn cells(&self) -> Option<Arc<TableCells>> {
        self.cells
            .get_or_init(|| {
                let backend = Arc::clone(&self.backend);
                let files = self.table.files().to_vec();
                let (group, concurrency) = (self.group_path.clone(), self.options.concurrency);
                let loaded = off_runtime(move || {
                    TableCells::load(backend.as_ref(), &files, &group, concurrency)
                        .map_err(HdfstreamError::from)
                });
                match loaded {
                    Ok(c) if c.has_index() => Some(Arc::new(c)),
                    Ok(_) => {
                        tracing::info!(group = self.group_path, "no Cells/ index: position filters prune nothing");
                        None
                    }
                    Err(e) => {
                        tracing::warn!(group = self.group_path, error = %e, "unable to load the Cells/ index");
                        None
                    }
                }
            })
            .clone()
    }

    /// The rows a scan with `filters` and `limit` reads, and what it did for `EXPLAIN`.
    fn plan_rows(&self, filters: &[Expr], limit: Option<usize>) -> (RowRanges, ScanSummary) {
        let mut summary = ScanSummary {
            group: self.group_path.clone(),
            files: self.table.files().len(),
            total_rows: self.table.num_rows(),
            exact: true,
            origin: Some(crate::wire::spec_of(self)),
            ..ScanSummary::default()
        };
        let mut rows = self
            .region_rows
            .clone()
            .unwrap_or_else(|| RowRanges::from_ranges(std::iter::once(0..self.table.num_rows())));
        let mut boxes: Option<Vec<hdfstream::table::Bounds>> = None;
        for f in filters {
            if let Some(r) = self.filters.row_filter(f) {
                rows = rows.intersection(&r);
                summary.pushed.push(format!("{f}"));
            } else if let Some(b) = self.filters.box_filter(f) {
                boxes = Some(match boxes {
                    None => b,
                    Some(prev) => intersect(&prev, &b),
                });
                summary.pushed.push(format!("{f} (cells)"));
                summary.exact = false;
            } else {
                summary.exact = false;
            }
        }
        if let Some(boxes) = boxes
            && let Some(cells) = self.cells()
        {
            let sel = cells.select_bounds(&boxes, self.options.cell_padding);
            summary.cells = Some((sel.cells_kept(), sel.cells_total()));
            rows = rows.intersection(&sel.global_rows(self.table.files()));
        }
        if let Some(n) = limit
            && summary.exact
        {
            rows = rows.first(n as u64);
        }
        (rows, summary)
    }
}

/// Cuts `rows` into at most `parts` pieces of about equal row counts, none smaller than
/// `min_rows` unless there is only one.
pub(crate) fn split_rows(rows: &RowRanges, parts: usize, min_rows: u64) -> Vec<RowRanges> {
    let total = rows.row_count();
    let parts = (parts.max(1) as u64).min(total.div_ceil(min_rows.max(1)).max(1));
    let per = total.div_ceil(parts).max(1);
    let mut out = Vec::with_capacity(parts as usize);
    let mut cur: Vec<std::ops::Range<u64>> = Vec::new();
    let mut have = 0u64;
    for r in rows.iter() {
        let mut start = r.start;
        while start < r.end {
            let take = (r.end - start).min(per - have);
            cur.push(start..start + take);
            have += take;
            start += take;
            if have == per {
                out.push(RowRanges::from_ranges(std::mem::take(&mut cur)));
                have = 0;
            }
        }
    }
    if !cur.is_empty() {
        out.push(RowRanges::from_ranges(cur));
    }
    out
}

#[async_trait]
impl TableProvider for HdfstreamTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.filters.row_filter(f).is_some() {
                    TableProviderFilterPushDown::Exact
                } else if self.filters.box_filter(f).is_some()
                    || can_evaluate(f, &self.table.schema())
                {
                    // Pruned by cells, or evaluated in the scan before the other columns
                    // are fetched; DataFusion checks every row again.
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    fn statistics(&self) -> Option<Statistics> {
        let rows = self
            .region_rows
            .as_ref()
            .map_or(self.table.num_rows(), RowRanges::row_count);
        Some(
            Statistics::new_unknown(&self.table.schema())
                .with_num_rows(Precision::Exact(rows as usize)),
        )
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (rows, mut summary) = self.plan_rows(filters, limit);
        let all: Vec<usize> = (0..self.table.schema().fields().len()).collect();
        let projection = projection.unwrap_or(&all);
        let table = self
            .table
            .project(projection)
            .map_err(HdfstreamError::from)?;
        let parts = split_rows(
            &rows,
            state.config().target_partitions(),
            self.options.min_partition_rows,
        );
        if self.options.distributed {
            // Each task of a distributed engine reads the rows its partitions name; the
            // filters are applied by the engine above the scan.
            return Ok(Arc::new(HdfstreamExec::distributed_over(
                table, parts, summary,
            )?));
        }
        let schema = self.table.schema();
        let late_filters: Vec<Expr> = filters
            .iter()
            .filter(|f| self.filters.row_filter(f).is_none() && can_evaluate(f, &schema))
            .cloned()
            .collect();
        let late = if late_filters.is_empty() {
            None
        } else {
            LatePlan::new(state, &self.table, projection, &late_filters)?
        };
        if late.is_some() {
            summary.late = late_filters.iter().map(ToString::to_string).collect();
        }
        Ok(Arc::new(HdfstreamExec::new(table, parts, summary, late)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rows_covers_every_row_once() {
        let rows = RowRanges::from_ranges([0..10, 20..25, 30..100]);
        for parts in 1..8 {
            for min in [1, 7, 50, 1000] {
                let got = split_rows(&rows, parts, min);
                assert!(got.len() <= parts && !got.is_empty());
                let mut all = RowRanges::new();
                let mut sum = 0;
                for g in &got {
                    sum += g.row_count();
                    all = all.union(g);
                }
                assert_eq!(all, rows);
                assert_eq!(sum, rows.row_count());
            }
        }
        assert_eq!(rows.first(12), RowRanges::from_ranges([0..10, 20..22]));
    }
}
