//! The one column fetcher of the table core: the rows of one dataset of one file, as one
//! multi-slice request per 2^24 runs, streamed straight into the buffer an engine adopts.

use hdfstream_protocol::{ArrayData, DimSelection, Dtype, MAX_SLICES, SliceSpec, TypedBuffer};

use crate::remote::Backend;
use crate::selection::RowRanges;
use crate::{Error, Result};

/// The values of one column over some rows, in the buffer an engine wraps without a copy.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Fixed-size values: numbers in their typed vector, other fixed-size types (HDF5
    /// ARRAY types, ...) as packed native bytes.
    Values(TypedBuffer),
    /// Strings: row `i` is `bytes[offsets[i]..offsets[i + 1]]` (fixed-size strings without
    /// their NUL padding; invalid UTF-8 kept as sent).
    Strings {
        /// `rows + 1` offsets into `bytes`.
        offsets: Vec<usize>,
        /// The concatenated string bytes.
        bytes: Vec<u8>,
    },
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
    /// Elements per row the request selects (saturating at `u64::MAX`).
    pub fn values_per_row(&self) -> u64 {
        self.rest
            .iter()
            .fold(1u64, |a, d| a.saturating_mul(d.count))
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

/// Streams the rows of `rows` into a new buffer of the column's type (one request per 2^24
/// runs, each writing straight into its part of the buffer).
fn fetch_values(
    backend: &dyn Backend,
    vpath: &str,
    req: &ColumnRequest<'_>,
    rows: &RowRanges,
) -> Result<TypedBuffer> {
    let w = req.values_per_row();
    let item = req.dtype.item_size().ok_or_else(|| Error::TypeMismatch {
        expected: format!("a fixed-size element type in {vpath}:{}", req.object),
        found: format!("{:?}", req.dtype),
    })? as u64;
    let total = rows.row_count().saturating_mul(w);
    let mut out =
        TypedBuffer::try_zeroed(req.dtype, usize_of(total)?).ok_or_else(|| too_big(total))?;
    let dest_all = out.as_bytes_mut();
    let mut at = 0usize;
    for chunk in rows.chunks(MAX_SLICES) {
        let n = usize_of(chunk.row_count().saturating_mul(w).saturating_mul(item))?;
        let spec = SliceSpec {
            runs: chunk.to_dim_selections(),
            rest: req.rest.clone(),
        };
        let dest = dest_all
            .get_mut(at..at + n)
            .ok_or_else(|| Error::InvalidSelection {
                reason: "fetch plan exceeds its buffer".into(),
            })?;
        if n > 0 {
            backend.request_slice_into(vpath, req.object, &spec, req.dtype, dest)?;
        }
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
                let n = nd.shape.iter().fold(1u64, |a, &d| a.saturating_mul(d));
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
/// request per 2^24 runs; values land in their final buffer.
pub fn fetch_column(
    backend: &dyn Backend,
    vpath: &str,
    req: &ColumnRequest<'_>,
    rows: &RowRanges,
) -> Result<ColumnData> {
    if !matches!(req.dtype, Dtype::FixedString { .. } | Dtype::VlenString) {
        return fetch_values(backend, vpath, req, rows).map(ColumnData::Values);
    }
    let what = || format!("{vpath}:{}", req.object);
    let expected = rows.row_count().saturating_mul(req.values_per_row());
    let mut offsets = Vec::with_capacity(usize_of(expected)?.saturating_add(1));
    offsets.push(0);
    let mut bytes = Vec::new();
    for chunk in rows.chunks(MAX_SLICES) {
        if chunk.is_empty() {
            continue;
        }
        let spec = SliceSpec {
            runs: chunk.to_dim_selections(),
            rest: req.rest.clone(),
        };
        let data = backend.request_slice_typed(vpath, req.object, &spec, req.dtype)?;
        append_strings(&data, &mut offsets, &mut bytes, &what())?;
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
