//! The `hdfstream` command-line tool: browse and fetch remote HDF5 data, serve local files.

#[cfg(feature = "cluster")]
mod cluster;
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

/// Exit statuses of the tool (documented in `--help` and the README).
mod exit {
    /// Any failure that none of the others names (I/O, a server error, a bad response).
    pub(crate) const FAILURE: u8 = 1;
    /// Bad usage: arguments, selections, paths, options, queries that do not plan.
    pub(crate) const USAGE: u8 = 2;
    /// The file, directory, group or dataset does not exist.
    pub(crate) const NOT_FOUND: u8 = 3;
    /// Authentication failed or access is refused (HTTP 401/403).
    pub(crate) const AUTH: u8 = 4;
    /// The server cannot be reached, timed out, or keeps refusing with 429.
    pub(crate) const NETWORK: u8 = 5;
}

const AFTER_HELP: &str = "\
Environment: HDFSTREAM_URL is the server when URL is left out (a first argument that is an
http(s) URL or an alias of ~/.config/hdfstream/config.yml still names the server);
HDFSTREAM_USER / HDFSTREAM_PASSWORD give credentials (a terminal asks for a missing password);
HDFSTREAM_LOG sets the log filter (e.g. debug).

Exit status: 0 success, 1 other failure, 2 usage error, 3 not found, 4 authentication or
access refused, 5 network error (unreachable, timed out, rate limited).";

/// Fast access to HDF5 files on hdfstream servers, and a server of your own.
#[derive(Debug, Parser)]
#[command(
    name = "hdfstream",
    version,
    propagate_version = true,
    after_help = AFTER_HELP
)]
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
    /// Do not offer compressed responses (by default the client sends Accept-Encoding:
    /// zstd, gzip, deflate; a server compresses only when started with --compress).
    #[arg(long, global = true)]
    no_compression: bool,
    /// Print the result as JSON (for `get`: the same as `--format json`).
    #[arg(long, global = true)]
    json: bool,
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
    /// Processes of a Ballista cluster that runs `hdfstream sql --cluster` queries: one
    /// scheduler, any number of executors (every one must reach the hdfstream server).
    #[cfg(feature = "cluster")]
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
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
        /// Print the files and counts as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout,
    /// e.g. `hdfstream completions bash > ~/.local/share/bash-completion/completions/hdfstream`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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
    /// A query that failed to plan or run, with the exit status its cause calls for.
    #[cfg(feature = "sql")]
    #[error("query failed: {message}")]
    Query { message: String, status: u8 },
}

impl CliError {
    /// The process exit status for this error (see [`exit`]).
    fn exit_status(&self) -> u8 {
        match self {
            CliError::Client(e) => client_status(e),
            CliError::Slice(_) | CliError::Usage(_) => exit::USAGE,
            #[cfg(feature = "sql")]
            CliError::Query { status, .. } => *status,
            CliError::Server(_) | CliError::File { .. } | CliError::Io(_) | CliError::Format(_) => {
                exit::FAILURE
            }
        }
    }
}

/// The exit status for a client error.
pub(crate) fn client_status(e: &hdfstream::Error) -> u8 {
    use hdfstream::Error as E;
    match e {
        E::NotFound { .. } => exit::NOT_FOUND,
        E::Unauthorized { .. } => exit::AUTH,
        E::Http {
            status: 401 | 403, ..
        }
        | E::Server {
            status: 401 | 403, ..
        } => exit::AUTH,
        E::Http { status: 404, .. } | E::Server { status: 404, .. } => exit::NOT_FOUND,
        E::Connection { .. } | E::RateLimited { .. } | E::Incomplete { .. } => exit::NETWORK,
        E::InvalidSelection { .. }
        | E::InvalidPath { .. }
        | E::TypeMismatch { .. }
        | E::Config { .. } => exit::USAGE,
        _ => exit::FAILURE,
    }
}

