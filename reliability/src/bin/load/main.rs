//! Load and soak of a release `hdfstream serve` (issue 11, part 4).
//!
//! `C` concurrent clients, each with its own connection pool, send `R` mixed requests each:
//! directory listings, file, group, dataset and attribute metadata, slices, multi-slices,
//! fancy reads, downloads and table scans. Every answer is checked against the sample read
//! from disk beforehand (libhdf5 for HDF5 contents, the file system for listings and
//! downloads); a wrong value counts as an error. Reports throughput, p50/p99 latency per
//! kind and overall, and the server's RSS and open descriptors before, during and after.
//! With `--soak-minutes M` the clients run for M minutes instead, and the same figures are
//! printed every minute.
//!
//! ```text
//! load [--server BIN] [--dir DIR] [--clients 64] [--requests 1000] [--seed 1] [--quick]
//!      [--soak-minutes M] [--retries 0] [--fd-bound 4]
//! ```
//!
//! The last line is `RESULT {"tool":"load",...}`; the exit status is non-zero on any error,
//! on a server that died, or when the server holds more than `--fd-bound` descriptors more
//! after the load (connections closed) than before it.

mod ops;
mod scan;
mod truth;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdfstream::{ClientBuilder, RetryConfig};
use hdfstream_reliability::{
    ProcStats, Rng, ServerProcess, ToolError, percentile, print_result, proc_stats,
};
use serde_json::{Value, json};

use ops::{Client, KINDS, pick_kind};
use scan::ScanTruth;

/// Errors whose messages are printed (all are counted).
const SHOWN_ERRORS: usize = 20;
/// How often the server's memory and descriptors are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Interval of the progress lines (the soak's per-minute figures).
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// How long to wait for the server to close the clients' connections after the load.
const SETTLE: Duration = Duration::from_secs(10);

/// Command-line options.
#[derive(Debug)]
struct Args {
    server: PathBuf,
    dir: Option<PathBuf>,
    clients: usize,
    requests: usize,
    seed: u64,
    soak_minutes: f64,
    retries: usize,
    fd_bound: u64,
}

fn default_server() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release/hdfstream")
}

fn parse_args() -> Result<Args, ToolError> {
    let mut a = Args {
        server: default_server(),
        dir: None,
        clients: 64,
        requests: 1000,
        seed: 1,
        soak_minutes: 0.0,
        retries: 0,
        fd_bound: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| ToolError::new(format!("{name} needs a value")))
        };
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, ToolError> {
            v.parse()
                .map_err(|_| ToolError::new(format!("{name}: not a number: {v:?}")))
        }
        match flag.as_str() {
            "--server" => a.server = value("--server")?.into(),
            "--dir" => a.dir = Some(value("--dir")?.into()),
            "--clients" => a.clients = num("--clients", value("--clients")?)?,
            "--requests" => a.requests = num("--requests", value("--requests")?)?,
            "--seed" => a.seed = num("--seed", value("--seed")?)?,
            "--soak-minutes" => a.soak_minutes = num("--soak-minutes", value("--soak-minutes")?)?,
            "--retries" => a.retries = num("--retries", value("--retries")?)?,
            "--fd-bound" => a.fd_bound = num("--fd-bound", value("--fd-bound")?)?,
            "--quick" => {
                a.clients = 16;
                a.requests = 100;
            }
            "-h" | "--help" => {
                println!(
                    "load [--server BIN] [--dir DIR] [--clients 64] [--requests 1000] [--seed 1] \
                     [--quick] [--soak-minutes M] [--retries 0] [--fd-bound 4]"
                );
                std::process::exit(0);
            }
            other => return Err(ToolError::new(format!("unknown argument {other:?}"))),
        }
    }
    if a.clients == 0 || !a.soak_minutes.is_finite() || a.soak_minutes < 0.0 {
        return Err(ToolError::new(
            "--clients must be > 0 and --soak-minutes >= 0",
        ));
    }
    Ok(a)
}

/// Latencies (ms) and error counts per kind.
#[derive(Clone, Debug, Default)]
struct Tally {
    latency_ms: Vec<Vec<f64>>,
    errors: Vec<u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency_ms: vec![Vec::new(); KINDS.len()],
            errors: vec![0; KINDS.len()],
        }
    }

    fn requests(&self) -> usize {
        self.latency_ms.iter().map(Vec::len).sum()
    }

    fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }

    fn all(&self) -> Vec<f64> {
        self.latency_ms.iter().flatten().copied().collect()
    }
}

