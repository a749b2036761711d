//! The HDF5 side of the server: opens files (cached), walks objects and streams
//! msgpack responses straight from HDF5 reads.
//!
//! Contract with the HTTP layer (`crate::http`):
//! `Hdf5Files::write_response(file, request, out)` writes exactly one msgpack value for an
//! object or slice request into `out` in bounded pieces and returns `Err(RequestError)`
//! (status + message, PROTOCOL.md §7.1) for anything the reference answers with an error.
//! It is blocking and is called from `spawn_blocking`; it takes the libhdf5 lock per piece
//! (or per chunk lookup), never while decoding.
//!
//! How an answer is produced:
//! - object maps are planned first under the lock (links in native iteration order,
//!   attributes read and encoded, every type mapped), so a missing object or an unsupported
//!   type is an error before any byte; then the plan is written, inline dataset contents
//!   streamed like slices;
//! - a selection of a chunked dataset whose filters we implement (deflate, shuffle,
//!   Fletcher-32) and whose file type is the memory type is planned by chunk (`direct`):
//!   under the lock only the chunk addresses are looked up; the stored bytes are read with
//!   `pread` and decoded on a shared pool of decode threads, each touched chunk once per
//!   request, at most a small window of decoded chunks alive, output in request order;
//! - any other selection is read in pieces of about 4 MiB, each one hyperslab block and one
//!   `H5Dread` (lock held only for that call): runs along dimension 0 are walked in order,
//!   runs closer than 64 KiB are read together and the gap dropped, rows larger than a piece
//!   are split inside the row. Chunked datasets read this way (filters libhdf5 must decode,
//!   type conversions) are reopened with a chunk cache that holds the chunks one piece
//!   touches, so each chunk is decoded once; pieces of contiguous datasets that are one byte
//!   range of the file are read with `pread`, outside the lock. Memory per request is
//!   bounded by the piece size (or the chunk window) whatever the dataset or selection
//!   size, and the cost is O(number of runs + bytes);
//! - payloads are cut into bins of at most 2^32-1 bytes (configurable for tests);
//! - a null dataspace (no elements at all) is reported with shape `[0]`.
//!
//! Open files are cached by path and version (device, inode, size, times): a path that names
//! another version (replaced, rewritten, deleted) is closed and opened again, except while
//! requests still read an older version of the same inode (libhdf5 would share that open's
//! state): the request then gets 503. The HTTP layer guards every piece it sends against the
//! file changing meanwhile.

mod direct;
mod ffi;
mod filters;
mod grove;
mod object;
mod pool;
mod read;
mod types;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdf5_metno_sys as hdf5_sys;
use hdf5_sys::h5f::{H5F_ACC_RDONLY, H5Fis_hdf5, H5Fopen};
use hdf5_sys::h5i::{H5I_type_t, H5Iget_type};
use hdf5_sys::h5o::H5Oopen;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdfstream_protocol::{ObjectRequest, RequestError};

use ffi::{Id, c_string, locked, path_c_string};
pub(crate) use grove::{DataRequest, Format, Resolve, Selection};
use hdfstream_protocol::{MAX_BIN_LEN as MAX_BIN, Sink};
use object::{Expand, dataset_plan, plan, write_node};
use read::{StreamError, stream_selection};

use crate::stamp::FileStamp;

/// Default number of files kept open.
pub const DEFAULT_OPEN_FILES: usize = 64;
/// Default `data_size_limit` when a request does not give one (PROTOCOL.md §8).
pub const DEFAULT_DATA_SIZE_LIMIT: u64 = 2_147_483_647;

/// Number of chunks the server's own decoder (not libhdf5) has decoded for requests
/// answered on the calling thread (lets tests check that each chunk is decoded once).
pub fn decoded_chunks_on_this_thread() -> u64 {
    direct::decoded_on_this_thread()
}

/// A 404 error with the given message.
fn not_found(message: impl Into<String>) -> RequestError {
    RequestError {
        status: 404,
        message: message.into(),
    }
}

