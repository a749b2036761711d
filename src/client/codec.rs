//! Adapter between HTTP bodies and the sans-IO codec of `hdfstream-protocol`.

use std::io::{ErrorKind, Read};

use hdfstream_protocol::{
    ArrayData, ArrayDecoder, ArrayHeader, ArrayIntoDecoder, ByteOrder, DecodeError, Dtype,
    PushDecoder, SliceSpec,
};

use super::coding::{Coding, DecoderFailed};
use crate::error::{BoxError, Error, Result};
use crate::progress::Progress;

/// Read size when the decoder has no payload slot open (header bytes).
const HEADER_READ: usize = 64 * 1024;
/// Largest single read into a payload slot (keeps progress updates flowing).
const SLOT_READ: usize = 4 << 20;

/// The message of a msgpack `{"error": msg}` body; `None` if the body is anything else
/// (including a valid error map followed by extra bytes).
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    hdfstream_protocol::decode_error(body)
}

/// One response body being read: what it answers, for errors about it.
pub(crate) struct Body<'a> {
    /// Request URL.
    pub(crate) url: &'a str,
    /// What was requested: a virtual path, or `<file>:<object>`.
    pub(crate) what: &'a str,
    /// The `Content-Length` of the response, if it had one.
    pub(crate) content_length: Option<u64>,
    /// An array body: its decoder reports how many bytes a truncated body lacks (exactly on
    /// the fast path), so the expected length is known; the generic msgpack decoder of
    /// metadata only knows a lower bound for one value, so there it is left unknown.
    pub(crate) array: bool,
    /// The body's `Content-Encoding`, undone while it is read.
    pub(crate) coding: Option<Coding>,
}

impl Body<'_> {
    /// The body broke off after `received` of `expected` bytes.
    pub(crate) fn incomplete(
        &self,
        received: u64,
        expected: Option<u64>,
        source: impl Into<BoxError>,
    ) -> Error {
        Error::Incomplete {
            url: self.url.to_string(),
            what: self.what.to_string(),
            received,
            expected,
            attempts: 1,
            source: source.into(),
        }
    }

    /// A read error after `received` (decoded) bytes: the compressed body does not
    /// decompress ([`Error::Decompress`]), or the body broke off (`Content-Length`, else
    /// `announced`, says how long it should have been).
    pub(crate) fn read_error(
        &self,
        received: u64,
        announced: Option<u64>,
        source: std::io::Error,
    ) -> Error {
        if let Some(coding) = self.coding
            && source.get_ref().is_some_and(|e| e.is::<DecoderFailed>())
        {
            return Error::Decompress {
                url: self.url.to_string(),
                what: self.what.to_string(),
                encoding: coding.name().to_string(),
                received,
                attempts: 1,
                source: source.into(),
            };
        }
        self.incomplete(received, self.content_length.or(announced), source)
    }

    /// A codec error about a body of `received` bytes: a truncation (the body ended before
    /// the value was complete) is [`Error::Incomplete`], anything else [`Error::Decode`].
    pub(crate) fn decode_error(&self, received: u64, source: DecodeError) -> Error {
        match source {
            DecodeError::Truncated { expected: missing } => {
                let total = self.array.then(|| received.saturating_add(missing));
                self.incomplete(received, total, source)
            }
            // The consumer of a forwarded payload failed: not the response's fault, and
            // not retried.
            DecodeError::Forward { detail } => Error::Io {
                context: format!("passing on the payload of {} ({})", self.what, self.url),
                source: std::io::Error::other(detail),
            },
            source => Error::Decode {
                url: self.url.to_string(),
                what: self.what.to_string(),
                attempts: 1,
                source,
            },
        }
    }
}

/// The shape a slice response has (PROTOCOL.md §3.8): the first-dimension counts summed,
/// then the count of every further dimension; `[]` for a scalar selection.
pub(crate) fn selection_shape(slice: &SliceSpec) -> Vec<u64> {
    if slice.runs.is_empty() {
        return Vec::new();
    }
    let first = slice
        .runs
        .iter()
        .fold(0u64, |acc, r| acc.saturating_add(r.count));
    std::iter::once(first)
        .chain(slice.rest.iter().map(|r| r.count))
        .collect()
}

