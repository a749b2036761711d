//! Slice reads against a local mock server: large chunked bodies, broken bodies (truncated,
//! trailing garbage, wrong content type), gzip, body retries, exact request bodies.

#[allow(dead_code)] // each test crate uses a subset of the helpers
mod support;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hdfstream::{ClientBuilder, Connection, Error};
use hdfstream_protocol::{
    ArrayData, ByteOrder, DecodeError, DimSelection, Dtype, NdArray, SliceSpec, TypedBuffer,
};
use support::http::{Framing, MockResponse, MockServer, RecordedRequest};

const MSGPACK: &str = "application/x-msgpack";
const F8: Dtype = Dtype::Float {
    size: 8,
    order: ByteOrder::Little,
};

/// `n` f64 values with distinct bit patterns.
fn values(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 * 1.5 - 7.25).collect()
}

/// An ndarray body built by hand from PROTOCOL.md §4 (independent of the codec).
fn ndarray_body(vals: &[f64], shape: &[u64]) -> Vec<u8> {
    let payload: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut b = vec![0x86, 0xa2, b'n', b'd', 0xc3];
    b.extend_from_slice(&[0xa4, b't', b'y', b'p', b'e', 0xa3, b'<', b'f', b'8']);
    b.extend_from_slice(&[0xa4, b'k', b'i', b'n', b'd', 0xa0]);
    b.extend_from_slice(&[0xa5, b's', b'h', b'a', b'p', b'e', 0x90 | shape.len() as u8]);
    for &d in shape {
        b.push(0xce);
        b.extend_from_slice(&(d as u32).to_be_bytes());
    }
    b.extend_from_slice(&[0xa6, b'n', b'b', b'y', b't', b'e', b's', 0xce]);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&[0xa4, b'd', b'a', b't', b'a', 0x91, 0xc6]);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&payload);
    b
}

fn rows(start: u64, count: u64, cols: u64) -> SliceSpec {
    SliceSpec::new(
        vec![DimSelection::new(start, count)],
        vec![DimSelection::new(0, cols)],
    )
}

fn conn(server: &MockServer, retries: usize) -> Connection {
    ClientBuilder::new()
        .with_url(format!("{}/hdfstream", server.url()))
        .with_retry(support::fast_retry(retries))
        .with_probe(false)
        .with_progress(false)
        .build()
        .expect("build")
}

fn as_f64(a: &ArrayData) -> &[f64] {
    match a {
        ArrayData::Nd(NdArray {
            data: TypedBuffer::F64(v),
            ..
        }) => v,
        other => panic!("expected f64 ndarray, got {other:?}"),
    }
}

#[test]
fn large_chunked_body_decodes_exactly() {
    let vals = values(1_000_000 * 3);
    let body = ndarray_body(&vals, &[1_000_000, 3]);
    let server = MockServer::start(move |_| {
        MockResponse::new(200, MSGPACK, body.clone()).framing(Framing::Chunked(65_521))
    });
    let c = conn(&server, 0);
    let spec = rows(0, 1_000_000, 3);
    let a = c.request_slice("f.hdf5", "/d", &spec).expect("slice");
    assert_eq!(a.shape(), [1_000_000, 3]);
    assert!(as_f64(&a) == vals.as_slice());
    let mut dest = vec![0u8; vals.len() * 8];
    c.request_slice_into("f.hdf5", "/d", &spec, &F8, &mut dest)
        .expect("into");
    assert!(
        dest.chunks_exact(8)
            .zip(&vals)
            .all(|(b, v)| b == v.to_le_bytes())
    );
    // Exact request: POST, msgpack content type, body {"object": "/d", "slice": [[0, 1000000], [0, 3]]}.
    let reqs: Vec<RecordedRequest> = server.requests();
    assert_eq!(reqs.len(), 2);
    let mut expected = vec![0x82, 0xa6];
    expected.extend_from_slice(b"object");
    expected.extend_from_slice(&[0xa2, b'/', b'd', 0xa5]);
    expected.extend_from_slice(b"slice");
    expected.extend_from_slice(&[
        0x92, 0x92, 0x00, 0xce, 0x00, 0x0f, 0x42, 0x40, 0x92, 0x00, 0x03,
    ]);
    for r in &reqs {
        assert_eq!(
            (r.method.as_str(), r.target.as_str()),
            ("POST", "/hdfstream/msgpack/f.hdf5")
        );
        assert_eq!(r.header("content-type"), Some(MSGPACK));
        assert_eq!(r.body, expected);
    }
}

