//! Streaming Parquet export to local files and object stores (feature `parquet`).
//!
//! [`to_parquet`] reads a remote group batch by batch (a [`GroupReaderBuilder`]) and streams
//! the batches through the `parquet` crate's async writer into an `object_store` destination:
//!
//! * a local path (`out/gas.parquet`) or `file:///abs/path.parquet`;
//! * `memory://name` — an in-memory store that lives only during the call (tests; use
//!   [`write_parquet`] with your own [`InMemory`](object_store::memory::InMemory) to read the
//!   result back);
//! * `s3://bucket/key` — credentials, region and endpoint from the usual `AWS_*` environment
//!   variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//!   `AWS_ENDPOINT_URL` for S3-compatible stores, `AWS_ALLOW_HTTP=true` for plain HTTP).
//!
//! Memory stays bounded: the reader holds a few batches, the writer one row group (see
//! [`ExportOptions::with_row_group_size`] / [`ExportOptions::with_row_group_bytes`]) and the
//! object-store upload buffer. The Arrow schema — with the HDF5 attributes in field and
//! schema metadata — is stored in the file, so readers get the units back.
//!
//! ```no_run
//! use hdfstream::arrow::GroupReaderBuilder;
//! use hdfstream::export::{ExportOptions, to_parquet};
//!
//! # fn main() -> hdfstream::Result<()> {
//! let builder = GroupReaderBuilder::open("http://127.0.0.1:8080/hdfstream", "snap_0000.*.hdf5", "/PartType0")?;
//! let summary = to_parquet(builder, "s3://my-bucket/gas.parquet", &ExportOptions::default())?;
//! println!("{} rows, {} bytes", summary.rows, summary.bytes);
//! # Ok(())
//! # }
//! ```
//!
//! A progress bar with rows and bytes is drawn on stderr when it is a terminal (or when
//! forced with [`ExportOptions::with_progress`] / [`crate::set_progress`]).

use std::io::IsTerminal;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use ::arrow::record_batch::RecordBatchReader;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::arrow::GroupReaderBuilder;
use crate::{Error, Result};

/// Default rows per Parquet row group.
pub const DEFAULT_ROW_GROUP_SIZE: usize = 1 << 20;
/// Default upper bound of the encoded size of one row group held in memory (128 MiB).
pub const DEFAULT_ROW_GROUP_BYTES: usize = 128 << 20;
/// Default size of the upload buffer; larger files go up as multipart uploads of this size.
pub const DEFAULT_UPLOAD_BUFFER: usize = 10 << 20;
/// Smallest upload buffer accepted (S3's minimum multipart part size).
pub const MIN_UPLOAD_BUFFER: usize = 5 << 20;

/// Column compression of the written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ParquetCompression {
    /// Zstandard at its default level (the default).
    #[default]
    Zstd,
    /// Snappy.
    Snappy,
    /// No compression.
    None,
}

impl FromStr for ParquetCompression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "zstd" => Ok(Self::Zstd),
            "snappy" => Ok(Self::Snappy),
            "none" | "uncompressed" => Ok(Self::None),
            other => Err(Error::config(format!(
                "unknown compression {other:?} (expected zstd, snappy or none)"
            ))),
        }
    }
}

impl ParquetCompression {
    fn to_parquet(self) -> Compression {
        match self {
            Self::Zstd => Compression::ZSTD(ZstdLevel::default()),
            Self::Snappy => Compression::SNAPPY,
            Self::None => Compression::UNCOMPRESSED,
        }
    }
}

/// Options of an export. Build with `ExportOptions::default()` and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    compression: ParquetCompression,
    row_group_size: usize,
    row_group_bytes: usize,
    batch_size: Option<usize>,
    progress: Option<bool>,
    upload_buffer: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            compression: ParquetCompression::default(),
            row_group_size: DEFAULT_ROW_GROUP_SIZE,
            row_group_bytes: DEFAULT_ROW_GROUP_BYTES,
            batch_size: None,
            progress: None,
            upload_buffer: DEFAULT_UPLOAD_BUFFER,
        }
    }
}

impl ExportOptions {
    /// Column compression. Default zstd.
    pub fn with_compression(mut self, c: ParquetCompression) -> Self {
        self.compression = c;
        self
    }

