//! HDF5 groups: the lazily loaded object tree of one file and path resolution inside it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use hdfstream_protocol::Member;

use super::attrs::{Attrs, HasAttrs};
use super::dataset::{Dataset, DatasetData};
use super::path::{ObjectPath, Step, base_name, join, parent_of, parse_object_path};
use super::{Backend, Link, Object, OpenOptions};
use crate::{Error, Result};

/// Most soft links followed while resolving one path (guards against link cycles).
const MAX_LINK_HOPS: usize = 40;

/// Locks a mutex, recovering the data if another thread panicked while holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// State shared by every object of one HDF5 file: the connection, the loading knobs, the
/// metadata tree received so far and the live object handles (for identity).
#[derive(Debug)]
pub(crate) struct FileShared {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) vpath: String,
    pub(crate) options: OpenOptions,
    root: Mutex<Option<Arc<GroupData>>>,
    handles: Mutex<HashMap<String, WeakObject>>,
}

#[derive(Debug)]
enum WeakObject {
    Group(Weak<Group>),
    Dataset(Weak<Dataset>),
}

/// Metadata of a loaded group.
#[derive(Debug)]
pub(crate) struct GroupData {
    attrs: Attrs,
    members: Vec<(String, Slot)>,
}

/// One member of a group: filled when the server described it, empty until loaded otherwise.
#[derive(Debug)]
struct Slot(Mutex<Option<Loaded>>);

/// A member as received.
#[derive(Debug, Clone)]
enum Loaded {
    Group(Arc<GroupData>),
    Dataset(Arc<DatasetData>),
    SoftLink(String),
    Unknown,
}

impl Loaded {
    fn from_member(m: Member) -> Self {
        match m {
            Member::Group(g) => Loaded::Group(Arc::new(GroupData {
                attrs: Attrs::from_wire(g.attributes),
                members: g
                    .members
                    .into_iter()
                    .map(|(name, m)| (name, Slot(Mutex::new(m.map(Loaded::from_member)))))
                    .collect(),
            })),
            Member::Dataset(d) => Loaded::Dataset(Arc::new(DatasetData::from_wire(d))),
            Member::SoftLink { target } => Loaded::SoftLink(target),
            _ => Loaded::Unknown,
        }
    }
}

impl FileShared {
    pub(crate) fn new(backend: Arc<dyn Backend>, vpath: String, options: OpenOptions) -> Self {
        Self {
            backend,
            vpath,
            options,
            root: Mutex::new(None),
            handles: Mutex::new(HashMap::new()),
        }
    }

    fn request(&self, object: &str) -> Result<Loaded> {
        tracing::debug!(file = self.vpath, object, "loading HDF5 object");
        let m = self.backend.request_object(
            &self.vpath,
            object,
            self.options.max_depth,
            self.options.data_size_limit,
        )?;
        Ok(Loaded::from_member(m))
    }

    fn root_data(&self) -> Result<Arc<GroupData>> {
        let mut root = lock(&self.root);
        if let Some(r) = root.as_ref() {
            return Ok(r.clone());
        }
        match self.request("/")? {
            Loaded::Group(g) => {
                *root = Some(g.clone());
                Ok(g)
            }
            _ => Err(Error::UnexpectedResponse {
                url: self.vpath.clone(),
                reason: "the root object is not a group".to_string(),
            }),
        }
    }

    /// The object at the absolute, canonical `path` (only names, no `.`/`..`), fetched with
    /// one request for the object itself: the root and the groups above it are not loaded.
    /// `Ok(None)` when the object there is neither a group nor a dataset.
    pub(crate) fn object_direct(self: &Arc<Self>, path: &str) -> Result<Option<Object>> {
        Ok(match self.request(path)? {
            Loaded::Group(g) => Some(Object::Group(self.group_handle(path.to_string(), g))),
            Loaded::Dataset(d) => Some(Object::Dataset(self.dataset_handle(path.to_string(), d))),
            _ => None,
        })
    }

    /// The root group handle (loads the root on first use).
    pub(crate) fn root(self: &Arc<Self>) -> Result<Arc<Group>> {
        let data = self.root_data()?;
        Ok(self.group_handle("/".to_string(), data))
    }

    fn group_handle(self: &Arc<Self>, path: String, data: Arc<GroupData>) -> Arc<Group> {
        let mut handles = lock(&self.handles);
        if let Some(WeakObject::Group(w)) = handles.get(&path)
            && let Some(g) = w.upgrade()
        {
            return g;
        }
        let g = Arc::new(Group {
            shared: self.clone(),
            path: path.clone(),
            data,
        });
        handles.insert(path, WeakObject::Group(Arc::downgrade(&g)));
        g
    }

