//! The HDF5 layer against libhdf5 read directly (through hdf5-metno) on generated sample files.

mod hdf5_util;

use hdf5_metno::File;
use hdf5_util::*;
use hdfstream_protocol::SliceSpec;
use hdfstream_server::hdf5::Hdf5Files;
use rmpv::Value;

fn selection(req: &hdfstream_protocol::ObjectRequest) -> &SliceSpec {
    req.slice.as_ref().expect("slice")
}

/// Every dataset of the sample: inline data, whole slice, one inner slice and a multi-slice
/// equal what libhdf5 reads.
#[test]
fn every_dataset_matches_libhdf5() {
    let path = snap();
    let files = Hdf5Files::new(4);
    let h5 = File::open(&path).expect("open");
    let names = datasets(&h5);
    assert!(names.len() > 40, "only {} datasets", names.len());
    for name in &names {
        let ds = h5.dataset(name).expect("dataset");
        let shape: Vec<u64> = ds.shape().iter().map(|&d| d as u64).collect();
        let all = truth(&ds);
        // Object map with everything inlined.
        let v = ask(&files, &path, &object(name, 0, u64::MAX)).expect(name);
        assert_eq!(
            get(&v, "hdf5_object"),
            Some(&Value::from("dataset")),
            "{name}"
        );
        let got: Vec<u64> = get(&v, "shape")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(got, shape, "{name}");
        let inline = decode_array(get(&v, "data").expect("inline data"));
        assert_eq!(inline.shape, shape, "{name}");
        assert_eq!(inline.elems, all, "{name} inline data");
        // Without inlining: 5 keys.
        let v = ask(&files, &path, &object(name, 0, 0)).expect(name);
        let expect_keys = if all.is_empty() { 6 } else { 5 };
        assert_eq!(keys(&v).len(), expect_keys, "{name}");
        // Slices.
        let mut reqs = Vec::new();
        if let Some((&n0, rest)) = shape.split_first() {
            let full: Vec<(u64, u64)> = rest.iter().map(|&d| (0, d)).collect();
            reqs.push(slice(name, &[(0, n0)], &full));
            if n0 >= 10 {
                let inner: Vec<(u64, u64)> = rest.iter().map(|&d| (d / 3, d - d / 3)).collect();
                reqs.push(slice(name, &[(n0 / 4, n0 / 3)], &inner));
                reqs.push(slice(name, &[(1, 2), (3, 0), (5, 1), (n0 - 3, 3)], &full));
            }
        } else {
            reqs.push(slice(name, &[], &[]));
        }
        for req in reqs {
            let sel = selection(&req);
            let got = decode_array(&ask(&files, &path, &req).expect(name));
            assert_eq!(got.elems, select(&all, &shape, sel), "{name} {sel:?}");
            let rows: u64 = sel.runs.iter().map(|r| r.count).sum();
            let mut want_shape = if shape.is_empty() { vec![] } else { vec![rows] };
            want_shape.extend(sel.rest.iter().map(|d| d.count));
            assert_eq!(got.shape, want_shape, "{name}");
        }
    }
}

/// Attributes of every object equal libhdf5's values, in ascending name order.
#[test]
fn attributes_match_libhdf5() {
    let path = snap();
    let files = Hdf5Files::default();
    let h5 = File::open(&path).expect("open");
    let mut objects = vec![
        "/".to_owned(),
        "/Header".into(),
        "/Cosmology".into(),
        "/Units".into(),
        "/Code".into(),
        "/Extra".into(),
        "/Cells/Meta-data".into(),
    ];
    objects.extend(datasets(&h5));
    let mut checked = 0;
    for name in &objects {
        let v = ask(&files, &path, &object(name, 0, 0)).expect(name);
        let attrs = get(&v, "attributes").expect("attributes");
        let got_names = keys(attrs);
        let loc: hdf5_metno::Location = if let Ok(g) = h5.group(name) {
            (*g).clone()
        } else {
            (**h5.dataset(name).unwrap()).clone()
        };
        let mut want_names = loc.attr_names().expect("attr names");
        want_names.sort();
        assert_eq!(got_names, want_names, "{name}");
        for a in &want_names {
            let attr = loc.attr(a).expect("attr");
            let got = decode_array(get(attrs, a).unwrap());
            let shape: Vec<u64> = attr.shape().iter().map(|&d| d as u64).collect();
            assert_eq!(got.shape, shape, "{name}@{a}");
            assert_eq!(got.elems, truth(&attr), "{name}@{a}");
            checked += 1;
        }
    }
    assert!(checked > 250, "only {checked} attributes checked");
}

