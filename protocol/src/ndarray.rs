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

impl TypedBuffer {
    /// A zero-filled buffer of `n` elements of `dtype` (native layout), allocated once.
    ///
    /// `None` for variable-length types, on size overflow, or when the allocation fails
    /// (a hostile `nbytes` therefore gives an error instead of aborting the process).
    pub fn try_zeroed(dtype: &Dtype, n: usize) -> Option<TypedBuffer> {
        use crate::Dtype::{Float, Int, UInt};
        fn z<T: bytemuck::Zeroable>(n: usize) -> Option<Vec<T>> {
            bytemuck::allocation::try_zeroed_vec(n).ok()
        }
        Some(match dtype {
            Int { size: 1, .. } => TypedBuffer::I8(z(n)?),
            Int { size: 2, .. } => TypedBuffer::I16(z(n)?),
            Int { size: 4, .. } => TypedBuffer::I32(z(n)?),
            Int { size: 8, .. } => TypedBuffer::I64(z(n)?),
            UInt { size: 1, .. } => TypedBuffer::U8(z(n)?),
            UInt { size: 2, .. } => TypedBuffer::U16(z(n)?),
            UInt { size: 4, .. } => TypedBuffer::U32(z(n)?),
            UInt { size: 8, .. } => TypedBuffer::U64(z(n)?),
            Float { size: 4, .. } => TypedBuffer::F32(z(n)?),
            Float { size: 8, .. } => TypedBuffer::F64(z(n)?),
            other => {
                let item_size = other.item_size()?;
                TypedBuffer::Bytes {
                    item_size,
                    data: z(n.checked_mul(item_size)?)?,
                }
            }
        })
    }

    /// Grow to hold at least `bytes` bytes, the new ones zero: whole elements of a numeric
    /// type, exactly `bytes` of [`TypedBuffer::Bytes`] (which may hold part of its last
    /// element until it is grown further). `None` (and unchanged) if that is smaller than
    /// now, overflows, or cannot be allocated.
    pub(crate) fn try_grow_zeroed(&mut self, bytes: usize) -> Option<()> {
        fn g<T: bytemuck::Zeroable + Clone>(v: &mut Vec<T>, bytes: usize) -> Option<()> {
            let n = bytes.div_ceil(std::mem::size_of::<T>());
            let add = n.checked_sub(v.len())?;
            v.try_reserve_exact(add).ok()?;
            v.resize(n, T::zeroed());
            Some(())
        }
        match self {
            TypedBuffer::I8(v) => g(v, bytes),
            TypedBuffer::I16(v) => g(v, bytes),
            TypedBuffer::I32(v) => g(v, bytes),
            TypedBuffer::I64(v) => g(v, bytes),
            TypedBuffer::U8(v) => g(v, bytes),
            TypedBuffer::U16(v) => g(v, bytes),
            TypedBuffer::U32(v) => g(v, bytes),
            TypedBuffer::U64(v) => g(v, bytes),
            TypedBuffer::F32(v) => g(v, bytes),
            TypedBuffer::F64(v) => g(v, bytes),
            TypedBuffer::Bytes { data, .. } => g(data, bytes),
        }
    }

    /// Build a buffer from packed elements in native byte order (copies once).
    ///
    /// `None` if `dtype` is variable length or `bytes` is not a whole number of elements.
    pub fn from_native_bytes(dtype: &Dtype, bytes: &[u8]) -> Option<TypedBuffer> {
        let item = dtype.item_size()?;
        if !bytes.len().is_multiple_of(item) {
            return None;
        }
        let mut b = TypedBuffer::try_zeroed(dtype, bytes.len() / item)?;
        b.as_bytes_mut().copy_from_slice(bytes);
        Some(b)
    }

    /// The elements as packed native-order bytes.
    pub fn as_bytes(&self) -> &[u8] {
        use bytemuck::cast_slice as c;
        match self {
            TypedBuffer::I8(v) => c(v),
            TypedBuffer::I16(v) => c(v),
            TypedBuffer::I32(v) => c(v),
            TypedBuffer::I64(v) => c(v),
            TypedBuffer::U8(v) => v,
            TypedBuffer::U16(v) => c(v),
            TypedBuffer::U32(v) => c(v),
            TypedBuffer::U64(v) => c(v),
            TypedBuffer::F32(v) => c(v),
            TypedBuffer::F64(v) => c(v),
            TypedBuffer::Bytes { data, .. } => data,
        }
    }

    /// The elements as mutable packed native-order bytes.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        use bytemuck::cast_slice_mut as c;
        match self {
            TypedBuffer::I8(v) => c(v),
            TypedBuffer::I16(v) => c(v),
            TypedBuffer::I32(v) => c(v),
            TypedBuffer::I64(v) => c(v),
            TypedBuffer::U8(v) => v,
            TypedBuffer::U16(v) => c(v),
            TypedBuffer::U32(v) => c(v),
            TypedBuffer::U64(v) => c(v),
            TypedBuffer::F32(v) => c(v),
            TypedBuffer::F64(v) => c(v),
            TypedBuffer::Bytes { data, .. } => data,
        }
    }

    /// Size of one element in bytes.
    pub fn item_size(&self) -> usize {
        match self {
            TypedBuffer::I8(_) | TypedBuffer::U8(_) => 1,
            TypedBuffer::I16(_) | TypedBuffer::U16(_) => 2,
            TypedBuffer::I32(_) | TypedBuffer::U32(_) | TypedBuffer::F32(_) => 4,
            TypedBuffer::I64(_) | TypedBuffer::U64(_) | TypedBuffer::F64(_) => 8,
            TypedBuffer::Bytes { item_size, .. } => *item_size,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self.item_size() {
            0 => 0,
            s => self.as_bytes().len() / s,
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl NdArray {
    /// Number of elements (product of `shape`, 1 for a scalar).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl ArrayData {
    /// Dimensions of the value.
    pub fn shape(&self) -> &[u64] {
        match self {
            ArrayData::Nd(a) => &a.shape,
            ArrayData::Vlen(v) => &v.shape,
        }
    }

    /// The fixed-size array, if this is one.
    pub fn as_nd(&self) -> Option<&NdArray> {
        match self {
            ArrayData::Nd(a) => Some(a),
            ArrayData::Vlen(_) => None,
        }
    }

    /// The vlen array, if this is one.
    pub fn as_vlen(&self) -> Option<&VlenArray> {
        match self {
            ArrayData::Nd(_) => None,
            ArrayData::Vlen(v) => Some(v),
        }
    }
}

/// Product of `shape` (1 for a scalar), `None` on overflow.
pub(crate) fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}
