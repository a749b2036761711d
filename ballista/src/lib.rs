//! hdfstream tables on a [Ballista](https://datafusion.apache.org/ballista/) cluster: the
//! same SQL as `hdfstream-datafusion`, run by a scheduler and its executors.
//!
//! * [`HdfstreamLogicalCodec`] and [`HdfstreamPhysicalCodec`] carry an hdfstream table and
//!   its scan in Ballista's plans (URL, group, options, projection, row ranges; never the
//!   credentials: every process takes its own from `HDFSTREAM_USER` / `HDFSTREAM_PASSWORD`
//!   or from the alias in its configuration file). Every other node goes to Ballista's own
//!   codecs.
//! * [`run_scheduler`] and [`run_executor`] are the two kinds of process of a cluster
//!   (`hdfstream cluster scheduler` and `hdfstream cluster executor` in the CLI).
//! * [`connect`] gives a [`SessionContext`] whose queries run on the cluster, with
//!   `read_hdfstream` and `CREATE EXTERNAL TABLE ... STORED AS HDFSTREAM` registered.
//!
//! The scheduler opens the tables of a query (metadata requests to the hdfstream server),
//! plans it, and cuts each scan into partitions of row ranges. Each task an executor runs
//! fetches the rows of its own partitions from the server, so every executor needs to reach
//! the hdfstream server; the client needs to reach the scheduler and the executors' Flight
//! ports (the results come from them).
//!
//! ```no_run
//! # async fn run() -> Result<(), hdfstream_ballista::ClusterError> {
//! let ctx = hdfstream_ballista::connect("127.0.0.1:50050").await?;
//! let df = ctx
//!     .sql(
//!         "SELECT count(*) FROM read_hdfstream(\
//!          'http://127.0.0.1:8080/hdfstream/msgpack/snap_0000.*.hdf5', 'PartType0')",
//!     )
//!     .await?;
//! df.show().await?;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{SchedulerConfig, TaskDistributionPolicy};
use ballista_scheduler::scheduler_process::start_server;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result as DfResult, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use hdfstream_datafusion::{HdfstreamExec, HdfstreamTable, ReadHdfstream, wire};

/// The scheduler's default port (Ballista's).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;
/// An executor's default Arrow Flight port (Ballista's).
pub const DEFAULT_FLIGHT_PORT: u16 = 50051;
/// An executor's default gRPC port (Ballista's).
pub const DEFAULT_GRPC_PORT: u16 = 50052;
/// Default time after which the scheduler counts a silent executor as lost and runs its
/// tasks elsewhere.
pub const DEFAULT_EXECUTOR_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefix of an encoded hdfstream table (a byte no protobuf message starts with, then a tag).
const TABLE_MAGIC: &[u8] = b"\0hdfstream-table-1\0";
/// Prefix of an encoded hdfstream scan.
const SCAN_MAGIC: &[u8] = b"\0hdfstream-scan-1\0";

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// From Ballista: configuration, connection, scheduling.
    #[error(transparent)]
    Ballista(#[from] ballista_core::error::BallistaError),
    /// From DataFusion (planning or execution; hdfstream errors keep their kind inside).
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// Bad arguments (addresses, ports).
    #[error("{0}")]
    Usage(String),
    /// The scheduler cannot be reached.
    #[error("cannot reach the scheduler at {scheduler}: {reason}")]
    Unreachable {
        /// Its address.
        scheduler: String,
        /// What failed.
        reason: String,
    },
}

/// Results of this crate.
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

fn to_df(e: hdfstream_datafusion::HdfstreamError) -> DataFusionError {
    DataFusionError::from(e)
}

