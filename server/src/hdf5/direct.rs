//! Reads that bypass libhdf5's data path: raw chunk bytes and contiguous data are read
//! with `pread` on the file and decoded on the decode pool, without the libhdf5 lock.
//!
//! libhdf5 is asked (under the lock) only for metadata: the layout, the filter pipeline and,
//! per chunk, its address, size and filter mask. A chunked selection is planned by chunk:
//! runs are cut at dimension-0 chunk boundaries into steps, each step needs one "unit" (the
//! chunks of one dimension-0 chunk index that the selection touches in the other
//! dimensions), every unit is decoded once and kept while later steps need it (within a
//! bounded window), and steps are emitted in request order.

use std::collections::HashMap;
use std::fs::File;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::sync::Arc;

use hdf5_metno_sys as hdf5_sys;
use hdf5_sys::h5::{HADDR_UNDEF, haddr_t, hsize_t};
use hdf5_sys::h5d::{
    H5D_layout_t, H5Dget_chunk_info_by_coord, H5Dget_create_plist, H5Dget_offset, H5Dget_type,
    H5Dopen2, H5Dread,
};
use hdf5_sys::h5f::{H5Fget_access_plist, H5Fget_create_plist, H5Fget_vfd_handle};
use hdf5_sys::h5i::{H5Iget_file_id, H5Iget_name, hid_t};
use hdf5_sys::h5p::{
    H5P_CLS_DATASET_ACCESS, H5P_DEFAULT, H5Pcreate, H5Pget_chunk, H5Pget_driver,
    H5Pget_external_count, H5Pget_filter2, H5Pget_layout, H5Pget_nfilters, H5Pget_userblock,
    H5Pset_chunk_cache,
};
use hdf5_sys::h5t::H5Tequal;
use hdf5_sys::h5z::{H5Z_FILTER_DEFLATE, H5Z_FILTER_FLETCHER32, H5Z_FILTER_SHUFFLE};
use hdfstream_protocol::SliceSpec;

use super::ffi::{Id, locked, select_block, simple_space};
use super::filters::{self, Filter};
use super::pool::{self, Pending};
use super::read::{StreamError, element_count};
use super::types::{Layout, MemType};
use hdfstream_protocol::Sink;

/// Decoded bytes one request may keep in its window of units.
const WINDOW_BYTES: u64 = 128 << 20;
/// Largest unit (chunks of one dimension-0 chunk index touched by a selection) decoded
/// here; larger ones go through libhdf5 with a chunk cache.
const MAX_UNIT_BYTES: u64 = 64 << 20;
/// Most steps a plan may have (each a few words); beyond it libhdf5 reads the selection.
const MAX_STEPS: u64 = 1 << 22;
/// How far (in steps) the prefetcher may look ahead of the step being written.
const MAX_AHEAD: usize = 1 << 14;
/// Bounds of libhdf5's chunk cache when it decodes (filters we do not implement).
const MIN_CACHE: u64 = 1 << 20;
const MAX_CACHE: u64 = 256 << 20;