/// Descriptors and kinds of every type class.
#[test]
fn type_descriptors() {
    let path = snap();
    let files = Hdf5Files::default();
    let want: &[(&str, Value, &str)] = &[
        ("/PartType0/Coordinates", Value::from("<f8"), ""),
        ("/PartType0/Masses", Value::from("<f4"), ""),
        ("/PartType0/ParticleIDs", Value::from("<u8"), ""),
        ("/PartType0/HaloID", Value::from("<i8"), ""),
        ("/PartType0/IsStarForming", Value::from("<i1"), ""),
        ("/Header/PartTypeNames", Value::from("S128"), ""),
        ("/Extra/TypeDescriptions", Value::from("str"), ""),
        ("/Extra/VlenInts", Value::from("<i4"), "V"),
        ("/Extra/Matrix3D", Value::from("<i2"), ""),
        (
            "/Extra/Structured/ArrayTriplets",
            Value::Array(vec![Value::from("<f4"), Value::Array(vec![Value::from(3)])]),
            "V",
        ),
        (
            "/Extra/Structured/HaloTable",
            Value::Array(
                [
                    ("id", "<i8"),
                    ("mass", "<f8"),
                    ("n_part", "<i4"),
                    ("is_main", "<u1"),
                ]
                .iter()
                .map(|(n, t)| Value::Array(vec![Value::from(*n), Value::from(*t)]))
                .collect(),
            ),
            "V",
        ),
    ];
    for (name, ty, kind) in want {
        let v = ask(&files, &path, &object(name, 0, 0)).expect(name);
        assert_eq!(get(&v, "type"), Some(ty), "{name}");
        assert_eq!(get(&v, "kind"), Some(&Value::from(*kind)), "{name}");
    }
    // A scalar dataset and an empty one.
    let v = ask(&files, &path, &object("/Extra/TotalMass", 0, 0)).unwrap();
    assert_eq!(get(&v, "shape"), Some(&Value::Array(vec![])));
    let v = ask(&files, &path, &object("/Extra/Empty", 0, 0)).unwrap();
    let data = decode_array(get(&v, "data").expect("zero elements are always inlined"));
    assert_eq!((data.shape, data.elems.len()), (vec![0], 0));
    assert_eq!(data.bins, Vec::<usize>::new());
}

/// Group expansion rules (PROTOCOL.md §3.3) and member order.
#[test]
fn group_maps_follow_expansion_rules() {
    let path = snap();
    let files = Hdf5Files::default();
    let h5 = File::open(&path).expect("open");
    let root = ask(&files, &path, &object("/", 0, 0)).unwrap();
    assert_eq!(keys(&root), ["hdf5_object", "attributes", "members"]);
    let members = get(&root, "members").unwrap();
    assert_eq!(
        keys(members),
        h5.member_names().unwrap(),
        "native (name) order of a compact group"
    );
    assert_eq!(
        get(members, "GasParticles"),
        Some(&Value::Map(vec![
            (Value::from("hdf5_object"), Value::from("soft_link")),
            (Value::from("target"), Value::from("/PartType0")),
        ]))
    );
    assert_eq!(
        get(members, "PartType0"),
        Some(&Value::Nil),
        "groups are nil at max_depth 0"
    );
    // Datasets of the requested group are described at depth 0.
    let g = ask(&files, &path, &object("/PartType0", 0, 0)).unwrap();
    let m = get(&g, "members").unwrap();
    assert_eq!(
        keys(m),
        h5.group("PartType0").unwrap().member_names().unwrap()
    );
    assert!(
        m.as_map()
            .unwrap()
            .iter()
            .all(|(_, v)| get(v, "hdf5_object") == Some(&Value::from("dataset")))
    );
    // max_depth 1: sub-groups are maps whose members are all nil.
    let root1 = ask(&files, &path, &object("/", 1, 0)).unwrap();
    let p0 = get(get(&root1, "members").unwrap(), "PartType0").unwrap();
    assert_eq!(get(p0, "hdf5_object"), Some(&Value::from("group")));
    assert!(
        get(p0, "members")
            .unwrap()
            .as_map()
            .unwrap()
            .iter()
            .all(|(_, v)| v.is_nil())
    );
    // max_depth 2: PartType0 (depth 1, ≤ 20 links) has its datasets described; Cells/Counts
    // (depth 2) is a map with nil members.
    let root2 = ask(&files, &path, &object("/", 2, 0)).unwrap();
    let rm = get(&root2, "members").unwrap();
    let p0 = get(rm, "PartType0").unwrap();
    assert!(
        get(p0, "members")
            .unwrap()
            .as_map()
            .unwrap()
            .iter()
            .all(|(_, v)| get(v, "hdf5_object") == Some(&Value::from("dataset")))
    );
    let counts = get(get(get(rm, "Cells").unwrap(), "members").unwrap(), "Counts").unwrap();
    assert!(
        get(counts, "members")
            .unwrap()
            .as_map()
            .unwrap()
            .iter()
            .all(|(_, v)| v.is_nil())
    );
    // A soft link requested as the object is followed.
    let via = ask(&files, &path, &object("/GasParticles", 0, 0)).unwrap();
    assert_eq!(via, g);
    // Inline data respects the limit: Masses (3000 × 4 bytes) inlined at 12000, not at 11999.
    let g = ask(&files, &path, &object("/PartType0", 0, 12_000)).unwrap();
    assert!(get(get(get(&g, "members").unwrap(), "Masses").unwrap(), "data").is_some());
    let g = ask(&files, &path, &object("/PartType0", 0, 11_999)).unwrap();
    assert!(get(get(get(&g, "members").unwrap(), "Masses").unwrap(), "data").is_none());
}

