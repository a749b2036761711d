//! Shared helpers of the `polars_*` tests: a sample snapshot served by the embedded server,
//! and the truth (the same datasets read with libhdf5 through hdf5-metno) as DataFrames.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdf5_metno::types::{FloatSize, IntSize, TypeDescriptor, VarLenUnicode};
use hdfstream::remote::Backend;
use hdfstream_server::http::{RequestRecord, ServerHandle};
use hdfstream_server::sample::{SampleOptions, SampleSummary, write_sample};
use polars::prelude::*;

/// Embedded server over freshly generated sample data.
pub(crate) struct Served {
    /// Keeps the files alive.
    pub(crate) _dir: tempfile::TempDir,
    /// The server.
    pub(crate) server: ServerHandle,
    /// What the generator wrote.
    pub(crate) sample: SampleSummary,
    /// Directory holding the files.
    pub(crate) root: PathBuf,
}

impl Served {
    /// Generates `particles` gas particles over `files` files and serves them.
    pub(crate) fn sample(particles: u64, files: u32) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let sample = write_sample(
            &root,
            &SampleOptions {
                particles,
                files,
                seed: 11,
            },
        )
        .expect("sample");
        let server = ServerHandle::start(&root).expect("server");
        Served {
            _dir: dir,
            server,
            sample,
            root,
        }
    }

    /// Serves a directory whose files the caller writes with `write(dir)`.
    pub(crate) fn custom(write: impl FnOnce(&Path)) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        write(&root);
        let server = ServerHandle::start(&root).expect("server");
        let sample = SampleSummary {
            snapshot_files: Vec::new(),
            halo_file: root.join("none"),
            num_part_total: [0; 7],
            halos: 0,
            bytes: 0,
        };
        Served {
            _dir: dir,
            server,
            sample,
            root,
        }
    }

    /// `<base>/msgpack/<vpath>`.
    pub(crate) fn url(&self, vpath: &str) -> String {
        format!("{}/msgpack/{vpath}", self.server.base_url())
    }

    /// A client connection as backend.
    pub(crate) fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(
            hdfstream::ClientBuilder::new()
                .with_url(self.server.base_url())
                .with_retry(hdfstream::RetryConfig::none())
                .with_progress(false)
                .build()
                .expect("connect"),
        )
    }

    /// Slice requests served since the last clear.
    pub(crate) fn slices(&self) -> Vec<RequestRecord> {
        self.server
            .request_log()
            .into_iter()
            .filter(|r| r.slice_runs.is_some())
            .collect()
    }
}

/// The polars type libhdf5 says a dataset's elements have (independent of the connector).
pub(crate) fn h5_polars_type(ds: &hdf5_metno::Dataset, booleans: bool) -> Option<DataType> {
    let base = match ds.dtype().ok()?.to_descriptor().ok()? {
        TypeDescriptor::Integer(IntSize::U1) => DataType::Int8,
        TypeDescriptor::Integer(IntSize::U2) => DataType::Int16,
        TypeDescriptor::Integer(IntSize::U4) => DataType::Int32,
        TypeDescriptor::Integer(IntSize::U8) => DataType::Int64,
        TypeDescriptor::Unsigned(IntSize::U1) => DataType::UInt8,
        TypeDescriptor::Unsigned(IntSize::U2) => DataType::UInt16,
        TypeDescriptor::Unsigned(IntSize::U4) => DataType::UInt32,
        TypeDescriptor::Unsigned(IntSize::U8) => DataType::UInt64,
        TypeDescriptor::Float(FloatSize::U4) => DataType::Float32,
        TypeDescriptor::Float(FloatSize::U8) => DataType::Float64,
        TypeDescriptor::Boolean if booleans => DataType::Boolean,
        TypeDescriptor::Boolean => DataType::Int8,
        TypeDescriptor::FixedAscii(_)
        | TypeDescriptor::FixedUnicode(_)
        | TypeDescriptor::VarLenAscii
        | TypeDescriptor::VarLenUnicode => DataType::String,
        _ => return None,
    };
    match ds.shape().as_slice() {
        [_] => Some(base),
        [_, k] if base != DataType::String => Some(DataType::Array(Box::new(base), *k)),
        _ => None,
    }
}

