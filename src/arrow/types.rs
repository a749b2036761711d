//! Arrow types of HDF5 datasets, and assembly of fetched rows into Arrow arrays.
//!
//! Mapping (the same as the Polars connector's):
//!
//! | dataset | Arrow |
//! |---|---|
//! | `(N,)` integer / float | `Int8`…`UInt64`, `Float32`, `Float64` |
//! | `(N, k, …)` numeric | `FixedSizeList<…>` nested once per trailing dimension |
//! | `(N,)` of an HDF5 ARRAY type with numeric base | `FixedSizeList` per array dimension |
//! | fixed-length (`S<n>`) or variable-length strings | `Utf8`, trailing NUL padding stripped |
//! | 1-byte integers named in `with_boolean_columns` | `Boolean` (non-zero = true) |
//!
//! h5py stores booleans as an HDF5 enum over `i1`; the server sends only the base integer
//! (the enum names are lost on the wire, PROTOCOL.md §6), so booleans cannot be detected from
//! the protocol and the caller names them, exactly as with the Polars connector.
//! Compound, VLEN-of-T, half and long-double datasets are not supported.

use std::ops::Range;
use std::sync::Arc;

use ::arrow::array::{
    Array, ArrayRef, BooleanArray, FixedSizeListArray, PrimitiveArray, StringBuilder,
};
use ::arrow::buffer::ScalarBuffer;
use ::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, FieldRef, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use hdfstream_protocol::{DimSelection, Dtype, TypedBuffer};

use crate::remote::{Backend, ElementKind};
use crate::selection::RowRanges;
use crate::table::{ColumnData, ColumnRequest, PlanColumn, fetch_column};
use crate::{Error, Result};

/// How the values of one column are fetched and assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// Numbers streamed straight into the Arrow value buffer.
    Primitive(ElementKind),
    /// A 1-byte integer presented as booleans.
    Boolean(ElementKind),
    /// Fixed or variable-length strings.
    Utf8,
    /// An HDF5 ARRAY element type over numbers (arrives as packed bytes).
    ArrayOf(ElementKind),
}

/// The Arrow shape of one column: kind, trailing dimensions and its field.
#[derive(Debug, Clone)]
pub(crate) struct ColumnType {
    pub(crate) kind: ColumnKind,
    /// Dimensions after the row dimension (dataset dims, then ARRAY-type dims).
    pub(crate) inner_dims: Vec<usize>,
    /// The Arrow type of the whole column.
    pub(crate) data_type: DataType,
}

impl ColumnType {
    /// Number of base values per row.
    pub(crate) fn values_per_row(&self) -> usize {
        self.inner_dims.iter().product()
    }
}

/// Arrow type of a numeric element kind.
pub(crate) fn numeric_type(k: ElementKind) -> DataType {
    match k {
        ElementKind::I8 => DataType::Int8,
        ElementKind::I16 => DataType::Int16,
        ElementKind::I32 => DataType::Int32,
        ElementKind::I64 => DataType::Int64,
        ElementKind::U8 => DataType::UInt8,
        ElementKind::U16 => DataType::UInt16,
        ElementKind::U32 => DataType::UInt32,
        ElementKind::U64 => DataType::UInt64,
        ElementKind::F32 => DataType::Float32,
        ElementKind::F64 => DataType::Float64,
    }
}

/// The child field of the `FixedSizeList` types this module builds.
fn item_field(dt: DataType) -> FieldRef {
    Arc::new(Field::new("item", dt, false))
}

/// Wraps `base` in one `FixedSizeList` per dimension (outermost first in `dims`).
fn wrap_type(base: DataType, dims: &[usize]) -> Result<DataType> {
    let mut dt = base;
    for &d in dims.iter().rev() {
        let size = i32::try_from(d).map_err(|_| Error::TypeMismatch {
            expected: "a list size that fits in i32".to_string(),
            found: d.to_string(),
        })?;
        dt = DataType::FixedSizeList(item_field(dt), size);
    }
    Ok(dt)
}

