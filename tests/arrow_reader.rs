//! The Arrow reader against the embedded server: every value, type, row selection and
//! metadata entry is compared with libhdf5 (hdf5-metno) reading the same generated files.
#![cfg(feature = "arrow")]

#[allow(dead_code)]
mod arrow_common;
#[allow(dead_code)] // each test crate uses a subset
mod support;

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type, Int16Type, UInt64Type};
use arrow::record_batch::RecordBatchReader;
use hdf5_metno::types::{FixedAscii, VarLenUnicode};
use hdfstream::RowRanges;
use hdfstream::arrow::{FILES_KEY, GROUP_KEY, GroupReaderBuilder};

use arrow_common::{Sample, assert_column_matches, collect, h5_attr_f64, leaf};

#[test]
fn glob_over_files_reads_every_column_like_libhdf5() {
    let s = Sample::new(20_000, 3);
    let reader = s
        .builder("snap_0000.*.hdf5", "PartType0")
        .with_boolean_columns(["IsStarForming"])
        .with_batch_size(7_000)
        .build()
        .unwrap();
    assert_eq!(reader.num_rows(), s.summary.num_part_total[0]);
    let schema = reader.schema();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    assert!(
        batches
            .iter()
            .all(|b| b.num_rows() <= 7_000 && b.num_rows() > 0)
    );
    let table = collect(&schema, &batches);
    assert_eq!(table.num_rows() as u64, s.summary.num_part_total[0]);
    // Every dataset of the group with the row count is a column, in member order.
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for want in [
        "Coordinates",
        "Velocities",
        "Masses",
        "ParticleIDs",
        "IsStarForming",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert_eq!(
        schema.field_with_name("Coordinates").unwrap().data_type(),
        &DataType::FixedSizeList(
            Arc::new(arrow::datatypes::Field::new(
                "item",
                DataType::Float64,
                false
            )),
            3
        )
    );
    assert_eq!(
        schema.field_with_name("IsStarForming").unwrap().data_type(),
        &DataType::Boolean
    );
    for (i, f) in schema.fields().iter().enumerate() {
        assert_column_matches(&s.files(), "PartType0", f.name(), table.column(i), None);
    }
}

#[test]
fn row_ranges_cross_file_boundaries() {
    let s = Sample::new(12_000, 3);
    let per_file: Vec<u64> = s.rows_per_file("PartType0");
    let total: u64 = per_file.iter().sum();
    let b0 = per_file[0];
    let sel = RowRanges::from_ranges([5..10, b0 - 3..b0 + 4, 2000..2001, total - 2..total]);
    let reader = s
        .builder("snap_0000.*.hdf5", "PartType0")
        .with_columns(["ParticleIDs", "Coordinates", "Masses"])
        .with_row_ranges(sel.clone())
        .with_batch_size(4)
        .build()
        .unwrap();
    assert_eq!(reader.num_rows(), sel.row_count());
    let schema = reader.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["ParticleIDs", "Coordinates", "Masses"]);
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    let table = collect(&schema, &batches);
    assert_eq!(table.num_rows() as u64, sel.row_count());
    for (i, f) in schema.fields().iter().enumerate() {
        assert_column_matches(
            &s.files(),
            "PartType0",
            f.name(),
            table.column(i),
            Some(&sel),
        );
    }
    // `with_rows` is the single-range form.
    let reader = s
        .builder("snap_0000.*.hdf5", "PartType0")
        .with_columns(["ParticleIDs"])
        .with_rows(b0 - 1..b0 + 1)
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 2, "one batch per file part");
    let sel = RowRanges::from_ranges(std::iter::once(b0 - 1..b0 + 1));
    let table = collect(&batches[0].schema(), &batches);
    assert_column_matches(
        &s.files(),
        "PartType0",
        "ParticleIDs",
        table.column(0),
        Some(&sel),
    );
}

