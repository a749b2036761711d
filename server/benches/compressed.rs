//! Compressed, chunked datasets through the server (curl) against local h5py on the same
//! files, measured in one run (medians of several runs; the machine is noisy):
//! * a 1-D `<f8` dataset of 2^25 values (256 MiB), 2^20-element chunks, gzip 4 + shuffle:
//!   the whole dataset, 1000 runs × 100 rows in one multi-slice request (h5py: a loop of
//!   1000 slices), and 2 and 4 concurrent whole-dataset requests, also on a second server
//!   that lets each request decode one chunk at a time (`--decode-jobs-per-request 1`): on a
//!   machine with few cores one request already uses them all, and this shows that
//!   concurrent requests are no longer serialised by the libhdf5 lock;
//! * a SWIFT-like (N, 3) `<f8` dataset with 2^20-row chunks, gzip 4 + shuffle + Fletcher-32:
//!   whole and 1000 runs × 100 rows;
//! * a contiguous copy of the 1-D dataset (whole, and the 1000 runs).
//!
//! h5py opens the files with a 64 MiB chunk cache (its default cannot hold one (N, 3) chunk).
//!
//! Run: `cargo bench -p hdfstream-server --bench compressed` (needs `curl` and the venv of
//! `scripts/setup.sh` for h5py; `HDFSTREAM_BENCH_ROWS` shrinks the 1-D dataset,
//! `HDFSTREAM_BENCH_REPEATS` sets the number of runs per figure, default 5).
//! Apart from the second server's `decode_jobs_per_request`, the file only uses APIs that
//! exist since the first server release, so it can be copied into an older checkout (with
//! that figure removed) to measure "before" numbers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use hdfstream_protocol::{DimSelection, ObjectRequest, SliceSpec};
use hdfstream_server::{Limits, ServeConfig, ServerHandle};

const CHUNK: usize = 1 << 20;
const RUNS: u64 = 1000;
const RUN_ROWS: u64 = 100;

/// CPU seconds used by this process (the server) so far, from `/proc/self/stat` (Linux;
/// 0 elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime are 12 and 13.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    match (f.get(11), f.get(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => 0.0,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Deterministic values with a realistic compression ratio: a smooth trend with the low
/// 28 mantissa bits random (roughly what float32-precision simulation output looks like).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed | 1;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let base = 1.0 + (i as f64 / n as f64) * 99.0;
            f64::from_bits((base.to_bits() & !((1u64 << 28) - 1)) | (s & ((1 << 28) - 1)))
        })
        .collect()
}

fn write_files(dir: &Path, rows: usize, swift_rows: usize) {
    use hdf5_metno::File;
    let v = values(rows, 42);
    let f = File::create(dir.join("gz.hdf5")).expect("create");
    f.new_dataset::<f64>()
        .shape(rows)
        .chunk(CHUNK.min(rows))
        .shuffle()
        .deflate(4)
        .create("data")
        .expect("dataset")
        .write_raw(&v)
        .expect("write");
    let f = File::create(dir.join("contig.hdf5")).expect("create");
    f.new_dataset::<f64>()
        .shape(rows)
        .create("data")
        .expect("dataset")
        .write_raw(&v)
        .expect("write");
    drop(v);
    let c = values(swift_rows * 3, 7);
    let f = File::create(dir.join("swift.hdf5")).expect("create");
    f.new_dataset::<f64>()
        .shape((swift_rows, 3))
        .chunk((CHUNK.min(swift_rows), 3))
        .shuffle()
        .deflate(4)
        .fletcher32()
        .create("Coordinates")
        .expect("dataset")
        .write_raw(&c)
        .expect("write");
}

fn runs(rows: u64) -> Vec<DimSelection> {
    (0..RUNS)
        .map(|i| DimSelection::new(i * (rows / RUNS), RUN_ROWS.min(rows / RUNS)))
        .collect()
}

struct Curl {
    url: String,
    dir: PathBuf,
}

