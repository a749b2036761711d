//! The `/msgpack` requests of a [`Connection`] (PROTOCOL.md §2.4).

use std::time::Instant;

use hdfstream_protocol::{
    ArrayData, ArrayDecoder, ArrayIntoDecoder, Dtype, Member, ObjectRequest, PathInfo, SliceSpec,
};
use reqwest::Method;

use super::codec::{self, decode_err, into_err};
use super::transport::Call;
use super::{Connection, check_msgpack};
use crate::error::{Error, Result};
use crate::progress::Progress;

impl Connection {
    /// Directory listing or file metadata of a virtual path (`POST /msgpack/<vpath>`,
    /// body `{}`). A missing path gives [`Error::NotFound`].
    pub fn request_path(&self, vpath: &str) -> Result<PathInfo> {
        let call = Call {
            method: Method::POST,
            url: self.inner.url("msgpack", vpath),
            body: Some(ObjectRequest::path().encode_body()),
            what: vpath,
        };
        let body = self.read_msgpack(&call, &format!("Path: {vpath}"))?;
        hdfstream_protocol::decode_path(&body).map_err(decode_err(&call.url))
    }

    /// An HDF5 group or dataset of `file`, expanded per `max_depth` and with datasets of at
    /// most `data_size_limit` bytes inlined. A missing object gives [`Error::NotFound`]
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
        };
        let body = self.read_msgpack(&call, &format!("Object: {object}"))?;
        hdfstream_protocol::decode_object(&body).map_err(decode_err(&call.url))
    }

    /// Reads a selection of a dataset. The body is decoded while it streams in: fixed-size
    /// payloads go straight into the final buffer, never buffered whole. A body cut off in
    /// transit ([`Error::Io`]) is requested again within the retry budget.
    pub fn request_slice(&self, file: &str, object: &str, slice: &SliceSpec) -> Result<ArrayData> {
        let t0 = Instant::now();
        let what = format!("{file}:{object}");
        let call = slice_call(self, file, object, slice, &what);
        let (data, bytes) = self.inner.retry_body(&call.url, || {
            let resp = self.inner.send(&call)?;
            check_msgpack(&resp, &call.url)?;
            let mut progress = Progress::new(self.inner.progress, format!("Slice: {object}"));
            let mut dec = ArrayDecoder::new();
            let bytes = codec::pump(resp, &mut dec, &mut progress, &call.url)?;
            let data = dec.finish().map_err(decode_err(&call.url))?;
            Ok((data, bytes))
        })?;
        log_read(&call.url, object, bytes, t0);
        Ok(data)
    }

    /// Reads a selection of a dataset straight into `dest`, which must hold exactly the
    /// selected elements of `dtype` (fixed-size, native byte order, C order).
    ///
    /// The size and type are checked before the request ([`Error::InvalidSelection`],
    /// [`Error::TypeMismatch`]) and again against the response header. A body cut off in
    /// transit is requested again (the buffer is rewritten from the start).
    pub fn request_slice_into(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
        dest: &mut [u8],
    ) -> Result<()> {
        let t0 = Instant::now();
        let item = dtype.item_size().ok_or_else(|| Error::TypeMismatch {
            expected: "a fixed-size element type".into(),
            found: format!("{dtype:?}"),
        })?;
        let needed = slice
            .element_count()
            .checked_mul(item as u64)
            .ok_or_else(|| Error::InvalidSelection {
                reason: "selection size overflows".into(),
            })?;
        if needed != dest.len() as u64 {
            return Err(Error::InvalidSelection {
                reason: format!(
                    "destination holds {} bytes but the selection needs {needed} ({} elements of {item} bytes)",
                    dest.len(),
                    slice.element_count()
                ),
            });
        }
        let what = format!("{file}:{object}");
        let call = slice_call(self, file, object, slice, &what);
        let bytes = self.inner.retry_body(&call.url, || {
            let resp = self.inner.send(&call)?;
            check_msgpack(&resp, &call.url)?;
            let mut progress = Progress::new(self.inner.progress, format!("Slice: {object}"));
            let mut dec = ArrayIntoDecoder::new(dtype, dest);
            let bytes =
                codec::pump(resp, &mut dec, &mut progress, &call.url).map_err(|e| match e {
                    Error::Decode { url, source } => into_err(&url, dtype)(source),
                    other => other,
                })?;
            dec.finish().map_err(into_err(&call.url, dtype))?;
            Ok(bytes)
        })?;
        log_read(&call.url, object, bytes, t0);
        Ok(())
    }
}

fn slice_call<'a>(
    conn: &Connection,
    file: &str,
    object: &str,
    slice: &SliceSpec,
    what: &'a str,
) -> Call<'a> {
    Call {
        method: Method::POST,
        url: conn.inner.url("msgpack", file),
        body: Some(ObjectRequest::slice(object, slice.clone()).encode_body()),
        what,
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