    /// Maximum rows per row group (0 is taken as 1). Default [`DEFAULT_ROW_GROUP_SIZE`].
    pub fn with_row_group_size(mut self, rows: usize) -> Self {
        self.row_group_size = rows.max(1);
        self
    }

    /// Maximum encoded bytes of a row group before it is flushed (0 is taken as 1).
    /// Default [`DEFAULT_ROW_GROUP_BYTES`].
    pub fn with_row_group_bytes(mut self, bytes: usize) -> Self {
        self.row_group_bytes = bytes.max(1);
        self
    }

    /// Rows per record batch read from the server ([`to_parquet`] only). Default: the
    /// builder's batch size.
    pub fn with_batch_size(mut self, rows: Option<usize>) -> Self {
        self.batch_size = rows;
        self
    }

    /// `Some(true)` always draws the progress bar, `Some(false)` never, `None` (default) on a
    /// terminal only (unless [`crate::set_progress`] says otherwise).
    pub fn with_progress(mut self, on: Option<bool>) -> Self {
        self.progress = on;
        self
    }

    /// Bytes buffered before the object store upload starts; bigger objects are sent as
    /// multipart uploads with parts of this size. Raised to at least [`MIN_UPLOAD_BUFFER`].
    /// Default [`DEFAULT_UPLOAD_BUFFER`].
    pub fn with_upload_buffer(mut self, bytes: usize) -> Self {
        self.upload_buffer = bytes.max(MIN_UPLOAD_BUFFER);
        self
    }

    /// The compression.
    pub fn compression(&self) -> ParquetCompression {
        self.compression
    }

    /// The maximum rows per row group.
    pub fn row_group_size(&self) -> usize {
        self.row_group_size
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Rows written.
    pub rows: u64,
    /// Record batches written.
    pub batches: u64,
    /// Row groups in the file.
    pub row_groups: usize,
    /// Size of the written object in bytes.
    pub bytes: u64,
}

fn write_error(dest: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Io {
        context: format!("writing {dest}"),
        source: std::io::Error::other(e),
    }
}

fn bad_destination(dest: &str, reason: impl Into<String>) -> Error {
    Error::InvalidPath {
        path: dest.to_string(),
        reason: reason.into(),
    }
}

/// A local file as (store rooted at its directory, file name); the directory is created.
fn local_destination(
    dest: &str,
    file: &std::path::Path,
) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let abs = std::path::absolute(file).map_err(|e| Error::Io {
        context: format!("resolving {dest}"),
        source: e,
    })?;
    let name = abs
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad_destination(dest, "needs a UTF-8 file name"))?;
    let dir = abs
        .parent()
        .ok_or_else(|| bad_destination(dest, "has no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        context: format!("creating {}", dir.display()),
        source: e,
    })?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| write_error(dest, e))?;
    let path = ObjectPath::parse(name).map_err(|e| bad_destination(dest, e.to_string()))?;
    Ok((Arc::new(store), path))
}

/// The object store and object path `dest` names (local path, `file://`, `memory://`,
/// `s3://bucket/key`); see the [module docs](self).
pub fn destination(dest: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let Some((scheme, rest)) = dest.split_once("://") else {
        return local_destination(dest, std::path::Path::new(dest));
    };
    match scheme {
        "file" => {
            let url = url::Url::parse(dest).map_err(|e| bad_destination(dest, e.to_string()))?;
            let file = url
                .to_file_path()
                .map_err(|()| bad_destination(dest, "not a local file URL"))?;
            local_destination(dest, &file)
        }
        "memory" => {
            let path = ObjectPath::parse(rest).map_err(|e| bad_destination(dest, e.to_string()))?;
            Ok((Arc::new(object_store::memory::InMemory::new()), path))
        }
        "s3" | "s3a" => {
            let url = url::Url::parse(dest).map_err(|e| bad_destination(dest, e.to_string()))?;
            let key = url.path().trim_start_matches('/');
            if key.is_empty() {
                return Err(bad_destination(
                    dest,
                    "needs an object key after the bucket",
                ));
            }
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_url(dest)
                .build()
                .map_err(|e| bad_destination(dest, e.to_string()))?;
            let path = ObjectPath::parse(key).map_err(|e| bad_destination(dest, e.to_string()))?;
            Ok((Arc::new(store), path))
        }
        other => Err(bad_destination(
            dest,
            format!("unsupported scheme {other:?} (use a path, file://, memory:// or s3://)"),
        )),
    }
}