impl Curl {
    /// Writes the request body and returns its path.
    fn body(&self, name: &str, req: &ObjectRequest) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, req.encode_body()).expect("body");
        p
    }

    /// Runs `n` concurrent requests; returns the wall time and checks each response size.
    fn fetch(&self, file: &str, body: &Path, n: usize, min_bytes: u64) -> f64 {
        let t = Instant::now();
        let kids: Vec<_> = (0..n)
            .map(|_| {
                Command::new("curl")
                    .args(["-s", "-f", "-o", "/dev/null", "-w", "%{size_download}"])
                    .args(["-X", "POST", "-H", "Content-Type: application/x-msgpack"])
                    .arg("--data-binary")
                    .arg(format!("@{}", body.display()))
                    .arg(format!("{}/msgpack/{file}", self.url))
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("curl")
            })
            .collect();
        for k in kids {
            let out = k.wait_with_output().expect("curl");
            assert!(out.status.success(), "curl failed");
            let got: u64 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("size");
            assert!(got >= min_bytes, "short response: {got} < {min_bytes}");
        }
        t.elapsed().as_secs_f64()
    }
}

/// h5py timings (medians) of the same reads, from one Python process.
fn h5py(dir: &Path, rows: u64, swift_rows: u64, repeats: usize) -> Option<Vec<f64>> {
    let venv = std::env::var("HDFSTREAM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/hdfstream-venv")
        });
    let py = venv.join("bin/python");
    if !py.exists() {
        eprintln!("no venv at {}: h5py figures skipped", venv.display());
        return None;
    }
    let script = r#"
import sys, time, statistics, h5py
d, rows, srows, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def med(f):
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
def loop(ds, n):
    step = n // 1000; k = min(100, step)
    return lambda: [ds[i * step:i * step + k] for i in range(1000)]
# A chunk cache that holds a few chunks: h5py's default cannot hold one 24 MiB chunk of the
# (N, 3) dataset and would decompress it again for every slice of the loop.
cache = dict(rdcc_nbytes=64 << 20, rdcc_nslots=10007)
with h5py.File(f"{d}/gz.hdf5", "r", **cache) as f, h5py.File(f"{d}/swift.hdf5", "r", **cache) as g:
    a, c = f["data"], g["Coordinates"]
    print(med(lambda: a[...]))
    print(med(loop(a, rows)))
    print(med(lambda: c[...]))
    print(med(loop(c, srows)))
"#;
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(dir)
        .arg(rows.to_string())
        .arg(swift_rows.to_string())
        .arg(repeats.to_string())
        .output()
        .expect("python");
    if !out.status.success() {
        eprintln!("h5py failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().parse().expect("seconds"))
            .collect(),
    )
}

