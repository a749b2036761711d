//! The client above the protocol crate, fed one fuzzed body without a network: the
//! client's body decoders with their request checks (`hdfstream::client::fuzzing`), and the
//! remote objects and the table core on top of them through a [`Backend`] that answers
//! with the body.
//!
//! Where the protocol decoder gives a reference value, the client must agree with it:
//! a slice body whose shape and type match the request decodes to the same value (and into
//! a caller's buffer to the same bytes), and one that does not is an error. Elsewhere the
//! client must only fail cleanly. Reads are limited to a few times the input's size, and
//! every walk to [`MAX_REQUESTS`] requests (a body that describes itself as its own
//! member makes an endless tree).

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hdfstream::client::fuzzing;
use hdfstream::remote::{Backend, ElementKind};
use hdfstream::table::{CellIndex, ColumnRequest, PlanOptions, TablePlan, fetch_column};
use hdfstream::{
    Dataset, Directory, Element, Error, File, Group, HasAttrs, Node, Object, OpenOptions,
    RowRanges, Selection, open_with,
};
use hdfstream_protocol::{
    ArrayData, ArrayHeader, DatasetInfo, DecodeError, DimSelection, Dtype, FileInfo, GroupInfo,
    Member, NdArray, PathInfo, SliceSpec, TypedBuffer, VlenArray, VlenElement, encode_array,
    encode_error, encode_member, encode_path,
};

use super::harness::{ChunkReader, Defect, same_array};
use crate::Rng;

/// Most requests one walk makes.
pub const MAX_REQUESTS: usize = 64;

/// The file every walk opens.
const FILE: &str = "f.hdf5";

/// The selection shape of a slice request (PROTOCOL.md §3.8).
fn selection_shape(spec: &SliceSpec) -> Vec<u64> {
    if spec.runs.is_empty() {
        return Vec::new();
    }
    let first = spec
        .runs
        .iter()
        .fold(0u64, |a, r| a.saturating_add(r.count));
    std::iter::once(first)
        .chain(spec.rest.iter().map(|r| r.count))
        .collect()
}

/// The request for the whole of an array of `shape`.
fn whole(shape: &[u64]) -> SliceSpec {
    match shape.split_first() {
        None => SliceSpec::scalar(),
        Some((&n, rest)) => SliceSpec::new(
            vec![DimSelection::new(0, n)],
            rest.iter().map(|&d| DimSelection::new(0, d)).collect(),
        ),
    }
}

fn count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
}

/// Answers every request from a fuzzed body: the path request with `path`, every object
/// request with `object`, every slice request with `slice` (or, without one, with a
/// well-formed array of the selection's shape and type), each through the client's body
/// decoders and read in pieces of random size.
#[derive(Debug)]
pub struct FuzzBackend {
    path: Vec<u8>,
    object: Vec<u8>,
    slice: Option<Vec<u8>>,
    content_length: Option<u64>,
    budget_bytes: u64,
    requests: AtomicUsize,
    seed: AtomicU64,
    served: AtomicU64,
}

impl FuzzBackend {
    fn new(
        path: Vec<u8>,
        object: Vec<u8>,
        slice: Option<Vec<u8>>,
        rng: &mut Rng,
        budget: u64,
    ) -> Self {
        let content_length = match rng.below(4) {
            0 => None,
            1 => Some(1 << 60),
            _ => Some(slice.as_ref().unwrap_or(&object).len() as u64),
        };
        FuzzBackend {
            path,
            object,
            slice,
            content_length,
            budget_bytes: budget,
            requests: AtomicUsize::new(0),
            seed: AtomicU64::new(rng.next_u64()),
            served: AtomicU64::new(0),
        }
    }

    /// Count a request; past the budget, a 404.
    fn tick(&self) -> Result<(), Error> {
        if self.requests.fetch_add(1, Ordering::Relaxed) >= MAX_REQUESTS {
            return Err(fuzzing::error_response(
                404,
                Some("application/x-msgpack"),
                None,
                &encode_error("request budget of the fuzz walk spent"),
            ));
        }
        Ok(())
    }

