//! `hdfstream export` end to end: the binary exports a glob of sample files through the
//! embedded server; the Parquet file is read back with the `parquet` crate and compared with
//! libhdf5 reading the source files.

use std::process::Command;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, UInt64Type};
use hdfstream_server::ServerHandle;
use hdfstream_server::sample::{SampleOptions, write_sample};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;

/// `group/name` from every file, concatenated (libhdf5).
fn h5<T: hdf5_metno::H5Type>(files: &[std::path::PathBuf], name: &str) -> Vec<T> {
    files
        .iter()
        .flat_map(|f| {
            let f = hdf5_metno::File::open(f).unwrap();
            f.dataset(name).unwrap().read_raw::<T>().unwrap()
        })
        .collect()
}

#[test]
fn export_glob_with_columns_rows_and_compression() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_sample(
        dir.path(),
        &SampleOptions {
            particles: 6_000,
            files: 3,
            seed: 11,
        },
    )
    .unwrap();
    let server = ServerHandle::start(dir.path()).unwrap();
    let out = dir.path().join("out/gas.parquet");
    let run = Command::new(env!("CARGO_BIN_EXE_hdfstream"))
        .args([
            "export",
            server.base_url(),
            "snap_0000.*.hdf5",
            "PartType0",
            "-o",
            out.to_str().unwrap(),
            "--columns",
            "ParticleIDs,Masses",
            "--rows",
            "100:5100",
            "--batch-size",
            "700",
            "--concurrency",
            "2",
            "--compression",
            "snappy",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "export failed: {stderr}");
    assert!(stderr.contains("exported 5000 rows in "), "{stderr}");
    let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out).unwrap()).unwrap();
    assert!(
        b.metadata()
            .row_groups()
            .iter()
            .flat_map(|rg| rg.columns())
            .all(|c| c.compression() == Compression::SNAPPY)
    );
    let schema = Arc::clone(b.schema());
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["ParticleIDs", "Masses"]);
    assert!(
        schema
            .field(1)
            .metadata()
            .contains_key("CGSConversionFactor")
    );
    let batches: Vec<_> = b.build().unwrap().map(|b| b.unwrap()).collect();
    let ids: Vec<u64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<UInt64Type>().values().to_vec())
        .collect();
    let masses: Vec<f32> = batches
        .iter()
        .flat_map(|b| b.column(1).as_primitive::<Float32Type>().values().to_vec())
        .collect();
    let files = &summary.snapshot_files;
    assert_eq!(
        ids,
        h5::<u64>(files, "PartType0/ParticleIDs")[100..5100].to_vec()
    );
    assert_eq!(
        masses,
        h5::<f32>(files, "PartType0/Masses")[100..5100].to_vec()
    );
    assert!(batches.iter().all(|b| b.column(0).null_count() == 0));

    // Bad arguments fail with a message, not a panic.
    let bad = Command::new(env!("CARGO_BIN_EXE_hdfstream"))
        .args([
            "export",
            server.base_url(),
            "snap_0000.*.hdf5",
            "PartType0",
            "-o",
            out.to_str().unwrap(),
            "--rows",
            "9:3",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--rows"));

    // --json prints the summary: the row count libhdf5 finds in the files.
    let run = Command::new(env!("CARGO_BIN_EXE_hdfstream"))
        .args([
            "export",
            server.base_url(),
            "snap_0000.*.hdf5",
            "PartType0",
            "-o",
            out.to_str().unwrap(),
            "--columns",
            "Masses",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON summary");
    assert_eq!(
        doc["rows"],
        h5::<f32>(files, "PartType0/Masses").len() as u64
    );
    assert_eq!(doc["bytes"], std::fs::metadata(&out).unwrap().len());
}
