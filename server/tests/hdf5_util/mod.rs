//! Shared helpers of the HDF5-layer tests: a sample set generated once per test binary, a
//! small msgpack reader for responses, and the "truth" read directly with hdf5-metno.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hdf5_metno::types::{
    FixedAscii, FloatSize, IntSize, TypeDescriptor, VarLenArray, VarLenUnicode,
};
use hdf5_metno::{Container, H5Type};
use hdfstream_protocol::{DimSelection, ObjectRequest, RequestError, SliceSpec};
use hdfstream_server::hdf5::Hdf5Files;
use hdfstream_server::sample::{SampleOptions, SampleSummary, write_sample};
use rmpv::Value;

/// A sample set in a temporary directory, generated once.
pub struct Sample {
    pub dir: tempfile::TempDir,
    pub summary: SampleSummary,
}

pub fn sample() -> &'static Sample {
    static S: OnceLock<Sample> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = SampleOptions {
            particles: 3000,
            files: 1,
            seed: 7,
        };
        let summary = write_sample(dir.path(), &opts).expect("sample written");
        Sample { dir, summary }
    })
}

pub fn snap() -> PathBuf {
    sample().summary.snapshot_files[0].clone()
}

/// Asks `files` for `object` (optionally sliced); on error checks nothing was written.
pub fn ask(files: &Hdf5Files, file: &Path, req: &ObjectRequest) -> Result<Value, RequestError> {
    let mut out = Vec::new();
    match files.write_response(file, req, &mut out) {
        Ok(()) => {
            let mut cur = std::io::Cursor::new(&out[..]);
            let v = rmpv::decode::read_value(&mut cur).expect("one msgpack value");
            assert_eq!(
                cur.position() as usize,
                out.len(),
                "trailing bytes after the value"
            );
            Ok(v)
        }
        Err(e) => {
            assert!(
                out.is_empty(),
                "error {e:?} after {} bytes were written",
                out.len()
            );
            Err(e)
        }
    }
}

pub fn object(path: &str, max_depth: u32, limit: u64) -> ObjectRequest {
    ObjectRequest {
        object: Some(path.to_owned()),
        max_depth: Some(max_depth),
        data_size_limit: Some(limit),
        slice: None,
    }
}

pub fn slice(path: &str, runs: &[(u64, u64)], rest: &[(u64, u64)]) -> ObjectRequest {
    let d = |&(start, count): &(u64, u64)| DimSelection { start, count };
    ObjectRequest {
        object: Some(path.to_owned()),
        max_depth: None,
        data_size_limit: None,
        slice: Some(SliceSpec {
            runs: runs.iter().map(d).collect(),
            rest: rest.iter().map(d).collect(),
        }),
    }
}

/// Value of `key` in a msgpack map, with the keys' order.
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

pub fn keys(v: &Value) -> Vec<String> {
    v.as_map()
        .expect("map")
        .iter()
        .map(|(k, _)| k.as_str().expect("str key").to_owned())
        .collect()
}

/// One element, comparable between the wire and the truth.
#[derive(Debug, Clone, PartialEq)]
pub enum Elem {
    /// Fixed-size element bytes (little endian, packed).
    Bytes(Vec<u8>),
    /// A vlen string.
    Str(Vec<u8>),
    /// A VLEN of i32.
    Ints(Vec<i32>),
}

/// An array value decoded from the wire: shape and elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<u64>,
    pub elems: Vec<Elem>,
    /// Type descriptor (ndarray only), as msgpack.
    pub dtype: Option<Value>,
    /// Bin sizes of the payload (ndarray only).
    pub bins: Vec<usize>,
}

fn shape_of(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("shape array")
        .iter()
        .map(|d| d.as_u64().expect("dim"))
        .collect()
}

fn count(shape: &[u64]) -> usize {
    shape.iter().product::<u64>() as usize
}

