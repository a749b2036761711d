//! The middleware every request passes: request accounting and tracing, HTTP Basic
//! authentication, and the per-client concurrency limit.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http_body::{Frame, SizeHint};

use super::AppState;
use super::respond::{html_error, msgpack_error};
use super::timeouts::BodyTimer;
use crate::auth::Identity;

/// Most records a [`RequestLog`] keeps (oldest dropped first).
pub const REQUEST_LOG_CAPACITY: usize = 100_000;
/// Most memory the records of a [`RequestLog`] hold, in bytes as counted by
/// [`RequestRecord::retained_bytes`] (oldest dropped first): paths, names and logged runs
/// come from the client, and 100 000 records of hostile sizes would otherwise hold gigabytes.
pub const REQUEST_LOG_BYTES: usize = 64 << 20;
/// Slices with at most this many runs have them kept in the request log.
pub const LOGGED_RUNS: usize = 1 << 16;
/// Finished requests whose durations [`RequestLog::slowest`] chooses from (the most recent).
pub const TIMED_REQUESTS: usize = 1024;
/// Longest request path kept in a [`TimedRequest`] (longer ones are cut, marked with `…`).
const TIMED_PATH_CHARS: usize = 200;

/// How long one finished request took, for the slowest-requests table of `/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedRequest {
    /// HTTP method.
    pub method: String,
    /// URL path as received, cut at 200 characters.
    pub path: String,
    /// Response status code (0 if the client left before a response was ready).
    pub status: u16,
    /// Response body bytes sent.
    pub body_bytes: u64,
    /// From the request's arrival to the end of its response body.
    pub duration: Duration,
    /// Whether the body was sent to its end.
    pub complete: bool,
    /// When the request ended.
    pub ended: std::time::SystemTime,
}

/// One request as served: what was asked and how much body went out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method (`GET`, `POST`, `HEAD`).
    pub method: String,
    /// URL path as received (percent-encoded, without the query).
    pub path: String,
    /// Virtual path for `/msgpack` and `/download` requests (decoded, `/`-joined).
    pub vpath: Option<String>,
    /// HDF5 object named by the request, if any.
    pub object: Option<String>,
    /// Number of first-dimension runs in the slice, if the request had one.
    pub slice_runs: Option<usize>,
    /// The first-dimension runs as `(start, count)`, for slices of at most
    /// [`LOGGED_RUNS`] runs (tests compare them with the rows they expect).
    pub slice_rows: Option<Arc<[(u64, u64)]>>,
    /// Authenticated user, if any.
    pub user: Option<String>,
    /// Response status code (0 if the client left before a response was ready).
    pub status: u16,
    /// Response body bytes handed to the connection (compressed, when the response was).
    pub body_bytes: u64,
    /// The response's `Content-Encoding` (`zstd`, `gzip`), when it was compressed.
    pub encoding: Option<String>,
    /// Whether the body was sent to its end (false: failed mid-stream or client left).
    pub complete: bool,
}

impl RequestRecord {
    /// Memory the record holds: its own size, its strings and its logged runs.
    pub fn retained_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.method.len()
            + self.path.len()
            + self.vpath.as_ref().map_or(0, String::len)
            + self.object.as_ref().map_or(0, String::len)
            + self.user.as_ref().map_or(0, String::len)
            + self.encoding.as_ref().map_or(0, String::len)
            + self
                .slice_rows
                .as_ref()
                .map_or(0, |rows| std::mem::size_of_val(&**rows))
    }

    fn empty() -> Self {
        Self {
            method: String::new(),
            path: String::new(),
            vpath: None,
            object: None,
            slice_runs: None,
            slice_rows: None,
            user: None,
            status: 0,
            body_bytes: 0,
            encoding: None,
            complete: false,
        }
    }
}

/// The kept records and the memory they hold.
#[derive(Debug, Default)]
struct Records {
    list: VecDeque<RequestRecord>,
    bytes: usize,
}

/// Shared record of served requests, for tests and embedding applications: the last
/// [`REQUEST_LOG_CAPACITY`] requests, fewer when they hold more than [`REQUEST_LOG_BYTES`].
#[derive(Debug, Default)]
pub struct RequestLog {
    records: Mutex<Records>,
    in_flight: AtomicUsize,
    total_requests: AtomicU64,
    total_body_bytes: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    incomplete: AtomicU64,
    timed: Mutex<VecDeque<TimedRequest>>,
}