thread_local! {
    static DECODED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Chunks decoded by our own decoder for requests answered on the calling thread.
pub(crate) fn decoded_on_this_thread() -> u64 {
    DECODED.with(std::cell::Cell::get)
}

/// How a dataset's data can be read.
pub(crate) enum Access {
    /// Chunked with filters we decode: pread + decode pool.
    Chunked(Chunked),
    /// Contiguous in the file with the memory type's layout: pread.
    Contiguous(Contiguous),
    /// Chunked, but libhdf5 must decode (other filters, a type conversion, no direct file
    /// access): chunk dimensions, to size its chunk cache.
    Cached(Vec<u64>),
    /// Everything else: libhdf5 reads as is.
    Plain,
}

/// A chunked dataset we decode ourselves.
pub(crate) struct Chunked {
    file: Arc<File>,
    /// Added to the chunk addresses libhdf5 reports (the user block, for libhdf5 < 1.14.4).
    base: u64,
    chunk: Vec<u64>,
    pipeline: Arc<[Filter]>,
    /// Chunks one request may have decoding at once (0: as many as the pool has threads).
    decode_jobs: usize,
}

/// A contiguous dataset read straight from the file.
pub(crate) struct Contiguous {
    file: Arc<File>,
    offset: u64,
}

/// Owned identifier from a libhdf5 call, `None` on failure.
fn id(raw: hid_t) -> Option<Id> {
    Id::new(raw)
}

/// How to read dataset `ds` with memory type `mem`. Takes the libhdf5 lock.
pub(crate) fn probe(ds: &Id, mem: &MemType, rank: usize) -> Access {
    locked(|| probe_locked(ds, mem, rank))
}

fn probe_locked(ds: &Id, mem: &MemType, rank: usize) -> Access {
    // SAFETY (whole function): valid identifiers; out pointers point to live locals.
    let Some(dcpl) = id(unsafe { H5Dget_create_plist(ds.raw()) }) else {
        return Access::Plain;
    };
    let layout = unsafe { H5Pget_layout(dcpl.raw()) };
    let chunk = if layout == H5D_layout_t::H5D_CHUNKED && rank > 0 {
        let mut dims = vec![0u64; rank];
        let r = unsafe { H5Pget_chunk(dcpl.raw(), rank as c_int, dims.as_mut_ptr()) };
        if r != rank as c_int || dims.contains(&0) {
            return Access::Plain;
        }
        Some(dims)
    } else {
        None
    };
    let fallback = || match &chunk {
        Some(c) => Access::Cached(c.clone()),
        None => Access::Plain,
    };
    if mem.layout != Layout::Fixed {
        return fallback();
    }
    let same_type = id(unsafe { H5Dget_type(ds.raw()) })
        .is_some_and(|t| unsafe { H5Tequal(t.raw(), mem.id.raw()) } > 0);
    if !same_type {
        return fallback();
    }
    let Some((file, userblock)) = file_handle(ds) else {
        return fallback();
    };
    let base = if chunk_addresses_are_absolute() {
        0
    } else {
        userblock
    };
    match chunk {
        Some(chunk) => match pipeline(&dcpl, mem.size) {
            Some(pipeline) => Access::Chunked(Chunked {
                file,
                base,
                chunk,
                pipeline: pipeline.into(),
                decode_jobs: 0,
            }),
            None => Access::Cached(chunk),
        },
        None if layout == H5D_layout_t::H5D_CONTIGUOUS => {
            if unsafe { H5Pget_external_count(dcpl.raw()) } != 0 {
                return Access::Plain;
            }
            let addr: haddr_t = unsafe { H5Dget_offset(ds.raw()) };
            if addr == HADDR_UNDEF {
                return Access::Plain;
            }
            Access::Contiguous(Contiguous { file, offset: addr })
        }
        None => Access::Plain,
    }
}

/// Whether `H5Dget_chunk_info*` report file offsets that include the user block: libhdf5
/// 1.14.4 and later do (HDF5 pull request 4236); older ones report offsets past it.
fn chunk_addresses_are_absolute() -> bool {
    hdf5_metno::library_version() >= (1, 14, 4)
}

/// The filters of a dcpl if we implement all of them.
fn pipeline(dcpl: &Id, elem_size: usize) -> Option<Vec<Filter>> {
    // SAFETY: valid dcpl; buffers sized as passed.
    let n = unsafe { H5Pget_nfilters(dcpl.raw()) };
    let n = u32::try_from(n).ok()?;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut flags: c_uint = 0;
        let mut cd = [0 as c_uint; 8];
        let mut nelmts: usize = cd.len();
        let mut name = [0 as c_char; 64];
        let mut config: c_uint = 0;
        let f = unsafe {
            H5Pget_filter2(
                dcpl.raw(),
                i,
                &mut flags,
                &mut nelmts,
                cd.as_mut_ptr(),
                name.len(),
                name.as_mut_ptr(),
                &mut config,
            )
        };
        out.push(match f {
            H5Z_FILTER_DEFLATE => Filter::Deflate,
            H5Z_FILTER_SHUFFLE => Filter::Shuffle {
                size: if nelmts >= 1 && cd[0] > 0 {
                    cd[0] as usize
                } else {
                    elem_size
                },
            },
            H5Z_FILTER_FLETCHER32 => Filter::Fletcher32,
            _ => return None,
        });
    }
    Some(out)
}

