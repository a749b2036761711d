//! Loading the recorded cassettes of `shared/fixtures` (see its README).
#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::path::{Path, PathBuf};

use rmpv::Value;

/// The fixtures directory: `$HDFSTREAM_FIXTURES`, else `../shared/fixtures` beside the
/// workspace root. `None` (and a message) when absent.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HDFSTREAM_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    if dir.join("cassettes").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: fixtures not found at {} (set HDFSTREAM_FIXTURES to the shared/fixtures directory)",
            dir.display()
        );
        None
    }
}

/// One recorded request and its response.
#[derive(Debug, Clone)]
pub struct Interaction {
    /// Cassette file and index, for messages.
    pub origin: String,
    pub method: String,
    pub uri: String,
    pub request_body: Option<Vec<u8>>,
    pub status: u16,
    pub content_type: String,
    pub response_body: Vec<u8>,
}

impl Interaction {
    /// Whether the response body is msgpack.
    pub fn is_msgpack(&self) -> bool {
        self.content_type.split(';').next().map(str::trim) == Some("application/x-msgpack")
    }

    /// The request body decoded generically (an empty map for none).
    pub fn request_value(&self) -> Value {
        match &self.request_body {
            Some(b) => rmpv::decode::read_value(&mut &b[..]).expect("request body is msgpack"),
            None => Value::Map(vec![]),
        }
    }

    /// What the request asked for.
    pub fn kind(&self) -> RequestKind {
        let v = self.request_value();
        let has = |k: &str| {
            v.as_map()
                .is_some_and(|m| m.iter().any(|(key, _)| key.as_str() == Some(k)))
        };
        if has("slice") {
            RequestKind::Slice
        } else if has("object") {
            RequestKind::Object
        } else {
            RequestKind::Path
        }
    }

    /// The `object` of the request, if any.
    pub fn object(&self) -> Option<String> {
        let v = self.request_value();
        v.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some("object"))
            .and_then(|(_, v)| v.as_str().map(str::to_owned))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RequestKind {
    Path,
    Object,
    Slice,
}

fn get<'a>(m: &'a Value, key: &str) -> &'a Value {
    m.as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(key)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("cassette map without {key:?}"))
}

fn body_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Nil => None,
        Value::Binary(b) => Some(b.clone()),
        Value::String(s) => Some(s.as_bytes().to_vec()),
        other => panic!("unexpected body {other:?}"),
    }
}

fn header(headers: &Value, name: &str) -> Option<String> {
    headers.as_map()?.iter().find_map(|(k, v)| {
        if k.as_str()?.eq_ignore_ascii_case(name) {
            v.as_array()?.first()?.as_str().map(str::to_owned)
        } else {
            None
        }
    })
}

/// Every cassette under `dir/cassettes`, sorted by path.
pub fn cassette_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("cassettes")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read cassette dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".msgpack.gz") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The interactions of one cassette file.
pub fn load_cassette(path: &Path) -> Vec<Interaction> {
    let raw = std::fs::read(path).expect("read cassette");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_end(&mut bytes)
        .expect("gunzip cassette");
    let mut rd = &bytes[..];
    let v = rmpv::decode::read_value(&mut rd).expect("cassette is msgpack");
    assert!(
        rd.is_empty(),
        "trailing bytes in cassette {}",
        path.display()
    );
    let name = path
        .strip_prefix(path.parent().and_then(Path::parent).unwrap_or(path))
        .unwrap_or(path);
    get(&v, "interactions")
        .as_array()
        .expect("interactions array")
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let req = get(it, "request");
            let resp = get(it, "response");
            Interaction {
                origin: format!("{}#{i}", name.display()),
                method: get(req, "method").as_str().unwrap().to_owned(),
                uri: get(req, "uri").as_str().unwrap().to_owned(),
                request_body: body_bytes(get(req, "body")),
                status: get(get(resp, "status"), "code").as_u64().unwrap() as u16,
                content_type: header(get(resp, "headers"), "content-type").unwrap_or_default(),
                response_body: body_bytes(get(get(resp, "body"), "string")).unwrap_or_default(),
            }
        })
        .collect()
}

/// All interactions of all cassettes, or `None` when the fixtures are absent.
pub fn all_interactions() -> Option<Vec<Interaction>> {
    let dir = fixtures_dir()?;
    Some(
        cassette_files(&dir)
            .iter()
            .flat_map(|p| load_cassette(p))
            .collect(),
    )
}

/// `eagle_expected.json`.
pub fn expected() -> Option<serde_json::Value> {
    let dir = fixtures_dir()?;
    let text =
        std::fs::read_to_string(dir.join("eagle_expected.json")).expect("read eagle_expected.json");
    Some(serde_json::from_str(&text).expect("parse eagle_expected.json"))
}

/// Bytes from a spec-style listing: hex bytes and "quoted text".
pub fn b(spec: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = spec;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[1..];
        } else if c == '"' {
            let end = rest[1..].find('"').expect("closing quote") + 1;
            out.extend_from_slice(&rest.as_bytes()[1..end]);
            rest = &rest[end + 1..];
        } else {
            out.push(u8::from_str_radix(&rest[..2], 16).expect("hex byte"));
            rest = &rest[2..];
        }
    }
    out
}
