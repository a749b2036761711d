//! The physical scan: one partition per piece of the selected rows, each streaming the
//! record batches of the Arrow reader from its own thread.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
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
#[derive(Debug, Clone, Default)]
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
}

/// Scans selected rows of a remote group; made by [`crate::HdfstreamTable`].
#[derive(Debug)]
pub struct HdfstreamExec {
    table: GroupTable,
    partitions: Vec<RowRanges>,
    summary: ScanSummary,
    /// Filters applied before the other columns are fetched.
    late: Option<Arc<LatePlan>>,
    properties: Arc<PlanProperties>,
}

impl HdfstreamExec {
    pub(crate) fn new(
        table: GroupTable,
        partitions: Vec<RowRanges>,
        summary: ScanSummary,
        late: Option<LatePlan>,
    ) -> Self {
        let partitions = if partitions.is_empty() {
            vec![RowRanges::new()]
        } else {
            partitions
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(table.schema()),
            Partitioning::UnknownPartitioning(partitions.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            table,
            partitions,
            summary,
            late: late.map(Arc::new),
            properties: Arc::new(properties),
        }
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
        Vec::new()
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
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "HdfstreamExec has no children".to_owned(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let rows = self.partitions.get(partition).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!(
                "HdfstreamExec has {} partitions, not {}",
                self.partitions.len(),
                partition + 1
            ))
        })?;
        let schema = self.table.schema();
        let table = self.table.clone();
        let late = self.late.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUED_BATCHES);
        // The reader blocks on HTTP: it runs on a thread of its own, never on tokio's workers.
        std::thread::Builder::new()
            .name(format!("hdfstream-df-{partition}"))
            .spawn(move || {
                let run =
                    std::panic::AssertUnwindSafe(|| produce(&table, late.as_deref(), &rows, &tx));
                if let Err(p) = std::panic::catch_unwind(run) {
                    // Never let a failed partition look like one that ended.
                    let reason = hdfstream::error::panic_message(p.as_ref());
                    let _ = tx.blocking_send(Err(DataFusionError::Execution(format!(
                        "the scan of partition {partition} failed: {reason}"
                    ))));
                }
            })
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let rows = self.rows(args.partition());
        let stats = Statistics::new_unknown(&self.table.schema());
        let rows = if self.summary.exact {
            Precision::Exact(rows as usize)
        } else {
            Precision::Inexact(rows as usize)
        };
        Ok(Arc::new(stats.with_num_rows(rows)))
    }
}
