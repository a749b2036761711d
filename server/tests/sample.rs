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

/// A snapshot split over 3 files: per-file counts sum to the totals, IDs are unique, every
/// HaloID joins to the catalogue and NumParticles matches the members found, every file
/// indexes all cells and its own cells point at its rows, in order.
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
            // Sorted by home cell: the rows a cell points at lie within the largest drift
            // (0.2 cell) of its nominal extent, periodically, and the file's cells cover
            // all its rows in order.
            let pos: Vec<f64> = read(&f, &format!("PartType{t}/Coordinates"));
            let w = box_size / g as f64;
            let files_of: Vec<i32> = read(&f, &format!("Cells/Files/PartType{t}"));
            let counts: Vec<i64> = read(&f, &format!("Cells/Counts/PartType{t}"));
            let offsets: Vec<i64> = read(&f, &format!("Cells/OffsetsInFile/PartType{t}"));
            assert_eq!(counts.len(), g * g * g, "every file indexes all cells");
            let mut next = 0i64;
            for (c, &cf) in files_of.iter().enumerate() {
                if cf as usize != fi {
                    continue;
                }
                assert_eq!(
                    offsets[c], next,
                    "cell {c} of file {fi} follows the previous"
                );
                next += counts[c];
                let (o, n) = (offsets[c] as usize, counts[c] as usize);
                let ijk = [c / (g * g), (c / g) % g, c % g];
                for p in pos[3 * o..3 * (o + n)].chunks(3) {
                    for k in 0..3 {
                        let lo = ijk[k] as f64 * w - 0.2 * w;
                        let hi = (ijk[k] + 1) as f64 * w + 0.2 * w;
                        assert!(
                            [-box_size, 0.0, box_size]
                                .iter()
                                .any(|s| (lo..=hi).contains(&(p[k] + s))),
                            "file {fi} cell {c}: {p:?} too far from the cell"
                        );
                    }
                }
            }
            assert_eq!(next, this[t], "file {fi} type {t}: cells cover the file");
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

/// The unwrapped coordinate SWIFT's cell bounds use: `x`, or `x ± L` when the particle's
/// home cell (nominal extent `[lo, hi)` along the axis) lies across the periodic boundary.
fn unwrap_near(x: f64, lo: f64, hi: f64, box_size: f64) -> f64 {
    let drift = 0.2 * (hi - lo);
    [x, x - box_size, x + box_size]
        .into_iter()
        .find(|u| (lo - drift..=hi + drift).contains(u))
        .unwrap_or(f64::NAN)
}

fn cell_ext(c: usize, g: usize, w: f64) -> [(f64, f64); 3] {
    [c / (g * g), (c / g) % g, c % g].map(|i| (i as f64 * w, (i + 1) as f64 * w))
}

