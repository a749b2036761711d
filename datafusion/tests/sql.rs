//! SQL over remote groups against libhdf5 reading the same files: projections, row-index
//! filters, boxes on positions, joins, aggregations, `count(*)` and limits, with the
//! server's request log proving what was fetched.

#[allow(dead_code)]
#[path = "../../tests/region_common/mod.rs"]
mod region_common;

use std::collections::HashMap;
use std::path::Path;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float32Type, Float64Type, Int64Type, UInt64Type};
use datafusion::prelude::SessionContext;
use region_common::{Snapshot, h5, h5_positions};

/// A multi-threaded runtime for the async part of a test (the server of the sample runs its
/// own, so it is started outside this one).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn ctx(s: &Snapshot) -> (SessionContext, String) {
    let ctx = SessionContext::new();
    hdfstream_datafusion::register(&ctx);
    let url = format!("{}/msgpack/{}", s.server.base_url(), s.glob());
    (ctx, url)
}

async fn query(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn u64s(batches: &[RecordBatch], col: usize) -> Vec<u64> {
    batches
        .iter()
        .flat_map(|b| b.column(col).as_primitive::<UInt64Type>().values().to_vec())
        .collect()
}

fn f32s(batches: &[RecordBatch], col: usize) -> Vec<f32> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(col)
                .as_primitive::<Float32Type>()
                .values()
                .to_vec()
        })
        .collect()
}

/// Which global rows a filter keeps.
type Keep = Box<dyn Fn(u64) -> bool>;

/// Rows sent for `object` in slice requests since the log was cleared.
fn rows_sent(s: &Snapshot, object: &str) -> u64 {
    s.slices_of(object)
        .iter()
        .map(|r| {
            r.slice_rows
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|x| x.1)
                .sum::<u64>()
        })
        .sum()
}

/// Asserts `got == want`, reporting the lengths and the first difference (not every value).
fn assert_same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        let at = at.unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: {} values, {} wanted; first difference at {at}: {:?} vs {:?}",
            got.len(),
            want.len(),
            got.get(at),
            want.get(at)
        );
    }
}

fn data_requests(s: &Snapshot) -> usize {
    s.server
        .request_log()
        .iter()
        .filter(|r| r.slice_runs.is_some())
        .count()
}

#[test]
fn projections_and_row_index_filters_equal_libhdf5() {
    let s = Snapshot::new(30_000, 3);
    block_on(projections_and_row_index_filters_equal_libhdf5_with(&s));
}

