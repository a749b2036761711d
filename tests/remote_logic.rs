//! Object-layer logic against an in-memory backend: lazy loading (what is requested when),
//! soft links, `contains`/`get_link` rules, link cycles, inline data served locally, and
//! request validation happening before any request.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use hdfstream::remote::Backend;
use hdfstream::selection::gather;
use hdfstream::{
    Error, HasAttrs, Link, Node, Object, OpenOptions, Result, Selection, open_with, sel,
};
use hdfstream_protocol::{
    ArrayData, ByteOrder, DatasetInfo, DirectoryInfo, Dtype, FileInfo, GroupInfo, Member, NdArray,
    PathInfo, SliceSpec, TypedBuffer,
};

const F8: Dtype = Dtype::Float {
    size: 8,
    order: ByteOrder::Little,
};
const I4: Dtype = Dtype::Int {
    size: 4,
    order: ByteOrder::Little,
};

/// Serves a fixed tree; object responses are prepared per path, slices cut from full arrays.
#[derive(Debug, Default)]
struct Mock {
    objects: HashMap<String, Member>,
    arrays: HashMap<String, NdArray>,
    log: Mutex<Vec<String>>,
}

impl Mock {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn slice(&self, object: &str, slice: &SliceSpec) -> Result<NdArray> {
        let a = &self.arrays[object];
        let mut shape = vec![slice.runs.iter().map(|r| r.count).sum::<u64>()];
        shape.extend(slice.rest.iter().map(|r| r.count));
        let data = match &a.data {
            TypedBuffer::F64(v) => TypedBuffer::F64(gather(v, &a.shape, slice)?),
            TypedBuffer::I32(v) => TypedBuffer::I32(gather(v, &a.shape, slice)?),
            other => panic!("mock cannot slice {other:?}"),
        };
        Ok(NdArray {
            dtype: a.dtype.clone(),
            shape,
            data,
        })
    }
}

impl Backend for Mock {
    fn request_path(&self, vpath: &str) -> Result<PathInfo> {
        self.log.lock().unwrap().push(format!("path {vpath}"));
        match vpath {
            "" => Ok(PathInfo::Directory(DirectoryInfo {
                size: 10,
                description: None,
                labels: None,
                files: vec![(
                    "f.hdf5".into(),
                    FileInfo {
                        media_type: "application/x-hdf5".into(),
                        size: 10,
                        last_modified_ms: 5,
                    },
                )],
                directories: vec![],
            })),
            "f.hdf5" => Ok(PathInfo::File(FileInfo {
                media_type: "application/x-hdf5".into(),
                size: 10,
                last_modified_ms: 5,
            })),
            _ => Err(Error::NotFound {
                path: vpath.into(),
                message: "no".into(),
            }),
        }
    }
    fn request_object(&self, _file: &str, object: &str, _d: u32, _l: u64) -> Result<Member> {
        self.log.lock().unwrap().push(format!("object {object}"));
        self.objects
            .get(object)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                path: object.into(),
                message: "no".into(),
            })
    }
    fn request_slice(&self, _file: &str, object: &str, slice: &SliceSpec) -> Result<ArrayData> {
        self.log
            .lock()
            .unwrap()
            .push(format!("slice {object} {:?}", slice.runs));
        Ok(ArrayData::Nd(self.slice(object, slice)?))
    }
    fn request_slice_into(
        &self,
        _f: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
        dest: &mut [u8],
    ) -> Result<()> {
        self.log
            .lock()
            .unwrap()
            .push(format!("slice_into {object} {:?}", slice.runs));
        let a = self.slice(object, slice)?;
        assert_eq!(&a.dtype, dtype);
        let bytes: Vec<u8> = match &a.data {
            TypedBuffer::F64(v) => bytemuck::cast_slice(v).to_vec(),
            TypedBuffer::I32(v) => bytemuck::cast_slice(v).to_vec(),
            _ => unreachable!(),
        };
        assert_eq!(bytes.len(), dest.len());
        dest.copy_from_slice(&bytes);
        Ok(())
    }
    fn download(&self, _vpath: &str, out: &mut dyn Write) -> Result<u64> {
        out.write_all(b"abc").unwrap();
        Ok(3)
    }
}

fn dataset(dtype: Dtype, shape: Vec<u64>, inline: Option<ArrayData>) -> Member {
    let attrs = vec![(
        "unit".to_string(),
        ArrayData::Nd(NdArray {
            dtype: Dtype::FixedString { len: 4 },
            shape: vec![],
            data: TypedBuffer::Bytes {
                item_size: 4,
                data: b"cm\0\0".to_vec(),
            },
        }),
    )];
    Member::Dataset(DatasetInfo {
        attributes: attrs,
        dtype,
        shape,
        data: inline,
    })
}

fn group(members: Vec<(&str, Option<Member>)>) -> Member {
    Member::Group(GroupInfo {
        attributes: vec![],
        members: members
            .into_iter()
            .map(|(n, m)| (n.to_string(), m))
            .collect(),
    })
}