    /// Bytes of the bodies answered so far.
    pub fn served_bytes(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    fn reader<'a>(&self, body: &'a [u8]) -> ChunkReader<'a> {
        self.served.fetch_add(body.len() as u64, Ordering::Relaxed);
        let mut rng = Rng::new(self.seed.fetch_add(1, Ordering::Relaxed));
        let max = [7, 4096, 1 << 20][rng.below(3) as usize];
        ChunkReader::new(body, &mut rng, max)
    }

    /// The body answering `spec`: the fuzzed one, or a well-formed array of `dtype`.
    fn slice_body(&self, spec: &SliceSpec, dtype: Option<&Dtype>) -> Result<Vec<u8>, Error> {
        if let Some(b) = &self.slice {
            return Ok(b.clone());
        }
        honest_answer(spec, dtype, self.budget_bytes).ok_or_else(|| Error::UnexpectedResponse {
            url: fuzzing::URL.into(),
            reason: "no answer for this selection within the walk's budget".into(),
        })
    }
}

/// A well-formed answer to `spec`: elements of `dtype` (bytes counting up, or short
/// strings), when they fit in `budget` bytes.
fn honest_answer(spec: &SliceSpec, dtype: Option<&Dtype>, budget: u64) -> Option<Vec<u8>> {
    let shape = selection_shape(spec);
    let n = count(&shape)?;
    let dtype = dtype?;
    let value = match dtype {
        Dtype::VlenString => {
            if n.checked_mul(8)? > budget {
                return None;
            }
            ArrayData::Vlen(VlenArray {
                shape,
                elements: (0..n)
                    .map(|i| VlenElement::String(format!("s{i}").into_bytes()))
                    .collect(),
            })
        }
        Dtype::Vlen(inner) => {
            let item = inner.item_size()? as u64;
            if n.checked_mul(item + 64)? > budget {
                return None;
            }
            let one = TypedBuffer::from_native_bytes(inner, &vec![7u8; item as usize])?;
            ArrayData::Vlen(VlenArray {
                shape,
                elements: (0..n)
                    .map(|_| {
                        VlenElement::Array(ArrayData::Nd(NdArray {
                            dtype: (**inner).clone(),
                            shape: vec![1],
                            data: one.clone(),
                        }))
                    })
                    .collect(),
            })
        }
        d => {
            let bytes = n.checked_mul(d.item_size()? as u64)?;
            if bytes > budget {
                return None;
            }
            let raw: Vec<u8> = (0..bytes).map(|i| (i * 13 + 5) as u8).collect();
            ArrayData::Nd(NdArray {
                dtype: d.clone(),
                shape,
                data: TypedBuffer::from_native_bytes(d, &raw)?,
            })
        }
    };
    Some(encode_array(&value))
}

impl Backend for FuzzBackend {
    fn request_path(&self, _vpath: &str) -> hdfstream::Result<PathInfo> {
        self.tick()?;
        fuzzing::path_body(self.reader(&self.path), self.content_length)
    }

    fn request_object(
        &self,
        _file: &str,
        _object: &str,
        _max_depth: u32,
        _data_size_limit: u64,
    ) -> hdfstream::Result<Member> {
        self.tick()?;
        fuzzing::object_body(self.reader(&self.object), self.content_length)
    }

    fn request_slice(
        &self,
        _file: &str,
        _object: &str,
        slice: &SliceSpec,
    ) -> hdfstream::Result<ArrayData> {
        self.tick()?;
        let body = self.slice_body(slice, None)?;
        fuzzing::slice_body(self.reader(&body), self.content_length, slice, None)
    }

    fn request_slice_typed(
        &self,
        _file: &str,
        _object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
    ) -> hdfstream::Result<ArrayData> {
        self.tick()?;
        let body = self.slice_body(slice, Some(dtype))?;
        fuzzing::slice_body(self.reader(&body), self.content_length, slice, Some(dtype))
    }

    fn request_slice_into(
        &self,
        _file: &str,
        _object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
        dest: &mut [u8],
    ) -> hdfstream::Result<()> {
        self.tick()?;
        let body = self.slice_body(slice, Some(dtype))?;
        fuzzing::slice_into_body(self.reader(&body), self.content_length, slice, dtype, dest)
    }

