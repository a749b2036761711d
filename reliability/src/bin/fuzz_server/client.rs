//! A blocking HTTP/1.1 client over one TCP connection: sends raw bytes, reads one response
//! (skipping interim 1xx), with a `Content-Length`, chunked or read-to-close body. Every
//! read has a timeout; a timeout is reported as such (a hang), never waited out.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// A response.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Status code.
    pub(crate) status: u16,
    /// Body (empty unless asked for).
    pub(crate) body: Vec<u8>,
    /// Whether the server will close the connection after it.
    pub(crate) close: bool,
}

/// Why no (complete) response came.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The connection ended; `partial`: after some bytes of a response.
    Closed { partial: bool },
    /// No byte for the whole timeout.
    Timeout,
    /// Another socket error (a reset, mostly); `partial` as for `Closed`.
    Io { error: String, partial: bool },
    /// Bytes that are not an HTTP/1.x response.
    Malformed(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Closed { partial: false } => f.write_str("closed without a response"),
            Failure::Closed { partial: true } => f.write_str("closed in the middle of a response"),
            Failure::Timeout => f.write_str("no response within the timeout (hang)"),
            Failure::Io { error, partial } => write!(f, "socket error {error} (partial {partial})"),
            Failure::Malformed(m) => write!(f, "malformed response: {m}"),
        }
    }
}

/// One connection.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes of the current response seen so far.
    seen: usize,
}

