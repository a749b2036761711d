//! Remote directories: lazy listings, nested lookup and object identity.

use std::sync::{Arc, Mutex};

use hdfstream_protocol::{DirectoryInfo, PathInfo};

use super::file::File;
use super::group::lock;
use super::path::normalize_vpath;
use super::{Backend, Node, OpenOptions};
use crate::{Error, Result};

/// A directory in the server's virtual tree. Its listing is requested on first need; children
/// are created once and shared (the same path gives the same `Arc`).
#[derive(Debug)]
pub struct Directory {
    backend: Arc<dyn Backend>,
    options: OpenOptions,
    path: String,
    state: Mutex<DirState>,
}

#[derive(Debug, Default)]
struct DirState {
    loaded: bool,
    size: u64,
    description: Option<String>,
    dirs: Vec<(String, Arc<Directory>)>,
    files: Vec<(String, Arc<File>)>,
}

fn join_vpath(base: &str, rest: &str) -> String {
    if base.is_empty() {
        rest.to_string()
    } else if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}/{rest}")
    }
}

impl Directory {
    fn unloaded(backend: Arc<dyn Backend>, path: String, options: OpenOptions) -> Arc<Self> {
        Arc::new(Self {
            backend,
            options,
            path,
            state: Mutex::new(DirState::default()),
        })
    }

    pub(crate) fn from_listing(
        backend: Arc<dyn Backend>,
        path: String,
        options: OpenOptions,
        info: DirectoryInfo,
    ) -> Arc<Self> {
        let d = Self::unloaded(backend, path, options);
        d.apply_listing(&mut lock(&d.state), info);
        d
    }

    /// Virtual path (no leading slash; empty for the server root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the listing has been received.
    pub fn is_loaded(&self) -> bool {
        lock(&self.state).loaded
    }