/// `Cells/` as SWIFT writes it, checked against libhdf5 reading the particles:
/// Meta-data attribute types, Centres, Min/MaxPositions equal to the bounding box of each
/// cell's (unwrapped) particles, `+/-DBL_MAX` for empty cells, a void of empty cells for
/// every type, and particles drifted beyond their cell's nominal extent.
#[test]
fn cells_bound_their_particles() {
    use hdf5_metno::types::{FloatSize, IntSize, TypeDescriptor};
    let dir = tempfile::tempdir().unwrap();
    let summary = write_sample(
        dir.path(),
        &SampleOptions {
            particles: 20_000,
            files: 1,
            seed: 9,
        },
    )
    .unwrap();
    let f = File::open(&summary.snapshot_files[0]).unwrap();
    let meta = f.group("Cells/Meta-data").unwrap();
    let dtype = |name: &str, len: usize| {
        let a = meta.attr(name).unwrap();
        assert_eq!(a.shape(), vec![len], "{name}");
        a.dtype().unwrap().to_descriptor().unwrap()
    };
    assert_eq!(dtype("nr_cells", 1), TypeDescriptor::Integer(IntSize::U4));
    assert_eq!(dtype("dimension", 3), TypeDescriptor::Integer(IntSize::U4));
    assert_eq!(dtype("size", 3), TypeDescriptor::Float(FloatSize::U8));
    let g = attr::<i32>(&f, "Cells/Meta-data", "dimension")[0] as usize;
    let ncells = attr::<i32>(&f, "Cells/Meta-data", "nr_cells")[0] as usize;
    assert_eq!(ncells, g * g * g);
    let w = attr::<f64>(&f, "Cells/Meta-data", "size")[0];
    let box_size = attr::<f64>(&f, "Header", "BoxSize")[0];
    assert_eq!(w * g as f64, box_size);
    let centres: Vec<f64> = read(&f, "Cells/Centres");
    for c in 0..ncells {
        let ext = cell_ext(c, g, w);
        for k in 0..3 {
            assert_eq!(
                centres[3 * c + k],
                (ext[k].0 + ext[k].1) / 2.0,
                "centre {c}"
            );
        }
    }
    let mut empty_for_all = vec![true; ncells];
    for t in [0usize, 1, 4] {
        let pos: Vec<f64> = read(&f, &format!("PartType{t}/Coordinates"));
        assert!(pos.iter().all(|&x| (0.0..box_size).contains(&x)), "wrapped");
        let counts: Vec<i64> = read(&f, &format!("Cells/Counts/PartType{t}"));
        let offsets: Vec<i64> = read(&f, &format!("Cells/OffsetsInFile/PartType{t}"));
        let min: Vec<f64> = read(&f, &format!("Cells/MinPositions/PartType{t}"));
        let max: Vec<f64> = read(&f, &format!("Cells/MaxPositions/PartType{t}"));
        assert_eq!(counts.iter().sum::<i64>() as usize, pos.len() / 3);
        let (mut outside, mut below_zero, mut above_box) = (0usize, 0usize, 0usize);
        for c in 0..ncells {
            let (o, n) = (offsets[c] as usize, counts[c] as usize);
            if n == 0 {
                assert_eq!(&min[3 * c..3 * c + 3], &[f64::MAX; 3], "empty cell {c} min");
                assert_eq!(
                    &max[3 * c..3 * c + 3],
                    &[-f64::MAX; 3],
                    "empty cell {c} max"
                );
                continue;
            }
            empty_for_all[c] = false;
            let ext = cell_ext(c, g, w);
            for k in 0..3 {
                let u: Vec<f64> = (o..o + n)
                    .map(|r| unwrap_near(pos[3 * r + k], ext[k].0, ext[k].1, box_size))
                    .collect();
                assert!(
                    u.iter().all(|x| x.is_finite()),
                    "cell {c}: particle far away"
                );
                let lo = u.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = u.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                // The bounding box of the cell's particles, exactly.
                assert_eq!(min[3 * c + k], lo, "type {t} cell {c} axis {k} min");
                assert_eq!(max[3 * c + k], hi, "type {t} cell {c} axis {k} max");
                outside += u.iter().filter(|&&x| x < ext[k].0 || x >= ext[k].1).count();
                below_zero += usize::from(lo < 0.0);
                above_box += usize::from(hi > box_size);
            }
        }
        assert!(
            outside > 100,
            "type {t}: only {outside} drifted out of their cell"
        );
        assert!(
            below_zero > 0 && above_box > 0,
            "type {t}: no bound across the box faces"
        );
    }
    // The void: cells 2..4 along every axis are empty for every type.
    let void: Vec<usize> = (0..ncells)
        .filter(|&c| {
            [c / (g * g), (c / g) % g, c % g]
                .iter()
                .all(|i| (2..4).contains(i))
        })
        .collect();
    assert_eq!(void.len(), 8);
    assert!(
        void.iter().all(|&c| empty_for_all[c]),
        "void cells not empty"
    );
}

/// The filter pipelines are SWIFT's: `Cells/` arrays chunked by 1024 rows with Fletcher-32,
/// shuffle and gzip 4; compressed particle arrays chunked with shuffle, gzip 4 and
/// Fletcher-32; `Masses` with Fletcher-32 only; the rest contiguous.
#[test]
fn datasets_use_swift_filters() {
    use hdf5_metno::dataset::Layout;
    use hdf5_metno::filters::Filter;
    let dir = tempfile::tempdir().unwrap();
    let summary = write_sample(
        dir.path(),
        &SampleOptions {
            particles: 40_000,
            files: 1,
            seed: 3,
        },
    )
    .unwrap();
    let f = File::open(&summary.snapshot_files[0]).unwrap();
    let filters = |name: &str| f.dataset(name).unwrap().filters();
    let gzip = vec![Filter::Shuffle, Filter::Deflate(4), Filter::Fletcher32];
    let cells = vec![Filter::Fletcher32, Filter::Shuffle, Filter::Deflate(4)];
    for name in [
        "PartType1/Coordinates",
        "PartType0/HaloID",
        "PartType0/Densities",
        "PartType0/Temperatures",
        "PartType4/BirthScaleFactors",
    ] {
        assert_eq!(filters(name), gzip, "{name}");
        assert_eq!(f.dataset(name).unwrap().layout(), Layout::Chunked, "{name}");
    }
    for t in [0, 1, 4] {
        assert_eq!(
            filters(&format!("PartType{t}/Masses")),
            vec![Filter::Fletcher32]
        );
        let v = f.dataset(&format!("PartType{t}/Velocities")).unwrap();
        assert_eq!(v.layout(), Layout::Contiguous);
        assert!(v.filters().is_empty());
        for group in [
            "Counts",
            "OffsetsInFile",
            "Files",
            "MinPositions",
            "MaxPositions",
        ] {
            let name = format!("Cells/{group}/PartType{t}");
            assert_eq!(filters(&name), cells, "{name}");
            assert_eq!(f.dataset(&name).unwrap().chunk().unwrap()[0], 512, "{name}");
        }
    }
    assert_eq!(filters("Cells/Centres"), cells);
    assert_eq!(
        f.dataset("Cells/Centres").unwrap().chunk(),
        Some(vec![512, 3])
    );
    // Checksums verified on read: the values come back intact through all filters.
    let m: Vec<f32> = read(&f, "PartType0/Masses");
    assert_eq!(m.len(), 40_000);
    assert!(m.iter().all(|&x| x > 0.0017 && x < 0.0019));
}

