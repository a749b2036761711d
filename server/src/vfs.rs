//! The virtual directory tree: maps URL paths to files below the served root, safely.
//!
//! Rules (PROTOCOL.md §1, plus hardening):
//! * a virtual path is a list of non-empty, percent-decoded UTF-8 segments; one trailing
//!   slash is accepted, empty segments (`a//b`) are not;
//! * segments `.` and `..`, segments containing `/`, `\` or NUL (also when percent-encoded)
//!   and hidden names (starting with `.`) are refused, as are paths over [`MAX_PATH_LEN`] bytes;
//! * requested paths and symlinks met in listings are canonicalized and must stay inside the
//!   (canonical) root, so symlinks whose target leaves the root are refused (404) and omitted
//!   from listings (other entries of a canonical directory are canonical already);
//! * access rules are checked on the virtual path and on the canonical path, so a symlink
//!   cannot bypass a restricted directory;
//! * directory walks omit symlinks back to an ancestor and stop at [`MAX_WALK_DEPTH`] levels.

use std::cmp::Ordering;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use hdfstream_protocol::{DirectoryInfo, FileInfo, HDF5_MEDIA_TYPE};
use percent_encoding::percent_decode_str;

use crate::auth::{Access, AccessRules, Identity};
use crate::error::ServerError;

/// Longest virtual path accepted, in bytes (the reference's `max_hdf5_name_length`).
pub const MAX_PATH_LEN: usize = 4096;
/// Deepest directory nesting a listing, size or tar walk descends into.
pub const MAX_WALK_DEPTH: usize = 64;

/// Why a URL path is not a valid virtual path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Longer than [`MAX_PATH_LEN`] (HTTP 400).
    TooLong,
    /// Malformed or forbidden segment (HTTP 404, like an unknown path).
    Invalid,
}

/// Why a valid virtual path cannot be served to this caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Does not exist, leaves the root, or is hidden (HTTP 404).
    NotFound,
    /// Needs roles and the caller is anonymous (HTTP 401).
    Unauthenticated,
    /// The authenticated caller lacks a role (HTTP 403).
    Forbidden,
}

/// What a virtual path resolved to.
#[derive(Clone, Debug)]
pub enum Node {
    /// A directory (canonical path).
    Directory(PathBuf),
    /// A regular file (canonical path and metadata for the file map).
    File(PathBuf, FileInfo),
}

/// One file of a recursive directory download.
#[derive(Clone, Debug)]
pub struct TreeFile {
    /// Path relative to the downloaded directory, `/`-separated.
    pub relative: String,
    /// Canonical path on disk.
    pub real: PathBuf,
    /// Size in bytes when walked.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime_s: u64,
}

/// Split the part of a URL path after the endpoint (`/msgpack/` or `/download/`) into
/// percent-decoded segments. An empty string is the root.
pub fn parse_vpath(raw: &str) -> Result<Vec<String>, PathError> {
    let trimmed = raw.strip_suffix('/').unwrap_or(raw);
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    if raw.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    trimmed
        .split('/')
        .map(|segment| {
            let decoded = percent_decode_str(segment)
                .decode_utf8()
                .map_err(|_| PathError::Invalid)?;
            if decoded.is_empty() || decoded.starts_with('.') || decoded.contains(['/', '\\', '\0'])
            {
                return Err(PathError::Invalid);
            }
            Ok(decoded.into_owned())
        })
        .collect()
}

/// Media type reported for a file name (PROTOCOL.md §3.2).
pub fn media_type(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "hdf5" | "h5" => HDF5_MEDIA_TYPE,
        "yml" | "yaml" => "application/yaml",
        "txt" => "text/plain;charset=UTF-8",
        _ if lower.starts_with("readme") => "text/plain;charset=UTF-8",
        _ => "application/octet-stream",
    }
}

