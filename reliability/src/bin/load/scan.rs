//! The table scans of the load: a random row range (and sometimes a value filter) of a few
//! columns of the sample's `PartType0` over all its files, checked row by row against the
//! libhdf5 columns. With the `polars` feature a real Polars scan (`scan_hdfstream_with` +
//! `filter` + `select` + `collect`), otherwise the Arrow reader of the same table core
//! (`GroupReaderBuilder` with the row range, the value filter applied to its batches).

use std::sync::Arc;

use hdfstream::remote::Backend;
use hdfstream_reliability::Rng;

use crate::ops::{OpResult, same_bytes};
use crate::truth::{Kind, Truth, gather};

/// One column of the table over every file: type, values per row and the values.
pub(crate) struct ColumnTruth {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) shape: Vec<u64>,
    pub(crate) data: Vec<u8>,
}

/// The concatenated columns of the table (rows of every file in file order).
pub(crate) fn columns(truth: &Truth) -> Vec<ColumnTruth> {
    let Some(table) = &truth.table else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in &table.columns {
        let path = format!("{}/{name}", table.group);
        let mut col: Option<ColumnTruth> = None;
        for &fi in &table.files {
            let Some(d) = truth.files[fi].dataset(&path) else {
                continue;
            };
            let Some(kind) = d.kind else { continue };
            match &mut col {
                None => {
                    col = Some(ColumnTruth {
                        name: name.clone(),
                        kind,
                        shape: d.shape.clone(),
                        data: d.data.clone(),
                    });
                }
                Some(c) => {
                    c.shape[0] += d.shape[0];
                    c.data.extend_from_slice(&d.data);
                }
            }
        }
        out.extend(col);
    }
    out
}

impl ColumnTruth {
    /// Bytes of one row.
    fn row_width(&self) -> usize {
        self.shape.iter().skip(1).product::<u64>() as usize * self.kind.size()
    }

    /// The first value of row `row`, as `f64`.
    fn value(&self, row: u64) -> f64 {
        let at = row as usize * self.row_width();
        value_of(self.kind, &self.data[at..at + self.kind.size()])
    }
}

/// One element of type `kind` from its native bytes, as `f64`.
fn value_of(kind: Kind, b: &[u8]) -> f64 {
    macro_rules! v {
        ($t:ty) => {
            bytemuck::pod_read_unaligned::<$t>(b) as f64
        };
    }
    match kind {
        Kind::I8 => v!(i8),
        Kind::I16 => v!(i16),
        Kind::I32 => v!(i32),
        Kind::I64 => v!(i64),
        Kind::U8 => v!(u8),
        Kind::U16 => v!(u16),
        Kind::U32 => v!(u32),
        Kind::U64 => v!(u64),
        Kind::F32 => v!(f32),
        Kind::F64 => v!(f64),
    }
}

/// What one scan asks: columns, a global row range and an optional `column > threshold`.
struct Query {
    columns: Vec<usize>,
    start: u64,
    end: u64,
    filter: Option<(usize, f64)>,
}

impl Query {
    fn random(rng: &mut Rng, cols: &[ColumnTruth]) -> Self {
        let total = cols[0].shape[0];
        let mut columns: Vec<usize> = (0..cols.len()).collect();
        // A random subset of 1 to 3 columns (partial Fisher-Yates).
        let k = 1 + rng.below(3.min(cols.len() as u64)) as usize;
        for i in 0..k {
            let j = i + rng.below((columns.len() - i) as u64) as usize;
            columns.swap(i, j);
        }
        columns.truncate(k);
        let max = *rng.pick(&[100u64, 2000, 20_000]);
        let len = 1 + rng.below(total.min(max));
        let start = rng.below(total - len + 1);
        let end = start + len;
        // A value filter on a one-value-per-row column, the threshold a value of the range.
        let scalar = columns.iter().copied().find(|&c| cols[c].shape.len() == 1);
        let filter = match scalar {
            Some(c) if rng.chance(0.4) => Some((c, cols[c].value(start + rng.below(len)))),
            _ => None,
        };
        Query {
            columns,
            start,
            end,
            filter,
        }
    }

    /// The rows the query keeps, as `(row, 1)` runs.
    fn rows(&self, cols: &[ColumnTruth]) -> Vec<(u64, u64)> {
        (self.start..self.end)
            .filter(|&r| match self.filter {
                Some((c, t)) => cols[c].value(r) > t,
                None => true,
            })
            .map(|r| (r, 1))
            .collect()
    }

    fn describe(&self, cols: &[ColumnTruth]) -> String {
        let names: Vec<&str> = self
            .columns
            .iter()
            .map(|&c| cols[c].name.as_str())
            .collect();
        let filter = self
            .filter
            .map(|(c, t)| format!(" and {} > {t}", cols[c].name))
            .unwrap_or_default();
        format!(
            "scan {names:?} where {} <= row < {}{filter}",
            self.start, self.end
        )
    }

