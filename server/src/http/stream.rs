//! Streaming response bodies produced by blocking code.
//!
//! A producer runs in `spawn_blocking` and writes into a [`ChunkWriter`], which cuts the
//! output into pieces of at most `chunk_bytes` and sends them over a bounded channel that
//! becomes the response body. Memory per response is therefore bounded by a few pieces, and
//! a slow client back-pressures the producer (its sends block). The status line is decided
//! by the first message: an error before any piece was sent becomes a proper error response;
//! an error later ends the body early, which the client sees as a truncated response (no
//! terminating chunk, or fewer bytes than the `Content-Length`). A body that fits in one
//! piece is sent whole, with its length.
//!
//! A producer reading a file sets a guard ([`ChunkWriter::guard_file`]) that checks, before
//! each piece leaves, that the file is still the version it started reading: the bytes of a
//! file truncated, rewritten, replaced or deleted meanwhile never leave, and the body fails.

use std::fs::File;
use std::io::{self, Read, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use axum::body::Body;
use bytes::Bytes;
use hdfstream_protocol::RequestError;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::stamp::{FileChanged, FileStamp};

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
    /// The file whose version every piece must still match before it leaves.
    guard: Option<(PathBuf, FileStamp)>,
}

fn disconnected() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "client went away")
}

impl ChunkWriter {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.check_guard()?;
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk_bytes));
        self.tx
            .blocking_send(Piece::Data(Bytes::from(piece)))
            .map_err(|_| disconnected())?;
        self.sent_any = true;
        Ok(())
    }

    /// From now on, send a piece only if `path` still has `stamp` (see the module doc).
    pub(crate) fn guard_file(&mut self, path: &Path, stamp: FileStamp) {
        self.guard = Some((path.to_owned(), stamp));
    }

    /// Checks the guarded file now (what is buffered was read from the version it names).
    pub(crate) fn check_guard(&self) -> io::Result<()> {
        match &self.guard {
            Some((path, stamp)) => stamp.check(path),
            None => Ok(()),
        }
    }

    /// Stops guarding, after checking the file one last time for what is buffered.
    pub(crate) fn unguard(&mut self) -> io::Result<()> {
        self.check_guard()?;
        self.guard = None;
        Ok(())
    }

    /// Copy the file `path`, which must have `len` bytes, as one version: a file of another
    /// size, or one that changes while it is copied, fails with [`FileChanged`].
    pub(crate) fn copy_file(&mut self, path: &Path, len: u64) -> io::Result<()> {
        let mut file = File::open(path)?;
        let stamp = FileStamp::of_file(&file)?;
        if stamp.len() != len {
            return Err(io::Error::other(FileChanged));
        }
        // The path must still name the file opened (not a replacement made meanwhile).
        stamp.check(path)?;
        self.guard_file(path, stamp);
        self.copy_exact(&mut file, len)?;
        self.unguard()
    }

    /// Copy exactly `len` bytes from `reader`, reading straight into the outgoing pieces
    /// (no intermediate buffer, no zero-filling); fewer bytes fail with [`FileChanged`].
    fn copy_exact(&mut self, reader: &mut dyn Read, mut len: u64) -> io::Result<()> {
        while len > 0 {
            if self.buf.len() >= self.chunk_bytes {
                self.send_buffer()?;
            }
            let room = (self.chunk_bytes - self.buf.len()) as u64;
            let got = reader.take(len.min(room)).read_to_end(&mut self.buf)? as u64;
            if got == 0 {
                // The file shrank while it was being sent.
                return Err(io::Error::other(FileChanged));
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
            guard: None,
        };
        let produced = std::panic::catch_unwind(AssertUnwindSafe(|| produce(&mut writer)))
            .unwrap_or_else(|_| {
                Err(RequestError {
                    status: 500,
                    message: "internal error while writing the response".to_owned(),
                })
            });
        let outcome = produced.and_then(|()| {
            writer.send_buffer().map_err(|e| {
                if crate::stamp::is_changed(&e) {
                    crate::stamp::changed_error()
                } else {
                    RequestError {
                        status: 500,
                        message: e.to_string(),
                    }
                }
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
