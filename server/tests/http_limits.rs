//! Per-client concurrency limit (429 + Retry-After) and release of slots when a client leaves.

mod http_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hdfstream_server::{ServeConfig, ServerHandle};
use http_common::*;

#[test]
fn client_over_its_concurrency_limit_gets_429_until_a_slot_frees() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A sparse 512 MiB file: far more than socket buffers hold, so its download stays in
    // flight while the client does not read.
    let big = std::fs::File::create(tmp.path().join("big.bin")).expect("create");
    big.set_len(512 << 20).expect("set_len");
    std::fs::write(tmp.path().join("small.txt"), b"small").expect("write");
    let mut config = ServeConfig::new(tmp.path());
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.limits.max_requests_per_client = 1;
    let srv = ServerHandle::start_with(config).expect("server");
    let base = srv.base_url();

    let mut slow = TcpStream::connect(host_port(base)).expect("connect");
    let request = format!(
        "GET {}/download/big.bin HTTP/1.1\r\nHost: x\r\n\r\n",
        base_path(base)
    );
    slow.write_all(request.as_bytes()).expect("send");
    let mut head = [0u8; 64];
    slow.read_exact(&mut head).expect("response starts");
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );

    let refused = get(&format!("{base}/download/small.txt"), None);
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.error_message(), "Request rate limit exceeded");
    let refused_post = post(&format!("{base}/msgpack/"), EMPTY_MAP, None);
    assert_eq!(refused_post.status, 429);

    // The slow client leaves; its slot is released once the server notices.
    drop(slow);
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let answer = get(&format!("{base}/download/small.txt"), None);
        if answer.status != 429 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"small");

    let log = srv.request_log();
    let big_record = log
        .iter()
        .find(|r| r.vpath.as_deref() == Some("big.bin"))
        .expect("big.bin logged");
    assert_eq!(big_record.status, 200);
    assert!(
        !big_record.complete,
        "the abandoned download is not complete"
    );
    // Back-pressure: the server stopped producing once the socket and its few in-flight
    // chunks were full, instead of buffering the whole file.
    assert!(
        big_record.body_bytes < 64 << 20,
        "{} bytes",
        big_record.body_bytes
    );
    assert!(log.iter().filter(|r| r.status == 429).count() >= 2);
}

#[test]
fn file_shrinking_mid_download_ends_the_body_early() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("shrinks.bin");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(256 << 20).expect("set_len");
    let srv = ServerHandle::start(tmp.path()).expect("server");
    let base = srv.base_url();

    let mut stream = TcpStream::connect(host_port(base)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let request = format!(
        "GET {}/download/shrinks.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        base_path(base)
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut first = vec![0u8; 4096];
    stream.read_exact(&mut first).expect("response starts");
    let head = String::from_utf8_lossy(&first);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-length: 268435456"), "{head}");
    // The server can only have read a few chunks ahead; cut the file short now.
    file.set_len(1 << 20).expect("truncate");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let received = first.len() + rest.len();
    assert!(received < 256 << 20, "got the whole declared length");

    let log = srv.request_log();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].status, log[0].complete), (200, false));
    assert!(log[0].body_bytes < 256 << 20);
    // And the server still serves.
    std::fs::write(tmp.path().join("ok.txt"), b"ok").expect("write");
    assert_eq!(get(&format!("{base}/download/ok.txt"), None).body, b"ok");
}
