//! Files that change while the server streams them, and libhdf5 failing mid-stream.
//!
//! A large dataset read is started over raw TCP; the client reads the first megabyte and
//! stops reading, so the server fills the socket buffers and waits. The file is then
//! truncated, rewritten in place, replaced (renamed over) or deleted, and the client reads
//! on. Every time the body must end without its terminating chunk (so any HTTP client sees
//! an error), every byte it did carry must be the byte of the original response (the server
//! never sends data read after the change), and the server must go on serving: other files
//! as before, the changed one as it is now (libhdf5 reading the new file is the truth).
//! The three datasets cover the server's read paths: contiguous (`pread`), deflate chunks
//! (our decoder), and N-bit chunks (libhdf5's `H5Dread`).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hdf5_metno::File;
use hdf5_metno::filters::Filter;
use hdfstream_server::{Limits, ServeConfig, ServerHandle};

/// Elements per dataset: 24 MB responses, more than socket buffers and the server's pieces
/// in flight hold, so the server is still reading when the file changes.
const N: usize = 3 << 20;
const CHUNK: usize = 1 << 16;
const DATASETS: [&str; 3] = ["contiguous", "deflate", "nbit"];
/// Body bytes the client reads before the file changes.
const READ_FIRST: usize = 1 << 20;
const PATIENCE: Duration = Duration::from_secs(60);

/// Values of the datasets of one version of the file, as libhdf5 reads them back.
struct Version {
    /// Per dataset, the little-endian bytes of all its values.
    bytes: Vec<Vec<u8>>,
}

fn write_version(path: &Path, seed: i64) -> Version {
    {
        let file = File::create(path).expect("create");
        let floats: Vec<f64> = (0..N as i64).map(|i| (i * seed) as f64 * 0.5).collect();
        file.new_dataset::<f64>()
            .shape(N)
            .create("contiguous")
            .expect("dataset")
            .write_raw(&floats)
            .expect("write");
        file.new_dataset::<f64>()
            .shape(N)
            .chunk(CHUNK)
            .set_filters(&[Filter::Deflate(1)])
            .create("deflate")
            .expect("dataset")
            .write_raw(&floats)
            .expect("write");
        let ints: Vec<i64> = (0..N as i64).map(|i| (i * seed) % 3_000_000).collect();
        file.new_dataset::<i64>()
            .shape(N)
            .chunk(CHUNK)
            .set_filters(&[Filter::NBit])
            .create("nbit")
            .expect("dataset")
            .write_raw(&ints)
            .expect("write");
    }
    let file = File::open(path).expect("open");
    let floats = |name: &str| -> Vec<u8> {
        let v: Vec<f64> = file.dataset(name).expect("ds").read_raw().expect("read");
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    };
    let ints: Vec<i64> = file.dataset("nbit").expect("ds").read_raw().expect("read");
    Version {
        bytes: vec![
            floats("contiguous"),
            floats("deflate"),
            ints.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ],
    }
}

/// `POST <file> {"object": "/<name>", "slice": [[0, N]]}`.
fn slice_request(file: &str, name: &str) -> Vec<u8> {
    let object = format!("/{name}");
    let mut body = vec![0x82, 0xa6];
    body.extend(b"object");
    body.push(0xa0 | object.len() as u8);
    body.extend(object.as_bytes());
    body.push(0xa5);
    body.extend(b"slice");
    body.extend([0x91, 0x92, 0x00, 0xce]);
    body.extend((N as u32).to_be_bytes());
    let mut out = format!(
        "POST /hdfstream/msgpack/{file} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-msgpack\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend(body);
    out
}

/// A response read so far: status, whether it is chunked, and the raw body bytes.
struct Reply {
    status: u16,
    raw: Vec<u8>,
}

impl Reply {
    /// The body decoded from its chunks, and whether the terminating chunk arrived.
    fn dechunked(&self) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut data = &self.raw[..];
        loop {
            let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
                return (out, false);
            };
            let size = std::str::from_utf8(&data[..eol])
                .ok()
                .and_then(|t| usize::from_str_radix(t.trim(), 16).ok())
                .expect("chunk size line");
            data = &data[eol + 2..];
            if size == 0 {
                return (out, data.starts_with(b"\r\n"));
            }
            let take = size.min(data.len());
            out.extend_from_slice(&data[..take]);
            if take < size || data.len() < size + 2 {
                return (out, false);
            }
            data = &data[size + 2..];
        }
    }
}

