//! The mixed requests of one load client, each checked against the [`Truth`]: a wrong value,
//! a missing member or a short download is an error like a failed request.

use std::collections::HashMap;
use std::sync::Arc;

use hdfstream::remote::Backend;
use hdfstream::{Connection, File, HasAttrs, Object, OpenOptions, Selection};
use hdfstream_protocol::{
    ArrayData, DatasetInfo, DimSelection, GroupInfo, HDF5_MEDIA_TYPE, Member, PathInfo, SliceSpec,
};
use hdfstream_reliability::Rng;

use crate::scan::ScanTruth;
use crate::truth::{
    AttrTruth, DatasetTruth, FileTruth, GroupTruth, Kind, LinkTruth, Truth, gather,
};

/// The request kinds, in report order.
pub(crate) const KINDS: [&str; 10] = [
    "listing",
    "file",
    "group",
    "dataset",
    "attributes",
    "slice",
    "multi_slice",
    "fancy",
    "download",
    "scan",
];

/// Relative frequency of each kind in the mix (same order as [`KINDS`]).
const WEIGHTS: [u64; 10] = [8, 6, 10, 10, 8, 20, 12, 12, 4, 10];

/// Picks a request kind by [`WEIGHTS`].
pub(crate) fn pick_kind(rng: &mut Rng) -> usize {
    let total: u64 = WEIGHTS.iter().sum();
    let mut r = rng.below(total);
    for (i, &w) in WEIGHTS.iter().enumerate() {
        if r < w {
            return i;
        }
        r -= w;
    }
    0
}

/// An error of one request: what was asked and what went wrong.
pub(crate) type OpResult = Result<(), String>;

/// Runs `$body` with `$t` the Rust type of the numeric kind `$kind`.
macro_rules! typed {
    ($kind:expr, $t:ident => $body:expr) => {
        match $kind {
            Kind::I8 => {
                type $t = i8;
                $body
            }
            Kind::I16 => {
                type $t = i16;
                $body
            }
            Kind::I32 => {
                type $t = i32;
                $body
            }
            Kind::I64 => {
                type $t = i64;
                $body
            }
            Kind::U8 => {
                type $t = u8;
                $body
            }
            Kind::U16 => {
                type $t = u16;
                $body
            }
            Kind::U32 => {
                type $t = u32;
                $body
            }
            Kind::U64 => {
                type $t = u64;
                $body
            }
            Kind::F32 => {
                type $t = f32;
                $body
            }
            Kind::F64 => {
                type $t = f64;
                $body
            }
        }
    };
}

/// The bytes of a typed result array (C order).
fn array_bytes<T: bytemuck::Pod>(a: &ndarray::ArrayD<T>) -> Result<Vec<u8>, String> {
    let s = a
        .as_slice()
        .ok_or_else(|| "result array is not C-contiguous".to_string())?;
    Ok(bytemuck::cast_slice(s).to_vec())
}

/// Compares received bytes with the expected ones; the message names the first difference.
pub(crate) fn same_bytes(what: &str, got: &[u8], want: &[u8]) -> OpResult {
    if got == want {
        return Ok(());
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    Err(format!(
        "wrong value: {what}: {} bytes received, {} expected, first difference at byte {at}",
        got.len(),
        want.len()
    ))
}

/// Bytes and type of a numeric wire array.
fn nd_bytes<'a>(what: &str, data: &'a ArrayData, kind: Kind) -> Result<&'a [u8], String> {
    match data {
        ArrayData::Nd(nd) if Kind::from_dtype(&nd.dtype) == Some(kind) => Ok(nd.data.as_bytes()),
        ArrayData::Nd(nd) => Err(format!(
            "wrong value: {what}: type {:?}, expected {kind:?}",
            nd.dtype
        )),
        ArrayData::Vlen(_) => Err(format!(
            "wrong value: {what}: variable-length data for {kind:?}"
        )),
    }
}