#[test]
fn object_request_body_matches_python_bytes() {
    // PROTOCOL.md §2.4: `/` with limit 0, depth 0 is these 38 bytes.
    let group = {
        let v = rmpv::Value::Map(vec![
            ("hdf5_object".into(), "group".into()),
            ("attributes".into(), rmpv::Value::Map(vec![])),
            (
                "members".into(),
                rmpv::Value::Map(vec![("A".into(), rmpv::Value::Nil)]),
            ),
        ]);
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &v).expect("encode");
        out
    };
    let server = MockServer::start(move |_| MockResponse::new(200, MSGPACK, group.clone()));
    let c = conn(&server, 0);
    let m = c.request_object("dir/f.hdf5", "/", 0, 0).expect("object");
    let hdfstream_protocol::Member::Group(g) = m else {
        panic!("group")
    };
    assert_eq!(g.members.len(), 1);
    assert_eq!(g.members[0].0, "A");
    assert!(g.members[0].1.is_none());
    let mut want = vec![0x83, 0xa6];
    want.extend_from_slice(b"object");
    want.extend_from_slice(&[0xa1, b'/', 0xaf]);
    want.extend_from_slice(b"data_size_limit");
    want.extend_from_slice(&[0x00, 0xa9]);
    want.extend_from_slice(b"max_depth");
    want.push(0x00);
    let reqs = server.requests();
    assert_eq!(reqs[0].body, want);
    assert_eq!(reqs[0].body.len(), 38);
    assert_eq!(reqs[0].target, "/hdfstream/msgpack/dir/f.hdf5");
}

