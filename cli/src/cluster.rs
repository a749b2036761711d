//! `hdfstream cluster`: the scheduler and executor processes of a Ballista cluster
//! (`hdfstream-ballista`), which run the queries of `hdfstream sql --cluster`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use hdfstream_ballista::{
    ClusterError, DEFAULT_FLIGHT_PORT, DEFAULT_GRPC_PORT, ExecutorOptions, SchedulerOptions,
};

use crate::{CliError, exit};

/// The processes of a cluster.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Run a scheduler: it plans the queries and hands their tasks to the executors.
    Scheduler {
        /// Address to listen on (clients and executors connect here).
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: SocketAddr,
        /// Seconds after which a silent executor is counted as lost and its tasks run
        /// elsewhere.
        #[arg(long, default_value_t = hdfstream_ballista::DEFAULT_EXECUTOR_TIMEOUT.as_secs())]
        executor_timeout: u64,
    },
    /// Run an executor: it runs tasks, fetching the rows of its scans from the hdfstream
    /// server itself.
    Executor {
        /// The scheduler, host[:port] (default port 50050).
        #[arg(long)]
        scheduler: String,
        /// Address to listen on, also given to the scheduler and to clients.
        #[arg(long, default_value = "127.0.0.1")]
        bind_host: String,
        /// Arrow Flight port (results and shuffle data).
        #[arg(long, default_value_t = DEFAULT_FLIGHT_PORT)]
        flight_port: u16,
        /// gRPC port (tasks from the scheduler).
        #[arg(long, default_value_t = DEFAULT_GRPC_PORT)]
        grpc_port: u16,
        /// Directory of shuffle files (default: a new temporary directory).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Tasks run at once (default: the number of cores).
        #[arg(long, default_value_t = 0)]
        vcores: usize,
        /// Seconds between heartbeats to the scheduler.
        #[arg(long, default_value_t = 5)]
        heartbeat: u64,
    },
}

/// The CLI error for a cluster error (DataFusion's keep their exit statuses).
pub(crate) fn cluster_error(e: ClusterError) -> CliError {
    match e {
        ClusterError::DataFusion(e) => crate::sql::df_error(e),
        ClusterError::Usage(m) => CliError::Usage(m),
        e @ ClusterError::Unreachable { .. } => CliError::Query {
            message: e.to_string(),
            status: exit::NETWORK,
        },
        ClusterError::Ballista(e) => CliError::Query {
            message: e.to_string(),
            status: exit::FAILURE,
        },
    }
}

/// Runs `hdfstream cluster ...` until the process ends.
pub(crate) fn run(command: ClusterCommand) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let run = async move {
        match command {
            ClusterCommand::Scheduler {
                bind,
                executor_timeout,
            } => {
                let options = SchedulerOptions::new(bind)
                    .with_executor_timeout(Duration::from_secs(executor_timeout));
                eprintln!("hdfstream cluster scheduler on {bind}");
                hdfstream_ballista::run_scheduler(options).await
            }
            ClusterCommand::Executor {
                scheduler,
                bind_host,
                flight_port,
                grpc_port,
                work_dir,
                vcores,
                heartbeat,
            } => {
                let mut options = ExecutorOptions::new(scheduler.clone())
                    .with_bind_host(bind_host)
                    .with_flight_port(flight_port)
                    .with_grpc_port(grpc_port)
                    .with_vcores(vcores)
                    .with_heartbeat(Duration::from_secs(heartbeat));
                if let Some(dir) = work_dir {
                    options = options.with_work_dir(dir);
                }
                eprintln!(
                    "hdfstream cluster executor of {scheduler} (flight port {flight_port}, grpc port {grpc_port})"
                );
                hdfstream_ballista::run_executor(options).await
            }
        }
    };
    runtime.block_on(run).map_err(cluster_error)
}
