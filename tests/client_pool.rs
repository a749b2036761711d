//! Connection sharing: keep-alive reuse, concurrent use through clones, timeouts.

#[allow(dead_code)] // each test crate uses a subset of the helpers
mod support;

use std::time::{Duration, Instant};

use hdfstream::{ClientBuilder, Error, RetryConfig};
use hdfstream_protocol::PathInfo;
use support::cassette::synthetic_root_listing;
use support::http::{MockResponse, MockServer};

fn listing_server() -> MockServer {
    MockServer::start(|_| MockResponse::new(200, "application/x-msgpack", synthetic_root_listing()))
}

#[test]
fn sequential_requests_reuse_one_tcp_connection() {
    let server = listing_server();
    let c = support::connect(&format!("{}/hdfstream", server.url()));
    for _ in 0..10 {
        assert!(matches!(
            c.request_path("/").expect("listing"),
            PathInfo::Directory(_)
        ));
    }
    assert_eq!(server.requests().len(), 11, "probe + 10 path requests");
    assert_eq!(server.connections(), 1, "keep-alive reuses the socket");
}

#[test]
fn clones_share_the_pool_and_work_across_threads() {
    let server = listing_server();
    let c = support::connect(&format!("{}/hdfstream", server.url()));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || {
                for j in 0..5 {
                    c.request_path(&format!("t{i}/r{j}")).expect("listing");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let reqs = server.requests();
    assert_eq!(reqs.len(), 21);
    for i in 0..4 {
        for j in 0..5 {
            let t = format!("/hdfstream/msgpack/t{i}/r{j}");
            assert_eq!(reqs.iter().filter(|r| r.target == t).count(), 1, "{t}");
        }
    }
    assert!(
        server.connections() <= 5,
        "{} connections",
        server.connections()
    );
}

#[test]
fn slow_server_times_out_and_is_retried() {
    let server = MockServer::start(|_| {
        std::thread::sleep(Duration::from_millis(400));
        MockResponse::new(200, "application/x-msgpack", synthetic_root_listing())
    });
    let c = ClientBuilder::new()
        .with_url(format!("{}/hdfstream", server.url()))
        .with_timeout(Duration::from_millis(100))
        .with_retry(RetryConfig {
            max_retries: 1,
            ..RetryConfig::default()
        })
        .with_probe(false)
        .build()
        .expect("build");
    let t0 = Instant::now();
    let err = c.request_path("x").expect_err("timeout");
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Both attempts reached the server before timing out.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn open_caches_connections_per_server() {
    let a = listing_server();
    let b = listing_server();
    let url_a = format!("{}/hdfstream", a.url());
    let c1 = hdfstream::Connection::open(&url_a).expect("first open probes");
    let c2 = hdfstream::Connection::open(&url_a).expect("second open is cached");
    assert_eq!(a.requests().len(), 1, "one probe for two opens");
    c1.request_path("x").expect("listing");
    c2.request_path("y").expect("listing");
    assert_eq!(a.connections(), 1, "both handles share one pool");
    hdfstream::Connection::open(&format!("{}/hdfstream", b.url())).expect("other server");
    assert_eq!(b.requests().len(), 1);
    // A failed open is not cached: the next attempt probes again.
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n2 = n.clone();
    let flaky = MockServer::start(move |_| {
        if n2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            MockResponse::new(401, "text/html", b"no".to_vec())
        } else {
            MockResponse::new(200, "application/x-msgpack", synthetic_root_listing())
        }
    });
    let url = format!("{}/hdfstream", flaky.url());
    let err = hdfstream::Connection::open(&url).expect_err("401 first");
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    hdfstream::Connection::open(&url).expect("second probe succeeds");
    assert_eq!(flaky.requests().len(), 2);
}