#[test]
fn strings_arrays_and_nested_dimensions() {
    let s = Sample::new(2_000, 1);
    // Fixed-length strings (S<n>, NUL padded) → Utf8.
    let reader = s.builder("snap_0000.hdf5", "Header").build().unwrap();
    let schema = reader.schema();
    assert_eq!(
        schema.field_with_name("PartTypeNames").unwrap().data_type(),
        &DataType::Utf8
    );
    let t = collect(&schema, &reader.map(|b| b.unwrap()).collect::<Vec<_>>());
    let f = hdf5_metno::File::open(&s.files()[0]).unwrap();
    let want: Vec<String> = read_fixed_strings(&f.dataset("Header/PartTypeNames").unwrap());
    let got: Vec<&str> = t
        .column(0)
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(got, want);
    assert!(got.iter().all(|g| !g.contains('\0')));
    // Variable-length strings.
    let reader = s
        .builder("snap_0000.hdf5", "Extra")
        .with_columns(["TypeDescriptions"])
        .build()
        .unwrap();
    let t = collect(
        &reader.schema(),
        &reader.map(|b| b.unwrap()).collect::<Vec<_>>(),
    );
    let want: Vec<VarLenUnicode> = f
        .dataset("Extra/TypeDescriptions")
        .unwrap()
        .read_raw()
        .unwrap();
    let got: Vec<&str> = t
        .column(0)
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let want: Vec<&str> = want.iter().map(|v| v.as_str()).collect();
    assert_eq!(got, want);
    // HDF5 ARRAY element type [f32; 3] → FixedSizeList(3).
    let reader = s
        .builder("snap_0000.hdf5", "Extra/Structured")
        .with_columns(["ArrayTriplets"])
        .build()
        .unwrap();
    let t = collect(
        &reader.schema(),
        &reader.map(|b| b.unwrap()).collect::<Vec<_>>(),
    );
    let col = t.column(0).as_fixed_size_list();
    assert_eq!(col.value_length(), 3);
    assert_eq!(col.len(), 11);
    let want: Vec<[f32; 3]> = f
        .dataset("Extra/Structured/ArrayTriplets")
        .unwrap()
        .read_raw()
        .unwrap();
    let want: Vec<f32> = want.into_iter().flatten().collect();
    assert_eq!(
        leaf(t.column(0))
            .as_primitive::<Float32Type>()
            .values()
            .to_vec(),
        want
    );
    // (3, 4, 5) i16 → FixedSizeList(FixedSizeList(i16, 5), 4), three rows.
    let reader = s
        .builder("snap_0000.hdf5", "Extra")
        .with_columns(["Matrix3D"])
        .with_rows(1..3)
        .build()
        .unwrap();
    let t = collect(
        &reader.schema(),
        &reader.map(|b| b.unwrap()).collect::<Vec<_>>(),
    );
    let outer = t.column(0).as_fixed_size_list();
    assert_eq!((outer.len(), outer.value_length()), (2, 4));
    assert_eq!(outer.values().as_fixed_size_list().value_length(), 5);
    let want: Vec<i16> = f.dataset("Extra/Matrix3D").unwrap().read_raw().unwrap();
    assert_eq!(
        leaf(t.column(0))
            .as_primitive::<Int16Type>()
            .values()
            .to_vec(),
        want[20..60].to_vec()
    );
}

fn read_fixed_strings(ds: &hdf5_metno::Dataset) -> Vec<String> {
    // The sample writes PartTypeNames as fixed ASCII strings; read through the widest width.
    let n = ds.dtype().unwrap().size();
    macro_rules! read_as {
        ($($w:literal),*) => {
            match n {
                $($w => ds.read_raw::<FixedAscii<$w>>().unwrap().iter().map(|s| s.as_str().to_string()).collect(),)*
                other => panic!("unexpected string width {other}"),
            }
        };
    }
    read_as!(8, 16, 20, 32, 64, 128)
}