/// Checks an array header against the request: the selection's shape, and (when known)
/// exactly the dataset's element type. A mismatch is a corrupt response.
pub(crate) fn check_header(
    h: &ArrayHeader,
    shape: &[u64],
    dtype: Option<&Dtype>,
) -> Result<(), DecodeError> {
    check_shape(&h.shape, shape)?;
    match dtype {
        Some(d) if !same_type(d, &h.dtype) => Err(DecodeError::DestinationMismatch {
            detail: format!("response has type {}, the dataset has {d}", h.dtype),
        }),
        _ => Ok(()),
    }
}

/// Whether two element types describe the same bytes: equal up to how a byte order that
/// does not change the meaning is written (`<`, `=` and, for 1-byte types, `|` are all
/// little endian on the wire); `>` on a multi-byte type differs from all of them.
pub(crate) fn same_type(a: &Dtype, b: &Dtype) -> bool {
    fn big(order: ByteOrder, size: u8) -> bool {
        order == ByteOrder::Big && size > 1
    }
    match (a, b) {
        (Dtype::Int { size: s, order: x }, Dtype::Int { size: t, order: y })
        | (Dtype::UInt { size: s, order: x }, Dtype::UInt { size: t, order: y })
        | (Dtype::Float { size: s, order: x }, Dtype::Float { size: t, order: y }) => {
            s == t && big(*x, *s) == big(*y, *t)
        }
        (Dtype::Vlen(x), Dtype::Vlen(y)) => same_type(x, y),
        (Dtype::Array { base: x, dims: d }, Dtype::Array { base: y, dims: e }) => {
            d == e && same_type(x, y)
        }
        (Dtype::Compound(f), Dtype::Compound(g)) => {
            f.len() == g.len()
                && f.iter()
                    .zip(g)
                    .all(|((n, x), (m, y))| n == m && same_type(x, y))
        }
        _ => a == b,
    }
}

fn check_shape(got: &[u64], want: &[u64]) -> Result<(), DecodeError> {
    if got == want {
        return Ok(());
    }
    Err(DecodeError::Malformed {
        what: "slice response",
        detail: format!("shape {got:?} does not match the selection's {want:?}"),
    })
}

/// Checks a decoded slice response against the request (see [`check_header`]); a
/// variable-length array must answer a variable-length type.
pub(crate) fn check_array(
    data: &ArrayData,
    shape: &[u64],
    dtype: Option<&Dtype>,
) -> Result<(), DecodeError> {
    match data {
        ArrayData::Nd(nd) => {
            check_shape(&nd.shape, shape)?;
            match dtype {
                Some(d) if !same_type(d, &nd.dtype) => Err(DecodeError::DestinationMismatch {
                    detail: format!("response has type {}, the dataset has {d}", nd.dtype),
                }),
                _ => Ok(()),
            }
        }
        ArrayData::Vlen(v) => {
            check_shape(&v.shape, shape)?;
            match dtype {
                Some(d) if d.is_fixed_size() => Err(DecodeError::DestinationMismatch {
                    detail: format!(
                        "response is a variable-length array, the dataset has type {d}"
                    ),
                }),
                _ => Ok(()),
            }
        }
    }
}

/// The error for a response whose element type differs from the one asked for, once the
/// retries are spent: a [`Error::TypeMismatch`] naming the request; other errors unchanged.
pub(crate) fn mismatch_to_type_error(err: Error, dtype: &Dtype) -> Error {
    match err {
        Error::Decode {
            url,
            what,
            attempts,
            source: DecodeError::DestinationMismatch { detail },
        } => Error::TypeMismatch {
            expected: dtype.to_string(),
            found: format!(
                "{detail} (response from {url} for {what}, {attempts} attempt{})",
                if attempts == 1 { "" } else { "s" }
            ),
        },
        other => other,
    }
}

