//! Shared set-up of the Arrow / Parquet tests: a generated sample served by the embedded
//! server, and comparisons of Arrow columns with libhdf5 (hdf5-metno) reads.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, SchemaRef, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use hdf5_metno::H5Type;
use hdfstream::arrow::GroupReaderBuilder;
use hdfstream::remote::Backend;
use hdfstream::{Connection, OpenOptions, RowRanges};
use hdfstream_server::http::ServerHandle;
use hdfstream_server::sample::{SampleOptions, SampleSummary, write_sample};

/// A sample snapshot in a temporary directory, served on loopback.
pub(crate) struct Sample {
    pub(crate) server: ServerHandle,
    pub(crate) summary: SampleSummary,
    pub(crate) dir: tempfile::TempDir,
    backend: Arc<dyn Backend>,
}

impl Sample {
    /// `particles` gas particles over `files` files (seed 7).
    pub(crate) fn new(particles: u64, files: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let summary = write_sample(
            dir.path(),
            &SampleOptions {
                particles,
                files,
                seed: 7,
            },
        )
        .unwrap();
        let server = ServerHandle::start(dir.path()).unwrap();
        let backend: Arc<dyn Backend> = Arc::new(Connection::open(server.base_url()).unwrap());
        Self {
            server,
            summary,
            dir,
            backend,
        }
    }

    /// The connection to the server.
    pub(crate) fn backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }

    /// A builder that never uses inline data (every value comes from a slice request).
    pub(crate) fn builder(&self, file_or_glob: &str, group: &str) -> GroupReaderBuilder {
        let opts = OpenOptions::default().data_size_limit(0);
        GroupReaderBuilder::open_with(self.backend(), file_or_glob, group, opts).unwrap()
    }

    /// A builder with the default options (small datasets arrive inline with the metadata).
    pub(crate) fn builder_inline(&self, file_or_glob: &str, group: &str) -> GroupReaderBuilder {
        GroupReaderBuilder::open_with(self.backend(), file_or_glob, group, OpenOptions::default())
            .unwrap()
    }

    /// The snapshot files in order.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        self.summary.snapshot_files.clone()
    }

    /// Rows of `group` in each file according to libhdf5 (first dim of `ParticleIDs`).
    pub(crate) fn rows_per_file(&self, group: &str) -> Vec<u64> {
        self.files()
            .iter()
            .map(|f| {
                let f = hdf5_metno::File::open(f).unwrap();
                f.dataset(&format!("{group}/ParticleIDs")).unwrap().shape()[0] as u64
            })
            .collect()
    }
}

/// All batches as one.
pub(crate) fn collect(schema: &SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(schema, batches).unwrap()
}

/// The primitive (or boolean / string) values below any `FixedSizeList` nesting.
pub(crate) fn leaf(arr: &ArrayRef) -> ArrayRef {
    match arr.data_type() {
        DataType::FixedSizeList(_, _) => {
            let l = arr.as_fixed_size_list();
            let size = l.value_length() as usize;
            leaf(&l.values().slice(l.offset() * size, l.len() * size))
        }
        _ => Arc::clone(arr),
    }
}

/// `group/name` read from every file with libhdf5, concatenated; and values per row.
fn h5_values<T: H5Type>(files: &[PathBuf], group: &str, name: &str) -> (Vec<T>, usize) {
    let mut out = Vec::new();
    let mut per_row = 1;
    for f in files {
        let f = hdf5_metno::File::open(f).unwrap();
        let ds = f.dataset(&format!("{group}/{name}")).unwrap();
        per_row = ds.shape().iter().skip(1).product();
        out.extend(ds.read_raw::<T>().unwrap());
    }
    (out, per_row)
}

/// The rows of `sel` (or all) of a flat row-major vector.
fn select<T: Clone>(values: Vec<T>, per_row: usize, sel: Option<&RowRanges>) -> Vec<T> {
    match sel {
        None => values,
        Some(s) => s
            .iter()
            .flat_map(|r| values[r.start as usize * per_row..r.end as usize * per_row].to_vec())
            .collect(),
    }
}

fn compare<T>(files: &[PathBuf], group: &str, name: &str, got: &ArrayRef, sel: Option<&RowRanges>)
where
    T: ArrowPrimitiveType,
    T::Native: H5Type + PartialEq + std::fmt::Debug,
{
    let (want, per_row) = h5_values::<T::Native>(files, group, name);
    let want = select(want, per_row, sel);
    let got = got.as_primitive::<T>().values().to_vec();
    assert_eq!(got.len(), want.len(), "{name}: value count");
    assert!(got == want, "{name}: values differ from libhdf5");
}

/// Asserts that an Arrow column holds exactly what libhdf5 reads from `group/name`.
pub(crate) fn assert_column_matches(
    files: &[PathBuf],
    group: &str,
    name: &str,
    column: &ArrayRef,
    sel: Option<&RowRanges>,
) {
    let values = leaf(column);
    match values.data_type() {
        DataType::Int8 => compare::<Int8Type>(files, group, name, &values, sel),
        DataType::Int16 => compare::<Int16Type>(files, group, name, &values, sel),
        DataType::Int32 => compare::<Int32Type>(files, group, name, &values, sel),
        DataType::Int64 => compare::<Int64Type>(files, group, name, &values, sel),
        DataType::UInt8 => compare::<UInt8Type>(files, group, name, &values, sel),
        DataType::UInt16 => compare::<UInt16Type>(files, group, name, &values, sel),
        DataType::UInt32 => compare::<UInt32Type>(files, group, name, &values, sel),
        DataType::UInt64 => compare::<UInt64Type>(files, group, name, &values, sel),
        DataType::Float32 => compare::<Float32Type>(files, group, name, &values, sel),
        DataType::Float64 => compare::<Float64Type>(files, group, name, &values, sel),
        DataType::Boolean => {
            let (want, per_row) = h5_values::<bool>(files, group, name);
            let want = select(want, per_row, sel);
            let got: Vec<bool> = values.as_boolean().iter().map(|v| v.unwrap()).collect();
            assert_eq!(got, want, "{name}: booleans differ from libhdf5");
            assert!(
                got.iter().any(|&b| b) && got.iter().any(|&b| !b),
                "{name}: both values occur"
            );
        }
        other => panic!("{name}: no comparison for {other}"),
    }
}

/// A numeric attribute as `f64` (scalar or first element).
pub(crate) fn h5_attr_f64(ds: &hdf5_metno::Dataset, name: &str) -> f64 {
    ds.attr(name).unwrap().read_raw::<f64>().unwrap()[0]
}
