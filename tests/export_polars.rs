//! Parquet export read back with Polars' own Parquet reader: every column equals libhdf5
//! reading the source files one after the other, and the file's key-value metadata carries
//! the dataset attributes.
#![cfg(all(feature = "polars", feature = "parquet"))]

#[allow(dead_code)] // each test crate uses a subset
mod polars_common;

use hdfstream::OpenOptions;
use hdfstream::arrow::GroupReaderBuilder;
use hdfstream::export::{ExportOptions, to_parquet};
use parquet::file::reader::{FileReader, SerializedFileReader};
use polars::prelude::*;
use polars_common::{Served, assert_same, truth};
use polars_io::prelude::SerReader;

/// One attribute of a dataset as f64, read with libhdf5.
fn h5_attr(ds: &hdf5_metno::Dataset, name: &str) -> f64 {
    let v = ds.attr(name).unwrap().read_raw::<f64>().unwrap();
    assert_eq!(v.len(), 1, "{name} is a scalar");
    v[0]
}

#[test]
fn multi_file_export_reads_back_in_polars_like_libhdf5() {
    let s = Served::sample(12_000, 3);
    let out = s.root.join("gas.parquet");
    let builder = GroupReaderBuilder::open_with(
        s.backend(),
        "snap_0000.*.hdf5",
        "PartType0",
        OpenOptions::default().data_size_limit(0),
    )
    .unwrap()
    .with_boolean_columns(["IsStarForming"]);
    let opts = ExportOptions::default()
        .with_batch_size(2_500)
        .with_row_group_size(5_000)
        .with_progress(false);
    let summary = to_parquet(builder, out.to_str().unwrap(), &opts).unwrap();
    let total = s.sample.num_part_total[0];
    assert_eq!(summary.rows, total);
    assert!(s.sample.snapshot_files.len() == 3);

    let got = polars_io::parquet::read::ParquetReader::new(std::fs::File::open(&out).unwrap())
        .finish()
        .unwrap();
    assert_eq!(got.height() as u64, total);
    let schema = got.schema().clone();
    assert!(schema.len() >= 10, "{schema:?}");
    assert_eq!(schema.get("IsStarForming"), Some(&DataType::Boolean));
    // The truth: libhdf5 reading the three files in order, with the types Polars read.
    let want = truth(&s.sample.snapshot_files, "PartType0", &schema, None);
    assert_same(&got, &want, "Polars ParquetReader vs libhdf5");

    // The key-value metadata holds the Arrow schema, whose fields carry the attributes.
    let reader = SerializedFileReader::new(std::fs::File::open(&out).unwrap()).unwrap();
    let fmd = reader.metadata().file_metadata();
    let kv = fmd.key_value_metadata().expect("key-value metadata");
    assert!(kv.iter().any(|e| e.key == "ARROW:schema"), "{kv:?}");
    let arrow_schema =
        parquet::arrow::parquet_to_arrow_schema(fmd.schema_descr(), Some(kv)).unwrap();
    let h5 = hdf5_metno::File::open(&s.sample.snapshot_files[0]).unwrap();
    for name in ["Coordinates", "Densities", "Masses"] {
        let md = arrow_schema.field_with_name(name).unwrap().metadata();
        let ds = h5.dataset(&format!("PartType0/{name}")).unwrap();
        for attr in ["CGSConversionFactor", "U_L exponent"] {
            let v: f64 = md[attr].parse().unwrap();
            assert_eq!(v, h5_attr(&ds, attr), "{name}.{attr}");
        }
    }
    assert_eq!(arrow_schema.metadata()["hdfstream:group"], "/PartType0");
}