/// The virtual file of a split snapshot: NumFilesPerSnapshot 1, virtual datasets whose rows
/// are the files' rows in file order (read back through libhdf5), `Cells/` with Files 0
/// and offsets in virtual rows that point at the same particles.
#[test]
fn virtual_file_maps_the_split_files() {
    use hdfstream_server::sample::write_virtual_snapshot;
    let dir = tempfile::tempdir().unwrap();
    let opts = SampleOptions {
        particles: 6000,
        files: 3,
        seed: 4,
    };
    let summary = write_sample(dir.path(), &opts).unwrap();
    let vpath = write_virtual_snapshot(&summary).unwrap();
    assert!(vpath.ends_with("snap_0000.hdf5"));
    let v = File::open(&vpath).unwrap();
    assert_eq!(attr::<i32>(&v, "Header", "NumFilesPerSnapshot"), vec![1]);
    assert_eq!(attr::<i32>(&v, "Header", "Virtual"), vec![1]);
    let parts: Vec<File> = summary
        .snapshot_files
        .iter()
        .map(|p| File::open(p).unwrap())
        .collect();
    for t in [0usize, 1, 4] {
        for name in ["Coordinates", "ParticleIDs", "Masses"] {
            let path = format!("PartType{t}/{name}");
            let ds = v.dataset(&path).unwrap();
            assert_eq!(ds.layout(), hdf5_metno::dataset::Layout::Virtual, "{path}");
            if name == "ParticleIDs" {
                let all: Vec<u64> = parts.iter().flat_map(|p| read::<u64>(p, &path)).collect();
                assert_eq!(read::<u64>(&v, &path), all, "{path}");
            } else if name == "Masses" {
                let all: Vec<f32> = parts.iter().flat_map(|p| read::<f32>(p, &path)).collect();
                assert_eq!(read::<f32>(&v, &path), all, "{path}");
            } else {
                let all: Vec<f64> = parts.iter().flat_map(|p| read::<f64>(p, &path)).collect();
                assert_eq!(read::<f64>(&v, &path), all, "{path}");
            }
        }
        let files: Vec<i32> = read(&v, &format!("Cells/Files/PartType{t}"));
        assert!(files.iter().all(|&x| x == 0));
        let counts: Vec<i64> = read(&v, &format!("Cells/Counts/PartType{t}"));
        let offsets: Vec<i64> = read(&v, &format!("Cells/OffsetsInFile/PartType{t}"));
        let ids: Vec<u64> = read(&v, &format!("PartType{t}/ParticleIDs"));
        let local_files: Vec<i32> = read(&parts[0], &format!("Cells/Files/PartType{t}"));
        let local_offsets: Vec<i64> = read(&parts[0], &format!("Cells/OffsetsInFile/PartType{t}"));
        assert_eq!(
            counts,
            read::<i64>(&parts[0], &format!("Cells/Counts/PartType{t}"))
        );
        for c in 0..counts.len() {
            let (o, n) = (offsets[c] as usize, counts[c] as usize);
            let part = &parts[local_files[c] as usize];
            let lo = local_offsets[c] as usize;
            let want = read::<u64>(part, &format!("PartType{t}/ParticleIDs"));
            assert_eq!(&ids[o..o + n], &want[lo..lo + n], "type {t} cell {c}");
        }
    }
    assert!(v.link_exists("GasParticles"));
    assert!(!v.link_exists("Extra"));
}