    fn expected(&self, cols: &[ColumnTruth], c: usize, rows: &[(u64, u64)]) -> Vec<u8> {
        let col = &cols[c];
        let rest: Vec<(u64, u64)> = col.shape.iter().skip(1).map(|&n| (0, n)).collect();
        gather(&col.data, col.kind.size(), &col.shape, rows, &rest)
    }
}

/// The prepared table of the scans.
pub(crate) struct ScanTruth {
    /// One file or a glob.
    path: String,
    group: String,
    columns: Vec<ColumnTruth>,
}

impl ScanTruth {
    /// The table of `truth`, or `None` when the sample has none.
    pub(crate) fn new(truth: &Truth) -> Option<Self> {
        let table = truth.table.as_ref()?;
        let columns = columns(truth);
        if columns.is_empty() || columns[0].shape[0] == 0 {
            return None;
        }
        Some(Self {
            path: table.path.clone(),
            group: table.group.clone(),
            columns,
        })
    }

    /// What runs the scans.
    pub(crate) fn engine() -> &'static str {
        if cfg!(feature = "polars") {
            "polars"
        } else {
            "arrow"
        }
    }
}

/// One random scan, checked.
pub(crate) fn scan(
    backend: &Arc<dyn Backend>,
    table: Option<&ScanTruth>,
    rng: &mut Rng,
) -> OpResult {
    let Some(t) = table else {
        return Ok(());
    };
    let q = Query::random(rng, &t.columns);
    let what = format!("{}:{} {}", t.path, t.group, q.describe(&t.columns));
    let rows = q.rows(&t.columns);
    let got = run(backend, t, &q).map_err(|e| format!("{what}: {e}"))?;
    let row_index: Vec<u64> = rows.iter().map(|r| r.0).collect();
    if got.row_index != row_index {
        return Err(format!(
            "wrong value: {what}: {} rows {:?}..., expected {} rows {:?}...",
            got.row_index.len(),
            &got.row_index[..got.row_index.len().min(5)],
            row_index.len(),
            &row_index[..row_index.len().min(5)]
        ));
    }
    for (&c, bytes) in q.columns.iter().zip(&got.columns) {
        let want = q.expected(&t.columns, c, &rows);
        same_bytes(
            &format!("{what}: column {}", t.columns[c].name),
            bytes,
            &want,
        )?;
    }
    Ok(())
}

/// A scan's answer: the row indexes and each requested column's bytes.
struct Answer {
    row_index: Vec<u64>,
    columns: Vec<Vec<u8>>,
}

#[cfg(feature = "polars")]
fn run(backend: &Arc<dyn Backend>, t: &ScanTruth, q: &Query) -> Result<Answer, String> {
    use hdfstream::polars::{ScanArgsHdfstream, scan_hdfstream_with};
    use polars::prelude::*;

    fn bytes_of<T>(ca: &ChunkedArray<T>) -> PolarsResult<Vec<u8>>
    where
        T: PolarsNumericType,
        T::Native: bytemuck::Pod,
    {
        let ca = ca.rechunk();
        let s = ca
            .cont_slice()
            .map_err(|e| polars_err!(ComputeError: "column has nulls: {e}"))?;
        Ok(bytemuck::cast_slice(s).to_vec())
    }

    fn series_bytes(s: &Series) -> PolarsResult<Vec<u8>> {
        let s = s.rechunk();
        match s.dtype() {
            DataType::Array(..) => series_bytes(&s.array()?.get_inner()),
            DataType::Int8 => bytes_of(s.i8()?),
            DataType::Int16 => bytes_of(s.i16()?),
            DataType::Int32 => bytes_of(s.i32()?),
            DataType::Int64 => bytes_of(s.i64()?),
            DataType::UInt8 => bytes_of(s.u8()?),
            DataType::UInt16 => bytes_of(s.u16()?),
            DataType::UInt32 => bytes_of(s.u32()?),
            DataType::UInt64 => bytes_of(s.u64()?),
            DataType::Float32 => bytes_of(s.f32()?),
            DataType::Float64 => bytes_of(s.f64()?),
            other => polars_bail!(ComputeError: "unexpected column type {other}"),
        }
    }

    let go = || -> PolarsResult<Answer> {
        let lf = scan_hdfstream_with(
            backend.clone(),
            &t.path,
            &t.group,
            ScanArgsHdfstream::default(),
        )?;
        let mut pred = col("row_index")
            .gt_eq(lit(q.start))
            .and(col("row_index").lt(lit(q.end)));
        if let Some((c, threshold)) = q.filter {
            let name = t.columns[c].name.as_str();
            pred = pred.and(col(name).cast(DataType::Float64).gt(lit(threshold)));
        }
        let mut select = vec![col("row_index")];
        select.extend(q.columns.iter().map(|&c| col(t.columns[c].name.as_str())));
        let df = lf.filter(pred).select(select).collect()?;
        let idx = df.column("row_index")?.as_materialized_series().rechunk();
        let row_index = idx.u64()?.into_no_null_iter().collect();
        let mut columns = Vec::new();
        for &c in &q.columns {
            let s = df
                .column(t.columns[c].name.as_str())?
                .as_materialized_series();
            columns.push(series_bytes(s)?);
        }
        Ok(Answer { row_index, columns })
    };
    go().map_err(|e| e.to_string())
}

