//! The one column fetcher of the table core: the rows of one dataset of one file, as one
//! multi-slice request per 2^24 runs, streamed straight into the buffer an engine adopts.

use hdfstream_protocol::{ArrayData, DimSelection, Dtype, MAX_SLICES, SliceSpec, TypedBuffer};

use crate::remote::{Backend, ElementKind};
use crate::selection::RowRanges;
use crate::{Error, Result};

/// The values of one column over some rows, in the buffer an engine wraps without a copy.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// `i1` values.
    I8(Vec<i8>),
    /// `i2` values.
    I16(Vec<i16>),
    /// `i4` values.
    I32(Vec<i32>),
    /// `i8` values.
    I64(Vec<i64>),
    /// `u1` values.
    U8(Vec<u8>),
    /// `u2` values.
    U16(Vec<u16>),
    /// `u4` values.
    U32(Vec<u32>),
    /// `u8` values.
    U64(Vec<u64>),
    /// `f4` values.
    F32(Vec<f32>),
    /// `f8` values.
    F64(Vec<f64>),
    /// Strings: row `i` is `bytes[offsets[i]..offsets[i + 1]]` (fixed-size strings without
    /// their NUL padding; invalid UTF-8 kept as sent).
    Strings {
        /// `rows + 1` offsets into `bytes`.
        offsets: Vec<usize>,
        /// The concatenated string bytes.
        bytes: Vec<u8>,
    },
    /// Elements of an HDF5 ARRAY type (or another fixed-size packed type), native bytes.
    Packed(Vec<u8>),
}

/// How to read one column of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRequest<'a> {
    /// Absolute path of the dataset.
    pub object: &'a str,
    /// Its wire element type.
    pub dtype: &'a Dtype,
    /// Selection of the dimensions after the row dimension (empty for a 1-D dataset).
    pub rest: Vec<DimSelection>,
}

impl ColumnRequest<'_> {
    /// Elements per row the request selects.
    pub fn values_per_row(&self) -> u64 {
        self.rest.iter().map(|d| d.count).product()
    }
}

fn too_big(n: u64) -> Error {
    Error::InvalidSelection {
        reason: format!("{n} values do not fit in memory"),
    }
}

fn usize_of(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| too_big(n))
}

/// Streams the rows of `rows` into a new `Vec<T>` (one request per 2^24 runs).
fn fetch_vec<T: bytemuck::Pod>(
    backend: &dyn Backend,
    vpath: &str,
    req: &ColumnRequest<'_>,
    rows: &RowRanges,
) -> Result<Vec<T>> {
    let w = req.values_per_row();
    let total = usize_of(rows.row_count().saturating_mul(w))?;
    let mut out: Vec<T> =
        bytemuck::allocation::try_zeroed_vec(total).map_err(|_| too_big(total as u64))?;
    let mut at = 0usize;
    for chunk in rows.chunks(MAX_SLICES) {
        let n = usize_of(chunk.row_count().saturating_mul(w))?;
        let spec = SliceSpec {
            runs: chunk.to_dim_selections(),
            rest: req.rest.clone(),
        };
        let dest = out
            .get_mut(at..at + n)
            .ok_or_else(|| Error::InvalidSelection {
                reason: "fetch plan exceeds its buffer".into(),
            })?;
        backend.request_slice_into(
            vpath,
            req.object,
            &spec,
            req.dtype,
            bytemuck::cast_slice_mut(dest),
        )?;
        at += n;
    }
    Ok(out)
}

/// Appends the strings of one response to `offsets`/`bytes` (the one string decoder).
pub(crate) fn append_strings(
    data: &ArrayData,
    offsets: &mut Vec<usize>,
    bytes: &mut Vec<u8>,
    what: &str,
) -> Result<()> {
    let mismatch = |found: String| Error::TypeMismatch {
        expected: format!("strings in {what}"),
        found,
    };
    match data {
        ArrayData::Nd(nd) => match &nd.data {
            TypedBuffer::Bytes { item_size, data } if *item_size > 0 => {
                for c in data.chunks(*item_size) {
                    let end = c.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1);
                    bytes.extend_from_slice(c.get(..end).unwrap_or_default());
                    offsets.push(bytes.len());
                }
                Ok(())
            }
            TypedBuffer::Bytes { .. } => {
                let n: u64 = nd.shape.iter().product();
                offsets.extend(std::iter::repeat_n(bytes.len(), usize_of(n)?));
                Ok(())
            }
            _ => Err(mismatch(format!("{:?}", nd.dtype))),
        },
        ArrayData::Vlen(v) => {
            for e in &v.elements {
                match e {
                    hdfstream_protocol::VlenElement::String(s) => {
                        bytes.extend_from_slice(s);
                        offsets.push(bytes.len());
                    }
                    hdfstream_protocol::VlenElement::Array(_) => {
                        return Err(mismatch("variable-length sequences".into()));
                    }
                }
            }
            Ok(())
        }
    }
}

