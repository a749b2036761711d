//! The Python classes: `Table` (an opened remote table), `Reader` (the batches of one scan
//! or stream) and `Batch` (one record batch), with Arrow PyCapsules for zero-copy hand-over.

use std::sync::{Mutex, MutexGuard};

use arrow::array::{Array, RecordBatch, StructArray};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ffi::FFI_ArrowSchema;
use arrow::ffi_stream::FFI_ArrowArrayStream;
use hdfstream::Error;
use hdfstream::arrow::GroupRecordBatchReader;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

use crate::predicate::{Pred, parse_json};
use crate::source::{Axis, OpenArgs, Source};

create_exception!(
    polars_hdfstream,
    HdfstreamError,
    PyException,
    "An error of the hdfstream client or server (the message says which request failed)."
);
create_exception!(
    polars_hdfstream,
    NotFoundError,
    HdfstreamError,
    "A file, group or dataset that does not exist or is not visible to the caller."
);
create_exception!(
    polars_hdfstream,
    AuthenticationError,
    HdfstreamError,
    "Wrong or missing credentials, or access refused (HTTP 401/403)."
);

/// The Python exception for a client error.
fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::NotFound { .. } | Error::InvalidPath { .. } => NotFoundError::new_err(msg),
        Error::Unauthorized { .. } => AuthenticationError::new_err(msg),
        Error::Server { status: 403, .. } | Error::Http { status: 403, .. } => {
            AuthenticationError::new_err(msg)
        }
        Error::Config { .. } | Error::InvalidSelection { .. } => PyValueError::new_err(msg),
        _ => HdfstreamError::new_err(msg),
    }
}

/// The Python exception for an error of a batch reader.
fn arrow_to_py(e: ArrowError) -> PyErr {
    match e {
        ArrowError::ExternalError(inner) => match inner.downcast::<Error>() {
            Ok(e) => to_py(*e),
            Err(other) => HdfstreamError::new_err(other.to_string()),
        },
        other => HdfstreamError::new_err(other.to_string()),
    }
}

fn schema_capsule<'py>(py: Python<'py>, schema: &SchemaRef) -> PyResult<Bound<'py, PyCapsule>> {
    let ffi = FFI_ArrowSchema::try_from(schema.as_ref()).map_err(arrow_to_py)?;
    PyCapsule::new_with_value(py, ffi, c"arrow_schema")
}

/// Parses a predicate's JSON, if one was given.
fn parse_predicate(json: Option<&str>) -> Option<Pred> {
    json.map(parse_json)
}

/// A remote group (one file or a glob of files) opened as a table.
#[pyclass(frozen, module = "polars_hdfstream._lib", name = "Table")]
pub struct Table {
    src: Source,
}

#[pymethods]
impl Table {
    /// Connects and opens the group (metadata only); see `polars_hdfstream.open_table`.
    #[new]
    #[pyo3(signature = (url, group, *, file=None, region=None, row_index=None,
        include_file_paths=None, batch_size=None, concurrency=4, user=None, password=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: String,
        group: String,
        file: Option<String>,
        region: Option<Vec<Vec<Axis>>>,
        row_index: Option<String>,
        include_file_paths: Option<String>,
        batch_size: Option<usize>,
        concurrency: usize,
        user: Option<String>,
        password: Option<String>,
    ) -> PyResult<Self> {
        let args = OpenArgs {
            url,
            file,
            group,
            region,
            row_index,
            file_paths: include_file_paths,
            batch_size,
            concurrency,
            user,
            password,
        };
        let src = py.detach(|| Source::open(&args)).map_err(to_py)?;
        Ok(Self { src })
    }

    /// The full Arrow schema (datasets, then the row index and file path columns).
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        schema_capsule(py, &self.src.schema())
    }

    /// Rows of the table (every file; before any region).
    #[getter]
    fn num_rows(&self) -> u64 {
        self.src.num_rows()
    }

    /// The files in table order, with their row counts.
    #[getter]
    fn files(&self) -> Vec<(String, u64)> {
        self.src.files()
    }

    /// The group path.
    #[getter]
    fn group(&self) -> String {
        self.src.group().to_owned()
    }

    /// Server URL and file path (or glob).
    #[getter]
    fn url(&self) -> String {
        self.src.display().to_owned()
    }

    /// The global `[start, stop)` row ranges of the region (`None` without one).
    fn region_rows(&self) -> Option<Vec<(u64, u64)>> {
        self.src
            .region_rows()
            .map(|r| r.iter().map(|r| (r.start, r.end)).collect())
    }

    /// The global `[start, stop)` row ranges a scan with this predicate (JSON of
    /// `Expr.meta.serialize(format="json")`) and `n_rows` would fetch.
    #[pyo3(signature = (predicate=None, n_rows=None))]
    fn plan(
        &self,
        py: Python<'_>,
        predicate: Option<&str>,
        n_rows: Option<u64>,
    ) -> Vec<(u64, u64)> {
        let p = parse_predicate(predicate);
        let planned = py.detach(|| self.src.plan(n_rows, p.as_ref()));
        planned.rows.iter().map(|r| (r.start, r.end)).collect()
    }

    /// Starts the reader of one scan: `columns` (`None`: all), the first `n_rows` rows (of
    /// the region), narrowed by what the predicate (JSON) allows. The predicate is not
    /// applied to the rows: the caller filters each batch.
    #[pyo3(signature = (columns=None, predicate=None, n_rows=None))]
    fn scan(
        &self,
        py: Python<'_>,
        columns: Option<Vec<String>>,
        predicate: Option<&str>,
        n_rows: Option<u64>,
    ) -> PyResult<Reader> {
        let p = parse_predicate(predicate);
        let reader = py
            .detach(|| self.src.scan(columns.as_deref(), n_rows, p.as_ref()))
            .map_err(to_py)?;
        Ok(Reader::new(reader))
    }

    /// Starts a reader over `columns` of `rows` (`[start, stop)` pairs; `None`: every row of
    /// the region, or of the table).
    #[pyo3(signature = (columns=None, rows=None))]
    fn stream(
        &self,
        py: Python<'_>,
        columns: Option<Vec<String>>,
        rows: Option<Vec<(u64, u64)>>,
    ) -> PyResult<Reader> {
        let reader = py
            .detach(|| self.src.stream(columns.as_deref(), rows.as_deref()))
            .map_err(to_py)?;
        Ok(Reader::new(reader))
    }

    /// Requests made so far: `metadata_requests`, `data_requests`, and `rows`, the rows
    /// requested per dataset path.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.src.counting().counts();
        let d = PyDict::new(py);
        d.set_item("metadata_requests", c.metadata_requests)?;
        d.set_item("data_requests", c.data_requests)?;
        d.set_item("rows", c.rows)?;
        Ok(d)
    }

    /// Sets the request counts back to zero.
    fn reset_stats(&self) {
        self.src.counting().reset();
    }
}

