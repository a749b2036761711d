//! Late materialization inside the scan: the columns a filter reads are fetched first, the
//! filter is evaluated on them, and the other columns are fetched only for the rows that
//! passed, when that moves fewer bytes (the table core decides, as for the Polars scan).
//!
//! The filters stay `Inexact`: DataFusion evaluates them again above the scan, so a filter
//! the scan cannot evaluate on some batch only costs bytes, never rows.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::compute::{
    concat, concat_batches, filter_record_batch, prep_null_mask_filter,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::utils::conjunction;
use datafusion::physical_expr::PhysicalExpr;
use hdfstream::RowRanges;
use hdfstream::arrow::GroupTable;
use hdfstream::table::late_fetch_pays;

use crate::HdfstreamError;
use crate::provider::split_rows;

/// Rows filtered per step, in reader batches: stage-1 columns and the mask of this many rows
/// are held at once.
const WINDOW_BATCHES: u64 = 8;

/// Whether the scan can evaluate `e` itself: a deterministic expression over the table's
/// columns only (no subquery, aggregate, window or outer reference).
pub(crate) fn can_evaluate(e: &Expr, schema: &SchemaRef) -> bool {
    if e.is_volatile() {
        return false;
    }
    let refs = e.column_refs();
    if refs.is_empty() || refs.iter().any(|c| schema.index_of(&c.name).is_err()) {
        return false;
    }
    !e.exists(|x| {
        Ok(matches!(
            x,
            Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::AggregateFunction(_)
                | Expr::WindowFunction(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Placeholder(_)
        ))
    })
    .unwrap_or(true)
}

/// Where an output column of the late scan comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Column `i` of the filter columns.
    Filter(usize),
    /// Column `i` of the other columns.
    Rest(usize),
}

/// A scan that filters before fetching the rest; made by [`LatePlan::new`].
#[derive(Debug)]
pub(crate) struct LatePlan {
    /// The columns the filters read.
    filter: GroupTable,
    /// The filters' conjunction, over `filter`'s schema.
    predicate: Arc<dyn PhysicalExpr>,
    /// The other output columns.
    rest: GroupTable,
    /// The output columns, in the scan's schema order.
    sources: Vec<Source>,
    /// The scan's output schema.
    schema: SchemaRef,
}

