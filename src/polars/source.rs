//! Where a scan reads from: URL forms, remote globs, and the table layout (files, row counts,
//! columns) built from metadata only.

use std::sync::Arc;

use hdfstream_protocol::{Attributes, DatasetInfo, Dtype, Member};
use polars::prelude::*;

use super::args::{MultiColumn, OnUnsupported, ScanArgsHdfstream};
use super::fetch::run_parallel;
use super::to_polars;
use crate::remote::{Backend, ElementKind};

/// Server and path a scan URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    /// Server base URL or alias.
    pub(crate) server: String,
    /// Virtual path of the file, or a glob over the files of a directory.
    pub(crate) path: String,
}

fn invalid(msg: String) -> PolarsError {
    PolarsError::InvalidOperation(msg.into())
}

/// Decodes `%XX` escapes of a URL path (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Splits a scan URL into server and path. The accepted forms:
///
/// * `http(s)://host/base/msgpack/<path>`: the endpoint URL of a file (or glob);
/// * `http(s)://host/base` with the path in [`ScanArgsHdfstream::file`];
/// * `alias:<path>`, or `alias` with the path in [`ScanArgsHdfstream::file`].
pub(crate) fn parse_location(url: &str, file: Option<&str>) -> PolarsResult<Location> {
    let file = file
        .map(|f| f.trim_start_matches('/'))
        .filter(|f| !f.is_empty());
    let is_http = url.starts_with("http://") || url.starts_with("https://");
    let (server, path) = if is_http {
        match url.split_once("/msgpack/") {
            Some((base, p)) => (base.to_owned(), percent_decode(p.trim_start_matches('/'))),
            None => (url.trim_end_matches('/').to_owned(), String::new()),
        }
    } else {
        match url.split_once(':') {
            Some((alias, p)) => (alias.to_owned(), p.trim_start_matches('/').to_owned()),
            None => (url.to_owned(), String::new()),
        }
    };
    if server.is_empty() {
        return Err(invalid(format!("no server in scan URL `{url}`")));
    }
    let path = match (path.is_empty(), file) {
        (false, Some(f)) => {
            return Err(invalid(format!(
                "ambiguous scan: `{url}` already names the file `{path}`, and \
                 ScanArgsHdfstream::file names `{f}`; give the file in only one place"
            )));
        }
        (false, None) => path,
        (true, Some(f)) => f.to_owned(),
        (true, None) => {
            return Err(invalid(format!(
                "`{url}` names a server but no file: use `<server>/msgpack/<file path>`, \
                 `alias:<file path>`, or set ScanArgsHdfstream::file"
            )));
        }
    };
    Ok(Location { server, path })
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
            16,
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

/// Deepest subgroup nesting a recursive scan descends into.
const MAX_NESTING: usize = 64;

/// The datasets (path relative to the scanned group, info) of the group `group` of `vpath`,
/// in member order; with `recursive`, datasets of nested subgroups follow depth-first, each
/// right where its subgroup is listed. Soft links are never followed.
fn group_datasets(
    backend: &dyn Backend,
    vpath: &str,
    group: &str,
    recursive: bool,
) -> PolarsResult<Vec<(String, DatasetInfo)>> {
    let mut out = Vec::new();
    collect_datasets(backend, vpath, group, "", recursive, &mut out)?;
    Ok(out)
}

/// Appends the datasets of `group` (requested at depth 0) under the name prefix `prefix`.
fn collect_datasets(
    backend: &dyn Backend,
    vpath: &str,
    group: &str,
    prefix: &str,
    recursive: bool,
    out: &mut Vec<(String, DatasetInfo)>,
) -> PolarsResult<()> {
    let member = backend
        .request_object(vpath, group, 0, 0)
        .map_err(|e| to_polars(e, &format!("{vpath}:{group}")))?;
    let Member::Group(g) = member else {
        return Err(PolarsError::InvalidOperation(
            format!("`{group}` in `{vpath}` is not a group").into(),
        ));
    };
    if prefix.matches('/').count() > MAX_NESTING {
        // Hard links can make a group its own descendant; the wire carries no object identity.
        return Err(PolarsError::ComputeError(
            format!(
                "{vpath}:{group}: subgroups nested more than {MAX_NESTING} levels deep \
                 (a hard-link cycle?)"
            )
            .into(),
        ));
    }
    for (name, m) in g.members {
        let rel = format!("{prefix}{name}");
        match m {
            Some(Member::Dataset(d)) => out.push((rel, d)),
            Some(Member::SoftLink { target }) => {
                tracing::debug!(name = rel, target, "soft link in scanned group left out")
            }
            // At depth 0 every member but a subgroup is described, so `None` is a subgroup.
            None | Some(Member::Group(_)) if recursive => {
                let sub = format!("{}/{name}", group.trim_end_matches('/'));
                collect_datasets(backend, vpath, &sub, &format!("{rel}/"), recursive, out)?;
            }
            _ => tracing::debug!(name = rel, "non-dataset member of scanned group left out"),
        }
    }
    Ok(())
}

/// The row count of a group: the most common first dimension (ties: the first seen).
fn row_count(datasets: &[(String, DatasetInfo)]) -> u64 {
    let mut counts: Vec<(u64, usize)> = Vec::new();
    for (_, d) in datasets {
        if let Some(&n) = d.shape.first() {
            match counts.iter_mut().find(|(v, _)| *v == n) {
                Some(c) => c.1 += 1,
                None => counts.push((n, 1)),
            }
        }
    }
    let mut best: Option<(u64, usize)> = None;
    for c in counts {
        if best.is_none_or(|b| c.1 > b.1) {
            best = Some(c);
        }
    }
    best.map_or(0, |b| b.0)
}

/// Normalises a group path to an absolute HDF5 path.
pub(crate) fn group_path(group: &str) -> String {
    let g = group.trim_matches('/');
    if g.is_empty() {
        "/".to_owned()
    } else {
        format!("/{g}")
    }
}

/// Loads the group of every file (concurrently) and builds the table.
pub(crate) fn load_table(
    backend: &Arc<dyn Backend>,
    files: Vec<String>,
    group: &str,
    args: &ScanArgsHdfstream,
) -> PolarsResult<Table> {
    let group = group_path(group);
    let metas = run_parallel(files.len(), args.concurrency, |i| {
        let vpath = files.get(i).map(String::as_str).unwrap_or_default();
        group_datasets(backend.as_ref(), vpath, &group, args.recursive)
    })?;
    let Some(first) = metas.first() else {
        return Err(PolarsError::NoData("no file to scan".into()));
    };
    // The row count comes from the group's own datasets; nested ones only when it has none.
    let top: Vec<(String, DatasetInfo)> = first
        .iter()
        .filter(|(n, _)| !n.contains('/'))
        .cloned()
        .collect();
    let n0 = if top.is_empty() {
        row_count(first)
    } else {
        row_count(&top)
    };
    let prefix = format!("{}/", group.trim_end_matches('/'));
    let mut columns = Vec::new();
    for (name, d) in first {
        let object = format!("{}/{name}", group.trim_end_matches('/'));
        let verdict = if d.shape.first() != Some(&n0) {
            Err(format!("its first dimension is not the row count {n0}"))
        } else {
            dataset_columns(name, &object, d, args)
        };
        match verdict {
            Ok(cols) => columns.extend(cols),
            Err(why) => match args.on_unsupported {
                OnUnsupported::Skip => {
                    tracing::warn!(
                        dataset = object,
                        reason = why,
                        "dataset left out of the table"
                    )
                }
                OnUnsupported::Error => {
                    return Err(PolarsError::SchemaMismatch(
                        format!("dataset {object} cannot be a column: {why}").into(),
                    ));
                }
            },
        }
    }
    let mut parts = Vec::with_capacity(files.len());
    let mut offset = 0u64;
    for (vpath, datasets) in files.into_iter().zip(&metas) {
        let mut rows: Option<u64> = None;
        for c in &columns {
            let name = c.object.strip_prefix(&prefix).unwrap_or(&c.object);
            let found = datasets.iter().find(|(n, _)| n == name).map(|(_, d)| d);
            let Some(d) = found else {
                return Err(PolarsError::SchemaMismatch(
                    format!("{vpath}: dataset {} is missing", c.object).into(),
                ));
            };
            if d.dtype != c.dtype || d.shape.get(1..) != first_shape_tail(first, name) {
                return Err(PolarsError::SchemaMismatch(
                    format!(
                        "{vpath}: dataset {} differs in type or shape from the first file",
                        c.object
                    )
                    .into(),
                ));
            }
            let n = d.shape.first().copied().unwrap_or(0);
            match rows {
                None => rows = Some(n),
                Some(r) if r != n => {
                    return Err(PolarsError::SchemaMismatch(
                        format!("{vpath}: dataset {} has {n} rows, others {r}", c.object).into(),
                    ));
                }
                Some(_) => {}
            }
        }
        let rows = rows.unwrap_or(0);
        parts.push(FilePart {
            vpath,
            rows,
            offset,
        });
        offset = offset
            .checked_add(rows)
            .ok_or_else(|| PolarsError::ComputeError("total row count overflows u64".into()))?;
    }
    Ok(Table {
        files: parts,
        columns,
        group,
    })
}

fn first_shape_tail<'a>(first: &'a [(String, DatasetInfo)], name: &str) -> Option<&'a [u64]> {
    first
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, d)| d.shape.get(1..))
}
