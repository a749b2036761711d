//! `hdfstream export`: a remote group (or the same group in every file of a glob) to one
//! Parquet file on disk or in an object store.

use std::ops::Range;
use std::sync::Arc;

use clap::Args;
use hdfstream::arrow::GroupReaderBuilder;
use hdfstream::export::{ExportOptions, ExportSummary, ParquetCompression, to_parquet};
use hdfstream::remote::Backend;
use hdfstream::{Connection, Error, OpenOptions};

use crate::region::RegionArgs;

/// Arguments of `hdfstream export` after the server URL.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Virtual path of an HDF5 file, or a glob over the file names of one directory
    /// (e.g. "snapshots/snap_0000.*.hdf5"; files are taken in natural order).
    pub(crate) file_or_glob: String,
    /// Group whose datasets become the columns (e.g. /PartType0).
    pub(crate) group: String,
    /// Destination: a local path, file:///path, memory://name, s3://bucket/key (AWS_*
    /// environment variables), gs://bucket/key (GOOGLE_*), az://container/key or
    /// abfs://container@account.dfs.core.windows.net/key (AZURE_*), or http(s)://host/path
    /// (a WebDAV-style server taking one PUT of the whole file).
    #[arg(short, long)]
    pub(crate) output: String,
    /// Datasets to export, comma separated, in this order (default: every dataset whose
    /// first dimension is the group's row count).
    #[arg(long, value_delimiter = ',')]
    pub(crate) columns: Option<Vec<String>>,
    /// Rows to export as START:END (global over all files, END exclusive).
    #[arg(long)]
    pub(crate) rows: Option<String>,
    /// Rows per record batch fetched from the server.
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Column requests in flight at once (default 4, the Arrow reader's).
    #[arg(long)]
    pub(crate) concurrency: Option<usize>,
    /// Column compression: zstd, snappy or none.
    #[arg(long, default_value = "zstd")]
    pub(crate) compression: String,
    /// Maximum rows per Parquet row group.
    #[arg(long)]
    pub(crate) row_group_size: Option<usize>,
    /// 1-byte integer datasets to write as booleans (h5py bools), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) boolean_columns: Option<Vec<String>>,
    #[command(flatten)]
    pub(crate) region: RegionArgs,
}

/// Parses `START:END` (END exclusive).
fn parse_rows(s: &str) -> Result<Range<u64>, Error> {
    let bad = |reason: String| Error::InvalidSelection {
        reason: format!("--rows {s:?}: {reason}"),
    };
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| bad("expected START:END".to_string()))?;
    let start: u64 = a.trim().parse().map_err(|e| bad(format!("start: {e}")))?;
    let end: u64 = b.trim().parse().map_err(|e| bad(format!("end: {e}")))?;
    if end < start {
        return Err(bad("END is before START".to_string()));
    }
    Ok(start..end)
}

/// Runs the export over `conn`; `progress` overrides the progress-bar decision.
pub(crate) fn run(
    conn: Arc<Connection>,
    args: &ExportArgs,
    progress: Option<bool>,
) -> Result<ExportSummary, Error> {
    let compression: ParquetCompression = args.compression.parse()?;
    let rows = args.rows.as_deref().map(parse_rows).transpose()?;
    let backend: Arc<dyn Backend> = conn;
    let mut builder = GroupReaderBuilder::open_with(
        backend,
        &args.file_or_glob,
        &args.group,
        OpenOptions::metadata_only(),
    )?;
    if let Some(cols) = &args.columns {
        builder = builder.with_columns(cols.iter().cloned());
    }
    if let Some(r) = rows {
        builder = builder.with_rows(r);
    }
    if let Some(region) = args.region.region()? {
        builder = builder
            .with_region(region)
            .with_region_exact(args.region.exact)
            .with_cell_padding(args.region.cell_padding)
            .with_position_column(args.region.position_column.clone());
    }
    if let Some(n) = args.concurrency {
        builder = builder.with_concurrency(n);
    }
    if let Some(b) = &args.boolean_columns {
        builder = builder.with_boolean_columns(b.iter().cloned());
    }
    let mut options = ExportOptions::default().with_compression(compression);
    if let Some(n) = args.batch_size {
        options = options.with_batch_size(n);
    }
    if let Some(on) = progress {
        options = options.with_progress(on);
    }
    if let Some(n) = args.row_group_size {
        options = options.with_row_group_size(n);
    }
    to_parquet(builder, &args.output, &options)
}