fn main() {
    let rows: usize = std::env::var("HDFSTREAM_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1 << 25);
    let swift_rows = rows / 4;
    let repeats: usize = std::env::var("HDFSTREAM_BENCH_REPEATS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    write_files(tmp.path(), rows, swift_rows);
    eprintln!("files written in {:.1} s", t.elapsed().as_secs_f64());
    let srv = ServerHandle::start(tmp.path()).expect("server");
    let curl = Curl {
        url: srv.base_url().to_owned(),
        dir: tmp.path().to_owned(),
    };
    let mut one_job = ServeConfig::new(tmp.path());
    one_job.limits = Limits {
        decode_jobs_per_request: 1,
        ..Limits::default()
    };
    let srv1 = ServerHandle::start_with(one_job).expect("server");
    let curl1 = Curl {
        url: srv1.base_url().to_owned(),
        dir: tmp.path().to_owned(),
    };
    let (rows64, srows64) = (rows as u64, swift_rows as u64);
    let whole = curl.body(
        "whole",
        &ObjectRequest::slice(
            "/data",
            SliceSpec::new(vec![DimSelection::new(0, rows64)], vec![]),
        ),
    );
    let multi = curl.body(
        "multi",
        &ObjectRequest::slice("/data", SliceSpec::new(runs(rows64), vec![])),
    );
    let swhole = curl.body(
        "swhole",
        &ObjectRequest::slice(
            "/Coordinates",
            SliceSpec::new(
                vec![DimSelection::new(0, srows64)],
                vec![DimSelection::new(0, 3)],
            ),
        ),
    );
    let smulti = curl.body(
        "smulti",
        &ObjectRequest::slice(
            "/Coordinates",
            SliceSpec::new(runs(srows64), vec![DimSelection::new(0, 3)]),
        ),
    );
    let bytes = rows64 * 8;
    let sbytes = srows64 * 24;
    let mbytes = RUNS * RUN_ROWS.min(rows64 / RUNS) * 8;
    let smbytes = RUNS * RUN_ROWS.min(srows64 / RUNS) * 24;
    // Warm the page cache and the server's file cache.
    for (f, b) in [
        ("gz.hdf5", &whole),
        ("contig.hdf5", &whole),
        ("swift.hdf5", &swhole),
    ] {
        curl.fetch(f, b, 1, 0);
    }
    // Median wall time, and the server's CPU seconds per wall second over all repeats.
    let time_on = |curl: &Curl, file: &str, body: &Path, n: usize, min: u64| {
        let (cpu0, mut wall) = (cpu_seconds(), 0.0);
        let times: Vec<f64> = (0..repeats)
            .map(|_| {
                let t = curl.fetch(file, body, n, min);
                wall += t;
                t
            })
            .collect();
        (median(times), (cpu_seconds() - cpu0) / wall)
    };
    let time = |file: &str, body: &Path, n: usize, min: u64| time_on(&curl, file, body, n, min);
    let gz_whole = time("gz.hdf5", &whole, 1, bytes);
    let gz_multi = time("gz.hdf5", &multi, 1, mbytes);
    let gz_two = time("gz.hdf5", &whole, 2, bytes);
    let gz_four = time("gz.hdf5", &whole, 4, bytes);
    let j1_whole = time_on(&curl1, "gz.hdf5", &whole, 1, bytes);
    let j1_two = time_on(&curl1, "gz.hdf5", &whole, 2, bytes);
    let sw_whole = time("swift.hdf5", &swhole, 1, sbytes);
    let sw_multi = time("swift.hdf5", &smulti, 1, smbytes);
    let ct_whole = time("contig.hdf5", &whole, 1, bytes);
    let ct_multi = time("contig.hdf5", &multi, 1, mbytes);
    let py = h5py(tmp.path(), rows64, srows64, repeats);
    let mbs = |b: u64, s: f64| b as f64 / s / 1e6;

    println!(
        "\ncompressed chunked reads, {rows} x <f8 (2^20-element chunks, gzip 4 + shuffle) and \
         ({swift_rows}, 3) <f8 (2^20-row chunks, gzip 4 + shuffle + fletcher32); medians of {repeats}"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>8} {:>10} {:>12}",
        "request", "server s", "MB/s", "cores", "h5py s", "h5py/server"
    );
    let row = |name: &str, (s, cores): (f64, f64), b: u64, h: Option<f64>| {
        let (hs, ratio) = match h {
            Some(h) => (format!("{h:.3}"), format!("{:.2}", h / s)),
            None => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "{name:<44} {s:>10.3} {:>10.0} {cores:>8.2} {hs:>10} {ratio:>12}",
            mbs(b, s)
        );
    };
    let p = |i: usize| py.as_ref().map(|v| v[i]);
    row("1-D gzip: whole dataset", gz_whole, bytes, p(0));
    row(
        "1-D gzip: 1000 runs x 100 rows, one request",
        gz_multi,
        mbytes,
        p(1),
    );
    row("(N,3) gzip+fletcher: whole dataset", sw_whole, sbytes, p(2));
    row(
        "(N,3) gzip+fletcher: 1000 runs x 100 rows",
        sw_multi,
        smbytes,
        p(3),
    );
    row("1-D contiguous: whole dataset", ct_whole, bytes, None);
    row(
        "1-D contiguous: 1000 runs x 100 rows",
        ct_multi,
        mbytes,
        None,
    );
    row(
        "1-D gzip: 2 concurrent whole requests",
        gz_two,
        2 * bytes,
        None,
    );
    row(
        "1-D gzip: 4 concurrent whole requests",
        gz_four,
        4 * bytes,
        None,
    );
    row(
        "1-D gzip, 1 decode job/request: whole",
        j1_whole,
        bytes,
        p(0),
    );
    row(
        "1-D gzip, 1 decode job/request: 2 concurrent",
        j1_two,
        2 * bytes,
        None,
    );
    println!("(cores: server CPU seconds per wall second while the requests ran)");
    println!(
        "concurrency: 2 requests {:.2}x, 4 requests {:.2}x the throughput of one; \
         with 1 decode job per request, 2 requests {:.2}x",
        2.0 * gz_whole.0 / gz_two.0,
        4.0 * gz_whole.0 / gz_four.0,
        2.0 * j1_whole.0 / j1_two.0
    );
}
