//! Remote objects: directories, files, groups and datasets, loaded lazily and cached.
//!
//! The same path always yields the same `Arc` while it is alive (identity is observable with
//! [`Arc::ptr_eq`]); metadata received from the server is kept for the lifetime of the
//! [`File`]/[`Directory`] so nothing is requested twice.
//!
//! ```no_run
//! use hdfstream::{HasAttrs, OpenOptions, Selection, sel};
//!
//! # fn main() -> hdfstream::Result<()> {
//! let snap = hdfstream::open("cosma", "EAGLE/Fiducial_models/RefL0012N0188", OpenOptions::default())?
//!     .into_directory()?;
//! let file = snap.file("snapshot_028_z000p000/snap_028_z000p000.0.hdf5")?;
//! let boxsize = file.group("Header")?.attrs().get("BoxSize").and_then(|a| a.as_f64());
//! let pos = file.dataset("PartType1/Coordinates")?;
//! let first = pos.read_slice::<f64>(&sel![0..1000, ..])?; // shape [1000, 3]
//! let x = pos.read_slice::<f64>(&sel![..1000, 0])?; // shape [1000]
//! let picked = pos.read_fancy::<f64>(&[5i64, 3, 5], &Selection::all())?; // shape [3, 3]
//! let mut buf = vec![0f64; 3000];
//! pos.read_into(&sel![..1000], &mut buf)?; // streamed straight into `buf`
//! # let _ = (boxsize, first, x, picked);
//! # Ok(())
//! # }
//! ```

mod attrs;
mod connection;
mod dataset;
mod directory;
pub(crate) mod element;
mod file;
#[cfg(any(feature = "arrow", feature = "polars"))]
pub(crate) mod glob;
mod group;
#[cfg(feature = "arrow")]
pub(crate) mod memo;
mod path;

use std::io::Write;
use std::sync::Arc;

use hdfstream_protocol::{ArrayData, Dtype, Member, PathInfo, SliceSpec};

pub use attrs::{AttrValue, Attrs, HasAttrs};
pub use connection::open;
pub use dataset::Dataset;
pub use directory::Directory;
pub use element::{Element, ElementKind};
pub use file::File;
pub use group::Group;

use crate::{Error, Result};

/// Default group expansion depth (same as the Python client).
pub const DEFAULT_MAX_DEPTH: u32 = 5;
/// Default size up to which dataset contents are inlined in metadata responses (1 MiB).
pub const DEFAULT_DATA_SIZE_LIMIT: u64 = 1 << 20;

/// What the remote layer needs from a connection; [`crate::Connection`] implements it.
///
/// Kept as a trait so the object layer can be driven by other transports (tests, caches).
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Directory listing or file metadata of a virtual path (`""` = root).
    fn request_path(&self, vpath: &str) -> Result<PathInfo>;
    /// Description of an HDF5 object, expanded per `max_depth` / `data_size_limit`.
    fn request_object(
        &self,
        file: &str,
        object: &str,
        max_depth: u32,
        data_size_limit: u64,
    ) -> Result<Member>;
    /// Contents of a selection of a dataset.
    fn request_slice(&self, file: &str, object: &str, slice: &SliceSpec) -> Result<ArrayData>;
    /// Contents of a selection streamed into `dest` (native byte order, exactly `dtype`).
    fn request_slice_into(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
        dest: &mut [u8],
    ) -> Result<()>;
    /// Raw bytes of a file written to `out`; returns the byte count.
    fn download(&self, vpath: &str, out: &mut dyn Write) -> Result<u64>;

    /// [`Backend::request_slice`] of a dataset whose element type is `dtype` (as its
    /// metadata reports it); a response of another shape or type is an error, never data.
    /// The default checks the response of `request_slice`; [`crate::Connection`] checks
    /// every attempt and requests a mismatching response again.
    fn request_slice_typed(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
    ) -> Result<ArrayData> {
        let mut data = self.request_slice(file, object, slice)?;
        let shape = crate::client::selection_shape(slice);
        crate::client::check_array(&data, &shape, Some(dtype)).map_err(|e| match e {
            hdfstream_protocol::DecodeError::DestinationMismatch { detail } => {
                Error::TypeMismatch {
                    expected: dtype.to_string(),
                    found: format!("{detail} (response for {file}:{object})"),
                }
            }
            source => Error::Decode {
                url: file.to_string(),
                what: format!("{file}:{object}"),
                attempts: 1,
                source,
            },
        })?;
        // The same type may be written `<`, `=` or `|`: report it as the metadata does.
        if let ArrayData::Nd(nd) = &mut data {
            nd.dtype = dtype.clone();
        }
        Ok(data)
    }

    /// Raw bytes of a file written to the local path `dest`; returns the byte count. The
    /// bytes go to a temporary file in `dest`'s directory that is renamed onto `dest` once
    /// complete and removed on failure, so `dest` is never left short. [`crate::Connection`]
    /// also downloads again from the start when the body breaks off.
    fn download_to_path(&self, vpath: &str, dest: &std::path::Path) -> Result<u64> {
        let mut part = crate::client::PartFile::create(dest)?;
        let n = self.download(vpath, part.writer())?;
        part.persist()?;
        Ok(n)
    }
}

