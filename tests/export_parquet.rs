//! Parquet export round trips: export through the embedded server, read the file back with
//! the `parquet` crate and compare every value with libhdf5 reading the source files; check
//! metadata, row groups, compression and row order over multi-file globs.
#![cfg(feature = "parquet")]

#[allow(dead_code)]
mod arrow_common;
#[allow(dead_code)] // each test crate uses a subset
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use hdfstream::RowRanges;
use hdfstream::export::{
    ExportOptions, ParquetCompression, destination, to_parquet, write_parquet,
};
use object_store::ObjectStoreExt;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;

use arrow_common::{Sample, assert_column_matches, collect, h5_attr_f64};
use support::http::{Framing, MockResponse, MockServer};

/// Reads a whole Parquet file: (batches as one, file metadata).
fn read_back<R: parquet::file::reader::ChunkReader + 'static>(
    data: R,
) -> (RecordBatch, Arc<ParquetMetaData>) {
    let b = ParquetRecordBatchReaderBuilder::try_new(data).unwrap();
    let meta = Arc::clone(b.metadata());
    // The builder's schema carries the schema-level metadata (the batches' schema does not).
    let schema = Arc::clone(b.schema());
    let reader = b.with_batch_size(10_000).build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    (collect(&schema, &batches), meta)
}

fn codecs(meta: &ParquetMetaData) -> Vec<Compression> {
    meta.row_groups()
        .iter()
        .flat_map(|rg| rg.columns().iter().map(|c| c.compression()))
        .collect()
}

#[test]
fn local_file_round_trip_over_a_glob() {
    let s = Sample::new(30_000, 3);
    let out = s.dir.path().join("export/nested/gas.parquet");
    let builder = s
        .builder("snap_0000.*.hdf5", "PartType0")
        .with_boolean_columns(["IsStarForming"]);
    let opts = ExportOptions::default()
        .with_batch_size(5_000)
        .with_row_group_size(8_000)
        .with_progress(false);
    let summary = to_parquet(builder, out.to_str().unwrap(), &opts).unwrap();
    let total = s.summary.num_part_total[0];
    assert_eq!(summary.rows, total);
    assert_eq!(summary.bytes, std::fs::metadata(&out).unwrap().len());
    let (table, meta) = read_back(std::fs::File::open(&out).unwrap());
    assert_eq!(table.num_rows() as u64, total);
    assert_eq!(meta.num_row_groups(), summary.row_groups);
    assert_eq!(meta.num_row_groups() as u64, total.div_ceil(8_000));
    assert!(
        codecs(&meta)
            .iter()
            .all(|c| matches!(c, Compression::ZSTD(_))),
        "zstd by default"
    );
    // Values and order equal libhdf5 reading the three files one after the other.
    let schema = table.schema();
    assert!(schema.fields().len() >= 10, "{schema:?}");
    for (i, f) in schema.fields().iter().enumerate() {
        assert_column_matches(&s.files(), "PartType0", f.name(), table.column(i), None);
    }
    assert_eq!(
        schema.field_with_name("IsStarForming").unwrap().data_type(),
        &DataType::Boolean
    );
    // Attributes survive in the Parquet file's Arrow schema.
    let f = hdf5_metno::File::open(&s.files()[0]).unwrap();
    for name in ["Coordinates", "Densities", "Temperatures"] {
        let md = schema.field_with_name(name).unwrap().metadata();
        let ds = f.dataset(&format!("PartType0/{name}")).unwrap();
        let cgs: f64 = md["CGSConversionFactor"].parse().unwrap();
        assert_eq!(cgs, h5_attr_f64(&ds, "CGSConversionFactor"), "{name}");
        let l: f64 = md["U_L exponent"].parse().unwrap();
        assert_eq!(l, h5_attr_f64(&ds, "U_L exponent"), "{name}");
    }
    let md = schema.metadata();
    let box_size: Vec<f64> = serde_json::from_str(&md["Header/BoxSize"]).unwrap();
    let hdr = f.group("Header").unwrap();
    assert_eq!(
        box_size,
        hdr.attr("BoxSize").unwrap().read_raw::<f64>().unwrap()
    );
    assert_eq!(md["hdfstream:group"], "/PartType0");
}

#[test]
fn file_url_with_columns_rows_and_snappy() {
    let s = Sample::new(20_000, 2);
    let out = s.dir.path().join("sel.parquet");
    let url = format!("file://{}", out.display());
    let rows = 1_234..15_678u64;
    let builder = s
        .builder("snap_0000.*.hdf5", "PartType1")
        .with_columns(["ParticleIDs", "Velocities"])
        .with_rows(rows.clone());
    let opts = ExportOptions::default()
        .with_compression(ParquetCompression::Snappy)
        .with_progress(false);
    let summary = to_parquet(builder, &url, &opts).unwrap();
    assert_eq!(summary.rows, rows.end - rows.start);
    let (table, meta) = read_back(std::fs::File::open(&out).unwrap());
    assert!(codecs(&meta).iter().all(|c| *c == Compression::SNAPPY));
    let names: Vec<&str> = table
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["ParticleIDs", "Velocities"]);
    let sel = RowRanges::from_ranges(std::iter::once(rows));
    for (i, name) in names.iter().enumerate() {
        assert_column_matches(&s.files(), "PartType1", name, table.column(i), Some(&sel));
    }
}

