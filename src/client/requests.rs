//! The `/msgpack` requests of a [`Connection`] (PROTOCOL.md §2.4).
//!
//! Every request is an idempotent read, so each is retried as a whole (see
//! [`crate::RetryConfig`]) when its body breaks off or does not decode, and a slice
//! response is checked against the request before it is accepted: its shape must be the
//! selection's and, when the caller knows it, its element type the dataset's.

use std::time::Instant;

use hdfstream_protocol::{
    ArrayData, ArrayForwardDecoder, ArrayHeader, Dtype, Member, ObjectRequest, PathInfo, SliceSpec,
};
use reqwest::Method;

use super::codec::{self, Body, check_header, mismatch_to_type_error};
use super::coding;
use super::transport::Call;
use super::{Connection, check_msgpack};
use crate::error::Result;
use crate::progress::Progress;

impl Connection {
    /// Directory listing or file metadata of a virtual path (`POST /msgpack/<vpath>`,
    /// body `{}`). A missing path gives [`Error::NotFound`](crate::Error::NotFound).
    pub fn request_path(&self, vpath: &str) -> Result<PathInfo> {
        let call = Call {
            method: Method::POST,
            url: self.inner.url("msgpack", vpath),
            body: Some(ObjectRequest::path().encode_body()),
            what: vpath,
            expected: 0,
        };
        self.read_msgpack(
            &call,
            &format!("Path: {vpath}"),
            hdfstream_protocol::decode_path,
        )
    }

    /// An HDF5 group or dataset of `file`, expanded per `max_depth` and with datasets of at
    /// most `data_size_limit` bytes inlined. A missing object gives [`Error::NotFound`](crate::Error::NotFound)
    /// with path `<file>:<object>`.
    pub fn request_object(
        &self,
        file: &str,
        object: &str,
        max_depth: u32,
        data_size_limit: u64,
    ) -> Result<Member> {
        let what = format!("{file}:{object}");
        let call = Call {
            method: Method::POST,
            url: self.inner.url("msgpack", file),
            body: Some(ObjectRequest::object(object, data_size_limit, max_depth).encode_body()),
            what: &what,
            expected: 0,
        };
        self.read_msgpack(
            &call,
            &format!("Object: {object}"),
            hdfstream_protocol::decode_object,
        )
    }

    /// Reads a selection of a dataset. The body is decoded while it streams in: fixed-size
    /// payloads go straight into the final buffer, never buffered whole. The response's
    /// shape must be the selection's; a body that breaks off ([`Error::Incomplete`](crate::Error::Incomplete)) or
    /// does not decode ([`Error::Decode`](crate::Error::Decode)) is requested again within the retry budget.
    pub fn request_slice(&self, file: &str, object: &str, slice: &SliceSpec) -> Result<ArrayData> {
        self.slice_data(file, object, slice, None)
    }

    /// [`Connection::request_slice`] of a dataset whose element type is `dtype` (as its
    /// metadata reports it): a response of another type is requested again, and reported
    /// as [`Error::TypeMismatch`](crate::Error::TypeMismatch) once the retries are spent.
    pub fn request_slice_typed(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
    ) -> Result<ArrayData> {
        self.slice_data(file, object, slice, Some(dtype))
    }

    fn slice_data(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: Option<&Dtype>,
    ) -> Result<ArrayData> {
        let t0 = Instant::now();
        let what = format!("{file}:{object}");
        let shape = codec::selection_shape(slice);
        let call = slice_call(self, file, object, slice, &shape, dtype, &what);
        let result = self.inner.request(&call, |resp, _| {
            check_msgpack(&resp, &call.url)?;
            let (resp, content_length, coding) = coding::decode(resp, &call.url)?;
            let body = Body {
                url: &call.url,
                what: &what,
                content_length,
                array: true,
                coding,
            };
            let mut progress = Progress::new(self.inner.progress, format!("Slice: {object}"));
            codec::read_slice(resp, &body, &mut progress, &shape, dtype)
        });
        let (data, bytes) = match (result, dtype) {
            (Ok(v), _) => v,
            (Err(e), Some(d)) => return Err(mismatch_to_type_error(e, d)),
            (Err(e), None) => return Err(e),
        };
        log_read(&call.url, object, bytes, t0);
        Ok(data)
    }