/// The record batches of one scan or stream.
#[pyclass(frozen, module = "polars_hdfstream._lib", name = "Reader")]
pub struct Reader {
    inner: Mutex<Option<GroupRecordBatchReader>>,
    schema: SchemaRef,
    rows: u64,
}

impl Reader {
    fn new(r: GroupRecordBatchReader) -> Self {
        use arrow::record_batch::RecordBatchReader;
        Self {
            schema: r.schema(),
            rows: r.num_rows(),
            inner: Mutex::new(Some(r)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<GroupRecordBatchReader>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl Reader {
    /// The next batch, or `None` at the end (the GIL is released while it is fetched).
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<Batch>> {
        let next = py.detach(|| {
            let mut g = self.lock();
            match g.as_mut().and_then(Iterator::next) {
                Some(r) => Some(r),
                None => {
                    // The end: drop the reader (joins its fetcher thread).
                    *g = None;
                    None
                }
            }
        });
        match next {
            Some(Ok(b)) => Ok(Some(Batch(b))),
            Some(Err(e)) => Err(arrow_to_py(e)),
            None => Ok(None),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Batch>> {
        self.next_batch(py)
    }

    /// Rows the reader yields in all.
    #[getter]
    fn num_rows(&self) -> u64 {
        self.rows
    }

    /// The schema of the batches.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        schema_capsule(py, &self.schema)
    }

    /// Hands the remaining batches over as an Arrow C stream (once; the reader is then
    /// empty). `requested_schema` is ignored, as the protocol allows.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let reader = self
            .lock()
            .take()
            .ok_or_else(|| PyValueError::new_err("the reader was already consumed"))?;
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }
}

/// One record batch.
#[pyclass(frozen, module = "polars_hdfstream._lib", name = "Batch")]
pub struct Batch(RecordBatch);

#[pymethods]
impl Batch {
    /// Rows of the batch.
    #[getter]
    fn num_rows(&self) -> usize {
        self.0.num_rows()
    }

    /// The schema of the batch.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        schema_capsule(py, &self.0.schema())
    }

    /// The batch as an Arrow C struct array (zero-copy). `requested_schema` is ignored, as
    /// the protocol allows.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
        let _ = requested_schema;
        let data = StructArray::from(self.0.clone()).into_data();
        let (array, schema) = arrow::ffi::to_ffi(&data).map_err(arrow_to_py)?;
        Ok((
            PyCapsule::new_with_value(py, schema, c"arrow_schema")?,
            PyCapsule::new_with_value(py, array, c"arrow_array")?,
        ))
    }
}

/// The predicate tree the scan reads from a serialised Polars expression (JSON), as text:
/// lets a test check that a Polars version still writes shapes the planner understands.
#[pyfunction]
fn describe_predicate(json: &str) -> String {
    format!("{:?}", parse_json(json))
}

/// The Rust side of `polars_hdfstream`.
#[pymodule]
fn _lib(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Table>()?;
    m.add_class::<Reader>()?;
    m.add_class::<Batch>()?;
    m.add_function(wrap_pyfunction!(describe_predicate, m)?)?;
    m.add("HdfstreamError", py.get_type::<HdfstreamError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("AuthenticationError", py.get_type::<AuthenticationError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
