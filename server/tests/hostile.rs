//! A catalogue of hostile requests against the embedded server, sent over raw TCP: path
//! traversal in every encoding, escaping symlinks, hidden and restricted directories,
//! malformed msgpack bodies, wrong content types, oversized bodies, absurd slices and
//! parameters, malformed HTTP, unknown endpoints and methods, corrupt HDF5 files and bad
//! credentials. Each case has its expected status; after each one the server must still
//! answer a valid slice request byte for byte as before. Every socket has a read timeout,
//! and a timeout counts as a failure.
//!
//! `cargo test -p hdfstream-server --test hostile -- --nocapture` prints the summary line.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use hdfstream_server::sample::{SampleOptions, write_sample};
use hdfstream_server::{ServeConfig, ServerHandle, hash_password};

/// Read timeout of every socket: a reply that takes longer is a failure (a hang).
const TIMEOUT: Duration = Duration::from_secs(10);
/// Text of the file outside the served root; no response may contain it.
const SECRET: &[u8] = b"outside-the-root-secret";
/// Text of the file in the hidden directory inside the root.
const HIDDEN_SECRET: &[u8] = b"hidden-directory-secret";
/// Text of the file in the restricted directory.
const RESTRICTED_SECRET: &[u8] = b"restricted-directory-secret";
/// The only user: holds role `other`, not the `restricted-access` the restricted tree needs.
const USER: (&str, &str) = ("alice", "wonderland");
/// Body limit of the second server (413 beyond).
const SMALL_BODY_LIMIT: usize = 64 << 10;
/// Gas particles of the sample: `PartType0/Coordinates` has shape [1000, 3].
const PARTICLES: u64 = 1000;
const SNAP: &str = "sample/snap_0000.hdf5";
const COORDS: &str = "/PartType0/Coordinates";

/// What a case must get back.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exactly this status.
    Status(u16),
    /// One of these statuses (where HTTP allows either, e.g. 400 or 505 for an unknown
    /// protocol version).
    OneOf(&'static [u16]),
    /// This status, or the connection closed with no response at all (for input that is
    /// not an HTTP/1.x request, which the server cannot answer in its own protocol).
    StatusOrClosed(u16),
}

impl Expect {
    fn accepts(self, status: Option<u16>) -> bool {
        match (self, status) {
            (Expect::Status(want), Some(got)) => want == got,
            (Expect::OneOf(set), Some(got)) => set.contains(&got),
            (Expect::StatusOrClosed(want), got) => got.is_none_or(|g| g == want),
            (_, None) => false,
        }
    }
}

/// Which server a case goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// Users file, access rules, default limits.
    Main,
    /// A 64 KiB body limit.
    Small,
}

struct Case {
    category: &'static str,
    name: String,
    target: Target,
    request: Vec<u8>,
    expect: Expect,
    /// Byte strings the response (head and body) must not contain.
    deny: Vec<&'static [u8]>,
}

/// A reply as read from the socket.
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

// ---------------------------------------------------------------- msgpack helpers

fn mp_str(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match s.len() {
        n if n < 32 => out.push(0xa0 | n as u8),
        n if n < 256 => out.extend([0xd9, n as u8]),
        n if n < 65536 => {
            out.push(0xda);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(0xdb);
            out.extend((n as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(s);
    out
}

fn mp_uint(v: u64) -> Vec<u8> {
    let mut out = vec![0xcf];
    out.extend(v.to_be_bytes());
    out
}

fn mp_int(v: i64) -> Vec<u8> {
    let mut out = vec![0xd3];
    out.extend(v.to_be_bytes());
    out
}

/// `{"object": object, "slice": slice}` with a raw slice encoding.
fn slice_body(object: &str, slice: &[u8]) -> Vec<u8> {
    let mut out = vec![0x82];
    out.extend(mp_str(b"object"));
    out.extend(mp_str(object.as_bytes()));
    out.extend(mp_str(b"slice"));
    out.extend_from_slice(slice);
    out
}

/// `[[start, count], [0, 3]]` with raw start and count encodings (for Coordinates).
fn slice2(start: &[u8], count: &[u8]) -> Vec<u8> {
    let mut out = vec![0x92, 0x92];
    out.extend_from_slice(start);
    out.extend_from_slice(count);
    out.extend([0x92, 0x00, 0x03]);
    out
}

/// `{"object": object, key: value}` with a raw value encoding.
fn object_with(object: &str, key: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x82];
    out.extend(mp_str(b"object"));
    out.extend(mp_str(object.as_bytes()));
    out.extend(mp_str(key.as_bytes()));
    out.extend_from_slice(value);
    out
}

fn object_body(object: &[u8]) -> Vec<u8> {
    let mut out = vec![0x81];
    out.extend(mp_str(b"object"));
    out.extend(mp_str(object));
    out
}

// ---------------------------------------------------------------- request builders

const BASE: &str = "/hdfstream";

fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn get(path: &str) -> Vec<u8> {
    request("GET", &format!("{BASE}/{path}"), &[], b"")
}

fn post_typed(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    request(
        "POST",
        &format!("{BASE}/msgpack/{path}"),
        &[("Content-Type", content_type)],
        body,
    )
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    post_typed(path, "application/x-msgpack", body)
}

fn post_auth(path: &str, authorization: &str, body: &[u8]) -> Vec<u8> {
    request(
        "POST",
        &format!("{BASE}/msgpack/{path}"),
        &[
            ("Content-Type", "application/x-msgpack"),
            ("Authorization", authorization),
        ],
        body,
    )
}

/// A request given byte for byte.
fn raw(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------- the wire

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decode a chunked body; `None` if incomplete or malformed.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Send `bytes` on a new connection and read the reply. `Ok(None)`: the server closed the
/// connection without a status line. `Err`: a timeout or another I/O failure.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Result<Option<Reply>, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| format!("timeout: {e}"))?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| format!("timeout: {e}"))?;
    // A server may answer (and close) before reading everything; the reply still counts.
    let _ = stream.write_all(bytes);
    let _ = stream.flush();
    let mut data = Vec::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!(
                    "no complete reply within {TIMEOUT:?} ({} bytes read)",
                    data.len()
                ));
            }
            // A reset after the reply was sent: keep what arrived.
            Err(_) => break,
        }
        if let Some(end) = find(&data, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let body = &data[end + 4..];
            let lower = head.to_ascii_lowercase();
            let length = lower
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let done = match length {
                Some(n) => body.len() >= n,
                None if lower.contains("transfer-encoding: chunked") => dechunk(body).is_some(),
                None => false,
            };
            if done {
                let body = match length {
                    Some(n) => body[..n].to_vec(),
                    None => dechunk(body).unwrap_or_default(),
                };
                return Ok(parse_head(&head).map(|status| Reply { status, head, body }));
            }
        }
    }
    let Some(end) = find(&data, b"\r\n\r\n") else {
        return if data.is_empty() {
            Ok(None)
        } else {
            Err(format!(
                "incomplete reply: {:?}",
                String::from_utf8_lossy(&data)
            ))
        };
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let body = data[end + 4..].to_vec();
    Ok(parse_head(&head).map(|status| Reply { status, head, body }))
}

