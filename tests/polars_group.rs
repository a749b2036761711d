//! `scan_group` / `scan_file` over an opened remote file, and recursive subgroup columns:
//! results equal the same query on the data read with libhdf5, pushdown checked with the
//! server's request log.
#![cfg(feature = "polars")]

#[allow(dead_code)] // each test crate uses a subset
mod polars_common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hdfstream::OpenOptions;
use hdfstream::polars::{ScanArgsHdfstream, scan_file, scan_group};
use hdfstream::remote::{Backend, open_with};
use hdfstream_protocol::{ArrayData, Dtype, Member, PathInfo, SliceSpec};
use polars::prelude::*;
use polars_common::{Served, assert_same, h5_polars_type, truth};

const N: u64 = 5_000;

/// A backend that counts the requests passing through it.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Backend>,
    objects: AtomicUsize,
    slices: AtomicUsize,
}

impl Backend for Counting {
    fn request_path(&self, vpath: &str) -> hdfstream::Result<PathInfo> {
        self.inner.request_path(vpath)
    }
    fn request_object(
        &self,
        file: &str,
        object: &str,
        max_depth: u32,
        data_size_limit: u64,
    ) -> hdfstream::Result<Member> {
        self.objects.fetch_add(1, Ordering::SeqCst);
        self.inner
            .request_object(file, object, max_depth, data_size_limit)
    }
    fn request_slice(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
    ) -> hdfstream::Result<ArrayData> {
        self.slices.fetch_add(1, Ordering::SeqCst);
        self.inner.request_slice(file, object, slice)
    }
    fn request_slice_into(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
        dest: &mut [u8],
    ) -> hdfstream::Result<()> {
        self.slices.fetch_add(1, Ordering::SeqCst);
        self.inner
            .request_slice_into(file, object, slice, dtype, dest)
    }
    fn download(&self, vpath: &str, out: &mut dyn Write) -> hdfstream::Result<u64> {
        self.inner.download(vpath, out)
    }
}

/// The query both sides run: projection plus a filter on data and on the row index.
fn query(lf: LazyFrame) -> LazyFrame {
    lf.filter(
        col("row_index")
            .gt_eq(lit(100u64))
            .and(col("Masses").gt(col("Masses").mean())),
    )
    .select([col("row_index"), col("Masses"), col("Densities")])
}

#[test]
fn scan_group_of_opened_file_matches_libhdf5() {
    let s = Served::sample(N, 1);
    let file = hdfstream::open(
        s.server.base_url(),
        "snap_0000.hdf5",
        OpenOptions::default(),
    )
    .unwrap()
    .into_file()
    .unwrap();
    let group = file.group("PartType0").unwrap();
    let lf = scan_group(&group, ScanArgsHdfstream::default()).unwrap();
    let schema = lf.clone().collect_schema().unwrap();
    let want = truth(
        &s.sample.snapshot_files,
        "PartType0",
        &schema,
        Some("row_index"),
    );
    let got = query(lf).collect().unwrap();
    let expected = query(want.lazy()).collect().unwrap();
    assert!(
        got.height() > 100,
        "the filter keeps rows: {}",
        got.height()
    );
    assert_same(&got, &expected, "scan_group");

    let lf = scan_file(&file, "/PartType0", ScanArgsHdfstream::default()).unwrap();
    assert_same(
        &query(lf).collect().unwrap(),
        &expected,
        "scan_file with the same group",
    );
}

#[test]
fn scan_group_reuses_the_group_connection() {
    let s = Served::sample(N, 1);
    let counting = Arc::new(Counting {
        inner: s.backend(),
        objects: AtomicUsize::new(0),
        slices: AtomicUsize::new(0),
    });
    let backend: Arc<dyn Backend> = counting.clone();
    let file = open_with(backend.clone(), "snap_0000.hdf5", OpenOptions::default())
        .unwrap()
        .into_file()
        .unwrap();
    let group = file.group("PartType0").unwrap();
    assert!(Arc::ptr_eq(&group.backend(), &backend));
    assert!(Arc::ptr_eq(&file.backend(), &backend));
    let objects_before = counting.objects.load(Ordering::SeqCst);
    s.server.clear_request_log();
    let df = scan_group(&group, ScanArgsHdfstream::default())
        .unwrap()
        .select([col("Masses")])
        .collect()
        .unwrap();
    assert_eq!(df.height(), N as usize);
    let served = s.slices().len();
    assert!(served >= 1);
    assert_eq!(
        counting.slices.load(Ordering::SeqCst),
        served,
        "every slice request went through the group's backend"
    );
    assert!(
        counting.objects.load(Ordering::SeqCst) > objects_before,
        "the schema was read through the group's backend"
    );
}

const ROWS: usize = 1_000;

/// Group `G`: `A (n)`, soft links `L -> /G/A` and `M -> /G/S`, subgroup `S` with `B (n)` and `T/C (n, 2)`,
/// non-aligned `X (n + 3)`.
fn write_nested(dir: &std::path::Path) {
    write_nested_file(&dir.join("nested.hdf5"), 0);
}

