//! A fault-injecting HTTP proxy for tests: it sits between a client and a real server (the
//! embedded `hdfstream-server`), forwards every request, and with a set probability damages
//! the response the way networks, proxies and failing servers do.
//!
//! Per response, one fault chosen at random (seeded, so a run can be replayed):
//!
//! * transport faults (any response): cut the connection at a random byte of the status
//!   line and headers ([`Fault::CutHeaders`]) or of the body ([`Fault::CutBody`]); reset it
//!   (TCP RST after a random prefix, [`Fault::Reset`]); stall, then cut ([`Fault::Stall`]);
//! * status faults (any response): answer 500 (msgpack error body), 502 or 503 (HTML) in
//!   place of the server, or 429 with `Retry-After: 0`;
//! * content faults (2xx msgpack responses only): end the body early with a matching
//!   `Content-Length`, a clean HTTP message whose msgpack value is cut short
//!   ([`Fault::ShortBody`]); or flip one byte of the msgpack header region
//!   ([`Fault::FlipHeader`]): for an ndarray body any byte of its header (keys, type, shape,
//!   nbytes, bin headers: everything before the first payload byte, within the first 64
//!   bytes), for other bodies a msgpack *marker* byte among the first 64 (a type/length tag
//!   that is not a whole value by itself — fixints, nil, booleans and empty maps, arrays and
//!   strings are values — and not a byte inside a string or number).
//!
//! Content faults leave raw downloads alone, and never touch payload bytes or values: the
//! protocol carries no checksum, so a changed number or character inside a value is
//! undetectable by design (TCP and TLS guard against that); everything the client *can*
//! check — framing, msgpack structure, and whether an array header matches the request —
//! is fair game.
//!
//! Responses are read whole from the server (one upstream connection per request,
//! `Connection: close`, `Accept-Encoding` removed so bodies are identity-encoded) and sent
//! to the client with `Content-Length`, on a keep-alive connection unless the fault closes
//! it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One kind of damage done to a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Fault {
    /// Connection closed inside the status line or headers.
    CutHeaders,
    /// Connection closed inside the body.
    CutBody,
    /// TCP reset after a random prefix of the response.
    Reset,
    /// A random prefix, a pause, then the connection closed.
    Stall,
    /// 500 with a msgpack `{"error": ...}` body, sent by the proxy.
    Status500,
    /// 502 with an HTML body, sent by the proxy.
    Status502,
    /// 503 with an HTML body, sent by the proxy.
    Status503,
    /// 429 with `Retry-After: 0`, sent by the proxy.
    RateLimited,
    /// A 2xx msgpack body cut short, with a `Content-Length` that matches the cut.
    ShortBody,
    /// One byte of the msgpack header region of a 2xx msgpack body flipped.
    FlipHeader,
}

impl Fault {
    /// Every kind.
    pub(crate) const ALL: [Fault; 10] = [
        Fault::CutHeaders,
        Fault::CutBody,
        Fault::Reset,
        Fault::Stall,
        Fault::Status500,
        Fault::Status502,
        Fault::Status503,
        Fault::RateLimited,
        Fault::ShortBody,
        Fault::FlipHeader,
    ];

    /// Whether this fault can be done to `resp`.
    fn applies(self, resp: &Upstream) -> bool {
        let content = (200..300).contains(&resp.status) && resp.is_msgpack();
        match self {
            Fault::CutBody => !resp.body.is_empty(),
            Fault::ShortBody => content && !resp.body.is_empty(),
            Fault::FlipHeader => content && !flippable(&resp.body).is_empty(),
            _ => true,
        }
    }
}

/// What the proxy does.
#[derive(Debug, Clone)]
pub(crate) struct FaultConfig {
    /// Probability that a response is damaged (0 = a plain proxy).
    pub(crate) probability: f64,
    /// Seed of the random choices.
    pub(crate) seed: u64,
    /// Pause of [`Fault::Stall`] before the connection is closed.
    pub(crate) stall: Duration,
    /// The kinds to choose from (among those that apply to a response).
    pub(crate) kinds: Vec<Fault>,
}

impl FaultConfig {
    /// Every kind of fault with probability `p`, seed `seed`, 20 ms stalls.
    pub(crate) fn new(p: f64, seed: u64) -> Self {
        FaultConfig {
            probability: p,
            seed,
            stall: Duration::from_millis(20),
            kinds: Fault::ALL.to_vec(),
        }
    }