fn parse_head(head: &str) -> Option<u16> {
    let line = head.lines().next()?;
    if !line.starts_with("HTTP/1.") {
        return None;
    }
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------- the site

struct Site {
    _tmp: tempfile::TempDir,
    main: ServerHandle,
    small: ServerHandle,
}

fn addr_of(server: &ServerHandle) -> SocketAddr {
    let url = server.base_url();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("base URL has host:port")
}

fn users_file() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{}:{}:other\n",
            USER.0,
            hash_password(USER.1).expect("hash")
        )
    })
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, bytes).expect("write");
}

/// `root/` holds the sample, `bad/` (corrupt and non-HDF5 files), `links/` (symlinks
/// leaving the root), `.hidden/` and `restricted/`; `outside/secret.txt` is next to it.
fn site() -> Site {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    write(&outside.join("secret.txt"), SECRET);
    let opts = SampleOptions {
        particles: PARTICLES,
        files: 1,
        seed: 7,
    };
    let summary = write_sample(&root.join("sample"), &opts).expect("sample");
    let snap = fs::read(&summary.snapshot_files[0]).expect("read sample");
    write(&root.join("bad/zero.hdf5"), b"");
    write(
        &root.join("bad/text.hdf5"),
        b"this is not an HDF5 file at all\n",
    );
    write(&root.join("bad/notes.txt"), b"plain text\n");
    write(&root.join("bad/truncated.hdf5"), &snap[..snap.len() / 2]);
    // The HDF5 signature, then a garbage superblock.
    let mut garbage = snap.clone();
    garbage[8..256].fill(0xab);
    write(&root.join("bad/garbage_superblock.hdf5"), &garbage);
    // Valid superblock, garbage everywhere after the first 2 KiB.
    let mut smashed = snap.clone();
    for (i, b) in smashed.iter_mut().enumerate().skip(2048) {
        *b = (i as u8).wrapping_mul(37) ^ 0x5a;
    }
    write(&root.join("bad/smashed.hdf5"), &smashed);
    write(&root.join(".hidden/secret.txt"), HIDDEN_SECRET);
    write(&root.join("restricted/data.txt"), RESTRICTED_SECRET);
    fs::create_dir_all(root.join("links")).expect("mkdir");
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("links/escape.txt"))
        .expect("symlink");
    std::os::unix::fs::symlink(&outside, root.join("links/escape_dir")).expect("symlink");
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("escape.hdf5"))
        .expect("symlink");
    std::os::unix::fs::symlink("/etc", root.join("links/etc")).expect("symlink");
    write(&root.join("links/inside.txt"), b"inside");

    let users = tmp.path().join("users");
    fs::write(&users, users_file()).expect("users");
    let access = tmp.path().join("access");
    fs::write(&access, "restricted restricted-access\n").expect("access");
    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.users = Some(users);
    config.access = Some(access);
    let main = ServerHandle::start_with(config).expect("main server");

    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.limits.max_body_bytes = SMALL_BODY_LIMIT;
    let small = ServerHandle::start_with(config).expect("small server");
    Site {
        _tmp: tmp,
        main,
        small,
    }
}