    fn dataset_handle(self: &Arc<Self>, path: String, data: Arc<DatasetData>) -> Arc<Dataset> {
        let mut handles = lock(&self.handles);
        if let Some(WeakObject::Dataset(w)) = handles.get(&path)
            && let Some(d) = w.upgrade()
        {
            return d;
        }
        let d = Arc::new(Dataset::new(self.clone(), path.clone(), data));
        handles.insert(path, WeakObject::Dataset(Arc::downgrade(&d)));
        d
    }

    /// Loads (if needed) member `name` of `group` whose absolute path is `member_path`.
    fn load_member(
        &self,
        group: &GroupData,
        name: &str,
        member_path: &str,
    ) -> Result<Option<Loaded>> {
        let Some((_, slot)) = group.members.iter().find(|(n, _)| n == name) else {
            return Ok(None);
        };
        let mut state = lock(&slot.0);
        if let Some(l) = state.as_ref() {
            return Ok(Some(l.clone()));
        }
        let loaded = self.request(member_path)?;
        *state = Some(loaded.clone());
        Ok(Some(loaded))
    }

    /// Group data at a canonical absolute path (every group on it is already loaded).
    fn group_at(&self, path: &str) -> Result<Arc<GroupData>> {
        let mut cur = self.root_data()?;
        let mut cur_path = "/".to_string();
        for name in path.split('/').filter(|c| !c.is_empty()) {
            let member_path = join(&cur_path, name);
            match self.load_member(&cur, name, &member_path)? {
                Some(Loaded::Group(g)) => cur = g,
                _ => return Err(not_found(path, "no such group")),
            }
            cur_path = member_path;
        }
        Ok(cur)
    }
}

fn not_found(path: &str, message: &str) -> Error {
    Error::NotFound {
        path: path.to_string(),
        message: message.to_string(),
    }
}

/// What a path resolution should produce.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The object (loading it).
    Get,
    /// How the last component is linked.
    Link,
    /// Whether the last name exists, without loading it.
    Contains,
}

enum Resolved {
    Object(Object),
    Link(Link),
    Exists(bool),
}

/// An HDF5 group of a remote file.
#[derive(Debug)]
pub struct Group {
    shared: Arc<FileShared>,
    path: String,
    data: Arc<GroupData>,
}

impl HasAttrs for Group {
    fn attrs(&self) -> &Attrs {
        &self.data.attrs
    }
}

impl Group {
    /// Absolute HDF5 path (`/` for the root group).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Last component of the path (`/` for the root group).
    pub fn name(&self) -> &str {
        base_name(&self.path)
    }

    /// Virtual path of the file this group belongs to.
    pub fn file_path(&self) -> &str {
        &self.shared.vpath
    }

    /// The connection this group's file was opened through (shared, not a new one).
    pub fn backend(&self) -> Arc<dyn Backend> {
        self.shared.backend.clone()
    }

    /// Member names in server order (no request).
    pub fn keys(&self) -> Vec<String> {
        self.data.members.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.data.members.len()
    }

    /// True when the group has no members.
    pub fn is_empty(&self) -> bool {
        self.data.members.is_empty()
    }

