//! Every recorded real-server response decodes, re-encodes to the same bytes, streams, and
//! holds the values h5py read from the same file (`eagle_expected.json`).

mod common;

use common::{Interaction, RequestKind, all_interactions, expected};
use hdfstream_protocol::{
    ArrayData, ArrayDecoder, ArrayIntoDecoder, DecodeError, Dtype, Member, NdArray, ObjectRequest,
    PathInfo, TypedBuffer, decode_array, decode_array_from_reader, decode_array_into_from_reader,
    decode_error, decode_object, decode_path, encode_array, encode_member, encode_path,
};
use serde_json::Value as Json;

fn msgpack_ok(all: &[Interaction]) -> impl Iterator<Item = &Interaction> {
    all.iter().filter(|i| i.is_msgpack() && i.status == 200)
}

#[test]
fn every_response_decodes_and_reencodes_byte_for_byte() {
    let Some(all) = all_interactions() else {
        return;
    };
    let (mut paths, mut objects, mut slices) = (0, 0, 0);
    for it in msgpack_ok(&all) {
        let body = &it.response_body;
        let again = match it.kind() {
            RequestKind::Path => {
                paths += 1;
                encode_path(&decode_path(body).unwrap_or_else(|e| panic!("{}: {e}", it.origin)))
            }
            RequestKind::Object => {
                objects += 1;
                encode_member(&decode_object(body).unwrap_or_else(|e| panic!("{}: {e}", it.origin)))
            }
            RequestKind::Slice => {
                slices += 1;
                encode_array(&decode_array(body).unwrap_or_else(|e| panic!("{}: {e}", it.origin)))
            }
        };
        assert!(again == *body, "{}: re-encoding differs", it.origin);
    }
    // The 45 cassettes hold many of each kind.
    assert!(
        paths > 50 && objects > 50 && slices > 10,
        "{paths} {objects} {slices}"
    );
}

#[test]
fn error_responses_decode() {
    let Some(all) = all_interactions() else {
        return;
    };
    let errors: Vec<_> = all
        .iter()
        .filter(|i| i.is_msgpack() && i.status != 200)
        .collect();
    assert_eq!(errors.len(), 2);
    for e in &errors {
        let msg = decode_error(&e.response_body).unwrap_or_else(|| panic!("{}", e.origin));
        assert!(msg.starts_with("Invalid path specified: "), "{msg}");
    }
    assert!(
        errors
            .iter()
            .any(|e| decode_error(&e.response_body).as_deref()
                == Some("Invalid path specified: does-not-exist"))
    );
    // A successful body is not an error.
    let ok = msgpack_ok(&all).next().unwrap();
    assert_eq!(decode_error(&ok.response_body), None);
}

#[test]
fn request_bodies_roundtrip_exactly() {
    let Some(all) = all_interactions() else {
        return;
    };
    let (mut n, mut relaxed) = (0, 0);
    for it in all.iter().filter(|i| i.request_body.is_some()) {
        let body = it.request_body.as_ref().unwrap();
        let req = ObjectRequest::decode_body(body).unwrap_or_else(|e| panic!("{}: {e}", it.origin));
        let again = req.encode_body();
        if again != *body {
            // Fancy indexing makes the Python client send one run in array form,
            // `[[[0], [1000]], ...]`; we write one run as `[[0, 1000], ...]`. Same request.
            assert!(it.origin.contains("index_with_array"), "{}", it.origin);
            assert_eq!(
                req.slice.as_ref().map(|s| s.runs.len()),
                Some(1),
                "{}",
                it.origin
            );
            assert_eq!(ObjectRequest::decode_body(&again).unwrap(), req);
            relaxed += 1;
        }
        n += 1;
    }
    assert!(n > 150, "{n}");
    assert!(relaxed <= 4, "{relaxed}");
}

