//! Streaming response bodies produced by blocking code.
//!
//! A producer runs in `spawn_blocking` and writes into a [`ChunkWriter`], which cuts the
//! output into pieces of at most `chunk_bytes` and sends them over a bounded channel that
//! becomes the response body. Memory per response is therefore bounded by a few pieces, and
//! a slow client back-pressures the producer (its sends block). The status line is decided
//! by the first message: an error before any piece was sent becomes a proper error response;
//! an error later ends the body early, which the client sees as a truncated response. A body
//! that fits in one piece is sent whole, with its length.

use std::io::{self, Read, Write};
use std::panic::AssertUnwindSafe;

use axum::body::Body;
use bytes::Bytes;
use hdfstream_protocol::RequestError;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// Pieces that may wait in the channel besides the one being filled.
const CHANNEL_DEPTH: usize = 2;

enum Piece {
    Data(Bytes),
    Failed(RequestError),
}

/// `io::Write` end of a streamed body (used from blocking code only).
pub(crate) struct ChunkWriter {
    buf: Vec<u8>,
    chunk_bytes: usize,
    tx: mpsc::Sender<Piece>,
    sent_any: bool,
}

fn disconnected() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "client went away")
}

impl ChunkWriter {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk_bytes));
        self.tx
            .blocking_send(Piece::Data(Bytes::from(piece)))
            .map_err(|_| disconnected())?;
        self.sent_any = true;
        Ok(())
    }

    /// Copy exactly `len` bytes from `reader`, reading straight into the outgoing pieces
    /// (no intermediate buffer, no zero-filling).
    pub(crate) fn copy_exact(&mut self, reader: &mut dyn Read, mut len: u64) -> io::Result<()> {
        while len > 0 {
            if self.buf.len() >= self.chunk_bytes {
                self.send_buffer()?;
            }
            let room = (self.chunk_bytes - self.buf.len()) as u64;
            let got = reader.take(len.min(room)).read_to_end(&mut self.buf)? as u64;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while it was being sent",
                ));
            }
            len -= got;
        }
        Ok(())
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() >= self.chunk_bytes {
            self.send_buffer()?;
        }
        let room = self.chunk_bytes - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Run `produce` on the blocking pool and stream what it writes.
///
/// Returns the body once the first piece is ready, or the producer's error if it failed
/// before sending anything.
pub(crate) async fn stream_blocking<F>(chunk_bytes: usize, produce: F) -> Result<Body, RequestError>
where
    F: FnOnce(&mut ChunkWriter) -> Result<(), RequestError> + Send + 'static,
{
    let chunk_bytes = chunk_bytes.max(4096);
    let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
    let task = tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter {
            buf: Vec::with_capacity(chunk_bytes),
            chunk_bytes,
            tx,
            sent_any: false,
        };
        let produced = std::panic::catch_unwind(AssertUnwindSafe(|| produce(&mut writer)))
            .unwrap_or_else(|_| {
                Err(RequestError {
                    status: 500,
                    message: "internal error while writing the response".to_owned(),
                })
            });
        let outcome = produced.and_then(|()| {
            writer.send_buffer().map_err(|e| RequestError {
                status: 500,
                message: e.to_string(),
            })
        });
        if let Err(error) = outcome {
            if writer.sent_any {
                tracing::warn!(%error, "response failed after streaming began; body truncated");
            }
            // The receiver may be gone already; nothing more to do then.
            let _ = writer.tx.blocking_send(Piece::Failed(error));
        }
    });
    let first = match rx.recv().await {
        Some(Piece::Data(bytes)) => bytes,
        Some(Piece::Failed(error)) => return Err(error),
        None => {
            return match task.await {
                Ok(()) => Ok(Body::empty()),
                Err(join) => Err(RequestError {
                    status: 500,
                    message: format!("response producer failed: {join}"),
                }),
            };
        }
    };
    // A first piece shorter than a full one was the producer's final flush: the whole body
    // is known, so it goes out with a length (Content-Length; a small response is then
    // never compressed).
    let mut second = None;
    if first.len() < chunk_bytes {
        match rx.recv().await {
            None => return Ok(Body::from(first)),
            piece => second = piece,
        }
    }
    let rest = tokio_stream::iter(second)
        .chain(ReceiverStream::new(rx))
        .map(|piece| match piece {
            Piece::Data(bytes) => Ok(bytes),
            Piece::Failed(error) => Err(io::Error::other(error.message)),
        });
    let stream = tokio_stream::once(Ok(first)).chain(rest);
    Ok(Body::from_stream(stream))
}
