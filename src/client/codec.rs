//! Adapter between HTTP bodies and the sans-IO codec of `hdfstream-protocol`.

use std::io::{ErrorKind, Read};

use hdfstream_protocol::{ArrayHeader, DecodeError, Dtype, PushDecoder};

use crate::error::{Error, Result};
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

/// Wraps a codec error with the request URL.
pub(crate) fn decode_err(url: &str) -> impl FnOnce(DecodeError) -> Error + '_ {
    move |source| Error::Decode {
        url: url.to_string(),
        source,
    }
}

/// Maps a codec error on the into-buffer path: a destination mismatch is the caller's
/// type or size not matching what the server sent.
pub(crate) fn into_err(url: &str, dtype: &Dtype) -> impl FnOnce(DecodeError) -> Error {
    let url = url.to_string();
    let expected = format!("{dtype:?}");
    move |source| match source {
        DecodeError::DestinationMismatch { detail } => Error::TypeMismatch {
            expected,
            found: detail,
        },
        source => Error::Decode { url, source },
    }
}

/// Pushes the whole body of `r` into `dec`, reading payload bytes straight into the
/// decoder's final buffer, and reporting progress (total = expected body length once the
/// header is known). Returns the number of body bytes read.
pub(crate) fn pump<D: PushDecoder + ?Sized>(
    mut r: impl Read,
    dec: &mut D,
    progress: &mut Progress,
    url: &str,
) -> Result<u64> {
    let mut scratch = vec![0u8; HEADER_READ];
    let mut total = 0u64;
    let mut have_total = false;
    loop {
        let n = if let Some(slot) = dec.payload_slot() {
            let len = slot.len().min(SLOT_READ);
            let n = read_some(&mut r, slot.get_mut(..len).unwrap_or_default(), url)?;
            if n == 0 {
                break;
            }
            dec.advance(n).map_err(decode_err(url))?;
            n
        } else {
            let want = dec.wanted().clamp(1, HEADER_READ);
            let buf = scratch.get_mut(..want).unwrap_or_default();
            let n = read_some(&mut r, buf, url)?;
            if n == 0 {
                break;
            }
            dec.feed(buf.get(..n).unwrap_or_default())
                .map_err(decode_err(url))?;
            n
        };
        total += n as u64;
        if !have_total && let Some(h) = dec.header() {
            progress.set_total(expected_body_len(h));
            have_total = true;
        }
        progress.inc(n as u64);
    }
    Ok(total)
}

/// Body length of a compactly encoded ndarray with this header (map header, bin headers
/// and payload), as the reference server writes it.
fn expected_body_len(h: &ArrayHeader) -> u64 {
    let head = hdfstream_protocol::ndarray_header(&h.dtype, &h.shape, h.nbytes).len() as u64;
    let bins: u64 = hdfstream_protocol::bin_lengths(h.nbytes)
        .map(|l| hdfstream_protocol::bin_header(l).len() as u64)
        .sum();
    head.saturating_add(bins).saturating_add(h.nbytes)
}

fn read_some(r: &mut impl Read, buf: &mut [u8], url: &str) -> Result<usize> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Io {
                    context: format!("reading {url}"),
                    source,
                });
            }
        }
    }
}