    /// Reads a selection of a dataset straight into `dest`, which must hold exactly the
    /// selected elements of `dtype` (fixed-size, native byte order, C order).
    ///
    /// `dtype` is the dataset's type as its metadata reports it (the server sends the same).
    /// The size and type are checked before the request ([`Error::InvalidSelection`](crate::Error::InvalidSelection),
    /// [`Error::TypeMismatch`](crate::Error::TypeMismatch)) and again against every response header: a response of
    /// another shape or type, or one whose body breaks off, is requested again (the buffer
    /// is rewritten from the start); a type that still differs once the retries are spent
    /// is an [`Error::TypeMismatch`](crate::Error::TypeMismatch).
    pub fn request_slice_into(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
        dest: &mut [u8],
    ) -> Result<()> {
        let t0 = Instant::now();
        codec::check_into_destination(slice, dtype, dest.len())?;
        let what = format!("{file}:{object}");
        let shape = codec::selection_shape(slice);
        let call = slice_call(self, file, object, slice, &shape, Some(dtype), &what);
        let bytes = self
            .inner
            .request(&call, |resp, _| {
                check_msgpack(&resp, &call.url)?;
                let (resp, content_length, coding) = coding::decode(resp, &call.url)?;
                let body = Body {
                    url: &call.url,
                    what: &what,
                    content_length,
                    array: true,
                    coding,
                };
                let mut progress = Progress::new(self.inner.progress, format!("Slice: {object}"));
                codec::read_slice_into(resp, &body, &mut progress, &shape, dtype, &mut *dest)
            })
            .map_err(|e| mismatch_to_type_error(e, dtype))?;
        log_read(&call.url, object, bytes, t0);
        Ok(())
    }
}

/// The consumer of [`Connection::request_slice_forward`]: called with the attempt number
/// (1-based), the response's header and the next payload bytes.
pub type ForwardSink<'a> = dyn FnMut(u32, &ArrayHeader, &[u8]) -> std::io::Result<()> + 'a;

impl Connection {
    /// Reads a selection of a dataset and hands its payload on as it arrives, without
    /// holding the array: `out` gets pieces of at most `window` bytes, in the byte order of
    /// the response's type (the header says which), with the attempt number. A response
    /// whose body breaks off is requested again like every read, and its payload starts
    /// over from the first byte with the next attempt number: `out` must then start its
    /// output again, or fail (its error ends the read, unretried, as an [`Error::Io`](crate::Error::Io)).
    ///
    /// The shape and type are checked against `slice` and `dtype` before any byte is handed
    /// on. Memory is the window, whatever the selection's size (what `hdfstream get`
    /// uses to write `.npy` files of any size).
    pub fn request_slice_forward(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
        window: usize,
        out: &mut ForwardSink<'_>,
    ) -> Result<ArrayHeader> {
        let t0 = Instant::now();
        let what = format!("{file}:{object}");
        let shape = codec::selection_shape(slice);
        let call = slice_call(self, file, object, slice, &shape, Some(dtype), &what);
        let (header, bytes) = self
            .inner
            .request(&call, |resp, attempt| {
                check_msgpack(&resp, &call.url)?;
                let (resp, content_length, coding) = coding::decode(resp, &call.url)?;
                let body = Body {
                    url: &call.url,
                    what: &what,
                    content_length,
                    array: true,
                    coding,
                };
                let mut progress = Progress::new(self.inner.progress, format!("Slice: {object}"));
                let mut dec = ArrayForwardDecoder::new(window, |h: &ArrayHeader, b: &[u8]| {
                    check_header(h, &shape, Some(dtype)).map_err(std::io::Error::other)?;
                    out(attempt, h, b)
                });
                let bytes = codec::pump(resp, &mut dec, &mut progress, &body, |h| {
                    check_header(h, &shape, Some(dtype))
                })?;
                let header = dec.finish().map_err(|e| body.decode_error(bytes, e))?;
                check_header(&header, &shape, Some(dtype))
                    .map_err(|e| body.decode_error(bytes, e))?;
                Ok((header, bytes))
            })
            .map_err(|e| mismatch_to_type_error(e, dtype))?;
        log_read(&call.url, object, bytes, t0);
        Ok(header)
    }
}

/// The request of `slice`, whose result has `shape`; its expected size counts a byte per
/// element when the element type is not known.
fn slice_call<'a>(
    conn: &Connection,
    file: &str,
    object: &str,
    slice: &SliceSpec,
    shape: &[u64],
    dtype: Option<&Dtype>,
    what: &'a str,
) -> Call<'a> {
    let item = dtype.and_then(Dtype::item_size).unwrap_or(1) as u64;
    let expected = shape.iter().fold(item, |n, &d| n.saturating_mul(d));
    Call {
        method: Method::POST,
        url: conn.inner.url("msgpack", file),
        body: Some(ObjectRequest::slice(object, slice.clone()).encode_body()),
        what,
        expected,
    }
}

fn log_read(url: &str, object: &str, bytes: u64, t0: Instant) {
    let secs = t0.elapsed().as_secs_f64();
    tracing::debug!(
        url,
        object,
        bytes,
        elapsed_ms = (secs * 1e3) as u64,
        mib_per_s = if secs > 0.0 {
            bytes as f64 / secs / 1048576.0
        } else {
            0.0
        },
        "slice read"
    );
}
