//! Faults on the server side, seen by the clients:
//!
//! * a file truncated, rewritten, replaced or deleted while a large read streams (a proxy
//!   holds the response after 2 MB until the file has changed), and a chunk that fails to
//!   decode half-way through a response: the real Python `hdfstream` client raises, and
//!   ours returns an error or, after retrying, exactly one version of the data — never a
//!   mix, never a short array;
//! * a server killed (SIGKILL) and started again on the same port, twice, during a read
//!   of a large dataset in many slices: our client retries and returns exactly what
//!   libhdf5 reads from the file.
//!
//! The Python parts skip with a message when the venv of `scripts/setup.sh` is absent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdfstream::{
    BackoffConfig, ClientBuilder, Connection, OpenOptions, RetryConfig, open_with, sel,
};
use hdfstream_server::{ContentCoding, ServeConfig, ServerHandle};

/// Rows of the large datasets: 24 MB of f64, more than the socket buffers hold.
const ROWS: usize = 3 << 20;
const PATIENCE: Duration = Duration::from_secs(60);

fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("HDFSTREAM_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hdfstream-venv"))
        })?;
    let python = venv.join("bin/python");
    if python.exists() {
        Some(python)
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the Python checks: run scripts/setup.sh"
        );
        println!("SKIP (Python part): no venv with hdfstream (run scripts/setup.sh)");
        None
    }
}

/// Writes `/x` (contiguous) and `/z` (deflate chunks, Fletcher-32) with `rows` values
/// `i * scale`; returns them as libhdf5 reads them back.
fn write_file(path: &Path, rows: usize, scale: f64) -> Vec<f64> {
    {
        let file = hdf5_metno::File::create(path).expect("create");
        let values: Vec<f64> = (0..rows).map(|i| i as f64 * scale).collect();
        file.new_dataset::<f64>()
            .shape(rows)
            .create("x")
            .expect("dataset")
            .write_raw(&values)
            .expect("write");
        file.new_dataset::<f64>()
            .shape(rows)
            .chunk(1 << 16)
            .set_filters(&[
                hdf5_metno::filters::Filter::Deflate(1),
                hdf5_metno::filters::Filter::Fletcher32,
            ])
            .create("z")
            .expect("dataset")
            .write_raw(&values)
            .expect("write");
    }
    hdf5_metno::File::open(path)
        .and_then(|f| f.dataset("x"))
        .and_then(|d| d.read_raw())
        .expect("read back")
}

fn addr_of(base_url: &str) -> SocketAddr {
    base_url
        .split_once("://")
        .map_or(base_url, |(_, r)| r)
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("base URL has host:port")
}

fn client(base: &str) -> Connection {
    ClientBuilder::new()
        .with_url(base)
        .with_retry(RetryConfig {
            max_retries: 20,
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(400),
                base: 2.0,
            },
            retry_timeout: PATIENCE,
        })
        .with_timeout(PATIENCE)
        .with_progress(false)
        .with_probe(false)
        .build()
        .expect("client")
}

/// Our client reading all of `name` from `vpath`.
fn rust_read(base: &str, vpath: &str, name: &str) -> hdfstream::Result<Vec<f64>> {
    let file = open_with(Arc::new(client(base)), vpath, OpenOptions::default())?.into_file()?;
    let values = file.dataset(name)?.read::<f64>()?;
    Ok(values.iter().copied().collect())
}

const PYTHON_READ: &str = r#"
import sys
import numpy as np
import hdfstream
hdfstream.disable_progress(True)
server, path, name = sys.argv[1:4]
try:
    data = hdfstream.open(server, path)[name][...]
except Exception as e:
    print(f"ERROR {type(e).__name__}: {e}"[:400])
else:
    print(f"OK {data.size} {float(np.asarray(data, dtype=np.float64).sum())!r}")
"#;

