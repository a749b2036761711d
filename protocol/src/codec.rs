//! Whole-message decoding and encoding of responses (PROTOCOL.md §3, §4).
//!
//! Decoders work by schema position: a map is read as an ndarray or vlen array only where
//! an array value is expected (slice responses, attribute values, dataset `data`, vlen
//! entries), never because it happens to contain a key `"nd"` or `"vlen"`. They accept
//! every integer width, do not depend on key order, reject unknown or repeated keys, and
//! reject truncated bodies and trailing bytes.
//!
//! Encoders write exactly what the reference server writes: its key order, compact
//! integers and lengths, `"data"` last, bins of at most [`MAX_BIN_LEN`] bytes.

use crate::ndarray::element_count;
use crate::wire::{Reader, WriteExt, malformed, quoted};
use crate::{
    ArrayData, Attributes, DatasetInfo, DecodeError, DirectoryInfo, Dtype, FileInfo, GroupInfo,
    Member, NdArray, PathInfo, TypedBuffer, VlenArray, VlenElement,
};

/// Largest bin the reference server writes (2^32 − 1 bytes).
pub const MAX_BIN_LEN: u64 = u32::MAX as u64;

/// Store `v` in `slot`, failing if the key was already seen.
fn set_once<T>(
    slot: &mut Option<T>,
    v: T,
    what: &'static str,
    key: &str,
) -> Result<(), DecodeError> {
    if slot.replace(v).is_some() {
        return Err(malformed(what, format!("repeated key {key:?}")));
    }
    Ok(())
}

fn required<T>(v: Option<T>, what: &'static str, key: &str) -> Result<T, DecodeError> {
    v.ok_or_else(|| malformed(what, format!("missing key {key:?}")))
}

fn unknown_key(what: &'static str, key: &[u8]) -> DecodeError {
    malformed(
        what,
        format!("unexpected key {}", quoted(&String::from_utf8_lossy(key))),
    )
}

pub(crate) fn read_shape(r: &mut Reader<'_>) -> Result<Vec<u64>, DecodeError> {
    let n = r.read_array_len("shape")?;
    (0..n).map(|_| r.read_u64("shape")).collect()
}

/// Read a whole message with `f` and require that nothing follows it.
fn whole<'a, T>(
    body: &'a [u8],
    f: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::new(body);
    let v = f(&mut r)?;
    r.finish()?;
    Ok(v)
}

// ---------------------------------------------------------------------------------------
// Arrays

/// Decode a bare ndarray (§4) or vlen array (§3.7) response, e.g. a slice response.
pub fn decode_array(body: &[u8]) -> Result<ArrayData, DecodeError> {
    whole(body, read_array)
}

pub(crate) fn read_array(r: &mut Reader<'_>) -> Result<ArrayData, DecodeError> {
    const W: &str = "array";
    let n = r.read_map_len(W)?;
    r.nested(|r| {
        let (mut nd, mut vlen, mut ty, mut kind, mut shape, mut nbytes, mut data) =
            (None, None, None, None, None, None, None);
        for _ in 0..n {
            let key = r.read_str(W)?;
            match key {
                b"nd" => set_once(&mut nd, r.read_bool("nd")?, W, "nd")?,
                b"vlen" => set_once(&mut vlen, r.read_bool("vlen")?, W, "vlen")?,
                b"type" => set_once(&mut ty, r.read_value()?, W, "type")?,
                b"kind" => set_once(&mut kind, r.read_string("kind")?, W, "kind")?,
                b"shape" => set_once(&mut shape, read_shape(r)?, W, "shape")?,
                b"nbytes" => set_once(&mut nbytes, r.read_u64("nbytes")?, W, "nbytes")?,
                b"data" => {
                    set_once(&mut data, r.clone(), W, "data")?;
                    r.skip_value()?;
                }
                other => return Err(unknown_key(W, other)),
            }
        }
        let shape = required(shape, W, "shape")?;
        let mut data = required(data, W, "data")?;
        match (nd, vlen) {
            (Some(true), None) => {
                let ty = required(ty, W, "type")?;
                let kind = required(kind, W, "kind")?;
                let nbytes = required(nbytes, W, "nbytes")?;
                let dtype = Dtype::from_wire(&ty, &kind)?;
                let k = data.read_array_len("data")?;
                let mut bins = Vec::with_capacity(k.min(1 << 16));
                for _ in 0..k {
                    let len = data.read_bin_len("data")?;
                    bins.push(data.take(len)?);
                }
                nd_from_bins(dtype, shape, nbytes, &bins).map(ArrayData::Nd)
            }
            (None, Some(true)) => {
                if ty.is_some() || kind.is_some() || nbytes.is_some() {
                    return Err(malformed(W, "vlen array with type, kind or nbytes"));
                }
                read_vlen_elements(&mut data, shape).map(ArrayData::Vlen)
            }
            _ => Err(malformed(
                W,
                "expected exactly one of \"nd\": true or \"vlen\": true",
            )),
        }
    })
}