#[test]
fn slices_stream_in_any_chunking_and_into_buffers() {
    let Some(all) = all_interactions() else {
        return;
    };
    for it in msgpack_ok(&all).filter(|i| i.kind() == RequestKind::Slice) {
        let body = &it.response_body;
        let want = decode_array(body).unwrap();
        for chunk in [1, 2, 3, 5, 64, 1000, 1 << 20] {
            let mut dec = ArrayDecoder::new();
            for c in body.chunks(chunk) {
                dec.feed(c).unwrap();
            }
            assert_eq!(dec.finish().unwrap(), want, "{} chunk {chunk}", it.origin);
        }
        assert_eq!(decode_array_from_reader(&body[..]).unwrap(), want);

        let ArrayData::Nd(nd) = &want else {
            panic!("slice responses are ndarrays")
        };
        let mut dest = vec![0u8; nd.data.as_bytes().len()];
        let h = decode_array_into_from_reader(&body[..], &nd.dtype, &mut dest).unwrap();
        assert_eq!((&h.dtype, &h.shape), (&nd.dtype, &nd.shape));
        assert_eq!(dest, nd.data.as_bytes());

        // Wrong size or type for the destination is refused.
        let mut short = vec![0u8; dest.len() + 1];
        assert!(matches!(
            decode_array_into_from_reader(&body[..], &nd.dtype, &mut short),
            Err(hdfstream_protocol::ReadError::Decode(
                DecodeError::DestinationMismatch { .. }
            ))
        ));
        let other = Dtype::parse("<i8").unwrap();
        let mut d2 = dest.clone();
        let mut dec = ArrayIntoDecoder::new(&other, &mut d2);
        assert!(matches!(
            dec.feed(body),
            Err(DecodeError::DestinationMismatch { .. })
        ));
    }
}

/// The response to `slice` on `object`, decoded.
fn slice_response(all: &[Interaction], object: &str, slice: &str) -> NdArray {
    let it = msgpack_ok(all)
        .find(|i| {
            i.kind() == RequestKind::Slice
                && i.object().as_deref() == Some(object)
                && ObjectRequest::decode_body(i.request_body.as_ref().unwrap())
                    .unwrap()
                    .slice
                    .is_some_and(|s| format!("{:?}", (s.runs, s.rest)) == slice)
        })
        .unwrap_or_else(|| panic!("no slice {slice} of {object}"));
    match decode_array(&it.response_body).unwrap() {
        ArrayData::Nd(a) => a,
        ArrayData::Vlen(_) => panic!("vlen"),
    }
}

