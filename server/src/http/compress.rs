//! Negotiated response compression (`ServeConfig::compression`, `--compress`).
//!
//! A middleware inside the accounting gate (which therefore counts the bytes sent) picks the
//! coding from the request's `Accept-Encoding` (highest q-value; zstd before gzip on a tie)
//! among those the server allows, and compresses the body as it streams: memory stays a
//! few buffers per response, and a body that fails mid-stream still ends in an error the
//! client sees (the chunked body gets no last chunk). zstd frames carry a content checksum,
//! so bytes changed on the way are an error at the client, not wrong values (gzip has its
//! CRC-32).
//!
//! Only `/msgpack` responses of at least [`MIN_COMPRESSED_BYTES`] (or of unknown length)
//! are compressed: downloads are opaque files, often already compressed (the HDF5 gzip
//! chunks of a sample snapshot shrink only to 0.80 with zstd -1), and keep their
//! `Content-Length`.

use std::io;

use async_compression::Level;
use async_compression::tokio::bufread::{GzipEncoder, ZstdEncoder};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;
use tokio::io::AsyncRead;
use tokio_stream::StreamExt;
use tokio_util::io::{ReaderStream, StreamReader};

use super::respond::MSGPACK;
use crate::config::ContentCoding;

/// Responses shorter than this go out uncompressed: they fit in one packet either way.
pub const MIN_COMPRESSED_BYTES: u64 = 1024;

/// Compression level of both codings: the fastest (zstd 1, gzip 1).
const LEVEL: i32 = 1;

/// Size of the compressed pieces handed to the connection.
const OUT_PIECE: usize = 64 * 1024;

/// The coding to answer `accept` (an `Accept-Encoding` value) with, among `allowed`:
/// the highest q-value wins, zstd on a tie; `None` when none is acceptable.
pub(crate) fn negotiate(accept: &HeaderMap, allowed: &[ContentCoding]) -> Option<ContentCoding> {
    let mut best: Option<(u16, ContentCoding)> = None;
    for value in accept.get_all(header::ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| parse_q(v.trim()))
                })
                .unwrap_or(Some(1000));
            let Some(q) = q.filter(|&q| q > 0) else {
                continue;
            };
            let named: &[ContentCoding] = match name.as_str() {
                "zstd" => &[ContentCoding::Zstd],
                "gzip" | "x-gzip" => &[ContentCoding::Gzip],
                "*" => &[ContentCoding::Zstd, ContentCoding::Gzip],
                _ => &[],
            };
            for &coding in named.iter().filter(|c| allowed.contains(c)) {
                let rank = |c| u8::from(c == ContentCoding::Zstd);
                if best.is_none_or(|(bq, bc)| (q, rank(coding)) > (bq, rank(bc))) {
                    best = Some((q, coding));
                }
            }
        }
    }
    best.map(|(_, coding)| coding)
}

/// A q-value (`0`, `0.5`, `1.000`) in thousandths; `None` if malformed.
fn parse_q(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether `resp` may be compressed: a msgpack body of unknown length or at least
/// [`MIN_COMPRESSED_BYTES`], not already encoded.
fn compressible(resp: &Response) -> bool {
    let headers = resp.headers();
    let msgpack = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == MSGPACK.as_bytes());
    let length = resp.body().size_hint().exact().or_else(|| {
        headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    });
    msgpack
        && !headers.contains_key(header::CONTENT_ENCODING)
        && length.is_none_or(|n| n >= MIN_COMPRESSED_BYTES)
}

/// The middleware: compresses the response when the server allows a coding the request
/// accepts (state: the allowed codings).
pub(crate) async fn compress(
    State(allowed): State<Vec<ContentCoding>>,
    req: Request,
    next: Next,
) -> Response {
    let coding = negotiate(req.headers(), &allowed);
    let resp = next.run(req).await;
    if !compressible(&resp) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let Some(coding) = coding else {
        return Response::from_parts(parts, body);
    };
    let input = StreamReader::new(body.into_data_stream().map(|r| r.map_err(io::Error::other)));
    let level = Level::Precise(LEVEL);
    let (encoded, name): (Box<dyn AsyncRead + Send + Unpin>, _) = match coding {
        ContentCoding::Zstd => (
            Box::new(ZstdEncoder::with_quality_and_params(
                input,
                level,
                &[async_compression::zstd::CParameter::checksum_flag(true)],
            )),
            "zstd",
        ),
        ContentCoding::Gzip => (Box::new(GzipEncoder::with_quality(input, level)), "gzip"),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
    let stream = ReaderStream::with_capacity(encoded, OUT_PIECE);
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(accept: &str, allowed: &[ContentCoding]) -> Option<ContentCoding> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(accept).expect("header"),
        );
        negotiate(&headers, allowed)
    }

    #[test]
    fn accept_encoding_is_negotiated_by_q_value_then_zstd_first() {
        use ContentCoding::{Gzip, Zstd};
        let both = [Zstd, Gzip];
        assert_eq!(pick("gzip, deflate", &both), Some(Gzip));
        assert_eq!(pick("gzip, deflate, zstd", &both), Some(Zstd));
        assert_eq!(pick("zstd;q=0.5, gzip", &both), Some(Gzip));
        assert_eq!(pick("zstd;q=0.5, gzip;q=0.25", &both), Some(Zstd));
        assert_eq!(pick("GZIP;Q=1.0", &both), Some(Gzip));
        assert_eq!(pick("*", &both), Some(Zstd));
        assert_eq!(pick("*", &[Gzip]), Some(Gzip));
        assert_eq!(pick("zstd;q=0, gzip;q=0", &both), None);
        assert_eq!(pick("zstd;q=2", &both), None, "malformed q");
        assert_eq!(pick("zstd;q=0.0001", &both), None, "malformed q");
        assert_eq!(pick("br, deflate, identity", &both), None);
        assert_eq!(pick("zstd", &[Gzip]), None);
        assert_eq!(pick("zstd, gzip", &[]), None);
        assert_eq!(negotiate(&HeaderMap::new(), &both), None);
    }
}
