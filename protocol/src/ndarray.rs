//! Array values: fixed-size ndarrays (PROTOCOL.md §4) and vlen arrays (§3.7).

use crate::Dtype;

/// Decoded elements in native byte order: the final typed storage of a read.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedBuffer {
    /// `i1`
    I8(Vec<i8>),
    /// `i2`
    I16(Vec<i16>),
    /// `i4`
    I32(Vec<i32>),
    /// `i8`
    I64(Vec<i64>),
    /// `u1`
    U8(Vec<u8>),
    /// `u2`
    U16(Vec<u16>),
    /// `u4`
    U32(Vec<u32>),
    /// `u8`
    U64(Vec<u64>),
    /// `f4`
    F32(Vec<f32>),
    /// `f8`
    F64(Vec<f64>),
    /// Any other fixed-size type (f2, f16, strings, arrays, compounds) as packed raw bytes.
    Bytes {
        /// Size of one element in bytes.
        item_size: usize,
        /// `item_size * n` bytes.
        data: Vec<u8>,
    },
}

/// A fixed-size array value.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    /// Element type as sent (byte order already converted to native in `data`).
    pub dtype: Dtype,
    /// Dimensions; empty for a scalar.
    pub shape: Vec<u64>,
    /// Elements in C order.
    pub data: TypedBuffer,
}

/// One element of a vlen array.
#[derive(Debug, Clone, PartialEq)]
pub enum VlenElement {
    /// A variable-length string: raw bytes, normally UTF-8.
    String(Vec<u8>),
    /// A VLEN sequence: a 1-D (or nested vlen) array.
    Array(ArrayData),
}

/// A variable-length array value (PROTOCOL.md §3.7).
#[derive(Debug, Clone, PartialEq)]
pub struct VlenArray {
    /// Dimensions; empty for a scalar.
    pub shape: Vec<u64>,
    /// One entry per element in C order.
    pub elements: Vec<VlenElement>,
}

/// Contents of a dataset, slice or attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayData {
    /// Fixed-size elements.
    Nd(NdArray),
    /// Variable-length elements.
    Vlen(VlenArray),
}
