//! Sending one request with retries and turning non-success responses into [`Error`]s.

use std::io::Read;
use std::time::Instant;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_TYPE, HeaderMap, RETRY_AFTER};

use super::Inner;
use super::reply::Reply;
use super::retry::parse_retry_after;
use crate::error::{Error, Result};

/// Exact request content type required by the server (PROTOCOL.md §2.2).
pub(crate) const MSGPACK: &str = "application/x-msgpack";

/// Characters escaped in one path segment: controls, space and everything that would
/// end or change the path part of a URL, plus `%` itself.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'[')
    .add(b']')
    .add(b'^')
    .add(b'|')
    .add(b'\\');

/// Most bytes of an error body that are read.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// Characters of an HTML/text error body kept in [`Error::Http`].
const ERROR_TEXT_CHARS: usize = 200;

/// Percent-encodes each `/`-separated segment of a virtual path (leading `/` removed).
pub(crate) fn encode_vpath(vpath: &str) -> String {
    let trimmed = vpath.trim_start_matches('/');
    trimmed
        .split('/')
        .map(|seg| utf8_percent_encode(seg, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// One logical request.
pub(crate) struct Call<'a> {
    /// GET or POST.
    pub(crate) method: reqwest::Method,
    /// Full URL.
    pub(crate) url: String,
    /// msgpack body for POST.
    pub(crate) body: Option<Vec<u8>>,
    /// Path reported in [`Error::NotFound`].
    pub(crate) what: &'a str,
    /// Bytes the response is expected to carry, when known (0 otherwise): from
    /// [`Inner::direct_from`] on, it is read on a connection of its own (see `reply.rs`).
    pub(crate) expected: u64,
}

impl Inner {
    /// `<base>/<endpoint>/<encoded vpath>`.
    pub(crate) fn url(&self, endpoint: &str, vpath: &str) -> String {
        format!("{}/{}/{}", self.base_url, endpoint, encode_vpath(vpath))
    }

    /// Sends `call` and hands each 2xx response (body unread) and the attempt number
    /// (1-based) to `read`, retrying whatever [`Error::is_retryable`] calls transient —
    /// connection failures, 5xx, 429 (honouring `Retry-After`), and bodies that broke off or
    /// do not decode — within the retry budget. `read` must rewrite its output from scratch
    /// on every attempt. The error returned carries the number of attempts made.
    pub(crate) fn request<T>(
        &self,
        call: &Call<'_>,
        mut read: impl FnMut(Reply, u32) -> Result<T>,
    ) -> Result<T> {
        let start = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts = attempts.saturating_add(1);
            let t0 = Instant::now();
            let outcome = self.send_once(call).and_then(|resp| {
                tracing::debug!(
                    method = %call.method, url = %call.url, status = resp.status().as_u16(),
                    elapsed_ms = t0.elapsed().as_millis() as u64, "response headers"
                );
                read(resp, attempts)
            });
            let err = match outcome {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let Some(delay) = self.retry_delay(&err, attempts, start.elapsed()) else {
                if attempts > 1 {
                    tracing::warn!(
                        url = %call.url, what = call.what, attempts, error = %err, "giving up"
                    );
                }
                return Err(err.with_attempts(attempts));
            };
            tracing::warn!(
                url = %call.url, what = call.what, attempt = attempts,
                max_retries = self.retry.max_retries, ?delay, error = %err, "retrying request"
            );
            std::thread::sleep(delay);
        }
    }

    /// Sends `call`, retrying transient failures before the body; returns a 2xx response
    /// with its body unread and the number of attempts made.
    pub(crate) fn send(&self, call: &Call<'_>) -> Result<(Reply, u32)> {
        self.request(call, |resp, attempt| Ok((resp, attempt)))
    }

    /// The wait before the next attempt after `err` ended attempt number `attempts`, or
    /// `None` to give up: the error is not transient, the retries are used up, or the
    /// wait would end past the retry timeout.
    fn retry_delay(
        &self,
        err: &Error,
        attempts: u32,
        elapsed: std::time::Duration,
    ) -> Option<std::time::Duration> {
        let retry = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        let budget_left = self.retry.retry_timeout.saturating_sub(elapsed);
        if !err.is_retryable() || retry >= self.retry.max_retries || budget_left.is_zero() {
            return None;
        }
        let delay = match err {
            Error::RateLimited {
                retry_after: Some(after),
                ..
            } => *after,
            _ => self.retry.delay(retry),
        };
        if delay > budget_left {
            tracing::warn!(?delay, "retry delay exceeds the retry timeout; giving up");
            return None;
        }
        Some(delay)
    }

    fn send_once(&self, call: &Call<'_>) -> Result<Reply> {
        // The same request for either client (their builders have the same methods).
        macro_rules! request {
            ($client:expr) => {{
                let mut req = $client.request(call.method.clone(), &call.url);
                if let Some((user, password)) = &self.auth {
                    req = req.basic_auth(user, Some(password));
                }
                if let Some(body) = &call.body {
                    req = req.header(CONTENT_TYPE, MSGPACK).body(body.clone());
                }
                if self.compression {
                    req = req.header(ACCEPT_ENCODING, super::coding::ACCEPT);
                }
                req
            }};
        }
        let failed = |e: reqwest::Error| Error::Connection {
            url: call.url.clone(),
            attempts: 1,
            source: Box::new(e.without_url()),
        };
        // Not inside an async runtime: a runtime cannot be started there.
        let direct =
            call.expected >= self.direct_from && tokio::runtime::Handle::try_current().is_err();
        let reply = if direct {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| Error::Io {
                    context: format!("starting the runtime of a large read of {}", call.what),
                    source,
                })?;
            // The request is made inside the runtime: its timers need one.
            let resp = runtime
                .block_on(async { request!(self.direct).send().await })
                .map_err(failed)?;
            Reply::direct(runtime, resp)
        } else {
            Reply::pooled(request!(self.http).send().map_err(failed)?)
        };
        if reply.status().is_success() {
            return Ok(reply);
        }
        Err(error_from_response(reply, call))
    }
}

/// Media type of a response without parameters, lower case.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or("").trim();
    Some(essence.to_ascii_lowercase())
}