/// What the clients and the monitor share.
struct Shared {
    window: Mutex<Tally>,
    total: Mutex<Tally>,
    shown: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn record(&self, kind: usize, ms: f64, result: Result<(), String>) {
        let failed = result.is_err();
        for t in [&self.window, &self.total] {
            let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
            t.latency_ms[kind].push(ms);
            t.errors[kind] += u64::from(failed);
        }
        if let Err(msg) = result {
            let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
            if shown.len() < SHOWN_ERRORS {
                eprintln!("error: {}: {msg}", KINDS[kind]);
                shown.push(format!("{}: {msg}", KINDS[kind]));
            }
        }
    }
}

fn connect(base: &str, retries: usize) -> Result<hdfstream::Connection, ToolError> {
    let retry = RetryConfig {
        max_retries: retries,
        ..RetryConfig::default()
    };
    ClientBuilder::new()
        .with_url(base)
        .with_retry(retry)
        .with_progress(false)
        .with_probe(false)
        .build()
        .map_err(|e| ToolError::new(format!("cannot connect to {base}: {e}")))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One progress line (and its JSON) for the requests of a window.
fn window_line(
    elapsed: Duration,
    window: &Tally,
    secs: f64,
    server: Option<ProcStats>,
    server_cpu_ms: u64,
) -> Value {
    let mut all = window.all();
    let (p50, p99) = (percentile(&mut all, 50.0), percentile(&mut all, 99.0));
    let n = window.requests();
    let rss = server.map_or(0, |s| s.rss_kib);
    let fds = server.map_or(0, |s| s.fds);
    let cpu = server_cpu_ms as f64 / 1e3 / secs.max(1e-9);
    println!(
        "[{:>5.0} s] {n} requests ({:.1}/s), errors {}, p50 {p50:.2} ms, p99 {p99:.2} ms, \
         server rss {:.1} MiB, fds {fds}, cpu {:.0}%",
        elapsed.as_secs_f64(),
        n as f64 / secs.max(1e-9),
        window.error_count(),
        mib(rss),
        cpu * 100.0
    );
    json!({
        "t_s": elapsed.as_secs_f64().round(),
        "requests": n,
        "rps": n as f64 / secs.max(1e-9),
        "errors": window.error_count(),
        "p50_ms": p50,
        "p99_ms": p99,
        "rss_kib": rss,
        "fds": fds,
        "server_cpu": cpu,
    })
}

/// Server figures over the run.
#[derive(Clone, Copy, Debug, Default)]
struct Peaks {
    rss_kib: u64,
    fds: u64,
}

/// Samples the server every [`SAMPLE_EVERY`] and prints the window figures every
/// [`REPORT_EVERY`] until the clients stop; returns the peaks and the per-window figures.
fn monitor(shared: &Shared, pid: u32, start: Instant) -> (Peaks, Vec<Value>) {
    let mut peaks = Peaks::default();
    let mut windows = Vec::new();
    let mut last = start;
    let mut last_cpu = proc_stats(pid).map_or(0, |s| s.cpu_ms);
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(SAMPLE_EVERY);
        let stats = proc_stats(pid).ok();
        if let Some(s) = stats {
            peaks.rss_kib = peaks.rss_kib.max(s.rss_kib);
            peaks.fds = peaks.fds.max(s.fds);
        }
        if last.elapsed() >= REPORT_EVERY {
            let window = std::mem::replace(
                &mut *shared.window.lock().unwrap_or_else(|e| e.into_inner()),
                Tally::new(),
            );
            let cpu = stats.map_or(last_cpu, |s| s.cpu_ms);
            let secs = last.elapsed().as_secs_f64();
            windows.push(window_line(
                start.elapsed(),
                &window,
                secs,
                stats,
                cpu - last_cpu,
            ));
            (last, last_cpu) = (Instant::now(), cpu);
        }
    }
    (peaks, windows)
}