async fn projections_and_row_index_filters_equal_libhdf5_with(s: &Snapshot) {
    let files = &s.summary.snapshot_files;
    let ids: Vec<u64> = h5(files, "PartType0/ParticleIDs");
    let masses: Vec<f32> = h5(files, "PartType0/Masses");
    let n = ids.len() as u64;
    let (ctx, url) = ctx(s);
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE gas STORED AS HDFSTREAM LOCATION '{url}' OPTIONS ('group' 'PartType0')"
    ))
    .await
    .unwrap();
    // Units and other HDF5 attributes are in the field metadata (DataFusion keeps them).
    let schema = ctx.table("gas").await.unwrap().schema().as_arrow().clone();
    let f0 = hdf5_metno::File::open(&files[0]).unwrap();
    for name in ["Masses", "Coordinates"] {
        let ds = f0.dataset(&format!("PartType0/{name}")).unwrap();
        let want: f64 = ds
            .attr("CGSConversionFactor")
            .unwrap()
            .read_raw::<f64>()
            .unwrap()[0];
        let md = schema.field_with_name(name).unwrap().metadata();
        let got: f64 = md["CGSConversionFactor"].parse().unwrap();
        assert_eq!(got, want, "{name}");
    }
    let b0 = h5::<u64>(&files[..1], "PartType0/ParticleIDs").len() as u64;
    // Each filter and the rows (global) it keeps, from the row numbers alone.
    let cases: Vec<(String, Keep)> = vec![
        (format!("row_index = {}", b0), Box::new(move |r| r == b0)),
        (
            format!("row_index >= {} AND row_index < {}", b0 - 5, b0 + 7),
            Box::new(move |r| r >= b0 - 5 && r < b0 + 7),
        ),
        (
            "row_index BETWEEN 10 AND 20".into(),
            Box::new(|r| (10..=20).contains(&r)),
        ),
        (
            format!("row_index NOT BETWEEN 5 AND {}", n - 3),
            Box::new(move |r| !(5..=n - 3).contains(&r)),
        ),
        ("17 > row_index".into(), Box::new(|r| r < 17)),
        (
            "row_index IN (3, 9, 4000, 99999999)".into(),
            Box::new(|r| [3, 9, 4000].contains(&r)),
        ),
        (
            format!("row_index < 4 OR row_index > {}", n - 4),
            Box::new(move |r| r < 4 || r > n - 4),
        ),
        ("row_index <= -1".into(), Box::new(|_| false)),
        (
            "row_index <> 2 AND row_index < 6".to_owned(),
            Box::new(|r| r != 2 && r < 6),
        ),
    ];
    for (filter, keep) in &cases {
        s.server.clear_request_log();
        let sql = format!(
            "SELECT row_index, \"ParticleIDs\", \"Masses\" FROM gas WHERE {filter} ORDER BY row_index"
        );
        let got = query(&ctx, &sql).await;
        let want: Vec<u64> = (0..n).filter(|&r| keep(r)).collect();
        assert_eq!(u64s(&got, 0), want, "{filter}");
        let want_ids: Vec<u64> = want.iter().map(|&r| ids[r as usize]).collect();
        let want_m: Vec<f32> = want.iter().map(|&r| masses[r as usize]).collect();
        assert_eq!(u64s(&got, 1), want_ids, "{filter}");
        assert_eq!(f32s(&got, 2), want_m, "{filter}");
        // Only the selected rows were fetched.
        assert_eq!(
            rows_sent(s, "/PartType0/ParticleIDs"),
            want.len() as u64,
            "{filter}"
        );
    }
    // count(*) is answered from the row counts: no data request.
    s.server.clear_request_log();
    let got = query(&ctx, "SELECT count(*) FROM gas").await;
    assert_eq!(
        got[0].column(0).as_primitive::<Int64Type>().value(0),
        n as i64
    );
    assert_eq!(data_requests(s), 0);
    // A limit with exact filters reads only the rows it returns.
    s.server.clear_request_log();
    let got = query(
        &ctx,
        "SELECT \"ParticleIDs\" FROM gas WHERE row_index >= 100 LIMIT 7",
    )
    .await;
    let got: Vec<u64> = got
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<UInt64Type>().values().to_vec())
        .collect();
    assert_eq!(got, ids[100..107].to_vec());
    assert_eq!(rows_sent(s, "/PartType0/ParticleIDs"), 7);
    // EXPLAIN names the scan, its partitions and the filter it applies.
    let plan = query(
        &ctx,
        "EXPLAIN SELECT \"Masses\" FROM gas WHERE row_index < 1000",
    )
    .await;
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(
        text.contains("HdfstreamExec: group=/PartType0 files=3")
            && text.contains("rows=1000/")
            && text.contains("pushed=[row_index < "),
        "{text}"
    );
}

/// Rows whose position lies in the closed box.
fn in_box(p: [f64; 3], lo: [f64; 3], hi: [f64; 3]) -> bool {
    (0..3).all(|k| p[k] >= lo[k] && p[k] <= hi[k])
}

#[test]
fn boxes_on_positions_prune_by_cells_and_equal_libhdf5() {
    let s = Snapshot::new(40_000, 2);
    block_on(boxes_on_positions_prune_by_cells_and_equal_libhdf5_with(&s));
}