/// Maps a non-success response to an error (PROTOCOL.md §7.4).
fn error_from_response(resp: Reply, call: &Call<'_>) -> Error {
    let status = resp.status().as_u16();
    let media = media_type(resp.headers());
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    if status != 401 && status != 429 {
        // A proxy may compress its error pages; an unsupported coding leaves the body unread.
        match super::coding::decode(resp, &call.url) {
            Ok((decoded, _, _)) => {
                if let Err(e) = decoded.take(ERROR_BODY_LIMIT).read_to_end(&mut body) {
                    tracing::debug!(url = %call.url, error = %e, "could not read error body");
                }
            }
            Err(e) => tracing::debug!(url = %call.url, error = %e, "could not read error body"),
        }
    }
    error_from_parts(
        status,
        media.as_deref(),
        retry_after.as_deref(),
        &body,
        &call.url,
        call.what,
    )
}

/// The error for a non-success response with this status, media type (without
/// parameters, lower case), `Retry-After` header and body (at most [`ERROR_BODY_LIMIT`]
/// bytes of it), answering a request for `what` at `url`.
pub(crate) fn error_from_parts(
    code: u16,
    media_type: Option<&str>,
    retry_after: Option<&str>,
    body: &[u8],
    url: &str,
    what: &str,
) -> Error {
    let url = url.to_string();
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::UNAUTHORIZED {
        return Error::Unauthorized { url };
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Error::RateLimited {
            retry_after: retry_after.and_then(parse_retry_after),
            url,
            attempts: 1,
        };
    }
    let is_msgpack = media_type == Some(MSGPACK);
    if is_msgpack && let Some(message) = super::codec::error_message(body) {
        if status == StatusCode::NOT_FOUND {
            return Error::NotFound {
                path: what.to_string(),
                message,
            };
        }
        return Error::Server {
            status: code,
            message,
            url,
            attempts: 1,
        };
    }
    let text = strip_tags(body);
    if status == StatusCode::NOT_FOUND {
        let message = if text.is_empty() {
            status.canonical_reason().unwrap_or("Not Found").to_string()
        } else {
            text
        };
        return Error::NotFound {
            path: what.to_string(),
            message,
        };
    }
    Error::Http {
        status: code,
        text,
        url,
        attempts: 1,
    }
}

/// The text of an error body (invalid UTF-8 replaced) with HTML tags removed and
/// whitespace collapsed: its first ~200 characters, reading no further than those.
pub(crate) fn strip_tags(body: &[u8]) -> String {
    let chars = body.utf8_chunks().flat_map(|chunk| {
        let bad = (!chunk.invalid().is_empty()).then_some(char::REPLACEMENT_CHARACTER);
        chunk.valid().chars().chain(bad)
    });
    let mut out = String::new();
    let (mut kept, mut in_tag, mut space) = (0usize, false, false);
    for c in chars {
        match c {
            '<' => {
                in_tag = true;
                space = true;
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c if c.is_whitespace() => space = true,
            c => {
                let sep = space && !out.is_empty();
                space = false;
                for c in sep.then_some(' ').into_iter().chain([c]) {
                    if kept == ERROR_TEXT_CHARS {
                        out.push('…');
                        return out;
                    }
                    out.push(c);
                    kept += 1;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `strip_tags` did before it stopped reading after 200 characters.
    fn whole(text: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in text.chars() {
            match c {
                '<' => {
                    in_tag = true;
                    out.push(' ');
                }
                '>' if in_tag => in_tag = false,
                _ if in_tag => {}
                _ => out.push(c),
            }
        }
        let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
        match collapsed.char_indices().nth(ERROR_TEXT_CHARS) {
            Some((i, _)) => format!("{}…", &collapsed[..i]),
            None => collapsed,
        }
    }

    #[test]
    fn strip_tags_keeps_the_text_it_kept_when_it_read_everything() {
        let long = format!("<p>{}</p>", "word ".repeat(100));
        let exact = "x".repeat(ERROR_TEXT_CHARS);
        let cases = [
            "",
            "  ",
            "<html><body><h1>401 Unauthorized</h1>\n<p>Bad  credentials</p></body></html>",
            "a<b>c</b>d",
            "<unclosed tag",
            "tail > here",
            " lead\t and\r\n trail ",
            long.as_str(),
            exact.as_str(),
        ];
        for text in cases {
            assert_eq!(strip_tags(text.as_bytes()), whole(text), "{text:?}");
        }
        let with_space = format!("{exact} y");
        assert_eq!(strip_tags(with_space.as_bytes()), whole(&with_space));
        assert_eq!(strip_tags(b"caf\xe9 <b>ok</b>"), "caf\u{fffd} ok");
    }
}
