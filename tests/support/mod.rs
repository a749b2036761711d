//! Shared test helpers: a local HTTP mock server, cassette replay, fixture loading, and a
//! fault-injecting proxy in front of a real server.
//!
//! Include from a test crate with
//! `#[allow(dead_code)] // each test crate uses a subset` + `mod support;`.

pub(crate) mod cassette;
pub(crate) mod faults;
pub(crate) mod http;
pub(crate) mod slow;

/// Parsed `eagle_expected.json` (values h5py read), `None` when fixtures are absent.
pub(crate) fn eagle_expected() -> Option<serde_json::Value> {
    let path = cassette::fixtures_dir()?.join("eagle_expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Some(serde_json::from_str(&text).expect("eagle_expected.json is JSON"))
}

/// `max_retries` retries with millisecond back-off (5 to 20 ms) within 10 s: fast tests.
pub(crate) fn fast_retry(max_retries: usize) -> hdfstream::RetryConfig {
    hdfstream::RetryConfig {
        max_retries,
        backoff: hdfstream::BackoffConfig {
            init_backoff: std::time::Duration::from_millis(5),
            max_backoff: std::time::Duration::from_millis(20),
            base: 2.0,
        },
        retry_timeout: std::time::Duration::from_secs(10),
    }
}

/// A server error body: `{"error": msg}` in msgpack (PROTOCOL.md §7.4).
pub(crate) fn msgpack_error(msg: &str) -> Vec<u8> {
    let v = rmpv::Value::Map(vec![(rmpv::Value::from("error"), rmpv::Value::from(msg))]);
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &v).expect("encode");
    out
}

/// A connection to `base` with default options except no retries (failures surface at once).
pub(crate) fn connect(base: &str) -> hdfstream::Connection {
    hdfstream::ClientBuilder::new()
        .with_url(base)
        .with_retry(hdfstream::RetryConfig::none())
        .with_progress(false)
        .build()
        .expect("connect to test server")
}
