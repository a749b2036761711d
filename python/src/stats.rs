//! A backend that counts the data requests passing through it (rows per dataset), so that
//! a user (or a test) can see what a query fetched.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hdfstream::remote::Backend;
use hdfstream_protocol::{ArrayData, Dtype, Member, PathInfo, SliceSpec};

/// Counts of the requests a backend served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Metadata requests (paths and objects).
    pub metadata_requests: u64,
    /// Data (slice) requests.
    pub data_requests: u64,
    /// Rows (first-dimension indices) requested, per dataset path.
    pub rows: BTreeMap<String, u64>,
}

/// Wraps a backend and counts its requests.
#[derive(Debug)]
pub struct Counting {
    inner: Arc<dyn Backend>,
    metadata: AtomicU64,
    data: AtomicU64,
    rows: Mutex<BTreeMap<String, u64>>,
}

impl Counting {
    /// Counts the requests sent to `inner`.
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        Self {
            inner,
            metadata: AtomicU64::new(0),
            data: AtomicU64::new(0),
            rows: Mutex::new(BTreeMap::new()),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        Counts {
            metadata_requests: self.metadata.load(Ordering::Relaxed),
            data_requests: self.data.load(Ordering::Relaxed),
            rows: self.lock().clone(),
        }
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        self.metadata.store(0, Ordering::Relaxed);
        self.data.store(0, Ordering::Relaxed);
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count_slice(&self, object: &str, slice: &SliceSpec) {
        self.data.fetch_add(1, Ordering::Relaxed);
        let rows = slice
            .runs
            .iter()
            .map(|r| r.count)
            .fold(0u64, u64::saturating_add);
        let mut map = self.lock();
        let e = map.entry(object.to_owned()).or_insert(0);
        *e = e.saturating_add(rows);
    }
}

impl Backend for Counting {
    fn request_path(&self, vpath: &str) -> hdfstream::Result<PathInfo> {
        self.metadata.fetch_add(1, Ordering::Relaxed);
        self.inner.request_path(vpath)
    }

    fn request_object(
        &self,
        file: &str,
        object: &str,
        max_depth: u32,
        data_size_limit: u64,
    ) -> hdfstream::Result<Member> {
        self.metadata.fetch_add(1, Ordering::Relaxed);
        self.inner
            .request_object(file, object, max_depth, data_size_limit)
    }

    fn request_slice(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
    ) -> hdfstream::Result<ArrayData> {
        self.count_slice(object, slice);
        self.inner.request_slice(file, object, slice)
    }

    fn request_slice_into(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
        dest: &mut [u8],
    ) -> hdfstream::Result<()> {
        self.count_slice(object, slice);
        self.inner
            .request_slice_into(file, object, slice, dtype, dest)
    }

    fn download(&self, vpath: &str, out: &mut dyn Write) -> hdfstream::Result<u64> {
        self.inner.download(vpath, out)
    }
}