/// Error cases give 404 (or 400) without writing anything.
#[test]
fn errors_before_any_byte() {
    let path = snap();
    let files = Hdf5Files::default();
    let status = |req| ask(&files, &path, &req).map(|_| ()).unwrap_err().status;
    assert_eq!(status(object("/NoSuchGroup", 0, 0)), 404);
    assert_eq!(status(object("/PartType0/NoSuch", 0, 0)), 404);
    let c = "/PartType0/Coordinates";
    assert_eq!(
        status(slice(c, &[(2999, 2)], &[(0, 3)])),
        404,
        "out of bounds"
    );
    assert_eq!(
        status(slice(c, &[(0, 2)], &[(1, 3)])),
        404,
        "out of bounds in dim 1"
    );
    assert_eq!(status(slice(c, &[(0, 2)], &[])), 404, "wrong rank");
    assert_eq!(
        status(slice(c, &[(5, 1), (3, 1)], &[(0, 3)])),
        404,
        "unordered"
    );
    assert_eq!(
        status(slice(c, &[(3, 2), (4, 1)], &[(0, 3)])),
        404,
        "overlapping"
    );
    assert_eq!(
        status(slice("/PartType0", &[(0, 1)], &[])),
        404,
        "slice of a group"
    );
    assert_eq!(
        status(slice("/Extra/TotalMass", &[(0, 1)], &[])),
        404,
        "slice of a scalar"
    );
    // Touching slices and an empty slice at the end are fine.
    let ok = ask(
        &files,
        &path,
        &slice(c, &[(0, 5), (5, 5), (3000, 0)], &[(0, 3)]),
    )
    .unwrap();
    assert_eq!(decode_array(&ok).shape, vec![10, 3]);
    // Not an HDF5 file, missing file.
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not hdf5").unwrap();
    assert_eq!(
        ask(&files, &text, &object("/", 0, 0)).unwrap_err().status,
        404
    );
    assert_eq!(
        ask(&files, &dir.path().join("missing.hdf5"), &object("/", 0, 0))
            .unwrap_err()
            .status,
        404
    );
}

