//! Writing array values as `.npy`, CSV and JSON.

use std::io::{self, Write};

use hdfstream_protocol::{ArrayData, Dtype, NdArray, TypedBuffer, VlenElement};

/// Output format of `hdfstream get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// JSON: `{"dtype", "shape", "values"}` with values flattened in C order.
    Json,
    /// NumPy `.npy` (version 1.0) with the dataset's dtype and the selection's shape.
    Npy,
    /// CSV: one line per row of the first dimension, remaining dimensions flattened.
    Csv,
}

/// Why a value cannot be written in the asked format.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FormatError {
    /// The output failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The type has no representation in that format.
    #[error("{0}")]
    Unsupported(String),
    /// The CSV writer failed.
    #[error(transparent)]
    Csv(#[from] csv::Error),
}

/// Writes `data` to `out` in `format`.
pub(crate) fn write_array(
    data: &ArrayData,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), FormatError> {
    match format {
        Format::Json => write_json(data, out),
        Format::Npy => match data {
            ArrayData::Nd(nd) => write_npy(nd, out),
            ArrayData::Vlen(_) => Err(FormatError::Unsupported(
                "variable-length data has no .npy representation; use --format json or csv".into(),
            )),
        },
        Format::Csv => write_csv(data, out),
    }
}

/// The numpy `descr` string of a fixed-size type, e.g. `<f8`, `|S10`, `|u1`, for data in
/// native order (`native`) or in the order `dtype` names.
fn npy_descr(dtype: &Dtype, native: bool) -> Result<String, FormatError> {
    let big = match (native, dtype.byte_order()) {
        (true, _) => cfg!(target_endian = "big"),
        (false, order) => order == Some(hdfstream_protocol::ByteOrder::Big),
    };
    let little = if big { '>' } else { '<' };
    Ok(match dtype {
        Dtype::Int { size: 1, .. } => "|i1".into(),
        Dtype::UInt { size: 1, .. } => "|u1".into(),
        Dtype::Int { size, .. } => format!("{little}i{size}"),
        Dtype::UInt { size, .. } => format!("{little}u{size}"),
        Dtype::Float { size, .. } if *size != 16 => format!("{little}f{size}"),
        Dtype::FixedString { len } => format!("|S{len}"),
        other => {
            return Err(FormatError::Unsupported(format!(
                "type {other} has no .npy representation here; use --format json"
            )));
        }
    })
}

/// Writes a `.npy` version 1.0 file: magic, padded header dict, raw native-order data.
pub(crate) fn write_npy(nd: &NdArray, out: &mut dyn Write) -> Result<(), FormatError> {
    write_npy_header(&nd.dtype, &nd.shape, true, out)?;
    out.write_all(nd.data.as_bytes())?;
    Ok(())
}

/// Writes the magic and header of a `.npy` version 1.0 file whose data follows in native
/// order (`native`) or in the byte order `dtype` names (a payload as the server sent it).
pub(crate) fn write_npy_header(
    dtype: &Dtype,
    shape: &[u64],
    native: bool,
    out: &mut dyn Write,
) -> Result<(), FormatError> {
    let descr = npy_descr(dtype, native)?;
    let shape = match shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", shape[0]),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces and ending in
    // a newline so that the data starts on a 64-byte boundary.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let len = u16::try_from(header.len())
        .map_err(|_| FormatError::Unsupported("shape too long for a .npy header".into()))?;
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    Ok(())
}

/// One element rendered as a JSON value.
fn json_scalars(nd: &NdArray) -> Result<Vec<serde_json::Value>, FormatError> {
    use serde_json::Value;
    fn nums<T: Copy + Into<serde_json::Number>>(v: &[T]) -> Vec<Value> {
        v.iter().map(|x| Value::Number((*x).into())).collect()
    }
    fn floats<T: Copy + Into<f64>>(v: &[T]) -> Vec<Value> {
        v.iter()
            .map(|x| serde_json::Number::from_f64((*x).into()).map_or(Value::Null, Value::Number))
            .collect()
    }
    Ok(match (&nd.data, &nd.dtype) {
        (TypedBuffer::I8(v), _) => nums(v),
        (TypedBuffer::I16(v), _) => nums(v),
        (TypedBuffer::I32(v), _) => nums(v),
        (TypedBuffer::I64(v), _) => nums(v),
        (TypedBuffer::U8(v), _) => nums(v),
        (TypedBuffer::U16(v), _) => nums(v),
        (TypedBuffer::U32(v), _) => nums(v),
        (TypedBuffer::U64(v), _) => nums(v),
        (TypedBuffer::F32(v), _) => floats(v),
        (TypedBuffer::F64(v), _) => floats(v),
        (TypedBuffer::Bytes { item_size, data }, Dtype::FixedString { .. }) if *item_size > 0 => {
            data.chunks_exact(*item_size)
                .map(|s| Value::String(fixed_string_text(s)))
                .collect()
        }
        (_, dtype) => {
            return Err(FormatError::Unsupported(format!(
                "type {dtype} cannot be shown as text; use --format npy"
            )));
        }
    })
}

