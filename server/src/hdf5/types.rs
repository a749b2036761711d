//! Mapping of HDF5 file types to the packed native memory types the server reads with
//! (PROTOCOL.md §6), and to the wire [`Dtype`].

use hdf5_metno_sys as hdf5_sys;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5t::{
    H5T_C_S1, H5T_VARIABLE, H5T_class_t, H5T_direction_t, H5T_sign_t, H5T_str_t, H5Tarray_create2,
    H5Tcopy, H5Tcreate, H5Tget_array_dims2, H5Tget_array_ndims, H5Tget_class, H5Tget_cset,
    H5Tget_member_offset, H5Tget_member_type, H5Tget_native_type, H5Tget_nmembers, H5Tget_sign,
    H5Tget_size, H5Tget_super, H5Tinsert, H5Tis_variable_str, H5Tset_cset, H5Tset_size,
    H5Tset_strpad, H5Tvlen_create,
};
use hdfstream_protocol::{ByteOrder, Dtype};

use super::ffi::{Id, c_string, member_name};

/// Byte order of the machine, which is what native memory types use.
const NATIVE_ORDER: ByteOrder = if cfg!(target_endian = "little") {
    ByteOrder::Little
} else {
    ByteOrder::Big
};

/// How elements of a memory type are laid out and encoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Layout {
    /// Fixed-size packed elements, sent as an ndarray.
    Fixed,
    /// `char*` per element, sent as msgpack str entries of a vlen map.
    VlenString,
    /// `hvl_t` per element whose payload is fixed-size elements of `inner_size` bytes.
    Vlen {
        /// Size of one inner element.
        inner_size: usize,
    },
}

/// A memory type ready for `H5Dread`/`H5Aread`, plus its wire description.
#[derive(Debug)]
pub(crate) struct MemType {
    /// The libhdf5 memory type.
    pub(crate) id: Id,
    /// Size of one element in memory (pointer/`hvl_t` size for vlen types).
    pub(crate) size: usize,
    /// Wire type.
    pub(crate) dtype: Dtype,
    /// Memory layout class.
    pub(crate) layout: Layout,
}

/// Why a type cannot be served.
pub(crate) type Unsupported = String;

fn class_name(c: H5T_class_t) -> &'static str {
    match c {
        H5T_class_t::H5T_TIME => "time",
        H5T_class_t::H5T_BITFIELD => "bitfield",
        H5T_class_t::H5T_OPAQUE => "opaque",
        H5T_class_t::H5T_REFERENCE => "reference",
        _ => "unknown",
    }
}

fn new_id(id: hid_t, what: &str) -> Result<Id, Unsupported> {
    Id::new(id).ok_or_else(|| format!("unable to build the memory type for {what}"))
}

