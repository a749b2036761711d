//! Streaming Parquet export to local files and object stores (feature `parquet`).
//!
//! [`to_parquet`] reads a remote group batch by batch (a [`GroupReaderBuilder`]) and streams
//! the batches through the `parquet` crate's async writer into an `object_store` destination:
//!
//! * a local path (`out/gas.parquet`) or `file:///abs/path.parquet` (the directory is
//!   created);
//! * `memory://name` — an in-memory store that lives only during the call (tests; use
//!   [`write_parquet`] with your own [`InMemory`](object_store::memory::InMemory) to read the
//!   result back);
//! * `s3://bucket/key` (also `s3a://`, `https://s3.<region>.amazonaws.com/bucket/key`) —
//!   credentials, region and endpoint from the usual `AWS_*` environment variables
//!   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` for
//!   S3-compatible stores, `AWS_ALLOW_HTTP=true` for plain HTTP);
//! * `gs://bucket/key` — Google Cloud Storage, configured by `GOOGLE_*` variables
//!   (`GOOGLE_SERVICE_ACCOUNT`, `GOOGLE_APPLICATION_CREDENTIALS`, ...);
//! * `az://container/key`, `abfs[s]://container@account.dfs.core.windows.net/key` (also
//!   `adl://`, `azure://`) — Azure Blob Storage / Data Lake, configured by `AZURE_*`
//!   variables (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, ...);
//! * `http(s)://host/path` — a WebDAV-style server that accepts `PUT`. HTTP has no multipart
//!   upload, so the whole file is held in memory and sent in one request.
//!
//! URLs are mapped to stores by [`object_store::parse_url_opts`]; other schemes are an
//! [`Error::InvalidPath`].
//!
//! Memory stays bounded (except for `http(s)://`): the reader holds a few batches, the writer
//! one row group (see [`ExportOptions::with_row_group_size`] /
//! [`ExportOptions::with_row_group_bytes`]) and the object-store upload buffer. The Arrow
//! schema — with the HDF5 attributes in field and schema metadata — is stored in the file, so
//! readers get the units back.
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
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme};
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

    /// Rows per record batch read from the server ([`to_parquet`] only; 0 is taken as 1).
    /// Default: the reader builder's batch size.
    pub fn with_batch_size(mut self, rows: usize) -> Self {
        self.batch_size = Some(rows.max(1));
        self
    }

    /// Draw the progress bar (`true`) or never draw it (`false`). Default: drawn when stderr
    /// is a terminal, unless [`crate::set_progress`] says otherwise.
    pub fn with_progress(mut self, on: bool) -> Self {
        self.progress = Some(on);
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

/// A failure of the reader: the client's own error when it is one (what the server did,
/// with URL, object and attempts), else an error about the export.
fn read_error(dest: &str, e: ::arrow::error::ArrowError) -> Error {
    match e {
        ::arrow::error::ArrowError::ExternalError(source) => match source.downcast::<Error>() {
            Ok(e) => *e,
            Err(source) => write_error(dest, ::arrow::error::ArrowError::ExternalError(source)),
        },
        e => write_error(dest, e),
    }
}

fn bad_destination(dest: &str, reason: impl Into<String>) -> Error {
    Error::InvalidPath {
        path: dest.to_string(),
        reason: reason.into(),
    }
}

/// A local file as (store rooted at its directory, file name); the directory is created.
fn local_destination(dest: &str, file: &std::path::Path) -> Result<Destination> {
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
    Ok(Destination {
        store: Arc::new(store),
        path,
        single_put: false,
    })
}

/// The schemes [`destination`] understands, for error messages.
const SCHEMES: &str = "a local path, file://, memory://, s3://, gs://, az:// (abfs://, adl://, \
                       azure://) or http(s)://";

/// URL schemes `object_store::parse_url_opts` maps to a store.
const URL_SCHEMES: [&str; 10] = [
    "s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https",
];

/// Where an export goes.
struct Destination {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    /// The store takes an object in one PUT only (HTTP/WebDAV has no multipart upload).
    single_put: bool,
}

/// Configuration of the store `dest` names from the environment, as the `from_env`
/// constructors of `object_store` read it (aliases first, so that prefixed names win).
fn env_options(kind: &ObjectStoreScheme, url: &url::Url) -> Vec<(String, String)> {
    let (aliases, prefix): (&[&str], &str) = match kind {
        ObjectStoreScheme::AmazonS3 => (&[], "AWS_"),
        ObjectStoreScheme::GoogleCloudStorage => (&["SERVICE_ACCOUNT"], "GOOGLE_"),
        ObjectStoreScheme::MicrosoftAzure => (&["IDENTITY_ENDPOINT"], "AZURE_"),
        ObjectStoreScheme::Http if url.scheme() == "http" => {
            // The user asked for plain HTTP explicitly.
            return vec![("allow_http".to_string(), "true".to_string())];
        }
        _ => return Vec::new(),
    };
    let vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let alias = vars.iter().filter(|(k, _)| aliases.contains(&k.as_str()));
    let prefixed = vars.iter().filter(|(k, _)| k.starts_with(prefix));
    alias.chain(prefixed).cloned().collect()
}

/// A cloud or HTTP destination through `object_store::parse_url_opts`.
fn url_destination(dest: &str) -> Result<Destination> {
    let url = url::Url::parse(dest).map_err(|e| bad_destination(dest, e.to_string()))?;
    let (kind, key) = ObjectStoreScheme::parse(&url).map_err(|e| {
        let reason = if URL_SCHEMES.contains(&url.scheme()) {
            // A known scheme without bucket or host, or a path object_store refuses.
            format!("{e} (expected {}://<bucket or host>/<path>)", url.scheme())
        } else {
            format!("unsupported scheme {:?} (use {SCHEMES})", url.scheme())
        };
        bad_destination(dest, reason)
    })?;
    if key.as_ref().is_empty() {
        return Err(bad_destination(
            dest,
            "needs an object path after the bucket, container or host",
        ));
    }
    let options = env_options(&kind, &url);
    let (store, path) = object_store::parse_url_opts(&url, options)
        .map_err(|e| bad_destination(dest, e.to_string()))?;
    Ok(Destination {
        store: Arc::from(store),
        path,
        single_put: kind == ObjectStoreScheme::Http,
    })
}

/// [`destination`] with what the writer needs to know about the store.
fn resolve(dest: &str) -> Result<Destination> {
    let Some((scheme, rest)) = dest.split_once("://") else {
        return local_destination(dest, std::path::Path::new(dest));
    };
    match scheme {
        // Kept apart from `parse_url_opts`, which roots the store at `/` and would not
        // create the directory.
        "file" => {
            let url = url::Url::parse(dest).map_err(|e| bad_destination(dest, e.to_string()))?;
            let file = url
                .to_file_path()
                .map_err(|()| bad_destination(dest, "not a local file URL"))?;
            local_destination(dest, &file)
        }
        // `parse_url_opts` only takes `memory:///path`; `memory://name` names the object.
        "memory" => {
            let path = ObjectPath::parse(rest).map_err(|e| bad_destination(dest, e.to_string()))?;
            Ok(Destination {
                store: Arc::new(object_store::memory::InMemory::new()),
                path,
                single_put: false,
            })
        }
        _ => url_destination(dest),
    }
}

/// The object store and object path `dest` names: a local path, `file://`, `memory://`,
/// `s3://`, `gs://`, `az://` (and `abfs://`, `adl://`, `azure://`) or `http(s)://`; see the
/// [module docs](self).
pub fn destination(dest: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let d = resolve(dest)?;
    Ok((d.store, d.path))
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

/// Reads `builder`'s table and writes it as one Parquet file to `dest` (see [`destination`]
/// for the forms it takes).
pub fn to_parquet(
    builder: GroupReaderBuilder,
    dest: &str,
    options: &ExportOptions,
) -> Result<ExportSummary> {
    refuse_async()?;
    let Destination {
        store,
        path,
        single_put,
    } = resolve(dest)?;
    let builder = match options.batch_size {
        Some(n) => builder.with_batch_size(n),
        None => builder,
    };
    let reader = builder.build()?;
    let total = reader.num_rows();
    let upload_buffer = if single_put {
        usize::MAX
    } else {
        options.upload_buffer
    };
    let target = Target {
        store,
        path: &path,
        dest,
        upload_buffer,
    };
    write(reader, target, options, Some(total))
}

/// Writes every batch of `reader` as one Parquet file at `path` in `store`.
pub fn write_parquet<R: RecordBatchReader>(
    reader: R,
    store: Arc<dyn ObjectStore>,
    path: &ObjectPath,
    options: &ExportOptions,
) -> Result<ExportSummary> {
    let dest = path.to_string();
    let target = Target {
        store,
        path,
        dest: &dest,
        upload_buffer: options.upload_buffer,
    };
    write(reader, target, options, None)
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

/// The object an export writes.
struct Target<'a> {
    store: Arc<dyn ObjectStore>,
    path: &'a ObjectPath,
    /// The destination as the user gave it, for messages.
    dest: &'a str,
    /// Bytes buffered before a multipart upload starts (`usize::MAX`: one PUT at the end).
    upload_buffer: usize,
}

fn write<R: RecordBatchReader>(
    mut reader: R,
    target: Target<'_>,
    options: &ExportOptions,
    total: Option<u64>,
) -> Result<ExportSummary> {
    refuse_async()?;
    let Target {
        store,
        path,
        dest,
        upload_buffer,
    } = target;
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
        let object = Upload::new(Arc::clone(&store), path.clone(), upload_buffer);
        let mut writer = AsyncArrowWriter::try_new(object, Arc::clone(&schema), Some(props))
            .map_err(|e| write_error(dest, e))?;
        let mut rows = 0u64;
        let mut batches = 0u64;
        let written: Result<()> = async {
            for batch in reader.by_ref() {
                let batch = batch.map_err(|e| read_error(dest, e))?;
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
            Ok(())
        }
        .await;
        let meta = match written {
            Ok(()) => writer.finish().await.map_err(|e| write_error(dest, e)),
            Err(e) => Err(e),
        };
        let meta = match meta {
            Ok(meta) => meta,
            Err(e) => {
                // Nothing may appear at the destination: discard the parts uploaded so far.
                if let Err(abort) = writer.into_inner().abort().await {
                    tracing::warn!(dest, error = %abort, "could not abort the upload");
                }
                return Err(e);
            }
        };
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

/// Upload parts in flight at once.
const PARTS_IN_FLIGHT: usize = 8;

/// The object an export writes: buffered, then sent in one PUT when it ends smaller than
/// `capacity` (or the store takes only that), otherwise as a multipart upload in parts of
/// exactly `capacity` bytes (some stores require equal parts). Nothing is visible at the
/// path until [`Upload::finish`] succeeds: a single PUT is atomic, a multipart upload appears
/// only when completed, and local files are written under a temporary name and renamed (by
/// `object_store`'s `LocalFileSystem`). [`Upload::abort`] discards a multipart upload that
/// will not be completed — unlike `object_store`'s `BufWriter`, also after a failed finish.
struct Upload {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    capacity: usize,
    buffer: bytes::BytesMut,
    multipart: Option<Box<dyn object_store::MultipartUpload>>,
    parts: tokio::task::JoinSet<object_store::Result<()>>,
}

impl Upload {
    fn new(store: Arc<dyn ObjectStore>, path: ObjectPath, capacity: usize) -> Self {
        Upload {
            store,
            path,
            capacity: capacity.max(1),
            buffer: bytes::BytesMut::new(),
            multipart: None,
            parts: tokio::task::JoinSet::new(),
        }
    }

    /// Starts uploading the first `len` buffered bytes as the next part.
    async fn put_part(&mut self, len: usize) -> object_store::Result<()> {
        let part = self.buffer.split_to(len.min(self.buffer.len())).freeze();
        if self.multipart.is_none() {
            self.multipart = Some(self.store.put_multipart(&self.path).await?);
        }
        if let Some(upload) = self.multipart.as_mut() {
            self.parts.spawn(upload.put_part(part.into()));
        }
        while self.parts.len() >= PARTS_IN_FLIGHT {
            self.join_part().await?;
        }
        Ok(())
    }

    /// Waits for one part in flight.
    async fn join_part(&mut self) -> object_store::Result<()> {
        match self.parts.join_next().await {
            Some(Ok(result)) => result,
            Some(Err(e)) => Err(object_store::Error::Generic {
                store: "upload",
                source: Box::new(e),
            }),
            None => Ok(()),
        }
    }

    async fn push(&mut self, bytes: bytes::Bytes) -> object_store::Result<()> {
        self.buffer.extend_from_slice(&bytes);
        while self.buffer.len() >= self.capacity {
            self.put_part(self.capacity).await?;
        }
        Ok(())
    }

    /// Sends what is left and makes the object visible.
    async fn finish(&mut self) -> object_store::Result<()> {
        if self.multipart.is_none() {
            let payload = self.buffer.split().freeze();
            self.store.put(&self.path, payload.into()).await?;
            return Ok(());
        }
        if !self.buffer.is_empty() {
            self.put_part(self.buffer.len()).await?;
        }
        while !self.parts.is_empty() {
            self.join_part().await?;
        }
        if let Some(upload) = &mut self.multipart {
            upload.complete().await?;
        }
        self.multipart = None;
        Ok(())
    }

    /// Stops the parts in flight and aborts a multipart upload in progress (nothing to do
    /// when none was started: a single PUT only happens in [`Upload::finish`]).
    async fn abort(&mut self) -> object_store::Result<()> {
        self.parts.shutdown().await;
        self.buffer.clear();
        match self.multipart.take() {
            Some(mut upload) => upload.abort().await,
            None => Ok(()),
        }
    }
}

type WriteFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = parquet::errors::Result<()>> + Send + 'a>>;

impl parquet::arrow::async_writer::AsyncFileWriter for Upload {
    fn write(&mut self, bs: bytes::Bytes) -> WriteFuture<'_> {
        Box::pin(async move {
            self.push(bs)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn complete(&mut self) -> WriteFuture<'_> {
        Box::pin(async move {
            self.finish()
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's own description and the object path of a destination.
    fn resolved(dest: &str) -> (String, String, bool) {
        let d = resolve(dest).unwrap_or_else(|e| panic!("{dest}: {e}"));
        (d.store.to_string(), d.path.to_string(), d.single_put)
    }

    #[test]
    fn cloud_and_http_destinations_map_to_their_stores() {
        let (store, path, single) = resolved("s3://bucket/run1/gas.parquet");
        assert_eq!(
            (store.as_str(), path.as_str()),
            ("AmazonS3(bucket)", "run1/gas.parquet")
        );
        assert!(!single);
        let (store, path, _) = resolved("gs://bucket/run1/gas.parquet");
        assert_eq!(
            (store.as_str(), path.as_str()),
            ("GoogleCloudStorage(bucket)", "run1/gas.parquet")
        );
        let (store, path, _) =
            resolved("abfs://exports@myaccount.dfs.core.windows.net/run1/gas.parquet");
        assert!(store.starts_with("MicrosoftAzure"), "{store}");
        assert!(
            store.contains("myaccount") && store.contains("exports"),
            "{store}"
        );
        assert_eq!(path, "run1/gas.parquet");
        for dest in [
            "http://127.0.0.1:9/dav/gas.parquet",
            "https://example.invalid/dav/gas.parquet",
        ] {
            let (store, path, single) = resolved(dest);
            assert_eq!(
                (store.as_str(), path.as_str()),
                ("HttpStore", "dav/gas.parquet")
            );
            assert!(single, "{dest}: HTTP takes one PUT");
        }
    }

    #[test]
    fn memory_and_local_destinations_keep_their_forms() {
        let (store, path, single) = resolved("memory://x/ids.parquet");
        assert_eq!(
            (store.as_str(), path.as_str()),
            ("InMemory", "x/ids.parquet")
        );
        assert!(!single);
        let dir = std::env::temp_dir().join(format!("hdfstream-dest-{}", std::process::id()));
        let file = dir.join("sub/out.parquet");
        let (store, path, _) = resolved(file.to_str().unwrap());
        assert!(store.starts_with("LocalFileSystem"), "{store}");
        assert_eq!(path, "out.parquet");
        assert!(dir.join("sub").is_dir(), "the directory is created");
        let url = url::Url::from_file_path(&file).unwrap();
        let (store, path, _) = resolved(url.as_str());
        assert!(store.starts_with("LocalFileSystem"), "{store}");
        assert_eq!(path, "out.parquet");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_schemes_and_missing_keys_are_clear_errors() {
        for (dest, words) in [
            ("ftp://host/x.parquet", "unsupported scheme \"ftp\""),
            ("hdfs://nn/x.parquet", "unsupported scheme \"hdfs\""),
            ("s3://bucket-only", "needs an object path"),
            ("gs://bucket/", "needs an object path"),
            ("http://host", "needs an object path"),
            ("s3:///key", "expected s3://<bucket or host>/<path>"),
        ] {
            match resolve(dest) {
                Err(e @ Error::InvalidPath { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains(words), "{dest}: {text}");
                    assert!(text.contains(dest), "{dest}: {text}");
                }
                Err(e) => panic!("{dest}: {e}"),
                Ok(_) => panic!("{dest}: accepted"),
            }
        }
        let text = resolve("ftp://host/x.parquet").err().unwrap().to_string();
        for scheme in [
            "s3://",
            "gs://",
            "az://",
            "http(s)://",
            "memory://",
            "file://",
        ] {
            assert!(text.contains(scheme), "{text}");
        }
    }
}
