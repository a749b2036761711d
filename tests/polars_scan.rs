//! End-to-end tests of `scan_hdfstream` against the embedded server on generated data: every
//! query result equals the same query run on the data read with libhdf5, and pushdown is
//! proven with the server's request log.
#![cfg(feature = "polars")]

#[allow(dead_code)] // each test crate uses a subset
mod polars_common;
#[allow(dead_code)] // each test crate uses a subset
mod support;

use hdfstream::polars::{HdfstreamScan, MultiColumn, ScanArgsHdfstream, scan_hdfstream};
use polars::prelude::*;
use polars_common::{Served, assert_same, h5_polars_type, truth};

const N: u64 = 20_000;

fn run(lf: LazyFrame) -> DataFrame {
    lf.collect().expect("query runs")
}

/// Runs `q` on the remote scan and on the libhdf5 truth and asserts equality.
fn check(
    scan: &LazyFrame,
    want: &DataFrame,
    q: impl Fn(LazyFrame) -> LazyFrame,
    what: &str,
) -> DataFrame {
    let got = run(q(scan.clone()));
    let expected = run(q(want.clone().lazy()));
    assert_same(&got, &expected, what);
    got
}

#[test]
fn schema_matches_libhdf5() {
    let s = Served::sample(N, 1);
    let scan = HdfstreamScan::open(
        &s.url("snap_0000.hdf5"),
        "PartType0",
        ScanArgsHdfstream::default(),
    )
    .unwrap();
    let schema = scan.schema();
    let file = hdf5_metno::File::open(&s.sample.snapshot_files[0]).unwrap();
    let g = file.group("PartType0").unwrap();
    let mut expected: Vec<(String, DataType)> = Vec::new();
    for name in g.member_names().unwrap() {
        let Ok(ds) = g.dataset(&name) else { continue };
        if ds.shape().first() != Some(&(N as usize)) {
            continue;
        }
        if let Some(t) = h5_polars_type(&ds, false) {
            expected.push((name, t));
        }
    }
    assert!(
        expected.len() >= 8,
        "sample has enough columns: {expected:?}"
    );
    assert_eq!(schema.get("row_index"), Some(&DataType::UInt64));
    assert_eq!(schema.len(), expected.len() + 1);
    for (name, t) in &expected {
        assert_eq!(schema.get(name.as_str()), Some(t), "column {name}");
    }
    assert_eq!(scan.row_count(), N);
    // Metadata only: no slice was requested.
    assert!(
        s.slices().is_empty(),
        "schema needs no data: {:?}",
        s.slices()
    );
}