/// `/` = { A: nil group {x: dataset 4x3 f8, Sub: nil group {}}, L: soft -> /A, Loop: soft -> /Loop,
/// small: inline i4 [5], Rel: soft -> A/x }
fn mock() -> Arc<Mock> {
    let xs: Vec<f64> = (0..12).map(|i| i as f64 * 0.5).collect();
    let small = ArrayData::Nd(NdArray {
        dtype: I4,
        shape: vec![5],
        data: TypedBuffer::I32(vec![10, 11, 12, 13, 14]),
    });
    let mut m = Mock::default();
    m.objects.insert(
        "/".into(),
        group(vec![
            ("A", None),
            (
                "L",
                Some(Member::SoftLink {
                    target: "/A".into(),
                }),
            ),
            (
                "Loop",
                Some(Member::SoftLink {
                    target: "/Loop".into(),
                }),
            ),
            (
                "Rel",
                Some(Member::SoftLink {
                    target: "A/x".into(),
                }),
            ),
            ("small", Some(dataset(I4, vec![5], Some(small)))),
        ]),
    );
    m.objects.insert(
        "/A".into(),
        group(vec![
            ("x", Some(dataset(F8, vec![4, 3], None))),
            ("Sub", None),
        ]),
    );
    m.objects.insert("/A/Sub".into(), group(vec![]));
    m.arrays.insert(
        "/A/x".into(),
        NdArray {
            dtype: F8,
            shape: vec![4, 3],
            data: TypedBuffer::F64(xs),
        },
    );
    Arc::new(m)
}

fn open_file(m: &Arc<Mock>) -> Arc<hdfstream::File> {
    let b: Arc<dyn Backend> = m.clone();
    match open_with(b, "/f.hdf5", OpenOptions::default()).unwrap() {
        Node::File(f) => f,
        Node::Directory(_) => panic!("file expected"),
    }
}

#[test]
fn lazy_loading_requests_only_what_is_needed() {
    let m = mock();
    let f = open_file(&m);
    assert_eq!(m.log(), ["path f.hdf5"]);
    assert!(f.contains("/").unwrap());
    assert_eq!(m.log().len(), 1, "'/' in file needs no request");
    assert!(f.contains("A").unwrap());
    assert!(f.contains("A/Sub").unwrap(), "loads A, not Sub");
    assert_eq!(m.log(), ["path f.hdf5", "object /", "object /A"]);
    assert!(
        !f.contains("A/x/y").unwrap(),
        "a dataset in the middle means absent"
    );
    assert!(!f.contains("nope").unwrap());
    let sub = f.group("A/Sub").unwrap();
    assert_eq!(m.log().last().unwrap(), "object /A/Sub");
    assert!(Arc::ptr_eq(&sub, &f.group("/A/./Sub/").unwrap()));
    assert!(Arc::ptr_eq(&sub.parent().unwrap(), &f.group("A").unwrap()));
    assert_eq!(m.log().len(), 4, "nothing requested twice");
}

#[test]
fn soft_links() {
    let m = mock();
    let f = open_file(&m);
    assert_eq!(f.get_link("L").unwrap(), Link::Soft("/A".into()));
    assert_eq!(f.get_link("A").unwrap(), Link::Hard);
    assert!(matches!(f.get_link("/"), Err(Error::NotFound { .. })));
    let via = f.dataset("L/x").unwrap();
    assert_eq!(via.path(), "/A/x");
    assert!(Arc::ptr_eq(&via, &f.dataset("A/x").unwrap()));
    assert!(
        Arc::ptr_eq(&f.dataset("Rel").unwrap(), &via),
        "relative link target"
    );
    assert_eq!(
        f.group("A").unwrap().get_link("../L").unwrap(),
        Link::Soft("/A".into())
    );
    assert!(
        matches!(f.get("Loop"), Err(Error::InvalidPath { .. })),
        "link cycle detected"
    );
    let mut names = Vec::new();
    f.group("A")
        .unwrap()
        .visit(|n| names.push(n.to_string()))
        .unwrap();
    assert_eq!(names, ["x", "Sub"]);
}

#[test]
fn inline_data_is_served_locally() {
    let m = mock();
    let f = open_file(&m);
    let d = f.dataset("small").unwrap();
    let n = m.log().len();
    assert_eq!(
        d.read::<i32>().unwrap().as_slice().unwrap(),
        &[10, 11, 12, 13, 14]
    );
    assert_eq!(
        d.read::<f64>().unwrap().as_slice().unwrap(),
        &[10.0, 11.0, 12.0, 13.0, 14.0]
    );
    assert_eq!(
        d.read_slice::<i64>(&sel![-2..])
            .unwrap()
            .as_slice()
            .unwrap(),
        &[13, 14]
    );
    assert_eq!(
        d.read_fancy::<i32>(&[4i64, 0, 4], &Selection::all())
            .unwrap()
            .as_slice()
            .unwrap(),
        &[14, 10, 14]
    );
    let mut buf = [0i32; 2];
    d.read_into(&sel![1..3], &mut buf).unwrap();
    assert_eq!(buf, [11, 12]);
    assert_eq!(m.log().len(), n, "no request for inline data");
    assert_eq!(
        d.attrs().get("unit").unwrap().as_string().as_deref(),
        Some("cm")
    );
    assert!(
        matches!(d.read::<i16>(), Err(Error::TypeMismatch { .. })),
        "i4 -> i2 is not safe"
    );
}