/// The export blocks on its own runtime, which tokio forbids inside another runtime.
fn refuse_async() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::config(
            "the Parquet export runs its own runtime; call it outside async code \
             (e.g. in tokio::task::spawn_blocking)",
        ));
    }
    Ok(())
}

/// Reads `builder`'s table and writes it as one Parquet file to `dest`.
pub fn to_parquet(
    builder: GroupReaderBuilder,
    dest: &str,
    options: &ExportOptions,
) -> Result<ExportSummary> {
    refuse_async()?;
    let (store, path) = destination(dest)?;
    let builder = match options.batch_size {
        Some(n) => builder.with_batch_size(n),
        None => builder,
    };
    let reader = builder.build()?;
    let total = reader.num_rows();
    write(reader, store, &path, dest, options, Some(total))
}

/// Writes every batch of `reader` as one Parquet file at `path` in `store`.
pub fn write_parquet<R: RecordBatchReader>(
    reader: R,
    store: Arc<dyn ObjectStore>,
    path: &ObjectPath,
    options: &ExportOptions,
) -> Result<ExportSummary> {
    let dest = path.to_string();
    write(reader, store, path, &dest, options, None)
}

fn progress_bar(options: &ExportOptions, total: Option<u64>) -> Option<ProgressBar> {
    let show = match options.progress.or_else(crate::progress::progress) {
        Some(on) => on,
        None => std::io::stderr().is_terminal(),
    };
    if !show {
        return None;
    }
    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if total.is_some() {
        "{wide_bar} {human_pos}/{human_len} rows, {msg} [{elapsed_precise}, eta {eta}]"
    } else {
        "{spinner} {human_pos} rows, {msg} [{elapsed_precise}]"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Some(bar)
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS.get(unit).copied().unwrap_or("B"))
}

fn write<R: RecordBatchReader>(
    mut reader: R,
    store: Arc<dyn ObjectStore>,
    path: &ObjectPath,
    dest: &str,
    options: &ExportOptions,
    total: Option<u64>,
) -> Result<ExportSummary> {
    refuse_async()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hdfstream-export")
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            context: "starting the export runtime".to_string(),
            source: e,
        })?;
    let props = WriterProperties::builder()
        .set_compression(options.compression.to_parquet())
        .set_max_row_group_row_count(Some(options.row_group_size.max(1)))
        .set_max_row_group_bytes(Some(options.row_group_bytes.max(1)))
        .build();
    let schema = reader.schema();
    let bar = progress_bar(options, total);
    let started = Instant::now();
    // The future runs on this thread (not a runtime worker), so the blocking `next()` of the
    // reader does not stall the upload tasks running on the workers.
    let summary = runtime.block_on(async {
        let object =
            BufWriter::with_capacity(Arc::clone(&store), path.clone(), options.upload_buffer);
        let mut writer = AsyncArrowWriter::try_new(object, Arc::clone(&schema), Some(props))
            .map_err(|e| write_error(dest, e))?;
        let mut rows = 0u64;
        let mut batches = 0u64;
        for batch in reader.by_ref() {
            let batch = batch.map_err(|e| write_error(dest, e))?;
            writer
                .write(&batch)
                .await
                .map_err(|e| write_error(dest, e))?;
            rows += batch.num_rows() as u64;
            batches += 1;
            if let Some(b) = &bar {
                b.set_position(rows);
                b.set_message(human_bytes(writer.bytes_written() as u64));
            }
        }
        let meta = writer.close().await.map_err(|e| write_error(dest, e))?;
        let bytes = store
            .head(path)
            .await
            .map_err(|e| write_error(dest, e))?
            .size;
        Ok::<_, Error>(ExportSummary {
            rows,
            batches,
            row_groups: meta.num_row_groups(),
            bytes,
        })
    })?;
    if let Some(b) = bar {
        b.finish_with_message(human_bytes(summary.bytes));
    }
    tracing::info!(
        dest,
        rows = summary.rows,
        bytes = summary.bytes,
        seconds = started.elapsed().as_secs_f64(),
        "Parquet export finished"
    );
    Ok(summary)
}