/// The user name and password to send: `--user` (or the alias' user) with `--password`,
/// else a password typed at a hidden prompt on a terminal; never a silent empty one.
fn credentials(remote: &Remote) -> Result<Option<(String, String)>, CliError> {
    let user = match &remote.user {
        Some(u) => Some(u.clone()),
        None => alias_user(&remote.url),
    };
    let Some(user) = user else {
        return match remote.password {
            Some(_) => Err(CliError::Usage(
                "--password (or HDFSTREAM_PASSWORD) was given without --user".into(),
            )),
            None => Ok(None),
        };
    };
    if let Some(p) = &remote.password {
        return Ok(Some((user, p.clone())));
    }
    use std::io::IsTerminal;
    if !io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "user {user:?} needs a password: give --password, set HDFSTREAM_PASSWORD, or run \
             on a terminal to be asked for it"
        )));
    }
    let password = rpassword::prompt_password(format!("Password for {user} at {}: ", remote.url))?;
    if password.is_empty() {
        return Err(CliError::Usage("an empty password was typed".into()));
    }
    Ok(Some((user, password)))
}

/// The configuration file, if there is one (never created here).
fn config_file() -> Option<hdfstream::Config> {
    let path = hdfstream::Config::default_path()?;
    path.exists()
        .then(|| hdfstream::Config::load(&path).ok())
        .flatten()
}

/// The user name the alias `url` names in the configuration file, if any.
fn alias_user(url: &str) -> Option<String> {
    config_file()?.resolve(url).ok()?.user
}

/// Whether `arg` names a server: an http(s) URL or an alias of the configuration file.
fn names_server(arg: &str) -> bool {
    arg.starts_with("http://")
        || arg.starts_with("https://")
        || config_file().is_some_and(|c| c.aliases.contains_key(arg))
}

/// The server argument of a parsed command line, for the commands that take one.
fn remote_url(cli: &Cli) -> Option<&str> {
    match &cli.command {
        Command::Ls { remote, .. }
        | Command::Info { remote, .. }
        | Command::Get { remote, .. }
        | Command::Download { remote, .. }
        | Command::Export { remote, .. } => Some(&remote.url),
        #[cfg(feature = "sql")]
        Command::Sql { remote, .. } => Some(&remote.url),
        _ => None,
    }
}

/// Parses the command line; with `HDFSTREAM_URL` set, a command whose first argument does
/// not name a server gets that URL inserted as its server.
fn parse_args(args: Vec<std::ffi::OsString>, default_url: Option<String>) -> Cli {
    let first = Cli::try_parse_from(&args);
    let Some(url) = default_url.filter(|u| !u.is_empty()) else {
        return first.unwrap_or_else(|e| e.exit());
    };
    if let Ok(cli) = &first
        && remote_url(cli).is_none_or(names_server)
    {
        return first.unwrap_or_else(|e| e.exit());
    }
    // The subcommand is the first argument that is not an option.
    let Some(at) = args
        .iter()
        .skip(1)
        .position(|a| !a.to_string_lossy().starts_with('-'))
    else {
        return first.unwrap_or_else(|e| e.exit());
    };
    let mut with_url = args.clone();
    with_url.insert(at + 2, url.into());
    match Cli::try_parse_from(&with_url) {
        Ok(cli) if remote_url(&cli).is_some() => cli,
        _ => first.unwrap_or_else(|e| e.exit()),
    }
}

