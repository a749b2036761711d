//! Region queries through the table core against independent truths: libhdf5 reading every
//! position of the same files (exact rows), and swiftsimio's cell selection
//! (`scripts/swift_mask.py`), on single- and multi-file SWIFT-like samples. The Arrow reader's
//! request log must show exactly the selected row ranges.

#[allow(dead_code)]
mod region_common;

use hdfstream::RowRanges;
use hdfstream::table::{DEFAULT_PADDING, Region, RegionQuery, TableCells, TableFile, exact_rows};
use region_common::{BOXES, Snapshot, exact_truth, inside, swift_masks};

/// The table files of `ptype` with their row counts (read with libhdf5).
fn table_files(s: &Snapshot, ptype: &str) -> Vec<TableFile> {
    s.summary
        .snapshot_files
        .iter()
        .zip(s.vpaths())
        .map(|(path, vpath)| {
            let f = hdf5_metno::File::open(path).unwrap();
            let n = f.dataset(&format!("{ptype}/Coordinates")).unwrap().shape()[0] as u64;
            TableFile { vpath, rows: n }
        })
        .collect()
}

fn query<'a>(region: &'a Region, exact: bool, position: &'a str) -> RegionQuery<'a> {
    RegionQuery {
        region,
        exact,
        padding: DEFAULT_PADDING,
        position,
        concurrency: 3,
    }
}

/// Cells rows are a superset of the exact rows, exact rows equal libhdf5's, and cell rows
/// equal swiftsimio's selection, for every box, particle type and file.
fn check_snapshot(s: &Snapshot) {
    let backend = s.backend();
    // (file, type, boxes) and our file-local cell rows, compared with swiftsimio at the end.
    let mut ours: Vec<(usize, &str, &[&str], RowRanges)> = Vec::new();
    for ptype in ["PartType0", "PartType1", "PartType4"] {
        let files = table_files(s, ptype);
        let cells = TableCells::load(backend.as_ref(), &files, &format!("/{ptype}"), 3).unwrap();
        assert!(cells.has_index(), "{ptype}: the sample has a Cells/ index");
        let position = format!("/{ptype}/Coordinates");
        for (what, boxes) in BOXES {
            let region = Region::parse(*boxes).unwrap();
            let sel = cells.select(&region, DEFAULT_PADDING).unwrap();
            assert!(sel.is_pruned());
            let exact = cells
                .region_rows(backend.as_ref(), &files, &query(&region, true, &position))
                .unwrap();
            let coarse = cells
                .region_rows(backend.as_ref(), &files, &query(&region, false, &position))
                .unwrap();
            let mut offset = 0;
            let mut want_exact = Vec::new();
            for (k, ((path, f), fs)) in s
                .summary
                .snapshot_files
                .iter()
                .zip(&files)
                .zip(&sel.files)
                .enumerate()
            {
                let truth = exact_truth(path, ptype, boxes);
                let local = fs.rows.clone().unwrap();
                assert_eq!(
                    local.intersection(&truth),
                    truth,
                    "{ptype} {what} {}: every particle in the box is in a kept cell",
                    f.vpath
                );
                ours.push((k, ptype, boxes, local));
                want_exact.extend(truth.iter().map(|r| r.start + offset..r.end + offset));
                offset += f.rows;
            }
            assert_eq!(
                exact.rows,
                RowRanges::from_ranges(want_exact),
                "{ptype} {what}: exact rows equal libhdf5's"
            );
            assert_eq!(coarse.rows, sel.global_rows(&files), "{ptype} {what}");
            assert!(exact.rows.row_count() <= coarse.rows.row_count());
            assert_eq!(coarse.position_bytes, 0, "cell rows need no position data");
        }
    }
    let queries: Vec<_> = ours
        .iter()
        .map(|(k, ptype, boxes, _)| (s.summary.snapshot_files[*k].as_path(), *ptype, *boxes))
        .collect();
    if let Some(sw) = swift_masks(&queries) {
        for ((k, ptype, boxes, local), sw) in ours.iter().zip(sw) {
            assert_eq!(
                *local, sw,
                "{ptype} {boxes:?} file {k}: the same cells' rows as swiftsimio"
            );
        }
    }
}

#[test]
fn single_file_regions_equal_libhdf5_and_swiftsimio() {
    check_snapshot(&Snapshot::new(20_000, 1));
}

#[test]
fn multi_file_regions_honour_files_and_local_offsets() {
    let s = Snapshot::new(30_000, 3);
    check_snapshot(&s);
    // Every file holds a share of the cells, and the whole box selects every row once.
    let backend = s.backend();
    let files = table_files(&s, "PartType0");
    let cells = TableCells::load(backend.as_ref(), &files, "/PartType0", 2).unwrap();
    let all = cells
        .select(&Region::parse([":,:,:"]).unwrap(), DEFAULT_PADDING)
        .unwrap();
    for (f, fs) in files.iter().zip(&all.files) {
        assert!(fs.cells_total > 0, "{}: holds cells", f.vpath);
        assert_eq!(fs.rows.as_ref().unwrap().row_count(), f.rows, "{}", f.vpath);
    }
    assert_eq!(all.cells_kept(), all.cells_total());
}

