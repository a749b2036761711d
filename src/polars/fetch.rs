//! Fetching column values over row ranges: one multi-slice request per column, file and
//! 2^24 runs, streamed straight into the final buffer, and a small bounded thread pool.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use hdfstream_protocol::{
    ArrayData, DimSelection, MAX_SLICES, SliceSpec, TypedBuffer, VlenElement,
};
use polars::prelude::*;
use rayon::prelude::*;

use super::source::{ColumnSpec, Shape, Values};
use super::to_polars;
use crate::remote::{Backend, ElementKind};
use crate::selection::RowRanges;

/// Runs `f(0..n)` on at most `concurrency` threads; results in index order, first error wins.
pub(crate) fn run_parallel<T, F>(n: usize, concurrency: usize, f: F) -> PolarsResult<Vec<T>>
where
    T: Send,
    F: Fn(usize) -> PolarsResult<T> + Sync,
{
    let threads = concurrency.max(1).min(n);
    if threads <= 1 {
        return (0..n).map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let slots: Mutex<Vec<Option<PolarsResult<T>>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = f(i);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    let mut g = slots.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(slot) = g.get_mut(i) {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let slots = slots.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::with_capacity(n);
    let mut first_err = None;
    for r in slots {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None if out.len() == n => Ok(out),
        None => Err(PolarsError::ComputeError("a fetch task did not run".into())),
    }
}

/// Selection of the non-row dimensions for a column.
fn rest_of(col: &ColumnSpec) -> Vec<DimSelection> {
    match col.shape {
        Shape::Scalar => Vec::new(),
        Shape::Array(k) => vec![DimSelection { start: 0, count: k }],
        Shape::Split(j) => vec![DimSelection { start: j, count: 1 }],
    }
}

/// Values per row in the request.
fn width(col: &ColumnSpec) -> u64 {
    match col.shape {
        Shape::Array(k) => k,
        Shape::Scalar | Shape::Split(_) => 1,
    }
}

fn usize_of(n: u64) -> PolarsResult<usize> {
    usize::try_from(n)
        .map_err(|_| PolarsError::ComputeError(format!("{n} values do not fit in memory").into()))
}

/// Streams the rows of `col` in `rows` into a new `Vec<T>` (one request per 2^24 runs).
fn fetch_vec<T: bytemuck::Pod>(
    backend: &dyn Backend,
    vpath: &str,
    col: &ColumnSpec,
    rows: &RowRanges,
) -> PolarsResult<Vec<T>> {
    let w = width(col);
    let total = usize_of(rows.row_count().saturating_mul(w))?;
    let mut out: Vec<T> = vec![T::zeroed(); total];
    let rest = rest_of(col);
    let mut at = 0usize;
    for chunk in rows.chunks(MAX_SLICES) {
        let n = usize_of(chunk.row_count().saturating_mul(w))?;
        let spec = SliceSpec {
            runs: chunk.to_dim_selections(),
            rest: rest.clone(),
        };
        let dest = out
            .get_mut(at..at + n)
            .ok_or_else(|| PolarsError::ComputeError("fetch plan exceeds its buffer".into()))?;
        backend
            .request_slice_into(
                vpath,
                &col.object,
                &spec,
                &col.dtype,
                bytemuck::cast_slice_mut(dest),
            )
            .map_err(|e| to_polars(e, &format!("{vpath}:{}", col.object)))?;
        at += n;
    }
    Ok(out)
}

/// Strips the NUL padding of a fixed-length string.
fn strip_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |p| p + 1);
    b.get(..end).unwrap_or_default()
}

/// Fetches string rows (fixed or variable length) and decodes them (invalid UTF-8 is replaced).
fn fetch_strings(
    backend: &dyn Backend,
    vpath: &str,
    col: &ColumnSpec,
    rows: &RowRanges,
) -> PolarsResult<Series> {
    let mut out: Vec<String> = Vec::with_capacity(usize_of(rows.row_count())?);
    let what = || format!("{vpath}:{}", col.object);
    for chunk in rows.chunks(MAX_SLICES) {
        let spec = SliceSpec {
            runs: chunk.to_dim_selections(),
            rest: Vec::new(),
        };
        let data = backend
            .request_slice(vpath, &col.object, &spec)
            .map_err(|e| to_polars(e, &what()))?;
        match data {
            ArrayData::Nd(nd) => match nd.data {
                TypedBuffer::Bytes { item_size, data } if item_size > 0 => out.par_extend(
                    data.par_chunks(item_size)
                        .map(|c| String::from_utf8_lossy(strip_nul(c)).into_owned()),
                ),
                TypedBuffer::Bytes { .. } => {
                    out.extend((0..chunk.row_count()).map(|_| String::new()))
                }
                _ => {
                    return Err(PolarsError::SchemaMismatch(
                        format!("{}: expected strings, received numbers", what()).into(),
                    ));
                }
            },
            ArrayData::Vlen(v) => {
                let decoded: PolarsResult<Vec<String>> = v
                    .elements
                    .into_par_iter()
                    .map(|e| match e {
                        // Valid UTF-8 keeps its allocation; anything else is decoded lossily.
                        VlenElement::String(b) => Ok(String::from_utf8(b).unwrap_or_else(|e| {
                            String::from_utf8_lossy(e.as_bytes()).into_owned()
                        })),
                        VlenElement::Array(_) => Err(PolarsError::SchemaMismatch(
                            format!("{}: expected strings, received sequences", what()).into(),
                        )),
                    })
                    .collect();
                out.extend(decoded?);
            }
        }
    }
    if u64::try_from(out.len()).ok() != Some(rows.row_count()) {
        return Err(PolarsError::ComputeError(
            format!(
                "{}: {} strings received for {} rows",
                what(),
                out.len(),
                rows.row_count()
            )
            .into(),
        ));
    }
    Ok(
        StringChunked::from_iter_values(col.name.clone(), out.iter().map(String::as_str))
            .into_series(),
    )
}