/// The valid request sent after every case: rows 0..2 of the gas coordinates.
fn probe() -> Vec<u8> {
    post(SNAP, &slice_body(COORDS, &slice2(&[0x00], &[0x02])))
}

// ---------------------------------------------------------------- the catalogue

fn catalogue() -> Vec<Case> {
    use Expect::*;
    use Target::*;
    let mut cases = Vec::new();
    let mut add = |category: &'static str, name: &str, request: Vec<u8>, expect: Expect| {
        cases.push(Case {
            category,
            name: name.to_owned(),
            target: Main,
            request,
            expect,
            deny: vec![SECRET, HIDDEN_SECRET, RESTRICTED_SECRET],
        });
    };

    // ---- path traversal: every form is an unknown path (404, PROTOCOL.md §1, §7.1)
    let t = "traversal";
    let long = "a/".repeat(5 << 10);
    for (name, path) in [
        ("dotdot download", "download/../../outside/secret.txt"),
        ("dotdot msgpack", "msgpack/../../outside/secret.txt"),
        (
            "dotdot after a real dir",
            "download/sample/../../outside/secret.txt",
        ),
        ("dotdot alone", "download/.."),
        ("single dot segment", "download/sample/./snap_0000.hdf5"),
        (
            "%2e%2e segments",
            "download/%2e%2e/%2e%2e/outside/secret.txt",
        ),
        (
            "%2E%2E%2F in one segment",
            "download/%2E%2E%2F%2E%2E%2Foutside%2Fsecret.txt",
        ),
        ("mixed .%2e", "download/.%2e/outside/secret.txt"),
        (
            "double-encoded %252e",
            "download/%252e%252e/%252e%252e/outside/secret.txt",
        ),
        (
            "encoded backslashes",
            "download/..%5c..%5coutside%5csecret.txt",
        ),
        ("empty segment //", "download/sample//snap_0000.hdf5"),
        ("leading // absolute", "download//etc/passwd"),
        ("encoded absolute path", "download/%2Fetc%2Fpasswd"),
        ("NUL byte", "download/sample/snap_0000.hdf5%00.txt"),
        ("NUL alone", "msgpack/%00"),
        (
            "overlong UTF-8 dots",
            "download/%c0%ae%c0%ae/outside/secret.txt",
        ),
        (
            "overlong UTF-8 slash",
            "download/..%c0%afoutside%c0%afsecret.txt",
        ),
        ("invalid UTF-8", "msgpack/%ff%fe%fd"),
        (
            "fullwidth dots",
            "download/%EF%BC%8E%EF%BC%8E/outside/secret.txt",
        ),
        ("unicode name", "msgpack/%E6%97%A5%E6%9C%AC%E8%AA%9E.hdf5"),
        ("RTL override name", "msgpack/%E2%80%AEfdh.0000_pans"),
        ("windows drive", "download/C:%5cWindows%5cwin.ini"),
        ("symlink to a file outside", "download/links/escape.txt"),
        (
            "symlink to a dir outside",
            "download/links/escape_dir/secret.txt",
        ),
        ("symlink to /etc", "download/links/etc/passwd"),
        ("symlink metadata via msgpack", "msgpack/links/escape.txt"),
        (
            "symlink named .hdf5 as HDF5",
            "msgpack/escape.hdf5?object=/",
        ),
    ] {
        add(t, name, get(path), Status(404));
    }
    add(
        t,
        "10 kB path",
        get(&format!("msgpack/{long}x")),
        Status(400),
    );
    add(
        t,
        "10 kB path download",
        get(&format!("download/{long}x")),
        Status(400),
    );
    add(
        t,
        "raw backslash in target",
        raw(b"GET /hdfstream/download/..\\..\\outside\\secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        OneOf(&[400, 404]),
    );
    add(
        t,
        "raw non-UTF-8 bytes in target",
        raw(b"GET /hdfstream/msgpack/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        OneOf(&[400, 404]),
    );
    add(
        t,
        "listing of a dir with escaping symlinks",
        post("links", &[0x80]),
        Status(200),
    );
    add(
        t,
        "tar of a dir with escaping symlinks",
        get("download/links"),
        Status(200),
    );
    add(t, "download of the root", get("download/"), Status(400));

    // ---- hidden and restricted directories
    let t = "hidden/restricted";
    add(
        t,
        "hidden dir file",
        get("download/.hidden/secret.txt"),
        Status(404),
    );
    add(
        t,
        "hidden dir listing",
        post(".hidden", &[0x80]),
        Status(404),
    );
    add(
        t,
        "hidden dir encoded dot",
        get("download/%2ehidden/secret.txt"),
        Status(404),
    );
    add(
        t,
        "root listing (anonymous)",
        post("", &[0x80]),
        Status(200),
    );
    add(
        t,
        "root listing depth 5",
        post(
            "",
            &[
                0x81, 0xa9, b'm', b'a', b'x', b'_', b'd', b'e', b'p', b't', b'h', 0x05,
            ],
        ),
        Status(200),
    );
    add(
        t,
        "restricted file anonymous",
        get("download/restricted/data.txt"),
        Status(401),
    );
    add(
        t,
        "restricted listing anonymous",
        post("restricted", &[0x80]),
        Status(401),
    );
    add(
        t,
        "restricted file without the role",
        request(
            "GET",
            &format!("{BASE}/download/restricted/data.txt"),
            &[("Authorization", &basic(USER.0, USER.1))],
            b"",
        ),
        Status(403),
    );

    // ---- malformed msgpack bodies and content types (PROTOCOL.md §2.2: 400 / 415)
    let t = "msgpack body";
    let mut deep = vec![0x81];
    deep.extend(mp_str(b"slice"));
    deep.extend(std::iter::repeat_n(0x91, 100_000));
    deep.push(0x00);
    let mut deep_object = vec![0x81];
    deep_object.extend(mp_str(b"object"));
    deep_object.extend(std::iter::repeat_n(0x91, 100_000));
    deep_object.push(0xc0);
    let mut str32 = vec![0x81];
    str32.extend(mp_str(b"object"));
    str32.extend([0xdb, 0xff, 0xff, 0xff, 0xff]);
    str32.extend(b"/Header");
    let mut key32 = vec![0x81, 0xdb, 0xff, 0xff, 0xff, 0xf0];
    key32.extend(b"object");
    let mut bin32 = vec![0x81];
    bin32.extend(mp_str(b"object"));
    bin32.extend([0xc6, 0xff, 0xff, 0xff, 0xff, 0x00]);
    let mut long_name = vec![0x81];
    long_name.extend(mp_str(b"object"));
    long_name.extend(mp_str(&vec![b'a'; 5000]));
    for (name, body) in [
        ("empty body", vec![]),
        ("nil", vec![0xc0]),
        ("reserved byte 0xc1", vec![0xc1]),
        ("array instead of map", vec![0x90]),
        ("string instead of map", mp_str(b"object")),
        (
            "truncated map",
            vec![0x82, 0xa6, b'o', b'b', b'j', b'e', b'c', b't'],
        ),
        (
            "truncated string value",
            vec![0x81, 0xa6, b'o', b'b', b'j', b'e', b'c', b't', 0xa5, b'/'],
        ),
        ("trailing bytes", vec![0x80, 0x80]),
        ("integer key", vec![0x81, 0x01, 0x02]),
        ("object is an integer", object_with_key("object", &[0x05])),
        ("object is a map", object_with_key("object", &[0x80])),
        (
            "max_depth is a string",
            object_with("/", "max_depth", &mp_str(b"3")),
        ),
        (
            "max_depth is a float",
            object_with("/", "max_depth", &[0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]),
        ),
        (
            "data_size_limit is bool",
            object_with("/", "data_size_limit", &[0xc3]),
        ),
        (
            "ext type value",
            object_with("/", "max_depth", &[0xd4, 0x01, 0x00]),
        ),
        ("str32 claiming 4 GB", str32),
        ("key str32 claiming 4 GB", key32),
        ("bin32 claiming 4 GB", bin32),
        (
            "map32 claiming 2^32-1 entries",
            vec![0xdf, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "array32 slice claiming 2^32-1 dims",
            slice_body(COORDS, &[0xdd, 0xff, 0xff, 0xff, 0xff]),
        ),
        ("100000 nested arrays as slice", deep),
        ("100000 nested arrays as object", deep_object),
        (
            "unknown parameter",
            object_with("/", "max_data_size", &[0x00]),
        ),
        ("duplicate parameter", {
            let mut b = vec![0x82];
            b.extend(mp_str(b"object"));
            b.extend(mp_str(b"/"));
            b.extend(mp_str(b"object"));
            b.extend(mp_str(b"/Header"));
            b
        }),
        ("five parameters", {
            let mut b = vec![0x85];
            for k in ["a", "b", "c", "d", "e"] {
                b.extend(mp_str(k.as_bytes()));
                b.push(0x00);
            }
            b
        }),
        ("object name not UTF-8", object_body(b"/\xff\xfe")),
        (
            "object name with control chars",
            object_body(b"/Header\n\x07"),
        ),
        ("object name non-ASCII", object_body("/Hé".as_bytes())),
        ("object name 5000 bytes", long_name),
        ("slice without object", {
            let mut b = vec![0x81];
            b.extend(mp_str(b"slice"));
            b.extend(slice2(&[0x00], &[0x01]));
            b
        }),
    ] {
        add(t, name, post(SNAP, &body), Status(400));
    }
    add(
        t,
        "text/plain content type",
        post_typed(SNAP, "text/plain", &[0x80]),
        Status(415),
    );
    add(
        t,
        "content type with charset",
        post_typed(SNAP, "application/x-msgpack; charset=utf-8", &[0x80]),
        Status(415),
    );
    add(
        t,
        "JSON body",
        post_typed(SNAP, "application/json", br#"{"object": "/"}"#),
        Status(415),
    );
    add(
        t,
        "no content type",
        request("POST", &format!("{BASE}/msgpack/{SNAP}"), &[], &[0x80]),
        Status(415),
    );

    // ---- slices and parameters on /PartType0/Coordinates, shape [1000, 3]
    let t = "slice/params";
    let post_slice = |slice: &[u8]| post(SNAP, &slice_body(COORDS, slice));
    for (name, slice, status) in [
        ("start beyond shape", slice2(&mp_uint(2000), &[0x01]), 404),
        ("count beyond shape", slice2(&[0x00], &mp_uint(1001)), 404),
        ("huge count 2^40", slice2(&[0x00], &mp_uint(1 << 40)), 404),
        (
            "start i64::MAX (end overflows)",
            slice2(&mp_uint(i64::MAX as u64), &[0x01]),
            404,
        ),
        ("start u64::MAX", slice2(&mp_uint(u64::MAX), &[0x01]), 400),
        ("count u64::MAX", slice2(&[0x00], &mp_uint(u64::MAX)), 400),
        ("negative start", slice2(&mp_int(-1), &[0x01]), 404),
        ("negative count", slice2(&[0x00], &mp_int(-5)), 404),
        ("i64::MIN start", slice2(&mp_int(i64::MIN), &[0x01]), 404),
        (
            "column beyond shape",
            vec![0x92, 0x92, 0x00, 0x01, 0x92, 0x02, 0x05],
            404,
        ),
        ("wrong rank (1 dim)", vec![0x91, 0x92, 0x00, 0x01], 404),
        (
            "wrong rank (3 dims)",
            vec![0x93, 0x92, 0x00, 0x01, 0x92, 0x00, 0x01, 0x92, 0x00, 0x01],
            404,
        ),
        ("scalar selection on 2-D", vec![0x90], 404),
        (
            "9 dimensions",
            {
                let mut s = vec![0x99];
                for _ in 0..9 {
                    s.extend([0x92, 0x00, 0x01]);
                }
                s
            },
            400,
        ),
        (
            "three-element dimension",
            vec![0x92, 0x93, 0x00, 0x01, 0x02, 0x92, 0x00, 0x03],
            400,
        ),
        (
            "float start",
            slice2(&[0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0], &[0x01]),
            400,
        ),
        ("string start", slice2(&mp_str(b"0"), &[0x01]), 400),
        ("empty start array", slice2(&[0x90], &[0x01]), 400),
        (
            "count array length mismatch",
            slice2(&[0x93, 0x00, 0x05, 0x09], &[0x92, 0x01, 0x01]),
            400,
        ),
        (
            "multiple starts in dim 1",
            vec![0x92, 0x92, 0x00, 0x01, 0x92, 0x92, 0x00, 0x01, 0x01],
            400,
        ),
        (
            "runs out of order",
            slice2(&[0x92, 0x05, 0x01], &[0x01]),
            404,
        ),
        (
            "overlapping runs",
            slice2(&[0x92, 0x00, 0x01], &[0x02]),
            404,
        ),
        ("slice is a map", vec![0x80], 400),
        ("string slice open-ended", mp_str(b"0:,0:3"), 400),
        ("string slice negative", mp_str(b"-1:2,0:3"), 400),
        ("string slice stop < start", mp_str(b"5:2,0:3"), 400),
        (
            "string slice 2^64",
            mp_str(b"0:18446744073709551616,0:3"),
            400,
        ),
        ("string slice step", mp_str(b"0:10:2,0:3"), 400),
        ("string slice ellipsis", mp_str(b"...,0:3"), 400),
    ] {
        add(t, name, post_slice(&slice), Status(status));
    }
    // 2^24 + 1 runs of one row each (a 16 MiB body, under the default body limit).
    let runs = (1usize << 24) + 1;
    let mut many = vec![0x92, 0x92, 0xdd];
    many.extend((runs as u32).to_be_bytes());
    many.extend(std::iter::repeat_n(0x00, runs));
    many.push(0x01);
    many.extend([0x92, 0x00, 0x03]);
    add(t, "2^24+1 runs", post_slice(&many), Status(400));
    for (name, body, status) in [
        (
            "unknown object",
            object_body(b"/NoSuchGroup/NoSuchDataset"),
            404,
        ),
        (
            "object with ..",
            object_body(b"/PartType0/../../etc/passwd"),
            404,
        ),
        ("empty object name", object_body(b""), 404),
        (
            "group where a dataset is needed",
            slice_body("/PartType0", &slice2(&[0x00], &[0x01])),
            404,
        ),
        (
            "slice of an unknown object",
            slice_body("/nope", &slice2(&[0x00], &[0x01])),
            404,
        ),
        (
            "max_depth i32::MAX",
            object_with("/", "max_depth", &mp_uint(i32::MAX as u64)),
            200,
        ),
        (
            "max_depth 2^32",
            object_with("/", "max_depth", &mp_uint(1 << 32)),
            400,
        ),
        (
            "max_depth -1",
            object_with("/", "max_depth", &mp_int(-1)),
            400,
        ),
        (
            "data_size_limit i64::MAX",
            object_with("/Header", "data_size_limit", &mp_uint(i64::MAX as u64)),
            200,
        ),
        (
            "data_size_limit u64::MAX",
            object_with("/", "data_size_limit", &mp_uint(u64::MAX)),
            400,
        ),
        (
            "data_size_limit -5",
            object_with("/", "data_size_limit", &mp_int(-5)),
            400,
        ),
        ("object on a non-HDF5 file", object_body(b"/"), 404),
    ] {
        let path = if name == "object on a non-HDF5 file" {
            "bad/notes.txt"
        } else {
            SNAP
        };
        add(t, name, post(path, &body), Status(status));
    }
    for (name, path, status) in [
        (
            "GET max_depth not a number",
            format!("msgpack/{SNAP}?object=/&max_depth=abc"),
            400,
        ),
        (
            "GET max_depth beyond int32",
            format!("msgpack/{SNAP}?object=/&max_depth=99999999999"),
            400,
        ),
        (
            "GET data_size_limit negative",
            format!("msgpack/{SNAP}?object=/&data_size_limit=-1"),
            400,
        ),
        (
            "GET slice with bad escapes",
            format!("msgpack/{SNAP}?object={COORDS}&slice=%zz%00"),
            400,
        ),
        (
            "GET listing depth 2^31-1",
            "msgpack/?max_depth=2147483647".to_owned(),
            200,
        ),
    ] {
        add(t, name, get(&path), Status(status));
    }

    // ---- malformed HTTP
    let t = "http";
    let snap_target = format!("{BASE}/msgpack/{SNAP}");
    let with_head = |extra: &str, body: &[u8]| {
        let mut out = format!(
            "POST {snap_target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-msgpack\r\n{extra}\r\n"
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    add(
        t,
        "Content-Length and Transfer-Encoding",
        with_head(
            "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n",
            b"1\r\n\x80\r\n0\r\n\r\n",
        ),
        OneOf(&[200, 400]),
    );
    add(
        t,
        "two different Content-Lengths",
        with_head("Content-Length: 1\r\nContent-Length: 2\r\n", b"\x80\x80"),
        Status(400),
    );
    add(
        t,
        "Content-Length not a number",
        with_head("Content-Length: abc\r\n", b"\x80"),
        Status(400),
    );
    add(
        t,
        "Content-Length negative",
        with_head("Content-Length: -1\r\n", b"\x80"),
        Status(400),
    );
    add(
        t,
        "Content-Length 2^70",
        with_head("Content-Length: 1180591620717411303424\r\n", b"\x80"),
        Status(400),
    );
    add(
        t,
        "chunk size not hex",
        with_head("Transfer-Encoding: chunked\r\n", b"zz\r\n\x80\r\n0\r\n\r\n"),
        Status(400),
    );
    add(
        t,
        "chunk size 2^64-1",
        with_head(
            "Transfer-Encoding: chunked\r\n",
            b"ffffffffffffffffff\r\n\x80\r\n0\r\n\r\n",
        ),
        Status(400),
    );
    add(
        t,
        "unknown transfer coding",
        with_head("Transfer-Encoding: gzip\r\n", b"\x80"),
        OneOf(&[400, 501]),
    );
    add(
        t,
        "garbage request line",
        raw(b"HELLO\r\n\r\n"),
        Status(400),
    );
    add(
        t,
        "binary garbage",
        raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
        Status(400),
    );
    add(
        t,
        "HTTP/0.9 request",
        raw(format!("GET {BASE}/msgpack/\r\n\r\n").as_bytes()),
        StatusOrClosed(400),
    );
    add(
        t,
        "HTTP/2.0 on HTTP/1",
        raw(format!("GET {BASE}/msgpack/ HTTP/2.0\r\nHost: x\r\n\r\n").as_bytes()),
        OneOf(&[400, 505]),
    );
    add(
        t,
        "HTTP/9.9",
        raw(format!("GET {BASE}/msgpack/ HTTP/9.9\r\nHost: x\r\n\r\n").as_bytes()),
        OneOf(&[400, 505]),
    );
    add(
        t,
        "space in target",
        raw(format!("GET {BASE}/msgpack/a b HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()),
        Status(400),
    );
    add(
        t,
        "header without colon",
        raw(format!("GET {BASE}/msgpack/ HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n").as_bytes()),
        Status(400),
    );
    add(
        t,
        "NUL in header value",
        raw(format!("GET {BASE}/msgpack/ HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n").as_bytes()),
        Status(400),
    );
    let many_headers: String = (0..300).map(|i| format!("X-H{i}: v\r\n")).collect();
    add(
        t,
        "300 headers",
        raw(format!("GET {BASE}/msgpack/ HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").as_bytes()),
        Status(431),
    );

    // ---- unknown endpoints and methods
    let t = "endpoint/method";
    for (method, path, status) in [
        ("PUT", "msgpack/sample", 405),
        ("DELETE", "download/sample/snap_0000.hdf5", 405),
        ("PATCH", "msgpack/", 405),
        ("POST", "download/sample/snap_0000.hdf5", 405),
        ("OPTIONS", "msgpack/", 405),
        ("TRACE", "msgpack/", 405),
        ("FOO", "msgpack/", 405),
        ("POST", "status", 405),
        ("GET", "status/more", 404),
        ("GET", "viewer/.assets/nope.js", 404),
        ("GET", "admin", 404),
        ("GET", "", 404),
        ("DELETE", "nothing/here", 404),
    ] {
        add(
            t,
            &format!("{method} {BASE}/{path}"),
            request(method, &format!("{BASE}/{path}"), &[], b""),
            Status(status),
        );
    }
    add(
        t,
        "GET / (outside the base)",
        request("GET", "/", &[], b""),
        Status(404),
    );
    add(
        t,
        "GET /msgpack/ without the base",
        request("GET", "/msgpack/", &[], b""),
        Status(404),
    );

    // ---- corrupt and non-HDF5 files: PROTOCOL.md §7.1 "file not HDF5 / unreadable" is 404
    let t = "corrupt hdf5";
    for file in ["zero", "text", "truncated", "garbage_superblock", "smashed"] {
        let path = format!("bad/{file}.hdf5");
        add(
            t,
            &format!("{file}: root group"),
            post(&path, &object_body(b"/")),
            Status(404),
        );
        add(
            t,
            &format!("{file}: slice"),
            post(&path, &slice_body(COORDS, &slice2(&[0x00], &[0x02]))),
            Status(404),
        );
    }
    add(
        t,
        "zero: file map",
        post("bad/zero.hdf5", &[0x80]),
        Status(200),
    );

    // ---- authentication (users file configured; wrong credentials on any request: 401)
    let t = "auth";
    let listing = |auth: &str| post_auth("", auth, &[0x80]);
    let long_token = format!("Basic {}", b64(&vec![b'a'; 10 << 10]));
    for (name, auth) in [
        ("wrong password", basic(USER.0, "nope")),
        ("unknown user", basic("mallory", USER.1)),
        ("empty password", basic(USER.0, "")),
        ("scheme only", "Basic".to_owned()),
        ("scheme and space", "Basic ".to_owned()),
        ("not base64", "Basic !!!not-base64!!!".to_owned()),
        (
            "base64 without colon",
            format!("Basic {}", b64(b"alicewonderland")),
        ),
        (
            "credentials not UTF-8",
            format!("Basic {}", b64(b"alice:\xff\xfe")),
        ),
        ("Bearer scheme", "Bearer abc.def.ghi".to_owned()),
        ("Digest scheme", "Digest username=\"alice\"".to_owned()),
        ("10 kB token", long_token),
        ("password with NUL", basic(USER.0, "wonder\0land")),
    ] {
        add(t, name, listing(&auth), Status(401));
    }
    let mut non_ascii = format!(
        "POST {BASE}/msgpack/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-msgpack\r\nContent-Length: 1\r\nAuthorization: Basic "
    )
    .into_bytes();
    non_ascii.extend(b"\xe9\xe9\xff\r\n\r\n\x80");
    add(t, "non-ASCII header bytes", non_ascii, Status(401));
    add(
        t,
        "right credentials",
        listing(&basic(USER.0, USER.1)),
        Status(200),
    );

    // ---- body size limit (second server: 64 KiB)
    let mut oversized = vec![0x81];
    oversized.extend(mp_str(b"object"));
    oversized.extend(mp_str(&vec![b'a'; SMALL_BODY_LIMIT + 1024]));
    cases.push(Case {
        category: "body limit",
        name: "body over the limit".to_owned(),
        target: Small,
        request: post(SNAP, &oversized),
        expect: Status(413),
        deny: Vec::new(),
    });
    cases.push(Case {
        category: "body limit",
        name: "chunked body over the limit".to_owned(),
        target: Small,
        request: {
            let mut out = format!(
                "POST {BASE}/msgpack/{SNAP} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-msgpack\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                oversized.len()
            )
            .into_bytes();
            out.extend_from_slice(&oversized);
            out.extend(b"\r\n0\r\n\r\n");
            out
        },
        expect: Status(413),
        deny: Vec::new(),
    });
    cases.push(Case {
        category: "body limit",
        name: "Content-Length of 1 GiB, 1 byte sent".to_owned(),
        target: Small,
        request: {
            let mut out = format!(
                "POST {BASE}/msgpack/{SNAP} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-msgpack\r\nContent-Length: {}\r\n\r\n",
                1u64 << 30
            )
            .into_bytes();
            out.push(0x80);
            out
        },
        expect: Status(413),
        deny: Vec::new(),
    });
    // Listings must not even name what is hidden, restricted or outside the root.
    for case in cases
        .iter_mut()
        .filter(|c| c.name.contains("listing") && c.expect.accepts(Some(200)))
    {
        case.deny
            .extend([&b".hidden"[..], b"escape", b"restricted"]);
    }
    cases
}

fn object_with_key(key: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x81];
    out.extend(mp_str(key.as_bytes()));
    out.extend_from_slice(value);
    out
}

#[test]
fn hostile_requests_get_the_expected_status_and_the_server_keeps_serving() {
    let site = site();
    let main = addr_of(&site.main);
    let small = addr_of(&site.small);
    let probe = probe();
    let reference = |addr| {
        let reply = exchange(addr, &probe)
            .expect("probe answered")
            .expect("probe has a status line");
        assert_eq!(reply.status, 200, "{}", reply.head);
        // {"nd": true, ..., "nbytes": 48, ...}: 2 rows of 3 f64.
        assert!(reply.body.starts_with(&[0x86, 0xa2, b'n', b'd', 0xc3]));
        reply.body
    };
    let expected_main = reference(main);
    assert_eq!(reference(small), expected_main);

    let cases = catalogue();
    let mut failures = Vec::new();
    let mut by_category: Vec<(&str, usize)> = Vec::new();
    let mut passed = 0usize;
    for case in &cases {
        match by_category.iter_mut().find(|(c, _)| *c == case.category) {
            Some((_, n)) => *n += 1,
            None => by_category.push((case.category, 1)),
        }
        let addr = match case.target {
            Target::Main => main,
            Target::Small => small,
        };
        let outcome = exchange(addr, &case.request);
        let label = format!("[{}] {}", case.category, case.name);
        let failures_before = failures.len();
        let shown = match &outcome {
            Ok(Some(reply)) => reply.status.to_string(),
            Ok(None) => "closed".to_owned(),
            Err(e) => e.clone(),
        };
        println!("  {label} -> {shown}");
        match &outcome {
            Ok(reply) => {
                let status = reply.as_ref().map(|r| r.status);
                if !case.expect.accepts(status) {
                    failures.push(format!(
                        "{label}: expected {:?}, got {status:?} ({:?} {:?})",
                        case.expect,
                        reply.as_ref().map(|r| r.head.lines().next().unwrap_or("")),
                        reply.as_ref().map(|r| String::from_utf8_lossy(
                            &r.body[..r.body.len().min(200)]
                        )
                        .into_owned()),
                    ));
                }
                if let Some(reply) = reply {
                    if (500..600).contains(&reply.status)
                        && !case.expect.accepts(Some(reply.status))
                    {
                        failures.push(format!("{label}: server error {}", reply.status));
                    }
                    for word in &case.deny {
                        if find(reply.head.as_bytes(), word).is_some()
                            || find(&reply.body, word).is_some()
                        {
                            failures.push(format!(
                                "{label}: reply contains {:?}",
                                String::from_utf8_lossy(word)
                            ));
                        }
                    }
                }
            }
            Err(e) => failures.push(format!("{label}: {e}")),
        }
        // The server still answers a valid request, byte for byte as before.
        match exchange(addr, &probe) {
            Ok(Some(reply)) if reply.status == 200 && reply.body == expected_main => {}
            Ok(Some(reply)) => failures.push(format!(
                "{label}: then the probe got {} ({} bytes)",
                reply.status,
                reply.body.len()
            )),
            Ok(None) => failures.push(format!("{label}: then the probe got no reply")),
            Err(e) => failures.push(format!("{label}: then the probe failed: {e}")),
        }
        if failures.len() == failures_before {
            passed += 1;
        }
    }
    for (category, n) in &by_category {
        println!("  {category}: {n} cases");
    }
    for failure in &failures {
        println!("FAILED {failure}");
    }
    println!(
        "hostile requests: {} tried, {} answered as expected, server alive",
        cases.len(),
        passed
    );
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Found by `fuzz_server`: every request's path, object name and slice runs (up to 2^16 of
/// them, 1 MiB) were kept in the request log for its last 100 000 requests, so requests of
/// 200 kB grew the server by 1 MiB each, without bound. The log now holds at most
/// `REQUEST_LOG_BYTES`, and the server still answers.
#[test]
fn large_requests_do_not_grow_the_request_log_beyond_its_budget() {
    use hdfstream_server::http::{LOGGED_RUNS, REQUEST_LOG_BYTES};
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = SampleOptions {
        particles: PARTICLES,
        files: 1,
        seed: 7,
    };
    write_sample(&tmp.path().join("sample"), &opts).expect("sample");
    let server = ServerHandle::start(tmp.path()).expect("server");
    let addr = addr_of(&server);
    // LOGGED_RUNS runs of one row: rows 0, 2, 4, ... of a file that does not exist (404).
    let mut starts = vec![0xdd];
    starts.extend((LOGGED_RUNS as u32).to_be_bytes());
    for i in 0..LOGGED_RUNS as u32 {
        starts.extend(mp_uint(u64::from(i) * 2));
    }
    let body = slice_body(COORDS, &slice2(&starts, &[0x01]));
    let request = post("sample/nope.hdf5", &body);
    let each = LOGGED_RUNS * 16;
    let requests = 2 * REQUEST_LOG_BYTES / each;
    for i in 0..requests {
        let reply = exchange(addr, &request)
            .expect("answered")
            .expect("status line");
        assert_eq!(reply.status, 404, "request {i}");
    }
    let log = server.log();
    assert_eq!(log.total_requests(), requests as u64);
    assert!(
        log.retained_bytes() <= REQUEST_LOG_BYTES,
        "{} bytes kept",
        log.retained_bytes()
    );
    let kept = server.request_log();
    assert!(kept.len() < requests && kept.len() >= REQUEST_LOG_BYTES / each - 1);
    // The newest requests are the ones kept, runs and all.
    let last = kept.last().expect("a record");
    assert_eq!(last.slice_runs, Some(LOGGED_RUNS));
    assert_eq!(
        last.slice_rows.as_deref().map(<[_]>::len),
        Some(LOGGED_RUNS)
    );
    let probe = exchange(addr, &probe()).expect("probe").expect("status");
    assert_eq!(probe.status, 200);
}