/// Dangling links and unsupported types fail cleanly; other objects still work.
#[test]
fn dangling_links_and_unsupported_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.hdf5");
    {
        let f = File::create(&path).unwrap();
        f.link_soft("/nowhere", "dangling").unwrap();
        let g = f.create_group("refs").unwrap();
        let target = f.create_group("target").unwrap();
        target
            .new_attr_builder()
            .with_data(&[1i32, 2])
            .create("ok")
            .unwrap();
        let r: hdf5_metno::ObjectReference1 = f.reference("target").unwrap();
        g.new_dataset_builder()
            .with_data(&[r][..])
            .create("references")
            .unwrap();
        let bad = f.create_group("badattr").unwrap();
        bad.new_attr_builder()
            .with_data(&[r][..])
            .create("ref")
            .unwrap();
    }
    let files = Hdf5Files::default();
    let root = ask(&files, &path, &object("/", 0, 0)).unwrap();
    let m = get(&root, "members").unwrap();
    assert_eq!(
        get(get(m, "dangling").unwrap(), "target"),
        Some(&Value::from("/nowhere"))
    );
    assert_eq!(
        ask(&files, &path, &object("/dangling", 0, 0))
            .unwrap_err()
            .status,
        404
    );
    assert_eq!(
        ask(&files, &path, &object("/refs/references", 0, 0))
            .unwrap_err()
            .status,
        404
    );
    assert_eq!(
        ask(&files, &path, &slice("/refs/references", &[(0, 1)], &[]))
            .unwrap_err()
            .status,
        404
    );
    assert_eq!(
        ask(&files, &path, &object("/refs", 0, 0))
            .unwrap_err()
            .status,
        404,
        "member with unsupported type"
    );
    assert_eq!(
        ask(&files, &path, &object("/badattr", 0, 0))
            .unwrap_err()
            .status,
        404
    );
    let t = ask(&files, &path, &object("/target", 0, 0)).unwrap();
    let ok = decode_array(get(get(&t, "attributes").unwrap(), "ok").unwrap());
    assert_eq!(
        ok.elems,
        vec![
            Elem::Bytes(1i32.to_le_bytes().to_vec()),
            Elem::Bytes(2i32.to_le_bytes().to_vec())
        ]
    );
}

/// 10^6 runs of one row each are served (run by run, never as one union selection) and
/// equal libhdf5's values; rows larger than a read piece are split inside the row.
#[test]
fn many_runs_and_big_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.hdf5");
    let n = 2_000_000usize;
    {
        let f = File::create(&path).unwrap();
        let v: Vec<i32> = (0..n as i32).map(|i| i.wrapping_mul(7919)).collect();
        f.new_dataset_builder()
            .with_data(&v[..])
            .create("ints")
            .unwrap();
        let w: Vec<f64> = (0..2 * 3 * 300_000).map(|i| i as f64 * 0.5).collect();
        let a = ndarray::Array3::from_shape_vec((2, 3, 300_000), w).unwrap();
        f.new_dataset_builder()
            .with_data(&a)
            .create("wide")
            .unwrap();
    }
    let files = Hdf5Files::default();
    let h5 = File::open(&path).unwrap();
    let ints = h5.dataset("ints").unwrap();
    let all = truth(&ints);
    let runs: Vec<(u64, u64)> = (0..n as u64 / 2).map(|i| (2 * i + (i % 2), 1)).collect();
    let req = slice("ints", &runs, &[]);
    let got = decode_array(&ask(&files, &path, &req).unwrap());
    assert_eq!(got.shape, vec![n as u64 / 2]);
    assert_eq!(got.elems, select(&all, &[n as u64], selection(&req)));
    let wide = h5.dataset("wide").unwrap();
    let all = truth(&wide);
    let req = slice("wide", &[(0, 2)], &[(0, 3), (1, 299_998)]);
    let got = decode_array(&ask(&files, &path, &req).unwrap());
    assert_eq!(got.shape, vec![2, 3, 299_998]);
    assert_eq!(got.elems, select(&all, &[2, 3, 300_000], selection(&req)));
}

/// Payloads are split into bins of at most the configured size, boundaries not aligned to
/// elements.
#[test]
fn bins_split_payload() {
    let path = snap();
    let files = Hdf5Files::new(2).with_max_bin(1001);
    let req = slice("/PartType0/Coordinates", &[(0, 1000)], &[(0, 3)]);
    let got = decode_array(&ask(&files, &path, &req).unwrap());
    assert_eq!(got.bins.len(), 24);
    assert!(got.bins.iter().all(|&b| b <= 1001));
    assert_eq!(got.bins.iter().sum::<usize>(), 24_000);
    let h5 = File::open(&path).unwrap();
    let all = truth(&h5.dataset("/PartType0/Coordinates").unwrap());
    assert_eq!(got.elems, select(&all, &[3000, 3], selection(&req)));
}

/// The protocol crate's client-side decoders accept every answer (object maps with inline
/// data of all types, and slices), and agree with the values libhdf5 reads.
#[test]
fn protocol_decoders_accept_answers() {
    use hdfstream_protocol::{ArrayData, Member, TypedBuffer, decode_array, decode_object};
    let path = snap();
    let files = Hdf5Files::default();
    let raw = |req: &hdfstream_protocol::ObjectRequest| {
        let mut out = Vec::new();
        files.write_response(&path, req, &mut out).expect("answer");
        out
    };
    for g in ["/", "/PartType0", "/Extra", "/Header", "/Cells"] {
        let m = decode_object(&raw(&object(g, 3, u64::MAX))).expect(g);
        assert!(matches!(m, Member::Group(_)), "{g}");
    }
    let body = raw(&slice("/PartType4/ParticleIDs", &[(2, 5), (100, 7)], &[]));
    let ArrayData::Nd(nd) = decode_array(&body).expect("slice") else {
        panic!("not an ndarray")
    };
    let h5 = File::open(&path).unwrap();
    let ids: Vec<u64> = h5
        .dataset("/PartType4/ParticleIDs")
        .unwrap()
        .read_raw()
        .unwrap();
    let want: Vec<u64> = ids[2..7].iter().chain(&ids[100..107]).copied().collect();
    assert_eq!(nd.shape, vec![12]);
    assert_eq!(nd.data, TypedBuffer::U64(want));
}

