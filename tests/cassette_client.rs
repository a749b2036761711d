//! `Connection` against the reference server's recorded traffic (cassettes), replayed over
//! a real local socket in several chunks per body. Expected values come from the recorded
//! bodies decoded independently with `rmpv`, and from `eagle_expected.json` (h5py).
//! Every test skips with a printed note when the fixtures are absent.

#[allow(dead_code)] // each test crate uses a subset of the helpers
mod support;

use hdfstream::{Connection, Error};
use hdfstream_protocol::{
    ArrayData, DimSelection, Dtype, Member, PathInfo, SliceSpec, TypedBuffer,
};
use rmpv::Value;
use support::cassette::Replay;

const E0: &str =
    "EAGLE/Fiducial_models/RefL0012N0188/snapshot_000_z020p000/snap_000_z020p000.0.hdf5";
const README: &str = "Tests/SWIFT/IOExamples/ssio_ci_04_2025/README";

fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(key)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no key {key} in {v}"))
}

fn decode_value(body: &[u8]) -> Value {
    let mut b = body;
    let v = rmpv::decode::read_value(&mut b).expect("recorded body is msgpack");
    assert!(b.is_empty());
    v
}

/// Asserts that a decoded path answer equals the recorded msgpack map, field by field.
fn assert_path_matches(info: &PathInfo, recorded: &Value) {
    match info {
        PathInfo::File(f) => {
            assert_eq!(Some(f.media_type.as_str()), get(recorded, "type").as_str());
            assert_eq!(Some(f.size), get(recorded, "size").as_u64());
            assert_eq!(
                Some(f.last_modified_ms),
                get(recorded, "last_modified").as_i64()
            );
        }
        PathInfo::Directory(d) => {
            assert_eq!(get(recorded, "type").as_str(), Some("directory"));
            assert_eq!(Some(d.size), get(recorded, "size").as_u64());
            assert_eq!(
                d.description.is_none(),
                get(recorded, "description").is_nil()
            );
            let files = get(recorded, "files").as_map().expect("files map");
            assert_eq!(d.files.len(), files.len());
            for ((name, info), (rname, rinfo)) in d.files.iter().zip(files) {
                assert_eq!(Some(name.as_str()), rname.as_str(), "file order");
                assert_path_matches(&PathInfo::File(info.clone()), rinfo);
            }
            let dirs = get(recorded, "directories").as_map().expect("dirs map");
            let names: Vec<&str> = d.directories.iter().map(|(n, _)| n.as_str()).collect();
            let rnames: Vec<&str> = dirs.iter().filter_map(|(k, _)| k.as_str()).collect();
            assert_eq!(names, rnames, "subdirectory order");
            for ((_, sub), (_, rsub)) in d.directories.iter().zip(dirs) {
                assert_eq!(sub.is_none(), rsub.is_nil());
            }
        }
    }
}

fn connect(replay: &Replay) -> Connection {
    support::connect(&replay.base_url())
}

/// Checks the replay ended cleanly: nothing unmatched, every interaction played.
fn assert_all_played(replay: &Replay) {
    assert!(
        replay.unmatched().is_empty(),
        "unmatched: {:?}",
        replay.unmatched()
    );
    assert!(
        replay.unplayed().is_empty(),
        "unplayed: {:?}",
        replay.unplayed()
    );
}

/// Replays every path request of a directory-listing cassette in recorded order and
/// compares each answer with the recorded body (404s with the recorded error message).
fn replay_path_requests(name: &str) -> Option<usize> {
    let replay = Replay::start(name)?;
    let conn = connect(&replay);
    let mut checked = 0;
    for it in replay.cassette().interactions.clone() {
        let key = it.key_path().to_string();
        let Some(vpath) = key.strip_prefix("/msgpack/") else {
            continue; // the probe (already sent by connect) or a download
        };
        if it.method != "POST" {
            continue;
        }
        let vpath = vpath.to_string();
        match conn.request_path(&vpath) {
            Ok(info) => {
                assert_eq!(it.status, 200, "{name}: {vpath}");
                assert_path_matches(&info, &decode_value(&it.response_body));
            }
            Err(Error::NotFound { path, message }) => {
                assert_eq!(it.status, 404, "{name}: {vpath}");
                assert_eq!(path, vpath);
                let recorded = decode_value(&it.response_body);
                assert_eq!(Some(message.as_str()), get(&recorded, "error").as_str());
            }
            Err(e) => panic!("{name}: {vpath}: {e}"),
        }
        checked += 1;
    }
    assert_all_played(&replay);
    // Every POST was sent with body {} and the exact msgpack content type.
    for req in replay.requests().iter().filter(|r| r.method == "POST") {
        assert_eq!(req.body, [0x80]);
        assert_eq!(req.header("content-type"), Some("application/x-msgpack"));
    }
    Some(checked)
}

