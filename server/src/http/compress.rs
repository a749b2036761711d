//! Negotiated response compression (`ServeConfig::compression`, `--compress`).
//!
//! tower-http's compression layer picks the coding from the request's `Accept-Encoding`
//! (highest q-value; zstd before gzip on a tie) among those the server allows, and
//! compresses the body as it streams (memory stays a few KiB per response, a body that fails
//! mid-stream still ends in an error the client sees: the chunked body has no final chunk).
//! Only `/msgpack` responses of at least [`MIN_COMPRESSED_BYTES`] are compressed: downloads
//! are opaque files, often already compressed (HDF5 gzip chunks: a sample snapshot shrinks to
//! 0.80 with zstd -1), and keep their `Content-Length`.

use axum::http::{Response, header};
use http_body::Body;
use tower_http::compression::{CompressionLayer, CompressionLevel, Predicate};

use super::respond::MSGPACK;
use crate::config::ContentCoding;

/// Responses shorter than this go out uncompressed: they fit in one packet either way.
pub const MIN_COMPRESSED_BYTES: u64 = 1024;

/// Compression level of both codings: the fastest (zstd 1, gzip 1).
const LEVEL: i32 = 1;

/// Which responses are compressed: msgpack bodies of unknown length or at least
/// [`MIN_COMPRESSED_BYTES`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MsgpackAboveMin;

impl Predicate for MsgpackAboveMin {
    fn should_compress<B: Body>(&self, response: &Response<B>) -> bool {
        let msgpack = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == MSGPACK.as_bytes());
        let length = response.body().size_hint().exact().or_else(|| {
            response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        });
        msgpack && length.is_none_or(|n| n >= MIN_COMPRESSED_BYTES)
    }
}

/// The compression layer for `codings`, or `None` when the list is empty.
pub(crate) fn layer(codings: &[ContentCoding]) -> Option<CompressionLayer<MsgpackAboveMin>> {
    if codings.is_empty() {
        return None;
    }
    let allows = |c| codings.contains(&c);
    Some(
        CompressionLayer::new()
            .zstd(allows(ContentCoding::Zstd))
            .gzip(allows(ContentCoding::Gzip))
            .quality(CompressionLevel::Precise(LEVEL))
            .compress_when(MsgpackAboveMin),
    )
}