/// Decides the column type of a dataset, or says why it cannot be a column.
///
/// `boolean` asks for a 1-byte integer dataset to be presented as booleans.
pub(crate) fn column_type(
    dtype: &Dtype,
    shape: &[u64],
    boolean: bool,
) -> std::result::Result<ColumnType, String> {
    if shape.is_empty() {
        return Err("it is a scalar dataset".to_string());
    }
    let mut inner_dims = Vec::with_capacity(shape.len());
    for &d in shape.get(1..).unwrap_or_default() {
        inner_dims.push(usize::try_from(d).map_err(|_| format!("dimension {d} is too large"))?);
    }
    let (kind, base) = match dtype {
        Dtype::FixedString { .. } | Dtype::VlenString => (ColumnKind::Utf8, DataType::Utf8),
        Dtype::Array { base, dims } => {
            let k = ElementKind::from_dtype(base)
                .ok_or_else(|| format!("array element type {base:?} is not numeric"))?;
            for &d in dims {
                inner_dims
                    .push(usize::try_from(d).map_err(|_| format!("dimension {d} is too large"))?);
            }
            (ColumnKind::ArrayOf(k), numeric_type(k))
        }
        other => {
            let k = ElementKind::from_dtype(other)
                .ok_or_else(|| format!("element type {other:?} has no Arrow mapping here"))?;
            if boolean {
                if !matches!(k, ElementKind::I8 | ElementKind::U8) {
                    return Err(format!(
                        "only 1-byte integers can be booleans, found {}",
                        k.name()
                    ));
                }
                (ColumnKind::Boolean(k), DataType::Boolean)
            } else {
                (ColumnKind::Primitive(k), numeric_type(k))
            }
        }
    };
    let data_type = wrap_type(base, &inner_dims).map_err(|e| e.to_string())?;
    Ok(ColumnType {
        kind,
        inner_dims,
        data_type,
    })
}

/// Wraps a flat values array into the column's nested `FixedSizeList`s.
fn wrap_values(values: ArrayRef, inner_dims: &[usize], rows: usize) -> Result<ArrayRef> {
    let mut arr = values;
    // Innermost first: the list length at level i is rows * product(dims[..i]).
    for (i, &d) in inner_dims.iter().enumerate().rev() {
        let len: usize = inner_dims
            .get(..i)
            .unwrap_or_default()
            .iter()
            .product::<usize>()
            * rows;
        let size = i32::try_from(d).map_err(|_| Error::TypeMismatch {
            expected: "a list size that fits in i32".to_string(),
            found: d.to_string(),
        })?;
        let field = item_field(arr.data_type().clone());
        let list =
            FixedSizeListArray::try_new_with_length(field, size, arr, None, len).map_err(|e| {
                Error::TypeMismatch {
                    expected: format!("{len} lists of {d}"),
                    found: e.to_string(),
                }
            })?;
        arr = Arc::new(list);
    }
    Ok(arr)
}

macro_rules! by_kind {
    ($k:expr, $f:ident, $($arg:expr),*) => {
        match $k {
            ElementKind::I8 => Arc::new($f::<Int8Type>($($arg),*)?) as ArrayRef,
            ElementKind::I16 => Arc::new($f::<Int16Type>($($arg),*)?) as ArrayRef,
            ElementKind::I32 => Arc::new($f::<Int32Type>($($arg),*)?) as ArrayRef,
            ElementKind::I64 => Arc::new($f::<Int64Type>($($arg),*)?) as ArrayRef,
            ElementKind::U8 => Arc::new($f::<UInt8Type>($($arg),*)?) as ArrayRef,
            ElementKind::U16 => Arc::new($f::<UInt16Type>($($arg),*)?) as ArrayRef,
            ElementKind::U32 => Arc::new($f::<UInt32Type>($($arg),*)?) as ArrayRef,
            ElementKind::U64 => Arc::new($f::<UInt64Type>($($arg),*)?) as ArrayRef,
            ElementKind::F32 => Arc::new($f::<Float32Type>($($arg),*)?) as ArrayRef,
            ElementKind::F64 => Arc::new($f::<Float64Type>($($arg),*)?) as ArrayRef,
        }
    };
}

/// Converts packed native bytes of ARRAY-type elements into typed values (one copy).
fn array_of<T>(bytes: &[u8], _n: usize) -> Result<PrimitiveArray<T>>
where
    T: ArrowPrimitiveType,
    T::Native: bytemuck::Pod,
{
    let size = std::mem::size_of::<T::Native>();
    if size == 0 || !bytes.len().is_multiple_of(size) {
        return Err(Error::TypeMismatch {
            expected: format!("a whole number of {size}-byte values"),
            found: format!("{} bytes", bytes.len()),
        });
    }
    let v: Vec<T::Native> = bytemuck::pod_collect_to_vec(bytes);
    Ok(PrimitiveArray::<T>::new(ScalarBuffer::from(v), None))
}