impl Conn {
    /// Connect to `addr` (from `source` if given), with `timeout` on every read and write.
    pub(crate) fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> io::Result<Conn> {
        let stream = match source {
            None => TcpStream::connect_timeout(&addr, timeout)?,
            Some(ip) => {
                use socket2::{Domain, Socket, Type};
                let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
                socket.bind(&SocketAddr::new(ip, 0).into())?;
                socket.connect_timeout(&addr.into(), timeout)?;
                socket.into()
            }
        };
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(64 << 10),
            pos: 0,
            seen: 0,
        })
    }

    /// Send `bytes`. A server may answer and close before reading all of a request; the
    /// caller reads the reply anyway.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// End the sending direction (the server sees the end of the request stream).
    pub(crate) fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Read more bytes into the buffer; `Ok(0)` at the end of the stream.
    fn fill(&mut self) -> Result<usize, Failure> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > (1 << 20) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + (64 << 10), 0);
        let read = self.stream.read(&mut self.buf[len..]);
        match read {
            Ok(n) => {
                self.buf.truncate(len + n);
                self.seen += n;
                Ok(n)
            }
            Err(e) => {
                self.buf.truncate(len);
                Err(match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::Timeout,
                    _ => Failure::Io {
                        error: e.to_string(),
                        partial: self.seen > 0,
                    },
                })
            }
        }
    }

    fn ended(&self) -> Failure {
        Failure::Closed {
            partial: self.seen > 0,
        }
    }

    /// Make at least `n` unread bytes available.
    fn need(&mut self, n: usize) -> Result<(), Failure> {
        while self.buf.len() - self.pos < n {
            if self.fill()? == 0 {
                return Err(self.ended());
            }
        }
        Ok(())
    }

    /// Whether the server has closed the connection (a read finds the end of the stream
    /// or an error at once, or finds bytes nobody asked for).
    pub(crate) fn closed_by_peer(&self) -> bool {
        if self.pos < self.buf.len() {
            return true;
        }
        let _ = self.stream.set_nonblocking(true);
        let mut byte = [0u8; 1];
        let closed = match self.stream.peek(&mut byte) {
            Ok(_) => true,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        let _ = self.stream.set_nonblocking(false);
        closed
    }

    /// Read the next response. `head`: it answers a HEAD request (no body); `keep`: keep
    /// the body (else it is read and dropped).
    pub(crate) fn read_reply(&mut self, head: bool, keep: bool) -> Result<Reply, Failure> {
        self.seen = self.buf.len() - self.pos;
        loop {
            let (status, length, chunked, close, consumed) = loop {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(&self.buf[self.pos..]) {
                    Ok(httparse::Status::Complete(n)) => {
                        let status = resp.code.unwrap_or(0);
                        let mut length = None;
                        let mut chunked = false;
                        let mut close = resp.version == Some(0);
                        for h in resp.headers.iter() {
                            let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                            if h.name.eq_ignore_ascii_case("content-length") {
                                length = Some(value.trim().parse::<usize>().map_err(|_| {
                                    Failure::Malformed(format!("content-length {value:?}"))
                                })?);
                            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                                chunked = value.contains("chunked");
                            } else if h.name.eq_ignore_ascii_case("connection") {
                                if value.contains("close") {
                                    close = true;
                                } else if value.contains("keep-alive") {
                                    close = false;
                                }
                            }
                        }
                        break (status, length, chunked, close, n);
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.fill()? == 0 {
                            return Err(self.ended());
                        }
                    }
                    Err(e) => {
                        let shown = &self.buf[self.pos..(self.pos + 80).min(self.buf.len())];
                        return Err(Failure::Malformed(format!(
                            "{e}: {:?}",
                            String::from_utf8_lossy(shown)
                        )));
                    }
                }
            };
            self.pos += consumed;
            if (100..200).contains(&status) {
                continue;
            }
            let mut body = Vec::new();
            let no_body = head || status == 204 || status == 304;
            let mut close = close;
            if no_body {
            } else if chunked {
                self.read_chunked(&mut body, keep)?;
            } else if let Some(n) = length {
                self.read_exact_body(n, &mut body, keep)?;
            } else {
                close = true;
                loop {
                    let available = self.buf.len() - self.pos;
                    if keep {
                        body.extend_from_slice(&self.buf[self.pos..]);
                    }
                    self.pos += available;
                    if self.fill()? == 0 {
                        break;
                    }
                }
            }
            return Ok(Reply {
                status,
                body,
                close,
            });
        }
    }

    fn read_exact_body(&mut self, n: usize, body: &mut Vec<u8>, keep: bool) -> Result<(), Failure> {
        let mut left = n;
        while left > 0 {
            if self.pos == self.buf.len() && self.fill()? == 0 {
                return Err(self.ended());
            }
            let take = left.min(self.buf.len() - self.pos);
            if keep {
                body.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            }
            self.pos += take;
            left -= take;
        }
        Ok(())
    }

    fn read_chunked(&mut self, body: &mut Vec<u8>, keep: bool) -> Result<(), Failure> {
        loop {
            let (consumed, size) = loop {
                match httparse::parse_chunk_size(&self.buf[self.pos..]) {
                    Ok(httparse::Status::Complete(found)) => break found,
                    Ok(httparse::Status::Partial) => {
                        if self.fill()? == 0 {
                            return Err(self.ended());
                        }
                    }
                    Err(_) => return Err(Failure::Malformed("bad chunk size".into())),
                }
            };
            self.pos += consumed;
            if size == 0 {
                // Trailers (none expected), then the empty line.
                loop {
                    self.need(2)?;
                    let rest = &self.buf[self.pos..];
                    if rest.starts_with(b"\r\n") {
                        self.pos += 2;
                        return Ok(());
                    }
                    match rest.windows(2).position(|w| w == b"\r\n") {
                        Some(end) => self.pos += end + 2,
                        None => {
                            if self.fill()? == 0 {
                                return Err(self.ended());
                            }
                        }
                    }
                }
            }
            let size = usize::try_from(size)
                .map_err(|_| Failure::Malformed("chunk size beyond usize".into()))?;
            self.read_exact_body(size, body, keep)?;
            self.need(2)?;
            if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
                return Err(Failure::Malformed("chunk without CRLF".into()));
            }
            self.pos += 2;
        }
    }
}
