//! Connection behaviour against a local mock server: auth, status mapping, retries,
//! broken bodies. No fixtures needed.

#[allow(dead_code)] // each test crate uses a subset of the helpers
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdfstream::{BackoffConfig, ClientBuilder, Error, RetryConfig};
use support::cassette::synthetic_root_listing;
use support::http::{Framing, MockResponse, MockServer};
use support::{fast_retry, msgpack_error};

const MSGPACK: &str = "application/x-msgpack";

/// Builds against `server` without the probe.
fn conn(server: &MockServer, retry: RetryConfig) -> hdfstream::Connection {
    ClientBuilder::new()
        .with_url(format!("{}/hdfstream", server.url()))
        .with_retry(retry)
        .with_probe(false)
        .with_progress(false)
        .build()
        .expect("build")
}

#[test]
fn probe_sends_preemptive_basic_auth_and_accepts_listing() {
    let server = MockServer::start(|_| MockResponse::new(200, MSGPACK, synthetic_root_listing()));
    let c = ClientBuilder::new()
        .with_url(format!("{}/hdfstream/", server.url()))
        .with_credentials("alice", "s3cret")
        .with_progress(false)
        .build()
        .expect("probe succeeds");
    assert_eq!(c.base_url(), format!("{}/hdfstream", server.url()));
    assert_eq!(c.user(), Some("alice"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].target, "/hdfstream/msgpack/");
    // base64("alice:s3cret")
    assert_eq!(
        reqs[0].header("authorization"),
        Some("Basic YWxpY2U6czNjcmV0")
    );
    // The password never shows in Debug output.
    let debug = format!("{c:?}");
    assert!(
        debug.contains("alice") && !debug.contains("s3cret"),
        "{debug}"
    );
}

#[test]
fn password_absent_from_builder_debug_and_errors() {
    let server =
        MockServer::start(|_| MockResponse::new(401, "text/html", b"<h2>no</h2>".to_vec()));
    let b = ClientBuilder::new()
        .with_url(format!("{}/hdfstream", server.url()))
        .with_credentials("bob", "hunter2")
        .with_retry(RetryConfig::none());
    assert!(!format!("{b:?}").contains("hunter2"));
    let err = b.build().expect_err("401 on probe");
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("hunter2"));
    assert!(
        err.to_string()
            .starts_with("Not authorized. Incorrect user name or password?")
    );
}

#[test]
fn url_with_credentials_is_rejected_without_echoing_them() {
    let err = ClientBuilder::new()
        .with_url("https://carol:topsecret@example.invalid/hdfstream")
        .with_probe(false)
        .build()
        .expect_err("userinfo rejected");
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(!err.to_string().contains("topsecret"));
}

#[test]
fn retries_500_then_succeeds() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let server = MockServer::start(move |_| {
        if n2.fetch_add(1, Ordering::SeqCst) < 2 {
            MockResponse::new(500, "text/html", b"<html><body>boom</body></html>".to_vec())
        } else {
            MockResponse::new(200, "text/plain", b"hello".to_vec())
        }
    });
    let c = conn(&server, fast_retry(3));
    let mut out = Vec::new();
    let written = c
        .download("dir/file.txt", &mut out)
        .expect("third attempt works");
    assert_eq!((written, out.as_slice()), (5, b"hello".as_slice()));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert!(
        reqs.iter()
            .all(|r| r.target == "/hdfstream/download/dir/file.txt")
    );
}