/// The Python client reading all of `name`: `Err(exception)` or `Ok((size, sum))`.
fn python_read(python: &Path, base: &str, vpath: &str, name: &str) -> Result<(usize, f64), String> {
    let output = Command::new(python)
        .arg("-c")
        .arg(PYTHON_READ)
        .args([base, vpath, name])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = stdout.lines().last().unwrap_or("").to_owned();
    if let Some(error) = line.strip_prefix("ERROR ") {
        return Err(error.to_owned());
    }
    let mut parts = line
        .strip_prefix("OK ")
        .unwrap_or_else(|| {
            panic!(
                "python: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .split(' ');
    let size = parts.next().and_then(|s| s.parse().ok()).expect("size");
    let sum = parts.next().and_then(|s| s.parse().ok()).expect("sum");
    Ok((size, sum))
}

// ---------------------------------------------------------------- a proxy that holds

/// A TCP proxy that, once armed, holds the first response that passes `hold_after` bytes
/// on a connection until told to go on (so that a file can change mid-stream).
struct HoldingProxy {
    addr: SocketAddr,
    armed: Arc<AtomicBool>,
    held: Receiver<()>,
    resume: Sender<()>,
}

/// What the server-to-client pipe of a connection needs to hold a response.
#[derive(Clone)]
struct Hold {
    after: usize,
    armed: Arc<AtomicBool>,
    held: Sender<()>,
    resume: Arc<Mutex<Receiver<()>>>,
}

impl HoldingProxy {
    fn start(upstream: SocketAddr, hold_after: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let armed = Arc::new(AtomicBool::new(false));
        let (held_tx, held) = channel();
        let (resume, resume_rx) = channel();
        let hold = Hold {
            after: hold_after,
            armed: Arc::clone(&armed),
            held: held_tx,
            resume: Arc::new(Mutex::new(resume_rx)),
        };
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                std::thread::spawn(move || pipe(c2, s2, None));
                let hold = hold.clone();
                std::thread::spawn(move || pipe(server, client, Some(hold)));
            }
        });
        Self {
            addr,
            armed,
            held,
            resume,
        }
    }

    fn base_url(&self) -> String {
        format!("http://{}/hdfstream", self.addr)
    }

    /// Holds the next response that passes the threshold.
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Waits until a response is held.
    fn wait_held(&self) {
        self.held
            .recv_timeout(PATIENCE)
            .expect("a response was held");
    }

    /// Lets the held response go on.
    fn release(&self) {
        self.resume.send(()).expect("proxy alive");
    }
}

/// Copies `from` to `to` until the end, then closes `to` for writing; with `hold`, stops
/// once past its byte count (if the proxy is armed) until released.
fn pipe(mut from: TcpStream, mut to: TcpStream, hold: Option<Hold>) {
    let mut buf = vec![0u8; 64 << 10];
    let mut copied = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        copied += n;
        if let Some(hold) = &hold
            && copied >= hold.after
            && hold.armed.swap(false, Ordering::SeqCst)
        {
            let _ = hold.held.send(());
            let _ = hold.resume.lock().map(|r| r.recv_timeout(PATIENCE));
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

// ---------------------------------------------------------------- files changing mid-read

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Truncate,
    Rewrite,
    Replace,
    Delete,
}

fn apply(change: Change, served: &Path, other: &Path) {
    match change {
        Change::Truncate => {
            let len = std::fs::metadata(served).expect("meta").len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(served)
                .and_then(|f| f.set_len(len / 2))
                .expect("truncate");
        }
        Change::Rewrite => {
            std::fs::copy(other, served).expect("rewrite in place");
        }
        Change::Replace => {
            let staged = served.with_extension("staged");
            std::fs::copy(other, &staged).expect("stage");
            std::fs::rename(&staged, served).expect("rename over");
        }
        Change::Delete => std::fs::remove_file(served).expect("delete"),
    }
}

struct Site {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    pristine: PathBuf,
    other: PathBuf,
    a: Vec<f64>,
    b: Vec<f64>,
    _server: ServerHandle,
    proxy: HoldingProxy,
}

/// The files and a server over them (compressing responses when the client accepts it if
/// `compress`), with the holding proxy in front.
fn site(compress: bool) -> Site {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let pristine = tmp.path().join("a.hdf5");
    let other = tmp.path().join("b.hdf5");
    let a = write_file(&pristine, ROWS, 0.5);
    let b = write_file(&other, ROWS, -1.5);
    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    if compress {
        config.compression = vec![ContentCoding::Zstd, ContentCoding::Gzip];
    }
    let server = ServerHandle::start_with(config).expect("server");
    let direct = server.base_url().to_owned();
    let proxy = HoldingProxy::start(addr_of(&direct), 2 << 20);
    Site {
        _tmp: tmp,
        root,
        pristine,
        other,
        a,
        b,
        _server: server,
        proxy,
    }
}

impl Site {
    /// Runs `read` through the proxy while `change` happens to the file mid-response.
    fn during<T: Send + 'static>(
        &self,
        change: Change,
        read: impl FnOnce(String) -> T + Send + 'static,
    ) -> T {
        let served = self.root.join("big.hdf5");
        let _ = std::fs::remove_file(&served);
        std::fs::copy(&self.pristine, &served).expect("copy");
        self.proxy.arm();
        let base = self.proxy.base_url();
        let reader = std::thread::spawn(move || read(base));
        self.proxy.wait_held();
        apply(change, &served, &self.other);
        self.proxy.release();
        reader.join().expect("reader thread")
    }
}

