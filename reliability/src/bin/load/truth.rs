//! The truth every answer is checked against: the served directory read once from disk,
//! before the load starts, through the file system (listings, downloads) and libhdf5 (groups,
//! links, attributes, dataset contents). The server reads the same files through its own
//! chunk decoder (gzip, shuffle, Fletcher-32) and its own encoder, so agreement is a check.

use std::path::Path;
use std::time::UNIX_EPOCH;

use hdf5_metno::types::{FixedAscii, FloatSize, IntSize, TypeDescriptor, VarLenUnicode};
use hdf5_metno::{Attribute, Dataset, Group, LinkType, LocationToken, LocationType};
use hdfstream_reliability::ToolError;

/// A fixed-size numeric element type: the client's one numeric-kind enum.
pub(crate) use hdfstream::remote::ElementKind as Kind;

/// The numeric kind libhdf5 describes as `d`, if it is one.
fn kind_of(d: &TypeDescriptor) -> Option<Kind> {
    Some(match d {
        TypeDescriptor::Integer(IntSize::U1) => Kind::I8,
        TypeDescriptor::Integer(IntSize::U2) => Kind::I16,
        TypeDescriptor::Integer(IntSize::U4) => Kind::I32,
        TypeDescriptor::Integer(IntSize::U8) => Kind::I64,
        TypeDescriptor::Unsigned(IntSize::U1) => Kind::U8,
        TypeDescriptor::Unsigned(IntSize::U2) => Kind::U16,
        TypeDescriptor::Unsigned(IntSize::U4) => Kind::U32,
        TypeDescriptor::Unsigned(IntSize::U8) => Kind::U64,
        TypeDescriptor::Float(FloatSize::U4) => Kind::F32,
        TypeDescriptor::Float(FloatSize::U8) => Kind::F64,
        _ => return None,
    })
}

/// Native-order bytes of a numeric dataset or attribute, read by libhdf5 as `kind`.
macro_rules! read_bytes {
    ($container:expr, $kind:expr) => {{
        fn raw<T: hdf5_metno::H5Type + bytemuck::Pod>(
            c: &hdf5_metno::Container,
        ) -> hdf5_metno::Result<Vec<u8>> {
            Ok(bytemuck::cast_slice(&c.read_raw::<T>()?).to_vec())
        }
        let c: &hdf5_metno::Container = $container;
        match $kind {
            Kind::I8 => raw::<i8>(c),
            Kind::I16 => raw::<i16>(c),
            Kind::I32 => raw::<i32>(c),
            Kind::I64 => raw::<i64>(c),
            Kind::U8 => raw::<u8>(c),
            Kind::U16 => raw::<u16>(c),
            Kind::U32 => raw::<u32>(c),
            Kind::U64 => raw::<u64>(c),
            Kind::F32 => raw::<f32>(c),
            Kind::F64 => raw::<f64>(c),
        }
    }};
}

/// An attribute's value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AttrTruth {
    /// Numbers: type, shape and native-order bytes.
    Numbers {
        kind: Kind,
        shape: Vec<u64>,
        bytes: Vec<u8>,
    },
    /// Strings (fixed ones without their NUL padding).
    Strings(Vec<String>),
    /// Another type: only its presence is checked.
    Other,
}

/// What a link of a group is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LinkTruth {
    Group,
    Dataset,
    /// A soft link and the object it resolves to (an index into [`FileTruth::objects`]).
    Soft(Option<usize>),
    Other,
}

/// A group: its links by name and its attributes by name.
#[derive(Clone, Debug)]
pub(crate) struct GroupTruth {
    pub(crate) path: String,
    pub(crate) links: Vec<(String, LinkTruth)>,
    pub(crate) attrs: Vec<(String, AttrTruth)>,
}

/// A dataset: shape, element type and contents when numeric.
#[derive(Clone, Debug)]
pub(crate) struct DatasetTruth {
    pub(crate) path: String,
    pub(crate) shape: Vec<u64>,
    /// The numeric element type, `None` for strings, compounds, booleans...
    pub(crate) kind: Option<Kind>,
    /// Native-order contents of a numeric dataset.
    pub(crate) data: Vec<u8>,
    pub(crate) attrs: Vec<(String, AttrTruth)>,
}