/// A private handle on the file holding `ds` (opened by the default sec2 driver), and the
/// size of its user block.
fn file_handle(ds: &Id) -> Option<(Arc<File>, u64)> {
    // SAFETY: valid identifiers; out pointers point to live locals.
    let fid = id(unsafe { H5Iget_file_id(ds.raw()) })?;
    let fapl = id(unsafe { H5Fget_access_plist(fid.raw()) })?;
    // The sec2 (POSIX) driver's identifier, found the same way in libhdf5 1.10 to 2.x.
    if unsafe { H5Pget_driver(fapl.raw()) } != *hdf5_metno::globals::H5FD_SEC2 {
        return None;
    }
    let fcpl = id(unsafe { H5Fget_create_plist(fid.raw()) })?;
    let mut userblock: hsize_t = 0;
    if unsafe { H5Pget_userblock(fcpl.raw(), &mut userblock) } < 0 {
        return None;
    }
    let mut handle: *mut c_void = std::ptr::null_mut();
    if unsafe { H5Fget_vfd_handle(fid.raw(), fapl.raw(), &mut handle) } < 0 || handle.is_null() {
        return None;
    }
    // SAFETY: the sec2 driver's handle is a pointer to its file descriptor.
    let fd = unsafe { *handle.cast::<c_int>() };
    dup_fd(fd).map(|f| (Arc::new(f), userblock))
}

#[cfg(unix)]
fn dup_fd(fd: c_int) -> Option<File> {
    use std::os::fd::BorrowedFd;
    if fd < 0 {
        return None;
    }
    // SAFETY: libhdf5 keeps `fd` open while we hold the lock; we only duplicate it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    borrowed.try_clone_to_owned().ok().map(File::from)
}

#[cfg(not(unix))]
fn dup_fd(_fd: c_int) -> Option<File> {
    None
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(not(unix))]
fn read_at(_file: &File, _buf: &mut [u8], _offset: u64) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "positional reads are not supported here",
    ))
}

/// Reopens `ds` with a chunk cache large enough for the chunks of one dimension-0 chunk
/// index that `sel` touches (twice), so that libhdf5 decodes each chunk once when the
/// selection is read in order. `None` when that fails (the caller keeps `ds`).
pub(crate) fn with_chunk_cache(
    ds: &Id,
    chunk: &[u64],
    elem_size: usize,
    sel: &SliceSpec,
) -> Option<Id> {
    let chunk_bytes = element_count(chunk)?.checked_mul(elem_size as u64)?;
    let across: u64 = sel
        .rest
        .iter()
        .zip(chunk.iter().skip(1))
        .map(|(d, &c)| {
            if d.count == 0 {
                1
            } else {
                (d.start + d.count - 1) / c - d.start / c + 1
            }
        })
        .try_fold(1u64, |a, n| a.checked_mul(n))?;
    let nbytes = chunk_bytes
        .saturating_mul(across)
        .saturating_mul(2)
        .clamp(MIN_CACHE, MAX_CACHE);
    let nslots = (nbytes / chunk_bytes.max(1))
        .saturating_mul(64)
        .clamp(521, 1 << 20);
    locked(|| {
        // SAFETY: valid identifiers; the name buffer is sized by the first call.
        let len = unsafe { H5Iget_name(ds.raw(), std::ptr::null_mut(), 0) };
        let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
        let mut name = vec![0 as c_char; len + 1];
        if unsafe { H5Iget_name(ds.raw(), name.as_mut_ptr(), name.len()) } < 0 {
            return None;
        }
        let fid = id(unsafe { H5Iget_file_id(ds.raw()) })?;
        let dapl = id(unsafe { H5Pcreate(*H5P_CLS_DATASET_ACCESS) })?;
        if unsafe { H5Pset_chunk_cache(dapl.raw(), nslots as usize, nbytes as usize, 0.75) } < 0 {
            return None;
        }
        id(unsafe { H5Dopen2(fid.raw(), name.as_ptr(), dapl.raw()) })
    })
}

