//! Type corner cases built with the raw libhdf5 API: big-endian data, space-padded strings,
//! non-boolean enums, null dataspaces, compounds with array members, and types the server
//! must refuse (nested VLEN, opaque, bitfield) or report as unknown (named datatypes).

mod hdf5_util;

use std::ffi::CString;
use std::path::Path;
use std::ptr::null;

use hdf5_metno::{File, H5Type};
use hdf5_metno_sys::h5::hsize_t;
use hdf5_metno_sys::h5a::{H5Aclose, H5Acreate2, H5Awrite};
use hdf5_metno_sys::h5d::{H5Dclose, H5Dcreate2, H5Dwrite};
use hdf5_metno_sys::h5f::{H5F_ACC_TRUNC, H5Fclose, H5Fcreate};
use hdf5_metno_sys::h5i::hid_t;
use hdf5_metno_sys::h5p::H5P_DEFAULT;
use hdf5_metno_sys::h5s::{H5S_ALL, H5S_class_t, H5Sclose, H5Screate, H5Screate_simple};
use hdf5_metno_sys::h5t::{
    H5T_C_S1, H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, H5T_NATIVE_INT, H5T_STD_B8LE, H5T_STD_I16LE,
    H5T_STD_I32BE, H5T_class_t, H5T_str_t, H5Tclose, H5Tcommit2, H5Tcopy, H5Tcreate,
    H5Tenum_create, H5Tenum_insert, H5Tset_size, H5Tset_strpad, H5Tvlen_create,
};
use hdf5_util::*;
use hdfstream_server::hdf5::Hdf5Files;
use rmpv::Value;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Creates dataset `name` of `ty` and shape `dims`, writing `data` (with memory type `mem`)
/// unless it is `None`.
///
/// # Safety
/// `data` must hold the elements the shape needs in `mem`'s layout.
unsafe fn dataset(
    f: hid_t,
    name: &str,
    ty: hid_t,
    dims: &[hsize_t],
    mem: hid_t,
    data: Option<*const u8>,
) {
    unsafe {
        let sp = H5Screate_simple(dims.len() as i32, dims.as_ptr(), null());
        let d = H5Dcreate2(
            f,
            c(name).as_ptr(),
            ty,
            sp,
            H5P_DEFAULT,
            H5P_DEFAULT,
            H5P_DEFAULT,
        );
        assert!(d >= 0, "create {name}");
        if let Some(p) = data {
            assert!(
                H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.cast()) >= 0,
                "write {name}"
            );
        }
        H5Dclose(d);
        H5Sclose(sp);
    }
}

fn write_raw_file(path: &Path) {
    hdf5_metno::sync::sync(|| unsafe {
        let f = H5Fcreate(
            c(path.to_str().unwrap()).as_ptr(),
            H5F_ACC_TRUNC,
            H5P_DEFAULT,
            H5P_DEFAULT,
        );
        assert!(f >= 0);
        let be = [1.5f64, -2.25, 1e300, 0.0];
        dataset(
            f,
            "be_f8",
            *H5T_IEEE_F64BE,
            &[4],
            *H5T_NATIVE_DOUBLE,
            Some(be.as_ptr().cast()),
        );
        let bi = [7i32, -70000, 3];
        dataset(
            f,
            "be_i4",
            *H5T_STD_I32BE,
            &[3],
            *H5T_NATIVE_INT,
            Some(bi.as_ptr().cast()),
        );
        let st = H5Tcopy(*H5T_C_S1);
        H5Tset_size(st, 6);
        H5Tset_strpad(st, H5T_str_t::H5T_STR_SPACEPAD);
        dataset(f, "spaced", st, &[2], st, Some(b"ab    cdef  ".as_ptr()));
        H5Tclose(st);
        let en = H5Tenum_create(*H5T_STD_I16LE);
        H5Tenum_insert(en, c("LOW").as_ptr(), (&-1i16 as *const i16).cast());
        H5Tenum_insert(en, c("HIGH").as_ptr(), (&300i16 as *const i16).cast());
        let ev = [-1i16, 300, -1];
        dataset(f, "enum_i2", en, &[3], en, Some(ev.as_ptr().cast()));
        H5Tclose(en);
        let inner = H5Tvlen_create(*H5T_NATIVE_INT);
        let nested = H5Tvlen_create(inner);
        dataset(f, "vlen_of_vlen", nested, &[2], nested, None);
        H5Tclose(nested);
        H5Tclose(inner);
        let op = H5Tcreate(H5T_class_t::H5T_OPAQUE, 4);
        dataset(f, "opaque", op, &[2], op, None);
        H5Tclose(op);
        dataset(f, "bitfield", *H5T_STD_B8LE, &[2], *H5T_STD_B8LE, None);
        H5Fclose(f);
    });
}

/// Compound with an array member.
#[derive(H5Type, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct WithArray {
    tag: u16,
    v: [f32; 3],
    w: f64,
}

fn le_bytes<const N: usize>(xs: impl IntoIterator<Item = [u8; N]>) -> Vec<Elem> {
    xs.into_iter().map(|b| Elem::Bytes(b.to_vec())).collect()
}

