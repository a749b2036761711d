//! The physical scan: one partition per piece of the selected rows, each streaming the
//! record batches of the Arrow reader from its own thread.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use hdfstream::RowRanges;
use hdfstream::arrow::GroupTable;

use crate::HdfstreamError;
use crate::late::LatePlan;

/// Record batches queued between a partition's fetch thread and its consumer.
const QUEUED_BATCHES: usize = 2;

/// Sends the batches of `rows` to `tx`, through `late` when the scan filters first; stops
/// when the query stops reading (a closed channel).
fn produce(
    table: &GroupTable,
    late: Option<&LatePlan>,
    rows: &RowRanges,
    tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
) {
    if let Some(late) = late {
        if let Err(e) = late.run(rows, |item| tx.blocking_send(item).is_ok()) {
            let _ = tx.blocking_send(Err(e));
        }
        return;
    }
    let reader = match table.reader(Some(rows)) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Err(HdfstreamError::from(e).into()));
            return;
        }
    };
    for batch in reader {
        let item = batch.map_err(DataFusionError::from);
        let failed = item.is_err();
        // The reader is dropped on return, which stops its fetcher.
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
    }
}

/// What the scan does, for `EXPLAIN`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct ScanSummary {
    /// Group path.
    pub(crate) group: String,
    /// Files of the table.
    pub(crate) files: usize,
    /// Filters used, as text.
    pub(crate) pushed: Vec<String>,
    /// Cells kept / total, when positions were pruned by `Cells/`.
    pub(crate) cells: Option<(usize, usize)>,
    /// Rows of the table.
    pub(crate) total_rows: u64,
    /// Whether the row count is exact (every used filter exact).
    pub(crate) exact: bool,
    /// Filters evaluated in the scan before the other columns are fetched, as text.
    pub(crate) late: Vec<String>,
    /// The table scanned, as another machine opens it.
    pub(crate) origin: Option<crate::wire::TableSpec>,
}

/// Scans selected rows of a remote group; made by [`crate::HdfstreamTable`].
///
/// Its partitions' rows are either held by the node (a leaf), or, in a distributed scan
/// ([`HdfstreamOptions::with_distributed`](crate::HdfstreamOptions::with_distributed)),
/// read from its one child: partition `i` of the child yields the global row ranges of
/// partition `i` as batches of [`row_range_schema`]. An engine that runs some partitions
/// of a plan per task (Ballista) restricts that child, which it knows how to do.
#[derive(Debug)]
pub struct HdfstreamExec {
    table: GroupTable,
    partitions: Vec<RowRanges>,
    /// The row ranges of each partition, as a plan (distributed scans).
    input: Option<Arc<dyn ExecutionPlan>>,
    summary: ScanSummary,
    /// Filters applied before the other columns are fetched.
    late: Option<Arc<LatePlan>>,
    properties: Arc<PlanProperties>,
}

/// The schema of a distributed scan's row-range input: half-open global row ranges.
pub fn row_range_schema() -> SchemaRef {
    static SCHEMA: std::sync::OnceLock<SchemaRef> = std::sync::OnceLock::new();
    Arc::clone(SCHEMA.get_or_init(|| {
        Arc::new(Schema::new(vec![
            Field::new("start", DataType::UInt64, false),
            Field::new("end", DataType::UInt64, false),
        ]))
    }))
}

/// `parts`, or one empty partition when there is none (a plan has at least one).
fn at_least_one(parts: Vec<RowRanges>) -> Vec<RowRanges> {
    if parts.is_empty() {
        vec![RowRanges::new()]
    } else {
        parts
    }
}

/// One partition per entry of `parts`: its row ranges as one batch of [`row_range_schema`].
fn row_range_plan(parts: &[RowRanges]) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = row_range_schema();
    let batches = parts
        .iter()
        .map(|rows| {
            let start = UInt64Array::from_iter_values(rows.iter().map(|r| r.start));
            let end = UInt64Array::from_iter_values(rows.iter().map(|r| r.end));
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(start), Arc::new(end)])
                .map(|b| vec![b])
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(MemorySourceConfig::try_new_exec(&batches, schema, None)?)
}

