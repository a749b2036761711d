//! The `hdfstream` command-line tool: browse and fetch remote HDF5 data, serve local files.

mod export;
mod format;
mod region;
mod show;
#[cfg(feature = "sql")]
mod sql;

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use hdfstream::{ClientBuilder, Connection, Node, OpenOptions, open_with};
use hdfstream_protocol::SliceSpec;
use hdfstream_server::ServeArgs;
use hdfstream_server::sample::{SampleOptions, write_sample, write_virtual_snapshot};

use crate::format::{Format, write_array};

/// Fast access to HDF5 files on hdfstream servers, and a server of your own.
#[derive(Debug, Parser)]
#[command(name = "hdfstream", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How to reach a server.
#[derive(Debug, Args)]
struct Remote {
    /// Server base URL (e.g. http://127.0.0.1:8080/hdfstream) or an alias from
    /// ~/.config/hdfstream/config.yml (e.g. cosma).
    url: String,
    /// User name for HTTP Basic auth (overrides the alias' user; env HDFSTREAM_USER).
    #[arg(long, env = "HDFSTREAM_USER", global = true)]
    user: Option<String>,
    /// Password for --user (env HDFSTREAM_PASSWORD; never printed).
    #[arg(
        long,
        env = "HDFSTREAM_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    password: Option<String>,
    /// Accept invalid TLS certificates (verification is on by default).
    #[arg(long, global = true)]
    insecure: bool,
    /// Never show progress bars (by default they appear on a terminal for slow transfers).
    #[arg(long, global = true)]
    no_progress: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List a remote directory, or the members of a remote file's root group.
    Ls {
        #[command(flatten)]
        remote: Remote,
        /// Virtual path of a directory or file (default: the root).
        #[arg(default_value = "")]
        path: String,
    },
    /// Describe a remote file, group or dataset: type, shape, attributes, members.
    Info {
        #[command(flatten)]
        remote: Remote,
        /// Virtual path of an HDF5 file.
        file: String,
        /// HDF5 object inside the file (default: the root group).
        #[arg(default_value = "/")]
        object: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read a dataset (or a selection of it) and write it as JSON, .npy or CSV.
    Get {
        #[command(flatten)]
        remote: Remote,
        /// Virtual path of an HDF5 file.
        file: String,
        /// Dataset path inside the file.
        object: String,
        /// Selection in the server's string form: slices separated by ';', dimensions by ',',
        /// each `start:stop` or an index, e.g. "0:10,0:3;30:40,0:3". Default: everything.
        #[arg(long, conflicts_with = "regions")]
        slice: Option<String>,
        #[command(flatten)]
        region: region::RegionArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Download a remote file (raw bytes) or a directory (as a tar archive).
    Download {
        #[command(flatten)]
        remote: Remote,
        /// Virtual path of the file or directory.
        path: String,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Serve a directory of HDF5 files over the hdfstream protocol.
    Serve(ServeArgs),
    /// Export a group (or the same group over a glob of files) to one Parquet file: a local
    /// path, file://, memory://, s3://, gs://, az:// (abfs://) or http(s):// (WebDAV PUT).
    Export {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        args: export::ExportArgs,
    },
    /// Run SQL (DataFusion) over remote groups: `read_hdfstream('snap_*.hdf5', 'PartType0')`
    /// reads a group of a file or glob on URL; `CREATE EXTERNAL TABLE t STORED AS HDFSTREAM
    /// LOCATION '<url>' OPTIONS ('group' 'PartType0')` and `COPY (...) TO 'x.parquet'` work too.
    #[cfg(feature = "sql")]
    Sql {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        args: sql::SqlArgs,
    },
    /// Write a realistic SWIFT/EAGLE-like sample snapshot and halo catalogue into DIR.
    Sample {
        /// Directory to write into (created if missing).
        dir: PathBuf,
        /// Gas particles in the snapshot (dark matter: as many, stars: a tenth).
        #[arg(long, default_value_t = SampleOptions::default().particles)]
        particles: u64,
        /// Number of files to split the snapshot over.
        #[arg(long, default_value_t = 1)]
        files: u32,
        /// Seed of the deterministic generator.
        #[arg(long, default_value_t = SampleOptions::default().seed)]
        seed: u64,
        /// With --files > 1, also write SWIFT's virtual file snap_0000.hdf5 over the files
        /// (what swiftsimio masks for a multi-file snapshot).
        #[arg(long)]
        virtual_file: bool,
    },
}

/// Errors reported by the tool.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Client(#[from] hdfstream::Error),
    #[error(transparent)]
    Server(#[from] hdfstream_server::ServerError),
    #[error("invalid --slice: {0}")]
    Slice(String),
    #[error("{path}: {source}")]
    File { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Format(#[from] format::FormatError),
    #[error("{0}")]
    Usage(String),
    /// A query that failed to plan or run.
    #[error("query failed: {0}")]
    Query(String),
}

fn connect(remote: &Remote) -> Result<Arc<Connection>, CliError> {
    let mut builder = ClientBuilder::new()
        .with_url(remote.url.clone())
        .with_allow_invalid_certificates(remote.insecure);
    if let Some(user) = &remote.user {
        builder =
            builder.with_credentials(user.clone(), remote.password.clone().unwrap_or_default());
    }
    if remote.no_progress {
        builder = builder.with_progress(false);
    }
    Ok(Arc::new(builder.build()?))
}

/// Opens `path` with options suited to one-shot commands: shallow groups, nothing inlined.
fn open_path(conn: &Arc<Connection>, path: &str) -> Result<Node, CliError> {
    let options = OpenOptions {
        max_depth: 0,
        data_size_limit: 0,
    };
    Ok(open_with(conn.clone(), path, options)?)
}

/// Checks a selection against a dataset shape with messages that say what is wrong.
fn check_slice(spec: &SliceSpec, shape: &[u64]) -> Result<(), CliError> {
    let fail = |msg: String| Err(CliError::Slice(msg));
    if spec.rank() != shape.len() {
        return fail(format!(
            "the selection has {} dimension(s) but the dataset has {} (shape {shape:?})",
            spec.rank(),
            shape.len()
        ));
    }
    let dims = spec
        .runs
        .iter()
        .map(|r| (0, r))
        .chain(spec.rest.iter().enumerate().map(|(k, r)| (k + 1, r)));
    for (k, r) in dims {
        let end = r.start.saturating_add(r.count);
        if end > shape[k] {
            return fail(format!(
                "{}:{end} is outside dimension {k} of length {}",
                r.start, shape[k]
            ));
        }
    }
    for pair in spec.runs.windows(2) {
        if pair[1].start < pair[0].start + pair[0].count {
            return fail(format!(
                "slices must be in ascending order and must not overlap ({}:{} comes after {}:{})",
                pair[1].start,
                pair[1].start + pair[1].count,
                pair[0].start,
                pair[0].start + pair[0].count
            ));
        }
    }
    spec.check_against(shape)
        .map_err(|e| CliError::Slice(e.message))
}

/// The rows of `dataset` a region selects, as a multi-slice over its first dimension.
fn region_spec(
    conn: &Arc<Connection>,
    file: &hdfstream::File,
    dataset: &hdfstream::Dataset,
    args: &region::RegionArgs,
    r: &hdfstream::table::Region,
) -> Result<SliceSpec, CliError> {
    use hdfstream::table::{RegionQuery, TableCells, TableFile};
    let Some(&rows) = dataset.shape().first() else {
        return Err(CliError::Usage(format!(
            "--region needs a dataset with rows; {} is scalar",
            dataset.path()
        )));
    };
    let group = match dataset.path().rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((g, _)) => g.to_string(),
    };
    let position = format!("{}/{}", group.trim_end_matches('/'), args.position_column);
    let files = [TableFile {
        vpath: file.path().to_string(),
        rows,
    }];
    let cells = TableCells::load(conn.as_ref(), &files, &group, 4)?;
    let q = RegionQuery {
        region: r,
        exact: args.exact,
        padding: args.cell_padding,
        position: &position,
        concurrency: 4,
    };
    let selected = cells.region_rows(conn.as_ref(), &files, &q)?.rows;
    if selected.run_count() > hdfstream_protocol::MAX_SLICES {
        return Err(CliError::Usage(format!(
            "the region selects {} separate row ranges, more than one request may carry",
            selected.run_count()
        )));
    }
    let mut runs = selected.to_dim_selections();
    if runs.is_empty() {
        runs.push(hdfstream_protocol::DimSelection { start: 0, count: 0 });
    }
    let rest = dataset
        .shape()
        .iter()
        .skip(1)
        .map(|&n| hdfstream_protocol::DimSelection { start: 0, count: n })
        .collect();
    Ok(SliceSpec { runs, rest })
}

fn create_output(path: &Option<PathBuf>) -> Result<Box<dyn Write>, CliError> {
    Ok(match path {
        Some(p) => Box::new(BufWriter::new(fs::File::create(p).map_err(|source| {
            CliError::File {
                path: p.clone(),
                source,
            }
        })?)),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    })
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Ls { remote, path } => {
            let conn = connect(&remote)?;
            let out = &mut io::stdout().lock();
            match open_path(&conn, &path)? {
                Node::Directory(dir) => show::list_directory(&dir, out)?,
                Node::File(file) => show::list_group(&*file.root()?, out)?,
            }
        }
        Command::Info {
            remote,
            file,
            object,
            json,
        } => {
            let conn = connect(&remote)?;
            let Node::File(file) = open_path(&conn, &file)? else {
                return Err(CliError::Usage(format!(
                    "{file} is a directory, not a file"
                )));
            };
            let object = file.get(&object)?;
            let out = &mut io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut *out, &show::object_json(&object)?)
                    .map_err(io::Error::from)?;
                writeln!(out)?;
            } else {
                show::describe(&object, out)?;
            }
        }
        Command::Get {
            remote,
            file,
            object,
            slice,
            region,
            format,
            output,
        } => {
            let conn = connect(&remote)?;
            let Node::File(file) = open_path(&conn, &file)? else {
                return Err(CliError::Usage(format!(
                    "{file} is a directory, not a file"
                )));
            };
            let dataset = file.dataset(&object)?;
            let spec = match (&slice, region.region()?) {
                (Some(text), _) => {
                    SliceSpec::parse_str(text).map_err(|e| CliError::Slice(e.message))?
                }
                (None, Some(r)) => region_spec(&conn, &file, &dataset, &region, &r)?,
                (None, None) => hdfstream::Selection::all()
                    .resolve(dataset.shape())?
                    .to_slice_spec(),
            };
            check_slice(&spec, dataset.shape())?;
            let data = conn.request_slice(file.path(), dataset.path(), &spec)?;
            let mut out = create_output(&output)?;
            write_array(&data, format, &mut out)?;
            out.flush()?;
        }
        Command::Download {
            remote,
            path,
            output,
        } => {
            let conn = connect(&remote)?;
            let mut out = create_output(&Some(output))?;
            let bytes = conn.download(path.trim_start_matches('/'), &mut out)?;
            out.flush()?;
            eprintln!("downloaded {bytes} bytes");
        }
        Command::Export { remote, args } => {
            let conn = connect(&remote)?;
            let progress = remote.no_progress.then_some(false);
            let s = export::run(conn, &args, progress)?;
            eprintln!(
                "exported {} rows in {} batches, {} row groups, {} bytes to {}",
                s.rows, s.batches, s.row_groups, s.bytes, args.output
            );
        }
        #[cfg(feature = "sql")]
        Command::Sql { remote, args } => {
            let credentials = remote
                .user
                .as_ref()
                .map(|u| (u.clone(), remote.password.clone().unwrap_or_default()));
            sql::run(&remote.url, credentials, &args)?;
        }
        Command::Serve(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(hdfstream_server::run(&args))?;
        }
        Command::Sample {
            dir,
            particles,
            files,
            seed,
            virtual_file,
        } => {
            fs::create_dir_all(&dir).map_err(|source| CliError::File {
                path: dir.clone(),
                source,
            })?;
            let summary = write_sample(
                &dir,
                &SampleOptions {
                    particles,
                    files,
                    seed,
                },
            )?;
            for f in summary
                .snapshot_files
                .iter()
                .chain(std::iter::once(&summary.halo_file))
            {
                println!("{}", f.display());
            }
            if virtual_file && files > 1 {
                println!("{}", write_virtual_snapshot(&summary)?.display());
            }
            eprintln!(
                "wrote {} bytes: {} gas, {} dark matter, {} star particles, {} halos",
                summary.bytes,
                summary.num_part_total[0],
                summary.num_part_total[1],
                summary.num_part_total[4],
                summary.halos
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HDFSTREAM_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,hdfstream_server=info")
            }),
        )
        .with_writer(io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hdfstream: {err}");
            ExitCode::FAILURE
        }
    }
}