    fn download(&self, _vpath: &str, out: &mut dyn std::io::Write) -> hdfstream::Result<u64> {
        self.tick()?;
        let mut body = Vec::new();
        let _ = self.reader(&self.object).read_to_end(&mut body);
        out.write_all(&body).map_err(|source| Error::Io {
            context: "fuzz download".into(),
            source,
        })?;
        Ok(body.len() as u64)
    }
}

/// A file map for the walks' path request.
fn file_map() -> Vec<u8> {
    encode_path(&PathInfo::File(FileInfo {
        media_type: hdfstream_protocol::HDF5_MEDIA_TYPE.into(),
        size: 1,
        last_modified_ms: 0,
    }))
}

/// The client layers on one input (see the module docs): whether a walk got past opening
/// its file or directory, and the most bytes one walk's answers added up to (each walk
/// answers many requests with the input).
pub(crate) fn check_client(
    input: &[u8],
    one: &Result<ArrayData, DecodeError>,
    header: Option<&ArrayHeader>,
    path: &Result<PathInfo, DecodeError>,
    object: &Result<Member, DecodeError>,
    rng: &mut Rng,
) -> Result<(bool, u64), Defect> {
    let budget = 4 * input.len() as u64 + 4096;
    let mut served = 0u64;
    check_slice_bodies(input, one, header, rng)?;
    check_metadata_bodies(input, path, object, rng)?;
    check_error_bodies(input, rng);
    let mut walked = false;
    // A slice body behind a dataset whose metadata matches its header.
    let meta = match (one, header) {
        (Ok(ArrayData::Nd(a)), _) => Some((a.dtype.clone(), a.shape.clone())),
        (Ok(ArrayData::Vlen(v)), _) => Some((Dtype::VlenString, v.shape.clone())),
        (Err(_), Some(h)) => Some((h.dtype.clone(), h.shape.clone())),
        _ => None,
    };
    if let Some((dtype, shape)) = meta {
        walked |= walk_slice_body(input, one, dtype, shape, rng, budget, &mut served)?;
    }
    if object.is_ok() || rng.chance(0.05) {
        let b = Arc::new(FuzzBackend::new(
            file_map(),
            input.to_vec(),
            None,
            rng,
            budget,
        ));
        walked |= walk_file(&b, rng, budget);
        walk_table(&b, rng, budget);
        served = served.max(b.served_bytes());
    }
    if path.is_ok() || rng.chance(0.05) {
        let b = Arc::new(FuzzBackend::new(
            input.to_vec(),
            Vec::new(),
            None,
            rng,
            budget,
        ));
        walked |= walk_path(b.clone());
        served = served.max(b.served_bytes());
    }
    Ok((walked, served))
}

fn describe<T>(r: &hdfstream::Result<T>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(e) => format!("Err({e})"),
    }
}

