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

/// A connection to `base` with default options except no retries (failures surface at once).
pub(crate) fn connect(base: &str) -> hdfstream::Connection {
    hdfstream::ClientBuilder::new()
        .with_url(base)
        .with_retry(hdfstream::RetryConfig::none())
        .with_progress(false)
        .build()
        .expect("connect to test server")
}
