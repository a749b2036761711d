//! Type descriptors of PROTOCOL.md §6.

use hdfstream_protocol::{ByteOrder, DecodeError, Dtype};
use rmpv::Value;

fn v(s: &str) -> Value {
    Value::from(s)
}

fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn dims(d: &[u64]) -> Value {
    Value::Array(d.iter().map(|&x| Value::from(x)).collect())
}

#[test]
fn atomic_descriptors_parse_and_print_back() {
    for s in [
        "<i1", "<i2", "<i4", "<i8", "<u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8", "<f16", ">i2",
        ">u8", ">f4", ">f8", "|u1", "|i1", "=f8", "=i4", "S1", "S200", "S534", "str",
    ] {
        let t = Dtype::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(t.to_string(), s);
        assert_eq!(t.descriptor(), v(s));
        assert_eq!(t.kind(), "");
        assert_eq!(s.parse::<Dtype>().unwrap(), t);
        assert_eq!(Dtype::from_wire(&v(s), "").unwrap(), t);
    }
    assert_eq!(
        Dtype::parse("|S10").unwrap(),
        Dtype::FixedString { len: 10 }
    );
    assert_eq!(
        Dtype::parse(">f8").unwrap(),
        Dtype::Float {
            size: 8,
            order: ByteOrder::Big
        }
    );
    assert_eq!(Dtype::parse("<f16").unwrap().item_size(), Some(16));
}

#[test]
fn bad_atomic_descriptors_are_unsupported() {
    for s in [
        "",
        "<",
        "S",
        "S0",
        "<i3",
        "<f1",
        "<u16",
        "i4",
        "<S10",
        "x8",
        "<x8",
        "<i08",
        "str2",
        "<i 4",
        "<i4 ",
        "<f99999999999999999999",
        "<b1",
        "\u{fffd}f4",
        "<\u{e9}4",
        "S\u{e9}",
        "O",
        "<c16",
        "<M8",
    ] {
        assert!(
            matches!(Dtype::parse(s), Err(DecodeError::UnsupportedType { .. })),
            "{s:?} should be unsupported"
        );
    }
}

#[test]
fn sizes() {
    let p = |s| Dtype::parse(s).unwrap();
    assert_eq!(p("<i2").item_size(), Some(2));
    assert_eq!(p("S7").item_size(), Some(7));
    assert_eq!(p("str").item_size(), None);
    assert!(!p("str").is_fixed_size());
    assert_eq!(Dtype::Vlen(Box::new(p("<i4"))).item_size(), None);
    let a = Dtype::Array {
        base: Box::new(p("<f4")),
        dims: vec![2, 3],
    };
    assert_eq!(a.item_size(), Some(24));
    let c = Dtype::Compound(vec![
        ("x".into(), p("<f8")),
        ("n".into(), p("<u2")),
        ("a".into(), a),
    ]);
    assert_eq!(c.item_size(), Some(34));
    let huge = Dtype::Array {
        base: Box::new(p("<f8")),
        dims: vec![u64::MAX, 2],
    };
    assert_eq!(huge.item_size(), None);
}

#[test]
fn vlen_via_kind_v() {
    let t = Dtype::from_wire(&v("<i4"), "V").unwrap();
    assert_eq!(t, Dtype::Vlen(Box::new(Dtype::parse("<i4").unwrap())));
    assert_eq!(
        (t.kind(), t.descriptor(), t.to_string()),
        ("V", v("<i4"), "vlen(<i4)".to_string())
    );
    // A vlen string is "str" with kind "".
    assert_eq!(Dtype::from_wire(&v("str"), "").unwrap(), Dtype::VlenString);
    assert!(matches!(
        Dtype::from_wire(&v("<i4"), "X"),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        Dtype::from_wire(&Value::from(3), ""),
        Err(DecodeError::UnsupportedType { .. })
    ));
}