#[test]
fn directory_listing_cassettes_decode_like_recorded() {
    let names = [
        "test_root_listing",
        "test_eagle_dir_listing_with_files",
        "test_eagle_dir_listing_with_subdirs",
        "test_eagle_file_listing",
        "test_eagle_subdir",
        "test_eagle_subdir_loaded",
        "test_implicit_directory",
        "test_non_existent_directory",
        "test_non_existent_directory_already_loaded",
        "test_non_existent_subdir_in_directory_already_loaded",
        "test_non_existent_subdir_in_directory_not_already_loaded",
        "test_request_dir_with_dir_already_loaded",
        "test_request_dir_with_file_already_loaded",
    ];
    for n in names {
        let Some(c) = replay_path_requests(&format!("test_directory_listing/{n}")) else {
            return;
        };
        assert!(c >= 1, "{n}");
    }
}

#[test]
fn snapshot_directory_lists_16_files_in_server_order() {
    let Some(replay) = Replay::start("test_directory_listing/test_eagle_dir_listing_with_files")
    else {
        return;
    };
    let conn = connect(&replay);
    let PathInfo::Directory(eagle) = conn.request_path("/EAGLE").expect("EAGLE") else {
        panic!("EAGLE is a directory");
    };
    assert!(eagle.files.is_empty());
    let snap = conn
        .request_path("EAGLE/Fiducial_models/RefL0012N0188/snapshot_000_z020p000")
        .expect("listing");
    let PathInfo::Directory(d) = snap else {
        panic!("directory expected")
    };
    let names: Vec<String> = d.files.iter().map(|(n, _)| n.clone()).collect();
    let expected: Vec<String> = (0..16)
        .map(|i| format!("snap_000_z020p000.{i}.hdf5"))
        .collect();
    assert_eq!(names, expected);
    assert!(
        d.files
            .iter()
            .all(|(_, f)| f.media_type == "application/x-hdf5")
    );
    assert_eq!(d.files[0].1.size, 35_752_375);
    assert_eq!(d.files[0].1.last_modified_ms, 1_495_808_965_000);
    assert_all_played(&replay);
    let targets: Vec<String> = replay.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets,
        [
            "/hdfstream/msgpack/",
            "/hdfstream/msgpack/EAGLE",
            "/hdfstream/msgpack/EAGLE/Fiducial_models/RefL0012N0188/snapshot_000_z020p000"
        ]
    );
}

#[test]
fn html_401_on_probe_is_unauthorized() {
    let Some(replay) = Replay::start("test_errors/test_html_error") else {
        return;
    };
    let err = hdfstream::ClientBuilder::new()
        .with_url(replay.base_url())
        .with_credentials("nobody", "wrong-password")
        .with_retry(hdfstream::RetryConfig::none())
        .build()
        .expect_err("recorded 401");
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert_eq!(
        err.to_string().split(" (").next(),
        Some("Not authorized. Incorrect user name or password?")
    );
    let reqs = replay.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "GET");
    assert!(
        reqs[0]
            .header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))
    );
    assert_all_played(&replay);
}