impl RequestLog {
    /// Copy of the records kept so far, oldest first.
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.records
            .lock()
            .map(|r| r.list.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Memory the kept records hold (see [`RequestRecord::retained_bytes`]); at most
    /// [`REQUEST_LOG_BYTES`] unless a single record is larger.
    pub fn retained_bytes(&self) -> usize {
        self.records.lock().map(|r| r.bytes).unwrap_or(0)
    }

    /// Forget the kept records (totals stay).
    pub fn clear(&self) {
        if let Ok(mut records) = self.records.lock() {
            *records = Records::default();
        }
    }

    /// Requests whose response body has not finished yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Requests finished since start.
    pub fn total_requests(&self) -> u64 {
        self.total_requests.load(Ordering::Relaxed)
    }

    /// Response body bytes sent since start.
    pub fn total_body_bytes(&self) -> u64 {
        self.total_body_bytes.load(Ordering::Relaxed)
    }

    /// Requests answered with a 4xx status since start.
    pub fn client_errors(&self) -> u64 {
        self.client_errors.load(Ordering::Relaxed)
    }

    /// Requests answered with a 5xx status since start.
    pub fn server_errors(&self) -> u64 {
        self.server_errors.load(Ordering::Relaxed)
    }

    /// Requests whose response body did not reach its end (failed mid-stream, the client
    /// left, or no response was made) since start.
    pub fn incomplete(&self) -> u64 {
        self.incomplete.load(Ordering::Relaxed)
    }

    /// The `n` slowest of the last [`TIMED_REQUESTS`] finished requests, slowest first.
    pub fn slowest(&self, n: usize) -> Vec<TimedRequest> {
        let mut all: Vec<TimedRequest> = self
            .timed
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        all.sort_by_key(|r| std::cmp::Reverse(r.duration));
        all.truncate(n);
        all
    }

    fn time(&self, record: &RequestRecord, duration: Duration) {
        let mut path: String = record.path.chars().take(TIMED_PATH_CHARS).collect();
        if path.len() < record.path.len() {
            path.push('…');
        }
        let timed = TimedRequest {
            method: record.method.clone(),
            path,
            status: record.status,
            body_bytes: record.body_bytes,
            duration,
            complete: record.complete,
            ended: std::time::SystemTime::now(),
        };
        if let Ok(mut list) = self.timed.lock() {
            if list.len() >= TIMED_REQUESTS {
                list.pop_front();
            }
            list.push_back(timed);
        }
    }

    fn push(&self, record: RequestRecord) {
        self.total_requests.fetch_add(1, Ordering::Relaxed);
        self.total_body_bytes
            .fetch_add(record.body_bytes, Ordering::Relaxed);
        match record.status {
            400..=499 => self.client_errors.fetch_add(1, Ordering::Relaxed),
            500..=599 => self.server_errors.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        if !record.complete {
            self.incomplete.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut records) = self.records.lock() {
            let size = record.retained_bytes();
            while !records.list.is_empty()
                && (records.list.len() >= REQUEST_LOG_CAPACITY
                    || records.bytes + size > REQUEST_LOG_BYTES)
            {
                if let Some(old) = records.list.pop_front() {
                    records.bytes -= old.retained_bytes();
                }
            }
            records.bytes += size;
            records.list.push_back(record);
        }
    }
}

/// What a handler tells the gate about a request (a response extension).
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestInfo {
    pub(crate) vpath: Option<String>,
    pub(crate) object: Option<String>,
    pub(crate) slice_runs: Option<usize>,
    pub(crate) slice_rows: Option<Arc<[(u64, u64)]>>,
}

/// Counts in-flight requests per client key.
#[derive(Debug)]
pub(crate) struct ClientLimiter {
    max: usize,
    counts: Mutex<HashMap<String, usize>>,
}

impl ClientLimiter {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn acquire(self: &Arc<Self>, key: String) -> Option<ClientSlot> {
        let mut counts = self.counts.lock().ok()?;
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            limiter: Arc::clone(self),
            key,
        })
    }
}

/// Window over which failed logins are counted.
const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Most addresses whose failed logins are tracked at once.
const LOGIN_TRACKED: usize = 1 << 16;

/// Failed logins per IP address in the current window (see `Limits::max_failed_logins`).
#[derive(Debug)]
pub(crate) struct FailedLogins {
    max: u32,
    seen: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl FailedLogins {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            max,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The time until `ip` may try credentials again, when it has used up its failures.
    fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if self.max == 0 {
            return None;
        }
        let &(n, start) = self.lock().get(&ip)?;
        let elapsed = now.saturating_duration_since(start);
        (n >= self.max && elapsed < LOGIN_WINDOW).then(|| LOGIN_WINDOW - elapsed)
    }

