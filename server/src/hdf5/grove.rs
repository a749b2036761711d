//! The HDF5 side of the h5grove-compatible API (`crate::http::h5grove`): entity lookup with
//! h5grove's link resolution, metadata as h5grove 4.0 describes it, attribute values, dataset
//! selections decoded into JSON, raw bytes or `.npy`, and h5grove's statistics.
//!
//! Every function here is blocking and takes the libhdf5 lock for its libhdf5 calls; the
//! answers are built in memory, so every read is bounded first (the element limit the HTTP
//! layer passes, `Limits::max_h5grove_elements`, and 16 bytes per allowed element).

use std::ffi::CStr;
use std::io::Write;
use std::os::raw::{c_char, c_uint, c_void};
use std::sync::Arc;

use hdf5_metno_sys as hdf5_sys;
use hdf5_sys::h5::{H5_index_t, H5_iter_order_t};
use hdf5_sys::h5a::{H5Aget_space, H5Aget_type, H5Aopen, H5Aread};
use hdf5_sys::h5d::{H5D_layout_t, H5Dget_create_plist, H5Dget_space, H5Dget_type, H5Dread};
use hdf5_sys::h5i::{H5I_type_t, H5Iget_type, hid_t};
#[allow(deprecated)]
use hdf5_sys::h5l::{H5L_info1_t, H5L_type_t, H5Lget_info1, H5Lunpack_elink_val, H5Lvisit1};
use hdf5_sys::h5o::{H5Oexists_by_name, H5Oopen};
use hdf5_sys::h5p::{H5P_DEFAULT, H5Pget_chunk, H5Pget_filter2, H5Pget_layout, H5Pget_nfilters};
use hdf5_sys::h5s::{H5S_SELECT_SET, H5Sselect_hyperslab};
use hdf5_sys::h5t::{
    H5T_class_t, H5T_order_t, H5T_sign_t, H5Tget_array_dims2, H5Tget_array_ndims, H5Tget_class,
    H5Tget_cset, H5Tget_member_index, H5Tget_member_type, H5Tget_member_value, H5Tget_nmembers,
    H5Tget_order, H5Tget_sign, H5Tget_size, H5Tget_strpad, H5Tget_super, H5Tget_tag,
    H5Tis_variable_str,
};
use hdfstream_protocol::{Dtype, RequestError};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Hdf5Files;
use super::ffi::{
    Id, attribute_names, c_string, c_text, link_names, link_value, locked, member_name,
    push_link_name, simple_space, space_shape, take_h5_string,
};
use super::read::{Buffer, Reclaim};
use super::types::mem_type;

fn error(status: u16, message: impl Into<String>) -> RequestError {
    RequestError {
        status,
        message: message.into(),
    }
}

/// Which soft and external links `/meta` resolves (h5grove's `resolve_links`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolve {
    /// Never: links are described as links.
    None,
    /// Links whose target exists (the default); dangling ones are described as links.
    OnlyValid,
    /// All: a dangling link is a 404.
    All,
}

impl Resolve {
    /// h5grove's parsing of the `resolve_links` argument (case-insensitive).
    pub(crate) fn parse(arg: Option<&str>) -> Result<Self, RequestError> {
        let Some(raw) = arg else {
            return Ok(Self::OnlyValid);
        };
        match raw.to_lowercase().as_str() {
            "true" | "all" => Ok(Self::All),
            "false" | "none" => Ok(Self::None),
            "only_valid" => Ok(Self::OnlyValid),
            _ => Err(error(
                422,
                format!(
                    "{raw} is not a valid value for link resolution. Accepted values are: all, none or only_valid"
                ),
            )),
        }
    }
}

/// What an HDF5 path names.
enum Entity {
    Group(Id),
    Dataset(Id),
    Datatype(Id),
    Soft(String),
    External { file: String, path: String },
}

/// Last segment of an h5grove path (`""` for `/`).
fn entity_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// h5grove's `hdf_path_join`.
fn path_join(prefix: &str, name: &str) -> String {
    if prefix == "/" {
        format!("/{name}")
    } else {
        format!("{}/{name}", prefix.trim_end_matches('/'))
    }
}

fn not_valid_path(path: &str, file_name: &str) -> RequestError {
    error(404, format!("{path} is not a valid path in {file_name}"))
}

/// Opens the object at `cpath` and classifies it.
fn open_object(file: &Id, cpath: &CStr) -> Option<Entity> {
    // SAFETY: valid file id and C string.
    let obj = Id::new(unsafe { H5Oopen(file.raw(), cpath.as_ptr(), H5P_DEFAULT) })?;
    // SAFETY: valid identifier.
    Some(match unsafe { H5Iget_type(obj.raw()) } {
        H5I_type_t::H5I_GROUP => Entity::Group(obj),
        H5I_type_t::H5I_DATASET => Entity::Dataset(obj),
        _ => Entity::Datatype(obj),
    })
}

/// h5grove's `get_entity_from_file`, except that external links are never followed (their
/// targets may lie outside the served tree): they are always described as links, and a 404
/// with `Resolve::All`.
#[allow(deprecated)]
fn lookup(
    file: &Id,
    path: &str,
    resolve: Resolve,
    file_name: &str,
) -> Result<Entity, RequestError> {
    let cpath = c_string(path).ok_or_else(|| not_valid_path(path, file_name))?;
    if path == "/" {
        return open_object(file, &cpath).ok_or_else(|| not_valid_path(path, file_name));
    }
    if path.is_empty() {
        return Err(not_valid_path(path, file_name));
    }
    let mut info = H5L_info1_t::default();
    // SAFETY: valid ids, `info` is written by the call.
    if unsafe { H5Lget_info1(file.raw(), cpath.as_ptr(), &mut info, H5P_DEFAULT) } < 0 {
        return Err(not_valid_path(path, file_name));
    }
    // SAFETY: the union member for soft and external links.
    let val_size = unsafe { *info.u.val_size() };
    let unresolved = |what: &str| {
        error(
            404,
            format!("Cannot resolve {what} at {path} of {file_name}"),
        )
    };
    match info.type_ {
        H5L_type_t::H5L_TYPE_HARD => {
            open_object(file, &cpath).ok_or_else(|| not_valid_path(path, file_name))
        }
        H5L_type_t::H5L_TYPE_SOFT => {
            if resolve != Resolve::None {
                // SAFETY: valid ids.
                if unsafe { H5Oexists_by_name(file.raw(), cpath.as_ptr(), H5P_DEFAULT) } > 0
                    && let Some(entity) = open_object(file, &cpath)
                {
                    return Ok(entity);
                }
                if resolve == Resolve::All {
                    return Err(unresolved("soft link"));
                }
            }
            let value = link_value(file, &cpath, val_size)
                .ok_or_else(|| error(404, format!("Unable to read the soft link {path}")))?;
            Ok(Entity::Soft(c_text(&value)))
        }
        H5L_type_t::H5L_TYPE_EXTERNAL => {
            if resolve == Resolve::All {
                return Err(unresolved("external link"));
            }
            let value = link_value(file, &cpath, val_size)
                .ok_or_else(|| error(404, format!("Unable to read the external link {path}")))?;
            let mut flags: c_uint = 0;
            let mut fname: *const c_char = std::ptr::null();
            let mut opath: *const c_char = std::ptr::null();
            // SAFETY: `value` is the link value; the out pointers point into it.
            let r = unsafe {
                H5Lunpack_elink_val(
                    value.as_ptr().cast(),
                    value.len(),
                    &mut flags,
                    &mut fname,
                    &mut opath,
                )
            };
            if r < 0 || fname.is_null() || opath.is_null() {
                return Err(error(
                    404,
                    format!("Unable to read the external link {path}"),
                ));
            }
            // SAFETY: NUL-terminated strings inside `value`, which is still alive.
            let (f, p) = unsafe { (CStr::from_ptr(fname), CStr::from_ptr(opath)) };
            Ok(Entity::External {
                file: f.to_string_lossy().into_owned(),
                path: p.to_string_lossy().into_owned(),
            })
        }
        _ => Err(not_valid_path(path, file_name)),
    }
}

