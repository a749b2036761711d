//! A backend wrapper that slows metadata requests down so that overlapping ones overlap
//! visibly, and checks on the server's request log for metadata asked twice.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;

use hdfstream_server::http::RequestRecord;

/// A backend that holds every metadata request for a while and records how many were in
/// flight at once, so that overlapping requests show up as overlapping.
#[derive(Debug)]
pub(crate) struct SlowMetadata {
    inner: Arc<dyn hdfstream::remote::Backend>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl SlowMetadata {
    /// Wraps `inner`.
    pub(crate) fn new(inner: Arc<dyn hdfstream::remote::Backend>) -> Self {
        Self {
            inner,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    /// The most metadata requests that were in flight at once.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(SeqCst)
    }

    fn hold<T>(&self, f: impl FnOnce() -> T) -> T {
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.max_in_flight.fetch_max(now, SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(40));
        let out = f();
        self.in_flight.fetch_sub(1, SeqCst);
        out
    }
}

impl hdfstream::remote::Backend for SlowMetadata {
    fn request_path(&self, vpath: &str) -> hdfstream::Result<hdfstream_protocol::PathInfo> {
        self.hold(|| self.inner.request_path(vpath))
    }
    fn request_object(
        &self,
        file: &str,
        object: &str,
        max_depth: u32,
        data_size_limit: u64,
    ) -> hdfstream::Result<hdfstream_protocol::Member> {
        self.hold(|| {
            self.inner
                .request_object(file, object, max_depth, data_size_limit)
        })
    }
    fn request_slice(
        &self,
        file: &str,
        object: &str,
        slice: &hdfstream_protocol::SliceSpec,
    ) -> hdfstream::Result<hdfstream_protocol::ArrayData> {
        self.inner.request_slice(file, object, slice)
    }
    fn request_slice_into(
        &self,
        file: &str,
        object: &str,
        slice: &hdfstream_protocol::SliceSpec,
        dtype: &hdfstream_protocol::Dtype,
        dest: &mut [u8],
    ) -> hdfstream::Result<()> {
        self.inner
            .request_slice_into(file, object, slice, dtype, dest)
    }
    fn download(&self, vpath: &str, out: &mut dyn std::io::Write) -> hdfstream::Result<u64> {
        self.inner.download(vpath, out)
    }
}

/// Panics when the log shows one metadata request (method, file, object) twice.
pub(crate) fn assert_no_repeated_metadata(log: &[RequestRecord]) {
    let mut seen = std::collections::HashMap::new();
    for r in log.iter().filter(|r| r.slice_runs.is_none()) {
        *seen
            .entry((r.method.clone(), r.vpath.clone(), r.object.clone()))
            .or_insert(0) += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "metadata asked more than once: {repeated:?}"
    );
}