/// Pushes the whole body of `r` into `dec`, reading payload bytes straight into the
/// decoder's final buffer, and reporting progress (total = expected body length once the
/// header is known). `check` sees the array header as soon as it is parsed (fast path), so
/// a response that does not match the request stops before its payload is read. Returns
/// the number of body bytes read; a body that breaks off is [`Error::Incomplete`].
pub(crate) fn pump<D: PushDecoder + ?Sized>(
    mut r: impl Read,
    dec: &mut D,
    progress: &mut Progress,
    body: &Body<'_>,
    check: impl Fn(&ArrayHeader) -> Result<(), DecodeError>,
) -> Result<u64> {
    // Grown to what the decoder asks for (a small body never needs the full 64 KiB).
    let mut scratch = Vec::new();
    let mut total = 0u64;
    let mut expected: Option<u64> = None;
    loop {
        let read = if let Some(slot) = dec.payload_slot() {
            let len = slot.len().min(SLOT_READ);
            let n = read_some(&mut r, slot.get_mut(..len).unwrap_or_default())
                .map_err(|e| body.read_error(total, expected, e))?;
            if n > 0 {
                dec.advance(n)
                    .map_err(|e| body.decode_error(total + n as u64, e))?;
            }
            n
        } else {
            let want = dec.wanted().clamp(1, HEADER_READ);
            if scratch.len() < want {
                scratch.resize(want, 0);
            }
            let buf = scratch.get_mut(..want).unwrap_or_default();
            let n = read_some(&mut r, buf).map_err(|e| body.read_error(total, expected, e))?;
            if n > 0 {
                dec.feed(buf.get(..n).unwrap_or_default())
                    .map_err(|e| body.decode_error(total + n as u64, e))?;
            }
            n
        };
        if read == 0 {
            break;
        }
        total += read as u64;
        if expected.is_none()
            && let Some(h) = dec.header()
        {
            check(h).map_err(|e| body.decode_error(total, e))?;
            let len = expected_body_len(h);
            progress.set_total(len);
            expected = Some(len);
        }
        progress.inc(read as u64);
    }
    Ok(total)
}

/// Reads a whole metadata body (the generic msgpack decoders need all of it at once).
/// Memory grows with the bytes received: `Content-Length` is a claim, so at most one read
/// buffer is reserved from it.
pub(crate) fn read_body(
    mut r: impl Read,
    body: &Body<'_>,
    progress: &mut Progress,
) -> Result<Vec<u8>> {
    let hint = body.content_length.unwrap_or(0).min(HEADER_READ as u64) as usize;
    let mut bytes = Vec::with_capacity(hint);
    // Reads of the announced size, else growing to 64 KiB while they fill the buffer.
    let mut buf = vec![0u8; hint.clamp(1024, HEADER_READ)];
    loop {
        let n = read_some(&mut r, &mut buf)
            .map_err(|e| body.read_error(bytes.len() as u64, None, e))?;
        if n == 0 {
            return Ok(bytes);
        }
        bytes.extend_from_slice(buf.get(..n).unwrap_or_default());
        progress.inc(n as u64);
        if n == buf.len() && buf.len() < HEADER_READ {
            buf.resize(2 * buf.len(), 0);
        }
    }
}

/// Decodes a slice response while it streams in (fixed-size payloads straight into their
/// final buffer) and checks it against the request: `shape` is the selection's shape and
/// `dtype`, when known, the dataset's element type (which the result then reports, however
/// the response wrote its byte order). Returns the value and the body bytes read.
pub(crate) fn read_slice(
    r: impl Read,
    body: &Body<'_>,
    progress: &mut Progress,
    shape: &[u64],
    dtype: Option<&Dtype>,
) -> Result<(ArrayData, u64)> {
    let mut dec = ArrayDecoder::new();
    // The size asked for is allocated at once; an answer claiming more grows only with
    // the bytes that arrive (and is refused once its header is checked).
    let asked = dtype
        .and_then(Dtype::item_size)
        .and_then(|item| shape.iter().try_fold(item as u64, |a, &d| a.checked_mul(d)));
    if let Some(n) = asked {
        dec = dec.with_preallocation_limit(n);
    }
    let bytes = pump(r, &mut dec, progress, body, |h| {
        check_header(h, shape, dtype)
    })?;
    let mut data = dec.finish().map_err(|e| body.decode_error(bytes, e))?;
    check_array(&data, shape, dtype).map_err(|e| body.decode_error(bytes, e))?;
    // The same type may be written `<`, `=` or `|`: report it as the metadata does.
    if let (ArrayData::Nd(nd), Some(d)) = (&mut data, dtype) {
        nd.dtype = d.clone();
    }
    Ok((data, bytes))
}

/// Checks, before any request, that `dest` can take the selection `slice` of elements of
/// `dtype`: a fixed-size type, and exactly the selection's size.
pub(crate) fn check_into_destination(
    slice: &SliceSpec,
    dtype: &Dtype,
    dest_len: usize,
) -> Result<()> {
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
    if needed != dest_len as u64 {
        return Err(Error::InvalidSelection {
            reason: format!(
                "destination holds {dest_len} bytes but the selection needs {needed} ({} elements of {item} bytes)",
                slice.element_count()
            ),
        });
    }
    Ok(())
}

