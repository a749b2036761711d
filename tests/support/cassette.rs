//! Replays the reference server's recorded conversations (cassettes, see
//! `fixtures/README.md`) over a real local HTTP socket.
//!
//! ```ignore
//! let Some(replay) = Replay::start("test_paths/test_dot_path_append") else { return };
//! let conn = ClientBuilder::new().with_url(replay.base_url()).build()?;
//! ... use conn ...
//! assert!(replay.unmatched().is_empty());
//! ```
//!
//! Matching follows vcrpy: key = (method, path + query after the base), first not yet played
//! interaction with that key wins, each interaction is served once, bodies are not compared.
//! An unmatched `GET /msgpack/` (the connection probe, recorded only in a few cassettes) is
//! answered with a synthetic empty root listing; any other unmatched request gets a 599
//! response and is listed by [`Replay::unmatched`].

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rmpv::Value;

use super::http::{Framing, MockResponse, MockServer, RecordedRequest};

/// Base URL under which the cassettes were recorded.
pub(crate) const RECORDED_BASE: &str = "https://localhost:8444/hdfstream";
/// Context path the replay server serves under (so base URLs look like the real ones).
pub(crate) const CONTEXT: &str = "/hdfstream";
/// Status sent for a request no interaction matches.
pub(crate) const UNMATCHED_STATUS: u16 = 599;

/// The fixtures directory: `$HDFSTREAM_FIXTURES`, else `<workspace>/../shared/fixtures`;
/// `None` (with a printed note) when it does not exist.
pub(crate) fn fixtures_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("HDFSTREAM_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"),
    };
    if dir.join("cassettes").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: fixtures not found at {} (set HDFSTREAM_FIXTURES)",
            dir.display()
        );
        None
    }
}

/// One recorded request/response pair.
#[derive(Debug, Clone)]
pub(crate) struct Interaction {
    /// Request method.
    pub(crate) method: String,
    /// Full recorded URI.
    pub(crate) uri: String,
    /// Request body (`None` for GET).
    pub(crate) request_body: Option<Vec<u8>>,
    /// Response status.
    pub(crate) status: u16,
    /// Response headers (name, first value), framing headers included as recorded.
    pub(crate) response_headers: Vec<(String, String)>,
    /// Response body bytes.
    pub(crate) response_body: Vec<u8>,
}

impl Interaction {
    /// Path and query relative to the recorded base, e.g. `/msgpack/EAGLE`.
    pub(crate) fn key_path(&self) -> &str {
        self.uri.strip_prefix(RECORDED_BASE).unwrap_or(&self.uri)
    }

    /// First value of a response header.
    pub(crate) fn response_header(&self, name: &str) -> Option<&str> {
        self.response_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request body decoded as msgpack.
    pub(crate) fn request_value(&self) -> Option<Value> {
        let mut b = self.request_body.as_deref()?;
        rmpv::decode::read_value(&mut b).ok()
    }
}

/// A whole cassette.
#[derive(Debug, Clone)]
pub(crate) struct Cassette {
    /// Interactions in recorded order.
    pub(crate) interactions: Vec<Interaction>,
}

fn get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// bin → bytes, str → its UTF-8 bytes, nil → None.
fn body_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Binary(b) => Some(b.clone()),
        Value::String(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn headers(v: Option<&Value>) -> Vec<(String, String)> {
    let Some(map) = v.and_then(Value::as_map) else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, vals)| {
            let first = vals.as_array()?.first()?.as_str()?.to_string();
            Some((k.as_str()?.to_string(), first))
        })
        .collect()
}

impl Cassette {
    /// Loads `<fixtures>/cassettes/<name>.msgpack.gz`; `None` when fixtures are absent.
    pub(crate) fn load(name: &str) -> Option<Cassette> {
        let path = fixtures_dir()?
            .join("cassettes")
            .join(format!("{name}.msgpack.gz"));
        let file = std::fs::File::open(&path)
            .unwrap_or_else(|e| panic!("cannot open cassette {}: {e}", path.display()));
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut raw)
            .expect("gunzip cassette");
        let mut rest = raw.as_slice();
        let root = rmpv::decode::read_value(&mut rest).expect("cassette msgpack");
        assert!(rest.is_empty(), "bytes after the cassette value");
        let list = get(&root, "interactions")
            .and_then(Value::as_array)
            .expect("interactions array");
        let interactions = list
            .iter()
            .map(|it| {
                let req = get(it, "request").expect("request");
                let resp = get(it, "response").expect("response");
                Interaction {
                    method: get(req, "method")
                        .and_then(Value::as_str)
                        .expect("method")
                        .into(),
                    uri: get(req, "uri").and_then(Value::as_str).expect("uri").into(),
                    request_body: get(req, "body").and_then(body_bytes),
                    status: get(resp, "status")
                        .and_then(|s| get(s, "code"))
                        .and_then(Value::as_u64)
                        .and_then(|c| u16::try_from(c).ok())
                        .expect("status code"),
                    response_headers: headers(get(resp, "headers")),
                    response_body: get(resp, "body")
                        .and_then(|b| get(b, "string"))
                        .and_then(body_bytes)
                        .unwrap_or_default(),
                }
            })
            .collect();
        Some(Cassette { interactions })
    }
}

/// msgpack bytes of an empty root directory listing (the synthetic probe answer).
pub(crate) fn synthetic_root_listing() -> Vec<u8> {
    let s = |x: &str| Value::from(x);
    let v = Value::Map(vec![
        (s("type"), s("directory")),
        (s("size"), Value::from(0)),
        (s("description"), Value::Nil),
        (s("labels"), Value::Nil),
        (s("files"), Value::Map(vec![])),
        (s("directories"), Value::Map(vec![])),
    ]);
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &v).expect("encode listing");
    out
}