#[test]
fn array_and_compound_descriptors() {
    // [T, [dims]]
    let d = arr(vec![v("<f8"), dims(&[3])]);
    let t = Dtype::from_wire(&d, "V").unwrap();
    assert_eq!(
        t,
        Dtype::Array {
            base: Box::new(Dtype::parse("<f8").unwrap()),
            dims: vec![3]
        }
    );
    assert_eq!(
        (t.kind(), t.descriptor(), t.to_string()),
        ("V", d, "(3)<f8".to_string())
    );

    // [[name, T], ...], with the array-member quirk [name, [name, T], [dims]].
    let d = arr(vec![
        arr(vec![v("pos"), v("<f4")]),
        arr(vec![v("id"), v(">u8")]),
        arr(vec![v("vel"), arr(vec![v("vel"), v("<f8")]), dims(&[2, 3])]),
        arr(vec![v("name"), v("S5")]),
    ]);
    let t = Dtype::from_wire(&d, "V").unwrap();
    let Dtype::Compound(fields) = &t else {
        panic!("{t:?}")
    };
    assert_eq!(fields.len(), 4);
    assert_eq!(
        fields[2],
        (
            "vel".to_string(),
            Dtype::Array {
                base: Box::new(Dtype::parse("<f8").unwrap()),
                dims: vec![2, 3]
            }
        )
    );
    assert_eq!(t.item_size(), Some(4 + 8 + 48 + 5));
    assert_eq!(t.descriptor(), d, "the quirk is written back");
    assert_eq!(
        t.to_string(),
        "{pos: <f4, id: >u8, vel: (2,3)<f8, name: S5}"
    );

    // A two-field compound is not mistaken for an array.
    let d = arr(vec![
        arr(vec![v("a"), v("<i4")]),
        arr(vec![v("b"), v("<i2")]),
    ]);
    assert!(matches!(Dtype::from_wire(&d, "V").unwrap(), Dtype::Compound(f) if f.len() == 2));

    // Array of compound.
    let d = arr(vec![arr(vec![arr(vec![v("a"), v("<i4")])]), dims(&[4])]);
    assert_eq!(Dtype::from_wire(&d, "V").unwrap().item_size(), Some(16));
}

#[test]
fn malformed_compounds_are_unsupported() {
    let unsupported = |d: Value| {
        assert!(
            matches!(
                Dtype::from_wire(&d, "V"),
                Err(DecodeError::UnsupportedType { .. })
            ),
            "{d}"
        );
    };
    unsupported(arr(vec![]));
    unsupported(arr(vec![v("<f8"), dims(&[])]));
    unsupported(arr(vec![v("<f8"), dims(&[0])]));
    unsupported(arr(vec![v("str"), dims(&[2])]));
    unsupported(arr(vec![arr(vec![v("a")])]));
    unsupported(arr(vec![arr(vec![v("a"), v("<q8")])]));
    unsupported(arr(vec![arr(vec![v("a"), v("str")])]));
    // A nested compound member without its name (server quirk): unsupported.
    unsupported(arr(vec![arr(vec![
        arr(vec![v("x"), v("<f4")]),
        arr(vec![v("y"), v("<f4")]),
    ])]));
    unsupported(arr(vec![arr(vec![Value::from(1), v("<f4")])]));
}

#[test]
fn native_and_swapping() {
    let big = Dtype::parse(">i4").unwrap();
    assert_eq!(big.native(), Dtype::parse("<i4").unwrap());
    assert_eq!(
        Dtype::parse("|u1").unwrap().native(),
        Dtype::parse("<u1").unwrap()
    );
    assert_eq!(
        Dtype::parse("=f8").unwrap().native(),
        Dtype::parse("<f8").unwrap()
    );
    assert!(big.needs_swap());
    assert!(!Dtype::parse("<f8").unwrap().needs_swap());
    assert!(!Dtype::parse(">u1").unwrap().needs_swap());

    let mut b = [0, 0, 0, 1, 0, 0, 0, 2];
    big.swap_in_place(&mut b);
    assert_eq!(b, [1, 0, 0, 0, 2, 0, 0, 0]);

    // Compound: only the big-endian numeric members turn around.
    let c = Dtype::Compound(vec![
        ("a".into(), Dtype::parse(">u2").unwrap()),
        ("s".into(), Dtype::parse("S3").unwrap()),
        (
            "b".into(),
            Dtype::Array {
                base: Box::new(Dtype::parse(">u2").unwrap()),
                dims: vec![2],
            },
        ),
        ("c".into(), Dtype::parse("<u2").unwrap()),
    ]);
    assert_eq!(c.native().to_string(), "{a: <u2, s: S3, b: (2)<u2, c: <u2}");
    let mut e = [1, 2, b'x', b'y', b'z', 3, 4, 5, 6, 7, 8];
    c.swap_in_place(&mut e);
    assert_eq!(e, [2, 1, b'x', b'y', b'z', 4, 3, 6, 5, 7, 8]);
}
