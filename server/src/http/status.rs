//! `<base>/status`: the admin page (uptime, requests, bytes, errors, open files, the slowest
//! recent requests) as HTML or JSON, for the addresses in `ServeConfig::status_allow` only.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::gate::TimedRequest;
use super::respond::{escape_html, html_error};

/// Rows in the slowest-requests table.
pub const SLOWEST_SHOWN: usize = 10;

/// Whether `peer` may see the page under `allow` (IPv4-mapped IPv6 addresses count as IPv4).
fn allowed(allow: &[IpAddr], peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    allow.iter().any(|a| a.to_canonical() == peer)
}

/// Whether the client asked for JSON: `?format=json`, or an `Accept` that names JSON
/// and not HTML.
fn wants_json(req: &Request) -> bool {
    let query = req.uri().query().unwrap_or("");
    if let Some(format) = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "format")
        .map(|(_, v)| v)
    {
        return format.eq_ignore_ascii_case("json");
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The figures the page shows.
struct Figures {
    uptime: Duration,
    started: SystemTime,
    requests: u64,
    in_flight: usize,
    bytes_sent: u64,
    client_errors: u64,
    server_errors: u64,
    incomplete: u64,
    open_files: usize,
    slowest: Vec<TimedRequest>,
}

impl Figures {
    fn of(state: &AppState) -> Self {
        let shared = &state.shared;
        let log = &shared.log;
        Self {
            uptime: shared.started.elapsed(),
            started: shared.started_at,
            requests: log.total_requests(),
            in_flight: log.in_flight(),
            bytes_sent: log.total_body_bytes(),
            client_errors: log.client_errors(),
            server_errors: log.server_errors(),
            incomplete: log.incomplete(),
            open_files: shared.hdf5.open_files(),
            slowest: log.slowest(SLOWEST_SHOWN),
        }
    }

    fn json(&self) -> String {
        let slowest: Vec<serde_json::Value> = self
            .slowest
            .iter()
            .map(|r| {
                serde_json::json!({
                    "method": r.method,
                    "path": r.path,
                    "status": r.status,
                    "bytes": r.body_bytes,
                    "ms": millis(r.duration),
                    "complete": r.complete,
                    "ended": unix_seconds(r.ended),
                })
            })
            .collect();
        serde_json::json!({
            "server": "hdfstream",
            "version": env!("CARGO_PKG_VERSION"),
            "started": unix_seconds(self.started),
            "uptime_seconds": self.uptime.as_secs_f64(),
            "requests_served": self.requests,
            "requests_in_flight": self.in_flight,
            "bytes_sent": self.bytes_sent,
            "client_errors": self.client_errors,
            "server_errors": self.server_errors,
            "incomplete_responses": self.incomplete,
            "open_files": self.open_files,
            "slowest_recent": slowest,
        })
        .to_string()
    }

    fn html(&self) -> String {
        let mut page = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hdfstream status</title>\
             <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
             td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}\
             td.n{text-align:right}</style></head><body>\n<h1>hdfstream status</h1>\n<table>\n",
        );
        let secs = self.uptime.as_secs();
        let uptime = format!(
            "{}d {:02}:{:02}:{:02}",
            secs / 86_400,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60
        );
        let rows: [(&str, String); 9] = [
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ("uptime", uptime),
            ("requests served", self.requests.to_string()),
            ("requests in flight", self.in_flight.to_string()),
            ("bytes sent", self.bytes_sent.to_string()),
            ("client errors (4xx)", self.client_errors.to_string()),
            ("server errors (5xx)", self.server_errors.to_string()),
            ("incomplete responses", self.incomplete.to_string()),
            ("open HDF5 files", self.open_files.to_string()),
        ];
        for (name, value) in rows {
            let _ = writeln!(page, "<tr><th>{name}</th><td class=\"n\">{value}</td></tr>");
        }
        page.push_str(
            "</table>\n<h2>Slowest recent requests</h2>\n<table>\n\
             <tr><th>ms</th><th>method</th><th>path</th><th>status</th><th>bytes</th>\
             <th>complete</th></tr>\n",
        );
        for r in &self.slowest {
            let _ = writeln!(
                page,
                "<tr><td class=\"n\">{:.1}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"n\">{}</td><td>{}</td></tr>",
                millis(r.duration),
                escape_html(&r.method),
                escape_html(&r.path),
                r.status,
                r.body_bytes,
                if r.complete { "yes" } else { "no" },
            );
        }
        page.push_str("</table>\n</body></html>\n");
        page
    }
}

/// `GET <base>/status`.
pub(crate) async fn status(State(state): State<AppState>, req: Request) -> Response {
    let allow = &state.shared.status_allow;
    if allow.is_empty() {
        return html_error(StatusCode::NOT_FOUND, "Not found");
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !peer.is_some_and(|ip| allowed(allow, ip)) {
        return html_error(
            StatusCode::FORBIDDEN,
            "The status page answers only the addresses the server allows (--status-allow)",
        );
    }
    let figures = Figures::of(&state);
    let (body, media) = if wants_json(&req) {
        (figures.json(), "application/json")
    } else {
        (figures.html(), "text/html;charset=UTF-8")
    };
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_addresses_count_as_ipv4() {
        let allow = crate::config::LOOPBACK;
        assert!(allowed(&allow, "127.0.0.1".parse().unwrap()));
        assert!(allowed(&allow, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(allowed(&allow, "::1".parse().unwrap()));
        assert!(!allowed(&allow, "127.0.0.2".parse().unwrap()));
        assert!(!allowed(&allow, "10.0.0.1".parse().unwrap()));
        assert!(!allowed(&[], "127.0.0.1".parse().unwrap()));
    }
}
