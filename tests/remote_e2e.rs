//! End to end: the client reads every dataset of a generated sample snapshot through the
//! embedded server, and each value is compared with hdf5-metno (libhdf5) reading the same file.

#[allow(dead_code)] // each test crate uses a subset
mod support;

use std::sync::Arc;

use hdf5_metno::H5Type;
use hdf5_metno::types::{FixedAscii, FloatSize, IntSize, TypeDescriptor, VarLenUnicode};
use hdfstream::remote::Backend;
use hdfstream::{Dataset, Element, HasAttrs, Link, Object, OpenOptions, Selection, open_with, sel};
use hdfstream_protocol::{ArrayData, TypedBuffer};
use hdfstream_server::http::ServerHandle;
use hdfstream_server::sample::{SampleOptions, write_sample};

/// Every dataset path below `group` according to libhdf5 (soft links skipped: they alias
/// groups that are visited under their real name).
fn h5_datasets(group: &hdf5_metno::Group, prefix: &str, out: &mut Vec<String>) {
    let mut hard = Vec::new();
    group
        .iter_visit_default(|name, info| {
            if info.link_type == hdf5_metno::LinkType::Hard {
                hard.push(name.to_string());
            }
            Ok(())
        })
        .unwrap();
    for name in hard {
        let path = format!("{prefix}/{name}");
        if let Ok(g) = group.group(&name) {
            h5_datasets(&g, &path, out);
        } else if group.dataset(&name).is_ok() {
            out.push(path);
        }
    }
}

/// Compares whole reads, slices, multi-slices and fancy reads with libhdf5's values.
fn check<T: Element + H5Type>(remote: &Dataset, local: &hdf5_metno::Dataset) -> usize {
    let want: Vec<T> = local.read_raw::<T>().unwrap();
    let shape: Vec<usize> = local.shape();
    let got = remote.read::<T>().unwrap();
    assert_eq!(got.shape(), shape.as_slice(), "{}: shape", remote.path());
    assert_eq!(
        got.as_slice().unwrap(),
        want.as_slice(),
        "{}: values",
        remote.path()
    );
    let Some(&len) = shape.first() else { return 1 };
    if len < 4 {
        return 1;
    }
    let row: usize = shape[1..].iter().product();
    let rows = |r: &[usize]| -> Vec<T> {
        r.iter()
            .flat_map(|&i| want[i * row..(i + 1) * row].to_vec())
            .collect()
    };
    let n = len as i64;
    // Simple slice with negative stop, and a dropped first dimension.
    #[allow(clippy::reversed_empty_ranges)] // numpy-style negative stop, not an empty range
    let s = remote.read_slice::<T>(&sel![1..-1]).unwrap();
    assert_eq!(
        s.as_slice().unwrap(),
        rows(&(1..len - 1).collect::<Vec<_>>()).as_slice()
    );
    let last = remote.read_slice::<T>(&sel![-1]).unwrap();
    assert_eq!(last.shape(), &shape[1..]);
    assert_eq!(last.as_slice().unwrap(), rows(&[len - 1]).as_slice());
    // Multi-slice into a caller buffer.
    let sels = [sel![0..1], sel![2..n]];
    let mut dest = vec![T::zeroed(); (len - 1) * row];
    remote.request_slices_into(&sels, &mut dest).unwrap();
    let mut idx = vec![0];
    idx.extend(2..len);
    assert_eq!(dest, rows(&idx));
    // Fancy: unsorted with duplicates and negatives; and a mask.
    let fancy = [n - 1, 0, 1, 1, -2];
    let f = remote.read_fancy::<T>(&fancy, &Selection::all()).unwrap();
    assert_eq!(
        f.as_slice().unwrap(),
        rows(&[len - 1, 0, 1, 1, len - 2]).as_slice()
    );
    let mask: Vec<bool> = (0..len).map(|i| i % 3 == 1).collect();
    let f = remote.read_fancy::<T>(&mask, &Selection::all()).unwrap();
    assert_eq!(
        f.as_slice().unwrap(),
        rows(&(0..len).filter(|i| i % 3 == 1).collect::<Vec<_>>()).as_slice()
    );
    // Column selection on 2-D data.
    if shape.len() == 2 && shape[1] > 1 {
        let c = remote.read_slice::<T>(&sel![.., 1]).unwrap();
        let col: Vec<T> = (0..len).map(|i| want[i * row + 1]).collect();
        assert_eq!(c.as_slice().unwrap(), col.as_slice());
    }
    1
}