// ---------------------------------------------------------------------------------------
// Type descriptors
// ---------------------------------------------------------------------------------------

fn is_big_endian(ty: hid_t) -> bool {
    // SAFETY: valid type id.
    unsafe { H5Tget_order(ty) == H5T_order_t::H5T_ORDER_BE }
}

/// Whether an enum type is h5py's boolean (members FALSE = 0 and TRUE = 1).
fn is_bool_enum(ty: hid_t) -> bool {
    // SAFETY: valid type id.
    if unsafe { H5Tget_class(ty) } != H5T_class_t::H5T_ENUM || unsafe { H5Tget_nmembers(ty) } != 2 {
        return false;
    }
    let Some(members) = enum_members(ty) else {
        return false;
    };
    let mut sorted = members;
    sorted.sort();
    sorted == [("FALSE".to_owned(), 0), ("TRUE".to_owned(), 1)]
}

/// Members of an enum type with their integer values.
fn enum_members(ty: hid_t) -> Option<Vec<(String, i128)>> {
    // SAFETY: valid type ids; each value buffer holds the base type's size.
    let base = Id::new(unsafe { H5Tget_super(ty) })?;
    let size = unsafe { H5Tget_size(base.raw()) };
    let signed = unsafe { H5Tget_sign(base.raw()) } == H5T_sign_t::H5T_SGN_2;
    let be = is_big_endian(base.raw());
    let n = u32::try_from(unsafe { H5Tget_nmembers(ty) }).ok()?;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let name = member_name(ty, i)?;
        let mut buf = [0u8; 16];
        if size == 0 || size > 16 {
            return None;
        }
        if unsafe { H5Tget_member_value(ty, i, buf.as_mut_ptr().cast::<c_void>()) } < 0 {
            return None;
        }
        let bytes = &mut buf[..size];
        if be {
            bytes.reverse();
        }
        out.push((name, int_value(bytes, signed)));
    }
    Some(out)
}

/// A little-endian integer of 1 to 16 bytes.
fn int_value(bytes: &[u8], signed: bool) -> i128 {
    let mut v: u128 = 0;
    for (i, b) in bytes.iter().enumerate() {
        v |= u128::from(*b) << (8 * i);
    }
    let bits = 8 * bytes.len() as u32;
    if bits == 0 {
        return 0;
    }
    if signed && bits < 128 && (v >> (bits - 1)) & 1 == 1 {
        (v | (!0u128 << bits)) as i128
    } else {
        v as i128
    }
}

/// numpy's `dtype.str` (or field dict for compounds) of the type h5py maps `ty` to.
fn numpy_dtype(ty: hid_t) -> Value {
    // SAFETY (whole function): valid type ids, owned results.
    let class = unsafe { H5Tget_class(ty) };
    let size = unsafe { H5Tget_size(ty) };
    let order = |ty: hid_t, size: usize| {
        if size == 1 {
            '|'
        } else if is_big_endian(ty) {
            '>'
        } else {
            '<'
        }
    };
    let text = match class {
        H5T_class_t::H5T_INTEGER | H5T_class_t::H5T_BITFIELD => {
            let signed = class == H5T_class_t::H5T_INTEGER
                && unsafe { H5Tget_sign(ty) } == H5T_sign_t::H5T_SGN_2;
            format!(
                "{}{}{size}",
                order(ty, size),
                if signed { 'i' } else { 'u' }
            )
        }
        H5T_class_t::H5T_FLOAT => format!("{}f{size}", order(ty, size)),
        H5T_class_t::H5T_STRING => {
            if unsafe { H5Tis_variable_str(ty) } > 0 {
                "|O".to_owned()
            } else {
                format!("|S{size}")
            }
        }
        H5T_class_t::H5T_ENUM => {
            if is_bool_enum(ty) {
                "|b1".to_owned()
            } else {
                match Id::new(unsafe { H5Tget_super(ty) }) {
                    Some(base) => return numpy_dtype(base.raw()),
                    None => format!("|V{size}"),
                }
            }
        }
        H5T_class_t::H5T_COMPOUND => {
            let n = u32::try_from(unsafe { H5Tget_nmembers(ty) }).unwrap_or(0);
            let mut fields = Map::new();
            for i in 0..n {
                let name = member_name(ty, i).unwrap_or_default();
                if let Some(mt) = Id::new(unsafe { H5Tget_member_type(ty, i) }) {
                    fields.insert(name, numpy_dtype(mt.raw()));
                }
            }
            return Value::Object(fields);
        }
        H5T_class_t::H5T_VLEN | H5T_class_t::H5T_REFERENCE => "|O".to_owned(),
        _ => format!("|V{size}"),
    };
    Value::String(text)
}

/// h5grove's `get_type_metadata`.
fn type_meta(ty: hid_t) -> Value {
    // SAFETY (whole function): valid type ids, owned results.
    let class = unsafe { H5Tget_class(ty) };
    let mut m = Map::new();
    m.insert("class".into(), json!(class as i32));
    m.insert("dtype".into(), numpy_dtype(ty));
    m.insert("size".into(), json!(unsafe { H5Tget_size(ty) }));
    let order = || json!(unsafe { H5Tget_order(ty) } as i32);
    let base = || Id::new(unsafe { H5Tget_super(ty) }).map_or(Value::Null, |b| type_meta(b.raw()));
    match class {
        H5T_class_t::H5T_INTEGER => {
            m.insert("order".into(), order());
            m.insert("sign".into(), json!(unsafe { H5Tget_sign(ty) } as i32));
        }
        H5T_class_t::H5T_FLOAT | H5T_class_t::H5T_BITFIELD => {
            m.insert("order".into(), order());
        }
        H5T_class_t::H5T_STRING => {
            m.insert("cset".into(), json!(unsafe { H5Tget_cset(ty) } as i32));
            m.insert("strpad".into(), json!(unsafe { H5Tget_strpad(ty) } as i32));
            m.insert("vlen".into(), json!(unsafe { H5Tis_variable_str(ty) } > 0));
        }
        H5T_class_t::H5T_OPAQUE => {
            let tag = unsafe { take_h5_string(H5Tget_tag(ty)) }.unwrap_or_default();
            m.insert("tag".into(), json!(tag));
        }
        H5T_class_t::H5T_COMPOUND => {
            let n = u32::try_from(unsafe { H5Tget_nmembers(ty) }).unwrap_or(0);
            let members: Vec<Value> = (0..n)
                .map(|i| {
                    let mut member =
                        Id::new(unsafe { H5Tget_member_type(ty, i) }).map_or_else(Map::new, |mt| {
                            match type_meta(mt.raw()) {
                                Value::Object(o) => o,
                                _ => Map::new(),
                            }
                        });
                    member.insert("name".into(), json!(member_name(ty, i).unwrap_or_default()));
                    Value::Object(member)
                })
                .collect();
            m.insert("members".into(), Value::Array(members));
        }
        H5T_class_t::H5T_ENUM => {
            let members: Map<String, Value> = enum_members(ty)
                .unwrap_or_default()
                .into_iter()
                .map(|(name, v)| (name, int_json(v)))
                .collect();
            m.insert("members".into(), Value::Object(members));
            m.insert("base".into(), base());
        }
        H5T_class_t::H5T_VLEN => {
            m.insert("base".into(), base());
        }
        H5T_class_t::H5T_ARRAY => {
            let ndims = unsafe { H5Tget_array_ndims(ty) };
            let mut dims = vec![0u64; usize::try_from(ndims).unwrap_or(0)];
            if !dims.is_empty() {
                unsafe { H5Tget_array_dims2(ty, dims.as_mut_ptr()) };
            }
            m.insert("dims".into(), json!(dims));
            m.insert("base".into(), base());
        }
        _ => {}
    }
    Value::Object(m)
}