/// The bytes of a numeric Arrow array (fixed-size lists flattened), in row order.
#[cfg(not(feature = "polars"))]
fn arrow_bytes(a: &dyn arrow::array::Array) -> Result<Vec<u8>, String> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::DataType;
    match a.data_type() {
        DataType::FixedSizeList(_, k) => {
            let list = a.as_fixed_size_list();
            let k = usize::try_from(*k).map_err(|_| format!("list size {k}"))?;
            let first = usize::try_from(list.value_offset(0)).unwrap_or(0);
            arrow_bytes(list.values().slice(first, list.len() * k).as_ref())
        }
        t if t.is_primitive() => {
            let width = t.primitive_width().ok_or("no width")?;
            let data = a.to_data();
            let buffer = data.buffers().first().ok_or("no values buffer")?;
            let (lo, hi) = (data.offset() * width, (data.offset() + data.len()) * width);
            Ok(buffer
                .as_slice()
                .get(lo..hi)
                .ok_or("short values buffer")?
                .to_vec())
        }
        other => Err(format!("unexpected column type {other}")),
    }
}

#[cfg(not(feature = "polars"))]
fn run(backend: &Arc<dyn Backend>, t: &ScanTruth, q: &Query) -> Result<Answer, String> {
    use arrow::array::AsArray;
    use arrow::datatypes::UInt64Type;
    use hdfstream::OpenOptions;
    use hdfstream::arrow::GroupReaderBuilder;

    // The Arrow reader of the row range (the filter column too), then the value filter
    // applied to the fetched values, as an engine over the reader would.
    let mut needed: Vec<usize> = q
        .columns
        .iter()
        .copied()
        .chain(q.filter.map(|f| f.0))
        .collect();
    needed.sort_unstable();
    needed.dedup();
    let names: Vec<&str> = needed.iter().map(|&c| t.columns[c].name.as_str()).collect();
    let reader = GroupReaderBuilder::open_with(
        backend.clone(),
        &t.path,
        &t.group,
        OpenOptions::metadata_only(),
    )
    .map_err(|e| e.to_string())?
    .with_columns(names.iter().copied())
    .with_rows(q.start..q.end)
    .with_row_index("row_index", 0)
    .build()
    .map_err(|e| e.to_string())?;
    let mut fetched: Vec<Vec<u8>> = vec![Vec::new(); t.columns.len()];
    let mut row_index: Vec<u64> = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let idx = batch
            .column_by_name("row_index")
            .ok_or("no row_index column")?;
        let idx = idx
            .as_primitive_opt::<UInt64Type>()
            .ok_or("row_index is not u64")?;
        row_index.extend(idx.values().iter().copied());
        for (&c, name) in needed.iter().zip(&names) {
            let col = batch
                .column_by_name(name)
                .ok_or_else(|| format!("no column {name}"))?;
            fetched[c].extend(arrow_bytes(col.as_ref())?);
        }
    }
    if row_index != (q.start..q.end).collect::<Vec<u64>>() {
        return Err(format!(
            "rows {:?}... of the range",
            &row_index[..row_index.len().min(5)]
        ));
    }
    let width = |c: usize| t.columns[c].row_width();
    let keep: Vec<u64> = (q.start..q.end)
        .filter(|&r| match q.filter {
            Some((c, threshold)) => {
                let at = (r - q.start) as usize * width(c);
                fetched[c]
                    .get(at..at + t.columns[c].kind.size())
                    .is_some_and(|b| value_of(t.columns[c].kind, b) > threshold)
            }
            None => true,
        })
        .collect();
    let mut columns = Vec::new();
    for &c in &q.columns {
        let w = width(c);
        let mut out = Vec::with_capacity(keep.len() * w);
        for &r in &keep {
            let at = (r - q.start) as usize * w;
            out.extend_from_slice(fetched[c].get(at..at + w).ok_or("short column")?);
        }
        columns.push(out);
    }
    Ok(Answer {
        row_index: keep,
        columns,
    })
}