fn expected_f64(exp: &Json, key: &str) -> Vec<f64> {
    exp[key]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn runs(spec: &[(u64, u64)], rest: &[(u64, u64)]) -> String {
    use hdfstream_protocol::DimSelection as D;
    let r: Vec<D> = spec.iter().map(|&(s, c)| D::new(s, c)).collect();
    let o: Vec<D> = rest.iter().map(|&(s, c)| D::new(s, c)).collect();
    format!("{:?}", (r, o))
}

#[test]
fn coordinates_and_velocity_match_h5py() {
    let (Some(all), Some(exp)) = (all_interactions(), expected()) else {
        return;
    };
    let pos = expected_f64(&exp, "PartType1/Coordinates");
    let vel = expected_f64(&exp, "PartType1/Velocity");
    assert_eq!(pos.len(), 3000);

    let a = slice_response(
        &all,
        "/PartType1/Coordinates",
        &runs(&[(0, 1000)], &[(0, 3)]),
    );
    assert_eq!(a.dtype.to_string(), "<f8");
    assert_eq!(a.shape, [1000, 3]);
    let TypedBuffer::F64(v) = &a.data else {
        panic!("{:?}", a.dtype)
    };
    assert!(*v == pos, "coordinates differ from h5py");

    let b = slice_response(&all, "/PartType1/Velocity", &runs(&[(0, 1000)], &[(0, 3)]));
    assert_eq!(b.dtype.to_string(), "<f4");
    let TypedBuffer::F32(v) = &b.data else {
        panic!()
    };
    let want: Vec<f32> = vel.iter().map(|&x| x as f32).collect();
    assert!(*v == want, "velocities differ from h5py");

    // Multi-slice and column selections hold the same rows.
    let pos = &pos;
    let rows = |idx: &[usize], cols: &[usize]| -> Vec<f64> {
        idx.iter()
            .flat_map(|&r| cols.iter().map(move |&c| pos[3 * r + c]))
            .collect()
    };
    let check = |spec: &[(u64, u64)], rest: (u64, u64), idx: Vec<usize>| {
        let a = slice_response(&all, "/PartType1/Coordinates", &runs(spec, &[rest]));
        let cols: Vec<usize> = (rest.0 as usize..(rest.0 + rest.1) as usize).collect();
        assert_eq!(a.shape, [idx.len() as u64, rest.1]);
        let TypedBuffer::F64(v) = &a.data else {
            panic!()
        };
        assert!(*v == rows(&idx, &cols), "{spec:?} {rest:?}");
    };
    check(&[(0, 500), (500, 500)], (0, 3), (0..1000).collect());
    check(
        &[(300, 100), (600, 100)],
        (0, 3),
        (300..400).chain(600..700).collect(),
    );
    check(
        &[(5, 4), (17, 1), (19, 2), (100, 4)],
        (0, 3),
        vec![5, 6, 7, 8, 17, 19, 20, 100, 101, 102, 103],
    );
    check(&[(0, 1000)], (1, 1), (0..1000).collect());
    check(&[(0, 1000)], (2, 1), (0..1000).collect());
    check(&[(500, 1)], (0, 3), vec![500]);
    check(&[(910, 10)], (0, 3), (910..920).collect());
}

/// Compare one decoded attribute with an `eagle_expected.json` entry.
fn assert_attr(name: &str, got: &ArrayData, want: &Json) {
    let ArrayData::Nd(a) = got else {
        panic!("{name} is vlen")
    };
    let shape: Vec<u64> = want["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect();
    assert_eq!(a.shape, shape, "{name}");
    let dtype = want["dtype"].as_str().unwrap();
    let values = want["values"].as_array().unwrap();
    if let Some(width) = dtype.strip_prefix("|S") {
        // h5py reports the file's width; the server sends the native (possibly wider) one.
        let Dtype::FixedString { len } = a.dtype else {
            panic!("{name}: {}", a.dtype)
        };
        assert!(len >= width.parse::<usize>().unwrap(), "{name}");
        let TypedBuffer::Bytes { data, item_size } = &a.data else {
            panic!()
        };
        let got: Vec<&[u8]> = data
            .chunks(*item_size)
            .map(|s| &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())])
            .collect();
        let want: Vec<&[u8]> = values
            .iter()
            .map(|v| v.as_str().unwrap().as_bytes())
            .collect();
        assert_eq!(got, want, "{name}");
        return;
    }
    assert_eq!(a.dtype.to_string(), dtype, "{name}");
    let as_f64: Vec<f64> = match &a.data {
        TypedBuffer::F64(v) => v.clone(),
        TypedBuffer::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        TypedBuffer::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        TypedBuffer::U32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        TypedBuffer::I64(v) => v.iter().map(|&x| x as f64).collect(),
        TypedBuffer::U64(v) => v.iter().map(|&x| x as f64).collect(),
        other => panic!("{name}: {other:?}"),
    };
    let want: Vec<f64> = values.iter().map(|v| v.as_f64().unwrap()).collect();
    if a.dtype.to_string() == "<f4" {
        let w: Vec<f32> = want.iter().map(|&x| x as f32).collect();
        let g: Vec<f32> = as_f64.iter().map(|&x| x as f32).collect();
        assert_eq!(g, w, "{name}");
    } else {
        assert_eq!(as_f64, want, "{name}");
    }
}

