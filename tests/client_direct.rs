//! Large reads on a connection of their own, read by the calling thread
//! (`ClientBuilder::with_direct_reads_from`): which reads take that path, and that they fail,
//! retry and time out as reads through the shared pool do. The values and compressed bodies
//! of both paths are checked in `client_compression.rs`.

#[allow(dead_code)] // each test crate uses a subset of the helpers
mod support;

use std::time::{Duration, Instant};

use hdfstream::{ClientBuilder, Connection, Error};
use hdfstream_protocol::{ArrayData, ByteOrder, DimSelection, Dtype, SliceSpec, TypedBuffer};
use support::http::{Framing, MockResponse, MockServer};
use support::msgpack_error;

const MSGPACK: &str = "application/x-msgpack";
const F8: Dtype = Dtype::Float {
    size: 8,
    order: ByteOrder::Little,
};

/// An ndarray body of f64 values, shape `[n]`, built by hand from PROTOCOL.md §4.
fn ndarray_body(vals: &[f64]) -> Vec<u8> {
    let v = rmpv::Value::Map(vec![
        (rmpv::Value::from("nd"), rmpv::Value::from(true)),
        (rmpv::Value::from("type"), rmpv::Value::from("<f8")),
        (rmpv::Value::from("kind"), rmpv::Value::from("")),
        (
            rmpv::Value::from("shape"),
            rmpv::Value::Array(vec![rmpv::Value::from(vals.len() as u64)]),
        ),
        (
            rmpv::Value::from("nbytes"),
            rmpv::Value::from(vals.len() as u64 * 8),
        ),
        (
            rmpv::Value::from("data"),
            rmpv::Value::Array(vec![rmpv::Value::Binary(
                vals.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )]),
        ),
    ]);
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &v).expect("encode");
    out
}

fn rows(count: u64) -> SliceSpec {
    SliceSpec::new(vec![DimSelection::new(0, count)], vec![])
}

fn values(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 * 0.25 - 3.0).collect()
}

/// Reads from `bytes` on take their own connection; fast retries.
fn conn(server: &MockServer, direct_from: u64, retries: usize) -> Connection {
    ClientBuilder::new()
        .with_url(format!("{}/hdfstream", server.url()))
        .with_direct_reads_from(direct_from)
        .with_retry(support::fast_retry(retries))
        .with_timeout(Duration::from_millis(500))
        .with_probe(false)
        .with_progress(false)
        .build()
        .expect("build")
}

fn f64s(a: ArrayData) -> Vec<f64> {
    match a {
        ArrayData::Nd(nd) => match nd.data {
            TypedBuffer::F64(v) => v,
            other => panic!("f64 values expected, got {other:?}"),
        },
        other => panic!("an ndarray expected, got {other:?}"),
    }
}

/// The server answers each request with as many values as it asks for.
fn echo_server() -> MockServer {
    MockServer::start(|req| {
        let v = rmpv::decode::read_value(&mut req.body.as_slice()).expect("request body");
        let count = v
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("slice")))
            .and_then(|(_, s)| s.as_array()?.first()?.as_array()?.get(1)?.as_u64())
            .expect("slice count");
        MockResponse::new(200, MSGPACK, ndarray_body(&values(count as usize)))
            .framing(Framing::Chunked(64 * 1024))
    })
}

/// Reads expected to carry fewer bytes than the threshold share the keep-alive pool; each
/// larger one opens a connection of its own, and every read gets the values sent.
#[test]
fn reads_from_the_threshold_on_open_their_own_connection() {
    let server = echo_server();
    let c = conn(&server, 8_000, 0);
    for _ in 0..3 {
        // 999 values: 7,992 bytes, under the threshold.
        let got = f64s(
            c.request_slice_typed("f", "/d", &rows(999), &F8)
                .expect("small"),
        );
        assert_eq!(got, values(999));
    }
    assert_eq!(server.connections(), 1, "small reads share one connection");
    for n in [1_000usize, 50_000] {
        let mut dest = vec![0u8; n * 8];
        c.request_slice_into("f", "/d", &rows(n as u64), &F8, &mut dest)
            .expect("large into");
        let want: Vec<u8> = values(n).iter().flat_map(|x| x.to_le_bytes()).collect();
        assert!(dest == want, "{n} values");
        let got = f64s(
            c.request_slice_typed("f", "/d", &rows(n as u64), &F8)
                .expect("large"),
        );
        assert_eq!(got, values(n));
    }
    assert_eq!(server.connections(), 5, "one connection per large read");
    // The pool is still there for small reads.
    c.request_slice_typed("f", "/d", &rows(10), &F8)
        .expect("small again");
    assert_eq!(server.connections(), 5);
}