async fn boxes_on_positions_prune_by_cells_and_equal_libhdf5_with(s: &Snapshot) {
    let files = &s.summary.snapshot_files;
    let mut pos = Vec::new();
    for f in files {
        pos.extend(h5_positions(f, "PartType0"));
    }
    let side = region_common::h5_box_size(&files[0])[0];
    let (ctx, url) = ctx(s);
    let n = pos.len() as u64;
    for (lo, hi) in [
        ([0.2, 0.3, 0.1], [0.35, 0.5, 0.3]),
        ([0.0, 0.0, 0.0], [0.1, 0.1, 1.0]),
        ([0.9, 0.45, 0.45], [1.0, 0.55, 0.55]),
    ] {
        let (lo, hi) = (lo.map(|x| x * side), hi.map(|x| x * side));
        let sql = format!(
            "SELECT row_index, \"Coordinates\" FROM read_hdfstream('{url}', 'PartType0') \
             WHERE \"Coordinates\"[1] BETWEEN {} AND {} AND \"Coordinates\"[2] >= {} \
             AND \"Coordinates\"[2] <= {} AND {} <= \"Coordinates\"[3] AND \"Coordinates\"[3] <= {} \
             ORDER BY row_index",
            lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]
        );
        s.server.clear_request_log();
        let got = query(&ctx, &sql).await;
        let want: Vec<u64> = (0..n)
            .filter(|&r| in_box(pos[r as usize], lo, hi))
            .collect();
        assert!(!want.is_empty());
        assert_eq!(u64s(&got, 0), want, "{lo:?}..{hi:?}");
        let xyz: Vec<f64> = got
            .iter()
            .flat_map(|b| {
                let l = b.column(1).as_fixed_size_list();
                l.values().as_primitive::<Float64Type>().values().to_vec()
            })
            .collect();
        let want_xyz: Vec<f64> = want.iter().flat_map(|&r| pos[r as usize]).collect();
        assert_eq!(xyz, want_xyz);
        // Only the touched cells were read: far fewer rows than the table.
        let sent = rows_sent(s, "/PartType0/Coordinates");
        assert!(
            sent >= want.len() as u64 && sent < n / 2,
            "{sent} of {n} rows"
        );
    }
    // A box wrapping the periodic boundary on x, as SQL writes it: an OR on the component.
    let (a, b) = (0.93 * side, 0.06 * side);
    let sql = format!(
        "SELECT row_index FROM read_hdfstream('{url}', 'PartType0') \
         WHERE (\"Coordinates\"[1] >= {a} OR \"Coordinates\"[1] <= {b}) \
         AND \"Coordinates\"[2] BETWEEN {} AND {} ORDER BY row_index",
        0.4 * side,
        0.6 * side
    );
    s.server.clear_request_log();
    let got = query(&ctx, &sql).await;
    let want: Vec<u64> = (0..n)
        .filter(|&r| {
            let p = pos[r as usize];
            (p[0] >= a || p[0] <= b) && p[1] >= 0.4 * side && p[1] <= 0.6 * side
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(u64s(&got, 0), want);
    let sent = rows_sent(s, "/PartType0/row_index") + rows_sent(s, "/PartType0/Coordinates");
    assert!(sent < n / 2, "{sent} of {n} rows for the wrapped box");
    // The `region` option (swiftsimio's box syntax, wrapping) with exact filtering equals
    // libhdf5's positions tested against the box; the options as named arguments, then as
    // `'key=value'` strings.
    for (i, boxes) in [
        &["23:2,:,20:1"][..],
        &["1:3,1:3,1:3", "20:24,12:16,2:5"][..],
    ]
    .into_iter()
    .enumerate()
    {
        let region = boxes.join(";");
        let options = if i == 0 {
            format!("region => '{region}', region_exact => true")
        } else {
            format!("'region={region}', 'region_exact=true'")
        };
        let sql = format!(
            "SELECT row_index FROM read_hdfstream('{url}', 'PartType0', {options}) \
             ORDER BY row_index"
        );
        let got = query(&ctx, &sql).await;
        let mut want = Vec::new();
        let mut offset = 0;
        for f in files {
            let t = region_common::exact_truth(f, "PartType0", boxes);
            want.extend(t.iter().flatten().map(|r| r + offset));
            offset += h5_positions(f, "PartType0").len() as u64;
        }
        assert!(!want.is_empty(), "{region}");
        assert_eq!(u64s(&got, 0), want, "{region}");
    }
    let plan = query(
        &ctx,
        &format!(
            "EXPLAIN SELECT count(*) FROM read_hdfstream('{url}', 'PartType0') \
             WHERE \"Coordinates\"[1] < {}",
            side / 8.0
        ),
    )
    .await;
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(
        text.contains("cells=") && text.contains("(cells)"),
        "{text}"
    );
}

#[test]
fn joins_aggregations_and_order_by_equal_libhdf5() {
    let s = Snapshot::new(30_000, 2);
    block_on(joins_aggregations_and_order_by_equal_libhdf5_with(&s));
}

async fn joins_aggregations_and_order_by_equal_libhdf5_with(s: &Snapshot) {
    let files = &s.summary.snapshot_files;
    let halo_of: Vec<i64> = h5(files, "PartType0/HaloID");
    let masses: Vec<f32> = h5(files, "PartType0/Masses");
    let ids: Vec<u64> = h5(files, "PartType0/ParticleIDs");
    let halo_ids: Vec<i64> = h5(std::slice::from_ref(&s.summary.halo_file), "Halos/ID");
    let (ctx, url) = ctx(s);
    let halo_url = format!(
        "{}/msgpack/{}",
        s.server.base_url(),
        Path::new(&s.summary.halo_file)
            .file_name()
            .unwrap()
            .to_string_lossy()
    );
    // Join: particles in halos with their catalogue entry.
    let got = query(
        &ctx,
        &format!(
            "SELECT p.\"HaloID\", count(*) AS n, sum(CAST(p.\"Masses\" AS DOUBLE)) AS m \
             FROM read_hdfstream('{url}', 'PartType0') p \
             JOIN read_hdfstream('{halo_url}', 'Halos') h ON p.\"HaloID\" = h.\"ID\" \
             GROUP BY p.\"HaloID\" ORDER BY p.\"HaloID\""
        ),
    )
    .await;
    let mut want: HashMap<i64, (i64, f64)> = HashMap::new();
    for (h, m) in halo_of.iter().zip(&masses) {
        if halo_ids.contains(h) {
            let e = want.entry(*h).or_default();
            e.0 += 1;
            e.1 += f64::from(*m);
        }
    }
    let mut want: Vec<(i64, (i64, f64))> = want.into_iter().collect();
    want.sort_by_key(|x| x.0);
    assert!(want.len() > 3);
    let mut got_rows = Vec::new();
    for b in &got {
        for i in 0..b.num_rows() {
            got_rows.push((
                b.column(0).as_primitive::<Int64Type>().value(i),
                b.column(1).as_primitive::<Int64Type>().value(i),
                b.column(2).as_primitive::<Float64Type>().value(i),
            ));
        }
    }
    assert_eq!(got_rows.len(), want.len());
    for (g, (h, (n, m))) in got_rows.iter().zip(&want) {
        assert_eq!((g.0, g.1), (*h, *n));
        assert!((g.2 - m).abs() <= 1e-9 * m.abs().max(1.0), "{g:?} vs {m}");
    }
    // Order by + limit: the five heaviest particles.
    let got = query(
        &ctx,
        &format!(
            "SELECT \"ParticleIDs\", \"Masses\" FROM read_hdfstream('{url}', 'PartType0') \
             ORDER BY \"Masses\" DESC, \"ParticleIDs\" LIMIT 5"
        ),
    )
    .await;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by(|&a, &b| masses[b].total_cmp(&masses[a]).then(ids[a].cmp(&ids[b])));
    let want: Vec<u64> = order[..5].iter().map(|&i| ids[i]).collect();
    assert_eq!(u64s(&got, 0), want);
    // The file-path column and options given to the table function.
    let got = query(
        &ctx,
        &format!(
            "SELECT path, count(*) FROM read_hdfstream('{url}', 'PartType0', 'file_paths=path', \
             'columns=Masses') GROUP BY path ORDER BY path"
        ),
    )
    .await;
    let mut counts = Vec::new();
    for b in &got {
        for i in 0..b.num_rows() {
            counts.push((
                b.column(0).as_string::<i32>().value(i).to_owned(),
                b.column(1).as_primitive::<Int64Type>().value(i) as usize,
            ));
        }
    }
    let want: Vec<(String, usize)> = s
        .vpaths()
        .iter()
        .zip(files)
        .map(|(v, p)| {
            (
                v.clone(),
                h5::<f32>(std::slice::from_ref(p), "PartType0/Masses").len(),
            )
        })
        .collect();
    assert_eq!(counts, want);
}

#[test]
fn data_filters_fetch_other_columns_for_matching_rows_only() {
    let s = Snapshot::new(40_000, 2);
    block_on(data_filters_fetch_other_columns_for_matching_rows_only_with(&s));
}

/// Filters on data columns: the scan fetches their columns first, then the other columns
/// for the matching rows only (late materialization), and the answers equal libhdf5's.
async fn data_filters_fetch_other_columns_for_matching_rows_only_with(s: &Snapshot) {
    let files = &s.summary.snapshot_files;
    let temp: Vec<f32> = h5(files, "PartType0/Temperatures");
    let halo: Vec<i64> = h5(files, "PartType0/HaloID");
    let ids: Vec<u64> = h5(files, "PartType0/ParticleIDs");
    let masses: Vec<f32> = h5(files, "PartType0/Masses");
    let n = ids.len() as u64;
    let (ctx, url) = ctx(s);
    // The hottest 1% of the gas, in one halo or another.
    let mut sorted = temp.clone();
    sorted.sort_by(f32::total_cmp);
    // SQL compares the f32 column with the f64 literal as f64.
    let cut: f64 = sorted[sorted.len() * 99 / 100].to_string().parse().unwrap();
    let a_halo = halo.iter().copied().find(|&h| h > 0).unwrap();
    let cases: Vec<(String, Keep)> = vec![
        (
            format!("\"Temperatures\" > {cut}"),
            Box::new({
                let t = temp.clone();
                move |r| f64::from(t[r as usize]) > cut
            }),
        ),
        (
            format!("\"HaloID\" = {a_halo} AND \"Masses\" > 0"),
            Box::new({
                let (h, m) = (halo.clone(), masses.clone());
                move |r| h[r as usize] == a_halo && m[r as usize] > 0.0
            }),
        ),
        // Not a range of the row index: evaluated on the virtual column, no data fetched
        // for it.
        ("row_index % 7 = 3".to_owned(), Box::new(|r| r % 7 == 3)),
    ];
    for (filter, keep) in &cases {
        let sql = format!(
            "SELECT row_index, \"ParticleIDs\", \"Velocities\" \
             FROM read_hdfstream('{url}', 'PartType0') WHERE {filter} ORDER BY row_index"
        );
        s.server.clear_request_log();
        let got = query(&ctx, &sql).await;
        // Opening the table asked for the group's metadata only, not each file's tree with
        // its inlined arrays.
        let meta: u64 = s
            .server
            .request_log()
            .iter()
            .filter(|r| r.slice_runs.is_none())
            .map(|r| r.body_bytes)
            .sum();
        assert!(
            meta < 64 * 1024 * files.len() as u64,
            "{meta} bytes of metadata"
        );
        let want: Vec<u64> = (0..n).filter(|&r| keep(r)).collect();
        assert!(!want.is_empty() && (want.len() as u64) < n / 5, "{filter}");
        assert_same(&u64s(&got, 0), &want, filter);
        let want_ids: Vec<u64> = want.iter().map(|&r| ids[r as usize]).collect();
        assert_same(&u64s(&got, 1), &want_ids, filter);
        // The other columns were sent for the matching rows only.
        for col in ["ParticleIDs", "Velocities"] {
            let sent = rows_sent(s, &format!("/PartType0/{col}"));
            assert_eq!(sent, want.len() as u64, "{col} rows sent for {filter}");
        }
        let plan = query(&ctx, &format!("EXPLAIN {sql}")).await;
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
            .unwrap()
            .to_string();
        assert!(text.contains("late=["), "{text}");
    }
    // A filter most rows pass: the other columns come in whole runs, the answer is the same.
    let low: f64 = sorted[sorted.len() / 10].to_string().parse().unwrap();
    let sql = format!(
        "SELECT row_index, \"ParticleIDs\" FROM read_hdfstream('{url}', 'PartType0') \
         WHERE \"Temperatures\" > {low} ORDER BY row_index"
    );
    s.server.clear_request_log();
    let got = query(&ctx, &sql).await;
    let want: Vec<u64> = (0..n)
        .filter(|&r| f64::from(temp[r as usize]) > low)
        .collect();
    assert_same(&u64s(&got, 0), &want, "most rows pass");
    assert_eq!(rows_sent(s, "/PartType0/ParticleIDs"), n);
    // A filter that fails on some rows fails the query as DataFusion would, never with
    // rows missing.
    let sql = format!(
        "SELECT count(\"ParticleIDs\") FROM read_hdfstream('{url}', 'PartType0') \
         WHERE 10 / (\"HaloID\" - \"HaloID\") > 1"
    );
    let err = ctx.sql(&sql).await.unwrap().collect().await.unwrap_err();
    assert!(err.to_string().contains("Divide by zero"), "{err}");
}

#[test]
fn bad_input_gives_clear_errors() {
    let s = Snapshot::new(2_000, 1);
    block_on(bad_input_gives_clear_errors_with(&s));
}

async fn bad_input_gives_clear_errors_with(s: &Snapshot) {
    let (ctx, url) = ctx(s);
    let cases = [
        (format!("SELECT * FROM read_hdfstream('{url}')"), "usage"),
        (
            format!("SELECT * FROM read_hdfstream('{url}', 'NoSuchGroup')"),
            "NoSuchGroup",
        ),
        (
            format!("SELECT * FROM read_hdfstream('{url}', 'PartType0', 'bogus=1')"),
            "unknown option",
        ),
        (
            format!("SELECT * FROM read_hdfstream('{url}', 'PartType0', 'region=1:2')"),
            "region",
        ),
        (
            "SELECT * FROM read_hdfstream('nosuchalias-xyz:file.hdf5', 'PartType0')".to_owned(),
            "nosuchalias",
        ),
        (
            format!("SELECT * FROM read_hdfstream('{url}', 'PartType0', 'columns=Nope')"),
            "Nope",
        ),
    ];
    for (sql, needle) in cases {
        let e = match ctx.sql(&sql).await {
            Err(e) => e.to_string(),
            Ok(df) => match df.collect().await {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{sql} succeeded"),
            },
        };
        assert!(e.contains(needle), "{sql}: {e}");
    }
    let e = ctx
        .sql(&format!(
            "CREATE EXTERNAL TABLE t STORED AS HDFSTREAM LOCATION '{url}'"
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("group"), "{e}");
}
