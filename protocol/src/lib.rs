//! Wire types and sans-IO codec of the hdfstream protocol (see `PROTOCOL.md`).
//!
//! This crate does no I/O: it turns request values into msgpack bytes and bytes into
//! response values. Both the `hdfstream` client and `hdfstream-server` use it, so the two
//! sides agree on the wire format by construction.
//!
//! * Requests: [`ObjectRequest::encode_body`] (byte for byte what the Python client
//!   sends), [`ObjectRequest::decode_body`] / [`ObjectRequest::from_query`] (the reference
//!   server's validation, with its status codes and messages), [`SliceSpec`] in msgpack
//!   and string form, [`SliceSpec::check_against`].
//! * Responses: [`decode_path`], [`decode_object`], [`decode_array`], [`decode_error`]
//!   and the matching encoders [`encode_path`], [`encode_member`], [`encode_array`],
//!   [`encode_error`]; for servers that stream payloads, [`ndarray_header`],
//!   [`bin_lengths`] and [`bin_header`].
//! * Large arrays: [`ArrayDecoder`] / [`ArrayIntoDecoder`], push decoders that let the
//!   I/O layer read payload bytes straight into the final buffer ([`PushDecoder`],
//!   [`decode_array_from_reader`], [`decode_array_into_from_reader`]).
//! * Types: [`Dtype`] for every descriptor of PROTOCOL.md §6.
//!
//! Decoders are strict (truncation, trailing bytes, inconsistent sizes are errors), accept
//! every msgpack integer width, never allocate from a declared length before the bytes
//! are there, and never panic on any input.

mod codec;
mod dtype;
mod error;
mod message;
mod ndarray;
mod request;
mod sink;
mod stream;
mod wire;

pub use codec::{
    MAX_BIN_LEN, bin_header, bin_lengths, bin_lengths_with_max, decode_array, decode_error,
    decode_object, decode_path, encode_array, encode_array_with_max_bin, encode_descriptor,
    encode_error, encode_member, encode_path, ndarray_header, ndarray_header_with_max_bin,
};
pub use stream::{
    ArrayDecoder, ArrayForwardDecoder, ArrayHeader, ArrayIntoDecoder, NDARRAY_PREFIX, PushDecoder,
    decode_array_from_reader, decode_array_into_from_reader, pump,
};

pub use dtype::{ByteOrder, Dtype};
pub use error::{DecodeError, ReadError, RequestError};
pub use message::{
    Attributes, DatasetInfo, DirectoryInfo, FileInfo, GroupInfo, HDF5_MEDIA_TYPE, Member, PathInfo,
    Response,
};
pub use ndarray::{ArrayData, NdArray, TypedBuffer, VlenArray, VlenElement};
pub use request::{
    DimSelection, MAX_OBJECT_NAME_LEN, MAX_PARAMS, MAX_SLICE_DIMS, MAX_SLICE_STRING_LEN,
    MAX_SLICES, ObjectRequest, RequestParams, SliceSpec, validate_object_name,
};
pub use sink::Sink;