fn connect(remote: &Remote) -> Result<Arc<Connection>, CliError> {
    let mut builder = ClientBuilder::new()
        .with_url(remote.url.clone())
        .with_allow_invalid_certificates(remote.insecure);
    if let Some((user, password)) = credentials(remote)? {
        builder = builder.with_credentials(user, password);
    }
    if remote.no_progress {
        builder = builder.with_progress(false);
    }
    if remote.no_compression {
        builder = builder.with_compression(false);
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

/// Opens the object `object` of the file `file` with one request (what `get` and `info`
/// need), with the same options as [`open_path`].
fn open_object(
    conn: &Arc<Connection>,
    file: &str,
    object: &str,
) -> Result<hdfstream::Object, CliError> {
    let options = OpenOptions {
        max_depth: 0,
        data_size_limit: 0,
    };
    Ok(hdfstream::open_object_with(
        conn.clone(),
        file,
        object,
        options,
    )?)
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
        vpath: dataset.file_path().to_string(),
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

/// Bytes of a payload handed to the `.npy` writer at a time by `get`.
const NPY_WINDOW: usize = 1 << 20;

/// `get --format npy`: the payload goes from the response to the output as it arrives
/// (memory is one window, whatever the selection's size), after a header naming the byte
/// order the server sent. A regular file is written under a temporary name, rewritten
/// from the start if the read is retried, and renamed once complete; standard output or a
/// device cannot be rewound, so a read that breaks off after bytes went out fails there.
fn get_npy_streamed(
    conn: &Arc<Connection>,
    dataset: &hdfstream::Dataset,
    spec: &SliceSpec,
    output: &Option<PathBuf>,
) -> Result<(), CliError> {
    let file_error = |path: &PathBuf, source: io::Error| CliError::File {
        path: path.clone(),
        source,
    };
    let regular = output
        .as_ref()
        .filter(|p| fs::metadata(p).map_or(true, |m| m.is_file()));
    let temp = regular.map(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        p.with_file_name(format!(
            ".{}.partial-{}",
            name.unwrap_or_default(),
            std::process::id()
        ))
    });
    let target: Box<dyn Write> = match (&temp, output) {
        (Some(t), _) => Box::new(fs::File::create(t).map_err(|e| file_error(t, e))?),
        (None, out) => create_output(out)?,
    };
    let mut out = BufWriter::with_capacity(NPY_WINDOW, target);
    let mut state: Option<u32> = None; // attempt whose bytes are in the output
    let mut pass = |attempt: u32, h: &hdfstream_protocol::ArrayHeader, bytes: &[u8]| {
        if state != Some(attempt) {
            if state.is_some() {
                // A retried read starts over: only a regular file can be rewound.
                let Some(t) = &temp else {
                    return Err(io::Error::other(
                        "the read was retried after part of it was written, and this output \
                         cannot be rewound (write to a file with -o to allow retries)",
                    ));
                };
                out.flush()?;
                let f = fs::OpenOptions::new().write(true).truncate(true).open(t)?;
                out = BufWriter::with_capacity(NPY_WINDOW, Box::new(f));
            }
            format::write_npy_header(&h.dtype, &h.shape, false, &mut out)
                .map_err(io::Error::other)?;
            state = Some(attempt);
        }
        out.write_all(bytes)
    };
    let result = conn.request_slice_forward(
        dataset.file_path(),
        dataset.path(),
        spec,
        dataset.dtype(),
        NPY_WINDOW,
        &mut pass,
    );
    let finish = |header: hdfstream_protocol::ArrayHeader| -> Result<(), CliError> {
        if state.is_none() {
            // An empty selection: no payload, so the header has not been written yet.
            format::write_npy_header(&header.dtype, &header.shape, false, &mut out)?;
        }
        out.flush()?;
        drop(out);
        if let (Some(t), Some(p)) = (&temp, output) {
            fs::rename(t, p).map_err(|e| file_error(p, e))?;
        }
        Ok(())
    };
    let done = result.map_err(CliError::from).and_then(finish);
    if done.is_err()
        && let Some(t) = &temp
    {
        let _ = fs::remove_file(t);
    }
    done
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Ls { remote, path } => {
            let conn = connect(&remote)?;
            let out = &mut io::stdout().lock();
            match (open_path(&conn, &path)?, remote.json) {
                (Node::Directory(dir), false) => show::list_directory(&dir, out)?,
                (Node::File(file), false) => show::list_group(&*file.root()?, out)?,
                (Node::Directory(dir), true) => print_json(&show::directory_json(&dir)?)?,
                (Node::File(file), true) => print_json(&show::group_json(&*file.root()?)?)?,
            }
        }
        Command::Info {
            remote,
            file,
            object,
        } => {
            let conn = connect(&remote)?;
            let object = open_object(&conn, &file, &object)?;
            if remote.json {
                print_json(&show::object_json(&object)?)?;
            } else {
                show::describe(&object, &mut io::stdout().lock())?;
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
            let format = match (remote.json, format) {
                (true, Format::Json) | (false, _) => format,
                (true, other) => {
                    return Err(CliError::Usage(format!(
                        "--json asks for JSON but --format asks for {other:?}"
                    )));
                }
            };
            let conn = connect(&remote)?;
            let dataset = open_object(&conn, &file, &object)?.into_dataset()?;
            let spec = match (&slice, region.region()?) {
                (Some(text), _) => {
                    SliceSpec::parse_str(text).map_err(|e| CliError::Slice(e.message))?
                }
                (None, Some(r)) => region_spec(&conn, &dataset, &region, &r)?,
                (None, None) => hdfstream::Selection::all()
                    .resolve(dataset.shape())?
                    .to_slice_spec(),
            };
            check_slice(&spec, dataset.shape())?;
            if format == Format::Npy && dataset.dtype().item_size().is_some() {
                get_npy_streamed(&conn, &dataset, &spec, &output)?;
            } else {
                let data = conn.request_slice_typed(
                    dataset.file_path(),
                    dataset.path(),
                    &spec,
                    dataset.dtype(),
                )?;
                let mut out = create_output(&output)?;
                write_array(&data, format, &mut out)?;
                out.flush()?;
            }
        }
        Command::Download {
            remote,
            path,
            output,
        } => {
            let conn = connect(&remote)?;
            let vpath = path.trim_start_matches('/');
            let bytes = if fs::metadata(&output).is_ok_and(|m| !m.is_file()) {
                // A device or pipe (`/dev/stdout`) cannot be replaced: streamed as it comes.
                let mut out = create_output(&Some(output.clone()))?;
                let bytes = conn.download(vpath, &mut out)?;
                out.flush()?;
                bytes
            } else {
                // Written under a temporary name and renamed once complete (downloaded
                // again if the body breaks off): never a short file at `output`.
                conn.download_to_path(vpath, &output)?
            };
            if remote.json {
                print_json(&serde_json::json!({
                    "path": path,
                    "output": output.display().to_string(),
                    "bytes": bytes,
                }))?;
            } else {
                eprintln!("downloaded {bytes} bytes");
            }
        }
        Command::Export { remote, args } => {
            let conn = connect(&remote)?;
            let progress = remote.no_progress.then_some(false);
            let s = export::run(conn, &args, progress)?;
            if remote.json {
                print_json(&serde_json::json!({
                    "output": args.output,
                    "rows": s.rows,
                    "batches": s.batches,
                    "row_groups": s.row_groups,
                    "bytes": s.bytes,
                }))?;
            } else {
                eprintln!(
                    "exported {} rows in {} batches, {} row groups, {} bytes to {}",
                    s.rows, s.batches, s.row_groups, s.bytes, args.output
                );
            }
        }
        #[cfg(feature = "sql")]
        Command::Sql { remote, args } => {
            let credentials = credentials(&remote)?;
            sql::run(&remote.url, credentials, &args, remote.json)?;
        }
        #[cfg(feature = "cluster")]
        Command::Cluster(command) => cluster::run(command)?,
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
            json,
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
            let mut written: Vec<PathBuf> = summary
                .snapshot_files
                .iter()
                .chain(std::iter::once(&summary.halo_file))
                .cloned()
                .collect();
            if virtual_file && files > 1 {
                written.push(write_virtual_snapshot(&summary)?);
            }
            if json {
                print_json(&serde_json::json!({
                    "files": written.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                    "bytes": summary.bytes,
                    "gas": summary.num_part_total[0],
                    "dark_matter": summary.num_part_total[1],
                    "stars": summary.num_part_total[4],
                    "halos": summary.halos,
                }))?;
                return Ok(());
            }
            for f in &written {
                println!("{}", f.display());
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
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "hdfstream", &mut io::stdout().lock());
        }
    }
    Ok(())
}

/// Prints `value` as pretty JSON and a newline to stdout.
fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let out = &mut io::stdout().lock();
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = parse_args(
        std::env::args_os().collect(),
        std::env::var("HDFSTREAM_URL").ok(),
    );
    // The processes of a cluster log what they run (executors: the rows of each scan).
    #[cfg(feature = "cluster")]
    let default_filter = if matches!(cli.command, Command::Cluster(_)) {
        "warn,hdfstream_datafusion=info,hdfstream_ballista=info,ballista_scheduler=info,ballista_executor=info"
    } else {
        "warn,hdfstream_server=info"
    };
    #[cfg(not(feature = "cluster"))]
    let default_filter = "warn,hdfstream_server=info";
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HDFSTREAM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hdfstream: {err}");
            ExitCode::from(err.exit_status())
        }
    }
}
