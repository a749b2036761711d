//! HDF5 object and slice requests through HTTP, checked against libhdf5 (hdf5-metno) reading
//! the same file.

mod http_common;

use std::path::Path;

use hdfstream_protocol::{
    ArrayData, DimSelection, Dtype, Member, ObjectRequest, SliceSpec, decode_array, decode_object,
};
use hdfstream_server::ServerHandle;
use http_common::*;

const ROWS: usize = 200_000;

/// `data/coords`: f64 [ROWS, 3] (4.8 MB, several streamed chunks), `data/ids`: i32 [ROWS].
fn make_file(path: &Path) {
    let file = hdf5_metno::File::create(path).expect("create");
    let group = file.create_group("data").expect("group");
    let coords: Vec<f64> = (0..ROWS * 3).map(|i| i as f64 * 0.5 - 7.0).collect();
    let ds = group
        .new_dataset::<f64>()
        .shape((ROWS, 3))
        .create("coords")
        .expect("dataset");
    ds.write_raw(&coords).expect("write");
    let ids: Vec<i32> = (0..ROWS as i32).map(|i| i * 7 - 3).collect();
    let ds = group
        .new_dataset::<i32>()
        .shape(ROWS)
        .create("ids")
        .expect("dataset");
    ds.write_raw(&ids).expect("write");
}

fn truth_rows(path: &Path, runs: &[(usize, usize)]) -> Vec<u8> {
    let file = hdf5_metno::File::open(path).expect("open");
    let all: Vec<f64> = file
        .dataset("data/coords")
        .expect("ds")
        .read_raw()
        .expect("read");
    let mut out = Vec::new();
    for &(start, count) in runs {
        for v in &all[start * 3..(start + count) * 3] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
    }
    out
}

fn nd(data: ArrayData) -> hdfstream_protocol::NdArray {
    match data {
        ArrayData::Nd(nd) => nd,
        ArrayData::Vlen(_) => panic!("expected a fixed-size array"),
    }
}

#[test]
fn slices_through_http_match_libhdf5() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("snap.hdf5");
    make_file(&path);
    let srv = ServerHandle::start(tmp.path()).expect("server");
    let url = format!("{}/msgpack/snap.hdf5", srv.base_url());

    // Multi-slice request: rows 10..15 and 500..520, all 3 columns.
    let spec = SliceSpec::new(
        vec![DimSelection::new(10, 5), DimSelection::new(500, 20)],
        vec![DimSelection::new(0, 3)],
    );
    let body = ObjectRequest::slice("/data/coords", spec).encode_body();
    let answer = post(&url, &body, None);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/x-msgpack"));
    let array = nd(decode_array(&answer.body).expect("ndarray"));
    assert_eq!(array.shape, [25, 3]);
    assert_eq!(array.dtype, Dtype::parse("<f8").expect("dtype"));
    assert_eq!(
        array.data.as_bytes(),
        truth_rows(&path, &[(10, 5), (500, 20)])
    );

    // The whole dataset: 4.8 MB streamed in several chunks, byte-exact.
    let spec = SliceSpec::new(
        vec![DimSelection::new(0, ROWS as u64)],
        vec![DimSelection::new(0, 3)],
    );
    let whole = post(
        &url,
        &ObjectRequest::slice("/data/coords", spec).encode_body(),
        None,
    );
    assert_eq!(whole.status, 200);
    let array = nd(decode_array(&whole.body).expect("ndarray"));
    assert_eq!(array.data.as_bytes(), truth_rows(&path, &[(0, ROWS)]));

    // GET form with the string slice syntax.
    let via_get = get(
        &format!("{url}?object=/data/coords&slice=10:15,0:3;500:520,0:3"),
        None,
    );
    assert_eq!(via_get.status, 200);
    assert_eq!(via_get.body, answer.body);

    // The request log shows exactly these requests, their runs and payload sizes.
    let log = srv.request_log();
    type Row = (String, Option<String>, Option<usize>, u16, u64, bool);
    let summary: Vec<Row> = log
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.object.clone(),
                r.slice_runs,
                r.status,
                r.body_bytes,
                r.complete,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "POST".into(),
                Some("/data/coords".into()),
                Some(2),
                200,
                answer.body.len() as u64,
                true
            ),
            (
                "POST".into(),
                Some("/data/coords".into()),
                Some(1),
                200,
                whole.body.len() as u64,
                true
            ),
            (
                "GET".into(),
                Some("/data/coords".into()),
                Some(2),
                200,
                via_get.body.len() as u64,
                true
            ),
        ]
    );
}

#[test]
fn object_maps_and_errors_through_http() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("snap.hdf5");
    make_file(&path);
    std::fs::write(tmp.path().join("notes.txt"), b"not hdf5").expect("write");
    let srv = ServerHandle::start(tmp.path()).expect("server");
    let base = srv.base_url();
    let url = format!("{base}/msgpack/snap.hdf5");

    let group = post(
        &url,
        &ObjectRequest::object("/data", 0, 0).encode_body(),
        None,
    );
    assert_eq!(group.status, 200);
    let Member::Group(info) = decode_object(&group.body).expect("object map") else {
        panic!("expected a group");
    };
    let names: Vec<&str> = info.members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["coords", "ids"]);
    let Some(Some(Member::Dataset(ids))) = info
        .members
        .iter()
        .find(|(n, _)| n == "ids")
        .map(|(_, m)| m.as_ref())
    else {
        panic!("ids is a described dataset");
    };
    assert_eq!(ids.shape, [ROWS as u64]);
    assert_eq!(ids.dtype, Dtype::parse("<i4").expect("dtype"));

    // Errors before the first byte keep their status and a msgpack error body.
    let missing = post(
        &url,
        &ObjectRequest::object("/nope", 0, 0).encode_body(),
        None,
    );
    assert_eq!(missing.status, 404);
    assert!(!missing.error_message().is_empty());
    let spec = SliceSpec::new(
        vec![DimSelection::new(ROWS as u64, 1)],
        vec![DimSelection::new(0, 3)],
    );
    let out_of_bounds = post(
        &url,
        &ObjectRequest::slice("/data/coords", spec).encode_body(),
        None,
    );
    assert_eq!(out_of_bounds.status, 404);
    assert!(!out_of_bounds.error_message().is_empty());
    let not_hdf5 = post(
        &format!("{base}/msgpack/notes.txt"),
        &ObjectRequest::object("/", 0, 0).encode_body(),
        None,
    );
    assert_eq!(not_hdf5.status, 404);
    // A slice without an object is a parameter error.
    let no_object = get(&format!("{url}?slice=0:1"), None);
    assert_eq!(no_object.status, 400);
    // Still serving.
    assert_eq!(post(&url, EMPTY_MAP, None).status, 200);
}
