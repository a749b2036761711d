//! HDF5 object maps (PROTOCOL.md §3.3-3.6): a plan of the whole answer is built first (so
//! any unsupported type is reported before a byte is written), then written out, with
//! inline dataset contents streamed piece by piece.

use std::ffi::CStr;
use std::os::raw::{c_char, c_void};

use hdf5_metno_sys as hdf5_sys;
use hdf5_sys::h5::{H5_index_t, H5_iter_order_t, herr_t, hsize_t};
use hdf5_sys::h5a::{H5Aget_space, H5Aget_type, H5Aopen, H5Aread};
use hdf5_sys::h5d::{H5Dget_space, H5Dget_type};
use hdf5_sys::h5g::{H5G_info_t, H5Gget_info};
use hdf5_sys::h5i::{H5I_type_t, H5Iget_type, hid_t};
// The 1.10 API (deprecated, still built by libhdf5 1.12 to 2.x, `hdf5-static` included).
#[allow(deprecated)]
use hdf5_sys::h5l::{H5L_info1_t, H5L_type_t, H5Literate1};
use hdf5_sys::h5o::H5Oopen;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdfstream_protocol::RequestError;

use super::ffi::{
    Id, attribute_names, c_string, c_text, link_value, locked, simple_space, space_shape,
};
use super::not_found;
use super::read::{
    Buffer, Reclaim, StreamError, element_count, emit_elements, stream_selection, whole,
};
use super::types::{Layout, MemType, mem_type};
use hdfstream_protocol::Sink;

/// Groups are expanded at most this deep, whatever `max_depth` says.
const MAX_NESTING: u32 = 64;
/// Most objects one answer may describe.
const MAX_NODES: usize = 200_000;

/// Options of an object request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expand {
    /// Group expansion depth.
    pub(crate) max_depth: u32,
    /// Inline datasets up to this many bytes.
    pub(crate) data_size_limit: u64,
}

/// A dataset ready to be described (and maybe streamed).
#[derive(Debug)]
pub(crate) struct DatasetPlan {
    /// Encoded attributes in name order.
    pub(crate) attrs: Vec<(String, Vec<u8>)>,
    /// The open dataset.
    pub(crate) id: Id,
    /// Its file dataspace.
    pub(crate) space: Id,
    /// Memory type to read with.
    pub(crate) mem: MemType,
    /// Shape (`[0]` stands for a null dataspace).
    pub(crate) shape: Vec<u64>,
    /// Whether contents are inlined.
    pub(crate) inline: bool,
}

/// One object of the answer.
#[derive(Debug)]
pub(crate) enum Node {
    /// A group: attributes and members (`None` = nil).
    Group {
        /// Encoded attributes in name order.
        attrs: Vec<(String, Vec<u8>)>,
        /// Members in native link order.
        members: Vec<(String, Option<Node>)>,
    },
    /// A dataset.
    Dataset(Box<DatasetPlan>),
    /// A soft link (never followed).
    SoftLink(String),
    /// A named datatype or unknown link class.
    Unknown,
}

struct Planner {
    opts: Expand,
    nodes: usize,
}

/// Plans the answer for the object `path` of `file` (no slice).
pub(crate) fn plan(file: &Id, path: &str, opts: Expand) -> Result<Node, RequestError> {
    let cpath = c_string(path).ok_or_else(|| not_found("Failed to open object"))?;
    locked(|| {
        // SAFETY: valid file id and C string.
        let obj = Id::new(unsafe { H5Oopen(file.raw(), cpath.as_ptr(), H5P_DEFAULT) })
            .ok_or_else(|| not_found(format!("Failed to open object: {path}")))?;
        let mut planner = Planner { opts, nodes: 0 };
        planner
            .object(obj, path, 0)?
            .ok_or_else(|| not_found(format!("Failed to open object: {path}")))
    })
}