/// A NUL-padded fixed string as text (lossy for non-UTF-8 bytes).
fn fixed_string_text(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Every element of `data` as a JSON value, flattened in C order.
fn json_values(data: &ArrayData) -> Result<Vec<serde_json::Value>, FormatError> {
    match data {
        ArrayData::Nd(nd) => json_scalars(nd),
        ArrayData::Vlen(v) => v
            .elements
            .iter()
            .map(|e| match e {
                VlenElement::String(s) => Ok(serde_json::Value::String(
                    String::from_utf8_lossy(s).into_owned(),
                )),
                VlenElement::Array(inner) => Ok(serde_json::Value::Array(json_values(inner)?)),
            })
            .collect(),
    }
}

fn shape_of(data: &ArrayData) -> &[u64] {
    match data {
        ArrayData::Nd(nd) => &nd.shape,
        ArrayData::Vlen(v) => &v.shape,
    }
}

fn dtype_name(data: &ArrayData) -> String {
    match data {
        ArrayData::Nd(nd) => nd.dtype.to_string(),
        ArrayData::Vlen(_) => "vlen".into(),
    }
}

fn write_json(data: &ArrayData, out: &mut dyn Write) -> Result<(), FormatError> {
    let doc = serde_json::json!({
        "dtype": dtype_name(data),
        "shape": shape_of(data),
        "values": json_values(data)?,
    });
    serde_json::to_writer(&mut *out, &doc).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes CSV through the `csv` crate, one record per row of the first dimension (the
/// other dimensions flattened), formatting each element straight from the typed buffer.
fn write_csv(data: &ArrayData, out: &mut dyn Write) -> Result<(), FormatError> {
    let shape = shape_of(data);
    let per_row = if shape.len() <= 1 {
        1
    } else {
        usize::try_from(shape[1..].iter().product::<u64>().max(1))
            .map_err(|_| FormatError::Unsupported("rows too wide for CSV".into()))?
    };
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    fn rows<T>(
        w: &mut csv::Writer<&mut dyn Write>,
        values: &[T],
        per_row: usize,
        cell: impl Fn(&T) -> String,
    ) -> Result<(), FormatError> {
        for row in values.chunks(per_row) {
            w.write_record(row.iter().map(&cell))?;
        }
        Ok(())
    }
    let float = |x: f64| format!("{x:?}");
    match data {
        ArrayData::Nd(nd) => match (&nd.data, &nd.dtype) {
            (TypedBuffer::I8(v), _) => rows(&mut w, v, per_row, i8::to_string)?,
            (TypedBuffer::I16(v), _) => rows(&mut w, v, per_row, i16::to_string)?,
            (TypedBuffer::I32(v), _) => rows(&mut w, v, per_row, i32::to_string)?,
            (TypedBuffer::I64(v), _) => rows(&mut w, v, per_row, i64::to_string)?,
            (TypedBuffer::U8(v), _) => rows(&mut w, v, per_row, u8::to_string)?,
            (TypedBuffer::U16(v), _) => rows(&mut w, v, per_row, u16::to_string)?,
            (TypedBuffer::U32(v), _) => rows(&mut w, v, per_row, u32::to_string)?,
            (TypedBuffer::U64(v), _) => rows(&mut w, v, per_row, u64::to_string)?,
            (TypedBuffer::F32(v), _) => rows(&mut w, v, per_row, |x| float(f64::from(*x)))?,
            (TypedBuffer::F64(v), _) => rows(&mut w, v, per_row, |x| float(*x))?,
            (TypedBuffer::Bytes { item_size, data }, Dtype::FixedString { .. })
                if *item_size > 0 =>
            {
                let strings: Vec<&[u8]> = data.chunks_exact(*item_size).collect();
                rows(&mut w, &strings, per_row, |s| fixed_string_text(s))?
            }
            (_, dtype) => {
                return Err(FormatError::Unsupported(format!(
                    "type {dtype} cannot be shown as text; use --format npy"
                )));
            }
        },
        ArrayData::Vlen(v) => {
            let mut cells = Vec::with_capacity(v.elements.len());
            for e in &v.elements {
                cells.push(match e {
                    VlenElement::String(s) => String::from_utf8_lossy(s).into_owned(),
                    // A variable-length array in one cell, as a JSON array.
                    VlenElement::Array(inner) => {
                        serde_json::Value::Array(json_values(inner)?).to_string()
                    }
                });
            }
            rows(&mut w, &cells, per_row, String::clone)?
        }
    }
    w.flush()?;
    Ok(())
}
