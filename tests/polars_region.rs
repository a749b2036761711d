//! Region queries through the Polars connector: a scan region (cells, or exact) and range
//! filters on the position column's components, compared with the same query on libhdf5
//! reads; the request log and the scan report show that only the touched cells were read.
#![cfg(feature = "polars")]

#[allow(dead_code)]
mod polars_common;
#[allow(dead_code)]
mod region_common;

use hdfstream::RowRanges;
use hdfstream::polars::{HdfstreamScan, MultiColumn, ScanArgsHdfstream};
use hdfstream::table::Region;
use polars::prelude::*;
use polars_common::{Served, assert_same, truth};
use region_common::exact_truth;

const N: u64 = 40_000;

/// Global rows of the particles inside `boxes` over every file (libhdf5).
fn inside_rows(s: &Served, ptype: &str, boxes: &[&str]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for path in &s.sample.snapshot_files {
        let t = exact_truth(path, ptype, boxes);
        out.extend(t.iter().flatten().map(|i| i + offset));
        let f = hdf5_metno::File::open(path).unwrap();
        offset += f.dataset(&format!("{ptype}/Coordinates")).unwrap().shape()[0] as u64;
    }
    out
}

fn glob(s: &Served) -> String {
    if s.sample.snapshot_files.len() == 1 {
        s.url("snap_0000.hdf5")
    } else {
        s.url("snap_0000.*.hdf5")
    }
}

fn full_truth(s: &Served, scan: &HdfstreamScan) -> DataFrame {
    truth(
        &s.sample.snapshot_files,
        "PartType0",
        &scan.schema(),
        Some("row_index"),
    )
}

#[test]
fn scan_region_exact_equals_libhdf5() {
    let s = Served::sample(N, 2);
    for boxes in [
        &["3:7,10:14,15:19"][..],
        &["23:2,:,20:1", "10:12,10:12,10:12"],
    ] {
        let region = Region::parse(boxes).unwrap();
        let args = ScanArgsHdfstream::default()
            .with_region(region)
            .with_region_exact(true);
        let scan = HdfstreamScan::open(&glob(&s), "PartType0", args).unwrap();
        let got = scan.lazy().unwrap().collect().unwrap();
        let rows = inside_rows(&s, "PartType0", boxes);
        assert!(!rows.is_empty(), "{boxes:?} holds particles");
        let want = full_truth(&s, &scan)
            .lazy()
            .filter(
                col("row_index").is_in(lit(Series::new("r".into(), rows)).implode(false), false),
            )
            .collect()
            .unwrap();
        assert_same(&got, &want, &format!("exact region {boxes:?}"));
        let report = scan.last_report().unwrap();
        assert!(report.cells_kept > 0 && report.cells_kept < report.cells_total);
    }
}

#[test]
fn scan_region_reads_the_touched_cells_only() {
    let s = Served::sample(N, 1);
    let boxes = ["3:7,10:14,15:19"];
    let region = Region::parse(boxes).unwrap();
    let scan = HdfstreamScan::open(
        &glob(&s),
        "PartType0",
        ScanArgsHdfstream::default().with_region(region.clone()),
    )
    .unwrap();
    let sel = scan.region_selection(&region).unwrap();
    let cells: RowRanges = sel.files[0].rows.clone().unwrap();
    s.server.clear_request_log();
    let df = scan
        .lazy()
        .unwrap()
        .select([col("row_index"), col("Masses")])
        .collect()
        .unwrap();
    // Exactly the rows of the touched cells, in order, and a superset of the box.
    let idx: Vec<u64> = df
        .column("row_index")
        .unwrap()
        .u64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(
        RowRanges::from_increasing_rows(idx.iter().copied()).unwrap(),
        cells
    );
    let inside = inside_rows(&s, "PartType0", &boxes);
    assert!(inside.iter().all(|r| cells.contains(*r)));
    // One request for Masses carrying those runs; no position was fetched.
    let masses: Vec<_> = s
        .slices()
        .into_iter()
        .filter(|r| r.object.as_deref() == Some("/PartType0/Masses"))
        .collect();
    assert_eq!(masses.len(), 1);
    let runs: Vec<(u64, u64)> = masses[0].slice_rows.as_deref().unwrap().to_vec();
    let expected: Vec<(u64, u64)> = cells.iter().map(|r| (r.start, r.end - r.start)).collect();
    assert_eq!(runs, expected);
    assert!(
        s.slices()
            .iter()
            .all(|r| r.object.as_deref() != Some("/PartType0/Coordinates")),
        "cell rows need no positions"
    );
}