#[test]
fn empty_region_and_bad_bounds() {
    let s = Snapshot::new(5_000, 1);
    let backend = s.backend();
    let files = table_files(&s, "PartType0");
    let cells = TableCells::load(backend.as_ref(), &files, "/PartType0", 2).unwrap();
    let none = cells
        .region_rows(
            backend.as_ref(),
            &files,
            &query(&Region::new(), true, "/PartType0/Coordinates"),
        )
        .unwrap();
    assert!(none.rows.is_empty());
    // Bounds beyond one periodic copy are refused with a message naming the axis.
    let far = Region::parse(["0:1,0:1,40:41"]).unwrap();
    let err = cells.select(&far, DEFAULT_PADDING).unwrap_err().to_string();
    assert!(err.contains('z') && err.contains("must lie in"), "{err}");
    // A box bound that is not a number.
    assert!(Region::parse(["0:1,0:x,0:1"]).is_err());
}

#[test]
fn exact_rows_filters_candidates_in_pieces() {
    let s = Snapshot::new(20_000, 1);
    let backend = s.backend();
    let path = &s.summary.snapshot_files[0];
    let vpath = &s.vpaths()[0];
    let boxes = ["2:11,:,:"];
    let region = Region::parse(boxes).unwrap();
    let side = region_common::h5_box_size(path);
    // Candidates: every other block of 100 rows.
    let candidates = RowRanges::from_ranges((0..100).map(|i| i * 200..i * 200 + 100));
    let got = exact_rows(
        backend.as_ref(),
        vpath,
        "/PartType0/Coordinates",
        &candidates,
        &region,
        side,
    )
    .unwrap();
    let pos = region_common::h5_positions(path, "PartType0");
    let want = RowRanges::from_rows(
        candidates
            .iter()
            .flatten()
            .filter(|&i| inside(&boxes, pos[i as usize], side)),
    );
    assert_eq!(got, want);
    assert!(!want.is_empty());
}

#[test]
fn group_without_cells_has_no_index() {
    let s = Snapshot::new(2_000, 1);
    let backend = s.backend();
    // The halo catalogue has a Header/BoxSize but no Cells/.
    let files = [TableFile {
        vpath: s
            .summary
            .halo_file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
        rows: s.summary.halos,
    }];
    let cells = TableCells::load(backend.as_ref(), &files, "/Halos", 1).unwrap();
    assert!(!cells.has_index());
    let sel = cells
        .select(&Region::parse(["0:5,0:5,0:5"]).unwrap(), DEFAULT_PADDING)
        .unwrap();
    assert!(!sel.is_pruned());
    // Filtering the halo centres exactly is the fallback.
    let q = RegionQuery {
        region: &Region::parse(["0:5,0:5,0:5"]).unwrap(),
        exact: false,
        padding: DEFAULT_PADDING,
        position: "/Halos/Centre",
        concurrency: 1,
    };
    let got = cells.region_rows(backend.as_ref(), &files, &q).unwrap();
    let f = hdf5_metno::File::open(&s.summary.halo_file).unwrap();
    let c: Vec<f64> = f.dataset("Halos/Centre").unwrap().read_raw().unwrap();
    let side = region_common::h5_box_size(&s.summary.halo_file);
    let want = RowRanges::from_rows(
        c.chunks_exact(3)
            .enumerate()
            .filter(|(_, p)| inside(&["0:5,0:5,0:5"], [p[0], p[1], p[2]], side))
            .map(|(i, _)| i as u64),
    );
    assert_eq!(got.rows, want);
}

#[cfg(feature = "arrow")]
mod arrow_region {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::Float32Type;
    use hdfstream::arrow::GroupReaderBuilder;

    /// The Arrow reader over a region fetches exactly the touched cells' rows (request log),
    /// and with `with_region_exact` returns exactly libhdf5's rows.
    #[test]
    fn arrow_reader_region_requests_and_values() {
        let s = Snapshot::new(20_000, 2);
        let boxes = ["22:3,4:9,:"];
        let region = Region::parse(boxes).unwrap();
        let builder = GroupReaderBuilder::open_with(
            s.backend(),
            &s.glob(),
            "/PartType0",
            hdfstream::OpenOptions::default().data_size_limit(0),
        )
        .unwrap()
        .with_columns(["Masses"])
        .with_batch_size(1 << 20);
        let coarse = builder.clone().with_region(region.clone());
        let sel_rows = coarse.region_rows().unwrap().unwrap().rows;
        let reader = coarse.build().unwrap();
        let n: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(n as u64, sel_rows.row_count());
        // The Masses requests carry exactly the selected runs, file by file.
        let files = table_files(&s, "PartType0");
        let offset_of = |vpath: &str| {
            let k = files.iter().position(|f| f.vpath == vpath).unwrap();
            files[..k].iter().map(|f| f.rows).sum::<u64>()
        };
        let mut global = Vec::new();
        for r in s.slices_of("/PartType0/Masses") {
            let offset = offset_of(r.vpath.as_deref().unwrap());
            for &(a, c) in r.slice_rows.as_deref().unwrap() {
                global.push(a + offset..a + c + offset);
            }
        }
        assert!(!global.is_empty());
        assert_eq!(RowRanges::from_ranges(global), sel_rows);
        // Exact: values equal libhdf5's for the rows inside the box.
        let exact = builder
            .with_region(region)
            .with_region_exact(true)
            .build()
            .unwrap();
        let mut got = Vec::new();
        for b in exact {
            let b = b.unwrap();
            let col = b.column(0).as_primitive::<Float32Type>();
            got.extend((0..col.len()).map(|i| col.value(i)));
        }
        let mut want = Vec::new();
        for path in &s.summary.snapshot_files {
            let truth = exact_truth(path, "PartType0", &boxes);
            let f = hdf5_metno::File::open(path).unwrap();
            let m: Vec<f32> = f.dataset("PartType0/Masses").unwrap().read_raw().unwrap();
            want.extend(truth.iter().flatten().map(|i| m[i as usize]));
        }
        assert!(!want.is_empty());
        assert_eq!(got, want);
    }
}
