//! Wire types and sans-IO codec of the hdfstream protocol (see `PROTOCOL.md`).
//!
//! This crate does no I/O: it turns request values into msgpack bytes and bytes into
//! response values. Both the `hdfstream` client and `hdfstream-server` use it, so the two
//! sides agree on the wire format by construction.

mod dtype;
mod error;
mod message;
mod ndarray;
mod request;

pub use dtype::{ByteOrder, Dtype};
pub use error::{DecodeError, RequestError};
pub use message::{
    Attributes, DatasetInfo, DirectoryInfo, FileInfo, GroupInfo, HDF5_MEDIA_TYPE, Member, PathInfo,
    Response,
};
pub use ndarray::{ArrayData, NdArray, TypedBuffer, VlenArray, VlenElement};
pub use request::{
    DimSelection, MAX_SLICE_DIMS, MAX_SLICES, ObjectRequest, RequestParams, SliceSpec,
};
