//! Slow and greedy clients over raw TCP, against servers with small limits: request heads
//! sent a byte at a time, stalled request bodies, hundreds of idle connections beyond the
//! connection cap, clients that stop reading a response, stalled TLS handshakes, request
//! smuggling with both Content-Length and Transfer-Encoding, and a shutdown with a
//! response in flight. Each test checks the server cuts what it must and still serves a
//! valid request byte for byte. Every socket has a read timeout, so a hang fails.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use hdfstream_server::sample::{SampleOptions, write_sample};
use hdfstream_server::{Limits, ServeConfig, ServerHandle, TlsConfig};

/// Longest wait for anything the server must do; beyond, the test fails (a hang).
const PATIENCE: Duration = Duration::from_secs(20);
const SNAP: &str = "sample/snap_0000.hdf5";
/// Size of `big.bin`, more than loopback socket buffers hold.
const BIG: usize = 48 << 20;

struct Site {
    _tmp: tempfile::TempDir,
    server: ServerHandle,
    addr: SocketAddr,
}

fn addr_of(server: &ServerHandle) -> SocketAddr {
    let url = server.base_url();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("base URL has host:port")
}

fn write_root(root: &Path, big: bool) {
    let opts = SampleOptions {
        particles: 200,
        files: 1,
        seed: 3,
    };
    write_sample(&root.join("sample"), &opts).expect("sample");
    if big {
        let bytes: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
        std::fs::write(root.join("big.bin"), bytes).expect("big file");
    }
}

/// A server over the sample (and `big.bin` if asked) with `limits`.
fn site(limits: Limits, big: bool) -> Site {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_root(tmp.path(), big);
    let mut config = ServeConfig::new(tmp.path());
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.limits = limits;
    let server = ServerHandle::start_with(config).expect("server");
    let addr = addr_of(&server);
    Site {
        _tmp: tmp,
        server,
        addr,
    }
}

/// `{"object": "/PartType0/Coordinates", "slice": [[0, 2], [0, 3]]}`.
fn slice_body() -> Vec<u8> {
    let mut out = vec![0x82, 0xa6];
    out.extend(b"object");
    out.push(0xb6);
    out.extend(b"/PartType0/Coordinates");
    out.push(0xa5);
    out.extend(b"slice");
    out.extend([0x92, 0x92, 0x00, 0x02, 0x92, 0x00, 0x03]);
    out
}

fn post_head(len: usize, extra: &str) -> String {
    format!(
        "POST /hdfstream/msgpack/{SNAP} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-msgpack\r\nContent-Length: {len}\r\n{extra}\r\n"
    )
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.set_write_timeout(Some(PATIENCE)).expect("timeout");
    stream
}

/// Reads until the server closes the connection (or resets it); `Err` on a timeout.
fn read_to_close(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(data),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "still open after {PATIENCE:?} ({} bytes read)",
                    data.len()
                ));
            }
            Err(_) => return Ok(data),
        }
    }
}

