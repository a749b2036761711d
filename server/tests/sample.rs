//! The sample generator: structure, consistency across split files, joins, determinism.

use std::collections::HashSet;
use std::path::Path;

use hdf5_metno::File;
use hdfstream_server::sample::{SampleOptions, write_sample};

fn read<T: hdf5_metno::H5Type>(f: &File, name: &str) -> Vec<T> {
    f.dataset(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .read_raw()
        .expect(name)
}

fn attr<T: hdf5_metno::H5Type>(f: &File, obj: &str, name: &str) -> Vec<T> {
    f.group(obj)
        .unwrap()
        .attr(name)
        .unwrap()
        .read_raw()
        .expect(name)
}

fn cell_of(p: &[f64], box_size: f64, g: usize) -> usize {
    let c: Vec<usize> = p
        .iter()
        .map(|x| ((x / box_size * g as f64) as usize).min(g - 1))
        .collect();
    (c[0] * g + c[1]) * g + c[2]
}

/// A snapshot split over 3 files: per-file counts sum to the totals, IDs are unique, every
/// HaloID joins to the catalogue and NumParticles matches the members found, particles are
/// sorted by cell and the cell index points at them.
#[test]
fn split_snapshot_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SampleOptions {
        particles: 5000,
        files: 3,
        seed: 11,
    };
    let summary = write_sample(dir.path(), &opts).expect("written");
    assert_eq!(summary.snapshot_files.len(), 3);
    assert_eq!(summary.num_part_total, [5000, 5000, 0, 0, 500, 0, 0]);
    assert!(summary.snapshot_files[1].ends_with("snap_0000.1.hdf5"));
    let halos = File::open(&summary.halo_file).unwrap();
    let halo_ids: Vec<i64> = read(&halos, "Halos/ID");
    let halo_np: Vec<i64> = read(&halos, "Halos/NumParticles");
    assert_eq!(halo_ids.len() as u64, summary.halos);
    let mut members = vec![0i64; halo_ids.len()];
    let mut sums = [0u64; 7];
    let mut ids = HashSet::new();
    for (fi, path) in summary.snapshot_files.iter().enumerate() {
        let f = File::open(path).unwrap();
        let this: Vec<i64> = attr(&f, "Header", "NumPart_ThisFile");
        let total: Vec<u32> = attr(&f, "Header", "NumPart_Total");
        assert_eq!(total, vec![5000, 5000, 0, 0, 500, 0, 0]);
        assert_eq!(attr::<i32>(&f, "Header", "NumFilesPerSnapshot"), vec![3]);
        let g = attr::<i32>(&f, "Cells/Meta-data", "dimension")[0] as usize;
        let box_size = attr::<f64>(&f, "Header", "BoxSize")[0];
        for t in [0usize, 1, 4] {
            sums[t] += this[t] as u64;
            let pid: Vec<u64> = read(&f, &format!("PartType{t}/ParticleIDs"));
            assert_eq!(pid.len() as i64, this[t]);
            for id in pid {
                assert!(ids.insert(id), "duplicate particle id {id}");
            }
            for h in read::<i64>(&f, &format!("PartType{t}/HaloID")) {
                if h > 0 {
                    let pos = halo_ids
                        .iter()
                        .position(|&x| x == h)
                        .expect("HaloID joins to Halos/ID");
                    members[pos] += 1;
                } else {
                    assert_eq!(h, -1);
                }
            }
            // Sorted by cell, and the cell index agrees with the coordinates.
            let pos: Vec<f64> = read(&f, &format!("PartType{t}/Coordinates"));
            let cells: Vec<usize> = pos.chunks(3).map(|p| cell_of(p, box_size, g)).collect();
            assert!(
                cells.windows(2).all(|w| w[0] <= w[1]),
                "file {fi} type {t} not sorted by cell"
            );
            let files_of: Vec<i32> = read(&f, &format!("Cells/Files/PartType{t}"));
            let counts: Vec<i64> = read(&f, &format!("Cells/Counts/PartType{t}"));
            let offsets: Vec<i64> = read(&f, &format!("Cells/OffsetsInFile/PartType{t}"));
            for (c, &cf) in files_of.iter().enumerate() {
                if cf as usize == fi {
                    let (o, n) = (offsets[c] as usize, counts[c] as usize);
                    assert!(
                        cells[o..o + n].iter().all(|&x| x == c),
                        "cell {c} in file {fi}"
                    );
                }
            }
        }
        let sf: Vec<f32> = read(&f, "PartType0/StarFormationRates");
        let flag: Vec<bool> = read(&f, "PartType0/IsStarForming");
        assert!(sf.iter().zip(&flag).all(|(r, b)| (*r > 0.0) == *b));
        let frac: Vec<f32> = read(&f, "PartType0/ElementMassFractions");
        assert!(
            frac.chunks(9)
                .all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-5)
        );
        assert!(f.link_exists("GasParticles"));
        assert_eq!(
            read::<u64>(&f, "StarsParticles/ParticleIDs"),
            read::<u64>(&f, "PartType4/ParticleIDs")
        );
    }
    assert_eq!(sums, summary.num_part_total);
    assert_eq!(
        members, halo_np,
        "NumParticles = members found in the snapshot"
    );
    assert!(
        members.iter().sum::<i64>() > 4000,
        "a good share of particles live in halos"
    );
}

fn coords(dir: &Path, name: &str) -> Vec<f64> {
    read(
        &File::open(dir.join(name)).unwrap(),
        "PartType1/Coordinates",
    )
}

/// Same seed → same values (whatever the split); another seed → different values.
#[test]
fn deterministic_for_a_seed() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    write_sample(
        a.path(),
        &SampleOptions {
            particles: 2000,
            files: 1,
            seed: 5,
        },
    )
    .unwrap();
    write_sample(
        b.path(),
        &SampleOptions {
            particles: 2000,
            files: 1,
            seed: 5,
        },
    )
    .unwrap();
    write_sample(
        c.path(),
        &SampleOptions {
            particles: 2000,
            files: 1,
            seed: 6,
        },
    )
    .unwrap();
    let x = coords(a.path(), "snap_0000.hdf5");
    assert_eq!(x.len(), 6000);
    assert_eq!(x, coords(b.path(), "snap_0000.hdf5"));
    assert_ne!(x, coords(c.path(), "snap_0000.hdf5"));
    assert!(x.iter().all(|&v| (0.0..25.0).contains(&v)));
}