#[test]
fn reads_validate_before_requesting() {
    let m = mock();
    let f = open_file(&m);
    let x = f.dataset("A/x").unwrap();
    let n = m.log().len();
    let mut small = [0.0f64; 2];
    assert!(matches!(
        x.read_into(&sel![..], &mut small),
        Err(Error::InvalidSelection { .. })
    ));
    assert!(
        x.read_slice::<f64>(&sel![.., .., 0]).is_err(),
        "too many indices"
    );
    assert!(x.read_slice::<f64>(&sel![4]).is_err(), "out of bounds");
    assert!(x.read_slice::<f32>(&sel![..]).is_err(), "f8 -> f4");
    assert!(
        x.request_slices::<f64>(&[sel![2..3], sel![0..1]]).is_err(),
        "descending"
    );
    assert!(
        x.read_fancy::<f64>(&[true, false], &Selection::all())
            .is_err(),
        "mask length"
    );
    assert_eq!(m.log().len(), n, "nothing was requested");
    let empty = x
        .read_fancy::<f64>(&Vec::<i64>::new(), &Selection::all())
        .unwrap();
    assert_eq!(empty.shape(), &[0, 3]);
    assert_eq!(m.log().len(), n, "an empty index makes no request");
    let r = x.read_fancy::<f64>(&[3i64, 1, 3], &sel![2]).unwrap();
    assert_eq!(r.as_slice().unwrap(), &[5.5, 2.5, 5.5]);
    assert_eq!(
        m.log().last().unwrap(),
        "slice_into /A/x [DimSelection { start: 1, count: 1 }, DimSelection { start: 3, count: 1 }]"
    );
    let whole = x.read::<f64>().unwrap();
    assert_eq!(whole.shape(), &[4, 3]);
    assert_eq!(whole[[3, 2]], 5.5);
    assert!(matches!(x.read_strings(), Err(Error::TypeMismatch { .. })));
}

#[test]
fn directory_root_and_download() {
    let m = mock();
    let b: Arc<dyn Backend> = m.clone();
    let root = open_with(b, "/", OpenOptions::default())
        .unwrap()
        .into_directory()
        .unwrap();
    let f = root.file("f.hdf5").unwrap();
    assert!(Arc::ptr_eq(
        &f,
        &root.get("./f.hdf5").unwrap().into_file().unwrap()
    ));
    assert!(matches!(root.get("missing"), Err(Error::NotFound { .. })));
    assert!(matches!(root.get(".."), Err(Error::InvalidPath { .. })));
    assert_eq!(m.log(), ["path "]);
    let mut out = Vec::new();
    assert_eq!(f.download(&mut out).unwrap(), 3);
    assert!(matches!(f.get("A"), Ok(Object::Group(_))));
}

#[test]
fn objects_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<hdfstream::Directory>();
    check::<hdfstream::File>();
    check::<hdfstream::Group>();
    check::<hdfstream::Dataset>();
    check::<Object>();
    // And usable from several threads at once: concurrent lookups give one object.
    let m = mock();
    let f = open_file(&m);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let f = f.clone();
            std::thread::spawn(move || f.dataset("A/x").unwrap())
        })
        .collect();
    let ds: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(ds.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
    assert_eq!(
        m.log().iter().filter(|l| *l == "object /A").count(),
        1,
        "loaded once"
    );
}

/// Found by `fuzz_decoders`: metadata of a dataset whose shape's product overflows
/// (`[2^40, 2^40]`) made `Dataset::size` panic in a debug build (and wrap in a release one).
#[test]
fn a_shape_whose_product_overflows_is_no_panic() {
    let huge = DatasetInfo {
        attributes: vec![],
        dtype: F8,
        shape: vec![1 << 40, 1 << 40],
        data: None,
    };
    let mut mock = Mock::default();
    mock.objects.insert(
        "/".into(),
        Member::Group(GroupInfo {
            attributes: vec![],
            members: vec![("d".into(), Some(Member::Dataset(huge)))],
        }),
    );
    let file = open_with(Arc::new(mock), "f.hdf5", OpenOptions::default())
        .unwrap()
        .into_file()
        .unwrap();
    let d = file.dataset("d").unwrap();
    assert_eq!(d.size(), u64::MAX);
    assert_eq!(d.len().unwrap(), 1 << 40);
    assert!(d.read::<f64>().is_err());
    assert!(gather(&[1.0f64], &[1 << 40, 1 << 40], &SliceSpec::scalar()).is_err());
}