#[test]
fn attributes_become_field_and_schema_metadata() {
    let s = Sample::new(3_000, 2);
    let builder = s
        .builder("snap_0000.*.hdf5", "PartType0")
        .with_columns(["Coordinates", "Masses"]);
    let schema = builder.schema().unwrap();
    let f = hdf5_metno::File::open(&s.files()[0]).unwrap();
    for name in ["Coordinates", "Masses"] {
        let md = schema.field_with_name(name).unwrap().metadata();
        let ds = f.dataset(&format!("PartType0/{name}")).unwrap();
        let cgs: f64 = md["CGSConversionFactor"].parse().unwrap();
        assert_eq!(cgs, h5_attr_f64(&ds, "CGSConversionFactor"));
        let a: f64 = md["a-scale exponent"].parse().unwrap();
        assert_eq!(a, h5_attr_f64(&ds, "a-scale exponent"));
        let vd: FixedAscii<200> = ds.attr("VarDescription").unwrap().read_scalar().unwrap();
        assert_eq!(md["VarDescription"], vd.as_str());
        let d: VarLenUnicode = ds.attr("Description").unwrap().read_scalar().unwrap();
        assert_eq!(md["Description"], d.as_str());
    }
    let md = schema.metadata();
    let hdr = f.group("Header").unwrap();
    let box_size: Vec<f64> = serde_json::from_str(&md["Header/BoxSize"]).unwrap();
    assert_eq!(
        box_size,
        hdr.attr("BoxSize").unwrap().read_raw::<f64>().unwrap()
    );
    let z: f64 = md["Header/Redshift"].parse().unwrap();
    assert_eq!(
        z,
        hdr.attr("Redshift").unwrap().read_raw::<f64>().unwrap()[0]
    );
    let run: FixedAscii<26> = hdr.attr("RunName").unwrap().read_scalar().unwrap();
    assert_eq!(md["Header/RunName"], run.as_str());
    assert_eq!(md[GROUP_KEY], "/PartType0");
    let files: Vec<String> = serde_json::from_str(&md[FILES_KEY]).unwrap();
    assert_eq!(files, ["snap_0000.0.hdf5", "snap_0000.1.hdf5"]);
}

#[test]
fn natural_order_and_projection_errors() {
    let s = Sample::new(1_000, 12);
    let b = s.builder_inline("snap_0000.*.hdf5", "PartType1");
    let files: Vec<&str> = b.groups().iter().map(|g| g.file_path()).collect();
    let want: Vec<String> = (0..12).map(|i| format!("snap_0000.{i}.hdf5")).collect();
    assert_eq!(files, want, "natural order, not lexicographic");
    let reader = b
        .clone()
        .with_columns(["ParticleIDs"])
        .with_batch_size(100_000)
        .build()
        .unwrap();
    let t = collect(
        &reader.schema(),
        &reader.map(|b| b.unwrap()).collect::<Vec<_>>(),
    );
    assert_column_matches(&s.files(), "PartType1", "ParticleIDs", t.column(0), None);
    // A dataset that is not there, a boolean that is not 1-byte, a glob matching nothing.
    let e = b.clone().with_columns(["NoSuchThing"]).build().unwrap_err();
    assert!(matches!(e, hdfstream::Error::NotFound { .. }), "{e}");
    let e = b
        .clone()
        .with_columns(["Masses"])
        .with_boolean_columns(["Masses"])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("Masses"), "{e}");
    let e = b
        .clone()
        .with_boolean_columns(["IsStarFormin"])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("IsStarFormin"), "{e}");
    let e =
        GroupReaderBuilder::open_with(s.backend(), "snap_9*.hdf5", "PartType1", Default::default())
            .unwrap_err();
    assert!(matches!(e, hdfstream::Error::NotFound { .. }), "{e}");
}

/// Snapshot-part names in the sample directory whose index passes `keep`, in numeric order:
/// the truth for the globs below, read from the file system, not from the server.
fn parts_on_disk(s: &Sample, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut parts: Vec<(u32, String)> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| {
            let index = name.strip_prefix("snap_0000.")?.strip_suffix(".hdf5")?;
            let n: u32 = index.parse().ok()?;
            keep(index).then_some((n, name))
        })
        .collect();
    parts.sort();
    parts.into_iter().map(|(_, name)| name).collect()
}

#[test]
fn character_classes_in_globs_select_exactly_the_matching_files() {
    let s = Sample::new(1_000, 12);
    let single_digit = parts_on_disk(&s, |i| i.len() == 1);
    assert_eq!(single_digit.len(), 10, "{single_digit:?}");
    for (glob, want) in [
        ("snap_0000.[0-9].hdf5", single_digit.clone()),
        (
            "snap_0000.1[!0].hdf5",
            parts_on_disk(&s, |i| {
                i.len() == 2 && i.starts_with('1') && !i.ends_with('0')
            }),
        ),
        (
            "/snap_0000.[13579]*.hdf5",
            parts_on_disk(&s, |i| i.starts_with(['1', '3', '5', '7', '9'])),
        ),
    ] {
        let b = s.builder_inline(glob, "PartType1");
        let files: Vec<&str> = b.groups().iter().map(|g| g.file_path()).collect();
        assert_eq!(files, want, "{glob}");
    }
    // The rows are those of exactly these files, as libhdf5 reads them.
    let reader = s
        .builder("snap_0000.[0-9].hdf5", "PartType1")
        .with_columns(["ParticleIDs"])
        .build()
        .unwrap();
    let t = collect(
        &reader.schema(),
        &reader.map(|b| b.unwrap()).collect::<Vec<_>>(),
    );
    let paths: Vec<_> = single_digit.iter().map(|n| s.dir.path().join(n)).collect();
    assert_column_matches(&paths, "PartType1", "ParticleIDs", t.column(0), None);
    // A malformed class is an InvalidPath naming the pattern, not a panic or an empty match.
    for glob in ["snap_0000.[.hdf5", "snap_0000.[!.hdf5"] {
        let e = GroupReaderBuilder::open_with(s.backend(), glob, "PartType1", Default::default())
            .unwrap_err();
        assert!(matches!(e, hdfstream::Error::InvalidPath { .. }), "{e}");
        assert!(e.to_string().contains(glob), "{e}");
    }
}

