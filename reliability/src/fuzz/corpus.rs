//! Seed inputs: the response bodies of the recorded cassettes (read at run time, never
//! copied into the repository), raw body files, and responses made with the protocol
//! crate's encoders (every dtype, vlen, nested groups, directory trees, big shapes).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use hdfstream_protocol::{
    ArrayData, DatasetInfo, DirectoryInfo, Dtype, FileInfo, GroupInfo, Member, NdArray, PathInfo,
    TypedBuffer, VlenArray, VlenElement, encode_array, encode_array_with_max_bin, encode_error,
    encode_member, encode_path,
};
use rmpv::Value;

use crate::ToolError;

/// One seed input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// Where it came from (cassette and interaction, file, or generator).
    pub origin: String,
    /// The response body.
    pub body: Vec<u8>,
}

/// The shared cassettes: `$HDFSTREAM_FIXTURES/cassettes`, else `shared/fixtures/cassettes`
/// beside the workspace (`None` when absent).
pub fn default_corpus_dir() -> Option<PathBuf> {
    let fixtures = std::env::var_os("HDFSTREAM_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    let dir = fixtures.join("cassettes");
    dir.is_dir().then_some(dir)
}

/// Every file under `dir`: a `*.msgpack.gz` cassette gives the bodies of its responses,
/// any other file is one raw body (a saved crash input, a libFuzzer corpus entry).
pub fn load_dir(dir: &Path) -> Result<Vec<Seed>, ToolError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| ToolError::new(format!("cannot list {}: {e}", d.display())))?;
        for e in entries {
            let p = e
                .map_err(|e| ToolError::new(format!("cannot list {}: {e}", d.display())))?
                .path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let raw = std::fs::read(&f)
            .map_err(|e| ToolError::new(format!("cannot read {}: {e}", f.display())))?;
        if f.to_string_lossy().ends_with(".msgpack.gz") {
            out.extend(cassette_bodies(&f, &raw)?);
        } else {
            out.push(Seed {
                origin: f.display().to_string(),
                body: raw,
            });
        }
    }
    Ok(out)
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// The response bodies of one cassette (see `shared/fixtures/README.md`).
fn cassette_bodies(path: &Path, raw: &[u8]) -> Result<Vec<Seed>, ToolError> {
    let bad = |why: &str| ToolError::new(format!("cassette {}: {why}", path.display()));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(&format!("not gzip: {e}")))?;
    let v = rmpv::decode::read_value(&mut &bytes[..]).map_err(|e| bad(&e.to_string()))?;
    let interactions = get(&v, "interactions")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no interactions"))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut out = Vec::new();
    for (i, it) in interactions.iter().enumerate() {
        let body = get(it, "response")
            .and_then(|r| get(r, "body"))
            .and_then(|b| get(b, "string"));
        let body = match body {
            Some(Value::Binary(b)) => b.clone(),
            Some(Value::String(s)) => s.as_bytes().to_vec(),
            _ => continue,
        };
        out.push(Seed {
            origin: format!("{}#{i}", name.as_deref().unwrap_or("?")),
            body,
        });
    }
    Ok(out)
}

/// Drop repeated bodies (keeping the first origin) and bodies over `max_len` bytes.
pub fn dedup(seeds: Vec<Seed>, max_len: usize) -> Vec<Seed> {
    let mut seen = HashSet::new();
    seeds
        .into_iter()
        .filter(|s| s.body.len() <= max_len && seen.insert(s.body.clone()))
        .collect()
}

fn dt(s: &str) -> Dtype {
    Dtype::parse(s).unwrap_or(Dtype::UInt {
        size: 1,
        order: hdfstream_protocol::ByteOrder::NotApplicable,
    })
}

/// An ndarray of `dtype` and `shape` whose bytes count up (wrapping).
fn nd(dtype: Dtype, shape: &[u64]) -> Option<ArrayData> {
    let n: u64 = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
    let item = dtype.item_size()?;
    let bytes: Vec<u8> = (0..n as usize * item).map(|i| (i * 7 + 1) as u8).collect();
    let data = TypedBuffer::from_native_bytes(&dtype, &bytes)?;
    Some(ArrayData::Nd(NdArray {
        dtype,
        shape: shape.to_vec(),
        data,
    }))
}

fn strings(shape: &[u64], items: &[&str]) -> ArrayData {
    ArrayData::Vlen(VlenArray {
        shape: shape.to_vec(),
        elements: items
            .iter()
            .map(|s| VlenElement::String(s.as_bytes().to_vec()))
            .collect(),
    })
}