/// Lazy-loading knobs fixed when a path is opened and inherited by every object below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// How many group levels one object request expands (default 5).
    pub max_depth: u32,
    /// Datasets up to this many bytes come inlined with their metadata (default 1 MiB).
    pub data_size_limit: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            max_depth: DEFAULT_MAX_DEPTH,
            data_size_limit: DEFAULT_DATA_SIZE_LIMIT,
        }
    }
}

impl OpenOptions {
    /// One level of metadata per request and no inlined data: what a table scan needs of a
    /// file (its group's datasets), without the rest of the file's tree.
    pub const fn metadata_only() -> Self {
        Self {
            max_depth: 0,
            data_size_limit: 0,
        }
    }

    /// Sets the group expansion depth.
    pub fn max_depth(mut self, depth: u32) -> Self {
        self.max_depth = depth;
        self
    }

    /// Sets the inline data limit in bytes.
    pub fn data_size_limit(mut self, bytes: u64) -> Self {
        self.data_size_limit = bytes;
        self
    }
}

/// What a virtual path resolves to.
#[derive(Debug, Clone)]
pub enum Node {
    /// A directory (listing already loaded when returned by [`open`]).
    Directory(Arc<Directory>),
    /// A file.
    File(Arc<File>),
}

impl Node {
    /// The directory, if this is one.
    pub fn into_directory(self) -> Result<Arc<Directory>> {
        match self {
            Node::Directory(d) => Ok(d),
            Node::File(f) => Err(Error::InvalidPath {
                path: f.path().to_string(),
                reason: "is a file, not a directory".to_string(),
            }),
        }
    }

    /// The file, if this is one.
    pub fn into_file(self) -> Result<Arc<File>> {
        match self {
            Node::File(f) => Ok(f),
            Node::Directory(d) => Err(Error::InvalidPath {
                path: d.path().to_string(),
                reason: "is a directory, not a file".to_string(),
            }),
        }
    }
}

/// An HDF5 object inside a file.
#[derive(Debug, Clone)]
pub enum Object {
    /// A group.
    Group(Arc<Group>),
    /// A dataset.
    Dataset(Arc<Dataset>),
}

impl Object {
    /// Absolute HDF5 path of the object.
    pub fn path(&self) -> &str {
        match self {
            Object::Group(g) => g.path(),
            Object::Dataset(d) => d.path(),
        }
    }

    /// The group, if this is one.
    pub fn into_group(self) -> Result<Arc<Group>> {
        match self {
            Object::Group(g) => Ok(g),
            Object::Dataset(d) => Err(Error::InvalidPath {
                path: d.path().to_string(),
                reason: "is a dataset, not a group".to_string(),
            }),
        }
    }

