//! Element types as described on the wire (PROTOCOL.md §6).
//!
//! Atomic types (`<i4`, `>f8`, `|u1`, `=u2`, `<f2`, `<f16`, `S10`, `str`) map to
//! [`Dtype::Int`], [`Dtype::UInt`], [`Dtype::Float`], [`Dtype::FixedString`] and
//! [`Dtype::VlenString`]; `kind == "V"` with an atomic descriptor is [`Dtype::Vlen`].
//!
//! **Compound and array support.** `[T, [dims]]` ([`Dtype::Array`]) and `[[name, T], ...]`
//! ([`Dtype::Compound`], including the reference server's ARRAY-member quirk
//! `[name, [name, T], [dims]]`) are parsed, printed, sized and re-encoded exactly, and
//! their values decode as raw packed bytes in [`TypedBuffer::Bytes`](crate::TypedBuffer)
//! (`item_size` = the packed element size, no padding, C order, big-endian members
//! byte-swapped to native). Interpreting fields is left to the caller, e.g. with the
//! offsets that follow from the field order. Unsupported: VLEN inside compound or array
//! types (the server cannot send them), nested compound members (the server drops their
//! name), and a VLEN *of* a compound or array (indistinguishable from the plain type).

/// Byte order character of a numpy-style type descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// `<`: little endian (what every observed server sends).
    Little,
    /// `>`: big endian.
    Big,
    /// `|`: byte order does not apply (1-byte types, strings).
    NotApplicable,
    /// `=`: the sender's native order (taken as little endian on the wire).
    Native,
}

/// Element type of a dataset, attribute or array message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// Signed integer of `size` bytes (1, 2, 4 or 8); enums arrive as their base integer.
    Int {
        /// Width in bytes.
        size: u8,
        /// Byte order on the wire.
        order: ByteOrder,
    },
    /// Unsigned integer of `size` bytes (1, 2, 4 or 8).
    UInt {
        /// Width in bytes.
        size: u8,
        /// Byte order on the wire.
        order: ByteOrder,
    },
    /// IEEE float of `size` bytes (2, 4 or 8; 16 = long double, kept as raw bytes).
    Float {
        /// Width in bytes.
        size: u8,
        /// Byte order on the wire.
        order: ByteOrder,
    },
    /// Fixed-length byte string `S<n>`, NUL padded.
    FixedString {
        /// Declared width in bytes.
        len: usize,
    },
    /// Variable-length string (`"str"`, dataset metadata only).
    VlenString,
    /// HDF5 VLEN sequence of the inner type (metadata `kind == "V"` with an atomic `type`).
    Vlen(Box<Dtype>),
    /// HDF5 ARRAY type: every element is a C-order block of `dims` base elements.
    Array {
        /// Element type of the block.
        base: Box<Dtype>,
        /// Block dimensions.
        dims: Vec<u64>,
    },
    /// Packed compound type: named fields in offset order, no padding.
    Compound(Vec<(String, Dtype)>),
}

use std::fmt;

use rmpv::Value;

use crate::DecodeError;

impl ByteOrder {
    /// The descriptor character (`<`, `>`, `|`, `=`).
    pub fn as_char(self) -> char {
        match self {
            ByteOrder::Little => '<',
            ByteOrder::Big => '>',
            ByteOrder::NotApplicable => '|',
            ByteOrder::Native => '=',
        }
    }

    /// Parse a descriptor character.
    pub fn from_char(c: char) -> Option<Self> {
        Some(match c {
            '<' => ByteOrder::Little,
            '>' => ByteOrder::Big,
            '|' => ByteOrder::NotApplicable,
            '=' => ByteOrder::Native,
            _ => return None,
        })
    }

    /// Whether bytes in this order must be reversed to be native on this host.
    ///
    /// `=` and `|` are taken as little endian, as every observed server is.
    pub fn needs_swap(self) -> bool {
        let wire_little = self != ByteOrder::Big;
        wire_little != cfg!(target_endian = "little")
    }
}

fn unsupported(descriptor: impl fmt::Display) -> DecodeError {
    DecodeError::UnsupportedType {
        descriptor: crate::wire::shortened(&descriptor),
    }
}

fn value_text(v: &Value) -> String {
    crate::wire::shortened(v)
}