fn int_json(v: i128) -> Value {
    if let Ok(i) = i64::try_from(v) {
        json!(i)
    } else if let Ok(u) = u64::try_from(v) {
        json!(u)
    } else {
        json!(v as f64)
    }
}

fn shape_json(shape: Option<&[u64]>) -> Value {
    shape.map_or(Value::Null, |s| json!(s))
}

// ---------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------

/// Attribute names of `obj`, in code-point order (h5grove sorts them).
fn attr_names(obj: &Id) -> Result<Vec<String>, RequestError> {
    let mut names =
        attribute_names(obj).ok_or_else(|| error(404, "Unable to list the attributes"))?;
    names.sort();
    Ok(names)
}

fn open_attr(obj: &Id, name: &str) -> Result<Id, RequestError> {
    let cname = c_string(name).ok_or_else(|| error(404, format!("No attribute {name}")))?;
    // SAFETY: valid ids.
    Id::new(unsafe { H5Aopen(obj.raw(), cname.as_ptr(), H5P_DEFAULT) })
        .ok_or_else(|| error(404, format!("No attribute {name}")))
}

fn attributes_meta(obj: &Id) -> Result<Value, RequestError> {
    let mut list = Vec::new();
    for name in attr_names(obj)? {
        let attr = open_attr(obj, &name)?;
        // SAFETY: valid attribute id.
        let ty = Id::new(unsafe { H5Aget_type(attr.raw()) })
            .ok_or_else(|| error(404, format!("Unable to read the type of attribute {name}")))?;
        // SAFETY: as above.
        let space = Id::new(unsafe { H5Aget_space(attr.raw()) })
            .ok_or_else(|| error(404, format!("Unable to read the shape of attribute {name}")))?;
        list.push(json!({
            "name": name,
            "shape": shape_json(space_shape(space.raw()).as_deref()),
            "type": type_meta(ty.raw()),
        }));
    }
    Ok(Value::Array(list))
}

fn dataset_meta(ds: &Id) -> Result<Map<String, Value>, RequestError> {
    let fail = |what: &str| error(404, format!("Unable to read the {what} of the dataset"));
    // SAFETY (block): valid ids, buffers sized as declared.
    let ty = Id::new(unsafe { H5Dget_type(ds.raw()) }).ok_or_else(|| fail("type"))?;
    let space = Id::new(unsafe { H5Dget_space(ds.raw()) }).ok_or_else(|| fail("shape"))?;
    let dcpl = Id::new(unsafe { H5Dget_create_plist(ds.raw()) }).ok_or_else(|| fail("layout"))?;
    let shape = space_shape(space.raw());
    let chunks = if unsafe { H5Pget_layout(dcpl.raw()) } == H5D_layout_t::H5D_CHUNKED {
        let rank = shape.as_ref().map_or(0, Vec::len).max(1);
        let mut dims = vec![0u64; rank];
        let r = unsafe { H5Pget_chunk(dcpl.raw(), rank as i32, dims.as_mut_ptr()) };
        dims.truncate(usize::try_from(r).unwrap_or(0));
        json!(dims)
    } else {
        Value::Null
    };
    let nfilters = unsafe { H5Pget_nfilters(dcpl.raw()) };
    let filters = if nfilters <= 0 {
        Value::Null
    } else {
        let list: Vec<Value> = (0..nfilters as u32)
            .map(|i| {
                let mut flags: c_uint = 0;
                let mut nelmts: usize = 0;
                let mut config: c_uint = 0;
                let mut name = [0u8; 257];
                let id = unsafe {
                    H5Pget_filter2(
                        dcpl.raw(),
                        i,
                        &mut flags,
                        &mut nelmts,
                        std::ptr::null_mut(),
                        name.len() - 1,
                        name.as_mut_ptr().cast(),
                        &mut config,
                    )
                };
                json!({"id": id, "name": c_text(&name)})
            })
            .collect();
        Value::Array(list)
    };
    let mut m = Map::new();
    m.insert("chunks".into(), chunks);
    m.insert("filters".into(), filters);
    m.insert("shape".into(), shape_json(shape.as_deref()));
    m.insert("type".into(), type_meta(ty.raw()));
    Ok(m)
}

/// Group members' names in name order.
fn member_names(group: &Id) -> Result<Vec<String>, RequestError> {
    link_names(group).ok_or_else(|| error(404, "Unable to list the group members"))
}

/// h5grove's `metadata(depth)` of the entity at `path`.
fn entity_meta(
    file: &Id,
    path: &str,
    entity: &Entity,
    depth: u32,
    file_name: &str,
) -> Result<Value, RequestError> {
    let mut m = Map::new();
    m.insert("name".into(), json!(entity_name(path)));
    match entity {
        Entity::Soft(target) => {
            m.insert("kind".into(), json!("soft_link"));
            m.insert("target_path".into(), json!(target));
        }
        Entity::External { file, path } => {
            m.insert("kind".into(), json!("external_link"));
            m.insert("target_file".into(), json!(file));
            m.insert("target_path".into(), json!(path));
        }
        Entity::Dataset(ds) => {
            m.insert("kind".into(), json!("dataset"));
            m.insert("attributes".into(), attributes_meta(ds)?);
            m.extend(dataset_meta(ds)?);
        }
        Entity::Datatype(dt) => {
            m.insert("kind".into(), json!("datatype"));
            m.insert("attributes".into(), attributes_meta(dt)?);
            m.insert("type".into(), type_meta(dt.raw()));
        }
        Entity::Group(group) => {
            m.insert("kind".into(), json!("group"));
            m.insert("attributes".into(), attributes_meta(group)?);
            if depth > 0 {
                let mut children = Vec::new();
                for name in member_names(group)? {
                    let child = path_join(path, &name);
                    let found = lookup(file, &child, Resolve::OnlyValid, file_name)?;
                    children.push(entity_meta(file, &child, &found, depth - 1, file_name)?);
                }
                m.insert("children".into(), Value::Array(children));
            }
        }
    }
    Ok(Value::Object(m))
}

fn to_json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec())
}

// ---------------------------------------------------------------------------------------
// Selections
// ---------------------------------------------------------------------------------------

/// One dimension of a selection: `count` elements from `start` every `step`; `keep` is
/// false for an integer index (the dimension is dropped from the result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DimSel {
    start: u64,
    count: u64,
    step: u64,
    keep: bool,
}

/// A member of h5grove's selection syntax, before it meets a dataset's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    Index(i64),
    Slice {
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
    },
}

/// A parsed selection string (`None` = the whole dataset, h5py's `dataset[()]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selection(Option<Vec<Member>>);