#[test]
fn queries_equal_libhdf5() {
    let s = Served::sample(N, 1);
    let scan = HdfstreamScan::open(
        &s.url("snap_0000.hdf5"),
        "PartType0",
        ScanArgsHdfstream::default(),
    )
    .unwrap();
    let lf = scan.lazy().unwrap();
    let want = truth(
        &s.sample.snapshot_files,
        "PartType0",
        &scan.schema(),
        Some("row_index"),
    );
    let masses = want
        .column("Masses")
        .unwrap()
        .as_materialized_series()
        .clone();
    let median: f64 = masses.cast(&DataType::Float64).unwrap().median().unwrap();

    check(&lf, &want, |l| l, "full table");
    check(
        &lf,
        &want,
        |l| l.select([col("Masses"), col("row_index"), col("Coordinates")]),
        "projection",
    );
    check(
        &lf,
        &want,
        |l| {
            l.filter(col("row_index").lt(lit(1000)))
                .select([col("Masses"), col("Densities")])
        },
        "<",
    );
    check(
        &lf,
        &want,
        |l| {
            l.filter(
                col("row_index")
                    .lt_eq(lit(10))
                    .or(col("row_index").gt_eq(lit(19_990))),
            )
        },
        "<= | >=",
    );
    check(
        &lf,
        &want,
        |l| {
            l.filter(
                col("row_index")
                    .gt(lit(19_000))
                    .and(col("row_index").neq(lit(19_500))),
            )
        },
        "> & !=",
    );
    check(
        &lf,
        &want,
        |l| l.filter(col("row_index").eq(lit(1234))),
        "==",
    );
    check(
        &lf,
        &want,
        |l| {
            l.filter(
                col("row_index")
                    .is_between(lit(500), lit(1500), ClosedInterval::Both)
                    .and(col("Masses").gt(lit(median))),
            )
        },
        "between & data",
    );
    check(
        &lf,
        &want,
        |l| {
            l.filter(col("row_index").is_between(lit(500), lit(1500), ClosedInterval::None))
                .select([col("row_index")])
        },
        "between open",
    );
    let picks: Vec<u64> = (0..300u64).map(|i| (i * 7919 + 13) % N).collect();
    check(
        &lf,
        &want,
        |l| {
            l.filter(col("row_index").is_in(
                lit(Series::new("p".into(), picks.clone())).implode(false),
                false,
            ))
            .select([col("ParticleIDs"), col("Coordinates")])
        },
        "is_in",
    );
    check(
        &lf,
        &want,
        |l| {
            l.filter(
                col("row_index")
                    .gt_eq(lit(100))
                    .not()
                    .or(col("row_index").eq(lit(N - 1))),
            )
        },
        "not | ==",
    );
    check(
        &lf,
        &want,
        |l| {
            l.filter(
                col("row_index")
                    .cast(DataType::Int64)
                    .gt(lit(-5))
                    .and(col("row_index").cast(DataType::Float64).lt(lit(10.5))),
            )
        },
        "casts",
    );
    check(
        &lf,
        &want,
        |l| {
            l.filter(
                col("row_index")
                    .lt(lit(3000))
                    .or(col("Masses").lt(lit(median))),
            )
            .select([col("HaloID")])
        },
        "index | data",
    );
    check(
        &lf,
        &want,
        |l| {
            l.filter(
                col("Temperatures")
                    .gt(lit(1e5))
                    .and(col("HaloID").gt(lit(0))),
            )
            .select([col("row_index"), col("Densities"), col("Temperatures")])
        },
        "data only",
    );
    check(&lf, &want, |l| l.limit(37), "head");
    check(
        &lf,
        &want,
        |l| l.select([col("Velocities")]).slice(0, 5),
        "slice",
    );
    check(
        &lf,
        &want,
        |l| l.filter(col("Masses").gt(lit(median))).limit(7),
        "filter then head",
    );
    check(
        &lf,
        &want,
        |l| l.filter(col("row_index").gt(lit(10_000_000))),
        "empty by index",
    );
    check(
        &lf,
        &want,
        |l| {
            l.filter(col("Masses").lt(lit(-1.0)))
                .select([col("Coordinates"), col("row_index")])
        },
        "empty by data",
    );
    check(&lf, &want, |l| l.select([len()]), "count");
    check(
        &lf,
        &want,
        |l| {
            l.filter(col("row_index").lt(lit(5000)))
                .group_by([col("HaloID")])
                .agg([col("ParticleIDs").sum(), col("Masses").max(), len()])
                .sort(["HaloID"], Default::default())
        },
        "group_by",
    );
}

#[test]
fn pushdown_moves_only_requested_rows() {
    let s = Served::sample(N, 1);
    let lf = scan_hdfstream(
        &s.url("snap_0000.hdf5"),
        "PartType0",
        ScanArgsHdfstream::default(),
    )
    .unwrap();
    s.server.clear_request_log();
    let df = run(lf
        .clone()
        .filter(col("row_index").lt(lit(1000)))
        .select([col("Masses"), col("Densities")]));
    assert_eq!(df.height(), 1000);
    let reqs = s.slices();
    let mut objects: Vec<&str> = reqs.iter().filter_map(|r| r.object.as_deref()).collect();
    objects.sort();
    assert_eq!(
        objects,
        ["/PartType0/Densities", "/PartType0/Masses"],
        "one request per projected column"
    );
    for r in &reqs {
        assert_eq!(r.slice_runs, Some(1));
        // 1000 four-byte values plus a header of less than 100 bytes.
        let size = df
            .column(r.object.as_deref().unwrap().rsplit('/').next().unwrap())
            .unwrap()
            .dtype()
            .to_physical();
        let width = if size == DataType::Float64 { 8 } else { 4 };
        assert!(
            r.body_bytes >= 1000 * width && r.body_bytes < 1000 * width + 100,
            "{r:?}"
        );
    }
    let other: Vec<_> = s
        .server
        .request_log()
        .into_iter()
        .filter(|r| r.slice_runs.is_none())
        .collect();
    assert!(
        other.is_empty(),
        "no metadata requests at query time: {other:?}"
    );

    // Random rows: one request per column with exactly the distinct runs.
    s.server.clear_request_log();
    let picks: Vec<u64> = vec![5, 6, 7, 100, 19_999, 3, 7];
    let df = run(lf
        .clone()
        .filter(col("row_index").is_in(lit(Series::new("p".into(), picks)).implode(false), false))
        .select([col("ParticleIDs")]));
    assert_eq!(df.height(), 6);
    let reqs = s.slices();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].slice_runs,
        Some(4),
        "runs 3..4, 5..8, 100, 19999 -> 3..4 and 5..8 are separate"
    );

    // The index part narrows the rows the data predicate reads: Masses only for the picks.
    for in_list in [
        lit(Series::new("p".into(), [3u64, 5, 6, 7, 100, 19_999])).implode(false),
        lit(Series::new("p".into(), [3u64, 5, 6, 7, 100, 19_999])),
    ] {
        s.server.clear_request_log();
        let df = run(lf
            .clone()
            .filter(
                col("row_index")
                    .is_in(in_list, false)
                    .and(col("Masses").gt(lit(0.0))),
            )
            .select([col("ParticleIDs")]));
        assert_eq!(df.height(), 6);
        let reqs = s.slices();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        for r in &reqs {
            assert_eq!(r.slice_runs, Some(4), "{r:?}");
            assert!(r.body_bytes < 200, "only 6 rows: {r:?}");
        }
    }

    // head: only the first rows.
    s.server.clear_request_log();
    let df = run(lf.clone().select([col("Coordinates")]).limit(10));
    assert_eq!(df.height(), 10);
    let reqs = s.slices();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].body_bytes < 10 * 24 + 100, "{:?}", reqs[0]);

    // Empty index selection: no request at all.
    s.server.clear_request_log();
    let df = run(lf
        .filter(col("row_index").gt(lit(N + 5)))
        .select([col("Masses")]));
    assert_eq!(df.height(), 0);
    assert!(s.slices().is_empty());
}