/// Builds the memory type for a file type. Must be called under the libhdf5 lock.
pub(crate) fn mem_type(file_type: hid_t) -> Result<MemType, Unsupported> {
    // SAFETY (whole function): `file_type` is a valid datatype identifier and every
    // identifier created here is owned by an `Id`.
    let class = unsafe { H5Tget_class(file_type) };
    match class {
        H5T_class_t::H5T_INTEGER | H5T_class_t::H5T_ENUM => {
            // Enums are read with their native enum type, whose memory layout is the base
            // integer's; libhdf5 cannot convert an enum to a plain integer.
            let native = new_id(
                unsafe { H5Tget_native_type(file_type, H5T_direction_t::H5T_DIR_ASCEND) },
                "an integer",
            )?;
            let int_ty = if class == H5T_class_t::H5T_ENUM {
                new_id(unsafe { H5Tget_super(native.raw()) }, "an enum base")?
            } else {
                new_id(unsafe { H5Tcopy(native.raw()) }, "an integer")?
            };
            let size = unsafe { H5Tget_size(int_ty.raw()) };
            let size8 = u8::try_from(size)
                .ok()
                .filter(|s| matches!(s, 1 | 2 | 4 | 8))
                .ok_or_else(|| format!("integer of {size} bytes"))?;
            let signed = unsafe { H5Tget_sign(int_ty.raw()) } == H5T_sign_t::H5T_SGN_2;
            let dtype = if signed {
                Dtype::Int {
                    size: size8,
                    order: NATIVE_ORDER,
                }
            } else {
                Dtype::UInt {
                    size: size8,
                    order: NATIVE_ORDER,
                }
            };
            Ok(MemType {
                id: native,
                size,
                dtype,
                layout: Layout::Fixed,
            })
        }
        H5T_class_t::H5T_FLOAT => {
            let native = new_id(
                unsafe { H5Tget_native_type(file_type, H5T_direction_t::H5T_DIR_ASCEND) },
                "a float",
            )?;
            let size = unsafe { H5Tget_size(native.raw()) };
            if size != 4 && size != 8 {
                return Err(format!("floating point type of {size} bytes"));
            }
            let dtype = Dtype::Float {
                size: size as u8,
                order: NATIVE_ORDER,
            };
            Ok(MemType {
                id: native,
                size,
                dtype,
                layout: Layout::Fixed,
            })
        }
        H5T_class_t::H5T_STRING => {
            let is_vlen = unsafe { H5Tis_variable_str(file_type) };
            if is_vlen < 0 {
                return Err("unreadable string type".to_owned());
            }
            let id = new_id(unsafe { H5Tcopy(*H5T_C_S1) }, "a string")?;
            let cset = unsafe { H5Tget_cset(file_type) };
            if is_vlen > 0 {
                let ok = unsafe {
                    H5Tset_size(id.raw(), H5T_VARIABLE) >= 0 && H5Tset_cset(id.raw(), cset) >= 0
                };
                if !ok {
                    return Err("unable to build a variable-length string type".to_owned());
                }
                let size = unsafe { H5Tget_size(id.raw()) };
                Ok(MemType {
                    id,
                    size,
                    dtype: Dtype::VlenString,
                    layout: Layout::VlenString,
                })
            } else {
                let len = unsafe { H5Tget_size(file_type) };
                let ok = unsafe {
                    H5Tset_size(id.raw(), len) >= 0
                        && H5Tset_strpad(id.raw(), H5T_str_t::H5T_STR_NULLPAD) >= 0
                        && H5Tset_cset(id.raw(), cset) >= 0
                };
                if !ok || len == 0 {
                    return Err(format!("fixed-length string of {len} bytes"));
                }
                Ok(MemType {
                    id,
                    size: len,
                    dtype: Dtype::FixedString { len },
                    layout: Layout::Fixed,
                })
            }
        }
        H5T_class_t::H5T_VLEN => {
            let sup = new_id(unsafe { H5Tget_super(file_type) }, "a vlen base")?;
            let inner = mem_type(sup.raw())?;
            if inner.layout != Layout::Fixed {
                return Err("variable-length sequence of variable-length elements".to_owned());
            }
            let id = new_id(unsafe { H5Tvlen_create(inner.id.raw()) }, "a vlen")?;
            let size = unsafe { H5Tget_size(id.raw()) };
            Ok(MemType {
                id,
                size,
                dtype: Dtype::Vlen(Box::new(inner.dtype)),
                layout: Layout::Vlen {
                    inner_size: inner.size,
                },
            })
        }
        H5T_class_t::H5T_ARRAY => {
            let sup = new_id(unsafe { H5Tget_super(file_type) }, "an array base")?;
            let base = mem_type(sup.raw())?;
            if base.layout != Layout::Fixed {
                return Err("array of variable-length elements".to_owned());
            }
            let ndims = unsafe { H5Tget_array_ndims(file_type) };
            let rank = u32::try_from(ndims).map_err(|_| "unreadable array type".to_owned())?;
            let mut dims = vec![0u64; rank as usize];
            if unsafe { H5Tget_array_dims2(file_type, dims.as_mut_ptr()) } < 0 {
                return Err("unreadable array type".to_owned());
            }
            let id = new_id(
                unsafe { H5Tarray_create2(base.id.raw(), rank, dims.as_ptr()) },
                "an array",
            )?;
            let size = unsafe { H5Tget_size(id.raw()) };
            Ok(MemType {
                id,
                size,
                dtype: Dtype::Array {
                    base: Box::new(base.dtype),
                    dims,
                },
                layout: Layout::Fixed,
            })
        }
        H5T_class_t::H5T_COMPOUND => compound(file_type),
        other => Err(format!("{} type", class_name(other))),
    }
}

/// Packed compound memory type with members in offset order.
fn compound(file_type: hid_t) -> Result<MemType, Unsupported> {
    // SAFETY: as in `mem_type`.
    let n = unsafe { H5Tget_nmembers(file_type) };
    let n = u32::try_from(n).map_err(|_| "unreadable compound type".to_owned())?;
    if n == 0 {
        return Err("compound type without members".to_owned());
    }
    let mut members = Vec::with_capacity(n as usize);
    for i in 0..n {
        let name = member_name(file_type, i).ok_or("unreadable compound member name")?;
        let offset = unsafe { H5Tget_member_offset(file_type, i) };
        let ft = new_id(
            unsafe { H5Tget_member_type(file_type, i) },
            "a compound member",
        )?;
        let mt = mem_type(ft.raw())?;
        if mt.layout != Layout::Fixed {
            return Err("compound type with variable-length members".to_owned());
        }
        members.push((offset, name, mt));
    }
    members.sort_by_key(|m| m.0);
    let total: usize = members.iter().map(|m| m.2.size).sum();
    let id = new_id(
        unsafe { H5Tcreate(H5T_class_t::H5T_COMPOUND, total) },
        "a compound",
    )?;
    let mut pos = 0usize;
    let mut fields = Vec::with_capacity(members.len());
    for (_, name, mt) in members {
        let cname = c_string(&name).ok_or("compound member name with NUL")?;
        if unsafe { H5Tinsert(id.raw(), cname.as_ptr(), pos, mt.id.raw()) } < 0 {
            return Err(format!("unable to pack compound member {name}"));
        }
        pos += mt.size;
        fields.push((name, mt.dtype));
    }
    Ok(MemType {
        id,
        size: total,
        dtype: Dtype::Compound(fields),
        layout: Layout::Fixed,
    })
}
