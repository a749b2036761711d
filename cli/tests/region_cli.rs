//! `hdfstream get` and `hdfstream export` with `--region` / `--exact` against libhdf5
//! reading every position of the same sample files.

#[allow(dead_code)]
#[path = "../../tests/region_common/mod.rs"]
mod region_common;

use std::process::{Command, Output};

use arrow::array::AsArray;
use arrow::datatypes::UInt64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use region_common::{Snapshot, exact_truth};

fn hdfstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hdfstream"))
        .args(args)
        .env_remove("HDFSTREAM_USER")
        .env_remove("HDFSTREAM_PASSWORD")
        .output()
        .expect("run hdfstream")
}

fn ok(args: &[&str]) -> Vec<u8> {
    let out = hdfstream(args);
    assert!(
        out.status.success(),
        "hdfstream {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ids(path: &std::path::Path) -> Vec<u64> {
    let f = hdf5_metno::File::open(path).unwrap();
    f.dataset("PartType0/ParticleIDs")
        .unwrap()
        .read_raw()
        .unwrap()
}

#[test]
fn get_with_region_cells_and_exact() {
    let s = Snapshot::new(8_000, 1);
    let path = &s.summary.snapshot_files[0];
    let vpath = &s.vpaths()[0];
    let all = ids(path);
    let boxes = ["20:3,2:8,:"];
    let truth: Vec<u64> = exact_truth(path, "PartType0", &boxes)
        .iter()
        .flatten()
        .map(|i| all[i as usize])
        .collect();
    assert!(!truth.is_empty());
    let base = ["get", s.server.base_url(), vpath, "PartType0/ParticleIDs"];
    let exact: serde_json::Value =
        serde_json::from_slice(&ok(
            &[&base[..], &["--region", boxes[0], "--exact"]].concat()
        ))
        .unwrap();
    let got: Vec<u64> = serde_json::from_value(exact["values"].clone()).unwrap();
    assert_eq!(got, truth);
    let cells: serde_json::Value =
        serde_json::from_slice(&ok(&[&base[..], &["--region", boxes[0]]].concat())).unwrap();
    let got: Vec<u64> = serde_json::from_value(cells["values"].clone()).unwrap();
    assert!(got.len() > truth.len() && got.len() < all.len());
    assert!(
        truth.iter().all(|t| got.contains(t)),
        "cells hold every particle in the box"
    );
    // Union of two boxes, and a box with no particle left after --exact.
    let union: serde_json::Value = serde_json::from_slice(&ok(&[
        &base[..],
        &[
            "--region",
            boxes[0],
            "--region",
            "12:13,12:13,12:13",
            "--exact",
        ],
    ]
    .concat()))
    .unwrap();
    let got: Vec<u64> = serde_json::from_value(union["values"].clone()).unwrap();
    let want: Vec<u64> = exact_truth(path, "PartType0", &[boxes[0], "12:13,12:13,12:13"])
        .iter()
        .flatten()
        .map(|i| all[i as usize])
        .collect();
    assert_eq!(got, want);
}

#[test]
fn region_usage_errors() {
    let s = Snapshot::new(1_000, 1);
    let vpath = &s.vpaths()[0];
    let url = s.server.base_url();
    for (args, needle) in [
        (vec!["--region", "1:2,3:4"], "three axes"),
        (vec!["--region", "1:2,3:4,5:x"], "not a finite number"),
        (vec!["--region", "1:2,3:4,0:99"], "must lie in"),
        (
            vec!["--region", "1:2,3:4,5:6", "--slice", "0:10"],
            "cannot be used with",
        ),
        (vec!["--exact"], "--region"),
    ] {
        let out = hdfstream(&[&["get", url, vpath, "PartType0/Masses"][..], &args[..]].concat());
        assert!(!out.status.success(), "{args:?} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn export_with_region_union_exact() {
    let s = Snapshot::new(12_000, 3);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("region.parquet");
    let boxes = ["1:6,1:6,:", "18:22,:,10:15"];
    ok(&[
        "export",
        s.server.base_url(),
        "snap_0000.*.hdf5",
        "PartType0",
        "-o",
        out.to_str().unwrap(),
        "--columns",
        "ParticleIDs",
        "--region",
        boxes[0],
        "--region",
        boxes[1],
        "--exact",
    ]);
    let mut want = Vec::new();
    for path in &s.summary.snapshot_files {
        let all = ids(path);
        want.extend(
            exact_truth(path, "PartType0", &boxes)
                .iter()
                .flatten()
                .map(|i| all[i as usize]),
        );
    }
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut got = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let c = b.column(0).as_primitive::<UInt64Type>();
        got.extend((0..c.len()).map(|i| c.value(i)));
    }
    assert!(!want.is_empty());
    assert_eq!(got, want);
}
