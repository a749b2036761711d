//! Column values as Series: the table core's fetcher ([`crate::table::fetch_column`]) wrapped
//! into Polars types without copying numeric buffers.

use hdfstream_protocol::TypedBuffer;
use polars::prelude::*;
use rayon::prelude::*;

use super::source::{ColumnSpec, Shape, Values};
use super::to_polars;
use crate::remote::Backend;
use crate::selection::RowRanges;
use crate::table::{ColumnData, ColumnRequest};

pub(crate) use crate::table::parallel::run_parallel;

/// Selection of the non-row dimensions for a column.
fn rest_of(col: &ColumnSpec) -> Vec<hdfstream_protocol::DimSelection> {
    use hdfstream_protocol::DimSelection;
    match col.shape {
        Shape::Scalar => Vec::new(),
        Shape::Array(k) => vec![DimSelection { start: 0, count: k }],
        Shape::Split(j) => vec![DimSelection { start: j, count: 1 }],
    }
}

fn usize_of(n: u64) -> PolarsResult<usize> {
    usize::try_from(n)
        .map_err(|_| PolarsError::ComputeError(format!("{n} values do not fit in memory").into()))
}

/// A Series of strings from the core's offsets and bytes (invalid UTF-8 is replaced).
fn string_series(name: PlSmallStr, offsets: &[usize], bytes: &[u8]) -> Series {
    let strings: Vec<std::borrow::Cow<'_, str>> = offsets
        .par_windows(2)
        .map(|w| String::from_utf8_lossy(bytes.get(w[0]..w[1]).unwrap_or_default()))
        .collect();
    StringChunked::from_iter_values(name, strings.iter().map(|s| s.as_ref())).into_series()
}

/// Wraps a flat numeric vector as a Series (no copy of the values); `None` for other data.
fn flat_series(name: PlSmallStr, data: ColumnData) -> Option<Series> {
    let ColumnData::Values(buf) = data else {
        return None;
    };
    Some(match buf {
        TypedBuffer::I8(v) => Int8Chunked::from_vec(name, v).into_series(),
        TypedBuffer::I16(v) => Int16Chunked::from_vec(name, v).into_series(),
        TypedBuffer::I32(v) => Int32Chunked::from_vec(name, v).into_series(),
        TypedBuffer::I64(v) => Int64Chunked::from_vec(name, v).into_series(),
        TypedBuffer::U8(v) => UInt8Chunked::from_vec(name, v).into_series(),
        TypedBuffer::U16(v) => UInt16Chunked::from_vec(name, v).into_series(),
        TypedBuffer::U32(v) => UInt32Chunked::from_vec(name, v).into_series(),
        TypedBuffer::U64(v) => UInt64Chunked::from_vec(name, v).into_series(),
        TypedBuffer::F32(v) => Float32Chunked::from_vec(name, v).into_series(),
        TypedBuffer::F64(v) => Float64Chunked::from_vec(name, v).into_series(),
        TypedBuffer::Bytes { .. } => return None,
    })
}

/// Non-zero test of every value (integers shown as booleans).
fn nonzero(data: ColumnData) -> Option<Vec<bool>> {
    fn nz<T: PartialEq + Default + Send + Sync>(v: Vec<T>) -> Vec<bool> {
        let zero = T::default();
        v.into_par_iter().map(|x| x != zero).collect()
    }
    let ColumnData::Values(buf) = data else {
        return None;
    };
    Some(match buf {
        TypedBuffer::I8(v) => nz(v),
        TypedBuffer::I16(v) => nz(v),
        TypedBuffer::I32(v) => nz(v),
        TypedBuffer::I64(v) => nz(v),
        TypedBuffer::U8(v) => nz(v),
        TypedBuffer::U16(v) => nz(v),
        TypedBuffer::U32(v) => nz(v),
        TypedBuffer::U64(v) => nz(v),
        TypedBuffer::F32(v) => nz(v),
        TypedBuffer::F64(v) => nz(v),
        TypedBuffer::Bytes { .. } => return None,
    })
}

/// A flat Series as the column's shape (`Array(_, k)` for `(N, k)` datasets).
fn shaped(col: &ColumnSpec, flat: Series, rows: u64) -> PolarsResult<Series> {
    match col.shape {
        Shape::Scalar | Shape::Split(_) => Ok(flat),
        Shape::Array(k) => {
            let inner = flat.dtype().clone();
            let ca = ArrayChunked::from_aligned_values(
                col.name.clone(),
                &inner,
                usize_of(k)?,
                flat.chunks().clone(),
                usize_of(rows)?,
            );
            Ok(ca.into_series())
        }
    }
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
    let what = || format!("{vpath}:{}", col.object);
    let req = ColumnRequest {
        object: &col.object,
        dtype: &col.dtype,
        rest: rest_of(col),
    };
    let data = crate::table::fetch_column(backend, vpath, &req, rows)
        .map_err(|e| to_polars(e, &what()))?;
    let mismatch = || {
        PolarsError::SchemaMismatch(
            format!("{}: the values do not have the column's type", what()).into(),
        )
    };
    match col.values {
        Values::Str => match data {
            ColumnData::Strings { offsets, bytes } => {
                Ok(string_series(col.name.clone(), &offsets, &bytes))
            }
            _ => Err(mismatch()),
        },
        Values::Numeric(_) => {
            let flat = flat_series(col.name.clone(), data).ok_or_else(mismatch)?;
            shaped(col, flat, rows.row_count())
        }
        Values::Boolean(_) => {
            let bits = nonzero(data).ok_or_else(mismatch)?;
            let flat = BooleanChunked::from_slice(col.name.clone(), &bits).into_series();
            shaped(col, flat, rows.row_count())
        }
    }
}
