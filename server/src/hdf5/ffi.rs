//! Thin safe helpers over the raw libhdf5 API: owned identifiers and the global lock.
//!
//! Every libhdf5 call goes through [`locked`], which takes hdf5-metno's global reentrant
//! lock (the same one its high-level API uses), so this module can be mixed freely with
//! `hdf5_metno` calls made elsewhere in the process.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};

use hdf5_metno_sys as hdf5_sys;
use hdf5_sys::h5::{H5_index_t, H5_iter_order_t, H5free_memory, herr_t, hsize_t};
use hdf5_sys::h5a::{H5A_info_t, H5Aiterate2};
use hdf5_sys::h5i::{H5Idec_ref, hid_t};
use hdf5_sys::h5l::{H5L_info1_t, H5Lget_val, H5Literate1};
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::{H5S_SELECT_SET, H5Screate_simple, H5Sget_simple_extent_dims};
use hdf5_sys::h5s::{H5S_class_t, H5Sget_simple_extent_ndims, H5Sget_simple_extent_type};
use hdf5_sys::h5s::{H5Sselect_hyperslab, H5Sselect_none};
use hdf5_sys::h5t::H5Tget_member_name;

/// Runs `f` while holding the process-wide libhdf5 lock.
pub(crate) fn locked<T>(f: impl FnOnce() -> T) -> T {
    hdf5_metno::sync::sync(f)
}

/// An owned libhdf5 identifier, released (under the lock) when dropped.
#[derive(Debug)]
pub(crate) struct Id(hid_t);

impl Id {
    /// Wraps the result of a libhdf5 call that returns a new identifier (negative = failure).
    pub(crate) fn new(id: hid_t) -> Option<Self> {
        (id >= 0).then_some(Self(id))
    }

    /// The raw identifier, valid as long as `self` lives.
    pub(crate) fn raw(&self) -> hid_t {
        self.0
    }
}

impl Drop for Id {
    fn drop(&mut self) {
        let id = self.0;
        locked(|| {
            // SAFETY: `id` is a valid identifier owned by this value.
            unsafe { H5Idec_ref(id) };
        });
    }
}

/// A NUL-terminated copy of `s`, or `None` when it contains a NUL byte.
pub(crate) fn c_string(s: &str) -> Option<CString> {
    CString::new(s).ok()
}

/// A file path as libhdf5 wants it (raw bytes on Unix), or `None` when it contains a NUL.
#[cfg(unix)]
pub(crate) fn path_c_string(path: &std::path::Path) -> Option<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).ok()
}

/// A file path as libhdf5 wants it, or `None` when it is not Unicode or contains a NUL.
#[cfg(not(unix))]
pub(crate) fn path_c_string(path: &std::path::Path) -> Option<CString> {
    path.to_str().and_then(c_string)
}

/// Copies a C string allocated by libhdf5 and frees it.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string allocated by libhdf5.
pub(crate) unsafe fn take_h5_string(p: *mut c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: allocated by libhdf5.
    unsafe { H5free_memory(p.cast::<c_void>()) };
    Some(s)
}

/// Name of member `i` of a compound type.
pub(crate) fn member_name(ty: hid_t, i: u32) -> Option<String> {
    // SAFETY: `ty` is a valid compound type; the result is freed by `take_h5_string`.
    unsafe { take_h5_string(H5Tget_member_name(ty, i)) }
}

/// Shape of a dataspace: `None` for a null dataspace, `[]` for a scalar one.
pub(crate) fn space_shape(space: hid_t) -> Option<Vec<u64>> {
    // SAFETY: `space` is a valid dataspace identifier.
    let class = unsafe { H5Sget_simple_extent_type(space) };
    match class {
        H5S_class_t::H5S_SCALAR => Some(Vec::new()),
        H5S_class_t::H5S_SIMPLE => {
            // SAFETY: as above.
            let rank = unsafe { H5Sget_simple_extent_ndims(space) };
            let rank = usize::try_from(rank).ok()?;
            let mut dims = vec![0u64; rank];
            // SAFETY: `dims` has room for `rank` entries.
            let r = unsafe {
                H5Sget_simple_extent_dims(space, dims.as_mut_ptr(), std::ptr::null_mut())
            };
            (r >= 0).then_some(dims)
        }
        _ => None,
    }
}