#[test]
fn trailing_garbage_is_retried_then_rejected() {
    let mut body = ndarray_body(&values(6), &[2, 3]);
    body.extend_from_slice(b"\xc0\xc0");
    let server = MockServer::start(move |_| MockResponse::new(200, MSGPACK, body.clone()));
    let c = conn(&server, 3);
    let err = c
        .request_slice("f", "/d", &rows(0, 2, 3))
        .expect_err("garbage");
    assert!(
        matches!(
            err,
            Error::Decode {
                source: DecodeError::TrailingBytes { .. },
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("f:/d") && text.contains("4 attempts"),
        "{text}"
    );
    let mut dest = vec![0u8; 48];
    let err = c
        .request_slice_into("f", "/d", &rows(0, 2, 3), &F8, &mut dest)
        .expect_err("garbage");
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(
        server.requests().len(),
        8,
        "a malformed body is requested again: 1 attempt + 3 retries, twice"
    );
}

#[test]
fn body_shorter_than_declared_nbytes_is_incomplete() {
    let mut body = ndarray_body(&values(6), &[2, 3]);
    let full = body.len() as u64;
    body.truncate(body.len() - 8);
    let server = MockServer::start(move |_| MockResponse::new(200, MSGPACK, body.clone()));
    let c = conn(&server, 0);
    let err = c
        .request_slice("f", "/d", &rows(0, 2, 3))
        .expect_err("short");
    match &err {
        Error::Incomplete {
            received,
            expected,
            attempts,
            ..
        } => {
            // The body ended cleanly after all but 8 bytes: the header announced them.
            assert_eq!((*received, *expected, *attempts), (full - 8, Some(full), 1));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.is_retryable());
}

#[test]
fn connection_cut_mid_body_is_retried_for_slices() {
    let vals = values(3000);
    let body = ndarray_body(&vals, &[1000, 3]);
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let server = MockServer::start(move |_| {
        let first = n2.fetch_add(1, Ordering::SeqCst) == 0;
        let resp = MockResponse::new(200, MSGPACK, body.clone());
        if first {
            // Declares 100 bytes more than it sends, then closes.
            resp.framing(Framing::Truncated(100))
        } else {
            resp
        }
    });
    let c = conn(&server, 2);
    let mut dest = vec![0u8; 24_000];
    c.request_slice_into("f", "/d", &rows(0, 1000, 3), &F8, &mut dest)
        .expect("second attempt succeeds");
    assert!(
        dest.chunks_exact(8)
            .zip(&vals)
            .all(|(b, v)| b == v.to_le_bytes())
    );
    assert_eq!(server.requests().len(), 2);
    // Without retries the cut surfaces as an incomplete body.
    let c0 = conn(&server, 0);
    n.store(0, Ordering::SeqCst);
    let err = c0
        .request_slice("f", "/d", &rows(0, 1000, 3))
        .expect_err("cut");
    assert!(matches!(err, Error::Incomplete { .. }), "{err:?}");
}

#[test]
fn non_msgpack_success_is_unexpected() {
    let server = MockServer::start(|_| {
        MockResponse::new(200, "text/html", b"<html>login page</html>".to_vec())
    });
    let c = conn(&server, 0);
    let err = c
        .request_slice("f", "/d", &rows(0, 1, 1))
        .expect_err("html");
    assert!(matches!(err, Error::UnexpectedResponse { .. }), "{err:?}");
    let err = c.request_path("x").expect_err("html");
    assert!(err.to_string().contains("text/html"), "{err}");
}

#[test]
fn gzip_content_encoding_is_decoded() {
    let vals = values(3000);
    let plain = ndarray_body(&vals, &[1000, 3]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).expect("gzip");
    let compressed = gz.finish().expect("gzip");
    assert!(compressed.len() < plain.len());
    let server = MockServer::start(move |_| {
        MockResponse::new(200, MSGPACK, compressed.clone())
            .header("Content-Encoding", "gzip")
            .framing(Framing::Chunked(1000))
    });
    let c = conn(&server, 0);
    let a = c
        .request_slice("f", "/d", &rows(0, 1000, 3))
        .expect("gzip slice");
    assert_eq!(as_f64(&a), vals.as_slice());
    let accept = server.requests()[0]
        .header("accept-encoding")
        .map(str::to_string);
    assert!(accept.is_some_and(|a| a.contains("gzip")));
}

#[test]
fn slow_body_with_forced_progress_bar_reads_correctly() {
    let vals = values(30_000);
    let body = ndarray_body(&vals, &[10_000, 3]);
    let server = MockServer::start(move |_| {
        MockResponse::new(200, MSGPACK, body.clone())
            .framing(Framing::Chunked(40_000))
            .pause(Duration::from_millis(60))
    });
    let c = ClientBuilder::new()
        .with_url(format!("{}/hdfstream", server.url()))
        .with_probe(false)
        .with_progress(true)
        .build()
        .expect("build");
    let a = c
        .request_slice("f", "/d", &rows(0, 10_000, 3))
        .expect("slow slice");
    assert_eq!(as_f64(&a), vals.as_slice());
}

#[test]
fn vlen_body_cannot_go_into_a_buffer() {
    // {"vlen": true, "shape": [1], "data": ["abc"]}
    let v = rmpv::Value::Map(vec![
        ("vlen".into(), true.into()),
        ("shape".into(), rmpv::Value::Array(vec![1.into()])),
        ("data".into(), rmpv::Value::Array(vec!["abc".into()])),
    ]);
    let mut body = Vec::new();
    rmpv::encode::write_value(&mut body, &v).expect("encode");
    let server = MockServer::start(move |_| MockResponse::new(200, MSGPACK, body.clone()));
    let c = conn(&server, 0);
    let spec = SliceSpec::new(vec![DimSelection::new(0, 1)], vec![]);
    let a = c.request_slice("f", "/s", &spec).expect("vlen decodes");
    let ArrayData::Vlen(vl) = a else {
        panic!("vlen expected")
    };
    assert_eq!(vl.shape, [1]);
    let u1 = Dtype::UInt {
        size: 1,
        order: ByteOrder::NotApplicable,
    };
    let mut dest = vec![0u8; 1];
    let err = c
        .request_slice_into("f", "/s", &spec, &u1, &mut dest)
        .expect_err("vlen into buffer");
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err:?}");
}

#[test]
fn gzip_encoded_download_is_decompressed_and_length_checked_after_decoding() {
    let text = b"hello hdfstream ".repeat(1000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&text).expect("gzip");
    let compressed = gz.finish().expect("gzip");
    let server = MockServer::start(move |_| {
        MockResponse::new(200, "text/plain", compressed.clone()).header("Content-Encoding", "gzip")
    });
    let c = conn(&server, 0);
    let mut out = Vec::new();
    let n = c.download("a.txt", &mut out).expect("download");
    assert_eq!(n as usize, text.len());
    assert_eq!(out, text);
}
