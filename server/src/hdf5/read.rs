//! Streaming reads: a dataset selection is read in bounded pieces (one hyperslab block per
//! libhdf5 call, the lock taken per piece) and encoded as it arrives.

use std::ffi::CStr;
use std::io;
use std::os::raw::{c_char, c_void};

use hdf5_metno_sys as hdf5_sys;
// `H5Dvlen_reclaim`: the 1.10 API (deprecated, still built by libhdf5 1.12 to 2.x).
#[allow(deprecated)]
use hdf5_sys::h5d::{H5Dread, H5Dvlen_reclaim};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5t::hvl_t;
use hdfstream_protocol::{DimSelection, SliceSpec};

use super::direct::{Access, Contiguous, probe, with_chunk_cache};
use super::ffi::{Id, locked, select_block, simple_space, space_shape};
use super::types::{Layout, MemType};
use hdfstream_protocol::Sink;

/// Target size of one read.
const PIECE: u64 = 4 << 20;
/// Runs separated by at most this many bytes of unselected rows are read together.
const GAP: u64 = 64 << 10;

/// What went wrong while streaming.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// libhdf5 failed to read.
    Read(String),
    /// The output failed.
    Output(io::Error),
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> Self {
        Self::Output(e)
    }
}

/// A byte buffer aligned for pointers and `hvl_t`, reusable between reads.
pub(crate) struct Buffer {
    words: Vec<u64>,
    len: usize,
}

impl Buffer {
    /// A zeroed buffer of `len` bytes.
    pub(crate) fn new(len: usize) -> Self {
        Self::reuse(Vec::new(), len)
    }

    /// A buffer of `len` bytes in `words`' storage (grown and zeroed only where needed; a
    /// read overwrites the bytes it is given anyway).
    fn reuse(mut words: Vec<u64>, len: usize) -> Self {
        let need = len.div_ceil(8);
        if words.len() < need {
            words.resize(need, 0);
        }
        Self { words, len }
    }

    /// Pointer for libhdf5 to write into.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut c_void {
        self.words.as_mut_ptr().cast()
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        let all: &[u8] = bytemuck_bytes(&self.words);
        &all[..self.len]
    }

    /// The bytes, writable.
    fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        // SAFETY: u64 has no padding, any byte pattern is a valid u64, and `len` bytes fit
        // in the words (see `reuse`).
        let all = unsafe {
            std::slice::from_raw_parts_mut(
                self.words.as_mut_ptr().cast::<u8>(),
                self.words.len() * 8,
            )
        };
        &mut all[..len]
    }
}

fn bytemuck_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding and any byte pattern is a valid u8.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) }
}

/// Frees the vlen memory libhdf5 allocated inside a buffer.
pub(crate) struct Reclaim<'a> {
    /// Memory type the buffer was read with.
    pub(crate) mem: &'a MemType,
    /// Memory dataspace describing the buffer.
    pub(crate) space: Id,
    /// The buffer.
    pub(crate) buf: Buffer,
}

impl Reclaim<'_> {
    /// Frees the vlen memory now (once) and hands the storage back for reuse.
    fn into_words(mut self) -> Vec<u64> {
        self.reclaim();
        std::mem::take(&mut self.buf.words)
    }

    #[allow(deprecated)]
    fn reclaim(&mut self) {
        if self.mem.layout != Layout::Fixed && !self.buf.words.is_empty() {
            let (t, s) = (self.mem.id.raw(), self.space.raw());
            let p = self.buf.as_mut_ptr();
            // SAFETY: the buffer was filled by a read with this type and space.
            locked(|| unsafe { H5Dvlen_reclaim(t, s, H5P_DEFAULT, p) });
            // Pointers are dangling now: never reclaim twice.
            self.buf.words.iter_mut().for_each(|w| *w = 0);
        }
    }
}

impl Drop for Reclaim<'_> {
    fn drop(&mut self) {
        self.reclaim();
    }
}