/// A new simple dataspace with the given dimensions (all selected).
pub(crate) fn simple_space(dims: &[u64]) -> Option<Id> {
    let rank = i32::try_from(dims.len()).ok()?;
    // SAFETY: `dims` holds `rank` entries.
    Id::new(unsafe { H5Screate_simple(rank, dims.as_ptr(), std::ptr::null()) })
}

/// Selects exactly the block `start .. start + count` of `space`.
pub(crate) fn select_block(space: hid_t, start: &[u64], count: &[u64]) -> bool {
    // SAFETY: `start` and `count` have the rank of `space` (checked by the callers).
    unsafe {
        H5Sselect_none(space) >= 0
            && H5Sselect_hyperslab(
                space,
                H5S_SELECT_SET,
                start.as_ptr(),
                std::ptr::null(),
                count.as_ptr(),
                std::ptr::null(),
            ) >= 0
    }
}

/// The text of NUL-terminated `bytes` (all of them when there is no NUL), lossily decoded.
pub(crate) fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The value of the link `name` of `loc` (`size` bytes, as its link info says): the target
/// path of a soft link, the packed file and path of an external one.
pub(crate) fn link_value(loc: &Id, name: &CStr, size: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; size.max(1)];
    // SAFETY: `buf` holds `buf.len()` bytes.
    let r = unsafe {
        H5Lget_val(
            loc.raw(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            H5P_DEFAULT,
        )
    };
    (r >= 0).then_some(buf)
}

/// `H5Aiterate2` callback: pushes each attribute name onto the `Vec<String>` in `data`.
unsafe extern "C" fn push_attr_name(
    _loc: hid_t,
    name: *const c_char,
    _info: *const H5A_info_t,
    data: *mut c_void,
) -> herr_t {
    if name.is_null() || data.is_null() {
        return -1;
    }
    // SAFETY: valid pointers from libhdf5; `data` is the `Vec<String>` of `attribute_names`.
    let (names, name) = unsafe { (&mut *data.cast::<Vec<String>>(), CStr::from_ptr(name)) };
    names.push(name.to_string_lossy().into_owned());
    0
}

/// `H5Literate1` / `H5Lvisit1` callback: pushes each link name (a path below the start
/// group, for a visit) onto the `Vec<String>` in `data`.
pub(crate) unsafe extern "C" fn push_link_name(
    _group: hid_t,
    name: *const c_char,
    _info: *const H5L_info1_t,
    data: *mut c_void,
) -> herr_t {
    if name.is_null() || data.is_null() {
        return -1;
    }
    // SAFETY: valid pointers from libhdf5; `data` is a `Vec<String>` (see the callers).
    let (names, name) = unsafe { (&mut *data.cast::<Vec<String>>(), CStr::from_ptr(name)) };
    names.push(name.to_string_lossy().into_owned());
    0
}

/// Names of the attributes of `obj`, in ascending name-index order; `None` if libhdf5
/// cannot list them.
pub(crate) fn attribute_names(obj: &Id) -> Option<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    let mut idx: hsize_t = 0;
    // SAFETY: the callback only touches `names`.
    let r = unsafe {
        H5Aiterate2(
            obj.raw(),
            H5_index_t::H5_INDEX_NAME,
            H5_iter_order_t::H5_ITER_INC,
            &mut idx,
            Some(push_attr_name),
            (&mut names as *mut Vec<String>).cast(),
        )
    };
    (r >= 0).then_some(names)
}

/// Names of the links of `group`, in ascending name-index order; `None` if libhdf5 cannot
/// list them.
#[allow(deprecated)]
pub(crate) fn link_names(group: &Id) -> Option<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    let mut idx: hsize_t = 0;
    // SAFETY: the callback only touches `names`.
    let r = unsafe {
        H5Literate1(
            group.raw(),
            H5_index_t::H5_INDEX_NAME,
            H5_iter_order_t::H5_ITER_INC,
            &mut idx,
            Some(push_link_name),
            (&mut names as *mut Vec<String>).cast(),
        )
    };
    (r >= 0).then_some(names)
}
