//! Parquet export to `s3://` against a real S3-compatible HTTP server on loopback (the `moto`
//! server from PyPI in the project venv, see `scripts/setup.sh`), configured only through the
//! usual `AWS_*` environment variables. Skipped with a message when moto is not installed,
//! except under `CI=true`, where it is required.
#![cfg(feature = "parquet")]

#[allow(dead_code)]
mod arrow_common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdfstream::export::{ExportOptions, ParquetCompression, to_parquet};
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use arrow_common::{Sample, assert_column_matches, collect};

/// The moto server process, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> Option<PathBuf> {
    let venv = std::env::var_os("HDFSTREAM_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hdfstream-venv"))
        })?;
    let bin = venv.join("bin/moto_server");
    bin.exists().then_some(bin)
}

/// One raw HTTP/1.1 request; returns the status code.
fn http(port: u16, request: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let head = std::str::from_utf8(&buf[..n]).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

fn start_moto() -> Option<Moto> {
    let Some(bin) = moto_binary() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("moto_server is required under CI=true (pip install 'moto[server]')");
        }
        eprintln!(
            "SKIPPED export_s3: moto_server not found in the venv \
             (run scripts/setup.sh or pip install 'moto[server]')"
        );
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while http(
        port,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .is_none()
    {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(moto)
}

#[test]
fn export_to_s3_compatible_server_from_aws_env() {
    let Some(moto) = start_moto() else {
        return;
    };
    let status = http(
        moto.port,
        "PUT /exports HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, Some(200), "create bucket");
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    // SAFETY: this test binary holds this single test, so no other thread reads the
    // environment while it is changed.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
        std::env::set_var("AWS_ALLOW_HTTP", "true");
    }
    // Big enough (uncompressed) for a multipart upload with 5 MiB parts.
    let s = Sample::new(100_000, 2);
    let builder = s
        .builder("snap_0000.*.hdf5", "PartType0")
        .with_boolean_columns(["IsStarForming"]);
    let opts = ExportOptions::default()
        .with_compression(ParquetCompression::None)
        .with_upload_buffer(5 << 20)
        .with_progress(false);
    let summary = to_parquet(builder, "s3://exports/run1/gas.parquet", &opts).unwrap();
    assert_eq!(summary.rows, s.summary.num_part_total[0]);
    assert!(
        summary.bytes > 6 << 20,
        "{} bytes: not multipart",
        summary.bytes
    );
    // Read the object back through an independent client of the same server.
    let store = AmazonS3Builder::from_env()
        .with_bucket_name("exports")
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = ObjectPath::from("run1/gas.parquet");
    let bytes = rt.block_on(async { store.get(&path).await.unwrap().bytes().await.unwrap() });
    assert_eq!(bytes.len() as u64, summary.bytes);
    let b = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    let schema = std::sync::Arc::clone(b.schema());
    let batches: Vec<_> = b.build().unwrap().map(|b| b.unwrap()).collect();
    let table = collect(&schema, &batches);
    assert_eq!(table.num_rows() as u64, summary.rows);
    for (i, f) in schema.fields().iter().enumerate() {
        assert_column_matches(&s.files(), "PartType0", f.name(), table.column(i), None);
    }
    assert!(schema.metadata().contains_key("Header/BoxSize"));
    assert!(
        schema
            .field_with_name("Coordinates")
            .unwrap()
            .metadata()
            .contains_key("CGSConversionFactor")
    );
}