/// A dense group (latest file format, more links than compact storage holds) lists its
/// members in native link-iteration order (libhdf5's name index in native order, as
/// hdf5-metno's `member_names` walks it), which is the name-hash order, not sorted.
#[test]
fn dense_group_members_in_native_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dense.hdf5");
    let mut names: Vec<String> = (0..40).map(|i| format!("Group{i:02}")).collect();
    {
        let f = File::with_options()
            .with_fapl(|p| p.libver_latest())
            .create(&path)
            .unwrap();
        for n in &names {
            f.create_group(n).unwrap();
        }
    }
    let files = Hdf5Files::default();
    let root = ask(&files, &path, &object("/", 0, 0)).unwrap();
    let got = keys(get(&root, "members").unwrap());
    assert_eq!(got, File::open(&path).unwrap().member_names().unwrap());
    names.sort();
    assert_ne!(
        got, names,
        "native order of a dense group is not the sorted order"
    );
    // The order is stable between requests.
    let again = ask(&files, &path, &object("/", 0, 0)).unwrap();
    assert_eq!(keys(get(&again, "members").unwrap()), got);
}

/// At most `capacity` files stay open, and a file replaced on disk is reopened.
#[test]
fn file_cache_is_bounded_and_sees_replaced_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, vals: &[i32]| {
        let tmp = dir.path().join(format!("{name}.tmp"));
        {
            let f = File::create(&tmp).unwrap();
            f.new_dataset_builder().with_data(vals).create("x").unwrap();
        }
        std::fs::rename(&tmp, dir.path().join(name)).unwrap();
    };
    let files = Hdf5Files::new(2);
    let read = |name: &str| {
        let v = ask(&files, &dir.path().join(name), &slice("x", &[(0, 2)], &[])).unwrap();
        decode_array(&v).elems
    };
    let le = |x: i32| Elem::Bytes(x.to_le_bytes().to_vec());
    for (i, name) in ["a.h5", "b.h5", "c.h5"].iter().enumerate() {
        write(name, &[i as i32, 10]);
        assert_eq!(read(name), vec![le(i as i32), le(10)]);
        assert!(files.open_files() <= 2);
    }
    assert_eq!(files.open_files(), 2);
    write("c.h5", &[42, 43, 44, 45]);
    assert_eq!(read("c.h5"), vec![le(42), le(43)]);
    assert_eq!(read("a.h5"), vec![le(0), le(10)]);
}

/// Requests from several threads at once (the libhdf5 lock is taken per piece) all get
/// exactly libhdf5's values.
#[test]
fn parallel_requests_interleave_correctly() {
    let path = snap();
    let files = Hdf5Files::default();
    let h5 = File::open(&path).unwrap();
    let names = [
        "/PartType0/Coordinates",
        "/PartType1/Coordinates",
        "/PartType0/ElementMassFractions",
        "/PartType0/Densities",
    ];
    let truths: Vec<(Vec<Elem>, Vec<u64>)> = names
        .iter()
        .map(|n| {
            let ds = h5.dataset(n).unwrap();
            (truth(&ds), ds.shape().iter().map(|&d| d as u64).collect())
        })
        .collect();
    std::thread::scope(|s| {
        for (name, (all, shape)) in names.iter().zip(&truths) {
            let (files, path) = (&files, &path);
            s.spawn(move || {
                for k in 0..20u64 {
                    let rest: Vec<(u64, u64)> = shape[1..].iter().map(|&d| (0, d)).collect();
                    let runs = [(k, 100), (200 + k, 50 * k), (2900, 100)];
                    let req = slice(name, &runs, &rest);
                    let got = decode_array(&ask(files, path, &req).unwrap());
                    assert_eq!(got.elems, select(all, shape, selection(&req)), "{name} {k}");
                }
            });
        }
    });
}