/// Check an ndarray header: fixed-size type and `nbytes == product(shape) * item_size`.
/// Returns the element count.
pub(crate) fn check_nd_header(
    dtype: &Dtype,
    shape: &[u64],
    nbytes: u64,
) -> Result<usize, DecodeError> {
    let item = dtype
        .item_size()
        .ok_or_else(|| malformed("ndarray", format!("type {dtype} is not fixed-size")))?;
    let count = element_count(shape).ok_or_else(|| malformed("ndarray", "shape overflows"))?;
    let expect = count.checked_mul(item as u64);
    if expect != Some(nbytes) {
        return Err(malformed(
            "ndarray",
            format!("nbytes {nbytes} != {count} elements x {item} bytes of {dtype}"),
        ));
    }
    usize::try_from(nbytes)
        .map(|_| count as usize)
        .map_err(|_| malformed("ndarray", "nbytes exceeds the address space"))
}

pub(crate) fn alloc_error(dtype: &Dtype, count: usize) -> DecodeError {
    malformed(
        "ndarray",
        format!("cannot allocate {count} elements of {dtype}"),
    )
}

fn nd_from_bins(
    dtype: Dtype,
    shape: Vec<u64>,
    nbytes: u64,
    bins: &[&[u8]],
) -> Result<NdArray, DecodeError> {
    let count = check_nd_header(&dtype, &shape, nbytes)?;
    let total: u64 = bins.iter().map(|b| b.len() as u64).sum();
    if total != nbytes {
        return Err(malformed(
            "ndarray",
            format!("bins hold {total} bytes, nbytes is {nbytes}"),
        ));
    }
    let mut data =
        TypedBuffer::try_zeroed(&dtype, count).ok_or_else(|| alloc_error(&dtype, count))?;
    let out = data.as_bytes_mut();
    let mut at = 0;
    for b in bins {
        out[at..at + b.len()].copy_from_slice(b);
        at += b.len();
    }
    dtype.swap_in_place(out);
    Ok(NdArray { dtype, shape, data })
}

fn read_vlen_elements(r: &mut Reader<'_>, shape: Vec<u64>) -> Result<VlenArray, DecodeError> {
    let n = r.read_array_len("vlen data")?;
    if element_count(&shape) != Some(n as u64) {
        return Err(malformed(
            "vlen array",
            format!("{n} entries for shape {shape:?}"),
        ));
    }
    let elements = r.nested(|r| {
        let mut v = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            v.push(match r.peek()? {
                0xc0 => {
                    r.try_nil()?;
                    VlenElement::String(Vec::new())
                }
                0x80..=0x8f | 0xde | 0xdf => VlenElement::Array(read_array(r)?),
                _ => VlenElement::String(r.read_str("vlen entry")?.to_vec()),
            });
        }
        Ok(v)
    })?;
    Ok(VlenArray { shape, elements })
}

/// Append the ndarray map header (everything up to and including the `data` array header)
/// for a payload of `nbytes` split into bins of at most `max_bin` bytes.
fn put_nd_header(out: &mut Vec<u8>, dtype: &Dtype, shape: &[u64], nbytes: u64, max_bin: u64) {
    out.put_map_len(6);
    out.put_str(b"nd");
    out.put_bool(true);
    out.put_str(b"type");
    out.put_value(&dtype.descriptor());
    out.put_str(b"kind");
    out.put_str(dtype.kind().as_bytes());
    out.put_str(b"shape");
    out.put_array_len(shape.len());
    for &d in shape {
        out.put_uint(d);
    }
    out.put_str(b"nbytes");
    out.put_uint(nbytes);
    out.put_str(b"data");
    out.put_array_len(bin_count(nbytes, max_bin) as usize);
}