/// The row ranges a row-range stream yields (checked: ascending and disjoint within the
/// partition, as a scan needs them).
async fn collect_row_ranges(mut input: SendableRecordBatchStream) -> Result<RowRanges> {
    let mut ranges: Vec<std::ops::Range<u64>> = Vec::new();
    while let Some(batch) = input.next().await {
        let batch = batch?;
        let col = |i: usize| {
            batch
                .columns()
                .get(i)
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
                .ok_or_else(|| {
                    DataFusionError::Internal(
                        "the row ranges of a distributed scan are not two u64 columns".into(),
                    )
                })
        };
        let (start, end) = (col(0)?, col(1)?);
        for (s, e) in start.values().iter().zip(end.values().iter()) {
            if s > e || ranges.last().is_some_and(|l| l.end > *s) {
                return Err(DataFusionError::Internal(format!(
                    "row range {s}..{e} of a distributed scan is out of order"
                )));
            }
            ranges.push(*s..*e);
        }
    }
    Ok(RowRanges::from_ranges(ranges))
}

/// Streams `rows` of `table` (through `late` when the scan filters first) from a thread of
/// its own.
fn start_reader(
    table: GroupTable,
    late: Option<Arc<LatePlan>>,
    rows: RowRanges,
    partition: usize,
) -> Result<impl futures::Stream<Item = Result<RecordBatch>> + Send + 'static> {
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUED_BATCHES);
    // The reader blocks on HTTP: it runs on a thread of its own, never on tokio's workers.
    std::thread::Builder::new()
        .name(format!("hdfstream-df-{partition}"))
        .spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| produce(&table, late.as_deref(), &rows, &tx));
            if let Err(p) = std::panic::catch_unwind(run) {
                // Never let a failed partition look like one that ended.
                let reason = hdfstream::error::panic_message(p.as_ref());
                let _ = tx.blocking_send(Err(DataFusionError::Execution(format!(
                    "the scan of partition {partition} failed: {reason}"
                ))));
            }
        })
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// `rows` as text for the log: at most 16 ranges, then how many more.
fn ranges_text(rows: &RowRanges) -> String {
    let mut parts: Vec<String> = rows
        .iter()
        .take(16)
        .map(|r| format!("{}..{}", r.start, r.end))
        .collect();
    let n = rows.iter().count();
    if n > 16 {
        parts.push(format!("(+{} more)", n - 16));
    }
    parts.join(",")
}

impl HdfstreamExec {
    pub(crate) fn new(
        table: GroupTable,
        partitions: Vec<RowRanges>,
        summary: ScanSummary,
        late: Option<LatePlan>,
    ) -> Self {
        let partitions = at_least_one(partitions);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(table.schema()),
            Partitioning::UnknownPartitioning(partitions.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            table,
            partitions,
            input: None,
            summary,
            late: late.map(Arc::new),
            properties: Arc::new(properties),
        }
    }

    /// A distributed scan of `table` reading the rows `parts` (one partition each) from a
    /// row-range input plan.
    pub(crate) fn distributed_over(
        table: GroupTable,
        parts: Vec<RowRanges>,
        summary: ScanSummary,
    ) -> Result<Self> {
        let parts = at_least_one(parts);
        let input = row_range_plan(&parts)?;
        Ok(Self::distributed(table, input, parts, summary))
    }