/// Every atomic, array and compound type the codec knows.
fn all_dtypes() -> Vec<Dtype> {
    let mut v: Vec<Dtype> = [
        "<i1", "|i1", "<i2", ">i2", "<i4", ">i4", "<i8", ">i8", "|u1", "<u2", ">u2", "=u2", "<u4",
        ">u4", "<u8", ">u8", "<f2", ">f2", "<f4", ">f4", "<f8", ">f8", "=f8", "<f16", "S1", "S10",
    ]
    .iter()
    .map(|s| dt(s))
    .collect();
    v.push(Dtype::Array {
        base: Box::new(dt(">f4")),
        dims: vec![2, 3],
    });
    v.push(Dtype::Compound(vec![
        ("a".into(), dt("<f8")),
        ("b".into(), dt(">i2")),
        (
            "c".into(),
            Dtype::Array {
                base: Box::new(dt("<u2")),
                dims: vec![3],
            },
        ),
        ("d".into(), dt("S4")),
    ]));
    v
}

/// Responses made with the protocol crate's encoders.
pub fn generated() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut push = |origin: String, body: Vec<u8>| out.push(Seed { origin, body });
    // Arrays: every dtype in several shapes, and several bin splits.
    for d in all_dtypes() {
        for shape in [
            &[][..],
            &[0],
            &[1],
            &[5],
            &[2, 3],
            &[3, 1, 2],
            &[1 << 40, 0],
        ] {
            if let Some(a) = nd(d.clone(), shape) {
                push(format!("gen:nd {d} {shape:?}"), encode_array(&a));
                if shape.iter().product::<u64>() > 1 {
                    push(
                        format!("gen:nd {d} {shape:?} bins of 7"),
                        encode_array_with_max_bin(&a, 7),
                    );
                }
            }
        }
    }
    // Big shapes: a large payload, and shapes whose product overflows unless a dim is 0.
    if let Some(a) = nd(dt("<f8"), &[8192]) {
        push("gen:nd <f8 [8192]".into(), encode_array(&a));
    }
    if let Some(a) = nd(dt("|u1"), &[256, 256]) {
        push(
            "gen:nd |u1 [256, 256] bins of 4096".into(),
            encode_array_with_max_bin(&a, 4096),
        );
    }
    if let Some(a) = nd(dt("<i4"), &[0, 1 << 62, 1 << 62]) {
        push("gen:nd <i4 [0, 2^62, 2^62]".into(), encode_array(&a));
    }
    // Vlen strings and sequences, nested.
    let s = strings(&[3], &["", "abc", "héllo"]);
    push("gen:vlen str [3]".into(), encode_array(&s));
    push(
        "gen:vlen str []".into(),
        encode_array(&strings(&[], &["scalar"])),
    );
    push(
        "gen:vlen str [2, 2]".into(),
        encode_array(&strings(&[2, 2], &["a", "b", "", "d"])),
    );
    push("gen:vlen str [0]".into(), encode_array(&strings(&[0], &[])));
    let seqs = ArrayData::Vlen(VlenArray {
        shape: vec![3],
        elements: [&[2][..], &[0], &[4]]
            .iter()
            .filter_map(|sh| nd(dt("<i4"), sh).map(VlenElement::Array))
            .collect(),
    });
    push("gen:vlen <i4 [3]".into(), encode_array(&seqs));
    let nested = ArrayData::Vlen(VlenArray {
        shape: vec![2],
        elements: vec![
            VlenElement::Array(seqs.clone()),
            VlenElement::Array(s.clone()),
        ],
    });
    push("gen:vlen of vlen [2]".into(), encode_array(&nested));
    // Objects: datasets with and without inline data, groups nested with attributes,
    // soft links, unknown members.
    let attrs = |n: usize| -> Vec<(String, ArrayData)> {
        let mut a = vec![
            (
                "BoxSize".to_string(),
                nd(dt("<f8"), &[3]).unwrap_or(s.clone()),
            ),
            (
                "NumPart".to_string(),
                nd(dt("<u4"), &[6]).unwrap_or(s.clone()),
            ),
            (
                "ThisFile".to_string(),
                nd(dt("<i4"), &[]).unwrap_or(s.clone()),
            ),
            ("Units".to_string(), strings(&[], &["cm"])),
            ("Code".to_string(), nd(dt("S10"), &[]).unwrap_or(s.clone())),
            ("Names".to_string(), strings(&[2], &["x", "y"])),
        ];
        a.truncate(n);
        a
    };
    let dataset = |d: Dtype, shape: &[u64], inline: bool| {
        Member::Dataset(DatasetInfo {
            attributes: attrs(2),
            data: if inline { nd(d.clone(), shape) } else { None },
            dtype: d,
            shape: shape.to_vec(),
        })
    };
    let vlen_dataset = Member::Dataset(DatasetInfo {
        attributes: vec![],
        dtype: Dtype::VlenString,
        shape: vec![3],
        data: Some(s.clone()),
    });
    let leaf = Member::Group(GroupInfo {
        attributes: attrs(3),
        members: vec![
            (
                "Coordinates".into(),
                Some(dataset(dt("<f8"), &[4, 3], true)),
            ),
            ("Masses".into(), Some(dataset(dt("<f4"), &[4], true))),
            ("IDs".into(), Some(dataset(dt(">u8"), &[4], false))),
            ("Names".into(), Some(vlen_dataset)),
            ("Strings".into(), Some(dataset(dt("S10"), &[4], true))),
            ("Big".into(), Some(dataset(dt("<f8"), &[1 << 40, 3], false))),
            (
                "Link".into(),
                Some(Member::SoftLink {
                    target: "/PartType0/Masses".into(),
                }),
            ),
            (
                "Loop".into(),
                Some(Member::SoftLink {
                    target: "../PartType0".into(),
                }),
            ),
            ("Type".into(), Some(Member::Unknown)),
            ("Later".into(), None),
        ],
    });
    push("gen:group PartType0".into(), encode_member(&leaf));
    let root = Member::Group(GroupInfo {
        attributes: attrs(6),
        members: vec![
            (
                "Header".into(),
                Some(Member::Group(GroupInfo {
                    attributes: attrs(6),
                    members: vec![],
                })),
            ),
            ("PartType0".into(), Some(leaf.clone())),
            ("Cells".into(), None),
            (
                "Empty".into(),
                Some(Member::Group(GroupInfo {
                    attributes: vec![],
                    members: vec![],
                })),
            ),
        ],
    });
    push("gen:group /".into(), encode_member(&root));
    for d in all_dtypes() {
        push(
            format!("gen:dataset {d}"),
            encode_member(&dataset(d.clone(), &[2, 2], true)),
        );
    }
    push(
        "gen:soft link".into(),
        encode_member(&Member::SoftLink {
            target: "/a/b".into(),
        }),
    );
    push("gen:unknown".into(), encode_member(&Member::Unknown));
    // Paths: a file map and a directory tree with labels and descriptions.
    let file = |size| FileInfo {
        media_type: hdfstream_protocol::HDF5_MEDIA_TYPE.into(),
        size,
        last_modified_ms: 1_700_000_000_000,
    };
    push("gen:file".into(), encode_path(&PathInfo::File(file(12345))));
    let sub = DirectoryInfo {
        size: 30,
        description: None,
        labels: None,
        files: vec![
            ("a.hdf5".into(), file(10)),
            (
                "b.txt".into(),
                FileInfo {
                    media_type: "text/plain".into(),
                    size: 20,
                    last_modified_ms: -1,
                },
            ),
        ],
        directories: vec![("deeper".into(), None)],
    };
    let dir = DirectoryInfo {
        size: 1 << 40,
        description: Some("# Snapshots\nEAGLE".into()),
        labels: Some(vec![("snap".into(), "z=0".into())]),
        files: vec![("snap_0000.0.hdf5".into(), file(1 << 33))],
        directories: vec![("sub".into(), Some(sub)), ("lazy".into(), None)],
    };
    push(
        "gen:directory".into(),
        encode_path(&PathInfo::Directory(dir)),
    );
    // Errors.
    push("gen:error".into(), encode_error("Object /x not found"));
    push("gen:error empty".into(), encode_error(""));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_seeds_decode() {
        let seeds = generated();
        assert!(seeds.len() > 100);
        for s in &seeds {
            let ok = hdfstream_protocol::decode_array(&s.body).is_ok()
                || hdfstream_protocol::decode_object(&s.body).is_ok()
                || hdfstream_protocol::decode_path(&s.body).is_ok()
                || hdfstream_protocol::decode_error(&s.body).is_some();
            assert!(ok, "{} does not decode", s.origin);
        }
    }
}
