//! Response decoding without a server (feature `fuzzing`), for the decoder fuzzers of
//! `hdfstream-reliability`; not a stable API.
//!
//! Each function runs on a body the code a [`Connection`](super::Connection) runs on one
//! response (one attempt, no retry), so a fuzzer can drive it without a network: the
//! streaming decoders with the request checks, the metadata decoders, and the mapping of
//! error responses.

use std::io::Read;

use hdfstream_protocol::{ArrayData, Dtype, Member, PathInfo, SliceSpec};

use super::codec::{self, Body, mismatch_to_type_error};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// URL named in the errors of these functions.
pub const URL: &str = "fuzz://response";

fn body<'a>(what: &'a str, content_length: Option<u64>, array: bool) -> Body<'a> {
    Body {
        url: URL,
        what,
        content_length,
        array,
        coding: None,
    }
}

fn quiet() -> Progress {
    Progress::new(Some(false), String::new())
}

/// A body answering a path request, decoded as [`Connection::request_path`] does.
///
/// [`Connection::request_path`]: super::Connection::request_path
pub fn path_body(r: impl Read, content_length: Option<u64>) -> Result<PathInfo> {
    let b = body("path", content_length, false);
    let bytes = codec::read_body(r, &b, &mut quiet())?;
    hdfstream_protocol::decode_path(&bytes).map_err(|e| b.decode_error(bytes.len() as u64, e))
}

/// A body answering an object request, decoded as [`Connection::request_object`] does.
///
/// [`Connection::request_object`]: super::Connection::request_object
pub fn object_body(r: impl Read, content_length: Option<u64>) -> Result<Member> {
    let b = body("file:object", content_length, false);
    let bytes = codec::read_body(r, &b, &mut quiet())?;
    hdfstream_protocol::decode_object(&bytes).map_err(|e| b.decode_error(bytes.len() as u64, e))
}

/// A body answering the slice request `slice`, decoded and checked as
/// [`Connection::request_slice`] (no `dtype`) or [`Connection::request_slice_typed`] does.
///
/// [`Connection::request_slice`]: super::Connection::request_slice
/// [`Connection::request_slice_typed`]: super::Connection::request_slice_typed
pub fn slice_body(
    r: impl Read,
    content_length: Option<u64>,
    slice: &SliceSpec,
    dtype: Option<&Dtype>,
) -> Result<ArrayData> {
    let b = body("file:object", content_length, true);
    let shape = codec::selection_shape(slice);
    match (codec::read_slice(r, &b, &mut quiet(), &shape, dtype), dtype) {
        (Ok((data, _)), _) => Ok(data),
        (Err(e), Some(d)) => Err(mismatch_to_type_error(e, d)),
        (Err(e), None) => Err(e),
    }
}

/// A body answering the slice request `slice` decoded into `dest`, as
/// [`Connection::request_slice_into`] does (with its checks before the request).
///
/// [`Connection::request_slice_into`]: super::Connection::request_slice_into
pub fn slice_into_body(
    r: impl Read,
    content_length: Option<u64>,
    slice: &SliceSpec,
    dtype: &Dtype,
    dest: &mut [u8],
) -> Result<()> {
    codec::check_into_destination(slice, dtype, dest.len())?;
    let b = body("file:object", content_length, true);
    let shape = codec::selection_shape(slice);
    codec::read_slice_into(r, &b, &mut quiet(), &shape, dtype, dest)
        .map(drop)
        .map_err(|e| mismatch_to_type_error(e, dtype))
}

/// The error a non-success response maps to: its status, media type (without parameters,
/// lower case), `Retry-After` header and body.
pub fn error_response(
    status: u16,
    media_type: Option<&str>,
    retry_after: Option<&str>,
    body: &[u8],
) -> Error {
    super::transport::error_from_parts(status, media_type, retry_after, body, URL, "path")
}