/// On a thread of an async runtime's blocking pool (`spawn_blocking`, where a blocking
/// client may run but no runtime can be started), a large read takes the pool instead, with
/// no panic, and gets its values.
#[test]
fn in_a_runtime_blocking_task_large_reads_take_the_pool() {
    let server = echo_server();
    let c = conn(&server, 0, 0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime");
    let c2 = c.clone();
    let got = runtime
        .block_on(async move {
            tokio::task::spawn_blocking(move || {
                c2.request_slice_typed("f", "/d", &rows(5_000), &F8)
            })
            .await
        })
        .expect("task");
    assert_eq!(f64s(got.expect("read in a blocking task")), values(5_000));
    drop(runtime);
    assert_eq!(server.connections(), 1, "the pool's connection");
    // Outside a runtime: its own connection.
    let got = c
        .request_slice_typed("f", "/d", &rows(5_000), &F8)
        .expect("read");
    assert_eq!(f64s(got), values(5_000));
    assert_eq!(server.connections(), 2);
}

/// A body cut in transit is an `Incomplete` error, and retried: the second, whole answer
/// gives the values.
#[test]
fn a_cut_body_is_incomplete_and_retried() {
    let vals = values(20_000);
    let body = ndarray_body(&vals);
    let served = std::sync::atomic::AtomicUsize::new(0);
    let server = MockServer::start(move |_| {
        let first = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        let r = MockResponse::new(200, MSGPACK, body.clone());
        if first {
            r.framing(Framing::Truncated(1000))
        } else {
            r.framing(Framing::Chunked(10_000))
        }
    });
    let c = conn(&server, 0, 0);
    let err = c
        .request_slice_typed("f", "/d", &rows(20_000), &F8)
        .expect_err("cut body");
    assert!(matches!(err, Error::Incomplete { .. }), "{err:?}");
    let c = conn(&server, 0, 2);
    let got = c
        .request_slice_typed("f", "/d", &rows(20_000), &F8)
        .expect("whole on retry");
    assert_eq!(f64s(got), vals);
    assert_eq!(server.requests().len(), 2);
}

/// Error statuses are mapped as for pooled reads: the server's message for 404, a retried
/// `Server` error for 503.
#[test]
fn error_statuses_are_mapped_and_5xx_retried() {
    let server = MockServer::start(|req| {
        if req.target.ends_with("/missing") {
            MockResponse::new(404, MSGPACK, msgpack_error("no such dataset /d"))
        } else {
            MockResponse::new(503, "text/html", b"<h1>busy</h1>".to_vec())
        }
    });
    let c = conn(&server, 0, 2);
    let err = c
        .request_slice_typed("missing", "/d", &rows(100), &F8)
        .expect_err("404");
    assert!(
        matches!(err, Error::NotFound { ref message, .. } if message == "no such dataset /d"),
        "{err:?}"
    );
    let err = c
        .request_slice_typed("busy", "/d", &rows(100), &F8)
        .expect_err("503");
    assert!(
        matches!(
            err,
            Error::Http {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 4, "404 once, 503 three times");
}

/// A body that stalls longer than the timeout ends the read with an error soon after the
/// timeout, not a hang.
#[test]
fn a_stalled_body_times_out() {
    let body = ndarray_body(&values(10_000));
    let server = MockServer::start(move |_| {
        MockResponse::new(200, MSGPACK, body.clone())
            .framing(Framing::Chunked(20_000))
            .pause(Duration::from_secs(3))
    });
    let c = conn(&server, 0, 0);
    let t0 = Instant::now();
    let err = c
        .request_slice_typed("f", "/d", &rows(10_000), &F8)
        .expect_err("stalled");
    let took = t0.elapsed();
    assert!(matches!(err, Error::Incomplete { .. }), "{err:?}");
    assert!(
        took < Duration::from_millis(2_500),
        "gave up after {took:?} (timeout 500 ms)"
    );
}
