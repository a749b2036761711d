//! Building responses: msgpack bodies, msgpack error maps and HTML error pages.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hdfstream_protocol::RequestError;

use super::gate::RequestInfo;

/// Media type of every `/msgpack` response and of POST request bodies.
pub(crate) const MSGPACK: &str = "application/x-msgpack";

/// A msgpack body with status 200.
pub(crate) fn msgpack_ok(body: Body) -> Response {
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MSGPACK));
    resp
}

/// A msgpack error map with `status`.
pub(crate) fn msgpack_error(status: StatusCode, message: &str) -> Response {
    let mut resp = msgpack_ok(Body::from(hdfstream_protocol::encode_error(message)));
    *resp.status_mut() = status;
    resp
}

/// A [`RequestError`] as a msgpack error response (unknown statuses become 500).
pub(crate) fn request_error(error: &RequestError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    msgpack_error(status, &error.message)
}

pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The small HTML error page of the reference deployment (PROTOCOL.md §7.3).
pub(crate) fn html_error(status: StatusCode, message: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Error</title></head><body>\n<h2>Request failed</h2>\n<p>Status {}</p>\n<p>{}</p>\n</body></html>\n",
        status.as_u16(),
        escape_html(message)
    );
    let mut resp = (status, page).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=UTF-8"),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"hdfstream\""),
        );
    }
    resp
}

/// Attach what the request asked for, for the request log.
pub(crate) fn with_info(mut resp: Response, info: RequestInfo) -> Response {
    resp.extensions_mut().insert(info);
    resp
}