/// [`write_nested`]'s layout in one file, values shifted by `shift`.
fn write_nested_file(path: &std::path::Path, shift: i64) {
    let f = hdf5_metno::File::create(path).unwrap();
    let g = f.create_group("G").unwrap();
    let a: Vec<i64> = (0..ROWS as i64).map(|i| i * 7 - 300 + shift).collect();
    g.new_dataset_builder().with_data(&a).create("A").unwrap();
    g.link_soft("/G/A", "L").unwrap();
    g.link_soft("/G/S", "M").unwrap();
    let sub = g.create_group("S").unwrap();
    let b: Vec<f64> = (0..ROWS)
        .map(|i| (i as f64).sqrt() * 0.5 + shift as f64)
        .collect();
    sub.new_dataset_builder().with_data(&b).create("B").unwrap();
    let t = sub.create_group("T").unwrap();
    let c = ndarray::Array2::from_shape_fn((ROWS, 2), |(i, j)| (i * 3 + j) as i32 - 17);
    t.new_dataset_builder().with_data(&c).create("C").unwrap();
    let x: Vec<f32> = (0..ROWS + 3).map(|i| i as f32).collect();
    g.new_dataset_builder().with_data(&x).create("X").unwrap();
}

#[test]
fn recursive_scan_names_nested_columns_by_path() {
    let s = Served::custom(write_nested);
    let backend = s.backend();
    let file = open_with(backend, "nested.hdf5", OpenOptions::default())
        .unwrap()
        .into_file()
        .unwrap();

    let flat = scan_file(&file, "G", ScanArgsHdfstream::default()).unwrap();
    let names: Vec<String> = flat
        .clone()
        .collect_schema()
        .unwrap()
        .iter_names()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["row_index", "A"], "no subgroups without recursive");

    let lf = scan_file(
        &file,
        "G",
        ScanArgsHdfstream::default().with_recursive(true),
    )
    .unwrap();
    let schema = lf.clone().collect_schema().unwrap();
    let names: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
    assert_eq!(names, ["row_index", "A", "S/B", "S/T/C"]);
    let h5 = hdf5_metno::File::open(s.root.join("nested.hdf5")).unwrap();
    let g = h5.group("G").unwrap();
    for name in ["A", "S/B", "S/T/C"] {
        let ds = g.dataset(name).unwrap();
        assert_eq!(
            schema.get(name),
            h5_polars_type(&ds, false).as_ref(),
            "type of {name}"
        );
    }
    let want = truth(
        &[s.root.join("nested.hdf5")],
        "G",
        &schema,
        Some("row_index"),
    );
    assert_same(&lf.clone().collect().unwrap(), &want, "whole nested table");

    s.server.clear_request_log();
    let q = |lf: LazyFrame| {
        lf.filter(col("row_index").lt(lit(200u64)))
            .select([col("S/T/C")])
    };
    let got = q(lf).collect().unwrap();
    assert_eq!(got.height(), 200);
    assert_same(
        &got,
        &q(want.lazy()).collect().unwrap(),
        "nested projection",
    );
    let objects: Vec<String> = s.slices().into_iter().filter_map(|r| r.object).collect();
    assert_eq!(objects, ["/G/S/T/C"], "only the projected nested dataset");
}

#[test]
fn recursive_scan_over_a_glob_matches_libhdf5() {
    let s = Served::custom(|dir| {
        for k in 0..2 {
            write_nested_file(&dir.join(format!("nested.{k}.hdf5")), 1000 * k);
        }
    });
    let lf = hdfstream::polars::scan_hdfstream_with(
        s.backend(),
        "nested.*.hdf5",
        "/G",
        ScanArgsHdfstream::default().with_recursive(true),
    )
    .unwrap();
    let schema = lf.clone().collect_schema().unwrap();
    let names: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
    assert_eq!(names, ["row_index", "A", "S/B", "S/T/C"]);
    let files: Vec<_> = (0..2)
        .map(|k| s.root.join(format!("nested.{k}.hdf5")))
        .collect();
    let want = truth(&files, "G", &schema, Some("row_index"));
    assert_eq!(want.height(), 2 * ROWS);
    let q = |lf: LazyFrame| {
        lf.filter(
            col("row_index")
                .gt_eq(lit(900u64))
                .and(col("S/B").lt(lit(1010.0))),
        )
        .select([col("row_index"), col("A"), col("S/T/C")])
    };
    let got = q(lf).collect().unwrap();
    assert!(got.height() > 100, "{got}");
    assert_same(&got, &q(want.lazy()).collect().unwrap(), "recursive glob");
}

#[test]
fn recursive_scan_stops_at_a_hard_link_cycle() {
    let s = Served::custom(|dir| {
        let f = hdf5_metno::File::create(dir.join("cycle.hdf5")).unwrap();
        let g = f.create_group("G").unwrap();
        let a: Vec<u16> = (0..50).collect();
        g.new_dataset_builder().with_data(&a).create("A").unwrap();
        g.link_hard("/G", "Up").unwrap();
    });
    let args = ScanArgsHdfstream::default();
    let flat = hdfstream::polars::scan_hdfstream_with(s.backend(), "cycle.hdf5", "G", args.clone())
        .unwrap();
    assert_eq!(flat.collect().unwrap().height(), 50);
    let e = hdfstream::polars::scan_hdfstream_with(
        s.backend(),
        "cycle.hdf5",
        "G",
        args.with_recursive(true),
    )
    .err()
    .expect("a cycle is an error");
    assert!(e.to_string().contains("hard-link cycle"), "{e}");
}