fn bin_count(nbytes: u64, max_bin: u64) -> u64 {
    nbytes.div_ceil(max_bin.max(1))
}

/// The bytes of an ndarray response up to and including the `data` array header, for a
/// server that streams the payload itself: follow it with, for each length of
/// [`bin_lengths`], [`bin_header`] and that many payload bytes.
pub fn ndarray_header(dtype: &Dtype, shape: &[u64], nbytes: u64) -> Vec<u8> {
    ndarray_header_with_max_bin(dtype, shape, nbytes, MAX_BIN_LEN)
}

/// [`ndarray_header`] with bins of at most `max_bin` bytes (for tests; the protocol uses
/// [`MAX_BIN_LEN`]).
pub fn ndarray_header_with_max_bin(
    dtype: &Dtype,
    shape: &[u64],
    nbytes: u64,
    max_bin: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    put_nd_header(&mut out, dtype, shape, nbytes, max_bin);
    out
}

/// The compact bin header (`c4`/`c5`/`c6` + big-endian length) for a bin of `len` bytes.
pub fn bin_header(len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(5);
    out.put_bin_len(len);
    out
}

/// Lengths of the bins a payload of `nbytes` is cut into (none when `nbytes` is 0).
pub fn bin_lengths(nbytes: u64) -> impl Iterator<Item = u64> {
    bin_lengths_with_max(nbytes, MAX_BIN_LEN)
}

/// [`bin_lengths`] with bins of at most `max_bin` (≥ 1) bytes.
pub fn bin_lengths_with_max(nbytes: u64, max_bin: u64) -> impl Iterator<Item = u64> {
    let max_bin = max_bin.max(1);
    (0..bin_count(nbytes, max_bin)).map(move |i| (nbytes - i * max_bin).min(max_bin))
}

/// Encode an array value as the reference server does.
pub fn encode_array(value: &ArrayData) -> Vec<u8> {
    encode_array_with_max_bin(value, MAX_BIN_LEN)
}

/// [`encode_array`] with bins of at most `max_bin` bytes (for tests of bin splitting).
pub fn encode_array_with_max_bin(value: &ArrayData, max_bin: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_array(&mut out, value, max_bin);
    out
}

