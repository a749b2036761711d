//! `hdfstream cluster`: a scheduler and two executors as separate processes on loopback,
//! with our server in this process. A group-by, a join with the halo catalogue, a region
//! query and a `COPY ... TO` Parquet run on the cluster (through `hdfstream_ballista::connect`
//! and through `hdfstream sql --cluster`); their answers equal the single-process DataFusion
//! answers and libhdf5's values. Each executor's log shows the row ranges it scanned: the two
//! shares are disjoint and together every row once. An executor killed in the middle of a
//! query makes it either complete with the right answer or fail with an error.
#![cfg(feature = "cluster")]

#[allow(dead_code)]
#[path = "../../tests/region_common/mod.rs"]
mod region_common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use hdfstream::RowRanges;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use region_common::{Snapshot, h5};

/// A free loopback port (taken by the OS, then released for the process that binds it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A process of the cluster, killed when dropped; its stderr goes to a file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(args: &[&str], log: PathBuf) -> Self {
        let err = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_hdfstream"))
            .args(args)
            .env_remove("HDFSTREAM_USER")
            .env_remove("HDFSTREAM_PASSWORD")
            .env_remove("HDFSTREAM_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start hdfstream cluster");
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A scheduler and two executors.
struct Cluster {
    scheduler: Proc,
    executors: Vec<Proc>,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(executors: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let scheduler = Proc::start(
            &[
                "cluster",
                "scheduler",
                "--bind",
                &addr,
                "--executor-timeout",
                "6",
            ],
            dir.path().join("scheduler.log"),
        );
        wait_for(Duration::from_secs(60), "the scheduler to listen", || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
        let executors: Vec<Proc> = (0..executors)
            .map(|i| {
                let work = dir.path().join(format!("work{i}"));
                std::fs::create_dir_all(&work).expect("work dir");
                Proc::start(
                    &[
                        "cluster",
                        "executor",
                        "--scheduler",
                        &addr,
                        "--flight-port",
                        &free_port().to_string(),
                        "--grpc-port",
                        &free_port().to_string(),
                        "--work-dir",
                        &work.to_string_lossy(),
                        "--vcores",
                        "2",
                        "--heartbeat",
                        "1",
                    ],
                    dir.path().join(format!("executor{i}.log")),
                )
            })
            .collect();
        let c = Self {
            scheduler,
            executors,
            addr,
            _dir: dir,
        };
        let n = c.executors.len();
        wait_for(Duration::from_secs(60), "the executors to register", || {
            c.scheduler
                .log()
                .matches("Received register executor request")
                .count()
                >= n
        });
        c
    }
}

fn wait_for(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn query(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    let run = async {
        ctx.sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .unwrap_or_else(|_| panic!("{sql}: no answer in 3 minutes"))
}

/// Every row of every batch as text (`arrow`'s display of each value), in order.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        let columns: Vec<_> = b
            .columns()
            .iter()
            .map(|c| {
                datafusion::arrow::util::display::ArrayFormatter::try_new(
                    c.as_ref(),
                    &Default::default(),
                )
                .expect("formatter")
            })
            .collect();
        for i in 0..b.num_rows() {
            out.push(columns.iter().map(|f| f.value(i).to_string()).collect());
        }
    }
    out
}

/// The row ranges each `hdfstream distributed scan` line of `log` names for `group`.
fn scanned(log: &str, group: &str) -> Vec<std::ops::Range<u64>> {
    let mut out = Vec::new();
    for line in log.lines() {
        if !line.contains("hdfstream distributed scan")
            || !line.contains(&format!("group={group:?}"))
        {
            continue;
        }
        let Some(at) = line.find("ranges=\"") else {
            continue;
        };
        let text = &line[at + 8..];
        let text = &text[..text.find('"').expect("end of ranges")];
        assert!(!text.contains("more"), "a partition of many ranges: {line}");
        for r in text.split(',').filter(|r| !r.is_empty()) {
            let (a, b) = r.split_once("..").expect("a range");
            out.push(a.parse().expect("start")..b.parse().expect("end"));
        }
    }
    out
}

#[test]
fn cluster_queries_equal_one_process_and_libhdf5() {
    let s = Snapshot::new(60_000, 4);
    let files = &s.summary.snapshot_files;
    let n = h5::<u64>(files, "PartType0/ParticleIDs").len() as u64;
    let halo_of: Vec<i64> = h5(files, "PartType0/HaloID");
    let masses: Vec<f32> = h5(files, "PartType0/Masses");
    let ids: Vec<u64> = h5(files, "PartType0/ParticleIDs");
    let halo_ids: Vec<i64> = h5(std::slice::from_ref(&s.summary.halo_file), "Halos/ID");
    let base = s.server.base_url().to_owned();
    let url = format!("{base}/msgpack/{}", s.glob());
    let halo_url = format!(
        "{base}/msgpack/{}",
        Path::new(&s.summary.halo_file)
            .file_name()
            .expect("name")
            .to_string_lossy()
    );
    // Partitions of 5000 rows: a dozen tasks over the two executors.
    let table = format!("read_hdfstream('{url}', 'PartType0', 'min_partition_rows=5000')");
    let cluster = Cluster::start(2);
    let rt = runtime();
    let local = SessionContext::new();
    hdfstream_datafusion::register(&local);
    let remote = rt
        .block_on(hdfstream_ballista::connect(&cluster.addr))
        .expect("connect to the cluster");

    // A group-by: per halo, the count and the mass, as libhdf5 gives them.
    let before: Vec<usize> = cluster.executors.iter().map(|e| e.log().len()).collect();
    let sql = format!(
        "SELECT \"HaloID\", count(*) AS n, sum(CAST(\"Masses\" AS DOUBLE)) AS m \
         FROM {table} GROUP BY \"HaloID\" ORDER BY \"HaloID\""
    );
    let got = rt.block_on(query(&remote, &sql));
    let mut want: BTreeMap<i64, (i64, f64)> = BTreeMap::new();
    for (h, m) in halo_of.iter().zip(&masses) {
        let e = want.entry(*h).or_default();
        e.0 += 1;
        e.1 += f64::from(*m);
    }
    let mut got_rows = Vec::new();
    for b in &got {
        for i in 0..b.num_rows() {
            got_rows.push((
                b.column(0).as_primitive::<Int64Type>().value(i),
                b.column(1).as_primitive::<Int64Type>().value(i),
                b.column(2).as_primitive::<Float64Type>().value(i),
            ));
        }
    }
    assert_eq!(got_rows.len(), want.len());
    for (g, (h, (c, m))) in got_rows.iter().zip(&want) {
        assert_eq!((g.0, g.1), (*h, *c));
        assert!((g.2 - m).abs() <= 1e-9 * m.abs().max(1.0), "{g:?} vs {m}");
    }
    let single = rt.block_on(query(&local, &sql));
    assert_eq!(rows(&got).len(), rows(&single).len());

    // Each executor scanned a share of the rows: both shares non-empty, disjoint, and
    // together every row exactly once.
    let shares: Vec<Vec<std::ops::Range<u64>>> = cluster
        .executors
        .iter()
        .zip(&before)
        .map(|(e, &at)| scanned(&e.log()[at..], "/PartType0"))
        .collect();
    let mut all: Vec<std::ops::Range<u64>> = Vec::new();
    for (i, share) in shares.iter().enumerate() {
        assert!(
            !share.is_empty(),
            "executor {i} scanned nothing: {}",
            cluster.executors[i].log()
        );
        all.extend(share.iter().cloned());
    }
    all.sort_by_key(|r| r.start);
    let mut next = 0;
    for r in &all {
        assert_eq!(r.start, next, "rows scanned twice or not at all: {all:?}");
        next = r.end;
    }
    assert_eq!(next, n);
    let a = RowRanges::from_ranges(shares[0].iter().cloned());
    let b = RowRanges::from_ranges(shares[1].iter().cloned());
    assert_eq!(a.intersection(&b).row_count(), 0);

    // A join with the halo catalogue, against one process and against libhdf5.
    let sql = format!(
        "SELECT p.\"HaloID\", count(*) AS n, min(p.\"ParticleIDs\") AS first \
         FROM {table} p JOIN read_hdfstream('{halo_url}', 'Halos') h ON p.\"HaloID\" = h.\"ID\" \
         GROUP BY p.\"HaloID\" ORDER BY p.\"HaloID\""
    );
    let got = rt.block_on(query(&remote, &sql));
    assert_eq!(rows(&got), rows(&rt.block_on(query(&local, &sql))));
    let mut want: BTreeMap<i64, (i64, u64)> = BTreeMap::new();
    for (h, id) in halo_of.iter().zip(&ids) {
        if halo_ids.contains(h) {
            let e = want.entry(*h).or_insert((0, u64::MAX));
            e.0 += 1;
            e.1 = e.1.min(*id);
        }
    }
    assert!(want.len() > 3);
    let want_rows: Vec<Vec<String>> = want
        .iter()
        .map(|(h, (c, first))| vec![h.to_string(), c.to_string(), first.to_string()])
        .collect();
    assert_eq!(rows(&got), want_rows);

    // A region: the exact rows of a box (libhdf5's positions tested against it).
    let boxes = ["2:9,3:11,:"];
    let sql = format!(
        "SELECT row_index, \"ParticleIDs\" FROM read_hdfstream('{url}', 'PartType0', \
         'min_partition_rows=5000', 'region={}', 'region_exact=true') ORDER BY row_index",
        boxes[0]
    );
    let got = rt.block_on(query(&remote, &sql));
    assert_eq!(rows(&got), rows(&rt.block_on(query(&local, &sql))));
    let mut want = Vec::new();
    let mut offset = 0;
    for f in files {
        let t = region_common::exact_truth(f, "PartType0", &boxes);
        want.extend(t.iter().flatten().map(|r| r + offset));
        offset += region_common::h5_positions(f, "PartType0").len() as u64;
    }
    assert!(!want.is_empty() && (want.len() as u64) < n / 2);
    let got_rows: Vec<u64> = got
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<UInt64Type>().values().to_vec())
        .collect();
    assert_eq!(got_rows, want);
    let got_ids: Vec<u64> = got
        .iter()
        .flat_map(|b| b.column(1).as_primitive::<UInt64Type>().values().to_vec())
        .collect();
    let want_ids: Vec<u64> = want.iter().map(|&r| ids[r as usize]).collect();
    assert_eq!(got_ids, want_ids);