/// Maps a failure after the answer was planned.
fn stream_error(e: StreamError) -> RequestError {
    match e {
        StreamError::Read(m) => not_found(format!("Unable to read data stream: {m}")),
        StreamError::Output(e) => RequestError {
            status: 500,
            message: format!("Unable to write the response: {e}"),
        },
    }
}

/// How often the open files are checked against the files their paths name now, so that
/// one deleted or replaced is closed (and its disk space freed) even if never asked again.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

struct Entry {
    path: PathBuf,
    /// The version of the file that `file` has open.
    stamp: FileStamp,
    file: Arc<Id>,
    used: u64,
}

struct Cache {
    entries: Vec<Entry>,
    /// Files dropped from `entries` that requests may still be reading.
    retired: Vec<(FileStamp, std::sync::Weak<Id>)>,
    tick: u64,
    swept: Instant,
}

impl Cache {
    /// Removes the entries `keep` refuses, remembering those still in use.
    fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        let retired = &mut self.retired;
        self.entries.retain(|e| {
            let kept = keep(e);
            if !kept {
                retired.push((e.stamp, Arc::downgrade(&e.file)));
            }
            kept
        });
        retired.retain(|(_, file)| file.strong_count() > 0);
    }

    /// Whether another version of the file `stamp` names is still open. libhdf5 would
    /// hand a new open of the same inode that file's state (its metadata cache, read
    /// before the file changed), so it must not be opened until that one is closed.
    fn older_version_open(&self, stamp: &FileStamp) -> bool {
        let entries = self.entries.iter().map(|e| e.stamp);
        let retired = self
            .retired
            .iter()
            .filter(|(_, file)| file.strong_count() > 0)
            .map(|(s, _)| *s);
        entries
            .chain(retired)
            .any(|s| s.same_file(stamp) && s != *stamp)
    }
}

/// Open HDF5 files (least recently used ones are closed beyond the capacity) and the
/// answers to object and slice requests on them.
pub struct Hdf5Files {
    cache: Mutex<Cache>,
    capacity: usize,
    max_bin: u64,
    decode_jobs: usize,
}

impl Default for Hdf5Files {
    fn default() -> Self {
        Self::new(DEFAULT_OPEN_FILES)
    }
}