/// Wraps a flat numeric vector as the column's Series (no copy of the values).
fn numeric_series(col: &ColumnSpec, v: NumVec, rows: u64) -> PolarsResult<Series> {
    let name = col.name.clone();
    let flat = v.into_series(name.clone());
    match col.shape {
        Shape::Scalar | Shape::Split(_) => Ok(flat),
        Shape::Array(k) => {
            let inner = flat.dtype().clone();
            let ca = ArrayChunked::from_aligned_values(
                name,
                &inner,
                usize_of(k)?,
                flat.chunks().clone(),
                usize_of(rows)?,
            );
            Ok(ca.into_series())
        }
    }
}

/// A typed vector of fetched values.
enum NumVec {
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
}

impl NumVec {
    /// Non-zero test of every value (for integers shown as booleans).
    fn nonzero(self) -> Vec<bool> {
        fn nz<T: PartialEq + Default + Send + Sync>(v: Vec<T>) -> Vec<bool> {
            let zero = T::default();
            v.into_par_iter().map(|x| x != zero).collect()
        }
        match self {
            NumVec::I8(v) => nz(v),
            NumVec::I16(v) => nz(v),
            NumVec::I32(v) => nz(v),
            NumVec::I64(v) => nz(v),
            NumVec::U8(v) => nz(v),
            NumVec::U16(v) => nz(v),
            NumVec::U32(v) => nz(v),
            NumVec::U64(v) => nz(v),
            NumVec::F32(v) => nz(v),
            NumVec::F64(v) => nz(v),
            NumVec::Bool(v) => v,
        }
    }

    fn into_series(self, name: PlSmallStr) -> Series {
        match self {
            NumVec::I8(v) => Int8Chunked::from_vec(name, v).into_series(),
            NumVec::I16(v) => Int16Chunked::from_vec(name, v).into_series(),
            NumVec::I32(v) => Int32Chunked::from_vec(name, v).into_series(),
            NumVec::I64(v) => Int64Chunked::from_vec(name, v).into_series(),
            NumVec::U8(v) => UInt8Chunked::from_vec(name, v).into_series(),
            NumVec::U16(v) => UInt16Chunked::from_vec(name, v).into_series(),
            NumVec::U32(v) => UInt32Chunked::from_vec(name, v).into_series(),
            NumVec::U64(v) => UInt64Chunked::from_vec(name, v).into_series(),
            NumVec::F32(v) => Float32Chunked::from_vec(name, v).into_series(),
            NumVec::F64(v) => Float64Chunked::from_vec(name, v).into_series(),
            NumVec::Bool(v) => BooleanChunked::from_slice(name, &v).into_series(),
        }
    }
}

fn fetch_kind(
    backend: &dyn Backend,
    vpath: &str,
    col: &ColumnSpec,
    rows: &RowRanges,
    kind: ElementKind,
) -> PolarsResult<NumVec> {
    Ok(match kind {
        ElementKind::I8 => NumVec::I8(fetch_vec(backend, vpath, col, rows)?),
        ElementKind::I16 => NumVec::I16(fetch_vec(backend, vpath, col, rows)?),
        ElementKind::I32 => NumVec::I32(fetch_vec(backend, vpath, col, rows)?),
        ElementKind::I64 => NumVec::I64(fetch_vec(backend, vpath, col, rows)?),
        ElementKind::U8 => NumVec::U8(fetch_vec(backend, vpath, col, rows)?),
        ElementKind::U16 => NumVec::U16(fetch_vec(backend, vpath, col, rows)?),
        ElementKind::U32 => NumVec::U32(fetch_vec(backend, vpath, col, rows)?),
        ElementKind::U64 => NumVec::U64(fetch_vec(backend, vpath, col, rows)?),
        ElementKind::F32 => NumVec::F32(fetch_vec(backend, vpath, col, rows)?),
        ElementKind::F64 => NumVec::F64(fetch_vec(backend, vpath, col, rows)?),
    })
}

/// Fetches `rows` (local to the file) of one column of one file as a Series.
///
/// An empty row set makes no request.
pub(crate) fn fetch_column(
    backend: &dyn Backend,
    vpath: &str,
    col: &ColumnSpec,
    rows: &RowRanges,
) -> PolarsResult<Series> {
    if rows.is_empty() {
        return Series::full_null(col.name.clone(), 0, &col.polars).cast(&col.polars);
    }
    match col.values {
        Values::Str => fetch_strings(backend, vpath, col, rows),
        Values::Numeric(kind) => {
            let v = fetch_kind(backend, vpath, col, rows, kind)?;
            numeric_series(col, v, rows.row_count())
        }
        Values::Boolean(kind) => {
            let v = fetch_kind(backend, vpath, col, rows, kind)?;
            numeric_series(col, NumVec::Bool(v.nonzero()), rows.row_count())
        }
    }
}