/// Natural order: runs of ASCII digits compare by numeric value, everything else bytewise.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, rest_a) = a.split_at(da);
                let (nb, rest_b) = b.split_at(db);
                let strip = |n: &[u8]| -> usize { n.iter().take_while(|&&c| c == b'0').count() };
                let (sa, sb) = (&na[strip(na)..], &nb[strip(nb)..]);
                let ord = sa
                    .len()
                    .cmp(&sb.len())
                    .then_with(|| sa.cmp(sb))
                    .then(da.cmp(&db));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (rest_a, rest_b);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn millis(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

fn file_info(name: &str, meta: &fs::Metadata) -> FileInfo {
    FileInfo {
        media_type: media_type(name).to_owned(),
        size: meta.len(),
        last_modified_ms: millis(meta),
    }
}

enum Child {
    File(String, PathBuf, fs::Metadata),
    Dir(String, PathBuf),
}

impl Child {
    fn name(&self) -> &str {
        match self {
            Child::File(name, ..) | Child::Dir(name, _) => name,
        }
    }
}

/// The served tree: a canonical root plus access rules.
#[derive(Debug)]
pub struct Vfs {
    root: PathBuf,
    access: AccessRules,
}

impl Vfs {
    /// Serve `root` (must be an existing directory) under `access` rules.
    pub fn new(root: &Path, access: AccessRules) -> Result<Self, ServerError> {
        let canonical = fs::canonicalize(root).map_err(|source| ServerError::Root {
            path: root.to_path_buf(),
            source,
        })?;
        if !canonical.is_dir() {
            return Err(ServerError::RootNotDirectory {
                path: root.to_path_buf(),
            });
        }
        Ok(Self {
            root: canonical,
            access,
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Canonical `path` relative to the root as segments, or `None` if it leaves the root or
    /// passes through a hidden name.
    fn inside(&self, canonical: &Path) -> Option<Vec<String>> {
        let rel = canonical.strip_prefix(&self.root).ok()?;
        rel.components()
            .map(|c| match c {
                Component::Normal(s) => s
                    .to_str()
                    .filter(|s| !s.starts_with('.'))
                    .map(str::to_owned),
                _ => None,
            })
            .collect()
    }

    fn check(&self, segments: &[String], who: &Identity) -> Result<(), Refusal> {
        match self.access.check(segments, who) {
            Access::Allowed => Ok(()),
            Access::Unauthenticated => Err(Refusal::Unauthenticated),
            Access::Forbidden => Err(Refusal::Forbidden),
        }
    }

    /// Resolve a virtual path for `who` (blocking file-system calls).
    pub fn resolve(&self, segments: &[String], who: &Identity) -> Result<Node, Refusal> {
        self.check(segments, who)?;
        let mut real = self.root.clone();
        real.extend(segments);
        let canonical = fs::canonicalize(&real).map_err(|_| Refusal::NotFound)?;
        let rel = self.inside(&canonical).ok_or(Refusal::NotFound)?;
        self.check(&rel, who)?;
        let meta = fs::metadata(&canonical).map_err(|_| Refusal::NotFound)?;
        if meta.is_dir() {
            Ok(Node::Directory(canonical))
        } else if meta.is_file() {
            let name = segments.last().map(String::as_str).unwrap_or_default();
            let info = file_info(name, &meta);
            Ok(Node::File(canonical, info))
        } else {
            Err(Refusal::NotFound)
        }
    }

    /// Whether `who` may see child `name` of `vpath`, whose canonical path is `real`.
    fn visible(&self, vpath: &[String], name: &str, real: &Path, who: &Identity) -> bool {
        let mut child = vpath.to_vec();
        child.push(name.to_owned());
        self.check(&child, who).is_ok()
            && self
                .inside(real)
                .is_some_and(|rel| self.check(&rel, who).is_ok())
    }

    /// Visible children of the canonical directory `dir`, in natural order (files and
    /// directories mixed). Only symlinks need canonicalizing: any other entry of a
    /// canonical directory is canonical and inside the root already.
    fn children(&self, dir: &Path, vpath: &[String], who: &Identity) -> io::Result<Vec<Child>> {
        let ruled = !self.access.is_empty();
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') || name.contains('\\') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let (real, meta) = if kind.is_symlink() {
                let Ok(canonical) = fs::canonicalize(entry.path()) else {
                    continue;
                };
                if self.inside(&canonical).is_none() {
                    continue;
                }
                let Ok(meta) = fs::metadata(&canonical) else {
                    continue;
                };
                (canonical, meta)
            } else {
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                (entry.path(), meta)
            };
            if ruled && !self.visible(vpath, &name, &real, who) {
                continue;
            }
            if meta.is_dir() {
                out.push(Child::Dir(name, real));
            } else if meta.is_file() {
                out.push(Child::File(name, real, meta));
            }
        }
        out.sort_by(|a, b| natural_cmp(a.name(), b.name()));
        Ok(out)
    }

    /// Directory listing (PROTOCOL.md §3.1): `max_depth` levels of subdirectories expanded,
    /// sizes always recursive over visible files.
    pub fn listing(
        &self,
        dir: &Path,
        vpath: &[String],
        who: &Identity,
        max_depth: u32,
    ) -> io::Result<DirectoryInfo> {
        let mut walk = Walk {
            vfs: self,
            who,
            ancestors: Vec::new(),
            vpath: vpath.to_vec(),
        };
        let (_, info) = walk.summarize(dir, Some(max_depth))?;
        info.ok_or_else(|| io::Error::other("directory listing was not built"))
    }

    /// All visible files below `dir`, recursively, in listing order.
    pub fn tree_files(
        &self,
        dir: &Path,
        vpath: &[String],
        who: &Identity,
    ) -> io::Result<Vec<TreeFile>> {
        let mut walk = Walk {
            vfs: self,
            who,
            ancestors: Vec::new(),
            vpath: vpath.to_vec(),
        };
        let mut out = Vec::new();
        walk.collect(dir, "", &mut out)?;
        Ok(out)
    }
}

/// State of one recursive walk: the chain of directories entered (loop protection).
struct Walk<'a> {
    vfs: &'a Vfs,
    who: &'a Identity,
    ancestors: Vec<PathBuf>,
    vpath: Vec<String>,
}

impl Walk<'_> {
    fn enter(&mut self, dir: &Path) -> bool {
        if self.ancestors.len() >= MAX_WALK_DEPTH || self.ancestors.iter().any(|a| a == dir) {
            tracing::warn!(dir = %dir.display(), "not descending: symlink loop or tree too deep");
            return false;
        }
        self.ancestors.push(dir.to_path_buf());
        true
    }

    fn leave(&mut self) {
        self.ancestors.pop();
    }

    /// Total size of `dir`, plus its listing when `expand` is `Some(levels below to expand)`.
    fn summarize(
        &mut self,
        dir: &Path,
        expand: Option<u32>,
    ) -> io::Result<(u64, Option<DirectoryInfo>)> {
        if !self.enter(dir) {
            return Ok((0, expand.map(|_| empty_listing())));
        }
        let result = self.summarize_inner(dir, expand);
        self.leave();
        result
    }

    fn summarize_inner(
        &mut self,
        dir: &Path,
        expand: Option<u32>,
    ) -> io::Result<(u64, Option<DirectoryInfo>)> {
        let mut size = 0u64;
        let mut files = Vec::new();
        let mut directories = Vec::new();
        for child in self.vfs.children(dir, &self.vpath, self.who)? {
            match child {
                Child::File(name, _, meta) => {
                    size = size.saturating_add(meta.len());
                    if expand.is_some() {
                        let info = file_info(&name, &meta);
                        files.push((name, info));
                    }
                }
                Child::Dir(_, real) if self.ancestors.contains(&real) => {}
                Child::Dir(name, real) => {
                    let child_expand = match expand {
                        Some(levels) if levels > 0 => Some(levels - 1),
                        _ => None,
                    };
                    self.vpath.push(name.clone());
                    let summary = self.summarize(&real, child_expand);
                    self.vpath.pop();
                    let (child_size, child_info) = summary?;
                    size = size.saturating_add(child_size);
                    if expand.is_some() {
                        directories.push((name, child_info));
                    }
                }
            }
        }
        let info = expand.map(|_| DirectoryInfo {
            size,
            description: None,
            labels: None,
            files,
            directories,
        });
        Ok((size, info))
    }

    fn collect(&mut self, dir: &Path, prefix: &str, out: &mut Vec<TreeFile>) -> io::Result<()> {
        if !self.enter(dir) {
            return Ok(());
        }
        let result = self.collect_inner(dir, prefix, out);
        self.leave();
        result
    }

    fn collect_inner(
        &mut self,
        dir: &Path,
        prefix: &str,
        out: &mut Vec<TreeFile>,
    ) -> io::Result<()> {
        for child in self.vfs.children(dir, &self.vpath, self.who)? {
            match child {
                Child::File(name, real, meta) => out.push(TreeFile {
                    relative: format!("{prefix}{name}"),
                    real,
                    size: meta.len(),
                    mtime_s: u64::try_from(millis(&meta) / 1000).unwrap_or(0),
                }),
                Child::Dir(_, real) if self.ancestors.contains(&real) => {}
                Child::Dir(name, real) => {
                    let nested = format!("{prefix}{name}/");
                    self.vpath.push(name);
                    let result = self.collect(&real, &nested, out);
                    self.vpath.pop();
                    result?;
                }
            }
        }
        Ok(())
    }
}

fn empty_listing() -> DirectoryInfo {
    DirectoryInfo {
        size: 0,
        description: None,
        labels: None,
        files: Vec::new(),
        directories: Vec::new(),
    }
}
