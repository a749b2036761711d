//! Element types a read can produce, and numpy-style "safe" casts between them.

use hdfstream_protocol::{ArrayData, Dtype, TypedBuffer};

use crate::Error;

/// The numeric element types the typed read API supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementKind {
    /// `i1`
    I8,
    /// `i2`
    I16,
    /// `i4`
    I32,
    /// `i8`
    I64,
    /// `u1`
    U8,
    /// `u2`
    U16,
    /// `u4`
    U32,
    /// `u8`
    U64,
    /// `f4`
    F32,
    /// `f8`
    F64,
}

impl ElementKind {
    /// The kind of a wire dtype, if it is one of the supported numeric types.
    pub fn from_dtype(dtype: &Dtype) -> Option<Self> {
        use ElementKind::*;
        Some(match dtype {
            Dtype::Int { size: 1, .. } => I8,
            Dtype::Int { size: 2, .. } => I16,
            Dtype::Int { size: 4, .. } => I32,
            Dtype::Int { size: 8, .. } => I64,
            Dtype::UInt { size: 1, .. } => U8,
            Dtype::UInt { size: 2, .. } => U16,
            Dtype::UInt { size: 4, .. } => U32,
            Dtype::UInt { size: 8, .. } => U64,
            Dtype::Float { size: 4, .. } => F32,
            Dtype::Float { size: 8, .. } => F64,
            _ => return None,
        })
    }

    /// numpy-style name, e.g. `f8`.
    pub fn name(self) -> &'static str {
        use ElementKind::*;
        match self {
            I8 => "i1",
            I16 => "i2",
            I32 => "i4",
            I64 => "i8",
            U8 => "u1",
            U16 => "u2",
            U32 => "u4",
            U64 => "u8",
            F32 => "f4",
            F64 => "f8",
        }
    }

    /// Bytes of one element.
    pub fn size(self) -> usize {
        use ElementKind::*;
        match self {
            I8 | U8 => 1,
            I16 | U16 => 2,
            I32 | U32 | F32 => 4,
            I64 | U64 | F64 => 8,
        }
    }
}

/// Human-readable name of a wire dtype for error messages.
pub(crate) fn dtype_name(dtype: &Dtype) -> String {
    match dtype {
        Dtype::FixedString { len } => format!("S{len}"),
        Dtype::VlenString => "str".to_string(),
        other => match ElementKind::from_dtype(other) {
            Some(k) => k.name().to_string(),
            None => format!("{other:?}"),
        },
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust element type a dataset or attribute can be read as (i8..u64, f32, f64).
///
/// Sealed: the set of types is fixed by the wire format.
pub trait Element:
    sealed::Sealed + bytemuck::Pod + Send + Sync + std::fmt::Debug + PartialEq + 'static
{
    /// The matching wire element kind.
    const KIND: ElementKind;

    /// Takes the vector out of a buffer of exactly this type (no copy), or gives the buffer back.
    fn take(buf: TypedBuffer) -> Result<Vec<Self>, TypedBuffer>;

    /// Whether values of `from` convert to `Self` without loss (numpy `can_cast(..., "safe")`,
    /// restricted to exact conversions: no 64-bit integers to floats).
    fn can_cast_from(from: ElementKind) -> bool;

    /// Converts a buffer of another type, if that is a safe cast.
    fn cast(buf: &TypedBuffer) -> Option<Vec<Self>>;
}

macro_rules! impl_element {
    ($t:ty, $kind:ident, [$($src:ident),*]) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const KIND: ElementKind = ElementKind::$kind;

            fn take(buf: TypedBuffer) -> Result<Vec<Self>, TypedBuffer> {
                match buf {
                    TypedBuffer::$kind(v) => Ok(v),
                    other => Err(other),
                }
            }

            fn can_cast_from(from: ElementKind) -> bool {
                matches!(from, $(ElementKind::$src)|*)
            }

            fn cast(buf: &TypedBuffer) -> Option<Vec<Self>> {
                match buf {
                    $(TypedBuffer::$src(v) => Some(v.iter().map(|&x| <$t>::from(x)).collect()),)*
                    _ => None,
                }
            }
        }
    };
}

impl_element!(i8, I8, [I8]);
impl_element!(i16, I16, [I8, I16, U8]);
impl_element!(i32, I32, [I8, I16, I32, U8, U16]);
impl_element!(i64, I64, [I8, I16, I32, I64, U8, U16, U32]);
impl_element!(u8, U8, [U8]);
impl_element!(u16, U16, [U8, U16]);
impl_element!(u32, U32, [U8, U16, U32]);
impl_element!(u64, U64, [U8, U16, U32, U64]);
impl_element!(f32, F32, [I8, I16, U8, U16, F32]);
impl_element!(f64, F64, [I8, I16, I32, U8, U16, U32, F32, F64]);

/// Checks, before any request, that data of `dtype` can be read as `T`.
pub(crate) fn check_castable<T: Element>(dtype: &Dtype) -> Result<(), Error> {
    match ElementKind::from_dtype(dtype) {
        Some(k) if T::can_cast_from(k) => Ok(()),
        _ => Err(Error::TypeMismatch {
            expected: T::KIND.name().to_string(),
            found: format!("{} (no safe conversion)", dtype_name(dtype)),
        }),
    }
}

/// True when `dtype` is exactly `T` (so bytes can be streamed straight into a `[T]`).
pub(crate) fn is_exact<T: Element>(dtype: &Dtype) -> bool {
    ElementKind::from_dtype(dtype) == Some(T::KIND)
}

/// Turns decoded array contents into a `Vec<T>`: moved out when the type matches, converted
/// when the cast is safe, an error otherwise.
pub(crate) fn into_vec<T: Element>(data: ArrayData) -> Result<Vec<T>, Error> {
    match data {
        ArrayData::Nd(nd) => {
            let dtype = nd.dtype;
            match T::take(nd.data) {
                Ok(v) => Ok(v),
                Err(buf) => T::cast(&buf).ok_or_else(|| Error::TypeMismatch {
                    expected: T::KIND.name().to_string(),
                    found: format!("{} (no safe conversion)", dtype_name(&dtype)),
                }),
            }
        }
        ArrayData::Vlen(_) => Err(Error::TypeMismatch {
            expected: T::KIND.name().to_string(),
            found: "variable-length data".to_string(),
        }),
    }
}

/// Decodes fixed (NUL padding stripped) or variable-length strings (the table core's one
/// string decoder; invalid UTF-8 is replaced).
pub(crate) fn into_strings(data: &ArrayData) -> Result<Vec<String>, Error> {
    let (mut offsets, mut bytes) = (vec![0], Vec::new());
    crate::table::fetch::append_strings(data, &mut offsets, &mut bytes, "the response")?;
    Ok(offsets
        .windows(2)
        .map(|w| String::from_utf8_lossy(bytes.get(w[0]..w[1]).unwrap_or_default()).into_owned())
        .collect())
}
