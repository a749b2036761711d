//! Compressed responses: what the client asks for (`ClientBuilder::with_compression`), that
//! zstd and gzip bodies decode straight into the destination with the values libhdf5 reads
//! (against our server started with compression), and that corrupt or cut compressed bodies
//! give clear errors (against a mock server sending hand-made bodies). Every test runs over
//! both client paths: the shared keep-alive pool and a large read's own connection
//! (`ClientBuilder::with_direct_reads_from`).

#[allow(dead_code)] // each test crate uses a subset of the helpers
mod support;

use std::path::Path;

use hdfstream::{ClientBuilder, Connection, Error, RetryConfig};
use hdfstream_protocol::{ArrayData, ByteOrder, DimSelection, Dtype, SliceSpec, TypedBuffer};
use hdfstream_server::{ContentCoding, ServeConfig, ServerHandle};
use support::http::{Framing, MockResponse, MockServer};

const MSGPACK: &str = "application/x-msgpack";
const ROWS: usize = 100_000;
const F8: Dtype = Dtype::Float {
    size: 8,
    order: ByteOrder::Little,
};

/// An ndarray body of f64 values built by hand from PROTOCOL.md §4.
fn ndarray_body(vals: &[f64]) -> Vec<u8> {
    let payload: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut b = vec![0x86, 0xa2, b'n', b'd', 0xc3];
    b.extend_from_slice(&[0xa4, b't', b'y', b'p', b'e', 0xa3, b'<', b'f', b'8']);
    b.extend_from_slice(&[0xa4, b'k', b'i', b'n', b'd', 0xa0]);
    b.extend_from_slice(&[0xa5, b's', b'h', b'a', b'p', b'e', 0x91, 0xce]);
    b.extend_from_slice(&(vals.len() as u32).to_be_bytes());
    b.extend_from_slice(&[0xa6, b'n', b'b', b'y', b't', b'e', b's', 0xce]);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&[0xa4, b'd', b'a', b't', b'a', 0x91, 0xc6]);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&payload);
    b
}

fn rows(start: u64, count: u64) -> SliceSpec {
    SliceSpec::new(vec![DimSelection::new(start, count)], vec![])
}

/// The two client paths: `true` reads every slice on its own connection.
const PATHS: [bool; 2] = [false, true];

/// A builder whose slice reads take the pool (`direct` false) or their own connection.
fn builder(direct: bool) -> ClientBuilder {
    if direct {
        ClientBuilder::new().with_direct_reads_from(0)
    } else {
        ClientBuilder::new().without_direct_reads()
    }
}

fn mock_conn(server: &MockServer, retries: usize, direct: bool) -> Connection {
    builder(direct)
        .with_url(format!("{}/hdfstream", server.url()))
        .with_retry(support::fast_retry(retries))
        .with_probe(false)
        .with_progress(false)
        .build()
        .expect("build")
}

fn sorted_values(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 * 0.5).collect()
}

/// A zstd body of `plain` as our server makes it: level 1, with a content checksum.
fn zstd_body(plain: &[u8]) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("zstd");
    enc.include_checksum(true).expect("checksum flag");
    std::io::Write::write_all(&mut enc, plain).expect("zstd");
    enc.finish().expect("zstd")
}

#[test]
fn zstd_body_decodes_into_the_destination_buffer() {
    for direct in PATHS {
        zstd_body_decodes_into(direct);
    }
}

fn zstd_body_decodes_into(direct: bool) {
    let vals = sorted_values(ROWS);
    let compressed = zstd_body(&ndarray_body(&vals));
    assert!(
        compressed.len() * 4 < vals.len() * 8,
        "sorted values compress"
    );
    let server = MockServer::start(move |_| {
        MockResponse::new(200, MSGPACK, compressed.clone())
            .header("Content-Encoding", "zstd")
            .framing(Framing::Chunked(7000))
    });
    let c = mock_conn(&server, 0, direct);
    let mut dest = vec![0u8; ROWS * 8];
    c.request_slice_into("f", "/d", &rows(0, ROWS as u64), &F8, &mut dest)
        .expect("zstd slice into a buffer");
    let want: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert!(dest == want);
    let accept = server.requests()[0]
        .header("accept-encoding")
        .map(str::to_owned);
    assert_eq!(accept.as_deref(), Some("zstd, gzip, deflate"));
}

#[test]
fn without_compression_no_coding_is_offered() {
    for direct in PATHS {
        no_coding_offered(direct);
    }
}

fn no_coding_offered(direct: bool) {
    let vals = sorted_values(100);
    let body = ndarray_body(&vals);
    let server = MockServer::start(move |_| MockResponse::new(200, MSGPACK, body.clone()));
    let c = builder(direct)
        .with_url(format!("{}/hdfstream", server.url()))
        .with_compression(false)
        .with_probe(false)
        .with_progress(false)
        .build()
        .expect("build");
    let a = c.request_slice("f", "/d", &rows(0, 100)).expect("slice");
    assert!(
        matches!(a, ArrayData::Nd(ref nd) if matches!(&nd.data, TypedBuffer::F64(v) if *v == vals))
    );
    assert_eq!(server.requests()[0].header("accept-encoding"), None);
}