fn bad_selection(text: &str, why: impl std::fmt::Display) -> RequestError {
    error(400, format!("Invalid selection {text:?}: {why}"))
}

/// Python's `int()` on a selection number (surrounding whitespace allowed).
fn py_int(text: &str, whole: &str) -> Result<i64, RequestError> {
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_selection(whole, format!("{text:?} is not an integer")));
    }
    t.parse::<i64>()
        .map_err(|_| bad_selection(whole, format!("{text:?} is out of range")))
}

impl Selection {
    /// Parses h5grove's selection syntax (`parse_slice`): comma-separated members, each an
    /// integer or `start:stop[:step]` with optional parts.
    pub(crate) fn parse(text: Option<&str>) -> Result<Self, RequestError> {
        let Some(text) = text else {
            return Ok(Self(None));
        };
        let members = text
            .split(',')
            .map(|m| {
                let parts: Vec<&str> = m.split(':').collect();
                let opt = |s: &str| -> Result<Option<i64>, RequestError> {
                    if s.is_empty() {
                        Ok(None)
                    } else {
                        py_int(s, text).map(Some)
                    }
                };
                match parts.as_slice() {
                    [one] => Ok(Member::Index(py_int(one, text)?)),
                    [start, stop] => Ok(Member::Slice {
                        start: Some(opt(start)?.unwrap_or(0)),
                        stop: opt(stop)?,
                        step: None,
                    }),
                    [start, stop, step] => Ok(Member::Slice {
                        start: opt(start)?,
                        stop: opt(stop)?,
                        step: opt(step)?,
                    }),
                    _ => Err(bad_selection(text, format!("{m} is not a valid slice"))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(Some(members)))
    }

    /// The per-dimension selection on a dataset of `shape`, as h5py applies it.
    fn dims(&self, shape: &[u64]) -> Result<Vec<DimSel>, RequestError> {
        let full = |&len: &u64| DimSel {
            start: 0,
            count: len,
            step: 1,
            keep: true,
        };
        let Some(members) = &self.0 else {
            return Ok(shape.iter().map(full).collect());
        };
        if members.len() > shape.len() {
            return Err(error(
                400,
                format!(
                    "The selection has too many members ({}) to slice a {}D dataset",
                    members.len(),
                    shape.len()
                ),
            ));
        }
        let mut dims = Vec::with_capacity(shape.len());
        for (i, &len) in shape.iter().enumerate() {
            let Some(member) = members.get(i) else {
                dims.push(full(&len));
                continue;
            };
            let len_i = i128::from(len);
            dims.push(match *member {
                Member::Index(index) => {
                    let mut at = i128::from(index);
                    if at < 0 {
                        at += len_i;
                    }
                    if !(0..len_i).contains(&at) {
                        return Err(error(
                            400,
                            format!(
                                "Index ({index}) out of range for dimension {i} of length {len}"
                            ),
                        ));
                    }
                    DimSel {
                        start: at as u64,
                        count: 1,
                        step: 1,
                        keep: true,
                    }
                    .drop_dim()
                }
                Member::Slice { start, stop, step } => {
                    let step = step.unwrap_or(1);
                    if step < 1 {
                        return Err(error(400, format!("Step must be >= 1 (got {step})")));
                    }
                    // Python's slice.indices for a positive step.
                    let clamp = |v: Option<i64>, default: i128| -> i128 {
                        match v {
                            None => default,
                            Some(v) => {
                                let v = i128::from(v);
                                let v = if v < 0 { v + len_i } else { v };
                                v.clamp(0, len_i)
                            }
                        }
                    };
                    let a = clamp(start, 0);
                    let b = clamp(stop, len_i).max(a);
                    let step_i = i128::from(step);
                    let count = (b - a + step_i - 1) / step_i;
                    DimSel {
                        start: a as u64,
                        count: count as u64,
                        step: step as u64,
                        keep: true,
                    }
                }
            });
        }
        Ok(dims)
    }
}

impl DimSel {
    fn drop_dim(mut self) -> Self {
        self.keep = false;
        self
    }
}

/// Number of elements a selection reads from a dataset of `shape` (`None`: overflow).
fn selected_count(dims: &[DimSel]) -> Option<u64> {
    dims.iter()
        .try_fold(1u64, |acc, d| acc.checked_mul(d.count))
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

/// How one element of a read buffer is decoded (packed native memory layout).
#[derive(Clone, Debug, PartialEq)]
enum Elem {
    Int {
        size: usize,
        signed: bool,
    },
    Float {
        size: usize,
    },
    Bool,
    FixedStr {
        len: usize,
    },
    VlenStr,
    VlenSeq(Box<Elem>),
    Compound(Vec<Elem>),
    Array {
        count: usize,
        dims: Vec<u64>,
        base: Box<Elem>,
    },
}

impl Elem {
    /// Built from the file type and the memory type [`mem_type`] chose for it.
    fn of(file_type: hid_t, dtype: &Dtype) -> Result<Self, String> {
        // SAFETY (whole function): valid type ids.
        let class = unsafe { H5Tget_class(file_type) };
        if class == H5T_class_t::H5T_ENUM
            && is_bool_enum(file_type)
            && unsafe { H5Tget_size(file_type) } == 1
        {
            return Ok(Self::Bool);
        }
        Ok(match dtype {
            Dtype::Int { size, .. } => Self::Int {
                size: usize::from(*size),
                signed: true,
            },
            Dtype::UInt { size, .. } => Self::Int {
                size: usize::from(*size),
                signed: false,
            },
            Dtype::Float { size, .. } => Self::Float {
                size: usize::from(*size),
            },
            Dtype::FixedString { len } => Self::FixedStr { len: *len },
            Dtype::VlenString => Self::VlenStr,
            Dtype::Array { base, dims } => {
                let sup = Id::new(unsafe { H5Tget_super(file_type) }).ok_or("unreadable array")?;
                let count = dims
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(usize::try_from(d).ok()?))
                    .ok_or("array type too large")?;
                Self::Array {
                    count,
                    dims: dims.clone(),
                    base: Box::new(Self::of(sup.raw(), base)?),
                }
            }
            Dtype::Compound(fields) => {
                let mut members = Vec::with_capacity(fields.len());
                for (name, dt) in fields {
                    let cname = c_string(name).ok_or("compound member name with NUL")?;
                    let idx = unsafe { H5Tget_member_index(file_type, cname.as_ptr()) };
                    let idx = u32::try_from(idx).map_err(|_| "unknown compound member")?;
                    let mt = Id::new(unsafe { H5Tget_member_type(file_type, idx) })
                        .ok_or("unreadable compound member")?;
                    members.push(Self::of(mt.raw(), dt)?);
                }
                Self::Compound(members)
            }
            Dtype::Vlen(inner) => {
                let sup = Id::new(unsafe { H5Tget_super(file_type) }).ok_or("unreadable vlen")?;
                Self::VlenSeq(Box::new(Self::of(sup.raw(), inner)?))
            }
        })
    }

    /// Bytes of one element in memory.
    fn size(&self) -> usize {
        match self {
            Self::Int { size, .. } | Self::Float { size } => *size,
            Self::Bool => 1,
            Self::FixedStr { len } => *len,
            Self::VlenStr => std::mem::size_of::<*const c_char>(),
            Self::VlenSeq(_) => std::mem::size_of::<hdf5_sys::h5t::hvl_t>(),
            Self::Compound(members) => members.iter().map(Self::size).sum(),
            Self::Array { count, base, .. } => count * base.size(),
        }
    }

    /// Numbers and booleans (what h5grove's `dtype=safe`, `bin` and `npy` accept).
    fn is_numeric(&self) -> bool {
        matches!(self, Self::Int { .. } | Self::Float { .. } | Self::Bool)
    }

    /// numpy's `dtype.str` for a numeric element in the given byte order.
    fn descr(&self, big_endian: bool) -> String {
        let order = if big_endian { '>' } else { '<' };
        match self {
            Self::Bool => "|b1".to_owned(),
            Self::Int { size: 1, signed } => format!("|{}1", if *signed { 'i' } else { 'u' }),
            Self::Int { size, signed } => {
                format!("{order}{}{size}", if *signed { 'i' } else { 'u' })
            }
            Self::Float { size } => format!("{order}f{size}"),
            _ => "|O".to_owned(),
        }
    }
}

/// Values read from a dataset or attribute: elements decoded to owned form.
pub(crate) struct Values {
    /// Shape of the result (`None` for a null dataspace, `[]` for a scalar).
    shape: Option<Vec<u64>>,
    elem: Elem,
    /// Whether the file stores the (numeric) elements big-endian.
    big_endian: bool,
    /// Packed native bytes of fixed-size elements.
    bytes: Vec<u8>,
    /// Variable-length elements (strings, sequences), each already in JSON.
    cells: Vec<Vec<u8>>,
}

/// Reads `n` elements with `read` into owned values.
fn read_values(
    file_type: hid_t,
    shape: Option<Vec<u64>>,
    n: u64,
    read: impl FnOnce(hid_t, *mut c_void) -> bool,
) -> Result<Values, RequestError> {
    let mem = mem_type(file_type).map_err(|why| error(400, format!("Unsupported type: {why}")))?;
    let elem = Elem::of(file_type, &mem.dtype)
        .map_err(|why| error(400, format!("Unsupported type: {why}")))?;
    let big_endian = numeric_big_endian(file_type);
    let len = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_mul(mem.size))
        .ok_or_else(|| error(413, "Selection too large"))?;
    let mut buf = Buffer::new(len);
    if n > 0 && !read(mem.id.raw(), buf.as_mut_ptr()) {
        return Err(error(500, "Unable to read the values"));
    }
    let space = simple_space(&[n]).ok_or_else(|| error(500, "Unable to create a dataspace"))?;
    let guard = Reclaim {
        mem: &mem,
        space,
        buf,
    };
    let bytes = guard.buf.bytes();
    let mut cells = Vec::new();
    let mut fixed = Vec::new();
    let mut shape = shape;
    let mut elem = elem;
    if let (Some([]), Elem::VlenSeq(inner)) = (shape.as_deref(), &elem)
        && inner.is_numeric()
        && bytes.len() == elem.size()
    {
        // h5py returns the one sequence of a scalar selection as a numeric array.
        let (len, p) = (word_at(bytes, 0), word_at(bytes, WORD) as *const u8);
        let inner = (**inner).clone();
        if !p.is_null() && len > 0 {
            // SAFETY: the sequence's `len` elements, alive until the guard reclaims them.
            fixed = unsafe { std::slice::from_raw_parts(p, len * inner.size()) }.to_vec();
        }
        shape = Some(vec![len as u64]);
        elem = inner;
    } else if matches!(elem, Elem::VlenStr | Elem::VlenSeq(_)) {
        let size = elem.size();
        cells.reserve(bytes.len() / size);
        for cell in bytes.chunks_exact(size) {
            let mut json = Vec::new();
            // SAFETY: libhdf5 filled each cell with a `char*` or an `hvl_t` whose memory
            // lives until the guard reclaims it.
            unsafe { write_vlen(&mut json, &elem, cell) };
            cells.push(json);
        }
    } else {
        fixed = bytes.to_vec();
    }
    drop(guard);
    let mut values = Values {
        shape,
        elem,
        big_endian,
        bytes: fixed,
        cells,
    };
    values.unfold_arrays();
    Ok(values)
}

/// Size of a pointer or `size_t`.
const WORD: usize = std::mem::size_of::<usize>();

/// The native-endian word at `at` of `bytes` (0 beyond the end).
fn word_at(bytes: &[u8], at: usize) -> usize {
    let mut raw = [0u8; WORD];
    if let Some(src) = bytes.get(at..at + WORD) {
        raw.copy_from_slice(src);
    }
    usize::from_ne_bytes(raw)
}

/// Writes a variable-length element (`char*` or `hvl_t` in `cell`) as JSON.
///
/// # Safety
/// `cell` must hold a pointer (or `hvl_t`) filled by a libhdf5 read with `elem`'s memory
/// type, not yet reclaimed.
unsafe fn write_vlen(out: &mut Vec<u8>, elem: &Elem, cell: &[u8]) {
    let word = |at: usize| word_at(cell, at);
    match elem {
        Elem::VlenStr => {
            let p = word(0) as *const c_char;
            if p.is_null() {
                write_json(out, "");
            } else {
                // SAFETY: a NUL-terminated string (caller's guarantee).
                write_json(out, &unsafe { CStr::from_ptr(p) }.to_string_lossy());
            }
        }
        Elem::VlenSeq(inner) => {
            let len = word(0);
            let p = word(WORD) as *const u8;
            let size = inner.size().max(1);
            out.push(b'[');
            if !p.is_null() && len > 0 {
                // SAFETY: `len` elements of `size` bytes (caller's guarantee).
                let data = unsafe { std::slice::from_raw_parts(p, len * size) };
                for (i, c) in data.chunks_exact(size).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_elem(out, inner, c);
                }
            }
            out.push(b']');
        }
        _ => out.extend_from_slice(b"null"),
    }
}

/// Whether a numeric (integer, float or enum) file type is big-endian.
fn numeric_big_endian(ty: hid_t) -> bool {
    // SAFETY: valid type id.
    match unsafe { H5Tget_class(ty) } {
        H5T_class_t::H5T_INTEGER | H5T_class_t::H5T_FLOAT => is_big_endian(ty),
        H5T_class_t::H5T_ENUM | H5T_class_t::H5T_ARRAY => {
            Id::new(unsafe { H5Tget_super(ty) }).is_some_and(|b| numeric_big_endian(b.raw()))
        }
        _ => false,
    }
}

/// Reads a whole attribute, refused with 413 beyond `max_elements` elements (or their bytes).
fn read_attribute(obj: &Id, name: &str, max_elements: u64) -> Result<Values, RequestError> {
    let attr = open_attr(obj, name)?;
    // SAFETY (block): valid ids.
    let ty = Id::new(unsafe { H5Aget_type(attr.raw()) })
        .ok_or_else(|| error(404, format!("Unable to read the type of attribute {name}")))?;
    let space = Id::new(unsafe { H5Aget_space(attr.raw()) })
        .ok_or_else(|| error(404, format!("Unable to read the shape of attribute {name}")))?;
    let shape = space_shape(space.raw());
    let n = shape
        .as_ref()
        .map_or(Some(0), |s| {
            s.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
        })
        .ok_or_else(|| error(413, "Attribute too large"))?;
    // SAFETY: valid type id.
    let size = unsafe { H5Tget_size(ty.raw()) } as u64;
    if n > max_elements || n.saturating_mul(size) > max_elements.saturating_mul(BYTES_PER_ELEMENT) {
        return Err(too_large(n, max_elements));
    }
    read_values(ty.raw(), shape, n, |mem, buf| {
        // SAFETY: `buf` holds `n` elements of `mem`.
        unsafe { H5Aread(attr.raw(), mem, buf) >= 0 }
    })
    .map_err(|e| error(e.status, format!("Attribute {name}: {}", e.message)))
}

/// Reads the selection `dims` of dataset `ds` (whose shape is `shape`; `None` = null).
fn read_dataset(ds: &Id, shape: Option<&[u64]>, dims: &[DimSel]) -> Result<Values, RequestError> {
    // SAFETY (block): valid ids; the buffer holds the selected elements.
    let ty = Id::new(unsafe { H5Dget_type(ds.raw()) })
        .ok_or_else(|| error(404, "Unable to read the type of the dataset"))?;
    let Some(shape) = shape else {
        return read_values(ty.raw(), None, 0, |_, _| true);
    };
    let n = selected_count(dims).ok_or_else(|| error(413, "Selection too large"))?;
    let out_shape: Vec<u64> = dims.iter().filter(|d| d.keep).map(|d| d.count).collect();
    let fspace = Id::new(unsafe { H5Dget_space(ds.raw()) })
        .ok_or_else(|| error(404, "Unable to read the shape of the dataset"))?;
    let mspace = if shape.is_empty() {
        // SAFETY: creating a scalar dataspace.
        Id::new(unsafe { hdf5_sys::h5s::H5Screate(hdf5_sys::h5s::H5S_class_t::H5S_SCALAR) })
    } else {
        simple_space(&[n])
    }
    .ok_or_else(|| error(500, "Unable to create a dataspace"))?;
    if !shape.is_empty() && n > 0 {
        let start: Vec<u64> = dims.iter().map(|d| d.start).collect();
        let stride: Vec<u64> = dims.iter().map(|d| d.step).collect();
        let count: Vec<u64> = dims.iter().map(|d| d.count).collect();
        let ok = unsafe {
            H5Sselect_hyperslab(
                fspace.raw(),
                H5S_SELECT_SET,
                start.as_ptr(),
                stride.as_ptr(),
                count.as_ptr(),
                std::ptr::null(),
            )
        } >= 0;
        if !ok {
            return Err(error(400, "Unable to select the slice"));
        }
    }
    read_values(ty.raw(), Some(out_shape), n, |mem, buf| unsafe {
        H5Dread(ds.raw(), mem, mspace.raw(), fspace.raw(), H5P_DEFAULT, buf) >= 0
    })
}

/// Writes one element as JSON.
fn write_elem(out: &mut Vec<u8>, elem: &Elem, bytes: &[u8]) {
    match elem {
        Elem::Int { size, signed } => {
            let v = int_value(&bytes[..*size], *signed);
            let _ = write!(out, "{v}");
        }
        Elem::Float { size: 4 } => {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[..4]);
            write_json(out, &f32::from_le_bytes(b));
        }
        Elem::Float { .. } => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[..8]);
            write_json(out, &f64::from_le_bytes(b));
        }
        Elem::Bool => out.extend_from_slice(if bytes[0] != 0 { b"true" } else { b"false" }),
        Elem::FixedStr { len } => {
            let s = &bytes[..*len];
            let end = s.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            write_json(out, &String::from_utf8_lossy(&s[..end]));
        }
        Elem::VlenStr | Elem::VlenSeq(_) => out.extend_from_slice(b"null"),
        Elem::Compound(members) => {
            out.push(b'[');
            let mut at = 0;
            for (i, m) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_elem(out, m, &bytes[at..]);
                at += m.size();
            }
            out.push(b']');
        }
        Elem::Array { dims, base, .. } => {
            let size = base.size();
            let mut cells = bytes.chunks_exact(size.max(1));
            write_nested(out, dims, &mut |out| {
                if let Some(cell) = cells.next() {
                    write_elem(out, base, cell);
                }
            });
        }
    }
}