    /// The group at the absolute path `path` of this group's file, fetched with one request
    /// without loading the groups above it; `None` when nothing is there or it is not a group.
    #[cfg(feature = "arrow")]
    pub(crate) fn group_in_file(&self, path: &str) -> Result<Option<Arc<Group>>> {
        let parsed = parse_object_path(path);
        let mut canonical = String::new();
        for step in &parsed.steps {
            match step {
                Step::Name(n) => {
                    canonical.push('/');
                    canonical.push_str(n);
                }
                Step::Parent => return self.group(path).map(Some),
            }
        }
        if canonical.is_empty() {
            return self.group("/").map(Some);
        }
        match self.shared.object_direct(&canonical) {
            Ok(Some(Object::Group(g))) => Ok(Some(g)),
            Ok(_) | Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The parent group (the root is its own parent).
    pub fn parent(&self) -> Result<Arc<Group>> {
        let p = parent_of(&self.path);
        let data = self.shared.group_at(p)?;
        Ok(self.shared.group_handle(p.to_string(), data))
    }

    /// The object at `path` (relative to this group, or absolute), loading what is needed.
    pub fn get(&self, path: &str) -> Result<Object> {
        match self.resolve(path, Mode::Get)? {
            Resolved::Object(o) => Ok(o),
            _ => Err(not_found(path, "not an object")),
        }
    }

    /// The group at `path`.
    pub fn group(&self, path: &str) -> Result<Arc<Group>> {
        self.get(path)?.into_group()
    }

    /// The dataset at `path`.
    pub fn dataset(&self, path: &str) -> Result<Arc<Dataset>> {
        self.get(path)?.into_dataset()
    }

    /// How the last component of `path` is linked: a soft link with its target, or a hard link.
    pub fn get_link(&self, path: &str) -> Result<Link> {
        match self.resolve(path, Mode::Link)? {
            Resolved::Link(l) => Ok(l),
            _ => Err(not_found(path, "not a link")),
        }
    }

    /// Whether `path` exists; intermediate groups are loaded, the final member is not.
    pub fn contains(&self, path: &str) -> Result<bool> {
        match self.resolve(path, Mode::Contains) {
            Ok(Resolved::Exists(b)) => Ok(b),
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Calls `f` with the path (relative to this group) of every object below it, depth first
    /// in member order; soft links are visited as their targets.
    pub fn visit(&self, mut f: impl FnMut(&str)) -> Result<()> {
        self.visit_items(|name, _| f(name))
    }

    /// Like [`Group::visit`], also passing each object.
    pub fn visit_items(&self, mut f: impl FnMut(&str, &Object)) -> Result<()> {
        let mut stack = vec![self.path.clone()];
        self.visit_rec("", &mut stack, &mut f)
    }

    fn visit_rec(
        &self,
        prefix: &str,
        stack: &mut Vec<String>,
        f: &mut dyn FnMut(&str, &Object),
    ) -> Result<()> {
        for (name, _) in &self.data.members {
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let obj = self.get(name)?;
            f(&rel, &obj);
            if let Object::Group(g) = &obj {
                // A soft link back to an ancestor would recurse forever.
                if !stack.contains(&g.path) {
                    stack.push(g.path.clone());
                    g.visit_rec(&rel, stack, f)?;
                    stack.pop();
                }
            }
        }
        Ok(())
    }

    fn resolve(&self, path: &str, mode: Mode) -> Result<Resolved> {
        let shared = &self.shared;
        let ObjectPath { absolute, steps } = parse_object_path(path);
        let (mut cur_path, mut cur) = if absolute {
            ("/".to_string(), shared.root_data()?)
        } else {
            (self.path.clone(), self.data.clone())
        };
        let mut steps: std::collections::VecDeque<Step> = steps.into();
        if steps.is_empty() && mode == Mode::Link {
            return Err(not_found(path, "a group reached by '/' or '.' has no link"));
        }
        let mut hops = 0;
        while let Some(step) = steps.pop_front() {
            let last = steps.is_empty();
            let name = match step {
                Step::Parent => {
                    let p = parent_of(&cur_path).to_string();
                    cur = shared.group_at(&p)?;
                    cur_path = p;
                    if last && mode == Mode::Link {
                        return Err(not_found(path, "'..' has no link"));
                    }
                    continue;
                }
                Step::Name(n) => n,
            };
            if !cur.members.iter().any(|(n, _)| *n == name) {
                return Err(not_found(
                    path,
                    &format!("no member {name:?} in {cur_path}"),
                ));
            }
            if last && mode == Mode::Contains {
                return Ok(Resolved::Exists(true));
            }
            let member_path = join(&cur_path, &name);
            let loaded = shared
                .load_member(&cur, &name, &member_path)?
                .ok_or_else(|| not_found(path, "member vanished"))?;
            if last && mode == Mode::Link {
                return Ok(Resolved::Link(match loaded {
                    Loaded::SoftLink(t) => Link::Soft(t),
                    _ => Link::Hard,
                }));
            }
            match loaded {
                Loaded::Group(g) => {
                    cur = g;
                    cur_path = member_path;
                }
                Loaded::Dataset(d) => {
                    if last {
                        return Ok(Resolved::Object(Object::Dataset(
                            shared.dataset_handle(member_path, d),
                        )));
                    }
                    return Err(not_found(
                        path,
                        &format!("{member_path} is a dataset, not a group"),
                    ));
                }
                Loaded::SoftLink(target) => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(Error::InvalidPath {
                            path: path.to_string(),
                            reason: format!("more than {MAX_LINK_HOPS} soft links (cycle?)"),
                        });
                    }
                    let t = parse_object_path(&target);
                    if t.absolute {
                        cur = shared.root_data()?;
                        cur_path = "/".to_string();
                    }
                    for s in t.steps.into_iter().rev() {
                        steps.push_front(s);
                    }
                }
                Loaded::Unknown => {
                    return Err(Error::TypeMismatch {
                        expected: "group or dataset".to_string(),
                        found: format!("unsupported object at {member_path}"),
                    });
                }
            }
        }
        match mode {
            Mode::Contains => Ok(Resolved::Exists(true)),
            _ => Ok(Resolved::Object(Object::Group(
                shared.group_handle(cur_path, cur),
            ))),
        }
    }
}