#[test]
fn msgpack_404_is_not_found_with_server_message() {
    let Some(replay) = Replay::start("test_errors/test_msgpack_error") else {
        return;
    };
    let conn = connect(&replay);
    let PathInfo::Directory(root) = conn.request_path("/").expect("root") else {
        panic!("root is a directory");
    };
    assert!(root.directories.iter().any(|(n, _)| n == "FLAMINGO"));
    let PathInfo::File(f) = conn.request_path(E0).expect("file") else {
        panic!("file expected");
    };
    assert_eq!(
        (f.size, f.media_type.as_str()),
        (35_752_375, "application/x-hdf5")
    );
    match conn.request_path("does-not-exist") {
        Err(Error::NotFound { path, message }) => {
            assert_eq!(path, "does-not-exist");
            assert_eq!(message, "Invalid path specified: does-not-exist");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_all_played(&replay);
}

#[test]
fn download_streams_recorded_file() {
    let Some(replay) = Replay::start("test_directory_listing/test_read_file") else {
        return;
    };
    let conn = connect(&replay);
    conn.request_path("/").expect("root");
    let PathInfo::File(f) = conn.request_path(README).expect("README") else {
        panic!("file expected");
    };
    assert_eq!(
        (f.media_type.as_str(), f.size),
        ("text/plain;charset=UTF-8", 1729)
    );
    let mut out = Vec::new();
    let n = conn.download(README, &mut out).expect("download");
    let recorded = &replay
        .cassette()
        .interactions
        .iter()
        .find(|i| i.method == "GET" && i.key_path().starts_with("/download/"))
        .expect("recorded download")
        .response_body;
    assert_eq!((n, out.len()), (1729, 1729));
    assert_eq!(&out, recorded);
    let text = String::from_utf8(out).expect("utf-8 text");
    assert!(text.starts_with("This is a set of"));
    assert!(text.trim_end().ends_with("handle this case."));
    assert_all_played(&replay);
}

/// The `[0, 1000)` rows of `PartType1/<name>` from `eagle_expected.json` as f64.
fn expected_rows(name: &str) -> Option<Vec<f64>> {
    let e = support::eagle_expected()?;
    let vals = e[format!("PartType1/{name}")]["values"]
        .as_array()
        .expect("values");
    Some(vals.iter().map(|v| v.as_f64().expect("number")).collect())
}

fn f64s(a: &ArrayData) -> &[f64] {
    match a {
        ArrayData::Nd(nd) => match &nd.data {
            TypedBuffer::F64(v) => v,
            other => panic!("expected f64, got {other:?}"),
        },
        other => panic!("expected ndarray, got {other:?}"),
    }
}

fn rows(start: u64, count: u64) -> SliceSpec {
    SliceSpec::new(
        vec![DimSelection::new(start, count)],
        vec![DimSelection::new(0, 3)],
    )
}

/// The recorded prefix of the dataset cassettes: file, `/` and `/PartType1` at depth 0.
fn load_prefix(conn: &Connection) -> Member {
    conn.request_path("/").expect("root");
    conn.request_path(E0).expect("file");
    let root = conn.request_object(E0, "/", 0, 0).expect("root group");
    let Member::Group(g) = root else {
        panic!("root is a group")
    };
    let names: Vec<&str> = g.members.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"PartType1") && names.contains(&"Header"),
        "{names:?}"
    );
    conn.request_object(E0, "/PartType1", 0, 0)
        .expect("PartType1")
}

#[test]
fn dataset_slices_equal_h5py_values() {
    let Some(replay) = Replay::start("test_dataset/test_dataset_slice") else {
        return;
    };
    let Some(expected) = expected_rows("Coordinates") else {
        return;
    };
    let conn = connect(&replay);
    let Member::Group(pt1) = load_prefix(&conn) else {
        panic!("group")
    };
    let coords = pt1
        .members
        .iter()
        .find(|(n, _)| n == "Coordinates")
        .and_then(|(_, m)| m.as_ref())
        .expect("Coordinates member");
    let Member::Dataset(ds) = coords else {
        panic!("dataset")
    };
    assert_eq!(ds.shape, [414_933, 3]);
    assert!(matches!(ds.dtype, Dtype::Float { size: 8, .. }));

    let cases = [(0u64, 1000u64), (500, 1), (910, 10)];
    for (start, count) in cases {
        let a = conn
            .request_slice(E0, "/PartType1/Coordinates", &rows(start, count))
            .expect("slice");
        assert_eq!(a.shape(), [count, 3]);
        let lo = start as usize * 3;
        assert_eq!(
            f64s(&a),
            &expected[lo..lo + count as usize * 3],
            "rows {start}+{count}"
        );
    }
    // The same three again straight into caller buffers (read_direct).
    for (start, count) in cases {
        let mut dest = vec![0u8; count as usize * 3 * 8];
        conn.request_slice_into(
            E0,
            "/PartType1/Coordinates",
            &rows(start, count),
            &ds.dtype,
            &mut dest,
        )
        .expect("slice into");
        let got: Vec<f64> = dest
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let lo = start as usize * 3;
        assert_eq!(got, &expected[lo..lo + count as usize * 3]);
    }
    assert_eq!(replay.slice_body_mismatches(), Vec::<String>::new());
    assert_eq!(replay.object_mismatches(), Vec::<String>::new());
    // Recorded with max_depth 0 and data_size_limit 0, like the requests above: every body
    // (path, object and slice requests) is byte-identical to what Python sent.
    for (req, idx) in replay.log() {
        let Some(i) = idx else { continue };
        let recorded = &replay.cassette().interactions[i].request_body;
        assert_eq!(
            recorded.as_deref().unwrap_or_default(),
            req.body.as_slice(),
            "interaction {i}"
        );
    }
    assert_all_played(&replay);
}