/// JSON through serde_json (f32 keeps its shortest f32 form; NaN and infinities are null).
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let mut ser = serde_json::Serializer::new(&mut *out);
    if v.serialize(&mut ser).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Nested JSON lists of `shape`, each leaf written by `leaf` in C order.
fn write_nested(out: &mut Vec<u8>, shape: &[u64], leaf: &mut dyn FnMut(&mut Vec<u8>)) {
    match shape.split_first() {
        None => leaf(out),
        Some((&n, rest)) => {
            out.push(b'[');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                write_nested(out, rest, leaf);
            }
            out.push(b']');
        }
    }
}

impl Values {
    /// h5py reads array-typed elements of numbers as extra trailing dimensions of a numeric
    /// array; do the same. numpy scalars (0-d results) are always in native byte order.
    fn unfold_arrays(&mut self) {
        if let Some(shape) = &mut self.shape {
            while let Elem::Array { dims, base, .. } = &self.elem {
                if !base.is_numeric() && !matches!(**base, Elem::Array { .. }) {
                    break;
                }
                shape.extend_from_slice(dims);
                let base = (**base).clone();
                self.elem = base;
            }
            if shape.is_empty() {
                self.big_endian = false;
            }
        }
    }

    /// The values as JSON: nested lists of the shape (flat when `flatten` and not a
    /// scalar), a bare value for a scalar, `null` for a null dataspace.
    fn json(&self, flatten: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(shape) = &self.shape else {
            return b"null".to_vec();
        };
        let flat;
        let shape: &[u64] = if flatten && !shape.is_empty() {
            flat = [shape.iter().product::<u64>()];
            &flat
        } else {
            shape
        };
        if matches!(self.elem, Elem::VlenStr | Elem::VlenSeq(_)) {
            let mut cells = self.cells.iter();
            write_nested(&mut out, shape, &mut |out| {
                if let Some(cell) = cells.next() {
                    out.extend_from_slice(cell);
                }
            });
        } else {
            let size = self.elem.size().max(1);
            let mut cells = self.bytes.chunks_exact(size);
            write_nested(&mut out, shape, &mut |out| {
                if let Some(cell) = cells.next() {
                    write_elem(out, &self.elem, cell);
                }
            });
        }
        out
    }