    /// A distributed scan of `table` whose partitions' rows come from `input` (a plan of
    /// [`row_range_schema`]; `partitions`: the rows of each, for statistics).
    pub(crate) fn distributed(
        table: GroupTable,
        input: Arc<dyn ExecutionPlan>,
        partitions: Vec<RowRanges>,
        summary: ScanSummary,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(table.schema()),
            Partitioning::UnknownPartitioning(
                input.properties().output_partitioning().partition_count(),
            ),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            table,
            partitions,
            input: Some(input),
            summary,
            late: None,
            properties: Arc::new(properties),
        }
    }

    /// The remote table this node reads (projected to its output columns).
    pub(crate) fn table(&self) -> &GroupTable {
        &self.table
    }

    /// What the scan does, for `EXPLAIN`.
    pub(crate) fn summary(&self) -> &ScanSummary {
        &self.summary
    }

    /// Whether the partitions' rows come from an input plan (a distributed scan).
    pub(crate) fn is_distributed(&self) -> bool {
        self.input.is_some()
    }

    /// Rows each partition reads.
    pub fn partition_rows(&self) -> Vec<u64> {
        self.partitions.iter().map(RowRanges::row_count).collect()
    }

    fn rows(&self, partition: Option<usize>) -> u64 {
        match partition {
            Some(p) => self.partitions.get(p).map_or(0, RowRanges::row_count),
            None => self.partitions.iter().map(RowRanges::row_count).sum(),
        }
    }
}

impl DisplayAs for HdfstreamExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        let rows = self.rows(None);
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(
                    f,
                    "HdfstreamExec: group={} files={} partitions={} rows={rows}/{}",
                    s.group,
                    s.files,
                    self.partitions.len(),
                    s.total_rows
                )?;
                if let Some((kept, total)) = s.cells {
                    write!(f, " cells={kept}/{total}")?;
                }
                if !s.pushed.is_empty() {
                    write!(f, " pushed=[{}]", s.pushed.join(", "))?;
                }
                if !s.late.is_empty() {
                    write!(f, " late=[{}]", s.late.join(", "))?;
                }
                let names: Vec<String> = self
                    .table
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                write!(f, " projection=[{}]", names.join(", "))
            }
            DisplayFormatType::TreeRender => {
                writeln!(f, "group={}", s.group)?;
                writeln!(f, "rows={rows}")?;
                write!(f, "partitions={}", self.partitions.len())
            }
        }
    }
}

impl ExecutionPlan for HdfstreamExec {
    fn name(&self) -> &str {
        "HdfstreamExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.input.iter().collect()
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        // The input is a handful of row ranges: never worth a repartition.
        vec![false; self.input.iter().count()]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match (&self.input, <[_; 1]>::try_from(children)) {
            (None, Err(children)) if children.is_empty() => Ok(self),
            (Some(_), Ok([input])) => {
                // Statistics of the rows are no longer known partition by partition once
                // an engine has restricted the input; keep the totals only when it has not.
                let n = input.properties().output_partitioning().partition_count();
                let partitions = if n == self.partitions.len() {
                    self.partitions.clone()
                } else {
                    Vec::new()
                };
                Ok(Arc::new(Self::distributed(
                    self.table.clone(),
                    input,
                    partitions,
                    self.summary.clone(),
                )))
            }
            (input, _) => Err(DataFusionError::Internal(format!(
                "HdfstreamExec takes {} children",
                usize::from(input.is_some())
            ))),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = self.table.schema();
        let table = self.table.clone();
        if let Some(input) = &self.input {
            let ranges = input.execute(partition, context)?;
            let group = self.summary.group.clone();
            let stream = futures::stream::once(async move {
                let rows = collect_row_ranges(ranges).await?;
                tracing::info!(
                    partition,
                    group,
                    rows = rows.row_count(),
                    ranges = ranges_text(&rows),
                    "hdfstream distributed scan"
                );
                start_reader(table, None, rows, partition)
            })
            .try_flatten();
            return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)));
        }
        let rows = self.partitions.get(partition).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!(
                "HdfstreamExec has {} partitions, not {}",
                self.partitions.len(),
                partition + 1
            ))
        })?;
        let stream = start_reader(table, self.late.clone(), rows, partition)?;
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let stats = Statistics::new_unknown(&self.table.schema());
        let n = self.properties.output_partitioning().partition_count();
        if self.partitions.len() != n {
            // A distributed scan whose input an engine restricted: rows unknown here.
            return Ok(Arc::new(stats));
        }
        let rows = self.rows(args.partition());
        let rows = if self.summary.exact {
            Precision::Exact(rows as usize)
        } else {
            Precision::Inexact(rows as usize)
        };
        Ok(Arc::new(stats.with_num_rows(rows)))
    }
}