/// Dims of an ARRAY descriptor: a non-empty array of positive integers.
fn dims_of(v: &Value) -> Option<Vec<u64>> {
    let a = v.as_array()?;
    if a.is_empty() {
        return None;
    }
    a.iter().map(|d| d.as_u64().filter(|&d| d > 0)).collect()
}

impl Dtype {
    /// Parse the `"type"` and `"kind"` values of a dataset or ndarray map (PROTOCOL.md §6).
    ///
    /// * a string: an atomic type (`<f8`, `>i4`, `|u1`, `=u2`, `S10`, `str`, ...);
    /// * `[T, [d0, d1, ...]]`: an HDF5 ARRAY of `T`;
    /// * `[[name, T], ...]`: a packed compound; a member may use the server's ARRAY quirk
    ///   `[name, [name, T], [dims]]`, which becomes `(name, Array { base: T, dims })`;
    /// * `kind == "V"` with an atomic (non-`str`) descriptor: `Vlen(T)`.
    ///
    /// A VLEN of a compound or array type cannot be told apart from the plain compound or
    /// array on the wire; it is read as the latter. Nested compound members (which the
    /// reference server emits without their name) are rejected as unsupported.
    pub fn from_wire(type_value: &Value, kind: &str) -> Result<Dtype, DecodeError> {
        match (kind, type_value) {
            ("", Value::String(s)) => Dtype::parse(
                s.as_str()
                    .ok_or_else(|| unsupported(value_text(type_value)))?,
            ),
            ("V", Value::String(_)) => match Dtype::from_wire(type_value, "")? {
                Dtype::VlenString => Ok(Dtype::VlenString),
                t => Ok(Dtype::Vlen(Box::new(t))),
            },
            ("" | "V", Value::Array(_)) => Dtype::from_descriptor(type_value),
            ("" | "V", _) => Err(unsupported(value_text(type_value))),
            (k, _) => Err(DecodeError::Malformed {
                what: "kind",
                detail: format!("unknown kind {}", crate::wire::quoted(k)),
            }),
        }
    }

    /// Parse a descriptor value (string or array) without a kind.
    fn from_descriptor(v: &Value) -> Result<Dtype, DecodeError> {
        match v {
            Value::String(s) => Dtype::parse(s.as_str().ok_or_else(|| unsupported(value_text(v)))?),
            Value::Array(items) => {
                // ARRAY: [T, [dims]] where dims are integers (a compound field is never
                // an array of integers, so this cannot be a two-field compound).
                if items.len() == 2
                    && let Some(dims) = dims_of(&items[1])
                {
                    let base = Dtype::from_descriptor(&items[0])?;
                    return Dtype::array(base, dims).ok_or_else(|| unsupported(value_text(v)));
                }
                if items.is_empty() {
                    return Err(unsupported(value_text(v)));
                }
                let mut fields = Vec::with_capacity(items.len());
                for f in items {
                    fields.push(
                        Dtype::compound_field(f).ok_or_else(|| unsupported(value_text(v)))??,
                    );
                }
                let t = Dtype::Compound(fields);
                t.item_size().ok_or_else(|| unsupported(value_text(v)))?;
                Ok(t)
            }
            _ => Err(unsupported(value_text(v))),
        }
    }

    /// One compound member: `[name, T]` or the quirk `[name, [name, T], [dims]]`.
    /// `None` if the shape is wrong, `Some(Err)` if the member type itself is bad.
    #[allow(clippy::type_complexity)]
    fn compound_field(f: &Value) -> Option<Result<(String, Dtype), DecodeError>> {
        let parts = f.as_array()?;
        let name = parts.first()?.as_str()?.to_owned();
        match parts.len() {
            2 => Some(Dtype::from_descriptor(&parts[1]).map(|t| (name, t))),
            3 => {
                let inner = parts[1].as_array()?;
                let dims = dims_of(&parts[2])?;
                if inner.len() != 2 || inner[0].as_str().is_none() {
                    return None;
                }
                Some(
                    Dtype::from_descriptor(&inner[1])
                        .and_then(|t| {
                            Dtype::array(t, dims).ok_or_else(|| unsupported(value_text(f)))
                        })
                        .map(|t| (name, t)),
                )
            }
            _ => None,
        }
    }

    /// An ARRAY type; `None` if the block size overflows or the base is variable length.
    fn array(base: Dtype, dims: Vec<u64>) -> Option<Dtype> {
        let t = Dtype::Array {
            base: Box::new(base),
            dims,
        };
        t.item_size().map(|_| t)
    }

