//! A response whose head has arrived, its body unread: from the shared keep-alive pool, or
//! a large read's own connection driven on the calling thread.
//!
//! The pooled client (`reqwest::blocking`) runs its connections on a thread of its own and
//! hands every piece of a body across to the reader: two thread wake-ups per piece, which
//! on a 1 GiB response cost more than the copy. A large read ([`ClientBuilder::with_direct_reads_from`])
//! instead gets a current-thread runtime of its own on the calling thread, so the socket is
//! read by the thread that decodes.
//!
//! [`ClientBuilder::with_direct_reads_from`]: super::ClientBuilder::with_direct_reads_from

use std::io::Read;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// A response with its body still to read.
pub(crate) struct Reply(Inner);

enum Inner {
    /// From the shared pool.
    Pooled(reqwest::blocking::Response),
    /// On a connection of its own, driven by the thread that reads it.
    Direct(Box<Direct>),
}

/// A response on its own connection and runtime. Field order is drop order: the response
/// (and its connection) goes before the runtime that drives it.
struct Direct {
    resp: reqwest::Response,
    /// The rest of the piece last received.
    piece: bytes::Bytes,
    runtime: tokio::runtime::Runtime,
}

impl Reply {
    /// A response of the shared pool.
    pub(crate) fn pooled(resp: reqwest::blocking::Response) -> Reply {
        Reply(Inner::Pooled(resp))
    }

    /// A response on its own connection, driven by `runtime` on the thread that reads it.
    pub(crate) fn direct(runtime: tokio::runtime::Runtime, resp: reqwest::Response) -> Reply {
        Reply(Inner::Direct(Box::new(Direct {
            resp,
            piece: bytes::Bytes::new(),
            runtime,
        })))
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match &self.0 {
            Inner::Pooled(r) => r.status(),
            Inner::Direct(d) => d.resp.status(),
        }
    }

    /// The response headers.
    pub(crate) fn headers(&self) -> &HeaderMap {
        match &self.0 {
            Inner::Pooled(r) => r.headers(),
            Inner::Direct(d) => d.resp.headers(),
        }
    }

    /// The body length from `Content-Length`, when sent.
    pub(crate) fn content_length(&self) -> Option<u64> {
        match &self.0 {
            Inner::Pooled(r) => r.content_length(),
            Inner::Direct(d) => d.resp.content_length(),
        }
    }
}

impl Read for Reply {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Direct {
            resp,
            piece,
            runtime,
        } = match &mut self.0 {
            Inner::Pooled(r) => return r.read(buf),
            Inner::Direct(d) => &mut **d,
        };
        if buf.is_empty() {
            return Ok(0);
        }
        while piece.is_empty() {
            match runtime.block_on(async { resp.chunk().await }) {
                Ok(Some(next)) => *piece = next,
                Ok(None) => return Ok(0),
                Err(e) if e.is_timeout() => {
                    return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, e));
                }
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(piece.len());
        let head = piece.split_to(n);
        buf.get_mut(..n)
            .ok_or_else(|| std::io::Error::other("read buffer shorter than its length"))?
            .copy_from_slice(&head);
        Ok(n)
    }
}