/// Encodes `n` elements laid out in `bytes` as read with `mem`: raw payload for fixed
/// types, one msgpack entry per element for vlen types.
pub(crate) fn emit_elements(sink: &mut Sink<'_>, mem: &MemType, bytes: &[u8]) -> io::Result<()> {
    match &mem.layout {
        Layout::Fixed => sink.payload(bytes),
        Layout::VlenString => {
            for chunk in bytes.chunks_exact(std::mem::size_of::<*const c_char>()) {
                let mut raw = [0u8; std::mem::size_of::<usize>()];
                raw.copy_from_slice(chunk);
                let p = usize::from_ne_bytes(raw) as *const c_char;
                if p.is_null() {
                    sink.str_bytes(b"");
                } else {
                    // SAFETY: libhdf5 stored a NUL-terminated string here, alive until reclaim.
                    sink.str_bytes(unsafe { CStr::from_ptr(p) }.to_bytes());
                }
                sink.maybe_flush()?;
            }
            Ok(())
        }
        Layout::Vlen { inner_size } => {
            let inner = match &mem.dtype {
                hdfstream_protocol::Dtype::Vlen(t) => t.as_ref(),
                other => other,
            };
            for chunk in bytes.chunks_exact(std::mem::size_of::<hvl_t>()) {
                let mut raw = [0u8; std::mem::size_of::<usize>()];
                raw.copy_from_slice(&chunk[..std::mem::size_of::<usize>()]);
                let len = usize::from_ne_bytes(raw);
                raw.copy_from_slice(&chunk[std::mem::size_of::<usize>()..]);
                let p = usize::from_ne_bytes(raw) as *const u8;
                let nbytes = len.saturating_mul(*inner_size);
                sink.ndarray_header(inner, &[len as u64], nbytes as u64);
                if nbytes > 0 && !p.is_null() {
                    // SAFETY: libhdf5 allocated `len` elements of `inner_size` bytes at `p`.
                    sink.payload(unsafe { std::slice::from_raw_parts(p, nbytes) })?;
                }
                if sink.payload_left() != 0 {
                    return Err(io::Error::other("variable-length element without data"));
                }
                sink.maybe_flush()?;
            }
            Ok(())
        }
    }
}

/// Number of elements of a shape, `None` on overflow.
pub(crate) fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
}

/// Shape of the array a selection produces.
pub(crate) fn selection_shape(sel: &SliceSpec) -> Option<Vec<u64>> {
    if sel.runs.is_empty() {
        return Some(Vec::new());
    }
    let rows = sel
        .runs
        .iter()
        .try_fold(0u64, |a, r| a.checked_add(r.count))?;
    Some(
        std::iter::once(rows)
            .chain(sel.rest.iter().map(|d| d.count))
            .collect(),
    )
}

/// The selection covering a whole dataset of the given shape.
pub(crate) fn whole(shape: &[u64]) -> SliceSpec {
    match shape.split_first() {
        None => SliceSpec {
            runs: Vec::new(),
            rest: Vec::new(),
        },
        Some((&first, rest)) => SliceSpec {
            runs: vec![DimSelection {
                start: 0,
                count: first,
            }],
            rest: rest
                .iter()
                .map(|&d| DimSelection { start: 0, count: d })
                .collect(),
        },
    }
}

/// Writes the array value (ndarray or vlen map) of `sel` within dataset `ds`, whose
/// selection must already have been validated against its shape. At most `decode_jobs`
/// chunks decode at once for it (0: as many as the decode pool has threads).
pub(crate) fn stream_selection(
    sink: &mut Sink<'_>,
    ds: &Id,
    file_space: &Id,
    mem: &MemType,
    sel: &SliceSpec,
    decode_jobs: usize,
) -> Result<(), StreamError> {
    let shape =
        selection_shape(sel).ok_or_else(|| StreamError::Read("selection too large".into()))?;
    let n = element_count(&shape).ok_or_else(|| StreamError::Read("selection too large".into()))?;
    match mem.layout {
        Layout::Fixed => {
            let nbytes = n
                .checked_mul(mem.size as u64)
                .ok_or_else(|| StreamError::Read("selection too large".into()))?;
            sink.ndarray_header(&mem.dtype, &shape, nbytes);
        }
        _ => {
            let n32 = u32::try_from(n).map_err(|_| {
                StreamError::Read("more than 2^32-1 variable-length elements".into())
            })?;
            sink.vlen_header(&shape, n32);
        }
    }
    if n > 0 {
        let shape = locked(|| space_shape(file_space.raw())).unwrap_or_default();
        let access = if sel.runs.is_empty() {
            Access::Plain
        } else {
            probe(ds, mem, shape.len())
        };
        let mut contiguous = None;
        let mut cache_for = None;
        match access {
            Access::Chunked(c) => {
                let c = c.with_decode_jobs(decode_jobs);
                if c.stream(sink, ds, file_space, mem, &shape, sel)? {
                    sink.flush()?;
                    return Ok(());
                }
                cache_for = Some(c.chunk().to_vec());
            }
            Access::Contiguous(c) => contiguous = Some(c),
            Access::Cached(chunk) => cache_for = Some(chunk),
            Access::Plain => {}
        }
        let cached = cache_for.and_then(|chunk| with_chunk_cache(ds, &chunk, mem.size, sel));
        let mut reader = Reader {
            ds: cached.as_ref().unwrap_or(ds),
            file_space,
            mem,
            scratch: Vec::new(),
            shape: &shape,
            contiguous: contiguous.as_ref(),
        };
        if sel.runs.is_empty() {
            reader.piece(sink, &[], &[], &[])?;
        } else {
            reader.rows(sink, sel)?;
        }
    }
    sink.flush()?;
    Ok(())
}