/// Sends `request`, reads the head and then until at least `first` body bytes arrived.
fn start(addr: SocketAddr, request: &[u8], first: usize) -> (TcpStream, Reply) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.write_all(request).expect("request");
    let mut data = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let status = head[9..12].parse().expect("status");
            if data.len() - end - 4 >= first || status != 200 {
                let chunked = head.contains("transfer-encoding: chunked");
                assert!(
                    chunked || status != 200,
                    "streamed bodies are chunked: {head}"
                );
                return (
                    stream,
                    Reply {
                        status,
                        raw: data[end + 4..].to_vec(),
                    },
                );
            }
        }
    }
}

/// Reads the rest until the server closes the connection.
fn finish(mut stream: TcpStream, mut reply: Reply) -> Reply {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return reply,
            Ok(n) => reply.raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("no end of the response within {PATIENCE:?}")
            }
            Err(_) => return reply,
        }
    }
}

/// A whole response: status and decoded body; panics if the body is not complete.
fn fetch(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    let (stream, reply) = start(addr, request, 0);
    let reply = finish(stream, reply);
    if reply.status != 200 {
        return (reply.status, reply.raw);
    }
    let (body, complete) = reply.dechunked();
    assert!(complete, "incomplete response of {} bytes", body.len());
    (reply.status, body)
}