/// Decodes a slice response straight into `dest` (elements of `dtype`, native order) and
/// checks its header against the request (see [`read_slice`]). Returns the body bytes read.
pub(crate) fn read_slice_into(
    r: impl Read,
    body: &Body<'_>,
    progress: &mut Progress,
    shape: &[u64],
    dtype: &Dtype,
    dest: &mut [u8],
) -> Result<u64> {
    let mut dec = ArrayIntoDecoder::new(dtype, dest);
    let bytes = pump(r, &mut dec, progress, body, |h| {
        check_header(h, shape, Some(dtype))
    })?;
    let header = dec.finish().map_err(|e| body.decode_error(bytes, e))?;
    check_header(&header, shape, Some(dtype)).map_err(|e| body.decode_error(bytes, e))?;
    Ok(bytes)
}

/// Body length of a compactly encoded ndarray with this header (map header, bin headers
/// and payload), as the reference server writes it.
/// Constant time whatever `nbytes` claims: every bin but the last is a full one.
pub(crate) fn expected_body_len(h: &ArrayHeader) -> u64 {
    use hdfstream_protocol::{MAX_BIN_LEN, bin_header};
    let head = hdfstream_protocol::ndarray_header(&h.dtype, &h.shape, h.nbytes).len() as u64;
    let (full, last) = (h.nbytes / MAX_BIN_LEN, h.nbytes % MAX_BIN_LEN);
    let mut bins = full.saturating_mul(bin_header(MAX_BIN_LEN).len() as u64);
    if last > 0 {
        bins = bins.saturating_add(bin_header(last).len() as u64);
    }
    head.saturating_add(bins).saturating_add(h.nbytes)
}

fn read_some(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz_decoders`: the expected length of a body whose header claimed 4 EB
    /// was summed bin by bin, 10^9 bins, before its payload was read.
    #[test]
    fn the_expected_length_of_a_huge_claim_is_computed_at_once() {
        let h = |nbytes: u64| ArrayHeader {
            dtype: Dtype::parse("S10").unwrap(),
            shape: vec![nbytes / 10],
            nbytes,
        };
        let by_bin = |nbytes: u64| {
            let head =
                hdfstream_protocol::ndarray_header(&h(nbytes).dtype, &h(nbytes).shape, nbytes);
            let bins: u64 = hdfstream_protocol::bin_lengths(nbytes)
                .map(|l| hdfstream_protocol::bin_header(l).len() as u64)
                .sum();
            head.len() as u64 + bins + nbytes
        };
        for n in [
            0,
            10,
            250,
            70_000,
            4_294_967_290,
            4_294_967_300,
            9 * 4_294_967_295 + 20,
        ] {
            assert_eq!(expected_body_len(&h(n)), by_bin(n), "{n}");
        }
        // 10^9 bins: summed one by one this took minutes.
        let n = 0x37cd_175e_f4f1_d910;
        let full = n / hdfstream_protocol::MAX_BIN_LEN;
        let head = hdfstream_protocol::ndarray_header(&h(n).dtype, &h(n).shape, n).len() as u64;
        let last = hdfstream_protocol::bin_header(n % 4_294_967_295).len() as u64;
        assert_eq!(expected_body_len(&h(n)), head + full * 5 + last + n);
    }

    /// Found by `fuzz_decoders`: a `Content-Length` of 2^60 made every metadata read
    /// reserve 64 MiB before a byte arrived.
    #[test]
    fn a_claimed_length_reserves_at_most_one_read_buffer() {
        let body = Body {
            url: "http://x/msgpack/f.hdf5",
            what: "f.hdf5",
            content_length: Some(1 << 60),
            array: false,
            coding: None,
        };
        let input: &[u8] = &[0x81, 0xa5, b'e', b'r', b'r', b'o', b'r', 0xa1, b'x'];
        let mut progress = Progress::new(Some(false), String::new());
        let bytes = read_body(input, &body, &mut progress).unwrap();
        assert_eq!(bytes, input);
        assert!(bytes.capacity() <= HEADER_READ, "{}", bytes.capacity());
    }
}
