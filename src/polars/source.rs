//! Where a scan reads from: URL forms, remote globs, and the table layout (files, row counts,
//! columns) built from metadata only.

use std::sync::Arc;

use hdfstream_protocol::{Attributes, DatasetInfo, Dtype};
use polars::prelude::*;

use super::args::{MultiColumn, ScanArgsHdfstream};
use super::to_polars;
use crate::remote::{Backend, ElementKind};
use crate::table::{Location, PlanOptions, TablePlan, VLEN_STRING_BYTES, group_path};

/// Splits a scan URL into server and path (see [`crate::table::parse_location`]).
pub(crate) fn parse_location(url: &str, file: Option<&str>) -> PolarsResult<Location> {
    crate::table::parse_location(url, file).map_err(|e| to_polars(e, "reading the scan URL"))
}

pub(crate) use crate::remote::glob::is_glob;

/// Expands a glob over the files of one remote directory, in natural order.
pub(crate) fn expand_glob(backend: &dyn Backend, path: &str) -> PolarsResult<Vec<String>> {
    crate::remote::glob::expand_files(backend, path)
        .map_err(|e| to_polars(e, "expanding the file glob"))
}

/// How the values of a column are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Values {
    /// Fixed-size numbers of this kind.
    Numeric(ElementKind),
    /// Integers shown as booleans (non-zero = true).
    Boolean(ElementKind),
    /// Fixed or variable-length strings.
    Str,
}

/// Which part of each dataset row a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A 1-D dataset: one value per row.
    Scalar,
    /// An `(N, k)` dataset as `Array(_, k)`.
    Array(u64),
    /// Column `j` of an `(N, k)` dataset.
    Split(u64),
}

/// One column of the table.
#[derive(Debug, Clone)]
pub(crate) struct ColumnSpec {
    /// Column name.
    pub(crate) name: PlSmallStr,
    /// Absolute HDF5 path of the dataset.
    pub(crate) object: String,
    /// Wire element type.
    pub(crate) dtype: Dtype,
    /// Value decoding.
    pub(crate) values: Values,
    /// Row layout.
    pub(crate) shape: Shape,
    /// Polars type of the column.
    pub(crate) polars: DataType,
    /// Bytes one row of this column costs on the wire (strings: their declared or a guessed size).
    pub(crate) row_bytes: u64,
    /// HDF5 attributes of the dataset (first file).
    pub(crate) attrs: Attributes,
}

/// One file of the table.
#[derive(Debug, Clone)]
pub(crate) struct FilePart {
    /// Virtual path on the server.
    pub(crate) vpath: String,
    /// Rows in this file.
    pub(crate) rows: u64,
    /// Global index of its first row.
    pub(crate) offset: u64,
}

/// Everything a scan needs, from metadata only.
#[derive(Debug)]
pub(crate) struct Table {
    /// Files in table order.
    pub(crate) files: Vec<FilePart>,
    /// Columns in server member order.
    pub(crate) columns: Vec<ColumnSpec>,
    /// Absolute path of the group.
    pub(crate) group: String,
}

fn polars_numeric(k: ElementKind) -> DataType {
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

/// The columns one dataset becomes, or why it cannot be one.
fn dataset_columns(
    name: &str,
    object: &str,
    d: &DatasetInfo,
    args: &ScanArgsHdfstream,
) -> Result<Vec<ColumnSpec>, String> {
    let col =
        |name: PlSmallStr, values: Values, shape: Shape, polars: DataType, row_bytes| ColumnSpec {
            name,
            object: object.to_owned(),
            dtype: d.dtype.clone(),
            values,
            shape,
            polars,
            row_bytes,
            attrs: d.attributes.clone(),
        };
    let as_bool = args.boolean_columns.iter().any(|b| b == name);
    match (&d.dtype, d.shape.len()) {
        (Dtype::FixedString { len }, 1) => Ok(vec![col(
            name.into(),
            Values::Str,
            Shape::Scalar,
            DataType::String,
            *len as u64,
        )]),
        (Dtype::VlenString, 1) => Ok(vec![col(
            name.into(),
            Values::Str,
            Shape::Scalar,
            DataType::String,
            VLEN_STRING_BYTES,
        )]),
        (dtype, rank @ (1 | 2)) => {
            let Some(kind) = ElementKind::from_dtype(dtype) else {
                return Err(format!("element type {dtype:?} has no column type"));
            };
            let is_int = !matches!(kind, ElementKind::F32 | ElementKind::F64);
            let (values, base) = if as_bool {
                if !is_int {
                    return Err("only integer datasets can be read as Boolean".to_owned());
                }
                (Values::Boolean(kind), DataType::Boolean)
            } else {
                (Values::Numeric(kind), polars_numeric(kind))
            };
            let size = kind.size() as u64;
            if rank == 1 {
                return Ok(vec![col(name.into(), values, Shape::Scalar, base, size)]);
            }
            let k = d.shape.get(1).copied().unwrap_or(0);
            match args.multi_column {
                MultiColumn::Array => {
                    let width = usize::try_from(k).map_err(|_| format!("{k} columns"))?;
                    Ok(vec![col(
                        name.into(),
                        values,
                        Shape::Array(k),
                        DataType::Array(Box::new(base), width),
                        size * k,
                    )])
                }
                MultiColumn::Split => Ok((0..k)
                    .map(|j| {
                        col(
                            format!("{name}_{j}").into(),
                            values,
                            Shape::Split(j),
                            base.clone(),
                            size,
                        )
                    })
                    .collect()),
            }
        }
        (_, 0) => Err("scalar dataset".to_owned()),
        (dtype, rank) => Err(format!("{rank}-D dataset of {dtype:?}")),
    }
}

/// Loads the group of every file (concurrently) and builds the table from the core's plan.
pub(crate) fn load_table(
    backend: &Arc<dyn Backend>,
    files: Vec<String>,
    group: &str,
    args: &ScanArgsHdfstream,
) -> PolarsResult<Table> {
    if files.is_empty() {
        return Err(PolarsError::NoData("no file to scan".into()));
    }
    let opts = PlanOptions {
        columns: None,
        recursive: args.recursive,
        on_unsupported: args.on_unsupported,
        concurrency: args.concurrency,
    };
    let group = group_path(group);
    let plan = TablePlan::load(backend.as_ref(), &files, &group, &opts, |name, d| {
        let object = format!("{}/{name}", group.trim_end_matches('/'));
        dataset_columns(name, &object, d, args)
    })
    .map_err(|e| to_polars(e, &format!("planning the table of {group}")))?;
    let (offsets, _) = plan
        .offsets()
        .map_err(|e| to_polars(e, "planning the table"))?;
    let parts = plan
        .files
        .into_iter()
        .zip(offsets)
        .map(|(f, offset)| FilePart {
            vpath: f.vpath,
            rows: f.rows,
            offset,
        })
        .collect();
    Ok(Table {
        files: parts,
        columns: plan.columns.into_iter().flat_map(|c| c.mapped).collect(),
        group: plan.group,
    })
}
