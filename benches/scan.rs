//! Polars connector benchmark: `cargo bench --bench scan --features polars`.
//!
//! Writes a table of `HDFSTREAM_BENCH_ROWS` rows (default 10^7) with libhdf5, serves it with
//! the embedded server and times, against that same server in the same run, this connector
//! and the Python `hdfstream` client (`scripts/bench_scan.py`, into numpy and then a Polars
//! DataFrame when Python polars is installed) doing the same reads:
//!
//! * (a) a full scan of 3 columns,
//! * (b) 10^4 random rows (`is_in` on the row index),
//! * (c) a 1%-selective filter on a data column.
//!
//! Prints best-of-3 times and the ratios Python / Rust. The Python side is looked for in
//! `HDFSTREAM_PYTHON`, else `~/.cache/hdfstream-venv/bin/python`; without it only the Rust
//! times are printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hdfstream::polars::{HdfstreamScan, ScanArgsHdfstream};
use hdfstream_server::http::ServerHandle;
use polars::prelude::*;

const REPEATS: usize = 3;
const COLS: [&str; 3] = ["Masses", "Densities", "ParticleIDs"];

/// Deterministic uniform in [0, 1) from an index.
fn uniform(i: u64, stream: u64) -> f64 {
    let mut z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Writes the table and returns the 99th percentile of `Densities`.
fn write_table(path: &Path, n: usize) -> f64 {
    let f = hdf5_metno::File::create(path).expect("create bench file");
    let g = f.create_group("Gas").expect("group");
    let masses: Vec<f32> = (0..n)
        .map(|i| (1.0 + uniform(i as u64, 1)) as f32)
        .collect();
    let dens: Vec<f32> = (0..n)
        .map(|i| (8.0 * uniform(i as u64, 2)).exp() as f32)
        .collect();
    let ids: Vec<i64> = (0..n as i64).map(|i| i * 3 + 1).collect();
    let temps: Vec<f32> = (0..n)
        .map(|i| (1e4 * (1.0 + uniform(i as u64, 3))) as f32)
        .collect();
    let vel =
        ndarray::Array2::from_shape_fn((n, 3), |(i, k)| uniform(i as u64, 10 + k as u64) as f32);
    g.new_dataset_builder()
        .with_data(&masses)
        .create("Masses")
        .expect("Masses");
    g.new_dataset_builder()
        .with_data(&dens)
        .create("Densities")
        .expect("Densities");
    g.new_dataset_builder()
        .with_data(&ids)
        .create("ParticleIDs")
        .expect("ParticleIDs");
    g.new_dataset_builder()
        .with_data(&temps)
        .create("Temperatures")
        .expect("Temperatures");
    g.new_dataset_builder()
        .with_data(&vel)
        .create("Velocities")
        .expect("Velocities");
    let mut sorted = dens;
    sorted.sort_by(f32::total_cmp);
    f64::from(sorted[(n as f64 * 0.99) as usize])
}

fn best(mut f: impl FnMut() -> DataFrame) -> (Duration, usize) {
    let mut t_best = Duration::MAX;
    let mut rows = 0;
    for _ in 0..REPEATS {
        let t = Instant::now();
        let df = f();
        t_best = t_best.min(t.elapsed());
        rows = df.height();
    }
    (t_best, rows)
}

fn python() -> Option<PathBuf> {
    let p = match std::env::var_os("HDFSTREAM_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => dirs_home()?.join(".cache/hdfstream-venv/bin/python"),
    };
    p.exists().then_some(p)
}

fn dirs_home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn main() {
    let n: usize = std::env::var("HDFSTREAM_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    let cut = write_table(&dir.path().join("bench.hdf5"), n);
    println!("wrote {n} rows x 5 datasets in {:.1?}", t.elapsed());
    let server = ServerHandle::start(dir.path()).expect("server");
    let base = server.base_url().to_owned();
    let log = server.log();

    let scan = HdfstreamScan::open(
        &format!("{base}/msgpack/bench.hdf5"),
        "Gas",
        ScanArgsHdfstream::default(),
    )
    .expect("open scan");
    let lf = scan.lazy().expect("lazy");
    let cols: Vec<Expr> = COLS.iter().map(|c| col(*c)).collect();
    let mut picks: Vec<u64> = (0..n as u64)
        .filter(|&i| uniform(i, 99) < 10_000.0 / n as f64)
        .collect();
    picks.truncate(10_000);

    let mut rust = Vec::new();
    for (name, q) in [
        ("(a) full scan, 3 columns", lf.clone().select(cols.clone())),
        (
            "(b) 10^4 random rows (is_in)",
            lf.clone()
                .filter(col("row_index").is_in(
                    lit(Series::new("p".into(), picks.clone())).implode(false),
                    false,
                ))
                .select(cols.clone()),
        ),
        (
            "(c) 1% filter on Densities",
            lf.clone()
                .filter(col("Densities").gt(lit(cut)))
                .select(cols.clone()),
        ),
    ] {
        let before = log.total_body_bytes();
        let (t, rows) = best(|| q.clone().collect().expect("query"));
        let bytes = (log.total_body_bytes() - before) / REPEATS as u64;
        println!(
            "rust   {name:32} {t:>10.3?}  {rows:>9} rows  {:>8.1} MB/query",
            bytes as f64 / 1e6
        );
        rust.push(t);
    }

    // The same random rows without the Polars planner, and one column on its own, to
    // separate planning, request and server time.
    let names: Vec<PlSmallStr> = COLS.iter().map(|c| PlSmallStr::from(*c)).collect();
    let pred = col("row_index").is_in(
        lit(Series::new("p".into(), picks.clone())).implode(false),
        false,
    );
    let (t, rows) = best(|| scan.collect(&names, Some(&pred), None).expect("direct"));
    println!("rust   (b) direct HdfstreamScan::collect   {t:>10.3?}  {rows:>9} rows");
    let one = [PlSmallStr::from("Masses")];
    let (t, rows) = best(|| scan.collect(&one, Some(&pred), None).expect("direct"));
    println!("rust   (b) direct, Masses only            {t:>10.3?}  {rows:>9} rows");

    if std::env::var_os("HDFSTREAM_BENCH_VERBOSE").is_some() {
        let conn = hdfstream::ClientBuilder::new()
            .with_url(base.clone())
            .build()
            .expect("conn");
        let rows = hdfstream::RowRanges::from_rows(picks.iter().copied());
        let spec = hdfstream_protocol::SliceSpec {
            runs: rows.to_dim_selections(),
            rest: Vec::new(),
        };
        let dtype = hdfstream_protocol::Dtype::Float {
            size: 4,
            order: hdfstream_protocol::ByteOrder::Little,
        };
        let mut dest = vec![0u8; rows.row_count() as usize * 4];
        for _ in 0..3 {
            let t = Instant::now();
            conn.request_slice_into("bench.hdf5", "/Gas/Masses", &spec, &dtype, &mut dest)
                .expect("raw");
            println!(
                "raw request_slice_into {} runs: {:?}",
                spec.runs.len(),
                t.elapsed()
            );
        }
        let t = Instant::now();
        let body =
            hdfstream_protocol::ObjectRequest::slice("/Gas/Masses", spec.clone()).encode_body();
        println!("encode {} B: {:?}", body.len(), t.elapsed());
    }

    let Some(py) = python() else {
        println!("no Python client found (set HDFSTREAM_PYTHON): Rust times only");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_scan.py");
    let out = Command::new(py)
        .arg(script)
        .args([
            &base,
            "bench.hdf5",
            "Gas",
            &cut.to_string(),
            "7",
            &REPEATS.to_string(),
        ])
        .output()
        .expect("run python");
    if !out.status.success() {
        println!(
            "python client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python JSON");
    if std::env::var_os("HDFSTREAM_BENCH_VERBOSE").is_some() {
        for r in server.request_log() {
            println!(
                "  {:?} {:?} runs={:?} bytes={}",
                r.method, r.object, r.slice_runs, r.body_bytes
            );
        }
    }
    let target = if v["polars"].as_bool() == Some(true) {
        "numpy + polars"
    } else {
        "numpy"
    };
    println!("\nPython hdfstream client ({target}), same server, same run:");
    for ((key, name), r) in [("full", "(a)"), ("random", "(b)"), ("selective", "(c)")]
        .into_iter()
        .zip(&rust)
    {
        let secs = v[key]["seconds"].as_f64().unwrap_or(f64::NAN);
        println!(
            "python {name} {:>10.3}s  {:>9} rows   python/rust = {:.2}x",
            secs,
            v[key]["rows"],
            secs / r.as_secs_f64()
        );
    }
}