/// A `Utf8` array from the core's string offsets and bytes (invalid UTF-8 replaced).
fn string_array(offsets: &[usize], bytes: &[u8]) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(offsets.len().saturating_sub(1), bytes.len());
    for w in offsets.windows(2) {
        b.append_value(String::from_utf8_lossy(
            bytes.get(w[0]..w[1]).unwrap_or_default(),
        ));
    }
    Arc::new(b.finish())
}

/// Wraps the core's numeric vector as an Arrow array (no copy); `None` for other data.
fn primitive(buf: TypedBuffer) -> Option<ArrayRef> {
    fn wrap<T: ArrowPrimitiveType>(v: Vec<T::Native>) -> ArrayRef {
        Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::from(v), None))
    }
    Some(match buf {
        TypedBuffer::I8(v) => wrap::<Int8Type>(v),
        TypedBuffer::I16(v) => wrap::<Int16Type>(v),
        TypedBuffer::I32(v) => wrap::<Int32Type>(v),
        TypedBuffer::I64(v) => wrap::<Int64Type>(v),
        TypedBuffer::U8(v) => wrap::<UInt8Type>(v),
        TypedBuffer::U16(v) => wrap::<UInt16Type>(v),
        TypedBuffer::U32(v) => wrap::<UInt32Type>(v),
        TypedBuffer::U64(v) => wrap::<UInt64Type>(v),
        TypedBuffer::F32(v) => wrap::<Float32Type>(v),
        TypedBuffer::F64(v) => wrap::<Float64Type>(v),
        TypedBuffer::Bytes { .. } => return None,
    })
}

/// Reads the rows `ranges` (file-local, ascending, non-overlapping) of one column of the
/// file `vpath` through the table core's fetcher (one multi-slice request), as an Arrow
/// array of type `ct.data_type` with `rows` rows.
pub(crate) fn read_column(
    backend: &dyn Backend,
    vpath: &str,
    col: &PlanColumn<ColumnType>,
    ranges: &[Range<u64>],
    rows: usize,
) -> Result<ArrayRef> {
    let ct = &col.mapped;
    let what = || format!("{vpath}:{}", col.object);
    let n = rows
        .checked_mul(ct.values_per_row())
        .ok_or_else(|| Error::InvalidSelection {
            reason: format!("{rows} rows of {} overflow", what()),
        })?;
    let req = ColumnRequest {
        object: &col.object,
        dtype: &col.info.dtype,
        rest: col
            .info
            .shape
            .iter()
            .skip(1)
            .map(|&count| DimSelection { start: 0, count })
            .collect(),
    };
    let data = fetch_column(
        backend,
        vpath,
        &req,
        &RowRanges::from_ranges(ranges.iter().cloned()),
    )?;
    let mismatch = || Error::TypeMismatch {
        expected: format!("values of type {}", ct.data_type),
        found: format!("{:?} in {}", col.info.dtype, what()),
    };
    let values: ArrayRef = match (ct.kind, data) {
        (ColumnKind::Primitive(_), ColumnData::Values(buf)) => {
            primitive(buf).ok_or_else(mismatch)?
        }
        (ColumnKind::Boolean(_), ColumnData::Values(TypedBuffer::I8(v))) => {
            Arc::new(BooleanArray::new(v.iter().map(|&x| x != 0).collect(), None))
        }
        (ColumnKind::Boolean(_), ColumnData::Values(TypedBuffer::U8(v))) => {
            Arc::new(BooleanArray::new(v.iter().map(|&x| x != 0).collect(), None))
        }
        (ColumnKind::Utf8, ColumnData::Strings { offsets, bytes }) => {
            string_array(&offsets, &bytes)
        }
        (ColumnKind::ArrayOf(k), ColumnData::Values(buf)) => {
            by_kind!(k, array_of, buf.as_bytes(), n)
        }
        _ => return Err(mismatch()),
    };
    if values.len() != n {
        return Err(Error::UnexpectedResponse {
            url: what(),
            reason: format!("expected {n} values, assembled {}", values.len()),
        });
    }
    let arr = wrap_values(values, &ct.inner_dims, rows)?;
    debug_assert_eq!(arr.data_type(), &ct.data_type);
    Ok(arr)
}
