//! Requests: the Python client's exact bodies and the reference server's validation.

mod common;

use common::b;
use hdfstream_protocol::{DimSelection as D, ObjectRequest, RequestError, SliceSpec};

fn err(status: u16, message: &str) -> RequestError {
    RequestError {
        status,
        message: message.into(),
    }
}

fn spec(runs: &[(u64, u64)], rest: &[(u64, u64)]) -> SliceSpec {
    SliceSpec::new(
        runs.iter().map(|&(s, c)| D::new(s, c)).collect(),
        rest.iter().map(|&(s, c)| D::new(s, c)).collect(),
    )
}

#[test]
fn python_client_bodies() {
    assert_eq!(ObjectRequest::path().encode_body(), [0x80]);
    let obj = ObjectRequest::object("/", 0, 0).encode_body();
    assert_eq!(
        obj,
        b(r#"83 a6 "object" a1 "/" af "data_size_limit" 00 a9 "max_depth" 00"#)
    );
    assert_eq!(obj.len(), 38);
    let s =
        ObjectRequest::slice("/PartType1/Coordinates", spec(&[(500, 1)], &[(0, 3)])).encode_body();
    assert_eq!(
        s,
        b(r#"82 a6 "object" b6 "/PartType1/Coordinates" a5 "slice" 92 92 cd 01 f4 01 92 00 03"#)
    );
    assert_eq!(s.len(), 46);
    // Several runs: [[[starts], [counts]], [0, 3]]
    let m = spec(&[(5, 4), (17, 1), (19, 2), (100, 4)], &[(0, 3)]);
    assert_eq!(
        m.to_msgpack(),
        b("92 92 94 05 11 13 64 94 04 01 02 04 92 00 03")
    );
    assert_eq!(SliceSpec::scalar().to_msgpack(), [0x90]);
    // A limit beyond 32 bits and depth 5.
    let o = ObjectRequest::object("/a", 1 << 40, 5).encode_body();
    assert_eq!(
        o,
        b(
            r#"83 a6 "object" a2 "/a" af "data_size_limit" cf 00 00 01 00 00 00 00 00 a9 "max_depth" 05"#
        )
    );
}

#[test]
fn bodies_decode_to_the_same_request() {
    for r in [
        ObjectRequest::path(),
        ObjectRequest::object("/Header", 1 << 20, 5),
        ObjectRequest::slice("/x", spec(&[(0, 10)], &[])),
        ObjectRequest::slice("/x", spec(&[(0, 10), (20, 5)], &[(1, 2), (0, 7)])),
        ObjectRequest::slice("/scalar", SliceSpec::scalar()),
    ] {
        assert_eq!(ObjectRequest::decode_body(&r.encode_body()).unwrap(), r);
    }
}

#[test]
fn slice_forms_accepted_by_the_server() {
    let dec = |s: &str| {
        ObjectRequest::decode_body(&b(&format!(r#"82 a6 "object" a2 "/x" a5 "slice" {s}"#)))
    };
    // start array with a single count, and with one count per slice
    assert_eq!(
        dec("91 92 92 00 0a 05").unwrap().slice.unwrap(),
        spec(&[(0, 5), (10, 5)], &[])
    );
    assert_eq!(
        dec("91 92 92 00 0a 91 05").unwrap().slice.unwrap(),
        spec(&[(0, 5), (10, 5)], &[])
    );
    assert_eq!(
        dec("91 92 92 00 0a 92 05 06").unwrap().slice.unwrap(),
        spec(&[(0, 5), (10, 6)], &[])
    );
    // later dims as 1-element arrays; wide ints
    assert_eq!(
        dec("92 92 cf 00 00 00 00 00 00 00 01 02 92 91 00 91 d0 03")
            .unwrap()
            .slice
            .unwrap(),
        spec(&[(1, 2)], &[(0, 3)])
    );
    // the string form inside a POST body
    assert_eq!(
        dec(r#"a8 "0:10,0:3""#).unwrap().slice.unwrap(),
        spec(&[(0, 10)], &[(0, 3)])
    );
    assert_eq!(dec("90").unwrap().slice.unwrap(), SliceSpec::scalar());
}

#[test]
fn server_side_body_errors() {
    let dec = ObjectRequest::decode_body;
    let undecodable = |r: Result<ObjectRequest, RequestError>| {
        let e = r.unwrap_err();
        assert_eq!(e.status, 400);
        assert!(
            e.message.starts_with("Unable to decode request: "),
            "{}",
            e.message
        );
    };
    undecodable(dec(b""));
    undecodable(dec(&b("91 00")));
    undecodable(dec(&b("81 01 02")));
    undecodable(dec(&b(r#"81 a6 "object" 05"#)));
    undecodable(dec(&b(r#"81 a9 "max_depth" a1 "5""#)));
    undecodable(dec(&b(r#"81 a9 "max_depth" ce 80 00 00 00"#)));
    undecodable(dec(&b(r#"81 a9 "max_depth" cb 3f f0 00 00 00 00 00 00"#)));
    undecodable(dec(&b(
        r#"81 af "data_size_limit" cf 80 00 00 00 00 00 00 00"#,
    )));
    undecodable(dec(&b(r#"81 a6 "object""#)));
    undecodable(dec(&b("80 c0")));
    undecodable(dec(&b("df ff ff ff ff")));
    assert_eq!(
        dec(&b(
            r#"85 a1 "a" 00 a1 "b" 00 a1 "c" 00 a1 "d" 00 a1 "e" 00"#
        )),
        Err(err(400, "Too many parameters in msgpack request"))
    );
    assert_eq!(
        dec(&b(r#"82 a6 "object" a1 "/" a6 "object" a1 "/""#)),
        Err(err(400, "Duplicate parameter: object"))
    );
    assert_eq!(
        dec(&b(r#"81 a8 "max_size" 00"#)),
        Err(err(400, "Unrecognized parameter: max_size"))
    );
    assert_eq!(
        dec(&b(r#"81 a9 "max_depth" ff"#)),
        Err(err(400, "max_depth must not be negative"))
    );
    assert_eq!(
        dec(&b(r#"81 af "data_size_limit" d0 80"#)),
        Err(err(400, "data_size_limit must not be negative"))
    );
    assert_eq!(
        dec(&b(r#"81 a5 "slice" 90"#)),
        Err(err(
            400,
            "Can't specify slicing parameters without object name"
        ))
    );
    assert_eq!(
        dec(&b(r#"81 a6 "object" a2 "/\""#)
            .iter()
            .copied()
            .map(|c| if c == b'\\' { 0x07 } else { c })
            .collect::<Vec<_>>())
        .unwrap_err()
        .message,
        "Object names must contain printable ascii characters only"
    );
    let mut long = b(r#"81 a6 "object" da 10 01"#);
    long.extend(std::iter::repeat_n(b'a', 4097));
    assert_eq!(dec(&long), Err(err(400, "Object name is too long")));
    assert_eq!(
        dec(&b(r#"81 a9 "max_depth" ce 7f ff ff ff"#))
            .unwrap()
            .max_depth,
        Some(i32::MAX as u32)
    );
}

#[test]
fn server_side_slice_errors() {
    let dec = |s: &str| {
        ObjectRequest::decode_body(&b(&format!(r#"82 a6 "object" a2 "/x" a5 "slice" {s}"#)))
    };
    let bad = |s: &str, msg: &str| assert_eq!(dec(s), Err(err(400, msg)), "{s}");
    bad(
        "91 93 00 01 02",
        "Expected two element array for each slice dimension",
    );
    bad(
        "91 00",
        "Expected two element array for each slice dimension",
    );
    bad(
        "91 92 90 01",
        "Start and count arrays must not have zero length",
    );
    bad(
        "91 92 00 90",
        "Start and count arrays must not have zero length",
    );
    bad(
        "91 92 92 00 01 93 01 01 01",
        "Start and count arrays must have the same length",
    );
    bad(
        "91 92 00 92 01 01",
        "Start and count arrays must have the same length",
    );
    bad(
        "92 92 00 01 92 92 00 01 01",
        "Slices may only differ in the first dimension",
    );
    bad(
        "92 92 00 01 92 00 92 01 01",
        "Slices may only differ in the first dimension",
    );
    bad(
        "99 92 00 01 92 00 01 92 00 01 92 00 01 92 00 01 92 00 01 92 00 01 92 00 01 92 00 01",
        "Too many dimensions",
    );
    bad(
        "91 92 cb 3f f0 00 00 00 00 00 00 01",
        "Slice start must be an integer",
    );
    bad("91 92 00 a1 \"1\"", "Slice count must be an integer");
    bad(r#"a2 "0:""#, "Unable to parse stop index as integer");
    // Negative starts pass the Java decoder and fail in the C library: 404.
    assert_eq!(dec("91 92 ff 01").unwrap_err().status, 404);
    assert_eq!(dec("91 92 00 ff").unwrap_err().status, 404);
    // Declared lengths beyond the body: a decode error, no allocation.
    assert_eq!(dec("91 92 dd 01 00 00 01 00").unwrap_err().status, 400);
    // More than 2^24 starts (a real 16 MiB body).
    let mut big = b(r#"82 a6 "object" a2 "/x" a5 "slice" 91 92 dd 01 00 00 01"#);
    big.extend(std::iter::repeat_n(0u8, (1 << 24) + 2));
    assert_eq!(
        ObjectRequest::decode_body(&big),
        Err(err(400, "Too many slices"))
    );
}

#[test]
fn string_form() {
    let p = SliceSpec::parse_str;
    assert_eq!(
        p("0:10,0:3;30:40,0:3").unwrap(),
        spec(&[(0, 10), (30, 10)], &[(0, 3)])
    );
    assert_eq!(p(" 5 , 1 : 3 ").unwrap(), spec(&[(5, 1)], &[(1, 2)]));
    assert_eq!(p("").unwrap(), SliceSpec::scalar());
    assert_eq!(p("7:7").unwrap(), spec(&[(7, 0)], &[]));
    for (s, msg) in [
        ("0:", "Unable to parse stop index as integer"),
        (":10", "Unable to parse start index as integer"),
        (":", "Unable to parse start index as integer"),
        ("...", "Unable to parse start index as integer"),
        ("0:10:2", "Unable to parse stop index as integer"),
        ("-1:3", "Slice indexes must not be negative"),
        ("0:-3", "Slice indexes must not be negative"),
        ("5:3", "Slice stop index must not be less than start index"),
        (
            "0:1,0:1;2:3",
            "All slices must have the same number of dimensions",
        ),
        (
            "0:1,0:1;2:3,0:2",
            "Slices may only differ in the first dimension",
        ),
        ("0,0,0,0,0,0,0,0,0", "Too many dimensions"),
        ("0:10;", "Unable to parse start index as integer"),
        ("1.5", "Unable to parse start index as integer"),
        (
            "99999999999999999999",
            "Unable to parse start index as integer",
        ),
    ] {
        assert_eq!(p(s), Err(err(400, msg)), "{s:?}");
    }
    let s = spec(&[(0, 10), (30, 10)], &[(0, 3)]);
    assert_eq!(s.to_query_string(), "0:10,0:3;30:40,0:3");
    assert_eq!(p(&s.to_query_string()).unwrap(), s);
    assert_eq!(SliceSpec::scalar().to_query_string(), "");
    assert_eq!(
        p(&"x".repeat((8 << 20) + 1)),
        Err(err(400, "Slice string is too long"))
    );
}

#[test]
fn shapes_and_counts() {
    let s = spec(&[(0, 10), (30, 5)], &[(1, 2), (0, 4)]);
    assert_eq!(s.rank(), 3);
    assert_eq!(s.result_shape(), [15, 2, 4]);
    assert_eq!(s.element_count(), 120);
    assert_eq!(SliceSpec::scalar().result_shape(), Vec::<u64>::new());
    assert_eq!(SliceSpec::scalar().element_count(), 1);
    assert_eq!(spec(&[(0, 0)], &[(0, 3)]).element_count(), 0);
    assert_eq!(
        SliceSpec::hyperslab(&[D::new(1, 2), D::new(3, 4)]),
        spec(&[(1, 2)], &[(3, 4)])
    );
}

#[test]
fn check_against_dataset_shapes() {
    let shape = [10, 3];
    let ok = |s: SliceSpec| assert_eq!(s.check_against(&shape), Ok(()), "{s:?}");
    let no = |s: SliceSpec, shape: &[u64]| {
        assert_eq!(s.check_against(shape).unwrap_err().status, 404, "{s:?}")
    };
    ok(spec(&[(0, 10)], &[(0, 3)]));
    ok(spec(&[(0, 5), (5, 5)], &[(1, 2)]));
    ok(spec(&[(10, 0)], &[(0, 3)]));
    ok(spec(&[(0, 0), (0, 3)], &[(0, 3)]));
    no(spec(&[(11, 0)], &[(0, 3)]), &shape);
    no(spec(&[(0, 11)], &[(0, 3)]), &shape);
    no(spec(&[(0, 10)], &[(1, 3)]), &shape);
    no(spec(&[(0, 10)], &[]), &shape);
    no(spec(&[(3, 1), (4, 1), (6, 1), (5, 1)], &[(0, 3)]), &shape);
    no(spec(&[(3, 1), (4, 1), (5, 1), (5, 1)], &[(0, 3)]), &shape);
    no(spec(&[(u64::MAX, 2)], &[(0, 3)]), &shape);
    no(SliceSpec::scalar(), &shape);
    assert_eq!(SliceSpec::scalar().check_against(&[]), Ok(()));
    no(spec(&[(0, 1)], &[]), &[]);
}

#[test]
fn query_strings() {
    let q = ObjectRequest::from_query;
    assert_eq!(q("").unwrap(), ObjectRequest::default());
    let r = q("object=%2FPartType1%2FCoordinates&slice=0%3A10,0:3&max_depth=%2B2&data_size_limit=0&other=1").unwrap();
    assert_eq!(r.object.as_deref(), Some("/PartType1/Coordinates"));
    assert_eq!(r.slice, Some(spec(&[(0, 10)], &[(0, 3)])));
    assert_eq!((r.max_depth, r.data_size_limit), (Some(2), Some(0)));
    assert_eq!(
        q("object=a+b&object=c").unwrap().object.as_deref(),
        Some("a b")
    );
    assert_eq!(q("object=%zz").unwrap().object.as_deref(), Some("%zz"));
    assert_eq!(q("object=%2").unwrap().object.as_deref(), Some("%2"));
    // Empty pairs are skipped; escaped `&`, `=` and `+` belong to the value.
    assert_eq!(
        q("&&object=%2Fa%26b%3Dc%2Bd&&").unwrap().object.as_deref(),
        Some("/a&b=c+d")
    );
    for (s, msg) in [
        (
            "max_depth=",
            "Unable to interpret max_depth parameter as integer",
        ),
        (
            "max_depth=1.0",
            "Unable to interpret max_depth parameter as integer",
        ),
        (
            "max_depth=%201",
            "Unable to interpret max_depth parameter as integer",
        ),
        (
            "max_depth=2147483648",
            "Unable to interpret max_depth parameter as integer",
        ),
        ("max_depth=-1", "max_depth must not be negative"),
        (
            "data_size_limit=4294967296",
            "Unable to interpret data_size_limit parameter as integer",
        ),
        ("data_size_limit=-5", "data_size_limit must not be negative"),
        (
            "slice=0:3",
            "Can't specify slicing parameters without object name",
        ),
        ("object=x&slice=0:", "Unable to parse stop index as integer"),
        (
            "object=%C3%A9",
            "Object names must contain printable ascii characters only",
        ),
    ] {
        assert_eq!(q(s), Err(err(400, msg)), "{s}");
    }
}