#[test]
fn position_filters_prune_cells_and_stay_exact() {
    let s = Served::sample(N, 2);
    let scan = HdfstreamScan::open(&glob(&s), "PartType0", ScanArgsHdfstream::default()).unwrap();
    let want_all = full_truth(&s, &scan);
    let x = |k: i32| col("Coordinates").arr().get(lit(k), false);
    let filters = [
        x(0).gt_eq(lit(3.0))
            .and(x(0).lt(lit(7.0)))
            .and(x(1).gt(lit(10.0)))
            .and(x(1).lt_eq(lit(14.0))),
        x(2).is_between(lit(20.0), lit(24.5), ClosedInterval::Both),
        x(0).lt(lit(2.0))
            .or(x(0).gt(lit(23.0)))
            .and(x(2).lt(lit(5.0))),
        // Polars moves a fallible `arr.get` (null_on_oob = false) ahead of the scan only
        // when nothing else is filtered; with null_on_oob it is pushed with the rest.
        col("Coordinates")
            .arr()
            .get(lit(0), true)
            .gt(lit(20.0))
            .and(col("Masses").gt(lit(0.0))),
    ];
    for (k, f) in filters.iter().enumerate() {
        s.server.clear_request_log();
        let got = scan
            .lazy()
            .unwrap()
            .filter(f.clone())
            .select([col("row_index"), col("Masses"), col("Coordinates")])
            .collect()
            .unwrap();
        let want = want_all
            .clone()
            .lazy()
            .filter(f.clone())
            .select([col("row_index"), col("Masses"), col("Coordinates")])
            .collect()
            .unwrap();
        assert!(want.height() > 0, "filter {k} matches particles");
        assert_same(&got, &want, &format!("filter {k}"));
        let report = scan.last_report().unwrap();
        assert!(
            report.cells_kept > 0 && report.cells_kept < report.cells_total,
            "filter {k}: {report}"
        );
        // Positions were read only for the touched cells' rows.
        let pos_rows: u64 = s
            .slices()
            .iter()
            .filter(|r| r.object.as_deref() == Some("/PartType0/Coordinates"))
            .flat_map(|r| r.slice_rows.as_deref().unwrap().to_vec())
            .map(|(_, c)| c)
            .sum();
        assert_eq!(pos_rows, report.row_ranges.row_count(), "filter {k}");
        assert!(
            pos_rows < scan.row_count() / 2,
            "filter {k}: {pos_rows} rows read"
        );
    }
    // Pruning off: the same answer from every row.
    let off = HdfstreamScan::open(
        &glob(&s),
        "PartType0",
        ScanArgsHdfstream::default().without_region_pruning(),
    )
    .unwrap();
    let f = filters[0].clone();
    let got = off.lazy().unwrap().filter(f.clone()).collect().unwrap();
    let want = want_all.lazy().filter(f).collect().unwrap();
    assert_same(&got, &want, "pruning off");
    assert_eq!(
        off.last_report().unwrap().row_ranges.row_count(),
        off.row_count()
    );
}

#[test]
fn split_position_columns_prune_too() {
    let s = Served::sample(N, 1);
    let args = ScanArgsHdfstream::default().with_multi_column(MultiColumn::Split);
    let scan = HdfstreamScan::open(&glob(&s), "PartType0", args).unwrap();
    let f = col("Coordinates_0")
        .lt(lit(4.0))
        .and(col("Coordinates_1").gt(lit(20.0)))
        .and(col("Masses").gt(lit(0.0)));
    let cols = [
        col("row_index"),
        col("Masses"),
        col("Coordinates_0"),
        col("Coordinates_1"),
    ];
    let got = scan
        .lazy()
        .unwrap()
        .filter(f.clone())
        .select(cols.clone())
        .collect()
        .unwrap();
    // The truth in the Array form, split with Polars itself.
    let whole = HdfstreamScan::open(&glob(&s), "PartType0", ScanArgsHdfstream::default()).unwrap();
    let want = full_truth(&s, &whole)
        .lazy()
        .with_columns([
            col("Coordinates")
                .arr()
                .get(lit(0), false)
                .alias("Coordinates_0"),
            col("Coordinates")
                .arr()
                .get(lit(1), false)
                .alias("Coordinates_1"),
        ])
        .filter(f)
        .select(cols)
        .collect()
        .unwrap();
    assert!(want.height() > 0);
    assert_same(&got, &want, "split columns");
    let report = scan.last_report().unwrap();
    assert!(report.cells_kept < report.cells_total, "{report}");
}

#[test]
fn region_errors_are_clear() {
    let s = Served::sample(2_000, 1);
    let bad = Region::parse(["0:1,0:1,90:91"]).unwrap();
    let scan = HdfstreamScan::open(
        &glob(&s),
        "PartType0",
        ScanArgsHdfstream::default().with_region(bad),
    )
    .unwrap();
    let err = scan.lazy().unwrap().collect().unwrap_err().to_string();
    assert!(err.contains("must lie in"), "{err}");
    let missing = HdfstreamScan::open(
        &glob(&s),
        "PartType0",
        ScanArgsHdfstream::default()
            .with_region(Region::parse(["0:1,0:1,0:1"]).unwrap())
            .with_region_exact(true)
            .with_position_column("NoSuchColumn"),
    )
    .unwrap();
    let err = missing.lazy().unwrap().collect().unwrap_err().to_string();
    assert!(err.contains("NoSuchColumn"), "{err}");
}