fn status_of(reply: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(reply);
    let line = text.lines().next()?;
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// A valid slice request on a new connection: its status and body (after the head; the
/// response is not chunked when it is short, else the raw chunked bytes).
fn probe(addr: SocketAddr) -> (Option<u16>, Vec<u8>) {
    let mut stream = connect(addr);
    let body = slice_body();
    stream
        .write_all(post_head(body.len(), "").as_bytes())
        .expect("write head");
    stream.write_all(&body).expect("write body");
    let reply = read_to_close(&mut stream).expect("probe answered");
    let at = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(reply.len(), |i| i + 4);
    (status_of(&reply), reply[at..].to_vec())
}

/// The probe's answer when nothing else is going on.
fn reference(addr: SocketAddr) -> Vec<u8> {
    let (status, body) = probe(addr);
    assert_eq!(status, Some(200));
    assert!(body.len() > 48, "{} bytes", body.len());
    body
}

/// Whether the server closed `stream` within `wait` (a read returns end of file or reset).
fn closed_within(mut stream: &TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn a_request_head_sent_a_byte_at_a_time_is_cut_after_the_header_timeout() {
    let limits = Limits {
        header_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let site = site(limits, false);
    let expected = reference(site.addr);
    let head = post_head(10, "X-Padding: slow-loris slow-loris slow-loris\r\n");
    let mut stream = connect(site.addr);
    stream
        .set_read_timeout(Some(Duration::from_millis(400)))
        .expect("timeout");
    let t0 = Instant::now();
    let mut sent = 0;
    let mut reply = Vec::new();
    // One byte every 400 ms: the whole head would take about a minute.
    let cut = loop {
        if sent == head.len() || t0.elapsed() > PATIENCE {
            break false;
        }
        if stream.write_all(&head.as_bytes()[sent..=sent]).is_err() {
            break true;
        }
        sent += 1;
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break true,
        }
    };
    println!(
        "slow head: cut after {:.1} s and {sent} of {} bytes",
        t0.elapsed().as_secs_f64(),
        head.len()
    );
    assert!(cut, "the slow head was not cut ({sent} bytes sent)");
    assert!(sent < head.len());
    assert!(
        reply.is_empty() || status_of(&reply) == Some(408),
        "{reply:?}"
    );
    assert_eq!(probe(site.addr), (Some(200), expected));
}

#[test]
fn a_stalled_request_body_gets_408_and_the_connection_closes() {
    let limits = Limits {
        body_timeout: Duration::from_secs(1),
        min_body_rate: 0,
        ..Limits::default()
    };
    let site = site(limits, false);
    let expected = reference(site.addr);
    let body = slice_body();
    let mut stream = connect(site.addr);
    stream
        .write_all(post_head(body.len(), "").as_bytes())
        .expect("head");
    // Half of the body, then nothing.
    stream.write_all(&body[..body.len() / 2]).expect("part");
    let t0 = Instant::now();
    let reply = read_to_close(&mut stream).expect("the stalled body is cut");
    println!(
        "stalled body: {:?} after {:.1} s",
        status_of(&reply),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(
        status_of(&reply),
        Some(408),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let text = String::from_utf8_lossy(&reply).to_ascii_lowercase();
    assert!(text.contains("connection: close"), "{text}");
    assert!(text.contains("request body not received in time"), "{text}");
    // A body trickling a byte at a time is cut the same way.
    let mut stream = connect(site.addr);
    stream
        .write_all(post_head(body.len(), "").as_bytes())
        .expect("head");
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut reply = Vec::new();
    for byte in &body[..body.len() - 1] {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    reply.extend(read_to_close(&mut stream).expect("the trickling body is cut"));
    assert_eq!(
        status_of(&reply),
        Some(408),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(probe(site.addr), (Some(200), expected));
    let log = site.server.request_log();
    assert_eq!(
        log.iter().filter(|r| r.status == 408).count(),
        2,
        "the log records both 408s: {log:?}"
    );
}

#[test]
fn a_long_body_arriving_at_the_minimum_rate_is_not_cut() {
    // 1 s, plus 1 s per 512 bytes: a 3.6 KB body sent at 1.8 KB/s over 2 s is in time.
    let limits = Limits {
        body_timeout: Duration::from_secs(1),
        min_body_rate: 512,
        ..Limits::default()
    };
    let site = site(limits, false);
    // Rows 0..200 as 200 runs of one row, every number in 9 bytes.
    let mut body = vec![0x82, 0xa6];
    body.extend(b"object");
    body.push(0xb6);
    body.extend(b"/PartType0/Coordinates");
    body.push(0xa5);
    body.extend(b"slice");
    body.extend([0x92, 0x92, 0xdc, 0x00, 0xc8]);
    for row in 0..200u64 {
        body.push(0xcf);
        body.extend(row.to_be_bytes());
    }
    body.extend([0xdc, 0x00, 0xc8]);
    for _ in 0..200 {
        body.push(0xcf);
        body.extend(1u64.to_be_bytes());
    }
    body.extend([0x92, 0x00, 0x03]);
    let mut stream = connect(site.addr);
    stream
        .write_all(post_head(body.len(), "").as_bytes())
        .expect("head");
    for piece in body.chunks(body.len() / 20 + 1) {
        stream.write_all(piece).expect("body piece");
        std::thread::sleep(Duration::from_millis(100));
    }
    let reply = read_to_close(&mut stream).expect("answered");
    assert_eq!(
        status_of(&reply),
        Some(200),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}

#[test]
fn idle_and_slow_connections_beyond_the_cap_do_not_keep_a_client_out() {
    // A header timeout of a minute: only the closing of waiting connections makes room.
    // At the cap, one that waited a second or more goes for each new one accepted, so 600
    // connections ahead of the client in the backlog take about 6 s to pass.
    let limits = Limits {
        max_connections: 100,
        header_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let site = site(limits, false);
    let expected = reference(site.addr);
    let t0 = Instant::now();
    let mut idle: Vec<TcpStream> = (0..600).map(|_| connect(site.addr)).collect();
    for stream in idle.iter_mut().step_by(3) {
        // Slow-header connections: a partial request line.
        stream
            .write_all(b"POST /hdfstream/msg")
            .expect("partial head");
    }
    let opened = t0.elapsed();
    let (status, body) = probe(site.addr);
    println!(
        "600 idle connections opened in {:.1} s (cap 100); a client was served {:.1} s later",
        opened.as_secs_f64(),
        (t0.elapsed() - opened).as_secs_f64()
    );
    assert_eq!(status, Some(200));
    assert_eq!(body, expected);
    // The oldest idle connections were closed to make room.
    let closed = idle
        .iter()
        .take(100)
        .filter(|s| closed_within(s, Duration::from_millis(100)))
        .count();
    assert_eq!(
        closed, 100,
        "only {closed} of the 100 oldest idle connections closed"
    );
}

#[test]
fn busy_connections_at_the_cap_make_new_ones_wait_in_the_backlog() {
    // Two connections with stalled bodies fill the cap: a new client waits until their
    // body timeout frees a slot, then is served.
    let limits = Limits {
        max_connections: 2,
        body_timeout: Duration::from_secs(2),
        min_body_rate: 0,
        ..Limits::default()
    };
    let site = site(limits, false);
    let expected = reference(site.addr);
    let body = slice_body();
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(site.addr);
            s.write_all(post_head(body.len(), "").as_bytes())
                .expect("head");
            s.write_all(&body[..3]).expect("part");
            s
        })
        .collect();
    // Give the server time to read both heads (the connections count as busy then).
    std::thread::sleep(Duration::from_millis(300));
    let (status, got) = probe(site.addr);
    assert_eq!(status, Some(200));
    assert_eq!(got, expected);
    for s in &mut stalled {
        let reply = read_to_close(s).expect("cut");
        assert_eq!(status_of(&reply), Some(408));
    }
}

#[test]
fn a_client_that_stops_reading_is_cut_after_the_send_timeout() {
    let limits = Limits {
        send_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let site = site(limits, true);
    let expected = reference(site.addr);
    let mut stream = connect(site.addr);
    stream
        .write_all(b"GET /hdfstream/download/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    // Read nothing: the server's writes stall once the socket buffers are full.
    let log = site.server.log();
    let t0 = Instant::now();
    let download = || {
        log.snapshot()
            .into_iter()
            .find(|r| r.path.ends_with("big.bin"))
    };
    while download().is_none() && t0.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(50));
    }
    let record = download().expect("the stalled download ends and is logged");
    assert_eq!(log.in_flight(), 0, "a response is still in flight");
    assert_eq!(record.status, 200);
    assert!(!record.complete, "{record:?}");
    assert!(record.body_bytes < BIG as u64, "{record:?}");
    println!(
        "stalled reader cut after {:.1} s, {} of {BIG} bytes handed to the connection",
        t0.elapsed().as_secs_f64(),
        record.body_bytes
    );
    // What the client can still read ends short of the announced length.
    let data = read_to_close(&mut stream).expect("closed");
    assert!(data.len() < BIG, "{} bytes", data.len());
    assert_eq!(probe(site.addr), (Some(200), expected));
}

#[test]
fn content_length_with_transfer_encoding_cannot_smuggle_a_second_request() {
    let site = site(Limits::default(), false);
    let expected = reference(site.addr);
    // Keep-alive; with the chunked body read first, the bytes after its end would be a
    // second request, and with Content-Length first, part of the body.
    let smuggled = format!("GET /hdfstream/download/{SNAP} HTTP/1.1\r\nHost: x\r\n\r\n");
    let chunked = format!("0\r\n\r\n{smuggled}");
    let request = format!(
        "POST /hdfstream/msgpack/{SNAP} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-msgpack\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}",
        chunked.len()
    );
    let mut stream = connect(site.addr);
    stream.write_all(request.as_bytes()).expect("request");
    let reply = read_to_close(&mut stream).expect("the connection closes");
    let text = String::from_utf8_lossy(&reply);
    let statuses = text.matches("HTTP/1.1 ").count();
    assert_eq!(statuses, 1, "more than one response: {text}");
    assert!(
        matches!(status_of(&reply), Some(400 | 200)),
        "{}",
        text.lines().next().unwrap_or("")
    );
    assert_eq!(probe(site.addr), (Some(200), expected));
}

#[test]
fn a_stalled_tls_handshake_is_cut_after_the_header_timeout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    write_root(&root, false);
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let cert = tmp.path().join("cert.pem");
    let key = tmp.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("cert file");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key file");
    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.tls = Some(TlsConfig { cert, key });
    config.limits.header_timeout = Duration::from_secs(1);
    let server = ServerHandle::start_with(config).expect("server");
    let addr = addr_of(&server);
    // Nothing at all, then the first 5 bytes of a ClientHello record.
    let silent = connect(addr);
    let mut partial = connect(addr);
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .expect("partial hello");
    assert!(closed_within(&silent, PATIENCE), "silent TLS client kept");
    assert!(closed_within(&partial, PATIENCE), "partial hello kept");
    // A real client still gets its answer over TLS.
    let trusted = ureq::tls::Certificate::from_der(certified.cert.der()).to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[trusted]))
                .build(),
        )
        .timeout_global(Some(PATIENCE))
        .build()
        .into();
    let mut resp = agent
        .post(format!("{}/msgpack/{SNAP}", server.base_url()))
        .header("Content-Type", "application/x-msgpack")
        .send(&slice_body()[..])
        .expect("https request");
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.body_mut().read_to_vec().expect("body");
    assert!(body.len() > 48);
}

#[test]
fn shutdown_lets_a_response_in_flight_finish() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_root(tmp.path(), true);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut config = ServeConfig::new(tmp.path());
    config.bind = "127.0.0.1:0".parse().expect("addr");
    let server = runtime
        .block_on(hdfstream_server::spawn(config))
        .expect("spawn");
    let addr = server.local_addr();
    let mut stream = connect(addr);
    stream
        .write_all(b"GET /hdfstream/download/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut first = [0u8; 4096];
    let n = stream.read(&mut first).expect("response begins");
    let stopping = std::thread::spawn(move || runtime.block_on(server.shutdown()));
    // The listener closes while the body is still being sent.
    let t0 = Instant::now();
    while TcpStream::connect(addr).is_ok() && t0.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(TcpStream::connect(addr).is_err(), "listener still open");
    let mut reply = first[..n].to_vec();
    reply.extend(read_to_close(&mut stream).expect("the connection closes after the body"));
    let at = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    assert_eq!(status_of(&reply), Some(200));
    let body = &reply[at..];
    assert_eq!(body.len(), BIG);
    assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    stopping
        .join()
        .expect("shutdown thread")
        .expect("clean shutdown");
}
