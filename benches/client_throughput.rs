//! Throughput of the HTTP layer on loopback, as ratios to baselines measured in the same run.
//!
//! `cargo bench -p hdfstream --bench client_throughput` serves one ndarray body of
//! `MIB` MiB (`<f8`, one bin) from the test mock server (`Content-Length`, 1 MiB writes)
//! and times, best of `ROUNDS` interleaved rounds:
//!
//! * baseline `raw`: a hand-written HTTP/1.1 GET on a `TcpStream` reading the body into a
//!   preallocated buffer (what loopback + the mock server can deliver);
//! * baseline `download`: `Connection::download` of the same body into `io::sink`
//!   (reqwest's own overhead, no decoding);
//! * `request_slice_into`: decode straight into a caller buffer (the fast path);
//! * `request_slice`: decode into a freshly allocated typed buffer.

#[allow(dead_code)]
#[path = "../tests/support/http.rs"]
mod http;

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdfstream::{ClientBuilder, RetryConfig};
use hdfstream_protocol::{ByteOrder, DimSelection, Dtype, SliceSpec};
use http::{Framing, MockResponse, MockServer};

const MIB: usize = 128;
const ROUNDS: usize = 5;

fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// A `<f8` ndarray body of `n` elements, shape `[n]`, written by hand (PROTOCOL.md §4).
fn body(n: usize) -> Vec<u8> {
    let nbytes = (n * 8) as u32;
    let mut b = vec![0x86, 0xa2, b'n', b'd', 0xc3, 0xa4];
    b.extend_from_slice(b"type");
    b.extend_from_slice(&[0xa3, b'<', b'f', b'8', 0xa4]);
    b.extend_from_slice(b"kind");
    b.extend_from_slice(&[0xa0, 0xa5]);
    b.extend_from_slice(b"shape");
    b.extend_from_slice(&[0x91, 0xce]);
    b.extend_from_slice(&(n as u32).to_be_bytes());
    b.push(0xa6);
    b.extend_from_slice(b"nbytes");
    b.push(0xce);
    b.extend_from_slice(&nbytes.to_be_bytes());
    b.push(0xa4);
    b.extend_from_slice(b"data");
    b.extend_from_slice(&[0x91, 0xc6]);
    b.extend_from_slice(&nbytes.to_be_bytes());
    b.reserve(n * 8);
    for i in 0..n {
        b.extend_from_slice(&(i as f64).to_le_bytes());
    }
    b
}

/// GET over a plain socket; returns the body length read into `buf`.
fn raw_get(addr: &str, buf: &mut [u8]) -> usize {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET /raw HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut r = BufReader::with_capacity(1 << 20, s);
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("header");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().expect("length");
        }
    }
    r.read_exact(&mut buf[..len]).expect("body");
    len
}

fn main() {
    let n = MIB * (1 << 20) / 8;
    let data: Arc<[u8]> = body(n).into();
    let len = data.len();
    let served = data.clone();
    let server = MockServer::start(move |_| {
        MockResponse::new(200, "application/x-msgpack", served.clone())
            .framing(Framing::Length(1 << 20))
    });
    let addr = server.url().trim_start_matches("http://").to_string();
    let conn = ClientBuilder::new()
        .with_url(format!("{}/hdfstream", server.url()))
        .with_retry(RetryConfig::none())
        .with_probe(false)
        .with_progress(false)
        .build()
        .expect("connection");
    let spec = SliceSpec::new(vec![DimSelection::new(0, n as u64)], vec![]);
    let f8 = Dtype::Float {
        size: 8,
        order: ByteOrder::Little,
    };

    let mut buf = vec![0u8; len];
    let mut dest = vec![0u8; n * 8];
    // Rounds interleave the variants so load changes on a shared machine hit all alike.
    let (mut raw, mut download, mut into, mut alloc) =
        (Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..ROUNDS {
        raw = raw.min(time(|| assert_eq!(raw_get(&addr, &mut buf), len)));
        download = download.min(time(|| {
            let got = conn.download("f", &mut std::io::sink()).expect("download");
            assert_eq!(got as usize, len);
        }));
        into = into.min(time(|| {
            conn.request_slice_into("f", "/d", &spec, &f8, &mut dest)
                .expect("slice into");
        }));
        alloc = alloc.min(time(|| {
            black_box(conn.request_slice("f", "/d", &spec).expect("slice"));
        }));
    }
    assert!(
        dest[8..16] == 1f64.to_le_bytes()
            && dest[dest.len() - 8..] == ((n - 1) as f64).to_le_bytes()
    );

    let mibps = |d: Duration| len as f64 / d.as_secs_f64() / (1 << 20) as f64;
    println!("client_throughput: {MIB} MiB <f8 body over loopback, best of {ROUNDS}");
    for (name, d) in [
        ("raw socket (baseline)", raw),
        ("download to sink (baseline)", download),
        ("request_slice_into", into),
        ("request_slice", alloc),
    ] {
        println!(
            "  {name:<28} {:>8.1} ms {:>8.0} MiB/s  {:>5.2}x raw  {:>5.2}x download",
            d.as_secs_f64() * 1e3,
            mibps(d),
            d.as_secs_f64() / raw.as_secs_f64(),
            d.as_secs_f64() / download.as_secs_f64(),
        );
    }
}