/// Ballista's logical codec, plus hdfstream tables.
#[derive(Debug, Default)]
pub struct HdfstreamLogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for HdfstreamLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DfResult<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        let Some(bytes) = buf.strip_prefix(TABLE_MAGIC) else {
            return self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let table = wire::decode_table(bytes).map_err(to_df)?;
        // The plan above the scan was made for the client's schema.
        if table.schema().fields() != schema.fields() {
            return Err(DataFusionError::Plan(format!(
                "the table {table_ref} ({}) has changed on its server since the query was planned",
                table.url()
            )));
        }
        Ok(Arc::new(table))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        if let Some(table) = node.downcast_ref::<HdfstreamTable>() {
            buf.extend_from_slice(TABLE_MAGIC);
            buf.extend(wire::encode_table(table).map_err(to_df)?);
            return Ok(());
        }
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }

    // Ballista's codec handles the file formats of `COPY ... TO` and the `write_*` calls.
    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> DfResult<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// Ballista's physical codec, plus hdfstream scans.
#[derive(Debug, Default)]
pub struct HdfstreamPhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for HdfstreamPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match buf.strip_prefix(SCAN_MAGIC) {
            Some(bytes) => Ok(Arc::new(wire::decode_scan(bytes, inputs).map_err(to_df)?)),
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        if let Some(exec) = node.downcast_ref::<HdfstreamExec>() {
            buf.extend_from_slice(SCAN_MAGIC);
            buf.extend(wire::encode_scan(exec).map_err(to_df)?);
            return Ok(());
        }
        self.inner.try_encode(node, buf, proto_converter)
    }
}

/// Ballista's session configuration with the hdfstream codecs (what [`connect`] uses).
pub fn session_config() -> SessionConfig {
    SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::new(HdfstreamLogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(HdfstreamPhysicalCodec::default()))
}

/// A context whose queries run on the cluster of the scheduler at `scheduler`
/// (`host:port`), with `read_hdfstream` and the `HDFSTREAM` table format registered.
pub async fn connect(scheduler: &str) -> Result<SessionContext> {
    connect_with(scheduler, ReadHdfstream::default()).await
}

/// Like [`connect`], with a configured table function (default server, options).
pub async fn connect_with(scheduler: &str, function: ReadHdfstream) -> Result<SessionContext> {
    let addr = scheduler_addr(scheduler)?;
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(session_config())
        .build();
    let ctx = SessionContext::remote_with_state(&format!("df://{addr}"), state)
        .await
        .map_err(|e| ClusterError::Unreachable {
            scheduler: addr.clone(),
            reason: e.to_string(),
        })?;
    hdfstream_datafusion::register_with(&ctx, function);
    Ok(ctx)
}

/// `host:port` with the default port when there is none.
fn scheduler_addr(s: &str) -> Result<String> {
    let s = s.trim().trim_start_matches("df://").trim_end_matches('/');
    if s.is_empty() {
        return Err(ClusterError::Usage("no scheduler address given".into()));
    }
    let (host, port) = split_host_port(s, DEFAULT_SCHEDULER_PORT)?;
    Ok(format!("{host}:{port}"))
}

/// Splits `host[:port]` (IPv6 hosts in brackets).
fn split_host_port(s: &str, default_port: u16) -> Result<(String, u16)> {
    let bad = || ClusterError::Usage(format!("{s:?} is not host:port"));
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => {
            (h, p.parse::<u16>().map_err(|_| bad())?)
        }
        _ if s.contains(':') && !s.starts_with('[') => return Err(bad()),
        _ => (s, default_port),
    };
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// How a scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    bind: SocketAddr,
    executor_timeout: Duration,
}

impl SchedulerOptions {
    /// A scheduler listening on `bind`.
    pub fn new(bind: SocketAddr) -> Self {
        Self {
            bind,
            executor_timeout: DEFAULT_EXECUTOR_TIMEOUT,
        }
    }

    /// Time after which a silent executor is counted as lost and its tasks run
    /// elsewhere. Default: [`DEFAULT_EXECUTOR_TIMEOUT`].
    pub fn with_executor_timeout(mut self, timeout: Duration) -> Self {
        self.executor_timeout = timeout.max(Duration::from_secs(1));
        self
    }
}

