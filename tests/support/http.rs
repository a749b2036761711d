//! A tiny HTTP/1.1 server on 127.0.0.1 for tests: one thread per connection, keep-alive,
//! every request recorded, responses produced by a handler closure.
//!
//! Responses can be framed with `Content-Length` or chunked (in pieces of a chosen size,
//! flushed separately so the client sees them arrive incrementally), or deliberately
//! broken: a `Content-Length` larger than the body followed by closing the connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub(crate) method: String,
    /// Path and query exactly as sent, e.g. `/hdfstream/msgpack/EAGLE`.
    pub(crate) target: String,
    /// Header names (lower case) and values in arrival order.
    pub(crate) headers: Vec<(String, String)>,
    /// Body bytes (empty when none).
    pub(crate) body: Vec<u8>,
}

impl RecordedRequest {
    /// First value of a header (name compared case-insensitively).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How a response body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length`, body written in pieces of this many bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`, one chunk per this many bytes.
    Chunked(usize),
    /// `Content-Length` = body length + this many bytes, then the connection is closed:
    /// a body truncated in transit.
    Truncated(usize),
}

/// A response to send.
#[derive(Debug, Clone)]
pub(crate) struct MockResponse {
    /// Status code.
    pub(crate) status: u16,
    /// Extra headers (framing headers are added by the server).
    pub(crate) headers: Vec<(String, String)>,
    /// Body bytes (shared, so large bodies are not copied per request).
    pub(crate) body: Arc<[u8]>,
    /// Framing.
    pub(crate) framing: Framing,
    /// Sleep between two pieces of the body (simulates a slow server).
    pub(crate) pause: Duration,
}

impl MockResponse {
    /// A response with one `Content-Type` header and a `Content-Length` body.
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Arc<[u8]>>) -> Self {
        MockResponse {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            framing: Framing::Length(usize::MAX),
            pause: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sleeps this long between body pieces.
    pub(crate) fn pause(mut self, pause: Duration) -> Self {
        self.pause = pause;
        self
    }

    /// Changes the framing.
    pub(crate) fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }
}

type Handler = dyn Fn(&RecordedRequest) -> MockResponse + Send + Sync;

/// A running test server; stopped when dropped.
pub(crate) struct MockServer {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts serving on an ephemeral port of 127.0.0.1.
    pub(crate) fn start(
        handler: impl Fn(&RecordedRequest) -> MockResponse + Send + Sync + 'static,
    ) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let connections = Arc::new(AtomicUsize::new(0));
        let (reqs, stop2, conns) = (requests.clone(), stop.clone(), connections.clone());
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                conns.fetch_add(1, Ordering::SeqCst);
                let (h, r) = (handler.clone(), reqs.clone());
                std::thread::spawn(move || serve_connection(stream, &*h, &r));
            }
        });
        MockServer {
            addr,
            requests,
            connections,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Number of TCP connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// All requests received so far, in arrival order.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve_connection(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<RecordedRequest>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_nodelay(true);
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = write_half;
    while let Some(req) = read_request(&mut reader) {
        log.lock().expect("requests lock").push(req.clone());
        let resp = handler(&req);
        let keep_alive = write_response(&mut writer, &resp).is_ok()
            && !matches!(resp.framing, Framing::Truncated(_));
        if !keep_alive {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<RecordedRequest> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(RecordedRequest {
        method,
        target,
        headers,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_response(w: &mut TcpStream, resp: &MockResponse) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let piece = match resp.framing {
        Framing::Length(n) => {
            head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
            n
        }
        Framing::Chunked(n) => {
            head.push_str("Transfer-Encoding: chunked\r\n");
            n
        }
        Framing::Truncated(missing) => {
            head.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n",
                resp.body.len() + missing
            ));
            usize::MAX
        }
    };
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.flush()?;
    for (i, chunk) in resp.body.chunks(piece.max(1)).enumerate() {
        if i > 0 && !resp.pause.is_zero() {
            std::thread::sleep(resp.pause);
        }
        if let Framing::Chunked(_) = resp.framing {
            w.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
            w.write_all(chunk)?;
            w.write_all(b"\r\n")?;
        } else {
            w.write_all(chunk)?;
        }
        w.flush()?;
    }
    if let Framing::Chunked(_) = resp.framing {
        w.write_all(b"0\r\n\r\n")?;
    }
    w.flush()
}
