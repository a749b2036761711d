//! The load tool's checks, checked: every request kind passes against a correct server, and
//! data changed on disk after the truth was read is reported as wrong values, by the kinds
//! that read it and by no other.

use hdfstream_reliability::Rng;
use hdfstream_server::ServerHandle;
use hdfstream_server::sample::{SampleOptions, write_sample};

use crate::ops::{Client, KINDS};
use crate::scan::ScanTruth;
use crate::truth::{self, gather};

fn sample() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let opts = SampleOptions {
        particles: 3000,
        files: 2,
        seed: 7,
    };
    write_sample(dir.path(), &opts).expect("sample written");
    dir
}

/// Runs `n` requests of each kind; returns the error messages per kind.
fn run_kinds(base: &str, truth: &truth::Truth, n: usize) -> Vec<Vec<String>> {
    let table = ScanTruth::new(truth);
    assert!(table.is_some(), "the sample has a table to scan");
    let conn = crate::connect(base, 0).expect("connection");
    let mut client = Client::new(conn, truth, table.as_ref(), Rng::new(3));
    KINDS
        .iter()
        .enumerate()
        .map(|(k, _)| (0..n).filter_map(|_| client.run(k).err()).collect())
        .collect()
}

#[test]
fn gather_picks_the_elements_of_runs_and_ranges() {
    let shape = [7u64, 4, 3];
    let data: Vec<u8> = (0..7 * 4 * 3).map(|i| i as u8).collect();
    let runs = [(1, 2), (5, 1), (0, 1)];
    let rest = [(1, 2), (2, 1)];
    let mut want = Vec::new();
    for &(s, c) in &runs {
        for i in s..s + c {
            for j in 1..3 {
                want.push((i * 12 + j * 3 + 2) as u8);
            }
        }
    }
    assert_eq!(gather(&data, 1, &shape, &runs, &rest), want);
    // Whole rows of a 1-D array, with 2-byte elements.
    let data: Vec<u8> = (0..20).collect();
    assert_eq!(gather(&data, 2, &[10], &[(3, 2)], &[]), vec![6, 7, 8, 9]);
}

#[test]
fn every_kind_passes_against_the_served_sample() {
    let dir = sample();
    let truth = truth::read(dir.path()).expect("truth");
    assert_eq!(truth.files.len(), 3, "two snapshot files and the halos");
    let server = ServerHandle::start(dir.path()).expect("server");
    let errors = run_kinds(server.base_url(), &truth, 25);
    for (k, e) in errors.iter().enumerate() {
        assert!(e.is_empty(), "{}: {e:?}", KINDS[k]);
    }
}

#[test]
fn data_changed_on_disk_is_a_wrong_value() {
    let dir = sample();
    let truth = truth::read(dir.path()).expect("truth");
    // After the truth was read: double the masses of the first file's gas.
    let path = dir.path().join("snap_0000.0.hdf5");
    {
        let f = hdf5_metno::File::open_rw(&path).expect("open for writing");
        let ds = f.dataset("PartType0/Masses").expect("masses");
        let doubled: Vec<f32> = ds
            .read_raw::<f32>()
            .expect("masses read")
            .iter()
            .map(|m| m * 2.0)
            .collect();
        ds.write_raw(&doubled).expect("masses written");
    }
    let server = ServerHandle::start(dir.path()).expect("server");
    let errors = run_kinds(server.base_url(), &truth, 300);
    let kind = |name: &str| &errors[KINDS.iter().position(|k| *k == name).expect("a kind")];
    // The file's size or time changed: listings and its downloads are wrong.
    assert!(!kind("listing").is_empty(), "listings see the change");
    for e in kind("download") {
        assert!(e.contains("wrong value: download snap_0000.0.hdf5"), "{e}");
    }
    // Reads fail where they touch the changed dataset, and nowhere else.
    for name in ["slice", "multi_slice", "fancy", "dataset", "group", "scan"] {
        for e in kind(name) {
            assert!(e.contains("wrong value"), "{name}: {e}");
            assert!(e.contains("Masses"), "{name}: {e}");
        }
    }
    for name in ["slice", "multi_slice", "fancy", "scan"] {
        assert!(!kind(name).is_empty(), "{name} reads the changed masses");
    }
    assert!(kind("attributes").is_empty(), "{:?}", kind("attributes"));
}