impl Contiguous {
    /// Reads the block `start`/`count` of a dataset of `shape` into `buf` when it is one
    /// contiguous byte range of the file; `Ok(false)` when it is not.
    pub(crate) fn read_block(
        &self,
        shape: &[u64],
        start: &[u64],
        count: &[u64],
        elem_size: usize,
        buf: &mut [u8],
    ) -> Result<bool, StreamError> {
        if shape.len() != start.len() || shape.len() != count.len() {
            return Ok(false);
        }
        let lead = count.iter().take_while(|&&c| c == 1).count();
        let full_after = (lead + 1..shape.len()).all(|k| start[k] == 0 && count[k] == shape[k]);
        if !full_after {
            return Ok(false);
        }
        let mut linear = 0u64;
        for k in 0..shape.len() {
            linear = linear * shape[k] + start[k];
        }
        let at = linear
            .checked_mul(elem_size as u64)
            .and_then(|b| b.checked_add(self.offset))
            .ok_or_else(|| StreamError::Read("dataset offset out of range".into()))?;
        read_at(&self.file, buf, at)
            .map_err(|e| StreamError::Read(format!("unable to read the dataset's data: {e}")))?;
        Ok(true)
    }
}

/// One step of a plan: rows `a..b` (dimension 0), all within dimension-0 chunk `ci`.
#[derive(Debug, Clone, Copy)]
struct Step {
    ci: u64,
    a: u64,
    b: u64,
}

/// A decoded (or decoding) chunk of a unit.
enum Slot {
    Pending(Pending<Vec<u8>>),
    Ready(Vec<u8>),
}

/// The chunks of one dimension-0 chunk index, in the C order of the other chunk indices.
struct Unit {
    slots: Vec<Slot>,
    /// Last planned step that uses this unit.
    last: usize,
}

/// Geometry of a chunked selection.
struct Geometry {
    shape: Vec<u64>,
    chunk: Vec<u64>,
    es: usize,
    chunk_bytes: usize,
    /// Per dimension k ≥ 1: selected start and count.
    rest: Vec<(u64, u64)>,
    /// Per dimension k ≥ 1: first and last chunk index touched.
    span: Vec<(u64, u64)>,
    /// Chunks per unit.
    per_unit: usize,
    /// Rows of a chunk are whole selected rows (one chunk across, fully selected).
    whole_rows: bool,
}

impl Chunked {
    /// Lets a request have at most `jobs` chunks decoding at once (0: the pool's threads).
    pub(crate) fn with_decode_jobs(mut self, jobs: usize) -> Self {
        self.decode_jobs = jobs;
        self
    }

    /// Chunk dimensions.
    pub(crate) fn chunk(&self) -> &[u64] {
        &self.chunk
    }

    /// Streams the payload of `sel` (already validated against `shape`). Returns
    /// `Ok(false)` without writing anything when the plan would be too large for this path.
    pub(crate) fn stream(
        &self,
        sink: &mut Sink<'_>,
        ds: &Id,
        file_space: &Id,
        mem: &MemType,
        shape: &[u64],
        sel: &SliceSpec,
    ) -> Result<bool, StreamError> {
        let Some(geo) = self.geometry(shape, mem.size, sel) else {
            return Ok(false);
        };
        let c0 = geo.chunk[0];
        let nsteps: u64 = sel
            .runs
            .iter()
            .filter(|r| r.count > 0)
            .map(|r| (r.start + r.count - 1) / c0 - r.start / c0 + 1)
            .fold(0u64, u64::saturating_add);
        if nsteps > MAX_STEPS {
            return Ok(false);
        }
        let mut steps = Vec::with_capacity(nsteps as usize);
        for run in &sel.runs {
            let (mut a, end) = (run.start, run.start + run.count);
            while a < end {
                let ci = a / c0;
                let b = end.min((ci + 1).saturating_mul(c0));
                steps.push(Step { ci, a, b });
                a = b;
            }
        }
        let mut next_use = vec![usize::MAX; steps.len()];
        let mut seen: HashMap<u64, usize> = HashMap::new();
        for (i, s) in steps.iter().enumerate().rev() {
            if let Some(n) = seen.insert(s.ci, i) {
                next_use[i] = n;
            }
        }
        drop(seen);
        let unit_bytes = (geo.chunk_bytes as u64).saturating_mul(geo.per_unit as u64);
        let window = ((WINDOW_BYTES / unit_bytes.max(1)) as usize)
            .min(
                1 + match self.decode_jobs {
                    0 => pool::threads() + 1,
                    n => n,
                },
            )
            .max(2);
        let mut pipe = Pipeline {
            me: self,
            ds,
            file_space,
            mem,
            geo: &geo,
            steps: &steps,
            next_use: &next_use,
            units: HashMap::new(),
            window,
            planned: 0,
            scratch: Vec::new(),
        };
        for e in 0..steps.len() {
            pipe.prefetch(e)?;
            pipe.emit(sink, e)?;
        }
        Ok(true)
    }