    /// Counts a failed login of `ip`.
    fn failed(&self, ip: IpAddr, now: Instant) {
        if self.max == 0 {
            return;
        }
        let mut seen = self.lock();
        if seen.len() >= LOGIN_TRACKED && !seen.contains_key(&ip) {
            seen.retain(|_, (_, start)| now.saturating_duration_since(*start) < LOGIN_WINDOW);
            if seen.len() >= LOGIN_TRACKED {
                seen.clear();
            }
        }
        let entry = seen.entry(ip).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= LOGIN_WINDOW {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }
}

/// One in-flight request of a client; released on drop.
struct ClientSlot {
    limiter: Arc<ClientLimiter>,
    key: String,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.limiter.counts.lock()
            && let Some(count) = counts.get_mut(&self.key)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// A request being served: completed (logged) when its body ends or is dropped.
struct Pending {
    log: Arc<RequestLog>,
    record: RequestRecord,
    started: Instant,
}

impl Pending {
    /// Log the request now (dropping without `finish` logs it as incomplete).
    fn finish(mut self, complete: bool) {
        self.record.complete = complete;
    }
}

impl Drop for Pending {
    /// Runs once per request, also when the client went away before the response (status
    /// stays 0 then), so `in_flight` always returns to zero.
    fn drop(&mut self) {
        let r = &self.record;
        tracing::info!(
            method = %r.method,
            path = %r.path,
            object = r.object.as_deref().unwrap_or(""),
            slices = r.slice_runs.unwrap_or(0),
            user = r.user.as_deref().unwrap_or(""),
            status = r.status,
            bytes = r.body_bytes,
            encoding = r.encoding.as_deref().unwrap_or(""),
            complete = r.complete,
            ms = self.started.elapsed().as_secs_f64() * 1e3,
            "request"
        );
        self.log.time(&self.record, self.started.elapsed());
        self.log.in_flight.fetch_sub(1, Ordering::SeqCst);
        let record = std::mem::replace(&mut self.record, RequestRecord::empty());
        self.log.push(record);
    }
}

/// Response body wrapper that counts bytes and finishes the [`Pending`] record.
struct TrackedBody {
    inner: Body,
    /// Body length announced in `Content-Length` (0 for HEAD): the body is complete once
    /// that many bytes went out, even if the connection drops it without a final poll.
    expected: Option<u64>,
    pending: Option<Pending>,
    slot: Option<ClientSlot>,
}

impl TrackedBody {
    /// Free the client's slot, then log the request (so a client that saw the record can
    /// start its next request at once).
    fn finish(&mut self, complete: bool) {
        self.slot = None;
        if let Some(pending) = self.pending.take() {
            pending.finish(complete);
        }
    }
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if let Some(pending) = self.pending.as_mut() {
                    pending.record.body_bytes += n;
                }
                if self.inner.is_end_stream() {
                    self.finish(true);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Ready(None) => self.finish(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        let sent = self.pending.as_ref().map(|p| p.record.body_bytes);
        let complete = self.inner.is_end_stream() || (sent.is_some() && sent == self.expected);
        self.finish(complete);
    }
}

/// Why the Authorization header was refused.
struct BadCredentials;

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Identity, BadCredentials> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Identity::anonymous());
    };
    let users = state.shared.users.clone().ok_or(BadCredentials)?;
    let text = value.to_str().map_err(|_| BadCredentials)?;
    let (scheme, encoded) = text.split_once(' ').ok_or(BadCredentials)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(BadCredentials);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| BadCredentials)?;
    let pair = String::from_utf8(decoded).map_err(|_| BadCredentials)?;
    let (name, password) = pair.split_once(':').ok_or(BadCredentials)?;
    let (name, password) = (name.to_owned(), password.to_owned());
    tokio::task::spawn_blocking(move || users.verify(&name, &password))
        .await
        .ok()
        .flatten()
        .ok_or(BadCredentials)
}