    // COPY ... TO Parquet through `hdfstream sql --cluster`: an executor writes the file.
    let out_dir = tempfile::tempdir().expect("temp dir");
    let parquet = out_dir.path().join("gas.parquet");
    let copy = format!(
        "COPY (SELECT \"ParticleIDs\", \"Masses\" FROM {table} ORDER BY \"ParticleIDs\") \
         TO '{}' STORED AS PARQUET",
        parquet.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hdfstream"))
        .args(["sql", &base, "--cluster", &cluster.addr, &copy])
        .env_remove("HDFSTREAM_USER")
        .env_remove("HDFSTREAM_PASSWORD")
        .output()
        .expect("hdfstream sql --cluster");
    assert!(
        out.status.success(),
        "hdfstream sql --cluster: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&parquet).expect("parquet"))
            .expect("parquet reader")
            .build()
            .expect("parquet reader");
    let (mut got_ids, mut got_m) = (Vec::new(), Vec::new());
    for b in reader {
        let b = b.expect("batch");
        got_ids.extend(
            b.column(0)
                .as_primitive::<UInt64Type>()
                .values()
                .iter()
                .copied(),
        );
        got_m.extend(
            b.column(1)
                .as_primitive::<arrow::datatypes::Float32Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i]);
    assert_eq!(got_ids, order.iter().map(|&i| ids[i]).collect::<Vec<_>>());
    assert_eq!(got_m, order.iter().map(|&i| masses[i]).collect::<Vec<_>>());
}

#[test]
fn a_killed_executor_never_gives_partial_results() {
    let s = Snapshot::new(200_000, 4);
    let files = &s.summary.snapshot_files;
    let masses: Vec<f32> = h5(files, "PartType0/Masses");
    let want_n = masses.len() as i64;
    let url = format!("{}/msgpack/{}", s.server.base_url(), s.glob());
    let mut cluster = Cluster::start(2);
    let rt = runtime();
    let remote = rt
        .block_on(hdfstream_ballista::connect(&cluster.addr))
        .expect("connect to the cluster");
    // Small batches fetched one request at a time: a query of many requests.
    let sql = format!(
        "SELECT count(*) AS n, sum(CAST(\"Masses\" AS DOUBLE)) AS m FROM read_hdfstream('{url}', \
         'PartType0', 'min_partition_rows=10000', 'batch_size=500', 'concurrency=1')"
    );
    let answer = rt.spawn(async move {
        let df = remote.sql(&sql).await?;
        df.collect().await
    });
    // Kill the first executor once it has started scanning.
    wait_for(Duration::from_secs(120), "executor 0 to scan", || {
        cluster.executors[0]
            .log()
            .contains("hdfstream distributed scan")
    });
    cluster.executors[0].kill();
    let result = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(240), answer).await })
        .expect("an answer or an error within 4 minutes")
        .expect("the query task");
    match result {
        Ok(batches) => {
            // Retried by Ballista: the whole answer.
            let b = &batches[0];
            assert_eq!(b.column(0).as_primitive::<Int64Type>().value(0), want_n);
            let m: f64 = masses.iter().map(|&x| f64::from(x)).sum();
            let got = b.column(1).as_primitive::<Float64Type>().value(0);
            assert!((got - m).abs() <= 1e-9 * m.abs(), "{got} vs {m}");
            eprintln!("the query was retried after the kill and gave the whole answer");
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty());
            eprintln!("the query failed after the kill: {text}");
        }
    }
}

#[test]
fn an_unreachable_scheduler_is_a_clear_error() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hdfstream"))
        .args([
            "sql",
            "http://127.0.0.1:1/hdfstream",
            "--cluster",
            &format!("127.0.0.1:{port}"),
            "SELECT 1",
        ])
        .env_remove("HDFSTREAM_USER")
        .env_remove("HDFSTREAM_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hdfstream");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("hdfstream sql --cluster to a closed port did not end in 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains(&port.to_string()) || err.to_lowercase().contains("connect"),
        "{err}"
    );
    // A malformed scheduler address is a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_hdfstream"))
        .args([
            "sql",
            "http://127.0.0.1:1/hdfstream",
            "--cluster",
            "host:notaport",
            "SELECT 1",
        ])
        .output()
        .expect("run hdfstream");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