    /// Raw bytes of numeric values, in the file's byte order unless `safe` (little-endian).
    fn raw(&self, safe: bool) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        if self.big_endian && !safe {
            let size = self.elem.size().max(1);
            bytes.chunks_exact_mut(size).for_each(<[u8]>::reverse);
        }
        bytes
    }

    /// A numpy `.npy` (format 1.0) file of numeric values, as `numpy.save` writes it.
    fn npy(&self, safe: bool, flatten: bool) -> Vec<u8> {
        let shape = self.shape.clone().unwrap_or_default();
        let shape = if flatten && !shape.is_empty() {
            vec![shape.iter().product::<u64>()]
        } else {
            shape
        };
        let shape_repr = match shape.as_slice() {
            [] => "()".to_owned(),
            [one] => format!("({one},)"),
            many => format!(
                "({})",
                many.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_repr}, }}",
            self.elem.descr(self.big_endian && !safe)
        );
        if let Some(first) = shape.first() {
            let digits = first.to_string().len();
            header.push_str(&" ".repeat(21usize.saturating_sub(digits)));
        }
        let hlen = header.len() + 1;
        let pad = 64 - ((8 + 2 + hlen) % 64);
        let mut out = Vec::with_capacity(10 + hlen + pad + self.bytes.len());
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&u16::try_from(hlen + pad).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend(std::iter::repeat_n(b' ', pad));
        out.push(b'\n');
        out.extend_from_slice(&self.raw(safe));
        out
    }

    /// Numeric values as f64 (or f32 for float32), for the statistics.
    fn stats(&self) -> Result<Value, RequestError> {
        if !self.elem.is_numeric() {
            return Err(error(400, "Statistics need numeric data"));
        }
        let size = self.elem.size().max(1);
        let cells = self.bytes.chunks_exact(size);
        Ok(match self.elem {
            Elem::Float { size: 4 } => {
                let v: Vec<f32> = cells
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .filter(|x| x.is_finite())
                    .collect();
                float_stats32(&v)
            }
            Elem::Float { .. } => {
                let v: Vec<f64> = cells
                    .map(|c| {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&c[..8]);
                        f64::from_le_bytes(b)
                    })
                    .filter(|x| x.is_finite())
                    .collect();
                float_stats64(&v)
            }
            Elem::Int { size, signed } => {
                let v: Vec<i128> = cells.map(|c| int_value(&c[..size], signed)).collect();
                int_stats(&v)
            }
            _ => {
                let v: Vec<i128> = cells.map(|c| i128::from(c[0] != 0)).collect();
                int_stats(&v)
            }
        })
    }
}

