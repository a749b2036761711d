//! HDF5 attributes with typed accessors.

use hdfstream_protocol::{ArrayData, Dtype, TypedBuffer};

use super::element::{Element, into_strings, into_vec};
use crate::Error;

/// One attribute value: an array (possibly 0-d) of numbers or strings.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrValue(ArrayData);

impl AttrValue {
    /// Wraps decoded attribute contents.
    pub fn new(data: ArrayData) -> Self {
        Self(data)
    }

    /// The raw decoded value.
    pub fn data(&self) -> &ArrayData {
        &self.0
    }

    /// Dimensions; empty for a scalar attribute.
    pub fn shape(&self) -> &[u64] {
        match &self.0 {
            ArrayData::Nd(nd) => &nd.shape,
            ArrayData::Vlen(v) => &v.shape,
        }
    }

    /// Element type; `None` for variable-length values.
    pub fn dtype(&self) -> Option<&Dtype> {
        match &self.0 {
            ArrayData::Nd(nd) => Some(&nd.dtype),
            ArrayData::Vlen(_) => None,
        }
    }

    /// True for a 0-d (HDF5 scalar dataspace) attribute.
    pub fn is_scalar(&self) -> bool {
        self.shape().is_empty()
    }

    /// Number of elements (saturating at `u64::MAX` for a shape whose product overflows).
    pub fn len(&self) -> u64 {
        self.shape().iter().fold(1u64, |a, &d| a.saturating_mul(d))
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All elements as `T` (C order), converting only where numpy's safe casting allows.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>, Error> {
        into_vec(self.0.clone())
    }

    /// All elements as strings (fixed strings lose their NUL padding).
    pub fn to_strings(&self) -> Result<Vec<String>, Error> {
        into_strings(&self.0)
    }

    /// The value as `f64` if it holds exactly one number (integers converted with `as`).
    pub fn as_f64(&self) -> Option<f64> {
        let ArrayData::Nd(nd) = &self.0 else {
            return None;
        };
        macro_rules! one {
            ($v:expr) => {
                match $v.as_slice() {
                    [x] => Some(*x as f64),
                    _ => None,
                }
            };
        }
        match &nd.data {
            TypedBuffer::I8(v) => one!(v),
            TypedBuffer::I16(v) => one!(v),
            TypedBuffer::I32(v) => one!(v),
            TypedBuffer::I64(v) => one!(v),
            TypedBuffer::U8(v) => one!(v),
            TypedBuffer::U16(v) => one!(v),
            TypedBuffer::U32(v) => one!(v),
            TypedBuffer::U64(v) => one!(v),
            TypedBuffer::F32(v) => one!(v),
            TypedBuffer::F64(v) => one!(v),
            TypedBuffer::Bytes { .. } => None,
        }
    }

    /// The value as `i64` if it holds exactly one integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self.to_vec::<i64>().ok()?.as_slice() {
            [x] => Some(*x),
            _ => match self.to_vec::<u64>().ok()?.as_slice() {
                [x] => i64::try_from(*x).ok(),
                _ => None,
            },
        }
    }

    /// The value as a string if it holds exactly one (fixed or variable-length) string.
    pub fn as_string(&self) -> Option<String> {
        let mut v = self.to_strings().ok()?;
        if v.len() == 1 { v.pop() } else { None }
    }
}

/// The attributes of a group or dataset, in server order (HDF5 name order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs(Vec<(String, AttrValue)>);

impl Attrs {
    /// Builds the attribute list from decoded wire attributes.
    pub fn from_wire(attrs: hdfstream_protocol::Attributes) -> Self {
        Self(attrs.into_iter().map(|(k, v)| (k, AttrValue(v))).collect())
    }

    /// The attribute called `name`.
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// True when an attribute called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Attribute names in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> + '_ {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Objects that carry HDF5 attributes.
pub trait HasAttrs {
    /// The object's attributes.
    fn attrs(&self) -> &Attrs;
}