/// Reads pieces of one dataset with one memory type, reusing a scratch buffer.
struct Reader<'a> {
    ds: &'a Id,
    file_space: &'a Id,
    mem: &'a MemType,
    scratch: Vec<u64>,
    /// Dataset shape.
    shape: &'a [u64],
    /// Direct access to contiguous data (blocks that are one byte range are read with it).
    contiguous: Option<&'a Contiguous>,
}

/// Emits the element ranges `keep` (all when empty) of a piece's bytes.
fn emit_keep(
    sink: &mut Sink<'_>,
    mem: &MemType,
    all: &[u8],
    keep: &[(u64, u64)],
) -> Result<(), StreamError> {
    if keep.is_empty() {
        emit_elements(sink, mem, all)?;
        return Ok(());
    }
    let es = mem.size as u64;
    for &(off, len) in keep {
        let (a, b) = ((off * es) as usize, ((off + len) * es) as usize);
        let part = all
            .get(a..b)
            .ok_or_else(|| StreamError::Read("piece bounds".into()))?;
        emit_elements(sink, mem, part)?;
    }
    Ok(())
}

impl Reader<'_> {
    /// Reads one block (`start`/`count` in file coordinates) and emits the element ranges
    /// `keep` (element offsets within the block, in order).
    fn piece(
        &mut self,
        sink: &mut Sink<'_>,
        start: &[u64],
        count: &[u64],
        keep: &[(u64, u64)],
    ) -> Result<(), StreamError> {
        let (ds, file_space, mem) = (self.ds, self.file_space, self.mem);
        let n = element_count(count).unwrap_or(0);
        let bytes = usize::try_from(n.saturating_mul(mem.size as u64))
            .map_err(|_| StreamError::Read("piece too large".into()))?;
        let mut buf = Buffer::reuse(std::mem::take(&mut self.scratch), bytes);
        if let Some(direct) = self.contiguous.filter(|_| mem.layout == Layout::Fixed)
            && direct.read_block(self.shape, start, count, mem.size, buf.bytes_mut())?
        {
            emit_keep(sink, mem, buf.bytes(), keep)?;
            self.scratch = buf.words;
            return Ok(());
        }
        let space = locked(|| -> Result<Id, StreamError> {
            let space = if count.is_empty() {
                // A scalar dataspace: one element, all selected.
                simple_space(&[1])
            } else {
                simple_space(count)
            }
            .ok_or_else(|| StreamError::Read("unable to create a memory dataspace".into()))?;
            let fs: hid_t = if count.is_empty() {
                hdf5_sys::h5s::H5S_ALL
            } else {
                if !select_block(file_space.raw(), start, count) {
                    return Err(StreamError::Read("unable to select a hyperslab".into()));
                }
                file_space.raw()
            };
            let ms = if count.is_empty() {
                hdf5_sys::h5s::H5S_ALL
            } else {
                space.raw()
            };
            // SAFETY: `buf` holds `n` elements of the memory type.
            let r = unsafe {
                H5Dread(
                    ds.raw(),
                    mem.id.raw(),
                    ms,
                    fs,
                    H5P_DEFAULT,
                    buf.as_mut_ptr(),
                )
            };
            if r < 0 {
                return Err(StreamError::Read("Unable to read data stream".into()));
            }
            Ok(space)
        })?;
        let guard = Reclaim { mem, space, buf };
        emit_keep(sink, mem, guard.buf.bytes(), keep)?;
        self.scratch = guard.into_words();
        Ok(())
    }

    /// Streams a selection of rank ≥ 1 row range by row range.
    fn rows(&mut self, sink: &mut Sink<'_>, sel: &SliceSpec) -> Result<(), StreamError> {
        let mem = self.mem;
        let rest_start: Vec<u64> = sel.rest.iter().map(|d| d.start).collect();
        let rest_count: Vec<u64> = sel.rest.iter().map(|d| d.count).collect();
        let row_elems = element_count(&rest_count).unwrap_or(0);
        let row_bytes = row_elems.saturating_mul(mem.size as u64);
        if row_elems == 0 {
            return Ok(());
        }
        if row_bytes > PIECE {
            for run in &sel.runs {
                for row in run.start..run.start + run.count {
                    self.big_row(sink, row, &rest_start, &rest_count)?;
                }
            }
            return Ok(());
        }
        let max_rows = (PIECE / row_bytes).max(1);
        let gap_rows = GAP / row_bytes;
        let mut span: Option<(u64, u64)> = None;
        let mut segs: Vec<(u64, u64)> = Vec::new();
        let mut flush = |span: (u64, u64), segs: &mut Vec<(u64, u64)>| -> Result<(), StreamError> {
            let mut start = vec![span.0];
            start.extend_from_slice(&rest_start);
            let mut count = vec![span.1 - span.0];
            count.extend_from_slice(&rest_count);
            let keep: Vec<(u64, u64)> = if segs.len() == 1 && segs[0] == span {
                Vec::new()
            } else {
                segs.iter()
                    .map(|&(s, e)| ((s - span.0) * row_elems, (e - s) * row_elems))
                    .collect()
            };
            segs.clear();
            self.piece(sink, &start, &count, &keep)
        };
        for run in &sel.runs {
            let end = run.start + run.count;
            let mut s = run.start;
            while s < end {
                let e = end.min(s + max_rows);
                match span {
                    Some((a, b)) if e - a <= max_rows && s >= b && s - b <= gap_rows => {
                        span = Some((a, e));
                    }
                    Some(sp) => {
                        flush(sp, &mut segs)?;
                        span = Some((s, e));
                    }
                    None => span = Some((s, e)),
                }
                segs.push((s, e));
                s = e;
            }
        }
        if let Some(sp) = span {
            flush(sp, &mut segs)?;
        }
        Ok(())
    }

    /// Streams one row whose selected part is larger than [`PIECE`], splitting it along the
    /// outermost dimension where a sub-block fits.
    fn big_row(
        &mut self,
        sink: &mut Sink<'_>,
        row: u64,
        rest_start: &[u64],
        rest_count: &[u64],
    ) -> Result<(), StreamError> {
        if rest_count.is_empty() {
            return self.piece(sink, &[row], &[1], &[]);
        }
        let es = self.mem.size as u64;
        // Split dimension d (index into rest): the block over rest[d+1..] fits in a piece.
        let mut d = rest_count.len().saturating_sub(1);
        while d > 0 {
            let inner = element_count(&rest_count[d..])
                .unwrap_or(u64::MAX)
                .saturating_mul(es);
            if inner > PIECE {
                break;
            }
            d -= 1;
        }
        let inner_bytes = element_count(&rest_count[d + 1..])
            .unwrap_or(u64::MAX)
            .saturating_mul(es);
        let step = (PIECE / inner_bytes.max(1)).max(1);
        // Odometer over rest dims 0..d (single indices), then ranges of `step` along d.
        let mut idx: Vec<u64> = vec![0; d];
        loop {
            let mut k = 0;
            while k < rest_count[d] {
                let m = step.min(rest_count[d] - k);
                let mut start = vec![row];
                let mut count = vec![1];
                for j in 0..d {
                    start.push(rest_start[j] + idx[j]);
                    count.push(1);
                }
                start.push(rest_start[d] + k);
                count.push(m);
                start.extend_from_slice(&rest_start[d + 1..]);
                count.extend_from_slice(&rest_count[d + 1..]);
                self.piece(sink, &start, &count, &[])?;
                k += m;
            }
            // Advance the odometer.
            let mut j = d;
            loop {
                if j == 0 {
                    return Ok(());
                }
                j -= 1;
                idx[j] += 1;
                if idx[j] < rest_count[j] {
                    break;
                }
                idx[j] = 0;
            }
        }
    }
}
