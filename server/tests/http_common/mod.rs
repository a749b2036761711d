//! Helpers shared by the `http_*` test suites: a blocking client and msgpack inspection.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rmpv::Value;

/// A blocking HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as one msgpack value; panics (fails the test) on trailing bytes.
    pub fn msgpack(&self) -> Value {
        let mut cursor = std::io::Cursor::new(&self.body[..]);
        let value = rmpv::decode::read_value(&mut cursor).expect("body is msgpack");
        assert_eq!(
            cursor.position() as usize,
            self.body.len(),
            "bytes after the msgpack value"
        );
        value
    }

    /// The message of a `{"error": msg}` body.
    pub fn error_message(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/x-msgpack"));
        let value = self.msgpack();
        let map = value.as_map().expect("error body is a map");
        assert_eq!(map.len(), 1);
        assert_eq!(map[0].0.as_str(), Some("error"));
        map[0]
            .1
            .as_str()
            .expect("error message is a str")
            .to_owned()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn finish(resp: ureq::http::Response<ureq::Body>) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = resp
        .into_body()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .expect("read body");
    Answer {
        status,
        headers,
        body,
    }
}

/// GET `url`, optionally with Basic credentials.
pub fn get(url: &str, auth: Option<(&str, &str)>) -> Answer {
    let mut req = agent().get(url);
    if let Some((user, password)) = auth {
        req = req.header("Authorization", basic(user, password));
    }
    finish(req.call().expect("GET request"))
}

/// HEAD `url`.
pub fn head(url: &str) -> Answer {
    finish(agent().head(url).call().expect("HEAD request"))
}

/// POST a msgpack body to `url`.
pub fn post(url: &str, body: &[u8], auth: Option<(&str, &str)>) -> Answer {
    post_typed(url, body, "application/x-msgpack", auth)
}

/// POST with an explicit content type.
pub fn post_typed(
    url: &str,
    body: &[u8],
    content_type: &str,
    auth: Option<(&str, &str)>,
) -> Answer {
    let mut req = agent().post(url).header("Content-Type", content_type);
    if let Some((user, password)) = auth {
        req = req.header("Authorization", basic(user, password));
    }
    finish(req.send(body).expect("POST request"))
}

/// The value of a Basic Authorization header.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// Send a request line verbatim over TCP (no client-side path normalisation) and return the
/// status code. `base_url` is `http://host:port/...`.
pub fn raw_status(
    base_url: &str,
    method: &str,
    target: &str,
    extra_headers: &str,
    body: &[u8],
) -> u16 {
    let host = host_port(base_url);
    let mut stream = TcpStream::connect(&host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n{extra_headers}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply);
    let status_line = text.lines().next().unwrap_or_default().to_owned();
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in reply: {status_line:?}"))
}

/// `host:port` of a base URL.
pub fn host_port(base_url: &str) -> String {
    let rest = base_url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(base_url);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// The path part of a base URL (e.g. `/hdfstream`).
pub fn base_path(base_url: &str) -> String {
    let rest = base_url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(base_url);
    rest.find('/')
        .map(|i| rest[i..].to_owned())
        .unwrap_or_default()
}

/// Look a key up in a msgpack map.
pub fn field<'a>(value: &'a Value, key: &str) -> &'a Value {
    value
        .as_map()
        .expect("a map")
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no key {key}"))
}

/// Keys of a msgpack map, in order.
pub fn keys(value: &Value) -> Vec<String> {
    value
        .as_map()
        .expect("a map")
        .iter()
        .map(|(k, _)| k.as_str().expect("str key").to_owned())
        .collect()
}

/// Empty msgpack map `{}`.
pub const EMPTY_MAP: &[u8] = &[0x80];

/// The test venv's python (`HDFSTREAM_VENV`, else `~/.cache/hdfstream-venv`, made by
/// `scripts/setup.sh`) when `python -c check` succeeds there. Otherwise `None` after a SKIP
/// message naming `what`, or a test failure under `CI=true` (where the check must run).
pub fn venv_python_with(check: &str, what: &str) -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let found = std::env::var_os("HDFSTREAM_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hdfstream-venv"))
        })
        .map(|venv| venv.join("bin/python"))
        .filter(|python| {
            std::process::Command::new(python)
                .args(["-c", check])
                .status()
                .is_ok_and(|s| s.success())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the {what} check: run scripts/setup.sh"
        );
        println!("SKIP: no Python venv with {what} (run scripts/setup.sh)");
    }
    found
}

/// An HTTP/1.1 answer as it came over a raw connection.
pub struct RawReply {
    pub status: u16,
    /// Header names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked but not decompressed.
    pub body: Vec<u8>,
    /// Whether the body ended properly: the last chunk seen, `Content-Length` bytes read, or
    /// (with neither) the connection closed.
    pub complete: bool,
}

impl RawReply {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The answer in `reply` (every byte read until the connection closed); `None` when no
    /// whole head with a status line came.
    pub fn parse(reply: &[u8]) -> Option<Self> {
        let split = reply.windows(4).position(|w| w == b"\r\n\r\n")?;
        let text = String::from_utf8_lossy(&reply[..split]).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut raw = Self {
            status,
            headers,
            body: Vec::new(),
            complete: false,
        };
        let mut rest = &reply[split + 4..];
        let chunked = raw
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if chunked {
            while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
                let size_text = String::from_utf8_lossy(&rest[..eol]).into_owned();
                let size_text = size_text.split(';').next().unwrap_or("").trim();
                let Ok(size) = usize::from_str_radix(size_text, 16) else {
                    break;
                };
                rest = &rest[eol + 2..];
                if size == 0 {
                    raw.complete = true;
                    break;
                }
                let take = size.min(rest.len());
                raw.body.extend_from_slice(&rest[..take]);
                if take < size || rest.len() < size + 2 {
                    break;
                }
                rest = &rest[size + 2..];
            }
        } else if let Some(len) = raw
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            raw.body = rest[..len.min(rest.len())].to_vec();
            raw.complete = rest.len() >= len;
        } else {
            raw.body = rest.to_vec();
            raw.complete = true;
        }
        Some(raw)
    }
}