impl Planner {
    /// Plans an open object at `depth`; `None` when it is not a group or dataset.
    fn object(&mut self, obj: Id, path: &str, depth: u32) -> Result<Option<Node>, RequestError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES || depth > MAX_NESTING {
            return Err(not_found(
                "Object tree too large to describe; lower max_depth",
            ));
        }
        // SAFETY: valid identifier.
        match unsafe { H5Iget_type(obj.raw()) } {
            H5I_type_t::H5I_GROUP => self.group(obj, path, depth).map(Some),
            H5I_type_t::H5I_DATASET => {
                let plan = dataset_plan(obj, path, Some(self.opts.data_size_limit))?;
                Ok(Some(Node::Dataset(Box::new(plan))))
            }
            _ => Ok(None),
        }
    }

    fn group(&mut self, obj: Id, path: &str, depth: u32) -> Result<Node, RequestError> {
        let attrs = attributes(&obj, path)?;
        let mut info = H5G_info_t::default();
        // SAFETY: valid group id and out pointer.
        if unsafe { H5Gget_info(obj.raw(), &mut info) } < 0 {
            return Err(not_found(format!("Failed to read group {path}")));
        }
        let links = links(&obj).ok_or_else(|| not_found(format!("Failed to list group {path}")))?;
        let encode = depth == 0 || (info.nlinks <= 20 && depth < self.opts.max_depth);
        let mut members = Vec::with_capacity(links.len());
        for link in links {
            if !encode {
                members.push((link.name, None));
                continue;
            }
            let child_path = join(path, &link.name);
            let node = match link.kind {
                H5L_type_t::H5L_TYPE_SOFT => Some(Node::SoftLink(soft_value(&obj, &link)?)),
                H5L_type_t::H5L_TYPE_HARD | H5L_type_t::H5L_TYPE_EXTERNAL => {
                    let cname =
                        c_string(&link.name).ok_or_else(|| not_found("Link name with NUL byte"))?;
                    // SAFETY: valid group id and C string.
                    match Id::new(unsafe { H5Oopen(obj.raw(), cname.as_ptr(), H5P_DEFAULT) }) {
                        None if link.kind == H5L_type_t::H5L_TYPE_EXTERNAL => Some(Node::Unknown),
                        None => {
                            return Err(not_found(format!("Failed to open object: {child_path}")));
                        }
                        Some(child) => {
                            // SAFETY: valid identifier.
                            let t = unsafe { H5Iget_type(child.raw()) };
                            if t == H5I_type_t::H5I_GROUP && depth + 1 > self.opts.max_depth {
                                None
                            } else {
                                Some(
                                    self.object(child, &child_path, depth + 1)?
                                        .unwrap_or(Node::Unknown),
                                )
                            }
                        }
                    }
                }
                _ => Some(Node::Unknown),
            };
            members.push((link.name, node));
        }
        Ok(Node::Group { attrs, members })
    }
}

/// Opens the pieces needed to describe or read dataset `obj`. `limit` = inline limit.
pub(crate) fn dataset_plan(
    obj: Id,
    path: &str,
    limit: Option<u64>,
) -> Result<DatasetPlan, RequestError> {
    let attrs = attributes(&obj, path)?;
    // SAFETY: valid dataset id.
    let ftype = Id::new(unsafe { H5Dget_type(obj.raw()) })
        .ok_or_else(|| not_found(format!("Failed to read the type of {path}")))?;
    // SAFETY: as above.
    let space = Id::new(unsafe { H5Dget_space(obj.raw()) })
        .ok_or_else(|| not_found(format!("Failed to read the shape of {path}")))?;
    let mem = mem_type(ftype.raw())
        .map_err(|why| not_found(format!("Unsupported type of dataset {path}: {why}")))?;
    let shape = space_shape(space.raw()).unwrap_or_else(|| vec![0]);
    let n = element_count(&shape).ok_or_else(|| not_found("Dataset too large"))?;
    let inline = limit.is_some_and(|l| n.checked_mul(mem.size as u64).is_some_and(|b| b <= l));
    Ok(DatasetPlan {
        attrs,
        id: obj,
        space,
        mem,
        shape,
        inline,
    })
}