/// The error of one slice request whose body is `body` sent with `Content-Encoding: coding`,
/// and the requests made, by both client paths (checked to agree on the error's kind).
fn error_for(coding: &'static str, body: Vec<u8>, framing: Framing) -> (Error, usize) {
    let body: std::sync::Arc<[u8]> = body.into();
    let mut out = Vec::new();
    for direct in PATHS {
        let body = body.clone();
        let server = MockServer::start(move |_| {
            MockResponse::new(200, MSGPACK, body.clone())
                .header("Content-Encoding", coding)
                .framing(framing)
        });
        let c = mock_conn(&server, 2, direct);
        let mut dest = vec![0u8; ROWS * 8];
        let err = c
            .request_slice_into("f", "/d", &rows(0, ROWS as u64), &F8, &mut dest)
            .expect_err("a broken compressed body must fail");
        out.push((err, server.requests().len()));
    }
    let (direct, pooled) = (out.remove(1), out.remove(0));
    assert_eq!(
        std::mem::discriminant(&direct.0),
        std::mem::discriminant(&pooled.0),
        "the paths disagree: {:?} / {:?}",
        pooled.0,
        direct.0
    );
    assert_eq!(direct.1, pooled.1, "requests made");
    pooled
}

#[test]
fn corrupt_zstd_body_is_a_decompression_error() {
    let mut body = zstd_body(&ndarray_body(&sorted_values(ROWS)));
    // A proxy flipped bytes in the middle of the stream.
    let mid = body.len() / 2;
    for b in &mut body[mid..mid + 16] {
        *b ^= 0xa5;
    }
    let (err, requests) = error_for("zstd", body, Framing::Chunked(4096));
    let text = err.to_string();
    assert!(
        matches!(err, Error::Decompress { ref encoding, attempts: 3, .. } if encoding == "zstd"),
        "{err:?}"
    );
    assert!(text.contains("zstd") && text.contains("/d"), "{text}");
    assert_eq!(requests, 3, "retried like any corrupt body");
}

#[test]
fn corrupt_gzip_body_is_a_decompression_error() {
    let plain = ndarray_body(&sorted_values(ROWS));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).expect("gzip");
    let mut body = gz.finish().expect("gzip");
    let mid = body.len() / 2;
    for b in &mut body[mid..mid + 16] {
        *b ^= 0xa5;
    }
    let (err, _) = error_for("gzip", body, Framing::Length(usize::MAX));
    assert!(
        matches!(err, Error::Decompress { ref encoding, .. } if encoding == "gzip"),
        "{err:?}"
    );
}

#[test]
fn not_zstd_at_all_is_a_decompression_error() {
    let body = ndarray_body(&sorted_values(ROWS));
    let (err, _) = error_for("zstd", body, Framing::Length(usize::MAX));
    assert!(matches!(err, Error::Decompress { .. }), "{err:?}");
}

#[test]
fn zstd_stream_ending_early_is_an_error() {
    // The HTTP framing is complete, but the zstd frame is cut: the decoder sees its end.
    let mut body = zstd_body(&ndarray_body(&sorted_values(ROWS)));
    body.truncate(body.len() / 2);
    let (err, _) = error_for("zstd", body, Framing::Length(usize::MAX));
    assert!(
        matches!(err, Error::Decompress { .. } | Error::Incomplete { .. }),
        "{err:?}"
    );
}

#[test]
fn compressed_body_cut_in_transit_is_incomplete() {
    let body = zstd_body(&ndarray_body(&sorted_values(ROWS)));
    let (err, requests) = error_for("zstd", body, Framing::Truncated(100));
    assert!(matches!(err, Error::Incomplete { .. }), "{err:?}");
    assert_eq!(requests, 3);
}

/// `data.hdf5` with a compressible and an incompressible column.
fn write_file(path: &Path) {
    let file = hdf5_metno::File::create(path).expect("create");
    let ids: Vec<i64> = (0..ROWS as i64).map(|i| 5_000_000 + 3 * i).collect();
    file.new_dataset::<i64>()
        .shape(ROWS)
        .create("ParticleIDs")
        .expect("ids")
        .write_raw(&ids)
        .expect("write");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let random: Vec<f64> = (0..ROWS * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            f64::from_bits((state >> 12) | 0x3ff0_0000_0000_0000)
        })
        .collect();
    file.new_dataset::<f64>()
        .shape((ROWS, 3))
        .create("Velocities")
        .expect("velocities")
        .write_raw(&random)
        .expect("write");
}