impl LatePlan {
    /// The late plan for `filters` (each one [`can_evaluate`] accepts) over `table` (the
    /// unprojected table) with `projection`; `None` when it cannot save bytes.
    pub(crate) fn new(
        state: &dyn Session,
        table: &GroupTable,
        projection: &[usize],
        filters: &[Expr],
    ) -> Result<Option<Self>> {
        let schema = table.schema();
        let mut wanted = BTreeSet::new();
        for f in filters {
            for c in f.column_refs() {
                wanted.insert(schema.index_of(&c.name)?);
            }
        }
        let filter_idx: Vec<usize> = wanted.into_iter().collect();
        let rest_idx: Vec<usize> = projection
            .iter()
            .copied()
            .filter(|i| !filter_idx.contains(i))
            .collect();
        let rest = table.project(&rest_idx).map_err(HdfstreamError::from)?;
        if filter_idx.is_empty() || rest.row_bytes() == 0 {
            return Ok(None);
        }
        let filter = table.project(&filter_idx).map_err(HdfstreamError::from)?;
        let Some(expr) = conjunction(filters.iter().map(unqualified)) else {
            return Ok(None);
        };
        let df_schema = DFSchema::try_from(filter.schema().as_ref().clone())?;
        let predicate = match state.create_physical_expr(expr, &df_schema) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "filters left to DataFusion: no physical expression");
                return Ok(None);
            }
        };
        let sources = projection
            .iter()
            .map(|i| match filter_idx.iter().position(|f| f == i) {
                Some(k) => Source::Filter(k),
                None => Source::Rest(rest_idx.iter().position(|r| r == i).unwrap_or(0)),
            })
            .collect();
        Ok(Some(Self {
            filter,
            predicate,
            rest,
            sources,
            schema: Arc::new(schema.project(projection)?),
        }))
    }

    /// Reads `rows`, sending the batches of the rows that pass; stops when `send` is false.
    pub(crate) fn run(
        &self,
        rows: &RowRanges,
        mut send: impl FnMut(Result<RecordBatch>) -> bool,
    ) -> Result<()> {
        let window = WINDOW_BATCHES.saturating_mul(self.filter.batch_size() as u64);
        let pieces = rows.row_count().div_ceil(window.max(1));
        for w in split_rows(rows, usize::try_from(pieces).unwrap_or(usize::MAX), 1) {
            let (mask, kept) = self.stage_one(&w)?;
            let hits = w.take_positions(true_positions(&mask));
            if hits.is_empty() {
                continue;
            }
            let late = late_fetch_pays(
                w.row_count(),
                hits.row_count(),
                hits.run_count() as u64,
                self.rest.row_bytes(),
                self.rest.schema().fields().len() as u64,
            );
            tracing::debug!(
                rows = w.row_count(),
                hits = hits.row_count(),
                runs = hits.run_count(),
                late,
                "late materialization decision"
            );
            let reader = self
                .rest
                .reader(Some(if late { &hits } else { &w }))
                .map_err(HdfstreamError::from)?;
            // Rows of `kept` already sent, and positions of `mask` already used.
            let (mut done, mut at) = (0usize, 0usize);
            for batch in reader {
                let mut batch = batch?;
                if !late {
                    let m = mask.slice(at, batch.num_rows());
                    at += batch.num_rows();
                    batch = filter_record_batch(&batch, &m)?;
                }
                let n = batch.num_rows();
                if n == 0 {
                    continue;
                }
                if done + n > kept.num_rows() {
                    return Err(DataFusionError::Internal(format!(
                        "late scan: {} filtered rows, but the other columns came with more",
                        kept.num_rows()
                    )));
                }
                let out = self.assemble(&kept.slice(done, n), &batch)?;
                done += n;
                if !send(Ok(out)) {
                    return Ok(());
                }
            }
            if done != kept.num_rows() {
                return Err(DataFusionError::Internal(format!(
                    "late scan: {} filtered rows, but the other columns came with {done}",
                    kept.num_rows()
                )));
            }
        }
        Ok(())
    }

    /// Fetches the filter columns of `w` and evaluates the filters: the mask over `w`'s
    /// rows and the filter columns of the rows that passed.
    fn stage_one(&self, w: &RowRanges) -> Result<(BooleanArray, RecordBatch)> {
        let reader = self.filter.reader(Some(w)).map_err(HdfstreamError::from)?;
        let (mut masks, mut kept): (Vec<ArrayRef>, Vec<RecordBatch>) = (Vec::new(), Vec::new());
        for batch in reader {
            let batch = batch?;
            let mask = self.mask(&batch);
            kept.push(filter_record_batch(&batch, &mask)?);
            masks.push(Arc::new(mask));
        }
        let refs: Vec<&dyn Array> = masks.iter().map(AsRef::as_ref).collect();
        let mask = if refs.is_empty() {
            BooleanArray::from(Vec::<bool>::new())
        } else {
            let all = concat(&refs)?;
            all.as_any()
                .downcast_ref::<BooleanArray>()
                .cloned()
                .ok_or_else(|| DataFusionError::Internal("late scan: mask not boolean".into()))?
        };
        Ok((mask, concat_batches(&self.filter.schema(), &kept)?))
    }

    /// The filters on one batch, nulls false; all true where they cannot be evaluated
    /// (DataFusion then decides, above the scan).
    fn mask(&self, batch: &RecordBatch) -> BooleanArray {
        let all = || BooleanArray::from(vec![true; batch.num_rows()]);
        let value = match self
            .predicate
            .evaluate(batch)
            .and_then(|v| v.into_array(batch.num_rows()))
        {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "filter not evaluated in the scan");
                return all();
            }
        };
        match value.as_any().downcast_ref::<BooleanArray>() {
            Some(b) if b.len() == batch.num_rows() && b.null_count() > 0 => {
                prep_null_mask_filter(b)
            }
            Some(b) if b.len() == batch.num_rows() => b.clone(),
            _ => all(),
        }
    }

    /// An output batch from the filter columns and the other columns of the same rows.
    fn assemble(&self, filter: &RecordBatch, rest: &RecordBatch) -> Result<RecordBatch> {
        let columns =
            self.sources
                .iter()
                .map(|s| {
                    let (batch, i) = match *s {
                        Source::Filter(i) => (filter, i),
                        Source::Rest(i) => (rest, i),
                    };
                    batch.columns().get(i).cloned().ok_or_else(|| {
                        DataFusionError::Internal(format!("late scan: no column {i}"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

/// `e` with its column references unqualified (the scan's schema has no table name).
fn unqualified(e: &Expr) -> Expr {
    e.clone()
        .transform(|x| {
            Ok(match x {
                Expr::Column(c) if c.relation.is_some() => {
                    Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))
                }
                other => Transformed::no(other),
            })
        })
        .map_or_else(|_| e.clone(), |t| t.data)
}

/// Positions of the true values of a mask without nulls.
fn true_positions(mask: &BooleanArray) -> impl Iterator<Item = u64> + '_ {
    mask.values().set_indices().map(|i| i as u64)
}
