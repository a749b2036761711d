//! Whole-message decoding and encoding against the byte examples of PROTOCOL.md and
//! hand-made edge cases.

mod common;

use common::b;
use hdfstream_protocol::{
    ArrayData, DatasetInfo, DecodeError, DirectoryInfo, Dtype, FileInfo, GroupInfo, Member,
    NdArray, PathInfo, TypedBuffer, VlenArray, VlenElement, bin_header, bin_lengths,
    bin_lengths_with_max, decode_array, decode_error, decode_object, decode_path, encode_array,
    encode_array_with_max_bin, encode_error, encode_member, encode_path, ndarray_header,
};

fn f8(v: Vec<f64>, shape: Vec<u64>) -> ArrayData {
    ArrayData::Nd(NdArray {
        dtype: Dtype::parse("<f8").unwrap(),
        shape,
        data: TypedBuffer::F64(v),
    })
}

const SLICE_69: &str = r#"86 a2 6e 64 c3 a4 "type" a3 "<f8" a4 "kind" a0 a5 "shape" 92 01 03
    a6 "nbytes" 18 a4 "data" 91 c4 18
    44 b4 7c 06 53 53 df 3f  e4 3f 5c f4 97 4a de 3f  d7 90 a4 5b 08 85 cb 3f"#;

#[test]
fn worked_slice_example() {
    let body = b(SLICE_69);
    assert_eq!(body.len(), 69);
    let a = decode_array(&body).unwrap();
    let ArrayData::Nd(nd) = &a else { panic!() };
    assert_eq!(nd.shape, [1, 3]);
    let TypedBuffer::F64(v) = &nd.data else {
        panic!()
    };
    assert!(
        (v[0] - 0.48946071).abs() < 1e-8
            && (v[1] - 0.47330283).abs() < 1e-8
            && (v[2] - 0.21499733).abs() < 1e-8
    );
    assert_eq!(encode_array(&a), body);
    // The streaming building blocks give the same bytes.
    let mut s = ndarray_header(&nd.dtype, &nd.shape, 24);
    for len in bin_lengths(24) {
        s.extend_from_slice(&bin_header(len));
    }
    s.extend_from_slice(nd.data.as_bytes());
    assert_eq!(s, body);
}

#[test]
fn worked_path_examples() {
    let file = b(
        r#"83 a4 "type" b2 "application/x-hdf5" a4 "size" ce 02 21 89 b7
        ad "last_modified" cf 00 00 01 5c 45 29 79 88"#,
    );
    assert_eq!(file.len(), 58);
    let info = PathInfo::File(FileInfo {
        media_type: "application/x-hdf5".into(),
        size: 35752375,
        last_modified_ms: 1495808965000,
    });
    assert_eq!(decode_path(&file).unwrap(), info);
    assert_eq!(encode_path(&info), file);

    let root = b(
        r#"86 a4 "type" a9 "directory" a4 "size" cf 00 00 1f ef b8 65 3b 5d
        ab "description" c0 a6 "labels" c0 a5 "files" 80
        ab "directories" 83 a5 "EAGLE" c0 a5 "Tests" c0 a5 "SWIFT" c0"#,
    );
    assert_eq!(root.len(), 92);
    let dir = PathInfo::Directory(DirectoryInfo {
        size: 35114451286877,
        description: None,
        labels: None,
        files: vec![],
        directories: vec![
            ("EAGLE".into(), None),
            ("Tests".into(), None),
            ("SWIFT".into(), None),
        ],
    });
    assert_eq!(decode_path(&root).unwrap(), dir);
    assert_eq!(encode_path(&dir), root);
}

#[test]
fn nested_directories_labels_and_description() {
    let sub = DirectoryInfo {
        size: 5,
        description: Some("# Sub\ntext".into()),
        labels: Some(vec![("a.hdf5".into(), "first".into())]),
        files: vec![(
            "a.hdf5".into(),
            FileInfo {
                media_type: "application/x-hdf5".into(),
                size: 5,
                last_modified_ms: -3,
            },
        )],
        directories: vec![],
    };
    let top = PathInfo::Directory(DirectoryInfo {
        size: 5,
        description: None,
        labels: None,
        files: vec![],
        directories: vec![("sub".into(), Some(sub)), ("other".into(), None)],
    });
    assert_eq!(decode_path(&encode_path(&top)).unwrap(), top);
}