    fn geometry(&self, shape: &[u64], es: usize, sel: &SliceSpec) -> Option<Geometry> {
        let r = shape.len();
        if r == 0 || self.chunk.len() != r || sel.rest.len() + 1 != r {
            return None;
        }
        let chunk_bytes = element_count(&self.chunk)?.checked_mul(es as u64)?;
        let rest: Vec<(u64, u64)> = sel.rest.iter().map(|d| (d.start, d.count)).collect();
        if rest.iter().any(|&(_, n)| n == 0) {
            return None;
        }
        let span: Vec<(u64, u64)> = rest
            .iter()
            .zip(&self.chunk[1..])
            .map(|(&(s, n), &c)| (s / c, (s + n - 1) / c))
            .collect();
        let per_unit = span
            .iter()
            .try_fold(1u64, |a, &(lo, hi)| a.checked_mul(hi - lo + 1))?;
        if chunk_bytes.checked_mul(per_unit)? > MAX_UNIT_BYTES {
            return None;
        }
        let whole_rows = per_unit == 1
            && rest
                .iter()
                .zip(&self.chunk[1..])
                .all(|(&(s, n), &c)| s % c == 0 && n == c);
        Some(Geometry {
            shape: shape.to_vec(),
            chunk: self.chunk.clone(),
            es,
            chunk_bytes: usize::try_from(chunk_bytes).ok()?,
            rest,
            span,
            per_unit: usize::try_from(per_unit).ok()?,
            whole_rows,
        })
    }
}

/// State of one chunked read.
struct Pipeline<'a> {
    me: &'a Chunked,
    ds: &'a Id,
    file_space: &'a Id,
    mem: &'a MemType,
    geo: &'a Geometry,
    steps: &'a [Step],
    next_use: &'a [usize],
    units: HashMap<u64, Unit>,
    window: usize,
    /// Steps `..planned` have their unit resident or in flight.
    planned: usize,
    scratch: Vec<u8>,
}