// ---------------------------------------------------------------------------------------
// Statistics, computed as numpy does (pairwise summation) so that the floats match.
// ---------------------------------------------------------------------------------------

/// numpy's pairwise summation (`pairwise_sum` of its add reduction), generic over f32/f64.
fn pairwise<T>(a: &[T]) -> T
where
    T: Copy + std::ops::Add<Output = T> + From<f32>,
{
    let n = a.len();
    if n < 8 {
        let mut res = T::from(-0.0);
        for &x in a {
            res = res + x;
        }
        res
    } else if n <= 128 {
        let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
        let whole = n - n % 8;
        let mut i = 8;
        while i < whole {
            for j in 0..8 {
                r[j] = r[j] + a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[whole..] {
            res = res + x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise(&a[..n2]) + pairwise(&a[n2..])
    }
}

/// The sum of an add reduction: the identity plus the pairwise sum.
fn reduce_sum<T>(a: &[T]) -> T
where
    T: Copy + std::ops::Add<Output = T> + From<f32>,
{
    T::from(0.0) + pairwise(a)
}

/// numpy's buffered reduction of integers cast to f64: chunks of 8192 elements.
fn reduce_sum_cast(a: &[f64]) -> f64 {
    a.chunks(8192).fold(0.0, |acc, c| acc + pairwise(c))
}

fn empty_stats() -> Value {
    json!({
        "strict_positive_min": null, "positive_min": null,
        "min": null, "max": null, "mean": null, "std": null,
    })
}

fn float_stats64(v: &[f64]) -> Value {
    if v.is_empty() {
        return empty_stats();
    }
    let n = v.len() as f64;
    let mean = reduce_sum(v) / n;
    let sq: Vec<f64> = v.iter().map(|x| (x - mean) * (x - mean)).collect();
    let std = (reduce_sum(&sq) / n).sqrt();
    let min = |it: &mut dyn Iterator<Item = f64>| it.reduce(f64::min);
    json!({
        "strict_positive_min": min(&mut v.iter().copied().filter(|&x| x > 0.0)),
        "positive_min": min(&mut v.iter().copied().filter(|&x| x >= 0.0)),
        "min": min(&mut v.iter().copied()),
        "max": v.iter().copied().reduce(f64::max),
        "mean": mean,
        "std": std,
    })
}

fn float_stats32(v: &[f32]) -> Value {
    if v.is_empty() {
        return empty_stats();
    }
    let n = v.len() as f64;
    // numpy divides the float32 sum by an intp count in float64, then casts back.
    let mean = (f64::from(reduce_sum(v)) / n) as f32;
    let sq: Vec<f32> = v.iter().map(|x| (x - mean) * (x - mean)).collect();
    let var = (f64::from(reduce_sum(&sq)) / n) as f32;
    let std = var.sqrt();
    let min = |it: &mut dyn Iterator<Item = f32>| it.reduce(f32::min).map(f64::from);
    json!({
        "strict_positive_min": min(&mut v.iter().copied().filter(|&x| x > 0.0)),
        "positive_min": min(&mut v.iter().copied().filter(|&x| x >= 0.0)),
        "min": min(&mut v.iter().copied()),
        "max": v.iter().copied().reduce(f32::max).map(f64::from),
        "mean": f64::from(mean),
        "std": f64::from(std),
    })
}

fn int_stats(v: &[i128]) -> Value {
    if v.is_empty() {
        return empty_stats();
    }
    let n = v.len() as f64;
    let as_f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    let mean = reduce_sum_cast(&as_f) / n;
    let sq: Vec<f64> = as_f.iter().map(|x| (x - mean) * (x - mean)).collect();
    let std = (reduce_sum(&sq) / n).sqrt();
    let opt = |x: Option<i128>| x.map_or(Value::Null, int_json);
    // Python's int() of a float truncates toward zero.
    json!({
        "strict_positive_min": opt(v.iter().copied().filter(|&x| x > 0).min()),
        "positive_min": opt(v.iter().copied().filter(|&x| x >= 0).min()),
        "min": opt(v.iter().copied().min()),
        "max": opt(v.iter().copied().max()),
        "mean": int_json(mean.trunc() as i128),
        "std": int_json(std.trunc() as i128),
    })
}

// ---------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------

/// Output format of `/data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// JSON (default).
    Json,
    /// Raw bytes.
    Bin,
    /// numpy `.npy`.
    Npy,
}

/// The options of a `/data` request.
#[derive(Clone, Debug)]
pub(crate) struct DataRequest {
    /// The selection.
    pub(crate) selection: Selection,
    /// Output format.
    pub(crate) format: Format,
    /// `dtype=safe`.
    pub(crate) safe: bool,
    /// `flatten=true`.
    pub(crate) flatten: bool,
}

impl Hdf5Files {
    /// Opens `file` and runs `work` on it under the libhdf5 lock.
    fn with_file<T>(
        &self,
        file: &std::path::Path,
        work: impl FnOnce(&Arc<Id>) -> Result<T, RequestError>,
    ) -> Result<T, RequestError> {
        let fid = self.open(file)?;
        locked(|| work(&fid))
    }

    /// `/meta`: h5grove's metadata of the entity at `path` (JSON bytes).
    pub(crate) fn grove_meta(
        &self,
        file: &std::path::Path,
        file_name: &str,
        path: &str,
        resolve: Resolve,
    ) -> Result<Vec<u8>, RequestError> {
        self.with_file(file, |fid| {
            let entity = lookup(fid, path, resolve, file_name)?;
            entity_meta(fid, path, &entity, 1, file_name).map(|v| to_json_bytes(&v))
        })
    }

    /// `/attr`: the values of the attributes (all, or those named by `keys`) as a JSON map.
    pub(crate) fn grove_attr(
        &self,
        file: &std::path::Path,
        file_name: &str,
        path: &str,
        keys: Option<&[String]>,
        max_elements: u64,
    ) -> Result<Vec<u8>, RequestError> {
        self.with_file(file, |fid| {
            let entity = lookup(fid, path, Resolve::OnlyValid, file_name)?;
            let obj = match &entity {
                Entity::Group(id) | Entity::Dataset(id) | Entity::Datatype(id) => id,
                _ => return Err(error(400, format!("{path} is not a resolved entity"))),
            };
            let names = match keys {
                Some(keys) => keys.to_vec(),
                None => attr_names(obj)?,
            };
            let mut out = b"{".to_vec();
            for (i, name) in names.iter().enumerate() {
                let values = read_attribute(obj, name, max_elements)?;
                if i > 0 {
                    out.push(b',');
                }
                write_json(&mut out, name);
                out.push(b':');
                out.extend_from_slice(&values.json(false));
            }
            out.push(b'}');
            Ok(out)
        })
    }

    /// Opens the dataset at `path` and reads the selection (at most `max_elements`).
    fn grove_values(
        fid: &Id,
        file_name: &str,
        path: &str,
        selection: &Selection,
        max_elements: u64,
    ) -> Result<Values, RequestError> {
        let entity = lookup(fid, path, Resolve::OnlyValid, file_name)?;
        let Entity::Dataset(ds) = entity else {
            return Err(error(400, format!("{path} is not a dataset")));
        };
        // SAFETY: valid dataset id.
        let space = Id::new(unsafe { H5Dget_space(ds.raw()) })
            .ok_or_else(|| error(404, "Unable to read the shape of the dataset"))?;
        let shape = space_shape(space.raw());
        let dims = match &shape {
            Some(shape) => selection.dims(shape)?,
            None if selection.0.is_some() => {
                return Err(error(
                    400,
                    "Cannot select from a dataset without a dataspace",
                ));
            }
            None => Vec::new(),
        };
        let n = selected_count(&dims).unwrap_or(u64::MAX);
        if n > max_elements {
            return Err(too_large(n, max_elements));
        }
        // SAFETY: valid dataset id.
        let ty = Id::new(unsafe { H5Dget_type(ds.raw()) })
            .ok_or_else(|| error(404, "Unable to read the type of the dataset"))?;
        // SAFETY: valid type id.
        let size = unsafe { H5Tget_size(ty.raw()) } as u64;
        let budget = max_elements.saturating_mul(BYTES_PER_ELEMENT);
        if n.saturating_mul(size) > budget {
            return Err(error(
                413,
                format!(
                    "The selection has {n} elements of {size} bytes, more than the {budget} bytes this server sends at once; select a smaller slice"
                ),
            ));
        }
        read_dataset(&ds, shape.as_deref(), &dims)
    }

    /// `/data`: the selected values in the requested format, and its media type.
    pub(crate) fn grove_data(
        &self,
        file: &std::path::Path,
        file_name: &str,
        path: &str,
        req: &DataRequest,
        max_elements: u64,
    ) -> Result<(Vec<u8>, &'static str), RequestError> {
        // Encoded outside the libhdf5 lock.
        let values = self.with_file(file, |fid| {
            Self::grove_values(fid, file_name, path, &req.selection, max_elements)
        })?;
        {
            let numeric = values.elem.is_numeric() && values.shape.is_some();
            if req.safe && !numeric {
                return Err(error(422, "Unsupported dtype safe for non-numeric data"));
            }
            match req.format {
                Format::Json => Ok((values.json(req.flatten), "application/json")),
                Format::Bin if numeric => Ok((values.raw(req.safe), "application/octet-stream")),
                Format::Npy if numeric => Ok((
                    values.npy(req.safe, req.flatten),
                    "application/octet-stream",
                )),
                Format::Bin => Err(error(
                    400,
                    "Unsupported encoding bin for non-numeric content",
                )),
                Format::Npy => Err(error(
                    422,
                    "Unsupported encoding npy for non-numeric content",
                )),
            }
        }
    }

    /// `/stats`: h5grove's statistics of the selected values (finite ones for floats).
    pub(crate) fn grove_stats(
        &self,
        file: &std::path::Path,
        file_name: &str,
        path: &str,
        selection: &Selection,
        max_elements: u64,
    ) -> Result<Vec<u8>, RequestError> {
        let values = self.with_file(file, |fid| {
            Self::grove_values(fid, file_name, path, selection, max_elements)
        })?;
        if values.shape.is_none() {
            return Err(error(400, "Statistics need numeric data"));
        }
        values.stats().map(|v| to_json_bytes(&v))
    }

    /// `/paths`: the group's path and the paths of every link below it, visited in name
    /// order (soft links are listed, not followed).
    #[allow(deprecated)]
    pub(crate) fn grove_paths(
        &self,
        file: &std::path::Path,
        file_name: &str,
        path: &str,
    ) -> Result<Vec<u8>, RequestError> {
        self.with_file(file, |fid| {
            let entity = lookup(fid, path, Resolve::OnlyValid, file_name)?;
            let Entity::Group(group) = entity else {
                return Err(error(400, format!("{path} is not a group")));
            };
            let mut names: Vec<String> = Vec::new();
            // SAFETY: the callback only touches `names`.
            let r = unsafe {
                H5Lvisit1(
                    group.raw(),
                    H5_index_t::H5_INDEX_NAME,
                    H5_iter_order_t::H5_ITER_INC,
                    Some(push_link_name),
                    (&mut names as *mut Vec<String>).cast(),
                )
            };
            if r < 0 {
                return Err(error(404, format!("Unable to walk {path}")));
            }
            let mut all = vec![path.to_owned()];
            all.extend(names.iter().map(|n| path_join(path, n)));
            Ok(to_json_bytes(&json!(all)))
        })
    }
}

/// Bytes per element of the element limit (wide elements count as several).
const BYTES_PER_ELEMENT: u64 = 16;

fn too_large(n: u64, max: u64) -> RequestError {
    error(
        413,
        format!(
            "The selection has {n} elements, more than the {max} this server sends at once; select a smaller slice"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(sel: &str, shape: &[u64]) -> Result<Vec<(u64, u64, u64, bool)>, u16> {
        Selection::parse(Some(sel))
            .and_then(|s| s.dims(shape))
            .map(|d| {
                d.iter()
                    .map(|d| (d.start, d.count, d.step, d.keep))
                    .collect()
            })
            .map_err(|e| e.status)
    }

    #[test]
    fn selections_follow_python_slicing() {
        assert_eq!(
            dims("0:10,2", &[20, 5]),
            Ok(vec![(0, 10, 1, true), (2, 1, 1, false)])
        );
        assert_eq!(dims("::2", &[5]), Ok(vec![(0, 3, 2, true)]));
        assert_eq!(
            dims("-1", &[5, 2]),
            Ok(vec![(4, 1, 1, false), (0, 2, 1, true)])
        );
        assert_eq!(dims("-3:", &[5]), Ok(vec![(2, 3, 1, true)]));
        assert_eq!(dims("1:100:3", &[10]), Ok(vec![(1, 3, 3, true)]));
        assert_eq!(dims("4:2", &[10]), Ok(vec![(4, 0, 1, true)]));
        assert_eq!(dims(" 1 : 3 ", &[10]), Ok(vec![(1, 2, 1, true)]));
        assert_eq!(dims("5", &[5]), Err(400));
        assert_eq!(dims("::0", &[5]), Err(400));
        assert_eq!(dims("0,0", &[5]), Err(400));
        assert_eq!(dims("a", &[5]), Err(400));
        assert_eq!(dims("", &[5]), Err(400));
        assert_eq!(dims("1:2:3:4", &[5]), Err(400));
    }

    #[test]
    fn pairwise_sum_matches_plain_sum_on_exact_values() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(reduce_sum(&v), 499_500.0);
        assert_eq!(int_value(&[0xff], true), -1);
        assert_eq!(int_value(&[0xff, 0x7f], true), 32767);
    }
}