/// The middleware: log, authenticate, limit per client, then run the handler.
pub(crate) async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let log = Arc::clone(&state.shared.log);
    log.in_flight.fetch_add(1, Ordering::SeqCst);
    let mut pending = Pending {
        log,
        record: RequestRecord {
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            ..RequestRecord::empty()
        },
        started: Instant::now(),
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let logins = &state.shared.logins;
    if let Some(ip) = peer
        && req.headers().contains_key(header::AUTHORIZATION)
        && let Some(wait) = logins.blocked(ip, Instant::now())
    {
        let mut resp = msgpack_error(StatusCode::TOO_MANY_REQUESTS, "Too many failed logins");
        let secs = wait.as_secs().max(1).to_string();
        if let Ok(v) = HeaderValue::from_str(&secs) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return track(pending, resp, None);
    }
    let identity = match authenticate(&state, req.headers()).await {
        Ok(identity) => identity,
        Err(BadCredentials) => {
            if let Some(ip) = peer {
                logins.failed(ip, Instant::now());
            }
            let resp = html_error(StatusCode::UNAUTHORIZED, "Not authorized");
            return track(pending, resp, None);
        }
    };
    pending.record.user = identity.user().map(str::to_owned);
    // A declared length over the limit is refused before any of the body is read (the
    // body extractor alone would wait for bytes a client may never send).
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.shared.limits.max_body_bytes as u64) {
        let resp = msgpack_error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
        return track(pending, resp, None);
    }
    let key = match (identity.user(), peer) {
        (Some(user), _) => format!("user:{user}"),
        (None, Some(ip)) => format!("ip:{ip}"),
        (None, None) => "local".to_owned(),
    };
    let Some(slot) = state.shared.clients.acquire(key) else {
        let mut resp = msgpack_error(StatusCode::TOO_MANY_REQUESTS, "Request rate limit exceeded");
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return track(pending, resp, None);
    };
    req.extensions_mut().insert(identity);
    let body_timer = req.extensions().get::<BodyTimer>().cloned();
    let mut resp = next.run(req).await;
    if body_timer.is_some_and(|t| t.expired()) {
        // Whatever the handler made of the failed body, the answer is 408; the rest of the
        // body is not read, so the connection cannot carry another request.
        resp = msgpack_error(
            StatusCode::REQUEST_TIMEOUT,
            "Request body not received in time",
        );
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    track(pending, resp, Some(slot))
}

fn track(mut pending: Pending, resp: Response, slot: Option<ClientSlot>) -> Response {
    pending.record.status = resp.status().as_u16();
    pending.record.encoding = resp
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(info) = resp.extensions().get::<RequestInfo>() {
        pending.record.vpath = info.vpath.clone();
        pending.record.object = info.object.clone();
        pending.record.slice_runs = info.slice_runs;
        pending.record.slice_rows.clone_from(&info.slice_rows);
    }
    let expected = if pending.record.method == "HEAD" {
        Some(0)
    } else {
        resp.headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    };
    let (parts, body) = resp.into_parts();
    let tracked = TrackedBody {
        inner: body,
        expected,
        pending: Some(pending),
        slot,
    };
    Response::from_parts(parts, Body::new(tracked)).into_response()
}

#[cfg(test)]
mod log_tests {
    use std::sync::Arc;

    use super::{REQUEST_LOG_BYTES, RequestLog, RequestRecord};

    #[test]
    fn the_log_drops_old_records_beyond_its_memory_budget() {
        let log = RequestLog::default();
        // Records as large as a request with 2^16 runs and a long path makes them.
        let record = |i: u64| RequestRecord {
            path: format!("/msgpack/{}", "a".repeat(60_000)),
            slice_rows: Some((0..1u64 << 16).map(|r| (r + i, 1)).collect::<Arc<[_]>>()),
            ..RequestRecord::empty()
        };
        let size = record(0).retained_bytes();
        assert!(size > (1 << 20), "{size}");
        for i in 0..200 {
            log.push(record(i));
            assert!(log.retained_bytes() <= REQUEST_LOG_BYTES);
        }
        let kept = log.snapshot();
        assert_eq!(kept.len(), REQUEST_LOG_BYTES / size);
        assert_eq!(log.retained_bytes(), kept.len() * size);
        // The newest are kept.
        let last = kept.last().and_then(|r| r.slice_rows.clone()).unwrap();
        assert_eq!(last[0], (199, 1));
        assert_eq!(log.total_requests(), 200);
        log.clear();
        assert_eq!(log.retained_bytes(), 0);
        // A single record over the budget is kept alone.
        let huge = RequestRecord {
            path: "x".repeat(REQUEST_LOG_BYTES + 1),
            ..RequestRecord::empty()
        };
        log.push(record(0));
        log.push(huge);
        assert_eq!(log.snapshot().len(), 1);
    }
}

#[cfg(test)]
mod login_tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::{Duration, Instant};

    use super::{FailedLogins, LOGIN_WINDOW};

    #[test]
    fn an_address_is_blocked_after_its_failures_until_the_window_ends() {
        let limit = FailedLogins::new(3);
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        );
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(limit.blocked(a, t0), None, "after {i} failures");
            limit.failed(a, t0);
        }
        let later = t0 + Duration::from_secs(20);
        assert_eq!(
            limit.blocked(a, later),
            Some(LOGIN_WINDOW - Duration::from_secs(20))
        );
        // Other addresses are not affected.
        assert_eq!(limit.blocked(b, later), None);
        // A new window starts the count again.
        let next = t0 + LOGIN_WINDOW;
        assert_eq!(limit.blocked(a, next), None);
        limit.failed(a, next);
        assert_eq!(limit.blocked(a, next), None);
        // 0 turns the limit off.
        let off = FailedLogins::new(0);
        for _ in 0..100 {
            off.failed(a, t0);
        }
        assert_eq!(off.blocked(a, t0), None);
    }
}
