//! The `/msgpack` and `/download` endpoints (PROTOCOL.md §1–5, §7).
//!
//! `/msgpack` failures are msgpack `{"error": ...}` maps, except 401/403 which are HTML pages
//! like the reference deployment's container security; `/download` failures are HTML pages.

use std::io;
use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use hdfstream_protocol::{HDF5_MEDIA_TYPE, ObjectRequest, PathInfo, RequestError, encode_path};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::gate::RequestInfo;
use super::respond::{MSGPACK, html_error, msgpack_ok, request_error, with_info};
use super::stream::stream_blocking;
use super::tarball::TarPlan;
use super::{AppState, Shared};
use crate::auth::Identity;
use crate::stamp::{FileStamp, changed_error, is_changed};
use crate::vfs::{MAX_PATH_LEN, Node, PathError, Refusal, parse_vpath};

/// Characters kept as they are in `Content-Disposition` file names.
const FILENAME_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

fn err(status: u16, message: impl Into<String>) -> RequestError {
    RequestError {
        status,
        message: message.into(),
    }
}

/// The part of the URL path after `/<endpoint>` and its slash.
pub(crate) fn rest_of<'a>(uri: &'a Uri, endpoint: &str) -> &'a str {
    let path = uri.path();
    let after = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(endpoint))
        .unwrap_or("");
    after.strip_prefix('/').unwrap_or(after)
}

/// Human form of a raw URL path for messages: percent-decoded, lossy, without trailing slash.
fn shown(raw: &str) -> String {
    let trimmed = raw.strip_suffix('/').unwrap_or(raw);
    percent_decode_str(trimmed).decode_utf8_lossy().into_owned()
}

fn invalid_path(raw: &str) -> RequestError {
    err(404, format!("Invalid path specified: {}", shown(raw)))
}

/// Parse the URL path; errors in the reference's statuses and texts.
fn segments(raw: &str) -> Result<Vec<String>, RequestError> {
    parse_vpath(raw).map_err(|e| match e {
        PathError::TooLong => err(
            400,
            format!("Path is too long: longer than {MAX_PATH_LEN} bytes"),
        ),
        PathError::Invalid => invalid_path(raw),
    })
}

fn html(error: &RequestError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    html_error(status, &error.message)
}

/// Run blocking file-system work off the async runtime; failures become 500s.
async fn blocking<T, F>(what: &'static str, work: F) -> Result<T, RequestError>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(err(500, format!("{what}: {e}"))),
        Err(e) => Err(err(500, format!("{what}: {e}"))),
    }
}

/// Resolve on the blocking pool. `NotFound` is left to the caller (msgpack or HTML 404);
/// 401/403 are HTML pages on both endpoints.
async fn resolve(
    shared: &Arc<Shared>,
    segs: Vec<String>,
    who: Identity,
) -> Result<(Node, Vec<String>, Identity), Refusal> {
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        let node = shared.vfs.resolve(&segs, &who)?;
        Ok((node, segs, who))
    })
    .await
    .unwrap_or(Err(Refusal::NotFound))
}

fn refusal_page(refusal: Refusal, raw: &str) -> Response {
    match refusal {
        Refusal::NotFound => html(&invalid_path(raw)),
        Refusal::Unauthenticated => html_error(StatusCode::UNAUTHORIZED, "Authentication required"),
        Refusal::Forbidden => {
            html_error(StatusCode::FORBIDDEN, "Access to this path is not allowed")
        }
    }
}

/// Request parameters from the POST body or the GET query.
fn params(
    method: &Method,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<ObjectRequest, RequestError> {
    if method == Method::POST {
        let content_type = headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes);
        if content_type != Some(MSGPACK.as_bytes()) {
            return Err(err(
                415,
                "POST requests must have content type application/x-msgpack",
            ));
        }
        ObjectRequest::decode_body(body)
    } else {
        ObjectRequest::from_query(uri.query().unwrap_or(""))
    }
}

/// `GET|POST|HEAD <base>/msgpack/<vpath>`.
pub(crate) async fn msgpack(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = rest_of(&uri, "msgpack");
    let mut info = RequestInfo {
        vpath: Some(shown(raw)),
        ..RequestInfo::default()
    };
    let parsed = params(&method, &headers, &uri, &body);
    let resp = match answer_msgpack(&state.shared, who, raw, parsed, &mut info).await {
        Ok(resp) | Err(resp) => resp,
    };
    with_info(resp, info)
}