/// Reads through the holding proxy while each change happens; checks both clients.
fn check_changes(site: &Site, changes: &[Change], label: &str) {
    let python = venv_python();
    for &change in changes {
        for name in ["x", "z"] {
            let what = format!("{change:?} during a read of /{name}{label}");
            // Ours: an error, or (after retries) exactly one version of the values.
            let got = site.during(change, move |base| rust_read(&base, "big.hdf5", name));
            match &got {
                Ok(v) if *v == site.b => println!("{what}: ours read the new version"),
                Ok(v) if *v == site.a => println!("{what}: ours read the old version"),
                Ok(v) => panic!("{what}: ours returned wrong data ({} values)", v.len()),
                Err(e) => println!("{what}: ours failed: {e}"),
            }
            if matches!(change, Change::Truncate | Change::Delete) {
                assert!(
                    got.is_err(),
                    "{what}: ours returned data of a file that is gone"
                );
            }
            // The Python client: an exception (it does not retry).
            if let Some(python) = &python {
                let python = python.clone();
                let got = site.during(change, move |base| {
                    python_read(&python, &base, "big.hdf5", name)
                });
                println!("{what}: python: {got:?}");
                assert!(got.is_err(), "{what}: the Python client returned data");
            }
        }
    }
    // Unchanged reads through the same proxy are exact for both.
    let served = site.root.join("big.hdf5");
    let _ = std::fs::remove_file(&served);
    std::fs::copy(&site.pristine, &served).expect("copy");
    let base = site.proxy.base_url();
    assert_eq!(rust_read(&base, "big.hdf5", "z").expect("read"), site.a);
    if let Some(python) = &python {
        let got = python_read(python, &base, "big.hdf5", "x").expect("python read");
        assert_eq!(got, (ROWS, site.a.iter().sum::<f64>()));
    }
}

#[test]
fn clients_see_an_error_when_a_file_changes_mid_read() {
    let all = [
        Change::Truncate,
        Change::Rewrite,
        Change::Replace,
        Change::Delete,
    ];
    check_changes(&site(false), &all, "");
}

#[test]
fn clients_see_an_error_when_a_file_changes_mid_read_of_a_compressed_response() {
    // Ours asks for zstd, the Python client (requests) for gzip.
    check_changes(
        &site(true),
        &[Change::Truncate, Change::Rewrite],
        " (compressed)",
    );
}

fn corrupt_middle_chunk(path: &Path, name: &str) {
    let (addr, size) = {
        let file = hdf5_metno::File::open(path).expect("open");
        let ds = file.dataset(name).expect("dataset");
        let chunks = ds.num_chunks().expect("chunked");
        let info = ds.chunk_info(chunks / 2).expect("chunk info");
        (info.addr, info.size)
    };
    let mut bytes = std::fs::read(path).expect("read");
    let middle = (addr + size / 2) as usize;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn clients_see_an_error_when_a_chunk_fails_to_decode_mid_response() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("bad.hdf5");
    write_file(&path, ROWS, 0.25);
    corrupt_middle_chunk(&path, "z");
    let mut config = ServeConfig::new(tmp.path());
    config.bind = "127.0.0.1:0".parse().expect("addr");
    let server = ServerHandle::start_with(config).expect("server");
    let got = rust_read(server.base_url(), "bad.hdf5", "z");
    println!("ours: {:?}", got.as_ref().map(Vec::len));
    let error = got.expect_err("ours returned data of a corrupt dataset");
    assert!(error.attempts().unwrap_or(0) > 1, "retried: {error}");
    if let Some(python) = venv_python() {
        let got = python_read(&python, server.base_url(), "bad.hdf5", "z");
        println!("python: {got:?}");
        assert!(
            got.is_err(),
            "the Python client returned data of a corrupt dataset"
        );
    }
    let log = server.request_log();
    let slices: Vec<_> = log.iter().filter(|r| r.slice_runs.is_some()).collect();
    assert!(!slices.is_empty());
    assert!(
        slices
            .iter()
            .all(|r| r.status == 200 && !r.complete && r.body_bytes > 1 << 20),
        "each read failed mid-body: {slices:?}"
    );
    // Still serving: the uncorrupted dataset of the same file reads exactly.
    let x = rust_read(server.base_url(), "bad.hdf5", "x").expect("read x");
    assert_eq!(x.len(), ROWS);
    assert!(x.iter().enumerate().all(|(i, &v)| v == i as f64 * 0.25));
}