/// Waits until the server holds at most `bound` descriptors (its clients gone), or
/// [`SETTLE`] passed; returns its figures then.
fn settle(server: &ServerProcess, bound: u64) -> Result<ProcStats, ToolError> {
    let t0 = Instant::now();
    loop {
        let s = proc_stats(server.pid())?;
        if s.fds <= bound || t0.elapsed() > SETTLE {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes the sample (`hdfstream sample DIR --files 4`) into a new temporary directory.
fn write_sample(binary: &Path) -> Result<PathBuf, ToolError> {
    let dir = std::env::temp_dir().join(format!("hdfstream-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(binary)
        .arg("sample")
        .arg(&dir)
        .args(["--files", "4"])
        .output()
        .map_err(|e| ToolError::new(format!("cannot run {} sample: {e}", binary.display())))?;
    if !out.status.success() {
        return Err(ToolError::new(format!(
            "{} sample failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(dir)
}

/// Figures of one kind (or all) as JSON and a table row.
fn kind_figures(name: &str, latency: &[f64], errors: u64) -> Value {
    let mut l = latency.to_vec();
    let (p50, p99) = (percentile(&mut l, 50.0), percentile(&mut l, 99.0));
    println!(
        "{name:<12} {:>9} {errors:>7} {p50:>9.2} {p99:>9.2}",
        l.len()
    );
    json!({"requests": l.len(), "errors": errors, "p50_ms": p50, "p99_ms": p99})
}

fn run(args: &Args) -> Result<bool, ToolError> {
    let (dir, made) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (write_sample(&args.server)?, true),
    };
    let result = run_in(args, &dir);
    if made {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(args: &Args, dir: &Path) -> Result<bool, ToolError> {
    let t0 = Instant::now();
    let truth = truth::read(dir)?;
    let table = ScanTruth::new(&truth);
    println!(
        "truth: {} files ({} HDF5) read from {} in {:.1} s; scans by {}",
        truth.entries.len(),
        truth.files.len(),
        dir.display(),
        t0.elapsed().as_secs_f64(),
        if table.is_some() {
            ScanTruth::engine()
        } else {
            "none (no table)"
        }
    );
    // Every client comes from 127.0.0.1: the per-address limit of requests in flight is
    // raised to what as many users from different addresses would have in total (each
    // client has one request in flight, a scan up to 4).
    let per_address = (args.clients * 8).to_string();
    let mut server = ServerProcess::start(
        &args.server,
        dir,
        &["--max-requests-per-client", &per_address],
    )?;
    let base = server.base_url().to_owned();
    let initial = proc_stats(server.pid())?;

    // Warm-up: every kind a few times from one client, checked like the load.
    let warm = Shared {
        window: Mutex::new(Tally::new()),
        total: Mutex::new(Tally::new()),
        shown: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    };
    {
        let mut client = Client::new(
            connect(&base, args.retries)?,
            &truth,
            table.as_ref(),
            Rng::new(args.seed),
        );
        for _ in 0..3 {
            for kind in 0..KINDS.len() {
                let t = Instant::now();
                let r = client.run(kind);
                warm.record(kind, t.elapsed().as_secs_f64() * 1e3, r);
            }
        }
    }
    let warm_errors = warm
        .total
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .error_count();
    let before = settle(&server, initial.fds + args.fd_bound)?;
    println!(
        "server {base}: rss {:.1} MiB, fds {} at start; rss {:.1} MiB, fds {} after warm-up ({warm_errors} errors)",
        mib(initial.rss_kib),
        initial.fds,
        mib(before.rss_kib),
        before.fds
    );

    let soak = args.soak_minutes > 0.0;
    let deadline = soak.then(|| Duration::from_secs_f64(args.soak_minutes * 60.0));
    println!(
        "load: {} clients x {}, seed {}, retries {}",
        args.clients,
        match deadline {
            Some(d) => format!("{:.0} s of requests (soak)", d.as_secs_f64()),
            None => format!("{} requests", args.requests),
        },
        args.seed,
        args.retries
    );
    let shared = Shared {
        window: Mutex::new(Tally::new()),
        total: Mutex::new(Tally::new()),
        shown: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    };
    let start = Instant::now();
    let client_before = proc_stats(std::process::id())?;
    let setup_errors = Mutex::new(Vec::new());
    let (peaks, windows) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.clients)
            .map(|c| {
                let (shared, truth, table, base) = (&shared, &truth, table.as_ref(), &base);
                let setup_errors = &setup_errors;
                s.spawn(move || {
                    let seed = args.seed ^ (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    let conn = match connect(base, args.retries) {
                        Ok(conn) => conn,
                        Err(e) => {
                            setup_errors
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(e.0);
                            return;
                        }
                    };
                    let mut client = Client::new(conn, truth, table, Rng::new(seed));
                    let mut pick = Rng::new(seed.rotate_left(17));
                    let mut done = 0usize;
                    loop {
                        let more = match deadline {
                            Some(d) => start.elapsed() < d,
                            None => done < args.requests,
                        };
                        if !more {
                            break;
                        }
                        let kind = pick_kind(&mut pick);
                        let t = Instant::now();
                        let r = client.run(kind);
                        shared.record(kind, t.elapsed().as_secs_f64() * 1e3, r);
                        done += 1;
                    }
                })
            })
            .collect();
        let monitor = s.spawn(|| monitor(&shared, server.pid(), start));
        for h in handles {
            let _ = h.join();
        }
        shared.stop.store(true, Ordering::Relaxed);
        monitor.join().unwrap_or_default()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let during = proc_stats(server.pid())?;
    let client_cpu_s = (proc_stats(std::process::id())?.cpu_ms - client_before.cpu_ms) as f64 / 1e3;
    let server_cpu_s = (during.cpu_ms - before.cpu_ms) as f64 / 1e3;
    let after = settle(&server, before.fds + args.fd_bound)?;
    let alive = server.alive();
    drop(server);

    let total = shared.total.into_inner().unwrap_or_else(|e| e.into_inner());
    let setup_errors = setup_errors.into_inner().unwrap_or_default();
    for e in &setup_errors {
        eprintln!("error: client setup: {e}");
    }
    println!(
        "\n{:<12} {:>9} {:>7} {:>9} {:>9}",
        "kind", "requests", "errors", "p50 ms", "p99 ms"
    );
    let mut kinds = serde_json::Map::new();
    for (k, name) in KINDS.iter().enumerate() {
        kinds.insert(
            (*name).into(),
            kind_figures(name, &total.latency_ms[k], total.errors[k]),
        );
    }
    let overall = kind_figures("all", &total.all(), total.error_count());
    let n = total.requests();
    let errors = total.error_count() + warm_errors + setup_errors.len() as u64;
    let fd_growth = after.fds as i64 - before.fds as i64;
    let rss_max = peaks.rss_kib.max(during.rss_kib).max(after.hwm_kib);
    println!(
        "\n{} clients x {} requests: {n} requests in {elapsed:.1} s = {:.1} requests/s, {errors} errors",
        args.clients,
        if soak {
            "(soak)".to_string()
        } else {
            args.requests.to_string()
        },
        n as f64 / elapsed
    );
    println!(
        "cpu: server {server_cpu_s:.1} s ({:.2} ms a request), load tool {client_cpu_s:.1} s",
        server_cpu_s * 1e3 / n.max(1) as f64
    );
    println!(
        "server rss {:.1} MiB before, {:.1} MiB after, {:.1} MiB max; fds {} before, {} after \
         (growth {fd_growth}, bound {}), {} max; {}",
        mib(before.rss_kib),
        mib(after.rss_kib),
        mib(rss_max),
        before.fds,
        after.fds,
        args.fd_bound,
        peaks.fds.max(during.fds),
        if alive { "alive" } else { "DIED" }
    );
    let rss_growth = match (windows.first(), windows.last()) {
        (Some(a), Some(b)) if windows.len() > 1 => {
            b["rss_kib"].as_i64().unwrap_or(0) - a["rss_kib"].as_i64().unwrap_or(0)
        }
        _ => after.rss_kib as i64 - before.rss_kib as i64,
    };
    let ok = errors == 0 && alive && fd_growth <= args.fd_bound as i64;
    print_result(
        "load",
        json!({
            "clients": args.clients,
            "requests_per_client": if soak { Value::Null } else { args.requests.into() },
            "soak_minutes": args.soak_minutes,
            "seed": args.seed,
            "retries": args.retries,
            "scan_engine": if table.is_some() { ScanTruth::engine() } else { "none" },
            "requests": n,
            "errors": errors,
            "seconds": elapsed,
            "rps": n as f64 / elapsed,
            "p50_ms": overall["p50_ms"],
            "p99_ms": overall["p99_ms"],
            "kinds": kinds,
            "rss_kib_initial": initial.rss_kib,
            "rss_kib_before": before.rss_kib,
            "rss_kib_after": after.rss_kib,
            "rss_kib_max": rss_max,
            "rss_growth_kib": rss_growth,
            "fds_initial": initial.fds,
            "fds_before": before.fds,
            "fds_after": after.fds,
            "fds_max": peaks.fds.max(during.fds),
            "fd_growth": fd_growth,
            "fd_bound": args.fd_bound,
            "server_cpu_s": server_cpu_s,
            "client_cpu_s": client_cpu_s,
            "server_alive": alive,
            "windows": windows,
            "ok": ok,
        }),
    );
    Ok(ok)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("load: {e}");
            print_result("load", json!({"ok": false, "error": e.0}));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