#[test]
fn our_server_and_client_negotiate_zstd_and_read_libhdf5_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.hdf5");
    write_file(&path);
    let h5 = hdf5_metno::File::open(&path).expect("open");
    let ids: Vec<i64> = h5.dataset("ParticleIDs").unwrap().read_raw().unwrap();
    let vel: Vec<f64> = h5.dataset("Velocities").unwrap().read_raw().unwrap();
    let mut config = ServeConfig::new(dir.path());
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.compression = vec![ContentCoding::Zstd, ContentCoding::Gzip];
    let srv = ServerHandle::start_with(config).expect("server");
    let i8le = Dtype::Int {
        size: 8,
        order: ByteOrder::Little,
    };
    for (compression, direct) in [(true, false), (false, false), (true, true), (false, true)] {
        srv.clear_request_log();
        let c = builder(direct)
            .with_url(srv.base_url())
            .with_compression(compression)
            .with_progress(false)
            .build()
            .expect("connect");
        let mut dest = vec![0u8; ROWS * 8];
        c.request_slice_into(
            "data.hdf5",
            "/ParticleIDs",
            &rows(0, ROWS as u64),
            &i8le,
            &mut dest,
        )
        .expect("ids");
        let got: Vec<i64> = dest
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert!(got == ids, "ids, compression {compression}");
        let slice = SliceSpec::new(
            vec![DimSelection::new(0, ROWS as u64)],
            vec![DimSelection::new(0, 3)],
        );
        let a = c
            .request_slice("data.hdf5", "/Velocities", &slice)
            .expect("velocities");
        let ArrayData::Nd(nd) = a else {
            panic!("ndarray expected")
        };
        let TypedBuffer::F64(v) = &nd.data else {
            panic!("f64 expected")
        };
        assert!(
            v.iter()
                .map(|x| x.to_bits())
                .eq(vel.iter().map(|x| x.to_bits()))
        );
        let log = srv.request_log();
        let slices: Vec<_> = log.iter().filter(|r| r.slice_runs.is_some()).collect();
        assert_eq!(slices.len(), 2);
        let want = compression.then_some("zstd");
        for r in &slices {
            assert_eq!(r.encoding.as_deref(), want, "{r:?}");
            assert!(r.complete);
        }
        if compression {
            // IDs shrink, random floats do not (but cost no more than a few bytes).
            assert!(
                slices[0].body_bytes < (ROWS as u64 * 8) / 3,
                "{:?}",
                slices[0]
            );
            assert!(slices[1].body_bytes > (ROWS as u64 * 24) * 9 / 10);
        } else {
            assert!(slices[0].body_bytes > ROWS as u64 * 8);
        }
    }
}

#[test]
fn mid_stream_server_failure_under_compression_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.hdf5");
    {
        let file = hdf5_metno::File::create(&path).expect("create");
        let ids: Vec<i64> = (0..ROWS as i64).collect();
        file.new_dataset::<i64>()
            .shape(ROWS)
            .chunk(1000)
            .set_filters(&[
                hdf5_metno::filters::Filter::Shuffle,
                hdf5_metno::filters::Filter::Deflate(1),
                hdf5_metno::filters::Filter::Fletcher32,
            ])
            .create("Checked")
            .expect("create")
            .write_raw(&ids)
            .expect("write");
    }
    // Chunk 70 of 100 fails its checksum, long after the response began.
    let (addr, size) = {
        let h5 = hdf5_metno::File::open(&path).expect("open");
        let info = h5.dataset("Checked").unwrap().chunk_info(70).unwrap();
        (info.addr, info.size)
    };
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[(addr + size / 2) as usize] ^= 0x5a;
    std::fs::write(&path, bytes).expect("write");
    let mut config = ServeConfig::new(dir.path());
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.compression = vec![ContentCoding::Zstd];
    config.limits.chunk_bytes = 4096;
    let srv = ServerHandle::start_with(config).expect("server");
    for direct in PATHS {
        srv.clear_request_log();
        let c = builder(direct)
            .with_url(srv.base_url())
            .with_retry(RetryConfig::none())
            .with_progress(false)
            .build()
            .expect("connect");
        let i8le = Dtype::Int {
            size: 8,
            order: ByteOrder::Little,
        };
        let mut dest = vec![0u8; ROWS * 8];
        let err = c
            .request_slice_into(
                "bad.hdf5",
                "/Checked",
                &rows(0, ROWS as u64),
                &i8le,
                &mut dest,
            )
            .expect_err("the body broke off");
        assert!(matches!(err, Error::Incomplete { .. }), "{err:?}");
        let log = srv.request_log();
        let r = log.iter().find(|r| r.slice_runs.is_some()).expect("logged");
        assert_eq!(
            (r.status, r.encoding.as_deref(), r.complete),
            (200, Some("zstd"), false)
        );
    }
}