/// Decodes an ndarray or vlen map, checking key order and sizes.
pub fn decode_array(v: &Value) -> Array {
    let k = keys(v);
    if k.first().map(String::as_str) == Some("vlen") {
        assert_eq!(k, ["vlen", "shape", "data"]);
        let shape = shape_of(get(v, "shape").unwrap());
        let data = get(v, "data").unwrap().as_array().expect("vlen data");
        assert_eq!(data.len(), count(&shape));
        let elems = data
            .iter()
            .map(|e| match e {
                Value::String(s) => Elem::Str(s.as_bytes().to_vec()),
                other => {
                    let inner = decode_array(other);
                    assert_eq!(inner.dtype, Some(Value::from("<i4")));
                    Elem::Ints(
                        inner
                            .elems
                            .iter()
                            .map(|b| match b {
                                Elem::Bytes(b) => i32::from_le_bytes(b[..].try_into().unwrap()),
                                _ => panic!("nested vlen"),
                            })
                            .collect(),
                    )
                }
            })
            .collect();
        return Array {
            shape,
            elems,
            dtype: None,
            bins: Vec::new(),
        };
    }
    assert_eq!(k, ["nd", "type", "kind", "shape", "nbytes", "data"]);
    assert_eq!(get(v, "nd"), Some(&Value::Boolean(true)));
    let shape = shape_of(get(v, "shape").unwrap());
    let nbytes = get(v, "nbytes").unwrap().as_u64().unwrap() as usize;
    let mut payload = Vec::new();
    let mut bins = Vec::new();
    for b in get(v, "data").unwrap().as_array().unwrap() {
        let b = b.as_slice().expect("bin");
        bins.push(b.len());
        payload.extend_from_slice(b);
    }
    assert_eq!(payload.len(), nbytes);
    let n = count(&shape);
    let elems = if n == 0 {
        assert_eq!(nbytes, 0);
        Vec::new()
    } else {
        assert_eq!(nbytes % n, 0);
        payload
            .chunks(nbytes / n)
            .map(|c| Elem::Bytes(c.to_vec()))
            .collect()
    };
    Array {
        shape,
        elems,
        dtype: get(v, "type").cloned(),
        bins,
    }
}

fn le<T: H5Type + Copy, const N: usize>(c: &Container, f: impl Fn(T) -> [u8; N]) -> Vec<Elem> {
    c.read_raw::<T>()
        .expect("read")
        .into_iter()
        .map(|x| Elem::Bytes(f(x).to_vec()))
        .collect()
}

fn fixed_ascii<const N: usize>(c: &Container) -> Vec<Elem> {
    c.read_raw::<FixedAscii<N>>()
        .expect("read")
        .into_iter()
        .map(|s| {
            let mut b = s.as_bytes().to_vec();
            b.resize(N, 0);
            Elem::Bytes(b)
        })
        .collect()
}

/// A fixed-length string of any size up to 256, read through libhdf5's string conversion.
fn fixed_ascii_sized(c: &Container, n: usize) -> Vec<Elem> {
    c.read_raw::<FixedAscii<256>>()
        .expect("read")
        .into_iter()
        .map(|s| {
            let mut b = s.as_bytes().to_vec();
            b.resize(n, 0);
            Elem::Bytes(b)
        })
        .collect()
}

/// Compound element of `Extra/Structured/HaloTable`, as the test reads it.
#[derive(H5Type, Clone, Copy, Debug)]
#[repr(C)]
pub struct HaloRecord {
    pub id: i64,
    pub mass: f64,
    pub n_part: i32,
    pub is_main: u8,
}