impl Pipeline<'_> {
    /// Plans steps from `planned` on while the window allows, always including step `e`.
    fn prefetch(&mut self, e: usize) -> Result<(), StreamError> {
        while self.planned < self.steps.len() && self.planned < e + MAX_AHEAD {
            let p = self.planned;
            let ci = self.steps[p].ci;
            if let Some(u) = self.units.get_mut(&ci) {
                u.last = p;
                self.planned += 1;
                continue;
            }
            if self.units.len() >= self.window {
                // Evict the unit not needed before `p` whose next use is farthest away.
                let victim = self
                    .units
                    .iter()
                    .filter(|(_, u)| u.last < e)
                    .max_by_key(|(_, u)| self.next_use[u.last])
                    .map(|(&k, _)| k);
                match victim {
                    Some(k) => {
                        self.units.remove(&k);
                    }
                    None if p > e => return Ok(()),
                    None => {
                        return Err(StreamError::Read("chunk window exhausted".into()));
                    }
                }
            }
            let slots = self.start_unit(ci)?;
            self.units.insert(ci, Unit { slots, last: p });
            self.planned += 1;
        }
        Ok(())
    }

    /// Chunk coordinates (element offsets) of the chunks of unit `ci`, in slot order.
    fn unit_coords(&self, ci: u64) -> Vec<Vec<u64>> {
        let geo = self.geo;
        let mut out = Vec::with_capacity(geo.per_unit);
        let mut idx: Vec<u64> = geo.span.iter().map(|&(lo, _)| lo).collect();
        loop {
            let mut coord = Vec::with_capacity(geo.chunk.len());
            coord.push(ci * geo.chunk[0]);
            coord.extend(idx.iter().zip(&geo.chunk[1..]).map(|(&j, &c)| j * c));
            out.push(coord);
            // Odometer over the other dimensions' chunk indices.
            let mut k = idx.len();
            loop {
                if k == 0 {
                    return out;
                }
                k -= 1;
                idx[k] += 1;
                if idx[k] <= geo.span[k].1 {
                    break;
                }
                idx[k] = geo.span[k].0;
            }
        }
    }

    /// Looks up (under the lock) and submits the decoding of the chunks of unit `ci`.
    fn start_unit(&mut self, ci: u64) -> Result<Vec<Slot>, StreamError> {
        let coords = self.unit_coords(ci);
        let ds = self.ds;
        let infos: Vec<Option<(u32, haddr_t, u64)>> = locked(|| {
            coords
                .iter()
                .map(|c| {
                    let (mut mask, mut addr, mut size): (c_uint, haddr_t, hsize_t) = (0, 0, 0);
                    // SAFETY: `c` has the dataset's rank; out pointers are live locals.
                    let r = unsafe {
                        H5Dget_chunk_info_by_coord(
                            ds.raw(),
                            c.as_ptr(),
                            &mut mask,
                            &mut addr,
                            &mut size,
                        )
                    };
                    (r >= 0 && addr != HADDR_UNDEF && size > 0).then_some((mask, addr, size))
                })
                .collect()
        });
        let expect = self.geo.chunk_bytes;
        let mut slots = Vec::with_capacity(coords.len());
        for (coord, info) in coords.iter().zip(infos) {
            let Some((mask, addr, size)) = info else {
                // Not allocated (fill value) or not indexable: libhdf5 reads it.
                slots.push(Slot::Ready(self.read_via_hdf5(coord)?));
                continue;
            };
            let limit = (expect as u64)
                .saturating_add(expect as u64 / 8)
                .saturating_add(1 << 16);
            if size > limit {
                return Err(StreamError::Read(format!(
                    "chunk at {coord:?} is stored in {size} bytes, more than its {expect} bytes allow"
                )));
            }
            let at = addr
                .checked_add(self.me.base)
                .ok_or_else(|| StreamError::Read("chunk address out of range".into()))?;
            let file = self.me.file.clone();
            let pipeline = self.me.pipeline.clone();
            let coord = coord.clone();
            slots.push(Slot::Pending(pool::submit(move || {
                let mut raw = vec![0u8; size as usize];
                read_at(&file, &mut raw, at)
                    .map_err(|e| format!("unable to read the chunk at {coord:?}: {e}"))?;
                filters::decode(&pipeline, mask, raw, expect)
                    .map_err(|e| format!("{e} in the chunk at {coord:?}"))
            })));
        }
        Ok(slots)
    }

    /// Reads the part of the chunk at `coord` inside the dataset with libhdf5, laid out as a
    /// full chunk (used for chunks that were never written).
    fn read_via_hdf5(&self, coord: &[u64]) -> Result<Vec<u8>, StreamError> {
        let geo = self.geo;
        let count: Vec<u64> = coord
            .iter()
            .zip(&geo.chunk)
            .zip(&geo.shape)
            .map(|((&s, &c), &d)| c.min(d.saturating_sub(s)))
            .collect();
        let zero = vec![0u64; coord.len()];
        let mut buf = vec![0u8; geo.chunk_bytes];
        let (ds, fs, mem) = (self.ds, self.file_space, self.mem);
        locked(|| {
            let ms = simple_space(&geo.chunk)
                .ok_or_else(|| StreamError::Read("unable to create a memory dataspace".into()))?;
            if !select_block(ms.raw(), &zero, &count) || !select_block(fs.raw(), coord, &count) {
                return Err(StreamError::Read("unable to select a hyperslab".into()));
            }
            // SAFETY: `buf` holds one full chunk of the (fixed-size) memory type.
            let r = unsafe {
                H5Dread(
                    ds.raw(),
                    mem.id.raw(),
                    ms.raw(),
                    fs.raw(),
                    H5P_DEFAULT,
                    buf.as_mut_ptr().cast(),
                )
            };
            if r < 0 {
                return Err(StreamError::Read("Unable to read data stream".into()));
            }
            Ok(())
        })?;
        Ok(buf)
    }

    /// Writes step `e` from its (now decoded) unit.
    fn emit(&mut self, sink: &mut Sink<'_>, e: usize) -> Result<(), StreamError> {
        let step = self.steps[e];
        let geo = self.geo;
        let unit = self
            .units
            .get_mut(&step.ci)
            .ok_or_else(|| StreamError::Read("chunk plan out of order".into()))?;
        for slot in &mut unit.slots {
            if let Slot::Pending(_) = slot {
                let Slot::Pending(p) = std::mem::replace(slot, Slot::Ready(Vec::new())) else {
                    continue;
                };
                *slot = Slot::Ready(p.wait().map_err(StreamError::Read)?);
                DECODED.with(|d| d.set(d.get() + 1));
            }
        }
        let chunks: Vec<&[u8]> = unit
            .slots
            .iter()
            .map(|s| match s {
                Slot::Ready(b) => b.as_slice(),
                Slot::Pending(_) => &[],
            })
            .collect();
        let c0 = geo.chunk[0];
        let (la, lb) = (step.a - step.ci * c0, step.b - step.ci * c0);
        let bounds = || StreamError::Read("chunk bounds".into());
        if geo.whole_rows {
            let row = geo.chunk_bytes / c0 as usize;
            let part = chunks[0]
                .get(la as usize * row..lb as usize * row)
                .ok_or_else(bounds)?;
            sink.payload(part)?;
        } else {
            self.scratch.clear();
            gather(geo, &chunks, la, lb, &mut self.scratch).ok_or_else(bounds)?;
            sink.payload(&self.scratch)?;
        }
        let done = self.next_use[e] == usize::MAX && unit.last == e;
        if done {
            self.units.remove(&step.ci);
        }
        Ok(())
    }
}