#[test]
fn type_corner_cases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("types.h5");
    write_raw_file(&path);
    let recs = [
        WithArray {
            tag: 1,
            v: [0.5, 1.5, 2.5],
            w: -1.0,
        },
        WithArray {
            tag: 65535,
            v: [-0.0, 3.0, 1e30],
            w: 2.0,
        },
    ];
    {
        let f = File::open_rw(&path).unwrap();
        f.new_dataset_builder()
            .with_data(&recs[..])
            .create("compound_array")
            .unwrap();
    }
    let files = Hdf5Files::default();
    let get_data = |name: &str| {
        let v = ask(&files, &path, &object(name, 0, u64::MAX))
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        (
            get(&v, "type").cloned(),
            decode_array(get(&v, "data").unwrap()),
        )
    };
    // Big-endian file types arrive as little-endian native values.
    let (t, a) = get_data("be_f8");
    assert_eq!(t, Some(Value::from("<f8")));
    assert_eq!(
        a.elems,
        le_bytes([1.5f64, -2.25, 1e300, 0.0].map(f64::to_le_bytes))
    );
    let (t, a) = get_data("be_i4");
    assert_eq!(t, Some(Value::from("<i4")));
    assert_eq!(a.elems, le_bytes([7i32, -70000, 3].map(i32::to_le_bytes)));
    // Space padding becomes NUL padding.
    let (t, a) = get_data("spaced");
    assert_eq!(t, Some(Value::from("S6")));
    assert_eq!(
        a.elems,
        vec![
            Elem::Bytes(b"ab\0\0\0\0".to_vec()),
            Elem::Bytes(b"cdef\0\0".to_vec())
        ]
    );
    // Enums arrive as their base integer.
    let (t, a) = get_data("enum_i2");
    assert_eq!(t, Some(Value::from("<i2")));
    assert_eq!(a.elems, le_bytes([-1i16, 300, -1].map(i16::to_le_bytes)));
    // Compound with an array member: packed (2 + 12 + 8 bytes), the reference server's
    // descriptor quirk for array members.
    let (t, a) = get_data("compound_array");
    let field = |n: &str, d: Value| Value::Array(vec![Value::from(n), d]);
    assert_eq!(
        t,
        Some(Value::Array(vec![
            field("tag", Value::from("<u2")),
            Value::Array(vec![
                Value::from("v"),
                field("v", Value::from("<f4")),
                Value::Array(vec![Value::from(3)])
            ]),
            field("w", Value::from("<f8")),
        ]))
    );
    let read: Vec<WithArray> = File::open(&path)
        .unwrap()
        .dataset("compound_array")
        .unwrap()
        .read_raw()
        .unwrap();
    assert_eq!(read, recs);
    let packed: Vec<Elem> = read
        .iter()
        .map(|r| {
            let mut b = r.tag.to_le_bytes().to_vec();
            r.v.iter().for_each(|x| b.extend(x.to_le_bytes()));
            b.extend(r.w.to_le_bytes());
            Elem::Bytes(b)
        })
        .collect();
    assert_eq!(a.elems, packed);
    // Members of unsupported types make the group listing fail before any byte (the
    // reference server cannot encode them either).
    assert_eq!(
        ask(&files, &path, &object("/", 0, 0)).unwrap_err().status,
        404
    );
    for bad in ["vlen_of_vlen", "opaque", "bitfield"] {
        assert_eq!(
            ask(&files, &path, &object(bad, 0, 0)).unwrap_err().status,
            404,
            "{bad}"
        );
        assert_eq!(
            ask(&files, &path, &slice(bad, &[(0, 1)], &[]))
                .unwrap_err()
                .status,
            404,
            "{bad}"
        );
    }
}

/// Attributes with a null dataspace or a big-endian scalar, and named datatypes listed as
/// unknown members.
#[test]
fn null_attributes_and_named_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attrs.h5");
    hdf5_metno::sync::sync(|| unsafe {
        let f = H5Fcreate(
            c(path.to_str().unwrap()).as_ptr(),
            H5F_ACC_TRUNC,
            H5P_DEFAULT,
            H5P_DEFAULT,
        );
        let nul = H5Screate(H5S_class_t::H5S_NULL);
        let a = H5Acreate2(
            f,
            c("nothing").as_ptr(),
            *H5T_NATIVE_INT,
            nul,
            H5P_DEFAULT,
            H5P_DEFAULT,
        );
        H5Aclose(a);
        H5Sclose(nul);
        let sc = H5Screate(H5S_class_t::H5S_SCALAR);
        let a = H5Acreate2(
            f,
            c("scalar_be").as_ptr(),
            *H5T_STD_I32BE,
            sc,
            H5P_DEFAULT,
            H5P_DEFAULT,
        );
        H5Awrite(a, *H5T_NATIVE_INT, (&-5i32 as *const i32).cast());
        H5Aclose(a);
        H5Sclose(sc);
        let named = H5Tcopy(*H5T_NATIVE_INT);
        H5Tcommit2(
            f,
            c("named_type").as_ptr(),
            named,
            H5P_DEFAULT,
            H5P_DEFAULT,
            H5P_DEFAULT,
        );
        H5Tclose(named);
        H5Fclose(f);
    });
    let files = Hdf5Files::default();
    let root = ask(&files, &path, &object("/", 0, 0)).unwrap();
    let attrs = get(&root, "attributes").unwrap();
    assert_eq!(keys(attrs), ["nothing", "scalar_be"]);
    let nothing = decode_array(get(attrs, "nothing").unwrap());
    assert_eq!((nothing.shape, nothing.elems.len()), (vec![0], 0));
    let s = decode_array(get(attrs, "scalar_be").unwrap());
    assert_eq!(s.shape, Vec::<u64>::new());
    assert_eq!(s.dtype, Some(Value::from("<i4")));
    assert_eq!(s.elems, le_bytes([(-5i32).to_le_bytes()]));
    let members = get(&root, "members").unwrap();
    assert_eq!(
        get(members, "named_type"),
        Some(&Value::Map(vec![(
            Value::from("hdf5_object"),
            Value::from("unknown")
        )]))
    );
}