async fn answer_msgpack(
    shared: &Arc<Shared>,
    who: Identity,
    raw: &str,
    parsed: Result<ObjectRequest, RequestError>,
    info: &mut RequestInfo,
) -> Result<Response, Response> {
    let segs = segments(raw).map_err(|e| request_error(&e))?;
    let req = parsed.map_err(|e| request_error(&e))?;
    info.object.clone_from(&req.object);
    info.slice_runs = req.slice.as_ref().map(|s| s.runs.len());
    info.slice_rows = req
        .slice
        .as_ref()
        .filter(|s| s.runs.len() <= super::gate::LOGGED_RUNS)
        .map(|s| s.runs.iter().map(|r| (r.start, r.count)).collect());
    let (node, segs, who) = resolve(shared, segs, who)
        .await
        .map_err(|refusal| match refusal {
            Refusal::NotFound => request_error(&invalid_path(raw)),
            other => refusal_page(other, raw),
        })?;
    let encoded = match node {
        Node::Directory(dir) => {
            let depth = req
                .max_depth
                .unwrap_or(0)
                .min(shared.limits.max_listing_depth);
            let walker = Arc::clone(shared);
            let listing = blocking("Unable to list directory", move || {
                walker.vfs.listing(&dir, &segs, &who, depth)
            })
            .await
            .map_err(|e| request_error(&e))?;
            encode_path(&PathInfo::Directory(listing))
        }
        Node::File(_, file) if req.object.is_none() => encode_path(&PathInfo::File(file)),
        Node::File(_, file) if file.media_type != HDF5_MEDIA_TYPE => {
            return Err(request_error(&err(404, "Failed to open object")));
        }
        Node::File(path, _) => {
            let reader = Arc::clone(shared);
            let body = stream_blocking(shared.limits.chunk_bytes, move |out| {
                // Every piece must come from the version of the file seen now; an error
                // while it changes is reported as the change.
                let stamp = FileStamp::of_path(&path).map_err(|_| changed_error())?;
                out.guard_file(&path, stamp);
                match reader.hdf5.write_response(&path, &req, out) {
                    Err(_) if stamp.check(&path).is_err() => Err(changed_error()),
                    outcome => outcome,
                }
            })
            .await
            .map_err(|e| request_error(&e))?;
            return Ok(msgpack_ok(body));
        }
    };
    Ok(msgpack_ok(Body::from(encoded)))
}

fn attachment(name: &str) -> HeaderValue {
    let encoded = utf8_percent_encode(name, FILENAME_SAFE).to_string();
    HeaderValue::from_str(&format!("attachment; filename=\"{encoded}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `GET|HEAD <base>/download/<vpath>`: a file's bytes, or a directory as a tar stream.
pub(crate) async fn download(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    method: Method,
    uri: Uri,
) -> Response {
    let raw = rest_of(&uri, "download");
    let info = RequestInfo {
        vpath: Some(shown(raw)),
        ..RequestInfo::default()
    };
    let resp = match answer_download(&state.shared, who, raw, method == Method::HEAD).await {
        Ok(resp) | Err(resp) => resp,
    };
    with_info(resp, info)
}

async fn answer_download(
    shared: &Arc<Shared>,
    who: Identity,
    raw: &str,
    head: bool,
) -> Result<Response, Response> {
    let segs = segments(raw).map_err(|e| html(&e))?;
    if segs.is_empty() {
        return Err(html_error(
            StatusCode::BAD_REQUEST,
            "No path specified for download",
        ));
    }
    let (node, segs, who) = resolve(shared, segs, who)
        .await
        .map_err(|refusal| refusal_page(refusal, raw))?;
    let chunk_bytes = shared.limits.chunk_bytes;
    let (media_type, filename, len, body) = match node {
        Node::File(path, file) => {
            let size = file.size;
            let body = if head {
                Body::empty()
            } else {
                stream_blocking(chunk_bytes, move |out| {
                    out.copy_file(&path, size).map_err(|e| match e.kind() {
                        _ if is_changed(&e) => changed_error(),
                        io::ErrorKind::NotFound => err(404, format!("Unable to open file: {e}")),
                        _ => err(500, format!("Unable to read file: {e}")),
                    })
                })
                .await
                .map_err(|e| html(&e))?
            };
            let name = segs.last().cloned().unwrap_or_default();
            (file.media_type, name, size, body)
        }
        Node::Directory(dir) => {
            let walker = Arc::clone(shared);
            let walk_segs = segs.clone();
            let files = blocking("Unable to list directory", move || {
                walker.vfs.tree_files(&dir, &walk_segs, &who)
            })
            .await
            .map_err(|e| html(&e))?;
            let plan = TarPlan::new(&segs.join("/"), files);
            let len = plan.len();
            let body = if head {
                Body::empty()
            } else {
                stream_blocking(chunk_bytes, move |out| {
                    plan.write(out).map_err(|e| {
                        if is_changed(&e) {
                            changed_error()
                        } else {
                            err(500, format!("Unable to write archive: {e}"))
                        }
                    })
                })
                .await
                .map_err(|e| html(&e))?
            };
            (
                "application/x-tar".to_owned(),
                format!("{}.tar", segs.join("_")),
                len,
                body,
            )
        }
    };
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    let content_type = HeaderValue::from_str(&media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::CONTENT_DISPOSITION, attachment(&filename));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    Ok(resp)
}