fn put_array(out: &mut Vec<u8>, value: &ArrayData, max_bin: u64) {
    match value {
        ArrayData::Nd(a) => {
            let native = a.data.as_bytes();
            // Values are stored natively; a big-endian dtype is written back as such.
            let swapped;
            let bytes = if a.dtype.needs_swap() {
                let mut b = native.to_vec();
                a.dtype.swap_in_place(&mut b);
                swapped = b;
                &swapped[..]
            } else {
                native
            };
            let nbytes = bytes.len() as u64;
            put_nd_header(out, &a.dtype, &a.shape, nbytes, max_bin);
            out.reserve(bytes.len() + 5 * bin_count(nbytes, max_bin) as usize);
            let mut at = 0usize;
            for len in bin_lengths_with_max(nbytes, max_bin) {
                out.put_bin_len(len);
                out.extend_from_slice(&bytes[at..at + len as usize]);
                at += len as usize;
            }
        }
        ArrayData::Vlen(v) => {
            out.put_map_len(3);
            out.put_str(b"vlen");
            out.put_bool(true);
            out.put_str(b"shape");
            out.put_array_len(v.shape.len());
            for &d in &v.shape {
                out.put_uint(d);
            }
            out.put_str(b"data");
            out.put_array_len(v.elements.len());
            for e in &v.elements {
                match e {
                    VlenElement::String(s) => out.put_str(s),
                    VlenElement::Array(a) => put_array(out, a, max_bin),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors

/// The message of an `{"error": str}` body, or `None` if the body is anything else.
pub fn decode_error(body: &[u8]) -> Option<String> {
    whole(body, |r| {
        if r.read_map_len("error")? != 1 || r.read_str("error")? != b"error" {
            return Err(malformed("error", "not an error map"));
        }
        r.read_string("error")
    })
    .ok()
}

/// Encode `{"error": message}`.
pub fn encode_error(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 10);
    out.put_map_len(1);
    out.put_str(b"error");
    out.put_str(message.as_bytes());
    out
}

// ---------------------------------------------------------------------------------------
// Paths

/// Decode the answer of a path request: a directory map (§3.1) or a file map (§3.2).
pub fn decode_path(body: &[u8]) -> Result<PathInfo, DecodeError> {
    whole(body, read_path)
}

fn read_path(r: &mut Reader<'_>) -> Result<PathInfo, DecodeError> {
    const W: &str = "path";
    let n = r.read_map_len(W)?;
    r.nested(|r| {
        let (mut ty, mut size, mut modified, mut desc, mut labels, mut files, mut dirs) =
            (None, None, None, None, None, None, None);
        for _ in 0..n {
            let key = r.read_str(W)?;
            match key {
                b"type" => set_once(&mut ty, r.read_string("type")?, W, "type")?,
                b"size" => set_once(&mut size, r.read_u64("size")?, W, "size")?,
                b"last_modified" => set_once(
                    &mut modified,
                    r.read_i64("last_modified")?,
                    W,
                    "last_modified",
                )?,
                b"description" => {
                    let d = if r.try_nil()? {
                        None
                    } else {
                        Some(r.read_string("description")?)
                    };
                    set_once(&mut desc, d, W, "description")?
                }
                b"labels" => {
                    let l = if r.try_nil()? {
                        None
                    } else {
                        Some(read_labels(r)?)
                    };
                    set_once(&mut labels, l, W, "labels")?
                }
                b"files" => set_once(&mut files, read_files(r)?, W, "files")?,
                b"directories" => set_once(&mut dirs, read_dirs(r)?, W, "directories")?,
                other => return Err(unknown_key(W, other)),
            }
        }
        let ty = required(ty, W, "type")?;
        let size = required(size, W, "size")?;
        if ty == "directory" {
            if modified.is_some() {
                return Err(unknown_key("directory", b"last_modified"));
            }
            Ok(PathInfo::Directory(DirectoryInfo {
                size,
                description: required(desc, "directory", "description")?,
                labels: required(labels, "directory", "labels")?,
                files: required(files, "directory", "files")?,
                directories: required(dirs, "directory", "directories")?,
            }))
        } else {
            if desc.is_some() || labels.is_some() || files.is_some() || dirs.is_some() {
                return Err(malformed("file", "directory keys in a file map"));
            }
            Ok(PathInfo::File(FileInfo {
                media_type: ty,
                size,
                last_modified_ms: required(modified, "file", "last_modified")?,
            }))
        }
    })
}

fn read_labels(r: &mut Reader<'_>) -> Result<Vec<(String, String)>, DecodeError> {
    let n = r.read_map_len("labels")?;
    (0..n)
        .map(|_| Ok((r.read_string("labels")?, r.read_string("labels")?)))
        .collect()
}

fn read_files(r: &mut Reader<'_>) -> Result<Vec<(String, FileInfo)>, DecodeError> {
    let n = r.read_map_len("files")?;
    r.nested(|r| {
        let mut v = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let name = r.read_string("files")?;
            match read_path(r)? {
                PathInfo::File(f) => v.push((name, f)),
                PathInfo::Directory(_) => {
                    return Err(malformed(
                        "files",
                        format!("{} is a directory", quoted(&name)),
                    ));
                }
            }
        }
        Ok(v)
    })
}

fn read_dirs(r: &mut Reader<'_>) -> Result<Vec<(String, Option<DirectoryInfo>)>, DecodeError> {
    let n = r.read_map_len("directories")?;
    r.nested(|r| {
        let mut v = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let name = r.read_string("directories")?;
            if r.try_nil()? {
                v.push((name, None));
                continue;
            }
            match read_path(r)? {
                PathInfo::Directory(d) => v.push((name, Some(d))),
                PathInfo::File(_) => {
                    return Err(malformed(
                        "directories",
                        format!("{} is a file", quoted(&name)),
                    ));
                }
            }
        }
        Ok(v)
    })
}

/// Encode a directory or file map with the reference key order.
pub fn encode_path(info: &PathInfo) -> Vec<u8> {
    let mut out = Vec::new();
    put_path(&mut out, info);
    out
}

fn put_file(out: &mut Vec<u8>, f: &FileInfo) {
    out.put_map_len(3);
    out.put_str(b"type");
    out.put_str(f.media_type.as_bytes());
    out.put_str(b"size");
    out.put_uint(f.size);
    out.put_str(b"last_modified");
    out.put_int(f.last_modified_ms);
}

fn put_dir(out: &mut Vec<u8>, d: &DirectoryInfo) {
    out.put_map_len(6);
    out.put_str(b"type");
    out.put_str(b"directory");
    out.put_str(b"size");
    out.put_uint(d.size);
    out.put_str(b"description");
    match &d.description {
        Some(s) => out.put_str(s.as_bytes()),
        None => out.put_nil(),
    }
    out.put_str(b"labels");
    match &d.labels {
        Some(l) => {
            out.put_map_len(l.len());
            for (k, v) in l {
                out.put_str(k.as_bytes());
                out.put_str(v.as_bytes());
            }
        }
        None => out.put_nil(),
    }
    out.put_str(b"files");
    out.put_map_len(d.files.len());
    for (name, f) in &d.files {
        out.put_str(name.as_bytes());
        put_file(out, f);
    }
    out.put_str(b"directories");
    out.put_map_len(d.directories.len());
    for (name, sub) in &d.directories {
        out.put_str(name.as_bytes());
        match sub {
            Some(s) => put_dir(out, s),
            None => out.put_nil(),
        }
    }
}

fn put_path(out: &mut Vec<u8>, info: &PathInfo) {
    match info {
        PathInfo::Directory(d) => put_dir(out, d),
        PathInfo::File(f) => put_file(out, f),
    }
}

// ---------------------------------------------------------------------------------------
// Objects

/// Decode an HDF5 object response (§3.3–3.5): group, dataset, soft link or unknown.
pub fn decode_object(body: &[u8]) -> Result<Member, DecodeError> {
    whole(body, read_member)
}

fn read_member(r: &mut Reader<'_>) -> Result<Member, DecodeError> {
    const W: &str = "object";
    let n = r.read_map_len(W)?;
    r.nested(|r| {
        let (mut class, mut attrs, mut members, mut ty, mut kind, mut shape, mut data, mut target) =
            (None, None, None, None, None, None, None, None);
        for _ in 0..n {
            let key = r.read_str(W)?;
            match key {
                b"hdf5_object" => set_once(&mut class, r.read_string(W)?, W, "hdf5_object")?,
                b"attributes" => set_once(&mut attrs, read_attributes(r)?, W, "attributes")?,
                b"members" => set_once(&mut members, read_members(r)?, W, "members")?,
                b"type" => set_once(&mut ty, r.read_value()?, W, "type")?,
                b"kind" => set_once(&mut kind, r.read_string("kind")?, W, "kind")?,
                b"shape" => set_once(&mut shape, read_shape(r)?, W, "shape")?,
                b"data" => set_once(&mut data, read_array(r)?, W, "data")?,
                b"target" => set_once(&mut target, r.read_string("target")?, W, "target")?,
                other => return Err(unknown_key(W, other)),
            }
        }
        let class = required(class, W, "hdf5_object")?;
        let no = |present: bool, key: &str| {
            if present {
                Err(malformed(
                    "object",
                    format!("unexpected key {key:?} for a {}", quoted(&class)),
                ))
            } else {
                Ok(())
            }
        };
        match class.as_str() {
            "group" => {
                no(
                    ty.is_some() || kind.is_some() || shape.is_some(),
                    "type/kind/shape",
                )?;
                no(data.is_some(), "data")?;
                no(target.is_some(), "target")?;
                Ok(Member::Group(GroupInfo {
                    attributes: required(attrs, "group", "attributes")?,
                    members: required(members, "group", "members")?,
                }))
            }
            "dataset" => {
                no(members.is_some(), "members")?;
                no(target.is_some(), "target")?;
                let ty = required(ty, "dataset", "type")?;
                let kind = required(kind, "dataset", "kind")?;
                Ok(Member::Dataset(DatasetInfo {
                    attributes: required(attrs, "dataset", "attributes")?,
                    dtype: Dtype::from_wire(&ty, &kind)?,
                    shape: required(shape, "dataset", "shape")?,
                    data,
                }))
            }
            "soft_link" => {
                no(attrs.is_some() || members.is_some(), "attributes/members")?;
                no(
                    ty.is_some() || kind.is_some() || shape.is_some() || data.is_some(),
                    "type",
                )?;
                Ok(Member::SoftLink {
                    target: required(target, "soft_link", "target")?,
                })
            }
            // "unknown", and any class a newer server may add.
            _ => Ok(Member::Unknown),
        }
    })
}

fn read_attributes(r: &mut Reader<'_>) -> Result<Attributes, DecodeError> {
    let n = r.read_map_len("attributes")?;
    r.nested(|r| {
        let mut v = Vec::with_capacity(n.min(1 << 12));
        for _ in 0..n {
            let name = r.read_string("attributes")?;
            v.push((name, read_array(r)?));
        }
        Ok(v)
    })
}

fn read_members(r: &mut Reader<'_>) -> Result<Vec<(String, Option<Member>)>, DecodeError> {
    let n = r.read_map_len("members")?;
    r.nested(|r| {
        let mut v = Vec::with_capacity(n.min(1 << 12));
        for _ in 0..n {
            let name = r.read_string("members")?;
            let m = if r.try_nil()? {
                None
            } else {
                Some(read_member(r)?)
            };
            v.push((name, m));
        }
        Ok(v)
    })
}

/// Encode an HDF5 object map with the reference key order.
pub fn encode_member(member: &Member) -> Vec<u8> {
    let mut out = Vec::new();
    put_member(&mut out, member);
    out
}

fn put_attributes(out: &mut Vec<u8>, attrs: &Attributes) {
    out.put_map_len(attrs.len());
    for (name, v) in attrs {
        out.put_str(name.as_bytes());
        put_array(out, v, MAX_BIN_LEN);
    }
}

fn put_member(out: &mut Vec<u8>, member: &Member) {
    match member {
        Member::Group(g) => {
            out.put_map_len(3);
            out.put_str(b"hdf5_object");
            out.put_str(b"group");
            out.put_str(b"attributes");
            put_attributes(out, &g.attributes);
            out.put_str(b"members");
            out.put_map_len(g.members.len());
            for (name, m) in &g.members {
                out.put_str(name.as_bytes());
                match m {
                    Some(m) => put_member(out, m),
                    None => out.put_nil(),
                }
            }
        }
        Member::Dataset(d) => {
            out.put_map_len(if d.data.is_some() { 6 } else { 5 });
            out.put_str(b"hdf5_object");
            out.put_str(b"dataset");
            out.put_str(b"attributes");
            put_attributes(out, &d.attributes);
            out.put_str(b"type");
            out.put_value(&d.dtype.descriptor());
            out.put_str(b"kind");
            out.put_str(d.dtype.kind().as_bytes());
            out.put_str(b"shape");
            out.put_array_len(d.shape.len());
            for &s in &d.shape {
                out.put_uint(s);
            }
            if let Some(data) = &d.data {
                out.put_str(b"data");
                put_array(out, data, MAX_BIN_LEN);
            }
        }
        Member::SoftLink { target } => {
            out.put_map_len(2);
            out.put_str(b"hdf5_object");
            out.put_str(b"soft_link");
            out.put_str(b"target");
            out.put_str(target.as_bytes());
        }
        Member::Unknown => {
            out.put_map_len(1);
            out.put_str(b"hdf5_object");
            out.put_str(b"unknown");
        }
    }
}

/// Encode the `"type"` descriptor value of a dtype as msgpack (helper for servers).
pub fn encode_descriptor(dtype: &Dtype) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_value(&dtype.descriptor());
    out
}
