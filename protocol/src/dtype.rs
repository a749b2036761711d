//! Element types as described on the wire (PROTOCOL.md §6).

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