/// A one-column scan keeps several batches in flight (their requests overlap); the batches
/// still arrive in row order with libhdf5's values, across file boundaries.
#[test]
fn one_column_batches_in_flight_arrive_in_order() {
    let s = Sample::new(12_000, 3);
    let per_file: Vec<u64> = s.rows_per_file("PartType0");
    let total: u64 = per_file.iter().sum();
    let b0 = per_file[0];
    let sel = RowRanges::from_ranges([3..40, b0 - 11..b0 + 13, total - 9..total]);
    for concurrency in [1, 2, 5] {
        let reader = s
            .builder("snap_0000.*.hdf5", "PartType0")
            .with_columns(["ParticleIDs"])
            .with_row_ranges(sel.clone())
            .with_batch_size(3)
            .with_concurrency(concurrency)
            .build()
            .unwrap();
        let schema = reader.schema();
        let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
        assert!(batches.iter().all(|b| b.num_rows() <= 3));
        let table = collect(&schema, &batches);
        assert_eq!(table.num_rows() as u64, sel.row_count());
        assert_column_matches(
            &s.files(),
            "PartType0",
            "ParticleIDs",
            table.column(0),
            Some(&sel),
        );
    }
}

#[test]
fn dropping_a_reader_early_stops_the_fetcher() {
    let s = Sample::new(20_000, 1);
    let mut reader = s
        .builder("snap_0000.hdf5", "PartType0")
        .with_columns(["ParticleIDs", "Coordinates"])
        .with_batch_size(1_000)
        .build()
        .unwrap();
    let first = reader.next().unwrap().unwrap();
    assert_eq!(first.num_rows(), 1_000);
    let ids = first.column(0).as_primitive::<UInt64Type>();
    let f = hdf5_metno::File::open(&s.files()[0]).unwrap();
    let want: Vec<u64> = f
        .dataset("PartType0/ParticleIDs")
        .unwrap()
        .read_raw()
        .unwrap();
    assert_eq!(ids.values().to_vec(), want[..1_000].to_vec());
    drop(reader);
    // At most the batch read, the one queued (prefetch 1) and the fetcher's window of
    // ceil(4 workers / 2 columns) + 1 = 3 batches were fetched: 5 of the 20 batches.
    let slices = s
        .server
        .request_log()
        .iter()
        .filter(|r| r.slice_runs.is_some())
        .count();
    assert!(slices >= 2, "the first batch needs one slice per column");
    assert!(
        slices <= 10,
        "{slices} slice requests after reading one batch of 20 (2 columns)"
    );
}

/// Every column of a batch is one multi-slice request through the table core's fetcher,
/// carrying exactly the batch's runs, and the values are libhdf5's.
#[test]
fn each_column_of_a_batch_is_one_multi_slice_request() {
    let s = Sample::new(20_000, 1);
    let runs: Vec<std::ops::Range<u64>> = (0..50u64).map(|i| i * 300 + 7..i * 300 + 19).collect();
    let sel = RowRanges::from_ranges(runs.clone());
    s.server.clear_request_log();
    let reader = s
        .builder("snap_0000.hdf5", "PartType0")
        .with_columns(["ParticleIDs", "Coordinates", "Masses"])
        .with_row_ranges(sel.clone())
        .build()
        .unwrap();
    let schema = reader.schema();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 1);
    let table = collect(&schema, &batches);
    for (i, f) in schema.fields().iter().enumerate() {
        assert_column_matches(
            &s.files(),
            "PartType0",
            f.name(),
            table.column(i),
            Some(&sel),
        );
    }
    let want: Vec<(u64, u64)> = runs.iter().map(|r| (r.start, r.end - r.start)).collect();
    let log = s.server.request_log();
    for name in ["ParticleIDs", "Coordinates", "Masses"] {
        let object = format!("/PartType0/{name}");
        let slices: Vec<_> = log
            .iter()
            .filter(|r| r.slice_runs.is_some() && r.object.as_deref() == Some(object.as_str()))
            .collect();
        assert_eq!(slices.len(), 1, "{name}: {} slice requests", slices.len());
        assert_eq!(
            slices[0].slice_rows.as_deref(),
            Some(want.as_slice()),
            "{name}"
        );
    }
}