fn check_strings(remote: &Dataset, local: &hdf5_metno::Dataset, desc: &TypeDescriptor) -> usize {
    let want: Vec<String> = match desc {
        TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii => local
            .read_raw::<VarLenUnicode>()
            .unwrap()
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        _ => local
            .read_raw::<FixedAscii<1024>>()
            .unwrap()
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
    };
    assert_eq!(remote.read_strings().unwrap(), want, "{}", remote.path());
    1
}

fn run(options: OpenOptions) {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_sample(
        dir.path(),
        &SampleOptions {
            particles: 3000,
            files: 1,
            seed: 7,
        },
    )
    .unwrap();
    let server = ServerHandle::start(dir.path()).unwrap();
    let backend: Arc<dyn Backend> = Arc::new(support::connect(server.base_url()));
    let root = open_with(backend, "/", options)
        .unwrap()
        .into_directory()
        .unwrap();
    let snap = &summary.snapshot_files[0];
    let rel = snap
        .strip_prefix(dir.path())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let file = root.file(&rel).unwrap();
    assert_eq!(file.size(), std::fs::metadata(snap).unwrap().len());

    let h5 = hdf5_metno::File::open(snap).unwrap();
    let mut paths = Vec::new();
    h5_datasets(&h5, "", &mut paths);
    let mut checked = 0;
    for path in &paths {
        let local = h5.dataset(path).unwrap();
        let remote = file.dataset(path).unwrap();
        let desc = local.dtype().unwrap().to_descriptor().unwrap();
        checked += match &desc {
            TypeDescriptor::Integer(IntSize::U1) => check::<i8>(&remote, &local),
            TypeDescriptor::Integer(IntSize::U2) => check::<i16>(&remote, &local),
            TypeDescriptor::Integer(IntSize::U4) => check::<i32>(&remote, &local),
            TypeDescriptor::Integer(IntSize::U8) => check::<i64>(&remote, &local),
            TypeDescriptor::Unsigned(IntSize::U1) => check::<u8>(&remote, &local),
            TypeDescriptor::Unsigned(IntSize::U2) => check::<u16>(&remote, &local),
            TypeDescriptor::Unsigned(IntSize::U4) => check::<u32>(&remote, &local),
            TypeDescriptor::Unsigned(IntSize::U8) => check::<u64>(&remote, &local),
            TypeDescriptor::Float(FloatSize::U4) => check::<f32>(&remote, &local),
            TypeDescriptor::Float(FloatSize::U8) => check::<f64>(&remote, &local),
            TypeDescriptor::FixedAscii(_)
            | TypeDescriptor::FixedUnicode(_)
            | TypeDescriptor::VarLenUnicode
            | TypeDescriptor::VarLenAscii => check_strings(&remote, &local, &desc),
            TypeDescriptor::Boolean => {
                // h5py-style enum booleans arrive as their base integer.
                let want: Vec<i8> = local
                    .read_raw::<bool>()
                    .unwrap()
                    .into_iter()
                    .map(i8::from)
                    .collect();
                assert_eq!(
                    remote.read::<i8>().unwrap().as_slice().unwrap(),
                    want.as_slice(),
                    "{path}"
                );
                1
            }
            TypeDescriptor::FixedArray(base, 3)
                if **base == TypeDescriptor::Float(FloatSize::U4) =>
            {
                let want: Vec<f32> = local
                    .read_raw::<[f32; 3]>()
                    .unwrap()
                    .into_iter()
                    .flatten()
                    .collect();
                let ArrayData::Nd(nd) = remote.read_raw(&Selection::all()).unwrap() else {
                    panic!("{path}: vlen")
                };
                let TypedBuffer::Bytes {
                    item_size: 12,
                    data,
                } = nd.data
                else {
                    panic!("{path}: {:?}", nd.dtype)
                };
                let got: Vec<f32> = data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                assert_eq!(got, want, "{path}");
                1
            }
            other => {
                eprintln!("not compared: {path} ({other})");
                0
            }
        };
    }
    assert!(checked >= 10, "only {checked} datasets compared");
    eprintln!("compared {checked} of {} datasets", paths.len());

    // Soft links: reported as such, and followed when used in a path.
    assert_eq!(
        file.get_link("DMParticles").unwrap(),
        Link::Soft("/PartType1".to_string())
    );
    assert_eq!(file.get_link("PartType1").unwrap(), Link::Hard);
    let via_link = file.dataset("DMParticles/Coordinates").unwrap();
    assert!(Arc::ptr_eq(
        &via_link,
        &file.dataset("/PartType1/Coordinates").unwrap()
    ));
    assert!(file.contains("DMParticles/Coordinates").unwrap());
    // visit reaches every dataset libhdf5 lists (soft links add aliases).
    let mut visited = Vec::new();
    file.root()
        .unwrap()
        .visit_items(|name, o| {
            if let Object::Dataset(_) = o {
                visited.push(format!("/{name}"));
            }
        })
        .unwrap();
    for p in &paths {
        assert!(visited.contains(p), "visit missed {p}");
    }
}

