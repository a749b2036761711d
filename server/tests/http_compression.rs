//! Negotiated response compression (`ServeConfig::compression`, `--compress`), on the wire:
//! which coding each `Accept-Encoding` gets, that every compressed body decompresses to the
//! identity body byte for byte and to the values libhdf5 reads, that small responses and
//! downloads stay uncompressed, that a server without the option ignores `Accept-Encoding`,
//! and that a body failing mid-stream still ends without the chunked body's last chunk.

mod hdf5_util;
mod http_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use hdf5_metno::File;
use hdf5_metno::filters::Filter;
use hdf5_util::{decode_array, slice, truth};
use hdfstream_server::http::MIN_COMPRESSED_BYTES;
use hdfstream_server::{ContentCoding, ServeConfig, ServerHandle};
use http_common::RawReply as Raw;

/// Rows of the large datasets.
const ROWS: usize = 200_000;

/// The body of `raw` with its `Content-Encoding` undone.
fn decoded(raw: &Raw) -> Vec<u8> {
    let mut out = Vec::new();
    match raw.header("content-encoding") {
        None => out.clone_from(&raw.body),
        Some("zstd") => out = zstd::decode_all(&raw.body[..]).expect("valid zstd body"),
        Some("gzip") => {
            flate2::read::GzDecoder::new(&raw.body[..])
                .read_to_end(&mut out)
                .expect("valid gzip body");
        }
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
    out
}

/// Sends one request (`Connection: close`) and reads the whole answer.
fn exchange(base_url: &str, method: &str, path: &str, body: &[u8], accept: Option<&str>) -> Raw {
    try_exchange(base_url, method, path, body, accept).expect("response head")
}

/// [`exchange`], or `None` when the connection closed before a whole response head came.
fn try_exchange(
    base_url: &str,
    method: &str,
    path: &str,
    body: &[u8],
    accept: Option<&str>,
) -> Option<Raw> {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let (host, base) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!(
        "{method} {base}{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/x-msgpack\r\n");
    }
    if let Some(accept) = accept {
        head.push_str(&format!("Accept-Encoding: {accept}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let mut reply = Vec::new();
    // A server that cuts the body off may reset the connection: keep what arrived.
    let _ = stream.read_to_end(&mut reply);
    Raw::parse(&reply)
}

/// A slice request body for rows `[start, start + count)` of a 1-d or 2-d dataset.
fn slice_body(object: &str, start: u64, count: u64, cols: Option<u64>) -> Vec<u8> {
    let rest: Vec<(u64, u64)> = cols.map(|c| (0, c)).into_iter().collect();
    slice(object, &[(start, count)], &rest).encode_body()
}

/// `data.hdf5`: sorted integer IDs and coordinates (compressible), random floats (not),
/// a tiny dataset, and a large one stored in checksummed chunks.
fn write_file(path: &Path) {
    let file = File::create(path).expect("create");
    let ids: Vec<u64> = (0..ROWS as u64).map(|i| 1_000_000 + 7 * i).collect();
    file.new_dataset::<u64>()
        .shape(ROWS)
        .create("ParticleIDs")
        .expect("ids")
        .write_raw(&ids)
        .expect("write ids");
    let coords: Vec<f64> = (0..3 * ROWS).map(|i| (i / 3) as f64 * 1e-3).collect();
    file.new_dataset::<f64>()
        .shape((ROWS, 3))
        .create("Coordinates")
        .expect("coords")
        .write_raw(&coords)
        .expect("write coords");
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let random: Vec<f64> = (0..ROWS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            f64::from_bits((state >> 12) | 0x3ff0_0000_0000_0000)
        })
        .collect();
    file.new_dataset::<f64>()
        .shape(ROWS)
        .create("Random")
        .expect("random")
        .write_raw(&random)
        .expect("write random");
    file.new_dataset::<i32>()
        .shape(10)
        .create("Tiny")
        .expect("tiny")
        .write_raw(&(0..10).collect::<Vec<i32>>())
        .expect("write tiny");
    file.new_dataset::<u64>()
        .shape(ROWS)
        .chunk(2000)
        .set_filters(&[Filter::Shuffle, Filter::Deflate(1), Filter::Fletcher32])
        .create("Checked")
        .expect("checked")
        .write_raw(&ids)
        .expect("write checked");
}

/// Flips one byte in the middle of the stored bytes of chunk `index` of `name`.
fn corrupt(path: &Path, name: &str, index: usize) {
    let (addr, size) = {
        let h5 = File::open(path).expect("open");
        let info = h5
            .dataset(name)
            .expect("dataset")
            .chunk_info(index)
            .expect("chunk info");
        (info.addr, info.size)
    };
    let mut bytes = std::fs::read(path).expect("read");
    bytes[(addr + size / 2) as usize] ^= 0x5a;
    std::fs::write(path, bytes).expect("write");
}

fn server(root: &Path, compression: &[ContentCoding]) -> ServerHandle {
    let mut config = ServeConfig::new(root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.compression = compression.to_vec();
    ServerHandle::start_with(config).expect("server")
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(&dir.path().join("data.hdf5"));
    dir
}

/// The datasets compared: name, columns, and the largest compressed/identity ratio zstd
/// must reach (1.0: none expected, random floats).
const COLUMNS: [(&str, Option<u64>, f64); 3] = [
    ("ParticleIDs", None, 0.5),
    ("Coordinates", Some(3), 0.5),
    ("Random", None, 1.01),
];

#[test]
fn each_accept_encoding_gets_its_coding_and_the_same_bytes_and_values() {
    let dir = fixture();
    let srv = server(dir.path(), &[ContentCoding::Zstd, ContentCoding::Gzip]);
    let plain = server(dir.path(), &[]);
    let h5 = File::open(dir.path().join("data.hdf5")).expect("open");
    for (name, cols, max_ratio) in COLUMNS {
        let body = slice_body(name, 0, ROWS as u64, cols);
        let identity = exchange(srv.base_url(), "POST", "/msgpack/data.hdf5", &body, None);
        assert_eq!(identity.status, 200);
        assert!(identity.complete);
        assert_eq!(identity.header("content-encoding"), None, "{name}");
        // Today's bytes: the same as from a server without the option, whatever is asked.
        let reference = exchange(
            plain.base_url(),
            "POST",
            "/msgpack/data.hdf5",
            &body,
            Some("zstd, gzip"),
        );
        assert_eq!(reference.header("content-encoding"), None, "{name}");
        assert!(
            reference.body == identity.body,
            "{name}: identity bytes differ"
        );
        // The values are what libhdf5 reads.
        let value = rmpv::decode::read_value(&mut &identity.body[..]).expect("msgpack");
        let want = truth(&h5.dataset(name).expect("dataset"));
        assert!(decode_array(&value).elems == want, "{name}: values differ");

        for (accept, coding) in [
            ("zstd", Some("zstd")),
            ("gzip, deflate", Some("gzip")), // what Python's requests sends
            ("gzip, deflate, zstd", Some("zstd")),
            ("zstd, gzip, deflate", Some("zstd")), // what our client sends
            ("zstd;q=0.5, gzip", Some("gzip")),
            ("deflate, br", None),
            ("identity", None),
            ("zstd;q=0, gzip;q=0", None),
        ] {
            let got = exchange(
                srv.base_url(),
                "POST",
                "/msgpack/data.hdf5",
                &body,
                Some(accept),
            );
            assert_eq!(got.status, 200);
            assert!(got.complete, "{name} {accept}: body did not end properly");
            assert_eq!(got.header("content-encoding"), coding, "{name} {accept}");
            if coding.is_some() {
                assert_eq!(got.header("content-length"), None);
                assert_eq!(got.header("vary"), Some("accept-encoding"));
            }
            assert!(
                decoded(&got) == identity.body,
                "{name} {accept}: decompressed body differs"
            );
            if coding == Some("zstd") {
                // One frame, with a content checksum (Frame_Header_Descriptor bit 2).
                assert_eq!(got.body[..4], [0x28, 0xb5, 0x2f, 0xfd]);
                assert_ne!(got.body[4] & 0x04, 0, "{name}: zstd frame without checksum");
                let ratio = got.body.len() as f64 / identity.body.len() as f64;
                assert!(ratio <= max_ratio, "{name}: zstd ratio {ratio}");
            }
        }
    }
    // The request log counts the bytes sent, and names the coding.
    let log = srv.request_log();
    let zstd = log
        .iter()
        .find(|r| {
            r.encoding.as_deref() == Some("zstd") && r.object.as_deref() == Some("ParticleIDs")
        })
        .expect("a zstd response in the log");
    assert!(zstd.complete);
    assert!(zstd.body_bytes < (ROWS as u64 * 8) / 2, "{zstd:?}");
}

#[test]
fn small_responses_and_downloads_are_never_compressed() {
    let dir = fixture();
    let srv = server(dir.path(), &[ContentCoding::Zstd, ContentCoding::Gzip]);
    let accept = Some("zstd, gzip");
    // A tiny slice: one piece, sent whole with its length.
    let tiny = exchange(
        srv.base_url(),
        "POST",
        "/msgpack/data.hdf5",
        &slice_body("Tiny", 0, 10, None),
        accept,
    );
    assert_eq!(tiny.status, 200);
    assert_eq!(tiny.header("content-encoding"), None);
    let len: u64 = tiny
        .header("content-length")
        .expect("length")
        .parse()
        .expect("number");
    assert!(len < MIN_COMPRESSED_BYTES);
    assert_eq!(len, tiny.body.len() as u64);
    // One row of a large dataset: also short.
    let row = exchange(
        srv.base_url(),
        "POST",
        "/msgpack/data.hdf5",
        &slice_body("Coordinates", 17, 1, Some(3)),
        accept,
    );
    assert_eq!(row.header("content-encoding"), None);
    // A short directory listing.
    let listing = exchange(srv.base_url(), "GET", "/msgpack/", &[], accept);
    assert_eq!(listing.status, 200);
    assert_eq!(listing.header("content-encoding"), None);
    // A download keeps its bytes and its length.
    let file = std::fs::read(dir.path().join("data.hdf5")).expect("read");
    let download = exchange(srv.base_url(), "GET", "/download/data.hdf5", &[], accept);
    assert_eq!(download.status, 200);
    assert_eq!(download.header("content-encoding"), None);
    assert_eq!(
        download.header("content-length"),
        Some(file.len().to_string().as_str())
    );
    assert!(download.body == file);
    // A large slice in the same run is compressed (the option is on).
    let large = exchange(
        srv.base_url(),
        "POST",
        "/msgpack/data.hdf5",
        &slice_body("ParticleIDs", 0, 1000, None),
        accept,
    );
    assert_eq!(large.header("content-encoding"), Some("zstd"));
}

#[test]
fn only_the_allowed_codings_are_used() {
    let dir = fixture();
    let body = slice_body("ParticleIDs", 0, ROWS as u64, None);
    let gzip_only = server(dir.path(), &[ContentCoding::Gzip]);
    let got = exchange(
        gzip_only.base_url(),
        "POST",
        "/msgpack/data.hdf5",
        &body,
        Some("zstd, gzip"),
    );
    assert_eq!(got.header("content-encoding"), Some("gzip"));
    let zstd_only = server(dir.path(), &[ContentCoding::Zstd]);
    let got = exchange(
        zstd_only.base_url(),
        "POST",
        "/msgpack/data.hdf5",
        &body,
        Some("gzip, deflate"),
    );
    assert_eq!(got.header("content-encoding"), None);
    assert!(got.complete);
    // The command-line form.
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: hdfstream_server::ServeArgs,
    }
    let cli = Cli::try_parse_from(["serve", "/data", "--compress", "zstd,gzip"]).expect("parse");
    let config = cli.serve.to_config().expect("config");
    assert_eq!(
        config.compression,
        [ContentCoding::Zstd, ContentCoding::Gzip]
    );
    let cli = Cli::try_parse_from(["serve", "/data"]).expect("parse");
    assert!(
        cli.serve
            .to_config()
            .expect("config")
            .compression
            .is_empty()
    );
    assert!(Cli::try_parse_from(["serve", "/data", "--compress", "br"]).is_err());
}

#[test]
fn a_compressed_body_failing_mid_stream_has_no_last_chunk() {
    let dir = fixture();
    let path = dir.path().join("data.hdf5");
    // Chunk 60 of 100 (rows 120000..122000) no longer passes its checksum.
    corrupt(&path, "Checked", 60);
    let mut config = ServeConfig::new(dir.path());
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.compression = vec![ContentCoding::Zstd, ContentCoding::Gzip];
    config.limits.chunk_bytes = 4096;
    let srv = ServerHandle::start_with(config).expect("server");
    let body = slice_body("Checked", 0, ROWS as u64, None);
    for accept in [Some("zstd"), Some("gzip"), None] {
        // When the pieces before the failure and the failure itself are all ready at once
        // (a busy machine), the connection may close before the head was flushed: no
        // response at all, which a client sees as failed too. Such a try is tried again;
        // a response whose head came is checked.
        let got = (0..10)
            .find_map(|_| try_exchange(srv.base_url(), "POST", "/msgpack/data.hdf5", &body, accept))
            .expect("a response head within 10 tries");
        assert_eq!(
            got.status, 200,
            "{accept:?}: the failure comes after the first piece"
        );
        assert!(
            !got.complete,
            "{accept:?}: a failed body must not end properly"
        );
        assert_eq!(
            got.header("content-encoding"),
            accept,
            "{accept:?}: coding of the failed body"
        );
    }
    // The rows before the bad chunk still read, compressed, and match libhdf5's.
    let got = exchange(
        srv.base_url(),
        "POST",
        "/msgpack/data.hdf5",
        &slice_body("Checked", 0, 100_000, None),
        Some("zstd"),
    );
    assert!(got.complete);
    assert_eq!(got.header("content-encoding"), Some("zstd"));
    let value = rmpv::decode::read_value(&mut &decoded(&got)[..]).expect("msgpack");
    let h5 = File::open(&path).expect("open");
    let want = truth(&h5.dataset("ParticleIDs").expect("dataset"));
    assert!(decode_array(&value).elems == want[..100_000]);
}
