//! Remote files: metadata, raw download, and the HDF5 object tree for HDF5 files.

use std::io::Write;
use std::sync::Arc;

use hdfstream_protocol::{FileInfo, HDF5_MEDIA_TYPE};

use super::group::{FileShared, Group};
use super::path::parse_object_path;
use super::{Backend, Link, Object, OpenOptions};
use crate::{Error, Result};

/// A file in the server's virtual directory tree.
#[derive(Debug)]
pub struct File {
    info: FileInfo,
    shared: Arc<FileShared>,
}

impl File {
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        vpath: String,
        options: OpenOptions,
        info: FileInfo,
    ) -> Arc<Self> {
        Arc::new(Self {
            info,
            shared: Arc::new(FileShared::new(backend, vpath, options)),
        })
    }

    /// Virtual path (no leading slash).
    pub fn path(&self) -> &str {
        &self.shared.vpath
    }

    /// Last component of the virtual path.
    pub fn name(&self) -> &str {
        self.shared.vpath.rsplit('/').next().unwrap_or_default()
    }

    /// Media type from the server configuration, e.g. `application/x-hdf5`.
    pub fn media_type(&self) -> &str {
        &self.info.media_type
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.info.size
    }

    /// Last modification time in milliseconds since the Unix epoch.
    pub fn last_modified_ms(&self) -> i64 {
        self.info.last_modified_ms
    }

    /// Whether the server serves this file as HDF5.
    pub fn is_hdf5(&self) -> bool {
        self.info.media_type == HDF5_MEDIA_TYPE
    }

    /// The connection this file was opened through (shared, not a new one).
    pub fn backend(&self) -> Arc<dyn Backend> {
        self.shared.backend.clone()
    }

    /// Loading knobs inherited from `open`.
    pub fn options(&self) -> OpenOptions {
        self.shared.options
    }

    /// The root group `/` (loaded on first use; an error for non-HDF5 files).
    pub fn root(&self) -> Result<Arc<Group>> {
        if !self.is_hdf5() {
            return Err(Error::TypeMismatch {
                expected: HDF5_MEDIA_TYPE.to_string(),
                found: self.info.media_type.clone(),
            });
        }
        self.shared.root()
    }

    /// The HDF5 object at `path` (see [`Group::get`]).
    pub fn get(&self, path: &str) -> Result<Object> {
        self.root()?.get(path)
    }

    /// The group at `path`.
    pub fn group(&self, path: &str) -> Result<Arc<Group>> {
        self.root()?.group(path)
    }

    /// The dataset at `path`.
    pub fn dataset(&self, path: &str) -> Result<Arc<super::Dataset>> {
        self.root()?.dataset(path)
    }

    /// How the last component of `path` is linked (see [`Group::get_link`]).
    pub fn get_link(&self, path: &str) -> Result<Link> {
        if parse_object_path(path).steps.is_empty() {
            return Err(Error::NotFound {
                path: path.to_string(),
                message: "the root group has no link".to_string(),
            });
        }
        self.root()?.get_link(path)
    }

    /// Whether `path` exists (see [`Group::contains`]); `/` needs no request.
    pub fn contains(&self, path: &str) -> Result<bool> {
        if parse_object_path(path).steps.is_empty() {
            return Ok(self.is_hdf5());
        }
        self.root()?.contains(path)
    }

    /// Member names of the root group.
    pub fn keys(&self) -> Result<Vec<String>> {
        Ok(self.root()?.keys())
    }

    /// Downloads the raw file into `out`; returns the byte count.
    pub fn download(&self, out: &mut dyn Write) -> Result<u64> {
        self.shared.backend.download(&self.shared.vpath, out)
    }

    /// Downloads the raw file to the local path `dest` (see
    /// [`crate::Connection::download_to_path`]: retried, and `dest` is never left short);
    /// returns the byte count.
    pub fn download_to_path(&self, dest: &std::path::Path) -> Result<u64> {
        self.shared
            .backend
            .download_to_path(&self.shared.vpath, dest)
    }
}