#[test]
fn late_materialization_fetches_matching_rows_only() {
    let s = Served::sample(N, 1);
    let scan = HdfstreamScan::open(
        &s.url("snap_0000.hdf5"),
        "PartType0",
        ScanArgsHdfstream::default(),
    )
    .unwrap();
    let want = truth(
        &s.sample.snapshot_files,
        "PartType0",
        &scan.schema(),
        Some("row_index"),
    );
    let dens = want
        .column("Densities")
        .unwrap()
        .as_materialized_series()
        .cast(&DataType::Float64)
        .unwrap();
    let mut v: Vec<f64> = dens.f64().unwrap().into_no_null_iter().collect();
    v.sort_by(f64::total_cmp);
    let cut = v[(v.len() as f64 * 0.99) as usize];
    s.server.clear_request_log();
    let lf = scan.lazy().unwrap();
    let q = |l: LazyFrame| {
        l.filter(col("Densities").gt(lit(cut))).select([
            col("Coordinates"),
            col("Masses"),
            col("Densities"),
        ])
    };
    let got = check(&lf, &want, q, "1% filter");
    assert!(
        got.height() > 100 && got.height() < 400,
        "about 1% selected: {}",
        got.height()
    );
    let reqs = s.slices();
    let dens_bytes: u64 = reqs
        .iter()
        .filter(|r| r.object.as_deref() == Some("/PartType0/Densities"))
        .map(|r| r.body_bytes)
        .sum();
    let other_bytes: u64 = reqs
        .iter()
        .filter(|r| r.object.as_deref() != Some("/PartType0/Densities"))
        .map(|r| r.body_bytes)
        .sum();
    let full_other = N * (24 + 4);
    assert!(
        dens_bytes >= N * 4,
        "the predicate column is read whole: {dens_bytes}"
    );
    assert!(
        other_bytes < full_other / 20,
        "others move about 1%: {other_bytes} of {full_other}"
    );
    assert_eq!(reqs.len(), 3, "one request per column: {reqs:?}");
}

#[test]
fn multi_file_glob_is_one_table() {
    let s = Served::sample(N, 3);
    let files = &s.sample.snapshot_files;
    assert_eq!(files.len(), 3);
    let args = ScanArgsHdfstream::default().with_include_file_paths("file");
    let scan = HdfstreamScan::open(&s.url("snap_0000.*.hdf5"), "PartType0", args).unwrap();
    let names: Vec<String> = scan.files().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["snap_0000.0.hdf5", "snap_0000.1.hdf5", "snap_0000.2.hdf5"]
    );
    assert_eq!(scan.row_count(), N);
    let mut schema = (*scan.schema()).clone();
    schema.shift_remove("file");
    let mut want = truth(files, "PartType0", &schema, Some("row_index"));
    let mut paths: Vec<String> = Vec::new();
    for (n, rows) in scan.files() {
        paths.extend(std::iter::repeat_n(n, rows as usize));
    }
    want.with_column(Column::new("file".into(), paths)).unwrap();
    let lf = scan.lazy().unwrap();
    check(&lf, &want, |l| l, "all files");
    let (_, first_rows) = scan.files()[0];
    let border = first_rows as i64;
    check(
        &lf,
        &want,
        |l| {
            l.filter(col("row_index").is_between(
                lit(border - 5),
                lit(border + 5),
                ClosedInterval::Both,
            ))
        },
        "across a file border",
    );
    check(
        &lf,
        &want,
        |l| {
            l.filter(col("file").eq(lit("snap_0000.2.hdf5")))
                .select([col("row_index"), col("Masses")])
        },
        "file path predicate",
    );
    s.server.clear_request_log();
    let df = run(lf
        .filter(col("row_index").lt(lit(border)))
        .select([col("Masses")]));
    assert_eq!(df.height() as u64, first_rows);
    let reqs = s.slices();
    assert_eq!(reqs.len(), 1, "only the first file is read: {reqs:?}");
    assert_eq!(reqs[0].vpath.as_deref(), Some("snap_0000.0.hdf5"));
}