#[test]
fn multi_slice_and_runs_equal_h5py_values() {
    let Some(replay) = Replay::start("test_dataset/test_dataset_multi_slice") else {
        return;
    };
    let Some(expected) = expected_rows("Coordinates") else {
        return;
    };
    let conn = connect(&replay);
    load_prefix(&conn);
    let spec = |runs: &[(u64, u64)]| {
        SliceSpec::new(
            runs.iter().map(|&(s, c)| DimSelection::new(s, c)).collect(),
            vec![DimSelection::new(0, 3)],
        )
    };
    let halves = spec(&[(0, 500), (500, 500)]);
    let a = conn
        .request_slice(E0, "/PartType1/Coordinates", &halves)
        .expect("halves");
    assert_eq!(f64s(&a), &expected[..3000]);
    let mut dest = vec![0u8; 3000 * 8];
    let f8 = Dtype::Float {
        size: 8,
        order: hdfstream_protocol::ByteOrder::Little,
    };
    conn.request_slice_into(E0, "/PartType1/Coordinates", &halves, &f8, &mut dest)
        .expect("into");
    assert_eq!(dest.as_slice(), bytes_of(&expected[..3000]));
    let two = spec(&[(300, 100), (600, 100)]);
    let want: Vec<f64> = [&expected[900..1200], &expected[1800..2100]].concat();
    let a = conn
        .request_slice(E0, "/PartType1/Coordinates", &two)
        .expect("two runs");
    assert_eq!(a.shape(), [200, 3]);
    assert_eq!(f64s(&a), want.as_slice());
    let mut dest = vec![0u8; 200 * 3 * 8];
    conn.request_slice_into(E0, "/PartType1/Coordinates", &two, &f8, &mut dest)
        .expect("into");
    assert_eq!(dest.as_slice(), bytes_of(&want));
    assert_eq!(replay.slice_body_mismatches(), Vec::<String>::new());
    assert_all_played(&replay);
}

fn bytes_of(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn float32_velocities_equal_h5py_values() {
    let Some(replay) = Replay::start("test_read_direct/test_read_all_vel_as_float64") else {
        return;
    };
    let Some(expected) = expected_rows("Velocity") else {
        return;
    };
    let conn = connect(&replay);
    load_prefix(&conn);
    let a = conn
        .request_slice(E0, "/PartType1/Velocity", &rows(0, 1000))
        .expect("slice");
    let ArrayData::Nd(nd) = &a else {
        panic!("ndarray")
    };
    let TypedBuffer::F32(v) = &nd.data else {
        panic!("f32 expected, got {:?}", nd.dtype)
    };
    let want: Vec<f32> = expected.iter().map(|&x| x as f32).collect();
    assert_eq!(v, &want);
    assert_eq!(replay.slice_body_mismatches(), Vec::<String>::new());
    assert_all_played(&replay);
}

#[test]
fn wrong_destination_size_is_rejected_before_any_request() {
    let Some(replay) = Replay::start("test_read_direct/test_read_all_pos") else {
        return;
    };
    let conn = connect(&replay);
    let f8 = Dtype::Float {
        size: 8,
        order: hdfstream_protocol::ByteOrder::Little,
    };
    let mut dest = vec![0u8; 100];
    let err = conn
        .request_slice_into(E0, "/PartType1/Coordinates", &rows(0, 1000), &f8, &mut dest)
        .expect_err("too small");
    assert!(matches!(err, Error::InvalidSelection { .. }), "{err:?}");
    assert_eq!(replay.requests().len(), 1, "only the probe was sent");
}

#[test]
fn type_mismatch_against_response_header() {
    let Some(replay) = Replay::start("test_read_direct/test_read_all_pos") else {
        return;
    };
    let conn = connect(&replay);
    load_prefix(&conn);
    // The server sends <f8; asking for i8 of the same size must fail, not reinterpret.
    let i8t = Dtype::Int {
        size: 8,
        order: hdfstream_protocol::ByteOrder::Little,
    };
    let mut dest = vec![0u8; 1000 * 3 * 8];
    let err = conn
        .request_slice_into(
            E0,
            "/PartType1/Coordinates",
            &rows(0, 1000),
            &i8t,
            &mut dest,
        )
        .expect_err("type differs");
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err:?}");
}