/// Runs a scheduler until it fails or the process ends. Its tasks go round-robin over the
/// executors, so that a scan is shared between them.
pub async fn run_scheduler(options: SchedulerOptions) -> Result<()> {
    let timeout = options.executor_timeout.as_secs().max(1);
    let config = SchedulerConfig {
        bind_host: options.bind.ip().to_string(),
        bind_port: options.bind.port(),
        external_host: options.bind.ip().to_string(),
        task_distribution: TaskDistributionPolicy::RoundRobin,
        executor_timeout_seconds: timeout,
        expire_dead_executor_interval_seconds: (timeout / 4).max(1),
        no_executors_grace_period_seconds: timeout,
        override_logical_codec: Some(Arc::new(HdfstreamLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(HdfstreamPhysicalCodec::default())),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config).await?;
    tracing::info!(bind = %options.bind, "hdfstream cluster scheduler");
    start_server(cluster, options.bind, Arc::new(config)).await?;
    Ok(())
}

/// How an executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    scheduler: String,
    bind_host: String,
    flight_port: u16,
    grpc_port: u16,
    work_dir: Option<PathBuf>,
    vcores: usize,
    heartbeat: Duration,
}

impl ExecutorOptions {
    /// An executor of the scheduler at `scheduler` (`host[:port]`).
    pub fn new(scheduler: impl Into<String>) -> Self {
        Self {
            scheduler: scheduler.into(),
            bind_host: "127.0.0.1".to_owned(),
            flight_port: DEFAULT_FLIGHT_PORT,
            grpc_port: DEFAULT_GRPC_PORT,
            work_dir: None,
            vcores: 0,
            heartbeat: Duration::from_secs(5),
        }
    }

    /// Address the executor listens on and gives the scheduler. Default: 127.0.0.1.
    pub fn with_bind_host(mut self, host: impl Into<String>) -> Self {
        self.bind_host = host.into();
        self
    }

    /// Arrow Flight port (results and shuffle data). Default: [`DEFAULT_FLIGHT_PORT`].
    pub fn with_flight_port(mut self, port: u16) -> Self {
        self.flight_port = port;
        self
    }

    /// gRPC port (tasks from the scheduler). Default: [`DEFAULT_GRPC_PORT`].
    pub fn with_grpc_port(mut self, port: u16) -> Self {
        self.grpc_port = port;
        self
    }

    /// Directory of shuffle files. Default: a new temporary directory.
    pub fn with_work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(dir.into());
        self
    }

    /// Tasks run at once. Default: the number of cores.
    pub fn with_vcores(mut self, n: usize) -> Self {
        self.vcores = n;
        self
    }

    /// Interval of the heartbeats to the scheduler. Default: 5 s.
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_secs(1));
        self
    }
}

/// Runs an executor until the scheduler stops it, it fails, or the process gets SIGTERM.
pub async fn run_executor(options: ExecutorOptions) -> Result<()> {
    let (host, port) = split_host_port(
        options.scheduler.trim().trim_start_matches("df://"),
        DEFAULT_SCHEDULER_PORT,
    )?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let config = ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        external_host: Some(options.bind_host.clone()),
        port: options.flight_port,
        grpc_port: options.grpc_port,
        scheduler_host: host,
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        vcores: options.vcores,
        work_dir: options
            .work_dir
            .as_ref()
            .map(|d| d.to_string_lossy().into_owned()),
        executor_heartbeat_interval_seconds: options.heartbeat.as_secs().max(1),
        override_logical_codec: Some(Arc::new(HdfstreamLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(HdfstreamPhysicalCodec::default())),
        ..ExecutorProcessConfig::default()
    };
    tracing::info!(
        scheduler = options.scheduler,
        flight_port = options.flight_port,
        grpc_port = options.grpc_port,
        "hdfstream cluster executor"
    );
    start_executor_process(Arc::new(config)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_addresses() {
        assert_eq!(scheduler_addr("df://h:1/").unwrap(), "h:1");
        assert_eq!(scheduler_addr("h").unwrap(), "h:50050");
        assert_eq!(scheduler_addr("[::1]:7").unwrap(), "[::1]:7");
        assert_eq!(scheduler_addr("[::1]").unwrap(), "[::1]:50050");
        for bad in ["", "h:x", "h:0", ":5", "::1", "h:70000"] {
            assert!(scheduler_addr(bad).is_err(), "{bad}");
        }
    }
}