#[test]
fn every_dataset_matches_libhdf5_server_reads() {
    run(OpenOptions::default().data_size_limit(0));
}

#[test]
fn every_dataset_matches_libhdf5_inline_reads() {
    run(OpenOptions::default().data_size_limit(1 << 30).max_depth(1));
}

#[test]
fn a_group_opened_in_one_request_reads_like_libhdf5_and_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_sample(
        dir.path(),
        &SampleOptions {
            particles: 2000,
            files: 1,
            seed: 7,
        },
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not HDF5").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let snap = &summary.snapshot_files[0];
    let name = snap.file_name().unwrap().to_str().unwrap().to_string();
    let server = ServerHandle::start(dir.path()).unwrap();
    let backend: Arc<dyn Backend> = Arc::new(support::connect(server.base_url()));
    let opts = OpenOptions::default().data_size_limit(0);
    server.clear_request_log();

    let g = hdfstream::remote::open_group_with(backend.clone(), &name, "PartType0/", opts).unwrap();
    assert_eq!(g.path(), "/PartType0");
    let h5 = hdf5_metno::File::open(snap).unwrap();
    let local = h5.dataset("PartType0/Masses").unwrap();
    assert_eq!(
        g.dataset("Masses")
            .unwrap()
            .read::<f32>()
            .unwrap()
            .as_slice()
            .unwrap(),
        local.read_raw::<f32>().unwrap().as_slice()
    );
    let log = server.request_log();
    let objects: Vec<_> = log
        .iter()
        .filter(|r| r.slice_runs.is_none())
        .map(|r| r.object.clone())
        .collect();
    assert_eq!(
        objects,
        [Some("/PartType0".to_string())],
        "one request opens the group"
    );
    // The parent and absolute paths still work (they load the root then).
    assert_eq!(g.parent().unwrap().path(), "/");
    let header = g.group("/Header").unwrap();
    assert_eq!(
        header
            .attrs()
            .get("BoxSize")
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        h5.group("Header")
            .unwrap()
            .attr("BoxSize")
            .unwrap()
            .read_raw::<f64>()
            .unwrap()
    );

    let err = |file: &str, group: &str| {
        hdfstream::remote::open_group_with(backend.clone(), file, group, opts)
            .unwrap_err()
            .to_string()
    };
    let e = err("missing.hdf5", "PartType0");
    assert!(e.contains("not found") && e.contains("missing.hdf5"), "{e}");
    let e = err(&name, "PartType9");
    assert!(e.contains("not found") && e.contains("PartType9"), "{e}");
    let e = err(&name, "PartType0/Masses");
    assert!(e.contains("is a dataset, not a group"), "{e}");
    let e = err("notes.txt", "PartType0");
    assert!(e.contains("application/x-hdf5"), "{e}");
    let e = err("sub", "PartType0");
    assert!(e.contains("is a directory"), "{e}");
}
