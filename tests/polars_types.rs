//! Column types end to end: every integer width, floats, fixed and variable-length strings,
//! booleans and Array columns, written with libhdf5 and compared with libhdf5's reading.
#![cfg(feature = "polars")]

#[allow(dead_code)] // each test crate uses a subset
mod polars_common;

use std::path::Path;

use hdf5_metno::types::{FixedAscii, VarLenUnicode};
use hdfstream::polars::{HdfstreamScan, OnUnsupported, ScanArgsHdfstream};
use polars::prelude::*;
use polars_common::{Served, assert_same, truth};

const ROWS: usize = 1_000;

fn write_types(dir: &Path) {
    let f = hdf5_metno::File::create(dir.join("types.hdf5")).unwrap();
    let g = f.create_group("Table").unwrap();
    let r = |i: usize, m: i64| ((i as i64 * 7919 + 17) % m) - m / 2;
    g.new_dataset_builder()
        .with_data(&(0..ROWS).map(|i| r(i, 250) as i8).collect::<Vec<_>>())
        .create("i8")
        .unwrap();
    g.new_dataset_builder()
        .with_data(&(0..ROWS).map(|i| r(i, 60_000) as i16).collect::<Vec<_>>())
        .create("i16")
        .unwrap();
    g.new_dataset_builder()
        .with_data(&(0..ROWS).map(|i| r(i, 1 << 30) as i32).collect::<Vec<_>>())
        .create("i32")
        .unwrap();
    g.new_dataset_builder()
        .with_data(
            &(0..ROWS)
                .map(|i| r(i, 1 << 40) * 1_000_003)
                .collect::<Vec<_>>(),
        )
        .create("i64")
        .unwrap();
    g.new_dataset_builder()
        .with_data(&(0..ROWS).map(|i| (i * 31 % 256) as u8).collect::<Vec<_>>())
        .create("u8")
        .unwrap();
    g.new_dataset_builder()
        .with_data(
            &(0..ROWS)
                .map(|i| (i * 331 % 65_536) as u16)
                .collect::<Vec<_>>(),
        )
        .create("u16")
        .unwrap();
    g.new_dataset_builder()
        .with_data(
            &(0..ROWS)
                .map(|i| (i as u32).wrapping_mul(2_654_435_761))
                .collect::<Vec<_>>(),
        )
        .create("u32")
        .unwrap();
    g.new_dataset_builder()
        .with_data(
            &(0..ROWS)
                .map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .collect::<Vec<_>>(),
        )
        .create("u64")
        .unwrap();
    g.new_dataset_builder()
        .with_data(&(0..ROWS).map(|i| i as f32 / 7.0).collect::<Vec<_>>())
        .create("f32")
        .unwrap();
    g.new_dataset_builder()
        .with_data(&(0..ROWS).map(|i| (i as f64).sqrt()).collect::<Vec<_>>())
        .create("f64")
        .unwrap();
    g.new_dataset_builder()
        .with_data(&(0..ROWS).map(|i| i % 3 == 0).collect::<Vec<_>>())
        .create("flag")
        .unwrap();
    let fixed: Vec<FixedAscii<8>> = (0..ROWS)
        .map(|i| FixedAscii::from_ascii(format!("s{}", i % 97).as_bytes()).unwrap())
        .collect();
    g.new_dataset_builder()
        .with_data(&fixed)
        .create("label")
        .unwrap();
    let vlen: Vec<VarLenUnicode> = (0..ROWS)
        .map(|i| "x".repeat(i % 5).parse().unwrap())
        .collect();
    g.new_dataset_builder()
        .with_data(&vlen)
        .create("text")
        .unwrap();
    let arr = ndarray::Array2::from_shape_fn((ROWS, 4), |(i, j)| (i * 4 + j) as i32);
    g.new_dataset_builder()
        .with_data(&arr)
        .create("quad")
        .unwrap();
    // Left out: other row count, scalar.
    g.new_dataset_builder()
        .with_data(&[1.0f64, 2.0])
        .create("short")
        .unwrap();
    let sc = g.new_dataset::<f64>().create("scalar").unwrap();
    sc.write_scalar(&1.5f64).unwrap();
}

#[test]
fn every_type_equals_libhdf5() {
    let s = Served::custom(write_types);
    let args = ScanArgsHdfstream::default().with_boolean_columns(["flag"]);
    let scan = HdfstreamScan::open(&s.url("types.hdf5"), "Table", args).unwrap();
    let schema = scan.schema();
    let expect = [
        ("i8", DataType::Int8),
        ("i16", DataType::Int16),
        ("i32", DataType::Int32),
        ("i64", DataType::Int64),
        ("u8", DataType::UInt8),
        ("u16", DataType::UInt16),
        ("u32", DataType::UInt32),
        ("u64", DataType::UInt64),
        ("f32", DataType::Float32),
        ("f64", DataType::Float64),
        ("flag", DataType::Boolean),
        ("label", DataType::String),
        ("text", DataType::String),
        ("quad", DataType::Array(Box::new(DataType::Int32), 4)),
    ];
    for (n, t) in &expect {
        assert_eq!(schema.get(n), Some(t), "{n}");
    }
    assert!(schema.get("short").is_none() && schema.get("scalar").is_none());
    let files = vec![s.root.join("types.hdf5")];
    let want = truth(&files, "Table", &schema, Some("row_index"));
    let lf = scan.lazy().unwrap();
    assert_same(&lf.clone().collect().unwrap(), &want, "all types");
    for (what, pred) in [
        (
            "strings by index",
            col("row_index").is_in(
                lit(Series::new("p".into(), [1u64, 2, 3, 500, 999])).implode(false),
                false,
            ),
        ),
        ("string predicate", col("label").eq(lit("s5"))),
        (
            "bool predicate",
            col("flag").and(col("row_index").lt(lit(100))),
        ),
        (
            "vlen predicate",
            col("text").eq(lit("xxx")).or(col("quad").is_null()),
        ),
    ] {
        let got = lf.clone().filter(pred.clone()).collect().unwrap();
        let exp = want.clone().lazy().filter(pred).collect().unwrap();
        assert_same(&got, &exp, what);
    }
}

#[test]
fn unsupported_dataset_is_an_error_when_asked() {
    let s = Served::custom(write_types);
    let args = ScanArgsHdfstream::default().with_on_unsupported(OnUnsupported::Error);
    let err = HdfstreamScan::open(&s.url("types.hdf5"), "Table", args).unwrap_err();
    assert!(err.to_string().contains("/Table/"), "{err}");
}