    /// Only these kinds.
    pub(crate) fn only(mut self, kinds: &[Fault]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }
}

/// What the proxy did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FaultCounts {
    /// Requests answered (forwarded or faulted).
    pub(crate) responses: u64,
    /// Faults injected, by kind.
    pub(crate) by_kind: BTreeMap<Fault, u64>,
}

impl FaultCounts {
    /// Faults injected in total.
    pub(crate) fn faults(&self) -> u64 {
        self.by_kind.values().sum()
    }
}

impl std::fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} responses, {} faulted", self.responses, self.faults())?;
        for (k, n) in &self.by_kind {
            write!(f, ", {k:?} {n}")?;
        }
        Ok(())
    }
}

/// splitmix64: small, seeded, good enough to pick faults.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n) (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

struct State {
    config: Mutex<FaultConfig>,
    rng: Mutex<Rng>,
    counts: Mutex<FaultCounts>,
    responses: AtomicU64,
}

/// A running proxy on 127.0.0.1; stopped when dropped.
pub(crate) struct FaultProxy {
    addr: SocketAddr,
    base_path: String,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Proxies the server at `upstream` (a base URL such as
    /// `http://127.0.0.1:40123/hdfstream`).
    pub(crate) fn start(upstream: &str, config: FaultConfig) -> FaultProxy {
        let rest = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream URL");
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let upstream_addr: SocketAddr = host.parse().expect("upstream host:port");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            rng: Mutex::new(Rng(config.seed)),
            config: Mutex::new(config),
            counts: Mutex::new(FaultCounts::default()),
            responses: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (state2, stop2) = (Arc::clone(&state), Arc::clone(&stop));
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&state2);
                std::thread::spawn(move || serve(stream, upstream_addr, &state));
            }
        });
        FaultProxy {
            addr,
            base_path: path.trim_end_matches('/').to_string(),
            state,
            stop,
            accept: Some(accept),
        }
    }

    /// The proxied base URL, `http://127.0.0.1:<proxy port>/<upstream base path>`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.base_path)
    }

    /// Changes the fault probability from now on (0 makes it a plain proxy).
    pub(crate) fn set_probability(&self, p: f64) {
        self.state.config.lock().expect("config lock").probability = p;
    }

    /// Responses and faults so far.
    pub(crate) fn counts(&self) -> FaultCounts {
        let mut c = self.state.counts.lock().expect("counts lock").clone();
        c.responses = self.state.responses.load(Ordering::SeqCst);
        c
    }

    /// Forgets the counts so far.
    pub(crate) fn reset_counts(&self) {
        *self.state.counts.lock().expect("counts lock") = FaultCounts::default();
        self.state.responses.store(0, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// A request as received from the client.
struct Request {
    /// Request line without CRLF.
    line: String,
    /// Header lines without CRLF.
    headers: Vec<String>,
    body: Vec<u8>,
}

/// A whole response of the server.
struct Upstream {
    status: u16,
    /// Status line without CRLF.
    line: String,
    /// Header lines without CRLF, framing headers removed.
    headers: Vec<String>,
    body: Vec<u8>,
}

impl Upstream {
    fn is_msgpack(&self) -> bool {
        self.headers.iter().any(|h| {
            let h = h.to_ascii_lowercase();
            h.starts_with("content-type:") && h.contains("application/x-msgpack")
        })
    }

    /// Status line and headers with `Content-Length: len`.
    fn head(&self, len: usize) -> Vec<u8> {
        let mut head = format!("{}\r\n", self.line);
        for h in &self.headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str(&format!("Content-Length: {len}\r\n\r\n"));
        head.into_bytes()
    }
}

fn serve(client: TcpStream, upstream: SocketAddr, state: &State) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = client.set_nodelay(true);
    let Ok(read_half) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = client;
    while let Some(req) = read_request(&mut reader) {
        state.responses.fetch_add(1, Ordering::SeqCst);
        let Some(resp) = forward(&req, upstream) else {
            let _ = writer.write_all(
                b"HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        };
        let (fault, mut rng_draws) = pick(state, &resp);
        if let Some(f) = fault {
            *state
                .counts
                .lock()
                .expect("counts lock")
                .by_kind
                .entry(f)
                .or_default() += 1;
        }
        let stall = state.config.lock().expect("config lock").stall;
        let keep = send(&mut writer, &resp, fault, &mut rng_draws, stall);
        if !keep {
            return;
        }
    }
}

/// Random numbers drawn for one response up front, so the shared generator is held briefly.
struct Draws(Vec<u64>);

impl Draws {
    fn below(&mut self, n: usize) -> usize {
        let x = self.0.pop().unwrap_or(0);
        if n == 0 { 0 } else { (x % n as u64) as usize }
    }
}

fn pick(state: &State, resp: &Upstream) -> (Option<Fault>, Draws) {
    let config = state.config.lock().expect("config lock").clone();
    let mut rng = state.rng.lock().expect("rng lock");
    let draws = Draws((0..4).map(|_| rng.next()).collect());
    if rng.unit() >= config.probability {
        return (None, draws);
    }
    let kinds: Vec<Fault> = config
        .kinds
        .iter()
        .copied()
        .filter(|k| k.applies(resp))
        .collect();
    if kinds.is_empty() {
        return (None, draws);
    }
    let fault = kinds[rng.below(kinds.len())];
    (Some(fault), draws)
}

/// Writes `resp` with `fault` done to it; returns whether the connection stays usable.
fn send(
    w: &mut TcpStream,
    resp: &Upstream,
    fault: Option<Fault>,
    draws: &mut Draws,
    stall: Duration,
) -> bool {
    let full = || {
        let mut out = resp.head(resp.body.len());
        out.extend_from_slice(&resp.body);
        out
    };
    let close = |w: &mut TcpStream| {
        let _ = w.flush();
        let _ = w.shutdown(Shutdown::Both);
        false
    };
    match fault {
        None => w.write_all(&full()).is_ok(),
        Some(Fault::CutHeaders) => {
            let head = resp.head(resp.body.len());
            let n = draws.below(head.len());
            let _ = w.write_all(&head[..n]);
            close(w)
        }
        Some(Fault::CutBody) => {
            let head = resp.head(resp.body.len());
            let n = draws.below(resp.body.len());
            let _ = w
                .write_all(&head)
                .and_then(|()| w.write_all(&resp.body[..n]));
            close(w)
        }
        Some(Fault::Reset) => {
            let all = full();
            let n = draws.below(all.len());
            let _ = w.write_all(&all[..n]);
            let _ = w.flush();
            let _ = socket2::SockRef::from(&*w).set_linger(Some(Duration::ZERO));
            // Dropping the last handle with a zero linger sends RST.
            false
        }
        Some(Fault::Stall) => {
            let all = full();
            let n = draws.below(all.len());
            let _ = w.write_all(&all[..n]);
            let _ = w.flush();
            std::thread::sleep(stall);
            close(w)
        }
        Some(Fault::Status500) => {
            let body = msgpack_error("injected fault");
            write_simple(
                w,
                "500 Internal Server Error",
                "application/x-msgpack",
                &body,
                &[],
            )
        }
        Some(Fault::Status502) => write_simple(
            w,
            "502 Bad Gateway",
            "text/html",
            b"<html><body><h1>502 Bad Gateway</h1><p>injected fault</p></body></html>",
            &[],
        ),
        Some(Fault::Status503) => write_simple(
            w,
            "503 Service Unavailable",
            "text/html",
            b"<html><body><h1>503 Service Unavailable</h1></body></html>",
            &[],
        ),
        Some(Fault::RateLimited) => write_simple(
            w,
            "429 Too Many Requests",
            "text/plain",
            b"slow down",
            &["Retry-After: 0"],
        ),
        Some(Fault::ShortBody) => {
            let n = draws.below(resp.body.len());
            let mut out = resp.head(n);
            out.extend_from_slice(&resp.body[..n]);
            w.write_all(&out).is_ok()
        }
        Some(Fault::FlipHeader) => {
            let offsets = flippable(&resp.body);
            let at = offsets[draws.below(offsets.len())];
            let mask = 1 + draws.below(255) as u8;
            let mut body = resp.body.clone();
            body[at] ^= mask;
            let mut out = resp.head(body.len());
            out.extend_from_slice(&body);
            w.write_all(&out).is_ok()
        }
    }
}

fn write_simple(
    w: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    extra: &[&str],
) -> bool {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in extra {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    w.write_all(&bytes).is_ok()
}

/// `{"error": message}` in msgpack.
fn msgpack_error(message: &str) -> Vec<u8> {
    let mut b = vec![0x81, 0xa5];
    b.extend_from_slice(b"error");
    b.push(0xd9);
    b.push(message.len() as u8);
    b.extend_from_slice(message.as_bytes());
    b
}

/// The bytes [`Fault::FlipHeader`] may change (see the module docs).
pub(crate) fn flippable(body: &[u8]) -> Vec<usize> {
    const REGION: usize = 64;
    if body.starts_with(&hdfstream_protocol::NDARRAY_PREFIX) {
        let end = payload_start(body).unwrap_or(REGION).min(REGION);
        return (0..end).collect();
    }
    markers(body, REGION)
}

/// Offset of the first payload byte of a fast-path ndarray body: after the `"data"` key,
/// the array header and the first bin header.
fn payload_start(body: &[u8]) -> Option<usize> {
    let key = [0xa4, b'd', b'a', b't', b'a'];
    let mut i = body.windows(key.len()).position(|w| w == key)? + key.len();
    i += match *body.get(i)? {
        0x90 => return Some(i + 1),
        0x91..=0x9f => 1,
        0xdc => 3,
        0xdd => 5,
        _ => return None,
    };
    i += match *body.get(i)? {
        0xc4 => 2,
        0xc5 => 3,
        0xc6 => 5,
        _ => return None,
    };
    Some(i)
}

/// Offsets of the msgpack marker bytes among the first `limit` bytes that are not values
/// by themselves (fixints, nil, booleans, empty map/array/string are), walking the
/// structure from the start.
fn markers(b: &[u8], limit: usize) -> Vec<usize> {
    let len_at = |i: usize, n: usize| -> usize {
        b.get(i..i + n)
            .map(|s| s.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x)))
            .unwrap_or(usize::MAX / 2)
    };
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < b.len().min(limit) {
        let m = b[i];
        let (marker, size) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0..=0xc3 | 0x80 | 0x90 | 0xa0 => (false, 1),
            0x81..=0x8f | 0x91..=0x9f => (true, 1),
            0xa1..=0xbf => (true, 1 + usize::from(m & 0x1f)),
            0xc4 | 0xd9 => (true, 2 + len_at(i + 1, 1)),
            0xc5 | 0xda => (true, 3 + len_at(i + 1, 2)),
            0xc6 | 0xdb => (true, 5 + len_at(i + 1, 4)),
            0xc7 => (true, 3 + len_at(i + 1, 1)),
            0xc8 => (true, 4 + len_at(i + 1, 2)),
            0xc9 => (true, 6 + len_at(i + 1, 4)),
            0xca | 0xce | 0xd2 => (true, 5),
            0xcb | 0xcf | 0xd3 => (true, 9),
            0xcc | 0xd0 => (true, 2),
            0xcd | 0xd1 => (true, 3),
            0xd4 => (true, 3),
            0xd5 => (true, 4),
            0xd6 => (true, 6),
            0xd7 => (true, 10),
            0xd8 => (true, 18),
            0xdc | 0xde => (true, 3),
            0xdd | 0xdf => (true, 5),
        };
        if marker {
            out.push(i);
        }
        i = i.saturating_add(size);
    }
    out
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
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
        if k.trim().eq_ignore_ascii_case("content-length") {
            len = v.trim().parse().ok()?;
        }
        headers.push(h.to_string());
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        line,
        headers,
        body,
    })
}

/// Sends `req` to the server on a new connection and reads the whole response.
fn forward(req: &Request, upstream: SocketAddr) -> Option<Upstream> {
    let mut s = TcpStream::connect(upstream).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let mut out = format!("{}\r\n", req.line);
    for h in &req.headers {
        let name = h
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "connection" | "keep-alive" | "accept-encoding"
        ) {
            continue;
        }
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    s.write_all(out.as_bytes()).ok()?;
    s.write_all(&req.body).ok()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    let (mut len, mut chunked) = (None, false);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            "connection" | "keep-alive" => {}
            _ => headers.push(h.to_string()),
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?.trim(), 16).ok()?;
            if n == 0 {
                // Trailers (none expected) up to the blank line.
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t).ok()? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let at = body.len();
            body.resize(at + n, 0);
            r.read_exact(&mut body[at..]).ok()?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).ok()?;
        }
    } else if let Some(n) = len {
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    } else {
        r.read_to_end(&mut body).ok()?;
    }
    Some(Upstream {
        status,
        line,
        headers,
        body,
    })
}
