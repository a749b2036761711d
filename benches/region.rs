//! Region benchmark: `cargo bench -p hdfstream --features polars --bench region`.
//!
//! Writes a SWIFT-like sample of `HDFSTREAM_BENCH_PARTICLES` gas particles (default 10^7;
//! a 16³ `Cells/` grid), serves it with the embedded server and reads, in the same run, the
//! gas particles in a box of 1/64 of the volume, 3 columns (Coordinates, Velocities,
//! Masses):
//!
//! * (a) our scan with the box as a filter on the Coordinates components (cells pruned,
//!   positions first, the other columns for the matching rows only);
//! * (a') our scan with the box as a scan region (every row of the touched cells, as
//!   swiftsimio selects them);
//! * (b) the same filter as (a) with region pruning switched off;
//! * (c) swiftsimio through the real Python hdfstream client on the same server
//!   (`scripts/bench_region_swiftsimio.py`, in the venv of `scripts/setup.sh`).
//!
//! Prints the median time of `HDFSTREAM_BENCH_REPEATS` runs (default 5), the response bytes
//! the server sent per run and the ratios against (c).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use hdfstream::polars::{HdfstreamScan, ScanArgsHdfstream};
use hdfstream::table::Region;
use hdfstream_server::http::ServerHandle;
use hdfstream_server::sample::{SampleOptions, write_sample};
use polars::prelude::*;

/// The box: a quarter of the side on each axis, not aligned with the cells.
const BOX: &str = "5:11.25,8:14.25,13:19.25";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Row {
    name: &'static str,
    time: Duration,
    bytes: u64,
    rows: usize,
}

/// Runs `f` `repeats` times; median time, bytes the server sent per run, rows returned.
fn measure(
    server: &ServerHandle,
    name: &'static str,
    repeats: usize,
    mut f: impl FnMut() -> usize,
) -> Row {
    let log = server.log();
    let mut times = Vec::new();
    let mut rows = 0;
    let before = log.total_body_bytes();
    for _ in 0..repeats {
        let t = Instant::now();
        rows = f();
        times.push(t.elapsed());
    }
    let bytes = (log.total_body_bytes() - before) / repeats as u64;
    Row {
        name,
        time: median(times),
        bytes,
        rows,
    }
}

fn venv_python() -> Option<PathBuf> {
    let p = std::env::var_os("HDFSTREAM_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/hdfstream-venv/bin/python"))
        })?;
    p.exists().then_some(p)
}

fn box_filter() -> Expr {
    let mut e: Option<Expr> = None;
    for (k, axis) in BOX.split(',').enumerate() {
        let (lo, hi) = axis.split_once(':').expect("lo:hi");
        let (lo, hi): (f64, f64) = (lo.parse().expect("lo"), hi.parse().expect("hi"));
        let x = col("Coordinates").arr().get(lit(k as i64), false);
        let c = x.clone().gt_eq(lit(lo)).and(x.lt(lit(hi)));
        e = Some(match e {
            Some(prev) => prev.and(c),
            None => c,
        });
    }
    e.expect("three axes")
}

fn main() {
    let particles = env_or("HDFSTREAM_BENCH_PARTICLES", 10_000_000);
    let repeats = env_or("HDFSTREAM_BENCH_REPEATS", 5).max(1) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    let opts = SampleOptions {
        particles,
        files: 1,
        seed: 42,
    };
    write_sample(dir.path(), &opts).expect("sample");
    println!(
        "sample: {particles} gas particles, {}³ cells, written in {:.1} s",
        opts.cells_per_side(),
        t.elapsed().as_secs_f64()
    );
    let server = ServerHandle::start(dir.path()).expect("server");
    let url = format!("{}/msgpack/snap_0000.hdf5", server.base_url());
    let cols = [col("Coordinates"), col("Velocities"), col("Masses")];

    let scan = |args: ScanArgsHdfstream| {
        HdfstreamScan::open(&url, "PartType0", args.without_row_index()).expect("scan")
    };
    let mut table = Vec::new();
    table.push(measure(
        &server,
        "(a) filter, cells pruned",
        repeats,
        || {
            scan(ScanArgsHdfstream::default())
                .lazy()
                .expect("lazy")
                .filter(box_filter())
                .select(cols.clone())
                .collect()
                .expect("collect")
                .height()
        },
    ));
    table.push(measure(
        &server,
        "(a') scan region (cells)",
        repeats,
        || {
            let region = Region::parse([BOX]).expect("box");
            scan(ScanArgsHdfstream::default().with_region(region))
                .lazy()
                .expect("lazy")
                .select(cols.clone())
                .collect()
                .expect("collect")
                .height()
        },
    ));
    table.push(measure(&server, "(b) filter, pruning off", repeats, || {
        scan(ScanArgsHdfstream::default().without_region_pruning())
            .lazy()
            .expect("lazy")
            .filter(box_filter())
            .select(cols.clone())
            .collect()
            .expect("collect")
            .height()
    }));
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_region_swiftsimio.py");
    if let Some(python) = venv_python() {
        let log = server.log();
        let before = log.total_body_bytes();
        let out = Command::new(python)
            .arg(&script)
            .args([
                server.base_url(),
                "snap_0000.hdf5",
                BOX,
                &repeats.to_string(),
            ])
            .env("NUMBA_DISABLE_JIT", "1")
            .output()
            .expect("run the swiftsimio side");
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            let secs: Vec<Duration> = v["seconds"]
                .as_array()
                .expect("seconds")
                .iter()
                .map(|s| Duration::from_secs_f64(s.as_f64().unwrap_or(0.0)))
                .collect();
            table.push(Row {
                name: "(c) swiftsimio + Python client",
                time: median(secs),
                bytes: (log.total_body_bytes() - before) / repeats as u64,
                rows: v["rows"].as_u64().unwrap_or(0) as usize,
            });
        } else {
            println!(
                "swiftsimio side failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    } else {
        println!("no venv Python (scripts/setup.sh): swiftsimio side skipped");
    }
    let c = table
        .iter()
        .find(|r| r.name.starts_with("(c)"))
        .map(|r| (r.time, r.bytes));
    println!(
        "\nbox {BOX} (1/64 of the volume), 3 columns, median of {repeats} runs\n\
         {:<32} {:>10} {:>14} {:>10} {:>12} {:>12}",
        "", "time s", "bytes", "rows", "time (c)/x", "bytes x/(c)"
    );
    for r in &table {
        let (tr, br) = match c {
            Some((ct, cb)) => (
                format!("{:.2}", ct.as_secs_f64() / r.time.as_secs_f64()),
                format!("{:.2}", r.bytes as f64 / cb as f64),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<32} {:>10.3} {:>14} {:>10} {:>12} {:>12}",
            r.name,
            r.time.as_secs_f64(),
            r.bytes,
            r.rows,
            tr,
            br
        );
    }
}