fn join(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

struct Link {
    name: String,
    kind: H5L_type_t,
    val_size: usize,
}

unsafe extern "C" fn collect_link(
    _group: hid_t,
    name: *const c_char,
    info: *const H5L_info1_t,
    data: *mut c_void,
) -> herr_t {
    if name.is_null() || info.is_null() || data.is_null() {
        return -1;
    }
    // SAFETY: libhdf5 passes valid pointers; `data` is the `Vec<Link>` given below.
    let (links, name, mut info) =
        unsafe { (&mut *data.cast::<Vec<Link>>(), CStr::from_ptr(name), *info) };
    // SAFETY: reading the union member matching the link class.
    let val_size = unsafe { *info.u.val_size() };
    links.push(Link {
        name: name.to_string_lossy().into_owned(),
        kind: info.type_,
        val_size,
    });
    0
}

/// Links of a group in native name-index order.
#[allow(deprecated)]
fn links(group: &Id) -> Option<Vec<Link>> {
    let mut links: Vec<Link> = Vec::new();
    let mut idx: hsize_t = 0;
    // SAFETY: the callback only touches `links`.
    let r = unsafe {
        H5Literate1(
            group.raw(),
            H5_index_t::H5_INDEX_NAME,
            H5_iter_order_t::H5_ITER_NATIVE,
            &mut idx,
            Some(collect_link),
            (&mut links as *mut Vec<Link>).cast(),
        )
    };
    (r >= 0).then_some(links)
}

fn soft_value(group: &Id, link: &Link) -> Result<String, RequestError> {
    let cname = c_string(&link.name).ok_or_else(|| not_found("Link name with NUL byte"))?;
    let value = link_value(group, &cname, link.val_size)
        .ok_or_else(|| not_found(format!("Failed to read soft link {}", link.name)))?;
    Ok(c_text(&value))
}

/// Attributes of an object in ascending name order, each encoded as an array value.
fn attributes(obj: &Id, path: &str) -> Result<Vec<(String, Vec<u8>)>, RequestError> {
    let names = attribute_names(obj)
        .ok_or_else(|| not_found(format!("Failed to list attributes of {path}")))?;
    names
        .into_iter()
        .map(|name| {
            let bytes = attribute(obj, &name).map_err(|why| {
                not_found(format!("Unable to read attribute {name} of {path}: {why}"))
            })?;
            Ok((name, bytes))
        })
        .collect()
}

/// Reads one attribute and encodes it as an ndarray or vlen map.
fn attribute(obj: &Id, name: &str) -> Result<Vec<u8>, String> {
    let cname = c_string(name).ok_or("name with NUL byte")?;
    // SAFETY (block): valid identifiers, buffers sized for the element count.
    let attr = Id::new(unsafe { H5Aopen(obj.raw(), cname.as_ptr(), H5P_DEFAULT) })
        .ok_or("unable to open")?;
    let ftype = Id::new(unsafe { H5Aget_type(attr.raw()) }).ok_or("unable to read type")?;
    let space = Id::new(unsafe { H5Aget_space(attr.raw()) }).ok_or("unable to read shape")?;
    let mem = mem_type(ftype.raw())?;
    let extent = space_shape(space.raw());
    let null = extent.is_none();
    let shape = extent.unwrap_or_else(|| vec![0]);
    let n = element_count(&shape).ok_or("too many elements")?;
    let bytes = usize::try_from(n.saturating_mul(mem.size as u64)).map_err(|_| "too large")?;
    let mut buf = Buffer::new(bytes);
    if n > 0 && unsafe { H5Aread(attr.raw(), mem.id.raw(), buf.as_mut_ptr()) } < 0 {
        return Err("read failed".to_owned());
    }
    // The reclaim space must describe the buffer; a null dataspace holds nothing.
    let rspace = if null || n == 0 {
        simple_space(&[0])
    } else {
        simple_space(&[n])
    }
    .ok_or("unable to create a dataspace")?;
    let guard = Reclaim {
        mem: &mem,
        space: rspace,
        buf,
    };
    let mut out: Vec<u8> = Vec::new();
    {
        let mut sink = Sink::new(&mut out, hdfstream_protocol::MAX_BIN_LEN);
        match mem.layout {
            Layout::Fixed => sink.ndarray_header(&mem.dtype, &shape, bytes as u64),
            _ => sink.vlen_header(&shape, u32::try_from(n).map_err(|_| "too many elements")?),
        }
        emit_elements(&mut sink, &mem, guard.buf.bytes()).map_err(|e| e.to_string())?;
        sink.flush().map_err(|e| e.to_string())?;
    }
    drop(guard);
    Ok(out)
}

/// Writes a planned node.
pub(crate) fn write_node(
    sink: &mut Sink<'_>,
    node: &Node,
    decode_jobs: usize,
) -> Result<(), StreamError> {
    match node {
        Node::Group { attrs, members } => {
            sink.map(3);
            sink.str("hdf5_object");
            sink.str("group");
            write_attrs(sink, attrs)?;
            sink.str("members");
            sink.map(members.len() as u32);
            for (name, m) in members {
                sink.str(name);
                match m {
                    None => sink.nil(),
                    Some(n) => write_node(sink, n, decode_jobs)?,
                }
                sink.maybe_flush()?;
            }
        }
        Node::Dataset(d) => {
            sink.map(if d.inline { 6 } else { 5 });
            sink.str("hdf5_object");
            sink.str("dataset");
            write_attrs(sink, &d.attrs)?;
            sink.str("type");
            sink.descriptor(&d.mem.dtype);
            sink.str("kind");
            sink.str(d.mem.dtype.kind());
            sink.str("shape");
            sink.shape(&d.shape);
            if d.inline {
                sink.str("data");
                stream_selection(sink, &d.id, &d.space, &d.mem, &whole(&d.shape), decode_jobs)?;
            }
        }
        Node::SoftLink(target) => {
            sink.map(2);
            sink.str("hdf5_object");
            sink.str("soft_link");
            sink.str("target");
            sink.str(target);
        }
        Node::Unknown => {
            sink.map(1);
            sink.str("hdf5_object");
            sink.str("unknown");
        }
    }
    sink.maybe_flush()?;
    Ok(())
}

fn write_attrs(sink: &mut Sink<'_>, attrs: &[(String, Vec<u8>)]) -> Result<(), StreamError> {
    sink.str("attributes");
    sink.map(attrs.len() as u32);
    for (name, bytes) in attrs {
        sink.str(name);
        sink.raw(bytes)?;
    }
    Ok(())
}