/// Fetches the rows `rows` (file-local) of one column of the file `vpath`: one multi-slice
/// request per 2^24 runs; numbers land in their final vector. An empty row set makes no
/// request.
pub fn fetch_column(
    backend: &dyn Backend,
    vpath: &str,
    req: &ColumnRequest<'_>,
    rows: &RowRanges,
) -> Result<ColumnData> {
    let what = || format!("{vpath}:{}", req.object);
    if let Some(kind) = ElementKind::from_dtype(req.dtype) {
        macro_rules! numbers {
            ($($k:ident),*) => {
                match kind {
                    $(ElementKind::$k => ColumnData::$k(fetch_vec(backend, vpath, req, rows)?),)*
                }
            };
        }
        return Ok(numbers!(I8, I16, I32, I64, U8, U16, U32, U64, F32, F64));
    }
    let expected = rows.row_count().saturating_mul(req.values_per_row());
    match req.dtype {
        Dtype::FixedString { .. } | Dtype::VlenString => {
            let mut offsets = Vec::with_capacity(usize_of(expected)?.saturating_add(1));
            offsets.push(0);
            let mut bytes = Vec::new();
            if !rows.is_empty() {
                for chunk in rows.chunks(MAX_SLICES) {
                    let spec = SliceSpec {
                        runs: chunk.to_dim_selections(),
                        rest: req.rest.clone(),
                    };
                    let data = backend.request_slice(vpath, req.object, &spec)?;
                    append_strings(&data, &mut offsets, &mut bytes, &what())?;
                }
            }
            let got = offsets.len() as u64 - 1;
            if got != expected {
                return Err(Error::UnexpectedResponse {
                    url: what(),
                    reason: format!("{got} strings received for {expected} values"),
                });
            }
            Ok(ColumnData::Strings { offsets, bytes })
        }
        dtype => {
            let item = dtype.item_size().ok_or_else(|| Error::TypeMismatch {
                expected: format!("a fixed-size element type in {}", what()),
                found: format!("{dtype:?}"),
            })?;
            let total = usize_of(expected.saturating_mul(item as u64))?;
            let mut out = vec![0u8; total];
            let mut at = 0usize;
            for chunk in rows.chunks(MAX_SLICES) {
                let n = usize_of(
                    chunk
                        .row_count()
                        .saturating_mul(req.values_per_row())
                        .saturating_mul(item as u64),
                )?;
                let spec = SliceSpec {
                    runs: chunk.to_dim_selections(),
                    rest: req.rest.clone(),
                };
                let dest = out
                    .get_mut(at..at + n)
                    .ok_or_else(|| Error::InvalidSelection {
                        reason: "fetch plan exceeds its buffer".into(),
                    })?;
                if n > 0 {
                    backend.request_slice_into(vpath, req.object, &spec, dtype, dest)?;
                }
                at += n;
            }
            Ok(ColumnData::Packed(out))
        }
    }
}

impl ColumnData {
    /// Number of values (strings: number of strings).
    pub fn len(&self) -> usize {
        match self {
            ColumnData::I8(v) => v.len(),
            ColumnData::I16(v) => v.len(),
            ColumnData::I32(v) => v.len(),
            ColumnData::I64(v) => v.len(),
            ColumnData::U8(v) => v.len(),
            ColumnData::U16(v) => v.len(),
            ColumnData::U32(v) => v.len(),
            ColumnData::U64(v) => v.len(),
            ColumnData::F32(v) => v.len(),
            ColumnData::F64(v) => v.len(),
            ColumnData::Strings { offsets, .. } => offsets.len().saturating_sub(1),
            ColumnData::Packed(v) => v.len(),
        }
    }

    /// True when there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
