//! Compressed response bodies (`Content-Encoding: zstd | gzip | deflate`), undone while the
//! body is read.
//!
//! The client decodes bodies itself rather than through reqwest: the zstd and zlib decoders
//! write straight into the buffer a read is given (the decoder's payload slot, i.e. the
//! caller's destination), and their failures are told apart from a connection that broke
//! off, so a corrupt body is an [`Error::Decompress`] naming its coding.

use std::io::{BufReader, Read};

use reqwest::header::{CONTENT_ENCODING, HeaderValue};

use super::reply::Reply;
use crate::error::{Error, Result};

/// The `Accept-Encoding` sent when compression is on: zstd first (fastest to decode), gzip
/// and deflate for proxies that only know those.
pub(crate) const ACCEPT: HeaderValue = HeaderValue::from_static("zstd, gzip, deflate");

/// Bytes read from the connection at a time under a decoder.
const WIRE_READ: usize = 256 * 1024;

/// A content coding the client can undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    Zstd,
    Gzip,
    /// HTTP `deflate`: a zlib stream (RFC 1950).
    Deflate,
}

impl Coding {
    /// The coding's name in `Content-Encoding`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }
}

/// A decoder's failure (not the connection's), carried through `io::Error`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DecoderFailed(std::io::Error);

/// A failure of the connection under a decoder, carried through the decoder unchanged.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct WireFailed(std::io::Error);

/// The response read from the connection, marking its errors as the connection's.
struct Wire(Reply);

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| std::io::Error::new(e.kind(), WireFailed(e)))
    }
}

/// A response body with its coding undone as it is read. Errors of the connection come out
/// as they were; errors of the decoder are wrapped in [`DecoderFailed`].
pub(crate) enum Decoded {
    /// No coding: the response itself.
    Plain(Reply),
    /// A decoder over the response.
    Coded(Box<dyn Read + Send>),
}

impl Read for Decoded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Decoded::Plain(r) => r.read(buf),
            Decoded::Coded(r) => r.read(buf).map_err(|e| {
                if e.get_ref().is_some_and(|inner| inner.is::<WireFailed>()) {
                    match e.into_inner().map(|inner| inner.downcast::<WireFailed>()) {
                        Some(Ok(wire)) => wire.0,
                        // Unreachable: checked just above.
                        _ => std::io::Error::other("connection error"),
                    }
                } else {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, DecoderFailed(e))
                }
            }),
        }
    }
}

/// The coding named by a response's `Content-Encoding` (`None`: identity), or an error for
/// a coding the client did not ask for.
fn coding_of(value: Option<&HeaderValue>, url: &str) -> Result<Option<Coding>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" => Ok(None),
        "zstd" => Ok(Some(Coding::Zstd)),
        "gzip" | "x-gzip" => Ok(Some(Coding::Gzip)),
        "deflate" => Ok(Some(Coding::Deflate)),
        _ => Err(Error::UnexpectedResponse {
            url: url.to_string(),
            reason: format!("unsupported Content-Encoding {value:?}"),
        }),
    }
}

/// The body of `resp` to read, its length when known (`Content-Length` of an uncoded body)
/// and its coding.
pub(crate) fn decode(resp: Reply, url: &str) -> Result<(Decoded, Option<u64>, Option<Coding>)> {
    let coding = coding_of(resp.headers().get(CONTENT_ENCODING), url)?;
    let Some(coding) = coding else {
        let length = resp.content_length();
        return Ok((Decoded::Plain(resp), length, None));
    };
    let wire = BufReader::with_capacity(WIRE_READ, Wire(resp));
    let reader: Box<dyn Read + Send> = match coding {
        Coding::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(wire).map_err(
            |source| Error::Io {
                context: format!("starting a zstd decoder for {url}"),
                source,
            },
        )?),
        Coding::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(wire)),
        Coding::Deflate => Box::new(flate2::bufread::ZlibDecoder::new(wire)),
    };
    Ok((Decoded::Coded(reader), None, Some(coding)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_encodings_are_recognised() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(coding_of(None, "u").unwrap(), None);
        assert_eq!(coding_of(Some(&h("identity")), "u").unwrap(), None);
        assert_eq!(
            coding_of(Some(&h("zstd")), "u").unwrap(),
            Some(Coding::Zstd)
        );
        assert_eq!(
            coding_of(Some(&h("GZIP")), "u").unwrap(),
            Some(Coding::Gzip)
        );
        assert_eq!(
            coding_of(Some(&h("deflate")), "u").unwrap(),
            Some(Coding::Deflate)
        );
        let err = coding_of(Some(&h("br")), "http://x").unwrap_err();
        assert!(
            err.to_string().contains("unsupported Content-Encoding"),
            "{err}"
        );
    }
}