fn object_response(all: &[Interaction], object: &str) -> Member {
    let it = msgpack_ok(all)
        .find(|i| i.kind() == RequestKind::Object && i.object().as_deref() == Some(object))
        .unwrap_or_else(|| panic!("no object request for {object}"));
    decode_object(&it.response_body).unwrap()
}

#[test]
fn header_attributes_match_h5py() {
    let (Some(all), Some(exp)) = (all_interactions(), expected()) else {
        return;
    };
    let file = exp["file"].as_str().unwrap();
    let it = msgpack_ok(&all)
        .find(|i| i.uri.ends_with(file) && i.object().as_deref() == Some("/Header"))
        .expect("a /Header request on the EAGLE file");
    let Member::Group(g) = decode_object(&it.response_body).unwrap() else {
        panic!("not a group")
    };
    let want = exp["header_attributes"].as_object().unwrap();
    assert_eq!(g.attributes.len(), want.len());
    assert_eq!(g.attributes.len(), 23);
    for (name, value) in &g.attributes {
        assert_attr(name, value, &want[name.as_str()]);
    }
    // Attribute names arrive in ascending order.
    assert!(g.attributes.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn parttype1_datasets_match_h5py() {
    let (Some(all), Some(exp)) = (all_interactions(), expected()) else {
        return;
    };
    let Member::Group(g) = object_response(&all, "/PartType1") else {
        panic!()
    };
    let names: Vec<&str> = g.members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Coordinates",
            "GroupNumber",
            "ParticleIDs",
            "SubGroupNumber",
            "Velocity"
        ]
    );
    for (key, name, dtype) in [
        ("PartType1/Coordinates", "Coordinates", "<f8"),
        ("PartType1/Velocity", "Velocity", "<f4"),
    ] {
        let Some(Some(Member::Dataset(d))) =
            g.members.iter().find(|(n, _)| n == name).map(|(_, m)| m)
        else {
            panic!("{name}")
        };
        assert_eq!(d.dtype.to_string(), dtype);
        assert_eq!(d.shape, [414933, 3]);
        assert!(d.data.is_none());
        let want = exp[key]["attributes"].as_object().unwrap();
        assert_eq!(d.attributes.len(), want.len());
        for (n, v) in &d.attributes {
            assert_attr(n, v, &want[n.as_str()]);
        }
    }
}

#[test]
fn root_listing_and_file_metadata() {
    let Some(all) = all_interactions() else {
        return;
    };
    let it = msgpack_ok(&all)
        .find(|i| i.uri.ends_with("/msgpack/") && i.method == "POST")
        .expect("root listing");
    let PathInfo::Directory(d) = decode_path(&it.response_body).unwrap() else {
        panic!()
    };
    assert!(d.files.is_empty() && d.description.is_none() && d.labels.is_none());
    assert!(d.directories.iter().all(|(_, s)| s.is_none()));
    assert!(d.directories.iter().any(|(n, _)| n == "EAGLE"));

    let it = msgpack_ok(&all)
        .find(|i| i.uri.ends_with("snap_000_z020p000.0.hdf5") && i.kind() == RequestKind::Path)
        .expect("file request");
    let PathInfo::File(f) = decode_path(&it.response_body).unwrap() else {
        panic!()
    };
    assert_eq!(
        (f.media_type.as_str(), f.size, f.last_modified_ms),
        ("application/x-hdf5", 35752375, 1495808965000)
    );

    let it = msgpack_ok(&all)
        .find(|i| i.uri.ends_with("snapshot_000_z020p000"))
        .expect("listing with files");
    let PathInfo::Directory(d) = decode_path(&it.response_body).unwrap() else {
        panic!()
    };
    assert_eq!(d.files.len(), 16);
    assert_eq!(d.files[1].0, "snap_000_z020p000.1.hdf5");
}