#[derive(Debug, Default)]
struct ReplayState {
    played: Vec<bool>,
    /// (request, interaction index or None) in arrival order.
    log: Vec<(RecordedRequest, Option<usize>)>,
}

/// A cassette served on 127.0.0.1; stops when dropped.
pub(crate) struct Replay {
    server: MockServer,
    cassette: Arc<Cassette>,
    state: Arc<Mutex<ReplayState>>,
}

/// Bodies are served chunked in about this many pieces (at least 1 byte, at most 4 KiB each).
const PIECES: usize = 5;

impl Replay {
    /// Starts replaying `<module>/<test>` (e.g. `test_paths/test_dot_path_append`);
    /// `None` (after printing a skip note) when the fixtures are absent.
    pub(crate) fn start(name: &str) -> Option<Replay> {
        let cassette = Arc::new(Cassette::load(name)?);
        let state = Arc::new(Mutex::new(ReplayState {
            played: vec![false; cassette.interactions.len()],
            log: Vec::new(),
        }));
        let (c, st) = (cassette.clone(), state.clone());
        let server = MockServer::start(move |req| respond(&c, &st, req));
        Some(Replay {
            server,
            cassette,
            state,
        })
    }

    /// Base URL to give the client: `http://127.0.0.1:<port>/hdfstream`.
    pub(crate) fn base_url(&self) -> String {
        format!("{}{CONTEXT}", self.server.url())
    }

    /// The cassette being served.
    pub(crate) fn cassette(&self) -> &Cassette {
        &self.cassette
    }

    /// Every request received, in order.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.state
            .lock()
            .expect("lock")
            .log
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Requests with the index of the interaction that answered them (`None` = synthetic
    /// probe answer or unmatched).
    pub(crate) fn log(&self) -> Vec<(RecordedRequest, Option<usize>)> {
        self.state.lock().expect("lock").log.clone()
    }

    /// Requests that matched no interaction (the synthetic probe answer excluded).
    pub(crate) fn unmatched(&self) -> Vec<RecordedRequest> {
        self.log()
            .into_iter()
            .filter(|(r, i)| i.is_none() && !is_probe(r))
            .map(|(r, _)| r)
            .collect()
    }

    /// Indices of interactions not played yet.
    pub(crate) fn unplayed(&self) -> Vec<usize> {
        let st = self.state.lock().expect("lock");
        st.played
            .iter()
            .enumerate()
            .filter(|(_, p)| !**p)
            .map(|(i, _)| i)
            .collect()
    }

    /// Strict check for data requests: for every played interaction whose recorded body has
    /// a `slice` key, the request body sent must decode to the same msgpack value. Returns
    /// a description of each mismatch (empty = all identical).
    pub(crate) fn slice_body_mismatches(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (req, idx) in self.log() {
            let Some(i) = idx else { continue };
            let inter = &self.cassette.interactions[i];
            let Some(recorded) = inter.request_value() else {
                continue;
            };
            if get(&recorded, "slice").is_none() {
                continue;
            }
            let mut b = req.body.as_slice();
            let sent = rmpv::decode::read_value(&mut b).ok();
            if sent.as_ref() != Some(&recorded) || !b.is_empty() {
                out.push(format!(
                    "interaction {i}: recorded {recorded}, sent {sent:?}"
                ));
            }
        }
        out
    }
}

impl Replay {
    /// Looser check for every played request with a recorded body: the `object` value sent
    /// must equal the recorded one (bodies may otherwise differ, e.g. in `max_depth`).
    /// Returns a description of each mismatch.
    pub(crate) fn object_mismatches(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (req, idx) in self.log() {
            let Some(i) = idx else { continue };
            let Some(recorded) = self.cassette.interactions[i].request_value() else {
                continue;
            };
            let mut b = req.body.as_slice();
            let sent = rmpv::decode::read_value(&mut b).ok();
            let want = get(&recorded, "object");
            let got = sent.as_ref().and_then(|v| get(v, "object"));
            if want != got {
                out.push(format!(
                    "interaction {i}: recorded object {want:?}, sent {got:?}"
                ));
            }
        }
        out
    }
}

fn is_probe(req: &RecordedRequest) -> bool {
    req.method == "GET" && req.target == format!("{CONTEXT}/msgpack/")
}

fn respond(cassette: &Cassette, state: &Mutex<ReplayState>, req: &RecordedRequest) -> MockResponse {
    let key = req.target.strip_prefix(CONTEXT).unwrap_or(&req.target);
    let mut st = state.lock().expect("lock");
    let found = cassette
        .interactions
        .iter()
        .enumerate()
        .find(|(i, it)| !st.played[*i] && it.method == req.method && it.key_path() == key)
        .map(|(i, _)| i);
    st.log.push((req.clone(), found));
    let Some(i) = found else {
        if is_probe(req) {
            return MockResponse::new(200, "application/x-msgpack", synthetic_root_listing());
        }
        return MockResponse::new(
            UNMATCHED_STATUS,
            "text/plain",
            format!("no interaction matches {} {}", req.method, req.target).into_bytes(),
        );
    };
    st.played[i] = true;
    let it = &cassette.interactions[i];
    const DROP: [&str; 5] = [
        "transfer-encoding",
        "content-length",
        "connection",
        "keep-alive",
        "date",
    ];
    let headers = it
        .response_headers
        .iter()
        .filter(|(k, _)| !DROP.contains(&k.to_ascii_lowercase().as_str()))
        .cloned()
        .collect();
    let piece = (it.response_body.len() / PIECES).clamp(1, 4096);
    MockResponse {
        status: it.status,
        headers,
        body: it.response_body.clone().into(),
        framing: Framing::Chunked(piece),
        pause: std::time::Duration::ZERO,
    }
}