#[test]
fn split_columns_and_batches() {
    let s = Served::sample(2_000, 1);
    let args = ScanArgsHdfstream::default()
        .with_multi_column(MultiColumn::Split)
        .with_batch_size(300);
    let scan = HdfstreamScan::open(&s.url("snap_0000.hdf5"), "PartType0", args).unwrap();
    let schema = scan.schema();
    assert_eq!(schema.get("Coordinates_2"), Some(&DataType::Float64));
    assert!(schema.get("Coordinates").is_none());
    // Truth: the Array columns split by hand.
    let array_scan = HdfstreamScan::open(
        &s.url("snap_0000.hdf5"),
        "PartType0",
        ScanArgsHdfstream::default(),
    )
    .unwrap();
    let full = truth(
        &s.sample.snapshot_files,
        "PartType0",
        &array_scan.schema(),
        Some("row_index"),
    );
    let coords = full
        .column("Coordinates")
        .unwrap()
        .as_materialized_series()
        .array()
        .unwrap()
        .clone();
    let x2: Vec<f64> = coords
        .amortized_iter()
        .map(|a| a.unwrap().as_ref().f64().unwrap().get(2).unwrap())
        .collect();
    s.server.clear_request_log();
    let got = run(scan.lazy().unwrap().select([col("Coordinates_2")]));
    assert_eq!(
        got.column("Coordinates_2")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect::<Vec<_>>(),
        x2
    );
    let reqs = s.slices();
    assert_eq!(reqs.len(), 1);
    assert!(
        reqs[0].body_bytes < 2_000 * 8 + 100,
        "one column of three: {:?}",
        reqs[0]
    );
    // Batches: same rows as one query, bounded batch heights.
    let pred = col("row_index")
        .lt(lit(1000))
        .and(col("Masses").gt(lit(0.0)));
    let batches: Vec<DataFrame> = scan
        .batches(
            Some(vec!["row_index".into(), "Masses".into()]),
            Some(pred.clone()),
        )
        .unwrap()
        .collect::<PolarsResult<_>>()
        .unwrap();
    assert_eq!(batches.len(), 4, "1000 rows in windows of 300");
    let mut joined = batches[0].clone();
    for b in &batches[1..] {
        assert!(b.height() <= 300);
        joined.vstack_mut(b).unwrap();
    }
    let want = run(full
        .lazy()
        .filter(pred)
        .select([col("row_index"), col("Masses")]));
    assert_same(&joined, &want, "batches");
}

#[test]
fn attributes_side_table() {
    let s = Served::sample(1_000, 1);
    let scan = HdfstreamScan::open(
        &s.url("snap_0000.hdf5"),
        "PartType0",
        ScanArgsHdfstream::default(),
    )
    .unwrap();
    let attrs = scan.column_attributes().unwrap();
    let file = hdf5_metno::File::open(&s.sample.snapshot_files[0]).unwrap();
    let want: f64 = file
        .dataset("PartType0/Masses")
        .unwrap()
        .attr("CGSConversionFactor")
        .unwrap()
        .read_scalar::<f64>()
        .unwrap();
    let got = attrs
        .lazy()
        .filter(
            col("column")
                .eq(lit("Masses"))
                .and(col("attribute").eq(lit("CGSConversionFactor"))),
        )
        .collect()
        .unwrap();
    assert_eq!(got.height(), 1);
    assert_eq!(
        got.column("value_f64").unwrap().f64().unwrap().get(0),
        Some(want)
    );
}

