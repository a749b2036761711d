//! `hdfstream sql` against libhdf5 reading the same sample files: a printed result, a
//! Parquet output, `COPY ... TO`, statements from stdin, and a failing query.
#![cfg(feature = "sql")]

#[allow(dead_code)]
#[path = "../../tests/region_common/mod.rs"]
mod region_common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use arrow::array::AsArray;
use arrow::datatypes::{Float32Type, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use region_common::Snapshot;

fn hdfstream(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hdfstream"))
        .args(args)
        .env_remove("HDFSTREAM_USER")
        .env_remove("HDFSTREAM_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hdfstream");
    let input = stdin.unwrap_or("").to_owned();
    let mut pipe = child.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    child.wait_with_output().expect("wait")
}

fn ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = hdfstream(args, stdin);
    assert!(
        out.status.success(),
        "hdfstream {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn h5<T: hdf5_metno::H5Type>(path: &std::path::Path, name: &str) -> Vec<T> {
    let f = hdf5_metno::File::open(path).unwrap();
    f.dataset(name).unwrap().read_raw().unwrap()
}

/// (ParticleIDs, Masses) of a Parquet file written by the tool.
fn read_parquet(path: &std::path::Path) -> (Vec<u64>, Vec<f32>) {
    let f = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let (mut ids, mut m) = (Vec::new(), Vec::new());
    for b in reader {
        let b = b.unwrap();
        ids.extend(b.column(0).as_primitive::<UInt64Type>().values().iter());
        m.extend(b.column(1).as_primitive::<Float32Type>().values().iter());
    }
    (ids, m)
}

#[test]
fn sql_prints_writes_copies_and_reads_stdin() {
    let s = Snapshot::new(6_000, 1);
    let path = &s.summary.snapshot_files[0];
    let vpath = &s.vpaths()[0];
    let ids: Vec<u64> = h5(path, "PartType0/ParticleIDs");
    let masses: Vec<f32> = h5(path, "PartType0/Masses");
    let url = s.server.base_url();
    // A printed result: the count and the largest id of the first 100 rows.
    let out = ok(
        &[
            "sql",
            url,
            &format!(
                "SELECT count(*) AS n, max(\"ParticleIDs\") AS top FROM \
                 read_hdfstream('{vpath}', 'PartType0') WHERE row_index < 100"
            ),
        ],
        None,
    );
    let top = ids[..100].iter().max().unwrap();
    assert!(
        out.contains("| 100 ") && out.contains(&format!("| {top} ")),
        "{out}"
    );
    // -o writes the result as Parquet.
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("heavy.parquet");
    let query = format!(
        "SELECT \"ParticleIDs\", \"Masses\" FROM read_hdfstream('{vpath}', 'PartType0') \
         WHERE \"Masses\" > 0 ORDER BY row_index"
    );
    ok(&["sql", url, &query, "-o", pq.to_str().unwrap()], None);
    let want: Vec<usize> = (0..ids.len()).filter(|&i| masses[i] > 0.0).collect();
    let (got_ids, got_m) = read_parquet(&pq);
    assert_eq!(got_ids, want.iter().map(|&i| ids[i]).collect::<Vec<_>>());
    assert_eq!(got_m, want.iter().map(|&i| masses[i]).collect::<Vec<_>>());
    // COPY inside the query, and statements from stdin (an error does not end the session).
    let copied = dir.path().join("copied.parquet");
    let script = format!(
        "SELECT nope FROM nowhere;\n\
         COPY (SELECT \"ParticleIDs\", \"Masses\" FROM read_hdfstream('{vpath}', 'PartType0') \
         WHERE row_index BETWEEN 10 AND 19 ORDER BY row_index)\n TO '{}' STORED AS PARQUET;\n",
        copied.display()
    );
    let out = hdfstream(&["sql", url], Some(&script));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
    let (got_ids, got_m) = read_parquet(&copied);
    assert_eq!(got_ids, ids[10..20].to_vec());
    assert_eq!(got_m, masses[10..20].to_vec());
    // A failing query exits non-zero with the reason.
    let out = hdfstream(
        &[
            "sql",
            url,
            "SELECT * FROM read_hdfstream('missing.hdf5', 'PartType0')",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "not found");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.hdf5"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = hdfstream(&["sql", url, "SELEKT 1"], None);
    assert_eq!(out.status.code(), Some(2), "a query that does not parse");
    // --json prints the rows as a JSON array of objects.
    let out = ok(
        &[
            "sql",
            url,
            &format!(
                "SELECT \"ParticleIDs\" AS id, \"Masses\" AS m FROM \
                 read_hdfstream('{vpath}', 'PartType0') WHERE row_index < 7 ORDER BY row_index"
            ),
            "--json",
        ],
        None,
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("a JSON array");
    let got: Vec<(u64, f32)> = rows
        .iter()
        .map(|r| (r["id"].as_u64().unwrap(), r["m"].as_f64().unwrap() as f32))
        .collect();
    let want: Vec<(u64, f32)> = (0..7).map(|i| (ids[i], masses[i])).collect();
    assert_eq!(got, want);
    let out = ok(
        &[
            "sql",
            url,
            &format!(
                "SELECT 1 AS one FROM read_hdfstream('{vpath}', 'PartType0') WHERE row_index < 0"
            ),
            "--json",
        ],
        None,
    );
    assert_eq!(out.trim(), "[]");
}