/// The last batch of a file, when at most a quarter of the batch size, is fetched with the
/// batch before it (one request per column), so a file a little over one batch makes no
/// small request for its rest; batches keep their size and never span two files, and the
/// values are libhdf5's.
#[test]
fn a_small_rest_of_a_file_shares_the_request_of_the_batch_before_it() {
    let s = Sample::new(20_000, 2);
    let per_file = s.rows_per_file("PartType0");
    let total: u64 = per_file.iter().sum();
    let smallest = per_file.iter().copied().min().unwrap() as usize;
    // Each file a little over one batch, then several batches per file.
    for batch in [smallest * 9 / 10, smallest / 5 + 1] {
        s.server.clear_request_log();
        let reader = s
            .builder("snap_0000.*.hdf5", "PartType0")
            .with_columns(["ParticleIDs", "Coordinates"])
            .with_batch_size(batch)
            .build()
            .unwrap();
        let schema = reader.schema();
        let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
        let want_sizes: Vec<usize> = per_file
            .iter()
            .flat_map(|&n| {
                let n = n as usize;
                (0..n.div_ceil(batch)).map(move |k| batch.min(n - k * batch))
            })
            .collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.num_rows()).collect();
        assert_eq!(sizes, want_sizes, "batch size {batch}");
        let table = collect(&schema, &batches);
        assert_eq!(table.num_rows() as u64, total);
        for (i, f) in schema.fields().iter().enumerate() {
            assert_column_matches(&s.files(), "PartType0", f.name(), table.column(i), None);
        }
        // Per file: one request per full batch, the last full one also taking a rest of at
        // most batch / 4 rows.
        let mut want: Vec<Vec<(u64, u64)>> = Vec::new();
        for &n in &per_file {
            let b = batch as u64;
            let rest = n % b;
            let joined = n > b && rest > 0 && rest <= b / 4;
            let mut start = 0;
            while start < n {
                let len = if joined && n - start == b + rest {
                    b + rest
                } else {
                    b.min(n - start)
                };
                want.push(vec![(start, len)]);
                start += len;
            }
        }
        want.sort();
        let log = s.server.request_log();
        for name in ["ParticleIDs", "Coordinates"] {
            let object = format!("/PartType0/{name}");
            let mut got: Vec<Vec<(u64, u64)>> = log
                .iter()
                .filter(|r| r.object.as_deref() == Some(object.as_str()))
                .filter_map(|r| r.slice_rows.as_deref().map(<[_]>::to_vec))
                .collect();
            got.sort();
            assert_eq!(got, want, "{name}: batch size {batch}");
        }
        if batch == smallest * 9 / 10 {
            // The smallest file's rest (a tenth of it) was joined.
            assert!(want.len() < batches.len(), "{want:?}");
        }
    }
}