#[test]
fn memory_store_round_trip_uncompressed() {
    let s = Sample::new(5_000, 1);
    let store = Arc::new(InMemory::new());
    let path = ObjectPath::from("tables/halos.parquet");
    let reader = s
        .builder("halos_0000.hdf5", "Halos")
        .with_batch_size(3)
        .build()
        .unwrap();
    let opts = ExportOptions::default()
        .with_compression(ParquetCompression::None)
        .with_progress(false);
    let summary = write_parquet(reader, store.clone(), &path, &opts).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bytes = rt.block_on(async { store.get(&path).await.unwrap().bytes().await.unwrap() });
    assert_eq!(bytes.len() as u64, summary.bytes);
    let (table, meta) = read_back(bytes);
    assert!(
        codecs(&meta)
            .iter()
            .all(|c| *c == Compression::UNCOMPRESSED)
    );
    let halo_file = vec![s.summary.halo_file.clone()];
    assert_eq!(table.num_rows() as u64, s.summary.halos);
    for (i, f) in table.schema_ref().fields().iter().enumerate() {
        assert_column_matches(&halo_file, "Halos", f.name(), table.column(i), None);
    }
    // `memory://` through the string form works too (the store lives for the call only).
    let b = s.builder("halos_0000.hdf5", "Halos").with_columns(["ID"]);
    let summary = to_parquet(b, "memory://x/ids.parquet", &opts).unwrap();
    assert_eq!(summary.rows, s.summary.halos);
    assert!(summary.bytes > 0);
}

#[test]
fn bad_destinations_and_options_are_errors() {
    assert!(matches!(
        destination("ftp://host/x.parquet"),
        Err(hdfstream::Error::InvalidPath { .. })
    ));
    assert!(matches!(
        destination("s3://bucket-only"),
        Err(hdfstream::Error::InvalidPath { .. })
    ));
    let e = destination("sftp://host/x.parquet").err().unwrap();
    assert!(
        matches!(e, hdfstream::Error::InvalidPath { .. }) && e.to_string().contains("sftp"),
        "{e}"
    );
    assert!("lz4".parse::<ParquetCompression>().is_err());
    assert_eq!(
        "ZSTD".parse::<ParquetCompression>().unwrap(),
        ParquetCompression::Zstd
    );
    // Calling from async code is refused instead of panicking inside tokio.
    let s = Sample::new(1_000, 1);
    let b = s.builder("snap_0000.hdf5", "PartType4");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = s.dir.path().join("never.parquet");
    let e = rt.block_on(async {
        to_parquet(b, out.to_str().unwrap(), &ExportOptions::default()).unwrap_err()
    });
    assert!(e.to_string().contains("outside async"), "{e}");
    assert!(!out.exists());
}

/// Bodies the server received, by request target.
type Objects = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A WebDAV-like server in miniature: `PUT` stores a body, `HEAD` reports its size.
fn put_server() -> (MockServer, Objects) {
    let objects: Objects = Arc::default();
    let store = Arc::clone(&objects);
    let server = MockServer::start(move |req| {
        let mut objects = store.lock().unwrap();
        match req.method.as_str() {
            "PUT" => {
                objects.insert(req.target.clone(), req.body.clone());
                MockResponse::new(201, "text/plain", Vec::new())
            }
            // Headers only: a Content-Length with no body, and the connection closed.
            "HEAD" => match objects.get(&req.target) {
                Some(body) => MockResponse::new(200, "application/octet-stream", Vec::new())
                    .framing(Framing::Truncated(body.len())),
                None => MockResponse::new(404, "text/plain", Vec::new()),
            },
            _ => MockResponse::new(405, "text/plain", Vec::new()),
        }
    });
    (server, objects)
}

#[test]
fn http_destination_takes_the_whole_file_in_one_put() {
    let (server, objects) = put_server();
    // Bigger than the upload buffer, which would need a multipart upload HTTP does not have.
    let s = Sample::new(100_000, 2);
    let opts = ExportOptions::default()
        .with_compression(ParquetCompression::None)
        .with_upload_buffer(5 << 20)
        .with_progress(false);
    let dest = format!("{}/dav/run1/gas.parquet", server.url());
    let b = s.builder("snap_0000.*.hdf5", "PartType0");
    let summary = to_parquet(b, &dest, &opts).unwrap();
    assert!(summary.bytes > 5 << 20, "{} bytes", summary.bytes);
    let puts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 1, "one PUT");
    assert_eq!(puts[0].target, "/dav/run1/gas.parquet");
    let body = objects.lock().unwrap()["/dav/run1/gas.parquet"].clone();
    assert_eq!(body.len() as u64, summary.bytes);
    let copy = s.dir.path().join("put.parquet");
    std::fs::write(&copy, &body).unwrap();
    let (table, _) = read_back(std::fs::File::open(&copy).unwrap());
    assert_eq!(table.num_rows() as u64, s.summary.num_part_total[0]);
    for (i, f) in table.schema_ref().fields().iter().enumerate() {
        assert_column_matches(&s.files(), "PartType0", f.name(), table.column(i), None);
    }
}
