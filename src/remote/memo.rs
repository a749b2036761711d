//! A backend that asks the server once for each piece of metadata.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use hdfstream_protocol::{ArrayData, Dtype, Member, PathInfo, SliceSpec};

use super::Backend;
use crate::Result;

/// An object request: file, object, `max_depth`.
type ObjectKey = (String, String, u32);

/// Wraps a backend so that repeated metadata requests are answered from memory: each path
/// listing, and each object described without inlined data (`data_size_limit` 0), is
/// requested once. Other requests (data, objects with inlined data, downloads) pass through.
///
/// Meant for the lifetime of one opened table, whose metadata is a snapshot anyway.
#[derive(Debug)]
pub(crate) struct MetadataCache {
    inner: Arc<dyn Backend>,
    paths: Mutex<HashMap<String, PathInfo>>,
    objects: Mutex<HashMap<ObjectKey, Member>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MetadataCache {
    /// Caches the metadata of `inner`.
    pub(crate) fn new(inner: Arc<dyn Backend>) -> Self {
        Self {
            inner,
            paths: Mutex::new(HashMap::new()),
            objects: Mutex::new(HashMap::new()),
        }
    }
}

impl Backend for MetadataCache {
    fn request_path(&self, vpath: &str) -> Result<PathInfo> {
        if let Some(p) = lock(&self.paths).get(vpath) {
            return Ok(p.clone());
        }
        let p = self.inner.request_path(vpath)?;
        lock(&self.paths).insert(vpath.to_owned(), p.clone());
        Ok(p)
    }

    fn request_object(
        &self,
        file: &str,
        object: &str,
        max_depth: u32,
        data_size_limit: u64,
    ) -> Result<Member> {
        if data_size_limit != 0 {
            return self
                .inner
                .request_object(file, object, max_depth, data_size_limit);
        }
        let key = (file.to_owned(), object.to_owned(), max_depth);
        if let Some(m) = lock(&self.objects).get(&key) {
            return Ok(m.clone());
        }
        let m = self.inner.request_object(file, object, max_depth, 0)?;
        lock(&self.objects).insert(key, m.clone());
        Ok(m)
    }

    fn request_slice(&self, file: &str, object: &str, slice: &SliceSpec) -> Result<ArrayData> {
        self.inner.request_slice(file, object, slice)
    }

    fn request_slice_into(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
        dest: &mut [u8],
    ) -> Result<()> {
        self.inner
            .request_slice_into(file, object, slice, dtype, dest)
    }

    fn request_slice_typed(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
    ) -> Result<ArrayData> {
        self.inner.request_slice_typed(file, object, slice, dtype)
    }

    fn download(&self, vpath: &str, out: &mut dyn Write) -> Result<u64> {
        self.inner.download(vpath, out)
    }

    fn download_to_path(&self, vpath: &str, dest: &std::path::Path) -> Result<u64> {
        self.inner.download_to_path(vpath, dest)
    }
}