#[test]
fn url_forms_and_errors() {
    let s = Served::sample(1_000, 1);
    let base = s.server.base_url().to_owned();
    let by_file = HdfstreamScan::open(
        &base,
        "PartType0",
        ScanArgsHdfstream::default().with_file("snap_0000.hdf5"),
    )
    .unwrap();
    assert_eq!(by_file.row_count(), 1_000);
    let err = HdfstreamScan::open(&base, "PartType0", ScanArgsHdfstream::default()).unwrap_err();
    assert!(
        err.to_string().contains("names a server but no file"),
        "{err}"
    );
    let err = HdfstreamScan::open(
        &s.url("snap_0000.hdf5"),
        "PartType0",
        ScanArgsHdfstream::default().with_file("other.hdf5"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("ambiguous"), "{err}");
    let err = HdfstreamScan::open(
        &s.url("nothing_*.hdf5"),
        "PartType0",
        ScanArgsHdfstream::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("matches no file"), "{err}");
    let err = HdfstreamScan::open(
        &s.url("snap_0000.hdf5"),
        "NoSuchGroup",
        ScanArgsHdfstream::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("NoSuchGroup"), "{err}");
}

#[test]
fn glob_numeric_order_offsets_and_n_rows() {
    let s = Served::sample(3_000, 11);
    let args = ScanArgsHdfstream::default()
        .with_row_index("idx", 1_000)
        .with_n_rows(2_500);
    let scan = HdfstreamScan::open(&s.url("snap_0000.*.hdf5"), "PartType0", args).unwrap();
    let names: Vec<String> = scan.files().into_iter().map(|(n, _)| n).collect();
    let expected: Vec<String> = (0..11).map(|i| format!("snap_0000.{i}.hdf5")).collect();
    assert_eq!(names, expected, "numeric, not lexicographic, order");
    let want = truth(
        &s.sample.snapshot_files,
        "PartType0",
        &scan.schema(),
        Some("idx"),
    );
    // Offset 1000 on the index, and only the first 2500 rows exist for the scan.
    let want = want
        .lazy()
        .with_column(col("idx") + lit(1_000u64))
        .limit(2_500)
        .collect()
        .unwrap();
    let lf = scan.lazy().unwrap();
    check(&lf, &want, |l| l, "n_rows");
    check(
        &lf,
        &want,
        |l| l.filter(col("idx").gt_eq(lit(3_400)).and(col("idx").lt(lit(3_600)))),
        "offset index predicate near n_rows",
    );
    s.server.clear_request_log();
    let df = run(lf.filter(col("idx").lt(lit(1_010))).select([col("Masses")]));
    assert_eq!(df.height(), 10);
    assert_eq!(s.slices().len(), 1, "only the first file: {:?}", s.slices());

    // No row index at all: still a table, predicates evaluated on the data.
    let plain = HdfstreamScan::open(
        &s.url("snap_0000.*.hdf5"),
        "PartType0",
        ScanArgsHdfstream::default().without_row_index(),
    )
    .unwrap();
    assert!(plain.schema().get("row_index").is_none());
    let all = truth(&s.sample.snapshot_files, "PartType0", &plain.schema(), None);
    check(
        &plain.lazy().unwrap(),
        &all,
        |l| {
            l.filter(col("HaloID").eq(lit(-1)))
                .select([col("ParticleIDs")])
        },
        "no row index",
    );
}

#[test]
fn a_sixteen_file_scan_asks_each_file_once_several_in_flight() {
    let s = Served::sample(16_000, 16);
    s.server.clear_request_log();
    let slow = std::sync::Arc::new(support::slow::SlowMetadata::new(s.backend()));
    let scan = HdfstreamScan::with_backend(
        slow.clone(),
        "snap_0000.*.hdf5",
        "PartType0",
        ScanArgsHdfstream::default(),
    )
    .unwrap();
    let lf = scan.lazy().unwrap();
    let q = |l: LazyFrame| l.select([col("ParticleIDs"), col("Masses"), col("Densities")]);
    let got = run(q(lf));
    let mut schema = (*scan.schema()).clone();
    schema.shift_remove("row_index");
    let want = run(q(truth(
        &s.sample.snapshot_files,
        "PartType0",
        &schema,
        None,
    )
    .lazy()));
    assert_same(&got, &want, "16-file scan");

    let log = s.server.request_log();
    support::slow::assert_no_repeated_metadata(&log);
    for f in &s.sample.snapshot_files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let objects: Vec<_> = log
            .iter()
            .filter(|r| r.slice_runs.is_none() && r.vpath.as_deref() == Some(name))
            .map(|r| r.object.clone())
            .collect();
        assert_eq!(objects, [Some("/PartType0".to_string())], "{name}");
    }
    let max = slow.max_in_flight();
    assert!(
        (2..=hdfstream::table::METADATA_CONCURRENCY).contains(&max),
        "max metadata requests in flight: {max}"
    );
}