// ---------------------------------------------------------------- restarts

/// Environment variable with `<root>|<bind address>` that turns the `child_server` test
/// function into the server process of `a_read_survives_server_restarts`.
const CHILD_ENV: &str = "HDFSTREAM_TEST_CHILD_SERVER";

/// Not a test: the server process of `a_read_survives_server_restarts` (run by it, as a
/// child killed with SIGKILL). It prints the base URL and serves until killed or until its
/// standard input closes (the test process went away).
#[test]
#[ignore = "helper process of a_read_survives_server_restarts"]
fn child_server() {
    let Some(spec) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let spec = spec.to_string_lossy().into_owned();
    let (root, bind) = spec.split_once('|').expect("root|bind");
    let mut config = ServeConfig::new(root);
    config.bind = bind.parse().expect("bind address");
    let server = ServerHandle::start_with(config).expect("child server");
    println!("LISTENING {}", server.base_url());
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    std::process::exit(0);
}

/// A server in a child process (this test binary running `child_server`).
struct ChildServer {
    child: Child,
    base_url: String,
}

impl ChildServer {
    fn start(root: &Path, bind: SocketAddr) -> Self {
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args(["child_server", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_ENV, format!("{}|{bind}", root.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base_url = loop {
            let line = lines
                .next()
                .expect("the child server printed its URL")
                .expect("read stdout");
            if let Some(url) = line.strip_prefix("LISTENING ") {
                break url.to_owned();
            }
        };
        Self { child, base_url }
    }

    /// SIGKILL: no graceful shutdown, connections reset by the kernel.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_read_survives_server_restarts() {
    const SLICE: usize = 1 << 17;
    let tmp = tempfile::tempdir().expect("tempdir");
    let truth = write_file(&tmp.path().join("big.hdf5"), ROWS, 0.75);
    let first = ChildServer::start(tmp.path(), "127.0.0.1:0".parse().expect("addr"));
    let base = first.base_url.clone();
    let addr = addr_of(&base);
    let done = Arc::new(AtomicUsize::new(0));
    let reader = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || -> hdfstream::Result<Vec<f64>> {
            let conn = Arc::new(client(&base));
            let file = open_with(conn, "big.hdf5", OpenOptions::default())?.into_file()?;
            let ds = file.dataset("x")?;
            let mut out = Vec::with_capacity(ROWS);
            for start in (0..ROWS).step_by(SLICE) {
                let end = (start + SLICE).min(ROWS) as i64;
                out.extend(ds.read_slice::<f64>(&sel![start as i64..end])?.iter());
                done.fetch_add(1, Ordering::SeqCst);
            }
            Ok(out)
        })
    };
    let slices = ROWS.div_ceil(SLICE);
    let wait_for = |n: usize| {
        let t0 = Instant::now();
        while done.load(Ordering::SeqCst) < n && t0.elapsed() < PATIENCE {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let mut server = first;
    let mut at_kill = Vec::new();
    for after in [slices / 4, slices / 2] {
        wait_for(after);
        at_kill.push(done.load(Ordering::SeqCst));
        server.kill();
        // Down for a moment: the client meets refused connections too.
        std::thread::sleep(Duration::from_millis(300));
        server = ChildServer::start(tmp.path(), addr);
        assert_eq!(
            addr_of(&server.base_url),
            addr,
            "restarted on the same port"
        );
    }
    let got = reader
        .join()
        .expect("reader thread")
        .expect("the read finished");
    println!("{slices} slices; the server was killed after {at_kill:?} of them");
    assert!(
        at_kill.iter().all(|&n| n < slices),
        "killed after the read ended"
    );
    assert_eq!(got.len(), truth.len());
    assert!(got == truth, "values differ from libhdf5's");
    drop(server);
}
