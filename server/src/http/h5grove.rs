//! The h5grove-compatible API (h5grove 4.0), for H5Web's `H5GroveProvider`:
//! `<base>/h5grove/{meta,attr,data,stats,paths}/?file=<vpath>&path=<hdf5 path>&...`.
//!
//! `file` is a virtual path of the served tree, resolved like `/msgpack` paths (access rules,
//! hidden and forbidden directories invisible, `..` refused); the HDF5 work is done by
//! `crate::hdf5` (its grove module). Answers are h5grove's: JSON bodies (`application/json`),
//! raw little-endian values (`format=bin`) or `.npy` files (`format=npy`); errors are JSON
//! `{"message": ...}` maps with h5grove's statuses (404 missing file or path, 422 bad
//! arguments), 400 for malformed selections and 413 for selections over
//! `Limits::max_h5grove_elements`.
//!
//! Differences from h5grove, on purpose: external links are never followed (they are
//! described as links); `format=csv` and `format=tiff` are refused (400); `bin` is only
//! for numbers and booleans (400 otherwise); a bad selection is 400 where h5grove fails
//! with 500.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use hdfstream_protocol::{HDF5_MEDIA_TYPE, RequestError};
use percent_encoding::percent_decode_str;

use super::AppState;
use super::gate::RequestInfo;
use super::respond::with_info;
use crate::auth::Identity;
use crate::hdf5::{DataRequest, Format, Resolve, Selection};
use crate::vfs::{MAX_PATH_LEN, Node, Refusal};

fn error(status: u16, message: impl Into<String>) -> RequestError {
    RequestError {
        status,
        message: message.into(),
    }
}

/// A JSON `{"message": ...}` error response, as h5grove sends them.
fn error_response(e: &RequestError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({ "message": e.message }).to_string();
    let mut resp = ok(body.into_bytes(), "application/json");
    *resp.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"hdfstream\""),
        );
    }
    resp
}

fn ok(body: Vec<u8>, media_type: &'static str) -> Response {
    let len = body.len();
    let mut resp = Response::new(Body::from(body));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    resp
}

/// The query parameters, decoded as HTML forms encode them (`+` is a space).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(uri: &Uri) -> Self {
        let decode = |s: &str| {
            let spaced = s.replace('+', " ");
            percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
        };
        let pairs = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Self(pairs)
    }

    /// The last value of `key` (as FastAPI takes single parameters).
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The HDF5 path (`/` by default).
    fn path(&self) -> String {
        self.get("path").unwrap_or("/").to_owned()
    }
}

/// A boolean argument as FastAPI parses it.
fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, RequestError> {
    match value.map(str::to_lowercase).as_deref() {
        None => Ok(false),
        Some("true" | "1" | "on" | "yes" | "t" | "y") => Ok(true),
        Some("false" | "0" | "off" | "no" | "f" | "n") => Ok(false),
        Some(other) => Err(error(
            422,
            format!("{name} must be a boolean, got {other:?}"),
        )),
    }
}

fn file_not_found() -> RequestError {
    error(404, "File not found!")
}

/// The `file` argument as virtual path segments: `..` and `.` are refused (400), hidden
/// names are invisible (404), as are empty paths.
fn file_segments(file: Option<&str>) -> Result<Vec<String>, RequestError> {
    let file = file.ok_or_else(|| error(422, "Missing query parameter: file"))?;
    if file.len() > MAX_PATH_LEN {
        return Err(error(
            400,
            format!("Path is too long: longer than {MAX_PATH_LEN} bytes"),
        ));
    }
    let trimmed = file.trim_start_matches('/');
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(file_not_found());
    }
    trimmed
        .split('/')
        .map(|seg| {
            if seg == "." || seg == ".." || seg.contains(['\\', '\0']) {
                Err(error(400, format!("Invalid file path: {file}")))
            } else if seg.is_empty() || seg.starts_with('.') {
                Err(file_not_found())
            } else {
                Ok(seg.to_owned())
            }
        })
        .collect()
}

/// Which h5grove endpoint a request is for.
#[derive(Clone, Copy, Debug)]
enum Endpoint {
    Meta,
    Attr,
    Data,
    Stats,
    Paths,
}

/// Resolves `file` to an HDF5 file of the served tree (blocking).
fn resolve_file(
    state: &AppState,
    segs: &[String],
    who: &Identity,
) -> Result<std::path::PathBuf, RequestError> {
    match state.shared.vfs.resolve(segs, who) {
        Ok(Node::File(path, info)) if info.media_type == HDF5_MEDIA_TYPE => Ok(path),
        Ok(Node::File(..)) => Err(error(404, "Not an HDF5 file")),
        Ok(Node::Directory(_)) | Err(Refusal::NotFound) => Err(file_not_found()),
        Err(Refusal::Unauthenticated) => Err(error(401, "Authentication required")),
        Err(Refusal::Forbidden) => Err(error(403, "Cannot read file: Permission denied!")),
    }
}