impl DatasetTruth {
    /// Whether the load reads slices of it: numeric with at least one row.
    pub(crate) fn sliceable(&self) -> bool {
        self.kind.is_some() && self.shape.first().is_some_and(|&n| n > 0)
    }
}

/// One HDF5 file of the served directory.
#[derive(Clone, Debug)]
pub(crate) struct FileTruth {
    /// Virtual path (the file name: the tool serves a flat directory).
    pub(crate) vpath: String,
    pub(crate) groups: Vec<GroupTruth>,
    pub(crate) datasets: Vec<DatasetTruth>,
    /// Every object's absolute path, for the targets of soft links.
    pub(crate) objects: Vec<String>,
}

impl FileTruth {
    /// The group at `path`.
    pub(crate) fn group(&self, path: &str) -> Option<&GroupTruth> {
        self.groups.iter().find(|g| g.path == path)
    }

    /// The dataset at `path`.
    pub(crate) fn dataset(&self, path: &str) -> Option<&DatasetTruth> {
        self.datasets.iter().find(|d| d.path == path)
    }
}

/// One file of the served directory as the file system sees it.
#[derive(Clone, Debug)]
pub(crate) struct EntryTruth {
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) mtime_ms: i64,
    /// The whole file, for downloads.
    pub(crate) bytes: Vec<u8>,
}

/// The table the scans read: a group over files, in row order.
#[derive(Clone, Debug)]
pub(crate) struct TableTruth {
    /// What the scan names: one file or a glob.
    pub(crate) path: String,
    pub(crate) group: String,
    /// Indexes into [`Truth::files`], in row order.
    pub(crate) files: Vec<usize>,
    /// Numeric columns present in every file (dataset names in the group).
    pub(crate) columns: Vec<String>,
}

/// Everything the load checks answers against.
#[derive(Clone, Debug)]
pub(crate) struct Truth {
    pub(crate) entries: Vec<EntryTruth>,
    pub(crate) files: Vec<FileTruth>,
    pub(crate) table: Option<TableTruth>,
}

fn h5err(what: &str) -> impl Fn(hdf5_metno::Error) -> ToolError + '_ {
    move |e| ToolError::new(format!("libhdf5 reading {what}: {e}"))
}

fn attr_truth(attr: &Attribute, what: &str) -> Result<AttrTruth, ToolError> {
    let desc = attr
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(h5err(what))?;
    if let Some(kind) = kind_of(&desc) {
        let bytes = read_bytes!(attr, kind).map_err(h5err(what))?;
        let shape = attr.shape().iter().map(|&n| n as u64).collect();
        return Ok(AttrTruth::Numbers { kind, shape, bytes });
    }
    let strings = match desc {
        TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii => attr
            .read_raw::<VarLenUnicode>()
            .map_err(h5err(what))?
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        TypeDescriptor::FixedAscii(n) | TypeDescriptor::FixedUnicode(n) if n <= 1024 => attr
            .read_raw::<FixedAscii<1024>>()
            .map_err(h5err(what))?
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        _ => return Ok(AttrTruth::Other),
    };
    Ok(AttrTruth::Strings(strings))
}