/// Fixed-length strings read with libhdf5 (the widths the tests write), NUL padding stripped.
fn fixed_strings(ds: &hdf5_metno::Dataset) -> Vec<String> {
    let size = ds.dtype().expect("dtype").size();
    let n = ds.shape().first().copied().unwrap_or(0);
    let raw: Vec<u8> = {
        let mut buf = vec![0u8; size * n];
        match size {
            8 => {
                let v = ds
                    .read_raw::<hdf5_metno::types::FixedAscii<8>>()
                    .expect("read S8");
                for (i, s) in v.iter().enumerate() {
                    buf[i * 8..i * 8 + s.len()].copy_from_slice(s.as_bytes());
                }
            }
            16 => {
                let v = ds
                    .read_raw::<hdf5_metno::types::FixedAscii<16>>()
                    .expect("read S16");
                for (i, s) in v.iter().enumerate() {
                    buf[i * 16..i * 16 + s.len()].copy_from_slice(s.as_bytes());
                }
            }
            other => panic!("no test reader for fixed strings of width {other}"),
        }
        buf
    };
    raw.chunks(size)
        .map(|c| {
            let end = c.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            String::from_utf8(c[..end].to_vec()).expect("ascii")
        })
        .collect()
}

/// One dataset read with libhdf5 as a Series of `dtype`.
pub(crate) fn h5_series(ds: &hdf5_metno::Dataset, name: &str, dtype: &DataType) -> Series {
    let name: PlSmallStr = name.into();
    match dtype {
        DataType::Int8 => Series::new(name, ds.read_raw::<i8>().unwrap()),
        DataType::Int16 => Series::new(name, ds.read_raw::<i16>().unwrap()),
        DataType::Int32 => Series::new(name, ds.read_raw::<i32>().unwrap()),
        DataType::Int64 => Series::new(name, ds.read_raw::<i64>().unwrap()),
        DataType::UInt8 => Series::new(name, ds.read_raw::<u8>().unwrap()),
        DataType::UInt16 => Series::new(name, ds.read_raw::<u16>().unwrap()),
        DataType::UInt32 => Series::new(name, ds.read_raw::<u32>().unwrap()),
        DataType::UInt64 => Series::new(name, ds.read_raw::<u64>().unwrap()),
        DataType::Float32 => Series::new(name, ds.read_raw::<f32>().unwrap()),
        DataType::Float64 => Series::new(name, ds.read_raw::<f64>().unwrap()),
        DataType::Boolean => Series::new(name, ds.read_raw::<bool>().unwrap()),
        DataType::String => {
            let v: Vec<String> = match ds.dtype().unwrap().to_descriptor().unwrap() {
                TypeDescriptor::VarLenUnicode => ds
                    .read_raw::<VarLenUnicode>()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .collect(),
                _ => fixed_strings(ds),
            };
            Series::new(name, v)
        }
        DataType::Array(inner, k) => {
            let flat = h5_series(ds, "", inner);
            let rows = flat.len() / k.max(&1);
            ArrayChunked::from_aligned_values(name, inner, *k, flat.chunks().clone(), rows)
                .into_series()
        }
        other => panic!("no truth reader for {other:?}"),
    }
}

/// The table libhdf5 sees: `row_index` (u64 from 0) and the named columns of `group`,
/// concatenated over `files`; column types from `schema`.
pub(crate) fn truth(
    files: &[PathBuf],
    group: &str,
    schema: &Schema,
    row_index: Option<&str>,
) -> DataFrame {
    let mut cols: Vec<Column> = Vec::new();
    let mut total = 0usize;
    let handles: Vec<hdf5_metno::Group> = files
        .iter()
        .map(|p| hdf5_metno::File::open(p).unwrap().group(group).unwrap())
        .collect();
    for (name, dtype) in schema.iter() {
        if Some(name.as_str()) == row_index {
            continue;
        }
        let mut s: Option<Series> = None;
        for g in &handles {
            let part = h5_series(&g.dataset(name).unwrap(), name, dtype);
            match &mut s {
                None => s = Some(part),
                Some(acc) => {
                    acc.append(&part).unwrap();
                }
            }
        }
        let s = s.unwrap();
        total = s.len();
        cols.push(s.into_column());
    }
    if let Some(ri) = row_index {
        if cols.is_empty() {
            total = handles
                .iter()
                .map(|g| {
                    let n = g.member_names().unwrap();
                    g.dataset(&n[0]).unwrap().shape()[0]
                })
                .sum();
        }
        let idx: Vec<u64> = (0..total as u64).collect();
        cols.insert(0, Series::new(ri.into(), idx).into_column());
    }
    DataFrame::new_infer_height(cols).unwrap()
}

/// Asserts two frames are identical: names, types, values.
#[track_caller]
pub(crate) fn assert_same(got: &DataFrame, want: &DataFrame, what: &str) {
    assert_eq!(got.schema(), want.schema(), "{what}: schema");
    assert_eq!(got.height(), want.height(), "{what}: height");
    assert!(
        got.equals_missing(want),
        "{what}: values differ\n got: {got}\nwant: {want}"
    );
}