/// Opening a table over a glob, with a region, asks the server once for each piece of
/// metadata (listing, files, groups, headers, cell index), however often the table's plan,
/// schema metadata and cell index need it; and the region's rows are still libhdf5's.
#[test]
fn opening_a_table_asks_for_each_piece_of_metadata_once() {
    let s = Sample::new(12_000, 3);
    s.server.clear_request_log();
    let b = hdfstream::arrow::GroupReaderBuilder::open_with(
        s.backend(),
        "snap_0000.*.hdf5",
        "PartType0",
        hdfstream::OpenOptions::metadata_only(),
    )
    .unwrap()
    .with_columns(["ParticleIDs"])
    .with_region(hdfstream::table::Region::parse(["2:9,3:11,:"]).unwrap());
    let table = b.resolve().unwrap();
    let region = b.region_rows().unwrap().unwrap();
    let reader = table.reader(Some(&region.rows)).unwrap();
    let schema = reader.schema();
    let batches: Vec<_> = reader.map(|r| r.unwrap()).collect();
    let got = collect(&schema, &batches);
    assert!(got.num_rows() > 0 && (got.num_rows() as u64) < 12_000);
    assert_column_matches(
        &s.files(),
        "PartType0",
        "ParticleIDs",
        got.column(0),
        Some(&region.rows),
    );
    let mut seen = std::collections::HashMap::new();
    for r in s.server.request_log().iter() {
        if r.slice_runs.is_none() {
            let key = (r.method.clone(), r.vpath.clone(), r.object.clone());
            *seen.entry(key).or_insert(0) += 1;
        }
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "metadata asked more than once: {repeated:?}"
    );
    // Each file's group and header were asked for, and the cell index (every file of a
    // SWIFT snapshot holds all of it) from one file.
    assert!(seen.keys().any(|(_, _, o)| o.as_deref() == Some("/Cells")));
    for part in ["snap_0000.0.hdf5", "snap_0000.1.hdf5", "snap_0000.2.hdf5"] {
        for object in ["/PartType0", "/Header"] {
            assert!(
                seen.keys()
                    .any(|(_, v, o)| v.as_deref() == Some(part) && o.as_deref() == Some(object)),
                "{part}:{object} not requested: {seen:?}"
            );
        }
    }
}

#[test]
fn a_sixteen_file_scan_opens_each_file_with_one_request_several_in_flight() {
    let s = Sample::new(16_000, 16);
    s.server.clear_request_log();
    let slow = Arc::new(support::slow::SlowMetadata::new(s.backend()));
    let reader = GroupReaderBuilder::open_with(
        slow.clone(),
        "snap_0000.*.hdf5",
        "PartType0",
        hdfstream::OpenOptions::metadata_only(),
    )
    .unwrap()
    .with_columns(["ParticleIDs", "Masses", "Coordinates"])
    .build()
    .unwrap();
    let schema = reader.schema();
    let batches: Vec<_> = reader.map(|r| r.unwrap()).collect();
    let got = collect(&schema, &batches);
    assert_eq!(got.num_rows(), 16_000);
    for (i, name) in ["ParticleIDs", "Masses", "Coordinates"].iter().enumerate() {
        assert_column_matches(&s.files(), "PartType0", name, got.column(i), None);
    }

    let log = s.server.request_log();
    let metadata: Vec<_> = log.iter().filter(|r| r.slice_runs.is_none()).collect();
    // One listing for the glob; per file, one request for its group and nothing else
    // (no file-metadata request, no root group); /Header of the first file for the
    // schema's metadata.
    let listings = metadata
        .iter()
        .filter(|r| r.vpath.as_deref() == Some(""))
        .count();
    assert_eq!(listings, 1, "{metadata:#?}");
    for f in s.files() {
        let name = f.file_name().unwrap().to_str().unwrap();
        let of_file: Vec<_> = metadata
            .iter()
            .filter(|r| r.vpath.as_deref() == Some(name))
            .map(|r| r.object.clone())
            .collect();
        let expected_groups = of_file
            .iter()
            .filter(|o| o.as_deref() == Some("/PartType0"))
            .count();
        assert_eq!(expected_groups, 1, "{name}: {of_file:?}");
        assert!(
            of_file
                .iter()
                .all(|o| matches!(o.as_deref(), Some("/PartType0" | "/Header"))),
            "{name}: {of_file:?}"
        );
    }
    support::slow::assert_no_repeated_metadata(&log);
    assert!(metadata.len() <= 16 + 2, "{metadata:#?}");
    // The first file's /Header (the schema's metadata) was asked for among the groups, not
    // one round trip after the last of them.
    let at = |object: &str| {
        metadata
            .iter()
            .rposition(|r| r.object.as_deref() == Some(object))
    };
    let (header, last_group) = (at("/Header"), at("/PartType0"));
    assert!(
        header.is_some() && header < last_group,
        "/Header at {header:?}, the last group at {last_group:?}: {metadata:#?}"
    );
    // Several files' metadata were in flight at once, never more than the concurrency.
    let max = slow.max_in_flight();
    assert!(
        (2..=hdfstream::table::METADATA_CONCURRENCY).contains(&max),
        "max metadata requests in flight: {max}"
    );
}