    /// The dataset, if this is one.
    pub fn into_dataset(self) -> Result<Arc<Dataset>> {
        match self {
            Object::Dataset(d) => Ok(d),
            Object::Group(g) => Err(Error::InvalidPath {
                path: g.path().to_string(),
                reason: "is a group, not a dataset".to_string(),
            }),
        }
    }
}

impl HasAttrs for Object {
    fn attrs(&self) -> &Attrs {
        match self {
            Object::Group(g) => g.attrs(),
            Object::Dataset(d) => d.attrs(),
        }
    }
}

/// How a group member is linked (`get_link`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A hard (or external) link.
    Hard,
    /// A soft link with its target path.
    Soft(String),
}

/// Opens the group `group` of the HDF5 file `file` through `backend` with one request, the
/// way a table scan opens each of its files (see [`open_object_with`]).
pub fn open_group_with(
    backend: Arc<dyn Backend>,
    file: &str,
    group: &str,
    options: OpenOptions,
) -> Result<Arc<Group>> {
    open_object_with(backend, file, group, options)?.into_group()
}

/// Opens the object (group or dataset) at `object` in the HDF5 file `file` through `backend`
/// with one request: no file metadata, no root group, no groups on the way. Relative paths
/// from it need no more requests; its parent and absolute paths load the root then. When
/// that request fails with an answer (missing file or object, a directory, a non-HDF5
/// file), the file is opened step by step so that the error names what is wrong.
pub fn open_object_with(
    backend: Arc<dyn Backend>,
    file: &str,
    object: &str,
    options: OpenOptions,
) -> Result<Object> {
    let vpath = path::normalize_vpath(file)?.join("/");
    let names: Option<Vec<String>> = path::parse_object_path(object)
        .steps
        .into_iter()
        .map(|s| match s {
            path::Step::Name(n) => Some(n),
            path::Step::Parent => None,
        })
        .collect();
    let step_by_step = |backend: Arc<dyn Backend>| {
        open_with(backend, &vpath, options)?
            .into_file()?
            .get(object)
    };
    let Some(names) = names else {
        return step_by_step(backend);
    };
    let canonical = format!("/{}", names.join("/"));
    let shared = Arc::new(group::FileShared::new(
        backend.clone(),
        vpath.clone(),
        options,
    ));
    match shared.object_direct(&canonical) {
        Ok(Some(o)) => Ok(o),
        Ok(None)
        | Err(
            Error::NotFound { .. }
            | Error::Decode { .. }
            | Error::UnexpectedResponse { .. }
            | Error::TypeMismatch { .. }
            | Error::Http { .. },
        ) => step_by_step(backend),
        Err(e) => Err(e),
    }
}

/// Asks `backend` for the metadata of `object` in `file` as opening it with `options` would,
/// so that a caching backend answers that open from memory later; errors are left to it.
pub(crate) fn prefetch_object(
    backend: &dyn Backend,
    file: &str,
    object: &str,
    options: OpenOptions,
) {
    if let Ok(steps) = path::normalize_vpath(file) {
        let _ = backend.request_object(
            &steps.join("/"),
            object,
            options.max_depth,
            options.data_size_limit,
        );
    }
}

/// Opens a virtual path through an existing backend (e.g. a configured [`crate::Connection`]).
pub fn open_with(backend: Arc<dyn Backend>, path: &str, options: OpenOptions) -> Result<Node> {
    let vpath = path::normalize_vpath(path)?.join("/");
    tracing::debug!(vpath, "opening remote path");
    match backend.request_path(&vpath)? {
        PathInfo::Directory(info) => Ok(Node::Directory(Directory::from_listing(
            backend, vpath, options, info,
        ))),
        PathInfo::File(info) => Ok(Node::File(File::new(backend, vpath, options, info))),
    }
}