fn attrs_of(loc: &hdf5_metno::Location, what: &str) -> Result<Vec<(String, AttrTruth)>, ToolError> {
    let mut out = Vec::new();
    for name in loc.attr_names().map_err(h5err(what))? {
        let attr = loc.attr(&name).map_err(h5err(what))?;
        out.push((name.clone(), attr_truth(&attr, &format!("{what} @{name}"))?));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn dataset_truth(ds: &Dataset, path: &str) -> Result<DatasetTruth, ToolError> {
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(h5err(path))?;
    let kind = kind_of(&desc);
    let data = match kind {
        Some(k) => read_bytes!(ds, k).map_err(h5err(path))?,
        None => Vec::new(),
    };
    Ok(DatasetTruth {
        path: path.to_owned(),
        shape: ds.shape().iter().map(|&n| n as u64).collect(),
        kind,
        data,
        attrs: attrs_of(ds, path)?,
    })
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Reads `group` and everything below it into `file`; soft links are resolved afterwards.
fn walk(
    group: &Group,
    path: &str,
    file: &mut FileTruth,
    tokens: &mut Vec<(String, LocationToken)>,
    soft: &mut Vec<(usize, usize, LocationToken)>,
) -> Result<(), ToolError> {
    let mut names: Vec<(String, LinkType)> = Vec::new();
    group
        .iter_visit_default(|name, info| {
            names.push((name.to_owned(), info.link_type));
            Ok(())
        })
        .map_err(h5err(path))?;
    names.sort_by(|a, b| a.0.cmp(&b.0));
    let gi = file.groups.len();
    file.groups.push(GroupTruth {
        path: path.to_owned(),
        links: Vec::new(),
        attrs: attrs_of(group, path)?,
    });
    file.objects.push(path.to_owned());
    tokens.push((
        path.to_owned(),
        group.loc_info().map_err(h5err(path))?.token,
    ));
    let mut links = Vec::new();
    for (name, link_type) in names {
        let child = join(path, &name);
        let link = match link_type {
            LinkType::Soft => {
                // Resolved after the walk, from the target's token; a dangling link has
                // no target.
                if let Ok(info) = group.loc_info_by_name(&name) {
                    soft.push((gi, links.len(), info.token));
                }
                LinkTruth::Soft(None)
            }
            LinkType::External => LinkTruth::Other,
            LinkType::Hard => match group.loc_type_by_name(&name).map_err(h5err(&child))? {
                LocationType::Group => {
                    let g = group.group(&name).map_err(h5err(&child))?;
                    walk(&g, &child, file, tokens, soft)?;
                    LinkTruth::Group
                }
                LocationType::Dataset => {
                    let ds = group.dataset(&name).map_err(h5err(&child))?;
                    file.datasets.push(dataset_truth(&ds, &child)?);
                    file.objects.push(child.clone());
                    tokens.push((child.clone(), ds.loc_info().map_err(h5err(&child))?.token));
                    LinkTruth::Dataset
                }
                _ => LinkTruth::Other,
            },
        };
        links.push((name, link));
    }
    file.groups[gi].links = links;
    Ok(())
}

fn file_truth(path: &Path, vpath: &str) -> Result<FileTruth, ToolError> {
    let h5 = hdf5_metno::File::open(path).map_err(h5err(vpath))?;
    let mut file = FileTruth {
        vpath: vpath.to_owned(),
        groups: Vec::new(),
        datasets: Vec::new(),
        objects: Vec::new(),
    };
    let (mut tokens, mut soft) = (Vec::new(), Vec::new());
    walk(&h5, "/", &mut file, &mut tokens, &mut soft)?;
    for (gi, li, token) in soft {
        let target = tokens
            .iter()
            .find(|(_, t)| *t == token)
            .and_then(|(p, _)| file.objects.iter().position(|o| o == p));
        file.groups[gi].links[li].1 = LinkTruth::Soft(target);
    }
    Ok(file)
}

fn mtime_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// Reads the truth of the flat directory `dir`: every regular file, and every `.hdf5` file
/// through libhdf5. The scan table is the `PartType0` group of `snap_0000.*.hdf5` (or of
/// `snap_0000.hdf5` for a one-file sample), when present.
pub(crate) fn read(dir: &Path) -> Result<Truth, ToolError> {
    let listing = std::fs::read_dir(dir)
        .map_err(|e| ToolError::new(format!("cannot list {}: {e}", dir.display())))?;
    let mut entries = Vec::new();
    for item in listing {
        let item =
            item.map_err(|e| ToolError::new(format!("cannot list {}: {e}", dir.display())))?;
        let meta = item
            .metadata()
            .map_err(|e| ToolError::new(format!("cannot stat {}: {e}", item.path().display())))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if !meta.is_file() || name.starts_with('.') {
            continue;
        }
        let bytes = std::fs::read(item.path())
            .map_err(|e| ToolError::new(format!("cannot read {}: {e}", item.path().display())))?;
        entries.push(EntryTruth {
            name,
            size: meta.len(),
            mtime_ms: mtime_ms(&meta),
            bytes,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut files = Vec::new();
    for e in entries.iter().filter(|e| e.name.ends_with(".hdf5")) {
        files.push(file_truth(&dir.join(&e.name), &e.name)?);
    }
    if files.is_empty() {
        return Err(ToolError::new(format!(
            "{} holds no .hdf5 file to serve",
            dir.display()
        )));
    }
    let table = table_truth(&files);
    Ok(Truth {
        entries,
        files,
        table,
    })
}

fn table_truth(files: &[FileTruth]) -> Option<TableTruth> {
    let group = "/PartType0";
    let numbered = |f: &FileTruth| {
        f.vpath
            .strip_prefix("snap_0000.")
            .and_then(|r| r.strip_suffix(".hdf5"))
            .and_then(|n| n.parse::<u32>().ok())
    };
    let mut parts: Vec<(u32, usize)> = files
        .iter()
        .enumerate()
        .filter_map(|(i, f)| numbered(f).map(|n| (n, i)))
        .collect();
    parts.sort();
    let (path, members): (String, Vec<usize>) = if parts.is_empty() {
        let i = files.iter().position(|f| f.vpath == "snap_0000.hdf5")?;
        ("snap_0000.hdf5".into(), vec![i])
    } else {
        (
            "snap_0000.*.hdf5".into(),
            parts.into_iter().map(|(_, i)| i).collect(),
        )
    };
    let first = files.get(*members.first()?)?;
    let columns: Vec<String> = first
        .datasets
        .iter()
        .filter(|d| d.kind.is_some() && d.path.rsplit_once('/').map(|p| p.0) == Some(group))
        .filter(|d| {
            members.iter().all(|&m| {
                files[m]
                    .dataset(&d.path)
                    .is_some_and(|o| o.kind == d.kind && o.shape.get(1..) == d.shape.get(1..))
            })
        })
        .filter_map(|d| d.path.rsplit_once('/').map(|p| p.1.to_owned()))
        .collect();
    if columns.is_empty() {
        return None;
    }
    Some(TableTruth {
        path,
        group: group.into(),
        files: members,
        columns,
    })
}

/// The rows `runs` (start, count) of dimension 0 and the ranges `rest` of the other
/// dimensions of a C-order array of `shape` and `item`-byte elements, as packed bytes.
pub(crate) fn gather(
    data: &[u8],
    item: usize,
    shape: &[u64],
    runs: &[(u64, u64)],
    rest: &[(u64, u64)],
) -> Vec<u8> {
    // Strides in elements of each dimension.
    let mut strides = vec![1u64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let mut out = Vec::new();
    // The innermost selected range is contiguous; iterate over the others.
    let inner = rest.last().copied();
    let outer_rest = rest.len().saturating_sub(1);
    for &(start, count) in runs {
        for row in start..start + count {
            let mut idx = vec![0u64; outer_rest];
            'rows: loop {
                let mut at = row * strides[0];
                for (k, &i) in idx.iter().enumerate() {
                    at += (rest[k].0 + i) * strides[k + 1];
                }
                let (lo, n) = match inner {
                    Some((s, c)) => (at + s, c),
                    None => (at, 1),
                };
                let (a, b) = (lo as usize * item, (lo + n) as usize * item);
                out.extend_from_slice(&data[a..b]);
                // Next index of the outer rest dimensions (odometer).
                let mut k = outer_rest;
                loop {
                    if k == 0 {
                        break 'rows;
                    }
                    k -= 1;
                    idx[k] += 1;
                    if idx[k] < rest[k].1 {
                        break;
                    }
                    idx[k] = 0;
                }
            }
        }
    }
    out
}