#[test]
fn worked_group_and_error_examples() {
    let names = [
        "Config",
        "Constants",
        "HashTable",
        "Header",
        "Parameters",
        "PartType0",
        "PartType1",
        "RuntimePars",
        "Units",
    ];
    let mut body = b(r#"83 ab "hdf5_object" a5 "group" aa "attributes" 80 a7 "members" 89"#);
    for n in names {
        body.push(0xa0 | n.len() as u8);
        body.extend_from_slice(n.as_bytes());
        body.push(0xc0);
    }
    assert_eq!(body.len(), 132);
    let g = Member::Group(GroupInfo {
        attributes: vec![],
        members: names.iter().map(|n| (n.to_string(), None)).collect(),
    });
    assert_eq!(decode_object(&body).unwrap(), g);
    assert_eq!(encode_member(&g), body);

    let err = b(r#"81 a5 "error" d9 26 "Invalid path specified: does-not-exist""#);
    assert_eq!(err.len(), 47);
    assert_eq!(
        decode_error(&err).as_deref(),
        Some("Invalid path specified: does-not-exist")
    );
    assert_eq!(encode_error("Invalid path specified: does-not-exist"), err);
    assert_eq!(decode_error(&err[..46]), None);
    assert_eq!(decode_error(&[err.clone(), vec![0]].concat()), None);
    assert_eq!(decode_error(&b(r#"81 a5 "error" 01"#)), None);
    assert_eq!(decode_error(&b(r#"82 a5 "error" a1 "x" a1 "y" c0"#)), None);
}

#[test]
fn dataset_soft_link_unknown_and_inline_data() {
    let attr = ArrayData::Nd(NdArray {
        dtype: Dtype::parse("S5").unwrap(),
        shape: vec![],
        data: TypedBuffer::Bytes {
            item_size: 5,
            data: b"SWIFT".to_vec(),
        },
    });
    let ds = Member::Dataset(DatasetInfo {
        attributes: vec![("Code".into(), attr)],
        dtype: Dtype::parse("<i8").unwrap(),
        shape: vec![3],
        data: Some(ArrayData::Nd(NdArray {
            dtype: Dtype::parse("<i8").unwrap(),
            shape: vec![3],
            data: TypedBuffer::I64(vec![-1, 0, 1 << 40]),
        })),
    });
    let g = Member::Group(GroupInfo {
        attributes: vec![],
        members: vec![
            ("d".into(), Some(ds.clone())),
            (
                "l".into(),
                Some(Member::SoftLink {
                    target: "/PartType1".into(),
                }),
            ),
            ("u".into(), Some(Member::Unknown)),
            ("nd".into(), None), // names that look like array keys are just names
            (
                "vlen".into(),
                Some(Member::Group(GroupInfo {
                    attributes: vec![],
                    members: vec![],
                })),
            ),
        ],
    });
    let bytes = encode_member(&g);
    assert_eq!(decode_object(&bytes).unwrap(), g);
    // A dataset without data has 5 keys, with data 6 (data last).
    let enc = encode_member(&ds);
    assert_eq!(enc[0], 0x86);
    let vlen_ds = Member::Dataset(DatasetInfo {
        attributes: vec![],
        dtype: Dtype::VlenString,
        shape: vec![],
        data: None,
    });
    let enc = encode_member(&vlen_ds);
    assert_eq!(
        enc,
        b(
            r#"85 ab "hdf5_object" a7 "dataset" aa "attributes" 80 a4 "type" a3 "str" a4 "kind" a0 a5 "shape" 90"#
        )
    );
    assert_eq!(decode_object(&enc).unwrap(), vlen_ds);
    // Unknown object classes from a newer server are Unknown.
    assert_eq!(
        decode_object(&b(r#"81 ab "hdf5_object" a4 "bork""#)).unwrap(),
        Member::Unknown
    );
}

#[test]
fn attributes_named_like_array_keys() {
    let body = encode_member(&Member::Group(GroupInfo {
        attributes: vec![
            ("nd".into(), f8(vec![1.0], vec![])),
            ("vlen".into(), f8(vec![], vec![0])),
        ],
        members: vec![],
    }));
    let Member::Group(g) = decode_object(&body).unwrap() else {
        panic!()
    };
    assert_eq!(g.attributes[0].1, f8(vec![1.0], vec![]));
    // A zero-element array has "data": [] (byte 90).
    assert!(body.ends_with(&b(r#"a6 "nbytes" 00 a4 "data" 90 a7 "members" 80"#)));
}

#[test]
fn every_integer_width_is_accepted() {
    // shape [1, 3] and nbytes 24 written with needlessly wide encodings.
    let body = b(
        r#"86 a2 6e 64 c3 a4 "type" a3 "<f8" a4 "kind" a0 a5 "shape" 92 cf 00 00 00 00 00 00 00 01 d2 00 00 00 03
        a6 "nbytes" d1 00 18 a4 "data" dc 00 01 c6 00 00 00 18
        44 b4 7c 06 53 53 df 3f  e4 3f 5c f4 97 4a de 3f  d7 90 a4 5b 08 85 cb 3f"#,
    );
    assert_eq!(
        decode_array(&body).unwrap(),
        decode_array(&b(SLICE_69)).unwrap()
    );
    let file =
        b(r#"83 a4 "type" a1 "x" a4 "size" d3 00 00 00 00 00 00 00 05 ad "last_modified" d0 ff"#);
    assert_eq!(
        decode_path(&file).unwrap(),
        PathInfo::File(FileInfo {
            media_type: "x".into(),
            size: 5,
            last_modified_ms: -1
        })
    );
    // Negative sizes are not.
    let file = b(r#"83 a4 "type" a1 "x" a4 "size" ff ad "last_modified" 00"#);
    assert!(matches!(
        decode_path(&file),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn strict_framing() {
    let body = b(SLICE_69);
    for cut in 0..body.len() {
        assert!(
            matches!(
                decode_array(&body[..cut]),
                Err(DecodeError::Truncated { .. })
            ),
            "cut {cut}"
        );
    }
    assert_eq!(
        decode_array(&[body.clone(), vec![0xc0]].concat()),
        Err(DecodeError::TrailingBytes { extra: 1 })
    );
    let mal = |s: &str| {
        let r = decode_array(&b(s));
        assert!(
            matches!(r, Err(DecodeError::Malformed { .. })),
            "{s}: {r:?}"
        );
    };
    let head = r#"a2 6e 64 c3 a4 "type" a3 "<f8" a4 "kind" a0 a5 "shape" 91 02"#;
    // nbytes != product(shape) * item_size
    mal(&format!(
        r#"86 {head} a6 "nbytes" 08 a4 "data" 91 c4 08 00 00 00 00 00 00 00 00"#
    ));
    // bins that do not add up to nbytes
    mal(&format!(
        r#"86 {head} a6 "nbytes" 10 a4 "data" 91 c4 08 00 00 00 00 00 00 00 00"#
    ));
    mal(&format!(r#"86 {head} a6 "nbytes" 10 a4 "data" 90"#));
    // a str where a bin belongs
    mal(&format!(
        r#"86 {head} a6 "nbytes" 10 a4 "data" 91 b0 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"#
    ));
    // unknown and repeated keys, nd false, both nd and vlen, vlen-typed ndarray
    mal(&format!(r#"87 {head} a6 "nbytes" 00 a4 "data" 90 a1 "x" c0"#).replace("91 02", "91 00"));
    mal(
        &format!(r#"87 {head} a6 "nbytes" 00 a4 "data" 90 a4 "kind" a0"#).replace("91 02", "91 00"),
    );
    mal(
        r#"86 a2 6e 64 c2 a4 "type" a3 "<f8" a4 "kind" a0 a5 "shape" 90 a6 "nbytes" 00 a4 "data" 90"#,
    );
    mal(r#"84 a2 6e 64 c3 a4 "vlen" c3 a5 "shape" 90 a4 "data" 90"#);
    mal(
        r#"86 a2 6e 64 c3 a4 "type" a3 "str" a4 "kind" a0 a5 "shape" 90 a6 "nbytes" 00 a4 "data" 90"#,
    );
    mal(r#"85 a2 6e 64 c3 a4 "type" a3 "<f8" a4 "kind" a0 a5 "shape" 90 a4 "data" 90"#);
    // vlen with the wrong number of entries
    mal(r#"83 a4 "vlen" c3 a5 "shape" 91 02 a4 "data" 91 a1 "x""#);
    // not a map at all
    mal("c0");
    assert!(matches!(
        decode_array(&b(
            r#"86 a2 6e 64 c3 a4 "type" a3 "<q8" a4 "kind" a0 a5 "shape" 90 a6 "nbytes" 00 a4 "data" 90"#
        )),
        Err(DecodeError::UnsupportedType { .. })
    ));
}

#[test]
fn key_order_does_not_matter_for_whole_decoding() {
    let body = b(
        r#"86 a4 "data" 91 c4 08 00 00 00 00 00 00 f0 3f a5 "shape" 91 01 a6 "nbytes" 08
        a4 "kind" a0 a4 "type" a3 "<f8" a2 6e 64 c3"#,
    );
    assert_eq!(decode_array(&body).unwrap(), f8(vec![1.0], vec![1]));
    let file = b(r#"83 ad "last_modified" 00 a4 "size" 01 a4 "type" a1 "x""#);
    assert!(decode_path(&file).is_ok());
}

#[test]
fn big_endian_payloads_become_native_and_encode_back() {
    let body = b(
        r#"86 a2 6e 64 c3 a4 "type" a3 ">i4" a4 "kind" a0 a5 "shape" 92 01 02 a6 "nbytes" 08 a4 "data" 92 c4 03 00 00 01 c4 05 02 ff ff ff fe"#,
    );
    let a = decode_array(&body).unwrap();
    let ArrayData::Nd(nd) = &a else { panic!() };
    assert_eq!(nd.data, TypedBuffer::I32(vec![258, -2]));
    assert_eq!(nd.dtype.to_string(), ">i4");
    assert_eq!(
        encode_array_with_max_bin(&a, 5),
        b(
            r#"86 a2 6e 64 c3 a4 "type" a3 ">i4" a4 "kind" a0 a5 "shape" 92 01 02 a6 "nbytes" 08 a4 "data" 92 c4 05 00 00 01 02 ff c4 03 ff ff fe"#
        )
    );
}

#[test]
fn vlen_arrays() {
    let v = ArrayData::Vlen(VlenArray {
        shape: vec![2, 2],
        elements: vec![
            VlenElement::String(b"abc".to_vec()),
            VlenElement::String(vec![0xff, 0xfe]), // not UTF-8: kept as bytes
            VlenElement::Array(ArrayData::Nd(NdArray {
                dtype: Dtype::parse("<u2").unwrap(),
                shape: vec![2],
                data: TypedBuffer::U16(vec![1, 65535]),
            })),
            VlenElement::Array(ArrayData::Vlen(VlenArray {
                shape: vec![1],
                elements: vec![VlenElement::String(vec![])],
            })),
        ],
    });
    let body = encode_array(&v);
    assert!(body.starts_with(&b(
        r#"83 a4 "vlen" c3 a5 "shape" 92 02 02 a4 "data" 94 a3 "abc""#
    )));
    assert_eq!(decode_array(&body).unwrap(), v);
}

#[test]
fn bins_split_payload_anywhere() {
    let a = f8((0..100).map(f64::from).collect(), vec![10, 10]);
    for max in [1, 3, 7, 8, 799, 800, 801, 1 << 20] {
        let body = encode_array_with_max_bin(&a, max);
        assert_eq!(decode_array(&body).unwrap(), a, "max bin {max}");
    }
    assert_eq!(bin_lengths_with_max(10, 4).collect::<Vec<_>>(), [4, 4, 2]);
    assert_eq!(bin_lengths(0).count(), 0);
    assert_eq!(
        bin_lengths(u64::from(u32::MAX) * 2 + 1).collect::<Vec<_>>(),
        [u64::from(u32::MAX), u64::from(u32::MAX), 1]
    );
    assert_eq!(bin_header(255), [0xc4, 0xff]);
    assert_eq!(bin_header(256), [0xc5, 0x01, 0x00]);
    assert_eq!(bin_header(65536), [0xc6, 0, 1, 0, 0]);
    // More than 15 bins: array16 header.
    let body = encode_array_with_max_bin(&a, 8);
    assert!(body.windows(3).any(|w| w == [0xdc, 0x00, 100]));
}

#[test]
fn hostile_lengths_and_nesting_fail_fast() {
    // A map32/array32/bin32 claiming 4 billion entries in a tiny body.
    for s in ["df ff ff ff ff", "dd ff ff ff ff", "c6 ff ff ff ff"] {
        assert!(matches!(
            decode_array(&b(s)),
            Err(DecodeError::Truncated { .. } | DecodeError::Malformed { .. })
        ));
    }
    let body = b(
        r#"86 a2 6e 64 c3 a4 "type" a3 "<f8" a4 "kind" a0 a5 "shape" 91 01 a6 "nbytes" 08 a4 "data" dd ff ff ff ff c4 08"#,
    );
    assert!(matches!(
        decode_array(&body),
        Err(DecodeError::Truncated { .. })
    ));
    // Deeply nested descriptor and objects: an error, not a stack overflow.
    let mut deep = b(r#"86 a2 6e 64 c3 a4 "type""#);
    deep.extend(std::iter::repeat_n(0x91, 100_000));
    deep.push(0xc0);
    assert!(decode_array(&deep).is_err());
    let mut deep = Vec::new();
    for _ in 0..10_000 {
        deep.extend(b(
            r#"83 ab "hdf5_object" a5 "group" aa "attributes" 80 a7 "members" 81 a1 "g""#,
        ));
    }
    deep.push(0xc0);
    assert!(matches!(
        decode_object(&deep),
        Err(DecodeError::Malformed { .. })
    ));
    // A huge (but consistent) nbytes cannot be allocated: an error, not an abort.
    let body = b(
        r#"86 a2 6e 64 c3 a4 "type" a3 "<f8" a4 "kind" a0 a5 "shape" 91 cf 10 00 00 00 00 00 00 00 a6 "nbytes" cf 80 00 00 00 00 00 00 00 a4 "data" 90"#,
    );
    assert!(decode_array(&body).is_err());
}

/// Error messages quote a hostile name or descriptor only in part (the fuzzer spent a tenth
/// of its time escaping long mutated keys into messages as long as the body).
#[test]
fn error_messages_quote_only_the_start_of_long_names() {
    let key = "k".repeat(100_000);
    let mut body = vec![0x81, 0xdb];
    body.extend_from_slice(&(key.len() as u32).to_be_bytes());
    body.extend_from_slice(key.as_bytes());
    body.push(0xc0);
    for e in [
        decode_object(&body).unwrap_err(),
        decode_path(&body).unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(
            msg.contains("unexpected key \"kkkk") && msg.len() < 200,
            "{msg}"
        );
    }
    // A descriptor of 20,000 strings.
    let mut body = b(r#"86 a2 6e 64 c3 a4 "type" dc 4e 20"#);
    body.extend(std::iter::repeat_n([0xa1, b'x'], 20_000).flatten());
    body.extend(b(
        r#"a4 "kind" a0 a5 "shape" 90 a6 "nbytes" 01 a4 "data" 90"#,
    ));
    let Err(DecodeError::UnsupportedType { descriptor }) = decode_array(&body) else {
        panic!("not an unsupported type");
    };
    assert!(descriptor.starts_with("[\"x\", \"x\"") && descriptor.chars().count() <= 257);
}