/// The client's slice decoders against the reference value.
fn check_slice_bodies(
    input: &[u8],
    one: &Result<ArrayData, DecodeError>,
    header: Option<&ArrayHeader>,
    rng: &mut Rng,
) -> Result<(), Defect> {
    let shape = match (one, header) {
        (Ok(a), _) => a.shape().to_vec(),
        (Err(_), Some(h)) => h.shape.clone(),
        _ => vec![input.len() as u64 % 5],
    };
    let spec = whole(&shape);
    let cl = [None, Some(input.len() as u64), Some(1 << 60)][rng.below(3) as usize];
    let max = [7, 4096, 1 << 20][rng.below(3) as usize];
    let untyped = fuzzing::slice_body(ChunkReader::new(input, rng, max), cl, &spec, None);
    match (one, &untyped) {
        (Ok(a), Ok(b)) if same_array(a, b) => {}
        (Err(_), Err(_)) => {}
        _ => {
            return Err(Defect(format!(
                "client slice decoder gives {} where decode_array gives {}",
                describe(&untyped),
                if one.is_ok() { "Ok" } else { "Err" }
            )));
        }
    }
    match one {
        Ok(ArrayData::Nd(a)) => {
            let typed =
                fuzzing::slice_body(ChunkReader::new(input, rng, max), cl, &spec, Some(&a.dtype));
            if !matches!(&typed, Ok(b) if same_array(&ArrayData::Nd(a.clone()), b)) {
                return Err(Defect(format!(
                    "client typed slice decoder gives {} for a matching {} body",
                    describe(&typed),
                    a.dtype
                )));
            }
            let other = if a.dtype.native() == Dtype::parse("<u1").ok().unwrap_or(Dtype::VlenString)
            {
                "<i2"
            } else {
                "<u1"
            };
            if let Ok(t) = Dtype::parse(other) {
                let typed =
                    fuzzing::slice_body(ChunkReader::new(input, rng, max), cl, &spec, Some(&t));
                if typed.is_ok() {
                    return Err(Defect(format!(
                        "client typed slice decoder accepts a {} body for type {t}",
                        a.dtype
                    )));
                }
            }
            let want = a.data.as_bytes();
            let mut dest = vec![0x33u8; want.len()];
            let r = fuzzing::slice_into_body(
                ChunkReader::new(input, rng, max),
                cl,
                &spec,
                &a.dtype,
                &mut dest,
            );
            if r.is_err() || dest != want {
                return Err(Defect(format!(
                    "client slice_into gives {} for a matching body{}",
                    describe(&r),
                    if dest == want { "" } else { " (other bytes)" }
                )));
            }
            // A selection of another shape: an error, never data.
            let mut bigger = shape.clone();
            if let Some(d) = bigger.first_mut()
                && let Some(n) = d.checked_add(1)
            {
                *d = n;
                let r = fuzzing::slice_body(
                    ChunkReader::new(input, rng, max),
                    cl,
                    &whole(&bigger),
                    None,
                );
                if r.is_ok() {
                    return Err(Defect(
                        "client slice decoder accepts a body of another shape".into(),
                    ));
                }
            }
        }
        Ok(ArrayData::Vlen(_)) => {
            let typed = fuzzing::slice_body(
                ChunkReader::new(input, rng, max),
                cl,
                &spec,
                Some(&Dtype::VlenString),
            );
            if typed.is_err() {
                return Err(Defect(format!(
                    "client typed slice decoder gives {} for a vlen body",
                    describe(&typed)
                )));
            }
        }
        Err(_) => {
            if let Some(h) = header
                && let Some(n) =
                    count(&h.shape).and_then(|c| c.checked_mul(h.dtype.item_size()? as u64))
                && n <= input.len() as u64
            {
                let mut dest = vec![0u8; n as usize];
                let r = fuzzing::slice_into_body(
                    ChunkReader::new(input, rng, max),
                    cl,
                    &spec,
                    &h.dtype,
                    &mut dest,
                );
                if r.is_ok() {
                    return Err(Defect(
                        "client slice_into succeeds where decode_array fails".into(),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The client's metadata decoders against the protocol's.
fn check_metadata_bodies(
    input: &[u8],
    path: &Result<PathInfo, DecodeError>,
    object: &Result<Member, DecodeError>,
    rng: &mut Rng,
) -> Result<(), Defect> {
    let cl = [None, Some(input.len() as u64), Some(1 << 60)][rng.below(3) as usize];
    let max = [7, 4096, 1 << 20][rng.below(3) as usize];
    let p = fuzzing::path_body(ChunkReader::new(input, rng, max), cl);
    let same = match (path, &p) {
        (Ok(a), Ok(b)) => encode_path(a) == encode_path(b),
        (Err(_), Err(_)) => true,
        _ => false,
    };
    if !same {
        return Err(Defect(format!(
            "client path decoder gives {}",
            describe(&p)
        )));
    }
    let o = fuzzing::object_body(ChunkReader::new(input, rng, max), cl);
    let same = match (object, &o) {
        (Ok(a), Ok(b)) => encode_member(a) == encode_member(b),
        (Err(_), Err(_)) => true,
        _ => false,
    };
    if !same {
        return Err(Defect(format!(
            "client object decoder gives {}",
            describe(&o)
        )));
    }
    Ok(())
}

/// Error responses made of the body: msgpack, HTML or text, with a `Retry-After` of it.
fn check_error_bodies(input: &[u8], rng: &mut Rng) {
    let status = [400, 404, 429, 500, 503, 401, 599][rng.below(7) as usize];
    let media = [Some("application/x-msgpack"), Some("text/html"), None][rng.below(3) as usize];
    let head = String::from_utf8_lossy(&input[..input.len().min(40)]).into_owned();
    let retry = [
        None,
        Some(head.as_str()),
        Some("120"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT"),
    ][rng.below(4) as usize];
    let e = fuzzing::error_response(status, media, retry, input);
    let _ = (e.to_string(), e.is_retryable());
}

/// Read a few things of `d` as `T` within the budget.
fn read_as<T: Element>(d: &Dataset, budget: u64) {
    let n = count(d.shape()).unwrap_or(u64::MAX);
    if n.saturating_mul(8) <= budget {
        let _ = d.read::<T>();
        let mut dest = vec![T::zeroed(); n as usize];
        let _ = d.read_into(&Selection::all(), &mut dest);
        if let Some(last) = d
            .len()
            .ok()
            .and_then(|l| i64::try_from(l).ok())
            .filter(|&l| l > 0)
        {
            let last = last - 1;
            let _ = d.read_fancy::<T>(&[0i64, last, 0, -1][..], &Selection::all());
            let _ =
                d.request_slices::<T>(&[Selection::new().dim(0..1), Selection::new().dim(last..)]);
        }
    }
    // The first row only (any dataset size).
    if let Some((_, rest)) = d.shape().split_first()
        && count(rest).is_some_and(|r| r.saturating_mul(8) <= budget)
    {
        let _ = d.read_slice::<T>(&Selection::new().dim(0..1));
        let _ = d.read_slice::<T>(&Selection::new().dim(0));
    }
}

/// Reads of every element type the dataset's type can become, within the budget.
fn walk_dataset(d: &Dataset, budget: u64) {
    let _ = (d.dtype(), d.ndim(), d.len(), d.is_empty(), d.inline_data());
    let _ = count(d.shape());
    let _ = d.size();
    walk_attrs(d);
    let bytes =
        count(d.shape()).and_then(|n| n.checked_mul(d.dtype().item_size().unwrap_or(16) as u64));
    if bytes.is_some_and(|b| b <= budget) {
        let _ = d.read_raw(&Selection::all());
        let _ = d.read_strings();
    }
    read_as::<f64>(d, budget);
    match ElementKind::from_dtype(d.dtype()) {
        Some(ElementKind::I8) => read_as::<i8>(d, budget),
        Some(ElementKind::I16) => read_as::<i16>(d, budget),
        Some(ElementKind::I32) => read_as::<i32>(d, budget),
        Some(ElementKind::I64) => read_as::<i64>(d, budget),
        Some(ElementKind::U8) => read_as::<u8>(d, budget),
        Some(ElementKind::U16) => read_as::<u16>(d, budget),
        Some(ElementKind::U32) => read_as::<u32>(d, budget),
        Some(ElementKind::U64) => read_as::<u64>(d, budget),
        Some(ElementKind::F32) => read_as::<f32>(d, budget),
        _ => {}
    }
}

fn walk_attrs(o: &dyn HasAttrs) {
    for (name, v) in o.attrs().iter() {
        let _ = (
            name,
            v.shape(),
            v.dtype(),
            v.is_scalar(),
            v.len(),
            v.is_empty(),
        );
        let _ = v.to_vec::<f64>();
        let _ = v.to_vec::<i64>();
        let _ = v.to_vec::<u8>();
        let _ = v.to_strings();
        let _ = (v.as_f64(), v.as_i64(), v.as_string());
    }
    let _ = (
        o.attrs().len(),
        o.attrs().keys().count(),
        o.attrs().contains("BoxSize"),
    );
}

fn walk_group(g: &Group, depth: usize, rng: &mut Rng, budget: u64, seen: &mut usize) {
    walk_attrs(g);
    let keys = g.keys();
    let _ = (g.len(), g.is_empty(), g.name(), g.file_path());
    for name in keys.iter().take(16) {
        *seen += 1;
        if *seen > 256 {
            return;
        }
        let _ = g.get_link(name);
        let _ = g.contains(name);
        let _ = g.contains(&format!("{name}/x"));
        match g.get(name) {
            Ok(Object::Group(sub)) if depth < 4 => walk_group(&sub, depth + 1, rng, budget, seen),
            Ok(Object::Dataset(d)) => walk_dataset(&d, budget),
            _ => {}
        }
    }
    let _ = g.parent();
    let _ = g.get("..");
    let _ = g.get(".");
    if let Some(name) = keys.first() {
        let _ = g.get(&format!("./{name}/../{name}"));
        let _ = g.get(&format!("/{name}"));
    }
    if depth == 0 && rng.chance(0.25) {
        let mut n = 0;
        let _ = g.visit(|_| n += 1);
    }
}

/// Open the file, walk its tree, read its datasets.
fn walk_file(backend: &Arc<FuzzBackend>, rng: &mut Rng, budget: u64) -> bool {
    let b: Arc<dyn Backend> = backend.clone();
    let options = OpenOptions::default().max_depth(rng.below(3) as u32);
    let Ok(file) = open_with(b, FILE, options).and_then(Node::into_file) else {
        return false;
    };
    walk_file_handle(&file, rng, budget)
}

fn walk_file_handle(file: &File, rng: &mut Rng, budget: u64) -> bool {
    let _ = (
        file.name(),
        file.size(),
        file.media_type(),
        file.is_hdf5(),
        file.keys(),
    );
    let Ok(root) = file.root() else {
        return false;
    };
    let mut seen = 0;
    walk_group(&root, 0, rng, budget, &mut seen);
    let _ = file.get("PartType0/Coordinates");
    let _ = file.get_link("PartType0/Link");
    let _ = file.contains("Header");
    true
}

/// The table core over the file: its plan, a few rows of each column, the cell index.
fn walk_table(backend: &Arc<FuzzBackend>, rng: &mut Rng, budget: u64) {
    let b: &dyn Backend = backend.as_ref();
    let files = [FILE.to_string()];
    let opts = PlanOptions {
        recursive: rng.chance(0.5),
        concurrency: 1,
        ..PlanOptions::default()
    };
    let group = ["/", "PartType0"][rng.below(2) as usize];
    if let Ok(plan) = TablePlan::load(b, &files, group, &opts, |_, info: &DatasetInfo| {
        Ok(info.dtype.clone())
    }) {
        let _ = plan.offsets();
        let rows = plan.total_rows().min(3);
        for c in plan.columns.iter().take(8) {
            let rest: Vec<DimSelection> = c
                .info
                .shape
                .iter()
                .skip(1)
                .map(|&d| DimSelection::new(0, d))
                .collect();
            let per_row = rest.iter().try_fold(1u64, |a, d| a.checked_mul(d.count));
            if per_row.is_some_and(|w| w.saturating_mul(rows).saturating_mul(8) <= budget) {
                let req = ColumnRequest {
                    object: &c.object,
                    dtype: &c.mapped,
                    rest,
                };
                let _ = fetch_column(b, FILE, &req, &RowRanges::from_rows(0..rows));
            }
        }
    }
    let _ = CellIndex::load(b, FILE, "PartType0");
}

/// A directory (or file) listing: its entries, lazily loaded subdirectories, paths.
fn walk_path(backend: Arc<dyn Backend>) -> bool {
    match open_with(backend, "dir", OpenOptions::default()) {
        Ok(Node::Directory(d)) => {
            walk_directory(&d, 0);
            true
        }
        Ok(Node::File(f)) => {
            let _ = (f.name(), f.size(), f.is_hdf5(), f.last_modified_ms());
            true
        }
        Err(_) => false,
    }
}

fn walk_directory(d: &Arc<Directory>, depth: usize) {
    let _ = (
        d.path(),
        d.is_loaded(),
        d.len(),
        d.is_empty(),
        d.size(),
        d.description(),
    );
    let keys = d.keys().unwrap_or_default();
    for k in keys.iter().take(8) {
        let _ = d.contains(k);
        let _ = d.is_hdf5(k);
        match d.get(k) {
            Ok(Node::Directory(sub)) if depth < 3 => walk_directory(&sub, depth + 1),
            Ok(Node::File(f)) => {
                let _ = (f.size(), f.is_hdf5());
            }
            _ => {}
        }
    }
    if let Ok(files) = d.files() {
        for (_, f) in files.iter().take(2) {
            let _ = f.last_modified_ms();
        }
    }
    let _ = d.directories();
    let _ = d.get("../x");
    let _ = d.get("a/b/c");
}

/// A slice body behind a dataset of matching metadata: reads through the remote layer
/// must give the reference value (same bytes into a caller's buffer), or fail with it.
fn walk_slice_body(
    input: &[u8],
    one: &Result<ArrayData, DecodeError>,
    dtype: Dtype,
    shape: Vec<u64>,
    rng: &mut Rng,
    budget: u64,
    served: &mut u64,
) -> Result<bool, Defect> {
    let group = Member::Group(GroupInfo {
        attributes: vec![],
        members: vec![(
            "d".into(),
            Some(Member::Dataset(DatasetInfo {
                attributes: vec![],
                dtype: dtype.clone(),
                shape: shape.clone(),
                data: None,
            })),
        )],
    });
    let backend = Arc::new(FuzzBackend::new(
        file_map(),
        encode_member(&group),
        Some(input.to_vec()),
        rng,
        budget,
    ));
    let r = walk_dataset_d(one, &dtype, &shape, &backend, budget);
    *served = (*served).max(backend.served_bytes());
    r
}

/// The reads of [`walk_slice_body`].
fn walk_dataset_d(
    one: &Result<ArrayData, DecodeError>,
    dtype: &Dtype,
    shape: &[u64],
    backend: &Arc<FuzzBackend>,
    budget: u64,
) -> Result<bool, Defect> {
    let b: Arc<dyn Backend> = backend.clone();
    let Ok(file) = open_with(b, FILE, OpenOptions::default()).and_then(Node::into_file) else {
        return Err(Defect("cannot open the synthetic file".into()));
    };
    let Ok(d) = file.dataset("d") else {
        return Err(Defect("cannot open the synthetic dataset".into()));
    };
    // The whole dataset is read only when the caller could afford it: a read allocates
    // what the metadata says it asks for (here the header's claim).
    let size = count(shape).and_then(|n| n.checked_mul(dtype.item_size().unwrap_or(16) as u64));
    if size.is_none_or(|s| s > budget) {
        walk_dataset(&d, budget);
        return Ok(true);
    }
    let raw = d.read_raw(&Selection::all());
    match (one, &raw) {
        (Ok(a), Ok(r)) if same_array(a, r) => {}
        (Err(_), Err(_)) => {}
        (Ok(ArrayData::Vlen(_)), Ok(ArrayData::Vlen(_))) => {}
        _ => {
            return Err(Defect(format!(
                "Dataset::read_raw gives {} where decode_array gives {}",
                describe(&raw),
                if one.is_ok() { "Ok" } else { "Err" }
            )));
        }
    }
    if let Ok(ArrayData::Nd(a)) = one
        && ElementKind::from_dtype(&a.dtype).is_some()
    {
        // Straight into a caller's buffer of the exact type.
        let want = a.data.as_bytes();
        let mut dest = vec![0u8; want.len()];
        let r = match ElementKind::from_dtype(&a.dtype) {
            Some(ElementKind::F64) => into_bytes::<f64>(&d, &mut dest),
            Some(ElementKind::F32) => into_bytes::<f32>(&d, &mut dest),
            Some(ElementKind::I64) => into_bytes::<i64>(&d, &mut dest),
            Some(ElementKind::I32) => into_bytes::<i32>(&d, &mut dest),
            Some(ElementKind::I16) => into_bytes::<i16>(&d, &mut dest),
            Some(ElementKind::I8) => into_bytes::<i8>(&d, &mut dest),
            Some(ElementKind::U64) => into_bytes::<u64>(&d, &mut dest),
            Some(ElementKind::U32) => into_bytes::<u32>(&d, &mut dest),
            Some(ElementKind::U16) => into_bytes::<u16>(&d, &mut dest),
            _ => into_bytes::<u8>(&d, &mut dest),
        };
        if r.is_err() || dest != want {
            return Err(Defect(format!(
                "Dataset::read_into gives {} for a matching body{}",
                describe(&r),
                if dest == want { "" } else { " (other bytes)" }
            )));
        }
    }
    walk_dataset(&d, budget);
    Ok(true)
}

/// `read_into` of the whole dataset as `T`, its bytes copied into `dest`.
fn into_bytes<T: Element>(d: &Dataset, dest: &mut [u8]) -> hdfstream::Result<()> {
    let n = dest.len() / std::mem::size_of::<T>();
    let mut v = vec![T::zeroed(); n];
    d.read_into(&Selection::all(), &mut v)?;
    dest.copy_from_slice(bytemuck::cast_slice(&v));
    Ok(())
}