/// Elements read directly by libhdf5 (through hdf5-metno) in C order, encoded the way the
/// protocol says they must arrive.
pub fn truth(c: &Container) -> Vec<Elem> {
    use TypeDescriptor as T;
    let desc = c
        .dtype()
        .expect("dtype")
        .to_descriptor()
        .expect("descriptor");
    match desc {
        T::Integer(IntSize::U1) => le(c, |x: i8| x.to_le_bytes()),
        T::Integer(IntSize::U2) => le(c, |x: i16| x.to_le_bytes()),
        T::Integer(IntSize::U4) => le(c, |x: i32| x.to_le_bytes()),
        T::Integer(IntSize::U8) => le(c, |x: i64| x.to_le_bytes()),
        T::Unsigned(IntSize::U1) => le(c, |x: u8| x.to_le_bytes()),
        T::Unsigned(IntSize::U2) => le(c, |x: u16| x.to_le_bytes()),
        T::Unsigned(IntSize::U4) => le(c, |x: u32| x.to_le_bytes()),
        T::Unsigned(IntSize::U8) => le(c, |x: u64| x.to_le_bytes()),
        T::Float(FloatSize::U4) => le(c, |x: f32| x.to_le_bytes()),
        T::Float(FloatSize::U8) => le(c, |x: f64| x.to_le_bytes()),
        T::Boolean => le(c, |x: bool| [u8::from(x)]),
        T::FixedAscii(5) => fixed_ascii::<5>(c),
        T::FixedAscii(8) => fixed_ascii::<8>(c),
        T::FixedAscii(12) => fixed_ascii::<12>(c),
        T::FixedAscii(26) => fixed_ascii::<26>(c),
        T::FixedAscii(128) => fixed_ascii::<128>(c),
        T::FixedAscii(200) => fixed_ascii::<200>(c),
        T::FixedAscii(n) if n <= 256 => fixed_ascii_sized(c, n),
        T::VarLenUnicode | T::VarLenAscii => c
            .read_raw::<VarLenUnicode>()
            .expect("read")
            .into_iter()
            .map(|s| Elem::Str(s.as_bytes().to_vec()))
            .collect(),
        T::VarLenArray(_) => c
            .read_raw::<VarLenArray<i32>>()
            .expect("read")
            .into_iter()
            .map(|a| Elem::Ints(a.as_slice().to_vec()))
            .collect(),
        T::FixedArray(_, 3) => c
            .read_raw::<[f32; 3]>()
            .expect("read")
            .into_iter()
            .map(|a| Elem::Bytes(a.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect(),
        T::Compound(_) => c
            .read_raw::<HaloRecord>()
            .expect("read")
            .into_iter()
            .map(|r| {
                let mut b = Vec::new();
                b.extend(r.id.to_le_bytes());
                b.extend(r.mass.to_le_bytes());
                b.extend(r.n_part.to_le_bytes());
                b.push(r.is_main);
                Elem::Bytes(b)
            })
            .collect(),
        other => panic!("no truth reader for {other:?}"),
    }
}

/// The elements of `all` (C order, shape `shape`) that a selection picks, in order.
pub fn select(all: &[Elem], shape: &[u64], sel: &SliceSpec) -> Vec<Elem> {
    if shape.is_empty() {
        return all.to_vec();
    }
    let mut out = Vec::new();
    let strides: Vec<u64> = (0..shape.len())
        .map(|k| shape[k + 1..].iter().product())
        .collect();
    for run in &sel.runs {
        for row in run.start..run.start + run.count {
            let mut idx = vec![0u64; sel.rest.len()];
            'outer: loop {
                if sel.rest.iter().any(|d| d.count == 0) {
                    break;
                }
                let mut flat = row * strides[0];
                for (k, d) in sel.rest.iter().enumerate() {
                    flat += (d.start + idx[k]) * strides[k + 1];
                }
                out.push(all[flat as usize].clone());
                let mut k = idx.len();
                loop {
                    if k == 0 {
                        break 'outer;
                    }
                    k -= 1;
                    idx[k] += 1;
                    if idx[k] < sel.rest[k].count {
                        break;
                    }
                    idx[k] = 0;
                }
            }
        }
    }
    out
}

/// All dataset paths of a file (soft links skipped), depth first.
pub fn datasets(file: &hdf5_metno::File) -> Vec<String> {
    fn walk(g: &hdf5_metno::Group, prefix: &str, out: &mut Vec<String>) {
        for name in g.member_names().expect("names") {
            if name.ends_with("Particles") {
                continue;
            }
            let path = format!("{prefix}/{name}");
            if let Ok(sub) = g.group(&name) {
                walk(&sub, &path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(file, "", &mut out);
    out
}