impl std::fmt::Debug for Hdf5Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hdf5Files")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Hdf5Files {
    /// A cache keeping at most `capacity` files open (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            cache: Mutex::new(Cache {
                entries: Vec::new(),
                retired: Vec::new(),
                tick: 0,
                swept: Instant::now(),
            }),
            capacity: capacity.max(1),
            max_bin: MAX_BIN,
            decode_jobs: 0,
        }
    }

    /// Uses bins of at most `max_bin` bytes instead of 2^32-1 (for testing the bin split
    /// on small arrays; clients must accept any split).
    pub fn with_max_bin(mut self, max_bin: u64) -> Self {
        self.max_bin = max_bin.clamp(1, MAX_BIN);
        self
    }

    /// Lets one request have at most `jobs` chunks decoding at once on the shared decode
    /// pool; 0 (the default) allows as many as the pool has threads.
    pub fn with_decode_jobs_per_request(mut self, jobs: usize) -> Self {
        self.decode_jobs = jobs;
        self
    }

    /// Number of files currently open.
    pub fn open_files(&self) -> usize {
        self.cache().entries.len()
    }

    /// Closes the open files whose paths no longer name the version that was opened
    /// (deleted, replaced or changed; requests still reading one keep it open until they
    /// end), and returns how many. Requests do this every 10 s by themselves, so that a
    /// deleted file's space is freed even if no request names it again.
    pub fn close_changed(&self) -> usize {
        let mut cache = self.cache();
        cache.swept = Instant::now();
        let before = cache.entries.len();
        cache.retain(|e| FileStamp::of_path(&e.path).is_ok_and(|now| now == e.stamp));
        before - cache.entries.len()
    }

    /// Writes the answer to an object request (`req.object` set) on the HDF5 file `file`:
    /// the object map (no slice) or the bare array of the selection, as exactly one msgpack
    /// value. Errors found before the first byte (missing object, bad slice, unsupported
    /// type) are returned without writing anything; blocking, call it off the async runtime.
    pub fn write_response(
        &self,
        file: &Path,
        req: &ObjectRequest,
        out: &mut dyn Write,
    ) -> Result<(), RequestError> {
        let object = req.object.as_deref().ok_or_else(|| RequestError {
            status: 400,
            message: "No object name given".to_owned(),
        })?;
        let fid = self.open(file)?;
        let mut sink = Sink::new(out, self.max_bin);
        match &req.slice {
            None => {
                let opts = Expand {
                    max_depth: req.max_depth.unwrap_or(0),
                    data_size_limit: req.data_size_limit.unwrap_or(DEFAULT_DATA_SIZE_LIMIT),
                };
                let node = plan(&fid, object, opts)?;
                tracing::debug!(file = %file.display(), object, "writing object map");
                write_node(&mut sink, &node, self.decode_jobs).map_err(stream_error)?;
            }
            Some(sel) => {
                let ds = locked(|| {
                    let cpath = c_string(object)
                        .ok_or_else(|| not_found("Failed to open dataset slice"))?;
                    // SAFETY: valid file id and C string.
                    let obj = Id::new(unsafe { H5Oopen(fid.raw(), cpath.as_ptr(), H5P_DEFAULT) })
                        .ok_or_else(|| {
                        not_found(format!("Failed to open dataset slice: no object {object}"))
                    })?;
                    // SAFETY: valid identifier.
                    if unsafe { H5Iget_type(obj.raw()) } != H5I_type_t::H5I_DATASET {
                        return Err(not_found(format!(
                            "Failed to open dataset slice: {object} is not a dataset"
                        )));
                    }
                    dataset_plan(obj, object, None)
                })?;
                sel.check_against(&ds.shape)?;
                tracing::debug!(file = %file.display(), object, runs = sel.runs.len(), "writing slice");
                stream_selection(&mut sink, &ds.id, &ds.space, &ds.mem, sel, self.decode_jobs)
                    .map_err(stream_error)?;
            }
        }
        sink.flush()
            .map_err(|e| stream_error(StreamError::Output(e)))
    }

    /// The cache; a panic elsewhere cannot leave it inconsistent (entries are pushed and
    /// removed whole), so a poisoned lock is simply taken over.
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The open file for `path`, opening it (and evicting the least recently used) if needed.
    ///
    /// An open file is reused only while `path` still names the same version of it
    /// ([`FileStamp`]: device, inode, size, times); a file deleted, replaced or rewritten is
    /// closed and the path opened again.
    fn open(&self, path: &Path) -> Result<Arc<Id>, RequestError> {
        let fail = || not_found("Failed to open object: not a readable HDF5 file");
        if self.cache().swept.elapsed() >= SWEEP_EVERY {
            self.close_changed();
        }
        let stamp = FileStamp::of_path(path);
        let mut cache = self.cache();
        let Ok(stamp) = stamp else {
            cache.retain(|e| e.path != path);
            return Err(fail());
        };
        cache.tick += 1;
        let tick = cache.tick;
        if let Some(e) = cache
            .entries
            .iter_mut()
            .find(|e| e.path == path && e.stamp == stamp)
        {
            e.used = tick;
            return Ok(e.file.clone());
        }
        cache.retain(|e| e.path != path);
        if cache.older_version_open(&stamp) {
            return Err(crate::stamp::changed_error());
        }
        let cpath = path_c_string(path).ok_or_else(fail)?;
        let file = locked(|| {
            // SAFETY: valid C string.
            if unsafe { H5Fis_hdf5(cpath.as_ptr()) } <= 0 {
                return None;
            }
            // SAFETY: as above.
            Id::new(unsafe { H5Fopen(cpath.as_ptr(), H5F_ACC_RDONLY, H5P_DEFAULT) })
        })
        .ok_or_else(fail)?;
        let file = Arc::new(file);
        if cache.entries.len() >= self.capacity
            && let Some(oldest) = cache.entries.iter().map(|e| e.used).min()
        {
            cache.retain(|e| e.used != oldest);
        }
        cache.entries.push(Entry {
            path: path.to_owned(),
            stamp,
            file: file.clone(),
            used: tick,
        });
        Ok(file)
    }
}