    /// Parse an atomic descriptor string: `<f8`, `>i2`, `|u1`, `=f4`, `<f2`, `<f16`,
    /// `S10` (also `|S10`), or `str`. Compound and array types have no string form.
    pub fn parse(s: &str) -> Result<Dtype, DecodeError> {
        if s == "str" {
            return Ok(Dtype::VlenString);
        }
        let mut chars = s.chars();
        let (order, rest) = match chars.next().and_then(ByteOrder::from_char) {
            Some(o) => (Some(o), chars.as_str()),
            None => (None, s),
        };
        let mut rest_chars = rest.chars();
        let Some(code) = rest_chars.next() else {
            return Err(unsupported(s));
        };
        let digits = rest_chars.as_str();
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(unsupported(s));
        }
        let n: usize = digits.parse().map_err(|_| unsupported(s))?;
        let size = u8::try_from(n).ok();
        match (code, order, size) {
            ('S', None | Some(ByteOrder::NotApplicable), _) => Ok(Dtype::FixedString { len: n }),
            ('i', Some(order), Some(size @ (1 | 2 | 4 | 8))) => Ok(Dtype::Int { size, order }),
            ('u', Some(order), Some(size @ (1 | 2 | 4 | 8))) => Ok(Dtype::UInt { size, order }),
            ('f', Some(order), Some(size @ (2 | 4 | 8 | 16))) => Ok(Dtype::Float { size, order }),
            _ => Err(unsupported(s)),
        }
    }

    /// The `"type"` descriptor as sent on the wire (inverse of [`Dtype::from_wire`]).
    ///
    /// `Vlen(T)` gives `T`'s descriptor (the `V` lives in [`Dtype::kind`]). A compound
    /// member of ARRAY type is written with the reference server's quirk
    /// `[name, [name, T], [dims]]`.
    pub fn descriptor(&self) -> Value {
        match self {
            Dtype::Vlen(inner) => inner.descriptor(),
            Dtype::Array { base, dims } => Value::Array(vec![
                base.descriptor(),
                Value::Array(dims.iter().map(|&d| Value::from(d)).collect()),
            ]),
            Dtype::Compound(fields) => Value::Array(
                fields
                    .iter()
                    .map(|(name, t)| match t {
                        Dtype::Array { base, dims } => Value::Array(vec![
                            Value::from(name.as_str()),
                            Value::Array(vec![Value::from(name.as_str()), base.descriptor()]),
                            Value::Array(dims.iter().map(|&d| Value::from(d)).collect()),
                        ]),
                        _ => Value::Array(vec![Value::from(name.as_str()), t.descriptor()]),
                    })
                    .collect(),
            ),
            atomic => Value::from(atomic.to_string()),
        }
    }

    /// The `"kind"` string: `"V"` for array, compound and (non-string) vlen types, else `""`.
    pub fn kind(&self) -> &'static str {
        match self {
            Dtype::Vlen(_) | Dtype::Array { .. } | Dtype::Compound(_) => "V",
            _ => "",
        }
    }

    /// Bytes per element; `None` for variable-length types (and on overflow).
    pub fn item_size(&self) -> Option<usize> {
        match self {
            Dtype::Int { size, .. } | Dtype::UInt { size, .. } | Dtype::Float { size, .. } => {
                Some(usize::from(*size))
            }
            Dtype::FixedString { len } => Some(*len).filter(|&l| l > 0),
            Dtype::VlenString | Dtype::Vlen(_) => None,
            Dtype::Array { base, dims } => {
                let mut n = base.item_size()?;
                for &d in dims {
                    n = n.checked_mul(usize::try_from(d).ok()?)?;
                }
                Some(n).filter(|&n| n > 0)
            }
            Dtype::Compound(fields) => {
                if fields.is_empty() {
                    return None;
                }
                fields
                    .iter()
                    .try_fold(0usize, |acc, (_, t)| acc.checked_add(t.item_size()?))
            }
        }
    }

    /// Whether elements have a fixed size (everything but vlen strings and VLEN sequences).
    pub fn is_fixed_size(&self) -> bool {
        self.item_size().is_some()
    }

    /// The same type with every byte order made little endian (`<`), which is also how
    /// decoded values are stored. Two types whose `native()` forms are equal have the same
    /// in-memory layout after decoding.
    pub fn native(&self) -> Dtype {
        match self {
            Dtype::Int { size, .. } => Dtype::Int {
                size: *size,
                order: ByteOrder::Little,
            },
            Dtype::UInt { size, .. } => Dtype::UInt {
                size: *size,
                order: ByteOrder::Little,
            },
            Dtype::Float { size, .. } => Dtype::Float {
                size: *size,
                order: ByteOrder::Little,
            },
            Dtype::Vlen(t) => Dtype::Vlen(Box::new(t.native())),
            Dtype::Array { base, dims } => Dtype::Array {
                base: Box::new(base.native()),
                dims: dims.clone(),
            },
            Dtype::Compound(fields) => Dtype::Compound(
                fields
                    .iter()
                    .map(|(n, t)| (n.clone(), t.native()))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Byte order of a numeric type, `None` for strings, arrays, compounds and vlen types.
    pub fn byte_order(&self) -> Option<ByteOrder> {
        match self {
            Dtype::Int { order, .. } | Dtype::UInt { order, .. } | Dtype::Float { order, .. } => {
                Some(*order)
            }
            _ => None,
        }
    }

    /// Whether any part of an element must be byte-swapped to become native.
    pub fn needs_swap(&self) -> bool {
        match self {
            Dtype::Int { size, order }
            | Dtype::UInt { size, order }
            | Dtype::Float { size, order } => *size > 1 && order.needs_swap(),
            Dtype::Array { base, .. } => base.needs_swap(),
            Dtype::Compound(fields) => fields.iter().any(|(_, t)| t.needs_swap()),
            _ => false,
        }
    }

    /// `(offset, width)` of every multi-byte numeric unit of one element that must be
    /// reversed to become native, appended to `out`.
    fn swap_units(&self, offset: usize, out: &mut Vec<(usize, usize)>) {
        match self {
            Dtype::Int { size, order }
            | Dtype::UInt { size, order }
            | Dtype::Float { size, order }
                if *size > 1 && order.needs_swap() =>
            {
                out.push((offset, usize::from(*size)));
            }
            Dtype::Array { base, .. } => {
                if let (Some(step), Some(total)) = (base.item_size(), self.item_size())
                    && base.needs_swap()
                {
                    for off in (0..total).step_by(step) {
                        base.swap_units(offset + off, out);
                    }
                }
            }
            Dtype::Compound(fields) => {
                let mut off = offset;
                for (_, t) in fields {
                    t.swap_units(off, out);
                    off += t.item_size().unwrap_or(0);
                }
            }
            _ => {}
        }
    }

    /// Reverse every multi-byte numeric unit of packed elements of this type in place
    /// (converts between wire order and native order; its own inverse).
    pub fn swap_in_place(&self, bytes: &mut [u8]) {
        if !self.needs_swap() {
            return;
        }
        let Some(item) = self.item_size() else { return };
        if bytes.len() < item {
            // Not one whole element: nothing to swap (and an ARRAY element of many
            // units would cost its unit list for nothing).
            return;
        }
        if self.byte_order().is_some() {
            // A plain number: every element is one unit.
            for unit in bytes.chunks_exact_mut(item) {
                unit.reverse();
            }
            return;
        }
        let mut units = Vec::new();
        self.swap_units(0, &mut units);
        for elem in bytes.chunks_exact_mut(item) {
            for &(off, w) in &units {
                elem[off..off + w].reverse();
            }
        }
    }
}

impl fmt::Display for Dtype {
    /// Atomic types print as their descriptor (`<f8`, `S10`, `str`); `Vlen(T)` as
    /// `vlen(T)`, arrays as `(d0,d1)T`, compounds as `{name: T, ...}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dtype::Int { size, order } => write!(f, "{}i{size}", order.as_char()),
            Dtype::UInt { size, order } => write!(f, "{}u{size}", order.as_char()),
            Dtype::Float { size, order } => write!(f, "{}f{size}", order.as_char()),
            Dtype::FixedString { len } => write!(f, "S{len}"),
            Dtype::VlenString => f.write_str("str"),
            Dtype::Vlen(t) => write!(f, "vlen({t})"),
            Dtype::Array { base, dims } => {
                f.write_str("(")?;
                for (i, d) in dims.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{d}")?;
                }
                write!(f, "){base}")
            }
            Dtype::Compound(fields) => {
                f.write_str("{")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}: {t}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl std::str::FromStr for Dtype {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dtype::parse(s)
    }
}