/// Answers one request (blocking): body and media type.
fn answer(
    state: &AppState,
    who: &Identity,
    endpoint: Endpoint,
    query: &Query,
) -> Result<(Vec<u8>, &'static str), RequestError> {
    let segs = file_segments(query.get("file"))?;
    let file = resolve_file(state, &segs, who)?;
    let file_name = segs.last().map_or("", String::as_str);
    let path = query.path();
    let hdf5 = &state.shared.hdf5;
    let max = state.shared.limits.max_h5grove_elements;
    let json = "application/json";
    match endpoint {
        Endpoint::Meta => {
            let resolve = Resolve::parse(query.get("resolve_links"))?;
            hdf5.grove_meta(&file, file_name, &path, resolve)
                .map(|b| (b, json))
        }
        Endpoint::Attr => {
            let keys = query.all("attr_keys");
            let keys = (!keys.is_empty()).then_some(keys.as_slice());
            hdf5.grove_attr(&file, file_name, &path, keys, max)
                .map(|b| (b, json))
        }
        Endpoint::Data => {
            let format = match query.get("format").unwrap_or("json") {
                "json" => Format::Json,
                "bin" => Format::Bin,
                "npy" => Format::Npy,
                "csv" | "tiff" => {
                    return Err(error(
                        400,
                        "Unsupported encoding: this server sends json, bin and npy",
                    ));
                }
                other => return Err(error(422, format!("Unsupported encoding {other}"))),
            };
            let safe = match query.get("dtype").unwrap_or("origin") {
                "origin" => false,
                "safe" => true,
                other => return Err(error(422, format!("Unsupported dtype {other}"))),
            };
            let req = DataRequest {
                selection: Selection::parse(query.get("selection"))?,
                format,
                safe,
                flatten: parse_bool("flatten", query.get("flatten"))?,
            };
            hdf5.grove_data(&file, file_name, &path, &req, max)
        }
        Endpoint::Stats => {
            let selection = Selection::parse(query.get("selection"))?;
            hdf5.grove_stats(&file, file_name, &path, &selection, max)
                .map(|b| (b, json))
        }
        Endpoint::Paths => hdf5.grove_paths(&file, file_name, &path).map(|b| (b, json)),
    }
}

async fn handle(state: AppState, who: Identity, uri: Uri, endpoint: Endpoint) -> Response {
    let query = Query::parse(&uri);
    let info = RequestInfo {
        vpath: query.get("file").map(str::to_owned),
        object: Some(query.path()),
        ..RequestInfo::default()
    };
    let shared = state.clone();
    let outcome = tokio::task::spawn_blocking(move || answer(&shared, &who, endpoint, &query))
        .await
        .unwrap_or_else(|e| Err(error(500, format!("The request failed: {e}"))));
    let resp = match outcome {
        Ok((body, media_type)) => ok(body, media_type),
        Err(e) => {
            tracing::debug!(status = e.status, message = %e.message, "h5grove request refused");
            error_response(&e)
        }
    };
    with_info(resp, info)
}

/// `GET <base>/h5grove/meta/`: metadata of an entity (`file`, `path`, `resolve_links`).
pub(crate) async fn meta(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    uri: Uri,
) -> Response {
    handle(state, who, uri, Endpoint::Meta).await
}

/// `GET <base>/h5grove/attr/`: attribute values (`file`, `path`, `attr_keys`...).
pub(crate) async fn attr(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    uri: Uri,
) -> Response {
    handle(state, who, uri, Endpoint::Attr).await
}

/// `GET <base>/h5grove/data/`: dataset values (`file`, `path`, `selection`, `format`,
/// `dtype`, `flatten`).
pub(crate) async fn data(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    uri: Uri,
) -> Response {
    handle(state, who, uri, Endpoint::Data).await
}

/// `GET <base>/h5grove/stats/`: statistics of dataset values (`file`, `path`, `selection`).
pub(crate) async fn stats(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    uri: Uri,
) -> Response {
    handle(state, who, uri, Endpoint::Stats).await
}

/// `GET <base>/h5grove/paths/`: paths of all links below a group (`file`, `path`).
pub(crate) async fn paths(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    uri: Uri,
) -> Response {
    handle(state, who, uri, Endpoint::Paths).await
}

/// `GET <base>/h5grove/`: h5grove's status check.
pub(crate) async fn root() -> Response {
    ok(b"ok".to_vec(), "text/plain")
}