fn check_attrs(what: &str, got: &[(String, ArrayData)], want: &[(String, AttrTruth)]) -> OpResult {
    let mut names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let want_names: Vec<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
    if names != want_names {
        return Err(format!(
            "wrong value: attributes of {what}: {names:?}, expected {want_names:?}"
        ));
    }
    for (name, value) in got {
        let Some((_, truth)) = want.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let at = format!("{what} @{name}");
        match truth {
            AttrTruth::Numbers { kind, shape, bytes } => {
                if value.shape() != shape.as_slice() {
                    return Err(format!(
                        "wrong value: {at}: shape {:?}, expected {shape:?}",
                        value.shape()
                    ));
                }
                same_bytes(&at, nd_bytes(&at, value, *kind)?, bytes)?;
            }
            AttrTruth::Strings(s) => {
                let got = hdfstream::AttrValue::new(value.clone())
                    .to_strings()
                    .map_err(|e| format!("wrong value: {at}: not strings ({e})"))?;
                if &got != s {
                    return Err(format!("wrong value: {at}: {got:?}, expected {s:?}"));
                }
            }
            AttrTruth::Other => {}
        }
    }
    Ok(())
}

fn check_dataset(what: &str, info: &DatasetInfo, t: &DatasetTruth, limit: u64) -> OpResult {
    if info.shape != t.shape {
        return Err(format!(
            "wrong value: shape of {what}: {:?}, expected {:?}",
            info.shape, t.shape
        ));
    }
    check_attrs(what, &info.attributes, &t.attrs)?;
    let Some(kind) = t.kind else {
        return Ok(());
    };
    if Kind::from_dtype(&info.dtype) != Some(kind) {
        return Err(format!(
            "wrong value: type of {what}: {:?}, expected {kind:?}",
            info.dtype
        ));
    }
    let inline = t.data.len() as u64 <= limit;
    match &info.data {
        Some(data) if inline => same_bytes(
            &format!("{what} (inline)"),
            nd_bytes(what, data, kind)?,
            &t.data,
        ),
        None if !inline => Ok(()),
        got => Err(format!(
            "wrong value: {what}: inline data {} with data_size_limit {limit} for {} bytes",
            if got.is_some() { "present" } else { "missing" },
            t.data.len()
        )),
    }
}

/// Checks a group answer under the protocol's expansion rules (PROTOCOL.md §3.3): members
/// are encoded at depth 0, and at depth `d` when the group has at most 20 links and
/// `d < max_depth`; a member group deeper than `max_depth` is `nil`.
fn check_group(
    file: &FileTruth,
    info: &GroupInfo,
    t: &GroupTruth,
    depth: u32,
    max_depth: u32,
    limit: u64,
) -> OpResult {
    let what = format!("{}:{}", file.vpath, t.path);
    check_attrs(&what, &info.attributes, &t.attrs)?;
    let mut names: Vec<&str> = info.members.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let want: Vec<&str> = t.links.iter().map(|(n, _)| n.as_str()).collect();
    if names != want {
        return Err(format!(
            "wrong value: members of {what}: {names:?}, expected {want:?}"
        ));
    }
    let encoded = depth == 0 || (t.links.len() <= 20 && depth < max_depth);
    for (name, member) in &info.members {
        let Some((_, link)) = t.links.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let child = if t.path == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", t.path)
        };
        let at = format!("{}:{child}", file.vpath);
        match (encoded, link, member) {
            (false, _, None) => {}
            (false, _, Some(_)) => {
                return Err(format!("wrong value: {at} expanded below the depth limit"));
            }
            (true, LinkTruth::Group, None) if depth + 1 > max_depth => {}
            (true, LinkTruth::Group, Some(Member::Group(g))) if depth < max_depth => {
                let gt = file
                    .group(&child)
                    .ok_or_else(|| format!("no truth for group {at}"))?;
                check_group(file, g, gt, depth + 1, max_depth, limit)?;
            }
            (true, LinkTruth::Dataset, Some(Member::Dataset(d))) => {
                let dt = file
                    .dataset(&child)
                    .ok_or_else(|| format!("no truth for dataset {at}"))?;
                check_dataset(&at, d, dt, limit)?;
            }
            (true, LinkTruth::Soft(target), Some(Member::SoftLink { target: got })) => {
                let want = target.and_then(|i| file.objects.get(i));
                if want.map(String::as_str) != Some(got.as_str()) {
                    return Err(format!(
                        "wrong value: soft link {at} -> {got:?}, expected {want:?}"
                    ));
                }
            }
            (true, LinkTruth::Other, _) => {}
            (true, link, got) => {
                return Err(format!(
                    "wrong value: member {at}: {}, expected {link:?} at depth {depth} of {max_depth}",
                    match got {
                        None => "nil",
                        Some(Member::Group(_)) => "a group",
                        Some(Member::Dataset(_)) => "a dataset",
                        Some(Member::SoftLink { .. }) => "a soft link",
                        Some(_) => "unknown",
                    }
                ));
            }
        }
    }
    Ok(())
}