#[test]
fn retries_are_bounded_and_last_error_returned() {
    let server = MockServer::start(|_| MockResponse::new(503, MSGPACK, msgpack_error("busy")));
    let c = conn(&server, fast_retry(2));
    let err = c.download("x", &mut Vec::new()).expect_err("always 503");
    match &err {
        Error::Server {
            status, message, ..
        } => {
            assert_eq!((*status, message.as_str()), (503, "busy"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.requests().len(), 3, "1 attempt + 2 retries");
}

#[test]
fn no_retry_for_client_errors() {
    let server = MockServer::start(|_| MockResponse::new(400, MSGPACK, msgpack_error("bad")));
    let c = conn(&server, fast_retry(5));
    let err = c.download("x", &mut Vec::new()).expect_err("400");
    assert!(matches!(err, Error::Server { status: 400, .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn rate_limit_honours_retry_after() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let server = MockServer::start(move |_| {
        if n2.fetch_add(1, Ordering::SeqCst) == 0 {
            MockResponse::new(429, "text/html", b"slow down".to_vec()).header("Retry-After", "1")
        } else {
            MockResponse::new(200, "text/plain", b"ok".to_vec())
        }
    });
    let c = conn(&server, fast_retry(3));
    let t0 = Instant::now();
    let mut out = Vec::new();
    c.download("f", &mut out).expect("second attempt");
    // The backoff alone is at most 20 ms; only Retry-After explains a 1 s wait.
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(out, b"ok");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn rate_limit_without_retries_reports_retry_after() {
    let server = MockServer::start(|_| {
        MockResponse::new(429, "text/html", Vec::new()).header("Retry-After", "7")
    });
    let c = conn(&server, RetryConfig::none());
    let err = c.download("f", &mut Vec::new()).expect_err("429");
    match err {
        Error::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn retry_after_beyond_budget_gives_up_at_once() {
    let server = MockServer::start(|_| {
        MockResponse::new(429, "text/plain", Vec::new()).header("Retry-After", "3600")
    });
    let c = conn(&server, fast_retry(3));
    let t0 = Instant::now();
    let err = c.download("f", &mut Vec::new()).expect_err("429");
    assert!(matches!(err, Error::RateLimited { .. }));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn html_error_text_is_stripped_and_truncated() {
    let page = format!(
        "<html><head><title>x</title></head><body><h2>Request failed</h2><p>Status 403 {}</p></body></html>",
        "y".repeat(500)
    );
    let server = MockServer::start(move |_| {
        MockResponse::new(
            403,
            "text/html;charset=ISO-8859-1",
            page.clone().into_bytes(),
        )
    });
    let c = conn(&server, RetryConfig::none());
    let err = c.download("f", &mut Vec::new()).expect_err("403");
    match err {
        Error::Http { status, text, .. } => {
            assert_eq!(status, 403);
            assert!(
                text.starts_with("x Request failed Status 403 yyy"),
                "{text}"
            );
            assert!(!text.contains('<'));
            assert!(text.chars().count() <= 201, "{}", text.chars().count());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn msgpack_media_type_compared_without_parameters() {
    let server = MockServer::start(|_| {
        MockResponse::new(
            404,
            "Application/X-Msgpack; charset=binary",
            msgpack_error("Invalid path specified: a b"),
        )
    });
    let c = conn(&server, RetryConfig::none());
    let err = c.download("a b", &mut Vec::new()).expect_err("404");
    match err {
        Error::NotFound { path, message } => {
            assert_eq!(path, "a b");
            assert_eq!(message, "Invalid path specified: a b");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.requests()[0].target, "/hdfstream/download/a%20b");
}

#[test]
fn undecodable_msgpack_error_falls_back_to_http_error() {
    let server = MockServer::start(|_| {
        let mut body = msgpack_error("partial");
        body.extend_from_slice(b"junk");
        MockResponse::new(500, MSGPACK, body)
    });
    let c = conn(&server, RetryConfig::none());
    let err = c.download("f", &mut Vec::new()).expect_err("500");
    assert!(matches!(err, Error::Http { status: 500, .. }), "{err:?}");
}

#[test]
fn truncated_download_is_an_error() {
    let server = MockServer::start(|_| {
        MockResponse::new(200, "application/octet-stream", vec![7u8; 1000])
            .framing(Framing::Truncated(24))
    });
    let c = conn(&server, RetryConfig::none());
    let mut out = Vec::new();
    let err = c.download("f", &mut out).expect_err("truncated");
    assert!(
        matches!(
            err,
            Error::Incomplete {
                received: 1000,
                expected: Some(1024),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn connection_refused_is_retried_then_reported() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let c = ClientBuilder::new()
        .with_url(format!("http://127.0.0.1:{port}/hdfstream"))
        .with_retry(fast_retry(2))
        .with_probe(false)
        .build()
        .expect("build without probe");
    let err = c.download("f", &mut Vec::new()).expect_err("refused");
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[test]
fn vpath_segments_are_percent_encoded() {
    let server = MockServer::start(|_| MockResponse::new(200, "text/plain", b"x".to_vec()));
    let c = conn(&server, RetryConfig::none());
    c.download("/dir with space/50%#?.txt", &mut Vec::new())
        .expect("ok");
    assert_eq!(
        server.requests()[0].target,
        "/hdfstream/download/dir%20with%20space/50%25%23%3F.txt"
    );
}

#[test]
fn invalid_builder_options_are_rejected() {
    let no_url = ClientBuilder::new()
        .with_probe(false)
        .build()
        .expect_err("no url");
    assert!(matches!(no_url, Error::Config { .. }));
    let bad_retry = ClientBuilder::new()
        .with_url("http://127.0.0.1:1/x")
        .with_probe(false)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                base: 0.5,
                ..BackoffConfig::default()
            },
            ..RetryConfig::default()
        })
        .build()
        .expect_err("base < 1");
    assert!(bad_retry.to_string().contains("base"), "{bad_retry}");
    let zero = ClientBuilder::new()
        .with_url("http://127.0.0.1:1/x")
        .with_probe(false)
        .with_timeout(Duration::ZERO)
        .build()
        .expect_err("zero timeout");
    assert!(matches!(zero, Error::Config { .. }));
}

#[test]
fn retry_after_http_date_forms() {
    // A date in the past means "now"; a malformed value is ignored.
    for (value, expected) in [
        ("Sun, 06 Nov 1994 08:49:37 GMT", Some(Duration::ZERO)),
        ("Fri, 31 Dec 9999 23:59:59 GMT", None), // far future: checked below
        ("soon", None),
        ("Sun, 06 Nov 1994 08:49:37 CET", None),
    ] {
        let v = value.to_string();
        let server = MockServer::start(move |_| {
            MockResponse::new(429, "text/plain", Vec::new()).header("Retry-After", &v)
        });
        let c = conn(&server, RetryConfig::none());
        let Error::RateLimited { retry_after, .. } =
            c.download("f", &mut Vec::new()).expect_err("429")
        else {
            panic!("expected RateLimited");
        };
        if value.starts_with("Fri, 31 Dec 9999") {
            // 9999-12-31T23:59:59Z is 253402300799 s after the epoch.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            let got = retry_after.expect("parsed").as_secs();
            // The clock may tick between the response and this line.
            let want = 253_402_300_799 - now;
            assert!((want..=want + 2).contains(&got), "{got} vs {want}");
        } else {
            assert_eq!(retry_after, expected, "{value}");
        }
    }
}