/// Appends the selected elements of chunk-local rows `la..lb` of one unit to `out`, in C
/// order: per row, an odometer over the middle dimensions and segments of the last one.
fn gather(geo: &Geometry, chunks: &[&[u8]], la: u64, lb: u64, out: &mut Vec<u8>) -> Option<()> {
    let r = geo.chunk.len();
    let es = geo.es as u64;
    // Element strides inside a chunk.
    let mut cstride = vec![1u64; r];
    for k in (0..r.saturating_sub(1)).rev() {
        cstride[k] = cstride[k + 1] * geo.chunk[k + 1];
    }
    // Slot strides over the other dimensions' chunk indices.
    let m = geo.span.len();
    let mut sstride = vec![1usize; m];
    for k in (0..m.saturating_sub(1)).rev() {
        sstride[k] = sstride[k + 1] * (geo.span[k + 1].1 - geo.span[k + 1].0 + 1) as usize;
    }
    if r == 1 {
        let part = chunks
            .first()?
            .get((la * es) as usize..(lb * es) as usize)?;
        out.extend_from_slice(part);
        return Some(());
    }
    let last = m - 1;
    let (ls, ln) = geo.rest[last];
    let lc = geo.chunk[r - 1];
    // Segments of the last dimension: (slot offset, local start, length).
    let mut segs = Vec::new();
    let mut x = ls;
    while x < ls + ln {
        let j = x / lc;
        let end = (ls + ln).min((j + 1) * lc);
        segs.push(((j - geo.span[last].0) as usize, x - j * lc, end - x));
        x = end;
    }
    let mut idx: Vec<u64> = vec![0; last];
    'rows: for row in la..lb {
        idx.fill(0);
        loop {
            let mut slot = 0usize;
            let mut off = row * cstride[0];
            for (k, &i) in idx.iter().enumerate() {
                let g = geo.rest[k].0 + i;
                let c = geo.chunk[k + 1];
                slot += (g / c - geo.span[k].0) as usize * sstride[k];
                off += (g % c) * cstride[k + 1];
            }
            for &(so, local, len) in &segs {
                let chunk = chunks.get(slot + so * sstride[last])?;
                let a = ((off + local) * es) as usize;
                out.extend_from_slice(chunk.get(a..a + (len * es) as usize)?);
            }
            // Advance the odometer over the middle dimensions; the row is done when it wraps.
            let mut k = last;
            loop {
                if k == 0 {
                    continue 'rows;
                }
                k -= 1;
                idx[k] += 1;
                if idx[k] < geo.rest[k].1 {
                    break;
                }
                idx[k] = 0;
            }
        }
    }
    Some(())
}