/// A writer that compares a download with the file's bytes as they stream in.
struct CheckWriter<'a> {
    want: &'a [u8],
    at: usize,
    first_difference: Option<usize>,
}

impl std::io::Write for CheckWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.first_difference.is_none() {
            let end = self.at + buf.len();
            match self.want.get(self.at..end) {
                Some(w) if w == buf => {}
                _ => {
                    let d = buf
                        .iter()
                        .zip(self.want.get(self.at..).unwrap_or_default())
                        .position(|(a, b)| a != b)
                        .unwrap_or(buf.len().min(self.want.len().saturating_sub(self.at)));
                    self.first_difference = Some(self.at + d);
                }
            }
        }
        self.at += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A row range `(start, count)` of a dataset of `n` rows, at most `max` long.
fn run_in(rng: &mut Rng, n: u64, max: u64) -> (u64, u64) {
    let start = rng.below(n);
    (start, 1 + rng.below((n - start).min(max)))
}

/// Random ranges of the dimensions after the first.
fn rest_ranges(rng: &mut Rng, shape: &[u64]) -> Vec<(u64, u64)> {
    shape
        .iter()
        .skip(1)
        .map(|&n| {
            if rng.chance(0.5) {
                (0, n)
            } else {
                run_in(rng, n, n)
            }
        })
        .collect()
}

fn selection(first: (u64, u64), rest: &[(u64, u64)]) -> Selection {
    let r = |(s, c): (u64, u64)| s as i64..(s + c) as i64;
    rest.iter()
        .fold(Selection::new().dim(r(first)), |sel, &d| sel.dim(r(d)))
}

fn spec(runs: &[(u64, u64)], rest: &[(u64, u64)]) -> SliceSpec {
    let d = |&(start, count): &(u64, u64)| DimSelection::new(start, count);
    SliceSpec::new(runs.iter().map(d).collect(), rest.iter().map(d).collect())
}

/// One load client: its own connection (keep-alive pool) and its opened files.
pub(crate) struct Client<'t> {
    conn: Connection,
    backend: Arc<dyn Backend>,
    truth: &'t Truth,
    table: Option<&'t ScanTruth>,
    rng: Rng,
    files: HashMap<usize, Arc<File>>,
}

impl<'t> Client<'t> {
    /// A client over `conn`, drawing its requests from `rng`.
    pub(crate) fn new(
        conn: Connection,
        truth: &'t Truth,
        table: Option<&'t ScanTruth>,
        rng: Rng,
    ) -> Self {
        Self {
            backend: Arc::new(conn.clone()),
            conn,
            truth,
            table,
            rng,
            files: HashMap::new(),
        }
    }

    /// Runs one request of kind `kind` (an index into [`KINDS`]) and checks its answer.
    pub(crate) fn run(&mut self, kind: usize) -> OpResult {
        match kind {
            0 => self.listing(),
            1 => self.file_info(),
            2 => self.group(),
            3 => self.dataset(),
            4 => self.attributes(),
            5 => self.slice(),
            6 => self.multi_slice(),
            7 => self.fancy(),
            8 => self.download(),
            _ => crate::scan::scan(&self.backend, self.table, &mut self.rng),
        }
    }

    fn pick_file(&mut self) -> usize {
        self.rng.below(self.truth.files.len() as u64) as usize
    }

    /// A file opened through the high-level API, kept (with its metadata) for later reads.
    /// No data is inlined in the metadata, so that every read is a request.
    fn opened(&mut self, fi: usize) -> Result<Arc<File>, String> {
        if let Some(f) = self.files.get(&fi) {
            return Ok(f.clone());
        }
        let vpath = &self.truth.files[fi].vpath;
        let options = OpenOptions::default().data_size_limit(0);
        let f = hdfstream::open_with(self.backend.clone(), vpath, options)
            .and_then(|n| n.into_file())
            .map_err(|e| format!("open {vpath}: {e}"))?;
        self.files.insert(fi, f.clone());
        Ok(f)
    }