    fn apply_listing(&self, state: &mut DirState, info: DirectoryInfo) {
        let mut dirs = Vec::with_capacity(info.directories.len());
        for (name, sub) in info.directories {
            let existing = state
                .dirs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| d.clone());
            let child = existing.unwrap_or_else(|| {
                Self::unloaded(
                    self.backend.clone(),
                    join_vpath(&self.path, &name),
                    self.options,
                )
            });
            if let Some(sub) = sub {
                let mut cs = lock(&child.state);
                if !cs.loaded {
                    child.apply_listing(&mut cs, sub);
                }
            }
            dirs.push((name, child));
        }
        let mut files = Vec::with_capacity(info.files.len());
        for (name, finfo) in info.files {
            let existing = state
                .files
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| f.clone());
            let child = existing.unwrap_or_else(|| {
                File::new(
                    self.backend.clone(),
                    join_vpath(&self.path, &name),
                    self.options,
                    finfo,
                )
            });
            files.push((name, child));
        }
        state.dirs = dirs;
        state.files = files;
        state.size = info.size;
        state.description = info.description;
        state.loaded = true;
    }

    fn ensure_loaded(&self) -> Result<std::sync::MutexGuard<'_, DirState>> {
        let mut state = lock(&self.state);
        if !state.loaded {
            tracing::debug!(vpath = self.path, "listing directory");
            match self.backend.request_path(&self.path)? {
                PathInfo::Directory(info) => self.apply_listing(&mut state, info),
                PathInfo::File(_) => {
                    return Err(Error::UnexpectedResponse {
                        url: self.path.clone(),
                        reason: "expected a directory listing, got file metadata".to_string(),
                    });
                }
            }
        }
        Ok(state)
    }

    /// Subdirectories in server order (loads the listing).
    pub fn directories(&self) -> Result<Vec<(String, Arc<Directory>)>> {
        Ok(self.ensure_loaded()?.dirs.clone())
    }

    /// Files in server order (loads the listing).
    pub fn files(&self) -> Result<Vec<(String, Arc<File>)>> {
        Ok(self.ensure_loaded()?.files.clone())
    }

    /// Entry names: subdirectories first, then files (loads the listing).
    pub fn keys(&self) -> Result<Vec<String>> {
        let s = self.ensure_loaded()?;
        Ok(s.dirs
            .iter()
            .map(|(n, _)| n.clone())
            .chain(s.files.iter().map(|(n, _)| n.clone()))
            .collect())
    }

    /// Number of entries (loads the listing).
    pub fn len(&self) -> Result<usize> {
        let s = self.ensure_loaded()?;
        Ok(s.dirs.len() + s.files.len())
    }

    /// True when the directory has no entries (loads the listing).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Total bytes of the visible files below this directory (loads the listing).
    pub fn size(&self) -> Result<u64> {
        Ok(self.ensure_loaded()?.size)
    }

    /// Optional Markdown description (loads the listing).
    pub fn description(&self) -> Result<Option<String>> {
        Ok(self.ensure_loaded()?.description.clone())
    }

    fn known_child(state: &DirState, name: &str) -> Option<Node> {
        if let Some((_, d)) = state.dirs.iter().find(|(n, _)| n == name) {
            return Some(Node::Directory(d.clone()));
        }
        state
            .files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| Node::File(f.clone()))
    }

    /// The entry at a relative `path` (normalised; `..` may not leave this directory).
    ///
    /// Known entries are returned without a request; a name missing from a loaded listing is
    /// an error without a request; otherwise the full path is requested once and the
    /// intermediate directories are created unloaded.
    pub fn get(self: &Arc<Self>, path: &str) -> Result<Node> {
        let comps = normalize_vpath(path)?;
        self.get_components(&comps)
    }

    fn get_components(self: &Arc<Self>, comps: &[String]) -> Result<Node> {
        let Some((first, rest)) = comps.split_first() else {
            return Ok(Node::Directory(self.clone()));
        };
        let mut state = lock(&self.state);
        if let Some(child) = Self::known_child(&state, first) {
            drop(state);
            return match (child, rest.is_empty()) {
                (c, true) => Ok(c),
                (Node::Directory(d), false) => d.get_components(rest),
                (Node::File(f), false) => Err(Error::NotFound {
                    path: join_vpath(f.path(), &rest.join("/")),
                    message: format!("{} is a file, not a directory", f.path()),
                }),
            };
        }
        let full = join_vpath(&self.path, &comps.join("/"));
        if state.loaded {
            return Err(Error::NotFound {
                path: full,
                message: format!("no entry {first:?} in directory {:?}", self.path),
            });
        }
        tracing::debug!(vpath = full, "requesting path");
        let info = self.backend.request_path(&full)?;
        // Create the intermediate directories (unloaded) and attach the target.
        let Some((last, middle)) = comps.split_last() else {
            return Ok(Node::Directory(self.clone()));
        };
        let target_path = full.clone();
        let make_target = || match info {
            PathInfo::Directory(d) => Node::Directory(Self::from_listing(
                self.backend.clone(),
                target_path,
                self.options,
                d,
            )),
            PathInfo::File(f) => Node::File(File::new(
                self.backend.clone(),
                target_path,
                self.options,
                f,
            )),
        };
        if middle.is_empty() {
            let node = make_target();
            Self::insert(&mut state, last, &node);
            return Ok(node);
        }
        let Some((head, inner)) = middle.split_first() else {
            return Ok(make_target());
        };
        let child = Self::unloaded(
            self.backend.clone(),
            join_vpath(&self.path, head),
            self.options,
        );
        state.dirs.push((head.clone(), child.clone()));
        drop(state);
        let mut parent = child;
        for name in inner {
            let next = Self::unloaded(
                self.backend.clone(),
                join_vpath(&parent.path, name),
                self.options,
            );
            lock(&parent.state).dirs.push((name.clone(), next.clone()));
            parent = next;
        }
        let node = make_target();
        Self::insert(&mut lock(&parent.state), last, &node);
        Ok(node)
    }

    fn insert(state: &mut DirState, name: &str, node: &Node) {
        match node {
            Node::Directory(d) => state.dirs.push((name.to_string(), d.clone())),
            Node::File(f) => state.files.push((name.to_string(), f.clone())),
        }
    }

    /// The HDF5 file at `path` (an error if it is a directory or not HDF5).
    pub fn file(self: &Arc<Self>, path: &str) -> Result<Arc<File>> {
        let f = self.get(path)?.into_file()?;
        if !f.is_hdf5() {
            return Err(Error::TypeMismatch {
                expected: hdfstream_protocol::HDF5_MEDIA_TYPE.to_string(),
                found: f.media_type().to_string(),
            });
        }
        Ok(f)
    }

    /// Whether `path` is an HDF5 file (false for directories and missing paths).
    pub fn is_hdf5(self: &Arc<Self>, path: &str) -> Result<bool> {
        match self.get(path) {
            Ok(Node::File(f)) => Ok(f.is_hdf5()),
            Ok(Node::Directory(_)) | Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether an entry exists at `path` (may request the path).
    pub fn contains(self: &Arc<Self>, path: &str) -> Result<bool> {
        match self.get(path) {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