/// A response's payload (the values' bytes) is the end of the msgpack map.
fn assert_values(body: &[u8], values: &[u8], what: &str) {
    assert!(
        body.len() > values.len(),
        "{what}: body of {} bytes",
        body.len()
    );
    assert!(
        body[body.len() - values.len()..] == *values,
        "{what}: the values differ from libhdf5's"
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// Cut to half its size, in place.
    Truncate,
    /// Overwritten with another version in place (same inode).
    Rewrite,
    /// Another version renamed over it.
    Replace,
    /// Unlinked.
    Delete,
}

fn apply(change: Change, served: &Path, other: &Path) {
    match change {
        Change::Truncate => {
            let len = std::fs::metadata(served).expect("meta").len();
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(served)
                .expect("open");
            file.set_len(len / 2).expect("truncate");
        }
        Change::Rewrite => {
            std::fs::copy(other, served).expect("rewrite");
        }
        Change::Replace => {
            let staged = served.with_extension("staged");
            std::fs::copy(other, &staged).expect("stage");
            std::fs::rename(&staged, served).expect("rename");
        }
        Change::Delete => std::fs::remove_file(served).expect("delete"),
    }
}

/// A request, repeated while the server answers 503 (an older version of the file still
/// open elsewhere); its final status and body.
fn fetch_settled(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    for _ in 0..100 {
        let (status, body) = fetch(addr, request);
        if status != 503 {
            return (status, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("still 503 after 100 tries");
}

struct Bench {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    pristine: PathBuf,
    other: PathBuf,
    server: ServerHandle,
    addr: SocketAddr,
    version_a: Version,
    version_b: Version,
    /// The server's answers before any change (checked against libhdf5).
    reference: Vec<Vec<u8>>,
    probe: Vec<u8>,
    probe_body: Vec<u8>,
}

fn bench() -> Bench {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let pristine = tmp.path().join("a.hdf5");
    let other = tmp.path().join("b.hdf5");
    let version_a = write_version(&pristine, 1);
    let version_b = write_version(&other, 3);
    std::fs::copy(&pristine, root.join("big.hdf5")).expect("copy");
    // An unchanged file for the probe.
    write_version(&root.join("steady.hdf5"), 5);
    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.limits = Limits {
        chunk_bytes: 64 << 10,
        ..Limits::default()
    };
    let server = ServerHandle::start_with(config).expect("server");
    let url = server.base_url().to_owned();
    let addr = url["http://".len()..]
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("addr");
    let reference: Vec<Vec<u8>> = DATASETS
        .iter()
        .zip(&version_a.bytes)
        .map(|(name, values)| {
            let (status, body) = fetch(addr, &slice_request("big.hdf5", name));
            assert_eq!(status, 200, "{name}");
            assert_values(&body, values, name);
            body
        })
        .collect();
    let probe = slice_request("steady.hdf5", "contiguous");
    let (status, probe_body) = fetch(addr, &probe);
    assert_eq!(status, 200);
    Bench {
        _tmp: tmp,
        root,
        pristine,
        other,
        server,
        addr,
        version_a,
        version_b,
        reference,
        probe,
        probe_body,
    }
}

impl Bench {
    /// Streams `dataset`, applies `change` once the server is blocked on a full socket,
    /// and checks the outcome.
    fn run(&self, change: Change, dataset: usize) {
        let name = DATASETS[dataset];
        let what = format!("{change:?} during a read of {name}");
        let served = self.root.join("big.hdf5");
        // A fresh copy of version A (a new inode) for each case.
        let _ = std::fs::remove_file(&served);
        std::fs::copy(&self.pristine, &served).expect("copy");
        let request = slice_request("big.hdf5", name);
        self.server.clear_request_log();
        let (stream, reply) = start(self.addr, &request, READ_FIRST);
        assert_eq!(reply.status, 200, "{what}");
        // The server fills the socket buffers, then waits for the client.
        std::thread::sleep(Duration::from_millis(300));
        apply(change, &served, &self.other);
        let reply = finish(stream, reply);
        let (body, complete) = reply.dechunked();
        let expected = &self.reference[dataset];
        println!(
            "{what}: body ended after {} of {} bytes, terminated: {complete}",
            body.len(),
            expected.len()
        );
        assert!(!complete, "{what}: the body ended as if complete");
        assert!(body.len() < expected.len(), "{what}: {} bytes", body.len());
        assert!(
            expected.starts_with(&body),
            "{what}: bytes not of the original file were sent"
        );
        let log = self.server.request_log();
        let record = log.iter().find(|r| r.object.is_some()).expect("logged");
        assert_eq!(record.status, 200, "{what}");
        assert!(!record.complete, "{what}: {record:?}");
        // The server goes on: another file as before, the changed one as it is now.
        assert_eq!(
            fetch(self.addr, &self.probe),
            (200, self.probe_body.clone()),
            "{what}: probe"
        );
        let (status, now) = fetch_settled(self.addr, &request);
        match change {
            Change::Truncate | Change::Delete => assert_eq!(status, 404, "{what}"),
            Change::Rewrite | Change::Replace => {
                assert_eq!(status, 200, "{what}");
                assert_values(&now, &self.version_b.bytes[dataset], &what);
            }
        }
    }
}

impl Bench {
    /// The same for a `/download` of the file: fewer bytes than its `Content-Length`, all
    /// of them the original file's.
    fn run_download(&self, change: Change) {
        let what = format!("{change:?} during a download");
        let served = self.root.join("big.hdf5");
        let _ = std::fs::remove_file(&served);
        std::fs::copy(&self.pristine, &served).expect("copy");
        let original = std::fs::read(&served).expect("read");
        let request =
            b"GET /hdfstream/download/big.hdf5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        stream.write_all(request).expect("request");
        let mut data = vec![0u8; READ_FIRST];
        stream.read_exact(&mut data).expect("first bytes");
        std::thread::sleep(Duration::from_millis(300));
        apply(change, &served, &self.other);
        let _ = stream.read_to_end(&mut data);
        let end = data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head");
        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("content-length");
        let body = &data[end + 4..];
        println!("{what}: {} of {length} bytes", body.len());
        assert_eq!(length, original.len());
        assert!(body.len() < length, "{what}: complete");
        assert!(original.starts_with(body), "{what}: foreign bytes");
    }
}

#[test]
fn a_file_changed_while_it_streams_ends_the_body_as_an_error_without_foreign_bytes() {
    let bench = bench();
    assert_ne!(bench.version_a.bytes, bench.version_b.bytes);
    for change in [
        Change::Truncate,
        Change::Rewrite,
        Change::Replace,
        Change::Delete,
    ] {
        for dataset in 0..DATASETS.len() {
            bench.run(change, dataset);
        }
        bench.run_download(change);
    }
}

/// Flips bytes in the middle of the stored bytes of chunk `index` of `name`.
fn corrupt_chunk(path: &Path, name: &str, index: usize) {
    let (addr, size) = {
        let file = File::open(path).expect("open");
        let info = file
            .dataset(name)
            .expect("dataset")
            .chunk_info(index)
            .expect("chunk info");
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
fn a_chunk_failing_to_decode_mid_stream_ends_the_body_as_an_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let n: u32 = 1 << 20;
    let write = |path: &Path| {
        let file = File::create(path).expect("create");
        let floats: Vec<f64> = (0..n).map(|i| f64::from(i) * 0.25).collect();
        // Checked by our decoder (deflate + Fletcher-32 read with pread).
        file.new_dataset::<f64>()
            .shape(n as usize)
            .chunk(CHUNK)
            .set_filters(&[Filter::Deflate(1), Filter::Fletcher32])
            .create("deflate")
            .expect("dataset")
            .write_raw(&floats)
            .expect("write");
        // Checked by libhdf5 (N-bit is decoded by H5Dread).
        let ints: Vec<i64> = (0..i64::from(n)).collect();
        file.new_dataset::<i64>()
            .shape(n as usize)
            .chunk(CHUNK)
            .set_filters(&[Filter::NBit, Filter::Fletcher32])
            .create("nbit")
            .expect("dataset")
            .write_raw(&ints)
            .expect("write");
    };
    write(&root.join("good.hdf5"));
    write(&root.join("bad.hdf5"));
    let chunks = n as usize / CHUNK;
    corrupt_chunk(&root.join("bad.hdf5"), "deflate", chunks / 2);
    corrupt_chunk(&root.join("bad.hdf5"), "nbit", chunks / 2);
    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.limits.chunk_bytes = 64 << 10;
    let server = ServerHandle::start_with(config).expect("server");
    let addr = server.base_url()["http://".len()..]
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("addr");
    let one = |file: &str, name: &str| {
        // The slice covers all `n` rows of these smaller datasets.
        let mut request = slice_request(file, name);
        let at = request.len() - 4;
        request[at..].copy_from_slice(&n.to_be_bytes());
        request
    };
    for name in ["deflate", "nbit"] {
        let (status, good) = fetch(addr, &one("good.hdf5", name));
        assert_eq!(status, 200);
        let (stream, reply) = start(addr, &one("bad.hdf5", name), 0);
        assert_eq!(
            reply.status, 200,
            "{name}: the error comes after the first bytes"
        );
        let (body, complete) = finish(stream, reply).dechunked();
        println!(
            "corrupt chunk of {name}: body ended after {} of {} bytes, terminated: {complete}",
            body.len(),
            good.len()
        );
        assert!(!complete, "{name}: the body ended as if complete");
        assert!(
            good.starts_with(&body),
            "{name}: wrong bytes before the error"
        );
        // Half the chunks come before the corrupt one; those still in the server's read-ahead
        // when it fails may be dropped (more of them on a busy machine), so a quarter of the
        // body must have come.
        assert!(body.len() as u64 >= u64::from(n) * 8 / 4, "{name}");
        assert_eq!(
            fetch(addr, &one("good.hdf5", name)),
            (200, good),
            "{name}: after"
        );
    }
    let log = server.request_log();
    assert!(
        log.iter()
            .filter(|r| r.vpath.as_deref() == Some("bad.hdf5"))
            .all(|r| r.status == 200 && !r.complete),
        "{log:?}"
    );
}

/// Paths of this process's open descriptors on deleted files.
fn deleted_files_held() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .map(|p| p.to_string_lossy().into_owned())
                .filter(|p| p.ends_with("(deleted)") && p.contains(".hdf5"))
                .collect()
        })
        .unwrap_or_default()
}

/// Values of `/x` of `path` as the server's HDF5 layer answers them, or the error status.
fn ask_x(files: &hdfstream_server::hdf5::Hdf5Files, path: &Path) -> Result<Vec<u8>, u16> {
    let request = hdfstream_protocol::ObjectRequest {
        object: Some("/x".to_owned()),
        slice: Some(hdfstream_protocol::SliceSpec {
            runs: vec![hdfstream_protocol::DimSelection {
                start: 0,
                count: 1000,
            }],
            rest: Vec::new(),
        }),
        ..Default::default()
    };
    let mut out = Vec::new();
    files
        .write_response(path, &request, &mut out)
        .map(|()| out[out.len() - 8000..].to_vec())
        .map_err(|e| e.status)
}

fn write_x(path: &Path, scale: f64) -> Vec<u8> {
    let values: Vec<f64> = (0..1000).map(|i| f64::from(i) * scale).collect();
    let staged = path.with_extension("new");
    {
        let file = File::create(&staged).expect("create");
        file.new_dataset::<f64>()
            .shape(1000)
            .create("x")
            .expect("dataset")
            .write_raw(&values)
            .expect("write");
    }
    std::fs::rename(&staged, path).expect("rename");
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn the_open_file_cache_follows_the_files_on_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = tmp.path().join("a.hdf5");
    let files = hdfstream_server::hdf5::Hdf5Files::new(8);
    let v1 = write_x(&a, 1.0);
    assert_eq!(ask_x(&files, &a), Ok(v1));
    assert_eq!(files.open_files(), 1);
    // Replaced (renamed over): the new file is read, the old one closed.
    let v2 = write_x(&a, 2.0);
    assert_eq!(ask_x(&files, &a), Ok(v2.clone()));
    assert_eq!(files.open_files(), 1);
    assert!(
        deleted_files_held().is_empty(),
        "{:?}",
        deleted_files_held()
    );
    // Replaced by a file of the same size and modification time (as `cp -p` or
    // `rsync -t` make): still noticed (another inode).
    let staged = tmp.path().join("same.hdf5");
    let v2b = write_x(&staged, -2.0);
    let mtime = std::fs::metadata(&a)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::File::options()
        .write(true)
        .open(&staged)
        .and_then(|f| f.set_modified(mtime))
        .expect("set mtime");
    assert_eq!(
        std::fs::metadata(&staged).map(|m| m.len()).ok(),
        std::fs::metadata(&a).map(|m| m.len()).ok()
    );
    std::fs::rename(&staged, &a).expect("replace");
    assert_eq!(ask_x(&files, &a), Ok(v2b));
    // Rewritten in place (same inode, new times): read again.
    let staged = tmp.path().join("v3.hdf5");
    let v3 = write_x(&staged, 3.0);
    std::fs::copy(&staged, &a).expect("rewrite in place");
    assert_eq!(ask_x(&files, &a), Ok(v3));
    // Deleted: 404, and the handle is closed at once.
    std::fs::remove_file(&a).expect("delete");
    assert_eq!(ask_x(&files, &a), Err(404));
    assert_eq!(files.open_files(), 0);
    assert!(
        deleted_files_held().is_empty(),
        "{:?}",
        deleted_files_held()
    );
    // Deleted and never asked for again: closed by the periodic check.
    let b = tmp.path().join("b.hdf5");
    let vb = write_x(&b, 4.0);
    assert_eq!(ask_x(&files, &b), Ok(vb));
    std::fs::remove_file(&b).expect("delete");
    assert_eq!(deleted_files_held().len(), 1);
    assert_eq!(files.close_changed(), 1);
    assert_eq!(files.open_files(), 0);
    assert!(
        deleted_files_held().is_empty(),
        "{:?}",
        deleted_files_held()
    );
}

#[test]
fn a_file_rewritten_in_place_is_not_reopened_while_its_old_version_is_read() {
    // libhdf5 would give a new open of the same inode the old open's state (metadata read
    // before the rewrite), so a request meanwhile gets 503 (retried by clients), and the
    // new version is read once the old one is closed.
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = tmp.path().join("c.hdf5");
    let files = std::sync::Arc::new(hdfstream_server::hdf5::Hdf5Files::new(8));
    write_x(&c, 1.0);
    let staged = tmp.path().join("next.hdf5");
    let v2 = write_x(&staged, 2.0);
    /// A writer that blocks on its first write until told to go on.
    struct Held(std::sync::mpsc::Receiver<()>, bool);
    impl Write for Held {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.1 {
                self.1 = true;
                let _ = self.0.recv();
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (go, wait) = std::sync::mpsc::channel();
    let reading = {
        let files = std::sync::Arc::clone(&files);
        let c = c.clone();
        std::thread::spawn(move || {
            let request = hdfstream_protocol::ObjectRequest {
                object: Some("/x".to_owned()),
                ..Default::default()
            };
            files.write_response(&c, &request, &mut Held(wait, false))
        })
    };
    while files.open_files() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::copy(&staged, &c).expect("rewrite in place");
    assert_eq!(ask_x(&files, &c), Err(503));
    go.send(()).expect("release the reader");
    let _ = reading.join().expect("reader thread");
    assert_eq!(ask_x(&files, &c), Ok(v2));
}