    /// A random numeric dataset with rows, and its file.
    fn pick_sliceable(&mut self) -> Result<(usize, &'t DatasetTruth), String> {
        for _ in 0..64 {
            let fi = self.pick_file();
            let ds: Vec<&DatasetTruth> = self.truth.files[fi]
                .datasets
                .iter()
                .filter(|d| d.sliceable())
                .collect();
            if !ds.is_empty() {
                return Ok((fi, ds[self.rng.below(ds.len() as u64) as usize]));
            }
        }
        Err("the sample has no numeric dataset to slice".into())
    }

    fn listing(&mut self) -> OpResult {
        let info = self
            .conn
            .request_path("")
            .map_err(|e| format!("listing /: {e}"))?;
        let PathInfo::Directory(d) = info else {
            return Err("wrong value: / is not a directory".into());
        };
        let mut got: Vec<(&str, u64, i64)> = d
            .files
            .iter()
            .map(|(n, f)| (n.as_str(), f.size, f.last_modified_ms))
            .collect();
        got.sort_unstable();
        let want: Vec<(&str, u64, i64)> = self
            .truth
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.size, e.mtime_ms))
            .collect();
        if got != want || !d.directories.is_empty() {
            return Err(format!(
                "wrong value: listing of /: {got:?} and {} directories, expected {want:?}",
                d.directories.len()
            ));
        }
        if let Some((n, f)) = d
            .files
            .iter()
            .find(|(n, f)| n.ends_with(".hdf5") && f.media_type != HDF5_MEDIA_TYPE)
        {
            return Err(format!("wrong value: media type of {n}: {}", f.media_type));
        }
        let total: u64 = want.iter().map(|w| w.1).sum();
        if d.size != total {
            return Err(format!(
                "wrong value: size of /: {}, expected {total}",
                d.size
            ));
        }
        Ok(())
    }

    fn file_info(&mut self) -> OpResult {
        let i = self.rng.below(self.truth.entries.len() as u64) as usize;
        let e = &self.truth.entries[i];
        let info = self
            .conn
            .request_path(&e.name)
            .map_err(|err| format!("path {}: {err}", e.name))?;
        match info {
            PathInfo::File(f) if f.size == e.size && f.last_modified_ms == e.mtime_ms => Ok(()),
            other => Err(format!(
                "wrong value: {}: {other:?}, expected size {} modified {}",
                e.name, e.size, e.mtime_ms
            )),
        }
    }

    fn group(&mut self) -> OpResult {
        let fi = self.pick_file();
        let file = &self.truth.files[fi];
        let g = &file.groups[self.rng.below(file.groups.len() as u64) as usize];
        let max_depth = self.rng.below(3) as u32;
        let limit = *self.rng.pick(&[0u64, 64, 4096]);
        let member = self
            .conn
            .request_object(&file.vpath, &g.path, max_depth, limit)
            .map_err(|e| format!("group {}:{}: {e}", file.vpath, g.path))?;
        match member {
            Member::Group(info) => check_group(file, &info, g, 0, max_depth, limit),
            _ => Err(format!(
                "wrong value: {}:{} is not a group",
                file.vpath, g.path
            )),
        }
    }

    fn dataset(&mut self) -> OpResult {
        let fi = self.pick_file();
        let file = &self.truth.files[fi];
        if file.datasets.is_empty() {
            return Ok(());
        }
        let d = &file.datasets[self.rng.below(file.datasets.len() as u64) as usize];
        let limit = *self.rng.pick(&[0u64, 1024, 1 << 20]);
        let what = format!("{}:{}", file.vpath, d.path);
        let member = self
            .conn
            .request_object(&file.vpath, &d.path, 0, limit)
            .map_err(|e| format!("dataset {what}: {e}"))?;
        match member {
            Member::Dataset(info) => check_dataset(&what, &info, d, limit),
            _ => Err(format!("wrong value: {what} is not a dataset")),
        }
    }

    /// Attributes through the high-level API: a freshly opened file (metadata only), then
    /// the object.
    fn attributes(&mut self) -> OpResult {
        let fi = self.pick_file();
        let file = &self.truth.files[fi];
        let with_attrs: Vec<(&str, &[(String, AttrTruth)])> = file
            .groups
            .iter()
            .map(|g| (g.path.as_str(), g.attrs.as_slice()))
            .chain(
                file.datasets
                    .iter()
                    .map(|d| (d.path.as_str(), d.attrs.as_slice())),
            )
            .filter(|(_, a)| !a.is_empty())
            .collect();
        if with_attrs.is_empty() {
            return Ok(());
        }
        let (path, want) = with_attrs[self.rng.below(with_attrs.len() as u64) as usize];
        let what = format!("{}:{path}", file.vpath);
        let f = hdfstream::open_with(
            self.backend.clone(),
            &file.vpath,
            OpenOptions::metadata_only(),
        )
        .and_then(|n| n.into_file())
        .map_err(|e| format!("open {}: {e}", file.vpath))?;
        let obj = f
            .get(path)
            .map_err(|e| format!("attributes of {what}: {e}"))?;
        let got: Vec<(String, ArrayData)> = match &obj {
            Object::Group(g) => g.attrs(),
            Object::Dataset(d) => d.attrs(),
        }
        .iter()
        .map(|(k, v)| (k.to_owned(), v.data().clone()))
        .collect();
        check_attrs(&what, &got, want)
    }

    fn slice(&mut self) -> OpResult {
        let (fi, t) = self.pick_sliceable()?;
        let kind = t.kind.ok_or("not numeric")?;
        let n = t.shape[0];
        let max = *self.rng.pick(&[16u64, 1000, 20_000]);
        let first = run_in(&mut self.rng, n, max);
        let rest = rest_ranges(&mut self.rng, &t.shape);
        let file = self.opened(fi)?;
        let what = format!("{}:{} rows {first:?} rest {rest:?}", file.path(), t.path);
        let ds = file.dataset(&t.path).map_err(|e| format!("{what}: {e}"))?;
        let (runs, got) = match self.rng.below(3) {
            // A simple selection through the high-level API.
            0 => {
                let data = ds
                    .read_raw(&selection(first, &rest))
                    .map_err(|e| format!("slice {what}: {e}"))?;
                (vec![first], nd_bytes(&what, &data, kind)?.to_vec())
            }
            // Bounds counted from the end (numpy's negative indexes); an open end for the
            // last row.
            1 => {
                let (start, end) = (
                    first.0 as i64 - n as i64,
                    (first.0 + first.1) as i64 - n as i64,
                );
                let d: hdfstream::DimIndex = if end == 0 {
                    (start..).into()
                } else {
                    (start..end).into()
                };
                let r = |(s, c): (u64, u64)| s as i64..(s + c) as i64;
                let sel = rest
                    .iter()
                    .fold(Selection::new().dim(d), |sel, &x| sel.dim(r(x)));
                let data = ds
                    .read_raw(&sel)
                    .map_err(|e| format!("slice from the end {what}: {e}"))?;
                (vec![first], nd_bytes(&what, &data, kind)?.to_vec())
            }
            // Streamed straight into a caller's buffer.
            _ => {
                let rows: u64 = first.1;
                let per_row: u64 = rest.iter().map(|r| r.1).product();
                let mut buf = vec![0u8; (rows * per_row) as usize * kind.size()];
                self.conn
                    .request_slice_into(
                        file.path(),
                        &t.path,
                        &spec(&[first], &rest),
                        ds.dtype(),
                        &mut buf,
                    )
                    .map_err(|e| format!("slice into buffer {what}: {e}"))?;
                (vec![first], buf)
            }
        };
        same_bytes(
            &what,
            &got,
            &gather(&t.data, kind.size(), &t.shape, &runs, &rest),
        )
    }

    fn multi_slice(&mut self) -> OpResult {
        let (fi, t) = self.pick_sliceable()?;
        let kind = t.kind.ok_or("not numeric")?;
        let n = t.shape[0];
        let k = 2 + self.rng.below(40);
        let mut runs = Vec::new();
        let mut at = 0u64;
        while runs.len() < k as usize && at < n {
            let start = at + self.rng.below((n / k).max(1));
            if start >= n {
                break;
            }
            let count = 1 + self.rng.below((n - start).min(200));
            runs.push((start, count));
            at = start + count + 1;
        }
        let rest = rest_ranges(&mut self.rng, &t.shape);
        let file = self.opened(fi)?;
        let what = format!(
            "{}:{} {} runs rest {rest:?}",
            file.path(),
            t.path,
            runs.len()
        );
        let ds = file.dataset(&t.path).map_err(|e| format!("{what}: {e}"))?;
        let got = if self.rng.chance(0.5) {
            let sels: Vec<Selection> = runs.iter().map(|&r| selection(r, &rest)).collect();
            typed!(kind, T => {
                let a = ds
                    .request_slices::<T>(&sels)
                    .map_err(|e| format!("multi-slice {what}: {e}"))?;
                array_bytes(&a)?
            })
        } else {
            let data = self
                .conn
                .request_slice_typed(file.path(), &t.path, &spec(&runs, &rest), ds.dtype())
                .map_err(|e| format!("multi-slice {what}: {e}"))?;
            nd_bytes(&what, &data, kind)?.to_vec()
        };
        same_bytes(
            &what,
            &got,
            &gather(&t.data, kind.size(), &t.shape, &runs, &rest),
        )
    }

    fn fancy(&mut self) -> OpResult {
        let (fi, t) = self.pick_sliceable()?;
        let kind = t.kind.ok_or("not numeric")?;
        let n = t.shape[0];
        let rest = rest_ranges(&mut self.rng, &t.shape);
        let rest_sel = rest.iter().fold(Selection::new(), |sel, &(s, c)| {
            sel.dim(s as i64..(s + c) as i64)
        });
        let file = self.opened(fi)?;
        let ds = file
            .dataset(&t.path)
            .map_err(|e| format!("{}:{}: {e}", file.path(), t.path))?;
        let (rows, got, what) = if self.rng.chance(0.2) {
            // A sparse boolean mask over every row.
            let p = (20.0 / n as f64).min(0.5);
            let mask: Vec<bool> = (0..n).map(|_| self.rng.chance(p)).collect();
            let rows: Vec<u64> = (0..n).filter(|&i| mask[i as usize]).collect();
            let what = format!(
                "{}:{} mask of {} rows rest {rest:?}",
                file.path(),
                t.path,
                rows.len()
            );
            let got = typed!(kind, T => {
                let a = ds
                    .read_fancy::<T>(&mask, &rest_sel)
                    .map_err(|e| format!("fancy {what}: {e}"))?;
                array_bytes(&a)?
            });
            (rows, got, what)
        } else {
            // Row numbers in any order, with repeats and negative ones.
            let m = 1 + self.rng.below(200);
            let idx: Vec<i64> = (0..m)
                .map(|_| {
                    let r = self.rng.below(n) as i64;
                    if self.rng.chance(0.1) {
                        r - n as i64
                    } else {
                        r
                    }
                })
                .collect();
            let rows: Vec<u64> = idx
                .iter()
                .map(|&i| {
                    if i < 0 {
                        (i + n as i64) as u64
                    } else {
                        i as u64
                    }
                })
                .collect();
            let what = format!(
                "{}:{} {} indexes rest {rest:?}",
                file.path(),
                t.path,
                idx.len()
            );
            let got = typed!(kind, T => {
                let a = ds
                    .read_fancy::<T>(&idx, &rest_sel)
                    .map_err(|e| format!("fancy {what}: {e}"))?;
                array_bytes(&a)?
            });
            (rows, got, what)
        };
        let runs: Vec<(u64, u64)> = rows.iter().map(|&r| (r, 1)).collect();
        same_bytes(
            &what,
            &got,
            &gather(&t.data, kind.size(), &t.shape, &runs, &rest),
        )
    }

    fn download(&mut self) -> OpResult {
        let entries = &self.truth.entries;
        // Mostly the smallest file, sometimes any (snapshots are megabytes).
        let smallest = (0..entries.len())
            .min_by_key(|&i| entries[i].size)
            .unwrap_or(0);
        let i = if self.rng.chance(0.75) {
            smallest
        } else {
            self.rng.below(entries.len() as u64) as usize
        };
        let e = &entries[i];
        let mut w = CheckWriter {
            want: &e.bytes,
            at: 0,
            first_difference: None,
        };
        let n = self
            .conn
            .download(&e.name, &mut w)
            .map_err(|err| format!("download {}: {err}", e.name))?;
        match w.first_difference {
            None if n == e.size && w.at as u64 == e.size => Ok(()),
            d => Err(format!(
                "wrong value: download {}: {n} bytes (first difference at {d:?}), expected {}",
                e.name, e.size
            )),
        }
    }
}
