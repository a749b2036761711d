//! `hdfstream sql`: SQL over remote groups with DataFusion (`read_hdfstream`, `CREATE
//! EXTERNAL TABLE ... STORED AS HDFSTREAM`, `COPY ... TO`).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::Args;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use hdfstream_datafusion::{HdfstreamError, HdfstreamOptions, ReadHdfstream};

use crate::CliError;

/// Options of `hdfstream sql`.
#[derive(Debug, Args)]
pub(crate) struct SqlArgs {
    /// The query. Without one, statements are read from stdin, each ending with `;`
    /// (an interactive session on a terminal).
    pub(crate) query: Option<String>,
    /// Write the result of the query to this file instead of printing it: .parquet,
    /// .csv or .json (newline-delimited). With --cluster, an executor writes it, on its
    /// own machine.
    #[arg(short, long)]
    pub(crate) output: Option<PathBuf>,
    /// Run the query on the Ballista cluster of this scheduler (host[:port], default port
    /// 50050; `hdfstream cluster`). The scheduler and the executors take credentials from
    /// their own HDFSTREAM_USER / HDFSTREAM_PASSWORD or configuration file.
    #[cfg(feature = "cluster")]
    #[arg(long, value_name = "SCHEDULER")]
    pub(crate) cluster: Option<String>,
}

pub(crate) fn df_error(e: DataFusionError) -> CliError {
    CliError::Query {
        status: df_status(&e),
        message: e.to_string(),
    }
}

/// The exit status a query error calls for: that of the hdfstream error inside, usage for
/// queries that do not parse or plan.
fn df_status(e: &DataFusionError) -> u8 {
    use crate::exit;
    match e {
        DataFusionError::External(inner) => {
            if let Some(h) = inner.downcast_ref::<HdfstreamError>() {
                match h {
                    HdfstreamError::Client(c) => crate::client_status(c),
                    HdfstreamError::Option { .. } | HdfstreamError::Usage(_) => exit::USAGE,
                    _ => exit::FAILURE,
                }
            } else if let Some(c) = inner.downcast_ref::<hdfstream::Error>() {
                crate::client_status(c)
            } else {
                exit::FAILURE
            }
        }
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            df_status(inner)
        }
        DataFusionError::Shared(inner) => df_status(inner),
        DataFusionError::Collection(all) => all.first().map_or(exit::FAILURE, df_status),
        DataFusionError::Plan(_)
        | DataFusionError::SQL(..)
        | DataFusionError::SchemaError(..)
        | DataFusionError::Configuration(_) => exit::USAGE,
        _ => exit::FAILURE,
    }
}

/// The `read_hdfstream` function resolving bare paths on `server`.
fn table_function(server: &str, credentials: Option<(String, String)>) -> ReadHdfstream {
    let mut options = HdfstreamOptions::default();
    if let Some((user, password)) = credentials {
        options = options.with_credentials(user, password);
    }
    ReadHdfstream::default()
        .with_server(server)
        .with_options(options)
}

/// A session of this process, or of the cluster `args` names.
async fn session(
    server: &str,
    credentials: Option<(String, String)>,
    args: &SqlArgs,
) -> Result<SessionContext, CliError> {
    let function = table_function(server, credentials);
    #[cfg(feature = "cluster")]
    if let Some(scheduler) = &args.cluster {
        return hdfstream_ballista::connect_with(scheduler, function)
            .await
            .map_err(crate::cluster::cluster_error);
    }
    let _ = args;
    let ctx = SessionContext::new();
    hdfstream_datafusion::register_with(&ctx, function);
    Ok(ctx)
}

async fn run_one(
    ctx: &SessionContext,
    sql: &str,
    output: Option<&PathBuf>,
    json: bool,
) -> Result<(), CliError> {
    let df = ctx.sql(sql).await.map_err(df_error)?;
    match output {
        None if json => {
            // A JSON array of row objects, written batch by batch as they stream in.
            let mut stream = df.execute_stream().await.map_err(df_error)?;
            let stdout = std::io::stdout().lock();
            let mut writer = datafusion::arrow::json::ArrayWriter::new(stdout);
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(df_error)?;
                writer
                    .write(&batch)
                    .map_err(|e| df_error(DataFusionError::from(e)))?;
            }
            writer
                .finish()
                .map_err(|e| df_error(DataFusionError::from(e)))?;
            let mut stdout = writer.into_inner();
            writeln!(stdout)?;
            Ok(())
        }
        None => df.show().await.map_err(df_error),
        Some(path) => {
            let p = path.to_string_lossy().into_owned();
            let opts = DataFrameWriteOptions::new().with_single_file_output(true);
            let ext = path
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            let written = match ext.as_str() {
                "parquet" => df.write_parquet(&p, opts, None).await,
                "csv" => df.write_csv(&p, opts, None).await,
                "json" | "ndjson" => df.write_json(&p, opts, None).await,
                other => {
                    return Err(CliError::Usage(format!(
                        "cannot tell the output format from `.{other}`: use .parquet, .csv or .json"
                    )));
                }
            };
            written.map_err(df_error)?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
    }
}

/// Runs `hdfstream sql`.
pub(crate) fn run(
    server: &str,
    credentials: Option<(String, String)>,
    args: &SqlArgs,
    json: bool,
) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let ctx = session(server, credentials, args).await?;
        if let Some(q) = &args.query {
            return run_one(&ctx, q, args.output.as_ref(), json).await;
        }
        // Statements from stdin, one per `;`; errors are printed and the session goes on.
        let stdin = std::io::stdin();
        let mut buf = String::new();
        let prompt = |more: bool| {
            let mut err = std::io::stderr();
            let _ = write!(err, "{}", if more { "   -> " } else { "hdfstream> " });
            let _ = err.flush();
        };
        prompt(false);
        for line in stdin.lock().lines() {
            let line = line?;
            buf.push_str(&line);
            buf.push('\n');
            while let Some(end) = buf.find(';') {
                let stmt: String = buf.drain(..=end).collect();
                let stmt = stmt.trim().trim_end_matches(';').trim();
                if !stmt.is_empty()
                    && let Err(e) = run_one(&ctx, stmt, args.output.as_ref(), json).await
                {
                    eprintln!("error: {e}");
                }
            }
            prompt(!buf.trim().is_empty());
        }
        let rest = buf.trim();
        if !rest.is_empty() {
            run_one(&ctx, rest, args.output.as_ref(), json).await?;
        }
        Ok(())
    })
}
